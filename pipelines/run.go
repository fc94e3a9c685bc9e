package pipelines

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/refline/refline/atomicfile"
	"github.com/refline/refline/names"
)

// State is where a run is in its life.
type State string

// Run states. A run is queued, then running, then ends in exactly one of
// the final states.
const (
	Queued      State = "queued"
	Running     State = "running"
	Passed      State = "passed"
	Failed      State = "failed"
	Canceled    State = "canceled"
	Interrupted State = "interrupted" // the server stopped or crashed under it
	Superseded  State = "superseded"  // a queued deploy replaced by a newer target
	Skipped     State = "skipped"     // a stage after a failed one
)

// Final reports whether s is an end state.
func (s State) Final() bool {
	return s != Queued && s != Running
}

// Kind says whether a run builds or deploys.
type Kind string

// Run kinds; build and deploy runs share one number sequence per pipeline.
const (
	Build  Kind = "build"
	Deploy Kind = "deploy"
)

// StageResult is the outcome of one stage.
type StageResult struct {
	Name     string    `json:"name"`
	State    State     `json:"state"`
	ExitCode int       `json:"exit_code,omitempty"`
	Started  time.Time `json:"started,omitempty"`
	Finished time.Time `json:"finished,omitempty"`
	Error    string    `json:"error,omitempty"`
}

// InputArtifact is an artifact laid into a run's workspace.
type InputArtifact struct {
	Repo     string `json:"repo,omitempty"`
	Pipeline string `json:"pipeline"`
	Path     string `json:"path"`
	Artifact string `json:"artifact"`
}

// Run is one execution of a pipeline: its record in run.json.
type Run struct {
	Repo        string          `json:"repo"`
	Pipeline    string          `json:"pipeline"`
	Number      int             `json:"number"`
	Kind        Kind            `json:"kind"`
	State       State           `json:"state"`
	Commit      string          `json:"commit"`
	Branch      string          `json:"branch,omitempty"`
	Subject     string          `json:"subject,omitempty"`
	Environment string          `json:"environment,omitempty"`
	Artifact    string          `json:"artifact,omitempty"` // produced (build) or deployed (deploy)
	Inputs      []InputArtifact `json:"inputs,omitempty"`
	Trigger     string          `json:"trigger"`
	User        string          `json:"user,omitempty"`
	RetryOf     int             `json:"retry_of,omitempty"`
	// WaitFor names pipelines of the same repository whose builds queued
	// before this one must end first: this run takes their artifacts as
	// inputs.
	WaitFor  []string      `json:"wait_for,omitempty"`
	Queued   time.Time     `json:"queued"`
	Started  time.Time     `json:"started,omitempty"`
	Finished time.Time     `json:"finished,omitempty"`
	Stages   []StageResult `json:"stages,omitempty"`
	Error    string        `json:"error,omitempty"`
	// Process identifies the running stage's job (see Process.Handle) so
	// that a restarted server can stop it; empty once the run ends.
	Process string `json:"process,omitempty"`
	// Record is the run record commit on refs/runs/PIPELINE, once written.
	Record string `json:"-"`
}

// ID names a run for logs and messages: "app web #12".
func (r *Run) ID() string { return fmt.Sprintf("%s %s #%d", r.Repo, r.Pipeline, r.Number) }

// Duration is how long the run ran (so far).
func (r *Run) Duration() time.Duration {
	switch {
	case r.Started.IsZero():
		return 0
	case r.Finished.IsZero():
		return time.Since(r.Started)
	}
	return r.Finished.Sub(r.Started)
}

// FailedStage names the stage that failed, if any.
func (r *Run) FailedStage() string {
	for _, s := range r.Stages {
		if s.State == Failed || s.State == Canceled || s.State == Interrupted {
			return s.Name
		}
	}
	return ""
}

// Subject is the run record commit's subject (SPEC §6):
// "web #13 failed at test (3f2a9c1)" or "web #14 deployed to production
// (artifact 9ab01c2)".
func (r *Run) RecordSubject() string {
	short := func(s string) string {
		if len(s) > 7 {
			return s[:7]
		}
		return s
	}
	head := fmt.Sprintf("%s #%d", r.Pipeline, r.Number)
	if r.Kind == Deploy {
		switch r.State {
		case Passed:
			return fmt.Sprintf("%s deployed to %s (artifact %s)", head, r.Environment, short(r.Artifact))
		case Failed:
			if st := r.FailedStage(); st != "" {
				return fmt.Sprintf("%s failed to deploy to %s at %s (artifact %s)", head, r.Environment, st, short(r.Artifact))
			}
			return fmt.Sprintf("%s failed to deploy to %s (artifact %s)", head, r.Environment, short(r.Artifact))
		default:
			return fmt.Sprintf("%s deploy to %s %s (artifact %s)", head, r.Environment, r.State, short(r.Artifact))
		}
	}
	switch r.State {
	case Passed:
		return fmt.Sprintf("%s passed (%s)", head, short(r.Commit))
	case Failed, Canceled, Interrupted:
		if st := r.FailedStage(); st != "" {
			return fmt.Sprintf("%s %s at %s (%s)", head, r.State, st, short(r.Commit))
		}
	}
	return fmt.Sprintf("%s %s (%s)", head, r.State, short(r.Commit))
}

// runStore keeps each run's state in DATA/runs/REPO/PIPELINE/N/run.json,
// written atomically (temp file, fsync, rename, fsync dir) so that a run
// accepted before a crash is found again after it. Stage logs live beside it
// in logs/.
type runStore struct {
	root string
	mu   sync.Mutex // numbering
}

// escapeRepo turns a repository name into one path segment: "/" cannot
// otherwise be told apart from a pipeline directory. Names never hold "%".
func escapeRepo(repo string) string { return strings.ReplaceAll(repo, "/", "%2F") }

func unescapeRepo(s string) string { return strings.ReplaceAll(s, "%2F", "/") }

// checkNames refuses a repository or pipeline name outside its grammar
// before it becomes a path: the paths are joined from the names, and a
// pipeline "../theirs/web" would be another repository's runs.
func checkNames(repo, pipeline string) error {
	if err := names.Repo(repo); err != nil {
		return fmt.Errorf("runs: %w", err)
	}
	if err := names.Pipeline(pipeline); err != nil {
		return fmt.Errorf("runs: %w", err)
	}
	return nil
}

// invalidDir stands for the directory of invalid names: it cannot be a
// repository's (repository names never start with '.'), holds no runs, and
// keeps whatever is built from it inside the store. The methods that return
// errors refuse such names before they get here.
const invalidDir = ".invalid-name"

func (s *runStore) pipelineDir(repo, pipeline string) string {
	if checkNames(repo, pipeline) != nil {
		return filepath.Join(s.root, invalidDir)
	}
	return filepath.Join(s.root, escapeRepo(repo), pipeline)
}

func (s *runStore) dir(repo, pipeline string, n int) string {
	return filepath.Join(s.pipelineDir(repo, pipeline), strconv.Itoa(n))
}

func (s *runStore) logPath(r *Run, stage string) string {
	if names.Stage(stage) != nil {
		stage = invalidDir
	}
	return filepath.Join(s.dir(r.Repo, r.Pipeline, r.Number), "logs", stage+".log")
}

// create numbers a new run (the next free number of its pipeline) and
// stores it durably.
func (s *runStore) create(r *Run) error {
	if err := checkNames(r.Repo, r.Pipeline); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pdir := s.pipelineDir(r.Repo, r.Pipeline)
	if err := os.MkdirAll(pdir, 0o700); err != nil {
		return fmt.Errorf("runs dir: %w", err)
	}
	nums, err := s.numbers(r.Repo, r.Pipeline)
	if err != nil {
		return err
	}
	r.Number = 1
	if len(nums) > 0 {
		r.Number = nums[len(nums)-1] + 1
	}
	if err := os.MkdirAll(filepath.Join(s.dir(r.Repo, r.Pipeline, r.Number), "logs"), 0o700); err != nil {
		return fmt.Errorf("run dir: %w", err)
	}
	if err := syncDir(pdir); err != nil {
		return err
	}
	return s.save(r)
}

// save writes the run's state durably: a run accepted (queued) or ended
// survives a crash of the whole machine.
func (s *runStore) save(r *Run) error {
	return s.write(r, true)
}

// saveProgress records a change along the way (started, stage started):
// atomically, so a crashed server finds the latest state, but without
// waiting for the disk: a machine crash also ends the processes it tracks,
// and the queued state written before is enough to account for the run.
func (s *runStore) saveProgress(r *Run) error {
	return s.write(r, false)
}

func (s *runStore) write(r *Run, durable bool) error {
	if err := checkNames(r.Repo, r.Pipeline); err != nil {
		return err
	}
	dir := s.dir(r.Repo, r.Pipeline, r.Number)
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, "run.json")
	if durable {
		if err := writeFileAtomic(path, b); err != nil {
			return err
		}
		return s.index(r)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	// After run.json: the index never names a state before it is stored.
	return s.index(r)
}

func (s *runStore) load(repo, pipeline string, n int) (*Run, error) {
	if err := checkNames(repo, pipeline); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(s.dir(repo, pipeline, n), "run.json"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s %s #%d: %w", repo, pipeline, n, ErrNoRun)
		}
		return nil, err
	}
	var r Run
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("run %s %s #%d: corrupt run.json: %w", repo, pipeline, n, err)
	}
	return &r, nil
}

// numbers lists a pipeline's run numbers in ascending order.
func (s *runStore) numbers(repo, pipeline string) ([]int, error) {
	if err := checkNames(repo, pipeline); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(s.pipelineDir(repo, pipeline))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var nums []int
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil && e.IsDir() {
			nums = append(nums, n)
		}
	}
	sort.Ints(nums)
	return nums, nil
}

// pipelines lists the pipelines of repo that have runs.
func (s *runStore) pipelines(repo string) ([]string, error) {
	if err := names.Repo(repo); err != nil {
		return nil, fmt.Errorf("runs: %w", err)
	}
	ents, err := os.ReadDir(filepath.Join(s.root, escapeRepo(repo)))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() && names.Pipeline(e.Name()) == nil {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// all visits every stored run (at start, to recover).
func (s *runStore) all(visit func(*Run)) error {
	repos, err := os.ReadDir(s.root)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, rd := range repos {
		if !rd.IsDir() {
			continue // a stray file is no repository's runs
		}
		repo := unescapeRepo(rd.Name())
		if names.Repo(repo) != nil {
			continue // not a repository's runs (a leftover of some tool)
		}
		pls, err := s.pipelines(repo)
		if err != nil {
			return err
		}
		for _, p := range pls {
			nums, err := s.numbers(repo, p)
			if err != nil {
				return err
			}
			for _, n := range nums {
				r, err := s.load(repo, p, n)
				if err != nil {
					continue // a run dir whose state was never written: nothing was accepted
				}
				visit(r)
			}
		}
	}
	return nil
}

// markRecorded notes that a run's record commit is on refs/runs; a run that
// ended without this note is recorded at the next start.
func (s *runStore) markRecorded(r *Run, record string) {
	if checkNames(r.Repo, r.Pipeline) != nil {
		return
	}
	_ = writeFileAtomic(filepath.Join(s.dir(r.Repo, r.Pipeline, r.Number), "recorded"), []byte(record+"\n"))
}

func (s *runStore) recorded(r *Run) bool {
	if checkNames(r.Repo, r.Pipeline) != nil {
		return false
	}
	_, err := os.Stat(filepath.Join(s.dir(r.Repo, r.Pipeline, r.Number), "recorded"))
	return err == nil
}

// removeRepo forgets every run of a deleted repository.
func (s *runStore) removeRepo(repo string) error {
	if err := names.Repo(repo); err != nil {
		return fmt.Errorf("runs: %w", err)
	}
	return os.RemoveAll(filepath.Join(s.root, escapeRepo(repo)))
}

// ErrNoRun is returned for a run that does not exist.
var ErrNoRun = errors.New("no such run")

// writeFileAtomic writes a run's state durably (atomicfile.Write).
func writeFileAtomic(path string, data []byte) error {
	_, err := atomicfile.Write(path, data, 0o600)
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
