package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"

	"github.com/landlock-lsm/go-landlock/landlock"
	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"
)

// minABI is the first Landlock ABI that restricts TCP as well as writes.
const minABI = 4

// Available reports whether this kernel can confine a check.
func Available() error {
	_, err := configFor(ABI())
	return err
}

// ABI is the kernel's Landlock ABI version, 0 without Landlock.
func ABI() int {
	abi, err := ll.LandlockGetABIVersion()
	if err != nil {
		return 0
	}
	return abi
}

// Exe is the executable that runs the helper: this very program, even if
// its file was replaced or removed since it started.
func Exe() (string, error) { return "/proc/self/exe", nil }

// configFor is the Landlock configuration handling every right the kernel's
// ABI knows, or why there is none that confines enough.
func configFor(abi int) (landlock.Config, error) {
	presets := []landlock.Config{landlock.V4, landlock.V5, landlock.V6, landlock.V7, landlock.V8, landlock.V9, landlock.V10, landlock.V11}
	if abi < minABI {
		what := fmt.Sprintf("its Landlock ABI is %d", abi)
		if abi <= 0 {
			what = "Landlock is not available (a kernel before 5.13, or Landlock not enabled: see /sys/kernel/security/lsm)"
		}
		return landlock.Config{}, fmt.Errorf("this kernel cannot confine the check: %s, and the sandbox needs ABI %d (Linux 6.7) to restrict writes and TCP; the check was not run", what, minABI)
	}
	return presets[min(abi, minABI+len(presets)-1)-minABI], nil
}

func confineAndExec(s Spec, argv []string) error {
	// Landlock, no_new_privs and capabilities are properties of a thread:
	// this one is restricted and then replaced by the check. It is never
	// unlocked, so no other goroutine ever runs on it.
	runtime.LockOSThread()
	cfg, err := configFor(ABI())
	if err != nil {
		return err
	}
	prog, err := exec.LookPath(argv[0])
	if err != nil {
		return fmt.Errorf("check sandbox: %w", err)
	}
	// Everything may be read and executed; /dev/null written. No network
	// rule: every TCP (and from ABI 10, UDP) bind and connect is denied.
	rfd, flags, err := cfg.NewRulesetFD(
		landlock.RODirs("/"),
		landlock.RWFiles("/dev/null").IgnoreIfMissing(),
	)
	if err != nil {
		return fmt.Errorf("check sandbox: landlock ruleset: %w", err)
	}
	defer syscall.Close(rfd)
	handled := uint64(cfg.HandledAccessFS)
	rights := rights{
		dir: handled & (ll.AccessFSExecute | ll.AccessFSReadFile | ll.AccessFSReadDir | ll.AccessFSWriteFile |
			ll.AccessFSRemoveDir | ll.AccessFSRemoveFile | ll.AccessFSMakeDir | ll.AccessFSMakeReg |
			ll.AccessFSMakeSock | ll.AccessFSMakeFifo | ll.AccessFSMakeSym | ll.AccessFSRefer | ll.AccessFSTruncate),
		file: handled & (ll.AccessFSExecute | ll.AccessFSReadFile | ll.AccessFSWriteFile | ll.AccessFSTruncate),
	}
	protect := make([]string, 0, len(s.Protect))
	for _, p := range s.Protect {
		r, err := resolve(p)
		if err != nil {
			return fmt.Errorf("check sandbox: protected path %s: %w", p, err)
		}
		protect = append(protect, r)
	}
	for _, d := range s.Writable {
		root, err := filepath.EvalSymlinks(d)
		if err != nil {
			return fmt.Errorf("check sandbox: writable directory: %w", err)
		}
		var inside []string
		for _, p := range protect {
			if within(p, root) {
				return fmt.Errorf("check sandbox: writable directory %s lies in the protected %s", d, p)
			}
			if within(root, p) {
				inside = append(inside, p)
			}
		}
		if err := grantDir(rfd, root, inside, rights); err != nil {
			return fmt.Errorf("check sandbox: writable directory %s: %w", d, err)
		}
	}
	if err := dropCapabilities(); err != nil {
		return fmt.Errorf("check sandbox: drop capabilities: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("check sandbox: no_new_privs: %w", err)
	}
	if err := installNetworkFilter(); err != nil {
		return fmt.Errorf("check sandbox: %w", err)
	}
	if err := ll.LandlockRestrictSelf(rfd, flags); err != nil {
		return fmt.Errorf("check sandbox: landlock_restrict_self: %w", err)
	}
	if err := syscall.Exec(prog, argv, os.Environ()); err != nil {
		return fmt.Errorf("check sandbox: exec %s: %w", prog, err)
	}
	return nil
}

// rights are the Landlock access rights a writable directory or file gets.
type rights struct{ dir, file uint64 }

// grantDir lets the check write beneath dir, except at the protected paths
// inside it (resolved, strictly beneath dir). Landlock only adds rights, so
// a protected path is left out by granting each entry beside it instead of
// the directory holding it: the directories on the way to a protected path
// get no right of their own, and nothing can be created, removed or renamed
// directly in them. Entries are opened without following symlinks, so a
// link in the workspace never extends the grant outside it.
func grantDir(rfd int, dir string, protect []string, r rights) error {
	if len(protect) == 0 {
		return addRule(rfd, dir, unix.O_DIRECTORY, r.dir)
	}
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return err
	}
	for _, name := range names {
		p := filepath.Join(dir, name)
		if slices.Contains(protect, p) {
			continue
		}
		var inside []string
		for _, q := range protect {
			if within(p, q) {
				inside = append(inside, q)
			}
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			continue // gone meanwhile
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			err = grantDir(rfd, p, inside, r)
		case unix.S_IFREG:
			err = addRule(rfd, p, 0, r.file)
		default:
			continue // symlinks, devices, fifos, sockets: nothing to grant
		}
		if err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ELOOP) && !errors.Is(err, unix.ENOTDIR) {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	return nil
}

// addRule grants access beneath path, opened without following a final
// symlink.
func addRule(rfd int, path string, flags int, access uint64) error {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC|flags, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return ll.LandlockAddPathBeneathRule(rfd, &ll.PathBeneathAttr{ParentFd: fd, AllowedAccess: access}, 0)
}

// resolve is path with its symlinks resolved as far as it exists.
func resolve(path string) (string, error) {
	path = filepath.Clean(path)
	if !filepath.IsAbs(path) {
		return "", errors.New("not an absolute path")
	}
	rest := ""
	for {
		r, err := filepath.EvalSymlinks(path)
		if err == nil {
			return filepath.Join(r, rest), nil
		}
		if !errors.Is(err, os.ErrNotExist) || path == "/" {
			return "", err
		}
		rest = filepath.Join(filepath.Base(path), rest)
		path = filepath.Dir(path)
	}
}

// within reports whether p is dir or beneath it (both clean).
func within(dir, p string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// dropCapabilities leaves the thread, and so the check it becomes, no
// capability: none in the bounding set (when it may drop them: root), none
// inheritable, ambient, permitted or effective. With no_new_privs, root's
// exec then grants none either.
func dropCapabilities() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return err
	}
	if data[0].Effective&(1<<unix.CAP_SETPCAP) != 0 {
		for c := 0; ; c++ {
			if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
				if errors.Is(err, unix.EINVAL) {
					break // past the last capability
				}
				return fmt.Errorf("bounding set: %w", err)
			}
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("ambient: %w", err)
	}
	data = [2]unix.CapUserData{}
	return unix.Capset(&hdr, &data[0])
}
