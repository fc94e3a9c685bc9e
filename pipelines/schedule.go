package pipelines

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/sirupsen/logrus"
)

// The scheduler hands out job slots (--max-jobs of them). A run takes a
// slot when it starts and gives it back when it ends; between two stages it
// gives it up whenever a run of another repository waits, and queues for
// it again. Free slots go first to the repository holding the fewest, then
// to the one served least recently, so a repository with long stages
// cannot keep the others out for longer than one stage; a repository never
// holds more than MaxJobsPerRepo slots at once.

// scheduler is the job-slot policy above: who holds slots, who was served
// when, which started runs wait between stages. Its state is guarded by
// Runner.mu; the queue is the Runner's, handed in.
type scheduler struct {
	maxJobs    int
	maxPerRepo int // 0: maxJobs

	started   bool
	slots     int
	slotsHeld map[string]int    // slots held per repository
	served    map[string]uint64 // seq when each repository last got a slot
	seq       uint64
	parked    []*liveRun // started runs waiting for a slot between stages
}

// take gives a slot to repo.
func (r *scheduler) take(repo string) {
	r.slots++
	r.slotsHeld[repo]++
	r.seq++
	r.served[repo] = r.seq
}

// blocked reports whether a queued run may not start yet: its pipeline has
// a build running, or it waits for a build of one of its inputs; r.mu must
// be held.
func (r *Runner) blocked(run *Run) bool {
	return r.busy[busyKey(run)] || r.waiting(run)
}

// QueueFullError refuses new runs of a repository whose queue is full.
type QueueFullError struct {
	Repo  string
	Limit int
	// push marks the refusal of a push, which -o ci.skip would let in.
	push bool
}

func (e *QueueFullError) Error() string {
	skip := ""
	if e.push {
		skip = ", or push with -o ci.skip"
	}
	return fmt.Sprintf("%s has %d runs queued, the limit (refline serve --max-queued-runs); wait for runs to finish or cancel some (ssh HOST cancel %s PIPELINE RUN)%s",
		e.Repo, e.Limit, e.Repo, skip)
}

// QueueRoom reports whether a push to repo may queue more runs: nil, or a
// *QueueFullError.
func (r *Runner) QueueRoom(repo string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.roomLocked(repo)
	if full, ok := err.(*QueueFullError); ok {
		full.push = true
	}
	return err
}

// roomLocked is QueueRoom with r.mu held. It counts every queued run of
// repo, whatever queued it (a push, an artifact trigger, a deploy, a
// retry), and those being stored right now.
func (r *Runner) roomLocked(repo string) error {
	if r.cfg.MaxQueuedPerRepo <= 0 {
		return nil
	}
	n := r.reserved[repo]
	for _, lr := range r.queue {
		if lr.run.Repo == repo {
			n++
		}
	}
	if n >= r.cfg.MaxQueuedPerRepo {
		return &QueueFullError{Repo: repo, Limit: r.cfg.MaxQueuedPerRepo}
	}
	return nil
}

// reserve takes a place in repo's queue for a run about to be stored, so
// that runs queued at once from several places cannot together pass the
// limit; the returned func gives it back, with r.mu held. A deploy that
// replaces a queued deploy of the same pipeline and environment adds
// nothing and is never refused: a newer target always gets through. So is
// a run of a push the queue limit admitted before storing it (hooks
// QueueLimit): a push checked once queues all the runs it triggers, never
// some, and they are bounded by its pipeline files.
func (r *Runner) reserve(req Request) (release func(), err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if req.admitted || (req.Kind == Deploy && r.queuedDeployLocked(req.Repo, req.Pipeline, req.Environment)) {
		return func() {}, nil
	}
	if err := r.roomLocked(req.Repo); err != nil {
		return nil, err
	}
	r.reserved[req.Repo]++
	return func() {
		if r.reserved[req.Repo]--; r.reserved[req.Repo] <= 0 {
			delete(r.reserved, req.Repo)
		}
	}, nil
}

// queuedDeployLocked reports whether a deploy of pipeline to env is queued
// and not started; r.mu must be held.
func (r *Runner) queuedDeployLocked(repo, pipeline, env string) bool {
	for _, q := range r.queue {
		if q.run.Kind == Deploy && q.run.Repo == repo && q.run.Pipeline == pipeline && q.run.Environment == env {
			return true
		}
	}
	return false
}

// DeployRoom reports whether a deploy of pipeline to env may be queued:
// nil when the repository's queue has room or the deploy would replace
// one queued for that environment, else a *QueueFullError.
func (r *Runner) DeployRoom(repo, pipeline, env string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.queuedDeployLocked(repo, pipeline, env) {
		return nil
	}
	return r.roomLocked(repo)
}

func (r *scheduler) perRepo() int {
	if r.maxPerRepo <= 0 || r.maxPerRepo > r.maxJobs {
		return r.maxJobs
	}
	return r.maxPerRepo
}

// grant hands free slots to waiting runs, parked ones (between stages) and
// queued ones; r.mu must be held. A queued run that gets a slot starts in a
// goroutine of its own.
func (r *Runner) grant() {
	if !r.sched.started {
		return
	}
	for r.sched.slots < r.sched.maxJobs {
		lr, parked, i := r.sched.pick(r.queue, r.closed, r.blocked)
		if lr == nil {
			break
		}
		r.sched.take(lr.run.Repo)
		if parked {
			r.sched.parked = append(r.sched.parked[:i], r.sched.parked[i+1:]...)
			lr.granted = true
			continue
		}
		r.busy[busyKey(lr.run)] = true
		r.queue = append(r.queue[:i], r.queue[i+1:]...)
		r.m.queued.Set(float64(len(r.queue)))
		r.workers.Add(1)
		go r.work(lr)
	}
	r.cond.Broadcast()
}

// pick chooses who gets the next slot; r.mu must be held. Among the runs
// that may take one: the repository holding the fewest slots, then the one
// served least recently; within a repository, parked runs first, then queue
// order (the oldest queued run whose pipeline has no build running and
// whose same-repository inputs are not still to be built).
func (r *scheduler) pick(queue []*liveRun, closed bool, blocked func(*Run) bool) (best *liveRun, bestParked bool, bestI int) {
	limit := r.perRepo()
	better := func(lr *liveRun, parked bool) bool {
		if best == nil {
			return true
		}
		a, b := lr.run.Repo, best.run.Repo
		if r.slotsHeld[a] != r.slotsHeld[b] {
			return r.slotsHeld[a] < r.slotsHeld[b]
		}
		if r.served[a] != r.served[b] {
			return r.served[a] < r.served[b]
		}
		return parked && !bestParked
	}
	for i, lr := range r.parked {
		if r.slotsHeld[lr.run.Repo] < limit && better(lr, true) {
			best, bestParked, bestI = lr, true, i
		}
	}
	if closed {
		return best, bestParked, bestI // no new runs start; started ones finish
	}
	for i, lr := range queue {
		if r.slotsHeld[lr.run.Repo] >= limit || blocked(lr.run) {
			continue
		}
		if better(lr, false) {
			best, bestParked, bestI = lr, false, i
		}
	}
	return best, bestParked, bestI
}

// work executes a run that got a slot, then gives the slot back.
func (r *Runner) work(lr *liveRun) {
	defer r.workers.Done()
	r.execute(lr)
	r.mu.Lock()
	delete(r.busy, busyKey(lr.run))
	r.sched.release(lr.run.Repo)
	r.grant()
	r.mu.Unlock()
}

// release gives a slot of repo back; r.mu must be held.
func (r *scheduler) release(repo string) {
	r.slots--
	if r.slotsHeld[repo]--; r.slotsHeld[repo] <= 0 {
		delete(r.slotsHeld, repo)
	}
}

// between is called by a run between two stages: when a run of another
// repository waits for a slot, it gives its slot up and waits for its turn
// again. It returns ctx's error if the run is stopped meanwhile.
func (r *Runner) between(ctx context.Context, lr *liveRun) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.sched.othersWait(lr.run.Repo, r.queue, r.closed, r.blocked) {
		return nil
	}
	stop := context.AfterFunc(ctx, func() {
		r.mu.Lock()
		r.cond.Broadcast()
		r.mu.Unlock()
	})
	defer stop()
	r.sched.release(lr.run.Repo)
	lr.granted = false
	r.sched.parked = append(r.sched.parked, lr)
	r.grant()
	for !lr.granted {
		if err := ctx.Err(); err != nil {
			for i, p := range r.sched.parked {
				if p == lr {
					r.sched.parked = append(r.sched.parked[:i], r.sched.parked[i+1:]...)
					break
				}
			}
			// The caller ends the run without a slot: count it as
			// holding one, as work releases one when it returns.
			r.sched.slots++
			r.sched.slotsHeld[lr.run.Repo]++
			return err
		}
		r.cond.Wait()
	}
	return nil
}

// othersWait reports whether a run of another repository waits for a slot
// it could take; r.mu must be held.
func (r *scheduler) othersWait(repo string, queue []*liveRun, closed bool, blocked func(*Run) bool) bool {
	limit := r.perRepo()
	for _, p := range r.parked {
		if p.run.Repo != repo && r.slotsHeld[p.run.Repo] < limit {
			return true
		}
	}
	if closed {
		return false
	}
	for _, q := range queue {
		if q.run.Repo != repo && r.slotsHeld[q.run.Repo] < limit && !blocked(q.run) {
			return true
		}
	}
	return false
}

// stoppedWaiting ends a run stopped while it waited for a slot before
// stage i: that stage and the later ones are skipped.
func (r *Runner) stoppedWaiting(lr *liveRun, i int) (State, string) {
	r.mu.Lock()
	interrupted := lr.interrupt
	r.mu.Unlock()
	r.update(lr, func(run *Run) {
		for j := i; j < len(run.Stages); j++ {
			run.Stages[j].State = Skipped
		}
	})
	if interrupted {
		return Interrupted, "interrupted by server shutdown while waiting for a job slot"
	}
	return Canceled, "canceled while waiting for a job slot"
}

// unqueuedDeploy is a deploy the queue limit kept out: why, and whom and
// what to queue it for when there is room.
type unqueuedDeploy struct {
	why, user, trigger string
}

// noteNotQueued remembers why a deploy of pipeline to env was not queued
// (full), for status and for retryUnqueued; nil forgets it.
func (r *Runner) noteNotQueued(repo, pipeline, env, user, trigger string, full *QueueFullError) {
	k := repo + "\x00" + pipeline + "\x00" + env
	r.mu.Lock()
	defer r.mu.Unlock()
	if full == nil {
		delete(r.unqueued, k)
		return
	}
	if r.unqueued == nil {
		r.unqueued = map[string]unqueuedDeploy{}
	}
	r.unqueued[k] = unqueuedDeploy{
		why:  fmt.Sprintf("%s has %d queued runs (--max-queued-runs)", full.Repo, full.Limit),
		user: user, trigger: trigger,
	}
}

// retryUnqueued tries again the deploys of repo the queue limit kept out,
// now that one of its runs has ended: the deploy refs keep their targets,
// and without this they would wait for the next deploy there or a restart.
func (r *Runner) retryUnqueued(repo string, log *logrus.Entry) {
	type pending struct{ pipeline, env, user, trigger string }
	var todo []pending
	r.mu.Lock()
	for k, u := range r.unqueued {
		f := strings.SplitN(k, "\x00", 3)
		if len(f) == 3 && f[0] == repo {
			todo = append(todo, pending{f[1], f[2], u.user, u.trigger})
		}
	}
	r.mu.Unlock()
	for _, p := range todo {
		d, err := r.deployer.Reconcile(context.Background(), repo, p.pipeline, p.env, p.user, p.trigger)
		var full *QueueFullError
		switch {
		case errors.As(err, &full):
			return // still full: the next run to end tries again
		case err != nil:
			log.WithError(err).WithField("env", p.env).Warn("retry a deploy the queue limit kept out")
		case d != nil:
			log.WithFields(logrus.Fields{"env": p.env, "deploy": d.ID()}).Info("deploy queued now that the queue has room")
		}
	}
}

// notQueued says why the pending deploy of pipeline to env is not queued,
// or "".
func (r *Runner) notQueued(repo, pipeline, env string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.unqueued[repo+"\x00"+pipeline+"\x00"+env].why
}
