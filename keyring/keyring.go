// Package keyring creates and loads the server's own keys: the SSH host key,
// the artifact-signing key and the age identities that decrypt secrets.
package keyring

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"
	"golang.org/x/crypto/ssh"
)

// File names inside the keys directory.
const (
	HostKeyFile    = "ssh_host_ed25519_key"
	SigningKeyFile = "signing_ed25519_key"
	AgeKeyFile     = "age.key"
)

// Keys are the server's keys.
type Keys struct {
	Dir     string
	Host    ssh.Signer
	Signing ssh.Signer
	// Age holds every active age identity, oldest first. More than one is
	// active while a rotation is under way.
	Age []*age.X25519Identity
	// Created names the files made by this Load, for the log.
	Created []string
}

// Load reads the keys in dir, creating any that are missing with mode 0600.
func Load(dir string) (*Keys, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("keys dir: %w", err)
	}
	k := &Keys{Dir: dir}
	var err error
	if k.Host, err = k.sshKey(HostKeyFile, "refline host key"); err != nil {
		return nil, err
	}
	if k.Signing, err = k.sshKey(SigningKeyFile, "refline artifact signing key"); err != nil {
		return nil, err
	}
	if k.Age, err = k.ageKeys(); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *Keys) sshKey(name, comment string) (ssh.Signer, error) {
	path := filepath.Join(k.Dir, name)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate %s: %w", name, err)
		}
		block, err := ssh.MarshalPrivateKey(priv, comment)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", name, err)
		}
		data = pem.EncodeToMemory(block)
		if err := writeNew(path, data); err != nil {
			return nil, err
		}
		signer, err := ssh.NewSignerFromKey(priv)
		if err != nil {
			return nil, err
		}
		pub := append(bytes.TrimSpace(ssh.MarshalAuthorizedKey(signer.PublicKey())), " "+comment+"\n"...)
		if err := writeNew(path+".pub", pub); err != nil {
			return nil, err
		}
		k.Created = append(k.Created, path)
		return signer, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	signer, err := ssh.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return signer, nil
}

func (k *Keys) ageKeys() ([]*age.X25519Identity, error) {
	path := filepath.Join(k.Dir, AgeKeyFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		id, err := age.GenerateX25519Identity()
		if err != nil {
			return nil, fmt.Errorf("generate age identity: %w", err)
		}
		if err := writeNew(path, []byte(formatAge(id))); err != nil {
			return nil, err
		}
		k.Created = append(k.Created, path)
		return []*age.X25519Identity{id}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var ids []*age.X25519Identity
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, err := age.ParseX25519Identity(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: not an age identity: %w", path, n, err)
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%s holds no age identity", path)
	}
	return ids, nil
}

func formatAge(id *age.X25519Identity) string {
	return fmt.Sprintf("# refline age identity\n# public key: %s\n%s\n", id.Recipient(), id)
}

// writeNew creates a file that must not exist yet, mode 0600, durably.
func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return f.Close()
}

// AgeRecipients are the public halves of the active age identities.
func (k *Keys) AgeRecipients() []string {
	out := make([]string, len(k.Age))
	for i, id := range k.Age {
		out[i] = id.Recipient().String()
	}
	return out
}

// AgeIdentities returns the active identities as age.Identity values.
func (k *Keys) AgeIdentities() []age.Identity {
	out := make([]age.Identity, len(k.Age))
	for i, id := range k.Age {
		out[i] = id
	}
	return out
}
