package names

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestRepo(t *testing.T) {
	for _, tc := range []struct {
		name string
		why  string // "" for valid; else a part of the message
	}{
		{"app", ""},
		{"team/app", ""},
		{"team/sub/app", ""},
		{"a-b_c.d", ""},
		{"A1", ""},
		{"x/y.git", ""}, // the caller strips .git; a last segment may end in it
		{strings.Repeat("a", 255), ""},

		{"", "is empty"},
		{strings.Repeat("a", 256), "the limit is 255"},
		{"..", "segment starting with '.'"},
		{"../theirs", "segment starting with '.'"},
		{"mine/../theirs", "segment starting with '.'"},
		{".hidden", "segment starting with '.'"},
		{"a/.git/b", "segment starting with '.'"},
		{"/abs", "empty path segment"},
		{"a//b", "empty path segment"},
		{"a/", "empty path segment"},
		{"app.git/inside", "directory segment ending in .git"},
		{"mine%2F..%2Ftheirs", "has the character '%'"},
		{"~root/x", "has the character '~'"},
		{"a b", "has the character ' '"},
		{"a\x00b", `has the character '\x00'`},
		{"a\\b", `has the character '\\'`},
		{"ünïcode", "has the character"},
	} {
		err := Repo(tc.name)
		switch {
		case tc.why == "" && err != nil:
			t.Errorf("Repo(%q) = %v, want valid", tc.name, err)
		case tc.why != "" && (err == nil || !strings.Contains(err.Error(), tc.why)):
			t.Errorf("Repo(%q) = %v, want an error saying %q", tc.name, err, tc.why)
		}
	}
	if err := Repo(strings.Repeat("a", 256)); !errors.Is(err, ErrTooLong) {
		t.Errorf("Repo(256 bytes) = %v, does not match ErrTooLong", err)
	}
}

func TestCleanRepo(t *testing.T) {
	for _, tc := range []struct {
		raw, want string
		ok        bool
	}{
		{"/app.git", "app", true},
		{"app", "app", true},
		{"team/app.git", "team/app", true},
		{"/team/sub/app/", "team/sub/app", true},
		{"", "", false},
		{"/", "", false},
		{".git", "", false},
		{"../x", "", false},
		{"//etc/passwd", "", false},
		{"app.git/x.git", "", false},
	} {
		got, err := CleanRepo(tc.raw)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("CleanRepo(%q) = %q, %v; want %q ok=%v", tc.raw, got, err, tc.want, tc.ok)
		}
	}
}

// FuzzCleanRepo checks that an accepted name joined to a directory stays
// below it and is its own clean form, whatever the client sent.
func FuzzCleanRepo(f *testing.F) {
	for _, s := range []string{"app", "../x", "a/b.git", "/a/../../b", ".x", "a\x00", "a%2F..", "a/./b"} {
		f.Add(s)
	}
	const root = "/data/repos"
	f.Fuzz(func(t *testing.T, raw string) {
		name, err := CleanRepo(raw)
		if err != nil {
			return
		}
		p := filepath.Join(root, name)
		if !strings.HasPrefix(p, root+"/") || filepath.ToSlash(p[len(root)+1:]) != name {
			t.Fatalf("name %q joins to %q", name, p)
		}
		if strings.Contains(name, "%") {
			t.Fatalf("name %q holds the escape character of run stores", name)
		}
	})
}

// TestSegments covers the one-segment names: each may become one path
// segment and one ref component, and nothing else.
func TestSegments(t *testing.T) {
	long := strings.Repeat("a", MaxLen+1)
	for _, tc := range []struct {
		check func(string) error
		name  string
		why   string // "" for valid; else the expected Why
	}{
		{Pipeline, "web", ""},
		{Pipeline, "api-2", ""},
		{Pipeline, "0", ""},
		{Pipeline, "a--b", ""},
		{Pipeline, "web-", ""},
		{Pipeline, strings.Repeat("a", MaxLen), ""},
		{Pipeline, "", "is empty; " + lowerRule},
		{Pipeline, long, "is longer than 100 characters; shorten it"},
		{Pipeline, "../theirs/web", "is invalid; " + lowerRule},
		{Pipeline, "web/../../theirs/web", "is invalid; " + lowerRule},
		{Pipeline, "..", "is invalid; " + lowerRule},
		{Pipeline, "/abs/web", "is invalid; " + lowerRule},
		{Pipeline, "..%2Ftheirs%2Fweb", "is invalid; " + lowerRule},
		{Pipeline, "Web", "is invalid; " + lowerRule},
		{Pipeline, "-web", "is invalid; " + lowerRule},
		{Pipeline, "we_b", "is invalid; " + lowerRule},
		{Pipeline, "we.b", "is invalid; " + lowerRule},
		{Pipeline, "wéb", "is invalid; " + lowerRule},
		{Pipeline, "web\n", "is invalid; " + lowerRule},
		{Env, "production", ""},
		{Env, "eu-west-1", ""},
		{Env, "Prod", "is invalid; " + lowerRule},
		{Env, "../../theirs/production", "is invalid; " + lowerRule},
		{Env, "a/b", "is invalid; " + lowerRule},
		{Env, "", "is empty; " + lowerRule},
		{Stage, "build", ""},
		{Stage, "Build.2_x-y", ""},
		{Stage, ".hidden", "is invalid; " + stageRule},
		{Stage, "../x", "is invalid; " + stageRule},
		{Stage, "a/b", "is invalid; " + stageRule},
		{Stage, "my build", "is invalid; " + stageRule},
		{Stage, long, "is longer than 100 characters; shorten it"},
	} {
		err := tc.check(tc.name)
		if got := Why(err); got != tc.why {
			t.Errorf("check(%q) = %v, want why %q", tc.name, err, tc.why)
		}
		if err != nil && (errors.Is(err, ErrTooLong) != (len(tc.name) > MaxLen)) {
			t.Errorf("check(%q) = %v: ErrTooLong match is wrong", tc.name, err)
		}
	}
	if got, want := Pipeline("../x").Error(), `pipeline name "../x" is invalid; `+lowerRule; got != want {
		t.Errorf("Pipeline error = %q, want %q", got, want)
	}
	if got, want := Env("X").Error(), `environment name "X" is invalid; `+lowerRule; got != want {
		t.Errorf("Env error = %q, want %q", got, want)
	}
}

func TestRefComponent(t *testing.T) {
	for name, want := range map[string]bool{
		"production": true, "eu_west.1": true, "Prod": true, "a@b": true,
		"": false, "a/b": false, ".x": false, "x.": false, "x.lock": false, "a..b": false, "@": true, "a b": false,
	} {
		if got := RefComponent(name) == nil; got != want {
			t.Errorf("RefComponent(%q) valid = %v, want %v", name, got, want)
		}
	}
}

func TestBranch(t *testing.T) {
	for _, tc := range []struct{ name, why string }{
		{"main", ""},
		{"feature/x-y", ""},
		{"release/1.0", ""},
		{"", "it is empty"},
		{"HEAD", "HEAD is not a branch"},
		{"-x", "it starts with '-'"},
		{"a b", `it contains ' '`},
		{"a..b", `it contains ".."`},
		{"a@{1}", `it contains "@{"`},
		{"a//b", "it has an empty segment"},
		{"a/", "it has an empty segment"},
		{"a.", "it ends with '.'"},
		{"a/.b", "a segment starts with '.'"},
		{"a.lock/b", `a segment ends with ".lock"`},
		{strings.Repeat("b", 256), "it is longer than 255 bytes"},
	} {
		if got := Why(Branch(tc.name)); got != tc.why {
			t.Errorf("Branch(%q) why = %q, want %q", tc.name, got, tc.why)
		}
	}
}

func gitPath(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("git")
	if err != nil {
		t.Fatalf("these tests need git: %v", err)
	}
	return p
}

// testGitEnv is a reproducible environment for git: no user or system
// configuration.
func testGitEnv(testing.TB) []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=/nonexistent", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "LC_ALL=C"}
}

// refNameCases are ref names with the verdict of `git check-ref-format`.
// They are the seed corpus of FuzzRef, and
// TestRefAgreesWithGit checks each verdict against git itself.
var refNameCases = []struct {
	ref   string
	valid bool
}{
	{"refs/heads/main", true},
	{"refs/tags/v1.0.0", true},
	{"a/b", true},
	{"HEAD/x", true},
	{"refs/heads/feature/x-y_z", true},
	{"refs/heads/ünïcödé", true},
	{"refs/heads/\xff\xfe", true}, // not UTF-8, still fine for git
	{"refs/heads/a.b", true},
	{"refs/heads/a@b", true},
	{"refs/heads/@", true},
	{"refs/heads/@@", true},
	{"refs/heads/a@", true},
	{"@/x", true},
	{"x/@", true},
	{"refs/heads/{x}", true},
	{"refs/heads/{@", true},
	{"refs/heads/a{b", true},
	{"refs/heads/@a{", true},
	{"refs/heads/x.lck", true},
	{"refs/heads/x.lock2", true},
	{"refs/heads/x.LOCK", true}, // the suffix compares case-sensitively
	{"refs/heads/x./y", true},   // only the whole name may not end in "."
	{"refs/heads/a-", true},
	{"refs/heads/a+b=c$d#e%f!g", true},
	{`refs/heads/a'b"c<d>e|f,g;h(i)j]k}l` + "`m&n", true},
	{"refs/artifacts/web", true},
	{"refs/deploy/prod/web", true},
	{"refs/heads/" + strings.Repeat("x", 300), true},

	{"", false},
	{"@", false},
	{"main", false},
	{"HEAD", false},
	{"refs", false},
	{"/", false},
	{"//", false},
	{"/refs/heads/x", false},
	{"refs/heads/x/", false},
	{"refs//heads", false},
	{"refs/heads//x", false},
	{"a/", false},
	{"/a", false},
	{"refs/heads/.x", false},
	{"refs/.heads/x", false},
	{".refs/x", false},
	{"./x", false},
	{"refs/./x", false},
	{"refs/heads/.", false},
	{"refs/heads/..", false},
	{"refs/heads/...", false},
	{"refs/heads/a/./b", false},
	{"refs/heads/a/../b", false},
	{"refs/heads/x.lock", false},
	{"refs/heads.lock/x", false},
	{"refs/heads/x.lock/y", false},
	{"refs/heads/.lock", false},
	{"refs/heads/x.", false},
	{"refs/heads/a..b", false},
	{"refs/heads/a..lock", false},
	{"refs/heads/a b", false},
	{"refs/heads/a~b", false},
	{"refs/heads/a~1", false},
	{"refs/heads/a^b", false},
	{"refs/heads/a^{}", false},
	{"refs/heads/a:b", false},
	{"refs/heads/a?b", false},
	{"refs/heads/a*b", false},
	{"refs/heads/*", false},
	{"refs/heads/a[b", false},
	{`refs/heads/a\b`, false},
	{"refs/heads/a\x01", false},
	{"refs/heads/a\x1f", false},
	{"refs/heads/a\x7f", false},
	{"refs/heads/a\tb", false},
	{"refs/heads/a\nb", false},
	{"refs/heads/a@{b", false},
	{"refs/heads/@{", false},
	{"refs/heads/a@{1}", false},
	{"refs/heads/a\x00b", false}, // cannot be given to git; checked here only
	{"-x/y", true},               // git reads it as an option; checked here only
}

func TestRef(t *testing.T) {
	for _, tc := range refNameCases {
		err := Ref(tc.ref)
		if (err == nil) != tc.valid {
			t.Errorf("Ref(%q) = %v, want valid=%v", tc.ref, err, tc.valid)
		}
		if err != nil && !errors.Is(err, ErrBadRef) {
			t.Errorf("Ref(%q) = %v, does not wrap ErrBadRef", tc.ref, err)
		}
	}
}

// TestRefAgreesWithGit checks the verdicts of refNameCases against
// the real `git check-ref-format`.
func TestRefAgreesWithGit(t *testing.T) {
	git := gitPath(t)
	for _, tc := range refNameCases {
		if strings.HasPrefix(tc.ref, "-") || strings.Contains(tc.ref, "\x00") {
			continue // not expressible as an argument
		}
		cmd := exec.Command(git, "check-ref-format", tc.ref)
		cmd.Env = testGitEnv(t)
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatal(err)
		}
		if gitValid := err == nil; gitValid != tc.valid {
			t.Errorf("git check-ref-format %q: valid=%v, the table says %v", tc.ref, gitValid, tc.valid)
		}
	}
}

// FuzzRef checks that Ref never panics and that what it
// accepts has the properties git's rules promise. The seed corpus is
// compared with git by TestRefAgreesWithGit.
func FuzzRef(f *testing.F) {
	for _, tc := range refNameCases {
		f.Add(tc.ref)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		err := Ref(ref)
		if err != nil {
			if !errors.Is(err, ErrBadRef) {
				t.Fatalf("Ref(%q) = %v, does not wrap ErrBadRef", ref, err)
			}
			return
		}
		if !strings.Contains(ref, "/") || strings.HasPrefix(ref, "/") || strings.HasSuffix(ref, "/") ||
			strings.HasSuffix(ref, ".") || strings.Contains(ref, "//") || strings.Contains(ref, "..") ||
			strings.Contains(ref, "@{") || strings.ContainsAny(ref, " ~^:?*[\\\x7f") {
			t.Fatalf("Ref accepted %q", ref)
		}
		for i := 0; i < len(ref); i++ {
			if ref[i] < 0x20 {
				t.Fatalf("Ref accepted %q with a control character", ref)
			}
		}
		for _, c := range strings.Split(ref, "/") {
			if strings.HasPrefix(c, ".") || strings.HasSuffix(c, ".lock") {
				t.Fatalf("Ref accepted %q with component %q", ref, c)
			}
		}
		if err := Ref(ref + "/x"); err != nil {
			t.Fatalf("Ref accepted %q but not %q: %v", ref, ref+"/x", err)
		}
	})
}
