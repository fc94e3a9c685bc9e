package gitserver

import (
	"net"
	"syscall"
)

// The OpenSSH client turns Nagle's algorithm off only once the session is
// open, so during the key exchange its second small write waits for the
// server's ACK, which Linux delays by up to 40 ms: two such waits were most
// of a fresh connection's setup time (docs/BENCHMARKS.md). Asking the
// kernel for immediate ACKs removes them. Quick-ACK mode is not sticky (the
// kernel leaves it after a few segments), so it is set again after every
// read; setting it only during the first reads did not help, the waits also
// come during authentication. One setsockopt per read is noise next to the
// read itself.

type quickAckListener struct{ net.Listener }

func (l quickAckListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c, nil
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return c, nil
	}
	return &quickAckConn{TCPConn: tc, raw: raw}, nil
}

type quickAckConn struct {
	*net.TCPConn
	raw syscall.RawConn
}

func (c *quickAckConn) Read(p []byte) (int, error) {
	n, err := c.TCPConn.Read(p)
	// Set after the read: it also sends at once the ACK the kernel was
	// holding back for what was just read.
	_ = c.raw.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
	return n, err
}
