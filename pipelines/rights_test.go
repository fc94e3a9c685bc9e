package pipelines

import (
	"errors"
	"fmt"
	"testing"
)

// fakeAuth grants from a table: "repo user" → readable; "repo user env" →
// deployable.
type fakeAuth map[string]bool

func (a fakeAuth) CanRead(repo, user string) bool { return a[repo+" "+user] }
func (a fakeAuth) CanDeploy(repo, user, env string) bool {
	return a[repo+" "+user+" "+env]
}

func TestMayDeployAndCanRead(t *testing.T) {
	auth := fakeAuth{"app bob": true, "app bob staging": true, "lib bob": true}
	tests := []struct {
		auth       Authorizer
		user, env  string
		deploy     bool
		readLib    bool
		readSecret bool
	}{
		{auth, "bob", "staging", true, true, false},
		{auth, "bob", "production", false, true, false},
		{auth, "mallory", "staging", false, false, false},
		{auth, "", "staging", false, false, false},
		{auth, NoUser, "staging", false, false, false},
		{auth, LocalOperator, "production", true, true, true},
		{nil, "bob", "staging", false, false, false},
		{nil, LocalOperator, "production", true, true, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %s auth=%v", tt.user, tt.env, tt.auth != nil), func(t *testing.T) {
			r := &rights{auth: tt.auth}
			err := r.mayDeploy("app", tt.user, tt.env)
			if (err == nil) != tt.deploy {
				t.Errorf("mayDeploy = %v, want allowed=%v", err, tt.deploy)
			}
			if err != nil && !errors.Is(err, ErrDeployDenied) {
				t.Errorf("mayDeploy error %v does not wrap ErrDeployDenied", err)
			}
			if got := r.canRead("lib", tt.user); got != tt.readLib {
				t.Errorf("canRead(lib) = %v, want %v", got, tt.readLib)
			}
			if got := r.canRead("secret", tt.user); got != tt.readSecret {
				t.Errorf("canRead(secret) = %v, want %v", got, tt.readSecret)
			}
		})
	}
}

func TestPusherRecords(t *testing.T) {
	e := newRunnerEnv(t, nil)
	r := e.newRunner(1)
	if _, ok := r.rights.pusherOf("app", "c0"); ok {
		t.Fatal("a pusher before any push")
	}
	for i := 0; i < maxPushRecords+5; i++ {
		if err := r.rights.notePusher("app", fmt.Sprintf("c%d", i), fmt.Sprintf("u%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	// A commit pushed again belongs to its latest pusher.
	if err := r.rights.notePusher("app", "c60", "carol"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		repo, commit, want string
		ok                 bool
	}{
		{"app", "c60", "carol", true},
		{"app", "c68", "u68", true},
		{"app", "c5", "u5", true}, // the oldest of the newest maxPushRecords
		{"app", "c4", "", false},  // fell off the end
		{"lib", "c60", "", false},
	}
	for _, tt := range tests {
		got, ok := r.rights.pusherOf(tt.repo, tt.commit)
		if got != tt.want || ok != tt.ok {
			t.Errorf("pusherOf(%s, %s) = %q, %v; want %q, %v", tt.repo, tt.commit, got, ok, tt.want, tt.ok)
		}
	}
}
