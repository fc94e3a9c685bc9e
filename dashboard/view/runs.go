package view

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/refline/refline/access"
	"github.com/refline/refline/names"
	"github.com/refline/refline/pipelines"
)

// Activity is one page of runs of repo (pipeline "" for all its
// pipelines), newest first, matching f: the runs `runs REPO [PIPELINE]`
// lists, paged. cursor is "" for the first page or a previous page's Next;
// limit <= 0 means pipelines.DefaultPage, and at most maxRows are listed. A page reads the run index from
// its end and loads only the runs it shows (pipelines.Runner.Page).
func (v *View) Activity(ctx context.Context, u access.User, repo, pipeline string, f Filter, cursor string, limit int) (*ActivityPage, error) {
	if _, err := v.readable(repo, u); err != nil {
		return nil, err
	}
	if pipeline != "" && names.Pipeline(pipeline) != nil {
		return nil, fmt.Errorf("pipeline %q: %w", pipeline, ErrNotFound)
	}
	if err := f.check(); err != nil {
		return nil, err
	}
	page, err := v.cfg.Runs.Page(repo, pipeline, pipelines.RunQuery{State: f.State, Kind: f.Kind, Cursor: cursor, Limit: runRows(limit)})
	if err != nil {
		return nil, err
	}
	return &ActivityPage{Repo: repo, Pipeline: pipeline, Filter: f, Runs: page.Runs, Next: page.Next}, nil
}

// runRows is the length of a page of runs: pipelines.DefaultPage unless
// asked, at most maxRows (a limit comes from a URL).
func runRows(limit int) int {
	if limit <= 0 {
		return pipelines.DefaultPage
	}
	return min(limit, maxRows)
}

// ErrBadFilter is returned for a filter naming no state or kind.
var ErrBadFilter = errors.New("invalid filter")

func (f Filter) check() error {
	switch f.Kind {
	case "", pipelines.Build, pipelines.Deploy:
	default:
		return fmt.Errorf("%w: kind %q (build or deploy)", ErrBadFilter, f.Kind)
	}
	switch f.State {
	case "", pipelines.Queued, pipelines.Running, pipelines.Passed, pipelines.Failed, pipelines.Canceled,
		pipelines.Interrupted, pipelines.Superseded:
	default:
		return fmt.Errorf("%w: state %q", ErrBadFilter, f.State)
	}
	return nil
}

// run loads a run u may read.
func (v *View) run(u access.User, repo, pipeline string, n int) (*pipelines.Run, error) {
	if _, err := v.readable(repo, u); err != nil {
		return nil, err
	}
	if names.Pipeline(pipeline) != nil || n < 1 {
		return nil, fmt.Errorf("%s %s #%d: %w", repo, pipeline, n, ErrNotFound)
	}
	run, err := v.cfg.Runs.Get(repo, pipeline, n)
	if errors.Is(err, pipelines.ErrNoRun) {
		return nil, fmt.Errorf("%s %s #%d: %w", repo, pipeline, n, ErrNotFound)
	}
	return run, err
}

// Run is a run's page: the run as `runs --json` prints it, each stage with
// its duration and where its part of the log starts, and the length of
// the log so far.
func (v *View) Run(ctx context.Context, u access.User, repo, pipeline string, n int) (*RunPage, error) {
	if _, err := v.run(u, repo, pipeline, n); err != nil {
		return nil, err
	}
	run, spans, err := v.cfg.Runs.LogLayout(repo, pipeline, n)
	if err != nil {
		return nil, err
	}
	at := map[string]pipelines.LogSpan{}
	page := &RunPage{Run: run, Stages: []StageView{}, Ended: run.State.Final()}
	for _, sp := range spans {
		at[sp.Stage] = sp
		page.LogSize = sp.Offset + sp.Size
	}
	for _, st := range run.Stages {
		sv := StageView{StageResult: st, LogOffset: -1}
		if !st.Started.IsZero() {
			end := st.Finished
			if end.IsZero() {
				end = time.Now()
			}
			sv.DurationMS = end.Sub(st.Started).Milliseconds()
		}
		if sp, ok := at[st.Name]; ok {
			sv.LogOffset, sv.LogBytes = sp.Offset, sp.Size
		}
		page.Stages = append(page.Stages, sv)
	}
	return page, nil
}

// LogFrom returns the run's log stream from offset on, at most max bytes
// (max <= 0: pipelines.DefaultLogChunk). The stream is byte for byte what
// `logs REPO PIPELINE N` prints. It is masked: the runner masks every
// secret value before a byte reaches the log file it is read from.
func (v *View) LogFrom(ctx context.Context, u access.User, repo, pipeline string, n int, offset int64, max int) (*pipelines.LogChunk, error) {
	if _, err := v.run(u, repo, pipeline, n); err != nil {
		return nil, err
	}
	c, err := v.cfg.Runs.LogFrom(repo, pipeline, n, offset, max)
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// Changed returns a channel closed at the run's next change (already
// closed for a run that has ended). Take it before calling LogFrom.
func (v *View) Changed(ctx context.Context, u access.User, repo, pipeline string, n int) (<-chan struct{}, error) {
	if _, err := v.run(u, repo, pipeline, n); err != nil {
		return nil, err
	}
	return v.cfg.Runs.Changed(repo, pipeline, n), nil
}
