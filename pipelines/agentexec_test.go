package pipelines

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/refline/refline/agent"
)

// pipeLauncher runs the real agent loop (agent.Serve) in process, joined
// to the executor's ServeAgent by a net.Pipe instead of SSH: the executor
// and the protocol without a server. The SSH side is the agent-* stories'.
type pipeLauncher struct {
	e   *AgentExecutor
	dir string

	mu      sync.Mutex
	pubs    map[string][]byte // handle → public key (wire form)
	removed []string
	served  chan error // ServeAgent's results
}

func (l *pipeLauncher) Launch(ctx context.Context, a AgentLaunch) (string, error) {
	signer, err := gossh.ParsePrivateKey(a.Key)
	if err != nil {
		return "", err
	}
	run := ""
	for i, s := range a.Args {
		if s == "--run" && i+1 < len(a.Args) {
			run = a.Args[i+1]
		}
	}
	h := "pipe-" + run
	pub := signer.PublicKey().Marshal()
	l.mu.Lock()
	l.pubs[h] = pub
	l.mu.Unlock()
	if got, ok := l.e.RunOfKey(pub); !ok || got != run {
		return "", os.ErrNotExist
	}
	agentEnd, serverEnd := net.Pipe()
	go func() {
		_ = agent.Serve(agent.Config{Run: run, WorkDir: filepath.Join(l.dir, run)}, agentEnd, agentEnd)
		agentEnd.Close()
	}()
	go func() {
		l.served <- l.e.ServeAgent(context.Background(), run, pub, serverEnd, func() { serverEnd.Close() })
	}()
	return h, nil
}

func (l *pipeLauncher) Remove(ctx context.Context, h string) error {
	l.mu.Lock()
	l.removed = append(l.removed, h)
	l.mu.Unlock()
	return nil
}

func (l *pipeLauncher) Sweep(ctx context.Context, keep func(string) bool) error { return nil }

func newPipeExecutor(t *testing.T) (*AgentExecutor, *pipeLauncher) {
	l := &pipeLauncher{dir: t.TempDir(), pubs: map[string][]byte{}, served: make(chan error, 10)}
	e := NewAgentExecutor(AgentConfig{Launcher: l, ConnectTimeout: 10 * time.Second, Grace: 200 * time.Millisecond})
	l.e = e
	return e, l
}

func TestAgentExecutorRun(t *testing.T) {
	e, l := newPipeExecutor(t)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "work")
	ws, err := e.Prepare(ctx, WorkspaceSpec{
		Dir: dir, Env: []string{"PATH=/usr/bin:/bin", "GREETING=hello"}, Repo: "app", Pipeline: "web", Run: 7,
		Fill: func(ctx context.Context, d string) error {
			if err := os.MkdirAll(filepath.Join(d, "vendor"), 0o755); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(d, "vendor", "in.txt"), []byte("input\n"), 0o644)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	run := func(ctx context.Context, script string) (int, string, Process) {
		var out syncBuffer
		p, err := ws.Start(ctx, Job{Name: "s", Script: script, Output: &out})
		if err != nil {
			t.Fatal(err)
		}
		code, err := p.Wait()
		if err != nil {
			t.Fatalf("%s: %v", script, err)
		}
		return code, out.String(), p
	}
	code, out, p := run(ctx, `cat vendor/in.txt; echo "$GREETING" >&2; echo made > made.txt; rm vendor/in.txt; exit 3`)
	if code != 3 || out != "input\nhello\n" {
		t.Fatalf("code %d, output %q", code, out)
	}
	if h := p.Handle(); !strings.HasPrefix(h, "agent:pipe-") {
		t.Fatalf("handle %q", h)
	}

	// cancel: SIGTERM to the stage's group, background child included
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	code, _, _ = run(cctx, "sleep 1000 & wait")
	if code != 128+15 || time.Since(start) > 5*time.Second {
		t.Fatalf("cancelled stage: code %d after %s", code, time.Since(start))
	}
	// a stage that ignores SIGTERM is killed after the grace
	cctx, cancel = context.WithCancel(ctx)
	time.AfterFunc(100*time.Millisecond, cancel)
	code, _, _ = run(cctx, "trap '' TERM; sleep 1000 & wait; wait")
	if code != 128+9 {
		t.Fatalf("stubborn stage: code %d", code)
	}

	got, err := ws.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(got, "made.txt")); err != nil || string(b) != "made\n" {
		t.Fatalf("made.txt: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(got, "vendor", "in.txt")); err == nil {
		t.Fatal("a file the stages removed came back")
	}
	if err := ws.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-l.served; err != nil {
		t.Fatalf("ServeAgent: %v", err)
	}
	l.mu.Lock()
	removed, pubs := append([]string(nil), l.removed...), l.pubs
	l.mu.Unlock()
	if len(removed) != 1 || !strings.HasPrefix(removed[0], "pipe-") {
		t.Fatalf("removed %v", removed)
	}
	if _, ok := e.RunOfKey(pubs[removed[0]]); ok {
		t.Fatal("the run key outlived its run")
	}
	if !e.RemoveLeftover(ctx, "agent:pipe-x") || e.RemoveLeftover(ctx, "local:1:2") {
		t.Fatal("RemoveLeftover takes agent handles only")
	}
}

// TestAgentExecutorClose: stopping the server revokes every live run's
// key and ends its agent's session; a later Prepare is refused.
func TestAgentExecutorClose(t *testing.T) {
	e, l := newPipeExecutor(t)
	ctx := context.Background()
	ws, err := e.Prepare(ctx, WorkspaceSpec{Dir: filepath.Join(t.TempDir(), "w")})
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	p, err := ws.Start(ctx, Job{Script: "sleep 1000", Output: &out})
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	if code, err := p.Wait(); err == nil {
		t.Fatalf("a stage outlived its agent's session: code %d", code)
	}
	if err := <-l.served; err != nil {
		t.Fatalf("ServeAgent after revoke: %v", err)
	}
	for h, pub := range l.pubs {
		if _, ok := e.RunOfKey(pub); ok {
			t.Fatalf("key of %s still known", h)
		}
	}
	if _, err := e.Prepare(ctx, WorkspaceSpec{Dir: filepath.Join(t.TempDir(), "w2")}); err == nil {
		t.Fatal("Prepare after Close")
	}
	_ = ws.Close()
}

// TestAgentExecutorCollectBounded: a workspace sent back past MaxWorkspace
// is refused, and the agent's connection is cut.
func TestAgentExecutorCollectBounded(t *testing.T) {
	e, l := newPipeExecutor(t)
	e.cfg.MaxWorkspace = 1000
	ctx := context.Background()
	ws, err := e.Prepare(ctx, WorkspaceSpec{Dir: filepath.Join(t.TempDir(), "w"), Env: []string{"PATH=/usr/bin:/bin"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	var out syncBuffer
	p, err := ws.Start(ctx, Job{Script: "head -c 5000 /dev/zero > big", Output: &out})
	if err != nil {
		t.Fatal(err)
	}
	if code, err := p.Wait(); code != 0 || err != nil {
		t.Fatalf("stage: %d %v %s", code, err, out.String())
	}
	if _, err := ws.Collect(ctx); err == nil || !errors.Is(err, agent.ErrTreeTooLarge) {
		t.Fatalf("collect: %v", err)
	}
	select {
	case <-l.served:
	case <-time.After(10 * time.Second):
		t.Fatal("the agent's session outlived a refused workspace")
	}
}
