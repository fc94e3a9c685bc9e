package agent

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// QuietLine is the last line an agent writes to its own stderr: it
// connected, and from here on its stdio is /dev/null. A launcher that logs
// the agent's output stops at this line, so that whatever else still holds
// that pipe (a stage writing to /proc/PID/fd/2 of an ancestor) reaches no
// log. A stage cannot start before it: the plan follows the hello, which
// follows this line.
const QuietLine = "refline agent: connected; its own output ends here"

// DetachStdio points fds 0, 1 and 2 at /dev/null. A stage runs as the
// agent's user and could open the agent's stdio through /proc; the stage's
// output belongs on the protocol, where the server masks it.
func DetachStdio() error {
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", os.DevNull, err)
	}
	defer null.Close()
	for fd := 0; fd <= 2; fd++ {
		if err := unix.Dup2(int(null.Fd()), fd); err != nil {
			return fmt.Errorf("point fd %d at %s: %w", fd, os.DevNull, err)
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
