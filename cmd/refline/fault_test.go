//go:build linux

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/sys/unix"
)

// The fault suite (testdata/script/fault-*.txtar) crashes the server at
// chosen points, fills and freezes its disk and drops clients mid-transfer.
// These commands put the faults exactly where a story wants them: each polls
// for its moment in Go (milliseconds apart, no shell in between), and those
// that kill the server first freeze it with SIGSTOP, check that the moment
// is still the one asked for, and only then SIGKILL it, so a story never
// depends on how fast the machine is.
func init() {
	scriptCmds["crash"] = cmdCrash
	scriptCmds["pushretry"] = cmdPushRetry
	scriptCmds["disconnect"] = cmdDisconnect
	scriptCmds["gitgone"] = cmdGitGone
	scriptCmds["smallfs"] = cmdSmallFS
	scriptCmds["remount"] = cmdRemount
	scriptCmds["fill"] = cmdFill
}

// faultWait bounds every wait of these commands.
const faultWait = 30 * time.Second

// cmdCrash kills the server with SIGKILL at a chosen moment (with -touch,
// it creates FILE once it watches for the moment: a job that waits for the
// file then goes on):
//
//	crash push REPO BYTES            while receive-pack holds ≥ BYTES in its quarantine
//	crash stage REPO PIPELINE N NAME while stage NAME of run N runs (its process recorded)
//	crash record REPO PIPELINE N     after every stage of run N passed, while an object
//	                                 of its artifact is being written
//	crash landed REPO REF            as soon as REF moved (a push landed; its hooks may
//	                                 not have reached the server yet)
//	crash artifact REPO PIPELINE N   once refs/artifacts/PIPELINE moved for run N, before
//	                                 the server saw the run end
//	crash finished REPO PIPELINE N   once run N ended, before its record reached
//	                                 refs/runs/PIPELINE
func cmdCrash(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! crash")
	}
	usage := "usage: crash [-touch FILE] push REPO BYTES | stage REPO PIPELINE N STAGE | record|artifact|finished REPO PIPELINE N | landed REPO REF"
	touch := ""
	if len(args) >= 2 && args[0] == "-touch" {
		touch, args = ts.MkAbs(args[1]), args[2:]
	}
	if len(args) < 1 {
		ts.Fatalf("%s", usage)
	}
	data := ts.Getenv("DATA")
	var (
		at func() (string, bool)
		// step, when set, is checked only while the server is frozen,
		// once at has held: the server then runs in short slices, so a
		// moment that lasts less than a millisecond is still caught.
		step  func() (string, bool)
		after func() string // what the frozen server was doing, for the log
	)
	switch {
	case args[0] == "push" && len(args) == 3:
		repo := filepath.Join(data, "repos", args[1]+".git")
		minBytes, err := strconv.ParseInt(args[2], 10, 64)
		ts.Check(err)
		at = func() (string, bool) {
			n := quarantineBytes(repo)
			return fmt.Sprintf("%d bytes in %s's quarantine", n, args[1]), n >= minBytes
		}
	case args[0] == "stage" && len(args) == 5:
		file := runFile(data, args[1], args[2], args[3])
		at = func() (string, bool) {
			run, err := readRun(file)
			if err != nil {
				return err.Error(), false
			}
			for _, st := range run.Stages {
				if st.Name == args[4] {
					return fmt.Sprintf("run %s, stage %s %s, process %q", run.State, st.Name, st.State, run.Process),
						run.State == "running" && st.State == "running" && run.Process != ""
				}
			}
			return fmt.Sprintf("run %s, no stage %s yet", run.State, args[4]), false
		}
	case args[0] == "record" && len(args) == 4:
		file := runFile(data, args[1], args[2], args[3])
		repo := filepath.Join(data, "repos", args[1]+".git")
		old := map[string]bool{} // temporary objects of earlier crashes
		tmpObjs := func() []string {
			// Blobs are written to objects/ (refs.writeLoose), trees
			// and commits by go-git to objects/pack/.
			files, _ := filepath.Glob(filepath.Join(repo, "objects", "tmp_obj_*"))
			more, _ := filepath.Glob(filepath.Join(repo, "objects", "pack", "tmp_obj_*"))
			return append(files, more...)
		}
		for _, f := range tmpObjs() {
			old[f] = true
		}
		passed := func() (string, bool) {
			run, err := readRun(file)
			if err != nil {
				return err.Error(), false
			}
			passed := len(run.Stages) > 0
			for _, st := range run.Stages {
				passed = passed && st.State == "passed"
			}
			return fmt.Sprintf("run %s, %d stages, all passed: %v", run.State, len(run.Stages), passed),
				run.State == "running" && passed
		}
		// The time from the last stage's end to the artifact's last
		// object can be shorter than a poll, so the server runs in slices
		// from the moment the run is under way, not only once its stages
		// have passed.
		at = func() (string, bool) {
			run, err := readRun(file)
			if err != nil {
				return err.Error(), false
			}
			return "run " + run.State, run.State == "running"
		}
		// Deeper in: while an object of the artifact is being written.
		step = func() (string, bool) {
			state, ok := passed()
			writing := 0
			for _, f := range tmpObjs() {
				if !old[f] {
					writing++
				}
			}
			return fmt.Sprintf("%s, %d objects being written", state, writing), ok && writing > 0
		}
		after = func() string {
			return fmt.Sprintf("refs/artifacts/%s at %s", args[2], refOrAbsent(repo, "refs/artifacts/"+args[2]))
		}
	case args[0] == "landed" && len(args) == 3:
		repo := filepath.Join(data, "repos", args[1]+".git")
		ref := args[2]
		before := readRef(repo, ref)
		at = func() (string, bool) {
			now := readRef(repo, ref)
			return fmt.Sprintf("%s at %s", ref, now), now != before
		}
		after = func() string {
			return fmt.Sprintf("%d runs in %s's run records", countRuns(data, args[1]), args[1])
		}
	case (args[0] == "finished" || args[0] == "artifact") && len(args) == 4:
		file := runFile(data, args[1], args[2], args[3])
		repo := filepath.Join(data, "repos", args[1]+".git")
		ref := "refs/runs/" + args[2]
		if args[0] == "artifact" {
			ref = "refs/artifacts/" + args[2]
		}
		before := readRef(repo, ref)
		at = func() (string, bool) {
			run, err := readRun(file)
			if err != nil {
				return err.Error(), false
			}
			return "run " + run.State, run.State == "running"
		}
		step = func() (string, bool) {
			run, err := readRun(file)
			if err != nil {
				return err.Error(), false
			}
			now := readRef(repo, ref)
			state := fmt.Sprintf("run %s, %s at %s", run.State, ref, now)
			if args[0] == "finished" {
				return state, run.State != "running" && run.State != "queued" && now == before
			}
			return state, run.State == "running" && now != before
		}
	default:
		ts.Fatalf("%s", usage)
	}

	p := ts.Value("server").(*serverSlot).p
	if p == nil {
		ts.Fatalf("no server running")
	}
	if touch != "" {
		// Now that the moment is watched for, let the job that waits for
		// this file go on, once its workspace exists: a push returns when
		// the run is queued, before the workspace is made.
		for end := time.Now().Add(faultWait); ; time.Sleep(10 * time.Millisecond) {
			if _, err := os.Stat(filepath.Dir(touch)); err == nil {
				break
			} else if time.Now().After(end) {
				ts.Fatalf("crash -touch: %v", err)
			}
		}
		ts.Check(os.WriteFile(touch, nil, 0o644))
	}
	deadline := time.Now().Add(faultWait)
	var state string
	for {
		var ok bool
		if state, ok = at(); ok {
			break
		}
		select {
		case <-p.done:
			ts.Fatalf("the server exited before the moment to crash it (%s)", state)
		case <-time.After(2 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			ts.Fatalf("waited %s to crash the server; last state: %s", faultWait, state)
		}
	}
	pid := p.cmd.Process.Pid
	if step != nil {
		// Run the server in slices of 200µs; between them it stays
		// frozen for a millisecond while its git children go on.
		for {
			freeze(pid)
			time.Sleep(time.Millisecond)
			var ok bool
			if state, ok = step(); ok {
				break
			}
			if time.Now().After(deadline) {
				syscall.Kill(pid, syscall.SIGCONT)
				ts.Fatalf("waited %s to crash the server; last state: %s", faultWait, state)
			}
			syscall.Kill(pid, syscall.SIGCONT)
			time.Sleep(200 * time.Microsecond)
		}
	} else {
		// Freeze the server, then make sure the moment has not passed in
		// the few milliseconds since it was seen: the crash lands where
		// asked.
		freeze(pid)
		var ok bool
		if state, ok = at(); !ok {
			syscall.Kill(pid, syscall.SIGCONT)
			ts.Fatalf("the moment passed before the server could be frozen: %s", state)
		}
	}
	if after != nil {
		state += "; " + after()
	}
	ts.Check(p.cmd.Process.Signal(syscall.SIGKILL))
	select {
	case <-p.done:
	case <-time.After(faultWait):
		ts.Fatalf("the server did not die of SIGKILL")
	}
	fmt.Fprintf(ts.Stdout(), "crashed: %s\n", state)
}

// freeze stops a process with SIGSTOP and waits until it has stopped.
func freeze(pid int) {
	syscall.Kill(pid, syscall.SIGSTOP)
	for i := 0; i < 1000; i++ {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return
		}
		if f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:])); len(f) > 0 && (f[0] == "T" || f[0] == "Z") {
			return
		}
		time.Sleep(50 * time.Microsecond)
	}
}

func runFile(data, repo, pipeline, n string) string {
	return filepath.Join(data, "runs", strings.ReplaceAll(repo, "/", "%2F"), pipeline, n, "run.json")
}

// runState is the part of run.json the fault commands read.
type runState struct {
	State   string `json:"state"`
	Process string `json:"process"`
	Stages  []struct {
		Name  string `json:"name"`
		State string `json:"state"`
	} `json:"stages"`
}

func readRun(file string) (*runState, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var r runState
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return &r, nil
}

// quarantineBytes adds up what receive-pack has stored of a push in
// progress (git keeps it in objects/tmp_objdir-incoming-* until the refs
// move).
func quarantineBytes(gitDir string) int64 {
	// tmp_objdir-incoming-XXXXXX since git 2.13; incoming-XXXXXX before.
	dirs, _ := filepath.Glob(filepath.Join(gitDir, "objects", "*incoming-*"))
	var n int64
	for _, d := range dirs {
		filepath.WalkDir(d, func(_ string, e fs.DirEntry, err error) error {
			if err == nil && e.Type().IsRegular() {
				if fi, err := e.Info(); err == nil {
					n += fi.Size()
				}
			}
			return nil
		})
	}
	return n
}

func refOrAbsent(gitDir, ref string) string {
	out, err := exec.Command("git", "--git-dir="+gitDir, "rev-parse", "-q", "--verify", ref).Output()
	if err != nil {
		return "absent"
	}
	h := strings.TrimSpace(string(out))
	return h[:min(len(h), 12)]
}

// readRef reads a ref of a bare repository as git stores it (loose, or in
// packed-refs) without running git: it is polled every few milliseconds.
func readRef(gitDir, ref string) string {
	if b, err := os.ReadFile(filepath.Join(gitDir, filepath.FromSlash(ref))); err == nil {
		return strings.TrimSpace(string(b))
	}
	b, _ := os.ReadFile(filepath.Join(gitDir, "packed-refs"))
	for _, line := range strings.Split(string(b), "\n") {
		if h, name, ok := strings.Cut(line, " "); ok && name == ref {
			return h
		}
	}
	return "absent"
}

// countRuns counts the runs stored for a repository, of every pipeline.
func countRuns(data, repo string) int {
	files, _ := filepath.Glob(filepath.Join(data, "runs", strings.ReplaceAll(repo, "/", "%2F"), "*", "*", "run.json"))
	return len(files)
}

// gitRunner runs git commands as the script's user would.
func gitRunner(ts *testscript.TestScript) func(dir string, args ...string) (string, error) {
	env := []string{"HOME=" + ts.Getenv("HOME"), "PATH=" + ts.Getenv("PATH"),
		"GIT_SSH_COMMAND=" + ts.Getenv("GIT_SSH_COMMAND"), "GIT_CONFIG_NOSYSTEM=1"}
	return func(dir string, args ...string) (string, error) {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
}

// cmdPushRetry is pushrace's patient cousin: N clients each commit a file
// of their own on top of master and push at once; a client turned away
// fetches, rebases and pushes again, up to TRIES times. Every client must
// be told the truth (the commit a push reported as landed is in master's
// history at the end; a refused push says why), and at the end master must
// hold all N commits on top of the base, in a straight line.
// It prints "landed N pushes M".
func cmdPushRetry(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: pushretry N URL TRIES")
	}
	n, err := strconv.Atoi(args[0])
	ts.Check(err)
	url := args[1]
	tries, err := strconv.Atoi(args[2])
	ts.Check(err)
	git := gitRunner(ts)
	dirs := make([]string, n)
	setup := make([]error, n)
	var wg sync.WaitGroup
	for i := range dirs {
		dirs[i] = ts.MkAbs(fmt.Sprintf("retry-%d", i))
		wg.Go(func() {
			if out, err := git(ts.MkAbs("."), "clone", "-q", url, dirs[i]); err != nil {
				setup[i] = fmt.Errorf("clone: %v\n%s", err, out)
				return
			}
			name := fmt.Sprintf("pusher-%d.txt", i)
			if err := os.WriteFile(filepath.Join(dirs[i], name), []byte(fmt.Sprintf("pusher %d\n", i)), 0o644); err != nil {
				setup[i] = err
				return
			}
			if out, err := git(dirs[i], "add", name); err != nil {
				setup[i] = fmt.Errorf("add: %v\n%s", err, out)
				return
			}
			if out, err := git(dirs[i], "commit", "-q", "-m", fmt.Sprintf("pusher %d", i)); err != nil {
				setup[i] = fmt.Errorf("commit: %v\n%s", err, out)
			}
		})
	}
	wg.Wait()
	ts.Check(errors.Join(setup...))
	base, err := git(dirs[0], "rev-parse", "origin/master")
	ts.Check(err)
	base = strings.TrimSpace(base)

	var (
		mu       sync.Mutex
		pushes   int
		failures []string
		landed   = map[int]string{} // pusher -> commit reported as landed
	)
	fail := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		failures = append(failures, fmt.Sprintf(format, a...))
	}
	start := make(chan struct{})
	for i := range dirs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			dir := dirs[i]
			for try := 1; try <= tries; try++ {
				head, _ := git(dir, "rev-parse", "HEAD")
				head = strings.TrimSpace(head)
				began := time.Now()
				out, err := git(dir, "push", "origin", "HEAD:master")
				took := time.Since(began)
				mu.Lock()
				pushes++
				mu.Unlock()
				if err == nil {
					mu.Lock()
					landed[i] = head
					mu.Unlock()
					return
				}
				if !strings.Contains(out, "rejected") && !strings.Contains(out, "failed to") {
					fail("pusher %d, try %d, failed without being told why:\n%s", i, try, out)
					return
				}
				// Back off as retrying clients do (exponentially, in units
				// of what a push takes here but at most 150ms, with full
				// jitter), then fetch and rebase right before pushing
				// again: fewer pushes collide. Only the suite's speed
				// depends on it, never its verdict.
				unit := min(took, 150*time.Millisecond)
				time.Sleep(time.Duration(rand.Int64N(int64(unit) << min(try, 3))))
				if out, err := git(dir, "pull", "-q", "--rebase", "origin", "master"); err != nil {
					fail("pusher %d, try %d: fetch and rebase: %v\n%s", i, try, err, out)
					return
				}
			}
			fail("pusher %d did not land in %d tries", i, tries)
		}(i)
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	ts.Logf("pushes took %s", time.Since(t0))
	if len(failures) > 0 {
		ts.Fatalf("%s", strings.Join(failures, "\n"))
	}
	tip, err := git(dirs[0], "ls-remote", url, "refs/heads/master")
	ts.Check(err)
	tip = strings.Fields(tip)[0]
	if _, err := git(dirs[0], "fetch", "-q", url, "master"); err != nil {
		ts.Fatalf("fetch: %v", err)
	}
	log, err := git(dirs[0], "log", "--first-parent", "--format=%H %P %s", base+".."+tip)
	ts.Check(err)
	lines := strings.Split(strings.TrimSpace(log), "\n")
	if len(lines) != n {
		ts.Fatalf("master has %d commits on top of the base, want %d:\n%s", len(lines), n, log)
	}
	seen := map[string]bool{}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) != 4 { // hash, one parent, "pusher", number
			ts.Fatalf("not a straight line of pushers' commits: %q", l)
		}
		seen[f[0]] = true
		seen[strings.Join(f[2:], " ")] = true
	}
	for i := 0; i < n; i++ {
		if !seen[fmt.Sprintf("pusher %d", i)] {
			ts.Fatalf("pusher %d's commit is missing from master:\n%s", i, log)
		}
		if !seen[landed[i]] {
			ts.Fatalf("pusher %d was told %s landed, but master's history does not have it:\n%s", i, landed[i], log)
		}
	}
	fmt.Fprintf(ts.Stdout(), "landed %d pushes %d\n", len(landed), pushes)
}

// cmdDisconnect runs a git command (a clone or push) against the server,
// waits until the server has moved BYTES of it over the wire (direction in
// for a push, out for a clone, from the server's /metrics), and then kills
// the client's whole process group (git and ssh), as a client machine
// dropping off the network would. The transfer must not have finished by
// then.
//
//	disconnect in|out BYTES git ARGS...
func cmdDisconnect(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 4 || (args[0] != "in" && args[0] != "out") || args[2] != "git" {
		ts.Fatalf("usage: disconnect in|out BYTES git ARGS...")
	}
	minBytes, err := strconv.ParseFloat(args[1], 64)
	ts.Check(err)
	metrics := "http://" + ts.Getenv("HTTPADDR") + "/metrics"
	base, err := gitBytes(metrics, args[0])
	ts.Check(err)

	cmd := exec.Command("git", args[3:]...)
	cmd.Dir = ts.MkAbs(".")
	cmd.Env = scriptEnv(ts)
	var out strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	ts.Check(cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(faultWait)
	var moved float64
	for moved < minBytes {
		select {
		case err := <-exited:
			ts.Fatalf("git ended (%v) after %.0f bytes, before the disconnect at %.0f:\n%s", err, moved, minBytes, out.String())
		case <-time.After(2 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
			ts.Fatalf("waited %s for %.0f bytes; %.0f moved", faultWait, minBytes, moved)
		}
		n, err := gitBytes(metrics, args[0])
		ts.Check(err)
		moved = n - base
	}
	// Freeze the client first: had it finished the transfer meanwhile,
	// this would not be a disconnect.
	syscall.Kill(-cmd.Process.Pid, syscall.SIGSTOP)
	select {
	case err := <-exited:
		ts.Fatalf("git ended (%v) before it could be disconnected:\n%s", err, out.String())
	default:
		if ended(cmd.Process.Pid) {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			ts.Fatalf("git ended before it could be disconnected:\n%s", out.String())
		}
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-exited
	fmt.Fprintf(ts.Stdout(), "disconnected after %.0f bytes %s\n", moved, args[0])
}

// gitBytes reads refline_git_bytes_total{direction=dir} from /metrics.
func gitBytes(url, dir string) (float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	prefix := `refline_git_bytes_total{direction="` + dir + `"} `
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, nil // no traffic that way yet
}

// cmdGitGone waits until no process works in the repository any more (a
// git child of a session runs in the repository's directory, and so do
// its pack-objects, index-pack and unpack-objects children), for at most
// SECONDS (default: the server's 10 s grace for git children whose client
// left, plus 5 s for SIGTERM and SIGKILL to land). It prints how long that
// took.
//
//	gitgone REPO [SECONDS]
func cmdGitGone(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: gitgone REPO [SECONDS]")
	}
	limit := 15 * time.Second
	if len(args) == 2 {
		s, err := strconv.Atoi(args[1])
		ts.Check(err)
		limit = time.Duration(s) * time.Second
	}
	repo, err := filepath.EvalSymlinks(filepath.Join(ts.Getenv("DATA"), "repos", args[0]+".git"))
	ts.Check(err)
	start := time.Now()
	for {
		left := processesIn(repo)
		if len(left) == 0 {
			fmt.Fprintf(ts.Stdout(), "no process left in %s\n", args[0])
			ts.Logf("gone after %s", time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Since(start) > limit {
			ts.Fatalf("after %s these still run in %s:\n%s", limit, args[0], strings.Join(left, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// processesIn lists the live processes whose working directory is dir or
// below it, or whose command line names it.
func processesIn(dir string) []string {
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		args := strings.ReplaceAll(strings.TrimRight(string(cmdline), "\x00"), "\x00", " ")
		if cwd != dir && !strings.HasPrefix(cwd, dir+"/") && !strings.Contains(args, dir) {
			continue
		}
		if ended(pid) {
			continue // only its parent's wait is missing
		}
		out = append(out, fmt.Sprintf("%d %s", pid, args))
	}
	return out
}

// ended reports whether a process has ended (or is a zombie whose parent
// has not waited for it yet).
func ended(pid int) bool {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	return err != nil || strings.Contains(string(status), "\nState:\tZ")
}

// cmdSmallFS mounts a tmpfs of SIZE (as mount -o size= reads it: 8m, 64m)
// on DIR for the rest of the script. Where mounting is not permitted (not
// root, or no CAP_SYS_ADMIN in a container) the script is skipped.
//
//	smallfs DIR SIZE
func cmdSmallFS(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: smallfs DIR SIZE")
	}
	dir := ts.MkAbs(args[0])
	ts.Check(os.MkdirAll(dir, 0o755))
	err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size="+args[1]+",mode=0755")
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
		skipScript(ts, fmt.Sprintf("cannot mount a small file system to fill: mount tmpfs on %s: %v (needs root with CAP_SYS_ADMIN)", dir, err))
	}
	ts.Check(err)
	ts.Defer(func() {
		// Lazily: a process of the story may still hold a file in it.
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			ts.Logf("unmount %s: %v", dir, err)
		}
	})
	fmt.Fprintf(ts.Stdout(), "mounted %s bytes on %s\n", args[1], args[0])
}

// cmdRemount makes a smallfs read-only or writable again. The kernel
// refuses to make a file system read-only (EBUSY) while a file on it is
// open for writing, or a deleted file or directory on it is still held
// (open, mapped, or bound in some mount namespace): the story's server
// has left something behind. It then fails, listing what holds the file
// system.
//
//	remount ro|rw DIR
func cmdRemount(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 || (args[0] != "ro" && args[0] != "rw") {
		ts.Fatalf("usage: remount ro|rw DIR")
	}
	flags := uintptr(syscall.MS_REMOUNT | syscall.MS_NOSUID | syscall.MS_NODEV)
	if args[0] == "ro" {
		flags |= syscall.MS_RDONLY
	}
	dir := ts.MkAbs(args[1])
	err := syscall.Mount("tmpfs", dir, "tmpfs", flags, "")
	if errors.Is(err, syscall.EBUSY) {
		ts.Fatalf("remount %s %s: %v; what holds it:\n%s", args[0], dir, err, strings.Join(fsHolders(dir), "\n"))
	}
	ts.Check(err)
}

// fsHolders lists what holds dir's file system: processes with a file on
// it open, mapped, as working or root directory, and mounts of it in mount
// namespaces other than this process's.
func fsHolders(dir string) []string {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return []string{err.Error()}
	}
	dev := fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))
	on := func(path string) bool {
		var fst syscall.Stat_t
		return syscall.Stat(path, &fst) == nil && fst.Dev == st.Dev
	}
	ownNS, _ := os.Readlink("/proc/self/ns/mnt")
	seenNS := map[string]bool{ownNS: true}
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		proc := fmt.Sprintf("/proc/%d", pid)
		cmdline, _ := os.ReadFile(proc + "/cmdline")
		who := fmt.Sprintf("pid %d (%s)", pid, strings.ReplaceAll(strings.TrimRight(string(cmdline), "\x00"), "\x00", " "))
		for _, l := range []string{"cwd", "root"} {
			if on(proc + "/" + l) {
				target, _ := os.Readlink(proc + "/" + l)
				out = append(out, fmt.Sprintf("%s: %s %s", who, l, target))
			}
		}
		fds, _ := os.ReadDir(proc + "/fd")
		for _, fd := range fds {
			if on(proc + "/fd/" + fd.Name()) {
				target, _ := os.Readlink(proc + "/fd/" + fd.Name())
				info, _ := os.ReadFile(proc + "/fdinfo/" + fd.Name())
				flags := ""
				for _, line := range strings.Split(string(info), "\n") {
					if v, ok := strings.CutPrefix(line, "flags:"); ok {
						flags = strings.TrimSpace(v)
					}
				}
				out = append(out, fmt.Sprintf("%s: fd %s %s (flags %s)", who, fd.Name(), target, flags))
			}
		}
		maps, _ := os.ReadFile(proc + "/maps")
		for _, line := range strings.Split(string(maps), "\n") {
			if f := strings.Fields(line); len(f) >= 6 && devNumbers(f[3]) == dev {
				out = append(out, fmt.Sprintf("%s: maps %s", who, strings.Join(f[5:], " ")))
			}
		}
		ns, _ := os.Readlink(proc + "/ns/mnt")
		if ns == "" || seenNS[ns] {
			continue
		}
		seenNS[ns] = true
		mountinfo, _ := os.ReadFile(proc + "/mountinfo")
		for _, line := range strings.Split(string(mountinfo), "\n") {
			// ID PARENT MAJOR:MINOR ROOT MOUNTPOINT ...
			if f := strings.Fields(line); len(f) >= 5 && f[2] == dev {
				out = append(out, fmt.Sprintf("%s: in mount namespace %s, %s mounted on %s", who, ns, f[3], f[4]))
			}
		}
	}
	if len(out) == 0 {
		out = append(out, "nothing (a write under way?)")
	}
	return out
}

// devNumbers turns a major:minor of /proc/PID/maps (hex) into decimal.
func devNumbers(s string) string {
	var major, minor uint32
	if _, err := fmt.Sscanf(s, "%x:%x", &major, &minor); err != nil {
		return ""
	}
	return fmt.Sprintf("%d:%d", major, minor)
}

// cmdFill allocates FILE so that only LEAVE bytes (a number, or with a
// k or m suffix) stay free on its file system.
//
//	fill FILE LEAVE
func cmdFill(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: fill FILE LEAVE")
	}
	leave, err := parseSize(args[1])
	ts.Check(err)
	file := ts.MkAbs(args[0])
	var st syscall.Statfs_t
	ts.Check(syscall.Statfs(filepath.Dir(file), &st))
	size := int64(st.Bavail)*st.Bsize - leave
	if size <= 0 {
		ts.Fatalf("only %d bytes free; cannot leave %d", int64(st.Bavail)*st.Bsize, leave)
	}
	f, err := os.Create(file)
	ts.Check(err)
	defer f.Close()
	ts.Check(syscall.Fallocate(int(f.Fd()), 0, 0, size))
	ts.Check(syscall.Statfs(filepath.Dir(file), &st))
	fmt.Fprintf(ts.Stdout(), "%d bytes free\n", int64(st.Bavail)*st.Bsize)
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "k"):
		mult, s = 1<<10, strings.TrimSuffix(s, "k")
	case strings.HasSuffix(s, "m"):
		mult, s = 1<<20, strings.TrimSuffix(s, "m")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n * mult, err
}

// skipScript skips the running script, as the builtin `skip` does.
// testscript (v1.16) gives custom commands Fatalf but no Skip, so the
// script's testing.T is reached by reflection; should that ever fail, the
// script fails with the reason instead.
func skipScript(ts *testscript.TestScript, reason string) {
	f := reflect.ValueOf(ts).Elem().FieldByName("t")
	if f.IsValid() {
		if t, ok := reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Interface().(testscript.T); ok && t != nil {
			t.Skip(reason)
		}
	}
	ts.Fatalf("%s", reason)
}
