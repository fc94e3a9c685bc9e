package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The job sections (pipelines, deploys, the end-to-end artifact) time how
// long refline takes to start a process after a push or a deploy command.
// The job itself takes the time: its first line runs `date +%s%N` into a
// file the benchmark polls, so the interval covers everything up to a
// process of the user's actually running. Client and jobs share the
// machine's clock.

// reflineTarget is the running refline server the job sections drive.
type reflineTarget struct {
	url  string // ssh://git@127.0.0.1:PORT
	data string // its --data directory
	host string
	port string
	// ssh is the client's ssh command line (GIT_SSH_COMMAND), for the
	// server's own commands such as `deploy`.
	ssh []string
	// log is refline's log file (text format), for the durations of its
	// git sessions; empty leaves them out.
	log string
	// bin is the refline binary the hooks run; empty leaves out timing
	// its start.
	bin string
}

func (t *reflineTarget) register(fs *flag.FlagSet) {
	fs.StringVar(&t.url, "refline-url", "", "refline's URL prefix, e.g. ssh://git@127.0.0.1:PORT/")
	fs.StringVar(&t.data, "refline-data", "", "refline's --data directory (repositories, run state, run/http.addr)")
	fs.StringVar(&t.log, "refline-log", "", "refline's log (text format), for how long its git sessions took; optional")
	fs.StringVar(&t.bin, "refline-bin", "", "the refline binary its hooks run, to time a hook process's start; optional")
}

func (t *reflineTarget) init() error {
	if t.url == "" || t.data == "" {
		return errors.New("-refline-url and -refline-data are required")
	}
	u, err := url.Parse(t.url)
	if err != nil {
		return fmt.Errorf("-refline-url: %w", err)
	}
	t.host, t.port = u.Hostname(), u.Port()
	t.url = strings.TrimSuffix(t.url, "/")
	t.ssh = strings.Fields(os.Getenv("GIT_SSH_COMMAND"))
	if len(t.ssh) == 0 {
		t.ssh = []string{"ssh"}
	}
	return nil
}

func (t *reflineTarget) repoURL(name string) string { return t.url + "/" + name + ".git" }
func (t *reflineTarget) gitDir(name string) string {
	return filepath.Join(t.data, "repos", name+".git")
}

// command is `ssh -p PORT git@HOST args...`.
func (t *reflineTarget) command(args ...string) []string {
	cmd := append([]string{}, t.ssh...)
	cmd = append(cmd, "-p", t.port, "git@"+t.host)
	return append(cmd, args...)
}

// noDelayProxy is the ssh option that connects through `refline-bench nc`,
// whose socket has TCP_NODELAY set (Go's default). OpenSSH's client sets it
// only once the session is open; during the key exchange and
// authentication its small writes wait for the server's delayed ACKs
// (Nagle's algorithm), which this shows.
func noDelayProxy() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	return "ProxyCommand=" + self + " nc %h %p", nil
}

// receivePacks returns how long each `git receive-pack` that refline ran
// for repo took, in order, from the "git session" lines of its log.
func (t *reflineTarget) receivePacks(repo string) ([]time.Duration, error) {
	if t.log == "" {
		return nil, nil
	}
	b, err := os.ReadFile(t.log)
	if err != nil {
		return nil, err
	}
	var out []time.Duration
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.Contains(l, `msg="git session"`) || !strings.Contains(l, " service=receive-pack") ||
			!strings.Contains(l, " repo="+repo+" ") {
			continue
		}
		_, v, ok := strings.Cut(l, " duration=")
		if !ok {
			continue
		}
		v, _, _ = strings.Cut(v, " ")
		if d, err := time.ParseDuration(v); err == nil {
			out = append(out, d)
		}
	}
	return out, nil
}

func (t *reflineTarget) metrics() (metrics, error) {
	addr, err := os.ReadFile(filepath.Join(t.data, "run", "http.addr"))
	if err != nil {
		return nil, err
	}
	return scrape("http://" + strings.TrimSpace(string(addr)) + "/metrics")
}

// runInfo is the part of a run's run.json (DATA/runs/REPO/PIPELINE/N)
// that the breakdowns use.
type runInfo struct {
	Number   int       `json:"number"`
	Kind     string    `json:"kind"`
	State    string    `json:"state"`
	Queued   time.Time `json:"queued"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Error    string    `json:"error"`
	Stages   []struct {
		Name     string    `json:"name"`
		State    string    `json:"state"`
		Started  time.Time `json:"started"`
		Finished time.Time `json:"finished"`
	} `json:"stages"`
}

func (t *reflineTarget) run(repo, pipeline string, n int) (*runInfo, error) {
	p := filepath.Join(t.data, "runs", strings.ReplaceAll(repo, "/", "%2F"), pipeline, strconv.Itoa(n), "run.json")
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var r runInfo
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return &r, nil
}

// finished counts the runs of kind that have ended, from refline_runs_total.
func finished(m metrics, kind string) float64 {
	return m.sum("refline_runs_total", `kind="`+kind+`"`)
}

// waitIdle waits until want runs of kind have ended and nothing runs or
// waits: the server is back at rest, run records and follow-ups included
// (refline_runs_running drops only after them), so the next timed command
// finds it idle. It returns the last scrape.
func (t *reflineTarget) waitIdle(kind string, want float64) (metrics, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		m, err := t.metrics()
		if err != nil {
			return nil, err
		}
		if finished(m, kind) >= want && m.sum("refline_runs_running") == 0 && m.sum("refline_runs_queued") == 0 {
			return m, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("timed out waiting for %.0f %s runs to end (%.0f ended, %.0f running, %.0f queued)",
				want, kind, finished(m, kind), m.sum("refline_runs_running"), m.sum("refline_runs_queued"))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var runNumber = regexp.MustCompile(`#(\d+) (started|deploying)`)

// runNumberIn finds the run number refline announced in a command's output
// ("web #13 started for …", "web #14 deploying …").
func runNumberIn(out string) (int, error) {
	m := runNumber.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no run announced in %q", strings.TrimSpace(out))
	}
	return strconv.Atoi(m[1])
}

// waitStamp polls, every millisecond, for the `date +%s%N` a job writes
// into path, and returns that time.
func waitStamp(path string, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		b, err := os.ReadFile(path)
		if err == nil && bytes.HasSuffix(b, []byte("\n")) {
			ns, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			if err != nil {
				return time.Time{}, fmt.Errorf("%s: %w", path, err)
			}
			return time.Unix(0, ns), nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("no timestamp in %s after %s", path, timeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// timed runs a client command in dir and returns when it started, how long
// it took and its combined output.
func timed(dir string, argv ...string) (time.Time, time.Duration, string, error) {
	return timedEnv(dir, nil, argv...)
}

// timedEnv is timed with env added to the environment.
func timedEnv(dir string, env []string, argv ...string) (time.Time, time.Duration, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return start, d, out.String(), fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(out.String()))
	}
	return start, d, out.String(), nil
}

// clientRepo is a working repository on the client side.
type clientRepo struct {
	dir string
	// env is added to the environment of its pushes.
	env []string
}

// newClientRepo creates dir with files (path → content; a content starting
// with "#!" is made executable) as its first commit, and origin as remote.
func newClientRepo(dir, origin string, files map[string]string) (*clientRepo, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	for p, content := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return nil, err
		}
		mode := fs.FileMode(0o644)
		if strings.HasPrefix(content, "#!") {
			mode = 0o755
		}
		if err := os.WriteFile(full, []byte(content), mode); err != nil {
			return nil, err
		}
	}
	for _, args := range [][]string{
		{"init", "-q", "--initial-branch=master", dir},
		{"-C", dir, "add", "-A"},
		{"-C", dir, "commit", "-q", "-m", "first version"},
		{"-C", dir, "remote", "add", "origin", origin},
	} {
		if _, err := git("", args...); err != nil {
			return nil, err
		}
	}
	return &clientRepo{dir: dir}, nil
}

// change commits a new version of one small file and returns the commit.
func (c *clientRepo) change(path, content, subject string) (string, error) {
	if err := os.WriteFile(filepath.Join(c.dir, path), []byte(content), 0o644); err != nil {
		return "", err
	}
	if _, err := git(c.dir, "commit", "-q", "-a", "-m", subject); err != nil {
		return "", err
	}
	return git(c.dir, "rev-parse", "HEAD")
}

func (c *clientRepo) head() (string, error) { return git(c.dir, "rev-parse", "HEAD") }

// refMtime is when git last wrote a loose ref: update-ref writes the lock
// file and renames it into place, so this is the moment the ref moved.
func refMtime(gitDir, ref string) (time.Time, error) {
	fi, err := os.Stat(filepath.Join(gitDir, filepath.FromSlash(ref)))
	if err != nil {
		return time.Time{}, err
	}
	return fi.ModTime(), nil
}

// hookTimes accumulates refline_hook_duration_seconds by hook over
// several pairs of scrapes.
type hookTimes struct {
	sum, count map[string]float64
}

func newHookTimes() *hookTimes {
	return &hookTimes{sum: map[string]float64{}, count: map[string]float64{}}
}

func (h *hookTimes) add(before, after metrics) {
	const name = "refline_hook_duration_seconds"
	for k, v := range after {
		base, lbls, _ := strings.Cut(k, "{")
		if base != name+"_count" && base != name+"_sum" {
			continue
		}
		i := strings.Index(lbls, `hook="`)
		if i < 0 {
			continue
		}
		hook := lbls[i+6:]
		hook = hook[:strings.IndexByte(hook, '"')]
		if base == name+"_count" {
			h.count[hook] += v - before[k]
		} else {
			h.sum[hook] += v - before[k]
		}
	}
}

// describe lists each hook's calls per operation and mean time per call.
func (h *hookTimes) describe(ops int) string {
	var parts []string
	for _, hook := range []string{"pre-receive", "reference-transaction", "post-receive"} {
		if h.count[hook] == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %.1f× %s", hook, h.count[hook]/float64(ops),
			secondsMs(h.sum[hook]/h.count[hook])))
	}
	for hook, n := range h.count {
		if n > 0 && hook != "pre-receive" && hook != "reference-transaction" && hook != "post-receive" {
			parts = append(parts, fmt.Sprintf("%s %.1f× %s", hook, n/float64(ops), secondsMs(h.sum[hook]/n)))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// breakdown splits the time from a client command's start to the job's
// timestamp at the points the server's run state records.
type breakdown struct {
	toQueued, toStarted, toStage, toStamp []time.Duration
}

func (b *breakdown) add(start, stamp time.Time, r *runInfo) {
	if len(r.Stages) == 0 || r.Stages[0].Started.IsZero() {
		return
	}
	b.toQueued = append(b.toQueued, r.Queued.Sub(start))
	b.toStarted = append(b.toStarted, r.Started.Sub(r.Queued))
	b.toStage = append(b.toStage, r.Stages[0].Started.Sub(r.Started))
	b.toStamp = append(b.toStamp, stamp.Sub(r.Stages[0].Started))
}

func (b *breakdown) rows(w func(string, ...any), command, stage string) {
	w("| %s → run queued (`queued` in run.json) | %s |\n", command, ms(median(b.toQueued)))
	w("| run queued → run started (`started`) | %s |\n", ms(median(b.toStarted)))
	w("| run started → %s process started (the stage's `started`, right after fork/exec) | %s |\n", stage, ms(median(b.toStage)))
	w("| %s process started → its `date` ran | %s |\n", stage, ms(median(b.toStamp)))
}

// ---------------------------------------------------------------------------
// Pipelines

type pipelinesConfig struct {
	rl      reflineTarget
	work    string
	pushes  int
	warmup  int
	command string
	out     string
	// The OpenSSH + git-shell baseline (optional): a post-receive hook that
	// checks the commit out and runs the same first stage.
	sshURL, sshHome, sshUser string
	// executor is the server's --executor, for the report.
	executor string
}

func pipelinesMain(args []string) error {
	var c pipelinesConfig
	fs := flag.NewFlagSet("pipelines", flag.ContinueOnError)
	c.rl.register(fs)
	fs.StringVar(&c.work, "work", "", "scratch directory for clients and timestamps")
	fs.IntVar(&c.pushes, "pushes", 60, "timed pushes per contender")
	fs.IntVar(&c.warmup, "warmup", 3, "untimed pushes per contender first")
	fs.StringVar(&c.command, "command", "./scripts/bench.sh", "the command line to record in the report")
	fs.StringVar(&c.out, "out", "", "write the markdown section here")
	fs.StringVar(&c.executor, "executor", "sandbox", "the server's --executor, for the report")
	fs.StringVar(&c.sshURL, "openssh-url", "", "OpenSSH URL prefix (ssh://USER@127.0.0.1:PORT) for the post-receive hook baseline; empty skips it")
	fs.StringVar(&c.sshHome, "openssh-home", "", "the git-shell user's home, where its repositories live")
	fs.StringVar(&c.sshUser, "openssh-user", "", "the git-shell user")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := c.rl.init(); err != nil {
		return err
	}
	if c.work == "" || c.pushes < 1 {
		return errors.New("missing flags; see -h")
	}
	return benchPipelines(c)
}

// stampServer accepts "NAME/COMMIT NANOSECONDS" lines from sandboxed
// stages and writes each into work/NAME/COMMIT, for waitStamp. It returns
// its address.
func stampServer(work string) (string, error) {
	return serveLoopback(func(conn net.Conn) {
		b, _ := io.ReadAll(io.LimitReader(conn, 1024))
		f := strings.Fields(string(b))
		if len(f) != 2 || strings.Contains(f[0], "..") {
			return
		}
		_ = os.WriteFile(filepath.Join(work, f[0]), []byte(f[1]+"\n"), 0o644)
	})
}

// serveLoopback answers every connection to a new loopback port with
// handle, which need not close it, and returns the address.
func serveLoopback(handle func(net.Conn)) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				handle(conn)
			}()
		}
	}()
	return ln.Addr().String(), nil
}

// pushContender is one kind of push in the pipelines loop.
type pushContender struct {
	name   string
	client *clientRepo
	// probe, when set, is a command run instead of a push: the floor of
	// what any push costs.
	probe []string
	// stamps is where its first stage writes STAMPS/COMMIT; empty when
	// the push starts nothing.
	stamps string
	// refline repository name; empty for the OpenSSH baseline.
	repo    string
	pushes  []time.Duration
	latency []time.Duration
	hooks   *hookTimes
	bd      breakdown
	// artifact: the last stage's end → refs/artifacts/web moved.
	artifact []time.Duration
	// firstStage is the server's refline_push_to_first_stage_seconds
	// over this contender's timed pushes.
	firstStage histogram
}

func benchPipelines(c pipelinesConfig) error {
	nodelay, err := noDelayProxy()
	if err != nil {
		return err
	}
	// files is the repository of a refline contender whose pipeline's first
	// stage writes into stamps.
	// A sandboxed stage cannot write into the host's stamps directory:
	// it has the network (network: true) and sends its stamp to
	// stampServer, which writes the file. The time is taken first.
	stampAddr, err := stampServer(c.work)
	if err != nil {
		return err
	}
	files := func(stamps string) map[string]string {
		return map[string]string{
			"README.md":       "A small repository for the pipeline benchmark.\n",
			"app/version.txt": "0\n",
			"app/main.sh":     "#!/bin/sh\necho hello\n",
			".refline/pipelines/web.yml": fmt.Sprintf(`# The benchmark's pipeline: its first stage only records when it started.
network: true
stages:
  - name: start
    run: s=$(date +%%s%%N); bash -c "echo %s/$REFLINE_COMMIT $s > /dev/tcp/%s"
artifact:
  paths: [app/]
`, filepath.Base(stamps), strings.Replace(stampAddr, ":", "/", 1)),
		}
	}
	plainFiles := files("")
	delete(plainFiles, ".refline/pipelines/web.yml")

	withPipe := &pushContender{name: "refline, repository with a pipeline", repo: "bench-pipeline"}
	plain := &pushContender{name: "refline, repository without pipelines", repo: "bench-plain"}
	diag := &pushContender{name: "diagnostic: refline with a pipeline, client socket with TCP_NODELAY from the start", repo: "bench-pipeline-nodelay"}
	plainND := &pushContender{name: "diagnostic: refline without pipelines, client socket with TCP_NODELAY from the start", repo: "bench-plain-nodelay"}
	for _, ct := range []*pushContender{withPipe, diag} {
		ct.stamps = filepath.Join(c.work, ct.repo+"-stamps")
		if err := os.MkdirAll(ct.stamps, 0o755); err != nil {
			return err
		}
	}
	for _, ct := range []*pushContender{withPipe, plain, diag, plainND} {
		ct.hooks = newHookTimes()
		f := plainFiles
		if ct.stamps != "" {
			f = files(ct.stamps)
		}
		if ct.client, err = newClientRepo(filepath.Join(c.work, ct.repo+"-client"), c.rl.repoURL(ct.repo), f); err != nil {
			return err
		}
	}
	for _, ct := range []*pushContender{diag, plainND} {
		ct.client.env = []string{"GIT_SSH_COMMAND=" + os.Getenv("GIT_SSH_COMMAND") + " -o '" + nodelay + "'"}
	}
	// The floor: an SSH connection to refline, authentication and one
	// trivial command, as every push starts with; and the same through the
	// TCP_NODELAY proxy.
	floor := &pushContender{name: "refline, `ssh … whoami` (no push)", probe: c.rl.command("whoami"), client: plain.client}
	floorND := &pushContender{name: "diagnostic: refline, `ssh … whoami`, client socket with TCP_NODELAY from the start",
		probe: append(append(append([]string{}, c.rl.ssh...), "-o", nodelay), c.rl.command("whoami")[len(c.rl.ssh):]...), client: plain.client}
	contenders := []*pushContender{withPipe, plain, diag, plainND, floor, floorND}
	// What git pays per hook before the server answers: the shim's sh
	// and the refline binary starting (with no arguments it exits at once).
	var hookStart *pushContender
	if c.rl.bin != "" {
		hookStart = &pushContender{name: "`sh -c 'refline hook'` (start and exit of a hook process)", client: plain.client,
			probe: []string{"sh", "-c", shellQuote(c.rl.bin) + " hook 2>/dev/null; exit 0"}}
		contenders = append(contenders, hookStart)
	}
	pipelined := func(ct *pushContender) bool { return ct.repo != "" && ct.stamps != "" }

	var hook *pushContender
	if c.sshURL != "" {
		if hook, err = setupHookBaseline(c, plainFiles); err != nil {
			return err
		}
		contenders = append(contenders, hook)
	}

	// The first pushes create the repositories; the pipelines' first runs
	// start then.
	m, err := c.rl.metrics()
	if err != nil {
		return err
	}
	builds := finished(m, "build")
	for _, ct := range contenders {
		if ct.probe != nil {
			continue
		}
		if _, _, _, err := timedEnv(ct.client.dir, ct.client.env, "git", "push", "-q", "origin", "master"); err != nil {
			return fmt.Errorf("%s: first push: %w", ct.name, err)
		}
		if pipelined(ct) {
			builds++
		}
	}
	if _, err := c.rl.waitIdle("build", builds); err != nil {
		return err
	}

	loadBefore := loadavg()
	var start metrics
	total := c.warmup + c.pushes
	for i := 0; i < total; i++ {
		if i == c.warmup {
			// The histogram counts from here: after the warm-up.
			if start, err = c.rl.metrics(); err != nil {
				return err
			}
		}
		timedRun := i >= c.warmup
		// Rotate which contender goes first.
		order := append(append([]*pushContender{}, contenders[i%len(contenders):]...), contenders[:i%len(contenders)]...)
		for _, ct := range order {
			if ct.probe != nil {
				_, d, _, err := timed(ct.client.dir, ct.probe...)
				if err != nil {
					return err
				}
				if timedRun {
					ct.pushes = append(ct.pushes, d)
				}
				continue
			}
			sha, err := ct.client.change("app/version.txt", fmt.Sprintf("%d\n", i+1), fmt.Sprintf("change %d", i+1))
			if err != nil {
				return err
			}
			var before metrics
			if ct.repo != "" {
				if before, err = c.rl.metrics(); err != nil {
					return err
				}
			}
			t0, d, out, err := timedEnv(ct.client.dir, ct.client.env, "git", "push", "origin", "master")
			if err != nil {
				return fmt.Errorf("%s, push %d: %w", ct.name, i, err)
			}
			var stamp time.Time
			if ct.stamps != "" {
				if stamp, err = waitStamp(filepath.Join(ct.stamps, sha), time.Minute); err != nil {
					return fmt.Errorf("%s, push %d: %w", ct.name, i, err)
				}
			}
			var after metrics
			var run *runInfo
			switch {
			case pipelined(ct):
				builds++
				if after, err = c.rl.waitIdle("build", builds); err != nil {
					return err
				}
				n, err := runNumberIn(out)
				if err != nil {
					return fmt.Errorf("%s, push %d: %w", ct.name, i, err)
				}
				if run, err = c.rl.run(ct.repo, "web", n); err != nil {
					return err
				}
				if run.State != "passed" {
					return fmt.Errorf("%s, push %d: run #%d %s: %s", ct.name, i, n, run.State, run.Error)
				}
			case ct.repo != "":
				if after, err = c.rl.metrics(); err != nil {
					return err
				}
			}
			if !timedRun {
				continue
			}
			ct.pushes = append(ct.pushes, d)
			if ct.stamps != "" {
				ct.latency = append(ct.latency, stamp.Sub(t0))
			}
			if after != nil {
				ct.hooks.add(before, after)
				ct.firstStage = ct.firstStage.plus(histogramDelta(before, after, "refline_push_to_first_stage_seconds", ""))
			}
			if run != nil {
				ct.bd.add(t0, stamp, run)
				if moved, err := refMtime(c.rl.gitDir(ct.repo), "refs/artifacts/web"); err == nil {
					ct.artifact = append(ct.artifact, moved.Sub(run.Stages[len(run.Stages)-1].Finished))
				}
			}
			line := fmt.Sprintf("push %3d  %-40.40s push %7.1f ms", i-c.warmup+1, ct.name, float64(d)/1e6)
			if ct.stamps != "" {
				line += fmt.Sprintf("  → first stage %7.1f ms", float64(stamp.Sub(t0))/1e6)
			}
			fmt.Println(line)
		}
	}
	end, err := c.rl.metrics()
	if err != nil {
		return err
	}
	if all := histogramDelta(start, end, "refline_push_to_first_stage_seconds", ""); int(all.count) != 2*c.pushes {
		return fmt.Errorf("the server's histogram counted %.0f first stages for %d pushes", all.count, 2*c.pushes)
	}
	// How long receive-pack ran for each timed push, from refline's log:
	// skip the first push and the warm-up.
	rp, err := c.rl.receivePacks(withPipe.repo)
	if err != nil {
		return err
	}
	if len(rp) > 1+c.warmup {
		rp = rp[1+c.warmup:]
	} else {
		rp = nil
	}
	return reportPipelines(c, pipelineResults{
		contenders: contenders, withPipe: withPipe, plain: plain, diag: diag, plainND: plainND, floor: floor, floorND: floorND,
		hook: hook, hookStart: hookStart, receivePacks: rp, loadBefore: loadBefore,
	})
}

// setupHookBaseline makes the OpenSSH + git-shell contender: a bare
// repository whose post-receive hook does what a team without a CD server
// writes: check the pushed commit out into a fresh directory and run the
// pipeline's first stage there, inside the push.
func setupHookBaseline(c pipelinesConfig, files map[string]string) (*pushContender, error) {
	if c.sshHome == "" || c.sshUser == "" {
		return nil, errors.New("-openssh-url needs -openssh-home and -openssh-user")
	}
	u, err := lookupUser(c.sshUser)
	if err != nil {
		return nil, err
	}
	stamps := filepath.Join(c.work, "hook-stamps")
	if err := os.MkdirAll(stamps, 0o755); err != nil {
		return nil, err
	}
	if err := os.Chown(stamps, u.uid, u.gid); err != nil {
		return nil, err
	}
	repo := filepath.Join(c.sshHome, "bench-hook.git")
	if err := run("", "git", "init", "-q", "--bare", "--initial-branch=master", repo); err != nil {
		return nil, err
	}
	hook := fmt.Sprintf(`#!/bin/sh
# post-receive: check the pushed commit out into a fresh directory and run
# the first stage of the pipeline there.
while read old new ref; do
	[ "$ref" = refs/heads/master ] || continue
	w=$(mktemp -d)
	GIT_INDEX_FILE="$w.index" git --work-tree="$w" read-tree --reset -u "$new"
	(cd "$w" && REFLINE_COMMIT=$new sh -e -c 'date +%%s%%N > %s/$REFLINE_COMMIT')
	rm -rf "$w" "$w.index"
done
`, stamps)
	if err := os.WriteFile(filepath.Join(repo, "hooks", "post-receive"), []byte(hook), 0o755); err != nil {
		return nil, err
	}
	if err := chownTree(repo, u.uid, u.gid); err != nil {
		return nil, err
	}
	client, err := newClientRepo(filepath.Join(c.work, "hook-client"), strings.TrimSuffix(c.sshURL, "/")+repo, files)
	if err != nil {
		return nil, err
	}
	return &pushContender{name: "OpenSSH + git-shell, post-receive hook", client: client, stamps: stamps}, nil
}

type pipelineResults struct {
	contenders                     []*pushContender
	withPipe, plain, diag, plainND *pushContender
	floor, floorND                 *pushContender
	hook                           *pushContender // nil without the OpenSSH baseline
	hookStart                      *pushContender // nil without -refline-bin
	receivePacks                   []time.Duration
	loadBefore                     string
}

func reportPipelines(c pipelinesConfig, r pipelineResults) error {
	withPipe, plain := r.withPipe, r.plain
	p50, p99 := percentile(withPipe.latency, 50), percentile(withPipe.latency, 99)
	ratio := median(withPipe.pushes).Seconds() / median(plain.pushes).Seconds()
	fs := withPipe.firstStage
	s50, lo50, hi50 := fs.quantile(0.5)
	s99, lo99, hi99 := fs.quantile(0.99)

	var latency bytes.Buffer
	fmt.Fprintf(&latency, "| push to | p50 | p99 | max | push wall time (median) |\n|---|---:|---:|---:|---:|\n")
	for _, ct := range []*pushContender{withPipe, r.hook, r.diag} {
		if ct == nil {
			continue
		}
		fmt.Fprintf(&latency, "| %s | %s | %s | %s | %s |\n", ct.name, ms(percentile(ct.latency, 50)),
			ms(percentile(ct.latency, 99)), ms(maxDuration(ct.latency)), ms(median(ct.pushes)))
	}
	var overhead bytes.Buffer
	fmt.Fprintf(&overhead, "| push to | median | p90 | hooks per push, mean time each |\n|---|---:|---:|---|\n")
	for _, ct := range []*pushContender{withPipe, plain, r.diag, r.plainND} {
		fmt.Fprintf(&overhead, "| %s | %s | %s | %s |\n", ct.name, ms(median(ct.pushes)), ms(percentile(ct.pushes, 90)), ct.hooks.describe(len(ct.pushes)))
	}
	ratioND := median(r.diag.pushes).Seconds() / median(r.plainND.pushes).Seconds()
	var targets bytes.Buffer
	fmt.Fprintf(&targets, "| target | measured | |\n|---|---:|---|\n")
	fmt.Fprintf(&targets, "| push → first stage started, p50 ≤ 50 ms | %s | %s |\n", ms(p50), verdict(p50 <= 50*time.Millisecond))
	fmt.Fprintf(&targets, "| push → first stage started, p99 ≤ 200 ms | %s | %s |\n", ms(p99), verdict(p99 <= 200*time.Millisecond))
	fmt.Fprintf(&targets, "| push overhead of pipeline files ≤ 1.2× | %.2f× | %s |\n", ratio, verdict(ratio <= 1.2))
	serverLine := fmt.Sprintf("p50 %s (bucket %s), p99 %s (bucket %s), mean %s", secondsMs(s50), bucketRange(lo50, hi50),
		secondsMs(s99), bucketRange(lo99, hi99), secondsMs(fs.mean()))

	fmt.Println()
	os.Stdout.Write(targets.Bytes())
	fmt.Println()
	os.Stdout.Write(latency.Bytes())
	fmt.Println()
	os.Stdout.Write(overhead.Bytes())
	fmt.Printf("\nserver histogram: %s\n", serverLine)
	fmt.Printf("ssh whoami: %s; with TCP_NODELAY from the start: %s\n", ms(median(r.floor.pushes)), ms(median(r.floorND.pushes)))
	if c.out == "" {
		return nil
	}

	var doc bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&doc, format, args...) }
	w("## Pipelines\n\n")
	w("How soon a push starts its pipeline, and what pipeline files cost a push. refline runs the pipeline of `.refline/pipelines/web.yml` in a small repository (4 files); its first stage takes `date +%%s%%N` and sends it to the benchmark (the stage has `network: true`: a sandboxed job cannot write into the host's files), so the time measured ends when a process of the pipeline's own has run; the server runs with `--executor %s`. ", c.executor)
	if r.hook != nil {
		w("Beside it, the setup refline replaces: OpenSSH + `git-shell` with a `post-receive` hook that checks the pushed commit out into a fresh directory (`git read-tree -u`, as refline does) and runs the same stage, inside the push.")
	}
	w("\n\nWritten by `scripts/bench.sh` (`make bench`); run on %s with\n\n```\n%s\n```\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), c.command)
	w("%s\n", targets.String())
	w("Push → first stage process started (from the client's `git push` starting to the stage's `date`), %d pushes each:\n\n", c.pushes)
	w("%s\n", latency.String())
	w("The server's own histogram `refline_push_to_first_stage_seconds` over the same %d pushes (it starts when the post-receive hook's call reaches the server, so it leaves out SSH, `receive-pack` and the hooks before): %s. The buckets double from 5 ms, so the quantiles are interpolated inside a bucket, as `histogram_quantile` does; the mean is exact.\n\n", c.pushes, serverLine)
	w("Where the time goes (medians; the run's times are those refline writes into its run.json, on the same clock):\n\n| interval | median |\n|---|---:|\n")
	withPipe.bd.rows(w, "`git push` started", "first stage")
	w("| `git push` started → `git push` exited | %s |\n", ms(median(withPipe.pushes)))
	if len(r.receivePacks) > 0 {
		w("| of which `git receive-pack` ran on the server (refline's log, `git session` duration: ref advertisement, receiving the pack, pre-receive, ref update, post-receive) | %s |\n", ms(median(r.receivePacks)))
	}
	if r.hookStart != nil {
		w("| for comparison: a hook process starting and exiting (`sh -c 'refline hook'` without arguments; git runs two per push, pre-receive and post-receive, each then calling the server: see the hooks column below) | %s |\n", ms(median(r.hookStart.pushes)))
	}
	w("| for comparison: `ssh … whoami` to refline, start to exit (SSH connection, authentication, one command) | %s |\n", ms(median(r.floor.pushes)))
	w("| the same with the client's socket in TCP_NODELAY from the start (diagnostic, see below) | %s |\n", ms(median(r.floorND.pushes)))
	w("\n**Diagnostic**: OpenSSH's client turns Nagle's algorithm off (TCP_NODELAY) only once the session is open, so during the key exchange and authentication a small write that follows another waits until the server ACKs the first, and Linux delays that ACK (40 ms minimum) when it has nothing to send back. The diagnostic rows run the same `ssh` and `git push` with `ProxyCommand` set to `refline-bench nc`, whose socket has TCP_NODELAY (Go's default), against the same server (its own repository with the same pipeline, in the same rotation); the difference is what those waits cost every SSH connection to refline.\n\n")
	w("Push overhead: wall time of `git push` of a one-file commit, to a refline repository with the pipeline above (the push validates the pipeline files in pre-receive and queues a run in post-receive) and to one without any (same files otherwise), alternating, %d each; the server is idle before each push (the previous run has ended). Ratio of the medians: **%.2f×**; without the handshake's delayed-ACK waits (the diagnostic pair, which also alternates with them): **%.2f×**. A wait is 40 ms or more, and whether a connection suffers none, one or two of them is a race, so the ordinary pair's medians can land on different numbers of waits; the diagnostic pair shows the work itself.\n\n", c.pushes, ratio, ratioND)
	w("%s\n", overhead.String())
	w("The hooks column is `refline_hook_duration_seconds` by hook: the server's time answering each hook call, not counting the `refline hook` process git starts for it.\n\n")
	if len(withPipe.artifact) > 0 {
		w("Artifact, end to end: from the stage's end (the stage's `finished` in run.json) to `refs/artifacts/web` moving (the loose ref's mtime) for this pipeline's 1-file artifact, median %s, max %s (see Artifacts for a 100 MB one).\n\n", ms(median(withPipe.artifact)), ms(maxDuration(withPipe.artifact)))
	}
	w("- **Timing**: the client takes the time just before starting `git push`; the stage writes `date +%%s%%N`; both read the same clock. The benchmark polls for the stamp every 1 ms and waits for the run to end (`refline_runs_running` back to 0) before the next push. %d untimed warm-up pushes per contender come first; then the contenders take turns, the first one rotating.\n", c.warmup)
	w("- **p99** is nearest-rank: value %d of the %d sorted ones (the largest is also shown).\n", percentileRank(c.pushes, 99), c.pushes)
	w("- **refline** runs with `--max-jobs` at its default (the number of CPUs); every run also records its artifact and its run record (two signed commits) after the stage, which the next push does not wait for but the benchmark does.\n")
	w("\nRaw times (ms, in order):\n\n```\n")
	for _, ct := range r.contenders {
		if ct.stamps != "" {
			w("first stage  %s: %s\n", ct.name, rawMs(ct.latency))
		}
	}
	for _, ct := range r.contenders {
		w("command      %s: %s\n", ct.name, rawMs(ct.pushes))
	}
	w("```\n\nMachine:\n\n%s- load average (1, 5, 15 min) before the runs %s, after them %s (other work shares the machine)\n", machine(), r.loadBefore, loadavg())
	return os.WriteFile(c.out, doc.Bytes(), 0o644)
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// percentileRank is the 1-based nearest rank of percentile p among n values.
func percentileRank(n int, p float64) int {
	return min(max(int(math.Ceil(p/100*float64(n))), 1), n)
}

// ---------------------------------------------------------------------------
// Deploys

type deploysConfig struct {
	rl      reflineTarget
	work    string
	deploys int
	command string
	out     string
}

func deploysMain(args []string) error {
	var c deploysConfig
	fs := flag.NewFlagSet("deploys", flag.ContinueOnError)
	c.rl.register(fs)
	fs.StringVar(&c.work, "work", "", "scratch directory for clients and timestamps")
	fs.IntVar(&c.deploys, "deploys", 20, "timed deploys per way of deploying")
	fs.StringVar(&c.command, "command", "./scripts/bench.sh", "the command line to record in the report")
	fs.StringVar(&c.out, "out", "", "write the markdown section here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := c.rl.init(); err != nil {
		return err
	}
	if c.work == "" || c.deploys < 1 {
		return errors.New("missing flags; see -h")
	}
	return benchDeploys(c)
}

type deployWay struct {
	name    string
	argv    func(target string) []string
	latency []time.Duration
	cmd     []time.Duration
	bd      breakdown
	hooks   *hookTimes
	env     []string // added to the command's environment
	diag    bool     // a diagnostic variant, not a way users deploy
}

func benchDeploys(c deploysConfig) error {
	// The deploy writes its stamp in a directory of its own, which the
	// server allows deploys to write (--deploy-path).
	stamp := filepath.Join(c.work, "deploy-stamps", "stamp")
	if err := os.MkdirAll(filepath.Dir(stamp), 0o755); err != nil {
		return err
	}
	const repo = "bench-deploy"
	files := map[string]string{
		"deploy.sh":   fmt.Sprintf("#!/bin/sh\ndate +%%s%%N > %s\n# what a deploy would do next: put the files in place\ntest -s version.txt\n", stamp),
		"version.txt": "1\n",
		".refline/pipelines/web.yml": `# The benchmark's deploy: the artifact holds deploy.sh, which records when it started.
stages:
  - name: build
    run: "true"
artifact:
  paths: [deploy.sh, version.txt]
environments:
  production:
    run: ./deploy.sh
`,
	}
	client, err := newClientRepo(filepath.Join(c.work, "deploy-client"), c.rl.repoURL(repo), files)
	if err != nil {
		return err
	}
	m, err := c.rl.metrics()
	if err != nil {
		return err
	}
	builds, deploys := finished(m, "build"), finished(m, "deploy")
	// Two artifacts to alternate between.
	for v := 1; v <= 2; v++ {
		if v == 2 {
			if _, err := client.change("version.txt", "2\n", "version 2"); err != nil {
				return err
			}
		}
		if _, _, _, err := timed(client.dir, "git", "push", "-q", "origin", "master"); err != nil {
			return err
		}
		builds++
		if _, err := c.rl.waitIdle("build", builds); err != nil {
			return err
		}
	}
	if _, err := git(client.dir, "fetch", "-q", "origin", "+refs/artifacts/*:refs/artifacts/*"); err != nil {
		return err
	}
	var targets [2]string
	for i, rev := range []string{"refs/artifacts/web~1", "refs/artifacts/web"} {
		if targets[i], err = git(client.dir, "rev-parse", rev); err != nil {
			return err
		}
	}
	// The floor of both: an SSH connection, authentication, one command;
	// and the same with the client's socket in TCP_NODELAY (see Pipelines).
	var floor, floorND []time.Duration
	nodelay, err := noDelayProxy()
	if err != nil {
		return err
	}
	withProxy := func(argv []string) []string {
		return append(append(append([]string{}, c.rl.ssh...), "-o", nodelay), argv[len(c.rl.ssh):]...)
	}
	whoamiND := withProxy(c.rl.command("whoami"))
	sshDeploy := func(target string) []string { return c.rl.command("deploy", repo, "web", "production", target) }
	// + because every other move goes back to the older artifact.
	pushDeploy := func(target string) []string {
		return []string{"git", "push", "origin", "+" + target + ":refs/deploy/production/web"}
	}
	ways := []*deployWay{{
		name: "`ssh … deploy bench-deploy web production REV`",
		argv: sshDeploy,
	}, {
		name: "`git push origin +REV:refs/deploy/production/web`",
		argv: pushDeploy,
	}, {
		name: "diagnostic: `ssh … deploy`, client socket with TCP_NODELAY from the start",
		argv: func(target string) []string { return withProxy(sshDeploy(target)) },
		diag: true,
	}, {
		name: "diagnostic: `git push`, client socket with TCP_NODELAY from the start",
		argv: pushDeploy,
		env:  []string{"GIT_SSH_COMMAND=" + os.Getenv("GIT_SSH_COMMAND") + " -o '" + nodelay + "'"},
		diag: true,
	}}
	for _, w := range ways {
		w.hooks = newHookTimes()
	}

	loadBefore := loadavg()
	const warmup = 2
	total := warmup + len(ways)*c.deploys
	for i := 0; i < total; i++ {
		// Targets alternate every deploy, ways every two, so that each
		// way deploys each artifact equally often.
		target := targets[i%2]
		way := ways[(i/2)%len(ways)]
		if err := os.Remove(stamp); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if i%2 == 0 {
			_, d, _, err := timed(client.dir, c.rl.command("whoami")...)
			if err != nil {
				return err
			}
			_, dND, _, err := timed(client.dir, whoamiND...)
			if err != nil {
				return err
			}
			if i >= warmup {
				floor = append(floor, d)
				floorND = append(floorND, dND)
			}
		}
		before, err := c.rl.metrics()
		if err != nil {
			return err
		}
		t0, d, out, err := timedEnv(client.dir, way.env, way.argv(target)...)
		if err != nil {
			return fmt.Errorf("deploy %d: %w", i, err)
		}
		st, err := waitStamp(stamp, time.Minute)
		if err != nil {
			return fmt.Errorf("deploy %d by %s: %w", i, way.name, err)
		}
		deploys++
		after, err := c.rl.waitIdle("deploy", deploys)
		if err != nil {
			return err
		}
		n, err := runNumberIn(out)
		if err != nil {
			return fmt.Errorf("deploy %d: %w", i, err)
		}
		r, err := c.rl.run(repo, "web", n)
		if err != nil {
			return err
		}
		if r.State != "passed" {
			return fmt.Errorf("deploy %d: run #%d %s: %s", i, n, r.State, r.Error)
		}
		deployed, err := git("", "--git-dir="+c.rl.gitDir(repo), "rev-parse", "refs/deployed/production/web")
		if err != nil {
			return err
		}
		if deployed != target {
			return fmt.Errorf("deploy %d: refs/deployed/production/web is %s, want %s", i, deployed, target)
		}
		if i < warmup {
			continue
		}
		way.latency = append(way.latency, st.Sub(t0))
		way.cmd = append(way.cmd, d)
		way.bd.add(t0, st, r)
		way.hooks.add(before, after)
		fmt.Printf("deploy %2d  %-55s command %7.1f ms  → deploy.sh %7.1f ms\n", i-warmup+1, way.name, float64(d)/1e6, float64(st.Sub(t0))/1e6)
	}

	var table bytes.Buffer
	fmt.Fprintf(&table, "| deploy by | p50 | p90 | max | command wall time (median) | target p50 ≤ 100 ms |\n|---|---:|---:|---:|---:|---|\n")
	for _, w := range ways {
		p50 := percentile(w.latency, 50)
		v := verdict(p50 <= 100*time.Millisecond)
		if w.diag {
			v = "(not a target)"
		}
		fmt.Fprintf(&table, "| %s | %s | %s | %s | %s | %s |\n", w.name, ms(p50), ms(percentile(w.latency, 90)),
			ms(maxDuration(w.latency)), ms(median(w.cmd)), v)
	}
	fmt.Println()
	os.Stdout.Write(table.Bytes())
	if c.out == "" {
		return nil
	}
	var doc bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&doc, format, args...) }
	w("## Deploys\n\n")
	w("How soon moving a deploy ref starts the deploy. A pipeline with `environments: {production: {run: ./deploy.sh}}` has two artifacts (1 KB each); `deploy.sh`, run from a directory holding the artifact's files, begins with `date +%%s%%N > STAMP`. The deploy ref is moved %d times each by `ssh … deploy` and by `git push`, alternating between the two artifacts, and the time runs from the command's start to that `date`. The diagnostic rows do the same with the client's socket in TCP_NODELAY from the start (through `refline-bench nc`, see Pipelines), which removes the delayed-ACK waits of the SSH handshake.\n\n", c.deploys)
	w("Written by `scripts/bench.sh` (`make bench`); run on %s with\n\n```\n%s\n```\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), c.command)
	w("%s\n", table.String())
	w("Where the time goes (medians, from the run.json refline writes):\n\n| interval | `ssh … deploy` | `git push` |\n|---|---:|---:|\n")
	a, b := ways[0].bd, ways[1].bd
	w("| command started → deploy run queued | %s | %s |\n", ms(median(a.toQueued)), ms(median(b.toQueued)))
	w("| run queued → run started | %s | %s |\n", ms(median(a.toStarted)), ms(median(b.toStarted)))
	w("| run started → deploy.sh process started (verify the artifact again, read the pipeline file at its source commit, secrets, check the artifact out) | %s | %s |\n", ms(median(a.toStage)), ms(median(b.toStage)))
	w("| deploy.sh process started → its `date` ran | %s | %s |\n", ms(median(a.toStamp)), ms(median(b.toStamp)))
	w("| command started → command exited | %s | %s |\n", ms(median(ways[0].cmd)), ms(median(ways[1].cmd)))
	if rp, err := c.rl.receivePacks(repo); err == nil && len(rp) > 2 {
		// The first two pushed the code; the rest are the deploys by push.
		w("| of which `git receive-pack` ran on the server (refline's log: pre-receive checks the target, post-receive queues the deploy) | | %s |\n", ms(median(rp[2:])))
	}
	w("| for comparison: `ssh … whoami` to refline, start to exit (SSH connection, authentication, one command; %d runs between the deploys) | %s | |\n", len(floor), ms(median(floor)))
	w("| the same with the client's socket in TCP_NODELAY from the start (diagnostic: see Pipelines) | %s | |\n", ms(median(floorND)))
	w("\nHooks called per deploy, with the server's mean time answering each (`refline_hook_duration_seconds`, not counting the `refline hook` process git starts): `ssh … deploy`: %s; `git push`: %s.\n", ways[0].hooks.describe(len(ways[0].cmd)), ways[1].hooks.describe(len(ways[1].cmd)))
	w("\n- **Order**: after %d untimed deploys, the target alternates every deploy and the way every two, so each way deploys each artifact equally often; each deploy ends (`refs/deployed/production/web` at the target, run record written, `refline_runs_running` back to 0) before the next starts.\n", warmup)
	w("- **What the commands do before the ref moves**: `ssh … deploy` checks the target in the server process, moves the ref with `git update-ref` and queues the deploy; `git push` runs `receive-pack`, whose pre-receive hook checks the target and whose post-receive hook queues the deploy, each hook a `refline hook` process relaying to the server. Both check that the target is a signed artifact on the pipeline's chain.\n")
	w("\nRaw times (ms, in order):\n\n```\n")
	for _, way := range ways {
		w("deploy.sh started  %s: %s\n", way.name, rawMs(way.latency))
		w("command            %s: %s\n", way.name, rawMs(way.cmd))
	}
	w("```\n\nMachine:\n\n%s- load average (1, 5, 15 min) before the runs %s, after them %s (other work shares the machine)\n", machine(), loadBefore, loadavg())
	return os.WriteFile(c.out, doc.Bytes(), 0o644)
}
