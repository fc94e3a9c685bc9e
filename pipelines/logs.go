package pipelines

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/refline/refline/pipelines/spec"
)

// MaxStageLog bounds what is kept of one stage's output. A job printing more
// keeps running; the rest of its output is counted and dropped, so neither
// the disk nor the run record (which holds the logs) grows without bound.
const MaxStageLog = 16 << 20

// stageLog writes one stage's output to its log file. Output goes straight
// to the file, never accumulating in memory, and each write wakes the
// followers.
type stageLog struct {
	f       *os.File
	n       int64
	dropped int64
	notify  func()
	mu      sync.Mutex
	// budget, when set, is the run's: past it the run is stopped.
	budget *logBudget
}

func createStageLog(path string, notify func()) (*stageLog, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create stage log: %w", err)
	}
	return &stageLog{f: f, notify: notify}, nil
}

func (l *stageLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	room := MaxStageLog - l.n
	if l.budget != nil {
		room = l.budget.take(int64(len(p)))
	}
	w := p
	if int64(len(w)) > room {
		w = w[:max(room, 0)]
	}
	if len(w) > 0 {
		n, err := l.f.Write(w)
		l.n += int64(n)
		if err != nil {
			return 0, err
		}
		l.notify()
	}
	l.dropped += int64(len(p) - len(w))
	return len(p), nil
}

// Close ends the log, noting how much output was dropped.
func (l *stageLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.budget != nil && l.dropped > 0:
		fmt.Fprintf(l.f, "\n[refline: %s; the run was stopped]\n", l.budget.message())
	case l.dropped > 0:
		fmt.Fprintf(l.f, "\n[refline: output truncated: %d more bytes were not kept]\n", l.dropped)
	}
	err := l.f.Close()
	l.notify()
	return err
}

// bell wakes followers of a run's logs. Followers read the log files
// themselves; the bell only says "something changed", so a slow follower
// costs nothing but its own reads.
type bell struct {
	mu sync.Mutex
	ch chan struct{}
}

func newBell() *bell { return &bell{ch: make(chan struct{})} }

func (b *bell) ring() {
	b.mu.Lock()
	close(b.ch)
	b.ch = make(chan struct{})
	b.mu.Unlock()
}

func (b *bell) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ch
}

// followRun copies a run's stage logs to w as they grow, with a header per
// stage, until the run has ended. current returns the run's latest state.
func followRun(ctx context.Context, w io.Writer, logPath func(stage string) string, b *bell, current func() *Run) error {
	offsets := map[string]int64{}
	headed := map[string]bool{}
	buf := make([]byte, 32<<10)
	for {
		wake := b.wait() // before reading, so no ring is missed
		r := current()
		for _, st := range r.Stages {
			if st.State == Queued || st.State == Skipped {
				continue
			}
			if !headed[st.Name] {
				fmt.Fprintf(w, "--- %s\n", st.Name)
				headed[st.Name] = true
			}
			f, err := os.Open(logPath(st.Name))
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return err
			}
			_, err = f.Seek(offsets[st.Name], io.SeekStart)
			for err == nil {
				var n int
				n, err = f.Read(buf)
				if n > 0 {
					if _, werr := w.Write(buf[:n]); werr != nil {
						f.Close()
						return werr
					}
					offsets[st.Name] += int64(n)
				}
			}
			f.Close()
			if !errors.Is(err, io.EOF) {
				return err
			}
		}
		if r.State.Final() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		case <-time.After(time.Second):
		}
	}
}

// logBudget is what a run may print over all its stages. The first write
// past it stops the run, which then fails naming the limit.
type logBudget struct {
	limit int64
	used  atomic.Int64
	over  atomic.Bool
	stop  func()
}

// take reserves room for n bytes and returns how many of them fit.
func (b *logBudget) take(n int64) int64 {
	used := b.used.Add(n)
	if used <= b.limit {
		return n
	}
	if b.over.CompareAndSwap(false, true) {
		b.stop()
	}
	return max(0, n-(used-b.limit))
}

func (b *logBudget) message() string {
	return "the run's log exceeded " + spec.FormatSize(b.limit) + ", the limit (refline serve --max-log-size)"
}

// newLogBudget is lr's budget under MaxLogSize, or nil (only MaxStageLog
// per stage applies).
func (r *Runner) newLogBudget(lr *liveRun) *logBudget {
	if r.cfg.MaxLogSize <= 0 {
		return nil
	}
	return &logBudget{limit: r.cfg.MaxLogSize, stop: func() {
		r.mu.Lock()
		lr.logFull = true
		cancel := lr.cancel
		r.mu.Unlock()
		if cancel != nil {
			cancel()
		}
	}}
}

// logOverflow says why the run failed if its log ran over its budget.
func (r *Runner) logOverflow(lr *liveRun) string {
	r.mu.Lock()
	full := lr.logFull
	r.mu.Unlock()
	if !full {
		return ""
	}
	return lr.logs.message()
}
