package secretscli

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"sync"
	"testing"

	"filippo.io/age"
	"github.com/refline/refline/secrets"
	"golang.org/x/crypto/ssh"
)

// testKey is a key as users keep it: the file --identity or ~/.ssh holds,
// and the line a recipients file lists.
type testKey struct {
	private   []byte
	recipient string
}

// testKeys returns one X25519, one ssh-ed25519 and one ssh-rsa key,
// generated once per test binary (RSA generation is slow).
func testKeys(t testing.TB) map[string]testKey {
	t.Helper()
	return generatedKeys()
}

var generatedKeys = sync.OnceValue(func() map[string]testKey {
	x := must(age.GenerateX25519Identity())
	_, ed := must3(ed25519.GenerateKey(rand.Reader))
	return map[string]testKey{
		"x25519":      {private: []byte(x.String() + "\n"), recipient: x.Recipient().String()},
		"ssh-ed25519": sshKey(ed),
		"ssh-rsa":     sshKey(must(rsa.GenerateKey(rand.Reader, 2048))),
	}
})

// sshKey is priv as an unencrypted OpenSSH private key file and an
// authorized_keys line.
func sshKey(priv crypto.Signer) testKey {
	block := must(ssh.MarshalPrivateKey(priv, "test@example"))
	pub := must(ssh.NewPublicKey(priv.Public()))
	line := string(bytes.TrimSpace(ssh.MarshalAuthorizedKey(pub))) + " test@example"
	return testKey{private: pem.EncodeToMemory(block), recipient: line}
}

// mustX25519 is a fresh server identity.
func mustX25519(testing.TB) *age.X25519Identity {
	return must(age.GenerateX25519Identity())
}

// must is for key generation, which fails only when the system's random
// source does.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func must3[A, B any](a A, b B, err error) (A, B) {
	if err != nil {
		panic(err)
	}
	return a, b
}

func mustIdentities(t *testing.T, private []byte) []age.Identity {
	t.Helper()
	ids, err := secrets.ParseIdentities(private)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}
