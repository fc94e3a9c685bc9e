package pipelines

import (
	"context"

	"filippo.io/age"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/refline/refline/pipelines/spec"
	"github.com/refline/refline/refs"
)

// Repos is the subset of the repository store the runner uses.
type Repos interface {
	Path(name string) string
	Exists(name string) bool
	List() ([]string, error)
	DeployBranch(ctx context.Context, name string) string
}

// Config wires a Runner.
type Config struct {
	// DataDir holds runs/ (run state and logs) and work/ (workspaces).
	DataDir  string
	Repos    Repos
	Executor Executor
	MaxJobs  int
	Signer   *refs.Signer
	// Updater writes refs/runs/*; its Env identifies the server to the
	// reference-transaction hook.
	Updater refs.Updater
	// Committer is the identity of the commits the server writes.
	Committer  object.Signature
	Logger     *logrus.Entry
	Registerer prometheus.Registerer
	// BaseEnv is the part of the server's environment jobs see (SPEC §5:
	// PATH, HOME, LANG, TMPDIR).
	BaseEnv []string
	// Auth decides what the user a run acts for may read beyond the run's
	// repository and where they may deploy. Nil allows nothing across
	// repositories and no deploy but the local operator's.
	Auth Authorizer
	// AgeIdentities are the server's identities for decrypting secrets.
	AgeIdentities func() []age.Identity
	// MaxJobsPerRepo bounds the job slots one repository holds at once
	// (0: MaxJobs). MaxQueuedPerRepo bounds its queued runs; a push past it
	// is refused (0: no limit).
	MaxJobsPerRepo   int
	MaxQueuedPerRepo int
	// MaxLogSize bounds a run's log (all stages); a run printing more is
	// stopped and fails (0: only MaxStageLog per stage is kept).
	// MaxArtifactSize bounds the files of an artifact (0: no limit).
	MaxLogSize      int64
	MaxArtifactSize int64
	// Events, when set, queues webhook events (events.go).
	Events Emitter
	// LogsHint, when set, says how to read a run's log (the push's
	// "ssh -p PORT git@HOST logs REPO PIPELINE N -f"); run and deploy
	// events carry it as "logs".
	LogsHint func(repo, pipeline string, n int) string
}

// Runner queues runs and executes them, --max-jobs at a time.
type Runner struct {
	cfg   Config
	store *runStore
	log   *logrus.Entry
	m     runnerMetrics

	mu     sync.Mutex
	cond   *sync.Cond
	queue  []*liveRun
	live   map[runKey]*liveRun
	busy   map[string]bool // "repo\x00pipeline" with a build running
	rights *rights
	closed bool
	// reserved counts runs per repository being stored by Enqueue,
	// which the queue limit counts as queued.
	reserved map[string]int
	// unqueued says why a deploy was not queued, by
	// "repo\x00pipeline\x00env", for status.
	unqueued map[string]unqueuedDeploy
	workers  sync.WaitGroup

	// The parts the runner wires: the deploy controller, run and
	// artifact records, the push journal, stage execution.
	deployer *Deployer
	rec      *recorder
	journal  *pushJournal
	stages   *stager

	setOff map[runKey]setOff // guarded by mu
	// Job slots (schedule.go), guarded by mu.
	sched scheduler
}

type runKey struct {
	repo, pipeline string
	n              int
}

// liveRun is a queued or running run. run is guarded by Runner.mu; copies
// are handed out.
type liveRun struct {
	run      *Run
	bell     *bell
	cancel   context.CancelFunc
	canceled bool
	// interrupt marks a cancel by shutdown rather than by a user.
	interrupt bool
	// pushed is when the push that caused it was received, for the
	// push-to-first-stage latency.
	pushed time.Time
	// spec is the pipeline file at the run's commit if already parsed.
	spec *spec.Spec
	// granted is set when a parked run gets its slot back.
	granted bool
	// logs is the run's log budget; logFull is set once it ran out.
	logs    *logBudget
	logFull bool
}

type runnerMetrics struct {
	runs       *prometheus.CounterVec
	queued     prometheus.Gauge
	running    prometheus.Gauge
	firstStage prometheus.Histogram
}

// New creates a Runner. Start recovers what a previous instance left and
// starts the workers.
func New(cfg Config) (*Runner, error) {
	if cfg.MaxJobs < 1 {
		cfg.MaxJobs = 1
	}
	if cfg.Executor == nil {
		cfg.Executor = Local{}
	}
	r := &Runner{
		cfg:      cfg,
		store:    &runStore{root: filepath.Join(cfg.DataDir, "runs")},
		log:      cfg.Logger,
		live:     map[runKey]*liveRun{},
		busy:     map[string]bool{},
		reserved: map[string]int{},
		m: runnerMetrics{
			runs: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "refline_runs_total", Help: "Finished runs by kind and final state.",
			}, []string{"kind", "state"}),
			queued: prometheus.NewGauge(prometheus.GaugeOpts{
				Name: "refline_runs_queued", Help: "Runs waiting for a worker.",
			}),
			running: prometheus.NewGauge(prometheus.GaugeOpts{
				Name: "refline_runs_running", Help: "Runs executing now.",
			}),
			firstStage: prometheus.NewHistogram(prometheus.HistogramOpts{
				Name:    "refline_push_to_first_stage_seconds",
				Help:    "From receiving a push to its run's first stage process starting.",
				Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
			}),
		},
	}
	r.cond = sync.NewCond(&r.mu)
	r.rights = &rights{auth: cfg.Auth, repos: cfg.Repos, store: r.store, log: r.log}
	r.deployer = &Deployer{repos: cfg.Repos, signer: cfg.Signer, updater: cfg.Updater, rights: r.rights, runs: r, log: r.log}
	r.rec = &recorder{repos: cfg.Repos, store: r.store, updater: cfg.Updater, signer: cfg.Signer,
		committer: cfg.Committer, maxArtifactSize: cfg.MaxArtifactSize, runs: r.m.runs, ended: r.emitFinished}
	r.stages = &stager{repos: cfg.Repos, executor: cfg.Executor, store: r.store, updater: cfg.Updater, rights: r.rights,
		rec: r.rec, deployer: r.deployer, baseEnv: cfg.BaseEnv, ageIdentities: cfg.AgeIdentities, workDir: r.workDir,
		firstStage: r.m.firstStage, runs: r}
	r.journal = &pushJournal{dir: filepath.Join(cfg.DataDir, "pushes"), log: r.log}
	r.sched = scheduler{maxJobs: cfg.MaxJobs, maxPerRepo: cfg.MaxJobsPerRepo, slotsHeld: map[string]int{}, served: map[string]uint64{}}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(r.m.runs, r.m.queued, r.m.running, r.m.firstStage)
	}
	if err := os.MkdirAll(r.store.root, 0o700); err != nil {
		return nil, fmt.Errorf("runs dir: %w", err)
	}
	return r, nil
}

// Start recovers after a crash (call it before any Enqueue: recovery queues
// every stored queued run) (runs that were running become interrupted
// and are recorded, their leftover processes are stopped, queued runs are
// queued again) and starts the workers. They stop when Shutdown is called.
func (r *Runner) Start(ctx context.Context) error {
	var requeue []*Run
	err := r.store.all(func(run *Run) {
		if err := r.store.repairIndex(run); err != nil {
			r.log.WithError(err).WithField("run", run.ID()).Warn("repair run index")
		}
		switch {
		case run.State == Running:
			r.interrupted(ctx, run)
		case run.State == Queued:
			requeue = append(requeue, run)
		case !r.store.recorded(run):
			r.unrecorded(ctx, run)
		}
	})
	if err != nil {
		return fmt.Errorf("recover runs: %w", err)
	}
	if rm, ok := r.cfg.Executor.(leftoverRemover); ok {
		// Jobs launched elsewhere whose handles no run recorded (a
		// crash between launch and the first stage) go too.
		if err := rm.Sweep(ctx); err != nil {
			r.log.WithError(err).Warn("sweep agents left by the previous instance")
		}
	}
	sort.Slice(requeue, func(i, j int) bool { return requeue[i].Queued.Before(requeue[j].Queued) })
	defer r.journal.replay(ctx, r.cfg.Repos, r) // after the workers start: it may queue runs
	r.mu.Lock()
	for _, run := range requeue {
		r.push(&liveRun{run: run, bell: newBell()})
		r.log.WithField("run", run.ID()).Info("run queued again after restart")
	}
	r.sched.started = true
	r.grant()
	r.mu.Unlock()
	return nil
}

// interrupted accounts for a run a previous instance was running when it
// died: its processes are stopped and it is recorded as interrupted, unless
// it had in fact done everything but say so (all stages passed and its
// artifact is on the chain, or its deploy moved refs/deployed).
func (r *Runner) interrupted(ctx context.Context, run *Run) {
	log := r.log.WithField("run", run.ID())
	if run.Process != "" && r.killLeftover(ctx, run.Process) {
		log.WithField("process", run.Process).Warn("stopped a job process left by the previous instance")
	}
	run.Process = ""
	if r.rec.completed(run) {
		run.State, run.Error = Passed, ""
		if run.Finished.IsZero() {
			run.Finished = time.Now().UTC()
		}
		_ = os.RemoveAll(r.workDir(run))
		log.Info("run had completed before the previous instance stopped; recording it as passed")
		r.rec.finish(ctx, run, log)
		r.after(ctx, run, log)
		return
	}
	run.State = Interrupted
	run.Error = "the server stopped while this run was in progress"
	for i := range run.Stages {
		switch run.Stages[i].State {
		case Running:
			run.Stages[i].State = Interrupted
			run.Stages[i].Finished = time.Now()
		case Queued:
			run.Stages[i].State = Skipped
		}
	}
	if run.Finished.IsZero() {
		run.Finished = time.Now()
	}
	_ = os.RemoveAll(r.workDir(run))
	r.rec.finish(ctx, run, log)
}

// leftoverRemover is what an executor that starts jobs elsewhere (the
// agent executor) offers crash recovery: removing what one handle names,
// and everything this instance launched that no live run holds.
type leftoverRemover interface {
	RemoveLeftover(ctx context.Context, handle string) bool
	Sweep(ctx context.Context) error
}

// killLeftover stops what a crashed instance's job handle names.
func (r *Runner) killLeftover(ctx context.Context, handle string) bool {
	if rm, ok := r.cfg.Executor.(leftoverRemover); ok && rm.RemoveLeftover(ctx, handle) {
		return true
	}
	return KillLeftover(handle)
}

// push adds a run to the queue; r.mu must be held.
func (r *Runner) push(lr *liveRun) {
	r.live[runKey{lr.run.Repo, lr.run.Pipeline, lr.run.Number}] = lr
	r.queue = append(r.queue, lr)
	r.m.queued.Set(float64(len(r.queue)))
	r.grant()
}

// Request asks for a run.
type Request struct {
	Repo, Pipeline string
	Kind           Kind
	Commit         string
	Branch         string
	Environment    string
	Artifact       string
	Trigger        string
	User           string
	RetryOf        int
	Inputs         []InputArtifact
	WaitFor        []string
	// Subject is the commit's subject, when the caller has read it.
	Subject string
	// spec is the pipeline file at Commit, when the caller has parsed
	// it already (a push's trigger): the run need not read it again.
	spec *spec.Spec
	// Pushed is when the triggering push arrived (zero if none).
	Pushed time.Time
	// admitted marks a run of a push that the queue limit let in before
	// the push was stored: it queues even past the limit (reserve).
	admitted bool
}

// Enqueue records a run durably and queues it. When it returns, the run
// survives a crash: it will run, or be accounted for as interrupted. When
// the repository has MaxQueuedPerRepo runs queued it stores nothing and
// returns a *QueueFullError (see reserve for what is let through).
func (r *Runner) Enqueue(ctx context.Context, req Request) (*Run, error) {
	release, err := r.reserve(req)
	if err != nil {
		return nil, err
	}
	released := false
	defer func() {
		if !released {
			r.mu.Lock()
			release()
			r.mu.Unlock()
		}
	}()
	run := &Run{
		Repo: req.Repo, Pipeline: req.Pipeline, Kind: req.Kind, State: Queued,
		Commit: req.Commit, Branch: req.Branch, Environment: req.Environment,
		Artifact: req.Artifact, Trigger: req.Trigger, User: req.User, RetryOf: req.RetryOf,
		Inputs: req.Inputs, WaitFor: req.WaitFor, Queued: time.Now().UTC(),
	}
	if run.Kind == "" {
		run.Kind = Build
	}
	run.Subject = req.Subject
	if run.Subject == "" {
		run.Subject = gitReader{gitDir: r.cfg.Repos.Path(req.Repo)}.subject(ctx, req.Commit)
	}
	if err := r.store.create(run); err != nil {
		return nil, fmt.Errorf("enqueue %s %s: %w", req.Repo, req.Pipeline, err)
	}
	r.mu.Lock()
	release()
	released = true
	if r.closed {
		r.mu.Unlock()
		// Stored as queued: the next start runs it.
		return copyRun(run), nil
	}
	var superseded []*liveRun
	if run.Kind == Deploy {
		// A newer target replaces a deploy that has not started yet.
		kept := r.queue[:0]
		for _, q := range r.queue {
			if busyKey(q.run) == busyKey(run) && q.run.Kind == Deploy {
				superseded = append(superseded, q)
				continue
			}
			kept = append(kept, q)
		}
		r.queue = kept
	}
	r.push(&liveRun{run: run, bell: newBell(), pushed: req.Pushed, spec: req.spec})
	queued := copyRun(run) // a worker may take run as soon as r.mu is released
	r.mu.Unlock()
	for _, q := range superseded {
		r.endUnstarted(q, Superseded, fmt.Sprintf("superseded by #%d (artifact %s)", queued.Number, short(queued.Artifact)))
	}
	r.log.WithFields(logrus.Fields{"run": queued.ID(), "commit": short(queued.Commit), "trigger": queued.Trigger}).Info("run queued")
	return queued, nil
}

// endUnstarted ends a run taken off the queue before it started.
func (r *Runner) endUnstarted(lr *liveRun, state State, why string) {
	r.update(lr, func(run *Run) { run.State = state; run.Error = why; run.Finished = time.Now().UTC() })
	final := copyRunLocked(r, lr)
	r.rec.finish(context.Background(), final, r.log.WithField("run", final.ID()))
	r.mu.Lock()
	delete(r.live, runKey{final.Repo, final.Pipeline, final.Number})
	r.grant() // runs waiting for this one may start
	r.mu.Unlock()
	lr.bell.ring()
}

// waiting reports whether run must wait for a build of one of its
// same-repository inputs that was queued before it; r.mu must be held.
func (r *Runner) waiting(run *Run) bool {
	for _, dep := range run.WaitFor {
		for k, lr := range r.live {
			if k.repo == run.Repo && k.pipeline == dep && lr.run.Kind == Build && !lr.run.Queued.After(run.Queued) {
				return true
			}
		}
	}
	return false
}

// busyKey is what may run only once at a time: builds of one pipeline (in
// push order, so the artifact chain follows the history), and deploys of
// one pipeline to one environment (a rollback need not wait for a build).
func busyKey(run *Run) string {
	if run.Kind == Deploy {
		return run.Repo + "\x00" + run.Pipeline + "\x00" + run.Environment
	}
	return run.Repo + "\x00" + run.Pipeline
}

// snapshot is a copy of a live run's state.
func (r *Runner) snapshot(lr *liveRun) *Run { return copyRunLocked(r, lr) }

// interrupting reports whether a live run is being stopped by shutdown
// rather than by a user.
func (r *Runner) interrupting(lr *liveRun) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return lr.interrupt
}

// update changes a live run under the lock, saves it and wakes followers.
func (r *Runner) update(lr *liveRun, f func(run *Run)) {
	r.mu.Lock()
	f(lr.run)
	snapshot := copyRun(lr.run)
	r.mu.Unlock()
	if err := r.store.saveProgress(snapshot); err != nil {
		r.log.WithError(err).WithField("run", snapshot.ID()).Error("save run state")
	}
	lr.bell.ring()
}

func (r *Runner) execute(lr *liveRun) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r.mu.Lock()
	lr.cancel = cancel
	canceled := lr.canceled
	run := lr.run
	r.mu.Unlock()
	log := r.log.WithFields(logrus.Fields{"run": run.ID(), "commit": short(run.Commit)})
	r.m.running.Inc()
	defer r.m.running.Dec()

	if canceled {
		r.update(lr, func(run *Run) { run.State = Canceled; run.Finished = time.Now().UTC() })
	} else {
		r.update(lr, func(run *Run) { run.State = Running; run.Started = time.Now().UTC() })
		r.mu.Lock()
		started := copyRun(lr.run)
		r.mu.Unlock()
		r.emitStarted(started)
		state, errText := r.stages.runStages(ctx, lr, log)
		r.update(lr, func(run *Run) {
			run.State, run.Error, run.Process = state, errText, ""
			run.Finished = time.Now().UTC()
		})
	}
	r.mu.Lock()
	final := copyRun(lr.run)
	r.mu.Unlock()
	_ = os.RemoveAll(r.workDir(final))
	r.rec.finish(context.Background(), final, log)
	// What the run sets off is queued before its followers hear that it
	// ended, so that `git push -o follow` can follow that too.
	next := r.after(context.Background(), final, log)
	if final.Kind == Deploy && r.deployRefMoved(final) {
		// The deploy ref moved while this deploy ran, maybe to a target
		// no deploy is queued for (such as the one deployed before):
		// deploy what is desired now.
		d, err := r.deployer.Reconcile(context.Background(), final.Repo, final.Pipeline, final.Environment, "refline",
			fmt.Sprintf("%s moved while %s ran", refs.DeployRef(final.Environment, final.Pipeline), final.ID()))
		if err != nil {
			log.WithError(err).Warn("reconcile after deploy")
		} else if d != nil && d.Number != final.Number {
			next = append(next, d)
		}
	}
	key := runKey{final.Repo, final.Pipeline, final.Number}
	r.mu.Lock()
	lr.run.Record = final.Record
	delete(r.live, key)
	r.noteSetOff(key, next)
	r.mu.Unlock()
	lr.bell.ring()
	r.retryUnqueued(final.Repo, log)
}

// deployRefMoved reports whether the deploy ref of a deploy run now points
// elsewhere than the run's target.
func (r *Runner) deployRefMoved(run *Run) bool {
	desired, err := refs.Resolve(r.cfg.Repos.Path(run.Repo), refs.DeployRef(run.Environment, run.Pipeline))
	return err == nil && !desired.IsZero() && desired.String() != run.Artifact
}

// setOffKept bounds how long SetOff remembers what a run set off: a
// follower asks right after the run ends.
const setOffKept = time.Hour

type setOff struct {
	runs  []runKey
	ended time.Time
}

// noteSetOff remembers the runs that key's end queued. Called with r.mu held.
func (r *Runner) noteSetOff(key runKey, runs []*Run) {
	now := time.Now()
	for k, so := range r.setOff {
		if now.Sub(so.ended) > setOffKept {
			delete(r.setOff, k)
		}
	}
	if len(runs) == 0 {
		return
	}
	so := setOff{ended: now}
	for _, run := range runs {
		so.runs = append(so.runs, runKey{run.Repo, run.Pipeline, run.Number})
	}
	if r.setOff == nil {
		r.setOff = map[runKey]setOff{}
	}
	r.setOff[key] = so
}

// SetOff returns the runs that run n of pipeline queued when it ended
// (auto-deploys and promotions, builds its artifact triggered), as they
// are now; nil before it ends, or when it set off nothing.
func (r *Runner) SetOff(repo, pipeline string, n int) []*Run {
	r.mu.Lock()
	so := r.setOff[runKey{repo, pipeline, n}]
	r.mu.Unlock()
	var out []*Run
	for _, k := range so.runs {
		if run, err := r.Get(k.repo, k.pipeline, k.n); err == nil {
			out = append(out, run)
		}
	}
	return out
}

func (r *Runner) workDir(run *Run) string {
	return filepath.Join(r.cfg.DataDir, "work", escapeRepo(run.Repo), run.Pipeline, fmt.Sprint(run.Number))
}

// readSpec reads and parses one pipeline's file at commit.
func readSpec(ctx context.Context, repos Repos, repo, pipeline, commit string) (*spec.Spec, error) {
	files, err := gitReader{gitDir: repos.Path(repo)}.pipelineFiles(ctx, commit)
	if err != nil {
		return nil, fmt.Errorf("read pipeline files at %s: %w", short(commit), err)
	}
	path := spec.Dir + pipeline + ".yml"
	data, ok := files[path]
	if !ok {
		return nil, fmt.Errorf("%s does not exist at %s", path, short(commit))
	}
	return spec.Parse(path, data)
}

// unrecorded finishes a run that ended but whose record the previous
// instance did not write (or did not note): it is appended now, unless the
// chain already holds it, and what follows a passed run happens now.
func (r *Runner) unrecorded(ctx context.Context, run *Run) {
	log := r.log.WithField("run", run.ID())
	if !r.cfg.Repos.Exists(run.Repo) {
		return // its repository was deleted: nothing to record it in
	}
	if g, err := r.open(run.Repo); err == nil {
		if chain, err := refs.Chain(g, refs.RunsRef(run.Pipeline), 200); err == nil {
			for _, c := range chain {
				if refs.Trailer(c.Message, "Run") == strconv.Itoa(run.Number) {
					// Recorded, but maybe not yet reported: report it
					// (again, at worst) before marking it.
					r.emitFinished(run)
					r.store.markRecorded(run, c.Hash.String())
					return
				}
			}
		}
	}
	log.Info("recording a run the previous instance ended but did not record")
	r.rec.finish(ctx, run, log)
	r.after(ctx, run, log)
}

// after does what follows a passed run: promotions after a deploy,
// auto-deploys and artifact triggers after a build.
func (r *Runner) after(ctx context.Context, run *Run, log *logrus.Entry) []*Run {
	if run.State != Passed {
		return nil
	}
	if run.Kind == Deploy {
		return r.deployer.afterDeploy(ctx, run, log)
	} else if run.Artifact != "" {
		return r.afterBuild(ctx, run, log)
	}
	return nil
}

// Cancel stops a queued or running run.
func (r *Runner) Cancel(repo, pipeline string, n int) error {
	r.mu.Lock()
	lr, ok := r.live[runKey{repo, pipeline, n}]
	if !ok {
		r.mu.Unlock()
		if _, err := r.store.load(repo, pipeline, n); err != nil {
			return err
		}
		return fmt.Errorf("%s #%d has already finished", pipeline, n)
	}
	lr.canceled = true
	cancel := lr.cancel
	queued := false
	for i, q := range r.queue {
		if q == lr {
			r.queue = append(r.queue[:i], r.queue[i+1:]...)
			r.m.queued.Set(float64(len(r.queue)))
			queued = true
			break
		}
	}
	r.mu.Unlock()
	switch {
	case queued:
		// It never started: account for it here, not in a worker.
		r.endUnstarted(lr, Canceled, "canceled before it started")
	case cancel != nil:
		cancel()
	}
	return nil
}

// Retry queues a new run of the same pipeline at the same commit (and so
// with the same pipeline file).
func (r *Runner) Retry(ctx context.Context, repo, pipeline string, n int, user string) (*Run, error) {
	old, err := r.Get(repo, pipeline, n)
	if err != nil {
		return nil, err
	}
	if old.Kind == Deploy {
		// A retried deploy acts for the retrier.
		if err := r.rights.mayDeploy(repo, user, old.Environment); err != nil {
			return nil, err
		}
	}
	if !old.State.Final() {
		return nil, fmt.Errorf("%s #%d is still %s", pipeline, n, old.State)
	}
	return r.Enqueue(ctx, Request{
		Repo: repo, Pipeline: pipeline, Kind: old.Kind, Commit: old.Commit, Branch: old.Branch,
		Environment: old.Environment, Artifact: old.Artifact, Inputs: old.Inputs,
		Trigger: fmt.Sprintf("retry of #%d by %s", n, user), User: user, RetryOf: n,
	})
}

// Get returns a run.
func (r *Runner) Get(repo, pipeline string, n int) (*Run, error) {
	r.mu.Lock()
	if lr, ok := r.live[runKey{repo, pipeline, n}]; ok {
		defer r.mu.Unlock()
		return copyRun(lr.run), nil
	}
	r.mu.Unlock()
	return r.store.load(repo, pipeline, n)
}

// Runs lists a repository's runs (of one pipeline, or all), newest first,
// at most limit: the first page of Page.
func (r *Runner) Runs(repo, pipeline string, limit int) ([]*Run, error) {
	if limit <= 0 {
		return []*Run{}, nil
	}
	page, err := r.Page(repo, pipeline, RunQuery{Limit: limit})
	return page.Runs, err
}

// Last returns the newest run of a pipeline, or nil.
func (r *Runner) Last(repo, pipeline string) *Run {
	runs, err := r.Runs(repo, pipeline, 1)
	if err != nil || len(runs) == 0 {
		return nil
	}
	return runs[0]
}

// Follow writes a run's logs to w as they are produced, until the run
// ends, and returns the finished run.
func (r *Runner) Follow(ctx context.Context, repo, pipeline string, n int, w io.Writer) (*Run, error) {
	return r.Logs(ctx, repo, pipeline, n, w, true)
}

// Logs writes a run's logs to w, each stage under a "--- STAGE" header.
// With follow it keeps writing until the run ends; without, it writes what
// there is now.
func (r *Runner) Logs(ctx context.Context, repo, pipeline string, n int, w io.Writer, follow bool) (*Run, error) {
	r.mu.Lock()
	lr, live := r.live[runKey{repo, pipeline, n}]
	r.mu.Unlock()
	run, err := r.Get(repo, pipeline, n)
	if err != nil {
		return nil, err
	}
	b := newBell()
	current := func() *Run { return run }
	key := runKey{repo, pipeline, n}
	if live {
		b = lr.bell
		current = func() *Run {
			r.mu.Lock()
			defer r.mu.Unlock()
			c := copyRun(lr.run)
			if _, still := r.live[key]; still && c.State.Final() {
				// Ended, but its record is not written yet: a follower
				// returns once it is (the bell rings again then).
				c.State = Running
			}
			return c
		}
	}
	if !follow || (!live && !run.State.Final()) {
		// A run stored as queued that this instance does not hold (it
		// stopped taking runs) does not move: show what there is.
		snapshot := current()
		snapshot.State = Passed // any final state: read once, then stop
		current = func() *Run { return snapshot }
	}
	if err := followRun(ctx, w, func(stage string) string { return r.store.logPath(run, stage) }, b, current); err != nil {
		return nil, err
	}
	return r.Get(repo, pipeline, n)
}

// Shutdown stops taking runs from the queue, lets running runs finish for
// up to grace, then cancels them; they are recorded as interrupted. Queued
// runs stay queued on disk for the next start.
func (r *Runner) Shutdown(grace time.Duration) {
	r.mu.Lock()
	r.closed = true
	r.grant()
	r.mu.Unlock()
	done := make(chan struct{})
	go func() { r.workers.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(grace):
	}
	r.mu.Lock()
	for _, lr := range r.live {
		if lr.cancel != nil {
			lr.interrupt = true
			lr.cancel()
		}
	}
	r.mu.Unlock()
	<-done
}

// RemoveRepo forgets the runs of a deleted repository.
func (r *Runner) RemoveRepo(repo string) error { return r.store.removeRepo(repo) }

func copyRun(run *Run) *Run {
	c := *run
	c.Stages = append([]StageResult(nil), run.Stages...)
	c.Inputs = append([]InputArtifact(nil), run.Inputs...)
	return &c
}

func copyRunLocked(r *Runner, lr *liveRun) *Run {
	r.mu.Lock()
	defer r.mu.Unlock()
	return copyRun(lr.run)
}

func short(s string) string {
	if len(s) > 7 {
		return s[:7]
	}
	return s
}
