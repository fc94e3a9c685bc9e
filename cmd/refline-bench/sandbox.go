package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/refline/refline/pipelines"
)

// sandboxMain times what the sandbox executor adds to a stage: the same
// stage (`true`) run through refline's own executors, the local one and the
// sandbox, alternating in one run so that both see the same machine. Each
// sample is a whole stage: start, the script, its end and the clean-up of
// its process group or pid namespace (and its cgroups).
func sandboxMain(args []string) error {
	fs := flag.NewFlagSet("sandbox", flag.ContinueOnError)
	stages := fs.Int("stages", 200, "timed stages per executor")
	work := fs.String("work", "", "scratch directory (a workspace and DATA)")
	command := fs.String("command", "", "the command line to record in the report")
	out := fs.String("out", "", "markdown file to write")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *work == "" || *out == "" {
		return errors.New("-work and -out are required")
	}
	data := filepath.Join(*work, "sandbox-data")
	log := logrus.New()
	log.SetOutput(io.Discard)
	sb := pipelines.NewSandbox(pipelines.SandboxConfig{DataDir: data, Limits: pipelines.Limits{Pids: 4096},
		Logger: logrus.NewEntry(log)})
	if err := sb.Usable(); err != nil {
		return err
	}
	ctx := context.Background()
	prepare := func(ex pipelines.Executor, name string) (pipelines.Workspace, error) {
		return ex.Prepare(ctx, pipelines.WorkspaceSpec{Dir: filepath.Join(data, "work", name), Env: []string{"PATH=/usr/bin:/bin"}})
	}
	local, err := prepare(pipelines.Local{}, "local")
	if err != nil {
		return err
	}
	boxed, err := prepare(sb, "sandbox")
	if err != nil {
		return err
	}
	// stage runs `date +%s%N > stamp` and returns how long the whole
	// stage took and how long until its script ran (the stamp).
	stage := func(ws pipelines.Workspace, dir string) (time.Duration, time.Duration, error) {
		stampFile := filepath.Join(data, "work", dir, "stamp")
		os.Remove(stampFile)
		t0 := time.Now()
		p, err := ws.Start(ctx, pipelines.Job{Script: "date +%s%N > stamp", Output: io.Discard})
		if err != nil {
			return 0, 0, err
		}
		code, err := p.Wait()
		whole := time.Since(t0)
		if err == nil && code != 0 {
			err = fmt.Errorf("exit status %d", code)
		}
		if err != nil {
			return 0, 0, err
		}
		stamp, err := waitStamp(stampFile, time.Second)
		return whole, stamp.Sub(t0), err
	}
	load0, _ := os.ReadFile("/proc/loadavg")
	var tl, ts, sl, ss []time.Duration
	for i := -5; i < *stages; i++ { // five warm-up rounds
		a, as, err := stage(local, "local")
		if err != nil {
			return fmt.Errorf("local stage: %w", err)
		}
		b, bs, err := stage(boxed, "sandbox")
		if err != nil {
			return fmt.Errorf("sandbox stage: %w", err)
		}
		if i >= 0 {
			tl, ts = append(tl, a), append(ts, b)
			sl, ss = append(sl, as), append(ss, bs)
		}
	}
	diff := func(a, b []time.Duration) []time.Duration {
		d := make([]time.Duration, len(a))
		for i := range a {
			d[i] = b[i] - a[i]
		}
		return d
	}
	diffs, sdiffs := diff(tl, ts), diff(sl, ss)
	load1, _ := os.ReadFile("/proc/loadavg")
	loadavg := func(b []byte) string {
		return strings.Join(strings.Fields(string(b))[:min(3, len(strings.Fields(string(b))))], " ")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "## Sandbox\n\n")
	row := func(name string, ds []time.Duration) {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", name, ms(percentile(ds, 50)), ms(percentile(ds, 90)), ms(percentile(ds, 99)))
	}
	fmt.Fprintf(&b, "What `--executor sandbox` (the default) adds to each stage against `--executor local`: the same\n")
	fmt.Fprintf(&b, "stage (`date +%%s%%N > stamp`), %d times through each of refline's executors, alternating, in one\n", *stages)
	fmt.Fprintf(&b, "process (`refline-bench sandbox`). *Whole stage* is start, script, end and the clean-up of its process\n")
	fmt.Fprintf(&b, "group (local) or of its pid namespace and cgroups (sandbox); *start → script running* ends at the\n")
	fmt.Fprintf(&b, "script's `date`, the part a push waits for before its first stage runs. Limits enforced by: %s.\n", sb.LimitsBy())
	fmt.Fprintf(&b, "Target: ≤ 15 ms added per stage at p50.\n\n")
	fmt.Fprintf(&b, "| per stage | p50 | p90 | p99 |\n|---|---|---|---|\n")
	row("whole stage, local", tl)
	row("whole stage, sandbox", ts)
	row("**whole stage, added by the sandbox** (pairwise)", diffs)
	row("start → script running, local", sl)
	row("start → script running, sandbox", ss)
	row("**start → script running, added by the sandbox** (pairwise)", sdiffs)
	fmt.Fprintf(&b, "\n")
	fmt.Fprintf(&b, "Machine: %d CPUs (%s/%s), %s; load average (1, 5, 15 min) before %s, after %s (other work shares the machine). Command: `%s`.\n",
		runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, time.Now().UTC().Format("2006-01-02"), loadavg(load0), loadavg(load1), *command)
	return os.WriteFile(*out, []byte(b.String()), 0o644)
}
