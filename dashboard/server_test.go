package dashboard

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/ssh"

	"github.com/refline/refline/access"
	"github.com/refline/refline/dashboard/auth"
	"github.com/refline/refline/dashboard/view"
	"github.com/refline/refline/pipelines"
	"github.com/refline/refline/refs"
)

// The handler tests run the real read model over a real runner, real git
// repositories and real jobs (the local executor); the stories in
// cmd/refline drive the whole server over SSH and in a browser.

type bareRepos struct{ root string }

func (r bareRepos) Path(name string) string { return filepath.Join(r.root, name+".git") }
func (r bareRepos) Exists(name string) bool {
	fi, err := os.Stat(r.Path(name))
	return err == nil && fi.IsDir()
}
func (r bareRepos) List() ([]string, error) { return nil, nil }
func (r bareRepos) DeployBranch(context.Context, string) string {
	return "master"
}

// fixture is a runner, the dashboard over it, and alice's token.
type fixture struct {
	t      testing.TB
	repos  bareRepos
	runner *pipelines.Runner
	users  *access.Store
	dash   *Server
	token  string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{t: t, repos: bareRepos{root: t.TempDir()}}
	var err error
	if f.users, err = access.Open(filepath.Join(t.TempDir(), access.FileName)); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob"} {
		if err := f.users.AddUser(u, []ssh.PublicKey{newKey(t).PublicKey()}, false); err != nil {
			t.Fatal(err)
		}
	}
	signer := refs.NewSigner(newKey(t), "refline@test")
	logger := logrus.New()
	logger.SetOutput(io.Discard)
	log := logrus.NewEntry(logger)
	f.runner, err = pipelines.New(pipelines.Config{
		DataDir:   t.TempDir(),
		Repos:     f.repos,
		Executor:  pipelines.Local{Grace: 5 * time.Second},
		MaxJobs:   2,
		Signer:    signer,
		Committer: object.Signature{Name: "refline", Email: "refline@test"},
		Logger:    log,
		BaseEnv:   []string{"PATH=" + os.Getenv("PATH")},
		Auth:      f.users,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.runner.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.runner.Shutdown(0) })
	store, err := auth.Open(filepath.Join(t.TempDir(), "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	if f.token, err = store.CreateToken("alice", "bench"); err != nil {
		t.Fatal(err)
	}
	f.dash, err = New(Config{
		Pages: view.New(view.Config{Repos: f.repos, Access: f.users, Runs: f.runner, Deploys: f.runner.Deployer(),
			SigningKey: signer.PublicKey(), Logger: log}),
		Users: f.users, Repos: f.repos, Auth: store, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func newKey(t testing.TB) ssh.Signer {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// build makes repo (alice its admin) with one commit of files and runs
// pipeline on it to the end.
func (f *fixture) build(repo, pipeline string, files map[string]string) *pipelines.Run {
	f.t.Helper()
	work := f.t.TempDir()
	git := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=dev", "GIT_AUTHOR_EMAIL=dev@example.com",
			"GIT_COMMITTER_NAME=dev", "GIT_COMMITTER_EMAIL=dev@example.com", "GIT_CONFIG_NOSYSTEM=1", "HOME="+work)
		out, err := cmd.CombinedOutput()
		if err != nil {
			f.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q", "--bare", "-b", "master", f.repos.Path(repo))
	if err := f.users.SetGrant(repo, "alice", access.Grant{Level: access.Admin}); err != nil {
		f.t.Fatal(err)
	}
	for name, text := range files {
		p := filepath.Join(work, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			f.t.Fatal(err)
		}
	}
	g := []string{"--git-dir=" + f.repos.Path(repo), "--work-tree=" + work}
	git(append(g, "add", "-A")...)
	git(append(g, "commit", "-q", "-m", "v1")...)
	commit := git(append(g, "rev-parse", "HEAD")...)
	run, err := f.runner.Enqueue(context.Background(), pipelines.Request{Repo: repo, Pipeline: pipeline, Kind: pipelines.Build,
		Commit: commit, Branch: "master", Trigger: "push by alice", User: "alice"})
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	end, err := f.runner.Follow(ctx, repo, pipeline, run.Number, io.Discard)
	if err != nil {
		f.t.Fatal(err)
	}
	return end
}

// get serves one request with alice's token.
func (f *fixture) get(path, accept string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Header.Set("Authorization", "Bearer "+f.token)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	rec := httptest.NewRecorder()
	f.dash.ServeHTTP(rec, req)
	return rec
}

const longLog = `stages:
  - name: build
    run: |
      i=0; while [ $i -lt 10000 ]; do i=$((i+1)); echo "line $i: the build says something <of> a typical length here"; done
      mkdir -p dist && echo v1 > dist/lib
artifact:
  paths: [dist/]
`

// TestRunPageOfALongLog renders the run page of a 10,000-line log: every
// line, escaped, with its anchor.
func TestRunPageOfALongLog(t *testing.T) {
	f := newFixture(t)
	run := f.build("team/app", "lib", map[string]string{".refline/pipelines/lib.yml": longLog})
	if run.State != pipelines.Passed {
		t.Fatalf("run %s", run.State)
	}
	rec := f.get("/repos/team/app/pipelines/lib/runs/1", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET run page: %d\n%s", rec.Code, rec.Body)
	}
	body := rec.Body.String()
	for _, want := range []string{
		`<span class="ln" id="L1"><a href="#L1" data-n="1"></a><b>--- build</b></span>`,
		`id="L10001"><a href="#L10001" data-n="10001"></a>line 10000: the build says something &lt;of&gt; a typical length here</span>`,
		`data-ended="true"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the run page lacks %s", want)
		}
	}
	if strings.Contains(body, "<of>") {
		t.Error("the run page shows log text unescaped")
	}
	// bob, who cannot read the repository, finds nothing there.
	req := httptest.NewRequest(http.MethodGet, "/repos/team/app/pipelines/lib/runs/1", nil)
	store := f.dash.cfg.Auth
	tok, _ := store.CreateToken("bob", "t")
	req.Header.Set("Authorization", "Bearer "+tok)
	rec = httptest.NewRecorder()
	f.dash.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotFound {
		t.Errorf("bob's GET of an unreadable run: %d, want 404", rec.Code)
	}
}

// BenchmarkRunPage is the server time of the run page of a 10,000-line
// log (about 700 KB), from the request to the last byte of HTML: the
// token check, the route, the read model's run and log, and the render.
func BenchmarkRunPage(b *testing.B) {
	f := newFixture(b)
	f.build("team/app", "lib", map[string]string{".refline/pipelines/lib.yml": longLog})
	for _, c := range []struct{ name, accept string }{{"html", ""}, {"json", "application/json"}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if rec := f.get("/repos/team/app/pipelines/lib/runs/1", c.accept); rec.Code != http.StatusOK {
					b.Fatalf("GET: %d", rec.Code)
				}
			}
		})
	}
}

// sseEvent is one event read off a stream.
type sseEvent struct{ name, id, data string }

// readEvents reads a whole event stream.
func readEvents(t *testing.T, body io.Reader) []sseEvent {
	t.Helper()
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	var out []sseEvent
	for _, block := range strings.Split(string(b), "\n\n") {
		var ev sseEvent
		for _, line := range strings.Split(block, "\n") {
			switch k, v, _ := strings.Cut(line, ": "); k {
			case "event":
				ev.name = v
			case "id":
				ev.id = v
			case "data":
				ev.data = v
			}
		}
		if ev.name != "" {
			out = append(out, ev)
		}
	}
	return out
}

// TestRunEvents follows a run that prints while the stream is open: the
// log events put together are the raw log, and a stream resumed with
// Last-Event-ID carries on from there.
func TestRunEvents(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(f.dash)
	defer srv.Close()
	run := make(chan *pipelines.Run, 1)
	go func() {
		run <- f.build("app", "slow", map[string]string{".refline/pipelines/slow.yml": `stages:
  - name: talk
    run: |
      for i in 1 2 3 4 5; do echo "said $i"; sleep 0.1; done
      touch x
artifact: {paths: [x]}
`})
	}()
	get := func(path string, h ...string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+f.token)
		for i := 0; i+1 < len(h); i += 2 {
			req.Header.Set(h[i], h[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	// The run exists once the repository does; wait for the first.
	deadline := time.Now().Add(30 * time.Second)
	var resp *http.Response
	for {
		resp = get("/repos/app/pipelines/slow/runs/1/events")
		if resp.StatusCode == http.StatusOK || time.Now().After(deadline) {
			break
		}
		resp.Body.Close()
		time.Sleep(20 * time.Millisecond)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("events: %s, %s", resp.Status, ct)
	}
	events := readEvents(t, resp.Body)
	resp.Body.Close()
	<-run
	var log strings.Builder
	var ids []string
	for _, ev := range events {
		if ev.name == "log" {
			var c struct{ Text string }
			if err := json.Unmarshal([]byte(ev.data), &c); err != nil {
				t.Fatal(err)
			}
			log.WriteString(c.Text)
			ids = append(ids, ev.id)
		}
	}
	if last := events[len(events)-1]; last.name != "end" || !strings.Contains(last.data, `"state":"passed"`) {
		t.Fatalf("the stream ends with %+v", last)
	}
	raw := get("/repos/app/pipelines/slow/runs/1/log")
	want, _ := io.ReadAll(raw.Body)
	raw.Body.Close()
	if log.String() != string(want) || !strings.Contains(string(want), "said 5\n") {
		t.Fatalf("the stream's log:\n%s\nthe raw log:\n%s", log.String(), want)
	}
	// Resuming after the first log event gives the rest, exactly.
	resp = get("/repos/app/pipelines/slow/runs/1/events", "Last-Event-ID", ids[0])
	var rest strings.Builder
	for _, ev := range readEvents(t, resp.Body) {
		if ev.name == "log" {
			var c struct{ Text string }
			json.Unmarshal([]byte(ev.data), &c)
			rest.WriteString(c.Text)
		}
	}
	resp.Body.Close()
	n, _ := strconv.Atoi(ids[0])
	if rest.String() != string(want[n:]) {
		t.Fatalf("resumed at %d: %q, want %q", n, rest.String(), want[n:])
	}
}
