package pipelines

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/refline/refline/agent"
	"github.com/sirupsen/logrus"
)

// LocalLauncher starts each agent as a local process of the server's own
// user, in a directory of its own under Dir (its key file and its
// workspace). It isolates nothing; it is the stand-in for a cluster in
// development, tests and benchmarks (`refline serve --executor agent
// --agent-launcher local`).
type LocalLauncher struct {
	// Binary is the refline executable the agent runs as.
	Binary string
	// Dir holds one directory per launched agent; Sweep looks there.
	Dir    string
	Logger *logrus.Entry
}

// Handles of local agents are "local-agent:PGID:STARTTIME:DIRNAME".
const localAgentPrefix = "local-agent:"

// Launch implements Launcher.
func (l LocalLauncher) Launch(ctx context.Context, a AgentLaunch) (string, error) {
	dir, err := agentDir(l.Dir)
	if err != nil {
		return "", err
	}
	key := filepath.Join(dir, "key")
	if err := os.WriteFile(key, a.Key, 0o600); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("write the agent's key: %w", err)
	}
	// The key file stays (not --remove-key-file): a local agent's stages
	// run as the server's user and could read far more under the data
	// dir, and the agent-key-regression and agent-shutdown stories take
	// the run key from here to check what a stolen one can do.
	args := append(append([]string{}, a.Args...), "--key-file", key, "--workdir", filepath.Join(dir, "workspace"))
	cmd := exec.Command(l.Binary, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "TMPDIR=" + os.TempDir()}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout = agentLog(l.Logger, a)
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("start the agent: %w", err)
	}
	go func() { _ = cmd.Wait() }() // reaped; Remove finds it gone
	pid := cmd.Process.Pid
	st, _ := procStartTime(pid)
	h := fmt.Sprintf("%s%d:%d:%s", localAgentPrefix, pid, st, filepath.Base(dir))
	if err := os.WriteFile(filepath.Join(dir, "handle"), []byte(h), 0o600); err != nil {
		_ = l.Remove(ctx, h)
		return "", err
	}
	return h, nil
}

// Remove implements Launcher: SIGTERM to the agent (which kills its stage
// as it leaves), SIGKILL to what is left after a few seconds, and its
// directory goes.
func (l LocalLauncher) Remove(ctx context.Context, handle string) error {
	rest, ok := strings.CutPrefix(handle, localAgentPrefix)
	f := strings.Split(rest, ":")
	if !ok || len(f) != 3 || !validAgentDir(f[2]) {
		return fmt.Errorf("not a local agent handle: %q", handle)
	}
	stopGroup(ctx, f[0], f[1])
	return os.RemoveAll(filepath.Join(l.Dir, f[2]))
}

// Sweep implements Launcher over the agent directories under Dir.
func (l LocalLauncher) Sweep(ctx context.Context, keep func(string) bool) error {
	return sweepAgentDirs(ctx, l.Dir, keep, l.Remove)
}

// SandboxLauncher starts each agent inside the sandbox executor's
// bubblewrap, as a job whose workspace holds the agent's binary, key and
// workspace (`--agent-launcher sandbox`): what a container is to a
// Kubernetes Job, without a cluster. The agent needs the network to dial
// back, so its sandbox shares the host's.
type SandboxLauncher struct {
	Sandbox *Sandbox
	Binary  string
	Dir     string
	Logger  *logrus.Entry

	mu   sync.Mutex
	live map[string]Process
}

// Handles of sandboxed agents are "sandbox-agent:PID:STARTTIME:DIRNAME".
const sandboxAgentPrefix = "sandbox-agent:"

// Launch implements Launcher.
func (l *SandboxLauncher) Launch(ctx context.Context, a AgentLaunch) (string, error) {
	dir, err := agentDir(l.Dir)
	if err != nil {
		return "", err
	}
	ws, err := l.Sandbox.Prepare(ctx, WorkspaceSpec{
		Dir: dir, Image: a.Image, Network: true, Limits: a.Limits,
		Repo: a.Repo, Pipeline: a.Pipeline, Run: a.Run,
		Fill: func(ctx context.Context, d string) error {
			if err := os.WriteFile(filepath.Join(d, "key"), a.Key, 0o600); err != nil {
				return err
			}
			return copyBinary(l.Binary, filepath.Join(d, "refline"))
		},
		Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin"},
		// The disk limit counts the job's workspace, not the agent's binary.
		DiskDir: filepath.Join(dir, "workspace"),
	})
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("prepare the agent's sandbox: %w", err)
	}
	// The agent removes its key file once read: its stages, which run
	// as its uid, never find it.
	args := append(append([]string{}, a.Args...), "--key-file", SandboxDir+"/key", "--remove-key-file", "--workdir", SandboxDir+"/workspace")
	quoted := make([]string, len(args))
	for i, s := range args {
		quoted[i] = shellQuote(s)
	}
	p, err := ws.Start(context.Background(), Job{Name: "agent", Script: "exec " + SandboxDir + "/refline " + strings.Join(quoted, " "), Output: agentLog(l.Logger, a)})
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("start the agent's sandbox: %w", err)
	}
	go func() { _, _ = p.Wait() }()
	h := strings.Replace(p.Handle(), "sandbox:", sandboxAgentPrefix, 1) + ":" + filepath.Base(dir)
	if err := os.WriteFile(filepath.Join(dir, "handle"), []byte(h), 0o600); err != nil {
		p.Cancel()
		os.RemoveAll(dir)
		return "", err
	}
	l.mu.Lock()
	if l.live == nil {
		l.live = map[string]Process{}
	}
	l.live[h] = p
	l.mu.Unlock()
	return h, nil
}

// Remove implements Launcher: the agent gets SIGTERM and the grace, then
// its pid namespace goes; its directory too.
func (l *SandboxLauncher) Remove(ctx context.Context, handle string) error {
	rest, ok := strings.CutPrefix(handle, sandboxAgentPrefix)
	f := strings.Split(rest, ":")
	if !ok || len(f) != 3 || !validAgentDir(f[2]) {
		return fmt.Errorf("not a sandboxed agent handle: %q", handle)
	}
	l.mu.Lock()
	p := l.live[handle]
	delete(l.live, handle)
	l.mu.Unlock()
	if p != nil {
		p.Cancel()
	} else {
		killSandbox(f[0], f[1])
	}
	return os.RemoveAll(filepath.Join(l.Dir, f[2]))
}

// Sweep implements Launcher over the agent directories under Dir.
func (l *SandboxLauncher) Sweep(ctx context.Context, keep func(string) bool) error {
	return sweepAgentDirs(ctx, l.Dir, keep, l.Remove)
}

// agentDir makes a fresh directory for one agent under root.
func agentDir(root string) (string, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return "", fmt.Errorf("agents dir: %w", err)
	}
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	dir := filepath.Join(root, "agent-"+hex.EncodeToString(b))
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", fmt.Errorf("agent dir: %w", err)
	}
	return dir, nil
}

// validAgentDir keeps a handle's directory name inside the agents dir.
func validAgentDir(name string) bool {
	rest, ok := strings.CutPrefix(name, "agent-")
	if !ok || len(rest) != 16 {
		return false
	}
	_, err := hex.DecodeString(rest)
	return err == nil
}

// sweepAgentDirs removes every agent under root whose handle keep does not
// claim (a directory without a handle is a launch a crash cut short).
func sweepAgentDirs(ctx context.Context, root string, keep func(string) bool, remove func(context.Context, string) error) error {
	ents, err := os.ReadDir(root)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !validAgentDir(e.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, e.Name(), "handle"))
		h := strings.TrimSpace(string(b))
		switch {
		case err != nil:
			_ = os.RemoveAll(filepath.Join(root, e.Name()))
		case !keep(h):
			if err := remove(ctx, h); err != nil {
				return err
			}
		}
	}
	return nil
}

// stopGroup ends a local agent's process group, if its leader is still
// the same process: SIGTERM, then SIGKILL after a few seconds.
func stopGroup(ctx context.Context, pidText, startText string) {
	pid, err1 := strconv.Atoi(pidText)
	start, err2 := strconv.ParseUint(startText, 10, 64)
	if err1 != nil || err2 != nil || pid <= 1 {
		return
	}
	if st, err := procStartTime(pid); err != nil || st != start {
		return
	}
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if st, err := procStartTime(pid); err != nil || st != start || zombie(pid) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}

// zombie reports whether pid has exited but is not reaped yet.
func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] == 'Z'
}

// copyBinary puts a copy of the agent's binary at dst. Not a hard link:
// a root server gives the sandbox's files to the jobs' uid, which must
// not come to own the server's binary.
func copyBinary(src, dst string) error {
	src, err := filepath.EvalSymlinks(src)
	if err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// agentLog sends an agent's own messages (not its stages' output) to the
// server's log, up to agent.QuietLine.
func agentLog(log *logrus.Entry, a AgentLaunch) io.Writer {
	if log == nil {
		return io.Discard
	}
	return &logLines{log: log.WithFields(logrus.Fields{"repo": a.Repo, "pipeline": a.Pipeline, "run": a.Run})}
}

// logLines logs each write's lines until the agent says it is connected.
// What comes after is dropped unread: the agent's stdio is /dev/null by
// then, so only something else holding the pipe (a stage writing through
// /proc to an ancestor's descriptor, with secrets in its environment) can
// still write to it, and that must not reach the server's log unmasked.
type logLines struct {
	log  *logrus.Entry
	mu   sync.Mutex
	rest []byte // a line not yet ended
	done bool
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return len(p), nil
	}
	l.rest = append(l.rest, p...)
	for !l.done {
		i := bytes.IndexByte(l.rest, '\n')
		if i < 0 {
			break
		}
		line := string(l.rest[:i])
		l.rest = l.rest[i+1:]
		switch {
		case line == agent.QuietLine:
			l.done, l.rest = true, nil
		case line != "":
			l.log.Info(line)
		}
	}
	if len(l.rest) > 64<<10 {
		// No newline for that long is not the agent's.
		l.done, l.rest = true, nil
		l.log.Warn("agent output without line ends; no longer logged")
	}
	return len(p), nil
}
