package refs

import (
	"errors"
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

// The rules themselves are tested in package names; these check the wrappers.
func TestValidRefName(t *testing.T) {
	if err := ValidRefName("refs/heads/main"); err != nil {
		t.Errorf("ValidRefName(refs/heads/main) = %v", err)
	}
	if err := ValidRefName("refs/heads/a..b"); !errors.Is(err, ErrBadRefName) {
		t.Errorf("ValidRefName(refs/heads/a..b) = %v, does not wrap ErrBadRefName", err)
	}
}
