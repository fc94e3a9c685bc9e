package refs

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

func TestNames(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{ArtifactRef("web"), "refs/artifacts/web"},
		{DeployRef("production", "web"), "refs/deploy/production/web"},
		{DeployedRef("staging", "api-2"), "refs/deployed/staging/api-2"},
		{RunsRef("web"), "refs/runs/web"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
		if err := ValidRefName(tc.got); err != nil {
			t.Errorf("ValidRefName(%q): %v", tc.got, err)
		}
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		ref           string
		kind          Kind
		env, pipeline string
	}{
		{"refs/artifacts/web", Artifacts, "", "web"},
		{"refs/runs/api-2", Runs, "", "api-2"},
		{"refs/deploy/production/web", Deploy, "production", "web"},
		{"refs/deployed/staging/web", Deployed, "staging", "web"},
		{"refs/deploy/eu_west.1/web", Deploy, "eu_west.1", "web"},

		{"refs/heads/main", Other, "", ""},
		{"refs/tags/v1", Other, "", ""},
		{"refs/artifacts/", Other, "", ""},
		{"refs/artifacts/Web", Other, "", ""},     // not a pipeline name
		{"refs/artifacts/-web", Other, "", ""},    // not a pipeline name
		{"refs/artifacts/web/x", Other, "", ""},   // too deep
		{"refs/artifactsX/web", Other, "", ""},    // another namespace
		{"refs/deploy/production", Other, "", ""}, // no pipeline
		{"refs/deploy/a/b/web", Other, "", ""},    // env is one component
		{"refs/deploy//web", Other, "", ""},
		{"refs/deploy/.prod/web", Other, "", ""},
		{"refs/deploy/prod/web.lock", Other, "", ""},
		{"refs/deployed/prod/", Other, "", ""},
		{"refs/runs", Other, "", ""},
	} {
		kind, env, pipeline := Parse(tc.ref)
		if kind != tc.kind || env != tc.env || pipeline != tc.pipeline {
			t.Errorf("Parse(%q) = %v, %q, %q; want %v, %q, %q", tc.ref, kind, env, pipeline, tc.kind, tc.env, tc.pipeline)
		}
		env, pipeline, ok := ParseDeployRef(tc.ref)
		if ok != (tc.kind == Deploy) || (ok && (env != tc.env || pipeline != tc.pipeline)) {
			t.Errorf("ParseDeployRef(%q) = %q, %q, %v", tc.ref, env, pipeline, ok)
		}
	}
}

func TestServerOwnedAndIsDeploy(t *testing.T) {
	for _, tc := range []struct {
		ref            string
		owned, deploys bool
	}{
		{"refs/artifacts/web", true, false},
		{"refs/artifacts/anything/at/all", true, false},
		{"refs/deployed/prod/web", true, false},
		{"refs/runs/web", true, false},
		// The namespace ref itself would block every ref below it.
		{"refs/artifacts", true, false},
		{"refs/runs", true, false},
		{"refs/deployed", true, false},
		{"refs/deploy", false, true},
		// Case-insensitive file systems store these as the same file.
		{"refs/Artifacts/web", true, false},
		{"REFS/RUNS/web", true, false},
		{"refs/DEPLOY/prod/web", false, true},

		{"refs/deploy/prod/web", false, true},
		{"refs/deploy/prod", false, true},
		{"refs/deploy/a/b/c", false, true},
		{"refs/artifactsX", false, false},
		{"refs/artifactsX/web", false, false},
		{"refs/runsy/web", false, false},
		{"refs/deployed2/prod/web", false, false},
		{"refs/deployX/prod/web", false, false},
		{"refs/heads/refs/artifacts/web", false, false},
		{"refs/heads/main", false, false},
		{"refs/tags/v1", false, false},
		{"refs/", false, false},
		{"", false, false},
	} {
		if got := ServerOwned(tc.ref); got != tc.owned {
			t.Errorf("ServerOwned(%q) = %v, want %v", tc.ref, got, tc.owned)
		}
		if got := IsDeploy(tc.ref); got != tc.deploys {
			t.Errorf("IsDeploy(%q) = %v, want %v", tc.ref, got, tc.deploys)
		}
	}
}

func TestValidPipelineName(t *testing.T) {
	for name, want := range map[string]bool{
		"web": true, "a": true, "0": true, "api-2": true, "a--b": true, "web-": true,
		"": false, "-web": false, "Web": false, "we_b": false, "we.b": false, "we/b": false, "wéb": false,
	} {
		if got := ValidPipelineName(name); got != want {
			t.Errorf("ValidPipelineName(%q) = %v, want %v", name, got, want)
		}
	}
}

// refNameCases are ref names with the verdict of `git check-ref-format`.
// They are the seed corpus of FuzzValidRefName, and
// TestValidRefNameAgreesWithGit checks each verdict against git itself.
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

func TestValidRefName(t *testing.T) {
	for _, tc := range refNameCases {
		err := ValidRefName(tc.ref)
		if (err == nil) != tc.valid {
			t.Errorf("ValidRefName(%q) = %v, want valid=%v", tc.ref, err, tc.valid)
		}
		if err != nil && !errors.Is(err, ErrBadRefName) {
			t.Errorf("ValidRefName(%q) = %v, does not wrap ErrBadRefName", tc.ref, err)
		}
	}
}

// TestValidRefNameAgreesWithGit checks the verdicts of refNameCases against
// the real `git check-ref-format`.
func TestValidRefNameAgreesWithGit(t *testing.T) {
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

// FuzzValidRefName checks that ValidRefName never panics and that what it
// accepts has the properties git's rules promise. The seed corpus is
// compared with git by TestValidRefNameAgreesWithGit.
func FuzzValidRefName(f *testing.F) {
	for _, tc := range refNameCases {
		f.Add(tc.ref)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		err := ValidRefName(ref)
		if err != nil {
			if !errors.Is(err, ErrBadRefName) {
				t.Fatalf("ValidRefName(%q) = %v, does not wrap ErrBadRefName", ref, err)
			}
			return
		}
		if !strings.Contains(ref, "/") || strings.HasPrefix(ref, "/") || strings.HasSuffix(ref, "/") ||
			strings.HasSuffix(ref, ".") || strings.Contains(ref, "//") || strings.Contains(ref, "..") ||
			strings.Contains(ref, "@{") || strings.ContainsAny(ref, " ~^:?*[\\\x7f") {
			t.Fatalf("ValidRefName accepted %q", ref)
		}
		for i := 0; i < len(ref); i++ {
			if ref[i] < 0x20 {
				t.Fatalf("ValidRefName accepted %q with a control character", ref)
			}
		}
		for _, c := range strings.Split(ref, "/") {
			if strings.HasPrefix(c, ".") || strings.HasSuffix(c, ".lock") {
				t.Fatalf("ValidRefName accepted %q with component %q", ref, c)
			}
		}
		if err := ValidRefName(ref + "/x"); err != nil {
			t.Fatalf("ValidRefName accepted %q but not %q: %v", ref, ref+"/x", err)
		}
	})
}
