package pipelines

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/refline/refline/names"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// SandboxDir is where a job sees its workspace, whatever its host path.
const SandboxDir = "/workspace"

// sandboxUID is the unprivileged user (nobody) a job runs as inside its
// sandbox; when the server runs as root it is nobody outside too (jobUID).
const sandboxUID = "65534"

// ErrNoSandbox is what runs fail with when the sandbox executor has no
// usable bubblewrap.
var ErrNoSandbox = errors.New("the sandbox executor needs bubblewrap (bwrap), which is missing or unusable on this machine: install it with `apt-get install bubblewrap`, or run jobs without isolation with `refline serve --executor local`")

// SandboxConfig configures the sandbox executor.
type SandboxConfig struct {
	// Bwrap is the bubblewrap binary; "" looks up "bwrap" in PATH.
	Bwrap string
	// DataDir is the server's DATA: images live in DATA/images.
	DataDir string
	// DeployPaths are host directories deploy jobs see read-write, at
	// the same path.
	DeployPaths []string
	// Limits are the defaults for jobs that set none and the caps for
	// those that do; zero fields mean no limit of that kind.
	Limits Limits
	// Grace is how long a cancelled job has between SIGTERM and SIGKILL.
	Grace  time.Duration
	Logger *logrus.Entry
}

// Sandbox runs each job in a bubblewrap sandbox: new user, pid, mount, ipc,
// uts and (unless the job has the network) net namespaces; the workspace
// read-write at /workspace, a private /tmp, the host's /usr /bin /lib* /etc
// (or an image) read-only; nothing else of the host. The pid namespace
// ends with the stage, and with it every process the stage started.
type Sandbox struct {
	cfg      SandboxConfig
	bwrap    string
	unusable error
	hostRoot []string // bwrap arguments laying out the host's root
	cg       *cgroups // nil: limits are rlimits
	// cred is the host user bwrap starts as: nil (the server's own)
	// unless the server runs as root; then stage is where bwrap finds
	// its bind sources (see stageMount).
	cred  *syscall.Credential
	stage string
}

// NewSandbox finds bubblewrap, checks that it can build a sandbox here and
// prepares what every job shares. An unusable sandbox is not an error
// here: the server starts, and every run fails saying what to install
// (Usable tells why).
func NewSandbox(cfg SandboxConfig) *Sandbox {
	s := &Sandbox{cfg: cfg}
	if s.cfg.Grace == 0 {
		s.cfg.Grace = 5 * time.Second
	}
	if s.cfg.Logger == nil {
		s.cfg.Logger = logrus.NewEntry(logrus.New())
	}
	empty := filepath.Join(cfg.DataDir, "run", "sandbox-empty")
	if err := os.MkdirAll(filepath.Dir(empty), 0o700); err == nil {
		_ = os.WriteFile(empty, nil, 0o444)
	}
	s.cred = jobCredential()
	s.hostRoot = hostRootArgs(empty, s.cred == nil)
	bw := cfg.Bwrap
	if bw == "" {
		bw = "bwrap"
	}
	p, err := exec.LookPath(bw)
	if err != nil {
		s.unusable = fmt.Errorf("%w (%v)", ErrNoSandbox, err)
		return s
	}
	s.bwrap = p
	probe := append(append([]string{"--unshare-all", "--die-with-parent", "--uid", sandboxUID, "--gid", sandboxUID}, s.hostRoot...), "--proc", "/proc", "--dev", "/dev", "/bin/true")
	pc := exec.Command(p, probe...)
	pc.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	if out, err := pc.CombinedOutput(); err != nil {
		why := ErrNoSandbox
		if s.cred != nil && exec.Command(p, "--version").Run() == nil {
			why = errUserns
		}
		s.unusable = fmt.Errorf("%w (%s: %v: %s)", why, p, err, strings.TrimSpace(string(out)))
		return s
	}
	if s.cred != nil {
		if s.stage = stageMount(); s.stage == "" {
			s.unusable = fmt.Errorf("%w (none of /run /mnt /srv /media /opt is a directory others may enter, to lay bind sources under)", ErrNoSandbox)
			return s
		}
		// Deploys write their paths as the job's uid; the admin named
		// them with --deploy-path for exactly that.
		for _, d := range cfg.DeployPaths {
			if err := chownTree(d, jobUID, jobUID); err != nil {
				s.unusable = fmt.Errorf("--deploy-path %s must be writable by the jobs' uid %d: %w", d, jobUID, err)
				return s
			}
		}
	}
	s.cg = newCgroups(cfg.DataDir, s.cfg.Logger)
	closeInherited()
	return s
}

// closeInherited marks every descriptor above stderr close-on-exec. Go
// opens its own that way, but what the server inherited from its parent
// (a supervisor's pipe, a leaked socket) would otherwise pass through
// bwrap into every job.
func closeInherited() {
	if unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC) == nil {
		return
	}
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
		}
	}
}

// Close removes the server's job cgroup directories once no job is left
// in them (after the runner has shut down).
func (s *Sandbox) Close() {
	if s.cg == nil {
		return
	}
	for _, b := range s.cg.bases {
		ents, _ := os.ReadDir(b)
		for _, e := range ents {
			if e.IsDir() {
				(&jobCgroup{dirs: []string{filepath.Join(b, e.Name())}}).remove()
			}
		}
		_ = os.Remove(b)
	}
}

// Usable reports why no job can run, or nil.
func (s *Sandbox) Usable() error { return s.unusable }

// LimitsBy says what enforces memory and pids limits: "cgroup v1",
// "cgroup v2" or "rlimits".
func (s *Sandbox) LimitsBy() string {
	if s.cg == nil {
		return "rlimits"
	}
	return s.cg.kind
}

// hostRootArgs binds the host's /usr, /bin, /sbin, /lib* and /etc
// read-only (symlinks, as merged-/usr systems have, stay symlinks), and
// with hide, hides what in /etc only its owner may read (shadow files, host
// keys): the job, mapped to the server's user, may be the owner. A root
// server's jobs are nobody on the host, which the kernel keeps out.
func hostRootArgs(empty string, hide bool) []string {
	var args []string
	names := []string{"/usr", "/bin", "/sbin", "/etc"}
	if libs, _ := filepath.Glob("/lib*"); len(libs) > 0 {
		names = append(names, libs...)
	}
	for _, n := range names {
		args = append(args, bindEntry(n, n, n)...)
	}
	if !hide {
		return args
	}
	_ = filepath.WalkDir("/etc", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		switch {
		case d.IsDir() && fi.Mode().Perm()&0o005 != 0o005:
			args = append(args, "--tmpfs", p)
			return fs.SkipDir
		case fi.Mode().IsRegular() && fi.Mode().Perm()&0o004 == 0:
			args = append(args, "--ro-bind", empty, p)
		}
		return nil
	})
	return args
}

// bindEntry lays host path src at dst read-only: a symlink as the same
// symlink, anything else as a read-only bind of from (src, or where a
// root server's bwrap finds it); nothing if it is missing.
func bindEntry(src, from, dst string) []string {
	fi, err := os.Lstat(src)
	if err != nil {
		return nil
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		t, err := os.Readlink(src)
		if err != nil {
			return nil
		}
		return []string{"--symlink", t, dst}
	}
	return []string{"--ro-bind", from, dst}
}

// imageArgs lays the root filesystem DATA/images/NAME out read-only, entry
// by entry (the sandbox's own /proc, /dev, /tmp and /workspace go over it).
func (s *Sandbox) imageArgs(name string, stage func(string) string) ([]string, error) {
	if problem := ImageNameProblem(name); problem != "" {
		return nil, fmt.Errorf("image %q %s", name, problem)
	}
	dir := filepath.Join(s.cfg.DataDir, "images", name)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("image %s is not imported on this server: an admin imports it with `ssh HOST image import %s < rootfs.tar`", name, name)
	}
	from := stage(dir)
	var args []string
	for _, e := range ents {
		switch e.Name() {
		case "proc", "dev", "tmp", "sys", strings.TrimPrefix(SandboxDir, "/"):
			continue
		}
		args = append(args, bindEntry(filepath.Join(dir, e.Name()), filepath.Join(from, e.Name()), "/"+e.Name())...)
	}
	return args, nil
}

// ImageNameProblem says what is wrong with an image name, or "".
func ImageNameProblem(name string) string { return names.Why(names.Image(name)) }

// effective applies the server's defaults and caps to what a job asks for.
func (s *Sandbox) effective(want Limits) Limits { return effectiveLimits(want, s.cfg.Limits) }

// Prepare implements Executor.
func (s *Sandbox) Prepare(ctx context.Context, spec WorkspaceSpec) (Workspace, error) {
	if s.unusable != nil {
		return nil, s.unusable
	}
	lim := s.effective(spec.Limits)
	// stage names where bwrap finds a bind source: itself, or for a root
	// server's bwrap a bind of it under s.stage (startStaged).
	var staged []string
	stage := func(p string) string {
		if s.cred == nil {
			return p
		}
		staged = append(staged, p)
		return filepath.Join(s.stage, strconv.Itoa(len(staged)-1))
	}
	args := []string{"--unshare-all", "--die-with-parent", "--new-session",
		"--uid", sandboxUID, "--gid", sandboxUID, "--hostname", "refline-job"}
	if spec.Network {
		args = append(args, "--share-net")
	}
	if spec.Image != "" {
		img, err := s.imageArgs(spec.Image, stage)
		if err != nil {
			return nil, err
		}
		args = append(args, img...)
	} else {
		args = append(args, s.hostRoot...)
	}
	args = append(args, "--proc", "/proc", "--dev", "/dev")
	if s.cred != nil {
		args = append(args, devArgs(s.stage)...)
	}
	if lim.Disk > 0 {
		args = append(args, "--size", strconv.FormatInt(lim.Disk, 10))
	}
	args = append(args, "--tmpfs", "/tmp")
	if spec.Deploy {
		for _, p := range s.cfg.DeployPaths {
			args = append(args, "--bind", stage(p), p)
		}
	}
	if err := makeWorkspace(ctx, spec); err != nil {
		return nil, err
	}
	if s.cred != nil {
		// The server laid the workspace out as root; the job writes it.
		if err := chownTree(spec.Dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			return nil, fmt.Errorf("give the workspace to the job's uid: %w", err)
		}
	}
	args = append(args, "--bind", stage(spec.Dir), SandboxDir, "--chdir", SandboxDir)
	env := make([]string, 0, len(spec.Env)+1)
	for _, e := range spec.Env {
		if !strings.HasPrefix(e, "TMPDIR=") {
			env = append(env, e)
		}
	}
	env = append(env, "TMPDIR=/tmp")
	return &sandboxWorkspace{s: s, spec: spec, args: args, env: env, lim: lim, staged: staged}, nil
}

type sandboxWorkspace struct {
	s      *Sandbox
	spec   WorkspaceSpec
	args   []string
	env    []string
	lim    Limits
	staged []string // host paths bwrap finds under s.stage
}

func (w *sandboxWorkspace) Collect(ctx context.Context) (string, error) { return w.spec.Dir, nil }
func (w *sandboxWorkspace) Close() error                                { return nil }

// Start implements Workspace: bwrap starts blocked (--block-fd) and says
// its namespace's init (--info-fd); the init joins the job's cgroups (or
// gets its rlimits) before the script starts, so every process of the
// script is counted.
func (w *sandboxWorkspace) Start(ctx context.Context, job Job) (Process, error) {
	infoR, infoW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	blockR, blockW, err := os.Pipe()
	if err != nil {
		infoR.Close()
		infoW.Close()
		return nil, err
	}
	defer infoR.Close()
	defer blockW.Close()
	args := append(append([]string{}, w.args...), "--info-fd", "3", "--block-fd", "4", "/bin/sh", "-e", "-c", job.Script)
	cmd := exec.Command(w.s.bwrap, args...)
	cmd.Env = w.env
	cmd.Stdout, cmd.Stderr = job.Output, job.Output
	cmd.ExtraFiles = []*os.File{infoW, blockR}
	// --die-with-parent ends it with the server.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: w.s.cred}
	cmd.WaitDelay = time.Second
	release := make(chan struct{})
	var thread stagedThread
	if w.s.cred == nil {
		close(release)
		err = cmd.Start()
	} else {
		thread, err = startStaged(cmd, w.s.stage, w.staged, release)
	}
	infoW.Close()
	blockR.Close()
	if err != nil {
		if w.s.cred != nil {
			close(release)
		}
		return nil, fmt.Errorf("start sandbox: %w", err)
	}
	p := &sandboxProcess{cmd: cmd, grace: w.s.cfg.Grace, done: make(chan struct{}), release: release}
	fail := func(err error) (Process, error) {
		// The script has not started (bwrap still blocks on fd 4); end
		// the namespace before closing that pipe lets it go on.
		if p.init > 1 {
			_ = syscall.Kill(p.init, syscall.SIGKILL)
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		p.releaseThread()
		if p.cg != nil {
			p.cg.remove()
		}
		return nil, err
	}
	var info struct {
		ChildPid int `json:"child-pid"`
	}
	if err := json.NewDecoder(bufio.NewReader(infoR)).Decode(&info); err != nil || info.ChildPid <= 1 {
		return fail(fmt.Errorf("start sandbox: no namespace info from bwrap: %v", err))
	}
	p.init = info.ChildPid
	p.start, _ = procStartTime(p.init)
	if w.s.cg != nil {
		cg, err := w.s.cg.create(w.lim, cmd.Process.Pid, p.init)
		if err != nil {
			return fail(fmt.Errorf("sandbox limits: %w", err))
		}
		p.cg = cg
	}
	if w.s.cred == nil {
		err = setRlimits(p.init, w.lim, w.s.cg == nil)
	} else {
		err = thread.asJob(w.s.cred, func() error { return setRlimits(p.init, w.lim, w.s.cg == nil) })
	}
	if err != nil {
		return fail(fmt.Errorf("sandbox limits: %w", err))
	}
	if _, err := blockW.Write([]byte{1}); err != nil {
		return fail(fmt.Errorf("start sandbox: %w", err))
	}
	tmp := func() int64 { return tmpHeld(p.init) }
	if w.s.cred != nil {
		// A root server may lack CAP_SYS_PTRACE (containers drop it),
		// without which only the job's uid may look into its sandbox.
		tmp = func() int64 {
			held := make(chan int64, 1)
			thread <- func() { held <- tmpHeld(p.init) }
			return <-held
		}
	}
	p.out = job.Output
	p.watch = startDiskWatch(w.lim.Disk, diskDir(w.spec), tmp, p.kill)
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

// tmpHeld is what the private /tmp of the sandbox whose init is pid holds:
// 0 until bubblewrap has pivoted into the sandbox's root (before, that
// path is the host's /tmp) and for anything but the tmpfs it mounts there.
func tmpHeld(pid int) int64 {
	root := fmt.Sprintf("/proc/%d/root", pid)
	var in, host unix.Stat_t
	if unix.Stat(root, &in) != nil || unix.Stat("/", &host) != nil || (in.Dev == host.Dev && in.Ino == host.Ino) {
		return 0
	}
	var fs unix.Statfs_t
	if unix.Statfs(root+"/tmp", &fs) != nil || fs.Type != unix.TMPFS_MAGIC {
		return 0
	}
	return int64(fs.Blocks-fs.Bfree) * fs.Bsize
}

// setRlimits bounds the sandbox's init (and so everything it starts): the
// largest file always; with no cgroups, memory (address space) and
// processes too.
func setRlimits(pid int, lim Limits, all bool) error {
	set := func(res int, v uint64) error {
		return unix.Prlimit(pid, res, &unix.Rlimit{Cur: v, Max: v}, nil)
	}
	if lim.Disk > 0 {
		if err := set(unix.RLIMIT_FSIZE, uint64(lim.Disk)); err != nil {
			return fmt.Errorf("RLIMIT_FSIZE: %w", err)
		}
	}
	if !all {
		return nil
	}
	if lim.Memory > 0 {
		if err := set(unix.RLIMIT_AS, uint64(lim.Memory)); err != nil {
			return fmt.Errorf("RLIMIT_AS: %w", err)
		}
	}
	if lim.Pids > 0 {
		if err := set(unix.RLIMIT_NPROC, uint64(lim.Pids)); err != nil {
			return fmt.Errorf("RLIMIT_NPROC: %w", err)
		}
	}
	return nil
}

type sandboxProcess struct {
	cmd     *exec.Cmd
	release chan struct{} // closed once bwrap has ended: frees startStaged's thread
	once    sync.Once
	init    int    // host pid of the pid namespace's init
	start   uint64 // its start time, for the handle
	cg      *jobCgroup
	watch   *diskWatch // nil: no disk limit
	out     io.Writer  // the job's output, for the disk limit's message
	grace   time.Duration
	done    chan struct{}
	code    int
	err     error
}

// releaseThread lets the thread that started bwrap end.
func (p *sandboxProcess) releaseThread() {
	p.once.Do(func() {
		select {
		case <-p.release:
		default:
			close(p.release)
		}
	})
}

func (p *sandboxProcess) wait() {
	err := p.cmd.Wait()
	// Before the thread goes: a root server's watchdog may be asking it.
	overDisk := p.watch.finish(p.out)
	p.releaseThread()
	// bwrap exits when the namespace's init does; the kernel has then
	// ended every process in it. Kill it anyway if bwrap died alone.
	p.kill()
	p.code, p.err = exitStatus(p.cmd, err)
	if overDisk != nil {
		p.err = overDisk
	}
	if p.cg != nil {
		if p.cg.oom() {
			p.err = nil
			if p.code == 0 {
				p.code = 137
			}
		}
		// Its processes are gone; the kernel may take a moment more to
		// let the directories go, which the stage need not wait for.
		go p.cg.remove()
	}
	close(p.done)
}

// kill ends the namespace: SIGKILL to its init takes every process in it.
func (p *sandboxProcess) kill() {
	if st, err := procStartTime(p.init); err == nil && st == p.start {
		_ = syscall.Kill(p.init, syscall.SIGKILL)
	}
	if p.cg != nil {
		p.cg.killAll()
	}
}

func (p *sandboxProcess) Wait() (int, error) {
	<-p.done
	return p.code, p.err
}

// Cancel sends SIGTERM to the script's process group (its session, made
// by --new-session), then after the grace ends the whole namespace.
func (p *sandboxProcess) Cancel() {
	select {
	case <-p.done:
		return
	default:
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", p.init, p.init)); err == nil {
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
				_ = syscall.Kill(-pid, syscall.SIGTERM)
				_ = syscall.Kill(pid, syscall.SIGTERM)
			}
		}
	}
	select {
	case <-p.done:
	case <-time.After(p.grace):
		p.kill()
	}
}

// Handle is "sandbox:PID:STARTTIME" of the namespace's init.
func (p *sandboxProcess) Handle() string {
	return fmt.Sprintf("sandbox:%d:%d", p.init, p.start)
}

// killSandbox ends the pid namespace a crashed server's sandbox handle
// names, if its init is still the same process.
func killSandbox(pidText, startText string) bool {
	pid, err1 := strconv.Atoi(pidText)
	start, err2 := strconv.ParseUint(startText, 10, 64)
	if err1 != nil || err2 != nil || pid <= 1 {
		return false
	}
	if st, err := procStartTime(pid); err != nil || st != start {
		return false
	}
	return syscall.Kill(pid, syscall.SIGKILL) == nil
}

// cgroups makes one cgroup per job under the server's own, in cgroup v2
// when this process may delegate controllers there, else in the v1 pids
// and memory hierarchies when they are mounted and writable.
type cgroups struct {
	kind string
	// bases are the directories job cgroups are made in: one for v2,
	// pids and memory for v1.
	bases []string
	v2    bool
	n     atomic.Int64 // names each job's cgroup
}

func newCgroups(data string, log *logrus.Entry) *cgroups {
	sum := sha256.Sum256([]byte(data))
	name := "refline-" + hex.EncodeToString(sum[:6])
	own := map[string]string{}
	if b, err := os.ReadFile("/proc/self/cgroup"); err == nil {
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			f := strings.SplitN(line, ":", 3)
			if len(f) == 3 {
				for _, c := range strings.Split(f[1], ",") {
					own[c] = f[2]
				}
			}
		}
	}
	try := func(c *cgroups) *cgroups {
		for _, b := range c.bases {
			if err := os.MkdirAll(b, 0o755); err != nil {
				return nil
			}
			// What a crashed instance left: its processes go, then the dirs.
			ents, _ := os.ReadDir(b)
			for _, e := range ents {
				if e.IsDir() {
					jc := &jobCgroup{dirs: []string{filepath.Join(b, e.Name())}}
					jc.killAll()
					jc.remove()
				}
			}
		}
		return c
	}
	if ctl, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers"); err == nil && strings.Contains(string(ctl), "pids") {
		// The controllers must be enabled from the server's own cgroup
		// down, which the kernel allows only where no process sits
		// (the root, or a delegated cgroup the server left for a leaf).
		parent := filepath.Join("/sys/fs/cgroup", own[""])
		base := filepath.Join(parent, name)
		if os.WriteFile(filepath.Join(parent, "cgroup.subtree_control"), []byte("+pids +memory"), 0o644) == nil {
			if c := try(&cgroups{kind: "cgroup v2", bases: []string{base}, v2: true}); c != nil {
				if os.WriteFile(filepath.Join(base, "cgroup.subtree_control"), []byte("+pids +memory"), 0o644) == nil {
					return c
				}
			}
		}
	}
	if own["pids"] != "" && own["memory"] != "" {
		c := try(&cgroups{kind: "cgroup v1", bases: []string{
			filepath.Join("/sys/fs/cgroup/pids", own["pids"], name),
			filepath.Join("/sys/fs/cgroup/memory", own["memory"], name),
		}})
		if c != nil {
			return c
		}
	}
	log.Debug("no writable cgroup hierarchy: job limits are rlimits")
	return nil
}

type jobCgroup struct {
	dirs []string
	v2   bool
}

// create makes a job's cgroup(s) with its limits and moves pids into them.
func (c *cgroups) create(lim Limits, pids ...int) (*jobCgroup, error) {
	id := fmt.Sprintf("job-%d-%d", os.Getpid(), c.n.Add(1))
	jc := &jobCgroup{v2: c.v2}
	for _, b := range c.bases {
		d := filepath.Join(b, id)
		if err := os.Mkdir(d, 0o755); err != nil {
			jc.remove()
			return nil, err
		}
		jc.dirs = append(jc.dirs, d)
	}
	write := func(dir, file, v string) error {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(v), 0o644); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		return nil
	}
	var err error
	for _, d := range jc.dirs {
		isPids := c.v2 || strings.HasPrefix(d, "/sys/fs/cgroup/pids/")
		isMem := c.v2 || strings.HasPrefix(d, "/sys/fs/cgroup/memory/")
		if isPids && lim.Pids > 0 && err == nil {
			err = write(d, "pids.max", strconv.Itoa(lim.Pids))
		}
		if isMem && lim.Memory > 0 && err == nil {
			if c.v2 {
				err = write(d, "memory.max", strconv.FormatInt(lim.Memory, 10))
				if err == nil {
					err = write(d, "memory.swap.max", "0")
					if err != nil {
						err = nil // no swap accounting: memory.max alone
					}
				}
			} else {
				err = write(d, "memory.limit_in_bytes", strconv.FormatInt(lim.Memory, 10))
			}
		}
		for _, pid := range pids {
			if err == nil {
				err = write(d, "cgroup.procs", strconv.Itoa(pid))
			}
		}
	}
	if err != nil {
		jc.remove()
		return nil, err
	}
	return jc, nil
}

// oom reports whether the kernel killed a process of the job for memory.
func (jc *jobCgroup) oom() bool {
	for _, d := range jc.dirs {
		b, err := os.ReadFile(filepath.Join(d, "memory.events"))
		if err != nil {
			b, err = os.ReadFile(filepath.Join(d, "memory.oom_control"))
		}
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) == 2 && (f[0] == "oom_kill") && f[1] != "0" {
				return true
			}
		}
	}
	return false
}

// killAll SIGKILLs every process in the job's cgroups.
func (jc *jobCgroup) killAll() {
	for _, d := range jc.dirs {
		b, _ := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
}

// remove deletes the job's cgroups once their processes are gone.
func (jc *jobCgroup) remove() {
	for _, d := range jc.dirs {
		for i := 0; i < 100; i++ {
			if err := os.Remove(d); err == nil || errors.Is(err, fs.ErrNotExist) {
				break
			}
			jc.killAll()
			time.Sleep(2 * time.Millisecond)
		}
	}
}
