package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// procSet remembers every process and daemon workspace a scenario started,
// so that none outlives the benchmark, whatever fails.
type procSet struct {
	mu         sync.Mutex
	cmds       []*exec.Cmd
	workspaces map[string]string // workspace -> patchd binary
}

func (p *procSet) addCmd(c *exec.Cmd) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cmds = append(p.cmds, c)
}

func (p *procSet) addWorkspace(ws, bin string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.workspaces == nil {
		p.workspaces = map[string]string{}
	}
	p.workspaces[ws] = bin
}

// killAll stops the daemons of every workspace (they are detached, not our
// children) and kills the processes we started, by their pids.
func (p *procSet) killAll() {
	p.mu.Lock()
	cmds, wss := p.cmds, p.workspaces
	p.cmds, p.workspaces = nil, nil
	p.mu.Unlock()
	for ws, bin := range wss {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		c := exec.CommandContext(ctx, bin, "stop", "--workspace", ws)
		c.Env = cleanEnv()
		c.Run()
		cancel()
		// A daemon that did not stop is killed by the pid in its state file.
		if data, err := os.ReadFile(filepath.Join(ws, ".patchd", "patchd.json")); err == nil {
			var st struct {
				PID int `json:"pid"`
			}
			if json.Unmarshal(data, &st) == nil && st.PID > 0 {
				syscall.Kill(st.PID, syscall.SIGKILL)
			}
		}
	}
	for _, c := range cmds {
		if c.Process != nil && c.ProcessState == nil {
			c.Process.Kill()
			c.Wait()
		}
	}
}

// cleanEnv keeps the caller's PATCHD_ settings away from the daemons.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PATCHD_") {
			env = append(env, kv)
		}
	}
	return env
}

// rss is the resident set size of pid in bytes (VmRSS), 0 if unknown.
func rss(pid int) int64 { return procStatus(pid, "VmRSS:") }

// rssAnon is the anonymous part of pid's resident set (RssAnon: heap and
// stacks); the rest is file pages mapped in (the binary, an mmapped
// database), which the kernel can drop and read again.
func rssAnon(pid int) int64 { return procStatus(pid, "RssAnon:") }

// procStatus is a field of /proc/<pid>/status given in kB, in bytes; 0 if
// unknown.
func procStatus(pid int, field string) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// cpuTime is the user+system CPU time pid has used, from /proc/<pid>/stat
// (in clock ticks of 10 ms, the USER_HZ of every Linux build).
func cpuTime(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is field 3, utime 14, stime 15.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0
	}
	user, _ := strconv.ParseInt(f[11], 10, 64)
	sys, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(user+sys) * 10 * time.Millisecond
}

// loadAvg is the first three fields of /proc/loadavg.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// server is a reference server process (the ceiling or Flask) that prints
// its address on its first line of output.
type server struct {
	name string
	addr string
	cmd  *exec.Cmd
}

func (b *bench) startServer(ctx context.Context, name string, argv ...string) (*server, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = b.tmp
	cmd.Env = cleanEnv()
	errf, err := os.Create(filepath.Join(b.tmp, name+".stderr"))
	if err != nil {
		return nil, err
	}
	defer errf.Close()
	cmd.Stderr = errf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	b.procs.addCmd(cmd)
	line := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stdout)
		s, _ := r.ReadString('\n')
		line <- strings.TrimSpace(s)
		io.Copy(io.Discard, r)
	}()
	select {
	case addr := <-line:
		if addr == "" {
			cmd.Process.Kill()
			cmd.Wait()
			tail, _ := os.ReadFile(errf.Name())
			return nil, fmt.Errorf("%s exited before printing its address: %s", name, lastLine(string(tail)))
		}
		s := &server{name: name, addr: addr, cmd: cmd}
		if err := waitHealthy(ctx, addr, 30*time.Second); err != nil {
			s.stop()
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return s, nil
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("%s printed no address within a minute", name)
	}
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// stop asks the server to stop (SIGTERM) and kills it after two seconds.
func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

var healthClient = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// healthPID gets /health over a new connection and returns the pid it
// names (0 from a patchd asked without its token); ok is false unless it
// answered 200.
func healthPID(ctx context.Context, addr string, timeout time.Duration) (pid int, ok bool) {
	return healthPIDToken(ctx, addr, "", timeout)
}

// healthPIDToken is healthPID with patchd's token, which /health needs to
// name its pid.
func healthPIDToken(ctx context.Context, addr, token string, timeout time.Duration) (pid int, ok bool) {
	h, ok := getHealth(ctx, addr, token, timeout)
	return h.PID, ok
}

// healthQueued reads how many patches /health counts queued; -1 and false
// if it did not answer 200.
func healthQueued(ctx context.Context, addr, token string) (int, bool) {
	h, ok := getHealth(ctx, addr, token, 2*time.Second)
	if !ok {
		return -1, false
	}
	return h.Queue.Queued, true
}

// health is what the benchmark reads of /health.
type health struct {
	PID   int `json:"pid"`
	Queue struct {
		Queued int `json:"queued"`
	} `json:"queue"`
}

// getHealth gets /health over a new connection (with patchd's token
// unless it is ""); ok is false unless it answered 200 with JSON.
func getHealth(ctx context.Context, addr, token string, timeout time.Duration) (h health, ok bool) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/health", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := healthClient.Do(req)
	if err != nil {
		return health{}, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&h) != nil {
		return health{}, false
	}
	return h, true
}

// waitHealthy polls /health until it answers 200.
func waitHealthy(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, ok := healthPID(ctx, addr, time.Second); ok {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(2 * time.Millisecond)
	}
	return fmt.Errorf("%s/health did not answer 200 within %s", addr, timeout)
}

// daemon is a patchd started with `patchd start` in its own workspace.
type daemon struct {
	b     *bench
	bin   string // the patchd binary it runs
	ws    string
	pid   int
	addr  string
	token string
}

// binCmd is the patchd binary bin (the measured one or the baseline) with
// args, for the workspace ws.
func (b *bench) binCmd(ctx context.Context, bin, ws string, args ...string) *exec.Cmd {
	full := append([]string{args[0], "--workspace", ws}, args[1:]...)
	c := exec.CommandContext(ctx, bin, full...)
	c.Env = cleanEnv()
	// A restarted daemon inherits what the command's output was; never let
	// it hold our pipes open.
	c.WaitDelay = time.Second
	return c
}

// runPatchd runs a patchd command to its end and returns its output.
func (b *bench) runPatchd(ctx context.Context, ws string, args ...string) (string, error) {
	return b.runBin(ctx, b.patchd, ws, args...)
}

// runBin runs a command of the patchd binary bin to its end and returns
// its output.
func (b *bench) runBin(ctx context.Context, bin, ws string, args ...string) (string, error) {
	var out bytes.Buffer
	c := b.binCmd(ctx, bin, ws, args...)
	c.Stdout, c.Stderr = &out, &out
	err := c.Run()
	if err != nil {
		return out.String(), fmt.Errorf("patchd %s: %v: %s", args[0], err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// startPatchd runs `patchd start --port 0` in ws and returns the daemon and
// how long the command took (it returns once the daemon answers /health).
func (b *bench) startPatchd(ctx context.Context, ws string, extra ...string) (*daemon, time.Duration, error) {
	return b.startBin(ctx, b.patchd, ws, extra...)
}

// startBin is startPatchd with the patchd binary bin (the baseline's).
func (b *bench) startBin(ctx context.Context, bin, ws string, extra ...string) (*daemon, time.Duration, error) {
	b.procs.addWorkspace(ws, bin)
	t0 := time.Now()
	if _, err := b.runBin(ctx, bin, ws, append([]string{"start", "--port", "0"}, extra...)...); err != nil {
		return nil, 0, err
	}
	took := time.Since(t0)
	d := &daemon{b: b, bin: bin, ws: ws}
	return d, took, d.refresh(ctx)
}

// refresh reads the daemon's pid, address and token (after a restart too).
func (d *daemon) refresh(ctx context.Context) error {
	out, err := d.b.runBin(ctx, d.bin, d.ws, "status", "--json")
	if err != nil {
		return err
	}
	var st struct {
		Running bool   `json:"running"`
		PID     int    `json:"pid"`
		Address string `json:"address"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || !st.Running {
		return fmt.Errorf("patchd status --json: %q", out)
	}
	tok, err := os.ReadFile(filepath.Join(d.ws, ".patchd", "token"))
	if err != nil {
		return err
	}
	d.pid, d.addr, d.token = st.PID, st.Address, strings.TrimSpace(string(tok))
	return nil
}

func (d *daemon) stop(ctx context.Context) error {
	if _, err := d.b.runBin(ctx, d.bin, d.ws, "stop"); err != nil {
		return err
	}
	d.b.procs.mu.Lock()
	delete(d.b.procs.workspaces, d.ws)
	d.b.procs.mu.Unlock()
	return nil
}

// queueStats is the part of the store's statistics /health reports that
// the benchmarks read.
type queueStats struct {
	Queued   int    `json:"queued"`
	Applying int    `json:"applying"`
	Applied  int    `json:"applied"`
	Failed   int    `json:"failed"`
	Total    int    `json:"total"`
	Batches  uint64 `json:"batches"`
	Records  uint64 `json:"records"`
}

var apiClient = &http.Client{Timeout: 30 * time.Second}

func (d *daemon) queue(ctx context.Context) (queueStats, error) {
	var h struct {
		Queue *queueStats `json:"queue"`
	}
	if err := d.getJSON(ctx, "/health", &h); err != nil {
		return queueStats{}, err
	}
	if h.Queue == nil {
		return queueStats{}, errors.New("/health has no queue")
	}
	return *h.Queue, nil
}

// getJSON GETs path with the token and decodes a 200 answer into v.
func (d *daemon) getJSON(ctx context.Context, path string, v any) error {
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+d.addr+path, nil)
	req.Header.Set("Authorization", "Bearer "+d.token)
	resp, err := apiClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, bytes.TrimSpace(body))
	}
	return json.Unmarshal(body, v)
}

// post sends one webhook body and returns the status code.
func (d *daemon) post(ctx context.Context, body []byte) (int, []byte, error) {
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+d.addr+"/webhook", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+d.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := apiClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}
