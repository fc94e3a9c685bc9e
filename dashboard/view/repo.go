package view

import (
	"context"
	"fmt"
	"sort"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/refline/refline/access"
	"github.com/refline/refline/pipelines"
	"github.com/refline/refline/pipelines/spec"
	"github.com/refline/refline/refs"
)

// Overview lists the repositories u can read, each with its pipelines'
// last run, by name.
func (v *View) Overview(ctx context.Context, u access.User) (*OverviewPage, error) {
	names, err := v.cfg.Repos.List()
	if err != nil {
		return nil, fmt.Errorf("list repositories: %w", err)
	}
	sort.Strings(names)
	page := &OverviewPage{User: u.Name, Repos: []RepoSummary{}}
	for _, n := range names {
		l := v.cfg.Access.Level(n, u)
		if !l.Can(access.Read) {
			continue
		}
		page.Repos = append(page.Repos, v.summary(ctx, n, l))
	}
	return page, nil
}

// summary is what `pipelines REPO` prints, with the repository's name,
// the viewer's level and the deploy branch.
func (v *View) summary(ctx context.Context, repo string, l access.Level) RepoSummary {
	branch := v.cfg.Repos.DeployBranch(ctx, repo)
	infos, err := v.cfg.Runs.Pipelines(ctx, repo, "refs/heads/"+branch)
	if err != nil || infos == nil {
		infos = []pipelines.PipelineInfo{} // an empty repository has no deploy branch yet (as `pipelines`)
	}
	return RepoSummary{Name: repo, Level: l.String(), DeployBranch: branch, Pipelines: infos}
}

// recentRuns is the length of a repository page's run list.
const recentRuns = 20

// Repo is a repository's page: its pipelines with their last run, its
// environments in `after:` order with where each pipeline stands there,
// and its newest runs.
func (v *View) Repo(ctx context.Context, u access.User, repo string) (*RepoPage, error) {
	l, err := v.readable(repo, u)
	if err != nil {
		return nil, err
	}
	page := &RepoPage{RepoSummary: v.summary(ctx, repo, l)}
	specs := v.tipSpecs(ctx, repo, page.Pipelines)
	page.Environments = envOrder(specs)
	if page.Status, err = v.cfg.Deploys.Status(repo); err != nil {
		return nil, fmt.Errorf("status of %s: %w", repo, err)
	}
	runs, err := v.cfg.Runs.Page(repo, "", pipelines.RunQuery{Limit: recentRuns})
	if err != nil {
		return nil, fmt.Errorf("runs of %s: %w", repo, err)
	}
	page.Recent = runs.Runs
	return page, nil
}

// openRepo opens repo's bare repository for reading objects and refs.
func (v *View) openRepo(repo string) (*git.Repository, error) {
	g, err := git.PlainOpen(v.cfg.Repos.Path(repo))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", repo, err)
	}
	return g, nil
}

// tipSpecs parses the pipeline files that infos lists at the deploy
// branch; files that do not parse are left out.
func (v *View) tipSpecs(ctx context.Context, repo string, infos []pipelines.PipelineInfo) []*spec.Spec {
	g, err := v.openRepo(repo)
	if err != nil {
		return nil
	}
	tip, err := refs.Resolve(v.cfg.Repos.Path(repo), "refs/heads/"+v.cfg.Repos.DeployBranch(ctx, repo))
	if err != nil || tip.IsZero() {
		return nil
	}
	var out []*spec.Spec
	for _, info := range infos {
		if info.Error != "" {
			continue
		}
		if s, err := specAt(g, tip, info.Name); err == nil {
			out = append(out, s)
		}
	}
	return out
}

// specAt parses pipeline's file at commit, reading the object database
// directly (a page may need the file at each of 20 source commits).
func specAt(g *git.Repository, commit plumbing.Hash, pipeline string) (*spec.Spec, error) {
	c, err := object.GetCommit(g.Storer, commit)
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", commit, err)
	}
	path := spec.Dir + pipeline + ".yml"
	f, err := c.File(path)
	if err != nil {
		return nil, fmt.Errorf("%s at %s: %w", path, commit, err)
	}
	text, err := f.Contents()
	if err != nil {
		return nil, fmt.Errorf("%s at %s: %w", path, commit, err)
	}
	return spec.Parse(path, []byte(text))
}

// envOrder lists the environments of specs so that each comes after the
// one its `after:` names, otherwise in the order the files (by pipeline
// name) first mention them.
func envOrder(specs []*spec.Spec) []string {
	var order []string
	after := map[string][]string{}
	seen := map[string]bool{}
	for _, s := range specs {
		for _, e := range s.Environments {
			if !seen[e.Name] {
				seen[e.Name] = true
				order = append(order, e.Name)
			}
			if e.After != "" {
				after[e.Name] = append(after[e.Name], e.After)
			}
		}
	}
	out := []string{}
	done := map[string]bool{}
	visiting := map[string]bool{}
	var visit func(string)
	visit = func(n string) {
		if done[n] || visiting[n] {
			return // a cycle across files: keep first-mention order
		}
		visiting[n] = true
		for _, a := range after[n] {
			if seen[a] {
				visit(a)
			}
		}
		visiting[n] = false
		done[n] = true
		out = append(out, n)
	}
	for _, n := range order {
		visit(n)
	}
	return out
}
