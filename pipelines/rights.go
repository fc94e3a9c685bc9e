package pipelines

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/refline/refline/names"
	"github.com/refline/refline/refs"
)

// Authorizer is the subset of the access store the runner asks whenever a
// run acts for a user beyond its own repository: reading another
// repository's artifacts, and deploying (SPEC §3).
type Authorizer interface {
	CanRead(repo, user string) bool
	CanDeploy(repo, user, env string) bool
}

// LocalOperator is the user a change made on the server machine itself acts
// for: `git update-ref` or a push to a path in the data directory. Whoever
// can do that owns the data directory, so it has every right. It is not a
// valid user name, so no SSH user can pose as it.
const LocalOperator = "local operator"

// NoUser is who a deploy acts for when nobody is known to have asked for
// it (a deploy ref found moved at start with no deploy run of its target):
// it has no rights, so what would follow that deploy waits for someone who
// has. It is not a valid user name either.
const NoUser = "refline server"

// ErrDeployDenied is wrapped by the error of a deploy whose user has no
// right to the environment.
var ErrDeployDenied = errors.New("permission denied")

func (r *rights) canRead(repo, user string) bool {
	if user == LocalOperator {
		return true
	}
	return user != "" && r.auth != nil && r.auth.CanRead(repo, user)
}

// mayDeploy is the one decision every deploy of repo to env passes, for
// the user it acts for, whatever started it.
func (r *rights) mayDeploy(repo, user, env string) error {
	if user == LocalOperator || (user != "" && r.auth != nil && r.auth.CanDeploy(repo, user, env)) {
		return nil
	}
	return fmt.Errorf("%w: deploying to %s of %s needs deploy access to %s, which %s does not have; ask an admin: access %s %s deploy:%s",
		ErrDeployDenied, env, repo, env, userOrNobody(user), repo, orUser(user), env)
}

func orUser(u string) string {
	if u == "" || strings.Contains(u, " ") { // nobody, or not a user (NoUser)
		return "USER"
	}
	return u
}

// rights decides what the user a run acts for may do beyond the run's
// repository, and keeps the files that decisions rest on: held deploys
// and pusher records. mu guards those files.
type rights struct {
	auth  Authorizer
	repos Repos
	store *runStore
	log   *logrus.Entry
	mu    sync.Mutex
}

// heldDeploy is an automatic deploy (`auto: true`, or a promotion through
// `after:`) that did not happen because the user it acts for has no right
// to the environment. The artifact stays recorded and the environment waits
// for someone who has the right (`status`: waiting for deploy).
type heldDeploy struct {
	Artifact string `json:"artifact"`
	User     string `json:"user"`
	Trigger  string `json:"trigger"`
	Reason   string `json:"reason"`
	// Desired is refs/deploy/ENV/PIPELINE when the deploy was held (""
	// if there was none). Once that ref moves someone has deployed, and
	// the hold lapses.
	Desired string    `json:"desired,omitempty"`
	Time    time.Time `json:"time"`
}

const heldPrefix = "held-"

func (r *rights) heldPath(repo, pipeline, env string) string {
	return filepath.Join(r.store.pipelineDir(repo, pipeline), heldPrefix+env+".json")
}

// autoDeploy requests a deploy the server starts on its own, acting for
// user; when user has no right to env the deploy is held instead. It
// returns the deploy run it queued, if any.
func (r *Deployer) autoDeploy(ctx context.Context, repo, pipeline, env, artifact, user, trigger string, log *logrus.Entry) *Run {
	d, err := r.requestDeploy(ctx, repo, pipeline, env, artifact, user, trigger, false)
	var full *QueueFullError
	switch {
	case err == nil:
		return d
	case errors.As(err, &full):
		// Reconcile logged it and noted it for status.
	case errors.Is(err, ErrDeployDenied):
		log = log.WithFields(logrus.Fields{"env": env, "user": user, "artifact": short(artifact)})
		if herr := r.rights.hold(repo, pipeline, env, heldDeploy{Artifact: artifact, User: user, Trigger: trigger, Reason: err.Error()}); herr != nil {
			log.WithError(herr).Error("record held deploy")
		}
		log.Info("deploy waits for someone with the right to the environment")
	default:
		log.WithError(err).WithField("env", env).Warn(trigger)
	}
	return nil
}

func (r *rights) hold(repo, pipeline, env string, h heldDeploy) error {
	if !names.EnvRE.MatchString(env) {
		return fmt.Errorf("invalid environment name %q", env)
	}
	desired, err := refs.Resolve(r.repos.Path(repo), refs.DeployRef(env, pipeline))
	if err != nil {
		return err
	}
	if !desired.IsZero() {
		h.Desired = desired.String()
	}
	h.Time = time.Now().UTC()
	b, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := os.MkdirAll(r.store.pipelineDir(repo, pipeline), 0o700); err != nil {
		return err
	}
	return writeFileAtomic(r.heldPath(repo, pipeline, env), b)
}

// held returns the deploy of pipeline to env that waits for someone with
// the right, if any: desired is the deploy ref now, and a hold made while
// it pointed elsewhere has lapsed.
func (r *rights) held(repo, pipeline, env, desired string) (heldDeploy, bool) {
	var h heldDeploy
	b, err := os.ReadFile(r.heldPath(repo, pipeline, env))
	if err != nil || json.Unmarshal(b, &h) != nil {
		return h, false
	}
	return h, h.Desired == desired && h.Artifact != desired
}

// heldEnvs lists the ENV/PIPELINE pairs of repo with a hold on record.
func (r *rights) heldEnvs(repo string) []envPipeline {
	pls, _ := r.store.pipelines(repo)
	var out []envPipeline
	for _, p := range pls {
		ents, _ := os.ReadDir(r.store.pipelineDir(repo, p))
		for _, e := range ents {
			name, ok := strings.CutPrefix(e.Name(), heldPrefix)
			if env, isJSON := strings.CutSuffix(name, ".json"); ok && isJSON && !e.IsDir() {
				out = append(out, envPipeline{env, p})
			}
		}
	}
	return out
}

// pushRecord says who pushed a commit onto a repository's deploy branch.
type pushRecord struct {
	Commit string    `json:"commit"`
	User   string    `json:"user"`
	Time   time.Time `json:"time"`
}

// maxPushRecords bounds the pushers file: only the tip's pusher is ever
// asked for, and the tip is almost always one of the last few pushes.
const maxPushRecords = 64

func (r *rights) pushersPath(repo string) string {
	return filepath.Join(r.store.root, escapeRepo(repo), "pushers.json")
}

// notePusher records that user's push put commit on repo's deploy branch.
// A run that an artifact of another pipeline triggers acts for that user
// (SPEC §3).
func (r *rights) notePusher(repo, commit, user string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	recs := r.pushRecords(repo)
	out := []pushRecord{{Commit: commit, User: user, Time: time.Now().UTC()}}
	for _, p := range recs {
		if p.Commit != commit && len(out) < maxPushRecords {
			out = append(out, p)
		}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(r.pushersPath(repo)), 0o700); err != nil {
		return err
	}
	return writeFileAtomic(r.pushersPath(repo), b)
}

func (r *rights) pushRecords(repo string) []pushRecord {
	var recs []pushRecord
	b, err := os.ReadFile(r.pushersPath(repo))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			r.log.WithError(err).WithField("repo", repo).Warn("read pusher records")
		}
		return nil
	}
	if err := json.Unmarshal(b, &recs); err != nil {
		r.log.WithError(err).WithField("repo", repo).Warn("corrupt pusher records")
		return nil
	}
	return recs
}

// pusherOf returns the user whose push put commit on repo's deploy branch.
func (r *rights) pusherOf(repo, commit string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.pushRecords(repo) {
		if p.Commit == commit {
			return p.User, p.User != ""
		}
	}
	return "", false
}
