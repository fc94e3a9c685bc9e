package gitcmd

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	work := filepath.Join(dir, "work")
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
			"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q", work)
	if err := os.MkdirAll(filepath.Join(work, ".refline", "pipelines"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, ".refline", "pipelines", "web.yml"), []byte("stages: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git("-C", work, "add", "-A")
	git("-C", work, "commit", "-q", "-m", "one")
	head := git("-C", work, "rev-parse", "HEAD")
	tree := git("-C", work, "rev-parse", "HEAD:.refline/pipelines")

	objs, err := Repo{GitDir: filepath.Join(work, ".git")}.Resolve(context.Background(), []string{
		head + "^{commit}:.refline/pipelines",
		head + "^{commit}:no such dir",
		head + "^{commit}:.refline/pipelines/web.yml",
		strings.Repeat("1", 40),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{tree + " tree", " ", "blob", " "}
	for i, o := range objs {
		got := o.ID + " " + o.Type
		if i == 2 {
			got = o.Type
		}
		if got != want[i] {
			t.Errorf("object %d: got %q, want %q", i, got, want[i])
		}
	}
	if _, err := (Repo{GitDir: work}).Resolve(context.Background(), []string{"a\nb"}); err == nil {
		t.Error("a name with a line break was sent to git")
	}
}
