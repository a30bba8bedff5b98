package jetq

import (
	"fmt"
	"strings"
	"time"

	"github.com/patchd/patchd/internal/api"
)

// The streams, subjects, buckets and consumers (see "Scale out" in the
// README and NATS-SPEC for what each holds).
const (
	// StreamWork is the work queue: one message per patch, on
	// SubjectWorkPrefix+<workspace>, removed once a runner acks it.
	StreamWork = "PATCHD"
	// SubjectWorkPrefix starts the subject of a workspace's patches.
	SubjectWorkPrefix = "patchd.ws."
	// StreamEvents holds every workspace's events (api.Event JSON, with
	// Workspace set) on SubjectEventsPrefix+<workspace>; the gateway
	// numbers them by this stream's sequence.
	StreamEvents = "PATCHD_EVENTS"
	// SubjectEventsPrefix starts the subject of a workspace's events.
	SubjectEventsPrefix = "patchd.events."
	// StreamDead keeps the work messages delivered MaxDeliver times
	// without an outcome, on SubjectDeadPrefix+<workspace>.
	StreamDead = "PATCHD_DEAD"
	// SubjectDeadPrefix starts the subject of a workspace's dead letters.
	SubjectDeadPrefix = "patchd.dead."
	// StreamAdvisories captures the server's max-deliveries advisories of
	// the work queue's consumers, so that none is missed while the
	// runner that handles them is down.
	StreamAdvisories = "PATCHD_ADVISORIES"
	// SubjectAdvisories is what StreamAdvisories captures.
	SubjectAdvisories = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + StreamWork + ".*"
	// BucketPatches is the KV bucket of patch views, keyed by PatchKey.
	BucketPatches = "PATCHD_PATCHES"
	// BucketWorkspaces is the KV bucket of workspaces (WorkspaceRecord
	// JSON), keyed by the workspace's name.
	BucketWorkspaces = "PATCHD_WORKSPACES"
	// SubjectCtlPrefix starts the subjects of the control requests:
	// SubjectCtlPrefix+<workspace>+"."+<op> (CtlSubject).
	SubjectCtlPrefix = "patchd.ctl."
	// ConsumerPrefix names a workspace's durable pull consumer of the
	// work queue: ConsumerPrefix+<workspace>.
	ConsumerPrefix = "run-"
	// DeadConsumer is the gateway's durable consumer of every
	// workspace's max-deliveries advisories (StreamAdvisories): it makes
	// the messages they name dead letters.
	DeadConsumer = "dead"
)

// Defaults of the streams and consumers.
const (
	DefaultDedupWindow = 2 * time.Minute
	DefaultReplicas    = 1
	DefaultMaxDeliver  = 5
	DefaultAckWait     = 30 * time.Second
	// EventsMaxAge is how long the events stream keeps an event.
	EventsMaxAge = 7 * 24 * time.Hour
	// DeadMaxAge is how long dead letters and advisories are kept.
	DeadMaxAge = 30 * 24 * time.Hour
	// MaxViewBytes bounds a value of BucketPatches (EncodeView cuts a
	// view's texts to fit).
	MaxViewBytes = 256 << 10
	// MaxWorkspaceLen bounds a workspace's name.
	MaxWorkspaceLen = 64
)

// WorkSubject is the subject of a workspace's patches.
func WorkSubject(ws string) string { return SubjectWorkPrefix + ws }

// EventsSubject is the subject of a workspace's events.
func EventsSubject(ws string) string { return SubjectEventsPrefix + ws }

// DeadSubject is the subject of a workspace's dead letters.
func DeadSubject(ws string) string { return SubjectDeadPrefix + ws }

// ConsumerName is the durable consumer of a workspace's patches.
func ConsumerName(ws string) string { return ConsumerPrefix + ws }

// RunnerInbox is the inbox prefix of a workspace's runner
// (Options.InboxPrefix): under natsconf's permissions a runner may
// subscribe only below it, so that no runner reads the replies (fetched
// patches among them) another asked for.
func RunnerInbox(ws string) string { return "_INBOX_" + ws }

// AdvisorySubject is the max-deliveries advisory subject of a workspace's
// consumer.
func AdvisorySubject(ws string) string {
	return "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + StreamWork + "." + ConsumerName(ws)
}

// CheckWorkspace accepts a workspace name: 1 to 64 of A-Z a-z 0-9 _ -
// (a NATS subject token and KV key part that needs no quoting). A refusal
// is an *api.Error of Kind invalid naming the field "workspace".
func CheckWorkspace(name string) error {
	if name == "" {
		return api.Errorf(api.KindInvalid, api.CodeFieldMissing, "workspace", "workspace: missing (a name of 1 to %d letters, digits, _ or -)", MaxWorkspaceLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return api.Errorf(api.KindInvalid, api.CodeFieldInvalid, "workspace", "workspace: character %q at position %d is not allowed (use letters A-Z a-z, digits 0-9, _ and -)", rune(c), i)
		}
	}
	if len(name) > MaxWorkspaceLen {
		return api.Errorf(api.KindInvalid, api.CodeFieldInvalid, "workspace", "workspace: longer than %d characters", MaxWorkspaceLen)
	}
	return nil
}

// idEscapes are the characters of a patch id a KV key cannot hold and
// their escapes; "=" never occurs in an id (internal/patch refuses it).
var idEscapes = strings.NewReplacer(".", "=2E", ":", "=3A")

var idUnescapes = strings.NewReplacer("=2E", ".", "=3A", ":")

// PatchKey is the key of a patch's view in BucketPatches: the workspace,
// a dot and the id with "." and ":" escaped as =2E and =3A.
func PatchKey(ws, id string) string { return ws + "." + idEscapes.Replace(id) }

// BodyKey is the key under which the gateway keeps the SHA-256 (hex) of
// the body a patch id was last queued with: the view's key and ".body".
// ParsePatchKey refuses it (a listing passes over it), and a runner's
// permissions (its workspace's keys of one token) do not let it write it.
func BodyKey(ws, id string) string { return PatchKey(ws, id) + ".body" }

// PatchKeyPrefix is the key prefix of a workspace's views (a KV watch
// filter is PatchKeyPrefix(ws)+"*").
func PatchKeyPrefix(ws string) string { return ws + "." }

// ParsePatchKey splits a key made by PatchKey into its workspace and id.
func ParsePatchKey(key string) (ws, id string, err error) {
	ws, esc, ok := strings.Cut(key, ".")
	if !ok || CheckWorkspace(ws) != nil || esc == "" || strings.ContainsAny(esc, ".:") {
		return "", "", fmt.Errorf("jetq: %q is not a patch key (<workspace>.<escaped id>)", key)
	}
	return ws, idUnescapes.Replace(esc), nil
}
