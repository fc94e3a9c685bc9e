package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// Config is what `refline agent` is given.
type Config struct {
	// Server is host:port of the refline SSH server.
	Server string
	// HostKey is the server's host public key (authorized_keys format);
	// a server that does not prove it holds this key is refused.
	HostKey string
	// Key is the per-run private key (OpenSSH PEM).
	Key []byte
	// Run is the run id the key is for.
	Run string
	// WorkDir is where the workspace is laid out and the stages run.
	WorkDir string
	// DialTimeout bounds reaching the server (retried until then).
	DialTimeout time.Duration
	// Log receives the agent's own messages (not the stages' output)
	// until it is connected.
	Log io.Writer
	// Detach, when set, has Run end Log with QuietLine and point the
	// process's stdio at a drained pipe once connected, before the hello (and so
	// before any secret arrives): a stage, which runs as the agent's user,
	// then finds nothing of the agent's own output to write to. `refline
	// agent` sets it; tests running Run in-process do not.
	Detach bool
}

// KeepAlive is how often the agent shows an idle connection is alive.
const KeepAlive = 30 * time.Second

// Run connects to the server and serves the run until the server says
// bye (nil), or the connection or the run fails.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = time.Minute
	}
	signer, err := gossh.ParsePrivateKey(cfg.Key)
	if err != nil {
		return fmt.Errorf("agent key: %w", err)
	}
	hk, _, _, _, err := gossh.ParseAuthorizedKey([]byte(cfg.HostKey))
	if err != nil {
		return fmt.Errorf("server host key: %w", err)
	}
	if err := os.MkdirAll(cfg.WorkDir, 0o755); err != nil {
		return fmt.Errorf("workspace: %w", err)
	}
	client, err := dial(ctx, cfg, &gossh.ClientConfig{
		User:            "agent",
		Auth:            []gossh.AuthMethod{gossh.PublicKeys(signer)},
		HostKeyCallback: gossh.FixedHostKey(hk),
		Timeout:         10 * time.Second,
	})
	if err != nil {
		return err
	}
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		return fmt.Errorf("open session: %w", err)
	}
	defer sess.Close()
	in, err := sess.StdinPipe()
	if err != nil {
		return err
	}
	out, err := sess.StdoutPipe()
	if err != nil {
		return err
	}
	if err := sess.Start("agent " + cfg.Run); err != nil {
		return fmt.Errorf("start agent session: %w", err)
	}
	if cfg.Detach {
		fmt.Fprintln(cfg.Log, QuietLine)
		if err := DetachStdio(); err != nil {
			return err
		}
	}
	// From here on the agent's diagnostics travel over the protocol ('!'
	// when it gives up, 'O' for a note about the running stage) or
	// nowhere.
	cfg.Log = io.Discard
	// The session ends the run: cancelling ctx closes it.
	stop := context.AfterFunc(ctx, func() { client.Close() })
	defer stop()
	// A stage may print nothing for longer than the server's idle
	// timeout; keepalives are traffic.
	kctx, kstop := context.WithCancel(ctx)
	defer kstop()
	go func() {
		t := time.NewTicker(KeepAlive)
		defer t.Stop()
		for {
			select {
			case <-kctx.Done():
				return
			case <-t.C:
				_, _, _ = client.SendRequest("keepalive@refline", true, nil)
			}
		}
	}()
	return Serve(cfg, out, in)
}

// Serve speaks the agent's side of the protocol over r and w (an SSH
// session's stdout and stdin in Run) until the server says bye (nil) or
// the stream or the run fails. cfg.Run and cfg.WorkDir are used.
func Serve(cfg Config, r io.Reader, w io.Writer) error {
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if err := os.MkdirAll(cfg.WorkDir, 0o755); err != nil {
		return fmt.Errorf("workspace: %w", err)
	}
	a := &runner{cfg: cfg, c: NewConn(r, w)}
	return a.serve()
}

// dial reaches the server, retrying refused and timed-out connections (a
// pod may start before its network does) until DialTimeout; an
// authentication or host key failure is final.
func dial(ctx context.Context, cfg Config, cc *gossh.ClientConfig) (*gossh.Client, error) {
	deadline := time.Now().Add(cfg.DialTimeout)
	wait := 100 * time.Millisecond
	for {
		d := net.Dialer{Timeout: cc.Timeout}
		nc, err := d.DialContext(ctx, "tcp", cfg.Server)
		if err == nil {
			c, chans, reqs, err := gossh.NewClientConn(nc, cfg.Server, cc)
			if err != nil {
				nc.Close()
				return nil, fmt.Errorf("ssh to %s: %w", cfg.Server, err)
			}
			return gossh.NewClient(c, chans, reqs), nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return nil, fmt.Errorf("reach %s: %w", cfg.Server, err)
		}
		fmt.Fprintf(cfg.Log, "refline agent: %v; retrying\n", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, 5*time.Second)
	}
}

// runner is the agent's side of one run.
type runner struct {
	cfg  Config
	c    *Conn
	env  []string
	mu   sync.Mutex
	cur  *stage // the running stage, or nil
	tarW *io.PipeWriter
	tarD chan error
}

type stage struct {
	pgid int
	done chan struct{}
}

func (a *runner) fail(err error) error {
	_ = a.c.WriteJSON(FrameError, Error{Message: err.Error()})
	return err
}

// serve reads the server's frames until bye. Stages run in their own
// goroutine so that a cancel can arrive while one runs.
func (a *runner) serve() error {
	defer a.killStage()
	if err := a.c.WriteJSON(FrameHello, Hello{Version: Version, Run: a.cfg.Run}); err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	for {
		typ, p, err := a.c.Read()
		if err != nil {
			return fmt.Errorf("connection to the server ended: %w", err)
		}
		switch typ {
		case FramePlan:
			var pl Plan
			if err := Decode(typ, p, &pl); err != nil {
				return a.fail(err)
			}
			if pl.Version != Version {
				return a.fail(fmt.Errorf("the server speaks agent protocol %d, this agent %d", pl.Version, Version))
			}
			a.env = jobEnv(pl.Env)
			pr, pw := io.Pipe()
			a.tarW, a.tarD = pw, make(chan error, 1)
			go func() {
				err := ReceiveTree(pr, a.cfg.WorkDir, 0)
				_, _ = io.Copy(io.Discard, pr)
				a.tarD <- err
			}()
		case FrameTar:
			if a.tarW == nil {
				return a.fail(errors.New("workspace data before the plan"))
			}
			if _, err := a.tarW.Write(p); err != nil {
				return a.fail(err)
			}
		case FrameTarEnd:
			if a.tarW == nil {
				return a.fail(errors.New("workspace end before the plan"))
			}
			a.tarW.Close()
			if err := <-a.tarD; err != nil {
				return a.fail(err)
			}
			a.tarW = nil
			if err := a.c.WriteJSON(FrameReady, struct{}{}); err != nil {
				return err
			}
		case FrameStart:
			var st Start
			if err := Decode(typ, p, &st); err != nil {
				return a.fail(err)
			}
			if err := a.start(st); err != nil {
				return a.fail(err)
			}
		case FrameCancel:
			var c Cancel
			if err := Decode(typ, p, &c); err != nil {
				return a.fail(err)
			}
			go a.cancel(time.Duration(c.GraceMS) * time.Millisecond)
		case FrameGet:
			a.mu.Lock()
			busy := a.cur != nil
			a.mu.Unlock()
			if busy {
				return a.fail(errors.New("workspace asked for while a stage runs"))
			}
			if err := SendTree(a.c.Writer(FrameTar), a.cfg.WorkDir); err != nil {
				return a.fail(err)
			}
			if err := a.c.Write(FrameTarEnd, nil); err != nil {
				return err
			}
		case FrameBye:
			return nil
		case FrameError:
			var e Error
			_ = Decode(typ, p, &e)
			return fmt.Errorf("the server ended the run: %s", e.Message)
		default:
			return a.fail(fmt.Errorf("unknown frame %q", typ))
		}
	}
}

// jobEnv is the plan's environment with the agent's own TMPDIR: the
// server's does not exist here.
func jobEnv(plan []string) []string {
	env := make([]string, 0, len(plan)+1)
	for _, e := range plan {
		if !strings.HasPrefix(e, "TMPDIR=") {
			env = append(env, e)
		}
	}
	return append(env, "TMPDIR="+os.TempDir())
}

// start runs one stage; its exit frame follows its last output frame.
func (a *runner) start(st Start) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cur != nil {
		return errors.New("a stage was started while another runs")
	}
	cmd := exec.Command("/bin/sh", "-e", "-c", st.Script)
	cmd.Dir = a.cfg.WorkDir
	cmd.Env = a.env
	out := a.c.Writer(FrameOutput)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Background children may hold the output open after the script
	// ends; they are killed with the group below.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return a.c.WriteJSON(FrameExit, Exit{Code: -1, Error: fmt.Sprintf("start stage %s: %v", st.Name, err)})
	}
	s := &stage{pgid: cmd.Process.Pid, done: make(chan struct{})}
	a.cur = s
	go func() {
		var backstop <-chan time.Time
		if st.TimeoutMS > 0 {
			t := time.NewTimer(time.Duration(st.TimeoutMS)*time.Millisecond + StageBackstop)
			defer t.Stop()
			backstop = t.C
		}
		select {
		case <-backstop:
			// The note goes with the stage's output: the agent's own
			// stderr is /dev/null by now.
			fmt.Fprintf(out, "\nrefline agent: stage %s outlived its timeout by %s; killing it\n", st.Name, StageBackstop)
			_ = syscall.Kill(-s.pgid, syscall.SIGKILL)
		case <-s.done:
		}
	}()
	go func() {
		err := cmd.Wait()
		_ = syscall.Kill(-s.pgid, syscall.SIGKILL)
		code, msg := exitCode(cmd, err)
		a.mu.Lock()
		a.cur = nil
		a.mu.Unlock()
		close(s.done)
		_ = a.c.WriteJSON(FrameExit, Exit{Code: code, Error: msg})
	}()
	return nil
}

// exitCode reports a stage's end the way a shell does (128+N for a
// signal).
func exitCode(cmd *exec.Cmd, err error) (int, string) {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, ""
	case errors.As(err, &ee):
		if c := ee.ExitCode(); c >= 0 {
			return c, ""
		}
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), ""
		}
		return -1, err.Error()
	case errors.Is(err, exec.ErrWaitDelay):
		return cmd.ProcessState.ExitCode(), ""
	default:
		return -1, err.Error()
	}
}

// cancel stops the running stage: SIGTERM to its group, SIGKILL after
// grace.
func (a *runner) cancel(grace time.Duration) {
	a.mu.Lock()
	s := a.cur
	a.mu.Unlock()
	if s == nil {
		return
	}
	_ = syscall.Kill(-s.pgid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(grace):
		_ = syscall.Kill(-s.pgid, syscall.SIGKILL)
	}
}

// killStage kills what runs when the agent leaves.
func (a *runner) killStage() {
	a.mu.Lock()
	s := a.cur
	a.mu.Unlock()
	if s != nil {
		_ = syscall.Kill(-s.pgid, syscall.SIGKILL)
		<-s.done
	}
}
