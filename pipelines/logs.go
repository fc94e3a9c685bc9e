package pipelines

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"time"
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
	if l.dropped > 0 {
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
