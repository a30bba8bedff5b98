package api

import "time"

// The states of a patch, as every answer names them. They are the store's
// (a test in patchsvc holds them equal): queued → applying → applied |
// failed, queued → failed (dropped), applied → reverted.
const (
	StateQueued   = "queued"
	StateApplying = "applying"
	StateApplied  = "applied"
	StateFailed   = "failed"
	StateReverted = "reverted"
)

// States lists every state, in life-cycle order.
func States() []string {
	return []string{StateQueued, StateApplying, StateApplied, StateFailed, StateReverted}
}

// Finished reports whether a patch in state is done with the worker:
// applied, failed or reverted.
func Finished(state string) bool {
	return state == StateApplied || state == StateFailed || state == StateReverted
}

// PatchView is a patch as the API shows it (GET /patches/{id}).
type PatchView struct {
	ID string `json:"id"`
	// Workspace names the workspace the patch is for, behind a NATS
	// gateway (patchd gateway); "" from a single daemon.
	Workspace   string   `json:"workspace,omitempty"`
	Seq         uint64   `json:"seq"`
	State       string   `json:"state"`
	Role        string   `json:"role"`
	TargetFile  string   `json:"target_file"`
	Description string   `json:"description,omitempty"`
	Error       string   `json:"error,omitempty"`
	Code        string   `json:"code,omitempty"` // why it failed, for programs (see Error codes in the README)
	Notes       []string `json:"notes,omitempty"`
	// Commit is the short hash of the git commit that recorded the
	// applied patch (--git).
	Commit     string       `json:"commit,omitempty"`
	ReceivedAt time.Time    `json:"received_at"`
	StartedAt  time.Time    `json:"started_at,omitzero"`
	FinishedAt time.Time    `json:"finished_at,omitzero"`
	RevertedAt time.Time    `json:"reverted_at,omitzero"`
	DurationMS float64      `json:"duration_ms,omitempty"`
	Files      []FileChange `json:"files,omitempty"`
	Diff       string       `json:"diff,omitempty"`
	// Attempt numbers this attempt at the id from the second on (a patch
	// that failed, sent again with another body); 0 for the first.
	Attempt int `json:"attempt,omitempty"`
	// Attempts are the earlier attempts at the id, oldest first (the
	// latest 10 are kept).
	Attempts []Attempt `json:"attempts,omitempty"`
	// DiffSize, DiffOffset and DiffNext are set when Diff is a part of
	// the diff (see FitPatch): its full length in bytes, where this part
	// starts, and the offset of the rest (0 when this part ends it).
	DiffSize   int `json:"diff_size,omitempty"`
	DiffOffset int `json:"diff_offset,omitempty"`
	DiffNext   int `json:"diff_next_offset,omitempty"`
}

// Attempt is an earlier attempt at a patch id: a body that failed and was
// replaced by another sent under the same id.
type Attempt struct {
	Attempt    int       `json:"attempt"` // its number, from 1
	Hash       string    `json:"hash"`    // hex SHA-256 of its body
	Error      string    `json:"error,omitempty"`
	Code       string    `json:"code,omitempty"`
	ReceivedAt time.Time `json:"received_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// FileChange is what applying a patch did to one file. Hashes are hex
// SHA-256 of the file's contents.
type FileChange struct {
	Path    string `json:"path"`
	OldHash string `json:"old_hash,omitempty"`
	NewHash string `json:"new_hash,omitempty"`
	OldMode uint32 `json:"old_mode,omitempty"`
	Existed bool   `json:"existed"`
	Deleted bool   `json:"deleted,omitempty"`
}

// PatchList is a page of patches (GET /patches).
type PatchList struct {
	Patches []PatchView `json:"patches"`
	// NextCursor asks for the next page; "" on the last.
	NextCursor string `json:"next_cursor,omitempty"`
}

// Event is one state change of a patch. EventID numbers events from 1 in
// the order they were committed, across restarts: a subscriber (SSE's
// Last-Event-ID, a waiting sender) resumes after the last one it saw.
type Event struct {
	EventID uint64    `json:"event_id"`
	Time    time.Time `json:"time"`
	// Event is patch.submitted, patch.applying, patch.applied,
	// patch.failed, patch.reverted, patch.requeued, patch.dropped or
	// patch.resubmitted (a failed patch sent again with another body: a
	// new attempt, queued, with a new Seq).
	Event string `json:"event"`
	ID    string `json:"id"`  // the patch's id
	Seq   uint64 `json:"seq"` // the patch's Seq
	State string `json:"state"`
	Error string `json:"error,omitempty"`
	Code  string `json:"code,omitempty"` // a failed patch's code
	// Workspace names the patch's workspace, behind a NATS gateway;
	// "" from a single daemon.
	Workspace string `json:"workspace,omitempty"`
}

// Status is the state of the patch pipeline: what /health and `patchd
// status` report under "queue", and where the event stream stands.
type Status struct {
	Queue QueueStats `json:"queue"`
	// LastEventID is the number of the last event committed, 0 if none.
	LastEventID uint64 `json:"last_event_id"`
	// Recent counts the patches applied and failed in the last hour and
	// day; nil when the service does not count them, or not yet (the
	// daemon begins counting at the first Status after a start, in the
	// background).
	Recent *Recent `json:"recent,omitempty"`
	// Notify is each notification receiver's outbox and deliveries; nil
	// when none is configured.
	Notify []NotifyStatus `json:"notify,omitempty"`
	// NATS is the runner's link to NATS JetStream (--queue); nil
	// without a queue.
	NATS *NATSStatus `json:"nats,omitempty"`
}

// QueueStats counts patches by state, with the journal's size and how well
// its writes are grouped.
type QueueStats struct {
	Queued   int `json:"queued"`
	Applying int `json:"applying"`
	Applied  int `json:"applied"`
	Failed   int `json:"failed"`
	Reverted int `json:"reverted"`
	Total    int `json:"total"`
	// JournalBytes is the durable size of the journal.
	JournalBytes int64 `json:"journal_bytes"`
	// Batches and Records count the journal writes (one fsync each) and
	// the records they carried since the store opened; Records/Batches is
	// the group-commit batch size.
	Batches uint64 `json:"batches"`
	Records uint64 `json:"records"`
}
