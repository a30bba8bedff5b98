package worker

import (
	"fmt"
	"strconv"
	"syscall"
)

// dialMPTCP connects to 127.0.0.1:port with a Multipath TCP socket, made by
// hand so that no library falls back to plain TCP.
func dialMPTCP(port string) error {
	const ipprotoMPTCP = 262
	p, err := strconv.Atoi(port)
	if err != nil {
		return err
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, ipprotoMPTCP)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer syscall.Close(fd)
	if err := syscall.Connect(fd, &syscall.SockaddrInet4{Port: p, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	return nil
}
