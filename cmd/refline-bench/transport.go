package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// server is one contender: how to reach a repository, where it lies on
// disk (to check what a push stored), and which processes are "the server"
// for the memory samples.
type server struct {
	name string
	// rootPID is the process whose tree is sampled. includeRoot says
	// whether the root itself counts: refline's process serves every
	// connection and does count; sshd's listener only forks per-connection
	// children and does not (its share is printed as the idle baseline).
	rootPID     int
	includeRoot bool
	url         func(repo string) string
	path        func(repo string) string
	// newEmpty prepares an empty repository for a push; nil means the
	// server creates it on push.
	newEmpty func(repo string) error
}

type transportConfig struct {
	runs    int
	src     string
	work    string
	behind  int
	command string
	outFile string
}

type op struct {
	name string
	// prepare runs untimed before each run and returns the client command
	// to time; check runs untimed after it.
	prepare func(s *server, n int) (dir string, args []string, err error)
	check   func(s *server, n int) error
	note    string
}

type result struct {
	times []time.Duration
	peak  int64 // kB, max over runs
	cpu   []time.Duration
}

func transportMain(args []string) error {
	var c transportConfig
	var sf serverFlags
	fs := flag.NewFlagSet("transport", flag.ContinueOnError)
	fs.IntVar(&c.runs, "runs", 7, "timed runs per operation and server")
	fs.StringVar(&c.src, "src", "", "the generated bare repository")
	fs.StringVar(&c.work, "work", "", "scratch directory for clients")
	fs.IntVar(&c.behind, "behind", 10, "commits the fetching clone is behind")
	fs.StringVar(&c.command, "command", "./scripts/bench.sh", "the command line to record in the report")
	fs.StringVar(&c.outFile, "out", "", "write the markdown section here")
	sf.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.src == "" || c.work == "" || c.runs < 1 {
		return fmt.Errorf("missing flags; see -h")
	}
	servers, err := sf.servers()
	if err != nil {
		return err
	}
	return transport(c, servers)
}

// serverFlags are the flags that describe the two servers of the transport
// and concurrency sections.
type serverFlags struct {
	reflineURL, reflineRepos string
	reflinePID               int
	sshURL, sshHome, sshUser string
	sshdPID                  int
}

func (f *serverFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.reflineURL, "refline-url", "", "URL prefix of refline's repositories, e.g. ssh://git@127.0.0.1:PORT/")
	fs.StringVar(&f.reflineRepos, "refline-repos", "", "refline's DATA/repos directory")
	fs.IntVar(&f.reflinePID, "refline-pid", 0, "pid of refline serve")
	fs.StringVar(&f.sshURL, "openssh-url", "", "URL prefix of the git-shell user's repositories, e.g. ssh://u@127.0.0.1:PORT")
	fs.StringVar(&f.sshHome, "openssh-home", "", "directory (absolute) of the git-shell user's repositories")
	fs.StringVar(&f.sshUser, "openssh-user", "refline-bench", "the git-shell user, owner of its repositories")
	fs.IntVar(&f.sshdPID, "sshd-pid", 0, "pid of the sshd listener")
}

// servers returns refline and OpenSSH, in that order.
func (f *serverFlags) servers() ([]*server, error) {
	if f.reflineURL == "" || f.reflineRepos == "" || f.reflinePID == 0 || f.sshURL == "" || f.sshHome == "" || f.sshdPID == 0 {
		return nil, fmt.Errorf("missing server flags; see -h")
	}
	u, err := lookupUser(f.sshUser)
	if err != nil {
		return nil, err
	}
	rl := &server{name: "refline", rootPID: f.reflinePID, includeRoot: true}
	rl.url = func(r string) string { return strings.TrimSuffix(f.reflineURL, "/") + "/" + r + ".git" }
	rl.path = func(r string) string { return filepath.Join(f.reflineRepos, r+".git") }
	sshd := &server{name: "OpenSSH", rootPID: f.sshdPID}
	sshd.url = func(r string) string { return strings.TrimSuffix(f.sshURL, "/") + filepath.Join(f.sshHome, r+".git") }
	sshd.path = func(r string) string { return filepath.Join(f.sshHome, r+".git") }
	sshd.newEmpty = func(r string) error {
		p := filepath.Join(f.sshHome, r+".git")
		if err := run("", "git", "init", "-q", "--bare", "--initial-branch=master", p); err != nil {
			return err
		}
		return chownTree(p, u.uid, u.gid)
	}
	return []*server{rl, sshd}, nil
}

type userIDs struct{ uid, gid int }

func lookupUser(name string) (userIDs, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return userIDs{}, err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return userIDs{uid, gid}, nil
}

func chownTree(root string, uid, gid int) error {
	return filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// git runs a client git command and returns its trimmed output.
func git(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// alternate runs each op runs times on every server after one warm-up
// run that is not counted; the servers take turns, and which goes first
// alternates too, so that whatever else the machine does weighs on both
// alike. width pads the operation names in the progress lines.
func alternate(ops []op, servers []*server, runs, width int) (map[string]map[string]*result, error) {
	results := map[string]map[string]*result{}
	for _, o := range ops {
		results[o.name] = map[string]*result{}
		for _, s := range servers {
			results[o.name][s.name] = &result{}
		}
		for r := 0; r <= runs; r++ {
			order := slices.Clone(servers)
			if r%2 == 1 {
				slices.Reverse(order)
			}
			for _, s := range order {
				dir, args, err := o.prepare(s, r)
				if err != nil {
					return nil, fmt.Errorf("%s on %s, run %d: prepare: %w", o.name, s.name, r, err)
				}
				d, peak, cpu, err := timeCommand(dir, args, s)
				if err != nil {
					return nil, fmt.Errorf("%s on %s, run %d: %w", o.name, s.name, r, err)
				}
				if err := o.check(s, r); err != nil {
					return nil, fmt.Errorf("%s on %s, run %d: check: %w", o.name, s.name, r, err)
				}
				label := "warm-up"
				if r > 0 {
					res := results[o.name][s.name]
					res.times = append(res.times, d)
					res.peak = max(res.peak, peak)
					res.cpu = append(res.cpu, cpu)
					label = fmt.Sprintf("run %d", r)
				}
				fmt.Printf("%-*s %-8s %-8s %8.3fs  server CPU %6.2fs  peak RSS %s\n", width, o.name, s.name, label, d.Seconds(), cpu.Seconds(), mb(peak))
			}
		}
	}
	return results, nil
}

// objectCount is what a complete copy must hold: every object reachable
// from any ref.
func objectCount(gitDir string) (int, error) {
	cmd := exec.Command("git", "--git-dir="+gitDir, "rev-list", "--all", "--objects")
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("rev-list in %s: %w", gitDir, err)
	}
	return bytes.Count(out, []byte{'\n'}), nil
}

func transport(c transportConfig, servers []*server) error {
	tip, err := git(c.src, "rev-parse", "refs/heads/master")
	if err != nil {
		return err
	}
	want, err := objectCount(c.src)
	if err != nil {
		return err
	}
	commits, _ := git(c.src, "rev-list", "--count", "refs/heads/master")
	packKB, _ := git(c.src, "count-objects", "-v")
	tags, _ := git(c.src, "for-each-ref", "--format=x", "refs/tags/")
	fmt.Printf("repository: %s commits, %d objects, tip %s\n", commits, want, tip[:12])

	// The fetching clone: the repository as it was c.behind commits ago,
	// with the tags it had then, and origin set up as a clone sets it.
	template := filepath.Join(c.work, "behind-template")
	// A ref in src for the old tip, as fetch takes refs, not revisions; it
	// is deleted again before the runs.
	const behindRef = "refs/bench/behind"
	for _, args := range [][]string{
		{"-C", c.src, "update-ref", behindRef, fmt.Sprintf("refs/heads/master~%d", c.behind)},
		{"init", "-q", "--initial-branch=master", template},
		{"-C", template, "fetch", "-q", c.src, "+" + behindRef + ":refs/remotes/origin/master"},
		{"-C", c.src, "update-ref", "-d", behindRef},
		{"-C", template, "update-ref", "refs/heads/master", "refs/remotes/origin/master"},
		{"-C", template, "remote", "add", "origin", "placeholder"},
		{"-C", template, "config", "branch.master.remote", "origin"},
		{"-C", template, "config", "branch.master.merge", "refs/heads/master"},
	} {
		if _, err := git("", args...); err != nil {
			return err
		}
	}
	behindCount, err := objectCount(filepath.Join(template, ".git"))
	if err != nil {
		return err
	}
	fmt.Printf("fetching clone: %d commits behind, %d objects, %d to fetch\n", c.behind, behindCount, want-behindCount)

	checkClone := func(gitDir string) error {
		got, err := objectCount(gitDir)
		if err != nil {
			return err
		}
		head, err := git("", "--git-dir="+gitDir, "rev-parse", "refs/remotes/origin/master")
		if err != nil {
			return err
		}
		if got != want || head != tip {
			return fmt.Errorf("%s: %d objects at %s, want %d at %s", gitDir, got, head, want, tip)
		}
		return nil
	}
	dest := func(s *server, what string, n int) string {
		return filepath.Join(c.work, fmt.Sprintf("%s-%s-%d", what, strings.ToLower(s.name), n))
	}
	pushName := func(n int) string { return fmt.Sprintf("push-%d", n) }
	ops := []op{{
		name: "ls-remote",
		note: "`git ls-remote`: connection, authentication and the ref listing, no objects. This is the fixed cost of every git command; OpenSSH's includes forking and re-executing `sshd` and starting `git-shell` per connection, where refline serves the connection inside its running process",
		prepare: func(s *server, n int) (string, []string, error) {
			return c.work, []string{"ls-remote", s.url("medium")}, nil
		},
		check: func(s *server, n int) error { return nil },
	}, {
		name: "clone",
		note: "`git clone --no-checkout` of the whole repository",
		prepare: func(s *server, n int) (string, []string, error) {
			d := dest(s, "clone", n)
			return c.work, []string{"clone", "-q", "--no-checkout", s.url("medium"), d}, os.RemoveAll(d)
		},
		check: func(s *server, n int) error {
			d := dest(s, "clone", n)
			defer os.RemoveAll(d)
			return checkClone(filepath.Join(d, ".git"))
		},
	}, {
		name: "push",
		note: "`git push` of all branches and tags into an empty repository",
		prepare: func(s *server, n int) (string, []string, error) {
			if s.newEmpty != nil {
				if err := s.newEmpty(pushName(n)); err != nil {
					return "", nil, err
				}
			}
			return c.src, []string{"push", "-q", s.url(pushName(n)), "refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*"}, nil
		},
		check: func(s *server, n int) error {
			p := s.path(pushName(n))
			defer os.RemoveAll(p)
			got, err := objectCount(p)
			if err != nil {
				return err
			}
			head, err := git("", "--git-dir="+p, "rev-parse", "refs/heads/master")
			if err != nil {
				return err
			}
			if got != want || head != tip {
				return fmt.Errorf("%s: %d objects at %s, want %d at %s", p, got, head, want, tip)
			}
			return nil
		},
	}, {
		name: "fetch",
		note: fmt.Sprintf("`git fetch` into a clone %d commits behind", c.behind),
		prepare: func(s *server, n int) (string, []string, error) {
			d := dest(s, "fetch", n)
			if err := os.RemoveAll(d); err != nil {
				return "", nil, err
			}
			if err := run("", "cp", "-a", template, d); err != nil {
				return "", nil, err
			}
			if _, err := git(d, "remote", "set-url", "origin", s.url("medium")); err != nil {
				return "", nil, err
			}
			return d, []string{"fetch", "-q", "origin"}, nil
		},
		check: func(s *server, n int) error {
			d := dest(s, "fetch", n)
			defer os.RemoveAll(d)
			return checkClone(filepath.Join(d, ".git"))
		},
	}}

	// Idle memory of the long-running process alone (refline serve, the
	// sshd listener), before any connection of ours is around.
	idle := map[string]int64{}
	for _, s := range servers {
		idle[s.name] = vmRSS(s.rootPID)
	}
	loadBefore := loadavg()
	kex := map[string]string{}
	for _, s := range servers {
		if kex[s.name], err = negotiated(s.url("medium")); err != nil {
			return err
		}
		fmt.Printf("%s: %s\n", s.name, kex[s.name])
	}
	results, err := alternate(ops, servers, c.runs, 9)
	if err != nil {
		return err
	}

	var table bytes.Buffer
	fmt.Fprintf(&table, "| operation | refline median | OpenSSH median | ratio (refline/OpenSSH) | refline peak RSS | OpenSSH peak RSS |\n")
	fmt.Fprintf(&table, "|---|---:|---:|---:|---:|---:|\n")
	for _, o := range ops {
		a, b := results[o.name]["refline"], results[o.name]["OpenSSH"]
		ma, mb_ := median(a.times), median(b.times)
		fmt.Fprintf(&table, "| %s | %.3f s | %.3f s | %.2f | %s | %s |\n", o.name, ma.Seconds(), mb_.Seconds(),
			ma.Seconds()/mb_.Seconds(), mb(a.peak), mb(b.peak))
	}
	var cpuTable bytes.Buffer
	fmt.Fprintf(&cpuTable, "| operation | refline server CPU | OpenSSH server CPU |\n|---|---:|---:|\n")
	for _, o := range ops {
		fmt.Fprintf(&cpuTable, "| %s | %.2f s | %.2f s |\n", o.name,
			median(results[o.name]["refline"].cpu).Seconds(), median(results[o.name]["OpenSSH"].cpu).Seconds())
	}
	fmt.Println()
	os.Stdout.Write(table.Bytes())
	fmt.Println()
	os.Stdout.Write(cpuTable.Bytes())

	if c.outFile == "" {
		return nil
	}
	var doc bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&doc, format, args...) }
	w("## Transport\n\n")
	w("Serving git over SSH: refline (`refline serve`, Go SSH server running `git upload-pack`/`receive-pack`, hooks relayed to the server) against OpenSSH `sshd` with a user whose login shell is `git-shell` — the setup refline replaces. Both serve the same repository from the same disk to the same `git` client with the same ed25519 key, over 127.0.0.1, with protocol v2 (sshd is configured with `AcceptEnv GIT_PROTOCOL`).\n\n")
	w("Written by `scripts/bench.sh` (`make bench`); run on %s with\n\n```\n%s\n```\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), c.command)
	w("%s", table.String())
	w("\nServer CPU time in the same runs (median; user + system from /proc/PID/stat, in %d ms ticks, summed over the processes counted for memory below, each from its first sample to its last, so a process's last moments and processes shorter than a sample are missed):\n\n", 1000/clockTicks)
	w("%s", cpuTable.String())
	w("\n- **Times**: wall-clock time of the client `git` command, median of %d runs per server after one warm-up run, refline and OpenSSH runs alternating (and which goes first alternating too). The client runs on the same machine, so each time includes the client's own work (`pack-objects` for push, `index-pack` for clone and fetch).\n", c.runs)
	for _, o := range ops {
		w("  - **%s**: %s.", o.name, o.note)
		switch o.name {
		case "push":
			w(" On refline a new name each run, which refline creates on push (that creation is in the time); on OpenSSH a fresh `git init --bare` each run (not in the time).")
		case "fetch":
			w(" %d objects come over; the clone is a copy of one prepared from the same repository, identical for both servers.", want-behindCount)
		}
		w("\n")
	}
	w("- **Peak RSS**: every 10 ms during each run, the VmRSS of every process of the server side, summed; the maximum over the timed runs. refline: the `refline serve` process and all its descendants (git, hooks). OpenSSH: the per-connection `sshd` processes and their descendants (`git-shell`, git); the listening `sshd` is not counted. Shared pages count once per process, and a process that lives less than one interval can be missed (which makes the ls-remote row rough). So refline's column includes its own resident memory, idle %s before the runs, and OpenSSH's leaves out the listener's, idle %s.\n", mb(idle["refline"]), mb(idle["OpenSSH"]))
	w("- **SSH**: what the client negotiated (`ssh -v`): refline %s; OpenSSH %s.", kex["refline"], kex["OpenSSH"])
	if kexAlg(kex["refline"]) != kexAlg(kex["OpenSSH"]) {
		w(" The key exchanges differ, which shows in every connection's setup time (compare ls-remote).")
	}
	w("\n")
	w("- **Checked**: after every run the clone, the fetched clone or the pushed-to repository holds all %d objects (`git rev-list --all --objects`) and master at %s.\n", want, tip[:12])
	w("\nRepository: generated by `refline-bench genrepo` (fixed seed): %s commits on master, %d annotated tags, %d objects, %s packed; text files edited a few lines per commit and binary files edited or replaced.\n", commits, strings.Count(tags, "x"), want, packSize(packKB))
	w("\nRaw times (s):\n\n```\n")
	for _, o := range ops {
		for _, s := range servers {
			w("%-9s %-8s", o.name, s.name)
			for _, d := range results[o.name][s.name].times {
				w(" %.3f", d.Seconds())
			}
			w("\n")
		}
	}
	w("```\n\nMachine:\n\n%s- load average (1, 5, 15 min) before the runs %s, after them %s\n", machine(), loadBefore, loadavg())
	return os.WriteFile(c.outFile, doc.Bytes(), 0o644)
}

func packSize(countObjects string) string {
	for _, l := range strings.Split(countObjects, "\n") {
		if v, ok := strings.CutPrefix(l, "size-pack: "); ok {
			kb, _ := strconv.ParseInt(v, 10, 64)
			return fmt.Sprintf("%.1f MiB", float64(kb)/1024)
		}
	}
	return "?"
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func mb(kb int64) string { return fmt.Sprintf("%.1f MiB", float64(kb)/1024) }

// timeCommand runs git with args in dir and returns its wall time and,
// meanwhile, the server's peak RSS (kB) and CPU time.
func timeCommand(dir string, args []string, s *server) (time.Duration, int64, time.Duration, error) {
	// No single operation on this repository takes more than seconds; the
	// bound keeps a wedged server from hanging the whole benchmark.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr

	var d time.Duration
	var err error
	peak, cpu := sampled(s, 10*time.Millisecond, func() {
		start := time.Now()
		err = cmd.Run()
		d = time.Since(start)
	})
	if err != nil {
		return 0, 0, 0, fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return d, peak, cpu, nil
}

// sampled runs f while sampling the server's processes every interval, and
// returns their peak summed RSS (kB) and the CPU time they used meanwhile.
func sampled(s *server, interval time.Duration, f func()) (int64, time.Duration) {
	sm := newSampler(s.rootPID, s.includeRoot)
	sm.sample() // the baseline for processes that are already running
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				// Follow the server side until its per-connection
				// processes are gone (sshd's outlive the client a
				// little), so that their last CPU time counts.
				deadline := time.Now().Add(2 * time.Second)
				for sm.sample() > 0 && time.Now().Before(deadline) {
					<-tick.C
				}
				return
			case <-tick.C:
				sm.sample()
			}
		}
	}()
	f()
	close(stop)
	<-done
	return sm.peak, sm.cpu()
}

// sampler follows the process tree of a server from /proc: the peak of
// the summed VmRSS, and each process's CPU time (utime + stime) as last
// seen. A process's CPU time is counted from its first sample, so that
// what a long-running server did before does not count, and up to its last
// one: what a process does in its last 10 ms, or a process that lives less
// than that, is missed. Children's times are not taken from their parents
// (cutime), which would count them twice, and which sshd does not even
// collect: its per-connection processes are reaped by init.
type sampler struct {
	root        int
	includeRoot bool
	pt          *procTable
	peak        int64
	first, last map[int]int64 // clock ticks by pid
	samples     int
}

func newSampler(root int, includeRoot bool) *sampler {
	return &sampler{root: root, includeRoot: includeRoot, pt: newProcTable(),
		first: map[int]int64{}, last: map[int]int64{}}
}

// sample takes one sample and returns how many processes below the root
// it saw.
func (sm *sampler) sample() int {
	children := sm.pt.refresh()
	var pids []int
	if sm.includeRoot {
		pids = append(pids, sm.root)
	}
	below := 0
	stack := slices.Clone(children[sm.root])
	for len(stack) > 0 {
		pid := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		pids = append(pids, pid)
		below++
		stack = append(stack, children[pid]...)
	}
	var rss int64
	for _, pid := range pids {
		rss += vmRSS(pid)
		t, ok := cpuTicks(pid)
		if !ok {
			continue
		}
		if _, seen := sm.first[pid]; !seen {
			if sm.samples == 0 {
				sm.first[pid] = t
			} else {
				sm.first[pid] = 0 // born during the run
			}
		}
		sm.last[pid] = t
	}
	sm.peak = max(sm.peak, rss)
	sm.samples++
	return below
}

func (sm *sampler) cpu() time.Duration {
	var ticks int64
	for pid, t := range sm.last {
		ticks += t - sm.first[pid]
	}
	return time.Duration(ticks) * time.Second / clockTicks
}

// clockTicks is USER_HZ, the unit of the times in /proc/PID/stat: 100 on
// every architecture Go supports on Linux.
const clockTicks = 100

// cpuTicks is pid's own user and system time so far.
func cpuTicks(pid int) (int64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, false
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st, true
}

// procTable caches each process's parent between samples: reading one
// /proc/PID/stat per new process keeps a 10 ms sample cheap on a machine
// with a few hundred processes.
type procTable struct {
	parent map[int]int
}

func newProcTable() *procTable { return &procTable{parent: map[int]int{}} }

func (t *procTable) refresh() map[int][]int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	seen := make(map[int]bool, len(ents))
	children := map[int][]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		seen[pid] = true
		ppid, ok := t.parent[pid]
		if !ok {
			b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
			if err != nil {
				continue
			}
			// The fields after the command name, which is in parentheses
			// and may contain anything: state, ppid, ...
			i := bytes.LastIndexByte(b, ')')
			f := strings.Fields(string(b[i+1:]))
			if len(f) < 2 {
				continue
			}
			ppid, _ = strconv.Atoi(f[1])
			t.parent[pid] = ppid
		}
		children[ppid] = append(children[ppid], pid)
	}
	for pid := range t.parent {
		if !seen[pid] {
			delete(t.parent, pid)
		}
	}
	return children
}

func vmRSS(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb
		}
	}
	return 0
}

// machine describes the box for the report.
func machine() string {
	cpu := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := "?"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				mem = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
			}
		}
	}
	kernel := "?"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(b))
	}
	gitVersion, _ := git("", "version")
	sshVersion := "?"
	if out, err := exec.Command("ssh", "-V").CombinedOutput(); err == nil {
		sshVersion = strings.TrimSpace(string(out))
	}
	rev, _ := git("", "rev-parse", "--short", "HEAD")
	if st, _ := git("", "status", "--porcelain", "--untracked-files=no"); st != "" {
		rev += " (with uncommitted changes)"
	}
	return fmt.Sprintf("- %d CPUs (nproc), %s memory, CPU %s\n- Linux %s, %s, %s\n- refline %s, built with %s\n",
		runtime.NumCPU(), mem, cpu, kernel, gitVersion, sshVersion, rev, runtime.Version())
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}

// kexAlg is the key exchange part of what negotiated returns.
func kexAlg(s string) string {
	a, _, _ := strings.Cut(s, ",")
	return a
}

// negotiated reports the key exchange and cipher that the client's ssh
// agrees on with the server behind url, from ssh -v.
func negotiated(url string) (string, error) {
	cmd := exec.Command("git", "ls-remote", url)
	cmd.Env = append(os.Environ(), "GIT_SSH_COMMAND="+os.Getenv("GIT_SSH_COMMAND")+" -v")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ls-remote %s: %w: %s", url, err, out)
	}
	var kex, cipher string
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "debug1: kex: algorithm: "); ok {
			kex = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(l, "debug1: kex: server->client cipher: "); ok {
			cipher, _, _ = strings.Cut(strings.TrimSpace(v), " ")
		}
	}
	return fmt.Sprintf("kex %s, cipher %s", kex, cipher), nil
}
