// Package auth holds how a browser or a script proves to the dashboard who
// it is: one-time login tickets (`ssh HOST login`), the sessions they open,
// and API tokens (`ssh HOST token create`). It knows users only by name:
// every check of what a user may see is made against the access store at
// each request, so removing a user or a grant takes effect at once.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/refline/refline/atomicfile"
)

// Lifetimes.
const (
	// TicketTTL is how long a login URL may be spent by default (SPEC
	// §11); serve's --login-ttl changes it.
	TicketTTL = 60 * time.Second
	// SessionTTL is how long a browser session lasts.
	SessionTTL = 12 * time.Hour
	// maxTickets bounds the tickets waiting to be spent, so that a user
	// running `login` in a loop cannot grow the server's memory.
	maxTickets = 10000
)

// TokenPrefix starts every API token, so that a leaked one is recognisable
// (and secret scanners can find it).
const TokenPrefix = "rlt_"

// ErrNoToken is returned when deleting a token the user does not have.
var ErrNoToken = errors.New("no such token")

// nameRE is the grammar of a token's name.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidName reports whether name may name a token.
func ValidName(name string) bool { return nameRE.MatchString(name) }

// Token is what `token list` shows of a token: never the token itself,
// which only its creator saw once.
type Token struct {
	Name    string    `json:"name"`
	User    string    `json:"user"`
	Created time.Time `json:"created"`
	// Hash is the SHA-256 of the token, hex: all the server keeps.
	Hash string `json:"hash"`
}

// Store holds tickets and sessions in memory and tokens in a file, hashed.
// Tickets and sessions are random 256-bit values, so a hash lookup needs no
// constant-time comparison: the attacker would have to guess a preimage.
type Store struct {
	path      string
	now       func() time.Time
	ticketTTL time.Duration

	mu       sync.Mutex
	tickets  map[string]ticket  // hash → ticket
	sessions map[string]session // hash → session
	tokens   []Token
}

type ticket struct {
	user    string
	expires time.Time
}

type session struct {
	user    string
	expires time.Time
}

type tokenFile struct {
	Version int     `json:"version"`
	Tokens  []Token `json:"tokens"`
}

// Open loads the token file at path (DATA/tokens.json), or starts empty
// when it does not exist yet.
func Open(path string) (*Store, error) {
	s := &Store{path: path, now: time.Now, ticketTTL: TicketTTL, tickets: map[string]ticket{}, sessions: map[string]session{}}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read token file: %w", err)
	default:
		var f tokenFile
		if err := json.Unmarshal(b, &f); err != nil {
			return nil, fmt.Errorf("token file %s is corrupt: %w (fix or remove it; removing it revokes every API token)", path, err)
		}
		s.tokens = f.Tokens
	}
	return s, nil
}

// SetClock replaces the clock, for tests of expiry.
func (s *Store) SetClock(now func() time.Time) { s.now = now }

// SetTicketTTL sets how long a login URL may be spent.
func (s *Store) SetTicketTTL(d time.Duration) { s.ticketTTL = d }

// TicketTTL is how long a login URL may be spent.
func (s *Store) TicketTTL() time.Duration { return s.ticketTTL }

func random() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func hash(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// NewTicket returns a one-time login ticket for user, valid for the
// ticket lifetime (TicketTTL unless set).
func (s *Store) NewTicket(user string) (string, error) {
	t, err := random()
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	if len(s.tickets) >= maxTickets {
		return "", fmt.Errorf("too many login URLs are waiting; try again in a minute")
	}
	s.tickets[hash(t)] = ticket{user: user, expires: s.now().Add(s.ticketTTL)}
	return t, nil
}

// TicketUser tells whose a ticket is without spending it, for the confirm
// page. ok is false when it is unknown, spent or expired.
func (s *Store) TicketUser(t string) (user string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tk, ok := s.tickets[hash(t)]
	if !ok || !s.now().Before(tk.expires) {
		return "", false
	}
	return tk.user, true
}

// Spend uses a ticket up and opens a session for its user: it returns the
// session id for the cookie. A ticket is spent once, even when two
// requests race for it.
func (s *Store) Spend(t string) (user, sessionID string, err error) {
	id, err := random()
	if err != nil {
		return "", "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	h := hash(t)
	tk, ok := s.tickets[h]
	delete(s.tickets, h)
	if !ok || !s.now().Before(tk.expires) {
		return "", "", fmt.Errorf("this login URL was already used or has expired; run `ssh HOST login` for a new one")
	}
	s.sessions[hash(id)] = session{user: tk.user, expires: s.now().Add(SessionTTL)}
	return tk.user, id, nil
}

// Session returns the user of a session id.
func (s *Store) Session(id string) (string, bool) {
	if id == "" {
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	se, ok := s.sessions[hash(id)]
	if !ok || !s.now().Before(se.expires) {
		return "", false
	}
	return se.user, true
}

// EndSession logs a session out.
func (s *Store) EndSession(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, hash(id))
}

// expireLocked forgets expired tickets and sessions.
func (s *Store) expireLocked() {
	now := s.now()
	for h, t := range s.tickets {
		if !now.Before(t.expires) {
			delete(s.tickets, h)
		}
	}
	for h, se := range s.sessions {
		if !now.Before(se.expires) {
			delete(s.sessions, h)
		}
	}
}

// CreateToken makes a token named name for user and returns it; it is
// never shown again. The file holds only its hash.
func (s *Store) CreateToken(user, name string) (string, error) {
	if !ValidName(name) {
		return "", fmt.Errorf("token name %q is invalid; use 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' and '-', starting with a letter or digit", name)
	}
	r, err := random()
	if err != nil {
		return "", err
	}
	secret := TokenPrefix + r
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		if t.User == user && t.Name == name {
			return "", fmt.Errorf("you already have a token named %s; delete it first (token delete %s)", name, name)
		}
	}
	next := append(append([]Token(nil), s.tokens...), Token{Name: name, User: user, Created: s.now().UTC().Truncate(time.Second), Hash: hash(secret)})
	if err := s.saveLocked(next); err != nil {
		return "", err
	}
	return secret, nil
}

// Tokens lists user's tokens by name.
func (s *Store) Tokens(user string) []Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Token{}
	for _, t := range s.tokens {
		if t.User == user {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// DeleteToken revokes user's token named name.
func (s *Store) DeleteToken(user, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var next []Token
	found := false
	for _, t := range s.tokens {
		if t.User == user && t.Name == name {
			found = true
			continue
		}
		next = append(next, t)
	}
	if !found {
		return fmt.Errorf("%w named %s", ErrNoToken, name)
	}
	return s.saveLocked(next)
}

// TokenUser returns the user a bearer token belongs to.
func (s *Store) TokenUser(secret string) (string, bool) {
	if !strings.HasPrefix(secret, TokenPrefix) {
		return "", false
	}
	h := hash(secret)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		if t.Hash == h {
			return t.User, true
		}
	}
	return "", false
}

// saveLocked writes tokens durably, then makes them current.
func (s *Store) saveLocked(tokens []Token) error {
	if tokens == nil {
		tokens = []Token{}
	}
	b, err := json.MarshalIndent(tokenFile{Version: 1, Tokens: tokens}, "", "  ")
	if err != nil {
		return err
	}
	if _, err := atomicfile.Write(s.path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("save tokens: %w", err)
	}
	s.tokens = tokens
	return nil
}
