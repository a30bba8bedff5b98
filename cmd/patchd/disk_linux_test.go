package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// These tests put the state dir on a file system of its own, fill it up or
// make it read-only under the daemon, and check that intake refuses with a
// 503 naming the cause, that nothing acknowledged is lost, and that the
// daemon recovers. They need root (mount) and skip otherwise.

// mountTmpfs mounts a tmpfs of the given size on a new directory and
// unmounts it when the test ends. Call it before newEnv, so that the
// daemon is gone before the unmount.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root and mount: run the tests as root on Linux to fill a real file system")
	}
	dir := t.TempDir()
	// mode: a tmpfs root is 1777 by default, which patchd refuses as a
	// state dir (anyone could plant files in it).
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		t.Skipf("needs root and mount: mount -t tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// ext4Image is an ext4 file system in a file, loop-mounted with
// errors=remount-ro, for tests that make the kernel turn it read-only under
// open files.
type ext4Image struct {
	img, dir string
	dev      string // loopN, while mounted
}

func mountExt4(t *testing.T, sizeMB int) *ext4Image {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root and mount: run the tests as root on Linux to loop-mount an ext4 image")
	}
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Skip("needs root and mount: mkfs.ext4 not found")
	}
	m := &ext4Image{img: filepath.Join(t.TempDir(), "state.img"), dir: t.TempDir()}
	if err := os.WriteFile(m.img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(m.img, int64(sizeMB)<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", m.img).CombinedOutput(); err != nil {
		t.Skipf("needs root and mount: mkfs.ext4: %v %s", err, out)
	}
	if err := m.mount(); err != nil {
		t.Skipf("needs root and mount: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(m.dir, syscall.MNT_DETACH) })
	if _, err := os.Stat(m.trigger()); err != nil {
		t.Skipf("needs root and mount: ext4 cannot be made to fail on demand here: %v", err)
	}
	return m
}

func (m *ext4Image) mount() error {
	if out, err := exec.Command("mount", "-o", "loop,errors=remount-ro", m.img, m.dir).CombinedOutput(); err != nil {
		return fmt.Errorf("loop-mount an ext4 image: %v %s", err, out)
	}
	src, err := exec.Command("findmnt", "-n", "-o", "SOURCE", m.dir).Output()
	if err != nil {
		return fmt.Errorf("findmnt %s: %v", m.dir, err)
	}
	m.dev = filepath.Base(strings.TrimSpace(string(src)))
	return nil
}

// trigger is the sysfs file that makes ext4 report an error.
func (m *ext4Image) trigger() string { return "/sys/fs/ext4/" + m.dev + "/trigger_fs_error" }

// repair does what an operator does after the error: unmount, fsck, mount.
func (m *ext4Image) repair(t *testing.T) {
	t.Helper()
	// A daemon just stopped may still be releasing its descriptors (see
	// TestStateDirReadOnlyAtStart).
	var err error
	waitFor(t, 5*time.Second, "the file system to be free to unmount", func() bool {
		err = syscall.Unmount(m.dir, 0)
		return !errors.Is(err, syscall.EBUSY)
	})
	if err != nil {
		t.Fatalf("unmount %s: %v", m.dir, err)
	}
	// Exit 1 means errors were corrected.
	if out, err := exec.Command("e2fsck", "-f", "-y", m.img).CombinedOutput(); err != nil {
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() > 1 {
			t.Fatalf("e2fsck: %v %s", err, out)
		}
	}
	if err := m.mount(); err != nil {
		t.Fatal(err)
	}
}

// fill writes to path until the file system has no byte left.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, chunk := range []int{64 << 10, 4 << 10, 1} {
		buf := make([]byte, chunk)
		for {
			_, err := f.Write(buf)
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			if err != nil {
				t.Fatalf("fill %s: %v", path, err)
			}
		}
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// paddedBlock is appendBlock with a long description, so that a few
// records use up whatever room is left in the journal's last page.
func paddedBlock(id, file string) []byte {
	return []byte(fmt.Sprintf(`{"id":%q,"role":"ci_patch","target_file":%q,"description":%q,"patch":{"pattern":"seed","replacement":"seed+%s"}}`,
		id, file, strings.Repeat("d", 2000), id))
}

// faultEnv is a daemon whose state dir is on a file system the test
// breaks, with the patches it acknowledged.
type faultEnv struct {
	*tenv
	cl    *client
	pid   int
	acked []string
}

func newFaultEnv(t *testing.T, stateDir string) *faultEnv {
	t.Helper()
	e := newEnv(t)
	e.state = stateDir
	f := &faultEnv{tenv: e}
	t.Cleanup(func() {
		// On failure, what the daemon says about each patch not applied,
		// and the end of its log.
		if !t.Failed() || f.cl == nil {
			return
		}
		for _, id := range f.acked {
			code, body, err := f.cl.do("GET", "/patches/"+id, nil)
			var p patchState
			json.Unmarshal(body, &p)
			if p.State != "applied" {
				t.Logf("patch %s: %d %s %s %v", id, code, p.State, p.Error, err)
			}
		}
		log, _ := os.ReadFile(filepath.Join(stateDir, "logs", "patchd.log"))
		lines := strings.Split(strings.TrimSpace(string(log)), "\n")
		t.Logf("end of the daemon's log:\n%s", strings.Join(lines[max(0, len(lines)-20):], "\n"))
	})
	return f
}

func (f *faultEnv) startDaemon() {
	f.t.Helper()
	pid, r := f.start()
	if r.code != 0 || pid == 0 {
		f.t.Fatalf("start: %s", r)
	}
	st, _ := f.status()
	f.pid, f.cl = pid, f.client(st.Address)
}

// post submits a patch on its own new file and returns the answer; a 202
// is recorded as acknowledged.
func (f *faultEnv) post(id string) (int, answerBody) {
	f.t.Helper()
	file := id + ".txt"
	if err := os.WriteFile(filepath.Join(f.ws, file), []byte("seed\n"), 0o644); err != nil {
		f.t.Fatal(err)
	}
	code, body, err := f.cl.do("POST", "/webhook", paddedBlock(id, file))
	if err != nil {
		f.t.Fatalf("POST %s: %v", id, err)
	}
	var a answerBody
	if err := json.Unmarshal(body, &a); err != nil {
		f.t.Fatalf("POST %s = %d %q: not the answer shape: %v", id, code, body, err)
	}
	if code == http.StatusAccepted {
		f.acked = append(f.acked, id)
	}
	return code, a
}

// answerBody is the webhook's answer.
type answerBody struct {
	Status string `json:"status"`
	Result struct {
		Success bool   `json:"success"`
		Error   string `json:"error"`
		PatchID string `json:"patch_id"`
		State   string `json:"state"`
	} `json:"result"`
}

// healthy checks that /health answers 200 "ok" a few times in a row.
func (f *faultEnv) healthy(when string) {
	f.t.Helper()
	for range 5 {
		code, h, err := getHealth(f.cl.base[len("http://"):])
		if err != nil || code != http.StatusOK || h["status"] != "ok" {
			f.t.Fatalf("%s: GET /health = %d %v %v, want 200 ok", when, code, h["status"], err)
		}
	}
	if pids := f.pids(); len(pids) != 1 || pids[0] != f.pid {
		f.t.Fatalf("%s: patchd processes %v, want the daemon %d still running", when, pids, f.pid)
	}
}

// known checks that every acknowledged patch is in the store.
func (f *faultEnv) known(when string) {
	f.t.Helper()
	for _, id := range f.acked {
		if p, code := f.cl.patch(f.t, id); code != http.StatusOK {
			f.t.Errorf("%s: acknowledged patch %s: GET = %d %+v, want 200", when, id, code, p)
		}
	}
}

// allApplied waits for every acknowledged patch to be applied, once.
func (f *faultEnv) allApplied(when string) {
	f.t.Helper()
	for _, id := range f.acked {
		var p patchState
		waitFor(f.t, 20*time.Second, when+": patch "+id+" to be applied", func() bool {
			p, _ = f.cl.patch(f.t, id)
			return p.State == "applied" || p.State == "failed"
		})
		if p.State != "applied" {
			f.t.Errorf("%s: patch %s: %s (%s), want applied", when, id, p.State, p.Error)
		}
		data, _ := os.ReadFile(filepath.Join(f.ws, id+".txt"))
		if want := "seed+" + id + "\n"; string(data) != want {
			f.t.Errorf("%s: file of %s = %q, want %q", when, id, data, want)
		}
	}
}

// refusedFor posts new patches until one is refused and checks the
// refusal: 503, Retry-After, the error shape naming the cause, and nothing
// recorded. Records may still fit for a while: where the disk had room,
// the journal holds up to 1 MiB of zeros written ahead of its records
// (store.preallocChunk), a reserve a full disk cannot take away, and these
// patches take ~7 KiB of it each.
func (f *faultEnv) refusedFor(prefix, cause string) string {
	f.t.Helper()
	const most = 1000
	for i := range most {
		id := fmt.Sprintf("%s%d", prefix, i)
		code, a := f.post(id)
		if code == http.StatusAccepted {
			continue
		}
		if code != http.StatusServiceUnavailable || a.Status != "error" || a.Result.Success || !strings.Contains(a.Result.Error, cause) {
			f.t.Fatalf("POST %s = %d %+v, want 503 naming %q", id, code, a, cause)
		}
		if _, code := f.cl.patch(f.t, id); code != http.StatusNotFound {
			f.t.Errorf("refused patch %s: GET = %d, want 404 (nothing recorded)", id, code)
		}
		f.t.Logf("%d patches still fit; then 503: %s", i, a.Result.Error)
		return id
	}
	f.t.Fatalf("%d patches accepted on a file system that should refuse them (%s)", most, cause)
	return ""
}

// TestStateDirFull: with the state dir's file system full, the webhook
// answers 503 naming "no space left on device", health and reads keep
// working, nothing acknowledged is lost, and intake resumes without a
// restart once space returns. A daemon killed while the disk is full fails
// to start with the cause named, and starts once there is room.
func TestStateDirFull(t *testing.T) {
	t.Parallel()
	mnt := mountTmpfs(t, "2m")
	f := newFaultEnv(t, filepath.Join(mnt, "state"))
	f.startDaemon()
	for i := range 5 {
		if code, a := f.post(fmt.Sprintf("before%d", i)); code != http.StatusAccepted {
			t.Fatalf("POST before%d = %d %+v", i, code, a)
		}
	}
	f.allApplied("before filling")
	// These are still being applied when the disk fills: the worker cannot
	// record their progress until space returns.
	for i := range 5 {
		if code, a := f.post(fmt.Sprintf("filling%d", i)); code != http.StatusAccepted {
			t.Fatalf("POST filling%d = %d %+v", i, code, a)
		}
	}

	filler := filepath.Join(mnt, "filler")
	fill(t, filler)
	refused := f.refusedFor("full", "no space left on device")
	f.healthy("disk full")
	f.known("disk full")

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	// The refused id was not recorded, so it is new: 202, not 200.
	code, body, err := f.cl.do("POST", "/webhook", paddedBlock(refused, refused+".txt"))
	if err != nil || code != http.StatusAccepted {
		t.Fatalf("POST %s after freeing space = %d %s %v, want 202 without a restart", refused, code, body, err)
	}
	f.acked = append(f.acked, refused)
	if code, a := f.post("after"); code != http.StatusAccepted {
		t.Fatalf("POST after = %d %+v, want 202", code, a)
	}
	f.allApplied("after freeing space")

	// Full again, and killed: the next start cannot even write its state
	// file. It must say so and exit 1, not hang or pretend.
	fill(t, filler)
	f.refusedFor("again", "no space left on device")
	syscall.Kill(f.pid, syscall.SIGKILL)
	waitFor(t, 5*time.Second, "the killed daemon to go", func() bool { return len(f.pids()) == 0 })
	_, r := f.start()
	if r.code != 1 || !strings.Contains(r.stderr, "no space left on device") {
		t.Errorf("start on a full state dir: %s, want exit 1 naming no space left on device", r)
	}
	t.Logf("start on a full state dir: exit %d: %s", r.code, lastLine(r.stderr))
	if pids := f.pids(); len(pids) != 0 {
		t.Errorf("start on a full state dir left patchd processes %v", pids)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	f.startDaemon()
	f.known("restart after the disk was full")
	f.allApplied("restart after the disk was full")
}

// TestStateDirReadOnlyAtStart: a state dir on a read-only file system
// (remounted read-only while no daemon ran; a running daemon's open journal
// keeps `mount -o remount,ro` from succeeding) makes start and run fail at
// once with exit 1, naming the path and the cause. Remounted read-write,
// everything acknowledged is still there.
func TestStateDirReadOnlyAtStart(t *testing.T) {
	t.Parallel()
	mnt := mountTmpfs(t, "4m")
	f := newFaultEnv(t, filepath.Join(mnt, "state"))
	f.startDaemon()
	for i := range 3 {
		if code, a := f.post(fmt.Sprintf("p%d", i)); code != http.StatusAccepted {
			t.Fatalf("POST p%d = %d %+v", i, code, a)
		}
	}
	if err := syscall.Mount("", mnt, "", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err == nil {
		t.Logf("remounted read-only under a running daemon (the kernel allowed it)")
	} else if !errors.Is(err, syscall.EBUSY) {
		t.Logf("remount read-only under a running daemon: %v", err)
	}
	if r := f.run("stop"); r.code != 0 {
		t.Fatalf("stop: %s", r)
	}
	// stop returns on the control connection's end, which the kernel
	// delivers while the exiting daemon releases its descriptors; its
	// stdout and stderr (the log file, open for writing) may be released a
	// moment later, and until then the remount is refused with EBUSY.
	var err error
	waitFor(t, 5*time.Second, "the stopped daemon to let go of the file system", func() bool {
		err = syscall.Mount("", mnt, "", syscall.MS_REMOUNT|syscall.MS_RDONLY, "")
		return !errors.Is(err, syscall.EBUSY)
	})
	if err != nil {
		t.Fatalf("remount read-only: %v", err)
	}
	for _, args := range [][]string{{"start", "--port", "0"}, {"run", "--port", "0", "--if-running", "exit"}} {
		cmd := f.command(args...)
		done := make(chan result, 1)
		go func() { done <- runCmd(t, cmd) }()
		var r result
		select {
		case r = <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("%s on a read-only state dir did not exit within 20s", args[0])
		}
		if r.code != 1 || !strings.Contains(r.stderr, "read-only file system") || !strings.Contains(r.stderr, f.state) {
			t.Errorf("%s on a read-only state dir: %s, want exit 1 naming %s and read-only file system", args[0], r, f.state)
		}
		t.Logf("%s on a read-only state dir: exit %d: %s", args[0], r.code, lastLine(r.stderr))
	}
	if pids := f.pids(); len(pids) != 0 {
		t.Errorf("patchd processes after failed starts: %v", pids)
	}
	if err := syscall.Mount("", mnt, "", syscall.MS_REMOUNT, ""); err != nil {
		t.Fatalf("remount read-write: %v", err)
	}
	f.startDaemon()
	f.known("after remounting read-write")
	f.allApplied("after remounting read-write")
}

// TestStateDirTurnsReadOnly: the kernel turns the state dir's file system
// read-only under the running daemon (ext4 with errors=remount-ro after an
// error, which is what a failing disk does). The webhook answers 503 naming
// "read-only file system", health and reads keep working, stop works, and
// after fsck and a new mount every acknowledged patch is there and applied.
func TestStateDirTurnsReadOnly(t *testing.T) {
	t.Parallel()
	m := mountExt4(t, 16)
	f := newFaultEnv(t, filepath.Join(m.dir, "state"))
	f.startDaemon()
	for i := range 5 {
		if code, a := f.post(fmt.Sprintf("p%d", i)); code != http.StatusAccepted {
			t.Fatalf("POST p%d = %d %+v", i, code, a)
		}
	}
	// The error comes while the worker is idle. When ext4 aborts its
	// journal, the last write it acknowledged with fsync can be lost (a
	// plain write+fsync loop shows it: the next write fails with EROFS and
	// the record before it is gone after fsck). Had that record been a
	// patch's "applying" mark, the patch would be applied again after the
	// restart: no daemon can keep its promise when the disk breaks its own.
	f.allApplied("before the error")
	if err := os.WriteFile(m.trigger(), []byte("patchd fault test\n"), 0o200); err != nil {
		t.Skipf("needs root and mount: trigger an ext4 error: %v", err)
	}
	waitFor(t, 5*time.Second, "the file system to turn read-only", func() bool {
		err := os.WriteFile(filepath.Join(m.dir, "probe"), nil, 0o600)
		return errors.Is(err, syscall.EROFS)
	})
	// The first write fails; the second finds the journal still cut back.
	f.refusedFor("ro", "read-only file system")
	f.refusedFor("ro-again", "read-only file system")
	f.healthy("read-only")
	f.known("read-only")

	if r := f.run("stop"); r.code != 0 {
		t.Fatalf("stop with a read-only state dir: %s", r)
	}
	if pids := f.pids(); len(pids) != 0 {
		t.Fatalf("patchd processes after stop: %v", pids)
	}
	m.repair(t)
	f.startDaemon()
	f.known("after fsck")
	f.allApplied("after fsck")
	if code, a := f.post("after"); code != http.StatusAccepted {
		t.Errorf("POST after fsck = %d %+v, want 202", code, a)
	}
}
