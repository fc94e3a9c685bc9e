package pipelines

import (
	"context"
	"errors"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/sirupsen/logrus"

	"github.com/refline/refline/secrets"
)

// A deploy uses a secrets file only when it is bound to the repository and
// environment being deployed; the errors and the server log never show a
// value.
func TestDeploySecretsBinding(t *testing.T) {
	const value = "theirs-prod-s3cr3t"
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	encrypt := func(plain string) []byte {
		out, err := secrets.Encrypt([]byte(plain), id.Recipient())
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	tests := []struct {
		name  string
		plain string
		err   string // "" = used
		log   string
	}{
		{"bound here", "# refline: app staging\n# refline-recipients: sha256:00\nDB_PASSWORD=" + value + "\n", "", ""},
		{"copied from another repository", "# refline: theirs production\nDB_PASSWORD=" + value + "\n",
			"deploy refused: .refline/secrets/staging.age (at master): this file belongs to theirs/production, not app/staging: " +
				"the server uses a secrets file only for the repository and environment it was written for; " +
				"write app/staging's own with refline secrets set staging KEY=VALUE and push",
			`bound_to=theirs/production`},
		{"copied from another environment", "# refline: app production\nDB_PASSWORD=" + value + "\n",
			"this file belongs to app/production, not app/staging", "bound to another repository or environment"},
		{"unbound", "DB_PASSWORD=" + value + "\n",
			`deploy refused: .refline/secrets/staging.age (at master): it is not bound to a repository and environment: ` +
				`run refline secrets reencrypt staging (or --all) in a clone and push, which adds the line "# refline: app staging"`,
			"not bound to a repository and environment"},
		{"recipients marker first, as before bindings", "# refline-recipients: sha256:00\n# refline: app staging\nDB_PASSWORD=" + value + "\n",
			"it is not bound", "not bound"},
		{"malformed", "# refline: " + value + "\nDB_PASSWORD=x\n", "it is not bound to a repository and environment: its first line", "not bound"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newRunnerEnv(t, map[string]string{"web": "stages: [{name: b, run: 'true'}]\nartifact: {paths: [x]}\n"})
			e.repo.commit("secrets", map[string][]byte{SecretsDir + "staging.age": encrypt(tt.plain)})
			r := e.newRunner(1)
			r.stages.ageIdentities = func() []age.Identity { return []age.Identity{id} }
			var logBuf strings.Builder
			logger := logrus.New()
			logger.SetOutput(&logBuf)
			vars, err := r.stages.deploySecrets(context.Background(), "app", "staging", logrus.NewEntry(logger))
			if tt.err == "" {
				if err != nil || len(vars) != 1 || vars[0].Value != value {
					t.Fatalf("got %v, %v", vars, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("got %v, want %q", err, tt.err)
			}
			if vars != nil {
				t.Errorf("vars returned with the error")
			}
			if !strings.Contains(logBuf.String(), tt.log) {
				t.Errorf("server log lacks %q:\n%s", tt.log, logBuf.String())
			}
			if strings.Contains(err.Error()+logBuf.String(), value) {
				t.Errorf("a value reached the error or the log: %v\n%s", err, logBuf.String())
			}
			var mm *secrets.MismatchError
			if !errors.As(err, &mm) && !errors.Is(err, secrets.ErrUnbound) {
				t.Errorf("%v wraps neither *MismatchError nor ErrUnbound", err)
			}
		})
	}
}
