package server

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/patchd/patchd/internal/api"
)

// slowSubmits is a service whose Submit says so on in, then waits for a
// value on release before it goes on: a request being validated, for as
// long as the test likes.
type slowSubmits struct {
	api.Service
	in, release chan struct{}
}

func (s *slowSubmits) Submit(ctx context.Context, req api.SubmitRequest) (api.SubmitResult, error) {
	s.in <- struct{}{}
	<-s.release
	return s.Service.Submit(ctx, req)
}

// waitReturns runs WaitWebhooksIdle(max) and returns a channel closed when
// it has returned.
func waitReturns(s *Server, max time.Duration) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		s.WaitWebhooksIdle(context.Background(), max)
		close(done)
	}()
	return done
}

// TestWaitWebhooksIdle: the worker's wait returns at once when no webhook
// request is being handled, waits while one is being validated, returns
// when it is answered, and never waits longer than its bound.
func TestWaitWebhooksIdle(t *testing.T) {
	inCheck, release := make(chan struct{}), make(chan struct{})
	f := newFixture(t, func(o *Options) {
		o.Service = &slowSubmits{Service: o.Service, in: inCheck, release: release}
	})
	select {
	case <-waitReturns(f.srv, time.Minute):
	case <-time.After(10 * time.Second):
		t.Fatal("WaitWebhooksIdle with no request waited")
	}

	answered := make(chan int)
	go func() { answered <- f.post(req{body: block("A1")}).Code }()
	<-inCheck // the request is being validated
	done := waitReturns(f.srv, time.Minute)
	select {
	case <-done:
		t.Fatal("WaitWebhooksIdle returned while a request was being validated")
	case <-time.After(50 * time.Millisecond): // a wait that should go on; not a readiness poll
	}
	release <- struct{}{}
	if code := <-answered; code != 202 {
		t.Fatalf("POST = %d, want 202", code)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("WaitWebhooksIdle did not return after the request was answered")
	}

	// Busy for good: the bound ends the wait.
	go func() { answered <- f.post(req{body: block("A2")}).Code }()
	<-inCheck
	start := time.Now()
	<-waitReturns(f.srv, 30*time.Millisecond)
	if d := time.Since(start); d < 30*time.Millisecond || d > 5*time.Second {
		t.Errorf("WaitWebhooksIdle(30ms) while busy returned after %v", d)
	}
	release <- struct{}{}
	<-answered
}

// TestStalledBodyIsNotActivity: a sender whose body never finishes does not
// count as a request being handled, so it cannot hold up the worker.
func TestStalledBodyIsNotActivity(t *testing.T) {
	f := newFixture(t, nil)
	pr, pw := io.Pipe()
	defer pw.Close()
	hr := httptest.NewRequest("POST", "/webhook", pr)
	hr.Header.Set("Authorization", "Bearer "+testToken)
	hr.Header.Set("Content-Type", "application/json")
	go f.srv.ServeHTTP(httptest.NewRecorder(), hr)
	pw.Write([]byte(strings.Repeat(" ", 100))) // the handler is reading the body now
	select {
	case <-waitReturns(f.srv, time.Minute):
	case <-time.After(10 * time.Second):
		t.Fatal("WaitWebhooksIdle waited for a request whose body is still arriving")
	}
}
