package gitserver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/refline/refline/gitcmd"
	"github.com/refline/refline/names"
)

// ErrNoRepo is returned for a repository that does not exist.
var ErrNoRepo = errors.New("repository not found")

// ErrRepoExists is returned when creating a repository that exists.
var ErrRepoExists = errors.New("repository already exists")

// MaxNameLen bounds a repository name (SPEC §2).
const MaxNameLen = names.MaxRepoLen

// ValidName checks a repository name against the SPEC §2 grammar
// (names.Repo). The grammar alone keeps names inside the data dir. A ".git"
// suffix is the caller's to strip.
func ValidName(name string) error { return names.Repo(name) }

// CleanName turns what a client sends ("/team/app.git", "team/app") into a
// repository name and validates it (names.CleanRepo).
func CleanName(raw string) (string, error) { return names.CleanRepo(raw) }

// Store keeps the bare repositories under one directory, NAME.git each.
type Store struct {
	Root     string // absolute
	HooksDir string // written into each repository as core.hooksPath
	// PushHooksDir, when set, is the hooks directory receive-pack runs
	// with: pre-receive and post-receive only (see hooks.PushNames).
	PushHooksDir string
}

// Dir is the bare repository directory of name, or an error for a name
// outside the grammar: the directory is joined from the name.
func (s *Store) Dir(name string) (string, error) {
	if err := ValidName(name); err != nil {
		return "", err
	}
	return filepath.Join(s.Root, filepath.FromSlash(name)+".git"), nil
}

// invalidRepoDir stands for the directory of an invalid name in Path: no
// repository lives there (names never start with '.', List skips it, Create
// refuses), so nothing built from it reaches a repository.
const invalidRepoDir = ".invalid-name.git"

// Path is the bare repository directory of a valid name, for callers that
// checked it; an invalid name gives a directory that holds no repository.
// Dir says why a name is refused.
func (s *Store) Path(name string) string {
	p, err := s.Dir(name)
	if err != nil {
		return filepath.Join(s.Root, invalidRepoDir)
	}
	return p
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
	dir, err := s.Dir(name)
	if err != nil {
		return false
	}
	fi, err := os.Stat(filepath.Join(dir, "HEAD"))
	return err == nil && fi.Mode().IsRegular()
}

// Create makes a new bare repository. It is built in a temporary directory
// and renamed into place, so a crash never leaves half a repository under a
// valid name.
func (s *Store) Create(ctx context.Context, name, deployBranch string) error {
	final, err := s.Dir(name)
	if err != nil {
		return err
	}
	if deployBranch == "" {
		deployBranch = "master"
	}
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
	if err := (gitcmd.Repo{}).Run(ctx, "init", "--quiet", "--bare", "--initial-branch="+deployBranch, tmp); err != nil {
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
		if err := (gitcmd.Repo{GitDir: gitDir}).Run(ctx, "config", kv[0], kv[1]); err != nil {
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
	dir, err := s.Dir(name)
	if err != nil {
		return "master"
	}
	out, err := gitcmd.Repo{GitDir: dir}.Output(ctx, "config", "--get", "refline.deployBranch")
	if b := strings.TrimSpace(string(out)); err == nil && b != "" {
		return b
	}
	return "master"
}

// Delete removes a repository. It is first renamed out of the namespace so
// that no new session can start on it, then removed.
func (s *Store) Delete(name string) error {
	p, err := s.Dir(name)
	if err != nil {
		return err
	}
	if !s.Exists(name) {
		return fmt.Errorf("%s: %w", name, ErrNoRepo)
	}
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
