package secrets

import (
	"slices"
	"strings"
	"testing"
)

func TestServerRecipients(t *testing.T) {
	x := mustX25519(t).Recipient().String()
	y := mustX25519(t).Recipient().String()
	out := x + "\n" + y + "\nrefline@h namespaces=\"git\" ssh-ed25519 AAAA\n"
	got, err := ServerRecipients([]byte(out))
	if err != nil || !slices.Equal(got, []string{x, y}) {
		t.Errorf("got %v, %v", got, err)
	}
	if _, err := ServerRecipients([]byte("refline@h namespaces=\"git\" ssh-ed25519 AAAA\n")); err == nil {
		t.Error("no recipient accepted")
	}
	if _, err := ServerRecipients([]byte("age1notakey\n")); err == nil {
		t.Error("invalid recipient accepted")
	}
}

func TestValidEnvAndEnvOf(t *testing.T) {
	for name, want := range map[string]bool{"prod": true, "eu-west-1": true, "0": true, "": false, "-x": false, "Prod": false, "a_b": false, "a.b": false, strings.Repeat("a", 101): false} {
		if ValidEnv(name) != want {
			t.Errorf("ValidEnv(%q) = %v", name, !want)
		}
	}
	for path, want := range map[string]string{".refline/secrets/prod.age": "prod", ".refline/secrets/sub/x.age": "", ".refline/secrets/README": "", ".refline/secrets/.age": "", "x/.refline/secrets/a.age": ""} {
		if got, _ := EnvOf(path); got != want {
			t.Errorf("EnvOf(%q) = %q, want %q", path, got, want)
		}
	}
}
