package pipelines

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/refline/refline/gitcmd"
	"github.com/refline/refline/pipelines/spec"
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
	return gitcmd.Repo{GitDir: g.gitDir, Env: g.env}.Command(ctx, args...)
}

func (g gitReader) output(ctx context.Context, args ...string) ([]byte, error) {
	return gitcmd.Repo{GitDir: g.gitDir, Env: g.env}.Output(ctx, args...)
}

// pipelineFiles returns the files under .refline/pipelines/ at commit, by
// path. Only regular .yml/.yaml files directly in that directory count
// (a README may live beside them).
func (g gitReader) pipelineFiles(ctx context.Context, commit string) (map[string][]byte, error) {
	_, files, err := g.read(ctx, commit)
	return files, err
}

// read returns commit's subject and its pipeline files, with a single
// `git cat-file --batch` process: this is on the path of every push.
func (g gitReader) read(ctx context.Context, commit string) (subject string, files map[string][]byte, err error) {
	objs, err := gitcmd.Repo{GitDir: g.gitDir, Env: g.env}.Objects(ctx)
	if err != nil {
		return "", nil, err
	}
	defer func() {
		if cerr := objs.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	// ask reads one object's type and content; a missing object is
	// ("", nil, nil). Content beyond limit is dropped.
	hashLen := 20
	ask := func(req string, limit int64) (string, []byte, error) {
		obj, ok, err := objs.Read(req, limit)
		if err != nil || !ok {
			return "", nil, err
		}
		hashLen = len(obj.ID) / 2 // SHA-1 or SHA-256, as the repository says
		return obj.Type, obj.Data, nil
	}

	typ, data, err := ask(commit+"^{commit}", 1<<20)
	if err != nil {
		return "", nil, err
	}
	if typ != "commit" {
		return "", nil, fmt.Errorf("%s is not a commit", commit)
	}
	if _, msg, ok := bytes.Cut(data, []byte("\n\n")); ok {
		// Like git's %s: the first paragraph, its lines joined.
		para, _, _ := strings.Cut(string(msg), "\n\n")
		var lines []string
		for _, l := range strings.Split(para, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				lines = append(lines, l)
			}
		}
		subject = strings.Join(lines, " ")
	}
	files = map[string][]byte{}
	typ, tree, err := ask(commit+"^{commit}:"+strings.TrimSuffix(spec.Dir, "/"), 1<<20)
	if err != nil || typ != "tree" {
		return subject, files, err
	}
	// Tree entries are "MODE NAME\0" and the raw object id.
	for len(tree) > 0 {
		sp := bytes.IndexByte(tree, ' ')
		nul := bytes.IndexByte(tree, 0)
		if sp < 0 || nul < sp || len(tree) < nul+1+hashLen {
			return subject, nil, fmt.Errorf("malformed tree %s", spec.Dir)
		}
		mode, name := string(tree[:sp]), string(tree[sp+1:nul])
		id := hex.EncodeToString(tree[nul+1 : nul+1+hashLen])
		tree = tree[nul+1+hashLen:]
		if (mode != "100644" && mode != "100755") || !(strings.HasSuffix(name, ".yml") || strings.HasSuffix(name, ".yaml")) {
			continue
		}
		// Oversized files are reported by the parser; read only enough
		// to know they are too large.
		_, blob, err := ask(id, spec.MaxFileSize+1)
		if err != nil {
			return subject, nil, err
		}
		files[spec.Dir+name] = blob
	}
	return subject, files, nil
}

// changedPaths lists the paths that differ between two commits; from the
// zero id it lists every path of to.
func (g gitReader) changedPaths(ctx context.Context, from, to string) ([]string, error) {
	repo := gitcmd.Repo{GitDir: g.gitDir, Env: g.env}
	if from == "" || strings.Trim(from, "0") == "" {
		return repo.Paths(ctx, "ls-tree", "-r", "-z", "--name-only", "--full-tree", to)
	}
	return repo.Paths(ctx, "diff-tree", "-r", "-z", "--name-only", "--no-commit-id", from, to)
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
