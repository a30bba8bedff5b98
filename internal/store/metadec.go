package store

import (
	"math"
	"strconv"

	"github.com/patchd/patchd/internal/jsonscan"
)

// decodeMetaFast decodes a record's meta as json.Unmarshal into diskPatch
// would, for the JSON that encodeMeta writes, several times faster: replay
// decodes every record of the journal, and Unmarshal's reflection was four
// fifths of opening a store. Anything it does not expect (an unknown or
// repeated member, a value of another type, a string it cannot unescape
// exactly as Unmarshal does, bytes that are not JSON) makes it give up
// (ok false), and the caller uses Unmarshal, which decides.
//
// diff is where the "diff" string is in meta, for the index (setDiff).
func decodeMetaFast(meta []byte) (d diskPatch, diff span, ok bool) {
	ok = members(meta, func(key, v []byte, at int) (good bool) {
		switch string(key) {
		case "id":
			d.ID, good = jsonscan.String(v)
		case "h":
			d.Hash, good = jsonscan.String(v)
		case "r":
			d.Role, good = jsonscan.String(v)
		case "t":
			d.Target, good = jsonscan.String(v)
		case "d":
			d.Description, good = jsonscan.String(v)
		case "s":
			var s string
			s, good = jsonscan.String(v)
			d.State = State(s)
		case "e":
			d.Error, good = jsonscan.String(v)
		case "c":
			d.Code, good = jsonscan.String(v)
		case "diff":
			d.Diff, good = jsonscan.String(v)
			diff = span{at, at + len(v)}
		case "n":
			d.Notes, good = jsonStrings(v)
		case "gc":
			d.Commit, good = jsonscan.String(v)
		case "ra":
			d.ReceivedAt, good = jsonInt(v)
		case "sa":
			d.StartedAt, good = jsonInt(v)
		case "fa":
			d.FinishedAt, good = jsonInt(v)
		case "va":
			d.RevertedAt, good = jsonInt(v)
		case "f":
			d.Files, good = jsonFiles(v)
		case "ib":
			d.Blobs, good = jsonBlobs(v)
		case "at":
			d.Attempts, good = jsonAttempts(v)
		}
		return good
	})
	if !ok {
		return diskPatch{}, span{}, false
	}
	return d, diff, true
}

// members walks the members of an object of the journal's JSON, calling fn
// with those whose value is not null (Unmarshal leaves a field as it is
// for null). A key that no journal type has, a key with an escape, or a
// repeated key ends the walk with false: encodeMeta writes none of these,
// and Unmarshal's rules for them (case-insensitive names, the last of
// repeated members) are left to Unmarshal.
func members(data []byte, fn func(key, value []byte, at int) bool) bool {
	var seen uint32
	return jsonscan.ObjectIndex(data, func(key []byte, start, end int) bool {
		bit := metaKeyBit(key)
		if bit == 0 || seen&bit != 0 {
			return false
		}
		seen |= bit
		v := data[start:end:end]
		return jsonscan.IsNull(v) || fn(key, v, start)
	})
}

// metaKeys are the members of diskPatch, diskFile, diskBlob and
// diskAttempt.
var metaKeys = []string{"id", "h", "r", "t", "d", "s", "e", "c", "diff", "n", "gc", "ra", "sa", "fa", "va", "f", "ib", "p", "oh", "nh", "om", "ex", "del", "l", "at"}

// metaKeyBit is a key's bit among metaKeys, 0 for any other key.
func metaKeyBit(key []byte) uint32 {
	for i, k := range metaKeys {
		if string(key) == k {
			return 1 << i
		}
	}
	return 0
}

// jsonInt reads an integer the way encodeMeta writes one: JSON's grammar
// for an integer (an optional minus, then 0 or digits not starting with
// 0), checked here because strconv.ParseInt also takes a leading plus,
// which is not JSON (the fuzzer found `+0` answered where Unmarshal
// refuses it).
func jsonInt(v []byte) (int64, bool) {
	digits := v
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || (len(digits) > 1 && digits[0] == '0') {
		return 0, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	return n, err == nil
}

func jsonBool(v []byte) (bool, bool) {
	switch string(v) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

func jsonStrings(v []byte) ([]string, bool) {
	elems, ok := jsonscan.Array(v)
	if !ok {
		return nil, false
	}
	out := make([]string, len(elems))
	for i, e := range elems {
		if jsonscan.IsNull(e) {
			continue
		}
		if out[i], ok = jsonscan.String(e); !ok {
			return nil, false
		}
	}
	return out, true
}

// objects walks an array of objects: start gets the number of elements,
// then fn each member of element i as members does (null elements are
// skipped, as Unmarshal leaves them zero).
func objects(v []byte, start func(n int), fn func(i int, key, value []byte) bool) bool {
	elems, ok := jsonscan.Array(v)
	if !ok {
		return false
	}
	start(len(elems))
	for i, e := range elems {
		if jsonscan.IsNull(e) {
			continue
		}
		if !members(e, func(key, value []byte, _ int) bool { return fn(i, key, value) }) {
			return false
		}
	}
	return true
}

func jsonFiles(v []byte) ([]diskFile, bool) {
	var out []diskFile
	ok := objects(v, func(n int) { out = make([]diskFile, n) }, func(i int, key, v []byte) (good bool) {
		f := &out[i]
		switch string(key) {
		case "p":
			f.Path, good = jsonscan.String(v)
		case "oh":
			f.OldHash, good = jsonscan.String(v)
		case "nh":
			f.NewHash, good = jsonscan.String(v)
		case "om":
			var n int64
			n, good = jsonInt(v)
			good = good && n >= 0 && n <= 1<<32-1
			f.OldMode = uint32(n)
		case "ex":
			f.Existed, good = jsonBool(v)
		case "del":
			f.Deleted, good = jsonBool(v)
		}
		return good
	})
	return out, ok
}

func jsonBlobs(v []byte) ([]diskBlob, bool) {
	var out []diskBlob
	ok := objects(v, func(n int) { out = make([]diskBlob, n) }, func(i int, key, v []byte) (good bool) {
		switch string(key) {
		case "n":
			out[i].Name, good = jsonscan.String(v)
		case "l":
			out[i].Len, good = jsonInt(v)
		}
		return good
	})
	return out, ok
}

func jsonAttempts(v []byte) ([]diskAttempt, bool) {
	var out []diskAttempt
	ok := objects(v, func(n int) { out = make([]diskAttempt, n) }, func(i int, key, v []byte) (good bool) {
		a := &out[i]
		switch string(key) {
		case "n":
			var n int64
			n, good = jsonInt(v)
			good = good && n >= math.MinInt32 && n <= math.MaxInt32
			a.Number = int(n)
		case "h":
			a.Hash, good = jsonscan.String(v)
		case "e":
			a.Error, good = jsonscan.String(v)
		case "c":
			a.Code, good = jsonscan.String(v)
		case "ra":
			a.ReceivedAt, good = jsonInt(v)
		case "fa":
			a.FinishedAt, good = jsonInt(v)
		}
		return good
	})
	return out, ok
}
