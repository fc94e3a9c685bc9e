package pipelines

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/refline/refline/refs"
)

// The push journal closes the gap between git moving a branch and the
// post-receive hook queueing its runs: if the server dies in between (git's
// receive-pack outlives it and updates the refs anyway), the next start
// finds the journal entry, sees which refs did move, and queues their runs.
// An entry is written at the end of pre-receive, once the push is accepted,
// and removed when post-receive has queued its runs.

type journalEntry struct {
	ID      string    `json:"id,omitempty"`
	Repo    string    `json:"repo"`
	GitDir  string    `json:"git_dir"`
	User    string    `json:"user"`
	Options []string  `json:"options,omitempty"`
	Updates []RefMove `json:"updates"`
	Time    time.Time `json:"time"`
}

// RefMove is one ref update of a push.
type RefMove struct {
	Ref, Old, New string
}

// pushJournal holds the journal's entries, one file per push in dir
// (DATA/pushes).
type pushJournal struct {
	dir string
	log *logrus.Entry
}

// JournalPush records, durably, a push that pre-receive has accepted, under
// id (the push's session).
func (r *Runner) JournalPush(id, repo, gitDir, user string, options []string, updates []RefMove) error {
	return r.journal.add(id, repo, gitDir, user, options, updates)
}

// ForgetPush removes a push's journal entry once its runs are queued.
func (r *Runner) ForgetPush(id string) { r.journal.forget(id) }

func (r *pushJournal) path(id string) string {
	return filepath.Join(r.dir, strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' {
			return c
		}
		return '_'
	}, id)+".json")
}

// add records, durably, a push that pre-receive has accepted, under id.
// Only branch updates that can start runs count.
func (r *pushJournal) add(id, repo, gitDir, user string, options []string, updates []RefMove) error {
	var moves []RefMove
	for _, u := range updates {
		if strings.HasPrefix(u.Ref, "refs/heads/") && strings.Trim(u.New, "0") != "" {
			moves = append(moves, u)
		}
	}
	if len(moves) == 0 {
		return nil
	}
	for _, o := range options {
		if o == SkipOption {
			return nil
		}
	}
	b, err := json.Marshal(journalEntry{ID: id, Repo: repo, GitDir: gitDir, User: user, Options: options, Updates: moves, Time: time.Now().UTC()})
	if err != nil {
		return err
	}
	path := r.path(id)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("push journal: %w", err)
	}
	return writeFileAtomic(path, b)
}

// forget removes a push's journal entry.
func (r *pushJournal) forget(id string) {
	if err := os.Remove(r.path(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		r.log.WithError(err).Warn("remove push journal entry")
	}
}

// pushTrigger starts the runs of a push.
type pushTrigger interface {
	OnPush(ctx context.Context, p Push) ([]*Run, error)
}

// replay queues the runs of pushes that landed while no server was there
// to see their post-receive. A ref that did not move to the journaled value
// (the push failed, or was refused after pre-receive) starts nothing.
func (r *pushJournal) replay(ctx context.Context, repos Repos, runner pushTrigger) {
	dir := r.dir
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		path := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(path)
		var je journalEntry
		if err == nil {
			err = json.Unmarshal(b, &je)
		}
		if err != nil {
			r.log.WithError(err).WithField("file", path).Warn("unreadable push journal entry; removing it")
			os.Remove(path)
			continue
		}
		for _, u := range je.Updates {
			cur, err := refs.Resolve(je.GitDir, u.Ref)
			if err != nil || cur.String() != u.New {
				continue
			}
			runs, err := runner.OnPush(ctx, Push{Repo: je.Repo, GitDir: je.GitDir, Ref: u.Ref, Old: u.Old, New: u.New,
				DeployBranch: repos.DeployBranch(ctx, je.Repo), User: je.User, Options: je.Options, ID: je.ID, recovered: true})
			if err != nil {
				r.log.WithError(err).WithField("repo", je.Repo).Warn("replay push journal")
			}
			for _, run := range runs {
				r.log.WithField("run", run.ID()).Info("queued the run of a push whose post-receive the previous instance missed")
			}
		}
		os.Remove(path)
	}
}

// hasBuild reports whether a build of pipeline at commit is already on
// record, so that replaying a push does not run it twice.
func (r *Runner) hasBuild(repo, pipeline, commit string) bool {
	runs, err := r.Runs(repo, pipeline, 20)
	if err != nil {
		return false
	}
	for _, run := range runs {
		if run.Kind == Build && run.Commit == commit {
			return true
		}
	}
	return false
}
