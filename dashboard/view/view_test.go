package view

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/refline/refline/access"
	"github.com/refline/refline/pipelines"
)

const webYML = `stages:
  - name: check
    run: '! grep -q broken version'
  - name: build
    run: |
      mkdir -p out
      cat version > out/version
      for i in 1 2 3; do echo "line $i of $(cat version)"; done
artifact:
  paths: [out/]
environments:
  staging:
    run: cat out/version
  production:
    after: staging
    run: '! grep -q bad out/version'
`

const libYML = `stages:
  - name: build
    run: mkdir -p dist && cat version > dist/lib
artifact:
  paths: [dist/]
`

const appYML = `inputs:
  - from: lib
    path: vendor
stages:
  - name: build
    run: mkdir -p bin && cat vendor/dist/lib version > bin/app
artifact:
  paths: [bin/]
environments:
  staging:
    run: cat bin/app
`

// scenario is the story every page test reads: see newScenario.
type scenario struct {
	*world
	c1, c2, c3, c4, c5 string
	a1, a2, a3, a5     string // web artifacts of c1, c2, c3, c5 (c4 fails)
	l1                 string // lib of c1
	p1, p2             string // app of c1 and c2, both with input lib@l1
	failedBuild        *pipelines.Run
	prodFail, rollback *pipelines.Run
}

// newScenario builds, with real git, jobs and records:
//
//	c1 v1: web → a1, lib → l1, app → p1 (lib@l1)
//	c2 v2: web → a2, app → p2 (lib@l1)
//	c3 "bad": web → a3 (its production deploy fails)
//	c4 "broken": web fails at check
//	c5 v5: web → a5
//
// then deploys a1 to staging and production, a2 and a3 to staging, a3 to
// production (fails), p1 to staging, and rolls staging back to a2.
func newScenario(t *testing.T) *scenario {
	s := &scenario{world: newWorld(t)}
	s.newRepo("app")
	s.c1 = s.commit("app", "v1", map[string]string{"version": "v1\n", ".refline/pipelines/web.yml": webYML,
		".refline/pipelines/lib.yml": libYML, ".refline/pipelines/app.yml": appYML})
	s.a1 = s.build("app", "web", s.c1).Artifact
	s.l1 = s.build("app", "lib", s.c1).Artifact
	s.p1 = s.build("app", "app", s.c1).Artifact
	s.c2 = s.commit("app", "v2", map[string]string{"version": "v2\n"})
	s.a2 = s.build("app", "web", s.c2).Artifact
	s.p2 = s.build("app", "app", s.c2).Artifact
	s.c3 = s.commit("app", "bad", map[string]string{"version": "bad\n"})
	s.a3 = s.build("app", "web", s.c3).Artifact
	s.c4 = s.commit("app", "broken", map[string]string{"version": "broken\n"})
	s.failedBuild = s.build("app", "web", s.c4)
	s.c5 = s.commit("app", "v5", map[string]string{"version": "v5\n"})
	s.a5 = s.build("app", "web", s.c5).Artifact
	for _, a := range []string{s.a1, s.a2, s.a3, s.a5, s.l1, s.p1, s.p2} {
		if len(a) != 40 {
			t.Fatalf("a build recorded no artifact: %q", a)
		}
	}
	if s.failedBuild.State != pipelines.Failed {
		t.Fatalf("c4's build: %s, want failed", s.failedBuild.State)
	}
	for _, d := range []struct{ pipeline, env, art string }{
		{"web", "staging", s.a1}, {"web", "production", s.a1}, {"web", "staging", s.a2}, {"web", "staging", s.a3}, {"app", "staging", s.p1},
	} {
		if r := s.deploy("app", d.pipeline, d.env, d.art, "deploy"); r.State != pipelines.Passed {
			t.Fatalf("deploy %s to %s: %s", d.art[:7], d.env, r.State)
		}
	}
	s.prodFail = s.deploy("app", "web", "production", s.a3, "deploy")
	if s.prodFail.State != pipelines.Failed {
		t.Fatalf("a3 to production: %s, want failed", s.prodFail.State)
	}
	target, err := s.runner.Deployer().RollbackTarget("app", "web", "staging")
	if err != nil || target != s.a2 {
		t.Fatalf("rollback target %s, %v; want a2", target, err)
	}
	s.rollback = s.deploy("app", "web", "staging", target, "rollback")
	return s
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPages(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real jobs")
	}
	s := newScenario(t)
	ctx := context.Background()

	t.Run("overview", func(t *testing.T) {
		s.newRepo("other")
		if err := s.users.Grant("other", "carol", access.None); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			u    access.User
			want []string
		}{{alice, []string{"app", "other"}}, {carol, []string{"app"}}, {bob, nil}} {
			p, err := s.view.Overview(ctx, tc.u)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range p.Repos {
				got = append(got, r.Name)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%s sees %v, want %v", tc.u.Name, got, tc.want)
			}
		}
		p, _ := s.view.Overview(ctx, carol)
		want, _ := s.runner.Pipelines(ctx, "app", "refs/heads/master")
		if got := jsonOf(t, p.Repos[0].Pipelines); got != jsonOf(t, want) {
			t.Errorf("overview pipelines differ from `pipelines --json`:\n%s\n%s", got, jsonOf(t, want))
		}
		if p.Repos[0].Level != "read" {
			t.Errorf("carol's level %q", p.Repos[0].Level)
		}
	})

	t.Run("repo", func(t *testing.T) {
		p, err := s.view.Repo(ctx, carol, "app")
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"staging", "production"}; !reflect.DeepEqual(p.Environments, want) {
			t.Errorf("environments %v, want %v", p.Environments, want)
		}
		st, _ := s.runner.Deployer().Status("app")
		if jsonOf(t, p.Status) != jsonOf(t, st) {
			t.Errorf("status differs from `status --json`:\n%s\n%s", jsonOf(t, p.Status), jsonOf(t, st))
		}
		runs, _ := s.runner.Runs("app", "", recentRuns)
		if jsonOf(t, p.Recent) != jsonOf(t, runs) {
			t.Errorf("recent runs differ from `runs --json`")
		}
		if len(p.Pipelines) != 3 || p.Pipelines[2].Name != "web" || p.Pipelines[2].Last == nil || p.Pipelines[2].Last.Number != s.rollback.Number {
			t.Errorf("pipelines %s", jsonOf(t, p.Pipelines))
		}
	})

	t.Run("activity", func(t *testing.T) {
		// The first page is what `runs app web --json` prints.
		p, err := s.view.Activity(ctx, carol, "app", "web", Filter{}, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		runs, _ := s.runner.Runs("app", "web", 50)
		if jsonOf(t, p.Runs) != jsonOf(t, runs) {
			t.Errorf("activity differs from `runs --json`")
		}
		if p.Next != "" || len(p.Runs) != s.rollback.Number {
			t.Errorf("%d runs, next %q; want %d, none", len(p.Runs), p.Next, s.rollback.Number)
		}
		for _, tc := range []struct {
			name     string
			pipeline string
			f        Filter
			want     func(*pipelines.Run) bool
		}{
			{"all", "web", Filter{}, func(*pipelines.Run) bool { return true }},
			{"deploys", "web", Filter{Kind: pipelines.Deploy}, func(r *pipelines.Run) bool { return r.Kind == pipelines.Deploy }},
			{"failed", "web", Filter{State: pipelines.Failed}, func(r *pipelines.Run) bool { return r.State == pipelines.Failed }},
			{"passed builds", "web", Filter{State: pipelines.Passed, Kind: pipelines.Build}, func(r *pipelines.Run) bool {
				return r.State == pipelines.Passed && r.Kind == pipelines.Build
			}},
			{"whole repo", "", Filter{}, func(*pipelines.Run) bool { return true }},
			{"whole repo deploys", "", Filter{Kind: pipelines.Deploy}, func(r *pipelines.Run) bool { return r.Kind == pipelines.Deploy }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				all, _ := s.runner.Runs("app", tc.pipeline, 1000)
				var want []string
				for _, r := range all {
					if tc.want(r) {
						want = append(want, r.ID())
					}
				}
				// Walk it two at a time.
				var got []string
				cursor := ""
				for pages := 0; ; pages++ {
					if pages > 20 {
						t.Fatal("paging does not end")
					}
					p, err := s.view.Activity(ctx, carol, "app", tc.pipeline, tc.f, cursor, 2)
					if err != nil {
						t.Fatal(err)
					}
					if len(p.Runs) > 2 {
						t.Fatalf("page of %d", len(p.Runs))
					}
					for _, r := range p.Runs {
						got = append(got, r.ID())
					}
					if cursor = p.Next; cursor == "" {
						break
					}
				}
				if len(want) == 0 || !reflect.DeepEqual(got, want) {
					t.Errorf("pages hold\n%v\nwant\n%v", got, want)
				}
			})
		}
		if _, err := s.view.Activity(ctx, carol, "app", "web", Filter{State: "bogus"}, "", 0); !errors.Is(err, ErrBadFilter) {
			t.Errorf("bogus state: %v", err)
		}
		if _, err := s.view.Activity(ctx, carol, "app", "web", Filter{}, "web:x", 0); !errors.Is(err, pipelines.ErrBadCursor) {
			t.Errorf("bogus cursor: %v", err)
		}
	})

	t.Run("run and log", func(t *testing.T) {
		n := s.failedBuild.Number
		p, err := s.view.Run(ctx, carol, "app", "web", n)
		if err != nil {
			t.Fatal(err)
		}
		if !p.Ended || len(p.Stages) != 2 || p.Stages[0].State != pipelines.Failed || p.Stages[1].State != pipelines.Skipped {
			t.Fatalf("run page %s", jsonOf(t, p))
		}
		if p.Stages[0].LogOffset != 0 || p.Stages[1].LogOffset != -1 || p.Stages[0].LogBytes != p.LogSize {
			t.Errorf("log offsets %s", jsonOf(t, p.Stages))
		}
		// The stream is what `logs` prints, read in any pieces.
		for _, run := range []*pipelines.Run{s.failedBuild, s.prodFail, s.rollback} {
			var want bytes.Buffer
			if _, err := s.runner.Logs(ctx, "app", run.Pipeline, run.Number, &want, false); err != nil {
				t.Fatal(err)
			}
			for _, piece := range []int{1, 7, 1 << 20} {
				var got strings.Builder
				off := int64(0)
				for {
					c, err := s.view.LogFrom(ctx, carol, "app", run.Pipeline, run.Number, off, piece)
					if err != nil {
						t.Fatal(err)
					}
					if c.Offset != off || c.Next != off+int64(len(c.Text)) {
						t.Fatalf("chunk at %d: %+v", off, c)
					}
					got.WriteString(c.Text)
					off = c.Next
					if c.Ended {
						break
					}
					if c.Text == "" {
						t.Fatalf("an ended run's log does not end at %d", off)
					}
				}
				if got.String() != want.String() {
					t.Errorf("%s in pieces of %d:\n%q\nwant\n%q", run.ID(), piece, got.String(), want.String())
				}
			}
		}
		if ch, err := s.view.Changed(ctx, carol, "app", "web", n); err != nil {
			t.Fatal(err)
		} else {
			select {
			case <-ch:
			default:
				t.Error("an ended run's change channel is open")
			}
		}
		if _, err := s.view.Run(ctx, carol, "app", "web", 999); !errors.Is(err, ErrNotFound) {
			t.Errorf("run 999: %v", err)
		}
	})

	t.Run("artifacts", func(t *testing.T) {
		p, err := s.view.Artifacts(ctx, carol, "app", "web", "", 0)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := s.runner.Deployer().Artifacts("app", "web", 100)
		if len(p.Artifacts) != 4 || len(want) != 4 {
			t.Fatalf("%d artifacts, `artifacts` has %d", len(p.Artifacts), len(want))
		}
		for i, a := range p.Artifacts {
			if jsonOf(t, a.Artifact) != jsonOf(t, want[i]) {
				t.Errorf("artifact %d differs from `artifacts --json`", i)
			}
			if !a.Signature.Verified || a.Signature.Error != "" {
				t.Errorf("artifact %s: signature %+v", a.Commit[:7], a.Signature)
			}
		}
		byCommit := map[string]ArtifactView{}
		for _, a := range p.Artifacts {
			byCommit[a.Commit] = a
		}
		if got := byCommit[s.a2].Deployments; !reflect.DeepEqual(got, []Placement{{Environment: "staging", Desired: true, Deployed: true}}) {
			t.Errorf("a2 deployments %+v", got)
		}
		if got := byCommit[s.a3].Deployments; !reflect.DeepEqual(got, []Placement{{Environment: "production", Desired: true}}) {
			t.Errorf("a3 deployments %+v", got)
		}
		if got := byCommit[s.a1].Deployments; !reflect.DeepEqual(got, []Placement{{Environment: "production", Deployed: true}}) {
			t.Errorf("a1 deployments %+v", got)
		}
		if byCommit[s.a2].SourceSubject != "v2" || byCommit[s.a2].SourceCommit != s.c2 {
			t.Errorf("a2 source %s %q", byCommit[s.a2].SourceCommit, byCommit[s.a2].SourceSubject)
		}
		// Inputs, and paging.
		ap, err := s.view.Artifacts(ctx, carol, "app", "app", "", 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(ap.Artifacts) != 1 || ap.Artifacts[0].Commit != s.p2 || ap.Next != s.p1 {
			t.Fatalf("first page of app: %s", jsonOf(t, ap))
		}
		if got := ap.Artifacts[0].InputRefs; !reflect.DeepEqual(got, []InputRef{{Pipeline: "lib", Artifact: s.l1}}) {
			t.Errorf("p2 inputs %+v", got)
		}
		ap, err = s.view.Artifacts(ctx, carol, "app", "app", ap.Next, 1)
		if err != nil || len(ap.Artifacts) != 1 || ap.Artifacts[0].Commit != s.p1 || ap.Next != "" {
			t.Fatalf("second page of app: %v %s", err, jsonOf(t, ap))
		}
		if _, err := s.view.Artifacts(ctx, carol, "app", "app", s.c1, 1); !errors.Is(err, pipelines.ErrBadCursor) {
			t.Errorf("a source commit as cursor: %v", err)
		}
	})

	t.Run("environment", func(t *testing.T) {
		p, err := s.view.Environment(ctx, carol, "app", "staging", "", 0)
		if err != nil {
			t.Fatal(err)
		}
		if p.CanDeploy {
			t.Error("carol may deploy?")
		}
		var got []string
		for _, h := range p.History {
			got = append(got, h.Pipeline+" "+h.Artifact[:7]+" "+string(h.State)+" "+h.User+map[bool]string{true: " rollback"}[h.Rollback])
		}
		want := []string{"web " + s.a2[:7] + " passed alice rollback", "app " + s.p1[:7] + " passed alice",
			"web " + s.a3[:7] + " passed alice", "web " + s.a2[:7] + " passed alice", "web " + s.a1[:7] + " passed alice"}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("staging history\n%q\nwant\n%q", got, want)
		}
		if len(p.Status) != 2 || p.Status[0].Pipeline != "app" || p.Status[1].Deployed != s.a2 {
			t.Errorf("staging status %s", jsonOf(t, p.Status))
		}
		if p, err = s.view.Environment(ctx, alice, "app", "production", "", 1); err != nil || !p.CanDeploy ||
			len(p.History) != 1 || p.History[0].State != pipelines.Failed || p.Next == "" {
			t.Errorf("production, first page of 1: %v %s", err, jsonOf(t, p))
		}
		if _, err := s.view.Environment(ctx, carol, "app", "nowhere", "", 0); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown environment: %v", err)
		}
	})

	t.Run("board", func(t *testing.T) {
		p, err := s.view.Board(ctx, alice, "app", "web", "", 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := jsonOf(t, p.Environments); got != `[{"name":"staging","auto":false,"can_deploy":true},{"name":"production","after":"staging","auto":false,"can_deploy":true}]` {
			t.Errorf("columns %s", got)
		}
		got := map[string]string{}
		for _, r := range p.Rows {
			var cells []string
			for _, c := range r.Cells {
				cell := string(c.State)
				if c.Desired {
					cell += "*"
				}
				cells = append(cells, cell)
			}
			got[r.Artifact.Commit] = strings.Join(cells, " ")
		}
		want := map[string]string{
			s.a5: "eligible blocked",
			s.a3: "reached failed*",
			s.a2: "current* eligible",
			s.a1: "reached current",
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("board\n%v\nwant\n%v", got, want)
		}
		if len(p.Rows) != 4 || p.Rows[0].Artifact.Commit != s.a5 || p.Rows[3].Artifact.Commit != s.a1 {
			t.Errorf("rows are not newest first")
		}
		if c := p.Rows[0].Cells[1]; c.Reason != "not yet deployed successfully to staging (after: staging)" {
			t.Errorf("blocked reason %q", c.Reason)
		}
		if c := p.Rows[1].Cells[1]; c.Run != s.prodFail.Number {
			t.Errorf("failed cell names run %d, want %d", c.Run, s.prodFail.Number)
		}
		// Eligible means the deploy gate takes it, blocked that it does not.
		for _, r := range p.Rows {
			for _, c := range r.Cells {
				if c.State != Eligible && c.State != Blocked {
					continue
				}
				_, err := s.runner.Deployer().CheckDeployTarget(ctx, "app", "web", c.Environment, hash(r.Artifact.Commit))
				if (err == nil) != (c.State == Eligible) {
					t.Errorf("%s in %s is %s, but the gate says %v", r.Artifact.Commit[:7], c.Environment, c.State, err)
				}
			}
		}
		if p, err := s.view.Board(ctx, carol, "app", "web", "", 2); err != nil || len(p.Rows) != 2 || p.Next != s.a2 || p.Environments[0].CanDeploy {
			t.Errorf("carol's first page of 2: %v %s", err, jsonOf(t, p))
		}
		if _, err := s.view.Board(ctx, carol, "app", "nope", "", 0); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown pipeline: %v", err)
		}

		// A deploy moves the cells: the records read before are
		// extended with the new one.
		before := len(s.view.records.m["app\x00web"].recs)
		d := s.deploy("app", "web", "staging", s.a5, "deploy")
		if p, err = s.view.Board(ctx, alice, "app", "web", "", 2); err != nil {
			t.Fatal(err)
		}
		if got := jsonOf(t, p.Rows[0].Cells); got != fmt.Sprintf(`[{"environment":"staging","state":"current","desired":true,"run":%d},{"environment":"production","state":"eligible","desired":false}]`, d.Number) {
			t.Errorf("a5 after its deploy to staging: %s", got)
		}
		if got := p.Rows[1].Cells[0].State; got != Reached {
			t.Errorf("a3 in staging: %s", got)
		}
		if recs := s.view.records.m["app\x00web"].recs; len(recs) != before+1 || recs[0].Run != d.Number {
			t.Errorf("records: %d then %d, newest %+v", before, len(recs), recs[0])
		}
	})

	t.Run("value stream", func(t *testing.T) {
		p, err := s.view.ValueStream(ctx, carol, "app", s.c1[:10])
		if err != nil {
			t.Fatal(err)
		}
		if p.Commit != s.c1 || p.Subject != "v1" || len(p.Builds) != 3 {
			t.Fatalf("value stream of c1: %s", jsonOf(t, p))
		}
		var got []string
		for _, a := range p.Artifacts {
			line := a.Pipeline + " " + a.Artifact.Commit[:7]
			if a.From != "" {
				line += " from " + a.From[:7]
			}
			for _, d := range a.Deploys {
				line += " → " + d.Environment + " by " + d.User
			}
			if len(a.Current) > 0 {
				line += " now " + strings.Join(a.Current, ",")
			}
			got = append(got, line)
		}
		want := []string{
			"app " + s.p1[:7] + " → staging by alice now staging",
			"lib " + s.l1[:7],
			"web " + s.a1[:7] + " → staging by alice → production by alice now production",
			"app " + s.p2[:7] + " from " + s.l1[:7],
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("value stream\n%q\nwant\n%q", got, want)
		}
		if _, err := s.view.ValueStream(ctx, carol, "app", "deadbeef"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown commit: %v", err)
		}
		if _, err := s.view.ValueStream(ctx, carol, "app", "master"); !errors.Is(err, ErrNotFound) {
			t.Errorf("a branch name: %v", err)
		}
	})

	t.Run("no access is not found", func(t *testing.T) {
		for name, call := range map[string]func(u access.User, repo string) error{
			"repo": func(u access.User, repo string) error { _, err := s.view.Repo(ctx, u, repo); return err },
			"activity": func(u access.User, repo string) error {
				_, err := s.view.Activity(ctx, u, repo, "web", Filter{}, "", 0)
				return err
			},
			"run": func(u access.User, repo string) error { _, err := s.view.Run(ctx, u, repo, "web", 1); return err },
			"log": func(u access.User, repo string) error {
				_, err := s.view.LogFrom(ctx, u, repo, "web", 1, 0, 0)
				return err
			},
			"changed": func(u access.User, repo string) error { _, err := s.view.Changed(ctx, u, repo, "web", 1); return err },
			"artifacts": func(u access.User, repo string) error {
				_, err := s.view.Artifacts(ctx, u, repo, "web", "", 0)
				return err
			},
			"env": func(u access.User, repo string) error {
				_, err := s.view.Environment(ctx, u, repo, "staging", "", 0)
				return err
			},
			"board":  func(u access.User, repo string) error { _, err := s.view.Board(ctx, u, repo, "web", "", 0); return err },
			"stream": func(u access.User, repo string) error { _, err := s.view.ValueStream(ctx, u, repo, s.c1); return err },
		} {
			for _, repo := range []string{"app", "missing", "../app"} {
				if err := call(bob, repo); !errors.Is(err, ErrNotFound) {
					t.Errorf("%s of %s for bob: %v", name, repo, err)
				}
			}
			if err := call(carol, "app"); err != nil {
				t.Errorf("%s for carol: %v", name, err)
			}
		}
	})
}

// TestSignatureAsGitVerifies checks the view's verdict on an artifact's
// signature against `git verify-commit` with the server's allowed_signers
// line, for a genuine artifact and for one signed by another key.
func TestSignatureAsGitVerifies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real jobs")
	}
	w := newWorld(t)
	w.newRepo("app")
	c := w.commit("app", "v1", map[string]string{"version": "v1\n", ".refline/pipelines/lib.yml": libYML})
	art := w.build("app", "lib", c).Artifact
	g, err := w.view.openRepo("app")
	if err != nil {
		t.Fatal(err)
	}
	allowed := filepath.Join(t.TempDir(), "allowed_signers")
	if err := os.WriteFile(allowed, []byte(w.signer.AllowedSignersLine()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	gitVerifies := func(sha string) bool {
		cmd := runGitCmd(w.repos.Path("app"), "-c", "gpg.format=ssh", "-c", "gpg.ssh.allowedSignersFile="+allowed, "verify-commit", sha)
		return cmd.Run() == nil
	}
	forged := forge(t, w, g, art)
	for _, tc := range []struct {
		name string
		sha  string
		want bool
	}{{"genuine", art, true}, {"signed by another key", forged, false}, {"unsigned source commit", c, false}} {
		co, err := commitOf(g, tc.sha)
		if err != nil {
			t.Fatal(err)
		}
		sig := verify(co, w.signer.PublicKey())
		if sig.Verified != tc.want || gitVerifies(tc.sha) != tc.want {
			t.Errorf("%s: view says %+v, git verify-commit %v; want %v", tc.name, sig, gitVerifies(tc.sha), tc.want)
		}
	}
}
