package hooks

import (
	"context"
	"fmt"
	"io"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/sirupsen/logrus"

	"github.com/refline/refline/pipelines"
	"github.com/refline/refline/refs"
)

// Deployer is the subset of the pipeline runner that deploy refs drive.
type Deployer interface {
	CheckDeployTarget(ctx context.Context, repo, pipeline, env string, target plumbing.Hash) (*object.Commit, error)
	Reconcile(ctx context.Context, repo, pipeline, env, user, trigger string) (*pipelines.Run, error)
}

// DeployGate refuses to point a deploy ref at anything but a genuine,
// eligible artifact of its pipeline, whoever moves it: a push (pre-receive)
// or `git update-ref` by hand (the prepared phase of the transaction). The
// pushed objects are not consulted: a genuine artifact is already in the
// repository, so a commit that exists only in the push is refused.
type DeployGate struct {
	Deployer Deployer
}

// Check implements Checker.
func (g DeployGate) Check(ctx context.Context, ev *Event, out io.Writer) error {
	for _, u := range ev.Updates {
		env, pipeline, ok := refs.ParseDeployRef(u.Ref)
		if !ok || u.Deletes() || u.New == u.Old {
			continue
		}
		if _, err := g.Deployer.CheckDeployTarget(ctx, ev.Repo, pipeline, env, plumbing.NewHash(u.New)); err != nil {
			return fmt.Errorf("%s cannot point at %s: %v", u.Ref, short(u.New), err)
		}
	}
	return nil
}

// DeployTrigger starts a deploy for every deploy ref a push or a
// transaction by hand moved, and tells whoever moved it.
type DeployTrigger struct {
	Deployer Deployer
	LogsHint func(repo, pipeline string, n int) string
	Logger   *logrus.Entry
}

// React implements Reactor.
func (t DeployTrigger) React(ctx context.Context, ev *Event, out io.Writer) {
	ctx = context.WithoutCancel(ctx)
	for _, u := range ev.Updates {
		env, pipeline, ok := refs.ParseDeployRef(u.Ref)
		if !ok || u.Deletes() {
			continue
		}
		user := ev.Session.User
		if user == "" {
			user = pipelines.LocalOperator
		}
		run, err := t.Deployer.Reconcile(ctx, ev.Repo, pipeline, env, user, fmt.Sprintf("%s moved by %s (%s)", u.Ref, user, ev.Session.Source))
		if err != nil {
			fmt.Fprintf(out, "refline: warning: deploy %s to %s: %v\n", pipeline, env, err)
			t.Logger.WithError(err).WithField("repo", ev.Repo).Warn("deploy trigger")
			continue
		}
		if run != nil {
			fmt.Fprintf(out, "refline: %s #%d deploying %s to %s — %s\n", run.Pipeline, run.Number, short(run.Artifact), env, t.LogsHint(run.Repo, run.Pipeline, run.Number))
		}
	}
}
