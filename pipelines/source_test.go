package pipelines

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/refline/refline/pipelines/spec"
)

// testGit runs git in dir with a fixed identity and no user or system
// configuration, and returns its trimmed output.
func testGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=Tester", "GIT_AUTHOR_EMAIL=tester@example.com",
		"GIT_COMMITTER_NAME=Tester", "GIT_COMMITTER_EMAIL=tester@example.com",
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// testRepo is a bare repository and a work tree to make its commits in.
type testRepo struct {
	t      *testing.T
	gitDir string
	work   string
}

func newTestRepo(t *testing.T, gitDir string) *testRepo {
	t.Helper()
	work := t.TempDir()
	testGit(t, work, "init", "-q", "--bare", "-b", "master", gitDir)
	return &testRepo{t: t, gitDir: gitDir, work: work}
}

// commit changes the work tree (a nil content deletes the file; a name
// ending in "*" is written executable) and commits all of it to master.
func (r *testRepo) commit(msg string, files map[string][]byte) string {
	r.t.Helper()
	for name, data := range files {
		mode := os.FileMode(0o644)
		if n, ok := strings.CutSuffix(name, "*"); ok {
			name, mode = n, 0o755
		}
		p := filepath.Join(r.work, name)
		if data == nil {
			if err := os.Remove(p); err != nil {
				r.t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(p, data, mode); err != nil {
			r.t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			r.t.Fatal(err)
		}
	}
	g := []string{"--git-dir=" + r.gitDir, "--work-tree=" + r.work}
	testGit(r.t, r.work, append(g, "add", "-A")...)
	testGit(r.t, r.work, append(g, "commit", "-q", "--allow-empty", "-m", msg)...)
	return testGit(r.t, r.work, append(g, "rev-parse", "HEAD")...)
}

func TestPipelineFiles(t *testing.T) {
	repo := newTestRepo(t, filepath.Join(t.TempDir(), "app.git"))
	big := bytes.Repeat([]byte("# padding\n"), spec.MaxFileSize/10+100) // > MaxFileSize
	files := map[string][]byte{
		".refline/pipelines/api.yaml":        []byte("api\n"),
		".refline/pipelines/big.yml":         big,
		".refline/pipelines/web.yml":         []byte("web\n"),
		".refline/pipelines/zz.yml":          []byte("after the big one\n"),
		".refline/pipelines/README.md":       []byte("not a pipeline\n"),
		".refline/pipelines/.keep":           {},
		".refline/pipelines/web.yml.orig":    []byte("not a pipeline\n"),
		".refline/pipelines/nested/deep.yml": []byte("not directly in the directory\n"),
		".refline/other.yml":                 []byte("not in the directory\n"),
		"sub/.refline/pipelines/sub.yml":     []byte("not at the root\n"),
		"web.yml":                            []byte("not in the directory\n"),
	}
	files[".refline/pipelines/run.yml*"] = []byte("executable\n")
	// A symlink is not a regular file: it is not read (as its target's
	// name) as a pipeline.
	if err := os.MkdirAll(filepath.Join(repo.work, spec.Dir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("web.yml", filepath.Join(repo.work, spec.Dir, "alias.yml")); err != nil {
		t.Fatal(err)
	}
	commit := repo.commit("pipelines", files)

	g := gitReader{gitDir: repo.gitDir}
	got, err := g.pipelineFiles(context.Background(), commit)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for name := range got {
		names = append(names, name)
	}
	slices.Sort(names)
	want := []string{".refline/pipelines/api.yaml", ".refline/pipelines/big.yml", ".refline/pipelines/run.yml", ".refline/pipelines/web.yml", ".refline/pipelines/zz.yml"}
	if !slices.Equal(names, want) {
		t.Fatalf("pipelineFiles returned %q, want %q", names, want)
	}
	for _, name := range []string{".refline/pipelines/api.yaml", ".refline/pipelines/run.yml*", ".refline/pipelines/web.yml", ".refline/pipelines/zz.yml"} {
		if path := strings.TrimSuffix(name, "*"); !bytes.Equal(got[path], files[name]) {
			t.Errorf("%s: %q, want %q", path, got[path], files[name])
		}
	}
	// An oversized file is read only far enough for the parser to say so.
	if b := got[".refline/pipelines/big.yml"]; len(b) != spec.MaxFileSize+1 || !bytes.Equal(b, big[:spec.MaxFileSize+1]) {
		t.Errorf("big.yml: %d bytes, want its first %d", len(b), spec.MaxFileSize+1)
	}
	if _, err := spec.Parse(".refline/pipelines/big.yml", got[".refline/pipelines/big.yml"]); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("Parse of the truncated big file = %v, want the size error", err)
	}

	// Names work as well as ids; a commit without pipelines has none.
	if got, err := g.pipelineFiles(context.Background(), "master"); err != nil || len(got) != 5 {
		t.Errorf("pipelineFiles(master) = %d files, %v", len(got), err)
	}
	empty := repo.commit("no pipelines", map[string][]byte{
		".refline/pipelines/api.yaml": nil, ".refline/pipelines/big.yml": nil, ".refline/pipelines/run.yml": nil,
		".refline/pipelines/web.yml": nil, ".refline/pipelines/zz.yml": nil, ".refline/pipelines/alias.yml": nil,
	})
	if got, err := g.pipelineFiles(context.Background(), empty); err != nil || len(got) != 0 {
		t.Errorf("pipelineFiles of a commit without pipelines = %q, %v", got, err)
	}
	if _, err := g.pipelineFiles(context.Background(), strings.Repeat("1", 40)); err == nil {
		t.Errorf("pipelineFiles of a missing commit succeeded")
	}
}

func TestChangedPaths(t *testing.T) {
	repo := newTestRepo(t, filepath.Join(t.TempDir(), "app.git"))
	c1 := repo.commit("one", map[string][]byte{
		"README":        []byte("readme\n"),
		"web/index.htm": []byte("<p>\n"),
		"web/app.js":    []byte("js\n"),
		"lib/a.go":      []byte("package a\n"),
		"lib/b.go":      []byte("package b\n"),
	})
	c2 := repo.commit("two", map[string][]byte{
		"web/app.js":       []byte("js 2\n"), // modified
		"lib/b.go":         nil,              // deleted
		"docs/new/file.md": []byte("new\n"),  // added
		"README*":          []byte("readme\n"),
	})
	g := gitReader{gitDir: repo.gitDir}
	ctx := context.Background()
	for _, from := range []string{"", strings.Repeat("0", 40)} {
		got, err := g.changedPaths(ctx, from, c1)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"README", "lib/a.go", "lib/b.go", "web/app.js", "web/index.htm"}; !slices.Equal(got, want) {
			t.Errorf("changedPaths(%q, c1) = %q, want %q", from, got, want)
		}
	}
	got, err := g.changedPaths(ctx, c1, c2)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	// A mode change counts as a change.
	if want := []string{"README", "docs/new/file.md", "lib/b.go", "web/app.js"}; !slices.Equal(got, want) {
		t.Errorf("changedPaths(c1, c2) = %q, want %q", got, want)
	}
	if got, err := g.changedPaths(ctx, c2, c2); err != nil || len(got) != 0 {
		t.Errorf("changedPaths(c2, c2) = %q, %v", got, err)
	}
}

func TestSubject(t *testing.T) {
	repo := newTestRepo(t, filepath.Join(t.TempDir(), "app.git"))
	c := repo.commit("fix the \"thing\"\n\nbody text", map[string][]byte{"f": []byte("x")})
	g := gitReader{gitDir: repo.gitDir}
	if s := g.subject(context.Background(), c); s != `fix the "thing"` {
		t.Errorf("subject = %q", s)
	}
	if s := g.subject(context.Background(), strings.Repeat("1", 40)); s != "" {
		t.Errorf("subject of a missing commit = %q", s)
	}
}

func TestCheckout(t *testing.T) {
	repo := newTestRepo(t, filepath.Join(t.TempDir(), "app.git"))
	c := repo.commit("files", map[string][]byte{
		"Makefile":                   []byte("all:\n"),
		"scripts/build.sh*":          []byte("#!/bin/sh\necho built\n"),
		"deep/er/still/file.txt":     []byte("deep\n"),
		".refline/pipelines/web.yml": []byte("web\n"),
	})
	if err := os.Symlink("Makefile", filepath.Join(repo.work, "link")); err != nil {
		t.Fatal(err)
	}
	c = repo.commit("link", nil)

	tmp := t.TempDir()
	dir := filepath.Join(tmp, "work")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	index := filepath.Join(tmp, "work.index")
	g := gitReader{gitDir: repo.gitDir}
	if err := g.checkout(context.Background(), c, dir, index); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"Makefile": "all:\n", "scripts/build.sh": "#!/bin/sh\necho built\n",
		"deep/er/still/file.txt": "deep\n", ".refline/pipelines/web.yml": "web\n",
	} {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(b) != want {
			t.Errorf("%s: %q, %v; want %q", name, b, err, want)
		}
	}
	for name, isExec := range map[string]bool{"scripts/build.sh": true, "Makefile": false} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode()&0o111 != 0; got != isExec {
			t.Errorf("%s: mode %v, executable %v, want %v", name, fi.Mode(), got, isExec)
		}
	}
	if target, err := os.Readlink(filepath.Join(dir, "link")); err != nil || target != "Makefile" {
		t.Errorf("link: %q, %v", target, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, ".git")); !os.IsNotExist(err) {
		t.Errorf("the workspace holds .git: %v", err)
	}
	if _, err := os.Stat(index); !os.IsNotExist(err) {
		t.Errorf("the index file was not removed: %v", err)
	}
	// Only the files of the commit.
	var all []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			all = append(all, rel)
		}
		return err
	})
	slices.Sort(all)
	if want := []string{".refline/pipelines/web.yml", "Makefile", "deep/er/still/file.txt", "link", "scripts/build.sh"}; !slices.Equal(all, want) {
		t.Errorf("workspace holds %q, want %q", all, want)
	}

	// A failed checkout reports the commit and still removes the index.
	if err := os.WriteFile(index, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := g.checkout(context.Background(), strings.Repeat("1", 40), t.TempDir(), index)
	if err == nil || !strings.Contains(err.Error(), "checkout 1111111") {
		t.Errorf("checkout of a missing commit = %v", err)
	}
	if _, err := os.Stat(index); !os.IsNotExist(err) {
		t.Errorf("the index file was not removed after a failure: %v", err)
	}
}
