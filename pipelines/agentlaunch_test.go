package pipelines

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestValidAgentDir(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"agent-0123456789abcdef", true},
		{"agent-0123456789abcdeg", false},
		{"agent-0123456789abcde", false},
		{"../agent-0123456789abcdef", false},
		{"agent-0123456789abcdef/..", false},
		{"", false},
		{"..", false},
	} {
		if got := validAgentDir(tc.name); got != tc.ok {
			t.Errorf("validAgentDir(%q) = %v, want %v", tc.name, got, tc.ok)
		}
	}
}

// TestLocalLauncherLifecycle: a launched agent is a real process with its
// key file beside it; Sweep removes every one that keep does not claim,
// process and directory, and Remove refuses handles that name anything
// outside its directory.
func TestLocalLauncherLifecycle(t *testing.T) {
	dir := t.TempDir()
	// A stand-in for the refline binary: it ignores the agent's
	// arguments and waits to be stopped.
	bin := filepath.Join(dir, "fake-refline")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nexec sleep 1000043\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	l := LocalLauncher{Binary: bin, Dir: filepath.Join(dir, "agents")}
	ctx := context.Background()
	launch := func() (string, int) {
		h, err := l.Launch(ctx, AgentLaunch{Key: []byte("PRIVATE"), Args: []string{"agent", "--run", "x"}})
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Split(strings.TrimPrefix(h, localAgentPrefix), ":")
		if len(f) != 3 {
			t.Fatalf("handle %q", h)
		}
		b, err := os.ReadFile(filepath.Join(l.Dir, f[2], "key"))
		if err != nil || string(b) != "PRIVATE" {
			t.Fatalf("key file: %q %v", b, err)
		}
		pid, err := strconv.Atoi(f[0])
		if err != nil {
			t.Fatalf("handle %q: %v", h, err)
		}
		return h, pid
	}
	kept, keptPID := launch()
	gone, gonePID := launch()
	if err := l.Sweep(ctx, func(h string) bool { return h == kept }); err != nil {
		t.Fatal(err)
	}
	waitGone := func(pid int) {
		deadline := time.Now().Add(10 * time.Second)
		for syscall.Kill(pid, 0) == nil && !zombie(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("process %d still runs", pid)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitGone(gonePID)
	if syscall.Kill(keptPID, 0) != nil {
		t.Fatal("the kept agent was stopped")
	}
	ents, _ := os.ReadDir(l.Dir)
	if len(ents) != 1 {
		t.Fatalf("%d agent dirs left, want 1", len(ents))
	}
	if err := l.Remove(ctx, gone); err != nil {
		t.Fatalf("removing twice: %v", err)
	}
	if err := l.Remove(ctx, kept); err != nil {
		t.Fatal(err)
	}
	waitGone(keptPID)
	for _, bad := range []string{"local-agent:1:1:..", "local-agent:1:1:../../etc", "sandbox:1:1", "local-agent:1:1"} {
		if err := l.Remove(ctx, bad); err == nil {
			t.Errorf("Remove(%q) accepted", bad)
		}
	}
}
