package refs

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"golang.org/x/crypto/ssh"
)

// Helpers shared by the tests: they drive the real git binary.

func gitPath(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("git")
	if err != nil {
		t.Fatalf("these tests need git: %v", err)
	}
	return p
}

// testGitEnv is a reproducible environment for the git the tests run
// themselves: no user or system configuration, a fixed identity.
func testGitEnv(testing.TB) []string {
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=/nonexistent",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=Test",
		"GIT_AUTHOR_EMAIL=test@example.com",
		"GIT_COMMITTER_NAME=Test",
		"GIT_COMMITTER_EMAIL=test@example.com",
		"LC_ALL=C",
	}
}

// runGit runs git in dir with stdin and returns its trimmed stdout, failing
// the test on error.
func runGit(t testing.TB, dir, stdin string, args ...string) string {
	t.Helper()
	out, stderr, err := tryGit(t, dir, stdin, args...)
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return out
}

func tryGit(t testing.TB, dir, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(gitPath(t), args...)
	cmd.Dir = dir
	cmd.Env = testGitEnv(t)
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return strings.TrimSpace(o.String()), e.String(), err
}

// initBare makes an empty bare repository and returns its path.
func initBare(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo.git")
	runGit(t, "", "", "init", "--quiet", "--bare", dir)
	return dir
}

// gitCommit makes a commit of the empty tree with git and returns its hash.
func gitCommit(t testing.TB, gitDir, msg string, parents ...plumbing.Hash) plumbing.Hash {
	t.Helper()
	tree := runGit(t, "", "", "--git-dir="+gitDir, "hash-object", "-w", "-t", "tree", "/dev/null")
	args := []string{"--git-dir=" + gitDir, "commit-tree", tree, "-m", msg}
	for _, p := range parents {
		args = append(args, "-p", p.String())
	}
	return plumbing.NewHash(runGit(t, "", "", args...))
}

func refValue(t testing.TB, gitDir, ref string) string {
	t.Helper()
	out, _, err := tryGit(t, "", "", "--git-dir="+gitDir, "rev-parse", "--verify", "--quiet", ref)
	if err != nil {
		return ""
	}
	return out
}

func newTestSigner(t testing.TB) *Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return NewSigner(key, "refline@test.example")
}

func openRepo(t testing.TB, gitDir string) *git.Repository {
	t.Helper()
	repo, err := git.PlainOpen(gitDir)
	if err != nil {
		t.Fatal(err)
	}
	return repo
}

func testIdentity() object.Signature {
	return object.Signature{Name: "refline", Email: "refline@test.example", When: time.Unix(1700000000, 0).UTC()}
}

// emptyTree stores the empty tree with go-git and returns its hash.
func emptyTree(t testing.TB, repo *git.Repository) plumbing.Hash {
	t.Helper()
	obj := repo.Storer.NewEncodedObject()
	if err := (&object.Tree{}).Encode(obj); err != nil {
		t.Fatal(err)
	}
	h, err := repo.Storer.SetEncodedObject(obj)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
