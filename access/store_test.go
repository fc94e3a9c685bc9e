package access

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
)

func openStore(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), FileName)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return s, path
}

func mustAdd(t *testing.T, s *Store, name string, admin bool, keys ...ssh.PublicKey) {
	t.Helper()
	if err := s.AddUser(name, keys, admin); err != nil {
		t.Fatalf("AddUser(%q): %v", name, err)
	}
}

func mustGrant(t *testing.T, s *Store, repo, user string, l Level) {
	t.Helper()
	if err := s.Grant(repo, user, l); err != nil {
		t.Fatalf("Grant(%q, %q, %v): %v", repo, user, l, err)
	}
}

// snapshot is everything observable about a store, for comparing two.
type snapshot struct {
	Users  []User
	Grants map[string]map[string]Grant
}

func snap(s *Store) snapshot {
	st := s.cur.Load()
	g := make(map[string]map[string]Grant)
	for repo := range st.grants {
		g[repo] = s.Grants(repo)
	}
	return snapshot{Users: s.Users(), Grants: g}
}

func TestOpenMissingStartsEmpty(t *testing.T) {
	s, path := openStore(t)
	if len(s.Users()) != 0 || s.HasAdmin() {
		t.Fatalf("new store has users %v", s.Users())
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open created %s before any change: %v", path, err)
	}
}

func TestAddUser(t *testing.T) {
	s, _ := openStore(t)
	k1, k2, k3 := newKey(t), newKey(t), newKey(t)

	mustAdd(t, s, "alice", true, k1)
	u, ok := s.User("alice")
	if !ok || !u.Admin || u.CanCreate || !reflect.DeepEqual(u.Keys, []string{NormalizeKey(k1)}) || u.Created.IsZero() {
		t.Fatalf("User(alice) = %+v, %v", u, ok)
	}
	if !s.HasAdmin() || !u.MayCreate() {
		t.Error("alice should be an admin who may create repos")
	}

	// Adding keys to an existing user keeps the old ones, ignores
	// duplicates, and leaves Created alone.
	mustAdd(t, s, "alice", false, k2, k1, k2)
	u2, _ := s.User("alice")
	if want := []string{NormalizeKey(k1), NormalizeKey(k2)}; !reflect.DeepEqual(u2.Keys, want) {
		t.Errorf("keys = %v, want %v", u2.Keys, want)
	}
	if !u2.Admin {
		t.Error("AddUser with admin=false demoted an admin")
	}
	if !u2.Created.Equal(u.Created) {
		t.Error("AddUser changed Created of an existing user")
	}

	// A key owned by another user is refused, naming the owner, and nothing
	// of the failed call sticks (not even its other, free key).
	err := s.AddUser("bob", []ssh.PublicKey{k3, k1}, false)
	if !errors.Is(err, ErrKeyInUse) || !strings.Contains(err.Error(), `"alice"`) {
		t.Fatalf("AddUser(bob, alice's key) = %v, want ErrKeyInUse naming alice", err)
	}
	if _, ok := s.User("bob"); ok {
		t.Error("failed AddUser created bob")
	}
	if _, ok := s.UserByKey(k3); ok {
		t.Error("failed AddUser indexed its free key")
	}

	// A new user needs a key.
	if err := s.AddUser("carol", nil, false); err == nil {
		t.Error("AddUser without keys succeeded for a new user")
	}

	mustAdd(t, s, "bob", false, k3)
	if got := s.Users(); len(got) != 2 || got[0].Name != "alice" || got[1].Name != "bob" {
		t.Errorf("Users() = %v, want alice, bob sorted", got)
	}
}

func TestAddUserRefusesInvalidNames(t *testing.T) {
	s, _ := openStore(t)
	for _, name := range []string{"", "Alice", "-x", ".x", "a b", "a/b", strings.Repeat("x", 65)} {
		err := s.AddUser(name, []ssh.PublicKey{newKey(t)}, false)
		if err == nil || !strings.Contains(err.Error(), "a-z, 0-9") {
			t.Errorf("AddUser(%q) = %v, want an error giving the grammar", name, err)
		}
	}
	if err := s.AddUser("x", []ssh.PublicKey{nil}, false); err == nil {
		t.Error("AddUser with a nil key succeeded")
	}
	if n := len(s.Users()); n != 0 {
		t.Errorf("refused AddUser calls left %d users", n)
	}
}

func TestUserByKeyExactMatch(t *testing.T) {
	s, _ := openStore(t)
	ka, kb, other := newKey(t), newKey(t), newKey(t)
	mustAdd(t, s, "alice", false, ka)
	mustAdd(t, s, "bob", false, kb)

	tests := []struct {
		key    ssh.PublicKey
		want   string
		wantOK bool
	}{
		{ka, "alice", true},
		{kb, "bob", true},
		{other, "", false}, // same type, different key
		{nil, "", false},
	}
	for i, tt := range tests {
		u, ok := s.UserByKey(tt.key)
		if ok != tt.wantOK || u.Name != tt.want {
			t.Errorf("case %d: UserByKey = %q, %v; want %q, %v", i, u.Name, ok, tt.want, tt.wantOK)
		}
	}

	// A key parsed back from its text form is the same identity.
	parsed, err := ParseAuthorizedKey(NormalizeKey(ka) + " laptop")
	if err != nil {
		t.Fatal(err)
	}
	if u, ok := s.UserByKey(parsed); !ok || u.Name != "alice" {
		t.Errorf("UserByKey(parsed alice key) = %q, %v", u.Name, ok)
	}
}

func TestReturnedUsersAreCopies(t *testing.T) {
	s, _ := openStore(t)
	k := newKey(t)
	mustAdd(t, s, "alice", false, k)
	u, _ := s.User("alice")
	u.Keys[0] = "tampered"
	us := s.Users()
	us[0].Keys[0] = "tampered"
	bk, _ := s.UserByKey(k)
	bk.Keys[0] = "tampered"
	if got, _ := s.User("alice"); got.Keys[0] != NormalizeKey(k) {
		t.Errorf("store's key changed through a returned copy: %q", got.Keys[0])
	}
}

func TestGrantsAndLevel(t *testing.T) {
	s, _ := openStore(t)
	mustAdd(t, s, "root", true, newKey(t))
	mustAdd(t, s, "dev", false, newKey(t))
	mustAdd(t, s, "ops", false, newKey(t))
	mustGrant(t, s, "app", "dev", Write)
	mustGrant(t, s, "app", "ops", Deploy)
	mustGrant(t, s, "lib", "dev", Admin) // the creator of a repo
	mustGrant(t, s, "app", "root", Read) // admins override grants
	mustGrant(t, s, "old", "ops", Read)
	mustGrant(t, s, "old", "ops", None) // None removes

	user := func(name string) User {
		u, ok := s.User(name)
		if !ok {
			return User{Name: name}
		}
		return u
	}
	tests := []struct {
		repo, user string
		want       Level
	}{
		{"app", "root", Admin},
		{"nowhere", "root", Admin},
		{"app", "dev", Write},
		{"app", "ops", Deploy},
		{"lib", "dev", Admin},
		{"lib", "ops", None},
		{"old", "ops", None},
		{"app", "stranger", None},
		{"app", "", None},
	}
	for _, tt := range tests {
		if got := s.Level(tt.repo, user(tt.user)); got != tt.want {
			t.Errorf("Level(%q, %q) = %v, want %v", tt.repo, tt.user, got, tt.want)
		}
	}

	if got, want := s.Grants("app"), map[string]Grant{"dev": {Level: Write}, "ops": {Level: Deploy}, "root": {Level: Read}}; !reflect.DeepEqual(got, want) {
		t.Errorf("Grants(app) = %v, want %v", got, want)
	}
	if got := s.Grants("old"); len(got) != 0 {
		t.Errorf("Grants(old) = %v after granting None", got)
	}
	// Grants returns a copy.
	s.Grants("app")["dev"] = Grant{Level: Admin}
	if got := s.Level("app", user("dev")); got != Write {
		t.Errorf("Level changed through the map Grants returned: %v", got)
	}

	if err := s.Grant("app", "stranger", Read); !errors.Is(err, ErrUnknownUser) {
		t.Errorf("Grant to unknown user = %v, want ErrUnknownUser", err)
	}
	if err := s.Grant("", "dev", Read); err == nil {
		t.Error("Grant on empty repo name succeeded")
	}
	if err := s.Grant("app", "dev", Level(7)); err == nil {
		t.Error("Grant of an invalid level succeeded")
	}

	// Level follows the store, not the caller's stale copy.
	stale := user("ops")
	stale.Admin = true
	if got := s.Level("lib", stale); got != None {
		t.Errorf("Level trusted the caller's Admin flag: %v", got)
	}

	if err := s.RemoveRepo("app"); err != nil {
		t.Fatal(err)
	}
	if got := s.Level("app", user("dev")); got != None {
		t.Errorf("Level after RemoveRepo = %v, want none", got)
	}
	if got := s.Level("lib", user("dev")); got != Admin {
		t.Errorf("RemoveRepo(app) touched lib: %v", got)
	}
}

func TestRemoveUser(t *testing.T) {
	s, _ := openStore(t)
	kRoot, kDev := newKey(t), newKey(t)
	mustAdd(t, s, "root", true, kRoot)
	mustAdd(t, s, "dev", false, kDev)
	mustGrant(t, s, "app", "dev", Write)
	mustGrant(t, s, "lib", "dev", Read)
	mustGrant(t, s, "lib", "root", Read)
	dev, _ := s.User("dev")

	if err := s.RemoveUser("dev"); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.User("dev"); ok {
		t.Error("dev still exists")
	}
	if _, ok := s.UserByKey(kDev); ok {
		t.Error("dev's key still authenticates")
	}
	if got := s.Level("app", dev); got != None {
		t.Errorf("removed user's Level = %v", got)
	}
	if got := s.Grants("app"); len(got) != 0 {
		t.Errorf("Grants(app) = %v after removing dev", got)
	}
	if got, want := s.Grants("lib"), map[string]Grant{"root": {Level: Read}}; !reflect.DeepEqual(got, want) {
		t.Errorf("Grants(lib) = %v, want %v", got, want)
	}

	// Re-adding the name starts from nothing.
	mustAdd(t, s, "dev", false, kDev)
	if got := s.Level("app", dev); got != None {
		t.Errorf("re-added user inherited a grant: %v", got)
	}

	if err := s.RemoveUser("root"); !errors.Is(err, ErrLastAdmin) {
		t.Errorf("RemoveUser(last admin) = %v, want ErrLastAdmin", err)
	}
	if err := s.RemoveUser("nobody"); !errors.Is(err, ErrUnknownUser) {
		t.Errorf("RemoveUser(nobody) = %v, want ErrUnknownUser", err)
	}

	// With a second admin, the first may go.
	if err := s.SetAdmin("dev", true); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveUser("root"); err != nil {
		t.Errorf("RemoveUser(root) with another admin: %v", err)
	}
	if !s.HasAdmin() {
		t.Error("HasAdmin() = false")
	}
}

func TestSetAdminAndCanCreate(t *testing.T) {
	s, _ := openStore(t)
	mustAdd(t, s, "root", true, newKey(t))
	mustAdd(t, s, "dev", false, newKey(t))

	if err := s.SetAdmin("root", false); !errors.Is(err, ErrLastAdmin) {
		t.Errorf("demoting the last admin = %v, want ErrLastAdmin", err)
	}
	if err := s.SetAdmin("nobody", true); !errors.Is(err, ErrUnknownUser) {
		t.Errorf("SetAdmin(nobody) = %v", err)
	}
	if err := s.SetCanCreate("nobody", true); !errors.Is(err, ErrUnknownUser) {
		t.Errorf("SetCanCreate(nobody) = %v", err)
	}

	if u, _ := s.User("dev"); u.MayCreate() {
		t.Error("dev may create repos before being allowed")
	}
	if err := s.SetCanCreate("dev", true); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.User("dev"); !u.CanCreate || !u.MayCreate() || u.Admin {
		t.Errorf("after SetCanCreate: %+v", u)
	}
	if err := s.SetAdmin("dev", true); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAdmin("root", false); err != nil {
		t.Errorf("demoting one of two admins: %v", err)
	}
	if got := s.Level("any", User{Name: "root"}); got != None {
		t.Errorf("demoted admin's Level = %v", got)
	}
}

func TestReopenKeepsState(t *testing.T) {
	s, path := openStore(t)
	kRoot, kDev := newKey(t), newKey(t)
	mustAdd(t, s, "root", true, kRoot)
	mustAdd(t, s, "dev", false, kDev, newKey(t))
	if err := s.SetCanCreate("dev", true); err != nil {
		t.Fatal(err)
	}
	mustGrant(t, s, "app", "dev", Deploy)
	mustGrant(t, s, "team/lib", "dev", Read)

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("access file mode = %v, want 0600", mode)
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), `"deploy"`) {
		t.Errorf("access file does not name levels:\n%s", b)
	}

	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := snap(s2), snap(s); !reflect.DeepEqual(got, want) {
		t.Fatalf("reopened state differs:\n got %+v\nwant %+v", got, want)
	}
	if u, ok := s2.UserByKey(kDev); !ok || u.Name != "dev" {
		t.Errorf("reopened UserByKey(dev) = %q, %v", u.Name, ok)
	}
	if got := s2.Level("app", User{Name: "dev"}); got != Deploy {
		t.Errorf("reopened Level = %v", got)
	}
	if !s2.HasAdmin() {
		t.Error("reopened store lost its admin")
	}
}

func TestCanDeploy(t *testing.T) {
	s, _ := openStore(t)
	mustAdd(t, s, "root", true, newKey(t))
	for _, u := range []string{"ops", "qa", "dev", "viewer", "gone"} {
		mustAdd(t, s, u, false, newKey(t))
	}
	mustGrant(t, s, "app", "ops", Deploy)
	mustGrant(t, s, "app", "dev", Write)
	mustGrant(t, s, "app", "viewer", Read)
	mustGrant(t, s, "app", "gone", Deploy)
	if err := s.SetGrant("app", "qa", Grant{Level: Deploy, Envs: []string{"staging", "qa", "staging"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveUser("gone"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		repo, user, env string
		deploy, read    bool
		level           Level
		grant           string
	}{
		{"app", "root", "production", true, true, Admin, "admin"},
		{"other", "root", "production", true, true, Admin, "admin"},
		{"app", "ops", "production", true, true, Deploy, "deploy"},
		{"app", "ops", "staging", true, true, Deploy, "deploy"},
		{"other", "ops", "staging", false, false, None, "none"},
		{"app", "qa", "staging", true, true, Write, "deploy:qa,staging"},
		{"app", "qa", "qa", true, true, Write, "deploy:qa,staging"},
		{"app", "qa", "production", false, true, Write, "deploy:qa,staging"},
		{"app", "qa", "", false, true, Write, "deploy:qa,staging"},
		{"app", "dev", "staging", false, true, Write, "write"},
		{"app", "viewer", "staging", false, true, Read, "read"},
		{"app", "gone", "staging", false, false, None, "none"},
		{"app", "stranger", "staging", false, false, None, "none"},
		{"app", "", "staging", false, false, None, "none"},
	}
	for _, tt := range tests {
		if got := s.CanDeploy(tt.repo, tt.user, tt.env); got != tt.deploy {
			t.Errorf("CanDeploy(%q, %q, %q) = %v, want %v", tt.repo, tt.user, tt.env, got, tt.deploy)
		}
		if got := s.CanRead(tt.repo, tt.user); got != tt.read {
			t.Errorf("CanRead(%q, %q) = %v, want %v", tt.repo, tt.user, got, tt.read)
		}
		if got := s.Level(tt.repo, User{Name: tt.user}); got != tt.level {
			t.Errorf("Level(%q, %q) = %v, want %v", tt.repo, tt.user, got, tt.level)
		}
		if got := s.GrantOf(tt.repo, User{Name: tt.user}).String(); got != tt.grant {
			t.Errorf("GrantOf(%q, %q) = %v, want %v", tt.repo, tt.user, got, tt.grant)
		}
	}
	// An environment grant replaces an unrestricted one, and back.
	if err := s.SetGrant("app", "ops", Grant{Level: Deploy, Envs: []string{"staging"}}); err != nil {
		t.Fatal(err)
	}
	if s.CanDeploy("app", "ops", "production") {
		t.Error("ops kept production after being restricted to staging")
	}
	if err := s.SetGrant("app", "ops", Grant{Level: Write, Envs: []string{"staging"}}); err == nil {
		t.Error("SetGrant accepted write with environments")
	}
}

func TestRestrictedGrantSurvivesReopen(t *testing.T) {
	s, path := openStore(t)
	mustAdd(t, s, "root", true, newKey(t))
	mustAdd(t, s, "qa", false, newKey(t))
	if err := s.SetGrant("app", "qa", Grant{Level: Deploy, Envs: []string{"staging", "qa"}}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), `"qa": "deploy:qa,staging"`) {
		t.Errorf("access file does not hold the grant as text:\n%s", b)
	}
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if !s2.CanDeploy("app", "qa", "qa") || s2.CanDeploy("app", "qa", "production") {
		t.Errorf("reopened grant = %v", s2.GrantOf("app", User{Name: "qa"}))
	}
}

func TestOpenCorruptFileIsAnError(t *testing.T) {
	k := NormalizeKey(newKey(t))
	user := func(name, key string) string {
		return fmt.Sprintf(`{"name":%q,"keys":[%q],"created":"2025-01-01T00:00:00Z"}`, name, key)
	}
	tests := []struct {
		name    string
		content string
		wantErr string
	}{
		{"empty", "", "unexpected end"},
		{"truncated", `{"version":1,"users":[`, "unexpected end"},
		{"not json", "users: alice\n", "invalid character"},
		{"trailing junk", `{"version":1}x`, "invalid character"},
		{"no version", `{"users":[]}`, "version 0"},
		{"future version", `{"version":2}`, "version 2"},
		{"bad name", `{"version":1,"users":[` + user("Alice", k) + `]}`, "invalid user name"},
		{"duplicate user", `{"version":1,"users":[` + user("a", k) + `,` + user("a", NormalizeKey(newKey(t))) + `]}`, "twice"},
		{"bad key", `{"version":1,"users":[` + user("a", "ssh-ed25519 AAAA") + `]}`, "invalid public key"},
		{"shared key", `{"version":1,"users":[` + user("a", k) + `,` + user("b", k) + `]}`, "both"},
		{"grant to unknown user", `{"version":1,"users":[` + user("a", k) + `],"grants":{"app":{"zed":"read"}}}`, "unknown user"},
		{"bad level", `{"version":1,"users":[` + user("a", k) + `],"grants":{"app":{"a":"owner"}}}`, "unknown access level"},
		{"none grant", `{"version":1,"users":[` + user("a", k) + `],"grants":{"app":{"a":"none"}}}`, "level none"},
		{"write per environment", `{"version":1,"users":[` + user("a", k) + `],"grants":{"app":{"a":"write:staging"}}}`, "only deploy is given per environment"},
		{"bad environment", `{"version":1,"users":[` + user("a", k) + `],"grants":{"app":{"a":"deploy:Prod/x"}}}`, "invalid environment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), FileName)
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := Open(path)
			if err == nil {
				t.Fatalf("Open succeeded with %d users", len(s.Users()))
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Open error = %q, want it to name %s and mention %q", err, path, tt.wantErr)
			}
			if b, _ := os.ReadFile(path); string(b) != tt.content {
				t.Errorf("corrupt file was rewritten to %q", b)
			}
		})
	}

	// A file that cannot be read at all is an error too, not an empty store.
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, FileName), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(filepath.Join(dir, FileName)); err == nil {
		t.Error("Open of a directory succeeded")
	}
}

func TestPersistFailureRollsBack(t *testing.T) {
	// Tests run as root, so permissions cannot force a write to fail.
	// Instead, swap the store's directory for a regular file.
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, FileName)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	kRoot, kDev := newKey(t), newKey(t)
	mustAdd(t, s, "root", true, kRoot)
	mustAdd(t, s, "dev", false, kDev)
	mustGrant(t, s, "app", "dev", Write)
	before := snap(s)

	breakDir := func() {
		t.Helper()
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dir, []byte("not a directory"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	breakDir()

	mutations := []struct {
		name string
		do   func() error
	}{
		{"AddUser new", func() error { return s.AddUser("eve", []ssh.PublicKey{newKey(t)}, true) }},
		{"AddUser key", func() error { return s.AddUser("dev", []ssh.PublicKey{newKey(t)}, false) }},
		{"SetAdmin", func() error { return s.SetAdmin("dev", true) }},
		{"SetCanCreate", func() error { return s.SetCanCreate("dev", true) }},
		{"RemoveUser", func() error { return s.RemoveUser("dev") }},
		{"Grant", func() error { return s.Grant("app", "dev", Deploy) }},
		{"Grant none", func() error { return s.Grant("app", "dev", None) }},
		{"RemoveRepo", func() error { return s.RemoveRepo("app") }},
	}
	for _, m := range mutations {
		err := m.do()
		if err == nil {
			t.Fatalf("%s succeeded with the data directory gone", m.name)
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("%s error %q does not name the file", m.name, err)
		}
		if got := snap(s); !reflect.DeepEqual(got, before) {
			t.Fatalf("%s failed but changed memory:\n got %+v\nwant %+v", m.name, got, before)
		}
	}
	if u, ok := s.UserByKey(kDev); !ok || u.Name != "dev" {
		t.Error("dev's key stopped working after failed writes")
	}

	// Once the disk is back, changes persist again.
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	mustGrant(t, s, "app", "dev", Deploy)
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := snap(s2), snap(s); !reflect.DeepEqual(got, want) {
		t.Fatalf("state after recovery differs on disk:\n got %+v\nwant %+v", got, want)
	}
}

func TestRenameFailureLeavesFileAndNoTemp(t *testing.T) {
	s, path := openStore(t)
	mustAdd(t, s, "root", true, newKey(t))
	before := snap(s)

	// Replace the file by a non-empty directory: the temp file is written,
	// but the rename over it fails.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(path, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := s.AddUser("dev", []ssh.PublicKey{newKey(t)}, false); err == nil {
		t.Fatal("AddUser succeeded though the rename must fail")
	}
	if got := snap(s); !reflect.DeepEqual(got, before) {
		t.Errorf("failed rename changed memory: %+v", got)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix(FileName)) {
			t.Errorf("temp file %s left behind", e.Name())
		}
	}
}

func TestOpenRemovesStaleTempFiles(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, tempPrefix(FileName)+"12345")
	other := filepath.Join(dir, "keep.json")
	for _, p := range []string{stale, other} {
		if err := os.WriteFile(p, []byte("{"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Open(filepath.Join(dir, FileName)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temp file survived Open: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("Open removed an unrelated file: %v", err)
	}
}

func TestConcurrentChangesLeaveConsistentFile(t *testing.T) {
	s, path := openStore(t)
	mustAdd(t, s, "root", true, newKey(t))

	const n = 24
	keys := make([]ssh.PublicKey, n)
	for i := range keys {
		keys[i] = newKey(t)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4*n)
	for i := range n {
		name := fmt.Sprintf("user%02d", i)
		wg.Go(func() {
			if err := s.AddUser(name, []ssh.PublicKey{keys[i]}, false); err != nil {
				errs <- err
				return
			}
			if err := s.Grant("shared", name, Level(1+i%3)); err != nil {
				errs <- err
			}
			if err := s.Grant(fmt.Sprintf("own%02d", i), name, Admin); err != nil {
				errs <- err
			}
		})
		// Readers race the writers.
		wg.Go(func() {
			for range 20 {
				if u, ok := s.UserByKey(keys[i]); ok {
					_ = s.Level("shared", u)
				}
				_ = s.Users()
				_ = s.Grants("shared")
			}
		})
	}
	// Two writers contend for the same key: exactly one may win.
	contested := newKey(t)
	results := make(chan error, 2)
	for _, name := range []string{"left", "right"} {
		wg.Go(func() { results <- s.AddUser(name, []ssh.PublicKey{contested}, false) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if e1, e2 := <-results, <-results; (e1 == nil) == (e2 == nil) {
		t.Errorf("contested key: errors %v and %v, want exactly one failure", e1, e2)
	}

	if got := len(s.Users()); got != n+2 {
		t.Errorf("%d users, want %d", got, n+2)
	}
	if got := len(s.Grants("shared")); got != n {
		t.Errorf("%d grants on shared, want %d", got, n)
	}
	for i := range n {
		name := fmt.Sprintf("user%02d", i)
		if got := s.Level("shared", User{Name: name}); got != Level(1+i%3) {
			t.Errorf("Level(shared, %s) = %v", name, got)
		}
	}

	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := snap(s2), snap(s); !reflect.DeepEqual(got, want) {
		t.Fatalf("file disagrees with memory after concurrent changes:\n got %+v\nwant %+v", got, want)
	}
}
