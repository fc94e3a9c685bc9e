package hooks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/refline/refline/refs"
)

// Event is one hook callback, resolved to a repository and a session.
type Event struct {
	Hook    string // pre-receive, post-receive, reference-transaction
	Phase   string // for reference-transaction: prepared, committed, aborted
	Repo    string // repository name
	GitDir  string // absolute path of the bare repository
	Session Session
	Updates []Update
	// PushOptions are the client's `git push -o` values.
	PushOptions []string
	// Quarantine is the environment (KEY=VALUE) under which git can read
	// the objects of a push that pre-receive has not accepted yet.
	Quarantine []string
}

// Checker vets ref updates before git applies them (pre-receive, and the
// prepared phase of a transaction run by hand). A non-nil error refuses the
// whole update; its text is shown to whoever asked.
type Checker interface {
	Check(ctx context.Context, ev *Event, out io.Writer) error
}

// Reactor acts on ref updates once git has applied them (post-receive, and
// the committed phase of a transaction that was not a push).
type Reactor interface {
	React(ctx context.Context, ev *Event, out io.Writer)
}

// RepoResolver maps a bare repository's path to its name, refusing paths
// that are not refline repositories.
type RepoResolver interface {
	NameOf(gitDir string) (string, error)
}

// Config wires a Server.
type Config struct {
	Socket     string // unix socket path
	Repos      RepoResolver
	Sessions   *Sessions
	Logger     *logrus.Entry
	Registerer prometheus.Registerer
	// Rights decides who may move which deploy refs by pushing.
	Rights   DeployRights
	Checkers []Checker
	Reactors []Reactor
}

// Server answers hook callbacks over a unix socket.
type Server struct {
	cfg      Config
	ln       net.Listener
	latency  *prometheus.HistogramVec
	refusals *prometheus.CounterVec
	wg       sync.WaitGroup
}

// Listen opens the socket. The socket file is created with mode 0600 so
// that only the server's user can call back.
func Listen(cfg Config) (*Server, error) {
	if err := os.MkdirAll(filepath.Dir(cfg.Socket), 0o700); err != nil {
		return nil, fmt.Errorf("hook socket dir: %w", err)
	}
	_ = os.Remove(cfg.Socket) // a stale socket from a crashed instance
	ln, err := listenUnix(cfg.Socket)
	if err != nil {
		return nil, fmt.Errorf("listen on hook socket %s: %w", cfg.Socket, err)
	}
	if err := os.Chmod(cfg.Socket, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("hook socket mode: %w", err)
	}
	s := &Server{
		cfg: cfg,
		ln:  ln,
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "refline_hook_duration_seconds",
			Help:    "Time to answer a git hook callback, by hook.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"hook"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refline_hook_refusals_total",
			Help: "Ref updates refused by a hook, by hook.",
		}, []string{"hook"}),
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(s.latency, s.refusals)
	}
	return s, nil
}

// Serve answers callbacks until ctx is done, then waits for the ones in
// flight.
func (s *Server) Serve(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		s.ln.Close()
	}()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			s.wg.Wait()
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accept hook callback: %w", err)
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handleConn(ctx, conn)
		}()
	}
}

func (s *Server) handleConn(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	req, err := ReadRequest(conn)
	if err != nil {
		s.cfg.Logger.WithError(err).Warn("bad hook callback")
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	start := time.Now()

	// The hook process sends nothing after its request; a read returning
	// means it went away (the pusher disconnected and git killed it).
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		var b [1]byte
		_, _ = conn.Read(b[:])
		cancel()
	}()

	out := frameWriter{W: conn}
	code := s.handle(ctx, req, out)
	_ = writeExit(conn, code)
	s.latency.WithLabelValues(req.Hook).Observe(time.Since(start).Seconds())
	if code != 0 {
		s.refusals.WithLabelValues(req.Hook).Inc()
	}
}

func (s *Server) handle(ctx context.Context, req *Request, out io.Writer) int {
	log := s.cfg.Logger.WithField("hook", req.Hook)
	name, err := s.cfg.Repos.NameOf(req.Repo)
	if err != nil {
		fmt.Fprintf(out, "refline: %v\n", err)
		return 1
	}
	updates, err := ParseUpdates(req.Stdin)
	if err != nil {
		fmt.Fprintf(out, "refline: %v\n", err)
		return 1
	}
	sess := s.cfg.Sessions.Lookup(req.Token)
	ev := &Event{
		Hook:        req.Hook,
		Repo:        name,
		GitDir:      req.Repo,
		Session:     sess,
		Updates:     updates,
		PushOptions: req.PushOptions,
	}
	for k, v := range req.Quarantine {
		ev.Quarantine = append(ev.Quarantine, k+"="+v)
	}
	log = log.WithFields(logrus.Fields{"repo": name, "source": sess.Source, "user": sess.User, "session": sess.ID})

	switch req.Hook {
	case "pre-receive":
		if sess.Source != SourcePush {
			// receive-pack not started by this server (e.g. `git push`
			// to a local path on the server machine): treat like a push
			// with no rights beyond what a local operator has.
			return s.check(ctx, log, ev, out, s.checkLocal(ev.GitDir))
		}
		return s.check(ctx, log, ev, out, func(u Update) error { return CheckPush(sess, u, s.cfg.Rights) })
	case "post-receive":
		s.react(ctx, ev, out)
		return 0
	case "reference-transaction":
		if len(req.Args) > 0 {
			ev.Phase = req.Args[0]
		}
		switch {
		case sess.Source == SourcePush:
			// pre-receive has vetted the push and post-receive reacts to it.
			return 0
		case ev.Phase == "prepared" && sess.Source == SourceServer:
			return 0
		case ev.Phase == "prepared":
			return s.check(ctx, log, ev, out, s.checkLocal(ev.GitDir))
		case ev.Phase == "committed":
			s.react(ctx, ev, out)
		}
		return 0
	default:
		fmt.Fprintf(out, "refline: unknown hook %q\n", req.Hook)
		return 1
	}
}

// check runs the ref policy on every update, then the content checkers, and
// reports every problem rather than only the first.
func (s *Server) check(ctx context.Context, log *logrus.Entry, ev *Event, out io.Writer, policy func(Update) error) int {
	var problems []string
	for _, u := range ev.Updates {
		if err := policy(u); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if len(problems) == 0 {
		for _, c := range s.cfg.Checkers {
			if err := c.Check(ctx, ev, out); err != nil {
				problems = append(problems, strings.Split(strings.TrimRight(err.Error(), "\n"), "\n")...)
			}
		}
	}
	if len(problems) == 0 {
		return 0
	}
	for _, p := range problems {
		fmt.Fprintf(out, "refline: error: %s\n", p)
	}
	log.WithField("problems", problems).Info("ref update refused")
	return 1
}

func (s *Server) react(ctx context.Context, ev *Event, out io.Writer) {
	for _, r := range s.cfg.Reactors {
		r.React(ctx, ev, out)
	}
}

// checkLocal is CheckLocal with each ref's current value, read only where
// it can matter: housekeeping by hand (pack-refs, gc) hands the hook every
// ref of the repository, and most are neither deleted nor server-owned.
func (s *Server) checkLocal(gitDir string) func(Update) error {
	return func(u Update) error {
		current := ""
		if !u.Deletes() && refs.ServerOwned(u.Ref) {
			current = s.current(gitDir, u.Ref)
		}
		return CheckLocal(u, current)
	}
}

// current is a ref's value in hex, or "" when it does not exist.
func (s *Server) current(gitDir, ref string) string {
	h, err := refs.Resolve(gitDir, ref)
	if err != nil || h.IsZero() {
		return ""
	}
	return h.String()
}

// ErrServerDown is what a hook reports when no server answers on the socket.
var ErrServerDown = errors.New("the refline server is not running")
