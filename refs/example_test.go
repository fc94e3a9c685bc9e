package refs_test

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"golang.org/x/crypto/ssh"

	"github.com/refline/refline/refs"
)

// The server signs every artifact and run record commit with its SSH key;
// anyone holding the allowed_signers line (`ssh HOST keys`) can check them
// with `git verify-commit`, and the server checks them with VerifyCommit
// before it deploys.
func Example() {
	// The server's signing key. refline generates it in DATA/keys/; a fixed
	// seed keeps this example's output stable.
	key, err := ssh.NewSignerFromKey(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)))
	if err != nil {
		panic(err)
	}
	signer := refs.NewSigner(key, "refline@ci.example.com")
	fmt.Println(signer.AllowedSignersLine())

	// An artifact commit. The server builds it with WriteTree and
	// WriteSignedCommit and appends it to refs/artifacts/web with Append.
	who := object.Signature{Name: "refline", Email: "refline@ci.example.com", When: time.Unix(1700000000, 0).UTC()}
	commit := &object.Commit{
		TreeHash:  plumbing.NewHash("4b825dc642cb6eb9a060e54bf8d69288fbee4904"),
		Author:    who,
		Committer: who,
		Message:   "web #12: artifact of 3f2a9c1 \"fix login\"\n\nPipeline: web\nRun: 12\n",
	}
	if err := signer.Sign(commit); err != nil {
		panic(err)
	}
	fmt.Println(strings.SplitN(commit.PGPSignature, "\n", 2)[0])
	fmt.Println("signed by the server:", refs.VerifyCommit(commit, signer.PublicKey()) == nil)

	// Any change to the commit breaks the signature.
	commit.Message = strings.Replace(commit.Message, "Run: 12", "Run: 13", 1)
	err = refs.VerifyCommit(commit, signer.PublicKey())
	fmt.Println("tampered commit rejected:", errors.Is(err, refs.ErrBadSignature))

	// Output:
	// refline@ci.example.com namespaces="git" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop
	// -----BEGIN SSH SIGNATURE-----
	// signed by the server: true
	// tampered commit rejected: true
}

// Each pipeline has an artifact chain and a run chain; each environment a
// desired and a deployed ref. Users may push only to refs/deploy/, and only
// with deploy access.
func ExampleParse() {
	for _, ref := range []string{
		refs.ArtifactRef("web"),
		refs.DeployRef("production", "web"),
		refs.DeployedRef("production", "web"),
		refs.RunsRef("web"),
		"refs/heads/master",
	} {
		kind, env, pipeline := refs.Parse(ref)
		fmt.Printf("%-28s %-8s env=%-10s pipeline=%-3s server-owned=%v deploy=%v\n",
			ref, kind, env, pipeline, refs.ServerOwned(ref), refs.IsDeploy(ref))
	}
	// Output:
	// refs/artifacts/web           artifacts env=           pipeline=web server-owned=true deploy=false
	// refs/deploy/production/web   deploy   env=production pipeline=web server-owned=false deploy=true
	// refs/deployed/production/web deployed env=production pipeline=web server-owned=true deploy=false
	// refs/runs/web                runs     env=           pipeline=web server-owned=true deploy=false
	// refs/heads/master            other    env=           pipeline=    server-owned=false deploy=false
}
