package gitserver

import (
	"bytes"
	"container/list"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gliderlabs/ssh"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/refline/refline/pipelines/spec"
	"github.com/sirupsen/logrus"
	gossh "golang.org/x/crypto/ssh"
)

// Limits bounds what clients may hold on the SSH endpoint, so that nobody
// (authenticated or not) can take the file descriptors, memory or processes
// the other users need. Past a limit new work is refused with a message
// naming the limit; what is already running is left alone. Zero values take
// the defaults of DefaultLimits.
type Limits struct {
	// MaxConns bounds connections at once. When it is reached, a new
	// connection replaces the oldest one that has not authenticated (the
	// silent ones first); only when every connection has authenticated is
	// it refused.
	MaxConns int
	// MaxConnsPerAddr bounds connections at once from one source address
	// (an IPv6 /64 counts as one address).
	MaxConnsPerAddr int
	// MaxUnauth bounds connections that have not authenticated yet; a new
	// one replaces the oldest of them (the silent ones first).
	MaxUnauth int
	// AuthTimeout is how long a connection may take to authenticate and
	// open its first session.
	AuthTimeout time.Duration
	// IdleTimeout closes a connection with no traffic in either direction.
	IdleTimeout time.Duration
	// MaxSessions bounds open SSH sessions over all connections and users
	// (each may run a git process and holds its pipes), so that many
	// users each under their own limit cannot together take the process
	// and file table; 0 means twice MaxConns. MaxSessionsPerConn and
	// MaxSessionsPerUser bound them per connection and per user.
	MaxSessions        int
	MaxSessionsPerConn int
	MaxSessionsPerUser int
	// MaxPushSize bounds the pack a push may send (receive.maxInputSize).
	MaxPushSize int64
}

// DefaultLimits are the limits `refline serve` starts with.
var DefaultLimits = Limits{
	MaxConns:           2048,
	MaxConnsPerAddr:    64,
	MaxUnauth:          256,
	AuthTimeout:        30 * time.Second,
	IdleTimeout:        10 * time.Minute,
	MaxSessionsPerConn: 10,
	MaxSessionsPerUser: 32,
	MaxPushSize:        512 << 20,
}

// MaxEnvRequests is how many `env` requests one session may send. Only
// GIT_PROTOCOL is kept; a client that sends more than this is not a git
// client, and its session is closed.
const MaxEnvRequests = 16

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.MaxConns <= 0 {
		l.MaxConns = d.MaxConns
	}
	if l.MaxConnsPerAddr <= 0 {
		l.MaxConnsPerAddr = d.MaxConnsPerAddr
	}
	if l.MaxUnauth <= 0 {
		l.MaxUnauth = d.MaxUnauth
	}
	if l.AuthTimeout <= 0 {
		l.AuthTimeout = d.AuthTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = d.IdleTimeout
	}
	if l.MaxSessions <= 0 {
		l.MaxSessions = 2 * l.MaxConns
	}
	if l.MaxSessionsPerConn <= 0 {
		l.MaxSessionsPerConn = d.MaxSessionsPerConn
	}
	if l.MaxSessionsPerUser <= 0 {
		l.MaxSessionsPerUser = d.MaxSessionsPerUser
	}
	if l.MaxPushSize <= 0 {
		l.MaxPushSize = d.MaxPushSize
	}
	return l
}

// ctxKeyConn holds the connection's *trackedConn in the ssh.Context.
type ctxKeyConn struct{}

// connLimiter admits connections and sessions within Limits.
type connLimiter struct {
	lim Limits
	log *logrus.Entry

	mu       sync.Mutex
	total    int
	perAddr  map[string]int
	unauth   *list.List // *trackedConn not yet authenticated, oldest first
	perUser  map[string]int
	sessions int // open over all connections
	refusals *prometheus.CounterVec
	conns    prometheus.GaugeFunc
	warned   map[string]time.Time // reason -> last log line, to keep a flood out of the log
	dropped  map[string]int
}

func newConnLimiter(lim Limits, log *logrus.Entry) *connLimiter {
	l := &connLimiter{
		lim:     lim,
		log:     log,
		perAddr: map[string]int{},
		unauth:  list.New(),
		perUser: map[string]int{},
		warned:  map[string]time.Time{},
		dropped: map[string]int{},
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refline_ssh_refused_total",
			Help: "SSH connections and sessions refused or closed by a limit, by limit.",
		}, []string{"limit"}),
	}
	l.conns = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "refline_ssh_connections",
		Help: "SSH connections open (authenticated or not).",
	}, func() float64 {
		l.mu.Lock()
		defer l.mu.Unlock()
		return float64(l.total)
	})
	return l
}

// trackedConn is one admitted connection. Its accounting is undone once,
// by Close or by eviction.
type trackedConn struct {
	net.Conn
	l     *connLimiter
	addr  string
	elem  *list.Element // in l.unauth while not authenticated
	gone  bool          // accounting undone; guarded by l.mu
	spoke atomic.Bool   // the client sent at least one byte
	timer *time.Timer
	// sessions open on this connection; guarded by l.mu
	sessions int
}

func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.spoke.Load() {
		c.spoke.Store(true)
	}
	return n, err
}

// pending reports whether the client has sent bytes the server has not
// read yet.
func (c *trackedConn) pending() bool {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	n := 0
	_ = raw.Control(func(fd uintptr) {
		var b [1]byte
		n, _, _ = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	})
	return n > 0
}

func (c *trackedConn) Close() error {
	c.l.forget(c)
	return c.Conn.Close()
}

// addrKey is what the per-address limit counts: the IP, or the /64 of an
// IPv6 address (one host usually holds a whole /64).
func addrKey(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	if ip4 := ta.IP.To4(); ip4 != nil {
		return ip4.String()
	}
	return ta.IP.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// limitListener admits connections as they are accepted, in the accept
// loop: a burst of connections never holds more file descriptors than the
// limits allow, not even for the moment before a per-connection goroutine
// would look at them.
type limitListener struct {
	net.Listener
	l *connLimiter
}

func (ll limitListener) Accept() (net.Conn, error) {
	for {
		c, err := ll.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if tc := ll.l.admit(c); tc != nil {
			return tc, nil
		}
	}
}

// attach is the ConnCallback: it makes the connection's accounting
// reachable from its ssh.Context.
func (l *connLimiter) attach(ctx ssh.Context, nc net.Conn) net.Conn {
	if tc, ok := nc.(*trackedConn); ok {
		ctx.SetValue(ctxKeyConn{}, tc)
	}
	return nc
}

// admit counts a new connection or refuses it, and arms the
// authentication deadline.
func (l *connLimiter) admit(nc net.Conn) *trackedConn {
	addr := addrKey(nc.RemoteAddr())
	var victims []*trackedConn
	l.mu.Lock()
	if l.perAddr[addr] >= l.lim.MaxConnsPerAddr {
		l.mu.Unlock()
		l.refuse(nc, "conns-per-addr", fmt.Sprintf("too many connections from %s (the limit is %d, refline serve --max-conns-per-addr); close some and try again", addr, l.lim.MaxConnsPerAddr))
		return nil
	}
	if l.total >= l.lim.MaxConns {
		v := l.victimLocked()
		if v == nil {
			l.mu.Unlock()
			l.refuse(nc, "conns", fmt.Sprintf("the server has too many connections (the limit is %d, refline serve --max-conns); try again later", l.lim.MaxConns))
			return nil
		}
		victims = append(victims, v)
	}
	for l.unauth.Len() >= l.lim.MaxUnauth {
		v := l.victimLocked()
		if v == nil {
			break
		}
		victims = append(victims, v)
	}
	c := &trackedConn{Conn: nc, l: l, addr: addr}
	c.elem = l.unauth.PushBack(c)
	l.total++
	l.perAddr[addr]++
	c.timer = time.AfterFunc(l.lim.AuthTimeout, func() { l.expire(c) })
	l.mu.Unlock()
	for _, v := range victims {
		l.count("unauth", "closed unauthenticated connections to make room for new ones (refline serve --max-unauth-conns, --max-conns)")
		if l.log.Logger.IsLevelEnabled(logrus.DebugLevel) {
			l.log.WithFields(logrus.Fields{"remote": v.RemoteAddr().String(), "spoke": v.spoke.Load()}).Debug("closed an unauthenticated connection for a new one")
		}
		v.Conn.Close()
	}
	return c
}

// victimLocked detaches the unauthenticated connection to close for a new
// one: the oldest that never sent a byte, else the oldest. Legitimate
// clients speak at once; a silent connection is the cheapest to lose. In a
// burst the server may not have read a new client's first bytes yet, so
// the kernel is asked before a connection counts as silent.
func (l *connLimiter) victimLocked() *trackedConn {
	var v *trackedConn
	for e := l.unauth.Front(); e != nil; e = e.Next() {
		c := e.Value.(*trackedConn)
		if c.spoke.Load() {
			continue
		}
		if c.pending() {
			c.spoke.Store(true)
			continue
		}
		v = c
		break
	}
	if v == nil {
		if e := l.unauth.Front(); e != nil {
			v = e.Value.(*trackedConn)
		}
	}
	if v != nil {
		l.forgetLocked(v)
	}
	return v
}

func (l *connLimiter) forget(c *trackedConn) {
	l.mu.Lock()
	l.forgetLocked(c)
	l.mu.Unlock()
}

func (l *connLimiter) forgetLocked(c *trackedConn) {
	if c.gone {
		return
	}
	c.gone = true
	if c.timer != nil {
		c.timer.Stop()
	}
	if c.elem != nil {
		l.unauth.Remove(c.elem)
		c.elem = nil
	}
	l.total--
	if l.perAddr[c.addr]--; l.perAddr[c.addr] <= 0 {
		delete(l.perAddr, c.addr)
	}
}

// authenticated marks the connection as past authentication: it no longer
// counts as unauthenticated and its deadline is off.
func (l *connLimiter) authenticated(ctx ssh.Context) {
	c, ok := ctx.Value(ctxKeyConn{}).(*trackedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.elem != nil {
		l.unauth.Remove(c.elem)
		c.elem = nil
		c.timer.Stop()
	}
}

// expire closes a connection that did not authenticate in time.
func (l *connLimiter) expire(c *trackedConn) {
	l.mu.Lock()
	late := c.elem != nil && !c.gone
	l.mu.Unlock()
	if late {
		l.count("auth-timeout", fmt.Sprintf("closed connections that did not authenticate within %s (refline serve --auth-timeout)", l.lim.AuthTimeout))
		c.Close()
	}
}

// refuse tells a refused client why, before the SSH handshake (OpenSSH
// shows such lines with -v; a human with nc sees them), and closes it.
func (l *connLimiter) refuse(nc net.Conn, limit, msg string) {
	l.count(limit, "refused connections: "+msg)
	_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = fmt.Fprintf(nc, "refline: %s\r\n", msg)
	_ = nc.Close()
}

// count records a refusal; the log gets one line per limit and minute, with
// how many there were, so that a flood does not fill it.
func (l *connLimiter) count(limit, what string) {
	l.refusals.WithLabelValues(limit).Inc()
	l.mu.Lock()
	l.dropped[limit]++
	n := l.dropped[limit]
	due := time.Since(l.warned[limit]) >= time.Minute
	if due {
		l.warned[limit] = time.Now()
		l.dropped[limit] = 0
	}
	l.mu.Unlock()
	if due {
		l.log.WithFields(logrus.Fields{"limit": limit, "count": n}).Warn(what)
	}
}

// openSession admits a session channel of user on connection c, or says
// why not and which limit (the label of refline_ssh_refused_total).
func (l *connLimiter) openSession(c *trackedConn, user string) (release func(), limit, why string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c != nil && c.sessions >= l.lim.MaxSessionsPerConn {
		return nil, "sessions", fmt.Sprintf("refline: this connection has %d sessions open, the limit (refline serve --max-sessions-per-conn); close some and try again", c.sessions)
	}
	if user != "" && l.perUser[user] >= l.lim.MaxSessionsPerUser {
		return nil, "sessions", fmt.Sprintf("refline: %s has %d sessions open, the limit (refline serve --max-sessions-per-user); close some and try again", user, l.perUser[user])
	}
	if l.sessions >= l.lim.MaxSessions {
		return nil, "sessions-total", fmt.Sprintf("refline: the server has %d sessions open, the limit (refline serve --max-sessions); try again later", l.sessions)
	}
	l.sessions++
	if c != nil {
		c.sessions++
	}
	if user != "" {
		l.perUser[user]++
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.sessions--
			if c != nil {
				c.sessions--
			}
			if user != "" {
				if l.perUser[user]--; l.perUser[user] <= 0 {
					delete(l.perUser, user)
				}
			}
		})
	}, "", ""
}

// sessionChannel is the handler of "session" channels: gliderlabs' own,
// behind the session limits and a filter of the requests it would grant.
func (s *Server) sessionChannel(srv *ssh.Server, conn *gossh.ServerConn, nc gossh.NewChannel, ctx ssh.Context) {
	c, _ := ctx.Value(ctxKeyConn{}).(*trackedConn)
	// Belt and braces: x/crypto opens no channel before authentication.
	s.limits.authenticated(ctx)
	user := ""
	if key, ok := ctx.Value(ssh.ContextKeyPublicKey).(ssh.PublicKey); ok {
		if u, ok := s.cfg.Access.UserByKey(key); ok {
			user = u.Name
		}
	}
	release, limit, why := s.limits.openSession(c, user)
	if why != "" {
		what := "refused sessions over a session limit (refline serve --max-sessions-per-conn, --max-sessions-per-user)"
		if limit == "sessions-total" {
			what = fmt.Sprintf("refused sessions: the server has %d open, the limit (refline serve --max-sessions)", s.limits.lim.MaxSessions)
		}
		s.limits.count(limit, what)
		_ = nc.Reject(gossh.ResourceShortage, why)
		return
	}
	defer release()
	ssh.DefaultSessionHandler(srv, conn, filteredChannel{NewChannel: nc, limits: s.limits}, ctx)
}

// filteredChannel hands gliderlabs' session only the requests refline
// serves. gliderlabs would store every `env` request (unbounded) and grant
// agent forwarding; here `env` keeps only a valid GIT_PROTOCOL, at most
// MaxEnvRequests are read, and pty, X11, agent forwarding and anything
// unknown are refused.
type filteredChannel struct {
	gossh.NewChannel
	limits *connLimiter
}

func (f filteredChannel) Accept() (gossh.Channel, <-chan *gossh.Request, error) {
	ch, reqs, err := f.NewChannel.Accept()
	if err != nil {
		return nil, nil, err
	}
	out := make(chan *gossh.Request)
	go func() {
		defer close(out)
		envs := 0
		for req := range reqs {
			switch req.Type {
			case "exec", "shell", "subsystem", "signal", "break":
				out <- req
				continue
			case "env":
				envs++
				if envs > MaxEnvRequests {
					if envs == MaxEnvRequests+1 {
						f.limits.count("env", "closed sessions that sent too many env requests")
						fmt.Fprintf(ch.Stderr(), "refline: more than %d environment variables sent; only GIT_PROTOCOL is used. Closing this session.\r\n", MaxEnvRequests)
						_ = ch.Close()
					}
					break
				}
				var kv struct{ Key, Value string }
				if gossh.Unmarshal(req.Payload, &kv) == nil && kv.Key == "GIT_PROTOCOL" && gitProtocolRE.MatchString(kv.Value) {
					out <- req
					continue
				}
			}
			// pty-req, x11-req, auth-agent-req@openssh.com, env other than
			// GIT_PROTOCOL, and anything unknown.
			if req.WantReply {
				_ = req.Reply(false, nil)
			}
		}
	}()
	return ch, out, nil
}

// serverConfig completes gliderlabs' per-connection SSH config: it notes
// when the connection has authenticated.
func (s *Server) serverConfig(ctx ssh.Context) *gossh.ServerConfig {
	return &gossh.ServerConfig{
		AuthLogCallback: func(_ gossh.ConnMetadata, _ string, err error) {
			if err == nil {
				s.limits.authenticated(ctx)
			}
		},
	}
}

// gitLimitArgs are the -c options that put the limits on a git service.
func (s *Server) gitLimitArgs(service string) []string {
	if service != "receive-pack" {
		return nil
	}
	return []string{"-c", "receive.maxInputSize=" + strconv.FormatInt(s.cfg.Limits.MaxPushSize, 10)}
}

// pushTooLarge tells the pusher why git refused their pack. Git's own
// message ("pack exceeds maximum allowed size") names no setting the user
// can look up.
func (s *Server) pushTooLarge(w io.Writer, received int64) {
	if received <= s.cfg.Limits.MaxPushSize {
		return
	}
	fmt.Fprintf(w, "refline: push refused: it is larger than the push size limit of %s (refline serve --max-push-size); split it into smaller pushes or ask the admin to raise the limit\n", spec.FormatSize(s.cfg.Limits.MaxPushSize))
}

// BackoffListener waits after an accept error instead of retrying at once
// (and logging each): out of file descriptors, a tight accept loop would
// spin and fill the log. It logs at most once a minute.
func BackoffListener(ln net.Listener, log *logrus.Entry) net.Listener {
	return &backoffListener{Listener: ln, log: log}
}

type backoffListener struct {
	net.Listener
	log    *logrus.Entry
	last   time.Time
	missed int
}

func (l *backoffListener) Accept() (net.Conn, error) {
	delay := 5 * time.Millisecond
	for {
		c, err := l.Listener.Accept()
		if err == nil {
			return c, nil
		}
		var ne net.Error
		if errors.Is(err, net.ErrClosed) || !errors.As(err, &ne) {
			return nil, err
		}
		l.missed++
		if time.Since(l.last) >= time.Minute {
			l.log.WithError(err).WithField("errors", l.missed).Warn("accept failing; backing off (is the file descriptor limit too low?)")
			l.last, l.missed = time.Now(), 0
		}
		time.Sleep(delay)
		delay = min(delay*2, time.Second)
	}
}

// packReader measures the pack a push sends, for pushTooLarge: the bytes
// from the pack's signature on (the ref commands before it do not count
// against receive.maxInputSize, and receive-pack exits 0 when it refuses a
// pack, so the size is what tells).
type packReader struct {
	r    io.Reader
	n    int64 // bytes read
	pack int64 // offset of the pack's signature, -1 until seen
	tail []byte
}

var packMagic = []byte("PACK\x00\x00\x00")

func newPackReader(r io.Reader) *packReader { return &packReader{r: r, pack: -1} }

func (s *packReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if s.pack < 0 && n > 0 {
		// The signature may straddle two reads.
		buf := append(s.tail, p[:n]...)
		if i := bytes.Index(buf, packMagic); i >= 0 {
			s.pack = s.n - int64(len(s.tail)) + int64(i)
		}
		s.tail = append(s.tail[:0], buf[max(0, len(buf)-len(packMagic)+1):]...)
	}
	s.n += int64(n)
	return n, err
}

// packSize is how many bytes of pack were read.
func (s *packReader) packSize() int64 {
	if s.pack < 0 {
		return 0
	}
	return s.n - s.pack
}
