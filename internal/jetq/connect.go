package jetq

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Options say how to reach NATS. Credentials are one of User/Password,
// CredsFile (a .creds file: JWT and seed) or NKeyFile (an nkey seed);
// CAFile trusts a server certificate's CA, CertFile/KeyFile present a
// client certificate.
type Options struct {
	// URL is one or more server URLs, comma-separated
	// (nats://host:4222); unused with InProcess.
	URL       string
	User      string
	Password  string
	CredsFile string
	NKeyFile  string
	CAFile    string
	CertFile  string
	KeyFile   string
	// Name is the connection's name, as the server's monitoring shows it.
	Name string
	// InProcess, when set, connects to an embedded server in this
	// process without a socket (nats.InProcessServer).
	InProcess nats.InProcessConnProvider
	// InboxPrefix, when set, replaces "_INBOX" in the connection's reply
	// subjects: a runner's is RunnerInbox(ws), the only inbox natsconf's
	// permissions let it subscribe to.
	InboxPrefix string
}

// Connect connects to NATS and returns the connection and its JetStream
// context. It waits at most until ctx ends (or 10 s) for the first
// connection, and reconnects for ever after one is lost. The caller
// closes the connection (Drain or Close).
func Connect(ctx context.Context, o Options) (*nats.Conn, jetstream.JetStream, error) {
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(false),
	}
	timeout := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	opts = append(opts, nats.Timeout(timeout))
	if o.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(o.InboxPrefix))
	}
	switch {
	case o.CredsFile != "" && (o.NKeyFile != "" || o.User != ""):
		return nil, nil, errors.New("nats: credentials: give one of a user, a creds file or an nkey seed file")
	case o.NKeyFile != "" && o.User != "":
		return nil, nil, errors.New("nats: credentials: give one of a user, a creds file or an nkey seed file")
	case o.CredsFile != "":
		opts = append(opts, nats.UserCredentials(o.CredsFile))
	case o.NKeyFile != "":
		opt, err := nats.NkeyOptionFromSeed(o.NKeyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("nats: nkey seed file: %w", err)
		}
		opts = append(opts, opt)
	case o.User != "":
		opts = append(opts, nats.UserInfo(o.User, o.Password))
	}
	if o.CAFile != "" {
		opts = append(opts, nats.RootCAs(o.CAFile))
	}
	if o.CertFile != "" || o.KeyFile != "" {
		if o.CertFile == "" || o.KeyFile == "" {
			return nil, nil, errors.New("nats: a client certificate needs both its certificate and its key file")
		}
		opts = append(opts, nats.ClientCert(o.CertFile, o.KeyFile))
	}
	url := o.URL
	if o.InProcess != nil {
		opts = append(opts, nats.InProcessServer(o.InProcess))
	} else if url == "" {
		return nil, nil, errors.New("nats: no server URL")
	}
	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(url, opts...)
		done <- result{nc, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		go func() {
			if r := <-done; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, nil, fmt.Errorf("nats: connect to %s: %w", Redact(url), ctx.Err())
	}
	if r.err != nil {
		return nil, nil, fmt.Errorf("nats: connect to %s: %w", Redact(url), r.err)
	}
	js, err := jetstream.New(r.nc)
	if err != nil {
		r.nc.Close()
		return nil, nil, fmt.Errorf("nats: jetstream: %w", err)
	}
	return r.nc, js, nil
}
