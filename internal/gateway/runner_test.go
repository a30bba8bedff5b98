package gateway_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/config"
	"github.com/patchd/patchd/internal/jetq/jetqtest"
	"github.com/patchd/patchd/internal/natsrun"
	"github.com/patchd/patchd/internal/patchsvc"
	"github.com/patchd/patchd/internal/store"
	"github.com/patchd/patchd/internal/worker"
	"github.com/patchd/patchd/internal/workspace"
)

// runnerOf starts a daemon's service (a real store, workspace and
// worker) over a workspace holding f.txt = "v0\n", and a real runner of
// it for workspace ws on the NATS server at url.
func runnerOf(t *testing.T, url, ws string) (wsDir string) {
	t.Helper()
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	wsDir = filepath.Join(dir, "ws")
	os.MkdirAll(state, 0o700)
	os.MkdirAll(wsDir, 0o755)
	if err := os.WriteFile(filepath.Join(wsDir, "f.txt"), []byte("v0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(state, "queue"), store.Options{EventsPath: filepath.Join(state, "events.jsonl")})
	if err != nil {
		t.Fatal(err)
	}
	w, err := workspace.Open(wsDir)
	if err != nil {
		t.Fatal(err)
	}
	wk := worker.New(worker.Options{Store: st, Workspace: w, SummariesDir: filepath.Join(state, "summaries")})
	svc := patchsvc.New(patchsvc.Options{Store: st, Workspace: w, Worker: wk})
	ctx, cancel := context.WithCancel(context.Background())
	worked := make(chan struct{})
	go func() { wk.Run(ctx); close(worked) }()
	r, err := natsrun.Start(natsrun.Options{Service: svc, StateDir: state, Instance: "test", StatusEvery: 200 * time.Millisecond,
		MaxBodyBytes: 64 << 10, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Queue: config.Queue{URLs: []string{url}, Workspace: ws, MaxDeliver: 3, AckWait: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		r.Stop(sctx)
		cancel()
		<-worked
		st.Close()
		w.Close()
	})
	return wsDir
}

// TestWithRunner: the gateway over a real runner: a patch submitted to
// the gateway is applied by the runner, and the gateway's Wait, Get,
// ReadFile, Revert and Status answer what the runner's daemon did.
func TestWithRunner(t *testing.T) {
	srv := jetqtest.Server(t)
	_, js := jetqtest.Connect(t, srv)
	s := newService(t, js, "web")
	wsDir := runnerOf(t, srv.ClientURL(), "web")
	ctx := ctxT(t)
	sub, err := s.Subscribe(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"id":"r.1","role":"test","target_file":"f.txt","patch":{"search":"v0\n","replace":"v1\n"},"workspace":"web"}`)
	if r, err := s.Submit(ctx, api.SubmitRequest{Body: body}); err != nil || r.State != api.StateQueued {
		t.Fatalf("Submit = %+v, %v", r, err)
	}
	// The submission shows once: the gateway's event, not the runner's
	// own as well.
	var names []string
	for e := range sub.Events() {
		if e.ID == "r.1" {
			names = append(names, e.Event)
		}
		if e.Event == "patch.applied" {
			break
		}
	}
	if strings.Join(names, " ") != "patch.submitted patch.applying patch.applied" {
		t.Fatalf("events of r.1 = %q (err %v), want patch.submitted patch.applying patch.applied", names, sub.Err())
	}
	v, err := s.Wait(ctx, "r.1")
	if err != nil || v.State != api.StateApplied || v.Workspace != "web" {
		t.Fatalf("Wait = %+v, %v", v, err)
	}
	if b, _ := os.ReadFile(filepath.Join(wsDir, "f.txt")); string(b) != "v1\n" {
		t.Fatalf("f.txt = %q", b)
	}
	if v, err := s.Get(ctx, "r.1"); err != nil || v.State != api.StateApplied || !strings.Contains(v.Diff, "+v1") {
		t.Fatalf("Get = %+v, %v", v, err)
	}
	if f, err := s.ReadFile(ctx, api.ReadFileRequest{Path: "f.txt"}); err != nil || !strings.Contains(f.Text, "v1") {
		t.Fatalf("ReadFile = %+v, %v", f, err)
	}
	if r, err := s.Submit(ctx, api.SubmitRequest{Body: body}); err != nil || !r.Duplicate || r.State != api.StateApplied {
		t.Fatalf("resend = %+v, %v", r, err)
	}
	if v, err := s.Revert(ctx, "r.1"); err != nil || v.State != api.StateReverted {
		t.Fatalf("Revert = %+v, %v", v, err)
	}
	if b, _ := os.ReadFile(filepath.Join(wsDir, "f.txt")); string(b) != "v0\n" {
		t.Fatalf("f.txt after the revert = %q", b)
	}
	for {
		st, err := s.Status(ctx)
		if err == nil && st.Queue.Reverted == 1 && st.LastEventID > 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("Status = %+v, %v; want the runner's reverted patch", st, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
