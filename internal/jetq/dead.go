package jetq

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/patchd/patchd/internal/api"
)

// CodeDeadLetter is the code of a patch no runner brought to an outcome
// in --max-deliver deliveries; the patch is kept on patchd.dead.<ws>. A
// runner buries the patch its daemon refused on the last delivery; the
// gateway buries one whose runner died on each delivery, from the
// server's max-deliveries advisory (that needs reading and removing a
// work message by its sequence, which no runner may do). Both write the
// same code, headers and event.
const CodeDeadLetter = "dead_letter"

// Headers a dead letter carries besides the work message's own.
const (
	HeaderDeliveries = "Patchd-Deliveries"
	HeaderStreamSeq  = "Patchd-Stream-Seq"
)

// ValidKey reports whether a KV bucket takes key, as nats.go checks one:
// letters, digits and -/_=. (no leading or trailing dot), at most 1024
// bytes. An id published around the gateway may hold characters no key
// can.
func ValidKey(key string) bool {
	if key == "" || len(key) > 1024 || key[0] == '.' || key[len(key)-1] == '.' {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '/' || c == '_' || c == '=' || c == '.') {
			return false
		}
	}
	return true
}

// PatchID is the id of the patch a work message carries: its header, or
// the body's "id" when a publisher left the header out.
func PatchID(m *jetstream.RawStreamMsg) string {
	if id := m.Header.Get(HeaderID); id != "" {
		return id
	}
	var blk struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(m.Data, &blk) == nil {
		return blk.ID
	}
	return ""
}

// DeadView is the view of patch id buried from work message m: failed,
// code dead_letter, why as its error, with the role, file and
// description its body names. The runner and the gateway put the same.
func DeadView(ws, id, why string, m *jetstream.RawStreamMsg, received, now time.Time) api.PatchView {
	v := api.PatchView{ID: id, Workspace: ws, State: api.StateFailed, Code: CodeDeadLetter, Error: why, ReceivedAt: received, FinishedAt: now}
	var blk struct {
		Role        string `json:"role"`
		TargetFile  string `json:"target_file"`
		Description string `json:"description"`
	}
	if json.Unmarshal(m.Data, &blk) == nil {
		v.Role, v.TargetFile, v.Description = blk.Role, blk.TargetFile, blk.Description
	}
	return v
}

// DeadEventMsg is the event of a dead letter, for patchd.events.<ws>,
// with one dedup id per buried work message (its stream sequence), so
// that the runner and the gateway burying the same message publish it
// once.
func DeadEventMsg(ws, id, why string, seq uint64, now time.Time) *nats.Msg {
	e := api.Event{Time: now, Event: "patch.failed", ID: id, State: api.StateFailed, Error: why, Code: CodeDeadLetter, Workspace: ws}
	data, _ := json.Marshal(e)
	m := nats.NewMsg(EventsSubject(ws))
	m.Data = data
	m.Header.Set(nats.MsgIdHdr, ws+":dead:"+strconv.FormatUint(seq, 10))
	return m
}

// DeadLetterMsg is the copy of work message m for patchd.dead.<ws>: its
// body and headers (less the publisher's Nats-Expected-* ones, which the
// dead stream would refuse), its dedup id (or one from its sequence if it
// had none, so that burying it again publishes it once), and how many
// times it was delivered and its sequence in PATCHD. The runner and the
// gateway publish the same.
func DeadLetterMsg(ws string, m *jetstream.RawStreamMsg, deliveries uint64) *nats.Msg {
	dl := nats.NewMsg(DeadSubject(ws))
	dl.Data = m.Data
	for k, vs := range m.Header {
		if strings.HasPrefix(k, "Nats-Expected-") {
			continue
		}
		for _, v := range vs {
			dl.Header.Add(k, v)
		}
	}
	if dl.Header.Get(nats.MsgIdHdr) == "" {
		dl.Header.Set(nats.MsgIdHdr, ws+":seq:"+strconv.FormatUint(m.Sequence, 10))
	}
	dl.Header.Set(HeaderDeliveries, strconv.FormatUint(deliveries, 10))
	dl.Header.Set(HeaderStreamSeq, strconv.FormatUint(m.Sequence, 10))
	return dl
}

// Received is when the gateway received the patch work message m
// carries (its header), or when the stream stored m if the header is
// missing or not a time.
func Received(m *jetstream.RawStreamMsg) time.Time {
	if t, err := time.Parse(time.RFC3339Nano, m.Header.Get(HeaderReceived)); err == nil {
		return t
	}
	return m.Time
}

// Sleep waits d or until ctx ends, for the retry loops of the gateway and
// the runner; false when ctx ended.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
