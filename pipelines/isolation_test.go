package pipelines

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/refline/refline/pipelines/spec"
)

// TestDeployBox checks what a deploy's jobs run with: the pipeline's image
// and limits, and the host's network unless the environment says
// network: false, whatever the builds get.
func TestDeployBox(t *testing.T) {
	off := false
	s := &spec.Spec{Image: "debian-12", Limits: Limits{Pids: 512}}
	staging, vault := spec.Environment{Name: "staging"}, spec.Environment{Name: "vault", Network: &off}
	if b := deployBox(s, staging); !b.Network || !b.Deploy || b.Image != "debian-12" || b.Limits.Pids != 512 {
		t.Errorf("staging deploy box %+v: want the network, the image and the limits", b)
	}
	if b := deployBox(s, vault); b.Network {
		t.Errorf("vault deploy box %+v: network: false must hold", b)
	}
}

func TestEffectiveLimits(t *testing.T) {
	s := &Sandbox{cfg: SandboxConfig{Limits: Limits{Memory: 1 << 30, Pids: 100}}}
	for _, tc := range []struct{ want, got Limits }{
		{Limits{}, Limits{Memory: 1 << 30, Pids: 100}},                                              // defaults
		{Limits{Memory: 1 << 20, Pids: 10}, Limits{Memory: 1 << 20, Pids: 10}},                      // less than the cap
		{Limits{Memory: 4 << 30, Pids: 1000, Disk: 5}, Limits{Memory: 1 << 30, Pids: 100, Disk: 5}}, // capped; no disk cap
	} {
		if got := s.effective(tc.want); got != tc.got {
			t.Errorf("effective(%+v) = %+v, want %+v", tc.want, got, tc.got)
		}
	}
}

// TestSandboxJob runs real jobs in bubblewrap: the workspace at
// /workspace, nobody's uid, a private pid namespace, and a handle a
// restarted server can kill the namespace by.
func TestSandboxJob(t *testing.T) {
	data := t.TempDir()
	sb := NewSandbox(SandboxConfig{DataDir: data, Limits: Limits{Pids: 64}})
	if err := sb.Usable(); err != nil {
		t.Skipf("no usable sandbox here: %v", err)
	}
	ws, err := sb.Prepare(context.Background(), WorkspaceSpec{Dir: filepath.Join(data, "work", "1"), Env: []string{"PATH=/usr/bin:/bin"},
		Fill: func(ctx context.Context, dir string) error {
			return os.WriteFile(filepath.Join(dir, "in"), []byte("hello\n"), 0o644)
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	var out bytes.Buffer
	p, err := ws.Start(context.Background(), Job{Script: "cat in; pwd; id -u; ls /proc | grep -c '^[0-9]'; echo out > out", Output: &out})
	if err != nil {
		t.Fatal(err)
	}
	if code, err := p.Wait(); code != 0 || err != nil {
		t.Fatalf("exit %d, %v: %s", code, err, out.String())
	}
	// bwrap's init, sh, ls and grep: nothing of the host's.
	if got := strings.Fields(out.String()); len(got) != 4 || got[0] != "hello" || got[1] != SandboxDir || got[2] != sandboxUID || got[3] != "4" {
		t.Errorf("output %q", out.String())
	}
	if b, _ := os.ReadFile(filepath.Join(data, "work", "1", "out")); string(b) != "out\n" {
		t.Errorf("the job's file in the workspace: %q", b)
	}

	// The script holds only stdin, stdout and stderr: nothing the server
	// (or bwrap) had open.
	out.Reset()
	p, err = ws.Start(context.Background(), Job{Script: "ls /proc/$$/fd; true", Output: &out})
	if err != nil {
		t.Fatal(err)
	}
	if code, err := p.Wait(); code != 0 || err != nil {
		t.Fatalf("exit %d, %v: %s", code, err, out.String())
	}
	if got := strings.Join(strings.Fields(out.String()), " "); got != "0 1 2" {
		t.Errorf("the script's open descriptors: %s; want 0 1 2", got)
	}

	p, err = ws.Start(context.Background(), Job{Script: "sleep 1000 & wait", Output: &out})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { p.Wait(); close(done) }()
	if !KillLeftover(p.Handle()) {
		t.Fatalf("KillLeftover(%q) = false for a live sandbox", p.Handle())
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the sandbox outlived KillLeftover of its handle")
	}
	if KillLeftover(p.Handle()) {
		t.Errorf("KillLeftover(%q) = true for a sandbox that has ended", p.Handle())
	}
}

// TestSandboxFailsClosed: without a usable bwrap every run fails, saying
// what to install; nothing runs unsandboxed.
func TestSandboxFailsClosed(t *testing.T) {
	data := t.TempDir()
	for _, bw := range []string{filepath.Join(data, "no-such-bwrap"), "/bin/false"} {
		sb := NewSandbox(SandboxConfig{DataDir: data, Bwrap: bw})
		_, err := sb.Prepare(context.Background(), WorkspaceSpec{Dir: filepath.Join(data, "work")})
		if err == nil || !strings.Contains(err.Error(), "apt-get install bubblewrap") {
			t.Errorf("bwrap %s: Prepare error %v; want one naming the package", bw, err)
		}
		if _, statErr := os.Stat(filepath.Join(data, "work")); statErr == nil {
			t.Errorf("bwrap %s: the workspace was made anyway", bw)
		}
	}
}
