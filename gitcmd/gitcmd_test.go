package gitcmd

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestEnv(t *testing.T) {
	t.Setenv("PATH", "/usr/bin:/bin")
	t.Setenv("HOME", "/home/refline")
	t.Setenv("REFLINE_SECRET", "must-not-leak")
	t.Setenv("GIT_DIR", "/elsewhere.git")
	for _, tc := range []struct {
		name   string
		gorace string
		extra  []string
		want   []string
	}{
		{"plain", "", nil,
			[]string{"PATH=/usr/bin:/bin", "HOME=/home/refline", "LC_ALL=C"}},
		{"race build", "atexit_sleep_ms=0", nil,
			[]string{"PATH=/usr/bin:/bin", "HOME=/home/refline", "GORACE=atexit_sleep_ms=0", "LC_ALL=C"}},
		{"extra, then LC_ALL", "", []string{"REFLINE_HOOK_TOKEN=t", "LC_ALL=fr_FR.UTF-8"},
			[]string{"PATH=/usr/bin:/bin", "HOME=/home/refline", "REFLINE_HOOK_TOKEN=t", "LC_ALL=fr_FR.UTF-8", "LC_ALL=C"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GORACE", tc.gorace)
			if got := Env(tc.extra...); !slices.Equal(got, tc.want) {
				t.Errorf("Env(%q) = %q, want %q", tc.extra, got, tc.want)
			}
		})
	}
}

// gitEnvOf runs a git alias that prints the environment git hands its own
// children: what a hook would see.
func gitEnvOf(t *testing.T, r Repo) []string {
	t.Helper()
	out, err := r.Output(context.Background(), "-c", "alias.env=!env", "env")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

func TestCommandEnvironment(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("REFLINE_SECRET", "must-not-leak")
	t.Setenv("GIT_CONFIG_PARAMETERS", "'core.hookspath'='/tmp/evil'")
	env := gitEnvOf(t, Repo{Env: []string{"REFLINE_HOOK_TOKEN=t0ken"}})
	for _, want := range []string{"REFLINE_HOOK_TOKEN=t0ken", "LC_ALL=C", "HOME=" + os.Getenv("HOME")} {
		if !slices.Contains(env, want) {
			t.Errorf("git's environment lacks %s:\n%s", want, strings.Join(env, "\n"))
		}
	}
	for _, kv := range env {
		if strings.Contains(kv, "must-not-leak") || strings.Contains(kv, "/tmp/evil") {
			t.Errorf("the server's environment reached git: %s", kv)
		}
	}
}

func TestTransportEnvironment(t *testing.T) {
	t.Setenv("REFLINE_SECRET", "must-not-leak")
	var out bytes.Buffer
	cmd := Repo{Env: []string{"GIT_PROTOCOL=version=2"}}.Transport(context.Background(), "-c", "alias.env=!env", "env")
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	env := strings.Split(strings.TrimSpace(out.String()), "\n")
	if !slices.Contains(env, "GIT_PROTOCOL=version=2") || !slices.Contains(env, "LC_ALL=C") {
		t.Errorf("git's environment lacks the session's variables:\n%s", out.String())
	}
	if strings.Contains(out.String(), "must-not-leak") {
		t.Errorf("the server's environment reached git:\n%s", out.String())
	}
}

func TestOutputCarriesStderr(t *testing.T) {
	_, err := Repo{GitDir: filepath.Join(t.TempDir(), "none.git")}.Output(context.Background(), "rev-parse", "HEAD")
	if err == nil || !strings.Contains(err.Error(), "not a git repository") {
		t.Fatalf("err = %v, want git's message", err)
	}
}

// testRepo makes a bare repository holding one commit with the file
// dir/a.txt ("hello, world\n") and returns it with the commit's id.
func testRepo(t *testing.T) (Repo, string) {
	t.Helper()
	t.Setenv("HOME", t.TempDir())
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "r.git")
	if err := (Repo{}).Run(ctx, "init", "--quiet", "--bare", dir); err != nil {
		t.Fatal(err)
	}
	r := Repo{GitDir: dir, Env: []string{
		"GIT_AUTHOR_NAME=T", "GIT_AUTHOR_EMAIL=t@example.com",
		"GIT_COMMITTER_NAME=T", "GIT_COMMITTER_EMAIL=t@example.com",
	}}
	write := func(stdin string, args ...string) string {
		t.Helper()
		cmd := r.Command(ctx, args...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("git %s: %v", args[0], err)
		}
		return strings.TrimSpace(string(out))
	}
	blob := write("hello, world\n", "hash-object", "-w", "--stdin")
	sub := write("100644 blob "+blob+"\ta.txt\n", "mktree")
	root := write("040000 tree "+sub+"\tdir\n", "mktree")
	return r, write("", "commit-tree", "-m", "first", root)
}

func TestObjects(t *testing.T) {
	r, commit := testRepo(t)
	objs, err := r.Objects(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rev      string
		limit    int64
		ok       bool
		typ      string
		size     int64
		data     string
		idPrefix string
	}{
		{rev: commit + ":dir/a.txt", limit: 1 << 20, ok: true, typ: "blob", size: 13, data: "hello, world\n"},
		{rev: commit + ":dir/a.txt", limit: 5, ok: true, typ: "blob", size: 13, data: "hello"},
		{rev: commit + ":dir/a.txt", limit: 0, ok: true, typ: "blob", size: 13, data: ""},
		{rev: commit + ":nope", limit: 10, ok: false},
		{rev: strings.Repeat("0", len(commit)), limit: 10, ok: false},
		{rev: commit + "^{commit}", limit: 6, ok: true, typ: "commit", data: "tree ", idPrefix: commit},
		{rev: commit + ":dir", limit: 1 << 20, ok: true, typ: "tree", size: int64(len("100644 a.txt\x00")) + int64(len(commit)/2)},
	} {
		obj, ok, err := objs.Read(tc.rev, tc.limit)
		if err != nil {
			t.Fatalf("Read(%s): %v", tc.rev, err)
		}
		if ok != tc.ok || obj.Type != tc.typ || (tc.size != 0 && obj.Size != tc.size) ||
			(tc.data != "" && !strings.HasPrefix(string(obj.Data), tc.data)) || int64(len(obj.Data)) > tc.limit ||
			(tc.idPrefix != "" && obj.ID != tc.idPrefix) {
			t.Errorf("Read(%s, %d) = %+v, %v; want ok %v, %s of %d bytes starting %q", tc.rev, tc.limit, obj, ok, tc.ok, tc.typ, tc.size, tc.data)
		}
		if ok && obj.Size >= tc.limit && int64(len(obj.Data)) != tc.limit {
			t.Errorf("Read(%s, %d) kept %d bytes, want %d", tc.rev, tc.limit, len(obj.Data), tc.limit)
		}
	}
	if err := objs.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestObjectsOutsideARepository(t *testing.T) {
	objs, err := Repo{GitDir: filepath.Join(t.TempDir(), "none.git")}.Objects(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := objs.Read("HEAD", 10); err == nil {
		t.Fatal("Read outside a repository succeeded")
	}
	if _, _, err := objs.Read("HEAD", 10); err == nil || !strings.Contains(err.Error(), "earlier read failed") {
		t.Errorf("second Read: %v, want the earlier failure", err)
	}
	if err := objs.Close(); err != nil {
		t.Errorf("Close after a failed Read: %v", err)
	}
}

func TestCommandCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (Repo{}).Output(ctx, "version"); err == nil {
		t.Fatal("git ran under a cancelled context")
	}
}
