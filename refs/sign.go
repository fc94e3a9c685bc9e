package refs

import (
	"bytes"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"
)

// SignatureNamespace is the SSHSIG namespace git uses for commit signatures.
const SignatureNamespace = "git"

// Sentinel errors of VerifyCommit.
var (
	ErrUnsigned     = errors.New("commit is not signed")
	ErrBadSignature = errors.New("bad commit signature")
)

// Signer signs commits with the server's SSH key the way
// `git commit -S` with gpg.format=ssh does: an armored SSHSIG (namespace
// "git", sha512) in the commit's gpgsig header.
type Signer struct {
	key       ssh.Signer
	principal string
}

// NewSigner returns a Signer for key. principal names the key in
// allowed_signers files, e.g. "refline@HOST"; it must not contain spaces.
func NewSigner(key ssh.Signer, principal string) *Signer {
	return &Signer{key: key, principal: principal}
}

// PublicKey returns the public half of the signing key.
func (s *Signer) PublicKey() ssh.PublicKey { return s.key.PublicKey() }

// AllowedSignersLine returns the line of an OpenSSH allowed_signers file
// (gpg.ssh.allowedSignersFile) that makes `git verify-commit` accept the
// commits s signs, as `ssh HOST keys` prints it:
//
//	refline@HOST namespaces="git" ssh-ed25519 AAAA…
func (s *Signer) AllowedSignersLine() string {
	key := strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(s.key.PublicKey())), "\n")
	return fmt.Sprintf("%s namespaces=%q %s", s.principal, SignatureNamespace, key)
}

// Sign sets c.PGPSignature to an armored SSH signature over c's encoding
// without signature, replacing any signature c had. Store c with c.Encode
// afterwards: the signed payload is exactly what Encode writes minus the
// gpgsig header, which is what git verifies.
func (s *Signer) Sign(c *object.Commit) error {
	c.PGPSignature = ""
	// Encode, not EncodeWithoutSignature: for a commit read from a
	// repository, EncodeWithoutSignature replays the stored bytes, which
	// may differ from what Encode will store for the re-signed commit.
	// With no signature set the two are the same for new commits.
	payload := &plumbing.MemoryObject{}
	if err := c.Encode(payload); err != nil {
		return fmt.Errorf("sign commit: encode: %w", err)
	}
	r, err := payload.Reader()
	if err != nil {
		return fmt.Errorf("sign commit: %w", err)
	}
	sig, err := sshsig.Sign(r, s.key, sshsig.HashSHA512, SignatureNamespace)
	if err != nil {
		return fmt.Errorf("sign commit: %w", err)
	}
	c.PGPSignature = string(sshsig.Armor(sig))
	return nil
}

// VerifyCommit checks that c carries an SSH signature in namespace "git",
// made by exactly key, over c's encoding without signature. A commit read
// from a repository is checked against its stored bytes, as git does.
// It returns an error wrapping ErrUnsigned when c has no signature and
// ErrBadSignature for any other failure.
func VerifyCommit(c *object.Commit, key ssh.PublicKey) error {
	if c.PGPSignature == "" {
		return fmt.Errorf("verify commit %s: %w", c.Hash, ErrUnsigned)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("verify commit %s: %w: %s", c.Hash, ErrBadSignature, fmt.Sprintf(format, args...))
	}
	block, rest := pem.Decode([]byte(c.PGPSignature))
	if block == nil || block.Type != sshsig.PEMType {
		return bad("not an SSH signature")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return bad("data after the signature")
	}
	sig, err := sshsig.ParseSignature(block.Bytes)
	if err != nil {
		return bad("%v", err)
	}
	if sig.Namespace != SignatureNamespace {
		return bad("namespace %q, want %q", sig.Namespace, SignatureNamespace)
	}
	if !bytes.Equal(sig.PublicKey.Marshal(), key.Marshal()) {
		return bad("signed by %s, not by %s", ssh.FingerprintSHA256(sig.PublicKey), ssh.FingerprintSHA256(key))
	}
	if err := sig.HashAlgorithm.Supported(); err != nil {
		return bad("%v", err)
	}
	payload := &plumbing.MemoryObject{}
	if err := c.EncodeWithoutSignature(payload); err != nil {
		return fmt.Errorf("verify commit %s: encode: %w", c.Hash, err)
	}
	r, err := payload.Reader()
	if err != nil {
		return fmt.Errorf("verify commit %s: %w", c.Hash, err)
	}
	defer r.Close()
	if err := sshsig.Verify(io.Reader(r), sig, key, sig.HashAlgorithm, SignatureNamespace); err != nil {
		return bad("%v", err)
	}
	return nil
}
