package natsrun

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	natstest "github.com/nats-io/nats-server/v2/test"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/config"
	"github.com/patchd/patchd/internal/jetq"
	"github.com/patchd/patchd/internal/natsconf"
)

// TestUnderPermissions: with the users and permissions natsconf generates
// (a password, an nkey seed), the runner of a workspace does all it does
// (consume, heartbeat, ack, events, KV views and record, dead letters)
// and nothing its user may not: no permission violation is logged.
func TestUnderPermissions(t *testing.T) {
	for _, mode := range []natsconf.Mode{natsconf.Password, natsconf.NKey} {
		t.Run(mode.String(), func(t *testing.T) {
			m, err := natsconf.Generate(mode, []string{"p"})
			if err != nil {
				t.Fatal(err)
			}
			opts, err := m.Options(natsconf.Server{Listen: "127.0.0.1:-1", StoreDir: t.TempDir(), BcryptCost: 4})
			if err != nil {
				t.Fatal(err)
			}
			srv := natstest.RunServer(opts)
			t.Cleanup(srv.Shutdown)
			dir := t.TempDir()
			secret := func(u *natsconf.User) string {
				p := filepath.Join(dir, u.File())
				if err := os.WriteFile(p, u.Secret(), 0o600); err != nil {
					t.Fatal(err)
				}
				return p
			}
			gw := jetq.Options{URL: srv.ClientURL(), User: m.Gateway.Name}
			if mode == natsconf.Password {
				gw.Password = m.Gateway.Password
			} else {
				gw.User, gw.NKeyFile = "", secret(&m.Gateway)
			}
			ctx := context.Background()
			nc, js, err := jetq.Connect(ctx, gw)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(nc.Close)
			if err := jetq.Ensure(ctx, js, jetq.EnsureOptions{}); err != nil {
				t.Fatal(err)
			}

			ru := m.Runner("p")
			q := config.Queue{URLs: []string{srv.ClientURL()}, Workspace: "p", MaxDeliver: 2, AckWait: 300 * time.Millisecond}
			if mode == natsconf.Password {
				q.User, q.PasswordFile = ru.Name, secret(ru)
			} else {
				q.Creds = secret(ru)
			}
			l := newLocal(t)
			logs := &syncLog{}
			r, err := Start(Options{Service: l.svc, StateDir: l.state, Instance: "perm", StatusEvery: time.Second, Queue: q, Logger: logs.logger(t)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				r.Stop(ctx)
			})
			publish(t, js, "p", "bad", []byte(`{"id": "bad"}`))
			publish(t, js, "p", "P1", block("P1", "v0\n", "v1\n"))
			eventually(t, "the patch applied and the poison buried", func() (bool, string) {
				b, _ := os.ReadFile(filepath.Join(l.ws, "f.txt"))
				v, err := view(t, js, "p", "P1")
				d, derr := view(t, js, "p", "bad")
				return string(b) == "v1\n" && err == nil && v.State == api.StateApplied && derr == nil && d.Code == jetq.CodeDeadLetter && workLeft(t, js) == 0,
					fmt.Sprintf("file %q, view %+v %v, dead %+v %v", b, v, err, d, derr)
			})
			kv, err := js.KeyValue(ctx, jetq.BucketWorkspaces)
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, "the workspace's record", func() (bool, string) {
				_, err := kv.Get(ctx, "p")
				return err == nil, fmt.Sprint(err)
			})
			reply, err := nc.Request(jetq.CtlSubject("p", jetq.OpReadFile), []byte(`{"Path": "f.txt"}`), 5*time.Second)
			var ft api.FileText
			if err != nil || jetq.DecodeReply(reply.Data, &ft) != nil || ft.TotalLines != 1 {
				t.Errorf("read_file through the runner: %v %+v", err, ft)
			}
			// A stop gives the pin up (CONSUMER.UNPIN).
			if !r.Status().Pinned {
				t.Errorf("Status() = %+v, want pinned: the runner took the workspace's patches", r.Status())
			}
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			r.Stop(sctx)
			cancel()
			if s := logs.String(); !strings.Contains(s, "this runner is the workspace's active one") || strings.Contains(s, "give up the pin") {
				t.Errorf("the runner was not pinned, or did not give its pin up at stop:\n%s", s)
			}
			if s := logs.String(); containsAny(s, "Permissions Violation", "permissions violation", "Authorization Violation") {
				t.Errorf("the runner hit its permissions:\n%s", s)
			}
		})
	}
}
