package refs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

func TestApplyCompareAndSwap(t *testing.T) {
	ctx := context.Background()
	dir := initBare(t)
	c1 := gitCommit(t, dir, "one")
	c2 := gitCommit(t, dir, "two", c1)
	c3 := gitCommit(t, dir, "three", c2)
	var u Updater
	const ref = "refs/artifacts/web"

	// Create.
	if err := u.Apply(ctx, dir, Update{Ref: ref, New: c1}); err != nil {
		t.Fatal(err)
	}
	if got := refValue(t, dir, ref); got != c1.String() {
		t.Fatalf("after create: %s, want %s", got, c1)
	}

	// Create-only on an existing ref is stale.
	err := u.Apply(ctx, dir, Update{Ref: ref, New: c2})
	if !errors.Is(err, ErrStale) || !strings.Contains(err.Error(), ref) {
		t.Fatalf("create over existing ref: %v, want ErrStale naming %s", err, ref)
	}

	// Move with the right old value.
	if err := u.Apply(ctx, dir, Update{Ref: ref, Old: c1, New: c2}); err != nil {
		t.Fatal(err)
	}

	// A stale old value fails and leaves the ref alone.
	err = u.Apply(ctx, dir, Update{Ref: ref, Old: c1, New: c3})
	if !errors.Is(err, ErrStale) || !strings.Contains(err.Error(), ref) {
		t.Fatalf("stale update: %v, want ErrStale naming %s", err, ref)
	}
	if got := refValue(t, dir, ref); got != c2.String() {
		t.Fatalf("after stale update: %s, want %s", got, c2)
	}

	// An old value for a ref that does not exist is stale too.
	err = u.Apply(ctx, dir, Update{Ref: "refs/runs/web", Old: c1, New: c2})
	if !errors.Is(err, ErrStale) {
		t.Fatalf("update of a missing ref: %v, want ErrStale", err)
	}

	// Delete: stale first, then right.
	if err := u.Apply(ctx, dir, Update{Ref: ref, Old: c1}); !errors.Is(err, ErrStale) {
		t.Fatalf("stale delete: %v, want ErrStale", err)
	}
	if err := u.Apply(ctx, dir, Update{Ref: ref, Old: c2}); err != nil {
		t.Fatal(err)
	}
	if got := refValue(t, dir, ref); got != "" {
		t.Fatalf("after delete: %s, want no ref", got)
	}
	if h, err := Resolve(dir, ref); err != nil || !h.IsZero() {
		t.Fatalf("Resolve of deleted ref = %s, %v; want zero, nil", h, err)
	}
}

func TestApplyPackedRef(t *testing.T) {
	ctx := context.Background()
	dir := initBare(t)
	c1 := gitCommit(t, dir, "one")
	c2 := gitCommit(t, dir, "two", c1)
	runGit(t, "", "", "--git-dir="+dir, "update-ref", "refs/deploy/prod/web", c1.String())
	runGit(t, "", "", "--git-dir="+dir, "pack-refs", "--all")

	if h, err := Resolve(dir, "refs/deploy/prod/web"); err != nil || h != c1 {
		t.Fatalf("Resolve of packed ref = %s, %v; want %s", h, err, c1)
	}
	var u Updater
	if err := u.Apply(ctx, dir, Update{Ref: "refs/deploy/prod/web", Old: c2, New: c1}); !errors.Is(err, ErrStale) {
		t.Fatalf("stale update of packed ref: %v, want ErrStale", err)
	}
	if err := u.Apply(ctx, dir, Update{Ref: "refs/deploy/prod/web", Old: c1, New: c2}); err != nil {
		t.Fatal(err)
	}
	if err := u.Apply(ctx, dir, Update{Ref: "refs/deploy/prod/web", Old: c2}); err != nil {
		t.Fatal(err)
	}
	runGit(t, "", "", "--git-dir="+dir, "fsck", "--strict")
}

func TestApplyIsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	dir := initBare(t)
	c1 := gitCommit(t, dir, "one")
	c2 := gitCommit(t, dir, "two", c1)
	var u Updater
	if err := u.Apply(ctx, dir, Update{Ref: "refs/deploy/prod/web", New: c1}); err != nil {
		t.Fatal(err)
	}
	err := u.Apply(ctx, dir,
		Update{Ref: "refs/deployed/prod/web", New: c1},        // fine alone
		Update{Ref: "refs/deploy/prod/web", Old: c2, New: c1}, // stale
	)
	if !errors.Is(err, ErrStale) || !strings.Contains(err.Error(), "refs/deploy/prod/web") {
		t.Fatalf("mixed transaction: %v, want ErrStale naming refs/deploy/prod/web", err)
	}
	if got := refValue(t, dir, "refs/deployed/prod/web"); got != "" {
		t.Fatalf("refs/deployed/prod/web = %s after a failed transaction", got)
	}
	if err := u.Apply(ctx, dir,
		Update{Ref: "refs/deployed/prod/web", New: c1},
		Update{Ref: "refs/deploy/prod/web", Old: c1, New: c2},
	); err != nil {
		t.Fatal(err)
	}
	if refValue(t, dir, "refs/deployed/prod/web") != c1.String() || refValue(t, dir, "refs/deploy/prod/web") != c2.String() {
		t.Fatal("transaction did not apply both updates")
	}
}

func TestApplyRejectsBadUpdates(t *testing.T) {
	ctx := context.Background()
	dir := initBare(t)
	c1 := gitCommit(t, dir, "one")
	var u Updater
	for _, up := range []Update{
		{Ref: "refs/heads/a..b", New: c1},
		{Ref: "HEAD", New: c1},
		{Ref: "heads/x", New: c1},
		{Ref: "refs/heads/x"}, // both absent
	} {
		if err := u.Apply(ctx, dir, up); err == nil {
			t.Errorf("Apply(%+v) succeeded", up)
		}
	}
	// git's own refusals come back with git's message.
	err := u.Apply(ctx, dir, Update{Ref: "refs/heads/x", New: plumbing.NewHash(strings.Repeat("12", 20))})
	if err == nil || errors.Is(err, ErrStale) || !strings.Contains(err.Error(), "nonexistent object") {
		t.Fatalf("update to a missing object: %v", err)
	}
}

func TestApplyLocked(t *testing.T) {
	dir := initBare(t)
	c1 := gitCommit(t, dir, "one")
	if err := os.MkdirAll(filepath.Join(dir, "refs", "runs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "refs", "runs", "web.lock"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := Updater{}.Apply(context.Background(), dir, Update{Ref: "refs/runs/web", New: c1})
	if !errors.Is(err, ErrLocked) || errors.Is(err, ErrStale) {
		t.Fatalf("update of a locked ref: %v, want ErrLocked", err)
	}
}

// installHook writes a reference-transaction hook into the bare repository.
func installHook(t *testing.T, gitDir, script string) {
	t.Helper()
	hook := filepath.Join(gitDir, "hooks", "reference-transaction")
	if err := os.WriteFile(hook, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestApplyHookRefuses(t *testing.T) {
	ctx := context.Background()
	dir := initBare(t)
	c1 := gitCommit(t, dir, "one")
	installHook(t, dir, `cat >/dev/null
if [ "$1" = prepared ] && [ "$REFLINE_HOOK_TOKEN" != secret ]; then
	echo "refline: only the server may write refs/runs/" >&2
	exit 1
fi
exit 0
`)
	err := Updater{}.Apply(ctx, dir, Update{Ref: "refs/runs/web", New: c1})
	if !errors.Is(err, ErrHookRefused) || errors.Is(err, ErrStale) {
		t.Fatalf("hook refusal: %v, want ErrHookRefused", err)
	}
	if !strings.Contains(err.Error(), "only the server may write refs/runs/") {
		t.Errorf("hook refusal %q does not carry the hook's message", err)
	}
	if got := refValue(t, dir, "refs/runs/web"); got != "" {
		t.Fatalf("refs/runs/web = %s after the hook refused", got)
	}

	// With the token the hook lets the server through.
	u := Updater{Env: []string{"REFLINE_HOOK_TOKEN=secret"}}
	if err := u.Apply(ctx, dir, Update{Ref: "refs/runs/web", New: c1}); err != nil {
		t.Fatal(err)
	}
}

func TestApplyHookSeesMinimalEnvironment(t *testing.T) {
	dir := initBare(t)
	c1 := gitCommit(t, dir, "one")
	envFile := filepath.Join(t.TempDir(), "env")
	installHook(t, dir, "cat >/dev/null\nenv >>"+envFile+"\n")
	t.Setenv("REFLINE_TEST_LEAK", "client-secret")
	t.Setenv("GIT_OBJECT_DIRECTORY", "/nonexistent") // would break git if it leaked

	u := Updater{Env: []string{"REFLINE_HOOK_TOKEN=t0ken"}}
	if err := u.Apply(context.Background(), dir, Update{Ref: "refs/runs/web", New: c1}); err != nil {
		t.Fatal(err)
	}
	env, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(env), "REFLINE_HOOK_TOKEN=t0ken") {
		t.Errorf("hook did not see the token:\n%s", env)
	}
	if strings.Contains(string(env), "client-secret") {
		t.Errorf("the server's environment leaked into the hook:\n%s", env)
	}
}

func TestApplyCancelled(t *testing.T) {
	dir := initBare(t)
	c1 := gitCommit(t, dir, "one")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := (Updater{}).Apply(ctx, dir, Update{Ref: "refs/runs/web", New: c1}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Apply with a cancelled context: %v", err)
	}
	if got := refValue(t, dir, "refs/runs/web"); got != "" {
		t.Fatalf("refs/runs/web = %s after a cancelled Apply", got)
	}
}

func TestResolve(t *testing.T) {
	dir := initBare(t)
	c1 := gitCommit(t, dir, "one")
	runGit(t, "", "", "--git-dir="+dir, "update-ref", "refs/heads/master", c1.String())
	for ref, want := range map[string]plumbing.Hash{
		"refs/heads/master":  c1,
		"HEAD":               c1, // symbolic, followed
		"refs/artifacts/web": plumbing.ZeroHash,
	} {
		if got, err := Resolve(dir, ref); err != nil || got != want {
			t.Errorf("Resolve(%s) = %s, %v; want %s", ref, got, err, want)
		}
	}
	if _, err := Resolve(filepath.Join(t.TempDir(), "nope.git"), "HEAD"); err == nil {
		t.Error("Resolve in a missing repository succeeded")
	}
}

// appendRun builds a signed run-record commit on parent, the way the
// pipeline runner will.
func appendRun(gitDir string, s *Signer, msg string) func(plumbing.Hash) (plumbing.Hash, error) {
	return func(parent plumbing.Hash) (plumbing.Hash, error) {
		repo, err := git.PlainOpen(gitDir) // one per goroutine
		if err != nil {
			return plumbing.ZeroHash, err
		}
		obj := repo.Storer.NewEncodedObject()
		if err := (&object.Tree{}).Encode(obj); err != nil {
			return plumbing.ZeroHash, err
		}
		tree, err := repo.Storer.SetEncodedObject(obj)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		return WriteSignedCommit(repo, CommitSpec{
			Tree: tree, Parent: parent, Message: msg, Committer: testIdentity(),
		}, s)
	}
}

func TestAppendConcurrent(t *testing.T) {
	const writers = 16
	ctx := context.Background()
	dir := initBare(t)
	s := newTestSigner(t)
	ref := RunsRef("web")
	u := Updater{Env: []string{"REFLINE_HOOK_TOKEN=x"}}
	// A hook makes each transaction slower, widening the window for races.
	installHook(t, dir, "cat >/dev/null\n")

	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() {
			_, errs[i] = u.Append(ctx, dir, ref, appendRun(dir, s, fmt.Sprintf("web #%d finished", i+1)))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", i+1, err)
		}
	}
	if n := runGit(t, "", "", "--git-dir="+dir, "rev-list", "--count", ref); n != strconv.Itoa(writers) {
		t.Fatalf("chain has %s commits, want %d", n, writers)
	}
	subjects := runGit(t, "", "", "--git-dir="+dir, "log", "--format=%s", ref)
	for i := range writers {
		if want := fmt.Sprintf("web #%d finished", i+1); !strings.Contains(subjects+"\n", want+"\n") {
			t.Errorf("chain lacks %q:\n%s", want, subjects)
		}
	}
	// Linear: no commit has two parents, and the root is the only parentless one.
	if merges := runGit(t, "", "", "--git-dir="+dir, "rev-list", "--min-parents=2", ref); merges != "" {
		t.Errorf("chain has merges: %s", merges)
	}
	runGit(t, "", "", "--git-dir="+dir, "fsck", "--strict", "--no-dangling")
}

func TestAppendRefusesCommitOffTheTip(t *testing.T) {
	ctx := context.Background()
	dir := initBare(t)
	c1 := gitCommit(t, dir, "one")
	other := gitCommit(t, dir, "other")
	var u Updater
	if _, err := u.Append(ctx, dir, "refs/artifacts/web", func(parent plumbing.Hash) (plumbing.Hash, error) {
		if !parent.IsZero() {
			t.Errorf("parent of a new chain = %s, want zero", parent)
		}
		return c1, nil
	}); err != nil {
		t.Fatal(err)
	}
	// A commit that does not have the tip as parent would rewrite history.
	_, err := u.Append(ctx, dir, "refs/artifacts/web", func(plumbing.Hash) (plumbing.Hash, error) { return other, nil })
	if err == nil {
		t.Fatal("Append accepted a commit that does not have the tip as parent")
	}
	if got := refValue(t, dir, "refs/artifacts/web"); got != c1.String() {
		t.Fatalf("ref moved to %s", got)
	}
	// build's errors are returned as they are.
	boom := errors.New("boom")
	if _, err := u.Append(ctx, dir, "refs/artifacts/web", func(plumbing.Hash) (plumbing.Hash, error) {
		return plumbing.ZeroHash, boom
	}); !errors.Is(err, boom) {
		t.Fatalf("Append = %v, want boom", err)
	}
}

// TestAppendRetriesAfterAnotherWriter has a rival move the ref between
// Append's read and its write: the first attempt is stale, the second wins.
func TestAppendRetriesAfterAnotherWriter(t *testing.T) {
	ctx := context.Background()
	dir := initBare(t)
	s := newTestSigner(t)
	var u Updater
	const ref = "refs/runs/web"
	var parents []plumbing.Hash
	build := appendRun(dir, s, "mine")
	got, err := u.Append(ctx, dir, ref, func(parent plumbing.Hash) (plumbing.Hash, error) {
		parents = append(parents, parent)
		if len(parents) == 1 {
			rival, err := appendRun(dir, s, "rival")(parent)
			if err != nil {
				return plumbing.ZeroHash, err
			}
			if err := u.Apply(ctx, dir, Update{Ref: ref, Old: parent, New: rival}); err != nil {
				return plumbing.ZeroHash, err
			}
		}
		return build(parent)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(parents) != 2 || !parents[0].IsZero() || parents[1].IsZero() {
		t.Fatalf("build called with %v, want zero then the rival", parents)
	}
	if tip := refValue(t, dir, ref); tip != got.String() {
		t.Fatalf("tip %s, want %s", tip, got)
	}
	if subjects := runGit(t, "", "", "--git-dir="+dir, "log", "--format=%s", ref); subjects != "mine\nrival" {
		t.Fatalf("chain:\n%s", subjects)
	}
}
