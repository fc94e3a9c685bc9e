package pipelines

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
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

// initRanOn is the thread runLockedOffMain, called on the main thread (a
// package's initialization runs there, locked to it), ran its function on.
var initRanOn, initTID = runOffMainAtInit()

func runOffMainAtInit() (ranOn, mainTID int) {
	tids := make(chan int, 1)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	runLockedOffMain(func() { tids <- unix.Gettid() })
	return <-tids, unix.Gettid()
}

// A thread a job's uid or namespace was given ends with its goroutine:
// never the main thread, which the runtime would park for good instead.
func TestLockedOffMainThread(t *testing.T) {
	if initTID != os.Getpid() {
		t.Fatalf("init ran on thread %d, not the main thread %d", initTID, os.Getpid())
	}
	if initRanOn == os.Getpid() {
		t.Errorf("runLockedOffMain called on the main thread ran its function there")
	}
	tids := make(chan int, 1)
	goLockedOffMain(func() { tids <- unix.Gettid() })
	if tid := <-tids; tid == os.Getpid() {
		t.Errorf("goLockedOffMain ran its function on the main thread")
	}
}

// A root server's bwrap starts in a mount namespace of its own holding a
// bind of the workspace; once Start returns, no thread of the server is in
// it any more, so the namespace ends with bwrap, and no mount of a deleted
// workspace pins the data directory's file system.
func TestSandboxStageNamespaceLeft(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the staged namespace is for a root server")
	}
	data := t.TempDir()
	sb := NewSandbox(SandboxConfig{DataDir: data})
	if err := sb.Usable(); err != nil {
		t.Skipf("no usable sandbox here: %v", err)
	}
	host, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	ws, err := sb.Prepare(context.Background(), WorkspaceSpec{Dir: filepath.Join(data, "work", "1"), Env: []string{"PATH=/usr/bin:/bin"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	var out bytes.Buffer
	for i := 0; i < 3; i++ {
		p, err := ws.Start(context.Background(), Job{Script: "true", Output: &out})
		if err != nil {
			t.Fatal(err)
		}
		tasks, _ := os.ReadDir("/proc/self/task")
		for _, task := range tasks {
			if ns, err := os.Readlink(filepath.Join("/proc/self/task", task.Name(), "ns", "mnt")); err == nil && ns != host {
				t.Errorf("thread %s is in mount namespace %s, not the server's %s", task.Name(), ns, host)
			}
		}
		if code, err := p.Wait(); code != 0 || err != nil {
			t.Fatalf("exit %d, %v: %s", code, err, out.String())
		}
	}
}
