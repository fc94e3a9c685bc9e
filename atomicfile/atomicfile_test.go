package atomicfile

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
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

// A reader that opened the file before a Write keeps reading the old
// content whole: Write replaces the directory entry, it never rewrites the
// file in place (as os.WriteFile would, truncating it first).
func TestWriteReplacesRatherThanRewrites(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if _, err := Write(p, []byte("old content"), 0o644); err != nil {
		t.Fatal(err)
	}
	held := filepath.Join(dir, "held")
	if err := os.Link(p, held); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(p, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(held); string(got) != "old content" {
		t.Fatalf("the file a reader held was rewritten in place: %q", got)
	}
	if got, _ := os.ReadFile(p); string(got) != "new" {
		t.Fatalf("content %q, want new", got)
	}
}

// A write that fails half-way (here: the file size limit, as a full disk
// would) leaves the old content of the same path and no temporary file.
func TestWriteFailureLeavesOldContentAndNoTemp(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	old := strings.Repeat("old ", 1024)
	if _, err := Write(p, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	// Go ignores SIGXFSZ, so writes past the limit fail with EFBIG.
	small := lim
	small.Cur = 1024
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &small); err != nil {
		t.Skipf("cannot lower the file size limit: %v", err)
	}
	_, err := Write(p, []byte(strings.Repeat("new ", 4096)), 0o644)
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	if err == nil {
		t.Fatal("Write past the file size limit succeeded")
	}
	if got, _ := os.ReadFile(p); string(got) != old {
		t.Fatalf("old content changed: %d bytes, %.20q…", len(got), got)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("left %d files, want just f", len(ents))
	}
}
