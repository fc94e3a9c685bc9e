package secrets

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"golang.org/x/crypto/ssh"
)

func TestParseRecipients(t *testing.T) {
	keys := testKeys(t)
	x, ed, rs := keys["x25519"].recipient, keys["ssh-ed25519"].recipient, keys["ssh-rsa"].recipient
	edNoComment := strings.Join(strings.Fields(ed)[:2], " ")

	tests := []struct {
		name  string
		data  string
		types []string // %T of each recipient
	}{
		{"empty", "", nil},
		{"comments and blanks only", "# people who may read secrets\n\n   \n\t# indented comment\n", nil},
		{"x25519", x + "\n", []string{"*age.X25519Recipient"}},
		{"ssh-ed25519 with comment", ed + "\n", []string{"*agessh.Ed25519Recipient"}},
		{"ssh-ed25519 without comment", edNoComment, []string{"*agessh.Ed25519Recipient"}},
		{"ssh-rsa", rs, []string{"*agessh.RSARecipient"}},
		{"authorized_keys options", `no-pty,from="10.0.0.1" ` + ed, []string{"*agessh.Ed25519Recipient"}},
		{
			"all kinds, CRLF, indentation, no final newline",
			"# alice\r\n" + x + "\r\n\r\n  # bob\r\n  " + ed + "  \r\n# carol\r\n" + rs,
			[]string{"*age.X25519Recipient", "*agessh.Ed25519Recipient", "*agessh.RSARecipient"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := ParseRecipients(".refline/recipients", []byte(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			var types []string
			for _, r := range recs {
				types = append(types, fmt.Sprintf("%T", r))
			}
			if strings.Join(types, " ") != strings.Join(tt.types, " ") {
				t.Errorf("got %v, want %v", types, tt.types)
			}
		})
	}
}

func TestParseRecipientsErrors(t *testing.T) {
	keys := testKeys(t)
	x := keys["x25519"].recipient
	typo := x[:len(x)-1] + map[bool]string{true: "p", false: "q"}[x[len(x)-1] == 'q']
	xSecret := strings.TrimSpace(string(keys["x25519"].private[strings.LastIndex(string(keys["x25519"].private), "AGE-SECRET"):]))
	ed := keys["ssh-ed25519"].recipient
	ecdsaLine := ecdsaAuthorizedKey(t)
	smallRSA := smallRSAAuthorizedKey(t)
	pq, err := age.GenerateHybridIdentity()
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		data string
		want string // the whole message must start with it
		// contains lists further substrings of the message.
		contains []string
		// secret must not appear in the message.
		secret string
	}{
		{"garbage", "# ok\n" + x + "\nhello world\n", ".refline/recipients:3: not a recipient", []string{"age1", "ssh-ed25519", "ssh-rsa"}, "hello"},
		{"age secret key", "\n" + xSecret + "\n", ".refline/recipients:2: this is an age secret key", []string{"age-keygen -y"}, xSecret},
		{"private key", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n", ".refline/recipients:1: this is a private key", []string{".pub"}, "b3Blbn"},
		{"typo in age1", typo + "\n", ".refline/recipients:1: malformed recipient", []string{"age-keygen -y"}, ""},
		{"inline comment after age1", x + " # alice\n", ".refline/recipients:1: unexpected text after the recipient " + x, []string{"#"}, ""},
		{"plugin recipient", "age1yubikey1qwqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq\n", `.refline/recipients:1: recipient type "age1yubikey" needs an age plugin`, nil, ""},
		{"post-quantum", pq.Recipient().String(), ".refline/recipients:1: post-quantum age recipients", nil, ""},
		{"ecdsa", ed + "\n" + ecdsaLine, ".refline/recipients:2: ecdsa-sha2-nistp256 keys cannot be encrypted to", []string{"ssh-ed25519 and ssh-rsa"}, ""},
		{"small rsa", smallRSA, ".refline/recipients:1: invalid ssh-rsa key", []string{"2048"}, ""},
		{"truncated ssh key", ed[:40], ".refline/recipients:1: not a recipient", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := ParseRecipients(".refline/recipients", []byte(tt.data))
			if err == nil {
				t.Fatalf("ParseRecipients = %d recipients, want an error", len(recs))
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, tt.want) {
				t.Errorf("error %q\ndoes not start with %q", msg, tt.want)
			}
			for _, c := range tt.contains {
				if !strings.Contains(msg, c) {
					t.Errorf("error %q does not mention %q", msg, c)
				}
			}
			if tt.secret != "" && strings.Contains(msg, tt.secret) {
				t.Errorf("error %q quotes the line", msg)
			}
		})
	}
}

func ecdsaAuthorizedKey(t *testing.T) string {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ssh.NewPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
}

func smallRSAAuthorizedKey(t *testing.T) string {
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Skipf("cannot generate a 1024-bit RSA key here: %v", err)
	}
	pub, err := ssh.NewPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
}

func TestParseIdentities(t *testing.T) {
	keys := testKeys(t)
	x2, _ := age.GenerateX25519Identity()
	pq, _ := age.GenerateHybridIdentity()
	rsaPEM := rsaPKCS1PEM(t)

	tests := []struct {
		name  string
		data  []byte
		types []string
	}{
		{"age-keygen file", keys["x25519"].private, []string{"*age.X25519Identity"}},
		{"two keys, CRLF, blank lines", []byte("# old\r\n" + x2.String() + "\r\n\r\n# new\r\n" + strings.TrimSpace(string(keys["x25519"].private)) + "\r\n"),
			[]string{"*age.X25519Identity", "*age.X25519Identity"}},
		{"post-quantum", []byte(pq.String() + "\n"), []string{"*age.HybridIdentity"}},
		{"openssh ed25519", keys["ssh-ed25519"].private, []string{"*agessh.Ed25519Identity"}},
		{"openssh rsa", keys["ssh-rsa"].private, []string{"*agessh.RSAIdentity"}},
		{"pem rsa", rsaPEM, []string{"*agessh.RSAIdentity"}},
		{"ssh key with surrounding blank lines", append(append([]byte("\n\n"), keys["ssh-ed25519"].private...), "\n\n"...), []string{"*agessh.Ed25519Identity"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ids, err := ParseIdentities(tt.data)
			if err != nil {
				t.Fatal(err)
			}
			var types []string
			for _, id := range ids {
				types = append(types, fmt.Sprintf("%T", id))
			}
			if strings.Join(types, " ") != strings.Join(tt.types, " ") {
				t.Errorf("got %v, want %v", types, tt.types)
			}
		})
	}
}

func rsaPKCS1PEM(t *testing.T) []byte {
	// A PEM "RSA PRIVATE KEY" as older ssh-keygen wrote it; reuse the test RSA
	// key by parsing it back from its OpenSSH form.
	raw, err := ssh.ParseRawPrivateKey(testKeys(t)["ssh-rsa"].private)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(raw.(*rsa.PrivateKey))})
}

func TestParseIdentitiesErrors(t *testing.T) {
	keys := testKeys(t)
	xSecret := strings.TrimSpace(string(keys["x25519"].private[strings.LastIndex(string(keys["x25519"].private), "AGE-SECRET"):]))
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	encrypted, err := ssh.MarshalPrivateKeyWithPassphrase(edPriv, "c", []byte("passphrase"))
	if err != nil {
		t.Fatal(err)
	}
	ecdsaKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecdsaBlock, err := ssh.MarshalPrivateKey(ecdsaKey, "")
	if err != nil {
		t.Fatal(err)
	}
	corrupted := []byte(xSecret[:len(xSecret)-2] + "QQ")

	tests := []struct {
		name       string
		data       []byte
		want       string
		passphrase bool
		secret     string
	}{
		{"empty", nil, "no identity found", false, ""},
		{"comments only", []byte("# nothing\n\n"), "no identity found", false, ""},
		{"corrupted secret key", append([]byte("# c\n"), corrupted...), "line 2: malformed age secret key", false, string(corrupted)},
		{"recipient instead of identity", []byte(keys["x25519"].recipient), "line 1: this is an age recipient", false, ""},
		{"public ssh key", []byte(keys["ssh-ed25519"].recipient), "line 1: this is an SSH public key", false, ""},
		{"garbage", []byte(xSecret + "\nhunter2\n"), "line 2: not an age identity", false, "hunter2"},
		{"plugin", []byte("AGE-PLUGIN-YUBIKEY-1QQQQ\n"), "line 1: age plugin identities are not supported", false, ""},
		{"passphrase ssh key", pem.EncodeToMemory(encrypted), "the key is protected by a passphrase", true, ""},
		{"passphrase age file", []byte("-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n-----END AGE ENCRYPTED FILE-----\n"), "the key is protected by a passphrase", true, ""},
		{"ecdsa ssh key", pem.EncodeToMemory(ecdsaBlock), "unsupported SSH key type", false, ""},
		{"broken pem", []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"), "invalid SSH private key", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ids, err := ParseIdentities(tt.data)
			if err == nil {
				t.Fatalf("ParseIdentities = %d identities, want an error", len(ids))
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error %q\ndoes not start with %q", err, tt.want)
			}
			if got := errors.Is(err, ErrPassphraseProtected); got != tt.passphrase {
				t.Errorf("errors.Is(%v, ErrPassphraseProtected) = %v", err, got)
			}
			if tt.secret != "" && strings.Contains(err.Error(), tt.secret) {
				t.Errorf("error %q quotes the key material", err)
			}
		})
	}
}

func TestLoadIdentityFile(t *testing.T) {
	keys := testKeys(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(good, keys["ssh-ed25519"].private, 0o600); err != nil {
		t.Fatal(err)
	}
	ids, err := LoadIdentityFile(good)
	if err != nil {
		t.Fatal(err)
	}
	armored, err := Encrypt([]byte("ok"), keys["ssh-ed25519"].recipients(t)...)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Decrypt(armored, ids...); err != nil || string(got) != "ok" {
		t.Errorf("Decrypt with loaded identity = %q, %v", got, err)
	}

	bad := filepath.Join(dir, "key.txt")
	if err := os.WriteFile(bad, []byte("# key\n"+keys["x25519"].recipient+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadIdentityFile(bad); err == nil || !strings.HasPrefix(err.Error(), bad+":2: this is an age recipient") {
		t.Errorf("LoadIdentityFile(recipient file) error = %v, want it to start with %q", err, bad+":2: …")
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	if _, err := LoadIdentityFile(empty); err == nil || !strings.HasPrefix(err.Error(), empty+": no identity found") {
		t.Errorf("LoadIdentityFile(empty) error = %v", err)
	}
	if _, err := LoadIdentityFile(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadIdentityFile(missing) error = %v, want os.ErrNotExist", err)
	}
}

// The identities ParseIdentities returns for SSH keys are agessh's, so they
// decrypt what agessh's recipients encrypt (and the reverse is checked by
// the round-trip tests).
func TestSSHIdentityMatchesAgessh(t *testing.T) {
	k := testKeys(t)["ssh-ed25519"]
	r, err := agessh.ParseRecipient(k.recipient)
	if err != nil {
		t.Fatal(err)
	}
	armored, err := Encrypt([]byte("x"), r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decrypt(armored, k.identities(t)...); err != nil {
		t.Fatal(err)
	}
}
