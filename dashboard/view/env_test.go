package view

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/ssh"

	"github.com/refline/refline/access"
	"github.com/refline/refline/pipelines"
	"github.com/refline/refline/refs"
)

// testRepos holds bare repositories as ROOT/NAME.git, master their
// deploy branch.
type testRepos struct{ root string }

func (r testRepos) Path(name string) string { return filepath.Join(r.root, name+".git") }

func (r testRepos) Exists(name string) bool {
	_, err := os.Stat(r.Path(name))
	return err == nil
}

func (r testRepos) List() ([]string, error) {
	m, err := filepath.Glob(filepath.Join(r.root, "*.git"))
	for i := range m {
		m[i] = strings.TrimSuffix(filepath.Base(m[i]), ".git")
	}
	return m, err
}

func (r testRepos) DeployBranch(context.Context, string) string { return "master" }

// world is a server's parts without its SSH face: real repositories made
// with git, the real access store, a real runner running real jobs, and
// the view over them.
type world struct {
	t      testing.TB
	repos  testRepos
	users  *access.Store
	runner *pipelines.Runner
	signer *refs.Signer
	view   *View
	age    *age.X25519Identity // the server's identity for secrets
	work   map[string]string   // repo -> work tree
	log    *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

var (
	alice = access.User{Name: "alice"} // deploy to staging, admin of app
	bob   = access.User{Name: "bob"}   // nothing
	carol = access.User{Name: "carol"} // read
)

func newWorld(t testing.TB) *world {
	t.Helper()
	w := &world{t: t, repos: testRepos{root: t.TempDir()}, work: map[string]string{}, log: &syncBuffer{}}
	var err error
	if w.users, err = access.Open(filepath.Join(t.TempDir(), access.FileName)); err != nil {
		t.Fatal(err)
	}
	for _, u := range []access.User{alice, bob, carol} {
		if err := w.users.AddUser(u.Name, []ssh.PublicKey{newKey(t).PublicKey()}, false); err != nil {
			t.Fatal(err)
		}
	}
	w.signer = refs.NewSigner(newKey(t), "refline@test")
	if w.age, err = age.GenerateX25519Identity(); err != nil {
		t.Fatal(err)
	}
	logger := logrus.New()
	logger.SetOutput(w.log)
	logger.SetLevel(logrus.DebugLevel)
	w.runner, err = pipelines.New(pipelines.Config{
		DataDir:       t.TempDir(),
		Repos:         w.repos,
		Executor:      pipelines.Local{Grace: 5 * time.Second},
		MaxJobs:       2,
		Signer:        w.signer,
		Updater:       refs.Updater{},
		Committer:     object.Signature{Name: "refline", Email: "refline@test"},
		Logger:        logrus.NewEntry(logger),
		BaseEnv:       []string{"PATH=" + os.Getenv("PATH")},
		Auth:          w.users,
		AgeIdentities: func() []age.Identity { return []age.Identity{w.age} },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.runner.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		w.runner.Shutdown(0)
		if t.Failed() {
			t.Logf("runner log:\n%s", w.log.String())
		}
	})
	w.view = New(Config{Repos: w.repos, Access: w.users, Runs: w.runner, Deploys: w.runner.Deployer(),
		SigningKey: w.signer.PublicKey(), Logger: logrus.NewEntry(logger)})
	return w
}

func newKey(t testing.TB) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func runGit(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=dev", "GIT_AUTHOR_EMAIL=dev@example.com",
		"GIT_COMMITTER_NAME=dev", "GIT_COMMITTER_EMAIL=dev@example.com", "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// newRepo creates the bare repository name with alice as its admin and
// carol as a reader.
func (w *world) newRepo(name string) {
	w.t.Helper()
	runGit(w.t, w.repos.root, "init", "-q", "--bare", "-b", "master", w.repos.Path(name))
	w.work[name] = w.t.TempDir()
	if err := w.users.SetGrant(name, "alice", access.Grant{Level: access.Admin}); err != nil {
		w.t.Fatal(err)
	}
	if err := w.users.Grant(name, "carol", access.Read); err != nil {
		w.t.Fatal(err)
	}
}

// commit writes files into repo's work tree and commits them to master.
func (w *world) commit(repo, msg string, files map[string]string) string {
	w.t.Helper()
	work := w.work[repo]
	for name, text := range files {
		p := filepath.Join(work, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			w.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			w.t.Fatal(err)
		}
	}
	g := []string{"--git-dir=" + w.repos.Path(repo), "--work-tree=" + work}
	runGit(w.t, work, append(g, "add", "-A")...)
	runGit(w.t, work, append(g, "commit", "-q", "--allow-empty", "-m", msg)...)
	return runGit(w.t, work, append(g, "rev-parse", "HEAD")...)
}

// wait follows a run to its end (its record written) and returns it.
func (w *world) wait(run *pipelines.Run) *pipelines.Run {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	end, err := w.runner.Follow(ctx, run.Repo, run.Pipeline, run.Number, io.Discard)
	if err != nil {
		w.t.Fatalf("follow %s: %v", run.ID(), err)
	}
	return end
}

// build runs pipeline at commit for alice to its end.
func (w *world) build(repo, pipeline, commit string) *pipelines.Run {
	w.t.Helper()
	run, err := w.runner.Enqueue(context.Background(), pipelines.Request{Repo: repo, Pipeline: pipeline, Kind: pipelines.Build,
		Commit: commit, Branch: "master", Trigger: "push by alice", User: "alice"})
	if err != nil {
		w.t.Fatal(err)
	}
	return w.wait(run)
}

// deploy asks for artifact in env as user would with `ssh deploy` (or
// `rollback`) and waits for the deploy's end.
func (w *world) deploy(repo, pipeline, env, artifact, verb string) *pipelines.Run {
	w.t.Helper()
	run, err := w.runner.Deployer().RequestDeploy(context.Background(), repo, pipeline, env, artifact, "alice", verb+" by alice")
	if err != nil {
		w.t.Fatalf("%s %s to %s: %v", verb, artifact[:7], env, err)
	}
	if run == nil {
		w.t.Fatalf("%s %s to %s: nothing to do", verb, artifact[:7], env)
	}
	return w.wait(run)
}

func hash(s string) plumbing.Hash { return plumbing.NewHash(s) }

func commitOf(g *git.Repository, sha string) (*object.Commit, error) {
	return object.GetCommit(g.Storer, plumbing.NewHash(sha))
}

// runGitCmd prepares git in gitDir with no user or system configuration.
func runGitCmd(gitDir string, args ...string) *exec.Cmd {
	cmd := exec.Command("git", append([]string{"--git-dir=" + gitDir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	return cmd
}

// forge writes a copy of artifact art signed by another key.
func forge(t testing.TB, w *world, g *git.Repository, art string) string {
	t.Helper()
	c, err := commitOf(g, art)
	if err != nil {
		t.Fatal(err)
	}
	var parent plumbing.Hash
	if len(c.ParentHashes) > 0 {
		parent = c.ParentHashes[0]
	}
	h, err := refs.WriteSignedCommit(g, refs.CommitSpec{Tree: c.TreeHash, Parent: parent, Message: c.Message,
		Committer: c.Committer}, refs.NewSigner(newKey(t), "refline@test"))
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}
