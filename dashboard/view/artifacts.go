package view

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"golang.org/x/crypto/ssh"

	"github.com/refline/refline/access"
	"github.com/refline/refline/names"
	"github.com/refline/refline/pipelines"
	"github.com/refline/refline/refs"
)

// defaultRows is the length of an artifacts or board page when none is
// asked for.
const defaultRows = 20

// maxRows bounds a page.
const maxRows = 200

func rows(limit int) int {
	switch {
	case limit <= 0:
		return defaultRows
	case limit > maxRows:
		return maxRows
	}
	return limit
}

// chainPage walks a pipeline's artifact chain, newest first, from the tip
// or from cursor (an artifact of the chain a previous page named as Next),
// and returns up to limit artifact commits and the next cursor.
func chainPage(g *git.Repository, pipeline, cursor string, limit int) ([]*object.Commit, string, error) {
	var h plumbing.Hash
	if cursor == "" {
		tip, err := resolveRef(g, refs.ArtifactRef(pipeline))
		if err != nil {
			return nil, "", err
		}
		h = tip
	} else {
		if !plumbing.IsHash(cursor) {
			return nil, "", fmt.Errorf("%w %q", pipelines.ErrBadCursor, cursor)
		}
		h = plumbing.NewHash(cursor)
	}
	var out []*object.Commit
	for !h.IsZero() {
		c, err := object.GetCommit(g.Storer, h)
		if err != nil {
			if cursor != "" && len(out) == 0 {
				return nil, "", fmt.Errorf("%w %q", pipelines.ErrBadCursor, cursor)
			}
			return nil, "", fmt.Errorf("walk %s: %w", refs.ArtifactRef(pipeline), err)
		}
		if refs.Trailer(c.Message, "Pipeline") != pipeline {
			// Only artifacts of the pipeline: a cursor cannot turn
			// the walk into a tour of other commits.
			return nil, "", fmt.Errorf("%w %q", pipelines.ErrBadCursor, cursor)
		}
		if len(out) == limit {
			return out, h.String(), nil
		}
		out = append(out, c)
		if len(c.ParentHashes) == 0 {
			break
		}
		h = c.ParentHashes[0]
	}
	return out, "", nil
}

// resolveRef is the commit ref points at, or the zero hash when there is
// no such ref.
func resolveRef(g *git.Repository, ref string) (plumbing.Hash, error) {
	r, err := g.Reference(plumbing.ReferenceName(ref), true)
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return plumbing.ZeroHash, nil
	}
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("resolve %s: %w", ref, err)
	}
	return r.Hash(), nil
}

// placements maps each artifact that a deploy or deployed ref of pipeline
// points at to those environments.
func placements(g *git.Repository, pipeline string) (map[string][]Placement, error) {
	iter, err := g.References()
	if err != nil {
		return nil, fmt.Errorf("list refs: %w", err)
	}
	byEnv := map[string]*Placement{}
	var envs []string
	desired, deployed := map[string]string{}, map[string]string{}
	err = iter.ForEach(func(ref *plumbing.Reference) error {
		kind, env, p := refs.Parse(ref.Name().String())
		if p != pipeline || (kind != refs.Deploy && kind != refs.Deployed) {
			return nil
		}
		h := ref.Hash()
		if byEnv[env] == nil {
			byEnv[env] = &Placement{Environment: env}
			envs = append(envs, env)
		}
		if kind == refs.Deploy {
			desired[env] = h.String()
		} else {
			deployed[env] = h.String()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := map[string][]Placement{}
	sort.Strings(envs)
	for _, env := range envs {
		d, dd := desired[env], deployed[env]
		if d != "" {
			out[d] = append(out[d], Placement{Environment: env, Desired: true, Deployed: d == dd})
		}
		if dd != "" && dd != d {
			out[dd] = append(out[dd], Placement{Environment: env, Deployed: true})
		}
	}
	return out, nil
}

// verify checks an artifact's signature the way `git verify-commit` does
// with the server's allowed_signers line: an SSHSIG in namespace "git" by
// exactly the server's signing key over the commit without its signature.
func verify(c *object.Commit, key ssh.PublicKey) Signature {
	if key == nil {
		return Signature{Error: "the server's signing key is not known"}
	}
	s := Signature{Key: ssh.FingerprintSHA256(key)}
	if err := refs.VerifyCommit(c, key); err != nil {
		s.Error = err.Error()
		return s
	}
	s.Verified = true
	return s
}

// parseInput reads an Input trailer value, "lib@SHA" or "repo:lib@SHA".
func parseInput(v string) (InputRef, bool) {
	name, sha, ok := strings.Cut(v, "@")
	if !ok {
		return InputRef{}, false
	}
	in := InputRef{Pipeline: name, Artifact: sha}
	if repo, p, ok := strings.Cut(name, ":"); ok {
		in.Repo, in.Pipeline = repo, p
	}
	return in, true
}

// Artifacts is a page of a pipeline's artifact chain, newest first: each
// artifact as `artifacts --json` prints it, with the subject of its source
// commit, its inputs, whether its signature verifies against the server's
// key, and the environments whose deploy or deployed ref points at it.
func (v *View) Artifacts(ctx context.Context, u access.User, repo, pipeline, cursor string, limit int) (*ArtifactsPage, error) {
	if _, err := v.readable(repo, u); err != nil {
		return nil, err
	}
	if names.Pipeline(pipeline) != nil {
		return nil, fmt.Errorf("pipeline %q: %w", pipeline, ErrNotFound)
	}
	g, err := v.openRepo(repo)
	if err != nil {
		return nil, err
	}
	chain, next, err := chainPage(g, pipeline, cursor, rows(limit))
	if err != nil {
		return nil, err
	}
	where, err := placements(g, pipeline)
	if err != nil {
		return nil, err
	}
	page := &ArtifactsPage{Repo: repo, Pipeline: pipeline, Artifacts: []ArtifactView{}, Next: next}
	for _, c := range chain {
		av := ArtifactView{Artifact: pipelines.ArtifactOf(c), Signature: verify(c, v.cfg.SigningKey), Deployments: where[c.Hash.String()]}
		if plumbing.IsHash(av.SourceCommit) {
			if sc, err := object.GetCommit(g.Storer, plumbing.NewHash(av.SourceCommit)); err == nil {
				av.SourceSubject = strings.SplitN(sc.Message, "\n", 2)[0]
			}
		}
		for _, in := range av.Inputs {
			if ir, ok := parseInput(in); ok {
				av.InputRefs = append(av.InputRefs, ir)
			}
		}
		page.Artifacts = append(page.Artifacts, av)
	}
	return page, nil
}
