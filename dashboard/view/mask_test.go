package view

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/refline/refline/pipelines"
	"github.com/refline/refline/secrets"
)

// TestNoPageShowsASecret deploys with a credential that the deploy prints
// (plainly and in base64) and reads every page of the run and its
// repository: the view reads only what the runner masked before writing.
func TestNoPageShowsASecret(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real jobs")
	}
	const value = "hunter2-prod-s3cr3t"
	w := newWorld(t)
	w.newRepo("app")
	enc, err := secrets.Encrypt([]byte("# refline: app staging\nDB_PASSWORD="+value+"\n"), w.age.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	c := w.commit("app", "v1", map[string]string{"version": "v1\n", ".refline/pipelines/lib.yml": libYML + `environments:
  staging:
    run: |
      echo "password is $DB_PASSWORD"
      printf %s "$DB_PASSWORD" | base64
`, pipelines.SecretsDir + "staging.age": string(enc)})
	art := w.build("app", "lib", c).Artifact
	d := w.deploy("app", "lib", "staging", art, "deploy")
	if d.State != pipelines.Passed {
		t.Fatalf("deploy %s", d.State)
	}
	ctx := context.Background()
	var all strings.Builder
	add := func(v any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		all.WriteString(jsonOf(t, v))
	}
	add(w.view.Run(ctx, alice, "app", "lib", d.Number))
	add(w.view.LogFrom(ctx, alice, "app", "lib", d.Number, 0, 0))
	add(w.view.Repo(ctx, alice, "app"))
	add(w.view.Activity(ctx, alice, "app", "", Filter{}, "", 0))
	add(w.view.Environment(ctx, alice, "app", "staging", "", 0))
	add(w.view.Board(ctx, alice, "app", "lib", "", 0))
	add(w.view.Artifacts(ctx, alice, "app", "lib", "", 0))
	add(w.view.ValueStream(ctx, alice, "app", c))
	got := all.String()
	for _, form := range []string{value, base64.StdEncoding.EncodeToString([]byte(value))} {
		if strings.Contains(got, form) {
			t.Errorf("a page shows %q", form)
		}
	}
	if !strings.Contains(got, "password is ***") {
		t.Errorf("the deploy's log is not on its pages masked:\n%s", got)
	}
}
