package pipelines

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRecordSubject(t *testing.T) {
	const commit = "3f2a9c1d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b"
	const artifact = "9ab01c2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c"
	stages := func(states ...State) []StageResult {
		names := []string{"configure", "build", "test", "ship"}
		var out []StageResult
		for i, s := range states {
			out = append(out, StageResult{Name: names[i], State: s})
		}
		return out
	}
	for _, tc := range []struct {
		name string
		run  Run
		want string
	}{
		{"build passed", Run{Pipeline: "web", Number: 12, Kind: Build, State: Passed, Commit: commit,
			Stages: stages(Passed, Passed, Passed)},
			"web #12 passed (3f2a9c1)"},
		{"build failed at a stage (SPEC §6)", Run{Pipeline: "web", Number: 13, Kind: Build, State: Failed, Commit: commit,
			Stages: stages(Passed, Passed, Failed, Skipped)},
			"web #13 failed at test (3f2a9c1)"},
		{"build failed before any stage", Run{Pipeline: "web", Number: 13, Kind: Build, State: Failed, Commit: commit,
			Error: ".refline/pipelines/web.yml does not exist at 3f2a9c1"},
			"web #13 failed (3f2a9c1)"},
		{"build canceled while running", Run{Pipeline: "web", Number: 4, Kind: Build, State: Canceled, Commit: commit,
			Stages: stages(Passed, Canceled, Skipped)},
			"web #4 canceled at build (3f2a9c1)"},
		{"build canceled while queued", Run{Pipeline: "web", Number: 5, Kind: Build, State: Canceled, Commit: commit},
			"web #5 canceled (3f2a9c1)"},
		{"build interrupted", Run{Pipeline: "long", Number: 1, Kind: Build, State: Interrupted, Commit: commit,
			Stages: stages(Interrupted, Skipped)},
			"long #1 interrupted at configure (3f2a9c1)"},
		{"build with a short commit", Run{Pipeline: "web", Number: 1, Kind: Build, State: Passed, Commit: "abc"},
			"web #1 passed (abc)"},
		{"deploy passed (SPEC §6)", Run{Pipeline: "web", Number: 14, Kind: Deploy, State: Passed, Environment: "production",
			Commit: commit, Artifact: artifact, Stages: []StageResult{{Name: "deploy", State: Passed}}},
			"web #14 deployed to production (artifact 9ab01c2)"},
		{"deploy failed", Run{Pipeline: "web", Number: 15, Kind: Deploy, State: Failed, Environment: "staging",
			Artifact: artifact, Stages: []StageResult{{Name: "deploy", State: Failed}}},
			"web #15 failed to deploy to staging at deploy (artifact 9ab01c2)"},
		{"deploy refused before running", Run{Pipeline: "web", Number: 16, Kind: Deploy, State: Failed, Environment: "staging",
			Artifact: artifact, Error: "not a signed artifact of web"},
			"web #16 failed to deploy to staging (artifact 9ab01c2)"},
		{"deploy interrupted", Run{Pipeline: "web", Number: 18, Kind: Deploy, State: Interrupted, Environment: "production",
			Artifact: artifact, Stages: []StageResult{{Name: "deploy", State: Interrupted}}},
			"web #18 deploy to production interrupted (artifact 9ab01c2)"},
		{"deploy superseded", Run{Pipeline: "web", Number: 17, Kind: Deploy, State: Superseded, Environment: "staging",
			Artifact: artifact},
			"web #17 deploy to staging superseded (artifact 9ab01c2)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.run.RecordSubject(); got != tc.want {
				t.Errorf("RecordSubject() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestStateFinal(t *testing.T) {
	for s, final := range map[State]bool{
		Queued: false, Running: false, Passed: true, Failed: true, Canceled: true,
		Interrupted: true, Superseded: true,
	} {
		if s.Final() != final {
			t.Errorf("%s.Final() = %v", s, !final)
		}
	}
}

func newStore(t *testing.T) *runStore {
	return &runStore{root: filepath.Join(t.TempDir(), "runs")}
}

func TestRunStoreNumbering(t *testing.T) {
	s := newStore(t)
	create := func(repo, pipeline string) int {
		t.Helper()
		r := &Run{Repo: repo, Pipeline: pipeline, Kind: Build, State: Queued}
		if err := s.create(r); err != nil {
			t.Fatal(err)
		}
		return r.Number
	}
	var got []int
	for _, rp := range [][2]string{
		{"app", "web"}, {"app", "web"}, {"app", "api"}, {"app", "web"}, {"other", "web"}, {"app", "api"},
		{"a", "b"}, {"a/b", "web"}, {"a/b", "web"}, {"a", "b"},
	} {
		got = append(got, create(rp[0], rp[1]))
	}
	if want := []int{1, 2, 1, 3, 1, 2, 1, 1, 2, 2}; !slices.Equal(got, want) {
		t.Errorf("numbers %v, want %v", got, want)
	}
	// Repo "a" with pipeline "b" and repo "a/b" are kept apart.
	nums, err := s.numbers("a", "b")
	if err != nil || !slices.Equal(nums, []int{1, 2}) {
		t.Errorf(`numbers("a", "b") = %v, %v`, nums, err)
	}
	pls, err := s.pipelines("a")
	if err != nil || !slices.Equal(pls, []string{"b"}) {
		t.Errorf(`pipelines("a") = %v, %v`, pls, err)
	}
	pls, err = s.pipelines("a/b")
	if err != nil || !slices.Equal(pls, []string{"web"}) {
		t.Errorf(`pipelines("a/b") = %v, %v`, pls, err)
	}
	for _, k := range []struct {
		repo, pipeline string
		n              int
	}{{"a", "b", 2}, {"a/b", "web", 2}} {
		r, err := s.load(k.repo, k.pipeline, k.n)
		if err != nil || r.Repo != k.repo || r.Pipeline != k.pipeline || r.Number != k.n {
			t.Errorf("load(%q, %q, %d) = %+v, %v", k.repo, k.pipeline, k.n, r, err)
		}
	}
	// Each run has its logs directory.
	if fi, err := os.Stat(filepath.Dir(s.logPath(&Run{Repo: "a/b", Pipeline: "web", Number: 2}, "build"))); err != nil || !fi.IsDir() {
		t.Errorf("logs dir of a/b web #2: %v", err)
	}
	// Numbers follow the highest, not the count.
	if err := os.RemoveAll(s.dir("app", "web", 1)); err != nil {
		t.Fatal(err)
	}
	if n := create("app", "web"); n != 4 {
		t.Errorf("after removing #1 the next run is #%d, want #4", n)
	}
}

func TestRunStoreSaveLoad(t *testing.T) {
	s := newStore(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	r := &Run{
		Repo: "team/app", Pipeline: "web", Kind: Deploy, State: Queued,
		Commit: "3f2a9c1d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b", Branch: "master", Subject: `fix "quotes"`,
		Environment: "production", Artifact: "9ab01c2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c",
		Inputs:  []InputArtifact{{Repo: "lib", Pipeline: "core", Path: "vendor/core", Artifact: "abc"}},
		Trigger: "push by alice", User: "alice", RetryOf: 3, Queued: now,
	}
	if err := s.create(r); err != nil {
		t.Fatal(err)
	}
	r.State = Failed
	r.Started = now.Add(time.Second)
	r.Finished = now.Add(time.Minute)
	r.Stages = []StageResult{
		{Name: "deploy", State: Failed, ExitCode: 3, Started: now.Add(time.Second), Finished: now.Add(time.Minute), Error: "exit status 3"},
	}
	r.Error = "x"
	r.Process = "local:1234:5678"
	if err := s.save(r); err != nil {
		t.Fatal(err)
	}
	got, err := s.load("team/app", "web", r.Number)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Errorf("load after save:\n%+v\nwant\n%+v", got, r)
	}
	// The record commit is not part of the stored state.
	r.Record = "deadbeef"
	if err := s.save(r); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.load("team/app", "web", r.Number); got.Record != "" {
		t.Errorf("Record was stored: %q", got.Record)
	}

	if _, err := s.load("team/app", "web", 99); !errors.Is(err, ErrNoRun) {
		t.Errorf("load of a missing run = %v, want ErrNoRun", err)
	}
	if _, err := s.load("nope", "web", 1); !errors.Is(err, ErrNoRun) {
		t.Errorf("load of a run of a missing repo = %v, want ErrNoRun", err)
	}
	if err := os.WriteFile(filepath.Join(s.dir("team/app", "web", r.Number), "run.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.load("team/app", "web", r.Number); err == nil || errors.Is(err, ErrNoRun) || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("load of a corrupt run.json = %v", err)
	}
}

func TestRunStoreAll(t *testing.T) {
	s := newStore(t)
	if err := s.all(func(*Run) { t.Error("visited a run of an empty store") }); err != nil {
		t.Errorf("all on a store that was never written: %v", err)
	}
	for _, rp := range [][2]string{{"app", "web"}, {"app", "web"}, {"app", "api"}, {"team/app", "web"}} {
		if err := s.create(&Run{Repo: rp[0], Pipeline: rp[1], State: Queued}); err != nil {
			t.Fatal(err)
		}
	}
	// A run directory whose state was never written (a crash between
	// mkdir and the first save) is not a run.
	if err := os.MkdirAll(filepath.Join(s.dir("app", "web", 3), "logs"), 0o700); err != nil {
		t.Fatal(err)
	}
	// Nor is a directory whose name is not a number.
	if err := os.MkdirAll(filepath.Join(s.pipelineDir("app", "web"), "tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := s.all(func(r *Run) { got = append(got, r.ID()) }); err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	want := []string{"app api #1", "app web #1", "app web #2", "team/app web #1"}
	if !slices.Equal(got, want) {
		t.Errorf("all visited %q, want %q", got, want)
	}
	// The empty run dir still holds its number.
	r := &Run{Repo: "app", Pipeline: "web", State: Queued}
	if err := s.create(r); err != nil || r.Number != 4 {
		t.Errorf("create after an empty run dir: #%d, %v; want #4", r.Number, err)
	}

	if err := s.removeRepo("team/app"); err != nil {
		t.Fatal(err)
	}
	got = nil
	if err := s.all(func(r *Run) { got = append(got, r.ID()) }); err != nil {
		t.Fatal(err)
	}
	for _, id := range got {
		if strings.HasPrefix(id, "team/app ") {
			t.Errorf("run %s of a removed repo is still stored", id)
		}
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "run.json")
	for i := range 20 {
		data := []byte(strings.Repeat("x", i*100))
		if err := writeFileAtomic(path, data); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(path); string(b) != string(data) {
			t.Fatalf("write %d: file holds %d bytes, want %d", i, len(b), len(data))
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "run.json" {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("dir holds %q, want only run.json", names)
	}
	// A failed write leaves no temp file behind: a directory where the
	// file should go makes the rename fail.
	blocked := filepath.Join(dir, "blocked")
	if err := os.MkdirAll(filepath.Join(blocked, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(blocked, []byte("data")); err == nil {
		t.Fatal("writeFileAtomic over a non-empty directory succeeded")
	}
	ents, _ = os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			t.Errorf("temp file %s left behind", e.Name())
		}
	}
}

func TestRunStoreConcurrentCreate(t *testing.T) {
	s := newStore(t)
	const n = 20
	nums := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &Run{Repo: "app", Pipeline: "web", State: Queued}
			errs[i] = s.create(r)
			nums[i] = r.Number
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(nums)
	for i, got := range nums {
		if got != i+1 {
			t.Fatalf("numbers %v, want 1..%d each once", nums, n)
		}
	}
	count := 0
	if err := s.all(func(*Run) { count++ }); err != nil || count != n {
		t.Errorf("all visited %d runs, %v; want %d", count, err, n)
	}
}

// TestRunStoreRefusesInvalidNames checks the store's own defence: whatever
// its callers check, a name outside the grammar never becomes a path, so
// that "../theirs/web" of repository "mine" is not theirs's run store.
func TestRunStoreRefusesInvalidNames(t *testing.T) {
	s := newStore(t)
	theirs := &Run{Repo: "theirs", Pipeline: "web", Kind: Build, State: Passed}
	if err := s.create(theirs); err != nil {
		t.Fatal(err)
	}
	for _, k := range [][2]string{
		{"mine", "../theirs/web"},
		{"mine", "web/../../theirs/web"},
		{"mine", ".."},
		{"mine", "/abs"},
		{"mine", "..%2Ftheirs%2Fweb"},
		{"mine", ""},
		{"../theirs", "web"},
		{"mine/../theirs", "web"},
		{"/theirs", "web"},
		{"mine%2F..%2Ftheirs", "web"},
		{"", "web"},
	} {
		repo, pipeline := k[0], k[1]
		if _, err := s.load(repo, pipeline, 1); err == nil || errors.Is(err, ErrNoRun) {
			t.Errorf("load(%q, %q, 1) = %v, want a name error", repo, pipeline, err)
		}
		if nums, err := s.numbers(repo, pipeline); err == nil {
			t.Errorf("numbers(%q, %q) = %v, nil; want a name error", repo, pipeline, nums)
		}
		r := &Run{Repo: repo, Pipeline: pipeline, Kind: Build, State: Queued}
		if err := s.create(r); err == nil {
			t.Errorf("create(%q, %q) made #%d", repo, pipeline, r.Number)
		}
		r.Number = 1
		if err := s.save(r); err == nil {
			t.Errorf("save(%q, %q, 1) succeeded", repo, pipeline)
		}
		s.markRecorded(r, "x")
		if s.recorded(r) {
			t.Errorf("recorded(%q, %q, 1) is true", repo, pipeline)
		}
		if d := s.dir(repo, pipeline, 1); !strings.HasPrefix(d, filepath.Join(s.root, invalidDir)+string(filepath.Separator)) {
			t.Errorf("dir(%q, %q, 1) = %s, outside the quarantine", repo, pipeline, d)
		}
	}
	for _, repo := range []string{"../theirs", "mine/..", ""} {
		if _, err := s.pipelines(repo); err == nil {
			t.Errorf("pipelines(%q) succeeded", repo)
		}
		if err := s.removeRepo(repo); err == nil {
			t.Errorf("removeRepo(%q) succeeded", repo)
		}
	}
	// theirs is untouched: one run, not recorded, and nothing else in the store.
	if nums, err := s.numbers("theirs", "web"); err != nil || !slices.Equal(nums, []int{1}) {
		t.Errorf(`numbers("theirs", "web") = %v, %v`, nums, err)
	}
	if s.recorded(theirs) {
		t.Error("theirs #1 was marked recorded")
	}
	ents, _ := os.ReadDir(s.root)
	if len(ents) != 1 || ents[0].Name() != "theirs" {
		t.Errorf("the store holds %v, want only theirs", ents)
	}
}
