package keyring

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLoadCreatesOnceWithMode0600(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	k1, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(k1.Created) != 3 {
		t.Fatalf("created %v, want 3 keys", k1.Created)
	}
	for _, name := range []string{HostKeyFile, SigningKeyFile, AgeKeyFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
	k2, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(k2.Created) != 0 {
		t.Fatalf("second load created %v", k2.Created)
	}
	if string(k1.Host.PublicKey().Marshal()) != string(k2.Host.PublicKey().Marshal()) ||
		string(k1.Signing.PublicKey().Marshal()) != string(k2.Signing.PublicKey().Marshal()) ||
		k1.AgeRecipients()[0] != k2.AgeRecipients()[0] {
		t.Fatal("keys changed across loads")
	}
	if string(k1.Host.PublicKey().Marshal()) == string(k1.Signing.PublicKey().Marshal()) {
		t.Fatal("host and signing keys are the same key")
	}
}

func TestLoadRejectsCorruptAgeFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, AgeKeyFile), []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil {
		t.Fatal("corrupt age key file accepted")
	}
}
