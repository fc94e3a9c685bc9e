package hooks

import (
	"fmt"
	"strings"

	"github.com/refline/refline/access"
	"github.com/refline/refline/refs"
)

// ZeroID is git's name for "no object": the old value of a created ref and
// the new value of a deleted one.
const ZeroID = "0000000000000000000000000000000000000000"

// Update is one ref change as git reports it to a hook.
type Update struct {
	Old, New, Ref string
}

// Deletes reports whether u removes the ref.
func (u Update) Deletes() bool { return u.New == ZeroID }

// ParseUpdates reads git's hook input: one "OLD NEW REF" line per ref.
func ParseUpdates(stdin []byte) ([]Update, error) {
	var ups []Update
	for _, line := range strings.Split(strings.TrimRight(string(stdin), "\n"), "\n") {
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 || len(f[0]) != len(f[1]) || (len(f[0]) != 40 && len(f[0]) != 64) {
			return nil, fmt.Errorf("malformed hook input line %q", line)
		}
		ups = append(ups, Update{Old: f[0], New: f[1], Ref: f[2]})
	}
	return ups, nil
}

// DeployRights is the subset of the access store that decides deploy
// rights per environment.
type DeployRights interface {
	CanDeploy(repo, user, env string) bool
}

// CheckPush decides whether a pushing session may apply u. It knows nothing
// of object contents: that is for the Checkers. Moving refs/deploy/ENV/P
// needs the pusher's deploy right to ENV, as rights says now; a ref under
// refs/deploy/ that names no environment needs deploy access to every
// environment. A nil rights allows no deploy ref.
func CheckPush(sess Session, u Update, rights DeployRights) error {
	switch {
	case refs.ServerOwned(u.Ref):
		return fmt.Errorf("%s is written only by the refline server; pushes cannot create, move or delete it", u.Ref)
	case refs.IsDeploy(u.Ref):
		env, _, ok := refs.ParseDeployRef(u.Ref)
		switch {
		case !ok && !sess.Level.Can(access.Deploy):
			return fmt.Errorf("moving %s needs deploy access to every environment of %s (you have %s); ask an admin: ssh HOST access %s %s deploy",
				u.Ref, sess.Repo, sess.Level, sess.Repo, sess.User)
		case ok && (rights == nil || !rights.CanDeploy(sess.Repo, sess.User, env)):
			return fmt.Errorf("moving %s needs deploy access to %s of %s; ask an admin: ssh HOST access %s %s deploy:%s",
				u.Ref, env, sess.Repo, sess.Repo, sess.User, env)
		}
		return nil
	default:
		if !sess.Level.Can(access.Write) {
			return fmt.Errorf("pushing to %s needs write access to %s (you have %s)", u.Ref, sess.Repo, sess.Level)
		}
		return nil
	}
}

// CheckLocal decides whether a git command run by hand in the bare
// repository may apply u. current is the ref's value before the
// transaction ("" when it does not exist). Git reports housekeeping (pack-refs
// copying a loose ref into packed-refs, then pruning the loose file) as
// transactions too, so only a change to a new value counts: deletions stay
// possible for an operator cleaning up.
func CheckLocal(u Update, current string) error {
	if u.Deletes() || u.New == current {
		return nil
	}
	if refs.ServerOwned(u.Ref) {
		return fmt.Errorf("%s is written only by the refline server; it cannot be moved by hand", u.Ref)
	}
	return nil
}
