package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// load describes one run of the load generator: clients concurrent
// senders, each on its own keep-alive connection, each sending its next
// request as soon as the last one was answered.
type load struct {
	url     string
	token   string
	clients int
	warmup  time.Duration // sent but not counted
	dur     time.Duration // counted; the run ends by itself after warmup+dur
	body    func(client, n int) []byte
	rssPID  int // sample this process's VmRSS while counting; 0 for none
	// progress, if set, counts accepted requests as they happen.
	progress *atomic.Int64
	// each, if set, is told of every counted request: when it was sent,
	// when it was answered, and whether it was accepted. It is called
	// from the clients' goroutines at once.
	each func(sent, answered time.Time, ok bool)
	// gap, if set, is how long each client waits after an answer before
	// it sends its next request.
	gap time.Duration
}

// loadResult is what one load run saw. Only requests sent and answered
// within the counted window are counted.
type loadResult struct {
	clients int
	ok      int // answered 202
	failed  int // any other answer, or no answer
	window  time.Duration
	lat     []time.Duration // of the successful requests, sorted
	maxRSS  int64
	maxAnon int64         // the largest anonymous part of the resident size
	cpu     time.Duration // CPU time of rssPID during the window
	errs    []string      // the first few failures
}

// cpuPerReq is the server's CPU time per accepted request.
func (r loadResult) cpuPerReq() time.Duration {
	if r.ok == 0 {
		return 0
	}
	return r.cpu / time.Duration(r.ok)
}

func (r loadResult) rate() float64 {
	if r.window <= 0 {
		return 0
	}
	return float64(r.ok) / r.window.Seconds()
}

func (r loadResult) p(q float64) time.Duration { return percentile(r.lat, q) }

// percentile is the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

type clientStats struct {
	ok, failed int
	lat        []time.Duration
	errs       []string
}

// runLoad runs l until its time is up or ctx ends, whichever is first.
func runLoad(ctx context.Context, l load) loadResult {
	tr := &http.Transport{
		MaxIdleConns:        2 * l.clients,
		MaxIdleConnsPerHost: 2 * l.clients,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	start := time.Now()
	from := start.Add(l.warmup)
	end := from.Add(l.dur)
	stats := make([]clientStats, l.clients)
	var wg sync.WaitGroup
	for c := range l.clients {
		wg.Go(func() {
			st := &stats[c]
			for n := 0; ctx.Err() == nil; n++ {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				ok, msg := send(hc, l.url, l.token, l.body(c, n))
				t1 := time.Now()
				if t0.Before(from) || t1.After(end) {
					continue
				}
				if ok && l.progress != nil {
					l.progress.Add(1)
				}
				if l.each != nil {
					l.each(t0, t1, ok)
				}
				if l.gap > 0 {
					time.Sleep(l.gap)
				}
				if ok {
					st.ok++
					st.lat = append(st.lat, t1.Sub(t0))
				} else {
					st.failed++
					if len(st.errs) < 3 {
						st.errs = append(st.errs, t1.Format("15:04:05.000 ")+msg)
					}
				}
			}
		})
	}

	var maxRSS, maxAnon int64
	var cpuFrom time.Duration
	done := make(chan struct{})
	var sampler sync.WaitGroup
	if l.rssPID > 0 {
		sampler.Go(func() {
			select {
			case <-time.After(time.Until(from)):
				cpuFrom = cpuTime(l.rssPID)
			case <-done:
			}
		})
		sampler.Go(func() {
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case now := <-t.C:
					if now.After(from) {
						maxRSS = max(maxRSS, rss(l.rssPID))
						maxAnon = max(maxAnon, rssAnon(l.rssPID))
					}
				}
			}
		})
	}
	wg.Wait()
	var cpuTo time.Duration
	if l.rssPID > 0 {
		cpuTo = cpuTime(l.rssPID)
	}
	close(done)
	sampler.Wait()

	stopped := time.Now()
	if stopped.After(end) {
		stopped = end
	}
	res := loadResult{clients: l.clients, maxRSS: maxRSS, maxAnon: maxAnon, window: stopped.Sub(from)}
	if cpuFrom > 0 && cpuTo > cpuFrom {
		res.cpu = cpuTo - cpuFrom
	}
	for _, st := range stats {
		res.ok += st.ok
		res.failed += st.failed
		res.lat = append(res.lat, st.lat...)
		if len(res.errs) < 5 {
			res.errs = append(res.errs, st.errs...)
		}
	}
	slices.Sort(res.lat)
	return res
}

// send POSTs one body and reports whether it was accepted (202), or why not.
func send(hc *http.Client, url, token string, body []byte) (ok bool, why string) {
	req, err := http.NewRequest("POST", url, bytes.NewReader(body))
	if err != nil {
		return false, err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusAccepted {
		io.Copy(io.Discard, resp.Body)
		return true, ""
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
	return false, fmt.Sprintf("%d %s", resp.StatusCode, bytes.TrimSpace(data))
}

// patchBody builds realistic ~450-byte patch blocks: the seed's fields, a
// description and metadata as a custom GPT sends them, a unique id, and a
// regex that always matches the VERSION line of target.
type patchBody struct {
	prefix, mid, suffix []byte
}

func newPatchBody(target string) patchBody {
	return patchBody{
		prefix: []byte(`{"id":"`),
		mid: []byte(`","role":"ui_patch","target_file":"` + target + `",` +
			`"description":"Show the build id in the page footer so that testers can tell which build they are looking at; keeps the version string in one place.",` +
			`"patch":{"pattern":"VERSION = \"[^\"]*\"","replacement":"VERSION = \"`),
		suffix: []byte(`\""},` +
			`"metadata":{"author":"gpt","source":"custom-gpt","phase":"P8.13.22","timestamp":"2025-07-29T22:48:00Z","reason":"footer build id"}}`),
	}
}

// make returns the block with the given id (also the new VERSION).
func (p patchBody) make(id string) []byte {
	b := make([]byte, 0, len(p.prefix)+len(p.mid)+len(p.suffix)+2*len(id))
	b = append(b, p.prefix...)
	b = append(b, id...)
	b = append(b, p.mid...)
	b = append(b, id...)
	return append(b, p.suffix...)
}

// ids numbers patches uniquely per point, client and request.
func patchID(point string, client, n int) string {
	return point + "-" + strconv.Itoa(client) + "-" + strconv.Itoa(n)
}

// appFile is the small source file the load's patches target.
const appFile = `"""A small web app."""

VERSION = "0"


def footer():
    return "build " + VERSION
`
