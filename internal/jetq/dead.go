package jetq

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
