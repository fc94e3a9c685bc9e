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

// Pipelines is the subset of the pipeline runner the SSH commands use.
type Pipelines interface {
	Pipelines(ctx context.Context, repo, rev string) ([]pipelines.PipelineInfo, error)
	Runs(repo, pipeline string, limit int) ([]*pipelines.Run, error)
	Get(repo, pipeline string, n int) (*pipelines.Run, error)
	Logs(ctx context.Context, repo, pipeline string, n int, w io.Writer, follow bool) (*pipelines.Run, error)
	Cancel(repo, pipeline string, n int) error
	Retry(ctx context.Context, repo, pipeline string, n int, user string) (*pipelines.Run, error)
	RemoveRepo(repo string) error
	Artifacts(repo, pipeline string, limit int) ([]pipelines.Artifact, error)
	RequestDeploy(ctx context.Context, repo, pipeline, env, target, user, trigger string) (*pipelines.Run, error)
	RollbackTarget(repo, pipeline, env string) (string, error)
	Status(repo string) ([]pipelines.EnvStatus, error)
}

func (s *Server) pipelineCommands() map[string]Command {
	return map[string]Command{
		"pipelines": {Usage: "pipelines REPO", Help: "pipelines on the deploy branch, with their last run", Run: s.cmdPipelines},
		"runs":      {Usage: "runs REPO [PIPELINE]", Help: "recent runs", Run: s.cmdRuns},
		"logs":      {Usage: "logs REPO PIPELINE RUN [-f]", Help: "a run's log; -f follows a live run to its end", Run: s.cmdLogs},
		"cancel":    {Usage: "cancel REPO PIPELINE RUN", Help: "stop a queued or running run", Run: s.cmdCancel},
		"retry":     {Usage: "retry REPO PIPELINE RUN", Help: "run again at the same commit", Run: s.cmdRetry},
		"artifacts": {Usage: "artifacts REPO PIPELINE", Help: "the artifact history, newest first", Run: s.cmdArtifacts},
		"deploy": {Usage: "deploy REPO PIPELINE ENV [REV]", Help: "point refs/deploy/ENV/PIPELINE at REV (default: newest artifact)",
			Run: s.cmdDeploy},
		"rollback": {Usage: "rollback REPO PIPELINE ENV [REV]", Help: "point it back at the artifact deployed before (or REV)",
			Run: s.cmdDeploy},
		"status": {Usage: "status REPO", Help: "desired and deployed artifact of each environment × pipeline", Run: s.cmdStatus},
	}
}

func (s *Server) cmdPipelines(c *Call) error {
	if len(c.Args) != 1 {
		return Usagef("pipelines takes REPO")
	}
	repo, err := repoArg(c.Args, 0)
	if err != nil {
		return err
	}
	if err := s.RequireRepo(c, repo, access.Read); err != nil {
		return err
	}
	branch := s.cfg.Repos.DeployBranch(c.Ctx, repo)
	infos, err := s.cfg.Pipelines.Pipelines(c.Ctx, repo, "refs/heads/"+branch)
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
	if len(c.Args) < 1 || len(c.Args) > 2 {
		return Usagef("runs takes REPO and optionally PIPELINE")
	}
	repo, err := repoArg(c.Args, 0)
	if err != nil {
		return err
	}
	if err := s.RequireRepo(c, repo, access.Read); err != nil {
		return err
	}
	pipeline := ""
	if len(c.Args) == 2 {
		pipeline = c.Args[1]
	}
	runs, err := s.cfg.Pipelines.Runs(repo, pipeline, 50)
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

// runArgs parses REPO PIPELINE RUN and checks the caller's level.
func (s *Server) runArgs(c *Call, need access.Level) (string, string, int, error) {
	if len(c.Args) < 3 {
		return "", "", 0, Usagef("needs REPO PIPELINE RUN")
	}
	repo, err := repoArg(c.Args, 0)
	if err != nil {
		return "", "", 0, err
	}
	n, err := strconv.Atoi(c.Args[2])
	if err != nil || n < 1 {
		return "", "", 0, Usagef("RUN must be a run number, not %q", c.Args[2])
	}
	if err := s.RequireRepo(c, repo, need); err != nil {
		return "", "", 0, err
	}
	return repo, c.Args[1], n, nil
}

func (s *Server) cmdLogs(c *Call) error {
	follow := false
	var args []string
	for _, a := range c.Args {
		if a == "-f" || a == "--follow" {
			follow = true
			continue
		}
		args = append(args, a)
	}
	c.Args = args
	if len(args) != 3 {
		return Usagef("logs takes REPO PIPELINE RUN")
	}
	repo, pipeline, n, err := s.runArgs(c, access.Read)
	if err != nil {
		return err
	}
	run, err := s.cfg.Pipelines.Logs(c.Ctx, repo, pipeline, n, c.Out, follow)
	if err != nil {
		return err
	}
	if follow {
		fmt.Fprintf(c.Out, "refline: %s #%d %s\n", run.Pipeline, run.Number, run.State)
	}
	return nil
}

// levelFor is what acting on a run needs: write for builds, deploy for
// deploys.
func (s *Server) levelFor(repo, pipeline string, n int) access.Level {
	if r, err := s.cfg.Pipelines.Get(repo, pipeline, n); err == nil && r.Kind == pipelines.Deploy {
		return access.Deploy
	}
	return access.Write
}

func (s *Server) cmdCancel(c *Call) error {
	if len(c.Args) != 3 {
		return Usagef("cancel takes REPO PIPELINE RUN")
	}
	repo, pipeline, n, err := s.runArgs(c, access.Read)
	if err != nil {
		return err
	}
	if err := s.RequireRepo(c, repo, s.levelFor(repo, pipeline, n)); err != nil {
		return err
	}
	if err := s.cfg.Pipelines.Cancel(repo, pipeline, n); err != nil {
		return err
	}
	c.Log.WithField("run", fmt.Sprintf("%s %s #%d", repo, pipeline, n)).Info("run canceled")
	return c.Print(map[string]any{"canceled": n}, [][]string{{fmt.Sprintf("%s #%d canceled", pipeline, n)}})
}

func (s *Server) cmdRetry(c *Call) error {
	if len(c.Args) != 3 {
		return Usagef("retry takes REPO PIPELINE RUN")
	}
	// A retried deploy needs the retrier's right to its environment:
	// Retry decides that, for restricted deploy grants too.
	repo, pipeline, n, err := s.runArgs(c, access.Write)
	if err != nil {
		return err
	}
	run, err := s.cfg.Pipelines.Retry(c.Ctx, repo, pipeline, n, c.User.Name)
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
