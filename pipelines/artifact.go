package pipelines

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/sirupsen/logrus"

	"github.com/refline/refline/pipelines/spec"
	"github.com/refline/refline/refs"
)

func userOrNobody(u string) string {
	if u == "" {
		return "the run's user"
	}
	return u
}

// recordArtifact turns the files under artifact.paths into a signed commit
// on refs/artifacts/PIPELINE (SPEC §6), appended by compare-and-swap.
func (r *recorder) recordArtifact(ctx context.Context, run *Run, inputs []InputArtifact, s *spec.Spec, work string) (string, error) {
	gitDir := r.repos.Path(run.Repo)
	var msg strings.Builder
	fmt.Fprintf(&msg, "%s #%d: artifact of %s %q\n\n", run.Pipeline, run.Number, short(run.Commit), run.Subject)
	fmt.Fprintf(&msg, "Source-Commit: %s\nPipeline: %s\nRun: %d\n", run.Commit, run.Pipeline, run.Number)
	for _, in := range inputs {
		name := in.Pipeline
		if in.Repo != "" {
			name = in.Repo + ":" + in.Pipeline
		}
		fmt.Fprintf(&msg, "Input: %s@%s\n", name, in.Artifact)
	}
	h, err := r.updater.Append(ctx, gitDir, refs.ArtifactRef(run.Pipeline), func(parent plumbing.Hash) (plumbing.Hash, error) {
		repo, err := git.PlainOpen(gitDir)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		tree, err := refs.WriteTreeMax(repo, work, s.Artifact.Paths, r.maxArtifactSize)
		var tl *refs.TooLargeError
		if errors.As(err, &tl) {
			return plumbing.ZeroHash, fmt.Errorf("the artifact holds %s, more than the limit of %s (refline serve --max-artifact-size)", spec.FormatSize(tl.Size), spec.FormatSize(tl.Limit))
		}
		if err != nil {
			return plumbing.ZeroHash, err
		}
		committer := r.committer
		committer.When = time.Now()
		return refs.WriteSignedCommit(repo, refs.CommitSpec{Tree: tree, Parent: parent, Message: msg.String(), Committer: committer}, r.signer)
	})
	if err != nil {
		return "", err
	}
	return h.String(), nil
}

// afterBuild acts on a new artifact: auto-deploys to the environments
// without `after:`, and starts the pipelines whose `on.artifacts` names this
// one, in this repository or any other.
//
// An auto-deploy acts for the user whose push built the artifact (run.User),
// never for the server: a push gains no right by editing a pipeline file.
// A triggered run acts for its own repository's pusher, never for this
// run's user, and only if that pusher may read this repository.
func (r *Runner) afterBuild(ctx context.Context, run *Run, log *logrus.Entry) (queued []*Run) {
	own, err := r.stages.specAt(ctx, run.Repo, run.Pipeline, run.Commit)
	if err == nil {
		for _, env := range own.Environments {
			if env.Auto && env.After == "" {
				if d := r.deployer.autoDeploy(ctx, run.Repo, run.Pipeline, env.Name, run.Artifact, run.User, "auto-deploy of "+run.ID(), log); d != nil {
					queued = append(queued, d)
				}
			}
		}
	}
	repos, err := r.cfg.Repos.List()
	if err != nil {
		log.WithError(err).Warn("list repositories for artifact triggers")
		return queued
	}
	for _, repo := range repos {
		branch := r.cfg.Repos.DeployBranch(ctx, repo)
		tip, err := refs.Resolve(r.cfg.Repos.Path(repo), "refs/heads/"+branch)
		if err != nil || tip.IsZero() {
			continue
		}
		files, err := gitReader{gitDir: r.cfg.Repos.Path(repo)}.pipelineFiles(ctx, tip.String())
		if err != nil || len(files) == 0 {
			continue
		}
		specs, _ := spec.ParseAll(files)
		for _, s := range specs {
			if !triggeredBy(s, repo, run.Repo, run.Pipeline) {
				continue
			}
			user, ok := r.rights.pusherOf(repo, tip.String())
			if !ok && repo == run.Repo && run.Commit == tip.String() {
				user, ok = run.User, run.User != "" // this very build was of the tip
			}
			tlog := log.WithFields(logrus.Fields{"downstream": repo + ":" + s.Name, "user": user})
			if !ok {
				tlog.Info("artifact trigger skipped: no record of who pushed the tip of the deploy branch; the next push there triggers it")
				continue
			}
			if repo != run.Repo && !r.rights.canRead(run.Repo, user) {
				// Skipped without a run in the downstream repository:
				// its runs would tell its readers when this repository
				// builds.
				tlog.Info("artifact trigger skipped: the downstream pusher has no read access to the upstream repository")
				continue
			}
			if r.queuedAt(repo, s.Name, tip.String()) {
				continue // a build of that commit is queued and will take this artifact
			}
			trig := fmt.Sprintf("artifact %s:%s@%s", run.Repo, run.Pipeline, short(run.Artifact))
			if repo == run.Repo {
				trig = fmt.Sprintf("artifact %s@%s", run.Pipeline, short(run.Artifact))
			}
			b, err := r.Enqueue(ctx, Request{Repo: repo, Pipeline: s.Name, Kind: Build, Commit: tip.String(),
				Branch: branch, Trigger: trig, User: user, WaitFor: localInputs(s, repo)})
			var full *QueueFullError
			if errors.As(err, &full) {
				// Nothing is stored: the next push to its deploy
				// branch, or the next artifact of this pipeline,
				// triggers it again.
				tlog.WithField("trigger", trig).Warn("artifact trigger not queued: " + full.Error())
				continue
			}
			if err != nil {
				log.WithError(err).Warn("artifact trigger")
				continue
			}
			queued = append(queued, b)
		}
	}
	return queued
}

// queuedAt reports whether a build of pipeline at commit is queued and has
// not started yet.
func (r *Runner) queuedAt(repo, pipeline, commit string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, lr := range r.queue {
		if lr.run.Repo == repo && lr.run.Pipeline == pipeline && lr.run.Kind == Build && lr.run.Commit == commit {
			return true
		}
	}
	return false
}

// triggeredBy reports whether spec (of repository repo) runs when pipeline
// upPipeline of repository upRepo records an artifact.
func triggeredBy(s *spec.Spec, repo, upRepo, upPipeline string) bool {
	for _, a := range s.On.Artifacts {
		if a.Pipeline != upPipeline {
			continue
		}
		if (a.Repo == "" && repo == upRepo) || a.Repo == upRepo {
			return true
		}
	}
	return false
}

// mkdirNoFollow creates rel and its parents inside root, refusing to pass
// through any symlink: the checkout may hold committed symlinks (to /tmp/x,
// to ../..), and the server must never write outside the workspace through
// them.
func mkdirNoFollow(root, rel string) error {
	rt, err := os.OpenRoot(root)
	if err != nil {
		return err
	}
	defer rt.Close()
	cur := ""
	for _, seg := range strings.Split(filepath.Clean(rel), string(filepath.Separator)) {
		if seg == "" || seg == "." {
			continue
		}
		cur = filepath.Join(cur, seg)
		fi, err := rt.Lstat(cur)
		switch {
		case err == nil && fi.Mode()&os.ModeSymlink != 0:
			return fmt.Errorf("%s is a symlink in the checkout; an input is never laid through a symlink (use a path that is a plain directory)", filepath.ToSlash(cur))
		case err == nil && !fi.IsDir():
			return fmt.Errorf("%s is a file in the checkout, not a directory", filepath.ToSlash(cur))
		case err == nil:
		case os.IsNotExist(err):
			if err := rt.Mkdir(cur, 0o755); err != nil {
				return err
			}
		default:
			return err
		}
	}
	return nil
}
