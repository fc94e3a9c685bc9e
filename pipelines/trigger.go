package pipelines

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/refline/refline/pipelines/spec"
)

// Push is one branch update of a push, as the post-receive hook saw it.
type Push struct {
	Repo         string
	GitDir       string
	Ref          string // refs/heads/...
	Old, New     string // hex ids; Old is all zeros for a new branch
	DeployBranch string
	User         string
	Options      []string // git push -o values
	Received     time.Time
	// ID names the push for good (its SSH session's id, also kept in the
	// push journal), so that a push replayed after a crash reports the
	// same webhook delivery ids; "" for a push with no session.
	ID string
	// recovered marks a push replayed from the journal: pipelines that
	// already have a build of the commit are skipped.
	recovered bool
}

// admitted reports whether the queue limit let this push in at
// pre-receive (hooks QueueLimit checks every push over SSH): its runs
// queue even if that fills the queue past the limit. A push replayed from
// the journal was admitted before the crash.
func (p Push) admitted() bool { return p.ID != "" || p.recovered }

// SkipOption is the push option that starts no pipeline.
const SkipOption = "ci.skip"

// HasOption reports whether the push carries option o.
func (p Push) HasOption(o string) bool {
	for _, v := range p.Options {
		if v == o {
			return true
		}
	}
	return false
}

// Validate checks every pipeline file at commit, reading objects through
// env (git's quarantine variables during pre-receive). It returns nil, or
// an Errors listing every problem as "file:line: message".
func Validate(ctx context.Context, gitDir string, env []string, commit string) error {
	files, err := gitReader{gitDir: gitDir, env: env}.pipelineFiles(ctx, commit)
	if err != nil {
		return fmt.Errorf("read pipeline files: %w", err)
	}
	if len(files) == 0 {
		return nil
	}
	_, err = spec.ParseAll(files)
	return err
}

// OnPush queues a run of every pipeline that the push triggers: those whose
// `on.push` matches the branch and, with `paths:`, a changed path. The
// pipeline files are read from the pushed commit. `-o ci.skip` starts none.
func (r *Runner) OnPush(ctx context.Context, p Push) ([]*Run, error) {
	// Before any run is queued, so that receivers see the push first. A
	// push replayed from the journal may be reported twice: at least once.
	r.EmitPush(ctx, p)
	branch, ok := strings.CutPrefix(p.Ref, "refs/heads/")
	if !ok || strings.Trim(p.New, "0") == "" {
		return nil, nil
	}
	if branch == p.DeployBranch {
		// Runs that other pipelines' artifacts trigger act for this user.
		if err := r.rights.notePusher(p.Repo, p.New, p.User); err != nil {
			r.log.WithError(err).WithField("repo", p.Repo).Warn("record the pusher of the deploy branch")
		}
	}
	if p.HasOption(SkipOption) {
		return nil, nil
	}
	git := gitReader{gitDir: p.GitDir}
	subject, files, err := git.read(ctx, p.New)
	if err != nil || len(files) == 0 {
		return nil, err
	}
	specs, err := spec.ParseAll(files)
	if err != nil {
		// Only pushes to other branches can bring invalid files (the
		// deploy branch is validated at push); they start nothing.
		return nil, fmt.Errorf("pipeline files at %s: %w", short(p.New), err)
	}
	var changed []string
	changedRead := false
	var runs []*Run
	for _, s := range specs {
		if !s.On.Push || !s.On.MatchesBranch(branch, p.DeployBranch) {
			continue
		}
		if p.recovered && r.hasBuild(p.Repo, s.Name, p.New) {
			continue
		}
		if len(s.On.Paths) > 0 {
			if !changedRead {
				if changed, err = git.changedPaths(ctx, p.Old, p.New); err != nil {
					return runs, err
				}
				changedRead = true
			}
			if !anyMatch(s.On, changed) {
				continue
			}
		}
		run, err := r.Enqueue(ctx, Request{
			Repo: p.Repo, Pipeline: s.Name, Kind: Build, Commit: p.New, Branch: branch,
			Trigger: "push by " + p.User, User: p.User, Pushed: p.Received, WaitFor: localInputs(s, p.Repo),
			Subject: subject, spec: s, admitted: p.admitted(),
		})
		if err != nil {
			return runs, err
		}
		runs = append(runs, run)
	}
	return runs, nil
}

// localInputs names the pipelines of the same repository whose artifacts
// spec takes as inputs.
func localInputs(s *spec.Spec, repo string) []string {
	var out []string
	for _, in := range s.Inputs {
		if in.From.Repo == "" || in.From.Repo == repo {
			out = append(out, in.From.Pipeline)
		}
	}
	return out
}

func anyMatch(t spec.Triggers, paths []string) bool {
	for _, p := range paths {
		if t.MatchPath(p) {
			return true
		}
	}
	return false
}

// PipelineInfo is one pipeline defined on a branch, with its last run.
type PipelineInfo struct {
	Name string `json:"name"`
	File string `json:"file"`
	Last *Run   `json:"last,omitempty"`
	// Error is set when the file does not parse.
	Error string `json:"error,omitempty"`
}

// Pipelines lists the pipelines defined at rev (the deploy branch).
func (r *Runner) Pipelines(ctx context.Context, repo, rev string) ([]PipelineInfo, error) {
	git := gitReader{gitDir: r.cfg.Repos.Path(repo)}
	files, err := git.pipelineFiles(ctx, rev)
	if err != nil {
		return nil, err
	}
	var out []PipelineInfo
	for path, data := range files {
		s, err := spec.Parse(path, data)
		info := PipelineInfo{File: path}
		if err != nil {
			info.Name = strings.TrimSuffix(strings.TrimPrefix(path, spec.Dir), ".yml")
			info.Error = err.Error()
		} else {
			info.Name = s.Name
		}
		info.Last = r.Last(repo, info.Name)
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
