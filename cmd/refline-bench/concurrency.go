package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The concurrency section: bursts of clones and pushes started all at
// once against refline and against OpenSSH + git-shell, with the same
// servers, repository and client as the transport section.

type concurrencyConfig struct {
	runs    int
	clones  int
	pushes  int
	src     string
	work    string
	command string
	out     string
	// sshdNote says how the benchmark's sshd is configured for bursts.
	sshdNote string
}

func concurrencyMain(args []string) error {
	var c concurrencyConfig
	var sf serverFlags
	fs := flag.NewFlagSet("concurrency", flag.ContinueOnError)
	fs.IntVar(&c.runs, "runs", 5, "rounds per burst and server")
	fs.IntVar(&c.clones, "clones", 50, "concurrent clones per round")
	fs.IntVar(&c.pushes, "pushes", 20, "concurrent pushes (to distinct new repositories) per round")
	fs.StringVar(&c.src, "src", "", "the generated bare repository (also served as medium.git by both servers)")
	fs.StringVar(&c.work, "work", "", "scratch directory for clients")
	fs.StringVar(&c.command, "command", "./scripts/bench.sh", "the command line to record in the report")
	fs.StringVar(&c.out, "out", "", "write the markdown section here")
	fs.StringVar(&c.sshdNote, "sshd-note", "", "how sshd is configured for the bursts, for the report")
	sf.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.src == "" || c.work == "" || c.runs < 1 || c.clones < 1 || c.pushes < 1 {
		return fmt.Errorf("missing flags; see -h")
	}
	servers, err := sf.servers()
	if err != nil {
		return err
	}
	return benchConcurrency(c, servers)
}

// burst is one kind of simultaneous operation.
type burst struct {
	name string
	n    int
	// prepare (untimed) returns the client command for operation i of
	// round r; check (untimed) verifies what it did; cleanup removes it.
	prepare func(s *server, r, i int) (dir string, args []string, err error)
	check   func(s *server, r, i int) error
	cleanup func(s *server, r, i int)
}

type burstResult struct {
	walls    []time.Duration // per round: first start to last exit
	each     []time.Duration // every successful operation
	attempts int
	failures int
	errs     map[string]int // failure message → how often
	peak     int64          // kB, max over rounds
	cpu      []time.Duration
}

func benchConcurrency(c concurrencyConfig, servers []*server) error {
	tip, err := git(c.src, "rev-parse", "refs/heads/master")
	if err != nil {
		return err
	}
	want, err := objectCount(c.src)
	if err != nil {
		return err
	}
	// complete checks a repository that a clone or push filled: master at
	// the tip and every object there (git's own connectivity check has
	// passed when the command exits 0; the count catches a short pack).
	complete := func(gitDir, ref string) error {
		head, err := git("", "--git-dir="+gitDir, "rev-parse", ref)
		if err != nil {
			return err
		}
		counts, err := git("", "--git-dir="+gitDir, "count-objects", "-v")
		if err != nil {
			return err
		}
		n := 0
		for _, l := range strings.Split(counts, "\n") {
			if v, ok := strings.CutPrefix(l, "in-pack: "); ok {
				n, _ = strconv.Atoi(v)
			} else if v, ok := strings.CutPrefix(l, "count: "); ok {
				loose, _ := strconv.Atoi(v)
				n += loose
			}
		}
		if head != tip || n < want {
			return fmt.Errorf("%s: %d objects at %s, want %d at %s", gitDir, n, head, want, tip[:12])
		}
		return nil
	}
	cloneDir := func(s *server, i int) string {
		return filepath.Join(c.work, fmt.Sprintf("conc-clone-%s-%d", strings.ToLower(s.name), i))
	}
	pushName := func(r, i int) string { return fmt.Sprintf("conc-push-%d-%d", r, i) }
	bursts := []*burst{{
		name: fmt.Sprintf("%d concurrent clones", c.clones),
		n:    c.clones,
		prepare: func(s *server, r, i int) (string, []string, error) {
			d := cloneDir(s, i)
			return c.work, []string{"clone", "-q", "--no-checkout", s.url("medium"), d}, os.RemoveAll(d)
		},
		check: func(s *server, r, i int) error {
			return complete(filepath.Join(cloneDir(s, i), ".git"), "refs/remotes/origin/master")
		},
		cleanup: func(s *server, r, i int) { os.RemoveAll(cloneDir(s, i)) },
	}, {
		name: fmt.Sprintf("%d concurrent pushes to new repositories", c.pushes),
		n:    c.pushes,
		prepare: func(s *server, r, i int) (string, []string, error) {
			if s.newEmpty != nil {
				if err := s.newEmpty(pushName(r, i)); err != nil {
					return "", nil, err
				}
			}
			return c.src, []string{"push", "-q", s.url(pushName(r, i)), "refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*"}, nil
		},
		check: func(s *server, r, i int) error {
			return complete(s.path(pushName(r, i)), "refs/heads/master")
		},
		cleanup: func(s *server, r, i int) { os.RemoveAll(s.path(pushName(r, i))) },
	}}

	idle := map[string]int64{}
	for _, s := range servers {
		idle[s.name] = vmRSS(s.rootPID)
	}
	loadBefore := loadavg()
	results := map[string]map[string]*burstResult{}
	for _, b := range bursts {
		results[b.name] = map[string]*burstResult{}
		for _, s := range servers {
			results[b.name][s.name] = &burstResult{errs: map[string]int{}}
		}
		for r := 1; r <= c.runs; r++ {
			order := slices.Clone(servers)
			if r%2 == 0 {
				slices.Reverse(order)
			}
			for _, s := range order {
				res := results[b.name][s.name]
				wall, each, errs, peak, cpu, err := runBurst(b, s, r)
				if err != nil {
					return fmt.Errorf("%s on %s, round %d: %w", b.name, s.name, r, err)
				}
				res.walls = append(res.walls, wall)
				res.each = append(res.each, each...)
				res.attempts += b.n
				res.failures += len(errs)
				for _, e := range errs {
					res.errs[e]++
				}
				res.peak = max(res.peak, peak)
				res.cpu = append(res.cpu, cpu)
				fmt.Printf("%-42s %-8s round %d  %7.2f s  failures %2d  server CPU %6.2f s  peak RSS %s\n",
					b.name, s.name, r, wall.Seconds(), len(errs), cpu.Seconds(), mb(peak))
			}
		}
	}

	var table bytes.Buffer
	fmt.Fprintf(&table, "| burst | server | failures | total wall time (median) | each operation p50 | each operation max | server peak RSS | server CPU (median) |\n")
	fmt.Fprintf(&table, "|---|---|---:|---:|---:|---:|---:|---:|\n")
	for _, b := range bursts {
		for _, s := range servers {
			res := results[b.name][s.name]
			fmt.Fprintf(&table, "| %s | %s | %d of %d | %.2f s | %.2f s | %.2f s | %s | %.1f s |\n", b.name, s.name,
				res.failures, res.attempts, median(res.walls).Seconds(), percentile(res.each, 50).Seconds(),
				maxDuration(res.each).Seconds(), mb(res.peak), median(res.cpu).Seconds())
		}
	}
	var targets bytes.Buffer
	fmt.Fprintf(&targets, "| target | measured | |\n|---|---:|---|\n")
	for _, b := range bursts {
		res := results[b.name]["refline"]
		fmt.Fprintf(&targets, "| %s on refline: 0 failures | %d of %d | %s |\n", b.name, res.failures, res.attempts, verdict(res.failures == 0))
	}
	fmt.Println()
	os.Stdout.Write(targets.Bytes())
	fmt.Println()
	os.Stdout.Write(table.Bytes())
	if c.out == "" {
		return nil
	}
	var doc bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&doc, format, args...) }
	w("## Concurrency\n\n")
	w("Bursts: %d `git clone --no-checkout` of the transport section's repository started at the same moment, and %d `git push` of all its branches and tags to as many new repositories, against refline and against OpenSSH + `git-shell` — the same servers, repository, client and key as in Transport, on 127.0.0.1. Clients and servers share the same %d CPUs, so the wall time is mostly the machine's throughput; what the servers must show is that nothing fails and how much memory the burst takes.\n\n", c.clones, c.pushes, runtime.NumCPU())
	w("Written by `scripts/bench.sh` (`make bench`); run on %s with\n\n```\n%s\n```\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), c.command)
	w("%s\n", targets.String())
	w("%s\n", table.String())
	w("- **Rounds**: %d per burst and server, refline and OpenSSH alternating (and which goes first alternating too); the total wall time is from starting the first command to the last one's exit, median over the rounds. Each operation's own time is pooled over all rounds.\n", c.runs)
	w("- **Checked**: a command counts as failed when it exits non-zero or when the clone or the pushed-to repository does not hold master at %s and all %d objects afterwards.\n", tip[:12], want)
	w("- **Pushes**: on refline to a new name each, which refline creates on push (in the time); on OpenSSH to a fresh `git init --bare` each (not in the time).\n")
	w("- **Peak RSS** and **CPU**: as in Transport, the server side's processes, but sampled every %d ms (refline: `refline serve` and its children; OpenSSH: the per-connection `sshd` processes and theirs, not the listener). Idle before the bursts: refline %s, the sshd listener %s.\n", burstSampleInterval.Milliseconds(), mb(idle["refline"]), mb(idle["OpenSSH"]))
	if c.sshdNote != "" {
		w("- **sshd**: %s\n", c.sshdNote)
	}
	var failed []string
	for _, b := range bursts {
		for _, s := range servers {
			var msgs []string
			for m, n := range results[b.name][s.name].errs {
				msgs = append(msgs, fmt.Sprintf("%d× `%s`", n, m))
			}
			sort.Strings(msgs)
			if len(msgs) > 0 {
				failed = append(failed, fmt.Sprintf("  - %s on %s: %s\n", b.name, s.name, strings.Join(msgs, "; ")))
			}
		}
	}
	if len(failed) > 0 {
		w("- **Failures** (the first line the client printed):\n%s", strings.Join(failed, ""))
	}
	w("\nRaw total wall times (s):\n\n```\n")
	for _, b := range bursts {
		for _, s := range servers {
			w("%-42s %-8s %s\n", b.name, s.name, rawSeconds(results[b.name][s.name].walls))
		}
	}
	w("```\n\nMachine:\n\n%s- load average (1, 5, 15 min) before the runs %s, after them %s (the bursts themselves raise it; other work shares the machine)\n", machine(), loadBefore, loadavg())
	return os.WriteFile(c.out, doc.Bytes(), 0o644)
}

const burstSampleInterval = 50 * time.Millisecond

// runBurst starts b.n operations at once against s and waits for all of
// them, sampling the server meanwhile. It returns the burst's wall time,
// each successful operation's time and one message per failure.
func runBurst(b *burst, s *server, r int) (time.Duration, []time.Duration, []string, int64, time.Duration, error) {
	type op struct {
		dir  string
		args []string
		d    time.Duration
		err  error
		out  string
	}
	ops := make([]*op, b.n)
	for i := range ops {
		dir, args, err := b.prepare(s, r, i)
		if err != nil {
			return 0, nil, nil, 0, 0, fmt.Errorf("prepare: %w", err)
		}
		ops[i] = &op{dir: dir, args: args}
	}
	defer func() {
		for i := range ops {
			b.cleanup(s, r, i)
		}
	}()
	var wall time.Duration
	// Every 50 ms, not 10: a sample reads two /proc files per process, and
	// a burst has a hundred; the operations last seconds.
	peak, cpu := sampled(s, burstSampleInterval, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		var wg sync.WaitGroup
		start := time.Now()
		for _, o := range ops {
			cmd := exec.CommandContext(ctx, "git", o.args...)
			cmd.Dir = o.dir
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			wg.Go(func() {
				t0 := time.Now()
				o.err = cmd.Run()
				o.d = time.Since(t0)
				o.out = out.String()
			})
		}
		wg.Wait()
		wall = time.Since(start)
	})
	var each []time.Duration
	var errs []string
	for i, o := range ops {
		if o.err == nil {
			o.err = b.check(s, r, i)
			o.out = ""
		}
		if o.err != nil {
			errs = append(errs, failureMessage(o.err, o.out))
			continue
		}
		each = append(each, o.d)
	}
	return wall, each, errs, peak, cpu, nil
}

// failureMessage is the first line a failed command printed (git's own
// closing advice about access rights follows the cause), or its error.
func failureMessage(err error, out string) string {
	msg, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	msg = strings.TrimSpace(msg)
	if msg == "" {
		msg = err.Error()
	}
	if len(msg) > 160 {
		msg = msg[:160] + "…"
	}
	return strings.ReplaceAll(msg, "`", "'")
}
