package pipelines

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// newStoreRunner is a Runner over an empty data dir, not started: enough
// to write runs through its store and page them.
func newStoreRunner(t testing.TB, dataDir string) *Runner {
	t.Helper()
	logger := logrus.New()
	logger.SetOutput(&syncBuffer{})
	r, err := New(Config{DataDir: dataDir, Repos: testRepos{root: t.TempDir()}, Logger: logrus.NewEntry(logger)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Shutdown(0) })
	return r
}

// storeRuns writes n ended runs of app/pipeline through the run store:
// every 10th a failed build, every 3rd a deploy (to production every
// other time), the rest passed builds.
func storeRuns(t testing.TB, r *Runner, pipeline string, n int, start time.Time) []*Run {
	t.Helper()
	var out []*Run
	for i := 1; i <= n; i++ {
		run := &Run{Repo: "app", Pipeline: pipeline, Kind: Build, State: Passed, Trigger: "test",
			Commit: fmt.Sprintf("%040x", i%7), Queued: start.Add(time.Duration(i) * time.Second)}
		switch {
		case i%10 == 0:
			run.State = Failed
		case i%3 == 0:
			run.Kind, run.Environment = Deploy, []string{"staging", "production"}[i/3%2]
		}
		if err := r.store.create(run); err != nil {
			t.Fatal(err)
		}
		r.store.markRecorded(run, "")
		out = append(out, run)
	}
	return out
}

// walk pages through q limit at a time and returns the runs' ids.
func walk(t *testing.T, r *Runner, pipeline string, q RunQuery, limit int) []string {
	t.Helper()
	ids := []string{}
	q.Limit = limit
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("paging does not end")
		}
		p, err := r.Page("app", pipeline, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Runs) > limit || (p.Next != "" && len(p.Runs) != limit) {
			t.Fatalf("page of %d (limit %d), next %q", len(p.Runs), limit, p.Next)
		}
		for _, run := range p.Runs {
			ids = append(ids, run.ID())
		}
		if q.Cursor = p.Next; q.Cursor == "" {
			return ids
		}
	}
}

// brute is what a page walk must give: every run loaded and filtered,
// newest first.
func brute(runs []*Run, q RunQuery) []string {
	ids := []string{}
	for i := len(runs) - 1; i >= 0; i-- {
		if q.match(runs[i]) {
			ids = append(ids, runs[i].ID())
		}
	}
	return ids
}

func TestRunPages(t *testing.T) {
	r := newStoreRunner(t, t.TempDir())
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	web := storeRuns(t, r, "web", 45, t0)
	// lib's runs interleave with web's in time.
	lib := storeRuns(t, r, "lib", 12, t0.Add(500*time.Millisecond))
	for _, tc := range []struct {
		name string
		q    RunQuery
	}{
		{"all", RunQuery{}},
		{"failed", RunQuery{State: Failed}},
		{"deploys", RunQuery{Kind: Deploy}},
		{"builds that passed", RunQuery{Kind: Build, State: Passed}},
		{"deploys to production", RunQuery{Kind: Deploy, Environment: "production"}},
		{"of one commit", RunQuery{Commit: fmt.Sprintf("%040x", 3)}},
		{"none", RunQuery{State: Running}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, limit := range []int{1, 4, 50, 100} {
				if got, want := walk(t, r, "web", tc.q, limit), brute(web, tc.q); !reflect.DeepEqual(got, want) {
					t.Errorf("web by %d:\n%v\nwant\n%v", limit, got, want)
				}
				// Both pipelines, merged by queue time.
				var both []*Run
				for i, j := 0, 0; i < len(web) || j < len(lib); {
					if j >= len(lib) || (i < len(web) && web[i].Queued.Before(lib[j].Queued)) {
						both, i = append(both, web[i]), i+1
					} else {
						both, j = append(both, lib[j]), j+1
					}
				}
				if got, want := walk(t, r, "", tc.q, limit), brute(both, tc.q); !reflect.DeepEqual(got, want) {
					t.Errorf("all pipelines by %d:\n%v\nwant\n%v", limit, got, want)
				}
			}
		})
	}
	// `runs` is the first page.
	runs, err := r.Runs("app", "", 50)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := r.Page("app", "", RunQuery{Limit: 50})
	if !reflect.DeepEqual(runs, p.Runs) {
		t.Error("Runs is not the first page")
	}
	for _, c := range []string{"web", "web:", "web:0", "web:-3", "web:x"} {
		if _, err := r.Page("app", "web", RunQuery{Cursor: c}); err == nil {
			t.Errorf("cursor %q accepted", c)
		}
	}
}

// TestRunIndexIsOnlyAHint shows the index stale or lost (a crash between
// run.json and its record, a torn record, a data dir from before the
// index): a page never lists a run that does not match, and the next
// start rebuilds what was lost.
func TestRunIndexIsOnlyAHint(t *testing.T) {
	data := t.TempDir()
	r := newStoreRunner(t, data)
	runs := storeRuns(t, r, "web", 20, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	failed := brute(runs, RunQuery{State: Failed})

	// Run 7 ended failed, but its record still says passed (the crash
	// came between the two writes); run 20's record is torn; run 10's
	// lost with the end of the file.
	runs[6].State = Failed
	if err := os.WriteFile(r.store.dir("app", "web", 7)+"/run.json", mustJSON(t, runs[6]), 0o600); err != nil {
		t.Fatal(err)
	}
	idx := r.store.indexPath("app", "web")
	f, err := os.OpenFile(idx, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xff, 0xff, 0xff}, 19*indexRecord); err != nil {
		t.Fatal(err)
	}
	f.Close()
	stale := walk(t, r, "web", RunQuery{State: Failed}, 3)
	for _, id := range stale {
		if id == runs[6].ID() || id == runs[19].ID() {
			continue
		}
		found := false
		for _, w := range failed {
			found = found || w == id
		}
		if !found {
			t.Errorf("stale index lists %s as failed", id)
		}
	}
	if got := walk(t, r, "web", RunQuery{State: Passed}, 3); contains(got, runs[6].ID()) {
		t.Errorf("a page lists %s as passed; its run.json says failed", runs[6].ID())
	}

	// The next start repairs the record, and rebuilds an index lost
	// altogether.
	r.Shutdown(0)
	r2 := newStoreRunner(t, data)
	if err := r2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := brute(runs, RunQuery{State: Failed})
	if got := walk(t, r2, "web", RunQuery{State: Failed}, 3); !reflect.DeepEqual(got, want) {
		t.Errorf("after start: %v, want %v", got, want)
	}
	r2.Shutdown(0)
	if err := os.Remove(idx); err != nil {
		t.Fatal(err)
	}
	if got := walk(t, r2, "web", RunQuery{}, 5); len(got) != 0 {
		t.Errorf("without index: %v", got)
	}
	r3 := newStoreRunner(t, data)
	if err := r3.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := walk(t, r3, "web", RunQuery{}, 5), brute(runs, RunQuery{}); !reflect.DeepEqual(got, want) {
		t.Errorf("index rebuilt at start: %v, want %v", got, want)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func contains(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// BenchmarkRunPage reads the first page of 20 runs, unfiltered and
// filtered, of a pipeline with 10, 100 and 1,000 runs: the cost stays flat
// because only the index's end and the listed runs are read. "scan" is
// what listing the failed runs cost by loading every run, as a filter
// must without an index.
func BenchmarkRunPage(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		r := newStoreRunner(b, b.TempDir())
		storeRuns(b, r, "web", n, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		for _, q := range []struct {
			name string
			q    RunQuery
		}{{"all", RunQuery{}}, {"failed", RunQuery{State: Failed}}, {"deploys", RunQuery{Kind: Deploy}}} {
			b.Run(fmt.Sprintf("runs=%d/%s", n, q.name), func(b *testing.B) {
				q := q.q
				q.Limit = 20
				for i := 0; i < b.N; i++ {
					if _, err := r.Page("app", "web", q); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		b.Run(fmt.Sprintf("runs=%d/failed-scan", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				nums, _ := r.store.numbers("app", "web")
				var page []*Run
				for j := len(nums) - 1; j >= 0; j-- {
					if run, err := r.store.load("app", "web", nums[j]); err == nil && run.State == Failed {
						page = append(page, run)
					}
				}
				_ = page[:min(len(page), 20)]
			}
		})
	}
}
