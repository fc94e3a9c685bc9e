package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// The hostile-load section: a legitimate user's ssh whoami, clone and push
// against an idle refline, then against the same refline while this process
// holds thousands of silent TCP connections to it (reopening those the
// server closes, at a bounded rate) and an authenticated user with no
// grants floods it with 30 KB `env` requests.

type hostileConfig struct {
	t        reflineTarget
	pid      int
	runs     int
	blocks   int
	conns    int
	addrs    int
	churn    int
	floods   int
	envRate  int
	envSize  int
	work     string
	command  string
	out      string
	limitsMD string
}

func hostileMain(args []string) error {
	var c hostileConfig
	fs := flag.NewFlagSet("hostile", flag.ContinueOnError)
	c.t.register(fs)
	fs.IntVar(&c.pid, "refline-pid", 0, "refline's process id, for its RSS and open files")
	fs.IntVar(&c.runs, "runs", 30, "timed runs of each operation, idle and under attack")
	fs.IntVar(&c.blocks, "blocks", 3, "idle and attacked phases alternate this many times")
	fs.IntVar(&c.conns, "conns", 10000, "silent connections the attacker holds open")
	fs.IntVar(&c.addrs, "addrs", 200, "source addresses (127.0.1.x) the silent connections come from")
	fs.IntVar(&c.churn, "churn", 200, "reconnections a second once the server closes silent connections")
	fs.IntVar(&c.floods, "floods", 4, "connections sending env requests")
	fs.IntVar(&c.envRate, "env-rate", 1000, "env requests a second, all flood connections together")
	fs.IntVar(&c.envSize, "env-size", 30000, "bytes in each env request's value")
	fs.StringVar(&c.work, "work", "", "scratch directory for clients")
	fs.StringVar(&c.command, "command", "./scripts/bench.sh", "the command line to record in the report")
	fs.StringVar(&c.out, "out", "", "write the markdown section here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.work == "" || c.pid == 0 || c.runs < 1 || c.blocks < 1 || c.blocks > c.runs || c.conns < 1 || c.addrs < 1 || c.addrs > 250 {
		return fmt.Errorf("missing or bad flags; see -h")
	}
	if err := c.t.init(); err != nil {
		return err
	}
	return benchHostile(c)
}

// opTimes are one phase's timings of the legitimate user's operations.
type opTimes struct {
	whoami, clone, push []time.Duration
	failures            []string
	health              int // /healthz requests that failed
	peakRSS             int64
	peakFDs             int
	cpu, wall           time.Duration // refline serve's own CPU time, and the phase's duration
}

func benchHostile(c hostileConfig) error {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < rl.Max {
		rl.Cur = rl.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
	if rl.Cur < uint64(c.conns)+1024 {
		return fmt.Errorf("this process may open %d files, too few for %d connections (raise ulimit -n)", rl.Cur, c.conns)
	}
	httpAddr, err := os.ReadFile(filepath.Join(c.t.data, "run", "http.addr"))
	if err != nil {
		return err
	}
	health := "http://" + strings.TrimSpace(string(httpAddr)) + "/healthz"

	// The flooding user: authenticated, with no grants.
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return err
	}
	sp, _ := ssh.NewPublicKey(pub)
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp)))
	if _, _, out, err := timed("", c.t.command("user", "add", "flood", line)...); err != nil && !strings.Contains(out, "exists") {
		return err
	}

	repo, err := newClientRepo(filepath.Join(c.work, "hostile-src"), c.t.repoURL("hostile"),
		map[string]string{"README": "hostile load\n", "src/main.c": "int main(void) { return 0; }\n"})
	if err != nil {
		return err
	}
	if _, err := git(repo.dir, "push", "-q", "origin", "master"); err != nil {
		return err
	}

	// Idle and attacked blocks alternate, so that other work on the
	// machine weighs on both alike.
	var idle, attacked opTimes
	a := &attacker{c: c, signer: signer, told: map[string]int{}, floodErrs: map[string]int{}}
	var rampTime time.Duration
	baseFDs := openFiles(c.pid)
	for b := range c.blocks {
		n := c.runs / c.blocks
		if b < c.runs%c.blocks {
			n++
		}
		fmt.Fprintf(os.Stderr, "hostile: block %d of %d: %d runs of each operation on the idle server\n", b+1, c.blocks, n)
		measureOps(c, repo, health, fmt.Sprintf("idle-%d", b), n, &idle)

		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		before := a.dials.Load()
		a.start(ctx, &wg)
		ramp := time.Now()
		for a.dials.Load()-before < int64(c.conns) && time.Since(ramp) < 2*time.Minute {
			time.Sleep(50 * time.Millisecond)
		}
		rampTime = max(rampTime, time.Since(ramp))
		a.flood(ctx, &wg)
		fmt.Fprintf(os.Stderr, "hostile: block %d of %d: %d silent connections dialed in %s; %d runs of each operation under attack\n",
			b+1, c.blocks, a.dials.Load()-before, time.Since(ramp).Round(time.Millisecond), n)
		measureOps(c, repo, health, fmt.Sprintf("attack-%d", b), n, &attacked)
		cancel()
		wg.Wait()
		// The next idle block starts once the server has let go of the
		// attack's connections.
		for deadline := time.Now().Add(10 * time.Second); openFiles(c.pid) > baseFDs+10 && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
		}
	}
	return reportHostile(c, idle, attacked, a, rampTime)
}

// measureOps times whoami, clone and push n times each, interleaved,
// while sampling refline's RSS and open files, and adds them to t.
func measureOps(c hostileConfig, repo *clientRepo, health, phase string, n int, t *opTimes) {
	cpu0, _ := cpuTicks(c.pid)
	start := time.Now()
	defer func() {
		cpu1, _ := cpuTicks(c.pid)
		t.cpu += time.Duration(cpu1-cpu0) * time.Second / clockTicks
		t.wall += time.Since(start)
	}()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			t.peakRSS = max(t.peakRSS, vmRSS(c.pid))
			t.peakFDs = max(t.peakFDs, openFiles(c.pid))
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	hc := http.Client{Timeout: 5 * time.Second}
	fail := func(what string, err error) {
		t.failures = append(t.failures, fmt.Sprintf("%s: %v", what, err))
	}
	for i := range n {
		if _, d, out, err := timed("", c.t.command("whoami")...); err != nil {
			fail("whoami", err)
		} else if strings.TrimSpace(out) == "" {
			fail("whoami", errors.New("no answer"))
		} else {
			t.whoami = append(t.whoami, d)
		}
		dir := filepath.Join(c.work, fmt.Sprintf("hostile-clone-%s-%d", phase, i))
		if _, d, _, err := timed("", "git", "clone", "-q", c.t.repoURL("hostile"), dir); err != nil {
			fail("clone", err)
		} else {
			t.clone = append(t.clone, d)
		}
		os.RemoveAll(dir)
		if _, err := repo.change("README", fmt.Sprintf("hostile load: %s %d\n", phase, i), fmt.Sprintf("%s %d", phase, i)); err != nil {
			fail("commit", err)
		} else if _, d, _, err := timed(repo.dir, "git", "push", "-q", "-o", "ci.skip", "origin", "master"); err != nil {
			fail("push", err)
		} else {
			t.push = append(t.push, d)
		}
		if resp, err := hc.Get(health); err != nil {
			t.health++
		} else {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.health++
			}
		}
	}
	close(stop)
	<-done
}

func openFiles(pid int) int {
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		return 0
	}
	return len(ents)
}

// attacker holds silent connections and floods env requests.
type attacker struct {
	c      hostileConfig
	signer ssh.Signer

	dials, dialErrs, closed atomic.Int64
	mu                      sync.Mutex
	told                    map[string]int // what refused connections were told
	envSent, envGranted     atomic.Int64
	envSessions, envRefused atomic.Int64
	floodErrs               map[string]int
}

func (a *attacker) start(ctx context.Context, wg *sync.WaitGroup) {
	tokens := make(chan struct{})
	wg.Add(1)
	go func() { // reconnections, at a bounded rate
		defer wg.Done()
		tick := time.NewTicker(time.Second / time.Duration(max(a.c.churn, 1)))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				select {
				case tokens <- struct{}{}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	addr := net.JoinHostPort(a.c.t.host, a.c.t.port)
	for i := range a.c.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(i%a.c.addrs+1))}, Timeout: 10 * time.Second}
			first := true
			for ctx.Err() == nil {
				if !first {
					select {
					case <-tokens:
					case <-ctx.Done():
						return
					}
				}
				first = false
				a.dials.Add(1)
				conn, err := d.DialContext(ctx, "tcp", addr)
				if err != nil {
					a.dialErrs.Add(1)
					continue
				}
				stop := context.AfterFunc(ctx, func() { conn.Close() })
				got, _ := io.ReadAll(io.LimitReader(conn, 4096))
				stop()
				conn.Close()
				if ctx.Err() != nil {
					return
				}
				a.closed.Add(1)
				for _, l := range strings.Split(string(got), "\n") {
					if l = strings.TrimSpace(l); strings.HasPrefix(l, "refline:") {
						a.mu.Lock()
						a.told[l]++
						a.mu.Unlock()
					}
				}
			}
		}()
	}
}

// flood starts the env flood. It starts once the silent connections are
// dialed: during that burst the flood's own client, starved by them in
// this process, would be slow to send its first bytes, and the server
// closes silent unauthenticated connections first.
func (a *attacker) flood(ctx context.Context, wg *sync.WaitGroup) {
	addr := net.JoinHostPort(a.c.t.host, a.c.t.port)
	perConn := time.Second * time.Duration(max(a.c.floods, 1)) / time.Duration(max(a.c.envRate, 1))
	value := strings.Repeat("x", a.c.envSize)
	for range a.c.floods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(perConn)
			defer tick.Stop()
			for ctx.Err() == nil {
				client, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "git", Auth: []ssh.AuthMethod{ssh.PublicKeys(a.signer)},
					HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
				if err != nil {
					if ctx.Err() == nil {
						a.floodErr(err)
					}
					time.Sleep(100 * time.Millisecond)
					continue
				}
				stop := context.AfterFunc(ctx, func() { client.Close() })
				for ctx.Err() == nil {
					ch, reqs, err := client.OpenChannel("session", nil)
					if err != nil {
						if ctx.Err() == nil {
							a.floodErr(err)
						}
						break
					}
					go ssh.DiscardRequests(reqs)
					a.envSessions.Add(1)
					for n := 0; ctx.Err() == nil; n++ {
						<-tick.C
						ok, err := ch.SendRequest("env", true, ssh.Marshal(struct{ Key, Value string }{fmt.Sprintf("FLOOD_%d", n), value}))
						if err != nil {
							break // the server closed the session
						}
						a.envSent.Add(1)
						if ok {
							a.envGranted.Add(1)
						} else {
							a.envRefused.Add(1)
						}
					}
					ch.Close()
				}
				stop()
				client.Close()
			}
		}()
	}
}

func (a *attacker) floodErr(err error) {
	a.mu.Lock()
	a.floodErrs[err.Error()]++
	a.mu.Unlock()
}

func reportHostile(c hostileConfig, idle, attacked opTimes, a *attacker, ramp time.Duration) error {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("## Hostile load\n\n")
	w("Written by `scripts/bench.sh` (`make bench`); run on %s with\n\n```\n%s\n```\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), c.command)
	w("A legitimate user (the admin key, from 127.0.0.1) runs `ssh whoami`, a clone and a push (`-o ci.skip`) of a small repository, %d times each, interleaved, against the idle server and while this benchmark attacks the same server from the same machine (%d idle and %d attacked blocks, alternating, so that other work on the machine weighs on both alike). The attack, started afresh in each block:\n\n", c.runs, c.blocks, c.blocks)
	w("- **silent connections**: %d TCP connections to the SSH port from %d source addresses (127.0.1.x, %d each), which send nothing; every connection the server closes is reopened, %d a second at most (%d dials in all, %d closed by the server; the initial %d dials took %s at most);\n",
		c.conns, c.addrs, (c.conns+c.addrs-1)/c.addrs, c.churn, a.dials.Load(), a.closed.Load(), c.conns, ramp.Round(time.Millisecond))
	w("- **env flood**, once the silent connections are dialed: %d connections of an authenticated user with no grants, each opening sessions and sending `env` requests of %d bytes with want-reply, %d a second in all: %d sent in %d sessions, %d granted, %d refused.\n\n",
		c.floods, c.envSize, c.envRate, a.envSent.Load(), a.envSessions.Load(), a.envGranted.Load(), a.envRefused.Load())
	w("refline runs with its default limits (README, \"Limits\"). The times are wall-clock for the whole client command (ssh or git, with the SSH handshake); RSS and open files are those of the `refline serve` process, sampled every 100 ms, peak over the phase.\n\n")
	w("| operation | idle median | idle p99 | under attack median | under attack p99 | median ratio | target (≤ 2×) |\n|---|---|---|---|---|---|---|\n")
	allMet := true
	for _, op := range []struct {
		name       string
		idle, attk []time.Duration
	}{{"ssh whoami", idle.whoami, attacked.whoami}, {"clone", idle.clone, attacked.clone}, {"push", idle.push, attacked.push}} {
		mi, ma := percentile(op.idle, 50), percentile(op.attk, 50)
		ratio := 0.0
		if mi > 0 {
			ratio = float64(ma) / float64(mi)
		}
		ok := ratio > 0 && ratio <= 2
		allMet = allMet && ok
		w("| %s | %s | %s | %s | %s | %.2f× | %s |\n", op.name, ms(mi), ms(percentile(op.idle, 99)), ms(ma), ms(percentile(op.attk, 99)), ratio, verdict(ok))
	}
	rssOK := attacked.peakRSS < 200*1024
	refusedOK := len(attacked.failures) == 0
	w("\n| server | idle | under attack | target |\n|---|---|---|---|\n")
	w("| peak RSS | %.1f MB | %.1f MB | < 200 MB: %s |\n", float64(idle.peakRSS)/1024, float64(attacked.peakRSS)/1024, verdict(rssOK))
	w("| peak open files | %d | %d | |\n", idle.peakFDs, attacked.peakFDs)
	w("| CPU of `refline serve` itself (not git) | %.0f%% of one core | %.0f%% of one core | |\n", 100*idle.cpu.Seconds()/idle.wall.Seconds(), 100*attacked.cpu.Seconds()/attacked.wall.Seconds())
	w("| legitimate operations failed | %d of %d | %d of %d | none: %s |\n", len(idle.failures), 3*c.runs, len(attacked.failures), 3*c.runs, verdict(refusedOK))
	w("| `/healthz` failed | %d of %d | %d of %d | |\n", idle.health, c.runs, attacked.health, c.runs)
	w("\nWhat the attacker was told:\n\n")
	var lines []string
	a.mu.Lock()
	for l, n := range a.told {
		lines = append(lines, fmt.Sprintf("- %d× `%s`", n, l))
	}
	for e, n := range a.floodErrs {
		lines = append(lines, fmt.Sprintf("- env flood: %d× `%s`", n, e))
	}
	a.mu.Unlock()
	sort.Strings(lines)
	if len(lines) == 0 {
		lines = append(lines, "- nothing: its connections were closed without a word (evicted, or past the authentication deadline)")
	}
	w("%s\n", strings.Join(lines, "\n"))
	w("- silent connections closed by the server without a message: %d (replaced by newer ones past `--max-unauth-conns`, or past `--auth-timeout`)\n", a.closed.Load()-int64(sum(a.told)))
	if len(a.floodErrs) > 0 {
		w("\nA failed handshake of the env flood is one of its connections that the server closed as silent: opened while the silent connections still churn, its client, starved by them in this process, had not sent its first bytes when it became the oldest silent connection. The server closes the oldest connection that has sent nothing (nor has bytes waiting unread) first; a client that speaks at once, as OpenSSH and git do, is not taken for a silent one.\n")
	}
	if !refusedOK {
		w("\nFailures of the legitimate user under attack:\n\n")
		for _, f := range attacked.failures {
			w("- `%s`\n", strings.ReplaceAll(f, "\n", " "))
		}
	}
	w("\nRaw data (ms), idle / under attack:\n\n```\n")
	w("whoami %s\n       %s\nclone  %s\n       %s\npush   %s\n       %s\n```\n", rawMs(idle.whoami), rawMs(attacked.whoami), rawMs(idle.clone), rawMs(attacked.clone), rawMs(idle.push), rawMs(attacked.push))
	if !allMet || !rssOK || !refusedOK {
		w("\nSome targets were missed (marked above). The attacker runs on the same cores as the server and the client, so part of the slowdown is the attacker's own CPU use (the env flood encrypts %d MB a second); the CPU line shows what the attack costs the server itself.\n", c.envRate*c.envSize/1000000)
	}
	w("\nMachine:\n\n%s- load average (1, 5, 15 min) at the end %s (the attacker runs on the same machine, and so does other work)\n", machine(), loadavg())
	if c.out == "" {
		fmt.Print(b.String())
		return nil
	}
	return os.WriteFile(c.out, []byte(b.String()), 0o644)
}

func sum(m map[string]int) int {
	t := 0
	for _, v := range m {
		t += v
	}
	return t
}
