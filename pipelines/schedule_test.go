package pipelines

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// TestPick checks who gets a free job slot.
func TestPick(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	run := func(repo, pipeline string, queued int) *liveRun {
		return &liveRun{run: &Run{Repo: repo, Pipeline: pipeline, Kind: Build, Number: 1, Queued: at.Add(time.Duration(queued) * time.Second)}}
	}
	type state struct {
		held   map[string]int
		served map[string]uint64
		busy   []string // "repo/pipeline" with a build running
		parked []*liveRun
		queue  []*liveRun
		perRep int
		closed bool
	}
	for _, tc := range []struct {
		name   string
		s      state
		want   string // "repo/pipeline", or "" for nobody
		parked bool
	}{
		{"oldest queued run first", state{queue: []*liveRun{run("a", "x", 1), run("a", "y", 2)}}, "a/x", false},
		{"the repository holding fewer slots first", state{held: map[string]int{"a": 1},
			queue: []*liveRun{run("a", "x", 1), run("b", "y", 2)}}, "b/y", false},
		{"then the one served least recently", state{served: map[string]uint64{"a": 5, "b": 3},
			queue: []*liveRun{run("a", "x", 1), run("b", "y", 2)}}, "b/y", false},
		{"a parked run of another repository before a newer one of its own", state{served: map[string]uint64{"a": 2, "b": 1},
			parked: []*liveRun{run("b", "p", 0)}, queue: []*liveRun{run("a", "x", 1)}}, "b/p", true},
		{"parked runs of a repository before its queued ones", state{
			parked: []*liveRun{run("a", "p", 5)}, queue: []*liveRun{run("a", "x", 1)}}, "a/p", true},
		{"a pipeline with a build running waits", state{busy: []string{"a/x"},
			queue: []*liveRun{run("a", "x", 1), run("a", "y", 2)}}, "a/y", false},
		{"a repository at its slot limit waits", state{held: map[string]int{"a": 1}, perRep: 1,
			queue: []*liveRun{run("a", "x", 1)}}, "", false},
		{"after shutdown only parked runs go on", state{closed: true,
			parked: []*liveRun{run("a", "p", 0)}, queue: []*liveRun{run("b", "x", 1)}}, "a/p", true},
		{"after shutdown nothing new starts", state{closed: true, queue: []*liveRun{run("b", "x", 1)}}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Runner{sched: scheduler{maxJobs: 4, maxPerRepo: tc.s.perRep, slotsHeld: map[string]int{}, served: map[string]uint64{}, parked: tc.s.parked},
				busy: map[string]bool{}, live: map[runKey]*liveRun{}, queue: tc.s.queue, closed: tc.s.closed}
			for k, v := range tc.s.held {
				r.sched.slotsHeld[k] = v
			}
			for k, v := range tc.s.served {
				r.sched.served[k] = v
			}
			for _, b := range tc.s.busy {
				repo, pipeline, _ := cutSlash(b)
				r.busy[busyKey(&Run{Repo: repo, Pipeline: pipeline})] = true
			}
			got, parked, _ := r.sched.pick(r.queue, r.closed, r.blocked)
			name := ""
			if got != nil {
				name = got.run.Repo + "/" + got.run.Pipeline
			}
			if name != tc.want || (got != nil && parked != tc.parked) {
				t.Errorf("pick() = %q (parked %v), want %q (parked %v)", name, parked, tc.want, tc.parked)
			}
		})
	}
}

func cutSlash(s string) (string, string, bool) {
	for i := range len(s) {
		if s[i] == '/' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// TestLogBudget checks that a run's log stops at its budget over all its
// stages, stops the run once, and says why in the log.
func TestLogBudget(t *testing.T) {
	dir := t.TempDir()
	var stops atomic.Int32
	b := &logBudget{limit: 100, stop: func() { stops.Add(1) }}
	write := func(stage string, chunks ...string) []byte {
		path := filepath.Join(dir, stage+".log")
		l, err := createStageLog(path, func() {})
		if err != nil {
			t.Fatal(err)
		}
		l.budget = b
		for _, c := range chunks {
			if n, err := l.Write([]byte(c)); err != nil || n != len(c) {
				t.Fatalf("Write = %d, %v", n, err)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		out, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	first := write("build", string(bytes.Repeat([]byte("a"), 60)))
	if len(first) != 60 || stops.Load() != 0 {
		t.Fatalf("within the budget: %d bytes kept, %d stops", len(first), stops.Load())
	}
	second := write("test", string(bytes.Repeat([]byte("b"), 30)), string(bytes.Repeat([]byte("c"), 30)), "more")
	want := string(bytes.Repeat([]byte("b"), 30)) + string(bytes.Repeat([]byte("c"), 10)) +
		"\n[refline: the run's log exceeded 100B, the limit (refline serve --max-log-size); the run was stopped]\n"
	if string(second) != want {
		t.Errorf("second stage's log:\n%q\nwant\n%q", second, want)
	}
	if stops.Load() != 1 {
		t.Errorf("the run was stopped %d times, want once", stops.Load())
	}
}

// The queue limit counts every queued run of a repository; a deploy that
// replaces one queued for its environment, and a run of an admitted push,
// pass it.
func TestQueueLimitReserve(t *testing.T) {
	r := &Runner{cfg: Config{MaxQueuedPerRepo: 2}, reserved: map[string]int{}}
	r.queue = []*liveRun{
		{run: &Run{Repo: "app", Pipeline: "web", Kind: Deploy, Environment: "prod"}},
		{run: &Run{Repo: "app", Pipeline: "web", Kind: Build}},
		{run: &Run{Repo: "other", Pipeline: "web", Kind: Build}},
	}
	tests := []struct {
		name string
		req  Request
		full bool
	}{
		{"build", Request{Repo: "app", Pipeline: "web", Kind: Build}, true},
		{"retry of a deploy elsewhere", Request{Repo: "app", Pipeline: "web", Kind: Deploy, Environment: "staging"}, true},
		{"deploy replacing a queued one", Request{Repo: "app", Pipeline: "web", Kind: Deploy, Environment: "prod"}, false},
		{"deploy of another pipeline", Request{Repo: "app", Pipeline: "api", Kind: Deploy, Environment: "prod"}, true},
		{"admitted push", Request{Repo: "app", Pipeline: "web", Kind: Build, admitted: true}, false},
		{"another repository", Request{Repo: "other", Pipeline: "web", Kind: Build}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			release, err := r.reserve(tt.req)
			var full *QueueFullError
			if got := errors.As(err, &full); got != tt.full {
				t.Fatalf("full = %v (err %v), want %v", got, err, tt.full)
			}
			if release != nil {
				r.mu.Lock()
				release()
				r.mu.Unlock()
			}
		})
	}
	// A reservation counts until it is released: two runs stored at
	// once cannot both take the last place.
	release, err := r.reserve(Request{Repo: "other", Pipeline: "web", Kind: Build})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.reserve(Request{Repo: "other", Pipeline: "api", Kind: Build}); err == nil {
		t.Fatal("a second run took the place reserved by the first")
	}
	r.mu.Lock()
	release()
	r.mu.Unlock()
	if len(r.reserved) != 0 {
		t.Fatalf("reservations left: %v", r.reserved)
	}
}
