package access

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/refline/refline/atomicfile"
	"github.com/refline/refline/names"
)

// FileName is the name of the access file inside the data directory.
const FileName = "access.json"

// fileVersion is the format of the access file this code reads and writes.
const fileVersion = 1

// Errors callers branch on. They are always wrapped in a message that names
// the user or key concerned.
var (
	// ErrUnknownUser means the named user does not exist.
	ErrUnknownUser = errors.New("unknown user")
	// ErrKeyInUse means a public key already belongs to another user.
	ErrKeyInUse = errors.New("key already in use")
	// ErrLastAdmin means the change would leave no admin.
	ErrLastAdmin = errors.New("refusing to remove the last admin")
)

// Store holds the users and grants, persisted in a single JSON file that is
// rewritten atomically on every change. It is safe for concurrent use.
//
// Readers never wait for the disk: the current state is an immutable snapshot
// behind an atomic pointer. A change copies the snapshot, edits the copy,
// writes it to disk, and only then publishes it, so a failed write leaves
// memory as it was and memory never holds what the disk does not.
//
// Only one Store may use a given file at a time.
type Store struct {
	path string
	now  func() time.Time

	mu  sync.Mutex // serializes writers
	cur atomic.Pointer[state]
}

// state is one snapshot. Once published it is never modified.
type state struct {
	users  map[string]User             // by name
	byKey  map[string]string           // marshaled key wire bytes → user name
	grants map[string]map[string]Grant // repo → user → grant (never None)
}

// file is the on-disk form of a state.
type file struct {
	Version int                         `json:"version"`
	Users   []User                      `json:"users"`
	Grants  map[string]map[string]Grant `json:"grants,omitempty"`
}

// Open loads the access file at path (normally DATA/access.json, see
// [FileName]), or starts empty when it does not exist yet. The file is first
// written by the first change. A file that cannot be read or parsed is an
// error naming it: the store never silently starts over, which would lock
// every user out.
func Open(path string) (*Store, error) {
	s := &Store{path: path, now: time.Now}
	st := newState()
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read access file: %w", err)
	default:
		if st, err = decode(b); err != nil {
			return nil, fmt.Errorf("access file %s is corrupt: %w (restore it from a backup or fix it by hand; refline will not reset it)", path, err)
		}
	}
	s.cur.Store(st)
	removeStaleTemps(path)
	return s, nil
}

// UserByKey returns the user who owns key. Only an exact match counts: the
// key's wire encoding must equal a stored key's.
func (s *Store) UserByKey(key ssh.PublicKey) (User, bool) {
	if key == nil {
		return User{}, false
	}
	st := s.cur.Load()
	name, ok := st.byKey[string(key.Marshal())]
	if !ok {
		return User{}, false
	}
	return st.users[name].clone(), true
}

// User returns the named user.
func (s *Store) User(name string) (User, bool) {
	u, ok := s.cur.Load().users[name]
	return u.clone(), ok
}

// Users returns all users sorted by name.
func (s *Store) Users() []User {
	return s.cur.Load().sortedUsers()
}

// HasAdmin reports whether any user is an admin.
func (s *Store) HasAdmin() bool {
	return s.cur.Load().admins() > 0
}

// AddUser creates the user name with keys, or adds keys to the existing user
// of that name. A key the user already has is ignored; a key that belongs to
// another user is refused with [ErrKeyInUse]. admin=true makes the user an
// admin; admin=false never demotes an existing admin (use SetAdmin).
// A new user needs at least one key.
func (s *Store) AddUser(name string, keys []ssh.PublicKey, admin bool) error {
	if err := checkName(name); err != nil {
		return err
	}
	for _, k := range keys {
		if err := checkKey(k); err != nil {
			return err
		}
	}
	return s.update("add user "+name, func(st *state) error {
		u, exists := st.users[name]
		if !exists {
			if len(keys) == 0 {
				return fmt.Errorf("user %q needs at least one public key", name)
			}
			u = User{Name: name, Created: s.now().UTC().Round(0)}
		}
		for _, k := range keys {
			wire := string(k.Marshal())
			switch owner, ok := st.byKey[wire]; {
			case ok && owner == name:
				continue
			case ok:
				return fmt.Errorf("%w: key %s belongs to user %q (remove it from %q first)", ErrKeyInUse, ssh.FingerprintSHA256(k), owner, owner)
			}
			st.byKey[wire] = name
			u.Keys = append(u.Keys, NormalizeKey(k))
		}
		u.Admin = u.Admin || admin
		st.users[name] = u
		return nil
	})
}

// SetAdmin makes the named user an admin or not. Demoting the last admin is
// refused with [ErrLastAdmin].
func (s *Store) SetAdmin(name string, admin bool) error {
	return s.update("set admin of "+name, func(st *state) error {
		u, ok := st.users[name]
		if !ok {
			return unknownUser(name)
		}
		if u.Admin && !admin && st.admins() == 1 {
			return fmt.Errorf("%w: %q is the only admin (make another user admin first)", ErrLastAdmin, name)
		}
		u.Admin = admin
		st.users[name] = u
		return nil
	})
}

// SetCanCreate sets whether the named user may create repositories.
func (s *Store) SetCanCreate(name string, v bool) error {
	return s.update("set repo creation of "+name, func(st *state) error {
		u, ok := st.users[name]
		if !ok {
			return unknownUser(name)
		}
		u.CanCreate = v
		st.users[name] = u
		return nil
	})
}

// RemoveUser removes the named user, their keys and all their grants.
// Removing the last admin is refused with [ErrLastAdmin].
func (s *Store) RemoveUser(name string) error {
	return s.update("remove user "+name, func(st *state) error {
		u, ok := st.users[name]
		if !ok {
			return unknownUser(name)
		}
		if u.Admin && st.admins() == 1 {
			return fmt.Errorf("%w: %q is the only admin (make another user admin first)", ErrLastAdmin, name)
		}
		delete(st.users, name)
		for wire, owner := range st.byKey {
			if owner == name {
				delete(st.byKey, wire)
			}
		}
		for repo, g := range st.grants {
			delete(g, name)
			if len(g) == 0 {
				delete(st.grants, repo)
			}
		}
		return nil
	})
}

// Grant sets user's level on repo, on every environment for Deploy.
// Granting None removes the grant.
func (s *Store) Grant(repo, user string, l Level) error {
	return s.SetGrant(repo, user, Grant{Level: l})
}

// SetGrant sets user's grant on repo, replacing the one before. A grant of
// None removes it.
func (s *Store) SetGrant(repo, user string, g Grant) error {
	if repo == "" {
		return errors.New("empty repository name")
	}
	if g.Level < None || g.Level > Admin {
		return fmt.Errorf("invalid access level %d", int(g.Level))
	}
	if g.Level != None {
		if err := g.valid(); err != nil {
			return fmt.Errorf("invalid grant: %v", err)
		}
		for _, e := range g.Envs {
			if names.Env(e) != nil {
				return fmt.Errorf("invalid environment name %q", e)
			}
		}
		g = g.clone()
		slices.Sort(g.Envs)
		g.Envs = slices.Compact(g.Envs)
	}
	return s.update(fmt.Sprintf("grant %s on %s to %s", g, repo, user), func(st *state) error {
		if _, ok := st.users[user]; !ok {
			return unknownUser(user)
		}
		m := st.grants[repo]
		if g.Level == None {
			delete(m, user)
			if len(m) == 0 {
				delete(st.grants, repo)
			}
			return nil
		}
		if m == nil {
			m = make(map[string]Grant)
			st.grants[repo] = m
		}
		m[user] = g
		return nil
	})
}

// Level returns u's level on repo as a whole: Admin for admins, otherwise
// the granted level, otherwise None. A deploy grant restricted to some
// environments counts as Write here (see [Grant.Base]); whether u may deploy
// to one environment is [Store.CanDeploy]'s answer. It consults the store's
// current record of u, not the copy passed in, so removing or demoting a
// user takes effect at once, even for sessions that looked the user up
// earlier.
func (s *Store) Level(repo string, u User) Level {
	return s.GrantOf(repo, u).Base()
}

// GrantOf returns u's grant on repo: Admin for admins, otherwise what was
// granted, otherwise None. Like Level it consults the store's current
// record of u.
func (s *Store) GrantOf(repo string, u User) Grant {
	return s.cur.Load().grantOf(repo, u.Name)
}

// CanRead reports whether the named user may read repo.
func (s *Store) CanRead(repo, user string) bool {
	return s.cur.Load().grantOf(repo, user).Base().Can(Read)
}

// CanDeploy reports whether the named user may deploy to env of repo: move
// refs/deploy/ENV/*, or have a deploy to ENV act for them (SPEC §3).
// Admins may deploy anywhere; otherwise it takes a deploy grant on repo
// that covers env.
func (s *Store) CanDeploy(repo, user, env string) bool {
	return s.cur.Load().grantOf(repo, user).CanDeploy(env)
}

// Grants returns the explicit grants on repo, by user name. Admins' implicit
// rights are not listed.
func (s *Store) Grants(repo string) map[string]Grant {
	g := s.cur.Load().grants[repo]
	out := make(map[string]Grant, len(g))
	for u, l := range g {
		out[u] = l.clone()
	}
	return out
}

// RemoveRepo drops every grant on repo, for a repository that was deleted,
// so that a new repository of the same name starts private.
func (s *Store) RemoveRepo(repo string) error {
	return s.update("remove grants on "+repo, func(st *state) error {
		delete(st.grants, repo)
		return nil
	})
}

// update applies fn to a copy of the current state, persists the copy, and
// publishes it. If fn fails nothing changes; if persisting fails the copy is
// dropped, so memory keeps agreeing with the file.
func (s *Store) update(op string, fn func(*state) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.cur.Load().clone()
	if err := fn(next); err != nil {
		return err
	}
	b, err := next.encode()
	if err != nil {
		return fmt.Errorf("%s: encode access file: %w", op, err)
	}
	replaced, err := atomicfile.Write(s.path, b, 0o600)
	if replaced {
		// The rename happened, so the file now holds next even if a
		// later step (syncing the directory) failed: memory follows the
		// file.
		s.cur.Store(next)
	}
	if err != nil {
		return fmt.Errorf("%s: save %s: %w", op, s.path, err)
	}
	return nil
}

func unknownUser(name string) error {
	return fmt.Errorf("%w %q (see `user list`)", ErrUnknownUser, name)
}

func newState() *state {
	return &state{
		users:  make(map[string]User),
		byKey:  make(map[string]string),
		grants: make(map[string]map[string]Grant),
	}
}

func (st *state) clone() *state {
	c := &state{
		users:  make(map[string]User, len(st.users)),
		byKey:  make(map[string]string, len(st.byKey)),
		grants: make(map[string]map[string]Grant, len(st.grants)),
	}
	for n, u := range st.users {
		c.users[n] = u.clone()
	}
	for k, n := range st.byKey {
		c.byKey[k] = n
	}
	for repo, g := range st.grants {
		cg := make(map[string]Grant, len(g))
		for u, l := range g {
			cg[u] = l // grants are never modified in place: sharing Envs is safe
		}
		c.grants[repo] = cg
	}
	return c
}

func (st *state) grantOf(repo, user string) Grant {
	cur, ok := st.users[user]
	switch {
	case !ok:
		return Grant{}
	case cur.Admin:
		return Grant{Level: Admin}
	}
	return st.grants[repo][user].clone()
}

func (st *state) admins() int {
	n := 0
	for _, u := range st.users {
		if u.Admin {
			n++
		}
	}
	return n
}

func (st *state) sortedUsers() []User {
	out := make([]User, 0, len(st.users))
	for _, u := range st.users {
		out = append(out, u.clone())
	}
	slices.SortFunc(out, func(a, b User) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (st *state) encode() ([]byte, error) {
	f := file{Version: fileVersion, Users: st.sortedUsers(), Grants: st.grants}
	b, err := json.MarshalIndent(f, "", "\t")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// decode parses and checks an access file, so that a hand edit that breaks
// an invariant is caught at start rather than misbehaving later.
func decode(b []byte) (*state, error) {
	var f file
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, err
	}
	if f.Version != fileVersion {
		return nil, fmt.Errorf("unsupported version %d (this refline reads version %d)", f.Version, fileVersion)
	}
	st := newState()
	for _, u := range f.Users {
		if err := checkName(u.Name); err != nil {
			return nil, err
		}
		if _, dup := st.users[u.Name]; dup {
			return nil, fmt.Errorf("user %q appears twice", u.Name)
		}
		for i, line := range u.Keys {
			k, err := ParseAuthorizedKey(line)
			if err != nil {
				return nil, fmt.Errorf("user %q key %d: %w", u.Name, i+1, err)
			}
			wire := string(k.Marshal())
			if owner, dup := st.byKey[wire]; dup {
				return nil, fmt.Errorf("key %s belongs to both %q and %q", ssh.FingerprintSHA256(k), owner, u.Name)
			}
			st.byKey[wire] = u.Name
			u.Keys[i] = NormalizeKey(k)
		}
		st.users[u.Name] = u
	}
	for repo, g := range f.Grants {
		if repo == "" {
			return nil, errors.New("grant on an empty repository name")
		}
		for name, l := range g {
			if _, ok := st.users[name]; !ok {
				return nil, fmt.Errorf("grant on %s to unknown user %q", repo, name)
			}
			if err := l.valid(); err != nil {
				return nil, fmt.Errorf("grant on %s to %q has %v", repo, name, err)
			}
		}
		if len(g) > 0 {
			st.grants[repo] = g
		}
	}
	return st, nil
}

func tempPrefix(base string) string { return atomicfile.TempPrefix(base) }

// removeStaleTemps deletes temporary files a crash left between writing and
// renaming. Only one Store uses a path at a time, so any that exist are
// garbage.
func removeStaleTemps(path string) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix(base)) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}
