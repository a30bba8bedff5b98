package worker

import (
	"fmt"
	"net"
	"os"
	"testing"

	"github.com/patchd/patchd/internal/sandbox"
)

// TestMain lets the test binary stand in for the programs a check runs:
// started as a check with one of these first arguments, it does that and
// exits instead of running the tests.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case sandbox.Subcommand: // as cmd/patchd does
			err := sandbox.Main(os.Args[2:])
			fmt.Println("patchd:", err)
			os.Exit(sandbox.ExitCode)
		case "__test-env": // print the environment, then fail so it is recorded
			for _, kv := range os.Environ() {
				fmt.Println(kv)
			}
			// The output is recorded with TMPDIR named $TMPDIR; its
			// value goes to a file in the working directory too.
			os.WriteFile("check-tmpdir.txt", []byte(os.Getenv("TMPDIR")), 0o644)
			os.Exit(1)
		case "__test-dial-mptcp": // connect with Multipath TCP to 127.0.0.1, port os.Args[2]
			if err := dialMPTCP(os.Args[2]); err != nil {
				fmt.Println(err)
				os.Exit(1)
			}
			fmt.Println("connected")
			os.Exit(0)
		case "__test-udp": // send a datagram to the UDP address os.Args[2]
			c, err := net.Dial("udp", os.Args[2])
			if err == nil {
				_, err = c.Write([]byte("leak"))
			}
			if err != nil {
				fmt.Println("udp:", err)
				os.Exit(1)
			}
			fmt.Println("sent")
			os.Exit(0)
		case "__test-dial": // connect to the TCP address os.Args[2]
			c, err := net.Dial("tcp", os.Args[2])
			if err != nil {
				fmt.Println("dial:", err)
				os.Exit(1)
			}
			c.Close()
			fmt.Println("connected")
			os.Exit(0)
		}
	}
	os.Exit(m.Run())
}
