package pipelines

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// chownTree gives a workspace to the job's uid without following the
// symlinks a pipeline committed (or a job left) out of it.
func TestChownTreeKeepsToTheTree(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root")
	}
	dir := t.TempDir()
	outside := filepath.Join(dir, "outside")
	ws := filepath.Join(dir, "ws")
	for _, d := range []string{outside, filepath.Join(ws, "sub")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "f"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ws, "sub", "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{filepath.Join(ws, "link"), filepath.Join(ws, "sub", "dirlink")} {
		if err := os.Symlink(outside, l); err != nil {
			t.Fatal(err)
		}
	}
	if err := chownTree(ws, jobUID, jobUID); err != nil {
		t.Fatal(err)
	}
	owner := func(p string) uint32 {
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		return st.Uid
	}
	for _, p := range []string{ws, filepath.Join(ws, "sub"), filepath.Join(ws, "sub", "f"), filepath.Join(ws, "link"), filepath.Join(ws, "sub", "dirlink")} {
		if got := owner(p); got != jobUID {
			t.Errorf("%s is owned by %d, want %d", p, got, jobUID)
		}
	}
	for _, p := range []string{outside, filepath.Join(outside, "f")} {
		if got := owner(p); got != 0 {
			t.Errorf("%s, outside the tree, is owned by %d now", p, got)
		}
	}
}
