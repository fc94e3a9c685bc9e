package dashboard

import (
	"fmt"
	"strings"
	"testing"
)

// TestReadings pins how a /repos/ path reads: the repository is what
// precedes a page's tail, every name passes its grammar, and a path that
// fits none is no page at all.
func TestReadings(t *testing.T) {
	for _, tc := range []struct {
		path string
		want string // the readings, longest tail first, "; "-separated
	}{
		{"app", "repo app"},
		{"team/app", "repo team/app"},
		{"team/app/pipelines/web", "activity team/app web; repo team/app/pipelines/web"},
		{"team/app/pipelines/web/runs/12", "run team/app web #12; repo team/app/pipelines/web/runs/12"},
		{"team/app/pipelines/web/runs/12/events", "events team/app web #12; repo team/app/pipelines/web/runs/12/events"},
		{"team/app/pipelines/web/runs/12/log", "log team/app web #12; repo team/app/pipelines/web/runs/12/log"},
		{"app/pipelines/web/board", "board app web; repo app/pipelines/web/board"},
		{"app/pipelines/web/artifacts", "artifacts app web; repo app/pipelines/web/artifacts"},
		{"app/envs/production", "env app production; repo app/envs/production"},
		{"app/commits/3f2a9c1", "commit app 3f2a9c1; repo app/commits/3f2a9c1"},
		// a pipeline called "runs", a repository called "pipelines"
		{"pipelines/pipelines/runs", "activity pipelines runs; repo pipelines/pipelines/runs"},
		// names that break their grammar are no page of theirs
		{"app/pipelines/Web", "repo app/pipelines/Web"},
		// (a run number is canonical: 012 and 0 are no run, so the path
		// can only name a repository)
		{"app/pipelines/web/runs/012", "repo app/pipelines/web/runs/012"},
		{"app/pipelines/web/runs/0", "repo app/pipelines/web/runs/0"},
		{"app/envs/..", ""},
		{"app/commits/XYZ", "repo app/commits/XYZ"},
		{"app/commits/abc", "repo app/commits/abc"},
		{".hidden/pipelines/web", ""},
		{"app/../x", ""},
		{"app//x", ""},
		{"/app", ""},
		{"app/", ""},
		{"", ""},
		{"pipelines/web", "repo pipelines/web"},
		{"app/pipelines/.." + "%2F", ""},
	} {
		var got []string
		for _, r := range readings(tc.path) {
			got = append(got, describeRoute(r))
		}
		if g := strings.Join(got, "; "); g != tc.want {
			t.Errorf("%q reads as %q, want %q", tc.path, g, tc.want)
		}
	}
}

func describeRoute(r route) string {
	switch r.page {
	case pageRepo:
		return "repo " + r.repo
	case pageActivity:
		return fmt.Sprintf("activity %s %s", r.repo, r.pipeline)
	case pageRun:
		return fmt.Sprintf("run %s %s #%d", r.repo, r.pipeline, r.n)
	case pageRunEvents:
		return fmt.Sprintf("events %s %s #%d", r.repo, r.pipeline, r.n)
	case pageRunLog:
		return fmt.Sprintf("log %s %s #%d", r.repo, r.pipeline, r.n)
	case pageBoard:
		return fmt.Sprintf("board %s %s", r.repo, r.pipeline)
	case pageArtifacts:
		return fmt.Sprintf("artifacts %s %s", r.repo, r.pipeline)
	case pageEnv:
		return fmt.Sprintf("env %s %s", r.repo, r.env)
	case pageCommit:
		return fmt.Sprintf("commit %s %s", r.repo, r.sha)
	}
	return fmt.Sprintf("page %d %s", r.page, r.repo)
}
