package refs

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"
)

// writeSignedEmptyCommit stores a signed commit of the empty tree and
// returns its hash.
func writeSignedEmptyCommit(t *testing.T, gitDir string, s *Signer, parent plumbing.Hash, msg string) plumbing.Hash {
	t.Helper()
	repo := openRepo(t, gitDir)
	h, err := WriteSignedCommit(repo, CommitSpec{
		Tree: emptyTree(t, repo), Parent: parent, Message: msg, Committer: testIdentity(),
	}, s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// verifyWithGit runs `git verify-commit` with s's allowed_signers line.
func verifyWithGit(t *testing.T, gitDir string, s *Signer, commit string) (string, error) {
	t.Helper()
	allowed := allowedSigners(t, s)
	_, stderr, err := tryGit(t, "", "", "--git-dir="+gitDir,
		"-c", "gpg.format=ssh", "-c", "gpg.ssh.allowedSignersFile="+allowed,
		"verify-commit", "--verbose", commit)
	return stderr, err
}

// allowedSigners writes s's allowed_signers line to a file and returns its path.
func allowedSigners(t *testing.T, s *Signer) string {
	t.Helper()
	allowed := filepath.Join(t.TempDir(), "allowed_signers")
	if err := os.WriteFile(allowed, []byte(s.AllowedSignersLine()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return allowed
}

func TestSignedCommitVerifiesWithGit(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*Signer{
		"ed25519":    newTestSigner(t),
		"rsa":        signerFrom(t, rsaKey),
		"ecdsa-p256": signerFrom(t, ecKey),
	} {
		t.Run(name, func(t *testing.T) {
			dir := initBare(t)
			c1 := writeSignedEmptyCommit(t, dir, s, plumbing.ZeroHash, "web #1: artifact of 3f2a9c1 \"first\"\n\nPipeline: web\nRun: 1\n")
			c2 := writeSignedEmptyCommit(t, dir, s, c1, "web #2: artifact")
			if err := (Updater{}).Apply(context.Background(), dir, Update{Ref: ArtifactRef("web"), New: c2}); err != nil {
				t.Fatal(err)
			}
			for _, c := range []plumbing.Hash{c1, c2} {
				if out, err := verifyWithGit(t, dir, s, c.String()); err != nil {
					t.Fatalf("git verify-commit %s: %v\n%s", c, err, out)
				} else if !strings.Contains(out, `Good "git" signature for refline@test.example`) {
					t.Errorf("git verify-commit said:\n%s", out)
				}
				commit, err := object.GetCommit(openRepo(t, dir).Storer, c)
				if err != nil {
					t.Fatal(err)
				}
				if err := VerifyCommit(commit, s.PublicKey()); err != nil {
					t.Errorf("VerifyCommit: %v", err)
				}
			}
			// The object is what git expects: a gpgsig header, a clean fsck.
			raw := runGit(t, "", "", "--git-dir="+dir, "cat-file", "commit", c2.String())
			if !strings.Contains(raw, "\ngpgsig -----BEGIN SSH SIGNATURE-----\n") {
				t.Errorf("commit has no SSH gpgsig header:\n%s", raw)
			}
			// What a user runs: git log shows both as good signatures.
			if got := runGit(t, "", "", "--git-dir="+dir, "-c", "gpg.format=ssh",
				"-c", "gpg.ssh.allowedSignersFile="+allowedSigners(t, s),
				"log", "--format=%G? %GS", ArtifactRef("web")); got != "G refline@test.example\nG refline@test.example" {
				t.Errorf("git log --format=%%G? says:\n%s", got)
			}
			runGit(t, "", "", "--git-dir="+dir, "fsck", "--strict")
		})
	}
}

func signerFrom(t *testing.T, key any) *Signer {
	t.Helper()
	s, err := ssh.NewSignerFromKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return NewSigner(s, "refline@test.example")
}

func TestTamperedCommitFailsVerification(t *testing.T) {
	dir := initBare(t)
	s := newTestSigner(t)
	c := writeSignedEmptyCommit(t, dir, s, plumbing.ZeroHash, "web #1: artifact of 3f2a9c1\n\nRun: 1\n")

	// Rewrite the commit with another message, keeping the signature.
	raw := runGit(t, "", "", "--git-dir="+dir, "cat-file", "commit", c.String()) + "\n"
	forged := strings.Replace(raw, "Run: 1", "Run: 2", 1)
	if forged == raw {
		t.Fatal("message not found in the commit")
	}
	fake := runGit(t, "", forged, "--git-dir="+dir, "hash-object", "-w", "-t", "commit", "--stdin")

	out, err := verifyWithGit(t, dir, s, fake)
	if err == nil {
		t.Fatalf("git verify-commit accepted the tampered commit:\n%s", out)
	}
	if !strings.Contains(out, "incorrect signature") {
		t.Errorf("git verify-commit failed for another reason than the signature:\n%s", out)
	}
	commit, err := object.GetCommit(openRepo(t, dir).Storer, plumbing.NewHash(fake))
	if err != nil {
		t.Fatal(err)
	}
	if commit.PGPSignature == "" {
		t.Fatal("tampered commit lost its signature")
	}
	if err := VerifyCommit(commit, s.PublicKey()); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("VerifyCommit of tampered commit: %v, want ErrBadSignature", err)
	}
	// The original still verifies.
	if out, err := verifyWithGit(t, dir, s, c.String()); err != nil {
		t.Fatalf("git verify-commit of the original: %v\n%s", err, out)
	}
}

func TestVerifyCommit(t *testing.T) {
	dir := initBare(t)
	s := newTestSigner(t)
	other := newTestSigner(t)
	repo := openRepo(t, dir)
	c := writeSignedEmptyCommit(t, dir, s, plumbing.ZeroHash, "signed")
	signed, err := object.GetCommit(repo.Storer, c)
	if err != nil {
		t.Fatal(err)
	}

	if err := VerifyCommit(signed, s.PublicKey()); err != nil {
		t.Fatalf("VerifyCommit with the signing key: %v", err)
	}
	// Another key: the signature is valid, but not by this key.
	if err := VerifyCommit(signed, other.PublicKey()); !errors.Is(err, ErrBadSignature) {
		t.Errorf("VerifyCommit with another key: %v, want ErrBadSignature", err)
	}
	// Someone else's valid signature does not pass for the server's.
	byOther := writeSignedEmptyCommit(t, dir, other, plumbing.ZeroHash, "signed")
	otherCommit, err := object.GetCommit(repo.Storer, byOther)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyCommit(otherCommit, s.PublicKey()); !errors.Is(err, ErrBadSignature) {
		t.Errorf("VerifyCommit of another key's commit: %v, want ErrBadSignature", err)
	}

	unsigned := gitCommit(t, dir, "plain")
	plain, err := object.GetCommit(repo.Storer, unsigned)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyCommit(plain, s.PublicKey()); !errors.Is(err, ErrUnsigned) {
		t.Errorf("VerifyCommit of unsigned commit: %v, want ErrUnsigned", err)
	}

	// Mutating a decoded commit in memory breaks the signature too.
	signed.Message = "changed\n"
	if err := VerifyCommit(signed, s.PublicKey()); !errors.Is(err, ErrBadSignature) {
		t.Errorf("VerifyCommit of a mutated commit: %v, want ErrBadSignature", err)
	}

	// Garbage and extra data in the signature header.
	fresh, _ := object.GetCommit(repo.Storer, c)
	for name, sig := range map[string]string{
		"garbage":    "hello\n",
		"pgp":        "-----BEGIN PGP SIGNATURE-----\n\nAAAA\n-----END PGP SIGNATURE-----\n",
		"trailing":   fresh.PGPSignature + "more\n",
		"doubled":    fresh.PGPSignature + fresh.PGPSignature,
		"truncated":  fresh.PGPSignature[:len(fresh.PGPSignature)/2],
		"namespaced": signIn(t, s, fresh, "file"),
	} {
		bad := *fresh
		bad.PGPSignature = sig
		if err := VerifyCommit(&bad, s.PublicKey()); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s signature: %v, want ErrBadSignature", name, err)
		}
	}
}

// signIn returns an armored signature of c's payload by s's key in
// another namespace.
func signIn(t *testing.T, s *Signer, c *object.Commit, namespace string) string {
	t.Helper()
	payload := &plumbing.MemoryObject{}
	if err := c.EncodeWithoutSignature(payload); err != nil {
		t.Fatal(err)
	}
	r, _ := payload.Reader()
	sig, err := sshsig.Sign(r, s.key, sshsig.HashSHA512, namespace)
	if err != nil {
		t.Fatal(err)
	}
	return string(sshsig.Armor(sig))
}

func TestAllowedSignersLine(t *testing.T) {
	s := newTestSigner(t)
	line := s.AllowedSignersLine()
	fields := strings.Fields(line)
	if len(fields) != 4 || fields[0] != "refline@test.example" || fields[1] != `namespaces="git"` || fields[2] != "ssh-ed25519" {
		t.Fatalf("AllowedSignersLine() = %q", line)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(fields[2] + " " + fields[3]))
	if err != nil {
		t.Fatal(err)
	}
	if string(pub.Marshal()) != string(s.PublicKey().Marshal()) {
		t.Fatal("AllowedSignersLine names another key")
	}
	if strings.Contains(line, "\n") {
		t.Fatal("AllowedSignersLine has a newline")
	}
}
