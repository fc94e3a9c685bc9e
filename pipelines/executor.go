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

	"github.com/refline/refline/pipelines/spec"
)

// Job is one stage's script, as an executor runs it.
type Job struct {
	Name   string   // the stage's name, for messages
	Script string   // run with `sh -e`
	Dir    string   // working directory (set by the workspace)
	Env    []string // the whole environment; nothing else is inherited (set by the workspace)
	Output io.Writer
}

// Executor prepares the place a whole run executes in: its workspace, the
// inputs laid into it, its environment and its image. The local process
// executor, the sandbox and a later Kubernetes executor all fit it.
type Executor interface {
	Prepare(ctx context.Context, spec WorkspaceSpec) (Workspace, error)
}

// WorkspaceSpec is what a run's jobs get.
type WorkspaceSpec struct {
	// Dir is the host directory the runner keeps the workspace in; it
	// removes it after the run (and after a crash).
	Dir string
	// Fill lays the checkout and the inputs into dir.
	Fill func(ctx context.Context, dir string) error
	// Env is every job's whole environment.
	Env []string
	// Image names DATA/images/NAME as the jobs' root; "" for the host's.
	Image string
	// Network gives the jobs the host's network.
	Network bool
	// Limits are what the pipeline asks for; the executor applies its
	// defaults and caps.
	Limits Limits
	// Deploy marks a deploy run: it sees the allowed deploy paths.
	Deploy bool
	// Repo, Pipeline and Run name the run, for executors that start its
	// jobs elsewhere (labels, messages); zero values are allowed.
	Repo, Pipeline string
	Run            int
	// Deadline is the sum of the run's stage timeouts, a bound for
	// executors that must give one up front (0: none known).
	Deadline time.Duration
	// DiskDir is the part of Dir the disk limit counts, for a workspace
	// that also holds what the job did not write (an agent's binary);
	// "" counts all of Dir.
	DiskDir string
}

// Workspace is a prepared run: stages start in it one at a time, and its
// files become the artifact.
type Workspace interface {
	// Start starts one stage; its output streams to job.Output.
	Start(ctx context.Context, job Job) (Process, error)
	// Collect returns a host directory holding the workspace's files
	// after the stages, to record the artifact from.
	Collect(ctx context.Context) (string, error)
	// Close ends whatever is left of the run and releases its resources.
	Close() error
}

// Limits bound one job: what a pipeline file asks for (spec.Limits) and
// the executor's defaults and caps are the same three numbers.
type Limits = spec.Limits

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

// Local runs jobs as local processes of the server's own user, each in
// its own process group so that cancelling reaches every process the script
// started. It isolates nothing: jobs see all the server sees.
type Local struct {
	// Grace is how long a cancelled job has between SIGTERM and SIGKILL.
	Grace time.Duration
	// Limits are the defaults and caps of the jobs' limits, as the
	// sandbox's; only Disk applies here, as the workspace's total size
	// (the job may write anywhere else the server may).
	Limits Limits
}

// Prepare implements Executor: the workspace is the host directory itself.
func (l Local) Prepare(ctx context.Context, spec WorkspaceSpec) (Workspace, error) {
	if err := makeWorkspace(ctx, spec); err != nil {
		return nil, err
	}
	return localWorkspace{l, spec, effectiveLimits(spec.Limits, l.Limits).Disk}, nil
}

type localWorkspace struct {
	l    Local
	spec WorkspaceSpec
	disk int64 // the disk limit; 0 for none
}

func (w localWorkspace) Start(ctx context.Context, job Job) (Process, error) {
	job.Dir, job.Env = w.spec.Dir, w.spec.Env
	return w.l.start(ctx, job, diskDir(w.spec), w.disk)
}

// diskDir is the directory a workspace's disk limit counts.
func diskDir(spec WorkspaceSpec) string {
	if spec.DiskDir != "" {
		return spec.DiskDir
	}
	return spec.Dir
}

// effectiveLimits applies an executor's defaults and caps (server) to what
// a job asks for (want).
func effectiveLimits(want, server Limits) Limits {
	pick := func(want, server int64) int64 {
		if want <= 0 || (server > 0 && want > server) {
			return server
		}
		return want
	}
	return Limits{
		Memory: pick(want.Memory, server.Memory),
		Pids:   int(pick(int64(want.Pids), int64(server.Pids))),
		Disk:   pick(want.Disk, server.Disk),
	}
}

func (w localWorkspace) Collect(ctx context.Context) (string, error) { return w.spec.Dir, nil }
func (w localWorkspace) Close() error                                { return nil }

// makeWorkspace creates an empty workspace directory and fills it.
func makeWorkspace(ctx context.Context, spec WorkspaceSpec) error {
	_ = os.RemoveAll(spec.Dir)
	if err := os.MkdirAll(spec.Dir, 0o755); err != nil {
		return fmt.Errorf("create workspace: %w", err)
	}
	if spec.Fill != nil {
		return spec.Fill(ctx, spec.Dir)
	}
	return nil
}

type localProcess struct {
	cmd   *exec.Cmd
	watch *diskWatch // nil: no disk limit
	out   io.Writer
	pgid  int
	grace time.Duration
	done  chan struct{}
	code  int
	err   error
}

// Start runs one job as a local process group (the stage primitive of the
// local workspace).
func (l Local) Start(ctx context.Context, job Job) (Process, error) {
	return l.start(ctx, job, "", 0)
}

// start runs one job with its workspace's disk limit (0: none) on dir.
func (l Local) start(ctx context.Context, job Job, dir string, disk int64) (Process, error) {
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
	p := &localProcess{cmd: cmd, out: job.Output, pgid: cmd.Process.Pid, grace: grace, done: make(chan struct{})}
	p.watch = startDiskWatch(disk, dir, nil, func() { _ = syscall.Kill(-p.pgid, syscall.SIGKILL) })
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
	p.code, p.err = exitStatus(p.cmd, err)
	if over := p.watch.finish(p.out); over != nil {
		p.err = over
	}
	close(p.done)
}

// exitStatus turns what cmd.Wait returned into a stage's exit code the way
// a shell reports it (128+N for a signal), and an error only when the
// process could not be waited for at all.
func exitStatus(cmd *exec.Cmd, err error) (int, error) {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee):
		if code := ee.ExitCode(); code >= 0 {
			return code, nil
		}
		return 128 + int(ee.Sys().(syscall.WaitStatus).Signal()), nil
	case errors.Is(err, exec.ErrWaitDelay):
		return cmd.ProcessState.ExitCode(), nil
	default:
		return -1, err
	}
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

// KillLeftover stops what a handle of a crashed server's job names, if it
// still exists and is the same: a local job's process group, or a
// sandbox's pid namespace (its init, whose end ends every process in it).
func KillLeftover(handle string) bool {
	f := strings.Split(handle, ":")
	if len(f) == 3 && f[0] == "sandbox" {
		return killSandbox(f[1], f[2])
	}
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
