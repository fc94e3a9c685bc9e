package secrets

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"filippo.io/age"
	"filippo.io/age/armor"
	"golang.org/x/crypto/ssh"
)

// testKey is a key pair in the forms users keep them: the identity file's
// bytes and the recipient line.
type testKey struct {
	name      string
	private   []byte // age identity file or OpenSSH private key
	recipient string // age1… or authorized_keys line
}

var (
	keysOnce sync.Once
	keys     map[string]testKey
)

// testKeys returns one X25519, one ssh-ed25519 and one ssh-rsa key,
// generated once per test binary (RSA generation is slow).
func testKeys(t testing.TB) map[string]testKey {
	t.Helper()
	keysOnce.Do(func() {
		keys = make(map[string]testKey)

		x, err := age.GenerateX25519Identity()
		if err != nil {
			panic(err)
		}
		keys["x25519"] = testKey{
			name:      "x25519",
			private:   []byte("# created: by a test\n# public key: " + x.Recipient().String() + "\n" + x.String() + "\n"),
			recipient: x.Recipient().String(),
		}

		_, edPriv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		keys["ssh-ed25519"] = sshTestKey("ssh-ed25519", edPriv, edPriv.Public())

		rsaPriv, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		keys["ssh-rsa"] = sshTestKey("ssh-rsa", rsaPriv, rsaPriv.Public())
	})
	return keys
}

func sshTestKey(name string, priv, pub any) testKey {
	block, err := ssh.MarshalPrivateKey(priv, "test@example")
	if err != nil {
		panic(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		panic(err)
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))) + " test@example"
	return testKey{name: name, private: pem.EncodeToMemory(block), recipient: line}
}

func (k testKey) identities(t *testing.T) []age.Identity {
	t.Helper()
	ids, err := ParseIdentities(k.private)
	if err != nil {
		t.Fatalf("%s: ParseIdentities: %v", k.name, err)
	}
	return ids
}

func (k testKey) recipients(t *testing.T) []age.Recipient {
	t.Helper()
	recs, err := ParseRecipients("recipients", []byte(k.recipient+"\n"))
	if err != nil {
		t.Fatalf("%s: ParseRecipients: %v", k.name, err)
	}
	return recs
}

func TestEncryptDecryptRoundTrip(t *testing.T) {
	keys := testKeys(t)
	plaintexts := map[string][]byte{
		"empty":       {},
		"dotenv":      []byte("DB_PASSWORD='hunter2 hunter2'\nAPI_TOKEN=abc123\n"),
		"binary":      {0, 1, 2, 255, '\n', '\r'},
		"multi-chunk": bytes.Repeat([]byte("0123456789abcdef"), 64<<10/16*2+3), // > 2 age chunks
	}
	for _, name := range []string{"x25519", "ssh-ed25519", "ssh-rsa"} {
		k := keys[name]
		for pname, pt := range plaintexts {
			t.Run(name+"/"+pname, func(t *testing.T) {
				armored, err := Encrypt(pt, k.recipients(t)...)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.HasPrefix(armored, []byte(armor.Header+"\n")) || !bytes.HasSuffix(armored, []byte(armor.Footer+"\n")) {
					t.Fatalf("output is not armored:\n%.200s", armored)
				}
				got, err := Decrypt(armored, k.identities(t)...)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, pt) {
					t.Fatalf("round trip changed the plaintext: got %d bytes, want %d", len(got), len(pt))
				}
			})
		}
	}
}

// Every recipient of a file can decrypt it, and a holder of several
// identities (the server during a key rotation) finds the one that matches.
func TestEncryptManyRecipients(t *testing.T) {
	keys := testKeys(t)
	var recs []age.Recipient
	for _, k := range keys {
		recs = append(recs, k.recipients(t)...)
	}
	armored, err := Encrypt([]byte("K=v\n"), recs...)
	if err != nil {
		t.Fatal(err)
	}
	for name, k := range keys {
		if got, err := Decrypt(armored, k.identities(t)...); err != nil || string(got) != "K=v\n" {
			t.Errorf("%s: Decrypt = %q, %v", name, got, err)
		}
	}

	other, _ := age.GenerateX25519Identity()
	ids := append([]age.Identity{other}, keys["ssh-rsa"].identities(t)...)
	if _, err := Decrypt(armored, ids...); err != nil {
		t.Errorf("Decrypt with a non-matching and a matching identity: %v", err)
	}
}

func TestEncryptNoRecipients(t *testing.T) {
	if _, err := Encrypt([]byte("x")); err == nil {
		t.Fatal("Encrypt with no recipients succeeded")
	}
}

func TestDecryptBinaryAndWhitespace(t *testing.T) {
	k := testKeys(t)["x25519"]
	var bin bytes.Buffer
	w, err := age.Encrypt(&bin, k.recipients(t)...)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("binary"))
	w.Close()
	if got, err := Decrypt(bin.Bytes(), k.identities(t)...); err != nil || string(got) != "binary" {
		t.Errorf("binary age: Decrypt = %q, %v", got, err)
	}

	armored, err := Encrypt([]byte("spaced"), k.recipients(t)...)
	if err != nil {
		t.Fatal(err)
	}
	crlf := bytes.ReplaceAll(armored, []byte("\n"), []byte("\r\n"))
	for name, data := range map[string][]byte{
		"leading blank lines": append([]byte("\n\n  \n"), armored...),
		"trailing blank line": append(append([]byte{}, armored...), '\n'),
		"CRLF":                crlf,
	} {
		if got, err := Decrypt(data, k.identities(t)...); err != nil || string(got) != "spaced" {
			t.Errorf("%s: Decrypt = %q, %v", name, got, err)
		}
	}
}

func TestDecryptErrors(t *testing.T) {
	keys := testKeys(t)
	k := keys["x25519"]
	armored, err := Encrypt([]byte("SECRET=1\n"), k.recipients(t)...)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(armored), "\n")
	flipped := []byte(strings.Join(lines, "\n"))
	// Change one base64 character of the body (not the header line).
	i := len(armor.Header) + 1 + 10
	flipped[i] ^= 'A' ^ 'B'
	if flipped[i] == armored[i] {
		t.Fatal("test did not change the file")
	}
	truncated := strings.Join(append(append([]string{}, lines[:len(lines)-3]...), armor.Footer, ""), "\n")

	var bin bytes.Buffer
	w, _ := age.Encrypt(&bin, k.recipients(t)...)
	w.Write(bytes.Repeat([]byte("x"), 100))
	w.Close()

	ed := keys["ssh-ed25519"]
	tests := []struct {
		name string
		data []byte
		ids  []age.Identity
		want error
	}{
		{"plaintext dotenv", []byte("SECRET=1\n"), k.identities(t), ErrNotArmored},
		{"empty", nil, k.identities(t), ErrNotArmored},
		{"other PEM", []byte("-----BEGIN OPENSSH PRIVATE KEY-----\n"), k.identities(t), ErrNotArmored},
		{"armor header only", []byte(armor.Header + "\n"), k.identities(t), ErrCorrupt},
		{"bad base64", []byte(armor.Header + "\n!!!!\n" + armor.Footer + "\n"), k.identities(t), ErrCorrupt},
		{"flipped byte", flipped, k.identities(t), ErrCorrupt},
		{"truncated", []byte(truncated), k.identities(t), ErrCorrupt},
		{"binary truncated", bin.Bytes()[:bin.Len()-10], k.identities(t), ErrCorrupt},
		{"binary header only", []byte("age-encryption.org/v1\n"), k.identities(t), ErrCorrupt},
		{"trailing garbage", append(append([]byte{}, armored...), "junk\n"...), k.identities(t), ErrCorrupt},
		{"wrong x25519 identity", armored, []age.Identity{mustX25519(t)}, ErrNoIdentity},
		{"wrong ssh identity", armored, ed.identities(t), ErrNoIdentity},
		{"no identities", armored, nil, ErrNoIdentity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decrypt(tt.data, tt.ids...)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decrypt = %q, %v; want error wrapping %v", got, err, tt.want)
			}
			for _, other := range []error{ErrNotArmored, ErrCorrupt, ErrNoIdentity} {
				if other != tt.want && errors.Is(err, other) {
					t.Errorf("error %v also wraps %v", err, other)
				}
			}
		})
	}
}

func TestDecryptNoIdentityDetails(t *testing.T) {
	keys := testKeys(t)
	armored, err := Encrypt([]byte("x"), append(keys["x25519"].recipients(t), keys["ssh-ed25519"].recipients(t)...)...)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Decrypt(armored, mustX25519(t))
	var nomatch *age.NoIdentityMatchError
	if !errors.As(err, &nomatch) {
		t.Fatalf("error %v does not wrap *age.NoIdentityMatchError", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "2 recipient(s)") || !strings.Contains(msg, "X25519, ssh-ed25519") {
		t.Errorf("message %q does not say what the file is encrypted to", msg)
	}
}

func mustX25519(t *testing.T) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// ageCLI returns the path of the age command, or skips the test.
func ageCLI(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("age")
	if err != nil {
		t.Skip("age CLI not on PATH (apt-get install age)")
	}
	return path
}

func TestInteropAgeCLIDecryptsOurs(t *testing.T) {
	ageBin := ageCLI(t)
	dir := t.TempDir()
	for name, k := range testKeys(t) {
		t.Run(name, func(t *testing.T) {
			keyFile := filepath.Join(dir, name)
			if err := os.WriteFile(keyFile, k.private, 0o600); err != nil {
				t.Fatal(err)
			}
			armored, err := Encrypt([]byte("FROM=refline\n"), k.recipients(t)...)
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(ageBin, "-d", "-i", keyFile)
			cmd.Stdin = bytes.NewReader(armored)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("age -d: %v\n%s", err, stderrOf(err))
			}
			if string(out) != "FROM=refline\n" {
				t.Errorf("age -d printed %q", out)
			}
		})
	}
}

func TestInteropWeDecryptAgeCLI(t *testing.T) {
	ageBin := ageCLI(t)
	dir := t.TempDir()
	for name, k := range testKeys(t) {
		for _, armorFlag := range []bool{true, false} {
			t.Run(name+map[bool]string{true: "/armored", false: "/binary"}[armorFlag], func(t *testing.T) {
				recFile := filepath.Join(dir, name+".recipients")
				if err := os.WriteFile(recFile, []byte("# a comment\n"+k.recipient+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				args := []string{"-R", recFile}
				if armorFlag {
					args = append(args, "-a")
				}
				cmd := exec.Command(ageBin, args...)
				cmd.Stdin = strings.NewReader("FROM=age\n")
				out, err := cmd.Output()
				if err != nil {
					t.Fatalf("age %v: %v\n%s", args, err, stderrOf(err))
				}
				got, err := Decrypt(out, k.identities(t)...)
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != "FROM=age\n" {
					t.Errorf("Decrypt = %q", got)
				}
			})
		}
	}
}

func stderrOf(err error) []byte {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.Stderr
	}
	return nil
}
