package dashboard

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"

	"github.com/refline/refline/access"
	"github.com/refline/refline/dashboard/view"
	"github.com/refline/refline/gitserver"
	"github.com/refline/refline/pipelines"
)

// maxPageLog bounds the log a run page renders inline; past it the page
// shows the end and links the raw log. The runner's own log limit is
// usually lower.
const maxPageLog = 8 << 20

// repos serves everything under /repos/.
func (s *Server) repos(w http.ResponseWriter, r *http.Request, u access.User) {
	rt, ok := s.resolve(r, u)
	if !ok {
		s.fail(w, r, http.StatusNotFound, "not found")
		return
	}
	action := rt.page == pageCancel || rt.page == pageRetry || rt.page == pageDeploy || rt.page == pageRollback
	switch {
	case action && r.Method != http.MethodPost:
		w.Header().Set("Allow", "POST")
		s.fail(w, r, http.StatusMethodNotAllowed, "this is an action: POST it")
		return
	case !action && r.Method != http.MethodGet && r.Method != http.MethodHead:
		w.Header().Set("Allow", "GET")
		s.fail(w, r, http.StatusMethodNotAllowed, "GET only")
		return
	case action:
		s.act(w, r, u, rt)
		return
	}
	if wantsEvents(r) && rt.page != pageRunEvents {
		s.notices(w, r, u, rt.repo)
		return
	}
	ctx := r.Context()
	q := r.URL.Query()
	var (
		data   any
		err    error
		name   string
		title  string
		crumbs = []crumb{{rt.repo, repoURL(rt.repo)}}
	)
	switch rt.page {
	case pageRepo:
		name, title = "repo", rt.repo
		data, err = s.cfg.Pages.Repo(ctx, u, rt.repo)
	case pageActivity:
		name, title = "activity", rt.repo+" · "+rt.pipeline
		f := view.Filter{State: pipelines.State(q.Get("state")), Kind: pipelines.Kind(q.Get("kind"))}
		var p *view.ActivityPage
		p, err = s.cfg.Pages.Activity(ctx, u, rt.repo, rt.pipeline, f, q.Get("cursor"), limit(q.Get("limit")))
		data = p
		crumbs = append(crumbs, crumb{rt.pipeline, pipelineURL(rt.repo, rt.pipeline)})
	case pageRun:
		s.runPage(w, r, u, rt)
		return
	case pageRunLog:
		s.rawLog(w, r, u, rt)
		return
	case pageRunEvents:
		s.runEvents(w, r, u, rt)
		return
	case pageArtifacts:
		name, title = "artifacts", rt.pipeline+" artifacts"
		data, err = s.cfg.Pages.Artifacts(ctx, u, rt.repo, rt.pipeline, q.Get("cursor"), limit(q.Get("limit")))
		crumbs = append(crumbs, crumb{rt.pipeline, pipelineURL(rt.repo, rt.pipeline)}, crumb{"artifacts", ""})
	case pageBoard:
		name, title = "board", rt.pipeline+" promotion board"
		data, err = s.cfg.Pages.Board(ctx, u, rt.repo, rt.pipeline, q.Get("cursor"), limit(q.Get("limit")))
		crumbs = append(crumbs, crumb{rt.pipeline, pipelineURL(rt.repo, rt.pipeline)}, crumb{"board", ""})
	case pageEnv:
		name, title = "env", rt.env
		data, err = s.cfg.Pages.Environment(ctx, u, rt.repo, rt.env, q.Get("cursor"), limit(q.Get("limit")))
		crumbs = append(crumbs, crumb{"env " + rt.env, ""})
	case pageCommit:
		name, title = "commit", "commit "+short(rt.sha)
		data, err = s.cfg.Pages.ValueStream(ctx, u, rt.repo, rt.sha)
		crumbs = append(crumbs, crumb{"commit " + short(rt.sha), ""})
	}
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, name, title, &u, data, crumbs...)
}

// runView is the run page's template data: the page of the read model and
// its log, already turned into HTML lines.
type runView struct {
	*view.RunPage
	Log       template.HTML
	LogFrom   int64 // where the log shown starts (0 unless cut)
	Lines     int   // lines shown
	URL       string
	Pipeline  string
	Repo      string
	CanCancel bool
}

func (s *Server) runPage(w http.ResponseWriter, r *http.Request, u access.User, rt route) {
	ctx := r.Context()
	p, err := s.cfg.Pages.Run(ctx, u, rt.repo, rt.pipeline, rt.n)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, p)
		return
	}
	from := int64(0)
	if p.LogSize > maxPageLog {
		from = p.LogSize - maxPageLog
	}
	chunk, err := s.cfg.Pages.LogFrom(ctx, u, rt.repo, rt.pipeline, rt.n, from, int(p.LogSize-from))
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	// The page shows exactly the bytes it read; the live stream goes on
	// from there, whatever was written between Run and LogFrom.
	p.LogSize = chunk.Next
	text := chunk.Text
	if from > 0 {
		// Cut at a line start.
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			text = text[i+1:]
		}
	}
	html, lines := logHTML(text, 1)
	rv := runView{RunPage: p, Log: html, LogFrom: from, Lines: lines, URL: runURL(rt.repo, rt.pipeline, rt.n),
		Repo: rt.repo, Pipeline: rt.pipeline, CanCancel: !p.Ended}
	s.render(w, r, http.StatusOK, "run", fmt.Sprintf("%s #%d", rt.pipeline, rt.n), &u, rv,
		crumb{rt.repo, repoURL(rt.repo)}, crumb{rt.pipeline, pipelineURL(rt.repo, rt.pipeline)}, crumb{fmt.Sprintf("#%d", rt.n), ""})
}

// logHTML renders log text as numbered lines, each with its anchor (#L12),
// starting at line first, in one pass of hand-written, escaped HTML (a
// 10,000-line log is one string, not 10,000 template actions).
// A last line without its newline is shown all the same; the live stream
// completes it.
func logHTML(text string, first int) (template.HTML, int) {
	var b strings.Builder
	b.Grow(len(text) + len(text)/8 + 64)
	n := first
	for len(text) > 0 {
		line, nl := text, false
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			line, text, nl = text[:i], text[i+1:], true
		} else {
			text = ""
		}
		num := strconv.Itoa(n)
		b.WriteString(`<span class="ln" id="L`)
		b.WriteString(num)
		b.WriteString(`"><a href="#L`)
		b.WriteString(num)
		b.WriteString(`" data-n="`)
		b.WriteString(num)
		b.WriteString(`"></a>`)
		if strings.HasPrefix(line, "--- ") {
			b.WriteString(`<b>`)
			template.HTMLEscape(&b, []byte(line))
			b.WriteString(`</b>`)
		} else {
			template.HTMLEscape(&b, []byte(line))
		}
		b.WriteString("</span>")
		if nl {
			b.WriteByte('\n')
		}
		n++
	}
	return template.HTML(b.String()), n - first
}

// rawLog is the run's whole log as text/plain, for download.
func (s *Server) rawLog(w http.ResponseWriter, r *http.Request, u access.User, rt route) {
	ctx := r.Context()
	off := int64(0)
	first := true
	for {
		chunk, err := s.cfg.Pages.LogFrom(ctx, u, rt.repo, rt.pipeline, rt.n, off, 1<<20)
		if err != nil {
			if first {
				s.failErr(w, r, err)
			}
			return
		}
		if first {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-%d.log"`, rt.pipeline, rt.n))
			w.Header().Set("Cache-Control", "no-store")
			first = false
		}
		if _, err := w.Write([]byte(chunk.Text)); err != nil {
			return
		}
		if chunk.Next <= off {
			return
		}
		off = chunk.Next
	}
}

// act runs an action as the SSH command of the same name, through the
// SSH gate, for u.
func (s *Server) act(w http.ResponseWriter, r *http.Request, u access.User, rt route) {
	var args []string
	back := pipelineURL(rt.repo, rt.pipeline)
	switch rt.page {
	case pageCancel, pageRetry:
		verb := "cancel"
		if rt.page == pageRetry {
			verb = "retry"
		}
		args = []string{verb, rt.repo, rt.pipeline, strconv.Itoa(rt.n)}
		back = runURL(rt.repo, rt.pipeline, rt.n)
	case pageDeploy, pageRollback:
		verb := "deploy"
		if rt.page == pageRollback {
			verb = "rollback"
		}
		env := r.PostFormValue("env")
		args = []string{verb, rt.repo, rt.pipeline, env}
		if rev := r.PostFormValue("rev"); rev != "" {
			args = append(args, rev)
		}
		if next := r.PostFormValue("back"); strings.HasPrefix(next, repoURL(rt.repo)+"/") && !strings.Contains(next, "//") {
			back = next
		}
	}
	var out bytes.Buffer
	err := s.cfg.Commands.Exec(r.Context(), u, args, &out, s.cfg.Logger)
	var ue *gitserver.UsageError
	switch {
	case err == nil:
	case errors.Is(err, gitserver.ErrNotFound):
		s.fail(w, r, http.StatusNotFound, "not found")
		return
	case errors.Is(err, gitserver.ErrDenied):
		s.fail(w, r, http.StatusForbidden, err.Error())
		return
	case errors.As(err, &ue):
		s.fail(w, r, http.StatusBadRequest, ue.Msg)
		return
	default:
		s.fail(w, r, http.StatusConflict, err.Error())
		return
	}
	s.cfg.Notices.Notify(rt.repo)
	if wantsJSON(r) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(out.Bytes())
		return
	}
	// A retry leads to the run it started; a deploy back to the board
	// or environment it was asked from, where its cell moves.
	var run struct {
		Number int `json:"number"`
	}
	if rt.page == pageRetry && json.Unmarshal(out.Bytes(), &run) == nil && run.Number > 0 {
		back = runURL(rt.repo, rt.pipeline, run.Number)
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// maxLimit bounds ?limit=, the size of a page of a list.
const maxLimit = 200

// limit reads ?limit=: 0 (the read model's default) unless it is a number
// from 1 to maxLimit.
func limit(v string) int {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0
	}
	return min(n, maxLimit)
}

func short(s string) string {
	if len(s) > 7 {
		return s[:7]
	}
	return s
}
