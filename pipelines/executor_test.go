package pipelines

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// helperEnv makes the test binary act as a stand-in server instead of
// running tests (see TestMain).
const helperEnv = "REFLINE_PIPELINES_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "orphan" {
		orphanHelper()
		return
	}
	os.Exit(m.Run())
}

// orphanHelper is a server that starts a job and then waits to be killed:
// the job's process group outlives it, as a crashed server's does. It
// prints the job's handle and the pid of the job's background child.
func orphanHelper() {
	p, err := Local{}.Start(context.Background(), Job{
		Script: "sleep 1000 >/dev/null 2>&1 &\necho child $!\nwait",
		Env:    []string{"PATH=" + os.Getenv("PATH")},
		Output: os.Stdout,
	})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("handle", p.Handle())
	time.Sleep(time.Hour)
}

// syncBuffer is a bytes.Buffer that a job and the test may use at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// gone reports whether process pid has ended: it no longer exists, or it is
// a zombie that only its parent's wait keeps.
func gone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return true
	}
	for _, line := range strings.Split(string(b), "\n") {
		if st, ok := strings.CutPrefix(line, "State:"); ok {
			return strings.HasPrefix(strings.TrimSpace(st), "Z")
		}
	}
	return false
}

// pathEnv is a job environment with only PATH, so scripts find sleep & co.
func pathEnv() []string { return []string{"PATH=" + os.Getenv("PATH")} }

// wait waits for a job to end, failing the test (rather than hanging it)
// when it does not end in time.
func wait(t *testing.T, p Process, timeout time.Duration) (int, error) {
	t.Helper()
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() { code, err := p.Wait(); done <- result{code, err} }()
	select {
	case r := <-done:
		return r.code, r.err
	case <-time.After(timeout):
		t.Fatalf("job still running after %v", timeout)
		return 0, nil
	}
}

// runJob runs a script with the Local executor and returns its exit code
// and output.
func runJob(t *testing.T, job Job) (int, string) {
	t.Helper()
	var out syncBuffer
	job.Output = &out
	if job.Env == nil {
		job.Env = pathEnv()
	}
	p, err := Local{}.Start(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	code, err := wait(t, p, 20*time.Second)
	if err != nil {
		t.Fatalf("Wait: %v (output %q)", err, out.String())
	}
	return code, out.String()
}

// startJob starts a script with the Local executor; the job is cancelled
// when the test ends.
func startJob(t *testing.T, ctx context.Context, l Local, script string) (Process, *syncBuffer) {
	t.Helper()
	out := &syncBuffer{}
	p, err := l.Start(ctx, Job{Script: script, Env: pathEnv(), Output: out})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Cancel)
	return p, out
}

// waitLine waits for the job's output to hold a line "prefix VALUE" and
// returns VALUE as a number.
func waitLine(t *testing.T, out *syncBuffer, prefix string) int {
	t.Helper()
	var n int
	waitFor(t, 10*time.Second, fmt.Sprintf("%q in the job's output", prefix), func() bool {
		for _, line := range strings.Split(out.String(), "\n") {
			if v, ok := strings.CutPrefix(line, prefix+" "); ok {
				var err error
				n, err = strconv.Atoi(v)
				return err == nil
			}
		}
		return false
	})
	return n
}

func TestLocalExitCodes(t *testing.T) {
	for _, tc := range []struct {
		script string
		code   int
		out    string
	}{
		{"true", 0, ""},
		{"echo ok", 0, "ok\n"},
		{"exit 3", 3, ""},
		{"echo a; exit 3", 3, "a\n"},
		{"kill -TERM $$", 128 + int(syscall.SIGTERM), ""},
		{"kill -KILL $$", 128 + int(syscall.SIGKILL), ""},
		// sh -e: a failing command stops the script.
		{"echo before\nfalse\necho after", 1, "before\n"},
		{"echo before; sh -c 'exit 7'; echo after", 7, "before\n"},
		{"no-such-command-refline\necho after", 127, ""},
	} {
		code, out := runJob(t, Job{Script: tc.script})
		if code != tc.code {
			t.Errorf("%q: exit code %d, want %d (output %q)", tc.script, code, tc.code, out)
		}
		if tc.code != 127 && out != tc.out {
			t.Errorf("%q: output %q, want %q", tc.script, out, tc.out)
		}
		if strings.Contains(out, "after") {
			t.Errorf("%q: the script went on after a failing command: %q", tc.script, out)
		}
	}
}

func TestLocalOutputAndDir(t *testing.T) {
	dir := t.TempDir()
	code, out := runJob(t, Job{Script: "echo out; echo err >&2; pwd", Dir: dir})
	if code != 0 {
		t.Fatalf("exit code %d, output %q", code, out)
	}
	want := "out\nerr\n" + dir + "\n"
	if out != want {
		t.Errorf("output %q, want %q", out, want)
	}
	// Relative paths are resolved in the job's directory.
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("content"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, out := runJob(t, Job{Script: "cat f", Dir: dir}); out != "content" {
		t.Errorf("cat f in the job's dir: %q", out)
	}
}

func TestLocalEnvironmentIsExactlyJobEnv(t *testing.T) {
	t.Setenv("REFLINE_TEST_SERVER_SECRET", "leaked")
	env := []string{"PATH=" + os.Getenv("PATH"), "A=1", "B=two words", "C="}
	// /proc/$$/environ is what the shell was started with, before it
	// adds variables of its own (PWD).
	code, out := runJob(t, Job{Script: `tr '\0' '\n' < /proc/$$/environ`, Env: env})
	if code != 0 {
		t.Fatalf("exit code %d, output %q", code, out)
	}
	got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if !slices.Equal(got, env) {
		t.Errorf("job environment:\n%q\nwant exactly\n%q", got, env)
	}
	_, out = runJob(t, Job{Script: "env", Env: env})
	if strings.Contains(out, "REFLINE_TEST_SERVER_SECRET") || strings.Contains(out, "leaked") {
		t.Errorf("the job sees the server's environment: %q", out)
	}

	// A nil Env is an empty environment, not the server's.
	var buf syncBuffer
	p, err := Local{}.Start(context.Background(), Job{Script: `tr '\0' '\n' < /proc/$$/environ`, Output: &buf})
	if err != nil {
		t.Fatal(err)
	}
	if code, err := wait(t, p, 20*time.Second); code != 0 || err != nil {
		t.Fatalf("Wait = %d, %v (output %q)", code, err, buf.String())
	}
	if buf.String() != "" {
		t.Errorf("a job with nil Env started with environment %q", buf.String())
	}
}

func TestLocalStartError(t *testing.T) {
	_, err := Local{}.Start(context.Background(), Job{Script: "true", Dir: filepath.Join(t.TempDir(), "missing"), Output: io.Discard})
	if err == nil {
		t.Fatal("Start in a missing directory succeeded")
	}
}

// Cancel and context cancellation stop the whole process group: the
// script and what it started in the background.
func TestLocalCancelStopsGroup(t *testing.T) {
	const script = "sleep 1000 &\necho child $!\nwait"
	for _, how := range []string{"Cancel", "context"} {
		t.Run(how, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			p, out := startJob(t, ctx, Local{Grace: 5 * time.Second}, script)
			child := waitLine(t, out, "child")
			pgid := p.(*localProcess).pgid
			if gone(child) || gone(pgid) {
				t.Fatalf("job not running")
			}
			if how == "Cancel" {
				p.Cancel()
			} else {
				cancel()
			}
			code, err := wait(t, p, 20*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if code != 128+int(syscall.SIGTERM) {
				t.Errorf("exit code %d, want %d (SIGTERM)", code, 128+int(syscall.SIGTERM))
			}
			waitFor(t, 10*time.Second, "the background child to be gone", func() bool { return gone(child) })
			if !gone(pgid) {
				t.Errorf("the job's shell %d is still running", pgid)
			}
			p.Cancel() // after the end: a no-op
		})
	}
}

func TestLocalCancelKillsAfterGrace(t *testing.T) {
	const grace = 200 * time.Millisecond
	p, out := startJob(t, context.Background(), Local{Grace: grace}, "trap '' TERM\nsleep 1000 &\necho child $!\nwait")
	child := waitLine(t, out, "child")
	start := time.Now()
	p.Cancel()
	code, err := wait(t, p, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if code != 128+int(syscall.SIGKILL) {
		t.Errorf("exit code %d, want %d (SIGKILL)", code, 128+int(syscall.SIGKILL))
	}
	if d := time.Since(start); d < grace {
		t.Errorf("killed after %v, before the grace of %v", d, grace)
	}
	waitFor(t, 10*time.Second, "the background child to be gone", func() bool { return gone(child) })
}

// A background child that keeps the output open does not keep Wait
// waiting once the script itself has ended; it is stopped with the group.
func TestLocalBackgroundChildHoldingOutput(t *testing.T) {
	for _, tc := range []struct {
		script string
		code   int
	}{
		{"sleep 1000 &\necho child $!", 0},
		{"sleep 1000 &\necho child $!\nexit 3", 3},
	} {
		p, out := startJob(t, context.Background(), Local{}, tc.script)
		// WaitDelay is a second; far less than the child's 1000s.
		code, err := wait(t, p, 15*time.Second)
		if err != nil || code != tc.code {
			t.Errorf("%q: Wait = %d, %v; want %d, nil", tc.script, code, err, tc.code)
		}
		child := waitLine(t, out, "child")
		waitFor(t, 10*time.Second, "the background child to be gone", func() bool { return gone(child) })
	}
}

func TestLocalHandle(t *testing.T) {
	p, _ := startJob(t, context.Background(), Local{}, "sleep 1000")
	pgid := p.(*localProcess).pgid
	st, err := procStartTime(pgid)
	if err != nil {
		t.Fatal(err)
	}
	if h, want := p.Handle(), fmt.Sprintf("local:%d:%d", pgid, st); h != want {
		t.Errorf("Handle() = %q, want %q", h, want)
	}
	if g, err := syscall.Getpgid(pgid); err != nil || g != pgid {
		t.Errorf("job's process group = %d, %v; want its own, %d", g, err, pgid)
	}
}

// startOrphanJob runs a stand-in server that starts a job, then kills the
// server with SIGKILL: the job's process group is left behind, as after a
// crash. It returns the job's handle, group and background child.
func startOrphanJob(t *testing.T) (handle string, pgid, child int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=orphan")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	timeout := time.After(10 * time.Second)
	for handle == "" || child == 0 {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatal("helper ended before printing its job's handle")
			}
			if v, ok := strings.CutPrefix(line, "handle "); ok {
				handle = v
			} else if v, ok := strings.CutPrefix(line, "child "); ok {
				child, _ = strconv.Atoi(v)
			} else {
				t.Fatalf("helper: %s", line)
			}
		case <-timeout:
			_ = cmd.Process.Kill()
			t.Fatal("helper printed no handle")
		}
	}
	if _, err := fmt.Sscanf(handle, "local:%d:", &pgid); err != nil {
		t.Fatalf("handle %q: %v", handle, err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) })
	// The server dies; its job does not.
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if gone(pgid) || gone(child) {
		t.Fatal("the job died with the server")
	}
	return handle, pgid, child
}

func TestKillLeftover(t *testing.T) {
	t.Run("shell alive", func(t *testing.T) {
		handle, pgid, child := startOrphanJob(t)
		if !KillLeftover(handle) {
			t.Fatalf("KillLeftover(%q) = false for a live group", handle)
		}
		waitFor(t, 10*time.Second, "the group to be gone", func() bool { return gone(pgid) && gone(child) })
	})
	t.Run("shell killed", func(t *testing.T) {
		handle, pgid, child := startOrphanJob(t)
		// Only the leader dies; the rest of the group stays.
		if err := syscall.Kill(pgid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "the shell to be gone", func() bool { return gone(pgid) })
		if gone(child) {
			t.Fatal("the background child died with the shell")
		}
		if !KillLeftover(handle) {
			t.Fatalf("KillLeftover(%q) = false for a group whose leader is gone", handle)
		}
		waitFor(t, 10*time.Second, "the background child to be gone", func() bool { return gone(child) })
	})
	t.Run("dead group", func(t *testing.T) {
		// exec: the group is the shell alone, which Wait reaps. (A child
		// it forked would linger as a zombie until init reaps it, and a
		// group of zombies still exists for kill(2).)
		p, _ := startJob(t, context.Background(), Local{}, "exec sleep 1000")
		handle := p.Handle()
		p.Cancel()
		if _, err := wait(t, p, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		if KillLeftover(handle) {
			t.Errorf("KillLeftover(%q) = true for a group that has ended", handle)
		}
	})
	t.Run("reused id", func(t *testing.T) {
		// A live group whose leader started at another time than the
		// handle says is someone else's: it must be left alone.
		cmd := exec.Command("sleep", "1000")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		st, err := procStartTime(cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		handle := fmt.Sprintf("local:%d:%d", cmd.Process.Pid, st+1)
		if KillLeftover(handle) {
			t.Errorf("KillLeftover(%q) = true for a process of another start time", handle)
		}
		if gone(cmd.Process.Pid) {
			t.Errorf("KillLeftover killed a process that was not the job's")
		}
	})
	t.Run("malformed", func(t *testing.T) {
		for _, h := range []string{"", "local", "local:", "local::", "local:x:1", "local:12:x", "local:0:1",
			"local:1:1", "local:-5:1", "docker:12:1", "local:12:1:2", " local:12:1"} {
			if KillLeftover(h) {
				t.Errorf("KillLeftover(%q) = true", h)
			}
		}
	})
}
