package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"time"
)

// Journal framing; doc.go describes the format.
const (
	fileHeader    = "patchdJ1"
	recMagic      = 0x31526470 // "pdR1" little-endian
	recHeaderLen  = 12         // magic, length, crc
	payloadFixed  = 1 + 8 + 4  // kind, seq, metaLen
	maxPayloadLen = 1 << 31    // a length beyond this is damage, not data

	kindPut    byte = 1
	kindUpdate byte = 2
	kindRetry  byte = 3
	kindExpire byte = 4 // see prune.go
)

var (
	errShort   = errors.New("record cut short")
	errCorrupt = errors.New("record damaged")
)

func castagnoli() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) }

// diskFile and diskPatch are the journal's JSON, kept apart from the API
// types so that renaming a field or JSON tag there cannot make old journals
// unreadable.
type diskFile struct {
	Path    string `json:"p"`
	OldHash string `json:"oh,omitempty"`
	NewHash string `json:"nh,omitempty"`
	OldMode uint32 `json:"om,omitempty"`
	Existed bool   `json:"ex,omitempty"`
	Deleted bool   `json:"del,omitempty"`
}

// diskBlob names one inline blob of an update record's body.
type diskBlob struct {
	Name string `json:"n"`
	Len  int64  `json:"l"`
}

// diskAttempt is an earlier attempt of a patch (Attempt).
type diskAttempt struct {
	Number     int    `json:"n"`
	Hash       string `json:"h"`
	Error      string `json:"e,omitempty"`
	Code       string `json:"c,omitempty"`
	ReceivedAt int64  `json:"ra,omitempty"`
	FinishedAt int64  `json:"fa,omitempty"`
}

type diskPatch struct {
	ID          string     `json:"id"`
	Hash        string     `json:"h"`
	Role        string     `json:"r,omitempty"`
	Target      string     `json:"t,omitempty"`
	Description string     `json:"d,omitempty"`
	State       State      `json:"s"`
	Error       string     `json:"e,omitempty"`
	Code        string     `json:"c,omitempty"`
	Diff        string     `json:"diff,omitempty"`
	Files       []diskFile `json:"f,omitempty"`
	Blobs       []diskBlob `json:"ib,omitempty"` // the record's body, in this order
	Notes       []string   `json:"n,omitempty"`
	Commit      string     `json:"gc,omitempty"`
	ReceivedAt  int64      `json:"ra,omitempty"`
	StartedAt   int64      `json:"sa,omitempty"`
	FinishedAt  int64      `json:"fa,omitempty"`
	RevertedAt  int64      `json:"va,omitempty"`
	// Attempts are absent from records written before patches could be
	// sent again after failing.
	Attempts []diskAttempt `json:"at,omitempty"`
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func encodeMeta(p Patch, blobs []diskBlob) ([]byte, error) {
	d := toDisk(p, blobs)
	return appendMeta(make([]byte, 0, 256+len(d.Diff)+len(d.Description)), &d), nil
}

// toDisk is the journal's form of p, with the inline blobs of its record.
func toDisk(p Patch, blobs []diskBlob) diskPatch {
	d := diskPatch{
		Blobs: blobs,
		ID:    p.ID, Hash: p.Hash, Role: p.Role, Target: p.Target,
		Description: p.Description, State: p.State, Error: p.Error, Code: p.Code,
		Diff: p.Diff, Notes: p.Notes, Commit: p.Commit,
		ReceivedAt: nanos(p.ReceivedAt), StartedAt: nanos(p.StartedAt),
		FinishedAt: nanos(p.FinishedAt), RevertedAt: nanos(p.RevertedAt),
	}
	for _, f := range p.Files {
		d.Files = append(d.Files, diskFile(f))
	}
	for _, a := range p.Attempts {
		d.Attempts = append(d.Attempts, diskAttempt{Number: a.Number, Hash: a.Hash, Error: a.Error, Code: a.Code,
			ReceivedAt: nanos(a.ReceivedAt), FinishedAt: nanos(a.FinishedAt)})
	}
	return d
}

func decodeMeta(meta []byte, seq uint64) (Patch, []diskBlob, span, error) {
	d, diff, ok := decodeMetaFast(meta)
	if !ok {
		d, diff = diskPatch{}, span{}
		if err := json.Unmarshal(meta, &d); err != nil {
			return Patch{}, nil, span{}, err
		}
	}
	p := Patch{
		ID: d.ID, Seq: seq, Hash: d.Hash, Role: d.Role, Target: d.Target,
		Description: d.Description, State: d.State, Error: d.Error, Code: d.Code,
		Diff: d.Diff, Notes: d.Notes, Commit: d.Commit,
		ReceivedAt: fromNanos(d.ReceivedAt), StartedAt: fromNanos(d.StartedAt),
		FinishedAt: fromNanos(d.FinishedAt), RevertedAt: fromNanos(d.RevertedAt),
	}
	for _, f := range d.Files {
		p.Files = append(p.Files, FileChange(f))
	}
	for _, a := range d.Attempts {
		p.Attempts = append(p.Attempts, Attempt{Number: a.Number, Hash: a.Hash, Error: a.Error, Code: a.Code,
			ReceivedAt: fromNanos(a.ReceivedAt), FinishedAt: fromNanos(a.FinishedAt)})
	}
	if p.ID == "" || !p.State.Valid() {
		return Patch{}, nil, span{}, fmt.Errorf("patch record without id or with state %q", p.State)
	}
	for _, b := range d.Blobs {
		if b.Name == "" || b.Len < 0 {
			return Patch{}, nil, span{}, fmt.Errorf("patch record with a blob named %q of %d bytes", b.Name, b.Len)
		}
	}
	return p, d.Blobs, diff, nil
}

// checkSize refuses a record whose length would not fit the header.
func checkSize(meta, body []byte) error {
	if n := payloadFixed + int64(len(meta)) + int64(len(body)); n > maxPayloadLen {
		return fmt.Errorf("record of %d bytes is larger than the journal allows (%d)", n, int64(maxPayloadLen))
	}
	return nil
}

// encodeRecord frames one record. It returns the record and where the body
// starts in it. For a put whose Seq is not known yet, the committer later
// calls sealRecord, which sets the seq and recomputes the CRC.
func encodeRecord(kind byte, seq uint64, meta, body []byte) (rec []byte, bodyAt int) {
	n := payloadFixed + len(meta) + len(body)
	rec = make([]byte, recHeaderLen, recHeaderLen+n)
	rec = append(rec, kind)
	rec = binary.LittleEndian.AppendUint64(rec, seq)
	rec = binary.LittleEndian.AppendUint32(rec, uint32(len(meta)))
	rec = append(rec, meta...)
	bodyAt = len(rec)
	rec = append(rec, body...)
	binary.LittleEndian.PutUint32(rec[0:], recMagic)
	binary.LittleEndian.PutUint32(rec[4:], uint32(n))
	sealRecord(rec, seq)
	return rec, bodyAt
}

// sealRecord sets the seq of an encoded record and its CRC.
func sealRecord(rec []byte, seq uint64) {
	binary.LittleEndian.PutUint64(rec[recHeaderLen+1:], seq)
	tab := castagnoli()
	crc := crc32.Update(0, tab, rec[4:8])
	crc = crc32.Update(crc, tab, rec[recHeaderLen:])
	binary.LittleEndian.PutUint32(rec[8:], crc)
}

// record is one decoded journal record. meta aliases the scan buffer.
type record struct {
	kind    byte
	seq     uint64
	meta    []byte
	bodyAt  int64 // offset of the body from the start of the record
	bodyLen int64
	size    int64 // whole record, header included
	crc     uint32
}

// parseHeader checks a record header against the bytes left in the file
// and returns the payload length.
func parseHeader(h []byte, remaining int64) (int64, error) {
	if binary.LittleEndian.Uint32(h[0:]) != recMagic {
		return 0, fmt.Errorf("%w: bad magic", errCorrupt)
	}
	n := int64(binary.LittleEndian.Uint32(h[4:]))
	if n < payloadFixed || n > maxPayloadLen {
		return 0, fmt.Errorf("%w: impossible length %d", errCorrupt, n)
	}
	if n > remaining-recHeaderLen {
		return 0, fmt.Errorf("%w: length %d beyond end of file", errShort, n)
	}
	return n, nil
}

// parsePayload verifies the CRC and splits the payload.
func parsePayload(h, payload []byte) (record, error) {
	tab := castagnoli()
	crc := crc32.Update(0, tab, h[4:8])
	crc = crc32.Update(crc, tab, payload)
	if crc != binary.LittleEndian.Uint32(h[8:]) {
		return record{}, fmt.Errorf("%w: checksum mismatch", errCorrupt)
	}
	r := record{
		kind: payload[0],
		seq:  binary.LittleEndian.Uint64(payload[1:]),
		size: recHeaderLen + int64(len(payload)),
		crc:  binary.LittleEndian.Uint32(h[8:]),
	}
	metaLen := int64(binary.LittleEndian.Uint32(payload[9:]))
	if metaLen > int64(len(payload))-payloadFixed {
		return record{}, fmt.Errorf("%w: meta length %d beyond record", errCorrupt, metaLen)
	}
	r.meta = payload[payloadFixed : payloadFixed+metaLen]
	r.bodyAt = recHeaderLen + payloadFixed + metaLen
	r.bodyLen = int64(len(payload)) - payloadFixed - metaLen
	return r, nil
}
