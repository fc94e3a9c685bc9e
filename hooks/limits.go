package hooks

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/refline/refline/pipelines"
)

// QueueRoom is the subset of the runner the queue limit asks.
type QueueRoom interface {
	QueueRoom(repo string) error
}

// QueueLimit refuses a push that could start runs while its repository's
// queue is full, before anything of it is stored. A push with -o ci.skip
// starts nothing and is let through.
type QueueLimit struct {
	Runner QueueRoom
}

// Check implements Checker.
func (q QueueLimit) Check(ctx context.Context, ev *Event, out io.Writer) error {
	if ev.Hook != "pre-receive" || ev.Session.Source != SourcePush || hasOption(ev.PushOptions, pipelines.SkipOption) {
		return nil
	}
	for _, u := range ev.Updates {
		if strings.HasPrefix(u.Ref, "refs/heads/") && !u.Deletes() {
			if err := q.Runner.QueueRoom(ev.Repo); err != nil {
				return fmt.Errorf("%w; nothing of this push was stored", err)
			}
			return nil
		}
	}
	return nil
}
