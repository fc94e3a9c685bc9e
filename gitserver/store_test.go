package gitserver

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCleanName(t *testing.T) {
	tests := []struct {
		raw, want string
		ok        bool
	}{
		{"/app.git", "app", true},
		{"app", "app", true},
		{"team/app.git", "team/app", true},
		{"/team/sub/app", "team/sub/app", true},
		{"a-b_c.d", "a-b_c.d", true},
		{"", "", false},
		{"/", "", false},
		{"..", "", false},
		{"../x", "", false},
		{"a/../b", "", false},
		{"a//b", "", false},
		{"//etc/passwd", "", false},
		{".hidden", "", false},
		{"a/.git/b", "", false},
		{"app.git/x", "", false},
		{"~root/x", "", false},
		{"a b", "", false},
		{"a\x00b", "", false},
		{"a\nb", "", false},
		{"ünïcode", "", false},
		{strings.Repeat("a", 255), strings.Repeat("a", 255), true},
		{strings.Repeat("a", 256), "", false},
	}
	for _, tt := range tests {
		got, err := CleanName(tt.raw)
		if (err == nil) != tt.ok || (tt.ok && got != tt.want) {
			t.Errorf("CleanName(%q) = %q, %v; want %q ok=%v", tt.raw, got, err, tt.want, tt.ok)
		}
	}
}

// FuzzCleanName checks that whatever name is accepted stays inside the
// store's root.
func FuzzCleanName(f *testing.F) {
	for _, s := range []string{"app", "../x", "a/b.git", "/a/../../b", ".x", "a\x00"} {
		f.Add(s)
	}
	root := "/data/repos"
	s := &Store{Root: root}
	f.Fuzz(func(t *testing.T, raw string) {
		name, err := CleanName(raw)
		if err != nil {
			return
		}
		p := s.Path(name)
		if !strings.HasPrefix(p, root+"/") || filepath.Clean(p) != p {
			t.Fatalf("name %q maps to %q outside %s", name, p, root)
		}
		if back, err := s.NameOf(p); err != nil || back != name {
			t.Fatalf("NameOf(Path(%q)) = %q, %v", name, back, err)
		}
	})
}

func TestStoreCreateListDelete(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "repos")
	s := &Store{Root: root, HooksDir: "/nonexistent/hooks"}
	for _, n := range []string{"b", "a", "team/app"} {
		if err := s.Create(ctx, n, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Create(ctx, "a", ""); err == nil {
		t.Fatal("created a twice")
	}
	names, err := s.List()
	if err != nil || strings.Join(names, ",") != "a,b,team/app" {
		t.Fatalf("List = %v, %v", names, err)
	}
	if got := s.DeployBranch(ctx, "a"); got != "master" {
		t.Fatalf("deploy branch %q", got)
	}
	if err := s.Delete("a"); err != nil {
		t.Fatal(err)
	}
	if s.Exists("a") {
		t.Fatal("a still exists")
	}
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Fatalf("leftover %s", e.Name())
		}
	}
	if _, err := s.NameOf("/elsewhere/x.git"); err == nil {
		t.Fatal("NameOf accepted a path outside the store")
	}
}

func TestGitService(t *testing.T) {
	tests := []struct {
		args          []string
		service, path string
		ok            bool
	}{
		{[]string{"git-upload-pack", "/app.git"}, "upload-pack", "/app.git", true},
		{[]string{"git-receive-pack", "app"}, "receive-pack", "app", true},
		{[]string{"git", "upload-pack", "app"}, "upload-pack", "app", true},
		{[]string{"git-upload-archive", "app"}, "upload-archive", "app", true},
		{[]string{"git-shell"}, "", "", false},
		{[]string{"git", "config", "x"}, "", "", false},
		{[]string{"repo", "list"}, "", "", false},
	}
	for _, tt := range tests {
		s, p, ok := gitService(tt.args)
		if s != tt.service || p != tt.path || ok != tt.ok {
			t.Errorf("gitService(%q) = %q %q %v", tt.args, s, p, ok)
		}
	}
}

func TestParseKeyArgs(t *testing.T) {
	const k1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
	const k2 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHaFxKvbj2eUoCZ8tM1L2sG2jDgqkKXgbeNzbuM5Ocki"
	tests := []struct {
		args []string
		n    int
		ok   bool
	}{
		{[]string{k1}, 1, true},
		{[]string{k1 + " alice@laptop"}, 1, true},
		{strings.Fields(k1 + " alice@laptop"), 1, true},     // split by the shell
		{strings.Fields(k1 + " a b " + k2 + " c"), 2, true}, // two keys with comments
		{[]string{k1, k2}, 2, true},
		{[]string{"not-a-key"}, 0, false},
		{[]string{"ssh-ed25519", "AAAAnotbase64!"}, 0, false},
	}
	for _, tt := range tests {
		keys, err := parseKeyArgs(tt.args)
		if (err == nil) != tt.ok || len(keys) != tt.n {
			t.Errorf("parseKeyArgs(%q) = %d keys, %v; want %d ok=%v", tt.args, len(keys), err, tt.n, tt.ok)
		}
	}
}

func TestSplitCommand(t *testing.T) {
	tests := []struct {
		raw  string
		want []string
		ok   bool
	}{
		{"git-upload-pack '/app.git'", []string{"git-upload-pack", "/app.git"}, true},
		{"git upload-pack 'a b'", []string{"git", "upload-pack", "a b"}, true},
		{`repo create "x\"y"`, []string{"repo", "create", `x"y`}, true},
		{`a\ b c`, []string{"a b", "c"}, true},
		{"  spaced   out  ", []string{"spaced", "out"}, true},
		{"'it'\\''s'", []string{"it's"}, true},
		{"''", []string{""}, true},
		{"", nil, true},
		{"git-receive-pack 'unbalanced", nil, false},
		{`say "open`, nil, false},
		{`trailing\`, nil, false},
	}
	for _, tt := range tests {
		got, err := splitCommand(tt.raw)
		if (err == nil) != tt.ok || strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
			t.Errorf("splitCommand(%q) = %q, %v; want %q ok=%v", tt.raw, got, err, tt.want, tt.ok)
		}
	}
}

// TestStoreRefusesInvalidNames checks the store's own defence: a name
// outside the grammar never becomes a repository's directory, whoever asks.
func TestStoreRefusesInvalidNames(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "repos")
	s := &Store{Root: root, HooksDir: "/nonexistent/hooks"}
	if err := s.Create(ctx, "theirs", ""); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"../theirs", "mine/../theirs", "/theirs", "theirs.git/x", "", ".", "a//b", "mine%2F..%2Ftheirs"} {
		if d, err := s.Dir(name); err == nil {
			t.Errorf("Dir(%q) = %s, want an error", name, d)
		}
		if p := s.Path(name); p != filepath.Join(root, invalidRepoDir) {
			t.Errorf("Path(%q) = %s, want the quarantine", name, p)
		}
		if s.Exists(name) {
			t.Errorf("Exists(%q) is true", name)
		}
		if err := s.Create(ctx, name, ""); err == nil {
			t.Errorf("Create(%q) succeeded", name)
		}
		if err := s.Delete(name); err == nil {
			t.Errorf("Delete(%q) succeeded", name)
		}
	}
	if names, err := s.List(); err != nil || len(names) != 1 || names[0] != "theirs" {
		t.Errorf("List() = %v, %v; want [theirs]", names, err)
	}
}

func TestPushIDsOfOneConnectionDiffer(t *testing.T) {
	var s Server
	const conn = "3f1c9a7be2d04c5a99e1"
	a, b := s.pushID(conn), s.pushID(conn)
	if a == b {
		t.Fatalf("two pushes over one connection share the id %q", a)
	}
	if !strings.HasPrefix(a, shortID(conn)) {
		t.Errorf("push id %q does not name its connection %q", a, shortID(conn))
	}
}
