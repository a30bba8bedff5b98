package sandbox

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A seccomp filter closes what Landlock's network rules leave open before
// ABI 10, as go-landlock's documentation advises: Landlock restricts plain
// TCP only, and a Multipath TCP socket (which falls back to plain TCP with
// any server) or a UDP datagram (DNS) would carry data out. The filter
// allows sockets of three families only: Unix, netlink, and IPv4/IPv6 plain
// TCP (whose connect and bind Landlock denies). io_uring, which makes
// sockets without the socket call, is refused, and so is every system call
// of another ABI than the native one (x32, i386).

// seccomp_data offsets (include/uapi/linux/seccomp.h): nr, arch, and the
// low 32 bits of the arguments (little-endian).
const (
	offNr   = 0
	offArch = 4
	offArg0 = 16
	offArg1 = 24
	offArg2 = 32
)

// nativeArch is the audit architecture of this build's system calls.
func nativeArch() (uint32, error) {
	switch runtime.GOARCH {
	case "amd64":
		return unix.AUDIT_ARCH_X86_64, nil
	case "arm64":
		return unix.AUDIT_ARCH_AARCH64, nil
	}
	return 0, fmt.Errorf("the check sandbox filters system calls on amd64 and arm64 only, not %s", runtime.GOARCH)
}

// bpf assembles a classic BPF program whose jumps name labels.
type bpf struct {
	prog   []unix.SockFilter
	labels map[string]int
	fixups []fixup
}

type fixup struct {
	at     int
	jt, jf string
}

func (b *bpf) label(name string) { b.labels[name] = len(b.prog) }

func (b *bpf) stmt(code uint16, k uint32) {
	b.prog = append(b.prog, unix.SockFilter{Code: code, K: k})
}

// jump is "if A == k goto jt else goto jf"; "" means the next instruction.
func (b *bpf) jump(k uint32, jt, jf string) {
	b.fixups = append(b.fixups, fixup{len(b.prog), jt, jf})
	b.stmt(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, k)
}

func (b *bpf) jumpGE(k uint32, jt, jf string) {
	b.fixups = append(b.fixups, fixup{len(b.prog), jt, jf})
	b.stmt(unix.BPF_JMP|unix.BPF_JGE|unix.BPF_K, k)
}

func (b *bpf) load(off uint32) { b.stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, off) }

func (b *bpf) ret(v uint32) { b.stmt(unix.BPF_RET|unix.BPF_K, v) }

func (b *bpf) resolve() ([]unix.SockFilter, error) {
	for _, f := range b.fixups {
		for _, j := range []struct {
			name string
			dst  *uint8
		}{{f.jt, &b.prog[f.at].Jt}, {f.jf, &b.prog[f.at].Jf}} {
			if j.name == "" {
				continue
			}
			to, ok := b.labels[j.name]
			if !ok || to <= f.at || to-f.at-1 > 255 {
				return nil, fmt.Errorf("seccomp program: bad jump to %q", j.name)
			}
			*j.dst = uint8(to - f.at - 1)
		}
	}
	return b.prog, nil
}

// networkFilter is the seccomp program described above.
func networkFilter() ([]unix.SockFilter, error) {
	arch, err := nativeArch()
	if err != nil {
		return nil, err
	}
	deny := uint32(unix.SECCOMP_RET_ERRNO | uint32(unix.EACCES))
	nosys := uint32(unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS))
	b := &bpf{labels: map[string]int{}}
	b.load(offArch)
	b.jump(arch, "", "nosys")
	b.load(offNr)
	b.jumpGE(0x40000000, "nosys", "") // x32 system calls on amd64
	b.jump(unix.SYS_IO_URING_SETUP, "nosys", "")
	b.jump(unix.SYS_IO_URING_ENTER, "nosys", "")
	b.jump(unix.SYS_IO_URING_REGISTER, "nosys", "")
	b.jump(unix.SYS_SOCKET, "socket", "allow")
	b.label("socket")
	b.load(offArg0) // domain
	b.jump(unix.AF_UNIX, "allow", "")
	b.jump(unix.AF_NETLINK, "allow", "")
	b.jump(unix.AF_INET, "inet", "")
	b.jump(unix.AF_INET6, "inet", "deny")
	b.label("inet")
	b.load(offArg1) // type, less SOCK_NONBLOCK and SOCK_CLOEXEC
	b.stmt(unix.BPF_ALU|unix.BPF_AND|unix.BPF_K, 0xf)
	b.jump(unix.SOCK_STREAM, "", "deny")
	b.load(offArg2) // protocol: the default (TCP) or TCP, not MPTCP or SCTP
	b.jump(0, "allow", "")
	b.jump(unix.IPPROTO_TCP, "allow", "deny")
	b.label("allow")
	b.ret(unix.SECCOMP_RET_ALLOW)
	b.label("deny")
	b.ret(deny)
	b.label("nosys")
	b.ret(nosys)
	return b.resolve()
}

// installNetworkFilter applies networkFilter to the calling thread, which
// must have no_new_privs set.
func installNetworkFilter() error {
	prog, err := networkFilter()
	if err != nil {
		return err
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&fprog)), 0, 0); err != nil {
		return fmt.Errorf("seccomp filter: %w", err)
	}
	runtime.KeepAlive(prog)
	return nil
}
