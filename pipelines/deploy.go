package pipelines

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/sirupsen/logrus"

	"github.com/refline/refline/pipelines/spec"
	"github.com/refline/refline/refs"
)

// SecretsDir holds each environment's encrypted credentials (SPEC §8).
const SecretsDir = ".refline/secrets/"

// Deployer is the deploy controller: it checks deploy targets, moves
// deploy refs, starts the deploys that bring refs/deployed to them
// (Reconcile), promotes what deployed, and reports where each environment
// stands. Deploy runs themselves execute on the Runner like builds.
type Deployer struct {
	repos   Repos
	signer  *refs.Signer
	updater refs.Updater
	rights  *rights
	runs    deployRuns
	log     *logrus.Entry
	// reconcileMu makes Reconcile one at a time.
	reconcileMu sync.Mutex
}

// deployRuns is what the deploy controller needs of the runs: queueing
// deploys, the record of past ones, and the live ones.
type deployRuns interface {
	Enqueue(ctx context.Context, req Request) (*Run, error)
	Runs(repo, pipeline string, limit int) ([]*Run, error)
	Page(repo, pipeline string, q RunQuery) (RunPage, error)
	liveDeploy(repo, pipeline, env, artifact string) *Run
	deployLive(repo, pipeline, env string) bool
	supersedeQueued(repo, pipeline, env, desired string)
	DeployRoom(repo, pipeline, env string) error
	noteNotQueued(repo, pipeline, env, user, trigger string, full *QueueFullError)
	notQueued(repo, pipeline, env string) string
}

// Deployer returns the runner's deploy controller.
func (r *Runner) Deployer() *Deployer { return r.deployer }

func (r *Runner) open(repo string) (*git.Repository, error) {
	return openRepo(r.cfg.Repos, repo)
}

func openRepo(repos Repos, repo string) (*git.Repository, error) {
	g, err := git.PlainOpen(repos.Path(repo))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", repo, err)
	}
	return g, nil
}

// CheckDeployTarget decides whether target may become the desired
// deployment of pipeline to env: it must be a genuine artifact of the
// pipeline (refs.VerifyArtifact), the pipeline file at the artifact's source
// commit must define env, and with `after: X` the artifact must have been
// deployed successfully to X. It returns the artifact commit.
func (r *Deployer) CheckDeployTarget(ctx context.Context, repo, pipeline, env string, target plumbing.Hash) (*object.Commit, error) {
	g, err := openRepo(r.repos, repo)
	if err != nil {
		return nil, err
	}
	c, err := refs.VerifyArtifact(g, pipeline, target, r.signer.PublicKey())
	if err != nil {
		return nil, err
	}
	source := refs.Trailer(c.Message, "Source-Commit")
	spec, err := readSpec(ctx, r.repos, repo, pipeline, source)
	if err != nil {
		return nil, fmt.Errorf("artifact %s: %w", short(target.String()), err)
	}
	e, ok := spec.Environment(env)
	if !ok {
		return nil, fmt.Errorf("pipeline %s defines no environment %q at %s (the artifact's source commit)", pipeline, env, short(source))
	}
	if e.After != "" {
		// refs/deployed moves only when a deploy succeeds, just before
		// its run record is written: either one proves it.
		cur, _ := refs.Resolve(r.repos.Path(repo), refs.DeployedRef(e.After, pipeline))
		ok := cur == target
		if !ok {
			if ok, err = r.deployedBefore(g, pipeline, e.After, target.String()); err != nil {
				return nil, err
			}
		}
		if !ok {
			return nil, fmt.Errorf("artifact %s has not been deployed successfully to %s; %s takes only artifacts that have (after: %s)",
				short(target.String()), e.After, env, e.After)
		}
	}
	return c, nil
}

// deployedBefore reports whether a deploy of artifact to env succeeded,
// according to the pipeline's run records.
func (r *Deployer) deployedBefore(g *git.Repository, pipeline, env, artifact string) (bool, error) {
	found := false
	err := r.eachDeploy(g, pipeline, env, func(art string) bool {
		found = art == artifact
		return !found
	})
	return found, err
}

// eachDeploy visits the successful deploys of pipeline to env, newest
// first, until visit returns false.
func (r *Deployer) eachDeploy(g *git.Repository, pipeline, env string, visit func(artifact string) bool) error {
	chain, err := refs.Chain(g, refs.RunsRef(pipeline), 0)
	if err != nil {
		return err
	}
	for _, c := range chain {
		t := refs.Trailers(c.Message)
		if first(t["Kind"]) == string(Deploy) && first(t["Environment"]) == env && first(t["State"]) == string(Passed) {
			if !visit(first(t["Artifact"])) {
				return nil
			}
		}
	}
	return nil
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// RequestDeploy points refs/deploy/ENV/PIPELINE at target, after checking
// it, and starts the deploy. It is what `ssh … deploy` and `rollback`,
// auto-deploys and promotions do. The deploy acts for user, who needs the
// right to env (an error wrapping ErrDeployDenied otherwise), whoever
// calls.
//
// When the repository's queue is full (and the deploy would not replace
// one queued for env), it returns a *QueueFullError and moves nothing:
// the user asking is there to try again.
func (r *Deployer) RequestDeploy(ctx context.Context, repo, pipeline, env, target, user, trigger string) (*Run, error) {
	return r.requestDeploy(ctx, repo, pipeline, env, target, user, trigger, true)
}

// requestDeploy is RequestDeploy; with checkRoom false the deploy ref
// moves even when the queue is full (an automatic deploy has nobody to
// ask again: the ref keeps what is desired, and a later reconcile deploys
// it).
func (r *Deployer) requestDeploy(ctx context.Context, repo, pipeline, env, target, user, trigger string, checkRoom bool) (*Run, error) {
	if err := r.rights.mayDeploy(repo, user, env); err != nil {
		return nil, err
	}
	h := plumbing.NewHash(target)
	if _, err := r.CheckDeployTarget(ctx, repo, pipeline, env, h); err != nil {
		return nil, err
	}
	gitDir := r.repos.Path(repo)
	ref := refs.DeployRef(env, pipeline)
	if checkRoom {
		deployed, err := refs.Resolve(gitDir, refs.DeployedRef(env, pipeline))
		if err != nil {
			return nil, err
		}
		if deployed != h && r.runs.liveDeploy(repo, pipeline, env, target) == nil {
			if err := r.runs.DeployRoom(repo, pipeline, env); err != nil {
				return nil, fmt.Errorf("%w; %s was not moved", err, ref)
			}
		}
	}
	for attempt := 0; ; attempt++ {
		old, err := refs.Resolve(gitDir, ref)
		if err != nil {
			return nil, err
		}
		if old == h {
			break
		}
		err = r.updater.Apply(ctx, gitDir, refs.Update{Ref: ref, Old: old, New: h})
		if err == nil {
			break
		}
		if !errors.Is(err, refs.ErrStale) || attempt >= 5 {
			return nil, fmt.Errorf("move %s: %w", ref, err)
		}
	}
	return r.Reconcile(ctx, repo, pipeline, env, user, trigger)
}

// Reconcile starts a deploy when refs/deploy/ENV/PIPELINE differs from
// refs/deployed/ENV/PIPELINE and no deploy of that target is already queued
// or running. It returns the deploy run, or nil when there is nothing to do.
func (r *Deployer) Reconcile(ctx context.Context, repo, pipeline, env, user, trigger string) (*Run, error) {
	// One at a time: two callers (a push and a deploy that just ended)
	// must not both find no deploy of the target and both queue one.
	r.reconcileMu.Lock()
	defer r.reconcileMu.Unlock()
	gitDir := r.repos.Path(repo)
	desired, err := refs.Resolve(gitDir, refs.DeployRef(env, pipeline))
	if err != nil || desired.IsZero() {
		return nil, err
	}
	deployed, err := refs.Resolve(gitDir, refs.DeployedRef(env, pipeline))
	if err != nil {
		return nil, err
	}
	if desired == deployed {
		// Moved back to what is deployed: a deploy queued for another
		// target must not run after all.
		r.runs.supersedeQueued(repo, pipeline, env, desired.String())
		r.runs.noteNotQueued(repo, pipeline, env, "", "", nil)
		return nil, nil
	}
	if run := r.runs.liveDeploy(repo, pipeline, env, desired.String()); run != nil {
		return run, nil
	}
	source := ""
	if g, err := openRepo(r.repos, repo); err == nil {
		if c, err := object.GetCommit(g.Storer, desired); err == nil {
			source = refs.Trailer(c.Message, "Source-Commit")
		}
	}
	run, err := r.runs.Enqueue(ctx, Request{Repo: repo, Pipeline: pipeline, Kind: Deploy, Environment: env,
		Artifact: desired.String(), Commit: source, Trigger: trigger, User: user})
	var full *QueueFullError
	if errors.As(err, &full) {
		// The deploy ref keeps the target: the next reconcile (after
		// a deploy of env ends, or at start) deploys it.
		r.runs.noteNotQueued(repo, pipeline, env, user, trigger, full)
		r.log.WithFields(logrus.Fields{"repo": repo, "pipeline": pipeline, "env": env, "artifact": short(desired.String()), "trigger": trigger}).
			Warn("deploy not queued: " + full.Error() + "; " + refs.DeployRef(env, pipeline) + " keeps the target, deployed at the next reconcile")
		return nil, err
	}
	if err == nil {
		r.runs.noteNotQueued(repo, pipeline, env, "", "", nil)
	}
	return run, err
}

// liveDeploy returns the deploy of artifact to env that is queued or
// running and not canceled, if any.
func (r *Runner) liveDeploy(repo, pipeline, env, artifact string) *Run {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, lr := range r.live {
		if lr.run.Kind == Deploy && lr.run.Repo == repo && lr.run.Pipeline == pipeline && lr.run.Environment == env &&
			lr.run.Artifact == artifact && !lr.canceled {
			return copyRun(lr.run)
		}
	}
	return nil
}

// supersedeQueued ends the deploys of pipeline to env that are queued for
// another target than desired.
func (r *Runner) supersedeQueued(repo, pipeline, env, desired string) {
	var superseded []*liveRun
	r.mu.Lock()
	kept := r.queue[:0]
	for _, q := range r.queue {
		if q.run.Kind == Deploy && q.run.Repo == repo && q.run.Pipeline == pipeline && q.run.Environment == env && q.run.Artifact != desired {
			superseded = append(superseded, q)
			continue
		}
		kept = append(kept, q)
	}
	r.queue = kept
	r.m.queued.Set(float64(len(r.queue)))
	r.mu.Unlock()
	for _, q := range superseded {
		r.endUnstarted(q, Superseded, fmt.Sprintf("superseded: %s is back at %s, which is deployed", env, short(desired)))
	}
}

// ReconcileAll reconciles every deploy ref of every repository (at start).
func (r *Deployer) ReconcileAll(ctx context.Context) {
	repos, err := r.repos.List()
	if err != nil {
		r.log.WithError(err).Warn("reconcile: list repositories")
		return
	}
	for _, repo := range repos {
		for _, d := range r.deployRefs(repo) {
			run, err := r.Reconcile(ctx, repo, d.pipeline, d.env, r.lastDeployer(repo, d.pipeline, d.env), "reconcile at start")
			if err != nil {
				r.log.WithError(err).WithField("repo", repo).Warn("reconcile deploy ref")
			} else if run != nil {
				r.log.WithField("run", run.ID()).Info("deploy ref differs from deployed ref: deploying")
			}
		}
	}
}

// lastDeployer is the user of the newest deploy run of the artifact that
// refs/deploy/ENV/PIPELINE names: a deploy reconciled at start (after a
// crash interrupted it) acts for them again, so that its promotions ask
// their rights. Without such a run the deploy acts for [NoUser], who has
// none.
func (r *Deployer) lastDeployer(repo, pipeline, env string) string {
	desired, err := refs.Resolve(r.repos.Path(repo), refs.DeployRef(env, pipeline))
	if err != nil || desired.IsZero() {
		return NoUser
	}
	if deployed, _ := refs.Resolve(r.repos.Path(repo), refs.DeployedRef(env, pipeline)); deployed == desired {
		return NoUser // nothing to deploy: spare reading the runs
	}
	runs, _ := r.runs.Runs(repo, pipeline, 200)
	for _, run := range runs {
		if run.Kind == Deploy && run.Environment == env && run.Artifact == desired.String() && run.User != "" {
			return run.User
		}
	}
	return NoUser
}

type envPipeline struct{ env, pipeline string }

// deployRefs lists the ENV/PIPELINE pairs that have a deploy or deployed ref.
func (r *Deployer) deployRefs(repo string) []envPipeline {
	g, err := openRepo(r.repos, repo)
	if err != nil {
		return nil
	}
	iter, err := g.References()
	if err != nil {
		return nil
	}
	seen := map[envPipeline]bool{}
	var out []envPipeline
	_ = iter.ForEach(func(ref *plumbing.Reference) error {
		kind, env, pipeline := refs.Parse(ref.Name().String())
		if (kind == refs.Deploy || kind == refs.Deployed) && !seen[envPipeline{env, pipeline}] {
			seen[envPipeline{env, pipeline}] = true
			out = append(out, envPipeline{env, pipeline})
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].env != out[j].env {
			return out[i].env < out[j].env
		}
		return out[i].pipeline < out[j].pipeline
	})
	return out
}

// deployBox is what a deploy's job runs with: the pipeline's image and
// limits, and the network unless the environment says network: false.
func deployBox(s *spec.Spec, env spec.Environment) WorkspaceSpec {
	b := WorkspaceSpec{Image: s.Image, Limits: s.Limits, Network: true, Deploy: true}
	if env.Network != nil {
		b.Network = *env.Network
	}
	return b
}

// afterDeploy promotes a successfully deployed artifact to the
// environments that follow env with `auto: true`, acting for the user whose
// deploy completed the gate.
func (r *Deployer) afterDeploy(ctx context.Context, run *Run, log *logrus.Entry) (queued []*Run) {
	spec, err := readSpec(ctx, r.repos, run.Repo, run.Pipeline, run.Commit)
	if err != nil {
		return nil
	}
	for _, e := range spec.Environments {
		if e.Auto && e.After == run.Environment {
			if d := r.autoDeploy(ctx, run.Repo, run.Pipeline, e.Name, run.Artifact, run.User,
				fmt.Sprintf("promotion after %s deployed to %s", run.ID(), run.Environment), log); d != nil {
				queued = append(queued, d)
			}
		}
	}
	return queued
}

// RollbackTarget is the newest artifact deployed successfully to env other
// than the current target, from the pipeline's run records. The current
// target is the deploy ref's, not the deployed ref's: a rollback right
// after a deploy was asked for (still running, or failed) goes back to
// what ran before it, not to what ran before that.
func (r *Deployer) RollbackTarget(repo, pipeline, env string) (string, error) {
	g, err := openRepo(r.repos, repo)
	if err != nil {
		return "", err
	}
	current, err := refs.Resolve(r.repos.Path(repo), refs.DeployRef(env, pipeline))
	if err != nil {
		return "", err
	}
	target := ""
	err = r.eachDeploy(g, pipeline, env, func(art string) bool {
		if art != current.String() {
			target = art
			return false
		}
		return true
	})
	if err != nil {
		return "", err
	}
	if target == "" {
		return "", fmt.Errorf("no earlier successful deploy of %s to %s to roll back to", pipeline, env)
	}
	return target, nil
}

// Artifact is one entry of a pipeline's artifact history.
type Artifact struct {
	Commit       string    `json:"commit"`
	Run          string    `json:"run"`
	SourceCommit string    `json:"source_commit"`
	Subject      string    `json:"subject"`
	Time         time.Time `json:"time"`
	Inputs       []string  `json:"inputs,omitempty"`
}

// Artifacts lists a pipeline's artifacts, newest first.
func (r *Deployer) Artifacts(repo, pipeline string, limit int) ([]Artifact, error) {
	g, err := openRepo(r.repos, repo)
	if err != nil {
		return nil, err
	}
	chain, err := refs.Chain(g, refs.ArtifactRef(pipeline), limit)
	if err != nil {
		return nil, err
	}
	out := []Artifact{}
	for _, c := range chain {
		out = append(out, ArtifactOf(c))
	}
	return out, nil
}

// ArtifactOf is the history entry of an artifact commit, as `artifacts`
// prints it.
func ArtifactOf(c *object.Commit) Artifact {
	t := refs.Trailers(c.Message)
	return Artifact{
		Commit: c.Hash.String(), Run: first(t["Run"]), SourceCommit: first(t["Source-Commit"]),
		Subject: strings.SplitN(c.Message, "\n", 2)[0], Time: c.Committer.When.UTC(), Inputs: t["Input"],
	}
}

// EnvStatus is one environment × pipeline of `status`.
type EnvStatus struct {
	Environment string `json:"environment"`
	Pipeline    string `json:"pipeline"`
	Desired     string `json:"desired,omitempty"`
	Deployed    string `json:"deployed,omitempty"`
	// State is "deployed" (desired = deployed), "deploying", "queued",
	// "failed" (the last deploy of the desired artifact failed),
	// "pending", or "waiting for deploy" (an automatic deploy of a newer
	// artifact is held until someone with the right deploys).
	State   string `json:"state"`
	LastRun int    `json:"last_run,omitempty"`
	// Waiting is the held artifact, and WaitingReason why it is held.
	Waiting       string `json:"waiting,omitempty"`
	WaitingReason string `json:"waiting_reason,omitempty"`
	// Note says why a pending deploy is not queued (the repository's
	// queue was full when it was asked for).
	Note string `json:"note,omitempty"`
}

// deployLive reports whether a deploy of pipeline to env is queued or
// running (or ending: a run is live until what follows it is queued).
func (r *Runner) deployLive(repo, pipeline, env string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, lr := range r.live {
		if k.repo == repo && k.pipeline == pipeline && lr.run.Kind == Deploy && lr.run.Environment == env {
			return true
		}
	}
	return false
}

// Status reports desired against deployed for every environment ×
// pipeline with a deploy ref or a held deploy.
func (r *Deployer) Status(repo string) ([]EnvStatus, error) {
	gitDir := r.repos.Path(repo)
	out := []EnvStatus{}
	pairs := r.deployRefs(repo)
	for _, h := range r.rights.heldEnvs(repo) {
		if !slices.Contains(pairs, h) {
			pairs = append(pairs, h)
		}
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].env != pairs[j].env {
			return pairs[i].env < pairs[j].env
		}
		return pairs[i].pipeline < pairs[j].pipeline
	})
	for _, d := range pairs {
		desired, _ := refs.Resolve(gitDir, refs.DeployRef(d.env, d.pipeline))
		deployed, _ := refs.Resolve(gitDir, refs.DeployedRef(d.env, d.pipeline))
		st := EnvStatus{Environment: d.env, Pipeline: d.pipeline}
		if !desired.IsZero() {
			st.Desired = desired.String()
		}
		if !deployed.IsZero() {
			st.Deployed = deployed.String()
		}
		// The newest deploy run of this environment tells the rest; the
		// run index finds it without reading the runs before it.
		var last *Run
		if page, err := r.runs.Page(repo, d.pipeline, RunQuery{Kind: Deploy, Environment: d.env, Limit: 1}); err == nil && len(page.Runs) > 0 {
			last = page.Runs[0]
		}
		if last != nil {
			st.LastRun = last.Number
		}
		switch {
		case (st.Desired == "" || st.Desired == st.Deployed) && r.runs.deployLive(repo, d.pipeline, d.env):
			// Back at what is deployed while a deploy of another
			// target is still on its way: not settled yet.
			st.State = "deploying"
		case st.Desired == "" || st.Desired == st.Deployed:
			st.State = "deployed"
		case last != nil && last.Artifact == st.Desired && last.State == Running:
			st.State = "deploying"
		case last != nil && last.Artifact == st.Desired && last.State == Queued:
			st.State = "queued"
		case last != nil && last.Artifact == st.Desired && last.State.Final():
			st.State = string(last.State)
		default:
			st.State = "pending"
			if why := r.runs.notQueued(repo, d.pipeline, d.env); why != "" {
				st.State, st.Note = "pending (queue full)", "not queued: "+why
			}
		}
		if h, ok := r.rights.held(repo, d.pipeline, d.env, st.Desired); ok {
			st.State, st.Waiting, st.WaitingReason = "waiting for deploy", h.Artifact, h.Reason
		}
		if st.Desired == "" && st.Deployed == "" && st.Waiting == "" {
			continue // a lapsed hold on an environment never deployed
		}
		out = append(out, st)
	}
	return out, nil
}
