package secretscli

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/refline/refline/secrets"
)

// Every command that writes a file binds it, to origin's repository or
// --repo; reencrypt binds files written before bindings existed.
func TestCommandsWriteTheBinding(t *testing.T) {
	line := "# refline: team/app prod\n"
	tc := newTestClone(t)
	check := func(what string) {
		t.Helper()
		plain := tc.serverPlaintext("prod")
		if !bytes.HasPrefix(plain, []byte(line)) {
			t.Fatalf("after %s the plaintext starts %q", what, plain[:min(len(plain), 40)])
		}
		if err := (secrets.Binding{Repo: "team/app", Env: "prod"}).Check(plain); err != nil {
			t.Fatalf("after %s: %v", what, err)
		}
	}
	tc.mustRun(func(c *CLI) error { return c.Set(ctx, "prod", "A=1", "B=2") })
	check("set")
	tc.mustRun(func(c *CLI) error { return c.Unset(ctx, "prod", "A") })
	check("unset")
	tc.env["EDITOR"] = "true"
	tc.mustRun(func(c *CLI) error { return c.Edit(ctx, "prod") })
	check("edit")
	tc.mustRun(func(c *CLI) error { return c.Reencrypt(ctx, "prod") })
	check("reencrypt")
	// The user never sees the line: get and edit show the body.
	out, _ := tc.mustRun(func(c *CLI) error { return c.Get(ctx, "prod", "B") })
	if out != "2\n" {
		t.Errorf("get = %q", out)
	}

	// A file from before bindings (marker first), and one from the age
	// CLI (no refline line at all): reencrypt binds both, keeping the values.
	set, err := tc.cliRecipients()
	if err != nil {
		t.Fatal(err)
	}
	old, err := secrets.Encrypt(secrets.JoinMarker(set.Hash(), []byte("A=old\n")), set.Recipients()...)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(tc.dir, secrets.FilePath("prod")), old, 0o644)
	writeFile(t, filepath.Join(tc.dir, secrets.FilePath("staging")), mustEncrypt(t, "# by age\nS=1\n", set), 0o644)
	_, errOut := tc.mustRun(func(c *CLI) error { return c.ReencryptAll(ctx) })
	if !strings.Contains(errOut, "bound .refline/secrets/prod.age to team/app/prod (it was not bound to a repository and environment)") ||
		!strings.Contains(errOut, "bound .refline/secrets/staging.age to team/app/staging") {
		t.Errorf("stderr: %s", errOut)
	}
	check("reencrypt --all")
	if plain := string(tc.serverPlaintext("staging")); !strings.HasPrefix(plain, "# refline: team/app staging\n# refline-recipients: ") ||
		!strings.HasSuffix(plain, "# by age\nS=1\n") {
		t.Errorf("staging: %q", plain)
	}
	out, _ = tc.mustRun(func(c *CLI) error { return c.Get(ctx, "prod", "A") })
	if out != "old\n" {
		t.Errorf("get = %q", out)
	}
	// Once bound, the same value again changes nothing.
	_, errOut = tc.mustRun(func(c *CLI) error { return c.Set(ctx, "prod", "A=old") })
	if !strings.Contains(errOut, "prod.age is unchanged") {
		t.Errorf("stderr: %s", errOut)
	}

	// An unbound file is rewritten even when nothing else changed.
	writeFile(t, filepath.Join(tc.dir, secrets.FilePath("prod")), old, 0o644)
	_, errOut = tc.mustRun(func(c *CLI) error { return c.Set(ctx, "prod", "A=old") })
	if strings.Contains(errOut, "unchanged") {
		t.Errorf("an unbound file was left alone: %s", errOut)
	}
	check("set of the same value")

	// --repo binds to another name; a file bound elsewhere is re-bound
	// with a warning (whoever can decrypt it could write it anew).
	c, _, errBuf := tc.cli(func(cfg *Config) { cfg.Repo = "/other/app.git" })
	if err := c.Set(ctx, "prod", "A=old"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errBuf.String(), "warning: .refline/secrets/prod.age was bound to team/app/prod; it is now bound to other/app/prod") {
		t.Errorf("stderr: %s", errBuf)
	}
	if err := (secrets.Binding{Repo: "other/app", Env: "prod"}).Check(tc.serverPlaintext("prod")); err != nil {
		t.Error(err)
	}
}

func TestRepoNameErrorsSayWhatToDo(t *testing.T) {
	tc := newTestClone(t)
	run := func(t *testing.T, args ...string) {
		t.Helper()
		if out, err := exec.Command("git", append([]string{"-C", tc.dir}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	run(t, "remote", "remove", "origin")
	_, _, err := tc.run(func(c *CLI) error { return c.Set(ctx, "prod", "A=1") })
	if err == nil || !strings.Contains(err.Error(), "the clone has no origin remote") || !strings.Contains(err.Error(), "pass --repo NAME") {
		t.Errorf("no origin: %v", err)
	}
	run(t, "remote", "add", "origin", "/srv/git/app.git")
	_, _, err = tc.run(func(c *CLI) error { return c.Set(ctx, "prod", "A=1") })
	if err == nil || !strings.Contains(err.Error(), "pass --repo NAME") {
		t.Errorf("local origin: %v", err)
	}
	c, _, _ := tc.cli(func(cfg *Config) { cfg.Repo = "a/../b" })
	if err := c.Set(ctx, "prod", "A=1"); err == nil || !strings.Contains(err.Error(), "--repo: repository name \"a/../b\" has a segment") {
		t.Errorf("bad --repo: %v", err)
	}
	if _, err := os.Stat(filepath.Join(tc.dir, secrets.FilePath("prod"))); err == nil {
		t.Error("a file was written without knowing its repository")
	}
	// With --repo, no origin is needed at all.
	c, _, _ = tc.cli(func(cfg *Config) { cfg.Repo = "app" })
	if err := c.Set(ctx, "prod", "A=1"); err != nil {
		t.Fatal(err)
	}
	if err := (secrets.Binding{Repo: "app", Env: "prod"}).Check(tc.serverPlaintext("prod")); err != nil {
		t.Error(err)
	}
}

// cliRecipients is the recipient set a CLI of the clone encrypts to.
func (tc *testClone) cliRecipients() (*secrets.RecipientSet, error) {
	c, _, _ := tc.cli()
	return c.recipients(ctx)
}

func mustEncrypt(t *testing.T, plain string, set *secrets.RecipientSet) []byte {
	t.Helper()
	out, err := secrets.Encrypt([]byte(plain), set.Recipients()...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
