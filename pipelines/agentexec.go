package pipelines

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	gossh "golang.org/x/crypto/ssh"

	"github.com/refline/refline/agent"
)

// AgentConfig configures the agent executor.
type AgentConfig struct {
	// Launcher starts and removes each run's agent.
	Launcher Launcher
	// Instance names this server to the launcher (labels, sweeps).
	Instance string
	// Server returns the host:port agents dial (known once the SSH
	// server listens).
	Server func() string
	// HostKey is the server's host public key, authorized_keys format.
	HostKey string
	// ConnectTimeout bounds how long Prepare waits for the agent to
	// connect (image pulls and pod scheduling included); default 2m.
	ConnectTimeout time.Duration
	// Grace is how long a cancelled stage has between SIGTERM and SIGKILL.
	Grace time.Duration
	// MaxWorkspace bounds the bytes of files an agent may send back
	// (0: no bound).
	MaxWorkspace int64
	Logger       *logrus.Entry
}

// AgentExecutor runs each run through a `refline agent` that a Launcher
// starts elsewhere and that dials back over SSH (see package agent for
// the protocol). For every run it makes an ed25519 key that exists only in
// memory and is recognised only while the run lives: the SSH server asks
// RunOfKey who a key is and hands an "agent RUNID" session to ServeAgent.
type AgentExecutor struct {
	cfg AgentConfig
	log *logrus.Entry

	mu     sync.Mutex
	runs   map[string]*agentRun // by run id
	keys   map[string]*agentRun // by the public key's wire form
	closed bool
}

// NewAgentExecutor builds an agent executor.
func NewAgentExecutor(cfg AgentConfig) *AgentExecutor {
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 2 * time.Minute
	}
	if cfg.Grace == 0 {
		cfg.Grace = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = logrus.NewEntry(logrus.New())
	}
	return &AgentExecutor{cfg: cfg, log: cfg.Logger, runs: map[string]*agentRun{}, keys: map[string]*agentRun{}}
}

// agentRun is one live run's credential and connection.
type agentRun struct {
	id     string
	pub    string // wire form of the public key
	handle string // the launcher's

	bye      atomic.Bool   // the server told the agent to leave
	attached chan struct{} // closed when an agent session said hello
	revoked  chan struct{} // closed when the credential is revoked
	once     sync.Once

	mu      sync.Mutex
	conn    *agent.Conn
	hangup  func()     // closes the agent's SSH connection
	ready   chan error // workspace laid out
	cur     *agentProc // the running stage
	tar     *io.PipeWriter
	dead    chan struct{} // closed when the connection ended
	deadErr error
}

// RunOfKey says which live run a per-run key belongs to; the SSH server
// admits such a key for nothing but that run's agent session.
func (e *AgentExecutor) RunOfKey(key []byte) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, ok := e.keys[string(key)]
	if !ok {
		return "", false
	}
	return r.id, true
}

// ServeAgent speaks the agent protocol for run over rw (an SSH session
// authenticated with key) until the run ends or the connection does.
// hangup closes the connection: revoking the run calls it.
func (e *AgentExecutor) ServeAgent(ctx context.Context, run string, key []byte, rw io.ReadWriter, hangup func()) error {
	e.mu.Lock()
	r, ok := e.runs[run]
	e.mu.Unlock()
	if !ok || r.pub != string(key) {
		return fmt.Errorf("no live run %q for this key", run)
	}
	c := agent.NewConn(rw, rw)
	typ, p, err := c.Read()
	if err != nil {
		return fmt.Errorf("agent hello: %w", err)
	}
	var h agent.Hello
	if typ != agent.FrameHello || agent.Decode(typ, p, &h) != nil || h.Run != run {
		_ = c.WriteJSON(agent.FrameError, agent.Error{Message: "expected a hello for this run"})
		return errors.New("agent did not say hello for its run")
	}
	if h.Version != agent.Version {
		msg := fmt.Sprintf("this server speaks agent protocol %d, the agent %d: use the refline binary of the server's version as the agent", agent.Version, h.Version)
		_ = c.WriteJSON(agent.FrameError, agent.Error{Message: msg})
		return errors.New(msg)
	}
	r.mu.Lock()
	if r.conn != nil {
		r.mu.Unlock()
		_ = c.WriteJSON(agent.FrameError, agent.Error{Message: "this run's agent is already connected"})
		return errors.New("a second agent session for one run")
	}
	r.conn, r.hangup = c, hangup
	r.mu.Unlock()
	select {
	case <-r.revoked:
		hangup()
		return errors.New("run ended")
	default:
	}
	close(r.attached)
	stop := context.AfterFunc(ctx, hangup)
	defer stop()
	err = r.read(c)
	r.mu.Lock()
	r.deadErr = err
	cur, tar := r.cur, r.tar
	r.mu.Unlock()
	close(r.dead)
	if cur != nil {
		cur.finish(-1, fmt.Errorf("the agent's connection ended: %w", err))
	}
	if tar != nil {
		tar.CloseWithError(fmt.Errorf("the agent's connection ended: %w", err))
	}
	select {
	case <-r.revoked:
		return nil
	default:
	}
	if r.bye.Load() && errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// read dispatches the agent's frames until the connection ends.
func (r *agentRun) read(c *agent.Conn) error {
	for {
		typ, p, err := c.Read()
		if err != nil {
			return err
		}
		switch typ {
		case agent.FrameReady:
			r.ready <- nil
		case agent.FrameOutput:
			r.mu.Lock()
			cur := r.cur
			r.mu.Unlock()
			if cur != nil {
				_, _ = cur.out.Write(p)
			}
		case agent.FrameExit:
			var x agent.Exit
			if err := agent.Decode(typ, p, &x); err != nil {
				return err
			}
			r.mu.Lock()
			cur := r.cur
			r.cur = nil
			r.mu.Unlock()
			if cur != nil {
				var err error
				if x.Error != "" {
					err = errors.New(x.Error)
				}
				cur.finish(x.Code, err)
			}
		case agent.FrameTar, agent.FrameTarEnd:
			r.mu.Lock()
			tar := r.tar
			if typ == agent.FrameTarEnd {
				r.tar = nil
			}
			r.mu.Unlock()
			if tar == nil {
				return fmt.Errorf("agent sent workspace data unasked")
			}
			if typ == agent.FrameTarEnd {
				tar.Close()
			} else if _, err := tar.Write(p); err != nil {
				// The receiver gave up (too large, bad entry): the
				// rest of the stream is not wanted.
				tar.CloseWithError(err)
			}
		case agent.FrameError:
			var m agent.Error
			_ = agent.Decode(typ, p, &m)
			select {
			case r.ready <- fmt.Errorf("the agent failed: %s", m.Message):
			default:
			}
			return fmt.Errorf("the agent failed: %s", m.Message)
		default:
			return fmt.Errorf("agent protocol: unexpected frame %q", typ)
		}
	}
}

// revoke forgets the run's key and ends its session, if any.
func (e *AgentExecutor) revoke(r *agentRun) {
	e.mu.Lock()
	delete(e.runs, r.id)
	delete(e.keys, r.pub)
	e.mu.Unlock()
	r.once.Do(func() {
		close(r.revoked)
		r.mu.Lock()
		hangup := r.hangup
		r.mu.Unlock()
		if hangup != nil {
			hangup()
		}
	})
}

// Close revokes every run's key and ends their sessions (server stop).
func (e *AgentExecutor) Close() {
	e.mu.Lock()
	e.closed = true
	var all []*agentRun
	for _, r := range e.runs {
		all = append(all, r)
	}
	e.mu.Unlock()
	for _, r := range all {
		e.revoke(r)
	}
}

// Sweep removes every agent a previous instance of this server launched:
// none of them can be live, since their keys died with it.
func (e *AgentExecutor) Sweep(ctx context.Context) error {
	e.mu.Lock()
	live := map[string]bool{}
	for _, r := range e.runs {
		live[r.handle] = true
	}
	e.mu.Unlock()
	return e.cfg.Launcher.Sweep(ctx, func(h string) bool { return live[h] })
}

// RemoveLeftover removes the agent a crashed instance's handle names
// ("agent:LAUNCHER-HANDLE"); false when the handle is not an agent's.
func (e *AgentExecutor) RemoveLeftover(ctx context.Context, handle string) bool {
	h, ok := strings.CutPrefix(handle, "agent:")
	if !ok {
		return false
	}
	if err := e.cfg.Launcher.Remove(ctx, h); err != nil {
		e.log.WithError(err).WithField("handle", h).Warn("remove a leftover agent")
		return false
	}
	return true
}

// newRunKey makes a run's ed25519 key: the private half as OpenSSH PEM,
// the public half in wire form.
func newRunKey() (priv []byte, pub string, err error) {
	pk, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, "", err
	}
	block, err := gossh.MarshalPrivateKey(sk, "refline run")
	if err != nil {
		return nil, "", err
	}
	spk, err := gossh.NewPublicKey(pk)
	if err != nil {
		return nil, "", err
	}
	return pem.EncodeToMemory(block), string(spk.Marshal()), nil
}

// deadlineSlack is added to a run's stage timeouts for the launcher's
// deadline: connecting, the workspace's way in and out, waiting for slots.
const deadlineSlack = 10 * time.Minute

// Prepare implements Executor: it makes the run's key, launches the
// agent, fills the workspace on the host meanwhile, waits (at most
// ConnectTimeout) for the agent to connect and ships it the plan and the
// workspace.
func (e *AgentExecutor) Prepare(ctx context.Context, spec WorkspaceSpec) (Workspace, error) {
	priv, pub, err := newRunKey()
	if err != nil {
		return nil, fmt.Errorf("run key: %w", err)
	}
	idb := make([]byte, 12)
	if _, err := rand.Read(idb); err != nil {
		return nil, err
	}
	r := &agentRun{id: hex.EncodeToString(idb), pub: pub, attached: make(chan struct{}), revoked: make(chan struct{}),
		ready: make(chan error, 1), dead: make(chan struct{})}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, errors.New("the server is stopping")
	}
	e.runs[r.id], e.keys[pub] = r, r
	e.mu.Unlock()
	w := &agentWorkspace{e: e, r: r, spec: spec, log: e.log.WithFields(logrus.Fields{
		"repo": spec.Repo, "pipeline": spec.Pipeline, "run": spec.Run, "agent": r.id})}
	ok := false
	defer func() {
		if !ok {
			w.Close()
		}
	}()
	server := ""
	if e.cfg.Server != nil {
		server = e.cfg.Server()
	}
	deadline := time.Duration(0)
	if spec.Deadline > 0 {
		deadline = spec.Deadline + e.cfg.ConnectTimeout + deadlineSlack
	}
	handle, err := e.cfg.Launcher.Launch(ctx, AgentLaunch{
		Instance: e.cfg.Instance, Repo: spec.Repo, Pipeline: spec.Pipeline, Run: spec.Run,
		Image: spec.Image, Server: server, HostKey: e.cfg.HostKey, Key: priv,
		Args:     []string{"agent", "--server", server, "--host-key", e.cfg.HostKey, "--run", r.id},
		Deadline: deadline, Limits: spec.Limits, Network: spec.Network,
	})
	if err != nil {
		return nil, fmt.Errorf("launch the agent: %w", err)
	}
	e.mu.Lock()
	r.handle = handle
	e.mu.Unlock()
	if err := makeWorkspace(ctx, spec); err != nil {
		return nil, err
	}
	t := time.NewTimer(e.cfg.ConnectTimeout)
	defer t.Stop()
	select {
	case <-r.attached:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
		return nil, fmt.Errorf("the agent did not connect within %s (launched as %s)", e.cfg.ConnectTimeout, handle)
	}
	if err := w.ship(ctx); err != nil {
		return nil, err
	}
	ok = true
	w.log.Debug("agent ready")
	return w, nil
}

type agentWorkspace struct {
	e      *AgentExecutor
	r      *agentRun
	spec   WorkspaceSpec
	log    *logrus.Entry
	closed sync.Once
}

// conn returns the agent's connection, or why there is none any more.
func (w *agentWorkspace) conn() (*agent.Conn, error) {
	select {
	case <-w.r.dead:
		return nil, fmt.Errorf("the agent's connection ended: %w", w.r.deadErr)
	default:
	}
	w.r.mu.Lock()
	defer w.r.mu.Unlock()
	return w.r.conn, nil
}

// ship sends the plan and the workspace and waits for the agent to lay
// it out.
func (w *agentWorkspace) ship(ctx context.Context) error {
	c, err := w.conn()
	if err != nil {
		return err
	}
	plan := agent.Plan{Version: agent.Version, Env: w.spec.Env, DeadlineMS: w.spec.Deadline.Milliseconds()}
	if err := c.WriteJSON(agent.FramePlan, plan); err != nil {
		return fmt.Errorf("send the plan: %w", err)
	}
	if err := agent.SendTree(c.Writer(agent.FrameTar), w.spec.Dir); err != nil {
		return err
	}
	if err := c.Write(agent.FrameTarEnd, nil); err != nil {
		return fmt.Errorf("send the workspace: %w", err)
	}
	select {
	case err := <-w.r.ready:
		return err
	case <-w.r.dead:
		return fmt.Errorf("the agent's connection ended: %w", w.r.deadErr)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Start implements Workspace: the stage runs in the agent; its timeout
// is the context's deadline.
func (w *agentWorkspace) Start(ctx context.Context, job Job) (Process, error) {
	c, err := w.conn()
	if err != nil {
		return nil, err
	}
	p := &agentProc{w: w, out: job.Output, done: make(chan struct{})}
	w.r.mu.Lock()
	if w.r.cur != nil {
		w.r.mu.Unlock()
		return nil, errors.New("a stage is already running in this run's agent")
	}
	w.r.cur = p
	w.r.mu.Unlock()
	st := agent.Start{Name: job.Name, Script: job.Script}
	if d, ok := ctx.Deadline(); ok {
		st.TimeoutMS = max(time.Until(d).Milliseconds(), 1)
	}
	if err := c.WriteJSON(agent.FrameStart, st); err != nil {
		w.r.mu.Lock()
		w.r.cur = nil
		w.r.mu.Unlock()
		return nil, fmt.Errorf("start stage %s in the agent: %w", job.Name, err)
	}
	go func() {
		select {
		case <-ctx.Done():
			p.Cancel()
		case <-p.done:
		}
	}()
	return p, nil
}

// Collect implements Workspace: the agent sends the workspace back and it
// replaces the host directory's contents, received as from a stranger
// (agent.ReceiveTree); the artifact rules then apply as for local runs.
func (w *agentWorkspace) Collect(ctx context.Context) (string, error) {
	c, err := w.conn()
	if err != nil {
		return "", err
	}
	if err := os.RemoveAll(w.spec.Dir); err != nil {
		return "", fmt.Errorf("clear the workspace: %w", err)
	}
	if err := os.MkdirAll(w.spec.Dir, 0o755); err != nil {
		return "", fmt.Errorf("clear the workspace: %w", err)
	}
	pr, pw := io.Pipe()
	w.r.mu.Lock()
	w.r.tar = pw
	w.r.mu.Unlock()
	if err := c.Write(agent.FrameGet, []byte("{}")); err != nil {
		return "", fmt.Errorf("ask the agent for the workspace: %w", err)
	}
	done := make(chan error, 1)
	go func() {
		err := agent.ReceiveTree(pr, w.spec.Dir, w.e.cfg.MaxWorkspace)
		pr.CloseWithError(errors.New("workspace received"))
		done <- err
	}()
	select {
	case err = <-done:
	case <-ctx.Done():
		w.hangup()
		err = <-done
	}
	if err != nil {
		w.hangup()
		return "", fmt.Errorf("collect the workspace from the agent: %w", err)
	}
	return w.spec.Dir, nil
}

func (w *agentWorkspace) hangup() {
	w.r.mu.Lock()
	h := w.r.hangup
	w.r.mu.Unlock()
	if h != nil {
		h()
	}
}

// Close implements Workspace: the agent is told bye, its key revoked, its
// session closed, and the launcher removes it.
func (w *agentWorkspace) Close() error {
	var err error
	w.closed.Do(func() {
		if c, cerr := w.conn(); cerr == nil && c != nil {
			// A told agent leaves by itself (and says nothing of a
			// lost connection); one that does not is cut off below.
			w.r.bye.Store(true)
			if c.Write(agent.FrameBye, []byte("{}")) == nil {
				select {
				case <-w.r.dead:
				case <-time.After(2 * time.Second):
				}
			}
		}
		w.e.revoke(w.r)
		w.e.mu.Lock()
		h := w.r.handle
		w.e.mu.Unlock()
		if h == "" {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err = w.e.cfg.Launcher.Remove(ctx, h); err != nil {
			w.log.WithError(err).Warn("remove the agent")
		}
	})
	return err
}

// agentProc is a stage running in the agent.
type agentProc struct {
	w    *agentWorkspace
	out  io.Writer
	once sync.Once
	done chan struct{}
	code int
	err  error
}

func (p *agentProc) finish(code int, err error) {
	p.once.Do(func() {
		p.code, p.err = code, err
		close(p.done)
	})
}

func (p *agentProc) Wait() (int, error) {
	<-p.done
	return p.code, p.err
}

// Cancel asks the agent to stop the stage; an agent that does not answer
// within the grace and a little more loses its connection, which ends
// the stage too.
func (p *agentProc) Cancel() {
	select {
	case <-p.done:
		return
	default:
	}
	grace := p.w.e.cfg.Grace
	if c, err := p.w.conn(); err == nil {
		_ = c.WriteJSON(agent.FrameCancel, agent.Cancel{GraceMS: grace.Milliseconds()})
	}
	select {
	case <-p.done:
	case <-time.After(grace + 5*time.Second):
		p.w.hangup()
		p.finish(137, nil)
	}
}

// Handle is "agent:" and the launcher's handle: what a restarted server
// gives the launcher to remove.
func (p *agentProc) Handle() string {
	p.w.e.mu.Lock()
	defer p.w.e.mu.Unlock()
	return "agent:" + p.w.r.handle
}
