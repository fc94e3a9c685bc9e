package pipelines

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/refline/refline/refs"
)

// recorder writes what the repository keeps of runs: a finished run's
// signed record on refs/runs/PIPELINE, a build's artifact on
// refs/artifacts/PIPELINE (recordArtifact, artifact.go), and tells after a
// crash whether a run had in fact done its work.
type recorder struct {
	repos           Repos
	store           *runStore
	updater         refs.Updater
	signer          *refs.Signer
	committer       object.Signature
	maxArtifactSize int64
	// runs counts finished runs by kind and state.
	runs *prometheus.CounterVec
	// ended reports a finished run (its webhook events). It is called
	// before the run is marked recorded, so that a crash before the mark
	// reports it again at the next start: at least once, never lost.
	ended func(*Run)
}

// completed reports whether a run found running after a crash had in fact
// done all its work: every stage passed and then the artifact reached its
// chain (a build) or refs/deployed moved to the target (a deploy).
func (r *recorder) completed(run *Run) bool {
	if len(run.Stages) == 0 {
		return false
	}
	for _, st := range run.Stages {
		if st.State != Passed {
			return false
		}
	}
	g, err := openRepo(r.repos, run.Repo)
	if err != nil {
		return false
	}
	if run.Kind == Deploy {
		h, err := refs.Resolve(r.repos.Path(run.Repo), refs.DeployedRef(run.Environment, run.Pipeline))
		return err == nil && h.String() == run.Artifact
	}
	chain, err := refs.Chain(g, refs.ArtifactRef(run.Pipeline), 50)
	if err != nil {
		return false
	}
	for _, c := range chain {
		if refs.Trailer(c.Message, "Run") == strconv.Itoa(run.Number) && refs.Trailer(c.Message, "Source-Commit") == run.Commit {
			run.Artifact = c.Hash.String()
			return true
		}
	}
	return false
}

// finish records a finished run on refs/runs/PIPELINE and stores its final
// state. A failure to record is logged and kept in the run's state; the run
// still counts as finished.
func (r *recorder) finish(ctx context.Context, run *Run, log *logrus.Entry) {
	if err := r.store.save(run); err != nil {
		log.WithError(err).Error("save final run state")
	}
	rec, err := r.record(ctx, run)
	if err != nil {
		log.WithError(err).Error("record run")
	} else {
		run.Record = rec.String()
	}
	if r.ended != nil {
		r.ended(run)
	}
	if err == nil {
		r.store.markRecorded(run, run.Record)
	}
	r.runs.WithLabelValues(string(run.Kind), string(run.State)).Inc()
}

// record appends the run's record commit (run.json and its logs, signed)
// to refs/runs/PIPELINE.
func (r *recorder) record(ctx context.Context, run *Run) (plumbing.Hash, error) {
	gitDir := r.repos.Path(run.Repo)
	if !r.repos.Exists(run.Repo) {
		return plumbing.ZeroHash, fmt.Errorf("repository %s is gone", run.Repo)
	}
	dir := r.store.dir(run.Repo, run.Pipeline, run.Number)
	paths := []string{"run.json"}
	if ents, _ := os.ReadDir(filepath.Join(dir, "logs")); len(ents) > 0 {
		paths = append(paths, "logs/")
	}
	return r.updater.Append(ctx, gitDir, refs.RunsRef(run.Pipeline), func(parent plumbing.Hash) (plumbing.Hash, error) {
		repo, err := git.PlainOpen(gitDir)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		tree, err := refs.WriteTree(repo, dir, paths)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		committer := r.committer
		committer.When = time.Now()
		msg := fmt.Sprintf("%s\n\nRepo: %s\nPipeline: %s\nRun: %d\nKind: %s\nState: %s\nCommit: %s\n",
			run.RecordSubject(), run.Repo, run.Pipeline, run.Number, run.Kind, run.State, run.Commit)
		if run.Environment != "" {
			msg += "Environment: " + run.Environment + "\n"
		}
		if run.Artifact != "" {
			msg += "Artifact: " + run.Artifact + "\n"
		}
		return refs.WriteSignedCommit(repo, refs.CommitSpec{Tree: tree, Parent: parent, Message: msg, Committer: committer}, r.signer)
	})
}
