package natsrun

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/config"
	"github.com/patchd/patchd/internal/jetq"
	"github.com/patchd/patchd/internal/jetq/jetqtest"
)

// holdFirst is a daemon's service whose first Submit of one patch id
// waits (a patch mid-apply) until released or its context ends.
type holdFirst struct {
	api.Service
	id      string
	name    string
	once    *sync.Once
	held    chan string // receives name when the Submit is held
	release chan struct{}
}

func (h holdFirst) Submit(ctx context.Context, req api.SubmitRequest) (api.SubmitResult, error) {
	var blk struct {
		ID string `json:"id"`
	}
	json.Unmarshal(req.Body, &blk)
	hold := false
	if blk.ID == h.id {
		h.once.Do(func() { hold = true })
	}
	if hold {
		h.held <- h.name
		select {
		case <-h.release:
		case <-ctx.Done():
			return api.SubmitResult{}, ctx.Err()
		}
	}
	return h.Service.Submit(ctx, req)
}

// TestStandby: two runners of one workspace over two state dirs (two
// machines, each with its own copy of the workspace): the queue's patches
// all go to the one NATS pins; the other is a standby that applies
// nothing and says so. The active one's connection lost mid-patch (its
// Submit held, never acknowledged), the standby takes over within
// --ack-wait (the pin's TTL is the same) and a margin: it gets the patch
// in flight again and every later one.
func TestStandby(t *testing.T) {
	srv := jetqtest.Server(t)
	nc, js := jetqtest.Connect(t, srv)
	const ackWait = time.Second
	const n = 6
	var once sync.Once
	held := make(chan string, 1)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	locals := map[string]*local{}
	runners := map[string]*Runner{}
	for _, name := range []string{"A", "B"} {
		l := newLocal(t)
		for i := range n {
			if err := os.WriteFile(filepath.Join(l.ws, fmt.Sprintf("g%d.txt", i)), []byte("x\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		locals[name] = l
		svc := holdFirst{Service: l.svc, id: "P3", name: name, once: &once, held: held, release: release}
		r, err := Start(Options{Service: svc, StateDir: l.state, Instance: name, StatusEvery: time.Second, MaxBodyBytes: 64 << 10,
			Logger: (&syncLog{}).logger(t).With("runner", name),
			Queue:  testQueue(srv.ClientURL(), "api", 3, ackWait)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			r.Stop(ctx)
		})
		runners[name] = r
	}
	patch := func(i int) []byte {
		b, _ := json.Marshal(map[string]any{"id": fmt.Sprintf("P%d", i), "role": "ci_patch", "target_file": fmt.Sprintf("g%d.txt", i),
			"patch": map[string]any{"search": "x\n", "replace": fmt.Sprintf("P%d\n", i)}})
		return b
	}
	applied := func(name string, i int) bool {
		b, _ := os.ReadFile(filepath.Join(locals[name].ws, fmt.Sprintf("g%d.txt", i)))
		return string(b) == fmt.Sprintf("P%d\n", i)
	}
	journal := func(name string) int {
		list, err := locals[name].svc.List(context.Background(), api.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return len(list.Patches)
	}
	// Both connected and pulling before the first patch.
	eventually(t, "both runners connected", func() (bool, string) {
		a, b := runners["A"].Status(), runners["B"].Status()
		return a.Connected && b.Connected && a.Error == "" && b.Error == "", fmt.Sprintf("%+v %+v", a, b)
	})
	for i := range 3 {
		publish(t, js, "api", fmt.Sprintf("P%d", i), patch(i))
	}
	eventually(t, "P0-P2 applied", func() (bool, string) {
		for i := range 3 {
			if !applied("A", i) && !applied("B", i) {
				return false, fmt.Sprintf("P%d applied nowhere", i)
			}
		}
		return workLeft(t, js) == 0, fmt.Sprintf("%d left", workLeft(t, js))
	})
	active, standby := "A", "B"
	if applied("B", 0) {
		active, standby = "B", "A"
	}
	if k := journal(standby); k != 0 || !applied(active, 1) || !applied(active, 2) {
		t.Fatalf("the standby %s took %d of the patches; want none (the active one is %s)", standby, k, active)
	}
	checkRoles(t, runners[active], runners[standby])
	// The gateway's control requests are answered by the active runner
	// only: a read of g0.txt shows its copy.
	eventually(t, "control requests answered by the active runner", func() (bool, string) {
		for range 30 {
			reply, err := nc.Request(jetq.CtlSubject("api", jetq.OpReadFile), []byte(`{"Path": "g0.txt"}`), 5*time.Second)
			if err != nil {
				return false, err.Error()
			}
			var ft api.FileText
			if err := jetq.DecodeReply(reply.Data, &ft); err != nil || !strings.Contains(ft.Text, "P0") {
				return false, fmt.Sprintf("read_file answered %+v, %v: by the standby", ft, err)
			}
		}
		return true, ""
	})

	// P3 held mid-apply at the active runner, whose connection is lost.
	publish(t, js, "api", "P3", patch(3))
	select {
	case got := <-held:
		if got != active {
			t.Fatalf("P3 went to %s, the standby", got)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("P3 was not delivered")
	}
	runners[active].nc.Load().Close()
	lost := time.Now()
	for i := 4; i < n; i++ {
		publish(t, js, "api", fmt.Sprintf("P%d", i), patch(i))
	}
	eventually(t, "the standby took over", func() (bool, string) {
		for i := 3; i < n; i++ {
			if !applied(standby, i) {
				return false, fmt.Sprintf("P%d not applied by %s", i, standby)
			}
		}
		return workLeft(t, js) == 0, fmt.Sprintf("%d left", workLeft(t, js))
	})
	took := time.Since(lost)
	// The held delivery comes again after AckWait, once the pin (whose
	// TTL is AckWait) has expired: both from the last pull or progress
	// signal before the loss.
	if limit := 2*ackWait + 5*time.Second; took > limit {
		t.Errorf("the standby took over after %v; want within %v", took, limit)
	}
	if k := journal(standby); k != n-3 {
		t.Errorf("the standby's journal holds %d patches; want %d (P3-P5)", k, n-3)
	}
	for i := 4; i < n; i++ {
		if applied(active, i) {
			t.Errorf("P%d was applied by the lost runner %s too", i, active)
		}
	}
	eventually(t, "the new active runner says so", func() (bool, string) {
		st := runners[standby].Status()
		return st.Pinned && !st.Standby, fmt.Sprintf("%+v", st)
	})
}

func checkRoles(t *testing.T, active, standby *Runner) {
	t.Helper()
	eventually(t, "the roles in Status", func() (bool, string) {
		a, s := active.Status(), standby.Status()
		return a.Pinned && !a.Standby && s.Standby && !s.Pinned, fmt.Sprintf("active %+v, standby %+v", a, s)
	})
}

func testQueue(url, ws string, maxDeliver int, ackWait time.Duration) config.Queue {
	return config.Queue{URLs: []string{url}, Workspace: ws, MaxDeliver: maxDeliver, AckWait: ackWait}
}
