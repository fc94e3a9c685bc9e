package hooks

import (
	"strings"
	"testing"

	"github.com/refline/refline/access"
)

func TestCheckPush(t *testing.T) {
	const a, b = "1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222"
	tests := []struct {
		level access.Level
		ref   string
		old   string
		new   string
		err   string // substring; "" = allowed
	}{
		{access.Write, "refs/heads/master", a, b, ""},
		{access.Write, "refs/tags/v1", ZeroID, b, ""},
		{access.Read, "refs/heads/master", a, b, "needs write access"},
		{access.Admin, "refs/artifacts/web", ZeroID, b, "written only by the refline server"},
		{access.Admin, "refs/artifacts/web", a, ZeroID, "written only by the refline server"},
		{access.Admin, "refs/runs/web", a, b, "written only by the refline server"},
		{access.Admin, "refs/deployed/production/web", a, b, "written only by the refline server"},
		{access.Write, "refs/deploy/production/web", a, b, "needs deploy access"},
		{access.Deploy, "refs/deploy/production/web", a, b, ""},
		{access.Admin, "refs/deploy/production/web", ZeroID, b, ""},
		{access.Write, "refs/artifactsX/web", ZeroID, b, ""},
		{access.Write, "refs/deployX/web", ZeroID, b, ""},
	}
	for _, tt := range tests {
		t.Run(tt.level.String()+" "+tt.ref, func(t *testing.T) {
			err := CheckPush(Session{Source: SourcePush, User: "u", Repo: "app", Level: tt.level}, Update{Old: tt.old, New: tt.new, Ref: tt.ref})
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("got %v, want error containing %q", err, tt.err)
			}
		})
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
