package access

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/ssh"
)

// BootstrapConfig says where Bootstrap finds the keys that become admins.
type BootstrapConfig struct {
	// AdminKeys are the --admin-key values: OpenSSH public keys, each given
	// literally or as a file of one key a line.
	AdminKeys []string
	// Home is the running user's home directory, whose .ssh/*.pub keys
	// become admins when AdminKeys is empty and no admin is stored; ""
	// when there is none.
	Home string
	// User is the running user's login name, which names the admin of
	// Home's keys when it is a valid user name (lower-cased); otherwise
	// that admin is "admin".
	User   string
	Logger *logrus.Entry
}

// Bootstrap makes sure somebody can administer the server (SPEC §1): the
// keys of cfg.AdminKeys become admins; with none given and no admin
// stored, the keys of cfg.Home/.ssh/*.pub do. A key that belongs to a user
// makes that user an admin; a new key becomes a new admin, named after
// its comment ("alice@laptop" gives "alice") for AdminKeys and after
// cfg.User for Home's keys. Finding no key at all is not an error, only a
// warning: the server runs, and nobody can administer it yet.
func Bootstrap(users *Store, cfg BootstrapConfig) error {
	log := cfg.Logger
	for _, spec := range cfg.AdminKeys {
		keys, err := readAdminKeys(spec)
		if err != nil {
			return fmt.Errorf("--admin-key %s: %w", spec, err)
		}
		for _, k := range keys {
			if err := ensureAdmin(users, k.key, k.name, log); err != nil {
				return err
			}
		}
	}
	if len(cfg.AdminKeys) > 0 || users.HasAdmin() {
		return nil
	}
	if cfg.Home == "" {
		log.Warn("no admin configured and no home directory to find keys in; pass --admin-key")
		return nil
	}
	files, _ := filepath.Glob(filepath.Join(cfg.Home, ".ssh", "*.pub"))
	name := "admin"
	if u := strings.ToLower(cfg.User); ValidName(u) {
		name = u
	}
	found := 0
	for _, file := range files {
		keys, err := readAdminKeys(file)
		if err != nil {
			log.WithError(err).WithField("file", file).Warn("skipping key file")
			continue
		}
		for _, k := range keys {
			if err := ensureAdmin(users, k.key, name, log); err != nil {
				return err
			}
			found++
		}
	}
	if found == 0 {
		log.Warn("no admin configured: pass --admin-key KEY (no ~/.ssh/*.pub found)")
	}
	return nil
}

// adminKey is a key to make an admin, and the name of the user it makes.
type adminKey struct {
	key  ssh.PublicKey
	name string
}

// readAdminKeys reads an OpenSSH public key given literally or as a file
// (one key a line). Each key's user name comes from its comment when that
// is a valid user name ("alice@laptop" gives "alice"), else it is "admin".
func readAdminKeys(spec string) ([]adminKey, error) {
	text := spec
	if !strings.HasPrefix(strings.TrimSpace(spec), "ssh-") && !strings.HasPrefix(strings.TrimSpace(spec), "ecdsa-") && !strings.HasPrefix(strings.TrimSpace(spec), "sk-") {
		b, err := os.ReadFile(spec)
		if err != nil {
			return nil, err
		}
		text = string(b)
	}
	var out []adminKey
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := ParseAuthorizedKey(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		name := "admin"
		if f := strings.Fields(line); len(f) > 2 {
			c := strings.ToLower(strings.SplitN(f[2], "@", 2)[0])
			if ValidName(c) {
				name = c
			}
		}
		out = append(out, adminKey{k, name})
	}
	if len(out) == 0 {
		return nil, errors.New("no public key found")
	}
	return out, nil
}

// ensureAdmin makes key's user an admin, adding the user name with key
// when nobody has it.
func ensureAdmin(users *Store, key ssh.PublicKey, name string, log *logrus.Entry) error {
	if u, ok := users.UserByKey(key); ok {
		if !u.Admin {
			log.WithField("user", u.Name).Info("granting admin to configured key's user")
			return users.SetAdmin(u.Name, true)
		}
		return nil
	}
	if err := users.AddUser(name, []ssh.PublicKey{key}, true); err != nil {
		return fmt.Errorf("add admin %s: %w", name, err)
	}
	log.WithFields(logrus.Fields{"user": name, "key": ssh.FingerprintSHA256(key)}).Info("admin key added")
	return nil
}
