package pipelines

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"strings"
)

// RunQuery asks for one page of a repository's runs, newest first.
type RunQuery struct {
	// State and Kind, when set, keep only runs in that state or of that
	// kind; Environment only deploys to it; Commit only runs of it.
	State       State
	Kind        Kind
	Environment string
	Commit      string
	// Cursor is "" for the first page or a previous page's Next.
	Cursor string
	// Limit bounds the page; <= 0 means DefaultPage.
	Limit int
}

// DefaultPage is the length of a page of runs when none is asked for.
const DefaultPage = 50

// RunPage is one page of runs.
type RunPage struct {
	Runs []*Run
	// Next is the cursor of the following page, "" on the last.
	Next string
}

// ErrBadCursor is returned for a cursor no page gave.
var ErrBadCursor = errors.New("invalid page cursor")

// Page returns one page of the runs of repo (pipeline "" for all its
// pipelines) matching q, newest first: one pipeline's runs by number, the
// runs of several merged by the time they were queued (then by number).
// It reads the run index from the end and loads only the runs it lists,
// so the cost of a page does not grow with the number of runs before it.
// `runs` (Runs) is the first page of the same walk.
func (r *Runner) Page(repo, pipeline string, q RunQuery) (RunPage, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultPage
	}
	pls := []string{pipeline}
	if pipeline == "" {
		var err error
		if pls, err = r.store.pipelines(repo); err != nil {
			return RunPage{}, err
		}
		sort.Strings(pls)
	}
	from, err := parseCursor(q.Cursor, pls)
	if err != nil {
		return RunPage{}, err
	}
	var streams []*runStream
	defer func() {
		for _, s := range streams {
			s.ir.Close()
		}
	}()
	for _, p := range pls {
		before, ok := from[p]
		if !ok {
			continue // exhausted on an earlier page
		}
		ir, err := r.store.openIndex(repo, p, before)
		if err != nil {
			return RunPage{}, err
		}
		streams = append(streams, &runStream{r: r, repo: repo, pipeline: p, ir: ir, q: q})
	}
	page := RunPage{Runs: []*Run{}}
	for len(page.Runs) < limit {
		best, err := newest(streams)
		if err != nil {
			return RunPage{}, err
		}
		if best == nil {
			return page, nil
		}
		page.Runs = append(page.Runs, best.take())
	}
	// Full: a next page exists if any stream has another run.
	more, err := newest(streams)
	if err != nil || more == nil {
		return page, err
	}
	var parts []string
	for _, s := range streams {
		if s.head != nil {
			parts = append(parts, s.pipeline+":"+strconv.Itoa(s.head.Number+1))
		}
	}
	page.Next = strings.Join(parts, ",")
	return page, nil
}

// runStream is one pipeline's matching runs, newest first, with the next
// one loaded (head).
type runStream struct {
	r              *Runner
	repo, pipeline string
	ir             *indexReader
	q              RunQuery
	head           *Run
	done           bool
}

// peek loads the stream's next matching run into head.
func (s *runStream) peek() error {
	for s.head == nil && !s.done {
		n, err := s.ir.next(s.q)
		if err != nil {
			return err
		}
		if n == 0 {
			s.done = true
			return nil
		}
		run, err := s.r.Get(s.repo, s.pipeline, n)
		if errors.Is(err, ErrNoRun) {
			continue // a hole: its run dir was never written
		}
		if err != nil {
			return err
		}
		if s.q.match(run) {
			s.head = run
		}
	}
	return nil
}

func (s *runStream) take() *Run {
	run := s.head
	s.head = nil
	return run
}

// newest peeks every stream and returns the one whose head is newest.
func newest(streams []*runStream) (*runStream, error) {
	var best *runStream
	for _, s := range streams {
		if err := s.peek(); err != nil {
			return nil, err
		}
		if s.head == nil {
			continue
		}
		if best == nil || newer(s.head, best.head) {
			best = s
		}
	}
	return best, nil
}

func newer(a, b *Run) bool {
	if !a.Queued.Equal(b.Queued) {
		return a.Queued.After(b.Queued)
	}
	if a.Number != b.Number {
		return a.Number > b.Number
	}
	return a.Pipeline < b.Pipeline
}

// parseCursor reads "web:12,lib:5" (each pipeline still to walk, with the
// run number it continues below) into a map; "" starts every pipeline
// from its newest run.
func parseCursor(c string, pls []string) (map[string]int, error) {
	from := map[string]int{}
	if c == "" {
		for _, p := range pls {
			from[p] = 0
		}
		return from, nil
	}
	for _, part := range strings.Split(c, ",") {
		p, num, ok := strings.Cut(part, ":")
		n, err := strconv.Atoi(num)
		if !ok || err != nil || n < 1 {
			return nil, fmt.Errorf("%w %q", ErrBadCursor, c)
		}
		from[p] = n
	}
	return from, nil
}

// LogChunk is a piece of a run's log stream: the stage logs in stage
// order, each under a "--- STAGE" line, exactly as `logs` prints them.
type LogChunk struct {
	Offset int64  `json:"offset"` // where Text starts in the stream
	Next   int64  `json:"next"`   // the offset to ask for next
	Text   string `json:"text"`
	// Ended is set once the run has ended and Next is the end of its
	// log: nothing more will come.
	Ended bool  `json:"ended"`
	State State `json:"state"`
}

// DefaultLogChunk is what LogFrom returns at most when no max is given.
const DefaultLogChunk = 1 << 20

// logSection is one part of the log stream: a stage's header or its file.
type logSection struct {
	stage  string
	header string // "--- NAME\n", or "" for a file
	path   string
	size   int64
}

// LogSpan is where one stage's part of a run's log stream lies: its
// "--- NAME" header at Offset, Size bytes with the header.
type LogSpan struct {
	Stage  string `json:"stage"`
	Offset int64  `json:"offset"`
	Size   int64  `json:"size"`
}

// LogLayout lays out a run's log stream as it is now, one span per
// started stage. It is read after the run: it covers at least the stages
// run shows started.
func (r *Runner) LogLayout(repo, pipeline string, n int) (run *Run, spans []LogSpan, err error) {
	run, err = r.Get(repo, pipeline, n)
	if err != nil {
		return nil, nil, err
	}
	secs, err := r.logSections(run)
	if err != nil {
		return nil, nil, fmt.Errorf("log of %s: %w", run.ID(), err)
	}
	spans = []LogSpan{}
	pos := int64(0)
	for _, s := range secs {
		if s.header != "" {
			spans = append(spans, LogSpan{Stage: s.stage, Offset: pos})
		}
		spans[len(spans)-1].Size += s.size
		pos += s.size
	}
	return run, spans, nil
}

// logSections lays out run's log stream as `logs` writes it. A stage's
// log is complete once the next stage has started (stages run one after
// the other and each closes its log before the next opens its own), so an
// offset into the stream keeps naming the same byte.
func (r *Runner) logSections(run *Run) ([]logSection, error) {
	var out []logSection
	for _, st := range run.Stages {
		if st.State == Queued || st.State == Skipped {
			continue
		}
		out = append(out, logSection{stage: st.Name, header: "--- " + st.Name + "\n", size: int64(len("--- " + st.Name + "\n"))})
		path := r.store.logPath(run, st.Name)
		fi, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, logSection{stage: st.Name, path: path, size: fi.Size()})
	}
	return out, nil
}

// LogFrom returns the log stream of a run from offset on, at most max
// bytes (max <= 0: DefaultLogChunk). The stream is what `logs` prints;
// like the log files it reads, it is masked.
func (r *Runner) LogFrom(repo, pipeline string, n int, offset int64, max int) (LogChunk, error) {
	if max <= 0 {
		max = DefaultLogChunk
	}
	if offset < 0 {
		offset = 0
	}
	key := runKey{repo, pipeline, n}
	r.mu.Lock()
	_, live := r.live[key]
	r.mu.Unlock()
	run, err := r.Get(repo, pipeline, n)
	if err != nil {
		return LogChunk{}, err
	}
	secs, err := r.logSections(run)
	if err != nil {
		return LogChunk{}, fmt.Errorf("log of %s: %w", run.ID(), err)
	}
	var text strings.Builder
	pos, total := int64(0), int64(0)
	for _, s := range secs {
		total += s.size
	}
	if offset < total {
		text.Grow(int(min(total-offset, int64(max))))
	}
	for _, s := range secs {
		end := pos + s.size
		if offset < end && text.Len() < max {
			from := max64(offset, pos) - pos
			want := min(s.size-from, int64(max-text.Len()))
			if s.header != "" {
				text.WriteString(s.header[from : from+want])
			} else if err := readAt(&text, s.path, from, want); err != nil {
				return LogChunk{}, fmt.Errorf("log of %s: %w", run.ID(), err)
			}
		}
		pos = end
	}
	start := min(offset, total)
	c := LogChunk{Offset: start, Next: start + int64(text.Len()), Text: text.String(), State: run.State}
	// A live run that reached a final state is still writing its record:
	// it has ended for a follower once it is no longer live (as in Logs).
	c.Ended = run.State.Final() && !live && c.Next >= total
	if run.State.Final() && live {
		c.State = Running
	}
	return c, nil
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// readAt appends up to n bytes of path from off to b; a file shorter than
// its size a moment ago gives what it has.
func readAt(b *strings.Builder, path string, off, n int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, n)
	got, err := f.ReadAt(buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	b.Write(buf[:got])
	return nil
}

// Changed returns a channel that is closed at the run's next change (a
// log write, a state change); for a run that is not queued or running,
// one that is already closed. Take it before reading, so that no change
// between the read and the wait is missed.
func (r *Runner) Changed(repo, pipeline string, n int) <-chan struct{} {
	r.mu.Lock()
	lr, ok := r.live[runKey{repo, pipeline, n}]
	r.mu.Unlock()
	if !ok {
		c := make(chan struct{})
		close(c)
		return c
	}
	return lr.bell.wait()
}
