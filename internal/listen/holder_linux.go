//go:build linux

package listen

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// tcpListen is the kernel's code for TCP_LISTEN in /proc/net/tcp.
const tcpListen = "0A"

// PortHolder returns a description such as "pid 812 (python3)" of a process
// listening on TCP port on any local address, or "" when the system cannot
// tell, for instance because the holder belongs to another user and its fds
// cannot be read. It is for messages only: whether the port is free is for
// bind to say.
//
// It reads /proc/net/tcp and /proc/net/tcp6 for the inodes of listening
// sockets on the port, then looks for a process with an fd on one of them,
// stopping at the first match.
func PortHolder(port int) string {
	if port <= 0 || port > 65535 {
		return ""
	}
	inodes := make(map[string]bool)
	for _, name := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(name)
		if err != nil {
			continue // no IPv6 in this kernel, or no /proc at all
		}
		for _, ino := range listenInodes(f, port) {
			inodes[ino] = true
		}
		f.Close()
	}
	if len(inodes) == 0 {
		return ""
	}
	pid := socketOwner(inodes)
	if pid == 0 {
		return ""
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		// The process may have exited since; its pid is still worth
		// reporting.
		return fmt.Sprintf("pid %d", pid)
	}
	return fmt.Sprintf("pid %d (%s)", pid, strings.TrimSpace(string(comm)))
}

// listenInodes returns the socket inodes of the LISTEN entries on port in a
// /proc/net/tcp or /proc/net/tcp6 table. Lines are
// "sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...",
// with the local address as hex "ADDR:PORT".
func listenInodes(r io.Reader, port int) []string {
	var inodes []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[3] != tcpListen {
			continue // the header line, or a socket not listening
		}
		_, hexPort, ok := strings.Cut(fields[1], ":")
		if !ok {
			continue
		}
		p, err := strconv.ParseUint(hexPort, 16, 16)
		if err != nil || int(p) != port {
			continue
		}
		// Inode 0 belongs to a socket no process holds any more (or to
		// another network namespace); no fd will ever name it.
		if ino := fields[9]; ino != "0" {
			inodes = append(inodes, ino)
		}
	}
	return inodes
}

// socketOwner returns the pid of the first process found with an fd on one
// of the socket inodes, or 0 if none is visible.
func socketOwner(inodes map[string]bool) int {
	proc, err := os.Open("/proc")
	if err != nil {
		return 0
	}
	defer proc.Close()
	names, err := proc.Readdirnames(-1)
	if err != nil {
		return 0
	}
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid <= 0 {
			continue // not a process directory
		}
		if hasSocket(pid, inodes) {
			return pid
		}
	}
	return 0
}

// hasSocket reports whether process pid has an fd on one of the inodes.
// Processes whose fds cannot be read (other users, unless root) are skipped.
func hasSocket(pid int, inodes map[string]bool) bool {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	d, err := os.Open(dir)
	if err != nil {
		return false
	}
	fds, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return false
	}
	for _, fd := range fds {
		target, err := os.Readlink(dir + "/" + fd)
		if err != nil {
			continue
		}
		ino, ok := strings.CutPrefix(target, "socket:[")
		if !ok {
			continue
		}
		if inodes[strings.TrimSuffix(ino, "]")] {
			return true
		}
	}
	return false
}
