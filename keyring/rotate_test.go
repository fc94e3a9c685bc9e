package keyring

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestRotateAndRetireAge(t *testing.T) {
	dir := t.TempDir()
	k, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	first := k.AgeRecipients()[0]

	id, err := k.RotateAge()
	if err != nil {
		t.Fatal(err)
	}
	second := id.Recipient().String()
	if got := k.AgeRecipients(); !slices.Equal(got, []string{first, second}) {
		t.Fatalf("after rotation: %v", got)
	}
	path := filepath.Join(dir, AgeKeyFile)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("age key file: %v, %v", fi.Mode(), err)
	}

	// A restart loads both, oldest first; so does the offline loader.
	for name, load := range map[string]func(string) (*Keys, error){"Load": Load, "LoadAge": LoadAge} {
		k2, err := load(dir)
		if err != nil {
			t.Fatal(err)
		}
		if got := k2.AgeRecipients(); !slices.Equal(got, []string{first, second}) {
			t.Fatalf("%s after rotation: %v", name, got)
		}
		if len(k2.AgeIdentities()) != 2 {
			t.Fatalf("%s: %d identities", name, len(k2.AgeIdentities()))
		}
	}

	if err := k.RetireAge("age1unknown"); err == nil || !strings.Contains(err.Error(), "not an active age recipient") {
		t.Fatalf("retire unknown: %v", err)
	}
	if err := k.RetireAge(first); err != nil {
		t.Fatal(err)
	}
	if got := k.AgeRecipients(); !slices.Equal(got, []string{second}) {
		t.Fatalf("after retiring: %v", got)
	}
	k3, err := LoadAge(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := k3.AgeRecipients(); !slices.Equal(got, []string{second}) {
		t.Fatalf("reloaded after retiring: %v", got)
	}
	err = k3.RetireAge(second)
	if err == nil || !strings.Contains(err.Error(), "only age identity") {
		t.Fatalf("retiring the last identity: %v", err)
	}
	if got, _ := LoadAge(dir); len(got.Age) != 1 {
		t.Fatal("refused retirement changed the file")
	}

	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

// Rotations through two Keys values loaded before either rotated (two
// operators, or a stale server) both land: each reads the file afresh.
func TestRotateReadsTheFileAfresh(t *testing.T) {
	dir := t.TempDir()
	a, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadAge(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.RotateAge(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.RotateAge(); err != nil {
		t.Fatal(err)
	}
	k, err := LoadAge(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(k.Age) != 3 {
		t.Fatalf("%d identities, want 3", len(k.Age))
	}
}

func TestLoadAgeCreatesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	if _, err := LoadAge(dir); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("got %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatal("LoadAge created the directory")
	}
}
