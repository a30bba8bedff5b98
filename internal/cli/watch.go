package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/config"
)

// The pauses between attempts to reach the daemon again, doubling from
// the first to the last.
const (
	watchRetryFirst = 250 * time.Millisecond
	watchRetryMost  = 5 * time.Second
)

// watcher follows the daemon's GET /events for `patchd patches watch`.
type watcher struct {
	env    *Env
	cfg    *config.Config
	asJSON bool
	color  bool
	// last is the event_id of the last event printed; has says there is
	// one (or a start was given), so a reconnection resumes after it.
	last uint64
	has  bool
}

// runWatch is `patchd patches watch [--json] [--after N]`: one line per
// event as it happens (with --json the event's JSON, as GET /events and
// events.jsonl give it), following the daemon through dropped connections
// and restarts with Last-Event-ID, so no event is missed or printed
// twice, until interrupted. after < 0 starts with the next event.
func runWatch(ctx context.Context, env *Env, cfg *config.Config, asJSON bool, after int64) error {
	w := &watcher{env: env, cfg: cfg, asJSON: asJSON, color: useColor(env)}
	if after >= 0 {
		w.last, w.has = uint64(after), true
	}
	// A daemon that is not running at first is an error, as for the
	// other commands; once followed, it is waited for.
	c, err := newAPIClient(ctx, cfg)
	if err != nil {
		return err
	}
	delay := watchRetryFirst
	told := false
	for {
		connected, err := w.follow(ctx, c)
		if ctx.Err() != nil {
			return nil
		}
		var ee *ExitError
		if errors.As(err, &ee) {
			return err
		}
		if connected {
			delay, told = watchRetryFirst, false
		}
		if !told {
			fmt.Fprintf(env.Stderr, "patchd: the event stream ended (%v); reconnecting\n", err)
			told = true
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		delay = min(2*delay, watchRetryMost)
		// The daemon may have come back on another port, with another
		// token: read both again.
		if nc, err := newAPIClient(ctx, cfg); err == nil {
			c = nc
		}
	}
}

// follow reads one connection's stream, printing each event, and returns
// whether it was answered, and why it ended: an *ExitError when retrying
// cannot help (a refusal).
func (w *watcher) follow(ctx context.Context, c *apiClient) (connected bool, _ error) {
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+"/events", nil)
	if err != nil {
		return false, exit(ExitFailed, "watch: %v", err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if w.has {
		req.Header.Set("Last-Event-ID", strconv.FormatUint(w.last, 10))
	}
	req.Header.Set("Accept", "text/event-stream")
	// No timeout: a stream lasts as long as it lasts; the daemon's
	// heartbeats and its end on stop or restart end a dead one.
	resp, err := (&http.Client{Transport: c.http.Transport}).Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if resp.StatusCode >= 500 {
			return false, fmt.Errorf("HTTP %d: %s", resp.StatusCode, errorOf(body))
		}
		fmt.Fprintf(w.env.Stderr, "patchd: watch refused (HTTP %d): %s\n", resp.StatusCode, errorOf(body))
		return false, quiet(ExitFailed)
	}
	r := bufio.NewReader(resp.Body)
	var id, name, data string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				return true, errors.New("the daemon closed it")
			}
			return true, err
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line != "" {
			k, v, _ := strings.Cut(line, ":")
			v = strings.TrimPrefix(v, " ")
			switch k {
			case "id":
				id = v
			case "event":
				name = v
			case "data":
				data = v
			}
			continue
		}
		if name != "" {
			w.print(id, name, data)
		}
		id, name, data = "", "", ""
	}
}

// print shows one event and remembers its id.
func (w *watcher) print(id, name, data string) {
	if n, err := strconv.ParseUint(id, 10, 64); err == nil {
		w.last, w.has = n, true
	}
	if name == "reset" {
		var r struct{ Message, Do string }
		json.Unmarshal([]byte(data), &r)
		fmt.Fprintf(w.env.Stderr, "patchd: events were lost: %s; %s\n", r.Message, r.Do)
		return
	}
	if w.asJSON {
		fmt.Fprintln(w.env.Stdout, data)
		return
	}
	var e api.Event
	if err := json.Unmarshal([]byte(data), &e); err != nil {
		fmt.Fprintf(w.env.Stderr, "patchd: unreadable event %s: %v\n", id, err)
		return
	}
	fmt.Fprintln(w.env.Stdout, w.line(e))
}

// line is an event for a person: time, number, what happened, the patch,
// and why it failed.
func (w *watcher) line(e api.Event) string {
	what := strings.TrimPrefix(e.Event, "patch.")
	pad := strings.Repeat(" ", max(0, 11-len(what)))
	if w.color {
		if c := eventColor(what); c != "" {
			what = c + what + "\x1b[0m"
		}
	}
	s := fmt.Sprintf("%s  #%-6d %s%s %s", e.Time.Local().Format(time.TimeOnly), e.EventID, what, pad, e.ID)
	if e.Error != "" {
		msg := e.Error
		if e.Code != "" {
			msg = e.Code + ": " + msg
		}
		s += "  " + strings.Join(strings.Fields(msg), " ")
	}
	return s
}

// eventColor is the ANSI colour of an event: green done, red failed,
// yellow under way.
func eventColor(what string) string {
	switch what {
	case "applied":
		return "\x1b[32m"
	case "failed", "dropped":
		return "\x1b[31m"
	case "applying":
		return "\x1b[33m"
	case "reverted", "expired":
		return "\x1b[35m"
	}
	return "\x1b[36m"
}

// useColor says whether to colour output: only on a terminal, and never
// with NO_COLOR set (no-color.org) or TERM=dumb.
func useColor(env *Env) bool {
	if env.Getenv("NO_COLOR") != "" || env.Getenv("TERM") == "dumb" {
		return false
	}
	f, ok := env.Stdout.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
