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
	stage := func(ws pipelines.Workspace) (time.Duration, error) {
		t0 := time.Now()
		p, err := ws.Start(ctx, pipelines.Job{Script: "true", Output: io.Discard})
		if err != nil {
			return 0, err
		}
		code, err := p.Wait()
		if err == nil && code != 0 {
			err = fmt.Errorf("exit status %d", code)
		}
		return time.Since(t0), err
	}
	var tl, ts []time.Duration
	for i := -5; i < *stages; i++ { // five warm-up rounds
		a, err := stage(local)
		if err != nil {
			return fmt.Errorf("local stage: %w", err)
		}
		b, err := stage(boxed)
		if err != nil {
			return fmt.Errorf("sandbox stage: %w", err)
		}
		if i >= 0 {
			tl, ts = append(tl, a), append(ts, b)
		}
	}
	diffs := make([]time.Duration, len(tl))
	for i := range tl {
		diffs[i] = ts[i] - tl[i]
	}
	var b strings.Builder
	fmt.Fprintf(&b, "What `--executor sandbox` (the default) adds to each stage against `--executor local`: the same\n")
	fmt.Fprintf(&b, "stage (`true`), %d times through each of refline's executors, alternating, in one process.\n", *stages)
	fmt.Fprintf(&b, "A sample is the whole stage: start, script, end, and the clean-up of its process group (local) or\n")
	fmt.Fprintf(&b, "its pid namespace and cgroups (sandbox). Limits enforced by: %s. Target: ≤ 15 ms added at p50.\n\n", sb.LimitsBy())
	fmt.Fprintf(&b, "| executor | p50 | p90 | p99 |\n|---|---|---|---|\n")
	fmt.Fprintf(&b, "| local | %s | %s | %s |\n", ms(percentile(tl, 50)), ms(percentile(tl, 90)), ms(percentile(tl, 99)))
	fmt.Fprintf(&b, "| sandbox | %s | %s | %s |\n", ms(percentile(ts, 50)), ms(percentile(ts, 90)), ms(percentile(ts, 99)))
	fmt.Fprintf(&b, "| **added by the sandbox** (pairwise) | **%s** | %s | %s |\n\n", ms(percentile(diffs, 50)), ms(percentile(diffs, 90)), ms(percentile(diffs, 99)))
	fmt.Fprintf(&b, "Machine: %d CPUs (%s/%s), %s. Command: `%s`.\n", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, time.Now().UTC().Format("2006-01-02"), *command)
	return os.WriteFile(*out, []byte(b.String()), 0o644)
}
