package patch

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestParseWaitSeconds: "wait_seconds" asks the webhook to wait for the
// outcome: a number of seconds above 0 and at most MaxWait; anything else
// is refused with field_invalid naming wait_seconds.
func TestParseWaitSeconds(t *testing.T) {
	for _, tt := range []struct {
		value any
		want  time.Duration
	}{
		{nil, 0},
		{raw("null"), 0},
		{30, 30 * time.Second},
		{raw("2.5"), 2500 * time.Millisecond},
		{raw("40"), MaxWait},
		{raw("1e1"), 10 * time.Second},
	} {
		b, err := Parse([]byte(with(map[string]any{"wait_seconds": tt.value})))
		if err != nil || b.Wait != tt.want {
			t.Errorf("Parse(wait_seconds %v) = %v, %v; want %v", tt.value, b.waitOrZero(), err, tt.want)
		}
	}
	for _, value := range []any{0, -1, raw("40.5"), 41, raw("1e9"), "30", "30s", true, raw("[]"), raw("{}"), raw("0.0001")} {
		_, err := Parse([]byte(with(map[string]any{"wait_seconds": value})))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field() != "wait_seconds" || fe.Code() != CodeFieldInvalid ||
			!strings.Contains(err.Error(), "Invalid field: wait_seconds: must be a number of seconds above 0 and at most 40") {
			t.Errorf("Parse(wait_seconds %v) = %v; want field_invalid naming wait_seconds and its bounds", value, err)
		}
	}
}

func (b *Block) waitOrZero() time.Duration {
	if b == nil {
		return 0
	}
	return b.Wait
}
