package pipelines

import "errors"

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
	// Limit bounds the page; <= 0 means 50.
	Limit int
}

// RunPage is one page of runs.
type RunPage struct {
	Runs []*Run
	// Next is the cursor of the following page, "" on the last.
	Next string
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

var errPageNotBuilt = errors.New("runs: paging not built yet")

// Page returns one page of the runs of repo (pipeline "" for all its
// pipelines) matching q, newest first.
func (r *Runner) Page(repo, pipeline string, q RunQuery) (RunPage, error) {
	return RunPage{}, errPageNotBuilt
}

// LogFrom returns the log stream of a run from offset on, at most max
// bytes (max <= 0: 1 MiB).
func (r *Runner) LogFrom(repo, pipeline string, n int, offset int64, max int) (LogChunk, error) {
	return LogChunk{}, errPageNotBuilt
}

// Changed returns a channel that is closed at the run's next change (a
// log write, a state change); for a run that is not queued or running,
// one that is already closed.
func (r *Runner) Changed(repo, pipeline string, n int) <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}
