// Package gitserver speaks SSH: it authenticates users by public key, runs
// the git binary for the wire protocol, and answers the SSH commands.
package gitserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gliderlabs/ssh"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	gossh "golang.org/x/crypto/ssh"

	"github.com/refline/refline/access"
	"github.com/refline/refline/gitcmd"
	"github.com/refline/refline/hooks"
)

// KeyInfo is what the `keys` command prints.
type KeyInfo interface {
	AgeRecipients() []string
	AllowedSignersLine() string
}

// Config wires a Server.
type Config struct {
	Listen   string
	HostKey  gossh.Signer
	Repos    *Store
	Access   *access.Store
	Sessions *hooks.Sessions
	Keys     KeyInfo
	// Hostname is how users reach the server, for the messages that
	// print an ssh command line.
	Hostname   string
	Logger     *logrus.Entry
	Registerer prometheus.Registerer
	// The parts of the pipeline runner the commands use; each one set adds
	// its commands, and RepoRemover forgets a deleted repository's runs.
	PipelineLister PipelineLister
	RunReader      RunReader
	RunControl     RunControl
	Deploys        Deploys
	RepoRemover    RepoRemover
	// LogsHint formats the command that follows a run's log.
	LogsHint func(repo, pipeline string, n int) string
	// GitTimeout bounds how long a git child may outlive its client after a
	// disconnect before it is terminated.
	GitGrace time.Duration
	// ImagesDir, when set, adds `image` (DATA/images).
	ImagesDir string
	// Webhooks, when set, adds `webhook` (SPEC §10).
	Webhooks Webhooks
	// Limits bound connections, sessions and pushes; zero fields take
	// DefaultLimits.
	Limits Limits
	// Logins and Tokens, when both set, add `login` and `token` (SPEC
	// §11); WebURL is the dashboard's address the login URL starts with.
	Logins Logins
	Tokens Tokens
	WebURL string
	// Agents, when set, admits the per-run keys of runs executed by
	// agents elsewhere (the agent executor), each for its run's agent
	// session only.
	Agents AgentRuns
}

// AgentRuns is the subset of the agent executor the SSH server uses. A key
// it knows is a run principal: it may open exactly one kind of session,
// "agent RUNID" for its own run, and nothing else.
type AgentRuns interface {
	// RunOfKey returns the live run a public key (wire form) was made
	// for.
	RunOfKey(key []byte) (run string, ok bool)
	// ServeAgent speaks the agent protocol for run over rw until the run
	// or the connection ends; hangup closes the connection.
	ServeAgent(ctx context.Context, run string, key []byte, rw io.ReadWriter, hangup func()) error
}

// Server is the SSH endpoint.
type Server struct {
	cfg      Config
	srv      *ssh.Server
	commands map[string]Command
	addr     atomic.Value // net.Addr
	metrics  serverMetrics
	limits   *connLimiter
	wg       sync.WaitGroup
	pushSeq  atomic.Uint64
}

type serverMetrics struct {
	sessions *prometheus.CounterVec
	active   prometheus.Gauge
	bytes    *prometheus.CounterVec
	authFail prometheus.Counter
}

// New builds a server; Serve starts it.
func New(cfg Config) *Server {
	if cfg.GitGrace == 0 {
		cfg.GitGrace = 10 * time.Second
	}
	cfg.Limits = cfg.Limits.withDefaults()
	s := &Server{cfg: cfg, limits: newConnLimiter(cfg.Limits, cfg.Logger)}
	s.metrics = serverMetrics{
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refline_ssh_sessions_total",
			Help: "SSH sessions by kind (fetch, push, archive, command) and result.",
		}, []string{"kind", "result"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "refline_ssh_sessions_active",
			Help: "SSH sessions in progress.",
		}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refline_git_bytes_total",
			Help: "Bytes of git protocol traffic by direction (in = from clients).",
		}, []string{"direction"}),
		authFail: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "refline_ssh_auth_failures_total",
			Help: "Public keys offered that belong to no user.",
		}),
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(s.metrics.sessions, s.metrics.active, s.metrics.bytes, s.metrics.authFail)
		cfg.Registerer.MustRegister(s.limits.refusals, s.limits.conns)
	}
	s.commands = s.builtinCommands()
	set := pipelineParts(cfg)
	for name, c := range s.pipelineCommands() {
		if set[name] {
			s.commands[name] = c
		}
	}
	if cfg.ImagesDir != "" {
		s.commands["image"] = s.imageCommand()
	}
	if cfg.Webhooks != nil {
		s.commands["webhook"] = s.webhookCommand()
	}
	if cfg.Logins != nil && cfg.Tokens != nil {
		for name, c := range s.webCommands() {
			s.commands[name] = c
		}
	}
	s.srv = &ssh.Server{
		Handler:          s.handle,
		PublicKeyHandler: s.authKey,
		// Git sends GIT_PROTOCOL with SetEnv; everything else from the
		// client's environment is refused in sessionChannel.
		IdleTimeout:          cfg.Limits.IdleTimeout,
		ConnCallback:         s.limits.attach,
		ServerConfigCallback: s.serverConfig,
		ChannelHandlers:      map[string]ssh.ChannelHandler{"session": s.sessionChannel},
	}
	s.srv.AddHostKey(cfg.HostKey)
	return s
}

// authKey admits keys that belong to a user. x/crypto (≥0.31) calls this
// again for the key that finally authenticates, so the user recorded last is
// the one that proved possession; handle re-derives the user from the
// session's key all the same rather than trusting anything recorded here.
func (s *Server) authKey(ctx ssh.Context, key ssh.PublicKey) bool {
	if _, ok := s.cfg.Access.UserByKey(key); ok {
		return true
	}
	if _, ok := s.runOfKey(key); ok {
		return true
	}
	s.metrics.authFail.Inc()
	return false
}

// ListenAndServe listens and serves until ctx is done; then it stops
// accepting and waits up to grace for sessions in flight.
func (s *Server) ListenAndServe(ctx context.Context, ready func(net.Addr), grace time.Duration) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen ssh on %s: %w", s.cfg.Listen, err)
	}
	s.addr.Store(ln.Addr())
	if ready != nil {
		ready(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() {
		errc <- s.srv.Serve(limitListener{quickAckListener{BackoffListener(ln, s.cfg.Logger)}, s.limits})
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("ssh server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err = s.srv.Shutdown(sctx)
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-sctx.Done():
		s.srv.Close()
	}
	if err != nil && !errors.Is(err, ssh.ErrServerClosed) && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

func (s *Server) handle(sess ssh.Session) {
	s.wg.Add(1)
	defer s.wg.Done()
	s.metrics.active.Inc()
	defer s.metrics.active.Dec()

	key := sess.PublicKey()
	if run, ok := s.runOfKey(key); ok {
		_ = sess.Exit(s.serveAgent(sess, run, key))
		return
	}
	user, ok := s.cfg.Access.UserByKey(key)
	if key == nil || !ok {
		fmt.Fprintln(sess.Stderr(), "refline: permission denied")
		_ = sess.Exit(1)
		return
	}
	log := s.cfg.Logger.WithFields(logrus.Fields{
		"session": shortID(sess.Context().SessionID()),
		"user":    user.Name,
		"remote":  sess.RemoteAddr().String(),
	})
	args, err := splitCommand(sess.RawCommand())
	if err != nil {
		fmt.Fprintf(sess.Stderr(), "refline: %v\n", err)
		_ = sess.Exit(2)
		return
	}
	if service, path, ok := gitService(args); ok {
		code := s.serveGit(sess, log, user, service, path)
		_ = sess.Exit(code)
		return
	}
	code := s.runCommand(sess, log, user, args)
	_ = sess.Exit(code)
}

// runOfKey says which live run a per-run key is for.
func (s *Server) runOfKey(key ssh.PublicKey) (string, bool) {
	if key == nil || s.cfg.Agents == nil {
		return "", false
	}
	return s.cfg.Agents.RunOfKey(key.Marshal())
}

// serveAgent is all a run principal may do: the agent session of its own
// run. Any other command, git included, and any other run are refused
// alike.
func (s *Server) serveAgent(sess ssh.Session, run string, key ssh.PublicKey) int {
	log := s.cfg.Logger.WithFields(logrus.Fields{
		"session": shortID(sess.Context().SessionID()),
		"agent":   run,
		"remote":  sess.RemoteAddr().String(),
	})
	args, err := splitCommand(sess.RawCommand())
	if err != nil || len(args) != 2 || args[0] != "agent" || args[1] != run || sess.Subsystem() != "" {
		log.WithField("command", sess.RawCommand()).Warn("run key used for something other than its agent session")
		s.metrics.sessions.WithLabelValues("agent", "refused").Inc()
		fmt.Fprintln(sess.Stderr(), "refline: permission denied: this key may only run its own run's agent")
		return 1
	}
	conn, _ := sess.Context().Value(ssh.ContextKeyConn).(gossh.Conn)
	hangup := func() {
		if conn != nil {
			_ = conn.Close()
		}
		_ = sess.Close()
	}
	log.Info("agent connected")
	if err := s.cfg.Agents.ServeAgent(sess.Context(), run, key.Marshal(), sess, hangup); err != nil {
		log.WithError(err).Warn("agent session ended")
		s.metrics.sessions.WithLabelValues("agent", "error").Inc()
		return 1
	}
	s.metrics.sessions.WithLabelValues("agent", "ok").Inc()
	return 0
}

// gitService recognises what git clients send: `git-upload-pack 'path'` and
// friends, also in the `git upload-pack` form.
func gitService(args []string) (service, path string, ok bool) {
	if len(args) == 3 && args[0] == "git" {
		args = []string{"git-" + args[1], args[2]}
	}
	if len(args) != 2 {
		return "", "", false
	}
	switch args[0] {
	case "git-upload-pack", "git-receive-pack", "git-upload-archive":
		return strings.TrimPrefix(args[0], "git-"), args[1], true
	}
	return "", "", false
}

var gitProtocolRE = regexp.MustCompile(`^[A-Za-z0-9=:._-]{1,64}$`)

func (s *Server) serveGit(sess ssh.Session, log *logrus.Entry, user access.User, service, rawPath string) int {
	kind := map[string]string{"upload-pack": "fetch", "receive-pack": "push", "upload-archive": "archive"}[service]
	result := "error"
	defer func() { s.metrics.sessions.WithLabelValues(kind, result).Inc() }()

	name, err := CleanName(rawPath)
	if err != nil {
		fmt.Fprintf(sess.Stderr(), "refline: invalid repository name: %v\n", err)
		result = "refused"
		return 1
	}
	log = log.WithField("repo", name)
	notFound := func() int {
		fmt.Fprintf(sess.Stderr(), "refline: repository %q not found, or you have no access to it\n", name)
		result = "refused"
		return 1
	}
	level := s.cfg.Access.Level(name, user)
	exists := s.cfg.Repos.Exists(name)
	switch {
	case service != "receive-pack":
		if !exists || !level.Can(access.Read) {
			return notFound()
		}
	case !exists:
		if !user.Admin && !user.CanCreate {
			return notFound()
		}
		if err := s.createRepo(sess.Context(), name, user); err != nil && !errors.Is(err, ErrRepoExists) {
			fmt.Fprintf(sess.Stderr(), "refline: create %s: %v\n", name, err)
			return 1
		}
		level = s.cfg.Access.Level(name, user)
		log.Info("repository created by push")
	case !level.Can(access.Write):
		if !level.Can(access.Read) {
			return notFound()
		}
		fmt.Fprintf(sess.Stderr(), "refline: pushing to %s needs write access (you have %s)\n", name, level)
		result = "refused"
		return 1
	}

	hs := hooks.Session{Source: hooks.SourcePush, ID: s.pushID(sess.Context().SessionID()), User: user.Name, Level: level, Repo: name}
	token, release := s.cfg.Sessions.Register(hs)
	defer release()
	env := []string{hooks.TokenEnv + "=" + token}
	if service == "receive-pack" {
		env = append(env, hooks.SkipTxEnv+"=1")
	}
	for _, kv := range sess.Environ() {
		if v, ok := strings.CutPrefix(kv, "GIT_PROTOCOL="); ok && gitProtocolRE.MatchString(v) {
			env = append(env, kv)
		}
	}

	args := append(s.gitLimitArgs(service), service, s.cfg.Repos.Path(name))
	if service == "receive-pack" && s.cfg.Repos.PushHooksDir != "" {
		// No reference-transaction hook for a push: git would run it
		// twice per ref, and pre-receive has vetted every ref already.
		args = append([]string{"-c", "core.hooksPath=" + s.cfg.Repos.PushHooksDir}, args...)
	}
	cmd := gitcmd.Repo{Env: env}.Transport(sess.Context(), args...)
	cmd.Dir = s.cfg.Repos.Path(name)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	in := newPackReader(sess)
	cmd.Stdin = countingReader{in, s.metrics.bytes.WithLabelValues("in")}
	cmd.Stdout = countingWriter{sess, s.metrics.bytes.WithLabelValues("out")}
	cmd.Stderr = sess.Stderr()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		log.WithError(err).Error("start git")
		fmt.Fprintln(sess.Stderr(), "refline: internal error starting git")
		return 1
	}
	done := make(chan struct{})
	go s.reap(sess.Context(), cmd.Process.Pid, done, log)
	err = cmd.Wait()
	close(done)
	if service == "receive-pack" {
		s.pushTooLarge(sess.Stderr(), in.packSize())
	}
	code := 0
	if err != nil {
		code = 1
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() > 0 {
			code = ee.ExitCode()
		}
	}
	if code == 0 {
		result = "ok"
	}
	log.WithFields(logrus.Fields{"service": service, "exit": code, "duration": time.Since(start).Round(time.Millisecond)}).Info("git session")
	return code
}

// reap stops a git child whose client went away. Git notices a closed
// connection by itself (EOF on stdin, EPIPE on stdout) and cleans up its
// lock files as it exits; only a child still running after the grace period
// is sent SIGTERM (git removes its locks on SIGTERM too), and SIGKILL last.
func (s *Server) reap(ctx context.Context, pid int, done <-chan struct{}, log *logrus.Entry) {
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		select {
		case <-done:
			return
		case <-time.After(s.cfg.GitGrace):
		}
		log.WithField("signal", sig).Warn("git still running after its client left")
		_ = syscall.Kill(-pid, sig)
	}
}

func (s *Server) createRepo(ctx context.Context, name string, user access.User) error {
	if err := s.cfg.Repos.Create(ctx, name, ""); err != nil {
		return err
	}
	if !user.Admin {
		if err := s.cfg.Access.Grant(name, user.Name, access.Admin); err != nil {
			return fmt.Errorf("grant creator: %w", err)
		}
	}
	return nil
}

func (s *Server) logsHint(repo, pipeline string, n int) string {
	if s.cfg.LogsHint != nil {
		return s.cfg.LogsHint(repo, pipeline, n)
	}
	return fmt.Sprintf("logs %s %s %d -f", repo, pipeline, n)
}

// pushID names one git session for good: the push journal files an
// accepted push under it and webhooks derive delivery ids from it. One SSH
// connection can carry several pushes (ControlMaster multiplexing), so the
// connection's id alone would let two pushes share a journal entry, and
// the first to finish would forget the other's.
func (s *Server) pushID(sessionID string) string {
	return fmt.Sprintf("%s-%d", shortID(sessionID), s.pushSeq.Add(1))
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

type countingReader struct {
	r io.Reader
	c prometheus.Counter
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.c.Add(float64(n))
	return n, err
}

type countingWriter struct {
	w io.Writer
	c prometheus.Counter
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.c.Add(float64(n))
	return n, err
}
