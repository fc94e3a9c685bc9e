package pipelines

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestStageLogWritesThrough(t *testing.T) {
	path := filepath.Join(t.TempDir(), "build.log")
	var rings atomic.Int64
	l, err := createStageLog(path, func() { rings.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"one\n", "two ", "three\n"} {
		if n, err := l.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
		// Each write is in the file before Write returns: followers
		// read the file, not a buffer.
		if b, _ := os.ReadFile(path); !strings.HasSuffix(string(b), s) {
			t.Fatalf("after Write(%q) the file holds %q", s, b)
		}
	}
	if rings.Load() != 3 {
		t.Errorf("notified %d times for 3 writes", rings.Load())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "one\ntwo three\n" {
		t.Errorf("log %q", b)
	}
	if rings.Load() != 4 {
		t.Errorf("Close did not notify the followers")
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("log file mode: %v, %v", fi.Mode(), err)
	}
}

func TestStageLogCap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "build.log")
	l, err := createStageLog(path, func() {})
	if err != nil {
		t.Fatal(err)
	}
	first := bytes.Repeat([]byte("a"), MaxStageLog-10)
	second := bytes.Repeat([]byte("b"), 100) // 10 kept, 90 dropped
	third := bytes.Repeat([]byte("c"), 50)   // all dropped
	for _, p := range [][]byte{first, second, third} {
		// The job must not see an error: it keeps running.
		if n, err := l.Write(p); n != len(p) || err != nil {
			t.Fatalf("Write(%d bytes) = %d, %v", len(p), n, err)
		}
	}
	if fi, _ := os.Stat(path); fi.Size() != MaxStageLog {
		t.Errorf("before Close the log is %d bytes, want %d", fi.Size(), MaxStageLog)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := string(first) + strings.Repeat("b", 10) + "\n[refline: output truncated: 140 more bytes were not kept]\n"
	if string(b) != want {
		t.Errorf("log is %d bytes ending in %q, want %d bytes ending in %q",
			len(b), b[max(0, len(b)-80):], len(want), want[len(want)-80:])
	}
}

func TestStageLogNoTruncationNote(t *testing.T) {
	path := filepath.Join(t.TempDir(), "build.log")
	l, err := createStageLog(path, func() {})
	if err != nil {
		t.Fatal(err)
	}
	exact := bytes.Repeat([]byte("x"), MaxStageLog)
	if _, err := l.Write(exact); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, exact) {
		t.Errorf("a log of exactly MaxStageLog bytes was changed: %d bytes", len(b))
	}
}

// A job printing far more than the cap leaves a log of about the cap and
// does not make the server hold its output in memory.
func TestStageLogHugeOutput(t *testing.T) {
	const total = 200_000_000
	path := filepath.Join(t.TempDir(), "build.log")
	l, err := createStageLog(path, func() {})
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	p, err := Local{}.Start(context.Background(), Job{
		Script: fmt.Sprintf("head -c %d /dev/zero\necho done >&2", total),
		Env:    pathEnv(),
		Output: l,
	})
	if err != nil {
		t.Fatal(err)
	}
	code, err := wait(t, p, 60*time.Second)
	if code != 0 || err != nil {
		t.Fatalf("Wait = %d, %v", code, err)
	}
	runtime.ReadMemStats(&after) // no GC: what the job's output left on the heap
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	const slack = 64 << 20
	if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > slack {
		t.Errorf("heap in use grew by %d MB for %d MB of output", grew>>20, total>>20)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() < MaxStageLog || fi.Size() > MaxStageLog+200 {
		t.Errorf("log is %d bytes, want about %d", fi.Size(), MaxStageLog)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tail := make([]byte, fi.Size()-MaxStageLog)
	if _, err := f.ReadAt(tail, MaxStageLog); err != nil {
		t.Fatal(err)
	}
	// The stderr line after the flood is dropped and counted too.
	want := fmt.Sprintf("\n[refline: output truncated: %d more bytes were not kept]\n", total-MaxStageLog+len("done\n"))
	if string(tail) != want {
		t.Errorf("log ends in %q, want %q", tail, want)
	}
}

func TestBell(t *testing.T) {
	b := newBell()
	w1 := b.wait()
	if w2 := b.wait(); w1 != w2 {
		t.Errorf("two waits before a ring got different channels")
	}
	select {
	case <-w1:
		t.Fatal("wait channel closed before any ring")
	default:
	}
	b.ring()
	select {
	case <-w1:
	default:
		t.Fatal("ring did not close the wait channel")
	}
	w3 := b.wait()
	select {
	case <-w3:
		t.Fatal("a wait after the ring is already closed")
	default:
	}
	// Rings without waiters, and many at once, do not panic or block.
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() { defer wg.Done(); b.ring() }()
	}
	wg.Wait()
	select {
	case <-w3:
	default:
		t.Fatal("concurrent rings did not close the wait channel")
	}
}

// fakeRun is a run whose state the test drives, as the runner would.
type fakeRun struct {
	mu   sync.Mutex
	run  Run
	bell *bell
	dir  string
}

func (f *fakeRun) current() *Run {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.run
	c.Stages = append([]StageResult(nil), f.run.Stages...)
	return &c
}

func (f *fakeRun) set(change func(r *Run)) {
	f.mu.Lock()
	change(&f.run)
	f.mu.Unlock()
	f.bell.ring()
}

func (f *fakeRun) logPath(stage string) string { return filepath.Join(f.dir, stage+".log") }

func TestFollowRun(t *testing.T) {
	f := &fakeRun{bell: newBell(), dir: t.TempDir(), run: Run{State: Queued, Stages: []StageResult{
		{Name: "configure", State: Queued}, {Name: "build", State: Queued}, {Name: "test", State: Queued}, {Name: "deploy", State: Queued},
	}}}
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- followRun(context.Background(), &out, f.logPath, f.bell, f.current) }()

	f.set(func(r *Run) { r.State = Running })
	var want strings.Builder
	for i, st := range []string{"configure", "build", "test"} {
		l, err := createStageLog(f.logPath(st), f.bell.ring)
		if err != nil {
			t.Fatal(err)
		}
		f.set(func(r *Run) { r.Stages[i].State = Running })
		want.WriteString("--- " + st + "\n")
		for j := range 50 {
			line := fmt.Sprintf("%s line %d\n", st, j)
			want.WriteString(line)
			if _, err := l.Write([]byte(line)); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		state := Passed
		if st == "test" {
			state = Failed
		}
		f.set(func(r *Run) { r.Stages[i].State = state })
	}
	select {
	case err := <-done:
		t.Fatalf("followRun returned before the run ended: %v", err)
	default:
	}
	f.set(func(r *Run) { r.Stages[3].State = Skipped; r.State = Failed })
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("followRun did not return after the run ended")
	}
	if out.String() != want.String() {
		t.Errorf("followed output:\n%s\nwant:\n%s", out.String(), want.String())
	}
}

func TestFollowRunFinishedRun(t *testing.T) {
	f := &fakeRun{bell: newBell(), dir: t.TempDir(), run: Run{State: Canceled, Stages: []StageResult{
		{Name: "build", State: Passed}, {Name: "test", State: Canceled}, {Name: "ship", State: Skipped},
	}}}
	for st, text := range map[string]string{"build": "built\n", "test": "partial"} {
		if err := os.WriteFile(f.logPath(st), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if err := followRun(context.Background(), &out, f.logPath, f.bell, f.current); err != nil {
		t.Fatal(err)
	}
	if want := "--- build\nbuilt\n--- test\npartial"; out.String() != want {
		t.Errorf("output %q, want %q", out.String(), want)
	}
}

func TestFollowRunContextCanceled(t *testing.T) {
	f := &fakeRun{bell: newBell(), dir: t.TempDir(), run: Run{State: Running, Stages: []StageResult{{Name: "build", State: Running}}}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var out syncBuffer
	go func() { done <- followRun(ctx, &out, f.logPath, f.bell, f.current) }()
	waitFor(t, 10*time.Second, "the stage header", func() bool { return out.String() == "--- build\n" })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("followRun = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("followRun did not return after its context was cancelled")
	}
}

type failingWriter struct{}

var errWrite = errors.New("client went away")

func (failingWriter) Write([]byte) (int, error) { return 0, errWrite }

func TestFollowRunWriteError(t *testing.T) {
	f := &fakeRun{bell: newBell(), dir: t.TempDir(), run: Run{State: Running, Stages: []StageResult{{Name: "build", State: Running}}}}
	if err := os.WriteFile(f.logPath("build"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := followRun(context.Background(), failingWriter{}, f.logPath, f.bell, f.current); !errors.Is(err, errWrite) {
		t.Errorf("followRun = %v, want the writer's error", err)
	}
}
