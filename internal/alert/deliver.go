package alert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/patchd/patchd/internal/auth"
	"github.com/patchd/patchd/internal/config"
	"github.com/patchd/patchd/internal/version"
)

// The headers of a generic message. The signature is the intake's format
// (auth.SignatureHeader: "sha256=" and the hex HMAC-SHA256), keyed with
// the receiver's secret, of the timestamp, a '.', and the body: a
// receiver recomputes it and refuses a timestamp more than a few minutes
// old, so that a message captured once cannot be replayed later.
const (
	SignatureHeader = auth.SignatureHeader // sha256=<hex of HMAC-SHA256(secret, timestamp + "." + body)>
	TimestampHeader = "X-Patchd-Timestamp" // Unix seconds when the attempt was signed
	EventHeader     = "X-Patchd-Event"     // patch.failed, …
	DeliveryHeader  = "X-Patchd-Delivery"  // "<event_id>/<receiver id>": the same for every attempt
)

// Sign returns the X-Patchd-Signature value of a generic message: the
// intake's signature (auth.Sign) of timestamp + "." + body.
func Sign(secret string, timestamp int64, body []byte) string {
	signed := append([]byte(strconv.FormatInt(timestamp, 10)+"."), body...)
	return auth.Sign(signed, secret)
}

// maxAnswer bounds what is read of a receiver's answer.
const maxAnswer = 64 << 10

// newClient is the HTTP client of deliveries: a timeout per attempt, no
// proxy from the environment's surprises beyond the standard ones, and
// redirects followed only to the same scheme and host (a webhook moved
// elsewhere must be configured again, not followed with its body).
func newClient(timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = timeout
	tr.MaxResponseHeaderBytes = 64 << 10
	return &http.Client{
		Timeout:   timeout,
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("too many redirects")
			}
			if req.URL.Scheme != via[0].URL.Scheme || req.URL.Host != via[0].URL.Host {
				return errors.New("redirected to another host: not followed")
			}
			return nil
		},
	}
}

// permanent is an answer no retry will change (a 4xx other than 408 and
// 429): the message is given up at once.
type permanent struct{ error }

// deliver sends a receiver's pending messages, oldest first, until ctx
// ends; hard cuts an attempt in flight.
func (o *Outbox) deliver(ctx, hard context.Context, r *receiver) {
	wait := time.Duration(0)
	for ctx.Err() == nil {
		o.mu.Lock()
		var m *message
		for _, p := range o.j.pending {
			if p.Receiver == r.id {
				m = p
				break
			}
		}
		o.mu.Unlock()
		if m == nil {
			select {
			case <-ctx.Done():
				return
			case <-r.wake:
			}
			continue
		}
		if time.Since(m.Created) > o.opts.MaxAge {
			o.finish(r, m, "gave_up", nil)
			continue
		}
		err := o.send(hard, r, m)
		var perm permanent
		switch {
		case err == nil:
			o.finish(r, m, "delivered", nil)
			wait = 0
			continue
		case errors.As(err, &perm):
			o.finish(r, m, "gave_up", err)
			continue
		}
		if ctx.Err() != nil {
			return // cut by Close: it stays pending
		}
		wait = min(max(2*wait, o.opts.FirstRetry), o.opts.MaxRetry)
		d := wait/2 + rand.N(wait/2+1)
		o.mu.Lock()
		r.st.Failed++
		r.st.LastError, r.st.LastErrorAt = err.Error(), time.Now().UTC()
		o.mu.Unlock()
		o.log.Warn("notify: delivery failed; retrying", "receiver", r.name, "patch", m.Patch, "event", m.Event, "err", err, "retry_in", d.Round(time.Millisecond).String())
		sleep(ctx, d)
	}
}

// finish records a message's end in the outbox and the receiver's counts.
func (o *Outbox) finish(r *receiver, m *message, result string, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := time.Now().UTC()
	switch result {
	case "delivered":
		r.st.Delivered++
		r.st.LastSuccessAt = now
	case "gave_up":
		r.st.GaveUp++
		if err != nil {
			r.st.LastError, r.st.LastErrorAt = err.Error(), now
		}
	}
	if jerr := o.j.done(m, result); jerr != nil {
		o.log.Error("notify: record a finished message", "receiver", r.name, "err", jerr)
	}
	switch result {
	case "delivered":
		o.log.Debug("notify: delivered", "receiver", r.name, "patch", m.Patch, "event", m.Event)
	case "gave_up":
		reason := fmt.Sprintf("older than %s", o.opts.MaxAge)
		if err != nil {
			reason = err.Error()
		}
		o.log.Error("notify: message given up", "receiver", r.name, "patch", m.Patch, "event", m.Event, "event_id", m.EventID, "reason", reason)
	}
}

// send makes one attempt. Its error never holds the URL.
func (o *Outbox) send(ctx context.Context, r *receiver, m *message) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(m.Body))
	if err != nil {
		return permanent{errors.New("the URL cannot be requested")}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "patchd/"+version.Version)
	if r.Kind == config.NotifyGeneric {
		req.Header.Set(EventHeader, m.Event)
		req.Header.Set(DeliveryHeader, m.Key)
		if r.Secret != "" {
			ts := time.Now().Unix()
			req.Header.Set(TimestampHeader, strconv.FormatInt(ts, 10))
			req.Header.Set(SignatureHeader, Sign(r.Secret, ts, m.Body))
		}
	}
	resp, err := o.client.Do(req)
	if err != nil {
		return errors.New(redactErr(err))
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	e := fmt.Errorf("answered %s: %s", resp.Status, printable(string(answer), 200))
	if resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests {
		return permanent{e}
	}
	return e
}

// redactErr is an HTTP client's error without the URL it names.
func redactErr(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timed out"
	}
	return printable(err.Error(), 300)
}

// printable keeps the first n bytes of s, control characters replaced.
func printable(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.TrimSpace(s))
	return cut(s, n)
}
