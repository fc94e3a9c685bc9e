package view

import (
	"testing"

	"github.com/refline/refline/pipelines"
	"github.com/refline/refline/pipelines/spec"
)

// TestBoardCell decides cells from hand-set facts; TestPages checks the
// same rules over real refs and records.
func TestBoardCell(t *testing.T) {
	const a, b = "aaaa", "bbbb"
	staging := &spec.Environment{Name: "staging"}
	prod := &spec.Environment{Name: "production", After: "staging"}
	rec := func(run int, env string, st pipelines.State) deployRecord {
		return deployRecord{Run: run, Env: env, State: st, Artifact: a}
	}
	type facts struct {
		deployed, desired map[string]string
		recs              []deployRecord // newest first
		live              *pipelines.Run
	}
	for _, tc := range []struct {
		name   string
		env    string
		def    *spec.Environment
		f      facts
		want   CellState
		run    int
		desire bool
		going  string
		reason string
	}{
		{name: "never tried, no gate", env: "staging", def: staging, want: Eligible},
		{name: "deployed ref points at it", env: "staging", def: staging,
			f: facts{deployed: map[string]string{"staging": a}, desired: map[string]string{"staging": a},
				recs: []deployRecord{rec(3, "staging", pipelines.Passed)}}, want: Current, run: 3, desire: true},
		{name: "current even if a later redeploy of it failed", env: "staging", def: staging,
			f:    facts{deployed: map[string]string{"staging": a}, recs: []deployRecord{rec(4, "staging", pipelines.Failed), rec(3, "staging", pipelines.Passed)}},
			want: Current, run: 4},
		{name: "passed before, moved on since", env: "staging", def: staging,
			f: facts{deployed: map[string]string{"staging": b}, recs: []deployRecord{rec(3, "staging", pipelines.Passed)}}, want: Reached, run: 3},
		{name: "latest deploy failed", env: "staging", def: staging,
			f: facts{deployed: map[string]string{"staging": b}, desired: map[string]string{"staging": a},
				recs: []deployRecord{rec(5, "staging", pipelines.Failed)}}, want: Failed, run: 5, desire: true},
		{name: "failed after it had passed", env: "staging", def: staging,
			f: facts{recs: []deployRecord{rec(5, "staging", pipelines.Failed), rec(3, "staging", pipelines.Passed)}}, want: Failed, run: 5},
		{name: "interrupted counts as failed", env: "staging", def: staging,
			f: facts{recs: []deployRecord{rec(5, "staging", pipelines.Interrupted)}}, want: Failed, run: 5},
		{name: "passed after it had failed", env: "staging", def: staging,
			f: facts{recs: []deployRecord{rec(6, "staging", pipelines.Passed), rec(5, "staging", pipelines.Failed)}}, want: Reached, run: 6},
		{name: "a canceled deploy did not try it", env: "staging", def: staging,
			f: facts{recs: []deployRecord{rec(6, "staging", pipelines.Canceled)}}, want: Eligible, run: 6},
		{name: "superseded after a pass", env: "staging", def: staging,
			f: facts{recs: []deployRecord{rec(7, "staging", pipelines.Superseded), rec(3, "staging", pipelines.Passed)}}, want: Reached, run: 7},
		{name: "gate met by a past deploy", env: "production", def: prod,
			f: facts{deployed: map[string]string{"staging": b}, recs: []deployRecord{rec(3, "staging", pipelines.Passed)}}, want: Eligible},
		{name: "gate met by the deployed ref", env: "production", def: prod,
			f: facts{deployed: map[string]string{"staging": a}}, want: Eligible},
		{name: "gate not met", env: "production", def: prod, want: Blocked,
			reason: "not yet deployed successfully to staging (after: staging)"},
		{name: "gate not met: it failed there", env: "production", def: prod,
			f: facts{recs: []deployRecord{rec(3, "staging", pipelines.Failed)}}, want: Blocked,
			reason: "not yet deployed successfully to staging (after: staging)"},
		{name: "not defined at its source commit", env: "production", def: nil,
			f: facts{deployed: map[string]string{"staging": a}}, want: Blocked,
			reason: "production is not defined at the artifact's source commit"},
		{name: "deploying now", env: "staging", def: staging,
			f:    facts{desired: map[string]string{"staging": a}, live: &pipelines.Run{Number: 9, Kind: pipelines.Deploy, State: pipelines.Running, Environment: "staging", Artifact: a}},
			want: Eligible, run: 9, desire: true, going: "running"},
		{name: "queued while another artifact is current", env: "staging", def: staging,
			f: facts{deployed: map[string]string{"staging": b}, live: &pipelines.Run{Number: 9, Kind: pipelines.Deploy, State: pipelines.Queued, Environment: "staging", Artifact: a},
				recs: []deployRecord{rec(3, "staging", pipelines.Passed)}},
			want: Reached, run: 9, going: "queued"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &boardFacts{deployed: tc.f.deployed, desired: tc.f.desired, latest: map[artEnv]deployRecord{},
				passed: map[artEnv]bool{}, newestRun: map[artEnv]int{}, live: map[artEnv]*pipelines.Run{}}
			if f.deployed == nil {
				f.deployed = map[string]string{}
			}
			if f.desired == nil {
				f.desired = map[string]string{}
			}
			f.add(tc.f.recs)
			if tc.f.live != nil {
				f.addLive([]*pipelines.Run{tc.f.live})
			}
			c := f.cell(a, tc.env, tc.def)
			if c.State != tc.want || c.Run != tc.run || c.Desired != tc.desire || c.Deploying != tc.going || c.Reason != tc.reason {
				t.Errorf("cell %+v; want %s run %d desired %v deploying %q reason %q", c, tc.want, tc.run, tc.desire, tc.going, tc.reason)
			}
		})
	}
}

func TestEnvOrder(t *testing.T) {
	env := func(name, after string) spec.Environment { return spec.Environment{Name: name, After: after} }
	for _, tc := range []struct {
		name  string
		specs []*spec.Spec
		want  []string
	}{
		{"none", nil, []string{}},
		{"file order", []*spec.Spec{{Environments: []spec.Environment{env("a", ""), env("b", "")}}}, []string{"a", "b"}},
		{"after first", []*spec.Spec{{Environments: []spec.Environment{env("prod", "staging"), env("staging", "")}}}, []string{"staging", "prod"}},
		{"chain", []*spec.Spec{{Environments: []spec.Environment{env("c", "b"), env("b", "a"), env("a", "")}}}, []string{"a", "b", "c"}},
		{"across files", []*spec.Spec{
			{Environments: []spec.Environment{env("prod", "")}},
			{Environments: []spec.Environment{env("prod", "qa"), env("qa", "")}},
		}, []string{"qa", "prod"}},
		{"cycle across files keeps all", []*spec.Spec{
			{Environments: []spec.Environment{env("x", "y"), env("y", "")}},
			{Environments: []spec.Environment{env("y", "x"), env("x", "")}},
		}, []string{"y", "x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := envOrder(tc.specs); !equal(got, tc.want) {
				t.Errorf("envOrder = %v, want %v", got, tc.want)
			}
		})
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
