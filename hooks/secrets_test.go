package hooks

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/refline/refline/secrets"
)

const testPipeline = `stages:
  - name: build
    run: make
artifact:
  paths: [bin/]
environments:
  staging:
    run: ./deploy.sh
  production:
    after: staging
    run: ./deploy.sh
`

// secretValue is in every plaintext; no message may ever show it.
const secretValue = "s3cr3t-Value-42"

// secretsRepo is a git repository to commit test files in.
type secretsRepo struct {
	t   *testing.T
	dir string
}

func newSecretsRepo(t *testing.T) *secretsRepo {
	t.Helper()
	r := &secretsRepo{t: t, dir: t.TempDir()}
	r.git("init", "-q", "-b", "master")
	return r
}

func (r *secretsRepo) git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=T", "-c", "user.email=t@example.com"}, args...)...)
	cmd.Dir = r.dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+r.dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit writes files (nil content removes one; "->target" makes a symlink)
// on top of the checked-out commit and returns the new commit's id.
func (r *secretsRepo) commit(files map[string][]byte) string {
	r.t.Helper()
	for name, data := range files {
		p := filepath.Join(r.dir, name)
		if data == nil {
			os.Remove(p)
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		os.Remove(p)
		if target, ok := strings.CutPrefix(string(data), "->"); ok {
			if err := os.Symlink(target, p); err != nil {
				r.t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	r.git("add", "-A")
	r.git("commit", "-q", "--allow-empty", "-m", "change")
	return r.git("rev-parse", "HEAD")
}

// testRepo is the repository the tests' events are for.
const testRepo = "app"

// bound is plain with the binding line of testRepo's env.
func bound(env, plain string) string {
	return secrets.Binding{Repo: testRepo, Env: env}.Line() + "\n" + plain
}

func encryptTo(t *testing.T, plain string, recipients ...age.Recipient) []byte {
	t.Helper()
	out, err := secrets.Encrypt([]byte(plain), recipients...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func newIdentity(t *testing.T) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func checker(ids ...*age.X25519Identity) SecretsChecker {
	return SecretsChecker{
		Identities: func() []age.Identity {
			var out []age.Identity
			for _, id := range ids {
				out = append(out, id)
			}
			return out
		},
		Recipients: func() []string {
			var out []string
			for _, id := range ids {
				out = append(out, id.Recipient().String())
			}
			return out
		},
		KeysHint: func() string { return "ssh -p 2222 git@host keys" },
	}
}

func (r *secretsRepo) check(c SecretsChecker, old, new string) (string, error) {
	r.t.Helper()
	var out bytes.Buffer
	err := c.Check(context.Background(), &Event{
		Hook:    "pre-receive",
		Repo:    testRepo,
		GitDir:  filepath.Join(r.dir, ".git"),
		Updates: []Update{{Old: old, New: new, Ref: "refs/heads/master"}},
	}, &out)
	return out.String(), err
}

func TestSecretsCheckerContent(t *testing.T) {
	server, alice := newIdentity(t), newIdentity(t)
	both := []age.Recipient{server.Recipient(), alice.Recipient()}
	valid := encryptTo(t, bound("staging", "# staging\nDB_PASSWORD="+secretValue+"\n"), both...)
	validProduction := encryptTo(t, bound("production", "DB_PASSWORD="+secretValue+"\n"), both...)
	damagedArmor := bytes.Replace(valid, []byte("\n"), []byte("\n!!!!\n"), 2)
	lines := strings.Split(string(valid), "\n")
	lines[2] = strings.Repeat("A", len(lines[2])) // valid armor, garbled header
	damagedHeader := []byte(strings.Join(lines, "\n"))
	var binary bytes.Buffer
	w, _ := age.Encrypt(&binary, both...)
	w.Write([]byte("A=" + secretValue + "\n"))
	w.Close()

	tests := []struct {
		name  string
		files map[string][]byte
		want  []string // substrings of the error; none = accepted
	}{
		{"valid", map[string][]byte{".refline/secrets/staging.age": valid}, nil},
		{"valid, both environments", map[string][]byte{".refline/secrets/staging.age": valid, ".refline/secrets/production.age": validProduction}, nil},
		{"unbound", map[string][]byte{".refline/secrets/staging.age": encryptTo(t, "DB_PASSWORD="+secretValue+"\n", both...)}, []string{
			".refline/secrets/staging.age: it is not bound to a repository and environment: ",
			"(# refline: app staging): add that line with refline secrets reencrypt staging (or --all) in a clone, commit and push",
		}},
		{"unbound, recipients marker first", map[string][]byte{".refline/secrets/staging.age": encryptTo(t, "# refline-recipients: sha256:00\nA="+secretValue+"\n", both...)}, []string{
			".refline/secrets/staging.age: it is not bound", "refline secrets reencrypt staging",
		}},
		{"malformed binding", map[string][]byte{".refline/secrets/staging.age": encryptTo(t, "# refline: "+secretValue+"\nA=1\n", both...)}, []string{
			".refline/secrets/staging.age: it is not bound to a repository and environment: its first line starts with",
			"refline secrets reencrypt staging",
		}},
		{"copied from another repository", map[string][]byte{".refline/secrets/staging.age": encryptTo(t, "# refline: theirs production\nA="+secretValue+"\n", both...)}, []string{
			".refline/secrets/staging.age: this file belongs to theirs/production, not app/staging: ",
			"remove it and write app/staging's own secrets with refline secrets set staging KEY=VALUE",
		}},
		{"copied from another environment", map[string][]byte{".refline/secrets/staging.age": validProduction}, []string{
			".refline/secrets/staging.age: this file belongs to app/production, not app/staging",
		}},
		{"renamed", map[string][]byte{".refline/secrets/production.age": valid}, []string{
			".refline/secrets/production.age: this file belongs to app/staging, not app/production",
		}},
		{"other files beside secrets", map[string][]byte{".refline/secrets/README.md": []byte("A=" + secretValue)}, nil},
		{"not for the server", map[string][]byte{".refline/secrets/production.age": encryptTo(t, bound("production", "A="+secretValue+"\n"), alice.Recipient())}, []string{
			".refline/secrets/production.age: the server cannot decrypt it: add " + server.Recipient().String() +
				" (from ssh -p 2222 git@host keys) to the file's recipients and re-encrypt: refline secrets reencrypt --refresh production",
		}},
		{"damaged armor", map[string][]byte{".refline/secrets/staging.age": damagedArmor}, []string{".refline/secrets/staging.age: its ASCII armor is damaged"}},
		{"damaged header", map[string][]byte{".refline/secrets/staging.age": damagedHeader}, []string{".refline/secrets/staging.age: it is not a valid age file"}},
		{"binary", map[string][]byte{".refline/secrets/staging.age": binary.Bytes()}, []string{".refline/secrets/staging.age: is a binary age file"}},
		{"plaintext", map[string][]byte{".refline/secrets/staging.age": []byte("DB_PASSWORD=" + secretValue + "\n")}, []string{".refline/secrets/staging.age: is not an age-encrypted file"}},
		{"empty", map[string][]byte{".refline/secrets/staging.age": {}}, []string{".refline/secrets/staging.age: is not an age-encrypted file"}},
		{"bad dotenv", map[string][]byte{".refline/secrets/staging.age": encryptTo(t, bound("staging", "A=1\nB='"+secretValue+"\n"), both...)}, []string{
			".refline/secrets/staging.age: its plaintext is not valid dotenv: line 3: the single-quoted value of B has no closing '",
		}},
		{"bad dotenv key", map[string][]byte{".refline/secrets/staging.age": encryptTo(t, bound("staging", secretValue+" = x\n"), both...)}, []string{"not valid dotenv: line 2"}},
		{"undefined environment", map[string][]byte{".refline/secrets/prod.age": encryptTo(t, bound("prod", "A="+secretValue+"\n"), both...)}, []string{
			`.refline/secrets/prod.age: no pipeline defines the environment "prod"`,
		}},
		{"invalid name", map[string][]byte{".refline/secrets/Staging.age": valid}, []string{`.refline/secrets/Staging.age: "Staging" is not an environment name`}},
		{"symlink", map[string][]byte{".refline/secrets/staging.age": []byte("->/etc/passwd")}, []string{".refline/secrets/staging.age: must be a regular file, not a symbolic link"}},
		{"too large", map[string][]byte{".refline/secrets/staging.age": bytes.Repeat([]byte("x"), secrets.MaxFileSize+1)}, []string{"too large for a secrets file"}},
		{"every problem at once", map[string][]byte{
			".refline/secrets/staging.age":    damagedArmor,
			".refline/secrets/production.age": encryptTo(t, bound("production", "A="+secretValue+"\n"), alice.Recipient()),
		}, []string{"staging.age: its ASCII armor", "production.age: the server cannot decrypt", "nothing of this push was stored"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newSecretsRepo(t)
			base := r.commit(map[string][]byte{".refline/pipelines/web.yml": []byte(testPipeline)})
			head := r.commit(tt.files)
			for _, old := range []string{base, ZeroID} { // an update, and a new branch
				out, err := r.check(checker(server), old, head)
				if len(tt.want) == 0 {
					if err != nil {
						t.Fatalf("from %s: refused: %v", old[:7], err)
					}
					continue
				}
				if err == nil {
					t.Fatalf("from %s: accepted", old[:7])
				}
				for _, w := range tt.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("from %s: error lacks %q:\n%v", old[:7], w, err)
					}
				}
				if strings.Contains(err.Error()+out, secretValue) {
					t.Errorf("a secret value reached the pusher:\n%v\n%s", err, out)
				}
			}
		})
	}
}

func TestSecretsCheckerChecksOnlyWhatChanged(t *testing.T) {
	server, alice := newIdentity(t), newIdentity(t)
	bad := encryptTo(t, bound("staging", "A=1\n"), alice.Recipient())
	good := encryptTo(t, bound("production", "A=1\n"), server.Recipient())
	r := newSecretsRepo(t)
	c := checker(server)

	withBad := r.commit(map[string][]byte{".refline/pipelines/web.yml": []byte(testPipeline), ".refline/secrets/staging.age": bad})
	if _, err := r.check(c, ZeroID, withBad); err == nil {
		t.Fatal("new branch with an undecryptable file accepted")
	}
	// The bad file is already on the branch (say, from before the server
	// key was retired): unrelated pushes still go through.
	unrelated := r.commit(map[string][]byte{"README": []byte("hi")})
	if _, err := r.check(c, withBad, unrelated); err != nil {
		t.Fatalf("unrelated change refused: %v", err)
	}
	other := r.commit(map[string][]byte{".refline/secrets/production.age": good})
	if _, err := r.check(c, unrelated, other); err != nil {
		t.Fatalf("a good file refused because of an unchanged bad one: %v", err)
	}
	deleted := r.commit(map[string][]byte{".refline/secrets/staging.age": nil})
	if _, err := r.check(c, other, deleted); err != nil {
		t.Fatalf("deleting a file refused: %v", err)
	}
	// Removing the environment leaves its (unchanged) secrets alone.
	noEnvs := r.commit(map[string][]byte{".refline/pipelines/web.yml": []byte(strings.Split(testPipeline, "environments:")[0])})
	if _, err := r.check(c, deleted, noEnvs); err != nil {
		t.Fatalf("pipeline change refused: %v", err)
	}
	// Deletes and tags are not checked.
	var out bytes.Buffer
	err := c.Check(context.Background(), &Event{Hook: "pre-receive", GitDir: filepath.Join(r.dir, ".git"), Updates: []Update{
		{Old: withBad, New: ZeroID, Ref: "refs/heads/old"},
		{Old: ZeroID, New: withBad, Ref: "refs/tags/v1"},
	}}, &out)
	if err != nil {
		t.Fatalf("delete or tag refused: %v", err)
	}
	if err := c.Check(context.Background(), &Event{Hook: "post-receive", GitDir: filepath.Join(r.dir, ".git"), Updates: []Update{{Old: ZeroID, New: withBad, Ref: "refs/heads/x"}}}, &out); err != nil {
		t.Fatalf("post-receive checked: %v", err)
	}
}

func TestSecretsCheckerInvalidPipelineSkipsEnvironmentCheck(t *testing.T) {
	server := newIdentity(t)
	r := newSecretsRepo(t)
	head := r.commit(map[string][]byte{
		".refline/pipelines/web.yml":   []byte("stagez: []\n" + testPipeline),
		".refline/secrets/staging.age": encryptTo(t, bound("staging", "A=1\n"), server.Recipient()),
	})
	// PipelineChecker reports the file; the secrets are fine.
	if _, err := r.check(checker(server), ZeroID, head); err != nil {
		t.Fatalf("refused: %v", err)
	}
	// No pipeline at all: no environment is defined.
	r2 := newSecretsRepo(t)
	head = r2.commit(map[string][]byte{".refline/secrets/staging.age": encryptTo(t, bound("staging", "A=1\n"), server.Recipient())})
	if _, err := r2.check(checker(server), ZeroID, head); err == nil || !strings.Contains(err.Error(), `no pipeline defines the environment "staging"`) {
		t.Fatalf("got %v", err)
	}
}

func TestSecretsCheckerDuringRotation(t *testing.T) {
	old, cur := newIdentity(t), newIdentity(t)
	r := newSecretsRepo(t)
	head := r.commit(map[string][]byte{
		".refline/pipelines/web.yml":      []byte(testPipeline),
		".refline/secrets/staging.age":    encryptTo(t, bound("staging", "A=1\n"), old.Recipient()),
		".refline/secrets/production.age": encryptTo(t, bound("production", "A=1\n"), cur.Recipient()),
	})
	if _, err := r.check(checker(old, cur), ZeroID, head); err != nil {
		t.Fatalf("files encrypted to either active key refused: %v", err)
	}
	// After the old key is retired, the message names the newest key.
	_, err := r.check(checker(cur), ZeroID, head)
	if err == nil || !strings.Contains(err.Error(), "staging.age: the server cannot decrypt it: add "+cur.Recipient().String()) {
		t.Fatalf("got %v", err)
	}
}

func TestSecretsCheckerWarnsOfStaleServerRecipients(t *testing.T) {
	old, cur := newIdentity(t), newIdentity(t)
	r := newSecretsRepo(t)
	head := r.commit(map[string][]byte{
		".refline/pipelines/web.yml":      []byte(testPipeline),
		".refline/server-recipients":      []byte("# cache\n" + old.Recipient().String() + "\n" + cur.Recipient().String() + "\n"),
		".refline/secrets/production.age": encryptTo(t, bound("production", "A=1\n"), old.Recipient(), cur.Recipient()),
	})
	out, err := r.check(checker(cur), ZeroID, head)
	if err != nil {
		t.Fatalf("refused: %v", err)
	}
	if !strings.Contains(out, "refline: warning: .refline/server-recipients lists "+old.Recipient().String()+", which is not a key of this server") ||
		strings.Contains(out, cur.Recipient().String()) {
		t.Fatalf("output: %q", out)
	}
}
