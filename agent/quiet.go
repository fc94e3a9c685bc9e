package agent

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// QuietLine is the last line an agent writes to its own stderr: it
// connected, and from here on its stdio goes nowhere (DetachStdio). A launcher that logs
// the agent's output stops at this line, so that whatever else still holds
// that pipe (a stage writing to /proc/PID/fd/2 of an ancestor) reaches no
// log. A stage cannot start before it: the plan follows the hello, which
// follows this line.
const QuietLine = "refline agent: connected; its own output ends here"

// DetachStdio points fd 0 at an empty pipe and fds 1 and 2 at a pipe this
// process drains and drops. A stage runs as the agent's user and could open
// the agent's stdio through /proc; the stage's output belongs on the
// protocol, where the server masks it. Pipes rather than /dev/null: an
// image (or a sandbox) may have a /dev/null its uid cannot write, and a
// write to a closed pipe on fd 1 or 2 would kill a Go program.
func DetachStdio() error {
	inR, inW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("detach stdio: %w", err)
	}
	inW.Close() // reads of fd 0 see the end at once
	defer inR.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("detach stdio: %w", err)
	}
	defer outW.Close()
	go func() { _, _ = io.Copy(io.Discard, outR) }()
	for fd, f := range []*os.File{inR, outW, outW} {
		if err := unix.Dup2(int(f.Fd()), fd); err != nil {
			return fmt.Errorf("detach stdio: fd %d: %w", fd, err)
		}
	}
	return nil
}

// NotDumpable makes this process not dumpable (prctl PR_SET_DUMPABLE 0):
// /proc/PID/{environ,mem,fd,maps} become root's, so a stage of the same
// unprivileged uid can neither read the agent's memory (the run's key, the
// plan's secrets) nor open its descriptors, nor ptrace it. A root stage
// (CAP_SYS_PTRACE) still can.
func NotDumpable() error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_DUMPABLE, 0): %w", err)
	}
	return nil
}
