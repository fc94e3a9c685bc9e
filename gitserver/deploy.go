package gitserver

import (
	"context"
	"fmt"
	"strings"

	"github.com/refline/refline/gitcmd"
	"github.com/refline/refline/pipelines"
	"github.com/refline/refline/refs"
)

// Deploys is what `artifacts`, `deploy`, `rollback` and `status` use: the
// deploy controller.
type Deploys interface {
	Artifacts(repo, pipeline string, limit int) ([]pipelines.Artifact, error)
	RequestDeploy(ctx context.Context, repo, pipeline, env, target, user, trigger string) (*pipelines.Run, error)
	RollbackTarget(repo, pipeline, env string) (string, error)
	Status(repo string) ([]pipelines.EnvStatus, error)
}

func (s *Server) cmdArtifacts(c *Call) error {
	arts, err := s.cfg.Deploys.Artifacts(c.Repo, c.Pipeline, 100)
	if err != nil {
		return err
	}
	var rows [][]string
	for _, a := range arts {
		rows = append(rows, []string{short(a.Commit), "#" + a.Run, short(a.SourceCommit), a.Time.Format("2006-01-02T15:04:05Z"), a.Subject})
	}
	return c.Print(arts, rows)
}

// cmdDeploy serves deploy and rollback: both point the deploy ref at an
// artifact; they differ in the default target.
func (s *Server) cmdDeploy(c *Call) error {
	repo, pipeline, env := c.Repo, c.Pipeline, c.Env
	rollback := c.Name == "rollback"
	verb := c.Name
	var target string
	var err error
	switch {
	case c.Rev != "":
		target, err = s.resolveRev(c.Ctx, repo, pipeline, c.Rev)
	case rollback:
		target, err = s.cfg.Deploys.RollbackTarget(repo, pipeline, env)
	default:
		target, err = s.resolveRev(c.Ctx, repo, pipeline, refs.ArtifactRef(pipeline))
		if err != nil {
			err = fmt.Errorf("%s has no artifact yet", pipeline)
		}
	}
	if err != nil {
		return err
	}
	run, err := s.cfg.Deploys.RequestDeploy(c.Ctx, repo, pipeline, env, target, c.User.Name,
		fmt.Sprintf("%s by %s", verb, c.User.Name))
	if err != nil {
		return err
	}
	c.Log.WithFields(map[string]any{"repo": repo, "pipeline": pipeline, "env": env, "target": target}).Info(verb)
	if run == nil {
		return c.Print(map[string]any{"artifact": target, "environment": env, "state": "deployed"},
			[][]string{{fmt.Sprintf("%s is already deployed to %s (artifact %s)", pipeline, env, short(target))}})
	}
	return c.Print(run, [][]string{{fmt.Sprintf("%s #%d deploying %s to %s — %s",
		run.Pipeline, run.Number, short(target), env, s.logsHint(repo, pipeline, run.Number))}})
}

// resolveRev turns what a user typed (a full or abbreviated id,
// "refs/artifacts/web~2", "web" for the newest artifact, "web~1") into a commit id with git's own rules.
func (s *Server) resolveRev(ctx context.Context, repo, pipeline, rev string) (string, error) {
	if strings.HasPrefix(rev, "-") {
		return "", fmt.Errorf("invalid revision %q", rev)
	}
	if rest, ok := strings.CutPrefix(rev, pipeline); ok && (rest == "" || rest[0] == '~' || rest[0] == '^') {
		rev = refs.ArtifactRef(pipeline) + rest
	}
	gitDir, err := s.cfg.Repos.Dir(repo)
	if err != nil {
		return "", err
	}
	out, err := gitcmd.Repo{GitDir: gitDir}.Output(ctx, "rev-parse", "--verify", "--quiet", "--end-of-options", rev+"^{commit}")
	if err != nil {
		return "", fmt.Errorf("unknown revision %q", rev)
	}
	return strings.TrimSpace(string(out)), nil
}

func (s *Server) cmdStatus(c *Call) error {
	sts, err := s.cfg.Deploys.Status(c.Repo)
	if err != nil {
		return err
	}
	var rows [][]string
	for _, st := range sts {
		rows = append(rows, []string{st.Environment, st.Pipeline, orDash(short(st.Desired)), orDash(short(st.Deployed)), st.State})
	}
	return c.Print(sts, rows)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
