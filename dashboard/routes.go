package dashboard

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/refline/refline/access"
	"github.com/refline/refline/names"
)

// A repository name holds '/' (team/app), so /repos/REPO/… cannot be cut
// at a fixed segment. route reads a path from its end: each page is a tail
// of fixed words and names ("pipelines", P, "runs", N), and what precedes
// the tail is the repository. Every name is checked by package names, the
// same grammar the SSH gate and the stores apply, so no name that could
// leave the data directory or mean another ref reaches the read model.
//
// A path can read two ways when a repository's own name ends like a tail
// (a repository "x/pipelines/web" next to "x"): the readings are tried
// longest tail first, and the first whose repository the user can read
// wins. A reading of a repository the user cannot read is never chosen, so
// the choice reveals nothing.

// page names a page or action of a repository.
type page int

const (
	pageRepo page = iota + 1
	pageActivity
	pageRun
	pageRunLog
	pageRunEvents
	pageCancel
	pageRetry
	pageArtifacts
	pageBoard
	pageDeploy
	pageRollback
	pageEnv
	pageCommit
)

// route is one reading of a /repos/ path.
type route struct {
	page     page
	repo     string
	pipeline string
	env      string
	sha      string
	n        int
}

// tail is a page's path after REPO: fixed words, and placeholders
// "{P}", "{N}", "{ENV}", "{SHA}".
type tail struct {
	page  page
	words []string
}

// tails, longest first.
var tails = []tail{
	{pageRunEvents, []string{"pipelines", "{P}", "runs", "{N}", "events"}},
	{pageRunLog, []string{"pipelines", "{P}", "runs", "{N}", "log"}},
	{pageCancel, []string{"pipelines", "{P}", "runs", "{N}", "cancel"}},
	{pageRetry, []string{"pipelines", "{P}", "runs", "{N}", "retry"}},
	{pageRun, []string{"pipelines", "{P}", "runs", "{N}"}},
	{pageArtifacts, []string{"pipelines", "{P}", "artifacts"}},
	{pageBoard, []string{"pipelines", "{P}", "board"}},
	{pageDeploy, []string{"pipelines", "{P}", "deploy"}},
	{pageRollback, []string{"pipelines", "{P}", "rollback"}},
	{pageActivity, []string{"pipelines", "{P}"}},
	{pageEnv, []string{"envs", "{ENV}"}},
	{pageCommit, []string{"commits", "{SHA}"}},
	{pageRepo, nil},
}

var shaRE = regexp.MustCompile(`^[0-9a-f]{4,64}$`)

// readings returns every reading of the path after "/repos/", longest
// tail first.
func readings(rest string) []route {
	if rest == "" || strings.HasSuffix(rest, "/") {
		return nil
	}
	segs := strings.Split(rest, "/")
	var out []route
	for _, t := range tails {
		if len(segs) <= len(t.words) {
			continue
		}
		cut := len(segs) - len(t.words)
		rt, ok := match(t, segs[cut:])
		if !ok {
			continue
		}
		rt.repo = strings.Join(segs[:cut], "/")
		if names.Repo(rt.repo) != nil {
			continue
		}
		out = append(out, rt)
	}
	return out
}

// match fills a route from the segments of a tail.
func match(t tail, segs []string) (route, bool) {
	rt := route{page: t.page}
	for i, w := range t.words {
		v := segs[i]
		switch w {
		case "{P}":
			if names.Pipeline(v) != nil {
				return rt, false
			}
			rt.pipeline = v
		case "{ENV}":
			if names.Env(v) != nil {
				return rt, false
			}
			rt.env = v
		case "{N}":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || strconv.Itoa(n) != v {
				return rt, false
			}
			rt.n = n
		case "{SHA}":
			if !shaRE.MatchString(v) {
				return rt, false
			}
			rt.sha = v
		default:
			if v != w {
				return rt, false
			}
		}
	}
	return rt, true
}

// resolve picks the reading of r's path for u: the first whose repository
// u can read.
func (s *Server) resolve(r *http.Request, u access.User) (route, bool) {
	rest := strings.TrimPrefix(r.URL.Path, "/repos/")
	for _, rt := range readings(rest) {
		if s.cfg.Repos.Exists(rt.repo) && s.cfg.Users.Level(rt.repo, u).Can(access.Read) {
			return rt, true
		}
	}
	return route{}, false
}

// repoURL and the others build the paths route reads.
func repoURL(repo string) string { return "/repos/" + repo }
func pipelineURL(repo, p string) string {
	return repoURL(repo) + "/pipelines/" + p
}
func runURL(repo, p string, n int) string {
	return pipelineURL(repo, p) + "/runs/" + strconv.Itoa(n)
}
func envURL(repo, env string) string    { return repoURL(repo) + "/envs/" + env }
func commitURL(repo, sha string) string { return repoURL(repo) + "/commits/" + sha }
