package api

import (
	"context"
	"time"
)

// Recent counts the patches that finished applied or failed in the last
// hour and in the last day (Status.Recent). They are counted from the
// events as they are committed, in per-minute buckets, not by reading the
// history: so they count what happened since Since (when the service
// started counting, less the last 1,024 events it read back then).
type Recent struct {
	AppliedHour int       `json:"applied_hour"`
	FailedHour  int       `json:"failed_hour"`
	AppliedDay  int       `json:"applied_day"`
	FailedDay   int       `json:"failed_day"`
	Since       time.Time `json:"since"`
}

// Bodies reads the body a patch was last sent with (the patch block, as
// JSON). It is not part of Service, so that no door must offer it: the
// dashboard uses it, when its service has it, to show who sent a patch
// (the block's metadata) and to edit and resend a failed one.
type Bodies interface {
	Body(ctx context.Context, id string) ([]byte, error)
}
