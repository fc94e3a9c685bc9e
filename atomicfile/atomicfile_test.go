package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteReplacesWholeWithMode(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.json")
	for _, content := range []string{"first", "second, longer"} {
		replaced, err := Write(p, []byte(content), 0o600)
		if err != nil || !replaced {
			t.Fatalf("Write: %v, replaced=%v", err, replaced)
		}
		got, _ := os.ReadFile(p)
		if string(got) != content {
			t.Fatalf("content %q, want %q", got, content)
		}
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode().Perm())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("left %d files, want just f.json", len(ents))
	}
}

func TestWriteFailureLeavesOldContentAndNoTemp(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if _, err := Write(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A directory where the file should be makes the rename fail.
	bad := filepath.Join(dir, "sub")
	os.Mkdir(bad, 0o755)
	os.WriteFile(filepath.Join(bad, "x"), []byte("x"), 0o644)
	if replaced, err := Write(bad, []byte("new"), 0o644); err == nil || replaced {
		t.Fatalf("Write over a non-empty dir: %v, replaced=%v", err, replaced)
	}
	if got, _ := os.ReadFile(p); string(got) != "old" {
		t.Fatalf("old content changed: %q", got)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name() != "f" && e.Name() != "sub" {
			t.Fatalf("left %s behind", e.Name())
		}
	}
}
