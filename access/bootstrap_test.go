package access

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"
	"golang.org/x/crypto/ssh"
)

// TestBootstrap checks which keys become admins, under which names.
func TestBootstrap(t *testing.T) {
	// Keys by the name the cases use; each case's store and home are new.
	k := map[string]ssh.PublicKey{}
	for _, n := range []string{"a", "b", "c", "d"} {
		k[n] = newKey(t)
	}
	line := func(n, comment string) string { return NormalizeKey(k[n]) + comment }
	type user struct {
		name  string
		admin bool
		keys  []string // names in k
	}
	tests := []struct {
		name   string
		stored []user            // before
		specs  []string          // --admin-key; "@FILE" is FILE in a temp dir
		files  map[string]string // temp dir files, "home/..." under home
		noHome bool
		login  string // the running user
		want   []user // after; nil: as stored
		warn   string // a warning logged
		err    string
	}{
		{name: "literal key named by its comment", specs: []string{line("a", " Alice@laptop")},
			want: []user{{"alice", true, []string{"a"}}}},
		{name: "comment that is no user name", specs: []string{line("a", " x!y@host")},
			want: []user{{"admin", true, []string{"a"}}}},
		{name: "file of keys with comments and blanks", specs: []string{"@keys"},
			files: map[string]string{"keys": "# admins\n\n" + line("a", " alice@x") + "\n" + line("b", " bob") + "\n"},
			want:  []user{{"alice", true, []string{"a"}}, {"bob", true, []string{"b"}}}},
		{name: "known key's user becomes admin", specs: []string{line("b", " whoever")},
			stored: []user{{"carol", true, []string{"a"}}, {"bob", false, []string{"b"}}},
			want:   []user{{"bob", true, []string{"b"}}, {"carol", true, []string{"a"}}}},
		{name: "admin key given again changes nothing", specs: []string{line("a", " alice")},
			stored: []user{{"carol", true, []string{"a"}}}},
		{name: "given keys win over home", specs: []string{line("a", " alice")}, login: "dave",
			files: map[string]string{"home/.ssh/id.pub": line("b", "")},
			want:  []user{{"alice", true, []string{"a"}}}},
		{name: "missing file", specs: []string{"@nope"}, err: "--admin-key"},
		{name: "invalid key in a file", specs: []string{"@keys"}, files: map[string]string{"keys": line("a", "") + "\nssh-ed25519 garbage\n"},
			err: "line 2"},
		{name: "empty file", specs: []string{"@keys"}, files: map[string]string{"keys": "# none\n"}, err: "no public key found"},
		{name: "home keys named by the login", login: "Dave",
			files: map[string]string{"home/.ssh/id_ed25519.pub": line("a", " x@y"), "home/.ssh/id_rsa.pub": line("b", ""), "home/.ssh/id_ed25519": "private"},
			want:  []user{{"dave", true, []string{"a", "b"}}}},
		{name: "home keys with a login that is no user name", login: "Dave Smith",
			files: map[string]string{"home/.ssh/id.pub": line("a", "")},
			want:  []user{{"admin", true, []string{"a"}}}},
		{name: "home's bad key file is skipped", login: "dave",
			files: map[string]string{"home/.ssh/bad.pub": "garbage\n", "home/.ssh/id.pub": line("a", "")},
			want:  []user{{"dave", true, []string{"a"}}}, warn: "skipping key file"},
		{name: "stored admin: home is not read", login: "dave",
			stored: []user{{"carol", true, []string{"c"}}},
			files:  map[string]string{"home/.ssh/id.pub": line("a", "")}},
		{name: "stored non-admin: home keys become admins", login: "dave",
			stored: []user{{"bob", false, []string{"b"}}},
			files:  map[string]string{"home/.ssh/id.pub": line("a", "")},
			want:   []user{{"bob", false, []string{"b"}}, {"dave", true, []string{"a"}}}},
		{name: "no keys anywhere", login: "dave", warn: "no admin configured: pass --admin-key"},
		{name: "no home", noHome: true, warn: "no home directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			users, _ := openStore(t)
			for _, u := range tt.stored {
				var keys []ssh.PublicKey
				for _, n := range u.keys {
					keys = append(keys, k[n])
				}
				mustAdd(t, users, u.name, u.admin, keys...)
			}
			dir := t.TempDir()
			home := filepath.Join(dir, "home")
			if tt.noHome {
				home = ""
			}
			for name, data := range tt.files {
				p := filepath.Join(dir, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var specs []string
			for _, s := range tt.specs {
				if f, ok := strings.CutPrefix(s, "@"); ok {
					s = filepath.Join(dir, f)
				}
				specs = append(specs, s)
			}
			logger, hook := test.NewNullLogger()
			logger.SetOutput(io.Discard)

			err := Bootstrap(users, BootstrapConfig{AdminKeys: specs, Home: home, User: tt.login, Logger: logrus.NewEntry(logger)})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v, want an error with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if want == nil {
				want = tt.stored
			}
			var got, wantS []string
			for _, u := range users.Users() {
				got = append(got, describe(u.Name, u.Admin, u.Keys))
			}
			for _, u := range want {
				var keys []string
				for _, n := range u.keys {
					keys = append(keys, NormalizeKey(k[n]))
				}
				wantS = append(wantS, describe(u.name, u.admin, keys))
			}
			slices.Sort(got)
			slices.Sort(wantS)
			if !slices.Equal(got, wantS) {
				t.Errorf("users:\n got  %v\n want %v", got, wantS)
			}
			var warnings []string
			for _, e := range hook.AllEntries() {
				if e.Level == logrus.WarnLevel {
					warnings = append(warnings, e.Message)
				}
			}
			if w := strings.Join(warnings, "\n"); (tt.warn == "") != (w == "") || !strings.Contains(w, tt.warn) {
				t.Errorf("warnings %q, want %q", w, tt.warn)
			}
		})
	}
}

func describe(name string, admin bool, keys []string) string {
	keys = slices.Clone(keys)
	slices.Sort(keys)
	return name + map[bool]string{true: " (admin)", false: ""}[admin] + " " + strings.Join(keys, ",")
}
