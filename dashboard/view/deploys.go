package view

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/refline/refline/access"
	"github.com/refline/refline/gitcmd"
	"github.com/refline/refline/names"
	"github.com/refline/refline/pipelines"
	"github.com/refline/refline/pipelines/spec"
	"github.com/refline/refline/refs"
)

// deployRecord is one deploy's run record on refs/runs/PIPELINE.
type deployRecord struct {
	Run      int
	Env      string
	State    pipelines.State
	Artifact string
	Time     time.Time // when the record was written: the deploy's end
}

// recordCache keeps each pipeline's deploy records with the tip of
// refs/runs/PIPELINE they were read at. The chain only grows at its tip
// (the server appends, nothing rewrites it), so a page reads only the
// records written since the last one: its cost does not grow with the
// pipeline's history.
type recordCache struct {
	mu sync.Mutex
	m  map[string]cachedRecords // by "REPO\x00PIPELINE"
}

type cachedRecords struct {
	tip  string
	recs []deployRecord // newest first; never changed once stored
}

// deployRecords returns the deploy records of pipeline, newest first: the
// records the deploy gate itself consults (a successful deploy there is
// what `after:` asks for). It reads what is new on refs/runs/PIPELINE in
// one `git log`, all of it when the chain is not the one read before (a
// repository deleted and created again).
func (v *View) deployRecords(ctx context.Context, g *git.Repository, repo, pipeline string) ([]deployRecord, error) {
	tip, err := resolveRef(g, refs.RunsRef(pipeline))
	if err != nil || tip.IsZero() {
		return nil, err
	}
	key := repo + "\x00" + pipeline
	v.records.mu.Lock()
	c, ok := v.records.m[key]
	v.records.mu.Unlock()
	if ok && c.tip == tip.String() {
		return c.recs, nil
	}
	var recs []deployRecord
	extended := false
	if ok {
		newer, parent, err := v.readRecords(ctx, repo, tip.String(), "^"+c.tip)
		if err == nil && parent == c.tip {
			recs, extended = append(newer, c.recs...), true
		}
	}
	if !extended {
		if recs, _, err = v.readRecords(ctx, repo, tip.String()); err != nil {
			return nil, fmt.Errorf("read %s: %w", refs.RunsRef(pipeline), err)
		}
	}
	v.records.mu.Lock()
	if v.records.m == nil {
		v.records.m = map[string]cachedRecords{}
	}
	v.records.m[key] = cachedRecords{tip: tip.String(), recs: recs}
	v.records.mu.Unlock()
	return recs, nil
}

// readRecords reads the deploy records of `git log --first-parent revs`,
// newest first, and the first parent of the oldest commit it read.
func (v *View) readRecords(ctx context.Context, repo string, revs ...string) (recs []deployRecord, parent string, err error) {
	args := append([]string{"log", "--first-parent", "--format=%P%x1f%ct%x1f%B%x1e", "--end-of-options"}, revs...)
	out, err := gitcmd.Repo{GitDir: v.cfg.Repos.Path(repo)}.Output(ctx, args...)
	if err != nil {
		return nil, "", err
	}
	recs = []deployRecord{}
	for _, entry := range strings.Split(string(out), "\x1e") {
		fields := strings.SplitN(strings.TrimLeft(entry, "\n"), "\x1f", 3)
		if len(fields) != 3 {
			continue
		}
		parent, _, _ = strings.Cut(fields[0], " ")
		t := refs.Trailers(fields[2])
		if first(t["Kind"]) != string(pipelines.Deploy) {
			continue
		}
		n, _ := strconv.Atoi(first(t["Run"]))
		secs, _ := strconv.ParseInt(fields[1], 10, 64)
		recs = append(recs, deployRecord{Run: n, Env: first(t["Environment"]), State: pipelines.State(first(t["State"])),
			Artifact: first(t["Artifact"]), Time: time.Unix(secs, 0).UTC()})
	}
	return recs, parent, nil
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// Environment is an environment's page: where each pipeline stands there
// (the `status --json` entries of ENV), whether the viewer may deploy
// there, and its deploy history, newest first, paged like Activity.
func (v *View) Environment(ctx context.Context, u access.User, repo, env, cursor string, limit int) (*EnvironmentPage, error) {
	l, err := v.readable(repo, u)
	if err != nil {
		return nil, err
	}
	if names.Env(env) != nil {
		return nil, fmt.Errorf("environment %q: %w", env, ErrNotFound)
	}
	page := &EnvironmentPage{Repo: repo, Environment: env, Status: []pipelines.EnvStatus{}, History: []DeployEntry{},
		CanDeploy: v.cfg.Access.CanDeploy(repo, u.Name, env)}
	sts, err := v.cfg.Deploys.Status(repo)
	if err != nil {
		return nil, fmt.Errorf("status of %s: %w", repo, err)
	}
	for _, st := range sts {
		if st.Environment == env {
			page.Status = append(page.Status, st)
		}
	}
	runs, err := v.cfg.Runs.Page(repo, "", pipelines.RunQuery{Kind: pipelines.Deploy, Environment: env, Cursor: cursor, Limit: runRows(limit)})
	if err != nil {
		return nil, err
	}
	for _, r := range runs.Runs {
		page.History = append(page.History, deployEntry(r))
	}
	page.Next = runs.Next
	if cursor == "" && len(page.Status) == 0 && len(page.History) == 0 {
		known := false
		for _, e := range envOrder(v.tipSpecs(ctx, repo, v.summary(ctx, repo, l).Pipelines)) {
			known = known || e == env
		}
		if !known {
			return nil, fmt.Errorf("environment %q of %s: %w", env, repo, ErrNotFound)
		}
	}
	return page, nil
}

// deployEntry is a deploy run as the history shows it. A rollback is a
// deploy asked for by `rollback` (as the webhooks' "rollback" says).
func deployEntry(r *pipelines.Run) DeployEntry {
	return DeployEntry{Pipeline: r.Pipeline, Run: r.Number, User: r.User, Trigger: r.Trigger, Artifact: r.Artifact,
		SourceCommit: r.Commit, Rollback: strings.HasPrefix(r.Trigger, "rollback"), State: r.State,
		Queued: r.Queued, Started: r.Started, Finished: r.Finished}
}

// boardFacts is what the cells of a board are computed from, all read
// once per page.
type boardFacts struct {
	deployed map[string]string // env -> refs/deployed/ENV/P
	desired  map[string]string // env -> refs/deploy/ENV/P
	// latest is the newest deploy record of an artifact to an
	// environment that ended passed, failed or interrupted.
	latest map[artEnv]deployRecord
	// passed is set for every artifact × environment with a passed
	// deploy record.
	passed map[artEnv]bool
	// newestRun is the newest deploy run of an artifact to an
	// environment, recorded or live.
	newestRun map[artEnv]int
	// live are the queued and running deploys.
	live map[artEnv]*pipelines.Run
}

type artEnv struct{ artifact, env string }

// decisive reports whether a deploy that ended in s says something about
// the artifact in the environment: a canceled or superseded deploy did
// not try it.
func decisive(s pipelines.State) bool {
	return s == pipelines.Passed || s == pipelines.Failed || s == pipelines.Interrupted
}

// cell computes one cell of the promotion board: artifact (of the
// pipeline) in the environment env, whose definition at the artifact's
// source commit is def (nil: not defined there). The rules are those of
// Board's doc comment, in its order.
func (f *boardFacts) cell(artifact, env string, def *spec.Environment) Cell {
	k := artEnv{artifact, env}
	c := Cell{Environment: env, Desired: f.desired[env] == artifact, Run: f.newestRun[k]}
	if r := f.live[k]; r != nil {
		c.Deploying = string(r.State)
	}
	last, tried := f.latest[k]
	switch {
	case f.deployed[env] == artifact:
		c.State = Current
	case tried && last.State != pipelines.Passed:
		c.State = Failed
	case f.passed[k]:
		c.State = Reached
	case def == nil:
		c.State, c.Reason = Blocked, fmt.Sprintf("%s is not defined at the artifact's source commit", env)
	case def.After == "" || f.deployed[def.After] == artifact || f.passed[artEnv{artifact, def.After}]:
		c.State = Eligible
	default:
		c.State, c.Reason = Blocked, fmt.Sprintf("not yet deployed successfully to %s (after: %s)", def.After, def.After)
	}
	return c
}

// Board is the promotion board of a pipeline: one row per artifact of
// refs/artifacts/P, newest first and paged like Artifacts, and one column
// per environment of the pipeline file on the deploy branch, each after
// the one its `after:` names. Each cell is exactly one of, by the first
// rule that holds:
//
//   - current: refs/deployed/ENV/P points at the artifact (its last
//     successful deploy there is this one, and nothing replaced it);
//   - failed: the newest deploy of the artifact to ENV that ended passed,
//     failed or interrupted (by its run record on refs/runs/P) did not
//     pass — a canceled or superseded deploy never tried it and does not
//     count;
//   - reached: a deploy of the artifact to ENV passed before (a run record
//     says so), but ENV has moved on to another artifact since;
//   - eligible: it was never tried there, and the deploy gate would take
//     it now: ENV is defined in the pipeline file at the artifact's source
//     commit (the definition a deploy runs) and its `after: X` there, if
//     any, is met — the artifact is current at X or reached X. Whether
//     the viewer may deploy is not part of it (BoardEnv.CanDeploy is);
//   - blocked: otherwise; Reason says which gate is not met.
//
// Apart from the state, Desired says that refs/deploy/ENV/P points at the
// artifact (a deploy was asked for), Deploying that a deploy of it to ENV
// is queued or running, and Run names its newest deploy run there.
// "eligible" and "blocked" are decided with the rules and the records of
// pipelines.Deployer.CheckDeployTarget, so an eligible cell is one a
// deploy would not refuse for its gate.
func (v *View) Board(ctx context.Context, u access.User, repo, pipeline, cursor string, limit int) (*BoardPage, error) {
	if _, err := v.readable(repo, u); err != nil {
		return nil, err
	}
	if names.Pipeline(pipeline) != nil {
		return nil, fmt.Errorf("pipeline %q: %w", pipeline, ErrNotFound)
	}
	g, err := v.openRepo(repo)
	if err != nil {
		return nil, err
	}
	page := &BoardPage{Repo: repo, Pipeline: pipeline, Environments: []BoardEnv{}, Rows: []BoardRow{}}
	tip, err := resolveRef(g, "refs/heads/"+v.cfg.Repos.DeployBranch(ctx, repo))
	if err != nil {
		return nil, err
	}
	var envs []string
	if !tip.IsZero() {
		if s, err := specAt(g, tip, pipeline); err != nil {
			v.cfg.Logger.WithError(err).WithField("repo", repo).Debug("board without columns: no valid pipeline file on the deploy branch")
		} else {
			envs = envOrder([]*spec.Spec{s})
			for _, name := range envs {
				e, _ := s.Environment(name)
				page.Environments = append(page.Environments, BoardEnv{Name: name, After: e.After, Auto: e.Auto,
					CanDeploy: v.cfg.Access.CanDeploy(repo, u.Name, name)})
			}
		}
	}
	chain, next, err := chainPage(g, pipeline, cursor, rows(limit))
	if err != nil {
		return nil, err
	}
	if len(envs) == 0 && len(chain) == 0 && cursor == "" {
		return nil, fmt.Errorf("pipeline %s of %s: %w", pipeline, repo, ErrNotFound)
	}
	page.Next = next
	facts, err := v.boardFacts(ctx, g, repo, pipeline, envs)
	if err != nil {
		return nil, err
	}
	specs := map[string]*spec.Spec{} // by source commit
	for _, c := range chain {
		art := pipelines.ArtifactOf(c)
		s, seen := specs[art.SourceCommit]
		if !seen && plumbing.IsHash(art.SourceCommit) {
			s, _ = specAt(g, plumbing.NewHash(art.SourceCommit), pipeline)
			specs[art.SourceCommit] = s
		}
		row := BoardRow{Artifact: art, Cells: []Cell{}}
		for _, env := range envs {
			var def *spec.Environment
			if s != nil {
				if e, ok := s.Environment(env); ok {
					def = &e
				}
			}
			row.Cells = append(row.Cells, facts.cell(art.Commit, env, def))
		}
		page.Rows = append(page.Rows, row)
	}
	return page, nil
}

// liveDeploys bounds the queued and running deploys a board reads.
const liveDeploys = 200

func (v *View) boardFacts(ctx context.Context, g *git.Repository, repo, pipeline string, envs []string) (*boardFacts, error) {
	f := &boardFacts{deployed: map[string]string{}, desired: map[string]string{}, latest: map[artEnv]deployRecord{},
		passed: map[artEnv]bool{}, newestRun: map[artEnv]int{}, live: map[artEnv]*pipelines.Run{}}
	for _, env := range envs {
		for ref, m := range map[string]map[string]string{refs.DeployedRef(env, pipeline): f.deployed, refs.DeployRef(env, pipeline): f.desired} {
			h, err := resolveRef(g, ref)
			if err != nil {
				return nil, err
			}
			if !h.IsZero() {
				m[env] = h.String()
			}
		}
	}
	recs, err := v.deployRecords(ctx, g, repo, pipeline)
	if err != nil {
		return nil, err
	}
	f.add(recs)
	for _, st := range []pipelines.State{pipelines.Running, pipelines.Queued} {
		page, err := v.cfg.Runs.Page(repo, pipeline, pipelines.RunQuery{Kind: pipelines.Deploy, State: st, Limit: liveDeploys})
		if err != nil {
			return nil, err
		}
		f.addLive(page.Runs)
	}
	return f, nil
}

// add takes in deploy records, newest first.
func (f *boardFacts) add(recs []deployRecord) {
	for _, r := range recs {
		k := artEnv{r.Artifact, r.Env}
		if _, ok := f.newestRun[k]; !ok {
			f.newestRun[k] = r.Run
		}
		if _, ok := f.latest[k]; !ok && decisive(r.State) {
			f.latest[k] = r
		}
		if r.State == pipelines.Passed {
			f.passed[k] = true
		}
	}
}

// addLive takes in queued and running deploys.
func (f *boardFacts) addLive(runs []*pipelines.Run) {
	for _, r := range runs {
		k := artEnv{r.Artifact, r.Environment}
		if f.live[k] == nil {
			f.live[k] = r
		}
		if r.Number > f.newestRun[k] {
			f.newestRun[k] = r.Number
		}
	}
}
