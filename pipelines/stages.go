package pipelines

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/refline/refline/pipelines/spec"
	"github.com/refline/refline/refs"
	"github.com/refline/refline/secrets"
)

// stager executes a run: it builds the run's plan (a build's or a
// deploy's), prepares the workspace with the executor, runs each stage into
// its log and does what success brings (the artifact, refs/deployed).
// What it changes of the run goes through runs, which owns live runs.
type stager struct {
	repos         Repos
	executor      Executor
	store         *runStore
	updater       refs.Updater
	rights        *rights
	rec           *recorder
	deployer      *Deployer
	baseEnv       []string
	ageIdentities func() []age.Identity
	workDir       func(run *Run) string
	firstStage    prometheus.Histogram
	runs          stageRuns
}

// stageRuns is what executing a run needs of the live runs: changing and
// reading its state under the runner's lock, waiting for a job slot between
// stages, and its log budget.
type stageRuns interface {
	update(lr *liveRun, f func(run *Run))
	snapshot(lr *liveRun) *Run
	interrupting(lr *liveRun) bool
	between(ctx context.Context, lr *liveRun) error
	stoppedWaiting(lr *liveRun, i int) (State, string)
	newLogBudget(lr *liveRun) *logBudget
	logOverflow(lr *liveRun) string
}

// specAt reads and parses one pipeline's file at commit.
func (r *stager) specAt(ctx context.Context, repo, pipeline, commit string) (*spec.Spec, error) {
	return readSpec(ctx, r.repos, repo, pipeline, commit)
}

// plan is what a run executes: its stages, their environment, how its
// workspace is filled, what masks its output, and what follows success.
type plan struct {
	stages  []spec.Stage
	env     []string
	fill    func(ctx context.Context, work string) error
	mask    *secrets.Masker
	succeed func(ctx context.Context, work string) error
	// box is the image, network and limits the jobs run with.
	box WorkspaceSpec

	// notes are lines written at the head of the first stage's log,
	// before the job starts: what its reader must know.
	notes []string
}

// runStages prepares the workspace and runs the stages in order. It returns
// the run's final state and, for a failure outside any stage, why.
func (r *stager) runStages(ctx context.Context, lr *liveRun, log *logrus.Entry) (State, string) {
	run := r.runs.snapshot(lr)
	var p *plan
	var err error
	if run.Kind == Deploy {
		p, err = r.deployPlan(ctx, lr, run, log)
	} else {
		p, err = r.buildPlan(ctx, lr, run)
	}
	if err != nil {
		return Failed, err.Error()
	}
	r.runs.update(lr, func(run *Run) {
		run.Stages = make([]StageResult, len(p.stages))
		for i, st := range p.stages {
			run.Stages[i] = StageResult{Name: st.Name, State: Queued}
		}
	})

	box := p.box
	box.Dir, box.Fill, box.Env = r.workDir(run), p.fill, p.env
	box.Repo, box.Pipeline, box.Run = run.Repo, run.Pipeline, run.Number
	for _, st := range p.stages {
		box.Deadline += stageTimeout(st)
	}
	ws, err := r.executor.Prepare(ctx, box)
	if err != nil {
		if ctx.Err() != nil {
			return Canceled, "canceled while preparing the workspace"
		}
		return Failed, err.Error()
	}
	defer ws.Close()

	lr.logs = r.runs.newLogBudget(lr)
	for i, st := range p.stages {
		if i > 0 {
			if err := r.runs.between(ctx, lr); err != nil {
				return r.runs.stoppedWaiting(lr, i)
			}
		}
		var notes []string
		if i == 0 {
			notes = p.notes
		}
		state, code, errText := r.runStage(ctx, lr, i, st, ws, p.mask, notes, log)
		if over := r.runs.logOverflow(lr); over != "" {
			state, errText = Failed, over
		}
		r.runs.update(lr, func(run *Run) {
			run.Stages[i].State, run.Stages[i].ExitCode, run.Stages[i].Error = state, code, errText
			run.Stages[i].Finished = time.Now().UTC()
			if state != Passed {
				for j := i + 1; j < len(run.Stages); j++ {
					run.Stages[j].State = Skipped
				}
			}
		})
		if state != Passed {
			log.WithFields(logrus.Fields{"stage": st.Name, "state": state, "exit": code}).Info("run ended")
			return state, ""
		}
	}
	if p.succeed != nil {
		work, err := ws.Collect(ctx)
		if err == nil {
			err = p.succeed(ctx, work)
		}
		if err != nil {
			log.WithError(err).Warn("run failed after its stages")
			return Failed, err.Error()
		}
	}
	log.Info("run passed")
	return Passed, ""
}

func (r *stager) buildPlan(ctx context.Context, lr *liveRun, run *Run) (*plan, error) {
	spec := lr.spec
	if spec == nil {
		var err error
		if spec, err = r.specAt(ctx, run.Repo, run.Pipeline, run.Commit); err != nil {
			return nil, err
		}
	}
	inputs, err := r.resolveInputs(ctx, run, spec)
	if err != nil {
		return nil, err
	}
	r.runs.update(lr, func(run *Run) { run.Inputs = inputs })
	git := gitReader{gitDir: r.repos.Path(run.Repo)}
	return &plan{
		stages: spec.Stages,
		env:    r.jobEnv(run, spec.Env, nil),
		box:    WorkspaceSpec{Image: spec.Image, Network: spec.Network, Limits: spec.Limits},
		fill: func(ctx context.Context, work string) error {
			if err := git.checkout(ctx, run.Commit, work, work+".index"); err != nil {
				return err
			}
			return r.layInputs(ctx, inputs, run.Repo, work)
		},
		succeed: func(ctx context.Context, work string) error {
			sha, err := r.rec.recordArtifact(ctx, run, inputs, spec, work)
			if err != nil {
				return fmt.Errorf("record artifact: %w", err)
			}
			r.runs.update(lr, func(run *Run) { run.Artifact = sha })
			return nil
		},
	}, nil
}

func (r *stager) runStage(ctx context.Context, lr *liveRun, i int, st spec.Stage, ws Workspace, mask *secrets.Masker, notes []string, log *logrus.Entry) (State, int, string) {
	run := r.runs.snapshot(lr)
	file, err := createStageLog(r.store.logPath(run, st.Name), lr.bell.ring)
	if err != nil {
		return Failed, 0, err.Error()
	}
	file.budget = lr.logs
	defer file.Close()
	// Every byte a job prints passes the masker before it reaches the log
	// file; the live stream, `logs`, push output and run records all read
	// that file, so none of them can show a secret.
	var out io.Writer = file
	if mask != nil {
		mw := mask.Writer(file)
		defer mw.Close()
		out = mw
	}
	for _, n := range notes {
		fmt.Fprintln(out, n)
	}
	timeout := stageTimeout(st)
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	proc, err := ws.Start(sctx, Job{Name: st.Name, Script: st.Run, Output: out})
	if err != nil {
		fmt.Fprintf(out, "refline: %v\n", err)
		return Failed, 0, err.Error()
	}
	r.runs.update(lr, func(run *Run) {
		run.Stages[i].State = Running
		run.Stages[i].Started = time.Now().UTC()
		run.Process = proc.Handle()
	})
	if i == 0 && !lr.pushed.IsZero() {
		r.firstStage.Observe(time.Since(lr.pushed).Seconds())
	}
	code, err := proc.Wait()
	switch {
	case errors.Is(sctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil:
		msg := fmt.Sprintf("stage %s timed out after %s", st.Name, timeout)
		fmt.Fprintf(out, "\nrefline: %s\n", msg)
		return Failed, code, msg
	case ctx.Err() != nil:
		interrupted := r.runs.interrupting(lr)
		if interrupted {
			fmt.Fprintf(out, "\nrefline: the server is shutting down; run interrupted\n")
			return Interrupted, code, "interrupted by server shutdown"
		}
		fmt.Fprintf(out, "\nrefline: run canceled\n")
		return Canceled, code, "canceled"
	case err != nil:
		return Failed, code, err.Error()
	case code != 0:
		return Failed, code, fmt.Sprintf("exit status %d", code)
	}
	return Passed, 0, ""
}

// stageTimeout is how long a stage may run.
func stageTimeout(st spec.Stage) time.Duration {
	if st.Timeout <= 0 {
		return spec.DefaultTimeout
	}
	return st.Timeout
}

// jobEnv is a job's whole environment: the allowed part of the server's,
// then refline's variables, then the pipeline's env:. Nothing from the
// client or the rest of the server's environment.
func (r *stager) jobEnv(run *Run, specEnv []spec.EnvVar, extra []string) []string {
	env := append([]string{}, r.baseEnv...)
	env = append(env,
		"REFLINE_REPO="+run.Repo,
		"REFLINE_PIPELINE="+run.Pipeline,
		fmt.Sprintf("REFLINE_RUN=%d", run.Number),
		"REFLINE_COMMIT="+run.Commit,
		"REFLINE_BRANCH="+run.Branch,
	)
	if run.Kind == Deploy {
		env = append(env, "REFLINE_ENV="+run.Environment, "REFLINE_ARTIFACT="+run.Artifact)
	}
	for _, e := range specEnv {
		env = append(env, e.Name+"="+e.Value)
	}
	return append(env, extra...)
}

// resolveInputs picks the artifact each input of spec lays into the
// workspace: the newest artifact of the named pipeline, or, for a retry,
// exactly the artifacts the original run used. An input from another
// repository needs the run's user to have read access to it.
func (r *stager) resolveInputs(ctx context.Context, run *Run, s *spec.Spec) ([]InputArtifact, error) {
	if len(s.Inputs) == 0 {
		return nil, nil
	}
	if len(run.Inputs) == len(s.Inputs) {
		return run.Inputs, nil // a retry: the same inputs as the original
	}
	var out []InputArtifact
	for _, in := range s.Inputs {
		repo := in.From.Repo
		if repo == "" {
			repo = run.Repo
		}
		label := in.From.String()
		if repo != run.Repo {
			if !r.rights.canRead(repo, run.User) {
				return nil, fmt.Errorf("input %s: %s has no read access to repository %s (or it does not exist)", label, userOrNobody(run.User), repo)
			}
		}
		if !r.repos.Exists(repo) {
			return nil, fmt.Errorf("input %s: repository %s does not exist", label, repo)
		}
		tip, err := refs.Resolve(r.repos.Path(repo), refs.ArtifactRef(in.From.Pipeline))
		if err != nil {
			return nil, fmt.Errorf("input %s: %w", label, err)
		}
		if tip.IsZero() {
			return nil, fmt.Errorf("input %s has no artifact yet: pipeline %s must pass once first", label, label)
		}
		ia := InputArtifact{Pipeline: in.From.Pipeline, Path: in.Path, Artifact: tip.String()}
		if repo != run.Repo {
			ia.Repo = repo
		}
		out = append(out, ia)
	}
	return out, nil
}

// layInputs writes each input artifact's files under its path in the
// workspace.
func (r *stager) layInputs(ctx context.Context, inputs []InputArtifact, runRepo, work string) error {
	for _, in := range inputs {
		repo := in.Repo
		if repo == "" {
			repo = runRepo
		}
		rel := filepath.FromSlash(strings.TrimSuffix(in.Path, "/"))
		if err := mkdirNoFollow(work, rel); err != nil {
			return fmt.Errorf("input %s: %w", in.Pipeline, err)
		}
		dest := filepath.Join(work, rel)
		idx := fmt.Sprintf("%s.input-%s.index", work, in.Pipeline)
		if err := (gitReader{gitDir: r.repos.Path(repo)}).checkout(ctx, in.Artifact, dest, idx); err != nil {
			return fmt.Errorf("input %s: %w", in.Pipeline, err)
		}
	}
	return nil
}

// deployPlan prepares a deploy run: it verifies the target again (the ref
// may have been moved while the server was down), takes the environment's
// definition from the pipeline file at the artifact's source commit, and
// the environment's secrets from the tip of the deploy branch.
func (r *stager) deployPlan(ctx context.Context, lr *liveRun, run *Run, log *logrus.Entry) (*plan, error) {
	target := plumbing.NewHash(run.Artifact)
	c, err := r.deployer.CheckDeployTarget(ctx, run.Repo, run.Pipeline, run.Environment, target)
	if err != nil {
		return nil, fmt.Errorf("deploy refused: %w", err)
	}
	source := refs.Trailer(c.Message, "Source-Commit")
	s, err := r.specAt(ctx, run.Repo, run.Pipeline, source)
	if err != nil {
		return nil, err
	}
	env, _ := s.Environment(run.Environment)
	vars, err := r.deploySecrets(ctx, run.Repo, run.Environment, log)
	if err != nil {
		return nil, err
	}
	mask := secrets.NewMasker(vars)
	// Whoever reads the deploy's log must know what it does not hide, not
	// only whoever reads the server's.
	var notes []string
	for _, k := range mask.ShortKeys() {
		log.WithField("key", k).Warn("secret shorter than 4 characters is not masked in logs")
		notes = append(notes, fmt.Sprintf("refline: warning: the secret %s is shorter than %d characters, so it is not masked in this log; "+
			"use a longer value to have it masked", k, secrets.MinMaskLen))
	}
	var secretEnv []string
	for _, v := range vars {
		secretEnv = append(secretEnv, v.Key+"="+v.Value)
	}
	jobEnv := r.jobEnv(run, append(append([]spec.EnvVar{}, s.Env...), env.Env...), secretEnv)
	gitDir := r.repos.Path(run.Repo)
	return &plan{
		stages: []spec.Stage{{Name: "deploy", Run: env.Run, Timeout: spec.DefaultTimeout}},
		env:    jobEnv,
		box:    deployBox(s, env),
		mask:   mask,
		notes:  notes,
		fill: func(ctx context.Context, work string) error {
			return gitReader{gitDir: gitDir}.checkout(ctx, run.Artifact, work, work+".index")
		},
		succeed: func(ctx context.Context, work string) error {
			ref := refs.DeployedRef(run.Environment, run.Pipeline)
			old, err := refs.Resolve(gitDir, ref)
			if err != nil {
				return err
			}
			if err := r.updater.Apply(ctx, gitDir, refs.Update{Ref: ref, Old: old, New: target}); err != nil {
				return fmt.Errorf("move %s: %w", ref, err)
			}
			return nil
		},
	}, nil
}

// deploySecrets decrypts .refline/secrets/ENV.age at the tip of the deploy
// branch (so a rollback never brings back a revoked credential). The
// plaintext lives only in memory and in the deploy process's environment.
//
// The server can decrypt every repository's files, so it uses one only
// when its binding line names this repository and environment: a file
// copied from elsewhere, or written before files were bound, fails the
// deploy. The push check refuses both already; this catches files that
// reached the branch without it (pushed before the upgrade, or moved in by
// hand on the server).
func (r *stager) deploySecrets(ctx context.Context, repo, env string, log *logrus.Entry) ([]secrets.Var, error) {
	branch := r.repos.DeployBranch(ctx, repo)
	git := gitReader{gitDir: r.repos.Path(repo)}
	path := SecretsDir + env + ".age"
	data, ok, err := git.file(ctx, "refs/heads/"+branch, path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if !ok {
		return nil, nil
	}
	if r.ageIdentities == nil {
		return nil, fmt.Errorf("%s: the server has no age identity", path)
	}
	plain, err := secrets.Decrypt(data, r.ageIdentities()...)
	if err != nil {
		return nil, fmt.Errorf("%s (at %s): %w", path, branch, err)
	}
	want := secrets.Binding{Repo: repo, Env: env}
	if err := want.Check(plain); err != nil {
		clear(plain) // not used: drop it now rather than when collected
		var mismatch *secrets.MismatchError
		if errors.As(err, &mismatch) {
			log.WithFields(logrus.Fields{"file": path, "bound_to": mismatch.Got.String()}).
				Warn("deploy refused: the secrets file is bound to another repository or environment")
			return nil, fmt.Errorf("deploy refused: %s (at %s): %w: the server uses a secrets file only for the repository "+
				"and environment it was written for; write %s's own with refline secrets set %s KEY=VALUE and push",
				path, branch, err, want, env)
		}
		log.WithField("file", path).Warn("deploy refused: the secrets file is not bound to a repository and environment")
		return nil, fmt.Errorf("deploy refused: %s (at %s): %w: run refline secrets reencrypt %s (or --all) in a clone "+
			"and push, which adds the line %q", path, branch, err, env, want.Line())
	}
	vars, err := secrets.ParseDotenv(plain)
	if err != nil {
		return nil, fmt.Errorf("%s (at %s): %w", path, branch, err)
	}
	return vars, nil
}
