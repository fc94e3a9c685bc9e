package refs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/refline/refline/gitcmd"
)

// Sentinel errors of Apply and Append. They are wrapped, with the ref and
// git's message; test with errors.Is.
var (
	// ErrStale means a compare-and-swap failed: the ref was not at the
	// expected old value (it moved, or exists when it was to be created, or
	// is gone when it was expected). Re-read and decide again.
	ErrStale = errors.New("ref changed since it was read")

	// ErrLocked means another git process held the ref's (or packed-refs')
	// lock for longer than git waits (core.filesRefLockTimeout). Retrying
	// with the same old value may succeed.
	ErrLocked = errors.New("ref is locked by another git process")

	// ErrHookRefused means the repository's reference-transaction hook
	// refused the update in its "prepared" phase. Nothing was changed.
	ErrHookRefused = errors.New("reference-transaction hook refused the update")
)

// Update is one compare-and-swap of a ref. The zero hash means "absent": an
// Old of zero requires that Ref does not exist yet, a New of zero deletes it.
type Update struct {
	Ref      string
	Old, New plumbing.Hash
}

// Updater moves refs by running git, so that git's ref locks and the
// repository's reference-transaction hook apply to the server's writes.
type Updater struct {
	// Env is added to the git child's environment (gitcmd.Env); it is how
	// the hook learns that the server is the writer.
	Env []string
}

// Apply performs updates as one all-or-nothing transaction with
// `git update-ref --stdin -z` (start, one verified update each, prepare,
// commit). Every update checks its Old value under git's lock.
//
// It returns an error wrapping ErrStale when a ref was not at its Old value,
// ErrLocked when a lock could not be taken, ErrHookRefused when the
// reference-transaction hook refused, and otherwise an error holding git's
// message. In every error case no ref was changed.
//
// The git child's environment is gitcmd.Env(u.Env...), whose LC_ALL=C keeps
// git's messages in English so that they can be classified. Cancelling ctx
// stops git with SIGTERM, so that it removes its lock files (a SIGKILL would
// leave them behind and block the ref until someone removes them by hand);
// the error then wraps ctx.Err(), and whether the refs moved is unknown:
// re-read them.
func (u Updater) Apply(ctx context.Context, gitDir string, updates ...Update) error {
	if len(updates) == 0 {
		return nil
	}
	var in bytes.Buffer
	in.WriteString("start\x00")
	for _, up := range updates {
		if err := ValidRefName(up.Ref); err != nil {
			return fmt.Errorf("update %s: %w", up.Ref, err)
		}
		if !strings.HasPrefix(up.Ref, "refs/") {
			return fmt.Errorf("update %s: %w: not under refs/", up.Ref, ErrBadRefName)
		}
		if up.Old.IsZero() && up.New.IsZero() {
			return fmt.Errorf("update %s: old and new are both absent", up.Ref)
		}
		// update SP <ref> NUL <new-oid> NUL <old-oid> NUL; a zero old-oid
		// means "must not exist", a zero new-oid deletes.
		fmt.Fprintf(&in, "update %s\x00%s\x00%s\x00", up.Ref, up.New, up.Old)
	}
	in.WriteString("prepare\x00commit\x00")

	var stderr bytes.Buffer
	cmd := gitcmd.Repo{GitDir: gitDir, Env: u.Env}.Command(ctx, "update-ref", "--stdin", "-z")
	cmd.Stdin = &in
	cmd.Stderr = &stderr // stdout only echoes "start: ok" and friends
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("update %s: %w", refList(updates), ctx.Err())
		}
		return classify(updates, stderr.String(), err)
	}
	return nil
}

var lockedRef = regexp.MustCompile(`cannot lock ref '([^']*)'`)

// classify turns a failed `git update-ref --stdin` into ErrStale, ErrLocked,
// ErrHookRefused or a plain error, keeping git's message.
func classify(updates []Update, stderr string, runErr error) error {
	msg := strings.TrimSpace(stderr)
	if msg == "" {
		msg = runErr.Error()
	}
	ref := refList(updates)
	if m := lockedRef.FindStringSubmatch(msg); m != nil {
		ref = m[1]
	}
	// git's last line is its verdict; earlier lines may be hook output.
	verdict := msg
	if i := strings.LastIndex(msg, "fatal: "); i >= 0 {
		verdict = msg[i:]
	}
	var sentinel error
	switch {
	case strings.Contains(verdict, "aborted by hook"), // git ≤ 2.44
		strings.Contains(verdict, "aborted by the reference-transaction hook"): // git ≥ 2.45
		sentinel = ErrHookRefused
	case strings.Contains(verdict, "but expected"),
		strings.Contains(verdict, "reference already exists"),
		strings.Contains(verdict, "reference is missing"),
		// Reported for a ref that is absent although an old value was given.
		strings.Contains(verdict, "unable to resolve reference") && expectsOld(updates, ref):
		sentinel = ErrStale
	case strings.Contains(verdict, ".lock': File exists"):
		sentinel = ErrLocked
	}
	if sentinel != nil {
		return fmt.Errorf("update %s: %w: %s", ref, sentinel, msg)
	}
	return fmt.Errorf("update %s: git update-ref: %s", ref, msg)
}

func expectsOld(updates []Update, ref string) bool {
	for _, up := range updates {
		if up.Ref == ref && !up.Old.IsZero() {
			return true
		}
	}
	return false
}

func refList(updates []Update) string {
	names := make([]string, len(updates))
	for i, up := range updates {
		names[i] = up.Ref
	}
	return strings.Join(names, ", ")
}

// Resolve returns the commit (or other object) ref points to, following
// symbolic refs, read with go-git. A ref that does not exist resolves to the
// zero hash and a nil error: the same "absent" that Update.Old expects, so
// the result can be passed to Apply as is.
func Resolve(gitDir, ref string) (plumbing.Hash, error) {
	repo, err := git.PlainOpen(gitDir)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("resolve %s: open %s: %w", ref, gitDir, err)
	}
	return resolve(repo, ref)
}

func resolve(repo *git.Repository, ref string) (plumbing.Hash, error) {
	r, err := repo.Reference(plumbing.ReferenceName(ref), true)
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return plumbing.ZeroHash, nil
	}
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("resolve %s: %w", ref, err)
	}
	return r.Hash(), nil
}

// appendAttempts bounds Append's compare-and-swap loop. Each losing attempt
// means another writer appended, so this is also how many concurrent
// appenders one call can outlast.
const appendAttempts = 20

// Append adds a commit on top of ref's tip: it reads the tip, calls build
// with it (the zero hash when ref does not exist yet) and moves ref from the
// tip to the commit build returns, whose first parent must be that tip (a
// root commit when ref is new): chains only grow. When another writer moved
// ref in between, Append reads the new tip and calls build again, up to 20
// times. It returns the appended commit.
//
// build runs once per attempt, so it must only write objects; objects of a
// lost attempt stay unreferenced until git gc prunes them.
func (u Updater) Append(ctx context.Context, gitDir, ref string, build func(parent plumbing.Hash) (plumbing.Hash, error)) (plumbing.Hash, error) {
	var lastErr error
	for attempt := 0; attempt < appendAttempts; attempt++ {
		if attempt > 0 {
			// Jitter so that writers who lost the same round spread out.
			d := time.Duration(rand.Int64N(int64(attempt)*int64(2*time.Millisecond))) + time.Millisecond
			select {
			case <-ctx.Done():
				return plumbing.ZeroHash, fmt.Errorf("append to %s: %w", ref, ctx.Err())
			case <-time.After(d):
			}
		}
		repo, err := git.PlainOpen(gitDir)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("append to %s: open %s: %w", ref, gitDir, err)
		}
		tip, err := resolve(repo, ref)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("append to %s: %w", ref, err)
		}
		next, err := build(tip)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("append to %s: %w", ref, err)
		}
		if err := checkAppends(repo, next, tip); err != nil {
			return plumbing.ZeroHash, fmt.Errorf("append to %s: %w", ref, err)
		}
		err = u.Apply(ctx, gitDir, Update{Ref: ref, Old: tip, New: next})
		if err == nil {
			return next, nil
		}
		if !errors.Is(err, ErrStale) && !errors.Is(err, ErrLocked) {
			return plumbing.ZeroHash, fmt.Errorf("append to %s: %w", ref, err)
		}
		lastErr = err
	}
	return plumbing.ZeroHash, fmt.Errorf("append to %s: gave up after %d attempts: %w", ref, appendAttempts, lastErr)
}

// checkAppends verifies that commit next has parent as its first parent, or
// no parent when parent is zero.
func checkAppends(repo *git.Repository, next, parent plumbing.Hash) error {
	c, err := object.GetCommit(repo.Storer, next)
	if err != nil {
		return fmt.Errorf("built commit %s: %w", next, err)
	}
	switch {
	case parent.IsZero() && len(c.ParentHashes) != 0:
		return fmt.Errorf("built commit %s has parents but the chain is new", next)
	case !parent.IsZero() && (len(c.ParentHashes) == 0 || c.ParentHashes[0] != parent):
		return fmt.Errorf("built commit %s does not have the tip %s as first parent", next, parent)
	}
	return nil
}
