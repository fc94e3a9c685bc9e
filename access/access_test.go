package access

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"math/big"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// newKey returns a fresh ed25519 public key.
func newKey(t testing.TB) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in      string
		want    Level
		wantErr bool
	}{
		{"none", None, false},
		{"read", Read, false},
		{"write", Write, false},
		{"deploy", Deploy, false},
		{"admin", Admin, false},
		{"Deploy", Deploy, false},
		{" write ", Write, false},
		{"", None, true},
		{"owner", None, true},
		{"rw", None, true},
		{"3", None, true},
	}
	for _, tt := range tests {
		got, err := ParseLevel(tt.in)
		if tt.wantErr {
			if err == nil {
				t.Errorf("ParseLevel(%q) = %v, want error", tt.in, got)
				continue
			}
			if !strings.Contains(err.Error(), "none, read, write, deploy, admin") {
				t.Errorf("ParseLevel(%q) error %q does not list the valid levels", tt.in, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseGrant(t *testing.T) {
	tests := []struct {
		in      string
		want    string // String of the result; "" = error
		wantErr string
	}{
		{"none", "none", ""},
		{"read", "read", ""},
		{"Write", "write", ""},
		{"deploy", "deploy", ""},
		{"admin", "admin", ""},
		{"deploy:staging", "deploy:staging", ""},
		{"deploy:staging,qa", "deploy:qa,staging", ""},
		{"deploy: staging , qa,staging", "deploy:qa,staging", ""},
		{"DEPLOY:Staging", "deploy:staging", ""},
		{"deploy:", "", "invalid environment"},
		{"deploy:staging,", "", "invalid environment"},
		{"deploy:prod/eu", "", "invalid environment"},
		{"deploy:-x", "", "invalid environment"},
		{"write:staging", "", "only deploy is given per environment"},
		{"admin:production", "", "only deploy is given per environment"},
		{"owner", "", "deploy:ENV,ENV"},
		{"", "", "unknown access level"},
	}
	for _, tt := range tests {
		g, err := ParseGrant(tt.in)
		switch {
		case tt.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseGrant(%q) = %v, %v; want error containing %q", tt.in, g, err, tt.wantErr)
			}
		case err != nil || g.String() != tt.want:
			t.Errorf("ParseGrant(%q) = %v, %v; want %s", tt.in, g, err, tt.want)
		}
	}
}

func TestGrantDecisions(t *testing.T) {
	tests := []struct {
		grant  string
		env    string
		deploy bool
		base   Level
	}{
		{"none", "staging", false, None},
		{"read", "staging", false, Read},
		{"write", "staging", false, Write},
		{"deploy", "staging", true, Deploy},
		{"deploy", "production", true, Deploy},
		{"deploy:staging", "staging", true, Write},
		{"deploy:staging", "production", false, Write},
		{"deploy:staging,qa", "qa", true, Write},
		{"deploy:staging,qa", "stagingx", false, Write},
		{"admin", "production", true, Admin},
	}
	for _, tt := range tests {
		g, err := ParseGrant(tt.grant)
		if err != nil {
			t.Fatal(err)
		}
		if got := g.CanDeploy(tt.env); got != tt.deploy {
			t.Errorf("%s: CanDeploy(%q) = %v, want %v", tt.grant, tt.env, got, tt.deploy)
		}
		if got := g.Base(); got != tt.base {
			t.Errorf("%s: Base() = %v, want %v", tt.grant, got, tt.base)
		}
		var back Grant
		text, err := g.MarshalText()
		if err != nil || back.UnmarshalText(text) != nil || back.String() != g.String() {
			t.Errorf("%s: text round trip gave %q, %v", tt.grant, text, back)
		}
	}
}

func TestLevelStringRoundTrip(t *testing.T) {
	for l := None; l <= Admin; l++ {
		got, err := ParseLevel(l.String())
		if err != nil || got != l {
			t.Errorf("ParseLevel(%v.String()) = %v, %v", int(l), got, err)
		}
		b, err := l.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Level
		if err := back.UnmarshalText(b); err != nil || back != l {
			t.Errorf("text round trip of %v = %v, %v", l, back, err)
		}
	}
	if got := Level(9).String(); got != "Level(9)" {
		t.Errorf("Level(9).String() = %q", got)
	}
	if _, err := Level(-1).MarshalText(); err == nil {
		t.Error("Level(-1).MarshalText() succeeded")
	}
}

func TestLevelCan(t *testing.T) {
	tests := []struct {
		have, need Level
		want       bool
	}{
		{None, None, true},
		{None, Read, false},
		{Read, Read, true},
		{Read, Write, false},
		{Write, Read, true},
		{Write, Deploy, false},
		{Deploy, Write, true},
		{Deploy, Admin, false},
		{Admin, Deploy, true},
		{Admin, Admin, true},
	}
	for _, tt := range tests {
		if got := tt.have.Can(tt.need); got != tt.want {
			t.Errorf("%v.Can(%v) = %v, want %v", tt.have, tt.need, got, tt.want)
		}
	}
}

func TestValidName(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"alice", true},
		{"a", true},
		{"0", true},
		{"bob.smith", true},
		{"ci_bot-2", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{"", false},
		{"Alice", false},
		{".hidden", false},
		{"-flag", false},
		{"_x", false},
		{"a b", false},
		{"a/b", false},
		{"émile", false},
		{"alice\n", false},
	}
	for _, tt := range tests {
		if got := ValidName(tt.name); got != tt.want {
			t.Errorf("ValidName(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
	err := checkName("Bad Name")
	if err == nil || !strings.Contains(err.Error(), "a-z, 0-9") {
		t.Errorf("checkName error %v does not explain the grammar", err)
	}
}

func TestParseAuthorizedKey(t *testing.T) {
	k := newKey(t)
	norm := NormalizeKey(k)
	if !strings.HasPrefix(norm, "ssh-ed25519 AAAA") || strings.ContainsAny(norm, "\n") || strings.Count(norm, " ") != 1 {
		t.Fatalf("NormalizeKey = %q, want \"ssh-ed25519 AAAA...\" with no comment", norm)
	}

	tests := []struct {
		name    string
		in      string
		wantErr string // substring; "" means success
	}{
		{"bare", norm, ""},
		{"comment", norm + " alice@laptop", ""},
		{"comment with spaces", norm + " Alice Smith's key", ""},
		{"surrounding space", "  " + norm + " x\r\n", ""},
		{"comment lines around", "# my key\n" + norm + "\n\n", ""},
		{"empty", "", "empty public key"},
		{"only comment", "# nothing", "empty public key"},
		{"garbage", "hello world", "invalid public key"},
		{"type only", "ssh-ed25519", "invalid public key"},
		{"bad base64", "ssh-ed25519 AAAA!!!!", "invalid public key"},
		{"type mismatch", "ssh-rsa " + strings.Fields(norm)[1], "invalid public key"},
		{"options", `command="ls" ` + norm, "options"},
		{"restrict", "restrict " + norm, "options"},
		{"two keys", norm + "\n" + NormalizeKey(newKey(t)), "more than one"},
		{"key then junk", norm + "\njunk", "more than one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAuthorizedKey(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseAuthorizedKey(%q) error = %v, want it to mention %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseAuthorizedKey(%q): %v", tt.in, err)
			}
			if NormalizeKey(got) != norm {
				t.Errorf("ParseAuthorizedKey(%q) = %q, want %q", tt.in, NormalizeKey(got), norm)
			}
		})
	}
}

func TestCheckKeyRefusesUnfitKeys(t *testing.T) {
	// A certificate: identity must come from the plain key.
	_, caPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(caPriv)
	if err != nil {
		t.Fatal(err)
	}
	cert := &ssh.Certificate{Key: newKey(t), CertType: ssh.UserCert, ValidPrincipals: []string{"alice"}, ValidBefore: ssh.CertTimeInfinity}
	if err := cert.SignCert(rand.Reader, signer); err != nil {
		t.Fatal(err)
	}
	// A weak RSA key, built by hand since crypto/rsa refuses to generate one.
	weakN := new(big.Int).Lsh(big.NewInt(1), 767)
	weakN.Add(weakN, big.NewInt(1))
	weak, err := ssh.NewPublicKey(&rsa.PublicKey{N: weakN, E: 65537})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		key     ssh.PublicKey
		wantErr string
	}{
		{"ed25519", newKey(t), ""},
		{"nil", nil, "missing"},
		{"certificate", cert, "certificates"},
		{"weak rsa", weak, "768 bits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkKey(tt.key)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("checkKey error = %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}

	// The same refusal applies to a pasted certificate line.
	if _, err := ParseAuthorizedKey(string(ssh.MarshalAuthorizedKey(cert))); err == nil || !strings.Contains(err.Error(), "certificates") {
		t.Errorf("ParseAuthorizedKey(cert) error = %v, want a refusal", err)
	}
}
