package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/refline/refline/access"
	"github.com/refline/refline/dashboard/view"
	"github.com/refline/refline/webhook"
)

// Hub tells the open pages that a repository changed. The runner reports
// runs and pushes through it (it is an Emitter next to the webhooks), and
// the dashboard's own actions do too. A page that hears of its repository
// fetches itself again; the hub carries no data, so a page sees only what
// its next request may read.
type Hub struct {
	mu   sync.Mutex
	subs map[*Subscription]struct{}
}

// Subscription is one page's view of the hub: the repositories that
// changed since it last looked. A set rather than a queue, so that a burst
// of notices costs a subscriber one wake-up and no repository's notice is
// lost behind another's.
type Subscription struct {
	h       *Hub
	wake    chan struct{}
	pending map[string]bool // under h.mu
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{subs: map[*Subscription]struct{}{}} }

// Emit implements pipelines.Emitter: every event names its repository.
func (h *Hub) Emit(_ context.Context, ev webhook.Event) error {
	h.Notify(ev.Repo)
	return nil
}

// Notify wakes the pages of repo. It never blocks: a subscriber that has
// not looked since its last wake-up finds repo added to what it will see.
func (h *Hub) Notify(repo string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range h.subs {
		sub.pending[repo] = true
		select {
		case sub.wake <- struct{}{}:
		default:
		}
	}
}

// Subscribe starts a subscription; Stop ends it.
func (h *Hub) Subscribe() *Subscription {
	sub := &Subscription{h: h, wake: make(chan struct{}, 1), pending: map[string]bool{}}
	h.mu.Lock()
	h.subs[sub] = struct{}{}
	h.mu.Unlock()
	return sub
}

// Wake receives when repositories have changed; Changed says which.
func (sub *Subscription) Wake() <-chan struct{} { return sub.wake }

// Changed returns the repositories that changed since the last call, in
// name order, and forgets them.
func (sub *Subscription) Changed() []string {
	sub.h.mu.Lock()
	defer sub.h.mu.Unlock()
	repos := make([]string, 0, len(sub.pending))
	for r := range sub.pending {
		repos = append(repos, r)
	}
	clear(sub.pending)
	sort.Strings(repos)
	return repos
}

// Stop ends the subscription.
func (sub *Subscription) Stop() {
	sub.h.mu.Lock()
	delete(sub.h.subs, sub)
	sub.h.mu.Unlock()
}

// sse writes server-sent events by hand (the format is a few lines).
type sse struct {
	w http.ResponseWriter
	f *http.ResponseController
}

func startSSE(w http.ResponseWriter) *sse {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	s := &sse{w: w, f: http.NewResponseController(w)}
	s.f.Flush()
	return s
}

// event sends one event whose data is v as JSON: one line, so no CR or LF
// of a log can break the framing.
func (s *sse) event(name, id string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if id != "" {
		if _, err := fmt.Fprintf(s.w, "id: %s\n", id); err != nil {
			return err
		}
	}
	if _, err := fmt.Fprintf(s.w, "event: %s\ndata: %s\n\n", name, b); err != nil {
		return err
	}
	return s.f.Flush()
}

func (s *sse) comment(text string) error {
	if _, err := fmt.Fprintf(s.w, ": %s\n\n", text); err != nil {
		return err
	}
	return s.f.Flush()
}

// keepAlive is how often an idle stream sends a comment, so that proxies
// keep it open and a gone client is noticed.
const keepAlive = 15 * time.Second

// notices streams "changed" to a page of repo ("" for the overview: any
// repository u can read) whenever it changes.
func (s *Server) notices(w http.ResponseWriter, r *http.Request, u access.User, repo string) {
	sub := s.cfg.Notices.Subscribe()
	defer sub.Stop()
	out := startSSE(w)
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		case <-tick.C:
			if out.comment("ping") != nil {
				return
			}
		case <-sub.Wake():
			for _, changed := range sub.Changed() {
				if repo != "" && changed != repo {
					continue
				}
				if repo == "" && !s.cfg.Users.Level(changed, u).Can(access.Read) {
					continue
				}
				if out.event("changed", "", map[string]string{"repo": changed}) != nil {
					return
				}
			}
		}
	}
}

// runEvents is …/runs/N/events: the run's log as it grows ("log" events,
// each id the offset after it, so that a reconnecting EventSource resumes
// where it stopped), its state whenever that changes ("state", the run
// page's JSON) and "end" once it has ended.
func (s *Server) runEvents(w http.ResponseWriter, r *http.Request, u access.User, rt route) {
	ctx := r.Context()
	off := int64(0)
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		off, _ = strconv.ParseInt(v, 10, 64)
	} else if v := r.URL.Query().Get("from"); v != "" {
		off, _ = strconv.ParseInt(v, 10, 64)
	}
	off = max(off, 0)
	// The first read answers a run the user may not see with 404, before
	// the stream starts.
	changed, err := s.cfg.Pages.Changed(ctx, u, rt.repo, rt.pipeline, rt.n)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	page, err := s.cfg.Pages.Run(ctx, u, rt.repo, rt.pipeline, rt.n)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	out := startSSE(w)
	lastState := stateKey(page)
	if out.event("state", "", page) != nil {
		return
	}
	idle := time.NewTimer(time.Second)
	defer idle.Stop()
	quiet := 0
	// idleOnly is set when the last wake-up brought nothing new: a run
	// this instance does not hold (queued before a restart, say) has a
	// change channel that is always closed, and must not make the
	// stream spin.
	idleOnly, sent, tick := false, false, false
	for {
		chunk, err := s.cfg.Pages.LogFrom(ctx, u, rt.repo, rt.pipeline, rt.n, off, 64<<10)
		if err != nil {
			return
		}
		sent = false
		if chunk.Text != "" {
			if out.event("log", strconv.FormatInt(chunk.Next, 10), map[string]any{"offset": chunk.Offset, "text": chunk.Text}) != nil {
				return
			}
			quiet, sent = 0, true
		}
		more := chunk.Next > off
		off = chunk.Next
		if page, err = s.cfg.Pages.Run(ctx, u, rt.repo, rt.pipeline, rt.n); err != nil {
			return
		}
		// The state goes out when a stage or the run moves on, and with
		// each idle second, for the durations of a running stage.
		if k := stateKey(page); k != lastState || tick {
			lastState, sent = k, k != lastState
			if out.event("state", "", page) != nil {
				return
			}
		}
		tick = false
		if chunk.Ended {
			out.event("end", "", map[string]any{"state": chunk.State, "next": chunk.Next})
			return
		}
		if more {
			continue
		}
		wake := changed
		if idleOnly && !sent {
			wake = nil
		}
		idleOnly = false
		idle.Reset(time.Second)
		select {
		case <-ctx.Done():
			return
		case <-s.done:
			return
		case <-wake:
			idleOnly = true
		case <-idle.C:
			tick = true
			// Now and then, say the stream is alive.
			if quiet++; quiet%15 == 0 && out.comment("ping") != nil {
				return
			}
		}
		if changed, err = s.cfg.Pages.Changed(ctx, u, rt.repo, rt.pipeline, rt.n); err != nil {
			return
		}
	}
}

// stateKey is what a run's state event says, less the durations that
// move with the clock.
func stateKey(p *view.RunPage) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %v %s", p.Run.State, p.Ended, p.Run.Error)
	for _, st := range p.Stages {
		fmt.Fprintf(&b, "|%s %s %d", st.Name, st.State, st.ExitCode)
	}
	return b.String()
}
