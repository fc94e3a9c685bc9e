package pipelines

import "testing"

func TestPushKeySurvivesReplay(t *testing.T) {
	orig := Push{Repo: "app", Ref: "refs/heads/master", Old: "a1", New: "b2", ID: "5f3c"}
	replayed := orig
	replayed.recovered = true
	other := orig
	other.ID = "77aa"
	back := orig
	back.Old, back.New = orig.New, orig.Old
	for _, c := range []struct {
		name string
		a, b Push
		same bool
	}{
		{"a replay keeps the key", orig, replayed, true},
		{"another push differs", orig, other, false},
		{"another update of the same connection differs", orig, back, false},
	} {
		if got := pushKey(c.a) == pushKey(c.b); got != c.same {
			t.Errorf("%s: keys %q and %q", c.name, pushKey(c.a), pushKey(c.b))
		}
	}
	if k := pushKey(Push{Repo: "app", Ref: "refs/heads/master"}); k != "" {
		t.Errorf("a push with no session has key %q, want none", k)
	}
}
