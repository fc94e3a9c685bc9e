package gitserver

import (
	"fmt"
	"os/exec"
	"strings"

	"github.com/refline/refline/access"
	"github.com/refline/refline/refs"
)

func (s *Server) cmdArtifacts(c *Call) error {
	if len(c.Args) != 2 {
		return Usagef("artifacts takes REPO PIPELINE")
	}
	repo, err := repoArg(c.Args, 0)
	if err != nil {
		return err
	}
	if err := s.RequireRepo(c, repo, access.Read); err != nil {
		return err
	}
	arts, err := s.cfg.Pipelines.Artifacts(repo, c.Args[1], 100)
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
	if len(c.Args) != 3 && len(c.Args) != 4 {
		return Usagef("takes REPO PIPELINE ENV [REV]")
	}
	repo, err := repoArg(c.Args, 0)
	if err != nil {
		return err
	}
	if err := s.RequireRepo(c, repo, access.Read); err != nil {
		return err
	}
	pipeline, env := c.Args[1], c.Args[2]
	// Said early, before the target is resolved; RequestDeploy decides
	// again whatever calls it.
	if !s.cfg.Access.CanDeploy(repo, c.User.Name, env) {
		return fmt.Errorf("%w: %s to %s needs deploy access to %s of %s (you have %s); ask an admin: access %s %s deploy:%s",
			ErrDenied, c.Name, env, env, repo, s.cfg.Access.GrantOf(repo, c.User), repo, c.User.Name, env)
	}
	rollback := c.Name == "rollback"
	verb := c.Name
	var target string
	switch {
	case len(c.Args) == 4:
		target, err = s.resolveRev(repo, pipeline, c.Args[3])
	case rollback:
		target, err = s.cfg.Pipelines.RollbackTarget(repo, pipeline, env)
	default:
		target, err = s.resolveRev(repo, pipeline, refs.ArtifactRef(pipeline))
		if err != nil {
			err = fmt.Errorf("%s has no artifact yet", pipeline)
		}
	}
	if err != nil {
		return err
	}
	run, err := s.cfg.Pipelines.RequestDeploy(c.Ctx, repo, pipeline, env, target, c.User.Name,
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
func (s *Server) resolveRev(repo, pipeline, rev string) (string, error) {
	if strings.HasPrefix(rev, "-") {
		return "", fmt.Errorf("invalid revision %q", rev)
	}
	if rest, ok := strings.CutPrefix(rev, pipeline); ok && (rest == "" || rest[0] == '~' || rest[0] == '^') {
		rev = refs.ArtifactRef(pipeline) + rest
	}
	cmd := exec.Command(s.cfg.Repos.gitBin(), "--git-dir="+s.cfg.Repos.Path(repo), "rev-parse", "--verify", "--quiet", "--end-of-options", rev+"^{commit}")
	cmd.Env = GitEnv()
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("unknown revision %q", rev)
	}
	return strings.TrimSpace(string(out)), nil
}

func (s *Server) cmdStatus(c *Call) error {
	if len(c.Args) != 1 {
		return Usagef("status takes REPO")
	}
	repo, err := repoArg(c.Args, 0)
	if err != nil {
		return err
	}
	if err := s.RequireRepo(c, repo, access.Read); err != nil {
		return err
	}
	sts, err := s.cfg.Pipelines.Status(repo)
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
