package natsconf

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nats-io/nkeys"
	"golang.org/x/crypto/bcrypt"

	"github.com/patchd/patchd/internal/fsutil"
)

// Mode is how users prove who they are.
type Mode int

const (
	// Password users present a generated password; the server's
	// configuration holds only its bcrypt hash.
	Password Mode = iota
	// NKey users sign the server's challenge with an nkey seed; the
	// configuration holds only the public key.
	NKey
)

// String names the mode as the --nats-auth flag spells it.
func (m Mode) String() string {
	if m == NKey {
		return "nkey"
	}
	return "password"
}

// ParseMode reads "password" or "nkey".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "password", "":
		return Password, nil
	case "nkey":
		return NKey, nil
	}
	return 0, fmt.Errorf("nats auth %q: want password or nkey", s)
}

// User is one NATS user with its secret.
type User struct {
	// Name is GatewayUser or RunnerUser(Workspace).
	Name string
	// Workspace is the runner's workspace; empty for the gateway.
	Workspace string
	// Password is the plain password (Password mode).
	Password string
	// Seed is the nkey seed (NKey mode); PublicKey its public key.
	Seed      []byte
	PublicKey string
	// Permissions are what the server lets the user do.
	Permissions Permissions
}

// File is the name of the user's secret file in a credentials directory:
// <name>.password or <name>.nk (an nkey seed, as nats.NkeyOptionFromSeed
// reads it).
func (u *User) File() string {
	if u.Seed != nil {
		return u.Name + ".nk"
	}
	return u.Name + ".password"
}

// Secret is the content of the user's secret file.
func (u *User) Secret() []byte {
	if u.Seed != nil {
		return append([]byte(nil), u.Seed...)
	}
	return []byte(u.Password + "\n")
}

// Model is patchd's NATS security: the gateway, the runners (sorted by
// workspace) and the password the cluster's routes use.
type Model struct {
	Mode    Mode
	Gateway User
	Runners []User
	// RoutePassword authenticates the servers of a cluster to each other
	// (user "route"); it appears in plain in a clustered configuration.
	RoutePassword string
}

// RouteUser is the user the servers of a cluster connect their routes as.
const RouteUser = "route"

// Generate makes new credentials for the gateway and for a runner of
// each workspace.
func Generate(mode Mode, workspaces []string) (*Model, error) {
	ws, err := sorted(workspaces)
	if err != nil {
		return nil, err
	}
	m := &Model{Mode: mode, RoutePassword: rand.Text()}
	if m.Gateway, err = newUser(mode, GatewayUser, ""); err != nil {
		return nil, err
	}
	for _, w := range ws {
		u, err := newUser(mode, RunnerUser(w), w)
		if err != nil {
			return nil, err
		}
		m.Runners = append(m.Runners, u)
	}
	return m, nil
}

// newUser makes a user with a fresh secret and its permissions.
func newUser(mode Mode, name, ws string) (User, error) {
	u := User{Name: name, Workspace: ws}
	if ws == "" {
		u.Permissions = GatewayPermissions()
	} else {
		p, err := RunnerPermissions(ws)
		if err != nil {
			return User{}, err
		}
		u.Permissions = p
	}
	if mode == Password {
		u.Password = rand.Text()
		return u, nil
	}
	kp, err := nkeys.CreateUser()
	if err != nil {
		return User{}, fmt.Errorf("nkey for %s: %w", name, err)
	}
	if u.Seed, err = kp.Seed(); err != nil {
		return User{}, fmt.Errorf("nkey seed for %s: %w", name, err)
	}
	if u.PublicKey, err = kp.PublicKey(); err != nil {
		return User{}, fmt.Errorf("nkey public key for %s: %w", name, err)
	}
	return u, nil
}

// Runner returns the runner user of workspace ws, or nil.
func (m *Model) Runner(ws string) *User {
	for i := range m.Runners {
		if m.Runners[i].Workspace == ws {
			return &m.Runners[i]
		}
	}
	return nil
}

// Users returns the gateway and the runners.
func (m *Model) Users() []*User {
	out := []*User{&m.Gateway}
	for i := range m.Runners {
		out = append(out, &m.Runners[i])
	}
	return out
}

// routeFile is the route password's file in a credentials directory.
const routeFile = "route.password"

// Save writes each user's secret to dir (created 0700), one file per user
// named by User.File, mode 0600, each written durably.
func (m *Model) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("nats credentials dir: %w", err)
	}
	for _, u := range m.Users() {
		if err := fsutil.WriteFileAtomic(filepath.Join(dir, u.File()), u.Secret(), 0o600); err != nil {
			return fmt.Errorf("nats credentials of %s: %w", u.Name, err)
		}
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(dir, routeFile), []byte(m.RoutePassword+"\n"), 0o600); err != nil {
		return fmt.Errorf("nats route password: %w", err)
	}
	return nil
}

// LoadOrGenerate reads the credentials saved in dir and adds a runner for
// each workspace that has none; with no credentials in dir, it generates
// all of them. Whatever it generated is saved before it returns. mode
// only applies to what is generated: a directory keeps its mode.
func LoadOrGenerate(dir string, mode Mode, workspaces []string) (*Model, error) {
	ws, err := sorted(workspaces)
	if err != nil {
		return nil, err
	}
	m, err := load(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if m, err = Generate(mode, ws); err != nil {
			return nil, err
		}
		return m, m.Save(dir)
	case err != nil:
		return nil, err
	}
	added := false
	for _, w := range ws {
		if m.Runner(w) != nil {
			continue
		}
		u, err := newUser(m.Mode, RunnerUser(w), w)
		if err != nil {
			return nil, err
		}
		m.Runners = append(m.Runners, u)
		added = true
	}
	if added {
		m.sortRunners()
		return m, m.Save(dir)
	}
	return m, nil
}

// sortRunners orders the runners by workspace.
func (m *Model) sortRunners() {
	slices.SortFunc(m.Runners, func(a, b User) int { return strings.Compare(a.Workspace, b.Workspace) })
}

// load reads a credentials directory written by Save; fs.ErrNotExist when
// it holds no gateway credentials.
func load(dir string) (*Model, error) {
	m := &Model{}
	route, err := os.ReadFile(filepath.Join(dir, routeFile))
	if err != nil {
		return nil, fmt.Errorf("nats credentials in %s: %w", dir, err)
	}
	m.RoutePassword = strings.TrimSpace(string(route))
	gw, err := loadUser(dir, GatewayUser, "")
	if err != nil {
		return nil, err
	}
	m.Gateway = gw
	if gw.Seed != nil {
		m.Mode = NKey
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("nats credentials in %s: %w", dir, err)
	}
	for _, e := range entries {
		name := strings.TrimSuffix(strings.TrimSuffix(e.Name(), ".nk"), ".password")
		ws, ok := strings.CutPrefix(name, RunnerUserPrefix)
		if !ok || name == e.Name() || checkWorkspace(ws) != nil || m.Runner(ws) != nil {
			continue
		}
		u, err := loadUser(dir, name, ws)
		if err != nil {
			return nil, err
		}
		m.Runners = append(m.Runners, u)
	}
	m.sortRunners()
	return m, nil
}

// loadUser reads one user's secret file, <name>.nk or <name>.password.
func loadUser(dir, name, ws string) (User, error) {
	u := User{Name: name, Workspace: ws}
	if ws == "" {
		u.Permissions = GatewayPermissions()
	} else {
		p, err := RunnerPermissions(ws)
		if err != nil {
			return User{}, err
		}
		u.Permissions = p
	}
	seed, err := os.ReadFile(filepath.Join(dir, name+".nk"))
	if err == nil {
		kp, err := nkeys.FromSeed(seed)
		if err != nil {
			return User{}, fmt.Errorf("nats credentials %s: %w", filepath.Join(dir, name+".nk"), err)
		}
		u.Seed = seed
		if u.PublicKey, err = kp.PublicKey(); err != nil {
			return User{}, fmt.Errorf("nats credentials %s: %w", filepath.Join(dir, name+".nk"), err)
		}
		return u, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return User{}, fmt.Errorf("nats credentials of %s: %w", name, err)
	}
	pw, err := os.ReadFile(filepath.Join(dir, name+".password"))
	if err != nil {
		return User{}, fmt.Errorf("nats credentials of %s: %w", name, err)
	}
	u.Password = strings.TrimSpace(string(pw))
	if u.Password == "" {
		return User{}, fmt.Errorf("nats credentials %s: empty", filepath.Join(dir, name+".password"))
	}
	return u, nil
}

// hash is the bcrypt hash of a password, as the server's configuration
// holds it.
func hash(password string, cost int) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return "", fmt.Errorf("hash nats password: %w", err)
	}
	return string(h), nil
}

// CredentialsDir is where a gateway keeps its NATS users' secret files:
// nats-credentials under its state directory.
func CredentialsDir(stateDir string) string { return filepath.Join(stateDir, "nats-credentials") }
