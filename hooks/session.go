package hooks

import (
	"crypto/rand"
	"encoding/hex"
	"sync"

	"github.com/refline/refline/access"
	"github.com/refline/refline/hooks/relay"
)

// Source says who asked git to change refs.
type Source int

const (
	// SourceLocal is someone on the server machine running git in a bare
	// repository by hand (no session token in the hook's environment).
	SourceLocal Source = iota
	// SourcePush is a git push over SSH.
	SourcePush
	// SourceServer is the refline server writing its own refs.
	SourceServer
)

func (s Source) String() string {
	switch s {
	case SourcePush:
		return "push"
	case SourceServer:
		return "server"
	default:
		return "local"
	}
}

// Session is what the server knows about the process whose hook is calling
// back: who authenticated, with which rights, on which repository.
type Session struct {
	Source Source
	ID     string // SSH session id, for logs
	User   string
	Level  access.Level // the user's level on Repo when the session started
	Repo   string
}

// TokenEnv is the environment variable that carries a session token from the
// server, through git, into the hook process.
const TokenEnv = relay.TokenEnv

// Sessions maps the random tokens handed to git children to the sessions
// they belong to. A hook can only claim a session by presenting its token,
// and the token only ever exists in the environment of a git process the
// server started itself.
type Sessions struct {
	mu sync.RWMutex
	m  map[string]Session
}

// NewSessions returns an empty registry.
func NewSessions() *Sessions {
	return &Sessions{m: make(map[string]Session)}
}

// Register records sess and returns its token and a function that forgets
// it again.
func (s *Sessions) Register(sess Session) (token string, release func()) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("hooks: no randomness: " + err.Error())
	}
	token = hex.EncodeToString(b[:])
	s.mu.Lock()
	s.m[token] = sess
	s.mu.Unlock()
	return token, func() {
		s.mu.Lock()
		delete(s.m, token)
		s.mu.Unlock()
	}
}

// Lookup returns the session of token. An empty or unknown token is a local
// operator.
func (s *Sessions) Lookup(token string) Session {
	if token == "" {
		return Session{Source: SourceLocal}
	}
	s.mu.RLock()
	sess, ok := s.m[token]
	s.mu.RUnlock()
	if !ok {
		return Session{Source: SourceLocal}
	}
	return sess
}
