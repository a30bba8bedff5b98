package api

import "time"

// NotifyStatus is how one notification receiver (--notify) fares: what its
// outbox holds and how its deliveries went since the daemon started
// (Status.Notify). Receiver is the redacted URL (scheme, host and an id):
// a webhook URL is a secret and is never shown.
type NotifyStatus struct {
	Receiver string   `json:"receiver"`
	Kind     string   `json:"kind"`
	Events   []string `json:"events"`
	// Pending counts the messages waiting in the durable outbox.
	Pending int `json:"pending"`
	// Delivered, Failed (attempts that failed and will be retried),
	// GaveUp (messages abandoned after the retry limit or refused for
	// good by the receiver) and Dropped (the oldest pending messages
	// dropped when the outbox was full) count since the daemon started.
	Delivered uint64 `json:"delivered"`
	Failed    uint64 `json:"failed"`
	GaveUp    uint64 `json:"gave_up"`
	Dropped   uint64 `json:"dropped"`
	// LastError is the last failed attempt's reason (no URL in it).
	LastError     string    `json:"last_error,omitempty"`
	LastErrorAt   time.Time `json:"last_error_at,omitzero"`
	LastSuccessAt time.Time `json:"last_success_at,omitzero"`
}
