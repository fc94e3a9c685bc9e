package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// agentMain times push → first stage started through the agent executor
// (--executor agent, with the local launcher standing in for a cluster:
// the agent is a process that dials back over SSH, gets the plan and the
// workspace and starts the stage) against the sandbox executor, on two
// refline servers it starts from the same binary, pushing the same
// pipeline to each in turn.
func agentMain(args []string) error {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	bin := fs.String("refline-bin", "", "the refline binary to serve with")
	adminKey := fs.String("admin-key", "", "the client's public key (its private half is in GIT_SSH_COMMAND)")
	work := fs.String("work", "", "scratch directory")
	pushes := fs.Int("pushes", 30, "timed pushes per executor")
	warmup := fs.Int("warmup", 3, "untimed pushes per executor first")
	command := fs.String("command", "", "the command line to record in the report")
	out := fs.String("out", "", "markdown file to write")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *bin == "" || *adminKey == "" || *work == "" || *out == "" || *pushes < 1 {
		return errors.New("-refline-bin, -admin-key, -work and -out are required")
	}
	stampAddr, err := stampServer(*work)
	if err != nil {
		return err
	}
	type contender struct {
		name    string
		flags   []string
		rl      *reflineTarget
		stop    func()
		client  *clientRepo
		stamps  string
		builds  float64
		latency []time.Duration
	}
	cs := []*contender{
		{name: "sandbox", flags: []string{"--executor", "sandbox"}},
		{name: "agent", flags: []string{"--executor", "agent", "--agent-launcher", "local"}},
	}
	for _, c := range cs {
		c.rl, c.stop, err = startRefline(*bin, filepath.Join(*work, "agent-bench-"+c.name), *adminKey, c.flags)
		if err != nil {
			return fmt.Errorf("%s server: %w", c.name, err)
		}
		defer c.stop()
		c.stamps = filepath.Join(*work, "agent-bench-"+c.name+"-stamps")
		if err := os.MkdirAll(c.stamps, 0o755); err != nil {
			return err
		}
		files := map[string]string{
			"app/version.txt": "0\n",
			".refline/pipelines/web.yml": fmt.Sprintf(`# The agent benchmark's pipeline: its first stage only records when it started.
network: true
stages:
  - name: start
    run: s=$(date +%%s%%N); bash -c "echo %s/$REFLINE_COMMIT $s > /dev/tcp/%s"
artifact:
  paths: [app/]
`, filepath.Base(c.stamps), strings.Replace(stampAddr, ":", "/", 1)),
		}
		if c.client, err = newClientRepo(filepath.Join(*work, "agent-bench-"+c.name+"-client"), c.rl.repoURL("bench"), files); err != nil {
			return err
		}
		if _, _, _, err := timed(c.client.dir, "git", "push", "-q", "origin", "master"); err != nil {
			return fmt.Errorf("%s: first push: %w", c.name, err)
		}
		c.builds++
		if _, err := c.rl.waitIdle("build", c.builds); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
	}
	load0 := loadavg()
	for i := 0; i < *warmup+*pushes; i++ {
		order := cs
		if i%2 == 1 {
			order = []*contender{cs[1], cs[0]}
		}
		for _, c := range order {
			sha, err := c.client.change("app/version.txt", fmt.Sprintf("%d\n", i+1), fmt.Sprintf("change %d", i+1))
			if err != nil {
				return err
			}
			t0, _, out, err := timed(c.client.dir, "git", "push", "origin", "master")
			if err != nil {
				return fmt.Errorf("%s, push %d: %w", c.name, i, err)
			}
			stamp, err := waitStamp(filepath.Join(c.stamps, sha), time.Minute)
			if err != nil {
				return fmt.Errorf("%s, push %d: %w", c.name, i, err)
			}
			c.builds++
			if _, err := c.rl.waitIdle("build", c.builds); err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			n, err := runNumberIn(out)
			if err != nil {
				return err
			}
			if run, err := c.rl.run("bench", "web", n); err != nil || run.State != "passed" {
				if err == nil {
					err = fmt.Errorf("run #%d %s: %s", n, run.State, run.Error)
				}
				return fmt.Errorf("%s, push %d: %w", c.name, i, err)
			}
			if i >= *warmup {
				c.latency = append(c.latency, stamp.Sub(t0))
				fmt.Printf("push %3d  %-8s → first stage %7.1f ms\n", i-*warmup+1, c.name, float64(stamp.Sub(t0))/1e6)
			}
		}
	}
	sb, ag := cs[0].latency, cs[1].latency
	diff := make([]time.Duration, len(sb))
	for i := range sb {
		diff[i] = ag[i] - sb[i]
	}
	var b strings.Builder
	fmt.Fprintf(&b, "## Agent\n\n")
	fmt.Fprintf(&b, "Push → first stage started through the agent executor (`--executor agent --agent-launcher local`:\n")
	fmt.Fprintf(&b, "the launcher starts `refline agent` as a local process, the stand-in for a Kubernetes Job's pod; it\n")
	fmt.Fprintf(&b, "dials back over SSH with the run's key, receives the plan and the workspace as a tar stream, and\n")
	fmt.Fprintf(&b, "starts the stage) against the sandbox executor (`--executor sandbox`), on two servers of the same\n")
	fmt.Fprintf(&b, "binary, %d pushes each, alternating which goes first, after %d untimed. The interval runs from the\n", *pushes, *warmup)
	fmt.Fprintf(&b, "client's `git push` starting to the first stage's `date +%%s%%N` (sent to the benchmark over loopback).\n")
	fmt.Fprintf(&b, "What a real cluster adds (scheduling the pod, pulling the image) is not in it.\n\n")
	fmt.Fprintf(&b, "| push → first stage started | p50 | p90 |\n|---|---|---|\n")
	fmt.Fprintf(&b, "| sandbox executor | %s | %s |\n", ms(percentile(sb, 50)), ms(percentile(sb, 90)))
	fmt.Fprintf(&b, "| agent executor, local launcher | %s | %s |\n", ms(percentile(ag, 50)), ms(percentile(ag, 90)))
	fmt.Fprintf(&b, "| added by the agent (pairwise) | %s | %s |\n\n", ms(percentile(diff, 50)), ms(percentile(diff, 90)))
	fmt.Fprintf(&b, "Ratio agent / sandbox: %.2f× at p50, %.2f× at p90.\n\n",
		float64(percentile(ag, 50))/float64(percentile(sb, 50)), float64(percentile(ag, 90))/float64(percentile(sb, 90)))
	fmt.Fprintf(&b, "Machine: %d CPUs (%s/%s), %s; load average (1, 5, 15 min) before %s, after %s (other work shares the machine). Command: `%s`.\n",
		runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, time.Now().UTC().Format("2006-01-02"), load0, loadavg(), *command)
	return os.WriteFile(*out, []byte(b.String()), 0o644)
}

// startRefline starts `refline serve` on loopback ports with data dir
// data and extra flags, and returns it as a target once it listens, with
// the function that stops it.
func startRefline(bin, data, adminKey string, flags []string) (*reflineTarget, func(), error) {
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, nil, err
	}
	logf, err := os.Create(data + ".log")
	if err != nil {
		return nil, nil, err
	}
	args := append([]string{"serve", "--data", data, "--ssh-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--admin-key", adminKey}, flags...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, nil, err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		addr, err := os.ReadFile(filepath.Join(data, "run", "ssh.addr"))
		if _, herr := os.Stat(filepath.Join(data, "run", "http.addr")); err == nil && herr == nil && len(addr) > 0 {
			t := &reflineTarget{url: "ssh://git@" + strings.TrimSpace(string(addr)), data: data, log: data + ".log"}
			if err := t.init(); err != nil {
				stop()
				return nil, nil, err
			}
			return t, stop, nil
		}
		select {
		case <-exited:
			return nil, nil, fmt.Errorf("refline exited; see %s.log", data)
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return nil, nil, errors.New("refline did not listen within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
