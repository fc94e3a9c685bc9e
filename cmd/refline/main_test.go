package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/crypto/ssh"

	"github.com/refline/refline/hooks/relay"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"refline": func() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
		// The hook relay, next to refline as `make build` installs it.
		"refline-hook": func() { os.Exit(relay.Main(os.Args[1:], os.Stdin, os.Stderr, os.Getenv)) },
	})
}

// TestScripts runs the end-to-end stories in testdata/script: the real git
// and ssh clients against a real server process on loopback.
func TestScripts(t *testing.T) {
	for _, tool := range []string{"git", "ssh", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is required for the end-to-end tests: %v", tool, err)
		}
	}
	// The helper scripts are written once, here, before the stories run in
	// parallel: a script written while another story forks can be "text
	// file busy" when run, and sh then quietly runs the next one of that
	// name on PATH (the real ssh, without the story's options).
	scriptBin = filepath.Join(t.TempDir(), "bin")
	readmeBin = filepath.Join(t.TempDir(), "readme-bin")
	if err := writeScripts(scriptBin, readmeBin); err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		Setup:               setupScript,
		Condition:           scriptCondition,
		Cmds:                scriptCmds,
		RequireExplicitExec: true,
	})
}

// scriptCondition adds [root]: the tests run as root (as CI does), so the
// server does too, and jobs change to an unprivileged host uid; and
// [chromium]: a browser the dashboard's browser stories can drive.
func scriptCondition(cond string) (bool, error) {
	if cond == "root" {
		return os.Geteuid() == 0, nil
	}
	if cond == "chromium" {
		return chromiumPath() != "", nil
	}
	return false, fmt.Errorf("unknown condition %q", cond)
}

// Users every script can act as: alice is the admin the server starts with.
var scriptUsers = []string{"alice", "bob", "carol", "mallory"}

func setupScript(env *testscript.Env) error {
	home := filepath.Join(env.WorkDir, "home")
	bin := filepath.Join(env.WorkDir, "bin")
	for _, d := range []string{filepath.Join(home, ".ssh"), bin} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	for _, u := range scriptUsers {
		if err := writeUserKey(filepath.Join(home, ".ssh", "id_"+u), u); err != nil {
			return err
		}
	}
	gitconfig := "[user]\n\tname = Test User\n\temail = test@example.com\n[init]\n\tdefaultBranch = master\n[advice]\n\tdetachedHead = false\n"
	if err := os.WriteFile(filepath.Join(home, ".gitconfig"), []byte(gitconfig), 0o644); err != nil {
		return err
	}
	env.Setenv("HOME", home)
	env.Setenv("PATH", bin+string(os.PathListSeparator)+scriptBin+string(os.PathListSeparator)+env.Getenv("PATH"))
	env.Setenv("GIT_SSH_COMMAND", "gitssh")
	env.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	// Hooks run by git commands in the scripts are this (maybe
	// race-enabled) binary: no second of sleep at each exit.
	env.Setenv("GORACE", "atexit_sleep_ms=0")
	env.Setenv("DATA", filepath.Join(env.WorkDir, "data"))
	env.Values["server"] = &serverSlot{}
	env.Values["web"] = newWebSlot()
	// The README's example, as shipped, for the quickstart story.
	return os.CopyFS(filepath.Join(env.WorkDir, "examples"), os.DirFS("../../examples"))
}

// scriptBin holds the helper scripts every story has on PATH, readmeBin the
// ssh that README steps run (see cmdReadme); TestScripts writes both once.
var scriptBin, readmeBin string

func writeScripts(bin, readme string) error {
	for _, d := range []string{bin, readme} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	sshOpts := `-F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes -o IdentitiesOnly=yes`
	scripts := map[string]string{
		// gitssh is GIT_SSH_COMMAND: ssh as $AS (default alice).
		"gitssh": `exec ssh ` + sshOpts + ` -i "$HOME/.ssh/id_${AS:-alice}" "$@"`,
		// alive PID succeeds while PID runs (a zombie has ended).
		"alive": `s=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' /proc/$1/status 2>/dev/null); [ -n "$s" ] && [ "$s" != Z ] && [ "$s" != X ]`,
		// rl runs an SSH command on the server as $AS.
		"rl": `exec ssh ` + sshOpts + ` -i "$HOME/.ssh/id_${AS:-alice}" -p "$SSHPORT" git@127.0.0.1 "$@"`,
	}
	for name, body := range scripts {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			return err
		}
	}
	realSSH, err := exec.LookPath("ssh")
	if err != nil {
		return err
	}
	// README steps run plain `ssh refline …`: this ssh reads the story's
	// ~/.ssh/config (OpenSSH takes ~ from the password file, not $HOME)
	// and uses the story user's key.
	wrapper := fmt.Sprintf("#!/bin/sh\nexec %s -F \"$HOME/.ssh/config\" -i \"$HOME/.ssh/id_${AS:-alice}\" -o IdentitiesOnly=yes "+
		"-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes \"$@\"\n", realSSH)
	return os.WriteFile(filepath.Join(readme, "ssh"), []byte(wrapper), 0o755)
}

func writeUserKey(path, comment string) error {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return err
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		return err
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))) + " " + comment + "@test\n"
	return os.WriteFile(path+".pub", []byte(line), 0o644)
}

var scriptCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	"serve":    cmdServe,
	"halt":     cmdStop,
	"httpget":  cmdHTTPGet,
	"pushrace": cmdPushRace,
	"waitfor":  cmdWaitFor,
	"readme":   cmdReadme,
	"hookrecv": cmdHookRecv,
	"http":     cmdHTTP,
	"chrome":   cmdChrome,
}

// cmdWaitFor runs a shell command until it succeeds (30s at most): tests
// wait on conditions, never on the clock.
func cmdWaitFor(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) == 0 {
		ts.Fatalf("usage: waitfor SHELL-COMMAND...")
	}
	script := strings.Join(args, " ")
	deadline := time.Now().Add(30 * time.Second)
	var out []byte
	for time.Now().Before(deadline) {
		cmd := exec.Command("sh", "-c", script)
		cmd.Dir = ts.MkAbs(".")
		cmd.Env = scriptEnv(ts)
		var err error
		out, err = cmd.CombinedOutput()
		if err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	ts.Fatalf("waited 30s for: %s\nlast output: %s", script, out)
}

// scriptEnv is the script's environment for commands a custom command runs.
func scriptEnv(ts *testscript.TestScript) []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "WORK", "DATA", "SSHPORT", "HTTPADDR", "AS", "GIT_SSH_COMMAND", "GIT_CONFIG_NOSYSTEM", "TMPDIR"} {
		if v := ts.Getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// cmdHTTPGet fetches a URL from the server's HTTP endpoint to stdout. With
// -until REGEXP it fetches again until the body matches (30s at most), for
// waiting on a metric.
func cmdHTTPGet(ts *testscript.TestScript, neg bool, args []string) {
	var until *regexp.Regexp
	if len(args) == 3 && args[0] == "-until" {
		until, args = regexp.MustCompile(args[1]), args[2:]
	}
	if len(args) != 1 {
		ts.Fatalf("usage: httpget [-until REGEXP] URL")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(args[0])
		ts.Check(err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		ts.Check(err)
		ok := resp.StatusCode == http.StatusOK
		if ok == neg {
			ts.Fatalf("GET %s: %s", args[0], resp.Status)
		}
		if until == nil || until.Match(body) {
			ts.Stdout().Write(body)
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("GET %s: no match for %s after 30s", args[0], until)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cmdPushRace clones URL N times, makes a different commit in each clone and
// pushes them all to master at once. Exactly one push can win (they all
// build on the same tip); every client must be told the truth, and what
// landed must be exactly the winner's commit. It prints "landed 1 refused N-1".
func cmdPushRace(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: pushrace N URL")
	}
	n, err := strconv.Atoi(args[0])
	ts.Check(err)
	url := args[1]
	env := ts.Getenv
	gitEnv := []string{"HOME=" + env("HOME"), "PATH=" + env("PATH"), "GIT_SSH_COMMAND=" + env("GIT_SSH_COMMAND"), "GIT_CONFIG_NOSYSTEM=1"}
	git := func(dir string, a ...string) (string, error) {
		cmd := exec.Command("git", a...)
		cmd.Dir = dir
		cmd.Env = gitEnv
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	dirs := make([]string, n)
	heads := make([]string, n)
	for i := range dirs {
		dirs[i] = ts.MkAbs(fmt.Sprintf("race-%d", i))
		if out, err := git(ts.MkAbs("."), "clone", "-q", url, dirs[i]); err != nil {
			ts.Fatalf("clone: %v\n%s", err, out)
		}
		if out, err := git(dirs[i], "commit", "-q", "--allow-empty", "-m", fmt.Sprintf("racer %d", i)); err != nil {
			ts.Fatalf("commit: %v\n%s", err, out)
		}
		h, _ := git(dirs[i], "rev-parse", "HEAD")
		heads[i] = strings.TrimSpace(h)
	}
	type result struct {
		out string
		err error
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range dirs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			out, err := git(dirs[i], "push", "origin", "master")
			results[i] = result{out, err}
		}(i)
	}
	close(start)
	wg.Wait()
	landed, refused := 0, 0
	winner := -1
	for i, r := range results {
		if r.err == nil {
			landed++
			winner = i
			continue
		}
		refused++
		if !strings.Contains(r.out, "rejected") && !strings.Contains(r.out, "failed to") {
			ts.Fatalf("racer %d failed without being told why:\n%s", i, r.out)
		}
	}
	if winner >= 0 {
		tip, _ := git(dirs[0], "ls-remote", "origin", "refs/heads/master")
		if !strings.HasPrefix(tip, heads[winner]) {
			ts.Fatalf("racer %d was told its push landed, but master is %s", winner, tip)
		}
	}
	fmt.Fprintf(ts.Stdout(), "landed %d refused %d\n", landed, refused)
}

// serverSlot holds the script's running server, if any.
type serverSlot struct{ p *serverProc }

type serverProc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// cmdServe starts `refline serve` in the background on random loopback
// ports with $DATA as data dir and alice as admin, waits until it listens,
// and sets $SSHPORT and $HTTPADDR. Extra arguments are passed to serve.
func cmdServe(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! serve")
	}
	data := ts.Getenv("DATA")
	addrFile := filepath.Join(data, "run", "ssh.addr")
	os.Remove(addrFile)
	log, err := os.OpenFile(ts.MkAbs("server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	ts.Check(err)
	full := append([]string{"serve", "--data", data, "--ssh-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--admin-key", filepath.Join(ts.Getenv("HOME"), ".ssh", "id_alice.pub"), "--grace", "5s"}, args...)
	cmd := exec.Command("refline", full...)
	cmd.Env = serverEnv(ts)
	cmd.Dir = ts.Getenv("WORK")
	cmd.Stdout = log
	cmd.Stderr = log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	lp, err := exec.LookPath("refline")
	ts.Check(err)
	cmd.Path = lp
	ts.Check(cmd.Start())
	p := &serverProc{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); log.Close(); close(p.done) }()
	ts.Value("server").(*serverSlot).p = p
	ts.Defer(func() {
		syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(addrFile)
		if err == nil && bytes.HasSuffix(b, []byte("\n")) {
			addr := strings.TrimSpace(string(b))
			ts.Setenv("SSHPORT", addr[strings.LastIndex(addr, ":")+1:])
			hb, _ := os.ReadFile(filepath.Join(data, "run", "http.addr"))
			ts.Setenv("HTTPADDR", strings.TrimSpace(string(hb)))
			return
		}
		select {
		case <-p.done:
			logText, _ := os.ReadFile(ts.MkAbs("server.log"))
			ts.Fatalf("server exited before listening: %v\n%s", cmd.ProcessState, logText)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			ts.Fatalf("server did not listen within 30s")
		}
	}
}

// serverEnv is the environment the server runs with: the script's, plus a
// variable that must never reach git or jobs.
func serverEnv(ts *testscript.TestScript) []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "LANG"} {
		if v := ts.Getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	// A race-enabled hook process would sleep a second at exit.
	return append(env, "REFLINE_TEST_SERVER_SECRET=server-env-must-not-leak", "GORACE=atexit_sleep_ms=0")
}

// cmdStop (`halt`; testscript has a builtin `stop`) stops the server: gracefully (SIGTERM) or, with -9, by SIGKILL as
// a crash would.
func cmdStop(ts *testscript.TestScript, neg bool, args []string) {
	p := ts.Value("server").(*serverSlot).p
	if p == nil {
		ts.Fatalf("no server running")
	}
	sig := syscall.SIGTERM
	if len(args) == 1 && args[0] == "-9" {
		sig = syscall.SIGKILL
	}
	ts.Check(p.cmd.Process.Signal(sig))
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		ts.Fatalf("server did not stop within 30s")
	}
	if sig == syscall.SIGTERM && !p.cmd.ProcessState.Success() {
		ts.Fatalf("server exited with %v", p.cmd.ProcessState)
	}
	fmt.Fprintf(ts.Stdout(), "stopped\n")
}
