package gitserver

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/refline/refline/access"
	"github.com/refline/refline/pipelines"
)

// PipelineLister is what `pipelines` reads: the pipeline files at a
// revision with their last run.
type PipelineLister interface {
	Pipelines(ctx context.Context, repo, rev string) ([]pipelines.PipelineInfo, error)
}

// RunReader is what `runs` and `logs` read.
type RunReader interface {
	Runs(repo, pipeline string, limit int) ([]*pipelines.Run, error)
	Logs(ctx context.Context, repo, pipeline string, n int, w io.Writer, follow bool) (*pipelines.Run, error)
}

// RunControl is what `cancel` and `retry` act through; Get gives the gate
// the kind of the run acted on.
type RunControl interface {
	Get(repo, pipeline string, n int) (*pipelines.Run, error)
	Cancel(repo, pipeline string, n int) error
	Retry(ctx context.Context, repo, pipeline string, n int, user string) (*pipelines.Run, error)
}

// pipelineCommands are the commands of the runner parts; New adds those
// whose part is set in Config (pipelineParts).
func (s *Server) pipelineCommands() map[string]Command {
	repo := Arg{Name: "REPO", Kind: ArgRepo}
	pipeline := Arg{Name: "PIPELINE", Kind: ArgPipeline}
	run := Arg{Name: "RUN", Kind: ArgRun}
	deploy := []Arg{repo, pipeline, {Name: "ENV", Kind: ArgEnv}, {Name: "REV", Kind: ArgRev, Optional: true}}
	// Deploying needs the caller's right to the ENV argument (SPEC §3);
	// canceling a deploy run, the right to its environment. A retried
	// deploy is checked by Retry itself, as it acts for the retrier.
	deployNeed := Need{Repo: access.Read, Check: s.deployRight}
	return map[string]Command{
		"pipelines": {Usage: "pipelines REPO", Help: "pipelines on the deploy branch, with their last run",
			Args: []Arg{repo}, Need: Need{Repo: access.Read}, Run: s.cmdPipelines},
		"runs": {Usage: "runs REPO [PIPELINE]", Help: "recent runs",
			Args: []Arg{repo, {Name: "PIPELINE", Kind: ArgPipeline, Optional: true}}, Need: Need{Repo: access.Read}, Run: s.cmdRuns},
		"logs": {Usage: "logs REPO PIPELINE RUN [-f]", Help: "a run's log; -f follows a live run to its end",
			Args: []Arg{repo, pipeline, run}, Flags: map[string]string{"-f": "follow", "--follow": "follow"},
			Need: Need{Repo: access.Read}, Run: s.cmdLogs},
		"cancel": {Usage: "cancel REPO PIPELINE RUN", Help: "stop a queued or running run",
			Args: []Arg{repo, pipeline, run}, Need: Need{Repo: access.Write, Check: s.runRight}, Run: s.cmdCancel},
		"retry": {Usage: "retry REPO PIPELINE RUN", Help: "run again at the same commit",
			Args: []Arg{repo, pipeline, run}, Need: Need{Repo: access.Write}, Run: s.cmdRetry},
		"artifacts": {Usage: "artifacts REPO PIPELINE", Help: "the artifact history, newest first",
			Args: []Arg{repo, pipeline}, Need: Need{Repo: access.Read}, Run: s.cmdArtifacts},
		"deploy": {Usage: "deploy REPO PIPELINE ENV [REV]", Help: "point refs/deploy/ENV/PIPELINE at REV (default: newest artifact)",
			Args: deploy, Need: deployNeed, Run: s.cmdDeploy},
		"rollback": {Usage: "rollback REPO PIPELINE ENV [REV]", Help: "point it back at the artifact deployed before (or REV)",
			Args: deploy, Need: deployNeed, Run: s.cmdDeploy},
		"status": {Usage: "status REPO", Help: "desired and deployed artifact of each environment × pipeline",
			Args: []Arg{repo}, Need: Need{Repo: access.Read}, Run: s.cmdStatus},
	}
}

// pipelineParts tells which pipeline commands the runner parts set in
// cfg serve.
func pipelineParts(cfg Config) map[string]bool {
	runs, control, deploys := cfg.RunReader != nil, cfg.RunControl != nil, cfg.Deploys != nil
	return map[string]bool{
		"pipelines": cfg.PipelineLister != nil,
		"runs":      runs,
		"logs":      runs,
		"cancel":    control,
		"retry":     control,
		"artifacts": deploys,
		"deploy":    deploys,
		"rollback":  deploys,
		"status":    deploys,
	}
}

func (s *Server) cmdPipelines(c *Call) error {
	repo := c.Repo
	branch := s.cfg.Repos.DeployBranch(c.Ctx, repo)
	infos, err := s.cfg.PipelineLister.Pipelines(c.Ctx, repo, "refs/heads/"+branch)
	if err != nil {
		infos = nil // an empty repository has no deploy branch yet
	}
	if infos == nil {
		infos = []pipelines.PipelineInfo{}
	}
	var rows [][]string
	for _, p := range infos {
		row := []string{p.Name, "-", "never run", "-"}
		if p.Error != "" {
			row[2] = "invalid"
		}
		if p.Last != nil {
			row = []string{p.Name, fmt.Sprintf("#%d", p.Last.Number), string(p.Last.State), short(p.Last.Commit)}
		}
		rows = append(rows, row)
	}
	return c.Print(infos, rows)
}

func (s *Server) cmdRuns(c *Call) error {
	runs, err := s.cfg.RunReader.Runs(c.Repo, c.Pipeline, 50)
	if err != nil {
		return err
	}
	if runs == nil {
		runs = []*pipelines.Run{}
	}
	var rows [][]string
	for _, r := range runs {
		start := "-"
		if !r.Started.IsZero() {
			start = r.Started.UTC().Format(time.RFC3339)
		}
		rows = append(rows, []string{strconv.Itoa(r.Number), r.Pipeline, string(r.Kind), string(r.State),
			short(r.Commit), start, r.Duration().Round(time.Millisecond).String()})
	}
	return c.Print(runs, rows)
}

func (s *Server) cmdLogs(c *Call) error {
	follow := c.Flags["follow"]
	run, err := s.cfg.RunReader.Logs(c.Ctx, c.Repo, c.Pipeline, c.Number, c.Out, follow)
	if err != nil {
		return err
	}
	if follow {
		fmt.Fprintf(c.Out, "refline: %s #%d %s\n", run.Pipeline, run.Number, run.State)
	}
	return nil
}

// deployRight is the gate's check for deploy and rollback: the caller's
// right to deploy to the ENV argument. RequestDeploy decides again,
// whatever calls it.
func (s *Server) deployRight(c *Call) error {
	return s.envRight(c, c.Env)
}

// runRight is the gate's check for acting on a run: a deploy run needs the
// right to its environment, a build only the write access checked before.
func (s *Server) runRight(c *Call) error {
	if r, err := s.cfg.RunControl.Get(c.Repo, c.Pipeline, c.Number); err == nil && r.Kind == pipelines.Deploy {
		return s.envRight(c, r.Environment)
	}
	return nil
}

func (s *Server) envRight(c *Call, env string) error {
	if s.cfg.Access.CanDeploy(c.Repo, c.User.Name, env) {
		return nil
	}
	return fmt.Errorf("%w: %s to %s needs deploy access to %s of %s (you have %s); ask an admin: access %s %s deploy:%s",
		ErrDenied, c.Name, env, env, c.Repo, s.cfg.Access.GrantOf(c.Repo, c.User), c.Repo, c.User.Name, env)
}

func (s *Server) cmdCancel(c *Call) error {
	repo, pipeline, n := c.Repo, c.Pipeline, c.Number
	if err := s.cfg.RunControl.Cancel(repo, pipeline, n); err != nil {
		return err
	}
	c.Log.WithField("run", fmt.Sprintf("%s %s #%d", repo, pipeline, n)).Info("run canceled")
	return c.Print(map[string]any{"canceled": n}, [][]string{{fmt.Sprintf("%s #%d canceled", pipeline, n)}})
}

func (s *Server) cmdRetry(c *Call) error {
	n := c.Number
	run, err := s.cfg.RunControl.Retry(c.Ctx, c.Repo, c.Pipeline, n, c.User.Name)
	if err != nil {
		return err
	}
	return c.Print(run, [][]string{{fmt.Sprintf("%s #%d started for %s (retry of #%d)", run.Pipeline, run.Number, short(run.Commit), n)}})
}

func short(s string) string {
	if len(s) > 7 {
		return s[:7]
	}
	return s
}
