package store

// Codes say, for a program, why the store refused: each sentinel error of
// this package has one (its Code method), and errors wrapping it share
// it. CodeDropped is the Code of a patch dropped before it was applied.
// They are stable; the README's "Error codes" table lists them.
const (
	CodeIDConflict     = "id_conflict"       // ErrConflict
	CodeNotFound       = "patch_not_found"   // ErrNotFound
	CodeUnavailable    = "store_unavailable" // ErrUnavailable
	CodeClosed         = "store_closed"      // ErrClosed
	CodeNotQueued      = "not_queued"        // ErrNotQueued
	CodeEventsLost     = "events_lost"       // ErrEventsLost
	CodeSlowSubscriber = "subscriber_slow"   // ErrSlowSubscriber
	CodeDropped        = "dropped"           // a patch's Code after Drop
	CodeExpired        = "expired"           // ErrExpired
)

// sentinel is an error of this package with a code, compared by identity
// (errors.Is) as errors.New's are.
type sentinel struct{ msg, code string }

func (e *sentinel) Error() string { return e.msg }

// Code returns the error's code.
func (e *sentinel) Code() string { return e.code }
