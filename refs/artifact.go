package refs

import (
	"errors"
	"fmt"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"golang.org/x/crypto/ssh"
)

// ErrNotArtifact is returned for a commit that is not a genuine artifact of
// the pipeline it is claimed for.
var ErrNotArtifact = errors.New("not an artifact")

// Trailers parses the "Key: value" lines of a commit message's last
// paragraph. Repeated keys keep every value in order.
func Trailers(message string) map[string][]string {
	paras := strings.Split(strings.TrimRight(message, "\n"), "\n\n")
	out := map[string][]string{}
	if len(paras) < 2 {
		return out
	}
	for _, line := range strings.Split(paras[len(paras)-1], "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			continue
		}
		out[k] = append(out[k], strings.TrimSpace(v))
	}
	return out
}

// Trailer is the first value of key, or "".
func Trailer(message, key string) string {
	if v := Trailers(message)[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// VerifyArtifact decides whether commit is a genuine artifact of pipeline:
// it must carry a valid SSH signature by key itself (not merely by some key
// an allowed-signers file would accept), name the pipeline in its
// trailers, and be on the pipeline's chain refs/artifacts/PIPELINE. Every
// deploy path relies on this one function. It returns the commit.
func VerifyArtifact(repo *git.Repository, pipeline string, commit plumbing.Hash, key ssh.PublicKey) (*object.Commit, error) {
	c, err := object.GetCommit(repo.Storer, commit)
	if err != nil {
		return nil, fmt.Errorf("%s: %w of %s: no such commit", short(commit), ErrNotArtifact, pipeline)
	}
	if err := VerifyCommit(c, key); err != nil {
		return nil, fmt.Errorf("%s: %w of %s: %v", short(commit), ErrNotArtifact, pipeline, err)
	}
	if got := Trailer(c.Message, "Pipeline"); got != pipeline {
		return nil, fmt.Errorf("%s: %w of %s: it is an artifact of %q", short(commit), ErrNotArtifact, pipeline, got)
	}
	onChain, err := OnChain(repo, ArtifactRef(pipeline), commit)
	if err != nil {
		return nil, err
	}
	if !onChain {
		return nil, fmt.Errorf("%s: %w of %s: it is not on %s", short(commit), ErrNotArtifact, pipeline, ArtifactRef(pipeline))
	}
	return c, nil
}

// OnChain reports whether commit is ref's tip or one of its first-parent
// ancestors.
func OnChain(repo *git.Repository, ref string, commit plumbing.Hash) (bool, error) {
	tip, err := resolve(repo, ref)
	if err != nil {
		return false, err
	}
	for h := tip; !h.IsZero(); {
		if h == commit {
			return true, nil
		}
		c, err := object.GetCommit(repo.Storer, h)
		if err != nil {
			return false, fmt.Errorf("walk %s: %w", ref, err)
		}
		if len(c.ParentHashes) == 0 {
			break
		}
		h = c.ParentHashes[0]
	}
	return false, nil
}

// Chain returns ref's first-parent chain, newest first, at most limit
// commits (all when limit <= 0).
func Chain(repo *git.Repository, ref string, limit int) ([]*object.Commit, error) {
	tip, err := resolve(repo, ref)
	if err != nil {
		return nil, err
	}
	var out []*object.Commit
	for h := tip; !h.IsZero() && (limit <= 0 || len(out) < limit); {
		c, err := object.GetCommit(repo.Storer, h)
		if err != nil {
			return nil, fmt.Errorf("walk %s: %w", ref, err)
		}
		out = append(out, c)
		if len(c.ParentHashes) == 0 {
			break
		}
		h = c.ParentHashes[0]
	}
	return out, nil
}

func short(h plumbing.Hash) string { return h.String()[:7] }
