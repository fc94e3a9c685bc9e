package hooks

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/refline/refline/pipelines"
	"github.com/refline/refline/pipelines/spec"
)

// Journal is the part of the runner that records a push before git moves
// its refs.
type Journal interface {
	JournalPush(id, repo, gitDir, user string, options []string, updates []pipelines.RefMove) error
}

// PushJournal records an accepted push durably before git moves any ref,
// so that its runs start even if the server dies before post-receive. It
// must be the last Checker: it runs only when every other one agreed.
type PushJournal struct {
	Runner Journal
}

// Check implements Checker.
func (j PushJournal) Check(ctx context.Context, ev *Event, out io.Writer) error {
	if ev.Hook != "pre-receive" || ev.Session.Source != SourcePush {
		return nil
	}
	moves := make([]pipelines.RefMove, len(ev.Updates))
	for i, u := range ev.Updates {
		moves[i] = pipelines.RefMove{Ref: u.Ref, Old: u.Old, New: u.New}
	}
	if err := j.Runner.JournalPush(ev.Session.ID, ev.Repo, ev.GitDir, ev.Session.User, ev.PushOptions, moves); err != nil {
		return fmt.Errorf("the server cannot record this push (%v); nothing was changed, try again", err)
	}
	return nil
}

// BranchInfo tells the deploy branch of a repository.
type BranchInfo interface {
	DeployBranch(ctx context.Context, name string) string
}

// FollowOption is the push option that keeps the push open and streams
// the runs it started.
const FollowOption = "follow"

// PipelineChecker rejects a push whose pipeline files are invalid, with
// every problem as "file:line: message". It reads the pushed objects from
// git's quarantine, so nothing of a rejected push is ever stored.
type PipelineChecker struct{}

// Check implements Checker.
func (PipelineChecker) Check(ctx context.Context, ev *Event, out io.Writer) error {
	if ev.Hook != "pre-receive" {
		return nil
	}
	var commits []string
	for _, u := range ev.Updates {
		if !u.Deletes() && strings.HasPrefix(u.Ref, "refs/heads/") {
			commits = append(commits, u.New)
		}
	}
	dirs, err := pathObjects(ctx, ev.GitDir, ev.Quarantine, commits, spec.Dir)
	if err != nil {
		return fmt.Errorf("read the pushed pipeline files: %w", err)
	}
	var problems []string
	validated := map[string]bool{}
	for _, c := range commits {
		if dirs != nil {
			// The same pipeline files are valid or not wherever they are.
			if dirs[c] == "" || validated[dirs[c]] {
				continue
			}
			validated[dirs[c]] = true
		}
		if err := pipelines.Validate(ctx, ev.GitDir, ev.Quarantine, c); err != nil {
			problems = append(problems, strings.Split(err.Error(), "\n")...)
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s\nfix the pipeline files and push again; nothing of this push was stored", strings.Join(problems, "\n"))
	}
	return nil
}

// Runner is the part of the pipeline runner that a received push drives:
// it starts the runs, forgets the journaled push, and follows the runs for
// a pusher who asked to.
type Runner interface {
	OnPush(ctx context.Context, p pipelines.Push) ([]*pipelines.Run, error)
	ForgetPush(id string)
	Follow(ctx context.Context, repo, pipeline string, n int, w io.Writer) (*pipelines.Run, error)
	SetOff(repo, pipeline string, n int) []*pipelines.Run
}

// pushEmitter reports a ref update to webhooks (pipelines.Runner does);
// OnPush reports the updates it is given itself.
type pushEmitter interface {
	EmitPush(ctx context.Context, p pipelines.Push)
}

// PipelineTrigger starts the pipelines a push triggers and tells the pusher
// (SPEC §7).
type PipelineTrigger struct {
	Runner   Runner
	Branches BranchInfo
	// LogsHint formats the command that follows a run's log, e.g.
	// "ssh -p 2222 git@HOST logs app web 13 -f".
	LogsHint func(repo, pipeline string, n int) string
	Logger   *logrus.Entry
}

// React implements Reactor.
func (t PipelineTrigger) React(ctx context.Context, ev *Event, out io.Writer) {
	if ev.Hook != "post-receive" {
		return
	}
	received := time.Now()
	// The refs have moved: queueing their runs must finish even if the
	// pusher hangs up now.
	qctx := context.WithoutCancel(ctx)
	deploy := t.Branches.DeployBranch(qctx, ev.Repo)
	var heads []string
	for _, u := range ev.Updates {
		if strings.HasPrefix(u.Ref, "refs/heads/") {
			heads = append(heads, u.New)
		}
	}
	// Only commits with pipeline files can start anything.
	dirs, err := pathObjects(qctx, ev.GitDir, nil, heads, spec.Dir)
	if err != nil {
		t.Logger.WithError(err).WithField("repo", ev.Repo).Warn("read pipeline files of a push")
		dirs = nil
	}
	var started []*pipelines.Run
	user := ev.Session.User
	var pushID string
	if ev.Session.Source == SourcePush {
		pushID = ev.Session.ID
	}
	if ev.Session.Source == SourceLocal {
		// A push to a path on the server machine: its runs, and the
		// deploys they start, act for the operator there.
		user = pipelines.LocalOperator
	}
	for _, u := range ev.Updates {
		p := pipelines.Push{
			Repo: ev.Repo, GitDir: ev.GitDir, Ref: u.Ref, Old: u.Old, New: u.New,
			DeployBranch: deploy, User: user, Options: ev.PushOptions, Received: received, ID: pushID,
		}
		if dirs != nil && dirs[u.New] == "" {
			// No run to start, but webhooks still hear of the update.
			if e, ok := t.Runner.(pushEmitter); ok {
				e.EmitPush(qctx, p)
			}
			continue
		}
		runs, err := t.Runner.OnPush(qctx, p)
		if err != nil {
			fmt.Fprintf(out, "refline: warning: %v\n", err)
			t.Logger.WithError(err).WithField("repo", ev.Repo).Warn("trigger pipelines")
		}
		for _, r := range runs {
			fmt.Fprintf(out, "refline: %s #%d started for %s — %s\n", r.Pipeline, r.Number, short(r.Commit), t.LogsHint(r.Repo, r.Pipeline, r.Number))
		}
		started = append(started, runs...)
	}
	if ev.Session.Source == SourcePush {
		t.Runner.ForgetPush(ev.Session.ID)
	}
	if !hasOption(ev.PushOptions, FollowOption) {
		return
	}
	t.follow(ctx, ev.Repo, started, out)
}

// maxFollowed bounds how many runs one push follows, should pipelines
// trigger each other in a loop.
const maxFollowed = 100

// follow streams the runs a push started, and then what each of them set
// off in the same repository (the auto-deploy of a new artifact, the
// promotion after it, a build its artifact triggered), to their end: when
// the push returns, everything it set in motion has ended, so the next
// command sees its outcome.
func (t PipelineTrigger) follow(ctx context.Context, repo string, started []*pipelines.Run, out io.Writer) {
	seen := map[string]bool{}
	queue := started
	for len(queue) > 0 && len(seen) < maxFollowed {
		r := queue[0]
		queue = queue[1:]
		if r.Repo != repo || seen[r.ID()] {
			continue // another repository's runs are for its own users to follow
		}
		seen[r.ID()] = true
		what := ""
		if r.Kind == pipelines.Deploy {
			what = fmt.Sprintf(" (deploy of %s to %s)", short(r.Artifact), r.Environment)
		}
		fmt.Fprintf(out, "refline: following %s #%d%s\n", r.Pipeline, r.Number, what)
		final, err := t.Runner.Follow(ctx, r.Repo, r.Pipeline, r.Number, out)
		if err != nil {
			fmt.Fprintf(out, "refline: stopped following %s #%d: %v\n", r.Pipeline, r.Number, err)
			return
		}
		fmt.Fprintf(out, "refline: %s\n", ResultLine(final))
		queue = append(queue, t.Runner.SetOff(r.Repo, r.Pipeline, r.Number)...)
	}
}

// ResultLine is a run's one-line outcome: "web #13 passed in 2.1s",
// "web #13 failed at test (exit status 1) in 0.4s".
func ResultLine(r *pipelines.Run) string {
	d := r.Duration().Round(100 * time.Millisecond)
	head := fmt.Sprintf("%s #%d", r.Pipeline, r.Number)
	switch {
	case r.State == pipelines.Passed:
		return fmt.Sprintf("%s passed in %s", head, d)
	case r.FailedStage() != "":
		why := ""
		for _, s := range r.Stages {
			if s.Name == r.FailedStage() && s.Error != "" {
				why = " (" + s.Error + ")"
			}
		}
		return fmt.Sprintf("%s %s at %s%s in %s", head, r.State, r.FailedStage(), why, d)
	case r.Error != "":
		return fmt.Sprintf("%s %s: %s", head, r.State, r.Error)
	}
	return fmt.Sprintf("%s %s in %s", head, r.State, d)
}

func hasOption(opts []string, o string) bool {
	for _, v := range opts {
		if v == o {
			return true
		}
	}
	return false
}

func short(s string) string {
	if len(s) > 7 {
		return s[:7]
	}
	return s
}
