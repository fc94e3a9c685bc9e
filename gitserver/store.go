package gitserver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// ErrNoRepo is returned for a repository that does not exist.
var ErrNoRepo = errors.New("repository not found")

// ErrRepoExists is returned when creating a repository that exists.
var ErrRepoExists = errors.New("repository already exists")

// MaxNameLen bounds a repository name (SPEC §2).
const MaxNameLen = 255

// ValidName checks a repository name against the SPEC §2 grammar: one or more
// "/"-separated segments of [A-Za-z0-9._-], none starting with ".", at most
// 255 bytes. The grammar alone keeps names inside the data dir: no empty
// segment, no "..", no absolute path. A ".git" suffix is the caller's to strip.
func ValidName(name string) error {
	if name == "" {
		return errors.New("repository name is empty")
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("repository name is %d bytes; the limit is %d", len(name), MaxNameLen)
	}
	segs := strings.Split(name, "/")
	for i, seg := range segs {
		if seg == "" {
			return fmt.Errorf("repository name %q has an empty path segment", name)
		}
		if seg[0] == '.' {
			return fmt.Errorf("repository name %q has a segment starting with '.'", name)
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
				return fmt.Errorf("repository name %q has the character %q; use letters, digits, '.', '_', '-' and '/'", name, c)
			}
		}
		// "a.git/b" would live inside repository "a"'s directory.
		if i < len(segs)-1 && strings.HasSuffix(seg, ".git") {
			return fmt.Errorf("repository name %q has a directory segment ending in .git", name)
		}
	}
	return nil
}

// CleanName turns what a client sends ("/team/app.git", "team/app") into a
// repository name and validates it.
func CleanName(raw string) (string, error) {
	name := strings.TrimPrefix(raw, "/")
	name = strings.TrimSuffix(name, "/")
	name = strings.TrimSuffix(name, ".git")
	if err := ValidName(name); err != nil {
		return "", err
	}
	return name, nil
}

// Store keeps the bare repositories under one directory, NAME.git each.
type Store struct {
	Root     string // absolute
	HooksDir string // written into each repository as core.hooksPath
	// PushHooksDir, when set, is the hooks directory receive-pack runs
	// with: pre-receive and post-receive only (see hooks.PushNames).
	PushHooksDir string
	Git          string // git binary
}

// Path is the bare repository directory of a valid name.
func (s *Store) Path(name string) string {
	return filepath.Join(s.Root, filepath.FromSlash(name)+".git")
}

// NameOf maps a bare repository path back to its name; it refuses any path
// that is not a repository directory of this store.
func (s *Store) NameOf(gitDir string) (string, error) {
	rel, err := filepath.Rel(s.Root, filepath.Clean(gitDir))
	if err != nil || !strings.HasSuffix(rel, ".git") || strings.HasPrefix(rel, "..") {
		return "", fmt.Errorf("%s is not a refline repository", gitDir)
	}
	name := strings.TrimSuffix(filepath.ToSlash(rel), ".git")
	if ValidName(name) != nil {
		return "", fmt.Errorf("%s is not a refline repository", gitDir)
	}
	return name, nil
}

// Exists reports whether the repository exists.
func (s *Store) Exists(name string) bool {
	fi, err := os.Stat(filepath.Join(s.Path(name), "HEAD"))
	return err == nil && fi.Mode().IsRegular()
}

// Create makes a new bare repository. It is built in a temporary directory
// and renamed into place, so a crash never leaves half a repository under a
// valid name.
func (s *Store) Create(ctx context.Context, name, deployBranch string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	if deployBranch == "" {
		deployBranch = "master"
	}
	final := s.Path(name)
	if _, err := os.Stat(final); err == nil {
		return fmt.Errorf("%s: %w", name, ErrRepoExists)
	}
	parent := filepath.Dir(final)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	tmp, err := os.MkdirTemp(parent, ".tmp-"+filepath.Base(final)+"-")
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	defer os.RemoveAll(tmp)
	if err := s.git(ctx, "", "init", "--quiet", "--bare", "--initial-branch="+deployBranch, tmp); err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	if err := s.configure(ctx, tmp, deployBranch); err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		if errors.Is(err, fs.ErrExist) || isNotEmpty(err) {
			return fmt.Errorf("%s: %w", name, ErrRepoExists)
		}
		return fmt.Errorf("create %s: %w", name, err)
	}
	return nil
}

func isNotEmpty(err error) bool {
	var le *os.LinkError
	return errors.As(err, &le) && strings.Contains(le.Err.Error(), "not empty")
}

// configure writes the settings every refline repository has. It runs on
// create and again at every start, so that repositories follow the running
// server (hooks path) and older repositories pick up new settings.
func (s *Store) configure(ctx context.Context, gitDir, deployBranch string) error {
	settings := [][2]string{
		{"core.hooksPath", s.HooksDir},
		{"receive.advertisePushOptions", "true"},
		{"receive.advertiseAtomic", "true"},
		{"uploadpack.allowFilter", "true"},
		{"uploadpack.allowAnySHA1InWant", "false"},
		// Pushes to the checked-out branch of a bare repository are fine;
		// deleting the current branch is a user's choice.
		{"receive.denyDeleteCurrent", "warn"},
	}
	if deployBranch != "" {
		settings = append(settings, [2]string{"refline.deployBranch", deployBranch})
	}
	for _, kv := range settings {
		if err := s.git(ctx, gitDir, "config", kv[0], kv[1]); err != nil {
			return err
		}
	}
	return nil
}

// Reconfigure refreshes the settings of every repository (at start), and
// removes push quarantines older than an hour: receive-pack killed by a
// crash (SIGPIPE) leaves its objects/tmp_objdir-incoming-* behind.
func (s *Store) Reconfigure(ctx context.Context) error {
	names, err := s.List()
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := s.configure(ctx, s.Path(n), ""); err != nil {
			return fmt.Errorf("configure %s: %w", n, err)
		}
		stale, _ := filepath.Glob(filepath.Join(s.Path(n), "objects", "tmp_objdir-incoming-*"))
		for _, q := range stale {
			if fi, err := os.Stat(q); err == nil && time.Since(fi.ModTime()) > time.Hour {
				os.RemoveAll(q)
			}
		}
	}
	return nil
}

// DeployBranch is the branch whose pushes run pipelines.
func (s *Store) DeployBranch(ctx context.Context, name string) string {
	out, err := exec.CommandContext(ctx, s.gitBin(), "--git-dir="+s.Path(name), "config", "--get", "refline.deployBranch").Output()
	if b := strings.TrimSpace(string(out)); err == nil && b != "" {
		return b
	}
	return "master"
}

// Delete removes a repository. It is first renamed out of the namespace so
// that no new session can start on it, then removed.
func (s *Store) Delete(name string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	if !s.Exists(name) {
		return fmt.Errorf("%s: %w", name, ErrNoRepo)
	}
	p := s.Path(name)
	trash := filepath.Join(filepath.Dir(p), ".deleted-"+filepath.Base(p))
	_ = os.RemoveAll(trash)
	if err := os.Rename(p, trash); err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	// Remove the directories that only held it ("team/" of "team/app").
	for dir := filepath.Dir(p); dir != s.Root && strings.HasPrefix(dir, s.Root+string(filepath.Separator)); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			break // not empty
		}
	}
	return nil
}

// List returns every repository name, sorted.
func (s *Store) List() ([]string, error) {
	var names []string
	err := filepath.WalkDir(s.Root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == s.Root {
				return filepath.SkipAll
			}
			return err
		}
		if !d.IsDir() || p == s.Root {
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if strings.HasSuffix(d.Name(), ".git") {
			if name, err := s.NameOf(p); err == nil && s.Exists(name) {
				names = append(names, name)
			}
			return filepath.SkipDir
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list repositories: %w", err)
	}
	sort.Strings(names)
	return names, nil
}

func (s *Store) gitBin() string {
	if s.Git != "" {
		return s.Git
	}
	return "git"
}

func (s *Store) git(ctx context.Context, gitDir string, args ...string) error {
	if gitDir != "" {
		args = append([]string{"--git-dir=" + gitDir}, args...)
	}
	cmd := exec.CommandContext(ctx, s.gitBin(), args...)
	cmd.Env = GitEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("git %s: %w: %s", args[0], err, strings.TrimSpace(string(out)))
	}
	return nil
}

// GitEnv is the whole environment of every git process the server starts:
// nothing from the server's own environment beyond what git needs to run,
// and nothing from any client.
func GitEnv(extra ...string) []string {
	env := []string{"PATH=" + os.Getenv("PATH")}
	// HOME for git's own config; GORACE so that a race-enabled build
	// (the tests) can tune the detector in the hook processes too.
	for _, k := range []string{"HOME", "GORACE"} {
		if v := os.Getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	return append(env, extra...)
}
