// Package gitcmd runs the git binary on a bare repository with a minimal
// environment: PATH and HOME of the server, plus what the caller adds (such
// as git's quarantine variables during pre-receive), and nothing else.
package gitcmd

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Repo is a bare repository and the extra environment to run git with.
type Repo struct {
	GitDir string
	Env    []string
}

// Command prepares `git --git-dir=GITDIR ARGS...`.
func (r Repo) Command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "git", append([]string{"--git-dir=" + r.GitDir}, args...)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, r.Env...)
	return cmd
}

// Output runs git and returns its standard output; a failure carries git's
// standard error.
func (r Repo) Output(ctx context.Context, args ...string) ([]byte, error) {
	var stderr bytes.Buffer
	cmd := r.Command(ctx, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// Paths runs a git command whose output is NUL-terminated paths (`-z`) and
// returns them.
func (r Repo) Paths(ctx context.Context, args ...string) ([]string, error) {
	out, err := r.Output(ctx, args...)
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, p := range bytes.Split(out, []byte{0}) {
		if len(p) > 0 {
			paths = append(paths, string(p))
		}
	}
	return paths, nil
}
