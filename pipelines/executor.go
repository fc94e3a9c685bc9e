package pipelines

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Job is one stage's script, as an executor runs it.
type Job struct {
	Script string   // run with `sh -e`
	Dir    string   // working directory
	Env    []string // the whole environment; nothing else is inherited
	Output io.Writer
}

// Executor starts jobs. The local process executor is the default; a
// container or Kubernetes executor fits the same interface.
type Executor interface {
	Start(ctx context.Context, job Job) (Process, error)
}

// Process is a started job.
type Process interface {
	// Wait blocks until the job has ended and returns its exit code.
	Wait() (int, error)
	// Cancel stops the job: politely first, then by force.
	Cancel()
	// Handle identifies the job durably, so that a restarted server can
	// stop what a crashed one left running.
	Handle() string
}

// Local runs jobs as local processes, each in its own process group so
// that cancelling reaches every process the script started.
type Local struct {
	// Grace is how long a cancelled job has between SIGTERM and SIGKILL.
	Grace time.Duration
}

type localProcess struct {
	cmd   *exec.Cmd
	pgid  int
	grace time.Duration
	done  chan struct{}
	code  int
	err   error
}

// Start implements Executor.
func (l Local) Start(ctx context.Context, job Job) (Process, error) {
	cmd := exec.Command("/bin/sh", "-e", "-c", job.Script)
	cmd.Dir = job.Dir
	cmd.Env = job.Env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	cmd.Stdout = job.Output
	cmd.Stderr = job.Output
	cmd.Stdin = nil
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A job's background children may hold the output pipe open after
	// the script exits; do not wait for them beyond this.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start job: %w", err)
	}
	grace := l.Grace
	if grace == 0 {
		grace = 5 * time.Second
	}
	p := &localProcess{cmd: cmd, pgid: cmd.Process.Pid, grace: grace, done: make(chan struct{})}
	go p.wait()
	go func() {
		select {
		case <-ctx.Done():
			p.Cancel()
		case <-p.done:
		}
	}()
	return p, nil
}

func (p *localProcess) wait() {
	err := p.cmd.Wait()
	// Whatever the script left running in its group goes with it.
	_ = syscall.Kill(-p.pgid, syscall.SIGKILL)
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		p.code = ee.ExitCode()
		if p.code < 0 {
			p.code = 128 + int(ee.Sys().(syscall.WaitStatus).Signal())
		}
	case errors.Is(err, exec.ErrWaitDelay):
		p.code = p.cmd.ProcessState.ExitCode()
	default:
		p.code, p.err = -1, err
	}
	close(p.done)
}

func (p *localProcess) Wait() (int, error) {
	<-p.done
	return p.code, p.err
}

func (p *localProcess) Cancel() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(p.grace):
		_ = syscall.Kill(-p.pgid, syscall.SIGKILL)
	}
}

// Handle is "local:PGID:STARTTIME"; the start time (from /proc) tells a
// reused process id from the job's own.
func (p *localProcess) Handle() string {
	st, _ := procStartTime(p.pgid)
	return fmt.Sprintf("local:%d:%d", p.pgid, st)
}

// KillLeftover stops the process group named by a handle of a crashed
// server's job, if that group still exists and is the same one.
func KillLeftover(handle string) bool {
	f := strings.Split(handle, ":")
	if len(f) != 3 || f[0] != "local" {
		return false
	}
	pgid, err1 := strconv.Atoi(f[1])
	start, err2 := strconv.ParseUint(f[2], 10, 64)
	if err1 != nil || err2 != nil || pgid <= 1 {
		return false
	}
	if st, err := procStartTime(pgid); err != nil || st != start {
		// The leader is gone or the id was reused; members of the
		// group may remain, still identified by the group id.
		if !groupExists(pgid) || err == nil {
			return false
		}
	}
	return syscall.Kill(-pgid, syscall.SIGKILL) == nil
}

func groupExists(pgid int) bool {
	return syscall.Kill(-pgid, 0) == nil
}

// procStartTime reads a process's start time (field 22 of /proc/PID/stat).
func procStartTime(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	// The command name (field 2) may hold spaces; fields after it start
	// after the last ')'.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("bad /proc stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, errors.New("bad /proc stat")
	}
	return strconv.ParseUint(f[19], 10, 64)
}
