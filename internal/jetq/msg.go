package jetq

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// The headers of a work message.
const (
	// HeaderMsgID is JetStream's deduplication header (nats.MsgIdHdr):
	// MsgID's value, so that a resend of the same patch within the dedup
	// window is not a second message.
	HeaderMsgID = nats.MsgIdHdr
	// HeaderWorkspace names the workspace the patch is for.
	HeaderWorkspace = "Patchd-Workspace"
	// HeaderID is the patch's id (the body has it too; a runner may read
	// it without parsing the body).
	HeaderID = "Patchd-Id"
	// HeaderReceived is when the gateway received the patch, RFC 3339
	// with nanoseconds, UTC.
	HeaderReceived = "Patchd-Received"
)

// MsgID is the deduplication id of a work message: the workspace, the
// patch id and the first 16 hex digits of the body's SHA-256, joined by
// ":" (neither a workspace nor the hash holds one). The workspace keeps
// two workspaces' patches of the same id apart (dedup is per stream);
// the hash makes a failed patch sent again with another body (a new
// attempt, which the daemon accepts) a new message, and the same body
// sent again a duplicate.
func MsgID(ws, id string, body []byte) string {
	sum := sha256.Sum256(body)
	return ws + ":" + id + ":" + hex.EncodeToString(sum[:8])
}

// Work is a work message's content.
type Work struct {
	Workspace string
	ID        string
	Received  time.Time
	// Body is the patch block as the sender sent it.
	Body []byte
}

// NewWorkMsg builds the work message of a patch: published on the
// workspace's subject with the envelope's headers.
func NewWorkMsg(w Work) *nats.Msg {
	m := nats.NewMsg(WorkSubject(w.Workspace))
	m.Data = w.Body
	m.Header.Set(HeaderMsgID, MsgID(w.Workspace, w.ID, w.Body))
	m.Header.Set(HeaderWorkspace, w.Workspace)
	m.Header.Set(HeaderID, w.ID)
	m.Header.Set(HeaderReceived, w.Received.UTC().Format(time.RFC3339Nano))
	return m
}

// ReadWork reads a work message's envelope back: the workspace (checked,
// and it must agree with the subject when the subject is a work
// subject), the id, when it was received and the body. A message a
// hostile publisher could have sent is refused with an error naming what
// is wrong, never a panic.
func ReadWork(subject string, header nats.Header, data []byte) (Work, error) {
	w := Work{Workspace: header.Get(HeaderWorkspace), ID: header.Get(HeaderID), Body: data}
	if err := CheckWorkspace(w.Workspace); err != nil {
		return Work{}, fmt.Errorf("work message: header %s: %w", HeaderWorkspace, err)
	}
	if len(subject) > len(SubjectWorkPrefix) && subject[:len(SubjectWorkPrefix)] == SubjectWorkPrefix && subject != WorkSubject(w.Workspace) {
		return Work{}, fmt.Errorf("work message: header %s is %q, and the subject %q is another workspace's", HeaderWorkspace, w.Workspace, subject)
	}
	if w.ID == "" {
		return Work{}, fmt.Errorf("work message: header %s missing", HeaderID)
	}
	if r := header.Get(HeaderReceived); r != "" {
		t, err := time.Parse(time.RFC3339Nano, r)
		if err != nil {
			return Work{}, fmt.Errorf("work message: header %s: %w", HeaderReceived, err)
		}
		w.Received = t
	}
	return w, nil
}
