// Package dashboard is the web dashboard on refline's HTTP listener (SPEC
// §11): HTML pages rendered on the server with html/template, the same data
// as JSON for `Accept: application/json`, live updates over hand-written
// server-sent events, and the actions (cancel, retry, deploy, rollback) as
// POSTs that run the very SSH command, through the same gate, as the
// logged-in user.
//
// What a page shows comes from package view, which answers "not found" for
// a repository the user cannot read; this package decides who the user is
// (a session cookie opened by `ssh HOST login`, or an API token), routes
// names that contain '/', and renders.
package dashboard

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/refline/refline/access"
	"github.com/refline/refline/dashboard/auth"
	"github.com/refline/refline/dashboard/view"
	"github.com/refline/refline/pipelines"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Pages is the read model: one query per page (package view).
type Pages interface {
	Overview(ctx context.Context, u access.User) (*view.OverviewPage, error)
	Repo(ctx context.Context, u access.User, repo string) (*view.RepoPage, error)
	Activity(ctx context.Context, u access.User, repo, pipeline string, f view.Filter, cursor string, limit int) (*view.ActivityPage, error)
	Run(ctx context.Context, u access.User, repo, pipeline string, n int) (*view.RunPage, error)
	LogFrom(ctx context.Context, u access.User, repo, pipeline string, n int, offset int64, max int) (*pipelines.LogChunk, error)
	Changed(ctx context.Context, u access.User, repo, pipeline string, n int) (<-chan struct{}, error)
	Artifacts(ctx context.Context, u access.User, repo, pipeline, cursor string, limit int) (*view.ArtifactsPage, error)
	Environment(ctx context.Context, u access.User, repo, env, cursor string, limit int) (*view.EnvironmentPage, error)
	Board(ctx context.Context, u access.User, repo, pipeline, cursor string, limit int) (*view.BoardPage, error)
	ValueStream(ctx context.Context, u access.User, repo, sha string) (*view.ValueStreamPage, error)
}

// Users is what the dashboard reads of the access store: who a session's
// or token's user is now, and whether they may read a repository (to pick
// between two readings of a path, see route).
type Users interface {
	User(name string) (access.User, bool)
	Level(repo string, u access.User) access.Level
}

// Repos tells which repositories exist.
type Repos interface {
	Exists(name string) bool
}

// Commands runs an SSH command as a user, through the SSH command gate
// (gitserver.Server.Exec), writing its --json output to out.
type Commands interface {
	Exec(ctx context.Context, u access.User, args []string, out io.Writer, log *logrus.Entry) error
}

// Config wires a Server.
type Config struct {
	Pages    Pages
	Users    Users
	Repos    Repos
	Auth     *auth.Store
	Commands Commands
	// Notices tells live pages that a repository changed.
	Notices *Hub
	// URL is the dashboard's public address (--http-url); an https URL
	// makes the session cookie Secure.
	URL string
	// LoginHint is the command that prints a login URL, for the login
	// page: "ssh -p 2222 git@HOST login".
	LoginHint func() string
	Logger    *logrus.Entry
}

// Server is the dashboard's HTTP handler.
type Server struct {
	cfg     Config
	tmpl    map[string]*template.Template
	handler http.Handler
	secure  bool

	// done ends the event streams when the HTTP server shuts down, so
	// that Shutdown need not wait for them.
	done     chan struct{}
	doneOnce sync.Once
}

// CookieName is the session cookie.
const CookieName = "refline_session"

// New builds the dashboard.
func New(cfg Config) (*Server, error) {
	tmpl, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	if cfg.Notices == nil {
		cfg.Notices = NewHub()
	}
	if cfg.LoginHint == nil {
		cfg.LoginHint = func() string { return "ssh HOST login" }
	}
	s := &Server{cfg: cfg, tmpl: tmpl, done: make(chan struct{})}
	if u, err := url.Parse(cfg.URL); err == nil && u.Scheme == "https" {
		s.secure = true
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.authed(s.overview))
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.loginSpend)
	mux.HandleFunc("POST /logout", s.logout)
	mux.Handle("GET /static/", http.FileServerFS(assets))
	mux.HandleFunc("/repos/", s.authed(s.repos))
	// Cross-origin POSTs are refused whatever they carry: a page of another
	// site cannot make a logged-in browser cancel or deploy. SameSite=Strict
	// on the cookie is the second fence.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.cfg.Logger.WithFields(logrus.Fields{"path": r.URL.Path, "origin": r.Header.Get("Origin"), "remote": r.RemoteAddr}).Warn("cross-origin request refused")
		s.fail(w, r, http.StatusForbidden, "cross-origin request refused: actions are taken from the dashboard's own pages")
	}))
	s.handler = cop.Handler(mux)
	return s, nil
}

// ServeHTTP serves the dashboard.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "same-origin")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
	s.handler.ServeHTTP(w, r)
}

// Close ends the live streams; the HTTP server calls it on shutdown.
func (s *Server) Close() { s.doneOnce.Do(func() { close(s.done) }) }

// userHandler is a handler for a logged-in user.
type userHandler func(w http.ResponseWriter, r *http.Request, u access.User)

// authed finds the request's user — a bearer token or a session cookie —
// and refuses the request without one: a login page for a browser, 401
// for JSON and scripts.
func (s *Server) authed(h userHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name, ok := "", false
		if a := r.Header.Get("Authorization"); a != "" {
			tok, isBearer := strings.CutPrefix(a, "Bearer ")
			if isBearer {
				name, ok = s.cfg.Auth.TokenUser(strings.TrimSpace(tok))
			}
			if !ok {
				w.Header().Set("WWW-Authenticate", `Bearer realm="refline"`)
				s.fail(w, r, http.StatusUnauthorized, "invalid token: create one with `token create NAME` over SSH")
				return
			}
		} else if c, err := r.Cookie(CookieName); err == nil {
			name, ok = s.cfg.Auth.Session(c.Value)
		}
		var u access.User
		if ok {
			// The user as the access store knows them now: a removed
			// user's session or token lets nobody in.
			u, ok = s.cfg.Users.User(name)
		}
		if !ok {
			if wantsJSON(r) || r.Method != http.MethodGet {
				w.Header().Set("WWW-Authenticate", `Bearer realm="refline"`)
				s.fail(w, r, http.StatusUnauthorized, "log in first: "+s.cfg.LoginHint())
				return
			}
			s.render(w, r, http.StatusUnauthorized, "login", "Log in", nil, loginData{Hint: s.cfg.LoginHint(), TTL: seconds(s.cfg.Auth.TicketTTL())})
			return
		}
		h(w, r, u)
	}
}

type loginData struct {
	Hint   string
	TTL    string // how long a login URL works: "60s"
	Ticket string
	User   string
	Error  string
}

// loginPage is where a login URL leads: a page that asks to confirm, so
// that fetching the URL (a chat's link preview, a prefetch) does not spend
// it. Without a ticket it says how to get one.
func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	t := r.URL.Query().Get("t")
	d := loginData{Hint: s.cfg.LoginHint(), TTL: seconds(s.cfg.Auth.TicketTTL()), Ticket: t}
	w.Header().Set("Cache-Control", "no-store")
	if t == "" {
		s.render(w, r, http.StatusOK, "login", "Log in", nil, d)
		return
	}
	user, ok := s.cfg.Auth.TicketUser(t)
	if !ok {
		d.Ticket, d.Error = "", "This login URL was already used or has expired (they last "+seconds(s.cfg.Auth.TicketTTL())+")."
		s.render(w, r, http.StatusGone, "login", "Log in", nil, d)
		return
	}
	d.User = user
	s.render(w, r, http.StatusOK, "confirm", "Log in", nil, d)
}

// loginSpend spends a ticket and opens the session.
func (s *Server) loginSpend(w http.ResponseWriter, r *http.Request) {
	t := r.FormValue("t") // the login URL itself may be POSTed: a POST is what link previews never send
	user, id, err := s.cfg.Auth.Spend(t)
	if err != nil {
		s.render(w, r, http.StatusGone, "login", "Log in", nil, loginData{Hint: s.cfg.LoginHint(), TTL: seconds(s.cfg.Auth.TicketTTL()),
			Error: "This login URL was already used or has expired (they last " + seconds(s.cfg.Auth.TicketTTL()) + ")."})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: id, Path: "/", HttpOnly: true, Secure: s.secure,
		SameSite: http.SameSiteStrictMode, MaxAge: int(auth.SessionTTL.Seconds())})
	s.cfg.Logger.WithFields(logrus.Fields{"user": user, "remote": r.RemoteAddr}).Info("dashboard login")
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(CookieName); err == nil {
		s.cfg.Auth.EndSession(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", HttpOnly: true, Secure: s.secure,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// seconds says a lifetime the way the login page does: "60 seconds".
func seconds(d time.Duration) string {
	if n := int(d.Round(time.Second) / time.Second); n != 1 {
		return strconv.Itoa(n) + " seconds"
	}
	return "1 second"
}

// wantsJSON reports whether the client asked for JSON rather than HTML.
func wantsJSON(r *http.Request) bool {
	a := r.Header.Get("Accept")
	return strings.Contains(a, "application/json") && !strings.Contains(a, "text/html")
}

// wantsEvents reports whether the client is an EventSource.
func wantsEvents(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

// fail answers an error: JSON {"error": msg} or a page saying it.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if wantsJSON(r) || r.Method != http.MethodGet && r.Method != http.MethodPost {
		writeJSON(w, status, map[string]string{"error": msg})
		return
	}
	s.render(w, r, status, "error", http.StatusText(status), nil, map[string]any{"Status": status, "Message": msg})
}

// failErr maps a view error to its answer: ErrNotFound is 404 whether the
// thing is missing or the user may not read it; a filter or cursor no page
// gave is 400.
func (s *Server) failErr(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, view.ErrNotFound) {
		s.fail(w, r, http.StatusNotFound, "not found")
		return
	}
	if errors.Is(err, view.ErrBadFilter) || errors.Is(err, pipelines.ErrBadCursor) {
		s.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	s.cfg.Logger.WithError(err).WithField("path", r.URL.Path).Error("dashboard page")
	s.fail(w, r, http.StatusInternalServerError, "internal error: the server's log says more")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// crumb is one step of a page's breadcrumb.
type crumb struct{ Name, URL string }

// pageData is what every template gets.
type pageData struct {
	Title  string
	User   *access.User
	Crumbs []crumb
	// Live is the URL the page follows for changes, "" for a still page.
	Live string
	// Limit is the page size asked for (?limit=), kept by the pager.
	Limit string
	Page  any
}

// render answers a page: page as JSON when asked for, else the template.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name, title string, u *access.User, page any, crumbs ...crumb) {
	if wantsJSON(r) {
		writeJSON(w, status, page)
		return
	}
	t, ok := s.tmpl[name]
	if !ok {
		s.cfg.Logger.WithField("template", name).Error("no such template")
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	d := pageData{Title: title, User: u, Crumbs: crumbs, Page: page}
	if n := limit(r.URL.Query().Get("limit")); n > 0 {
		d.Limit = strconv.Itoa(n)
	}
	if u != nil && r.Method == http.MethodGet {
		d.Live = r.URL.RequestURI()
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Vary", "Accept")
	w.WriteHeader(status)
	if err := t.ExecuteTemplate(w, "layout", d); err != nil {
		s.cfg.Logger.WithError(err).WithField("template", name).Warn("render page")
	}
}

func (s *Server) overview(w http.ResponseWriter, r *http.Request, u access.User) {
	if wantsEvents(r) {
		s.notices(w, r, u, "")
		return
	}
	p, err := s.cfg.Pages.Overview(r.Context(), u)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "overview", "Repositories", &u, p)
}
