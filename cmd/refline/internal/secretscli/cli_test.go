package secretscli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/refline/refline/secrets"
	"golang.org/x/crypto/ssh"
)

// testClone is a git clone with a recipients file, a user identity and a
// fake server answering `ssh HOST keys`.
type testClone struct {
	t        *testing.T
	dir      string
	home     string
	idFile   string                // the user's identity (an OpenSSH ed25519 key)
	server   []*age.X25519Identity // the server's identities
	fetches  int                   // how often the server was asked for its keys
	env      map[string]string
	tempDirs []string
	confirm  func(string) bool
	stdin    string
}

func newTestClone(t *testing.T) *testClone {
	t.Helper()
	tc := &testClone{t: t, dir: t.TempDir(), home: t.TempDir(), env: map[string]string{}}
	if out, err := exec.Command("git", "init", "-q", tc.dir).CombinedOutput(); err != nil {
		t.Fatalf("git init: %v\n%s", err, out)
	}
	if out, err := exec.Command("git", "-C", tc.dir, "remote", "add", "origin", "ssh://git@host:2222/team/app.git").CombinedOutput(); err != nil {
		t.Fatalf("git remote add: %v\n%s", err, out)
	}
	user := testKeys(t)["ssh-ed25519"]
	tc.idFile = filepath.Join(tc.home, "user.key")
	writeFile(t, tc.idFile, user.private, 0o600)
	writeFile(t, filepath.Join(tc.dir, secrets.RecipientsFile), []byte("# alice\n"+user.recipient+"\n"), 0o644)
	tc.server = []*age.X25519Identity{mustX25519(t)}
	tc.tempDirs = []string{t.TempDir()}
	return tc
}

func (tc *testClone) cli(opts ...func(*Config)) (*CLI, *bytes.Buffer, *bytes.Buffer) {
	tc.t.Helper()
	var stdout, stderr bytes.Buffer
	cfg := Config{
		Dir:      tc.dir,
		Identity: tc.idFile,
		Home:     tc.home,
		Getenv:   func(k string) string { return tc.env[k] },
		Stdin:    strings.NewReader(tc.stdin),
		Stdout:   &stdout,
		Stderr:   &stderr,
		FetchKeys: func(context.Context) ([]byte, string, error) {
			tc.fetches++
			var b strings.Builder
			for _, id := range tc.server {
				b.WriteString(id.Recipient().String() + "\n")
			}
			b.WriteString(`refline@host namespaces="git" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB0ZJ6dmu0ofXr3Vv4UxYfGNw4Yf8tQO1N1zXhZ6Cb2L` + "\n")
			return []byte(b.String()), "ssh -p 2222 git@host keys", nil
		},
		Confirm:  tc.confirm,
		TempDirs: tc.tempDirs,
	}
	for _, o := range opts {
		o(&cfg)
	}
	c, err := New(context.Background(), cfg)
	if err != nil {
		tc.t.Fatal(err)
	}
	return c, &stdout, &stderr
}

// run runs one command with a fresh CLI, as each `refline secrets` is.
func (tc *testClone) run(f func(c *CLI) error) (stdout, stderr string, err error) {
	tc.t.Helper()
	c, out, errOut := tc.cli()
	err = f(c)
	return out.String(), errOut.String(), err
}

func (tc *testClone) mustRun(f func(c *CLI) error) (stdout, stderr string) {
	tc.t.Helper()
	out, errOut, err := tc.run(f)
	if err != nil {
		tc.t.Fatalf("%v\nstderr: %s", err, errOut)
	}
	return out, errOut
}

func (tc *testClone) read(rel string) []byte {
	tc.t.Helper()
	data, err := os.ReadFile(filepath.Join(tc.dir, rel))
	if err != nil {
		tc.t.Fatal(err)
	}
	return data
}

// serverPlaintext decrypts env's file as the server would.
func (tc *testClone) serverPlaintext(env string) []byte {
	tc.t.Helper()
	var ids []age.Identity
	for _, id := range tc.server {
		ids = append(ids, id)
	}
	plain, err := secrets.Decrypt(tc.read(secrets.FilePath(env)), ids...)
	if err != nil {
		tc.t.Fatalf("the server cannot decrypt %s: %v", env, err)
	}
	return plain
}

func writeFile(t *testing.T, path string, data []byte, perm os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, perm); err != nil {
		t.Fatal(err)
	}
}

var ctx = context.Background()

func TestSetGetListUnsetRoundTrip(t *testing.T) {
	tc := newTestClone(t)
	_, errOut := tc.mustRun(func(c *CLI) error { return c.Set(ctx, "prod", "DB_PASSWORD=correct horse", "TOKEN=tok_4f9a$x") })
	if !strings.Contains(errOut, "wrote .refline/secrets/prod.age: 2 key(s), encrypted to 2 recipient(s)") {
		t.Errorf("stderr: %s", errOut)
	}
	if !bytes.HasPrefix(tc.read(secrets.FilePath("prod")), []byte("-----BEGIN AGE ENCRYPTED FILE-----")) {
		t.Fatal("not armored")
	}
	out, _ := tc.mustRun(func(c *CLI) error { return c.Get(ctx, "prod", "TOKEN") })
	if out != "tok_4f9a$x\n" {
		t.Errorf("get TOKEN = %q", out)
	}
	out, _ = tc.mustRun(func(c *CLI) error { return c.List(ctx, "prod") })
	if out != "DB_PASSWORD\nTOKEN\n" {
		t.Errorf("list = %q", out)
	}
	if strings.Contains(out, "horse") {
		t.Error("list printed a value")
	}
	tc.mustRun(func(c *CLI) error { return c.Unset(ctx, "prod", "DB_PASSWORD") })
	out, _ = tc.mustRun(func(c *CLI) error { return c.List(ctx, "prod") })
	if out != "TOKEN\n" {
		t.Errorf("list after unset = %q", out)
	}
	// The server decrypts it too, and sees the marker as a comment.
	vars, err := secrets.ParseDotenv(tc.serverPlaintext("prod"))
	if err != nil || len(vars) != 1 || vars[0].Value != "tok_4f9a$x" {
		t.Errorf("server reads %v, %v", vars, err)
	}
}

func TestSetFromStdin(t *testing.T) {
	pem := "-----BEGIN KEY-----\nAAAA\nBBBB\n-----END KEY-----"
	for name, in := range map[string]string{"LF": pem + "\n", "CRLF": pem + "\r\n", "no newline": pem} {
		t.Run(name, func(t *testing.T) {
			tc := newTestClone(t)
			tc.stdin = in
			tc.mustRun(func(c *CLI) error { return c.Set(ctx, "prod", "TLS_KEY") })
			tc.stdin = ""
			out, _ := tc.mustRun(func(c *CLI) error { return c.Get(ctx, "prod", "TLS_KEY") })
			if out != pem+"\n" {
				t.Errorf("got %q", out)
			}
		})
	}
}

func TestCommandErrors(t *testing.T) {
	tc := newTestClone(t)
	tc.mustRun(func(c *CLI) error { return c.Set(ctx, "prod", "A=1") })
	tests := []struct {
		name string
		f    func(c *CLI) error
		want string
	}{
		{"get from a missing file names it", func(c *CLI) error { return c.Get(ctx, "staging", "A") }, ".refline/secrets/staging.age does not exist"},
		{"list of a missing file", func(c *CLI) error { return c.List(ctx, "staging") }, ".refline/secrets/staging.age does not exist"},
		{"unset in a missing file", func(c *CLI) error { return c.Unset(ctx, "staging", "A") }, ".refline/secrets/staging.age does not exist"},
		{"reencrypt of a missing file", func(c *CLI) error { return c.Reencrypt(ctx, "staging") }, ".refline/secrets/staging.age does not exist"},
		{"get of a missing key", func(c *CLI) error { return c.Get(ctx, "prod", "B") }, "B is not set in .refline/secrets/prod.age"},
		{"unset of a missing key", func(c *CLI) error { return c.Unset(ctx, "prod", "A", "B") }, "B is not set in .refline/secrets/prod.age; nothing was changed"},
		{"upper-case env", func(c *CLI) error { return c.Set(ctx, "Prod", "A=1") }, `invalid environment name "Prod"`},
		{"env with a slash", func(c *CLI) error { return c.Get(ctx, "../prod", "A") }, `invalid environment name "../prod"`},
		{"env starting with -", func(c *CLI) error { return c.List(ctx, "-x") }, `invalid environment name`},
		{"bad key", func(c *CLI) error { return c.Set(ctx, "prod", "1A=x") }, "invalid key"},
		{"not an assignment", func(c *CLI) error { return c.Set(ctx, "prod", "A=1", "hunter2") }, "assignment 2 of 2 is not KEY=VALUE"},
		{"key given twice", func(c *CLI) error { return c.Set(ctx, "prod", "A=1", "A=2") }, "A is given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tc.read(secrets.FilePath("prod"))
			_, _, err := tc.run(tt.f)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error quotes a value: %v", err)
			}
			if !bytes.Equal(before, tc.read(secrets.FilePath("prod"))) {
				t.Error("a failed command changed the file")
			}
		})
	}
	if _, err := os.Stat(filepath.Join(tc.dir, secrets.FilePath("staging"))); err == nil {
		t.Error("a failed command created a file")
	}
}

func TestDecryptErrorsSayWhatToDo(t *testing.T) {
	tc := newTestClone(t)
	tc.mustRun(func(c *CLI) error { return c.Set(ctx, "prod", "A=1") })

	other := filepath.Join(tc.home, "other.key")
	writeFile(t, other, testKeys(t)["x25519"].private, 0o600)
	c, _, _ := tc.cli(func(cfg *Config) { cfg.Identity = other })
	err := c.Get(ctx, "prod", "A")
	if err == nil || !strings.Contains(err.Error(), "cannot decrypt .refline/secrets/prod.age with "+other) ||
		!strings.Contains(err.Error(), "add your public key to .refline/recipients") {
		t.Errorf("got %v", err)
	}

	writeFile(t, filepath.Join(tc.dir, secrets.FilePath("plain")), []byte("A=secret-value\n"), 0o644)
	_, _, err = tc.run(func(c *CLI) error { return c.Get(ctx, "plain", "A") })
	if err == nil || !strings.Contains(err.Error(), "is not an age-encrypted file") || strings.Contains(err.Error(), "secret-value") {
		t.Errorf("plaintext file: %v", err)
	}
}

func TestResolveIdentities(t *testing.T) {
	keys := testKeys(t)
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKeyWithPassphrase(edPriv, "locked", []byte("pass"))
	if err != nil {
		t.Fatal(err)
	}
	locked := pem.EncodeToMemory(block)

	tests := []struct {
		name    string
		files   map[string][]byte // under home/.ssh
		flag    string            // --identity, under home
		used    []string          // under home/.ssh, or the flag
		skipped string            // substring of the skipped list
		err     string            // substring; "" = success
	}{
		{name: "ed25519 default", files: map[string][]byte{"id_ed25519": keys["ssh-ed25519"].private}, used: []string{"id_ed25519"}},
		{name: "rsa default", files: map[string][]byte{"id_rsa": keys["ssh-rsa"].private}, used: []string{"id_rsa"}},
		{name: "both, ed25519 first", files: map[string][]byte{"id_rsa": keys["ssh-rsa"].private, "id_ed25519": keys["ssh-ed25519"].private}, used: []string{"id_ed25519", "id_rsa"}},
		{name: "none", err: "pass --identity FILE"},
		{name: "flag wins over defaults", files: map[string][]byte{"id_ed25519": keys["ssh-ed25519"].private, "mine.txt": keys["x25519"].private}, flag: "mine.txt", used: []string{"mine.txt"}},
		{name: "flag names a missing file", flag: "nope", err: "nope"},
		{name: "flag names a public key", files: map[string][]byte{"id.pub": []byte(keys["ssh-ed25519"].recipient)}, flag: "id.pub", err: "not an identity"},
		{name: "passphrase only", files: map[string][]byte{"id_ed25519": locked}, err: "protected by a passphrase"},
		{name: "passphrase flag", files: map[string][]byte{"locked": locked}, flag: "locked", err: "protected by a passphrase"},
		{name: "passphrase skipped for rsa", files: map[string][]byte{"id_ed25519": locked, "id_rsa": keys["ssh-rsa"].private}, used: []string{"id_rsa"}, skipped: "passphrase"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := t.TempDir()
			for name, data := range tt.files {
				writeFile(t, filepath.Join(home, ".ssh", name), data, 0o600)
			}
			flag := ""
			if tt.flag != "" {
				flag = filepath.Join(home, ".ssh", tt.flag)
			}
			s, err := resolveIdentities(flag, home)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v, want error containing %q", err, tt.err)
				}
				if strings.Contains(tt.name, "passphrase") && !strings.Contains(err.Error(), "--identity") && tt.flag == "" {
					t.Errorf("no hint at --identity: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, u := range tt.used {
				want = append(want, filepath.Join(home, ".ssh", u))
			}
			if !slices.Equal(s.used, want) || len(s.ids) != len(want) {
				t.Errorf("used %v (%d identities), want %v", s.used, len(s.ids), want)
			}
			if got := strings.Join(s.skipped, ";"); !strings.Contains(got, tt.skipped) || (tt.skipped == "" && got != "") {
				t.Errorf("skipped %q, want %q", got, tt.skipped)
			}
		})
	}
}

func TestParseSSHRemote(t *testing.T) {
	tests := []struct {
		url  string
		args string // ssh's arguments; "" = error
	}{
		{"ssh://git@example.com:2222/app.git", "-p 2222 git@example.com"},
		{"ssh://git@127.0.0.1:40123/team/app", "-p 40123 git@127.0.0.1"},
		{"ssh://example.com/app", "example.com"},
		{"git+ssh://git@example.com/app", "git@example.com"},
		{"ssh://git@[::1]:2222/app", "-p 2222 git@::1"},
		{"git@example.com:app.git", "git@example.com"},
		{"example.com:team/app", "example.com"},
		{"git@[::1]:app", "git@::1"},
		{"https://example.com/app.git", ""},
		{"/srv/git/app.git", ""},
		{"./app:x", ""},
		{"ssh://-oProxyCommand=touch%20pwned/app", ""},
		{"-oProxyCommand=x:app", ""},
		{"ssh://git@example.com:99999/app", ""},
		{":app", ""},
	}
	for _, tt := range tests {
		r, err := ParseSSHRemote(tt.url)
		got := ""
		if err == nil {
			got = strings.Join(r.Args(), " ")
		}
		if got != tt.args {
			t.Errorf("ParseSSHRemote(%q) = %q, %v; want %q", tt.url, got, err, tt.args)
		}
	}
}

func TestRepoFromRemote(t *testing.T) {
	tests := []struct {
		url, want, err string
	}{
		{"ssh://git@host:2222/app.git", "app", ""},
		{"ssh://git@host:2222/app", "app", ""},
		{"ssh://git@host/team/app.git", "team/app", ""},
		{"ssh://git@host:2222/team/app.git/", "team/app", ""},
		{"git+ssh://host/app.git", "app", ""},
		{"ssh://git@[::1]:2222/app.git", "app", ""},
		{"git@host:app.git", "app", ""},
		{"git@host:team/app.git", "team/app", ""},
		{"host:/team/app", "team/app", ""},
		{"git@[::1]:app.git", "app", ""},
		{"[git@host:2222]:app.git", "app", ""},
		{"ssh://git@host:2222/", "", "repository name is empty"},
		{"ssh://git@host:2222/../app.git", "", "segment starting with '.'"},
		{"ssh://git@host:2222/.hidden.git", "", "segment starting with '.'"},
		{"ssh://git@host:2222/a b.git", "", "has the character ' '"},
		{"/srv/git/app.git", "", "is not a URL of a refline server"},
		{"./app", "", "is not a URL of a refline server"},
		{"ssh://host:notaport/app", "", "remote URL"},
	}
	for _, tt := range tests {
		got, err := RepoFromRemote(tt.url)
		switch {
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("%s: got %q, %v; want %q", tt.url, got, err, tt.want)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%s: got %q, %v; want an error with %q", tt.url, got, err, tt.err)
		}
	}
}

func TestServerRecipientsFetchedOnceAndCached(t *testing.T) {
	tc := newTestClone(t)
	_, errOut := tc.mustRun(func(c *CLI) error { return c.Set(ctx, "prod", "A=1") })
	if tc.fetches != 1 {
		t.Fatalf("fetched %d times, want 1", tc.fetches)
	}
	if !strings.Contains(errOut, "wrote .refline/server-recipients: 1 server recipient(s) from `ssh -p 2222 git@host keys`") {
		t.Errorf("stderr: %s", errOut)
	}
	cache := tc.read(secrets.ServerRecipientsFile)
	if !bytes.HasSuffix(cache, []byte("\n"+tc.server[0].Recipient().String()+"\n")) || bytes.Contains(cache, []byte("host")) {
		t.Errorf("cache file:\n%s", cache)
	}
	if recs, err := secrets.ParseRecipients(secrets.ServerRecipientsFile, cache); err != nil || len(recs) != 1 {
		t.Errorf("cache does not parse as a recipients file: %v %v", recs, err)
	}

	// Later commands use the cache.
	tc.mustRun(func(c *CLI) error { return c.Set(ctx, "prod", "B=2") })
	if tc.fetches != 1 {
		t.Fatalf("fetched %d times, want 1", tc.fetches)
	}

	// --refresh asks again; the same keys leave the file (and the secrets) alone.
	before := tc.read(secrets.FilePath("prod"))
	c, _, _ := tc.cli(func(cfg *Config) { cfg.Refresh = true })
	if err := c.Set(ctx, "prod", "B=2"); err != nil {
		t.Fatal(err)
	}
	if tc.fetches != 2 || !bytes.Equal(cache, tc.read(secrets.ServerRecipientsFile)) || !bytes.Equal(before, tc.read(secrets.FilePath("prod"))) {
		t.Fatalf("refresh with the same keys: fetches %d, cache or secrets rewritten", tc.fetches)
	}

	// A rotated server key: --refresh caches both, and files are re-encrypted.
	tc.server = append(tc.server, mustX25519(t))
	c, _, _ = tc.cli(func(cfg *Config) { cfg.Refresh = true })
	if err := c.Set(ctx, "prod", "B=2"); err != nil {
		t.Fatal(err)
	}
	if recs, _ := secrets.ParseRecipients(secrets.ServerRecipientsFile, tc.read(secrets.ServerRecipientsFile)); len(recs) != 2 {
		t.Fatalf("cache holds %d recipients after rotation, want 2", len(recs))
	}
	if bytes.Equal(before, tc.read(secrets.FilePath("prod"))) {
		t.Fatal("not re-encrypted to the new server key")
	}
	if _, err := secrets.Decrypt(tc.read(secrets.FilePath("prod")), tc.server[1]); err != nil {
		t.Fatalf("new server key cannot decrypt: %v", err)
	}

	// A hand-written cache with comments is read as it is.
	writeFile(t, filepath.Join(tc.dir, secrets.ServerRecipientsFile), []byte("# ours\n"+tc.server[1].Recipient().String()+"\n"), 0o644)
	tc.mustRun(func(c *CLI) error { return c.Reencrypt(ctx, "prod") })
	if tc.fetches != 3 {
		t.Fatalf("fetched %d times, want 3", tc.fetches)
	}
	if _, err := secrets.Decrypt(tc.read(secrets.FilePath("prod")), tc.server[0]); !errors.Is(err, secrets.ErrNoIdentity) {
		t.Fatalf("file still encrypted to the key left out of the cache: %v", err)
	}
}

func TestFetchFailureIsReported(t *testing.T) {
	tc := newTestClone(t)
	c, _, _ := tc.cli(func(cfg *Config) {
		cfg.FetchKeys = func(context.Context) ([]byte, string, error) { return nil, "", errors.New("connection refused") }
	})
	if err := c.Set(ctx, "prod", "A=1"); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("got %v", err)
	}
	if _, err := os.Stat(filepath.Join(tc.dir, secrets.FilePath("prod"))); err == nil {
		t.Fatal("file written without the server's recipients")
	}
}

func TestRewriteOnlyOnChange(t *testing.T) {
	tc := newTestClone(t)
	tc.mustRun(func(c *CLI) error { return c.Set(ctx, "prod", "A=1", "B=two words") })
	v1 := tc.read(secrets.FilePath("prod"))

	steps := []struct {
		name    string
		prepare func()
		f       func(c *CLI) error
		rewrite bool
	}{
		{"same values", nil, func(c *CLI) error { return c.Set(ctx, "prod", "A=1", "B=two words") }, false},
		{"same value, one of them", nil, func(c *CLI) error { return c.Set(ctx, "prod", "B=two words") }, false},
		{"get", nil, func(c *CLI) error { return c.Get(ctx, "prod", "A") }, false},
		{"new value", nil, func(c *CLI) error { return c.Set(ctx, "prod", "A=2") }, true},
		{"same again", nil, func(c *CLI) error { return c.Set(ctx, "prod", "A=2") }, false},
		{"a recipient added", func() {
			data := append(tc.read(secrets.RecipientsFile), testKeys(t)["ssh-rsa"].recipient+"\n"...)
			writeFile(t, filepath.Join(tc.dir, secrets.RecipientsFile), data, 0o644)
		}, func(c *CLI) error { return c.Set(ctx, "prod", "A=2") }, true},
		{"then stable", nil, func(c *CLI) error { return c.Set(ctx, "prod", "A=2") }, false},
		{"comment-only change to recipients", func() {
			data := append([]byte("# reordered and commented\n"), tc.read(secrets.RecipientsFile)...)
			writeFile(t, filepath.Join(tc.dir, secrets.RecipientsFile), data, 0o644)
		}, func(c *CLI) error { return c.Set(ctx, "prod", "A=2") }, false},
		{"an x25519 recipient swapped for another", func() {
			writeFile(t, filepath.Join(tc.dir, secrets.RecipientsFile), []byte(testKeys(t)["ssh-ed25519"].recipient+"\n"+testKeys(t)["ssh-rsa"].recipient+"\n"+mustX25519(t).Recipient().String()+"\n"), 0o644)
		}, func(c *CLI) error { return c.Set(ctx, "prod", "A=2") }, true},
		{"swapped again, same count", func() {
			writeFile(t, filepath.Join(tc.dir, secrets.RecipientsFile), []byte(testKeys(t)["ssh-ed25519"].recipient+"\n"+testKeys(t)["ssh-rsa"].recipient+"\n"+mustX25519(t).Recipient().String()+"\n"), 0o644)
		}, func(c *CLI) error { return c.Set(ctx, "prod", "A=2") }, true},
		{"reencrypt always rewrites", nil, func(c *CLI) error { return c.Reencrypt(ctx, "prod") }, true},
		{"unset", nil, func(c *CLI) error { return c.Unset(ctx, "prod", "B") }, true},
	}
	prev := v1
	for _, s := range steps {
		if s.prepare != nil {
			s.prepare()
		}
		_, errOut, err := tc.run(s.f)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		cur := tc.read(secrets.FilePath("prod"))
		if changed := !bytes.Equal(prev, cur); changed != s.rewrite {
			t.Fatalf("%s: rewritten = %v, want %v (stderr: %s)", s.name, changed, s.rewrite, errOut)
		}
		prev = cur
	}
}

// A file re-encrypted with the age CLI to other recipients keeps refline's
// marker; the age header gives the change away.
func TestRewriteWhenHeaderDisagreesWithMarker(t *testing.T) {
	tc := newTestClone(t)
	tc.mustRun(func(c *CLI) error { return c.Set(ctx, "prod", "A=1") })
	plain := tc.serverPlaintext("prod")
	if !bytes.HasPrefix(plain, []byte("# refline: team/app prod\n# refline-recipients: sha256:")) {
		t.Fatalf("no binding and marker in %q", plain)
	}
	// Encrypted to the server only: the user's SSH key is missing.
	out, err := secrets.Encrypt(plain, tc.server[0].Recipient())
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(tc.dir, secrets.FilePath("prod")), out, 0o644)
	c, _, _ := tc.cli(func(cfg *Config) {
		x := filepath.Join(tc.home, "server.key")
		writeFile(t, x, []byte(tc.server[0].String()+"\n"), 0o600)
		cfg.Identity = x
	})
	if err := c.Set(ctx, "prod", "A=1"); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(out, tc.read(secrets.FilePath("prod"))) {
		t.Fatal("file with a different recipient set left alone")
	}
	if _, err := secrets.Decrypt(tc.read(secrets.FilePath("prod")), mustIdentities(t, testKeys(t)["ssh-ed25519"].private)...); err != nil {
		t.Fatalf("user still cannot decrypt: %v", err)
	}
}

func TestAtomicWriteLeavesNoTempFiles(t *testing.T) {
	tc := newTestClone(t)
	tc.mustRun(func(c *CLI) error { return c.Set(ctx, "prod", "A=1") })
	tc.mustRun(func(c *CLI) error { return c.Set(ctx, "staging", "A=1") })
	tc.mustRun(func(c *CLI) error { return c.Set(ctx, "prod", "A=2") })
	tc.mustRun(func(c *CLI) error { return c.ReencryptAll(ctx) })
	names := func(dir string) []string {
		ents, err := os.ReadDir(filepath.Join(tc.dir, dir))
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range ents {
			out = append(out, e.Name())
		}
		return out
	}
	if got := names(secrets.Dir); !slices.Equal(got, []string{"prod.age", "staging.age"}) {
		t.Errorf("%s holds %v", secrets.Dir, got)
	}
	if got := names(".refline"); !slices.Equal(got, []string{"recipients", "secrets", "server-recipients"}) {
		t.Errorf(".refline holds %v", got)
	}

	// A failed rename removes the temporary file.
	dir := t.TempDir()
	target := filepath.Join(dir, "x.age")
	writeFile(t, filepath.Join(target, "blocker"), nil, 0o644) // x.age is a non-empty directory
	if err := writeFileAtomic(target, []byte("data"), 0o644); err == nil {
		t.Fatal("rename over a directory succeeded")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("left behind: %v", ents)
	}
}

// editorScript writes an $EDITOR that records the file it was given and
// its mode, then runs body with $1 the file.
func editorScript(t *testing.T, log, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "editor")
	script := "#!/bin/sh\necho \"$1\" >> " + log + "\nstat -c %a \"$1\" >> " + log + "\n" + body + "\n"
	writeFile(t, path, []byte(script), 0o755)
	return path
}

// editorLog returns the files the editor was given and their modes.
func editorLog(t *testing.T, log string) (files, modes []string) {
	t.Helper()
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(string(data))
	for i := 0; i+1 < len(lines); i += 2 {
		files = append(files, lines[i])
		modes = append(modes, lines[i+1])
	}
	return files, modes
}

func TestEdit(t *testing.T) {
	tc := newTestClone(t)
	tc.mustRun(func(c *CLI) error { return c.Set(ctx, "prod", "A=1") })
	log := filepath.Join(t.TempDir(), "log")
	tc.env["EDITOR"] = editorScript(t, log, `printf '# added by the editor\nB=two\n' >> "$1"`)

	_, errOut := tc.mustRun(func(c *CLI) error { return c.Edit(ctx, "prod") })
	out, _ := tc.mustRun(func(c *CLI) error { return c.List(ctx, "prod") })
	if out != "A\nB\n" {
		t.Fatalf("after edit: %q (stderr %s)", out, errOut)
	}
	files, modes := editorLog(t, log)
	if len(files) != 1 || modes[0] != "600" {
		t.Fatalf("editor got %v with modes %v", files, modes)
	}
	if !strings.HasPrefix(files[0], tc.tempDirs[0]+"/") || filepath.Base(files[0]) != "prod.env" {
		t.Errorf("plaintext was at %s, not in %s", files[0], tc.tempDirs[0])
	}
	if _, err := os.Stat(filepath.Dir(files[0])); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("plaintext directory left behind: %v", err)
	}
	if ents, _ := os.ReadDir(tc.tempDirs[0]); len(ents) != 0 {
		t.Errorf("temp dir holds %v", ents)
	}
	if plain := tc.serverPlaintext("prod"); !bytes.Contains(plain, []byte("# added by the editor\n")) {
		t.Errorf("comment lost: %q", plain)
	}

	// An editor that changes nothing changes nothing.
	before := tc.read(secrets.FilePath("prod"))
	tc.env["EDITOR"] = editorScript(t, log, "true")
	_, errOut = tc.mustRun(func(c *CLI) error { return c.Edit(ctx, "prod") })
	if !bytes.Equal(before, tc.read(secrets.FilePath("prod"))) || !strings.Contains(errOut, "unchanged") {
		t.Errorf("no-op edit rewrote the file (stderr %s)", errOut)
	}
}

func TestEditNewFile(t *testing.T) {
	tc := newTestClone(t)
	log := filepath.Join(t.TempDir(), "log")
	tc.env["EDITOR"] = editorScript(t, log, "true")
	_, errOut := tc.mustRun(func(c *CLI) error { return c.Edit(ctx, "prod") })
	if !strings.Contains(errOut, "was not created") {
		t.Errorf("stderr: %s", errOut)
	}
	if _, err := os.Stat(filepath.Join(tc.dir, secrets.FilePath("prod"))); err == nil {
		t.Error("empty edit created a file")
	}
	tc.env["EDITOR"] = editorScript(t, log, `echo 'A=1' > "$1"`)
	tc.mustRun(func(c *CLI) error { return c.Edit(ctx, "prod") })
	if out, _ := tc.mustRun(func(c *CLI) error { return c.Get(ctx, "prod", "A") }); out != "1\n" {
		t.Errorf("got %q", out)
	}
}

func TestEditFailuresChangeNothingAndRemoveThePlaintext(t *testing.T) {
	tests := []struct {
		name   string
		editor string
		want   string
	}{
		{"editor fails", `echo 'B=leaked-secret' >> "$1"; exit 3`, "the editor failed"},
		{"invalid dotenv, no terminal", `echo "B='leaked-secret" >> "$1"`, "no closing '"},
		{"editor removes the file", `rm "$1"`, "read the edited file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := newTestClone(t)
			tc.mustRun(func(c *CLI) error { return c.Set(ctx, "prod", "A=1") })
			before := tc.read(secrets.FilePath("prod"))
			log := filepath.Join(t.TempDir(), "log")
			tc.env["EDITOR"] = editorScript(t, log, tt.editor)
			_, errOut, err := tc.run(func(c *CLI) error { return c.Edit(ctx, "prod") })
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "nothing was changed") {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error()+errOut, "leaked-secret") {
				t.Errorf("a value reached the output: %v %s", err, errOut)
			}
			if !bytes.Equal(before, tc.read(secrets.FilePath("prod"))) {
				t.Error("file changed")
			}
			files, _ := editorLog(t, log)
			if _, err := os.Stat(filepath.Dir(files[0])); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("plaintext left behind in %s", filepath.Dir(files[0]))
			}
		})
	}
}

func TestEditReopensOnParseError(t *testing.T) {
	tc := newTestClone(t)
	var asked []string
	tc.confirm = func(q string) bool { asked = append(asked, q); return true }
	log := filepath.Join(t.TempDir(), "log")
	// First run breaks the file, the second fixes it.
	tc.env["EDITOR"] = editorScript(t, log, `if [ "$(wc -l < `+log+`)" -le 2 ]; then echo "A='open" > "$1"; else echo "A=closed" > "$1"; fi`)
	tc.mustRun(func(c *CLI) error { return c.Edit(ctx, "prod") })
	if len(asked) != 1 || !strings.Contains(asked[0], "line 1: the single-quoted value of A has no closing '") {
		t.Errorf("asked %q", asked)
	}
	files, _ := editorLog(t, log)
	if len(files) != 2 || files[0] != files[1] {
		t.Errorf("editor runs: %v", files)
	}
	if out, _ := tc.mustRun(func(c *CLI) error { return c.Get(ctx, "prod", "A") }); out != "closed\n" {
		t.Errorf("got %q", out)
	}
}

func TestEditFallsBackToTempDirWithWarning(t *testing.T) {
	tc := newTestClone(t)
	tc.tempDirs = []string{filepath.Join(t.TempDir(), "missing")}
	log := filepath.Join(t.TempDir(), "log")
	tc.env["EDITOR"] = editorScript(t, log, `echo A=1 > "$1"`)
	_, errOut := tc.mustRun(func(c *CLI) error { return c.Edit(ctx, "prod") })
	if !strings.Contains(errOut, "warning: no memory-backed directory") {
		t.Errorf("no warning: %s", errOut)
	}
	files, _ := editorLog(t, log)
	if _, err := os.Stat(filepath.Dir(files[0])); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("plaintext left behind in %s", filepath.Dir(files[0]))
	}
}

func TestWarnsWhenUserCannotReadBack(t *testing.T) {
	tc := newTestClone(t)
	writeFile(t, filepath.Join(tc.dir, secrets.RecipientsFile), []byte("# nobody yet\n"), 0o644)
	_, errOut := tc.mustRun(func(c *CLI) error { return c.Set(ctx, "prod", "A=1") })
	if !strings.Contains(errOut, "warning: .refline/recipients lists nobody") ||
		!strings.Contains(errOut, "so you cannot read it back") {
		t.Errorf("stderr: %s", errOut)
	}
}

func TestInvalidServerRecipientsCacheNeedsRefresh(t *testing.T) {
	tc := newTestClone(t)
	writeFile(t, filepath.Join(tc.dir, secrets.ServerRecipientsFile), []byte("age1garbage\n"), 0o644)
	_, _, err := tc.run(func(c *CLI) error { return c.Set(ctx, "prod", "A=1") })
	if err == nil || !strings.Contains(err.Error(), ".refline/server-recipients:1:") || !strings.Contains(err.Error(), "--refresh") {
		t.Fatalf("got %v", err)
	}
	c, _, _ := tc.cli(func(cfg *Config) { cfg.Refresh = true })
	if err := c.Set(ctx, "prod", "A=1"); err != nil {
		t.Fatal(err)
	}
	tc.serverPlaintext("prod")
}
