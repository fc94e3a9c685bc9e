package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The webhooks section (SPEC §10) times two things against the running
// server, which must run with --webhook-allow-private since the receivers
// are on loopback:
//   - how soon a push's run.finished reaches a receiver, from the start of
//     `git push` to the receiver reading the request;
//   - what hooks on a slow receiver (it answers after 5 s) cost a push:
//     the wall time of `git push` to a repository with 5 such hooks and to
//     one with none, alternating.

type webhooksConfig struct {
	rl      reflineTarget
	work    string
	pushes  int           // timed pushes for push → run.finished delivered
	pairs   int           // timed pushes per repository in the slow-receiver comparison
	hooks   int           // hooks on the slow receiver
	delay   time.Duration // how long the slow receiver takes to answer
	warmup  int
	command string
	out     string
}

func webhooksMain(args []string) error {
	var c webhooksConfig
	fs := flag.NewFlagSet("webhooks", flag.ContinueOnError)
	c.rl.register(fs)
	fs.StringVar(&c.work, "work", "", "scratch directory for the client repositories")
	fs.IntVar(&c.pushes, "pushes", 40, "timed pushes for push → run.finished delivered")
	fs.IntVar(&c.pairs, "pairs", 40, "timed pushes per repository (5 slow hooks, none), alternating")
	fs.IntVar(&c.hooks, "hooks", 5, "hooks on the slow receiver")
	fs.DurationVar(&c.delay, "delay", 5*time.Second, "how long the slow receiver takes to answer")
	fs.IntVar(&c.warmup, "warmup", 2, "untimed pushes first, per repository")
	fs.StringVar(&c.command, "command", "./scripts/bench.sh", "the command line to record in the report")
	fs.StringVar(&c.out, "out", "", "write the markdown section here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := c.rl.init(); err != nil {
		return err
	}
	if c.work == "" || c.pushes < 1 || c.pairs < 1 || c.hooks < 1 {
		return errors.New("missing flags; see -h")
	}
	return benchWebhooks(c)
}

// benchSecret is the hooks' shared secret; the receivers check every
// signature with it.
const benchSecret = "refline-bench-webhook-secret"

// fastReceiver answers 200 at once, checks each signature and notes when
// each commit's run.finished came in.
type fastReceiver struct {
	url      string
	mu       sync.Mutex
	finished map[string]time.Time // commit → when its run.finished was read
	requests int
	badSigs  int
}

// slowReceiver answers 200 after its delay, to any number of requests at
// once.
type slowReceiver struct {
	url      string
	inFlight atomic.Int64
	started  atomic.Int64
	answered atomic.Int64
	badSigs  atomic.Int64
}

func signatureOK(r *http.Request, body []byte) bool {
	m := hmac.New(sha256.New, []byte(benchSecret))
	m.Write(body)
	return hmac.Equal([]byte(r.Header.Get("X-Hub-Signature-256")), []byte("sha256="+hex.EncodeToString(m.Sum(nil))))
}

// serveHTTP serves h on a new loopback port until the process exits and
// returns its URL.
func serveHTTP(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go (&http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}).Serve(ln)
	return "http://" + ln.Addr().String() + "/hook", nil
}

func startFastReceiver() (*fastReceiver, error) {
	fr := &fastReceiver{finished: map[string]time.Time{}}
	url, err := serveHTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		now := time.Now()
		var p struct {
			Event  string `json:"event"`
			Commit string `json:"commit"`
		}
		_ = json.Unmarshal(body, &p)
		fr.mu.Lock()
		fr.requests++
		if !signatureOK(r, body) {
			fr.badSigs++
		} else if p.Event == "run.finished" && r.Header.Get("X-Refline-Event") == p.Event {
			if _, ok := fr.finished[p.Commit]; !ok {
				fr.finished[p.Commit] = now
			}
		}
		fr.mu.Unlock()
	}))
	fr.url = url
	return fr, err
}

// waitFinished polls for the moment commit's run.finished came in.
func (fr *fastReceiver) waitFinished(commit string, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		fr.mu.Lock()
		t, ok := fr.finished[commit]
		fr.mu.Unlock()
		if ok {
			return t, nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("no run.finished for %s after %s", commit, timeout)
		}
		time.Sleep(time.Millisecond)
	}
}

func startSlowReceiver(delay time.Duration) (*slowReceiver, error) {
	sr := &slowReceiver{}
	url, err := serveHTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		sr.started.Add(1)
		sr.inFlight.Add(1)
		defer sr.inFlight.Add(-1)
		if !signatureOK(r, body) {
			sr.badSigs.Add(1)
		}
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		sr.answered.Add(1)
	}))
	sr.url = url
	return sr, err
}

var addedHook = regexp.MustCompile(`(?m)^added webhook ([0-9a-f]+) for `)

// addHook runs `ssh … webhook add REPO URL` with the secret on stdin and
// returns the hook's id.
func (t *reflineTarget) addHook(repo, url string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	argv := t.command("webhook", "add", repo, url)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin = strings.NewReader(benchSecret + "\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("webhook add %s %s: %w: %s", repo, url, err, bytes.TrimSpace(out))
	}
	m := addedHook.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("webhook add %s: no id in %q", repo, out)
	}
	return string(m[1]), nil
}

// queued counts the deliveries waiting in a hook's queue on disk.
func (t *reflineTarget) queued(hook string) int {
	ents, _ := os.ReadDir(filepath.Join(t.data, "webhooks", "queue", hook))
	n := 0
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".json") && !strings.HasPrefix(e.Name(), ".") {
			n++
		}
	}
	return n
}

// hookPush is one timed push of the webhooks section.
type hookPush struct {
	push      time.Duration // git push wall time
	delivered time.Duration // push start → run.finished read by the receiver
	lag       time.Duration // run's finished (run.json) → run.finished read
}

func benchWebhooks(c webhooksConfig) error {
	fast, err := startFastReceiver()
	if err != nil {
		return err
	}
	slow, err := startSlowReceiver(c.delay)
	if err != nil {
		return err
	}
	files := map[string]string{
		"README.md":       "A small repository for the webhook benchmark.\n",
		"app/version.txt": "0\n",
		".refline/pipelines/web.yml": `# The benchmark's pipeline: one stage that does nothing, and a 2-byte artifact.
stages:
  - name: build
    run: "true"
artifact:
  paths: [app/]
`,
	}
	const latencyRepo, slowRepo, noneRepo = "bench-webhook", "bench-webhook-slow", "bench-webhook-none"
	clients := map[string]*clientRepo{}
	m, err := c.rl.metrics()
	if err != nil {
		return err
	}
	builds := finished(m, "build")
	for _, repo := range []string{latencyRepo, slowRepo, noneRepo} {
		cl, err := newClientRepo(filepath.Join(c.work, repo+"-client"), c.rl.repoURL(repo), files)
		if err != nil {
			return err
		}
		clients[repo] = cl
		// The first push creates the repository.
		if _, _, _, err := timed(cl.dir, "git", "push", "-q", "origin", "master"); err != nil {
			return fmt.Errorf("%s: first push: %w", repo, err)
		}
		builds++
		if _, err := c.rl.waitIdle("build", builds); err != nil {
			return err
		}
	}
	var hookIDs []struct{ repo, id string }
	defer func() {
		// Stop the workers still waiting on the slow receiver before the
		// next section, and drop their queues.
		for _, h := range hookIDs {
			_, _, _, _ = timed("", c.rl.command("webhook", "remove", h.repo, h.id)...)
		}
	}()
	id, err := c.rl.addHook(latencyRepo, fast.url)
	if err != nil {
		return err
	}
	hookIDs = append(hookIDs, struct{ repo, id string }{latencyRepo, id})

	// push is one change and timed push to repo; it waits for the run to
	// end (and, with wantFinished, for the receiver to read run.finished).
	n := 0
	push := func(repo string, wantFinished bool) (hookPush, error) {
		n++
		cl := clients[repo]
		sha, err := cl.change("app/version.txt", fmt.Sprintf("%d\n", n), fmt.Sprintf("change %d", n))
		if err != nil {
			return hookPush{}, err
		}
		t0, d, out, err := timed(cl.dir, "git", "push", "origin", "master")
		if err != nil {
			return hookPush{}, fmt.Errorf("%s, push %d: %w", repo, n, err)
		}
		hp := hookPush{push: d}
		if wantFinished {
			got, err := fast.waitFinished(sha, time.Minute)
			if err != nil {
				return hookPush{}, err
			}
			hp.delivered = got.Sub(t0)
			num, err := runNumberIn(out)
			if err != nil {
				return hookPush{}, err
			}
			run, err := c.rl.run(repo, "web", num)
			if err != nil {
				return hookPush{}, err
			}
			if run.State != "passed" {
				return hookPush{}, fmt.Errorf("%s, push %d: run #%d %s: %s", repo, n, num, run.State, run.Error)
			}
			hp.lag = got.Sub(run.Finished)
		}
		builds++
		if _, err := c.rl.waitIdle("build", builds); err != nil {
			return hookPush{}, err
		}
		return hp, nil
	}

	loadBefore := loadavg()
	// Push → run.finished delivered.
	var latency []hookPush
	for i := 0; i < c.warmup+c.pushes; i++ {
		hp, err := push(latencyRepo, true)
		if err != nil {
			return err
		}
		if i >= c.warmup {
			latency = append(latency, hp)
			fmt.Printf("push %3d  push %7.1f ms  → run.finished delivered %7.1f ms (run finished → delivered %6.1f ms)\n",
				i-c.warmup+1, float64(hp.push)/1e6, float64(hp.delivered)/1e6, float64(hp.lag)/1e6)
		}
	}

	// A push's wall time with hooks on a slow receiver against none.
	var slowIDs []string
	for range c.hooks {
		id, err := c.rl.addHook(slowRepo, slow.url)
		if err != nil {
			return err
		}
		hookIDs = append(hookIDs, struct{ repo, id string }{slowRepo, id})
		slowIDs = append(slowIDs, id)
	}
	var withHooks, without []time.Duration
	var inFlight []int64 // slow receiver's requests open as each timed push with hooks started
	startedBefore := slow.started.Load()
	for i := 0; i < c.warmup+c.pairs; i++ {
		order := []string{slowRepo, noneRepo}
		if i%2 == 1 {
			order = []string{noneRepo, slowRepo}
		}
		for _, repo := range order {
			open := slow.inFlight.Load()
			hp, err := push(repo, false)
			if err != nil {
				return err
			}
			if i < c.warmup {
				continue
			}
			if repo == slowRepo {
				withHooks = append(withHooks, hp.push)
				inFlight = append(inFlight, open)
			} else {
				without = append(without, hp.push)
			}
			fmt.Printf("pair %3d  %-20s push %7.1f ms\n", i-c.warmup+1, repo, float64(hp.push)/1e6)
		}
		if i+1 == c.warmup {
			startedBefore = slow.started.Load()
		}
	}
	queuedAtEnd := 0
	for _, id := range slowIDs {
		queuedAtEnd += c.rl.queued(id)
	}
	fast.mu.Lock()
	fastBad, fastRequests := fast.badSigs, fast.requests
	fast.mu.Unlock()
	if fastBad > 0 || slow.badSigs.Load() > 0 {
		return fmt.Errorf("%d deliveries with a bad signature", fastBad+int(slow.badSigs.Load()))
	}
	return reportWebhooks(c, webhookResults{
		latency: latency, withHooks: withHooks, without: without, inFlight: inFlight,
		slowStarted: slow.started.Load() - startedBefore, slowAnswered: slow.answered.Load(),
		queuedAtEnd: queuedAtEnd, fastRequests: fastRequests, loadBefore: loadBefore,
	})
}

type webhookResults struct {
	latency            []hookPush
	withHooks, without []time.Duration
	inFlight           []int64
	slowStarted        int64
	slowAnswered       int64
	queuedAtEnd        int
	fastRequests       int
	loadBefore         string
}

func reportWebhooks(c webhooksConfig, r webhookResults) error {
	var pushes, delivered, lag []time.Duration
	for _, hp := range r.latency {
		pushes = append(pushes, hp.push)
		delivered = append(delivered, hp.delivered)
		lag = append(lag, hp.lag)
	}
	ratio := median(r.withHooks).Seconds() / median(r.without).Seconds()
	minOpen := int64(-1)
	for _, o := range r.inFlight {
		if minOpen < 0 || o < minOpen {
			minOpen = o
		}
	}
	var table bytes.Buffer
	fmt.Fprintf(&table, "| measured | p50 | p90 | max | target |\n|---|---:|---:|---:|---|\n")
	fmt.Fprintf(&table, "| `git push` started → the receiver read the run's `run.finished` | %s | %s | %s | (none set) |\n",
		ms(percentile(delivered, 50)), ms(percentile(delivered, 90)), ms(maxDuration(delivered)))
	fmt.Fprintf(&table, "| of which: the run's `finished` (run.json) → the receiver read `run.finished` | %s | %s | %s | |\n",
		ms(percentile(lag, 50)), ms(percentile(lag, 90)), ms(maxDuration(lag)))
	fmt.Fprintf(&table, "| `git push` wall time, repository with %d hooks on a receiver answering after %s | %s | %s | %s | |\n",
		c.hooks, seconds(c.delay), ms(median(r.withHooks)), ms(percentile(r.withHooks, 90)), ms(maxDuration(r.withHooks)))
	fmt.Fprintf(&table, "| `git push` wall time, repository without hooks | %s | %s | %s | |\n",
		ms(median(r.without)), ms(percentile(r.without, 90)), ms(maxDuration(r.without)))
	fmt.Fprintf(&table, "| **ratio of the medians** (%d hooks on a slow receiver / none) | %.2f× | | | ≤ 1.1×: %s |\n",
		c.hooks, ratio, verdict(ratio <= 1.1))
	fmt.Println()
	os.Stdout.Write(table.Bytes())
	fmt.Printf("\nslow receiver: %d requests started during the timed pushes, %d answered in all; open at each push's start: min %d; %d deliveries still queued at the end\n",
		r.slowStarted, r.slowAnswered, minOpen, r.queuedAtEnd)
	if c.out == "" {
		return nil
	}
	var doc bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&doc, format, args...) }
	w("## Webhooks\n\n")
	w("How soon a webhook tells a receiver that a run finished, and what webhooks on a slow receiver cost a push (SPEC §10). The repositories' pipeline is one stage, `true`, and a 2-byte artifact; the receivers are HTTP servers inside the benchmark on 127.0.0.1 (the server runs with `--webhook-allow-private`), and check every delivery's `X-Hub-Signature-256`. There is no other tool in the comparison: the baseline is the same push without hooks.\n\n")
	w("Written by `scripts/bench.sh` (`make bench`); run on %s with\n\n```\n%s\n```\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), c.command)
	w("%s\n", table.String())
	w("- **Push → `run.finished` delivered**: one hook (all events) on a receiver that answers 200 at once; %d timed pushes of a one-file change after %d untimed ones, each waiting for the run to end before the next. The time runs from just before `git push` starts to the receiver having read the request whose `X-Refline-Event` is `run.finished` and whose body's `commit` is the pushed one; the hook delivers `push` and `run.started` first, in order. The second row is the part after the run's end as run.json records it (`finished`): recording the run (a signed commit on `refs/runs/web`, which the event waits for so that it never announces a run the server has not recorded), queueing the event (a synced file), the hook's worker waking, and the POST. The receiver got %d requests in this part, every signature right.\n", c.pushes, c.warmup, r.fastRequests)
	w("- **Slow receiver**: %d hooks (all events) of one repository on a receiver that answers each request after %s, and a second repository with the same pipeline and no hooks; pushes alternate between the two (%d timed each after %d untimed pairs; which goes first alternates), each waiting for its run to end. Every push to the first queues `push`, `run.started`, `run.finished` and `artifact.recorded` for each hook, %d deliveries, which the hooks' workers take %s each to get through, so their backlog grows all along: at the start of every timed push with hooks at least %d requests were open at the receiver, it received %d requests during the timed pushes, and %d deliveries were still queued when the section ended (their hooks are then removed). A push waits only for its `push` event to be written to each hook's queue (a synced file per hook, in the post-receive hook), never for a receiver.\n",
		c.hooks, seconds(c.delay), c.pairs, c.warmup, 4*c.hooks, seconds(c.delay), minOpen, r.slowStarted, r.queuedAtEnd)
	w("- **p90** is nearest-rank: value %d of the %d sorted ones.\n", percentileRank(len(delivered), 90), len(delivered))
	w("\nRaw times (ms, in order):\n\n```\n")
	w("push → run.finished read     %s\n", rawMs(delivered))
	w("run finished → read          %s\n", rawMs(lag))
	w("push, one fast hook          %s\n", rawMs(pushes))
	w("push, %d slow hooks           %s\n", c.hooks, rawMs(r.withHooks))
	w("push, no hooks               %s\n", rawMs(r.without))
	w("```\n\nMachine:\n\n%s- load average (1, 5, 15 min) before the runs %s, after them %s (other work shares the machine)\n", machine(), r.loadBefore, loadavg())
	return os.WriteFile(c.out, doc.Bytes(), 0o644)
}

// seconds formats a whole number of seconds as prose does: "5 s".
func seconds(d time.Duration) string { return fmt.Sprintf("%g s", d.Seconds()) }
