package pipelines

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/ssh"

	"github.com/refline/refline/pipelines/spec"
	"github.com/refline/refline/refs"
)

// testRepos holds bare repositories as ROOT/NAME.git, each with master as
// its deploy branch.
type testRepos struct{ root string }

func (r testRepos) Path(name string) string { return filepath.Join(r.root, name+".git") }

func (r testRepos) Exists(name string) bool {
	_, err := os.Stat(r.Path(name))
	return err == nil
}

func (r testRepos) List() ([]string, error) {
	m, err := filepath.Glob(filepath.Join(r.root, "*.git"))
	for i := range m {
		m[i] = strings.TrimSuffix(filepath.Base(m[i]), ".git")
	}
	return m, err
}

func (r testRepos) DeployBranch(context.Context, string) string { return "master" }

// runnerEnv is a repository "app" with pipeline files at master, and what a
// Runner over it needs.
type runnerEnv struct {
	t       *testing.T
	repos   testRepos
	repo    *testRepo
	commit  string // master
	signer  *refs.Signer
	dataDir string
	log     *syncBuffer
}

func newRunnerEnv(t *testing.T, pipelines map[string]string) *runnerEnv {
	t.Helper()
	e := &runnerEnv{t: t, repos: testRepos{root: t.TempDir()}, dataDir: t.TempDir(), log: &syncBuffer{}}
	e.repo = newTestRepo(t, e.repos.Path("app"))
	files := map[string][]byte{
		"scripts/build.sh*": []byte("#!/bin/sh\necho built\n"),
	}
	for name, text := range pipelines {
		files[spec.Dir+name+".yml"] = []byte(text)
	}
	e.commit = e.repo.commit("add pipelines", files)
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	e.signer = refs.NewSigner(key, "refline@test")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("runner log:\n%s", e.log.String())
		}
	})
	return e
}

// newRunner creates a Runner over e's data dir, without starting it. It is
// shut down when the test ends.
func (e *runnerEnv) newRunner(maxJobs int) *Runner {
	e.t.Helper()
	logger := logrus.New()
	logger.SetOutput(e.log)
	logger.SetLevel(logrus.DebugLevel)
	r, err := New(Config{
		DataDir:   e.dataDir,
		Repos:     e.repos,
		Executor:  Local{Grace: 5 * time.Second},
		MaxJobs:   maxJobs,
		Signer:    e.signer,
		Updater:   refs.Updater{},
		Committer: object.Signature{Name: "refline", Email: "refline@test"},
		Logger:    logrus.NewEntry(logger),
		BaseEnv:   []string{"PATH=" + os.Getenv("PATH")},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { r.Shutdown(0) })
	return r
}

// startRunner creates and starts a Runner.
func (e *runnerEnv) startRunner(maxJobs int) *Runner {
	e.t.Helper()
	r := e.newRunner(maxJobs)
	if err := r.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (e *runnerEnv) enqueue(r *Runner, pipeline string) *Run {
	e.t.Helper()
	run, err := r.Enqueue(context.Background(), Request{
		Repo: "app", Pipeline: pipeline, Kind: Build, Commit: e.commit, Branch: "master", Trigger: "test",
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return run
}

// queue stores runs of the pipelines as queued, as a Runner does with runs
// accepted while it shuts down; the next Runner started over the data dir
// runs them, in order.
//
// The tests queue runs this way, or with Enqueue while the only worker is
// busy, but not with Enqueue on an idle running Runner: Enqueue copies the
// run it returns after releasing r.mu, while a worker may already be
// updating that run, and -race reports it.
func (e *runnerEnv) queue(pipelines ...string) []*Run {
	e.t.Helper()
	r := e.newRunner(1)
	r.Shutdown(0)
	var runs []*Run
	for _, p := range pipelines {
		runs = append(runs, e.enqueue(r, p))
	}
	return runs
}

// follow follows a run to its end and returns it with its output.
func (e *runnerEnv) follow(r *Runner, pipeline string, n int) (*Run, string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out bytes.Buffer
	run, err := r.Follow(ctx, "app", pipeline, n, &out)
	if err != nil {
		e.t.Fatalf("follow %s #%d: %v (output so far %q)", pipeline, n, err, out.String())
	}
	return run, out.String()
}

// waitStage waits until a run's stage i is running.
func (e *runnerEnv) waitStage(r *Runner, pipeline string, n, i int) *Run {
	e.t.Helper()
	var run *Run
	waitFor(e.t, 20*time.Second, fmt.Sprintf("%s #%d stage %d to run", pipeline, n, i), func() bool {
		var err error
		run, err = r.Get("app", pipeline, n)
		if err != nil {
			e.t.Fatal(err)
		}
		return len(run.Stages) > i && run.Stages[i].State == Running && run.Process != ""
	})
	return run
}

// git runs git on the bare repository.
func (e *runnerEnv) git(args ...string) string {
	e.t.Helper()
	return testGit(e.t, e.repo.work, append([]string{"--git-dir=" + e.repo.gitDir}, args...)...)
}

// checkRecord waits for the record with subject on refs/runs/PIPELINE (the
// record is written after the run's final state is visible), checks that
// git accepts its signature and the state in its run.json, and returns its
// commit id.
func (e *runnerEnv) checkRecord(pipeline, subject string, state State) string {
	e.t.Helper()
	ref := refs.RunsRef(pipeline)
	// The record is looked for on the whole chain, not only at its tip: a
	// run queued after it may already have appended its own.
	var rec string
	waitFor(e.t, 20*time.Second, fmt.Sprintf("%s to hold %q", ref, subject), func() bool {
		out, err := exec.Command("git", "--git-dir="+e.repo.gitDir, "log", "--format=%H %s", ref).Output()
		if err != nil {
			return false
		}
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if id, s, _ := strings.Cut(l, " "); s == subject {
				rec = id
				return true
			}
		}
		return false
	})
	allowed := filepath.Join(e.t.TempDir(), "allowed_signers")
	if err := os.WriteFile(allowed, []byte(e.signer.AllowedSignersLine()+"\n"), 0o600); err != nil {
		e.t.Fatal(err)
	}
	e.git("-c", "gpg.format=ssh", "-c", "gpg.ssh.allowedSignersFile="+allowed, "verify-commit", rec)
	var run Run
	if err := json.Unmarshal([]byte(e.git("show", rec+":run.json")), &run); err != nil {
		e.t.Fatal(err)
	}
	if run.State != state || run.Pipeline != pipeline || run.Commit != e.commit {
		e.t.Errorf("%s run.json: state %s, pipeline %s, commit %s", ref, run.State, run.Pipeline, run.Commit)
	}
	return rec
}

const passPipeline = `env:
  GREETING: hello from env
stages:
  - name: configure
    run: |
      echo "configuring $REFLINE_REPO $REFLINE_PIPELINE #$REFLINE_RUN at $REFLINE_COMMIT on $REFLINE_BRANCH"
      test -x scripts/build.sh
      test ! -e .git
  - name: build
    run: |
      ./scripts/build.sh
      echo "$GREETING"
      echo "server secret: ${REFLINE_TEST_SERVER_SECRET:-unset}"
artifact:
  paths: [scripts/]
`

func TestRunnerPasses(t *testing.T) {
	t.Setenv("REFLINE_TEST_SERVER_SECRET", "leaked")
	e := newRunnerEnv(t, map[string]string{"web": passPipeline})
	queued := e.queue("web", "web")
	if q := queued[0]; q.Number != 1 || q.State != Queued || q.Subject != "add pipelines" || q.Kind != Build {
		t.Errorf("Enqueue = #%d %s, subject %q, kind %s", q.Number, q.State, q.Subject, q.Kind)
	}
	if queued[1].Number != 2 {
		t.Errorf("second Enqueue = #%d", queued[1].Number)
	}
	r := e.startRunner(2)
	run, out := e.follow(r, "web", 1)
	want := fmt.Sprintf("--- configure\nconfiguring app web #1 at %s on master\n--- build\nbuilt\nhello from env\nserver secret: unset\n", e.commit)
	if out != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
	if run.State != Passed || run.Error != "" || run.Process != "" || run.Started.IsZero() || run.Finished.Before(run.Started) {
		t.Errorf("run: state %s, error %q, process %q, started %v, finished %v", run.State, run.Error, run.Process, run.Started, run.Finished)
	}
	if len(run.Stages) != 2 {
		t.Fatalf("stages %+v", run.Stages)
	}
	for i, name := range []string{"configure", "build"} {
		st := run.Stages[i]
		if st.Name != name || st.State != Passed || st.ExitCode != 0 || st.Started.IsZero() || st.Finished.Before(st.Started) {
			t.Errorf("stage %d: %+v", i, st)
		}
	}
	short := e.commit[:7]
	e.checkRecord("web", "web #1 passed ("+short+")", Passed)
	if got := e.git("ls-tree", "-r", "--name-only", refs.RunsRef("web")); got != "logs/build.log\nlogs/configure.log\nrun.json" {
		t.Errorf("record tree:\n%s", got)
	}
	if got := e.git("show", refs.RunsRef("web")+":logs/build.log"); got != "built\nhello from env\nserver secret: unset" {
		t.Errorf("recorded build log %q", got)
	}
	if _, err := os.Stat(filepath.Join(e.dataDir, "work", "app", "web", "1")); !os.IsNotExist(err) {
		t.Errorf("workspace left after the run: %v", err)
	}
	if stored, err := r.store.load("app", "web", 1); err != nil || stored.State != Passed {
		t.Errorf("stored run: %+v, %v", stored, err)
	}

	// #2 runs after #1, and its record follows #1's on the chain.
	if run, _ := e.follow(r, "web", 2); run.State != Passed {
		t.Errorf("#2: %s", run.State)
	}
	e.checkRecord("web", "web #2 passed ("+short+")", Passed)
	if got := e.git("log", "--format=%s", refs.RunsRef("web")); got != "web #2 passed ("+short+")\nweb #1 passed ("+short+")" {
		t.Errorf("refs/runs/web history:\n%s", got)
	}
	runs, err := r.Runs("app", "", 10)
	if err != nil || len(runs) != 2 || runs[0].Number != 2 || runs[1].Number != 1 {
		t.Errorf("Runs = %v, %v", runs, err)
	}
	if last := r.Last("app", "web"); last == nil || last.Number != 2 {
		t.Errorf("Last = %+v", last)
	}
	// Logs of a finished run, without follow.
	var logs bytes.Buffer
	if _, err := r.Logs(context.Background(), "app", "web", 1, &logs, false); err != nil || logs.String() != want {
		t.Errorf("Logs of #1 = %q, %v", logs.String(), err)
	}
}

func TestRunnerFailingStageSkipsTheRest(t *testing.T) {
	e := newRunnerEnv(t, map[string]string{"web": `stages:
  - name: one
    run: echo one
  - name: two
    run: |
      echo before
      sh -c 'exit 3'
      echo after
  - name: three
    run: echo three
artifact:
  paths: [scripts/]
`})
	e.queue("web")
	r := e.startRunner(1)
	run, out := e.follow(r, "web", 1)
	if want := "--- one\none\n--- two\nbefore\n"; out != want {
		t.Errorf("output %q, want %q", out, want)
	}
	if run.State != Failed || len(run.Stages) != 3 {
		t.Fatalf("run: %s, stages %+v", run.State, run.Stages)
	}
	if st := run.Stages[1]; st.State != Failed || st.ExitCode != 3 || st.Error != "exit status 3" {
		t.Errorf("stage two: %+v", st)
	}
	if st := run.Stages[2]; st.State != Skipped || !st.Started.IsZero() {
		t.Errorf("stage three: %+v", st)
	}
	if _, err := os.Stat(r.store.logPath(run, "three")); !os.IsNotExist(err) {
		t.Errorf("the skipped stage has a log: %v", err)
	}
	e.checkRecord("web", fmt.Sprintf("web #1 failed at two (%s)", e.commit[:7]), Failed)

	// A retry runs the same commit again as a new run.
	r.Shutdown(0)
	retry, err := r.Retry(context.Background(), "app", "web", 1, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if retry.Number != 2 || retry.RetryOf != 1 || retry.Commit != e.commit || retry.Trigger != "retry of #1 by alice" {
		t.Errorf("retry: %+v", retry)
	}
	if run, _ := e.follow(e.startRunner(1), "web", 2); run.State != Failed || run.RetryOf != 1 {
		t.Errorf("retry: %s, retry of %d", run.State, run.RetryOf)
	}
}

func TestRunnerMissingPipelineFile(t *testing.T) {
	e := newRunnerEnv(t, map[string]string{"web": passPipeline})
	e.queue("gone")
	run, out := e.follow(e.startRunner(1), "gone", 1)
	if run.State != Failed || len(run.Stages) != 0 || out != "" {
		t.Errorf("run: %s, stages %+v, output %q", run.State, run.Stages, out)
	}
	if want := fmt.Sprintf(".refline/pipelines/gone.yml does not exist at %s", e.commit[:7]); run.Error != want {
		t.Errorf("error %q, want %q", run.Error, want)
	}
	e.checkRecord("gone", fmt.Sprintf("gone #1 failed (%s)", e.commit[:7]), Failed)
}

const slowPipeline = `stages:
  - name: work
    run: |
      echo started
      sleep 1000 &
      echo "child $!"
      wait
artifact:
  paths: [scripts/]
`

func TestRunnerCancel(t *testing.T) {
	e := newRunnerEnv(t, map[string]string{"slow": slowPipeline, "web": passPipeline})
	e.queue("slow")
	r := e.startRunner(1)
	running := e.waitStage(r, "slow", 1, 0)
	var pgid int
	if _, err := fmt.Sscanf(running.Process, "local:%d:", &pgid); err != nil {
		t.Fatalf("process handle %q: %v", running.Process, err)
	}
	var child int
	waitFor(t, 20*time.Second, "the job's background child", func() bool {
		b, _ := os.ReadFile(r.store.logPath(running, "work"))
		_, err := fmt.Sscanf(strings.TrimPrefix(string(b), "started\n"), "child %d", &child)
		return err == nil
	})

	// With the only worker busy, other pipelines' runs wait.
	e.enqueue(r, "web")
	e.enqueue(r, "web")
	if run, _ := r.Get("app", "web", 1); run.State != Queued {
		t.Fatalf("web #1 is %s, want queued", run.State)
	}
	if err := r.Cancel("app", "web", 1); err != nil {
		t.Fatal(err)
	}
	run, out := e.follow(r, "web", 1)
	if run.State != Canceled || !run.Started.IsZero() || len(run.Stages) != 0 || out != "" {
		t.Errorf("canceled queued run: %s, started %v, stages %+v, output %q", run.State, run.Started, run.Stages, out)
	}
	e.checkRecord("web", fmt.Sprintf("web #1 canceled (%s)", e.commit[:7]), Canceled)

	// Cancelling the running run stops its whole process group.
	if err := r.Cancel("app", "slow", 1); err != nil {
		t.Fatal(err)
	}
	run, out = e.follow(r, "slow", 1)
	if run.State != Canceled || run.Stages[0].State != Canceled || run.Stages[0].Error != "canceled" {
		t.Errorf("canceled running run: %s, stages %+v", run.State, run.Stages)
	}
	if !strings.HasSuffix(out, "\nrefline: run canceled\n") {
		t.Errorf("output %q does not end with the cancel note", out)
	}
	waitFor(t, 10*time.Second, "the job's processes to be gone", func() bool { return gone(pgid) && gone(child) })
	e.checkRecord("slow", fmt.Sprintf("slow #1 canceled at work (%s)", e.commit[:7]), Canceled)

	if err := r.Cancel("app", "slow", 1); err == nil || !strings.Contains(err.Error(), "already finished") {
		t.Errorf("Cancel of a finished run = %v", err)
	}
	if err := r.Cancel("app", "slow", 9); !errors.Is(err, ErrNoRun) {
		t.Errorf("Cancel of a missing run = %v, want ErrNoRun", err)
	}
	// The worker is free again and takes the other queued run.
	if run, _ := e.follow(r, "web", 2); run.State != Passed {
		t.Errorf("web #2 after the cancels: %s", run.State)
	}
}

// longPipeline blocks in run #1 only.
const longPipeline = `stages:
  - name: work
    run: |
      if [ "$REFLINE_RUN" = 1 ]; then echo waiting; sleep 1000; fi
      echo "done $REFLINE_RUN"
artifact:
  paths: [scripts/]
`

func TestRunnerShutdownInterrupts(t *testing.T) {
	e := newRunnerEnv(t, map[string]string{"long": longPipeline})
	e.queue("long")
	r := e.startRunner(1)
	running := e.waitStage(r, "long", 1, 0)
	var pgid int
	if _, err := fmt.Sscanf(running.Process, "local:%d:", &pgid); err != nil {
		t.Fatalf("process handle %q: %v", running.Process, err)
	}
	e.enqueue(r, "long") // #2 waits for #1: builds of one pipeline run in order

	r.Shutdown(0)
	run, err := r.Get("app", "long", 1)
	if err != nil {
		t.Fatal(err)
	}
	if run.State != Interrupted || run.Stages[0].State != Interrupted || run.Process != "" {
		t.Errorf("after shutdown: %s, stages %+v, process %q", run.State, run.Stages, run.Process)
	}
	if !gone(pgid) {
		t.Errorf("the job's shell %d still runs after shutdown", pgid)
	}
	e.checkRecord("long", fmt.Sprintf("long #1 interrupted at work (%s)", e.commit[:7]), Interrupted)
	if run, err := r.Get("app", "long", 2); err != nil || run.State != Queued {
		t.Errorf("#2 after shutdown: %+v, %v", run, err)
	}
	// Accepted after shutdown: stored, run by the next start.
	if run := e.enqueue(r, "long"); run.Number != 3 || run.State != Queued {
		t.Errorf("Enqueue after shutdown: #%d %s", run.Number, run.State)
	}

	r2 := e.startRunner(1)
	for _, n := range []int{2, 3} {
		run, out := e.follow(r2, "long", n)
		if run.State != Passed || out != fmt.Sprintf("--- work\ndone %d\n", n) {
			t.Errorf("#%d after restart: %s, output %q", n, run.State, out)
		}
	}
	if run, _ := r2.Get("app", "long", 1); run.State != Interrupted {
		t.Errorf("#1 after restart: %s", run.State)
	}
}

func TestRunnerRecoversAfterCrash(t *testing.T) {
	e := newRunnerEnv(t, map[string]string{"long": longPipeline})

	// What a crashed server left: a job's process group still running,
	// its run stored as running, and a queued run after it.
	job := exec.Command("sleep", "1000")
	job.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := job.Start(); err != nil {
		t.Fatal(err)
	}
	jobDone := make(chan error, 1)
	go func() { jobDone <- job.Wait() }()
	t.Cleanup(func() { _ = syscall.Kill(-job.Process.Pid, syscall.SIGKILL) })
	st, err := procStartTime(job.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	store := &runStore{root: filepath.Join(e.dataDir, "runs")}
	started := time.Now().UTC().Add(-time.Minute)
	crashed := &Run{
		Repo: "app", Pipeline: "long", Kind: Build, State: Running, Commit: e.commit, Branch: "master",
		Trigger: "test", Queued: started, Started: started,
		Stages:  []StageResult{{Name: "work", State: Running, Started: started}, {Name: "more", State: Queued}},
		Process: fmt.Sprintf("local:%d:%d", job.Process.Pid, st),
	}
	if err := store.create(crashed); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(store.logPath(crashed, "work"), []byte("waiting\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(e.dataDir, "work", "app", "long", "1")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	queued := &Run{Repo: "app", Pipeline: "long", Kind: Build, State: Queued, Commit: e.commit, Branch: "master", Trigger: "test", Queued: started}
	if err := store.create(queued); err != nil {
		t.Fatal(err)
	}

	r := e.startRunner(1)
	// Start has accounted for the crashed run before it returns.
	run, err := r.Get("app", "long", 1)
	if err != nil {
		t.Fatal(err)
	}
	if run.State != Interrupted || run.Process != "" || run.Finished.IsZero() || run.Error == "" {
		t.Errorf("recovered run: %s, process %q, finished %v, error %q", run.State, run.Process, run.Finished, run.Error)
	}
	if len(run.Stages) != 2 || run.Stages[0].State != Interrupted || run.Stages[1].State != Skipped {
		t.Errorf("recovered stages: %+v", run.Stages)
	}
	select {
	case err := <-jobDone:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Errorf("left-over job ended with %v, want killed by SIGKILL", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the left-over job is still running after recovery")
	}
	if _, err := os.Stat(work); !os.IsNotExist(err) {
		t.Errorf("the crashed run's workspace is still there: %v", err)
	}
	rec := e.checkRecord("long", fmt.Sprintf("long #1 interrupted at work (%s)", e.commit[:7]), Interrupted)
	if got := e.git("show", rec+":logs/work.log"); got != "waiting" {
		t.Errorf("recorded log %q", got)
	}

	// The queued run runs.
	run, out := e.follow(r, "long", 2)
	if run.State != Passed || out != "--- work\ndone 2\n" {
		t.Errorf("requeued run: %s, output %q", run.State, out)
	}
	e.checkRecord("long", fmt.Sprintf("long #2 passed (%s)", e.commit[:7]), Passed)
	if got := e.git("log", "--format=%s", refs.RunsRef("long")); got != fmt.Sprintf("long #2 passed (%[1]s)\nlong #1 interrupted at work (%[1]s)", e.commit[:7]) {
		t.Errorf("refs/runs/long history:\n%s", got)
	}
}

func TestOnPush(t *testing.T) {
	e := newRunnerEnv(t, map[string]string{
		"web": "on:\n  push:\n    paths: [\"web/**\"]\nstages: [{name: build, run: \"true\"}]\nartifact: {paths: [scripts/]}\n",
		"all": "stages: [{name: build, run: \"true\"}]\nartifact: {paths: [scripts/]}\n",
		"rel": "on:\n  push:\n    branches: [release]\nstages: [{name: build, run: \"true\"}]\nartifact: {paths: [scripts/]}\n",
	})
	first := e.commit
	second := e.repo.commit("docs", map[string][]byte{"docs/x.md": []byte("x\n")})
	third := e.repo.commit("web", map[string][]byte{"web/index.html": []byte("<p>\n")})
	r := e.newRunner(1) // not started: runs stay queued
	push := func(ref, old, new string, opts ...string) []string {
		t.Helper()
		runs, err := r.OnPush(context.Background(), Push{
			Repo: "app", GitDir: e.repo.gitDir, Ref: ref, Old: old, New: new,
			DeployBranch: "master", User: "alice", Options: opts,
		})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, run := range runs {
			if run.State != Queued || run.Commit != new || run.Trigger != "push by alice" {
				t.Errorf("run %+v", run)
			}
			names = append(names, run.Pipeline)
		}
		return names
	}
	zero := strings.Repeat("0", 40)
	for _, tc := range []struct {
		ref, old, new string
		opts          []string
		want          string
	}{
		{"refs/heads/master", zero, first, nil, "all"},
		{"refs/heads/master", zero, third, nil, "all web"}, // a new branch: every path is new
		{"refs/heads/master", first, second, nil, "all"},
		{"refs/heads/master", second, third, nil, "all web"},
		{"refs/heads/master", second, third, []string{SkipOption}, ""},
		{"refs/heads/release", second, third, nil, "rel"},
		{"refs/heads/feature", second, third, nil, ""},
		{"refs/tags/v1", zero, third, nil, ""},
		{"refs/heads/master", third, zero, nil, ""}, // a deletion
	} {
		names := push(tc.ref, tc.old, tc.new, tc.opts...)
		if got := strings.Join(names, " "); got != tc.want {
			t.Errorf("push %s %s..%s %v started %q, want %q", tc.ref, short(tc.old), short(tc.new), tc.opts, got, tc.want)
		}
	}
}
