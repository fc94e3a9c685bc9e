package pipelines

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/refline/refline/webhook"
)

// Emitter queues the events of runs and pushes for webhooks (SPEC §10). It
// returns once they are on disk; delivering them is not the runner's
// concern, so a slow receiver never slows a run.
type Emitter interface {
	Emit(ctx context.Context, ev webhook.Event) error
}

// emit reports an event; a failure to queue it is logged, never fatal to
// the run.
func (r *Runner) emit(ctx context.Context, ev webhook.Event) {
	if r.cfg.Events == nil {
		return
	}
	if err := r.cfg.Events.Emit(ctx, ev); err != nil {
		r.log.WithError(err).WithField("event", ev.Type).Warn("queue a webhook event")
	}
}

// runEvent is the thin payload of a run: ids, state, commit, artifact,
// environment, user, and how to read its log. Never a log line.
func (r *Runner) runEvent(typ string, run *Run) webhook.Event {
	f := map[string]any{
		"pipeline": run.Pipeline, "run": run.Number, "kind": string(run.Kind), "state": string(run.State),
		"commit": run.Commit, "trigger": run.Trigger,
	}
	for k, v := range map[string]string{"branch": run.Branch, "user": run.User, "environment": run.Environment, "artifact": run.Artifact, "error": run.Error} {
		if v != "" {
			f[k] = v
		}
	}
	if r.cfg.LogsHint != nil {
		f["logs"] = r.cfg.LogsHint(run.Repo, run.Pipeline, run.Number)
	}
	if run.Kind == Deploy {
		f["rollback"] = strings.HasPrefix(run.Trigger, "rollback")
	}
	return webhook.Event{Type: typ, Repo: run.Repo, Fields: f, Key: eventKey(run, typ)}
}

// eventKey names one event of one run for good, so that a report made again
// after a restart keeps its delivery id: the queue time tells apart runs
// of a repository deleted and created again under the same numbers.
func eventKey(run *Run, typ string) string {
	return fmt.Sprintf("%s\x00%s\x00%d\x00%s\x00%s", run.Repo, run.Pipeline, run.Number, run.Queued.UTC().Format(time.RFC3339Nano), typ)
}

// emitStarted and emitFinished report a run's start and end;
// a finished build with an artifact also reports artifact.recorded.
func (r *Runner) emitStarted(run *Run) {
	typ := webhook.RunStarted
	if run.Kind == Deploy {
		typ = webhook.DeployStarted
	}
	r.emit(context.Background(), r.runEvent(typ, run))
}

func (r *Runner) emitFinished(run *Run) {
	typ := webhook.RunFinished
	if run.Kind == Deploy {
		typ = webhook.DeployFinished
	}
	r.emit(context.Background(), r.runEvent(typ, run))
	if run.Kind == Build && run.State == Passed && run.Artifact != "" {
		r.emit(context.Background(), webhook.Event{Type: webhook.ArtifactRecorded, Repo: run.Repo, Fields: map[string]any{
			"pipeline": run.Pipeline, "run": run.Number, "commit": run.Commit, "artifact": run.Artifact,
		}, Key: eventKey(run, webhook.ArtifactRecorded)})
	}
}

// EmitPush reports one ref update of a push (OnPush does for the updates
// it is given; the post-receive hook for those it need not give it).
func (r *Runner) EmitPush(ctx context.Context, p Push) {
	f := map[string]any{"ref": p.Ref, "before": p.Old, "after": p.New}
	if p.User != "" {
		f["user"] = p.User
	}
	r.emit(ctx, webhook.Event{Type: webhook.Push, Repo: p.Repo, Fields: f, Key: pushKey(p)})
}

// pushKey names one ref update of one push for good. Old and new are in it
// because one SSH connection may carry more than one push.
func pushKey(p Push) string {
	if p.ID == "" {
		return ""
	}
	return strings.Join([]string{webhook.Push, p.Repo, p.ID, p.Ref, p.Old, p.New}, "\x00")
}
