package hooks

import (
	"strings"
	"testing"

	"github.com/refline/refline/access"
)

// grantRights answers CanDeploy from one grant, whatever the repo and user.
type grantRights struct{ g access.Grant }

func (r grantRights) CanDeploy(repo, user, env string) bool { return r.g.CanDeploy(env) }

func TestCheckPush(t *testing.T) {
	const a, b = "1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222"
	tests := []struct {
		grant string
		ref   string
		old   string
		new   string
		err   string // substring; "" = allowed
	}{
		{"write", "refs/heads/master", a, b, ""},
		{"write", "refs/tags/v1", ZeroID, b, ""},
		{"read", "refs/heads/master", a, b, "needs write access"},
		{"admin", "refs/artifacts/web", ZeroID, b, "written only by the refline server"},
		{"admin", "refs/artifacts/web", a, ZeroID, "written only by the refline server"},
		{"admin", "refs/runs/web", a, b, "written only by the refline server"},
		{"admin", "refs/deployed/production/web", a, b, "written only by the refline server"},
		{"write", "refs/deploy/production/web", a, b, "needs deploy access to production of app"},
		{"deploy", "refs/deploy/production/web", a, b, ""},
		{"admin", "refs/deploy/production/web", ZeroID, b, ""},
		{"deploy:staging", "refs/heads/master", a, b, ""},
		{"deploy:staging", "refs/deploy/staging/web", a, b, ""},
		{"deploy:staging", "refs/deploy/staging/web", a, ZeroID, ""},
		{"deploy:staging", "refs/deploy/production/web", a, b, "needs deploy access to production of app"},
		{"deploy:staging", "refs/deploy/production/web", a, ZeroID, "needs deploy access to production of app"},
		{"deploy:staging,qa", "refs/deploy/qa/web", ZeroID, b, ""},
		{"deploy:staging", "refs/deploy/staging/web/extra", ZeroID, b, "needs deploy access to every environment"},
		{"deploy", "refs/deploy/staging/web/extra", ZeroID, b, ""},
		{"write", "refs/artifactsX/web", ZeroID, b, ""},
		{"write", "refs/deployX/web", ZeroID, b, ""},
	}
	for _, tt := range tests {
		t.Run(tt.grant+" "+tt.ref, func(t *testing.T) {
			g, err := access.ParseGrant(tt.grant)
			if err != nil {
				t.Fatal(err)
			}
			err = CheckPush(Session{Source: SourcePush, User: "u", Repo: "app", Level: g.Base()}, Update{Old: tt.old, New: tt.new, Ref: tt.ref}, grantRights{g})
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("got %v, want error containing %q", err, tt.err)
			}
		})
	}
	// Without rights to ask, no deploy ref moves.
	if err := CheckPush(Session{Source: SourcePush, User: "u", Repo: "app", Level: access.Admin},
		Update{Old: a, New: b, Ref: "refs/deploy/production/web"}, nil); err == nil {
		t.Error("a deploy ref moved with no rights to ask")
	}
}

func TestCheckLocal(t *testing.T) {
	const a, b = "1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222"
	tests := []struct {
		ref, new, current string
		refused           bool
	}{
		{"refs/heads/master", b, a, false},
		{"refs/artifacts/web", b, a, true},
		{"refs/artifacts/web", b, "", true},
		{"refs/artifacts/web", b, b, false},      // pack-refs copying the ref
		{"refs/artifacts/web", ZeroID, b, false}, // pruning, or an operator cleaning up
		{"refs/runs/web", b, a, true},
	}
	for _, tt := range tests {
		err := CheckLocal(Update{Old: ZeroID, New: tt.new, Ref: tt.ref}, tt.current)
		if (err != nil) != tt.refused {
			t.Errorf("%s -> %s (current %q): err = %v, want refused=%v", tt.ref, tt.new, tt.current, err, tt.refused)
		}
	}
}

func TestParseUpdates(t *testing.T) {
	ups, err := ParseUpdates([]byte(ZeroID + " 2222222222222222222222222222222222222222 refs/heads/master\n\n"))
	if err != nil || len(ups) != 1 || ups[0].Ref != "refs/heads/master" {
		t.Fatalf("got %v, %v", ups, err)
	}
	for _, bad := range []string{"x y", ZeroID + " 12 refs/heads/x", "a b c d"} {
		if _, err := ParseUpdates([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
