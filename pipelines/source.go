package pipelines

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// gitReader reads a bare repository's objects with the git binary. It is
// used where go-git cannot follow: a push's objects in pre-receive live in
// git's quarantine directory, which only git (through the environment it
// hands its hooks) knows how to read.
type gitReader struct {
	gitDir string
	env    []string // extra environment, e.g. the quarantine variables
}

func (g gitReader) cmd(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "git", append([]string{"--git-dir=" + g.gitDir}, args...)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, g.env...)
	return cmd
}

func (g gitReader) output(ctx context.Context, args ...string) ([]byte, error) {
	var stderr bytes.Buffer
	cmd := g.cmd(ctx, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// pipelineFiles returns the files under .refline/pipelines/ at commit, by
// path. Only regular files directly in that directory count.
func (g gitReader) pipelineFiles(ctx context.Context, commit string) (map[string][]byte, error) {
	out, err := g.output(ctx, "ls-tree", "-z", "--full-tree", commit, "--", Dir)
	if err != nil {
		return nil, err
	}
	type entry struct{ path, id string }
	var ents []entry
	for _, rec := range bytes.Split(out, []byte{0}) {
		if len(rec) == 0 {
			continue
		}
		// "<mode> SP <type> SP <object> TAB <file>"
		meta, path, ok := bytes.Cut(rec, []byte{'\t'})
		f := strings.Fields(string(meta))
		if !ok || len(f) != 3 || f[1] != "blob" {
			continue
		}
		// Other files (a README, a .keep) may live beside the pipelines.
		if !bytes.HasSuffix(path, []byte(".yml")) && !bytes.HasSuffix(path, []byte(".yaml")) {
			continue
		}
		ents = append(ents, entry{string(path), f[2]})
	}
	files := make(map[string][]byte, len(ents))
	if len(ents) == 0 {
		return files, nil
	}
	var in bytes.Buffer
	for _, e := range ents {
		in.WriteString(e.id + "\n")
	}
	cmd := g.cmd(ctx, "cat-file", "--batch")
	cmd.Stdin = &in
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	br := bufio.NewReader(stdout)
	for _, e := range ents {
		hdr, err := br.ReadString('\n')
		if err != nil {
			cmd.Wait()
			return nil, fmt.Errorf("read %s: %w", e.path, err)
		}
		f := strings.Fields(hdr)
		if len(f) != 3 {
			cmd.Wait()
			return nil, fmt.Errorf("read %s: %s", e.path, strings.TrimSpace(hdr))
		}
		size, _ := strconv.ParseInt(f[2], 10, 64)
		// Oversized files are reported by the parser; read only enough
		// to know they are too large.
		keep := min(size, MaxFileSize+1)
		data := make([]byte, keep)
		if _, err := io.ReadFull(br, data); err != nil {
			cmd.Wait()
			return nil, err
		}
		if _, err := io.CopyN(io.Discard, br, size-keep+1); err != nil { // rest + LF
			cmd.Wait()
			return nil, err
		}
		files[e.path] = data
	}
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("git cat-file: %w", err)
	}
	return files, nil
}

// changedPaths lists the paths that differ between two commits; from the
// zero id it lists every path of to.
func (g gitReader) changedPaths(ctx context.Context, from, to string) ([]string, error) {
	var out []byte
	var err error
	if from == "" || strings.Trim(from, "0") == "" {
		out, err = g.output(ctx, "ls-tree", "-r", "-z", "--name-only", "--full-tree", to)
	} else {
		out, err = g.output(ctx, "diff-tree", "-r", "-z", "--name-only", "--no-commit-id", from, to)
	}
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

// subject is a commit's subject line.
func (g gitReader) subject(ctx context.Context, commit string) string {
	out, err := g.output(ctx, "log", "-1", "--format=%s", commit)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// checkout lays commit's files into dir (which must exist and be empty).
// It uses a private index file outside the workspace, so the workspace holds
// no .git and jobs cannot reach the server's repository through it.
func (g gitReader) checkout(ctx context.Context, commit, dir, indexFile string) error {
	cmd := g.cmd(ctx, "--work-tree="+dir, "read-tree", "--reset", "-u", commit)
	cmd.Env = append(cmd.Env, "GIT_INDEX_FILE="+indexFile)
	out, err := cmd.CombinedOutput()
	os.Remove(indexFile)
	if err != nil {
		return fmt.Errorf("checkout %s: %w: %s", commit, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// file reads one file at rev; ok is false when it does not exist.
func (g gitReader) file(ctx context.Context, rev, path string) ([]byte, bool, error) {
	cmd := g.cmd(ctx, "cat-file", "blob", rev+":"+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if strings.Contains(stderr.String(), "does not exist") || strings.Contains(stderr.String(), "Not a valid object name") ||
			strings.Contains(stderr.String(), "invalid object name") {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("git cat-file %s:%s: %w: %s", rev, path, err, strings.TrimSpace(stderr.String()))
	}
	return out, true, nil
}
