package view

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/refline/refline/access"
	"github.com/refline/refline/gitcmd"
	"github.com/refline/refline/pipelines"
	"github.com/refline/refline/refs"
)

// streamDepth bounds how far back each artifact chain is searched for a
// commit's artifacts and their downstream ones.
const streamDepth = 1000

var hexRE = regexp.MustCompile(`^[0-9a-f]{4,40}$`)

// ValueStream is the value stream of one commit (full or abbreviated id):
// its build runs; the artifacts built from it; the artifacts of this
// repository built from those (an Input trailer naming one), and so on
// downstream; and for each artifact its successful deploys (from the run
// records) and the environments it is deployed to now. Each artifact
// chain is searched back streamDepth artifacts.
func (v *View) ValueStream(ctx context.Context, u access.User, repo, sha string) (*ValueStreamPage, error) {
	if _, err := v.readable(repo, u); err != nil {
		return nil, err
	}
	sha = strings.ToLower(sha)
	if !hexRE.MatchString(sha) {
		return nil, fmt.Errorf("commit %q: %w", sha, ErrNotFound)
	}
	out, err := gitcmd.Repo{GitDir: v.cfg.Repos.Path(repo)}.Output(ctx, "rev-parse", "--verify", "--quiet", "--end-of-options", sha+"^{commit}")
	if err != nil {
		return nil, fmt.Errorf("commit %s of %s: %w", sha, repo, ErrNotFound)
	}
	full := strings.TrimSpace(string(out))
	g, err := v.openRepo(repo)
	if err != nil {
		return nil, err
	}
	c, err := object.GetCommit(g.Storer, plumbing.NewHash(full))
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", full, err)
	}
	page := &ValueStreamPage{Repo: repo, Commit: full, Subject: strings.SplitN(c.Message, "\n", 2)[0],
		Builds: []*pipelines.Run{}, Artifacts: []StreamArtifact{}}
	for cursor := ""; ; {
		runs, err := v.cfg.Runs.Page(repo, "", pipelines.RunQuery{Kind: pipelines.Build, Commit: full, Cursor: cursor, Limit: 200})
		if err != nil {
			return nil, err
		}
		page.Builds = append(page.Builds, runs.Runs...)
		if cursor = runs.Next; cursor == "" {
			break
		}
	}
	arts, err := v.streamArtifacts(g, repo, full)
	if err != nil {
		return nil, err
	}
	if err := v.arrivals(ctx, g, repo, arts); err != nil {
		return nil, err
	}
	page.Artifacts = arts
	return page, nil
}

// streamArtifacts finds the artifacts built from commit, then those built
// from them, breadth first.
func (v *View) streamArtifacts(g *git.Repository, repo, commit string) ([]StreamArtifact, error) {
	chains := map[string][]pipelines.Artifact{}
	var pls []string
	iter, err := g.References()
	if err != nil {
		return nil, fmt.Errorf("list refs: %w", err)
	}
	err = iter.ForEach(func(ref *plumbing.Reference) error {
		if p, ok := strings.CutPrefix(ref.Name().String(), refs.ArtifactsPrefix); ok && refs.ValidPipelineName(p) {
			pls = append(pls, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(pls)
	for _, p := range pls {
		cs, err := refs.Chain(g, refs.ArtifactRef(p), streamDepth)
		if err != nil {
			return nil, err
		}
		for i := len(cs) - 1; i >= 0; i-- { // oldest first
			chains[p] = append(chains[p], pipelines.ArtifactOf(cs[i]))
		}
	}
	var out []StreamArtifact
	in := map[string]bool{}
	for _, p := range pls {
		for _, a := range chains[p] {
			if a.SourceCommit == commit && !in[a.Commit] {
				in[a.Commit] = true
				out = append(out, StreamArtifact{Pipeline: p, Artifact: a, Deploys: []Arrival{}})
			}
		}
	}
	for i := 0; i < len(out); i++ { // out grows as downstream artifacts are found
		up := out[i]
		for _, p := range pls {
			for _, a := range chains[p] {
				if in[a.Commit] {
					continue
				}
				for _, inp := range a.Inputs {
					if ir, ok := parseInput(inp); ok && (ir.Repo == "" || ir.Repo == repo) &&
						ir.Pipeline == up.Pipeline && ir.Artifact == up.Artifact.Commit {
						in[a.Commit] = true
						out = append(out, StreamArtifact{Pipeline: p, Artifact: a, From: up.Artifact.Commit, Deploys: []Arrival{}})
						break
					}
				}
			}
		}
	}
	return out, nil
}

// arrivals fills in where each artifact went: its passed deploy records,
// oldest first, with the user of each deploy run, and the environments
// whose deployed ref points at it.
func (v *View) arrivals(ctx context.Context, g *git.Repository, repo string, arts []StreamArtifact) error {
	recs := map[string][]deployRecord{}
	where := map[string]map[string][]Placement{}
	for i := range arts {
		a := &arts[i]
		p := a.Pipeline
		if _, ok := recs[p]; !ok {
			rs, err := v.deployRecords(ctx, g, repo, p)
			if err != nil {
				return err
			}
			recs[p] = rs
			if where[p], err = placements(g, p); err != nil {
				return err
			}
		}
		for j := len(recs[p]) - 1; j >= 0; j-- {
			r := recs[p][j]
			if r.Artifact != a.Artifact.Commit || r.State != pipelines.Passed {
				continue
			}
			ar := Arrival{Environment: r.Env, Run: r.Run, Time: r.Time}
			if run, err := v.cfg.Runs.Get(repo, p, r.Run); err == nil {
				ar.User = run.User
				if !run.Finished.IsZero() {
					ar.Time = run.Finished
				}
			}
			a.Deploys = append(a.Deploys, ar)
		}
		for _, pl := range where[p][a.Artifact.Commit] {
			if pl.Deployed {
				a.Current = append(a.Current, pl.Environment)
			}
		}
	}
	return nil
}
