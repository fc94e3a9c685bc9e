package refs

import (
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
)

// fixture is a file tree: path → content, with a mode or a symlink target.
type fixtureEntry struct {
	content string
	mode    os.FileMode // 0 means 0o644
	link    string      // a symlink to this target instead of a file
	dir     bool        // an (empty) directory
}

func writeFixture(t testing.TB, root string, entries map[string]fixtureEntry) {
	t.Helper()
	for name, e := range entries {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case e.dir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case e.link != "":
			if err := os.Symlink(e.link, p); err != nil {
				t.Fatal(err)
			}
		default:
			mode := e.mode
			if mode == 0 {
				mode = 0o644
			}
			if err := os.WriteFile(p, []byte(e.content), mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, mode); err != nil { // past the umask
				t.Fatal(err)
			}
		}
	}
}

// artifactFixture exercises modes, symlinks (also ones pointing out of the
// root), nesting, empty directories and git's tree ordering.
var artifactFixture = map[string]fixtureEntry{
	"bin/app":                 {content: "#!/bin/sh\necho app\n", mode: 0o755},
	"bin/owner-x":             {content: "x", mode: 0o744},
	"bin/group-x":             {content: "x", mode: 0o654}, // git looks at the owner bit only
	"bin/lib/libfoo.so":       {content: strings.Repeat("\x7fELF", 1000)},
	"bin/lib/deeper/data.bin": {content: "\x00\x01\x02"},
	"bin/empty":               {content: ""},
	"bin/empty-dir":           {dir: true},
	"bin/empty-nested/a/b":    {dir: true},
	"bin/link-out":            {link: "../../../../../etc/passwd"},
	"bin/link-abs":            {link: "/etc/passwd"},
	"bin/link-dir":            {link: "../deploy"},
	"bin/dangling":            {link: "does/not/exist"},
	"bin/foo/x":               {content: "in foo/"},
	"bin/foo.txt":             {content: "foo.txt"},
	"bin/foo-bar":             {content: "foo-bar"},
	"bin/foo0":                {content: "foo0"},
	"bin/with space":          {content: "spaced"},
	"bin/ünïcödé":             {content: "unicode"},
	"deploy/run.sh":           {content: "#!/bin/sh\n./bin/app\n", mode: 0o755},
	"deploy/secret.env":       {content: "NOT=selected"},
	"README.md":               {content: "# readme\n"},
	"notes.txt":               {content: "not selected"},
	"current":                 {link: "bin/app"},
}

var artifactPaths = []string{"bin/", "deploy/run.sh", "README.md", "current"}

// gitTree commits the fixture's selected paths with git in a worktree at
// root and returns the tree git wrote.
func gitTree(t testing.TB, root string, paths []string) string {
	t.Helper()
	runGit(t, root, "", "init", "--quiet")
	runGit(t, root, "", append([]string{"add", "--"}, paths...)...)
	return runGit(t, root, "", "write-tree")
}

func TestWriteTreeMatchesGit(t *testing.T) {
	root := t.TempDir()
	writeFixture(t, root, artifactFixture)
	dir := initBare(t)

	got, err := WriteTree(openRepo(t, dir), root, artifactPaths)
	if err != nil {
		t.Fatal(err)
	}
	want := gitTree(t, root, artifactPaths)
	if got.String() != want {
		t.Errorf("WriteTree = %s, git wrote %s\nours:\n%s\ngit's:\n%s", got, want,
			runGit(t, "", "", "--git-dir="+dir, "ls-tree", "-r", got.String()),
			runGit(t, root, "", "ls-tree", "-r", want))
	}
	ls := runGit(t, "", "", "--git-dir="+dir, "ls-tree", "-r", got.String())
	for _, line := range []string{
		"100755 blob", "\tbin/app",
		"120000 blob", "\tbin/link-out",
	} {
		if !strings.Contains(ls, line) {
			t.Errorf("ls-tree lacks %q:\n%s", line, ls)
		}
	}
	for _, absent := range []string{"notes.txt", "secret.env", "empty-dir", "empty-nested"} {
		if strings.Contains(ls, absent) {
			t.Errorf("ls-tree has %s:\n%s", absent, ls)
		}
	}
	// Links are stored as their target, not followed.
	if target := runGit(t, "", "", "--git-dir="+dir, "cat-file", "-p", got.String()+":bin/link-out"); target != "../../../../../etc/passwd" {
		t.Errorf("bin/link-out stored as %q", target)
	}
	if target := runGit(t, "", "", "--git-dir="+dir, "cat-file", "-p", got.String()+":bin/link-abs"); target != "/etc/passwd" {
		t.Errorf("bin/link-abs stored as %q", target)
	}
	runGit(t, "", "", "--git-dir="+dir, "fsck", "--strict")

	// Deterministic, and selecting a file twice changes nothing.
	again, err := WriteTree(openRepo(t, dir), root, append([]string{"bin/app", "bin/lib/"}, artifactPaths...))
	if err != nil {
		t.Fatal(err)
	}
	if again != got {
		t.Errorf("second WriteTree = %s, first %s", again, got)
	}

	// go-git's memory storage (no streaming writer) gives the same tree.
	mem, err := git.Init(memory.NewStorage(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if inMem, err := WriteTree(mem, root, artifactPaths); err != nil || inMem != got {
		t.Errorf("WriteTree in memory = %s, %v; want %s", inMem, err, got)
	}
}

func TestWriteTreeRefuses(t *testing.T) {
	root := t.TempDir()
	writeFixture(t, root, map[string]fixtureEntry{
		"bin/app":           {content: "app"},
		"file.txt":          {content: "x"},
		"emptydir/sub":      {dir: true},
		"linkdir":           {link: "bin"},
		"outside":           {link: "/etc"},
		"up":                {link: ".."},
		"withgit/.git/HEAD": {content: "ref: refs/heads/main\n"},
		"withGIT/.GIT/x":    {content: "x"},
	})
	if err := syscall.Mkfifo(filepath.Join(root, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want string // in the error
	}{
		{"nope/", "nope: no such file or directory"},
		{"bin/nope", "bin/nope: no such file or directory"},
		{"../x", `".."`},
		{"bin/../file.txt", `".."`},
		{"/etc/passwd", "relative"},
		{"", "relative"},
		{"/", "relative"},
		{".", `"."`},
		{"bin//app", "empty"},
		{"linkdir/", "linkdir is a symlink; refusing to follow it"},
		{"linkdir/app", "linkdir is a symlink; refusing to follow it"},
		{"outside/", "outside is a symlink; refusing to follow it"},
		{"outside/passwd", "outside is a symlink; refusing to follow it"},
		{"up/", "up is a symlink"},
		{"file.txt/", "file.txt is not a directory"},
		{"file.txt/x", "file.txt is not a directory"},
		{"emptydir/", "emptydir holds no files"},
		{"withgit/", "withgit/.git"},
		{"withGIT/", "withGIT/.GIT"},
		{"withgit/.git/HEAD", ".git"},
		{"pipe", "pipe is a named pipe"},
	} {
		_, err := WriteTree(openRepo(t, initBare(t)), root, []string{tc.path})
		if err == nil {
			t.Errorf("WriteTree(%q) succeeded", tc.path)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `"`+tc.path+`"`) {
			t.Errorf("WriteTree(%q) = %v; want it to name the path and say %q", tc.path, err, tc.want)
		}
	}
	if _, err := WriteTree(openRepo(t, initBare(t)), filepath.Join(root, "nope"), []string{"bin/"}); err == nil {
		t.Error("WriteTree in a missing root succeeded")
	}
	// A symlink named directly is stored as a link.
	dir := initBare(t)
	h, err := WriteTree(openRepo(t, dir), root, []string{"linkdir", "outside"})
	if err != nil {
		t.Fatal(err)
	}
	if ls := runGit(t, "", "", "--git-dir="+dir, "ls-tree", h.String()); strings.Count(ls, "120000 blob") != 2 {
		t.Errorf("symlinks not stored as links:\n%s", ls)
	}
}

func TestBlobStoreRejectsChangedSize(t *testing.T) {
	dir := initBare(t)
	repo := openRepo(t, dir)
	// objectsDir is where WriteTree writes: the loose writer, not go-git's.
	bs := &blobStore{s: repo.Storer, objects: objectsDir(repo)}
	if _, err := bs.write(strings.NewReader("short"), 10); !errors.Is(err, errChanged) {
		t.Errorf("short content: %v, want errChanged", err)
	}
	if _, err := bs.write(strings.NewReader("longer than said"), 4); !errors.Is(err, errChanged) {
		t.Errorf("long content: %v, want errChanged", err)
	}
	h, err := bs.write(strings.NewReader("exact"), 5)
	if err != nil {
		t.Fatal(err)
	}
	if want := runGit(t, "", "exact", "hash-object", "--stdin"); h.String() != want {
		t.Errorf("blob %s, git says %s", h, want)
	}
	// Whatever the failed writes left is valid, not a corrupt object.
	runGit(t, "", "", "--git-dir="+dir, "fsck", "--strict")
}

// TestWriteTreeStreamsLargeFiles checks that a file is never read into
// memory whole: allocation during WriteTree stays far below its size.
// Compression is slow under the race detector, so -race and -short use a
// smaller file; buffering it whole would still allocate several times more.
func TestWriteTreeStreamsLargeFiles(t *testing.T) {
	size := 50 << 20
	if raceEnabled || testing.Short() {
		size = 16 << 20
	}
	root := t.TempDir()
	f, err := os.Create(filepath.Join(root, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, int64(size)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	dir := initBare(t)
	repo := openRepo(t, dir)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tree, err := WriteTree(repo, root, []string{"big.bin"})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("WriteTree of a %d MB file allocated %.1f MB", size>>20, float64(allocated)/(1<<20))
	if allocated > uint64(size/4) {
		t.Errorf("WriteTree allocated %d bytes for a %d-byte file; it must stream", allocated, size)
	}

	want := runGit(t, root, "", "hash-object", "big.bin")
	got := runGit(t, "", "", "--git-dir="+dir, "rev-parse", tree.String()+":big.bin")
	if got != want {
		t.Errorf("stored blob %s, git hash-object says %s", got, want)
	}
	if n := runGit(t, "", "", "--git-dir="+dir, "cat-file", "-s", got); n != strconv.Itoa(size) {
		t.Errorf("blob size %s", n)
	}
}

func TestWriteSignedCommit(t *testing.T) {
	dir := initBare(t)
	repo := openRepo(t, dir)
	s := newTestSigner(t)
	root := t.TempDir()
	writeFixture(t, root, artifactFixture)
	tree, err := WriteTree(repo, root, artifactPaths)
	if err != nil {
		t.Fatal(err)
	}
	msg := "web #12: artifact of 3f2a9c1 \"subject\"\n\nSource-Commit: 3f2a9c1\nPipeline: web\nRun: 12"
	c, err := WriteSignedCommit(repo, CommitSpec{Tree: tree, Message: msg, Committer: testIdentity()}, s)
	if err != nil {
		t.Fatal(err)
	}
	raw := runGit(t, "", "", "--git-dir="+dir, "cat-file", "commit", c.String())
	for _, want := range []string{
		"tree " + tree.String() + "\n",
		"author refline <refline@test.example> 1700000000 +0000\n",
		"committer refline <refline@test.example> 1700000000 +0000\n",
		"\n\n" + msg,
	} {
		if !strings.Contains(raw, want) {
			t.Errorf("commit lacks %q:\n%s", want, raw)
		}
	}
	if strings.Contains(raw, "\nparent ") {
		t.Errorf("root commit has a parent:\n%s", raw)
	}
	commit, err := object.GetCommit(repo.Storer, c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(commit.Message, "Run: 12\n") {
		t.Errorf("message %q lacks the final newline", commit.Message)
	}

	// Missing tree or parent, bad identities, no signer.
	for name, spec := range map[string]CommitSpec{
		"missing tree":   {Tree: plumbing.NewHash(strings.Repeat("ab", 20)), Committer: testIdentity()},
		"missing parent": {Tree: tree, Parent: plumbing.NewHash(strings.Repeat("ab", 20)), Committer: testIdentity()},
		"tree as parent": {Tree: tree, Parent: tree, Committer: testIdentity()},
		"no committer":   {Tree: tree},
		"bad email":      {Tree: tree, Committer: object.Signature{Name: "x", Email: "a>b"}},
	} {
		if _, err := WriteSignedCommit(repo, spec, s); err == nil {
			t.Errorf("%s: WriteSignedCommit succeeded", name)
		}
	}
	if _, err := WriteSignedCommit(repo, CommitSpec{Tree: tree, Committer: testIdentity()}, nil); err == nil {
		t.Error("WriteSignedCommit without a signer succeeded")
	}
	runGit(t, "", "", "--git-dir="+dir, "fsck", "--strict")
}

func TestWriteTreeMax(t *testing.T) {
	root := t.TempDir()
	for name, size := range map[string]int{"out/a": 600, "out/b": 500, "small": 10} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, name), make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir := initBare(t)
	repo := openRepo(t, dir)
	for _, tc := range []struct {
		paths []string
		max   int64
		size  int64 // of the *TooLargeError, 0 for none
	}{
		{[]string{"out/"}, 1100, 0},
		{[]string{"out/"}, 1099, 1100},
		{[]string{"out/a", "small"}, 1000, 0},
		{[]string{"out/", "small"}, 0, 0},
	} {
		_, err := WriteTreeMax(repo, root, tc.paths, tc.max)
		var tl *TooLargeError
		switch {
		case tc.size == 0 && err != nil:
			t.Errorf("%v within %d: %v", tc.paths, tc.max, err)
		case tc.size != 0 && (!errors.As(err, &tl) || tl.Size != tc.size || tl.Limit != tc.max):
			t.Errorf("%v over %d: got %v, want a TooLargeError of %d bytes", tc.paths, tc.max, err, tc.size)
		}
	}
}
