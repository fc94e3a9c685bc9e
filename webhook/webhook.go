// Package webhook tells other systems what happened (SPEC §10): it keeps
// the hooks of each repository, queues every delivery on disk before the
// event's change is acknowledged, signs it, and POSTs it from one worker
// per hook, in order, with retries. A slow or dead receiver holds up only
// its own worker, never a push, a run or a deploy.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/refline/refline/atomicfile"
)

// The events a hook may subscribe to.
const (
	Push             = "push"
	RunStarted       = "run.started"
	RunFinished      = "run.finished"
	ArtifactRecorded = "artifact.recorded"
	DeployStarted    = "deploy.started"
	DeployFinished   = "deploy.finished"
)

// Events lists every event, in the order the README documents them.
var Events = []string{Push, RunStarted, RunFinished, ArtifactRecorded, DeployStarted, DeployFinished}

// ValidEvent reports whether e names an event.
func ValidEvent(e string) bool {
	for _, v := range Events {
		if v == e {
			return true
		}
	}
	return false
}

// Event is what an emitter reports: its type, its repository and the thin
// fields of the payload (ids, states, commit, artifact, environment,
// user). Never a log line or a secret value.
type Event struct {
	Type   string
	Repo   string
	Fields map[string]any
	// Key, when set, names this one occurrence for good (a run's end: its
	// repository, pipeline, number and queue time). An emitter that
	// reports it again, as after a crash between reporting and noting it,
	// gets for each hook the delivery id of the first report, so that a
	// receiver deduplicating on X-Refline-Delivery sees it once. Empty: a
	// new id each time.
	Key string
}

// Delivery timing. A delivery is tried at once, then after about 1 s, 2 s,
// 4 s … doubling up to an hour between tries (each delay jittered by up to
// half of it, or the receiver's Retry-After when longer), and dropped when
// it has not succeeded within Horizon of its first try.
const (
	Timeout     = 10 * time.Second
	firstDelay  = time.Second
	maxDelay    = time.Hour
	Horizon     = 24 * time.Hour
	keepLog     = 50
	keepAnswer  = 4 << 10
	maxBodySeen = 64 << 10
)

// Hook is one endpoint.
type Hook struct {
	ID       string    `json:"id"`
	Repo     string    `json:"repo"`
	URL      string    `json:"url"`
	Events   []string  `json:"events"` // empty: all
	Secret   string    `json:"secret,omitempty"`
	Created  time.Time `json:"created"`
	User     string    `json:"user,omitempty"`
	Disabled string    `json:"disabled,omitempty"` // why, when a 410 disabled it
}

// Wants reports whether the hook subscribes to event.
func (h Hook) Wants(event string) bool {
	if len(h.Events) == 0 {
		return true
	}
	for _, e := range h.Events {
		if e == event {
			return true
		}
	}
	return false
}

// Attempt is one try of a delivery, as `webhook deliveries` shows it.
type Attempt struct {
	Delivery string    `json:"delivery"`
	Event    string    `json:"event"`
	Time     time.Time `json:"time"`
	Status   int       `json:"status,omitempty"`
	Error    string    `json:"error,omitempty"`
	Answer   string    `json:"answer,omitempty"` // the first 4 KiB of the response body
	Outcome  string    `json:"outcome"`          // delivered, retry, gave up, disabled
}

// queued is one delivery on disk, in DATA/webhooks/queue/HOOK/SEQ.json.
type queued struct {
	Delivery string          `json:"delivery"`
	Event    string          `json:"event"`
	Body     json.RawMessage `json:"body"`
	First    time.Time       `json:"first,omitempty"` // first try
	Tries    int             `json:"tries"`
	Next     time.Time       `json:"next,omitempty"`
	file     string
}

// Config wires a Service.
type Config struct {
	Dir          string // DATA/webhooks
	AllowPrivate bool
	Logger       *logrus.Entry
	// Client, when set, replaces the guarded HTTP client (tests).
	Client *http.Client
	// Now, when set, replaces time.Now (tests).
	Now func() time.Time
}

// Service owns the hooks, the queue and the delivery workers.
type Service struct {
	cfg    Config
	log    *logrus.Entry
	client *http.Client

	mu      sync.Mutex
	hooks   []Hook
	seq     uint64
	workers map[string]chan struct{} // hook id -> wake-up
	ctx     context.Context
	wg      sync.WaitGroup
}

// New opens the store in cfg.Dir. Start runs the workers.
func New(cfg Config) (*Service, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = logrus.NewEntry(logrus.New())
	}
	s := &Service{cfg: cfg, log: cfg.Logger, workers: map[string]chan struct{}{}}
	s.client = cfg.Client
	if s.client == nil {
		s.client = NewClient(cfg.AllowPrivate)
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "queue"), 0o700); err != nil {
		return nil, fmt.Errorf("webhooks: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "log"), 0o700); err != nil {
		return nil, fmt.Errorf("webhooks: %w", err)
	}
	b, err := os.ReadFile(s.hooksFile())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("webhooks: %w", err)
	}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &s.hooks); err != nil {
			return nil, fmt.Errorf("webhooks: %s: %w", s.hooksFile(), err)
		}
	}
	s.seq = uint64(cfg.Now().UnixNano())
	return s, nil
}

func (s *Service) hooksFile() string         { return filepath.Join(s.cfg.Dir, "hooks.json") }
func (s *Service) queueDir(id string) string { return filepath.Join(s.cfg.Dir, "queue", id) }
func (s *Service) logFile(id string) string  { return filepath.Join(s.cfg.Dir, "log", id+".json") }

// Start runs a worker for every hook, which first delivers what the queue
// on disk holds from before a restart or a crash. Workers stop with ctx.
func (s *Service) Start(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctx = ctx
	for _, h := range s.hooks {
		s.startLocked(h.ID)
	}
}

// Wait waits for the workers to stop after Start's ctx ended.
func (s *Service) Wait() { s.wg.Wait() }

func (s *Service) startLocked(id string) {
	if s.ctx == nil {
		return
	}
	if _, ok := s.workers[id]; ok {
		return
	}
	wake := make(chan struct{}, 1)
	wake <- struct{}{}
	s.workers[id] = wake
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.work(s.ctx, id, wake)
	}()
}

func (s *Service) saveLocked() error {
	b, err := json.MarshalIndent(s.hooks, "", "  ")
	if err != nil {
		return err
	}
	_, err = atomicfile.Write(s.hooksFile(), b, 0o600)
	return err
}

func newID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// CheckURL refuses what can never be delivered: not http(s), user info in
// the URL, or (without allowPrivate) a host that is a private or loopback
// address. Names are checked again at dial time, on the address they
// resolve to.
func CheckURL(raw string, allowPrivate bool) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http:// or https:// URL", raw)
	}
	if u.User != nil {
		return fmt.Errorf("put no user or password in the URL; the receiver checks the X-Hub-Signature-256 header instead")
	}
	if allowPrivate {
		return nil
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return fmt.Errorf("%s is a loopback address; webhooks go to private or loopback addresses only when the server runs with --webhook-allow-private", host)
	}
	if ip, err := netip.ParseAddr(host); err == nil && !Public(ip) {
		return fmt.Errorf("%s is a private or loopback address; webhooks go there only when the server runs with --webhook-allow-private", host)
	}
	return nil
}

// Add stores a hook for repo ("" with all: every repository's events).
func (s *Service) Add(repo, rawURL string, events []string, secret, user string) (Hook, error) {
	if err := CheckURL(rawURL, s.cfg.AllowPrivate); err != nil {
		return Hook{}, err
	}
	for _, e := range events {
		if !ValidEvent(e) {
			return Hook{}, fmt.Errorf("unknown event %q; use some of %s", e, strings.Join(Events, ","))
		}
	}
	if secret == "" {
		return Hook{}, fmt.Errorf("no secret on stdin; send one, e.g. `openssl rand -hex 32 | ssh HOST webhook add REPO URL`")
	}
	h := Hook{ID: newID(4), Repo: repo, URL: rawURL, Events: events, Secret: secret, Created: s.cfg.Now().UTC(), User: user}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks = append(s.hooks, h)
	if err := s.saveLocked(); err != nil {
		s.hooks = s.hooks[:len(s.hooks)-1]
		return Hook{}, fmt.Errorf("store the hook: %w", err)
	}
	s.startLocked(h.ID)
	h.Secret = ""
	return h, nil
}

// List returns repo's hooks, without their secrets.
func (s *Service) List(repo string) []Hook {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Hook
	for _, h := range s.hooks {
		if h.Repo == repo {
			h.Secret = ""
			out = append(out, h)
		}
	}
	return out
}

func (s *Service) findLocked(repo, id string) int {
	for i, h := range s.hooks {
		if h.Repo == repo && h.ID == id {
			return i
		}
	}
	return -1
}

// Remove deletes a hook, its queue and its log.
func (s *Service) Remove(repo, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.findLocked(repo, id)
	if i < 0 {
		return fmt.Errorf("no webhook %s on %s; `webhook list %s` shows them", id, repoName(repo), repoName(repo))
	}
	s.hooks = append(s.hooks[:i:i], s.hooks[i+1:]...)
	if err := s.saveLocked(); err != nil {
		return err
	}
	if wake, ok := s.workers[id]; ok {
		close(wake)
		delete(s.workers, id)
	}
	_ = os.RemoveAll(s.queueDir(id))
	_ = os.Remove(s.logFile(id))
	return nil
}

func repoName(r string) string {
	if r == "" {
		return "--all"
	}
	return r
}

// Deliveries returns the last attempts of a hook, newest first.
func (s *Service) Deliveries(repo, id string) ([]Attempt, error) {
	s.mu.Lock()
	ok := s.findLocked(repo, id) >= 0
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("no webhook %s on %s; `webhook list %s` shows them", id, repoName(repo), repoName(repo))
	}
	log := s.readLog(id)
	out := make([]Attempt, 0, len(log.Attempts))
	for i := len(log.Attempts) - 1; i >= 0; i-- {
		out = append(out, log.Attempts[i])
	}
	return out, nil
}

// hookLog is DATA/webhooks/log/HOOK.json: the last attempts and the bodies
// of their deliveries, for redelivery.
type hookLog struct {
	Attempts []Attempt                  `json:"attempts"`
	Bodies   map[string]json.RawMessage `json:"bodies"`
}

func (s *Service) readLog(id string) hookLog {
	var l hookLog
	if b, err := os.ReadFile(s.logFile(id)); err == nil {
		_ = json.Unmarshal(b, &l)
	}
	return l
}

func (s *Service) appendLog(id string, a Attempt, body json.RawMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.findLockedID(id) < 0 {
		return
	}
	l := s.readLog(id)
	l.Attempts = append(l.Attempts, a)
	if len(l.Attempts) > keepLog {
		l.Attempts = l.Attempts[len(l.Attempts)-keepLog:]
	}
	if l.Bodies == nil {
		l.Bodies = map[string]json.RawMessage{}
	}
	l.Bodies[a.Delivery] = body
	keep := map[string]bool{}
	for _, at := range l.Attempts {
		keep[at.Delivery] = true
	}
	for d := range l.Bodies {
		if !keep[d] {
			delete(l.Bodies, d)
		}
	}
	b, _ := json.Marshal(l)
	if _, err := atomicfile.Write(s.logFile(id), b, 0o600); err != nil {
		s.log.WithError(err).WithField("hook", id).Warn("write the delivery log")
	}
}

func (s *Service) findLockedID(id string) int {
	for i, h := range s.hooks {
		if h.ID == id {
			return i
		}
	}
	return -1
}

// Redeliver queues again a delivery of one of repo's hooks, with the same
// delivery id and body. It returns the hook's id.
func (s *Service) Redeliver(repo, delivery string) (string, error) {
	for _, h := range s.List(repo) {
		l := s.readLog(h.ID)
		body, ok := l.Bodies[delivery]
		if !ok {
			continue
		}
		ev := ""
		for _, a := range l.Attempts {
			if a.Delivery == delivery {
				ev = a.Event
			}
		}
		if err := s.enqueue(h.ID, &queued{Delivery: delivery, Event: ev, Body: body}); err != nil {
			return "", err
		}
		return h.ID, nil
	}
	return "", fmt.Errorf("no delivery %s among the last %d attempts of %s's webhooks; `webhook deliveries %s ID` shows them", delivery, keepLog, repoName(repo), repoName(repo))
}

// Emit queues ev for every hook of its repository (and every server-wide
// hook) that wants it. It returns once the deliveries are on disk (synced),
// so that the caller may then acknowledge the change; delivering is left to
// the workers.
func (s *Service) Emit(ctx context.Context, ev Event) error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	var targets []string
	for _, h := range s.hooks {
		if (h.Repo == ev.Repo || h.Repo == "") && h.Disabled == "" && h.Wants(ev.Type) {
			targets = append(targets, h.ID)
		}
	}
	s.mu.Unlock()
	// Each hook's queue file is written and synced (file and directory) on
	// its own goroutine: the file system commits syncs that overlap
	// together, so a push with five hooks waits about as long as with one.
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, id := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.emitTo(id, ev)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// emitTo queues ev for one hook, under a delivery id of its own.
func (s *Service) emitTo(id string, ev Event) error {
	d := newDeliveryID()
	if ev.Key != "" {
		d = keyedDeliveryID(id, ev.Key)
	}
	payload := map[string]any{}
	for k, v := range ev.Fields {
		payload[k] = v
	}
	payload["event"] = ev.Type
	payload["delivery"] = d
	payload["timestamp"] = s.cfg.Now().UTC().Format(time.RFC3339Nano)
	payload["repo"] = ev.Repo
	body, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	return s.enqueue(id, &queued{Delivery: d, Event: ev.Type, Body: body})
}

func newDeliveryID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// keyedDeliveryID is the delivery id of a keyed event for one hook: a
// version 8 (RFC 9562) UUID from a hash of both, the same every time.
func keyedDeliveryID(hook, key string) string {
	sum := sha256.Sum256([]byte("refline webhook delivery\x00" + hook + "\x00" + key))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x80
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// enqueue appends q to the hook's queue durably and wakes its worker.
func (s *Service) enqueue(id string, q *queued) error {
	dir := s.queueDir(id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("queue a webhook delivery: %w", err)
	}
	s.mu.Lock()
	s.seq++
	seq := s.seq
	s.mu.Unlock()
	b, err := json.Marshal(q)
	if err != nil {
		return err
	}
	if _, err := atomicfile.Write(filepath.Join(dir, fmt.Sprintf("%020d.json", seq)), b, 0o600); err != nil {
		return fmt.Errorf("queue a webhook delivery: %w", err)
	}
	s.mu.Lock()
	if wake, ok := s.workers[id]; ok {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	s.mu.Unlock()
	return nil
}

// head returns the oldest queued delivery of a hook, nil when none.
func (s *Service) head(id string) *queued {
	dir := s.queueDir(id)
	ents, _ := os.ReadDir(dir)
	var files []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".json") && !strings.HasPrefix(e.Name(), ".") {
			files = append(files, e.Name())
		}
	}
	sort.Strings(files)
	for _, f := range files {
		p := filepath.Join(dir, f)
		b, err := os.ReadFile(p)
		var q queued
		if err == nil {
			err = json.Unmarshal(b, &q)
		}
		if err != nil {
			s.log.WithError(err).WithField("file", p).Warn("unreadable webhook delivery; dropping it")
			os.Remove(p)
			continue
		}
		q.file = p
		return &q
	}
	return nil
}

func (s *Service) hook(id string) (Hook, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.findLockedID(id)
	if i < 0 {
		return Hook{}, false
	}
	return s.hooks[i], true
}

// work delivers a hook's queue in order, one delivery at a time. A
// worker's first try does not wait for the retry time a previous instance
// set: a restart is often what fixed the failure (a flag, the network), and
// the backoff resumes from the try count if it did not.
func (s *Service) work(ctx context.Context, id string, wake chan struct{}) {
	fresh := true
	for ctx.Err() == nil {
		h, ok := s.hook(id)
		if !ok {
			return
		}
		q := s.head(id)
		if q == nil || h.Disabled != "" {
			select {
			case <-ctx.Done():
				return
			case _, open := <-wake:
				if !open {
					return
				}
			}
			continue
		}
		if wait := q.Next.Sub(s.cfg.Now()); wait > 0 && !fresh {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case _, open := <-wake:
				t.Stop()
				if !open {
					return
				}
			case <-t.C:
			}
			continue
		}
		fresh = false
		s.attempt(ctx, h, q)
	}
}

// attempt makes one try of q and records its outcome.
func (s *Service) attempt(ctx context.Context, h Hook, q *queued) {
	now := s.cfg.Now()
	if q.First.IsZero() {
		q.First = now
	}
	q.Tries++
	status, answer, retryAfter, err := s.post(ctx, h, q)
	if ctx.Err() != nil {
		return // shutting down: the delivery stays queued as it was
	}
	a := Attempt{Delivery: q.Delivery, Event: q.Event, Time: now.UTC(), Status: status, Answer: answer}
	if err != nil {
		a.Error = err.Error()
	}
	log := s.log.WithFields(logrus.Fields{"hook": h.ID, "delivery": q.Delivery, "event": q.Event, "status": status})
	switch {
	case err == nil && status >= 200 && status < 300:
		a.Outcome = "delivered"
		os.Remove(q.file)
	case status == http.StatusGone:
		a.Outcome = "disabled"
		s.disable(h.ID, "the receiver answered 410 Gone")
		log.Warn("webhook disabled: the receiver answered 410 Gone")
	default:
		delay := Backoff(q.Tries, retryAfter)
		if now.Add(delay).Sub(q.First) > Horizon {
			a.Outcome = "gave up"
			os.Remove(q.file)
			log.WithError(err).Warn("webhook delivery dropped after the retry horizon")
			break
		}
		a.Outcome = "retry"
		q.Next = now.Add(delay)
		b, _ := json.Marshal(q)
		if _, werr := atomicfile.Write(q.file, b, 0o600); werr != nil {
			log.WithError(werr).Warn("save the webhook retry")
		}
	}
	s.appendLog(h.ID, a, q.Body)
}

func (s *Service) disable(id, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := s.findLockedID(id); i >= 0 {
		s.hooks[i].Disabled = why
		if err := s.saveLocked(); err != nil {
			s.log.WithError(err).Warn("save the disabled webhook")
		}
	}
}

// Sign returns the X-Hub-Signature-256 value of body: sha256=HEX(HMAC).
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// signStandard returns the Standard Webhooks signature "v1,BASE64" of
// "id.timestamp.body", keyed with the secret's bytes.
func signStandard(secret, id string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(m, "%s.%d.", id, ts)
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func (s *Service) post(ctx context.Context, h Hook, q *queued) (status int, answer string, retryAfter time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, strings.NewReader(string(q.Body)))
	if err != nil {
		return 0, "", 0, err
	}
	ts := s.cfg.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "refline-webhook")
	req.Header.Set("X-Refline-Event", q.Event)
	req.Header.Set("X-Refline-Delivery", q.Delivery)
	req.Header.Set("X-Hub-Signature-256", Sign(h.Secret, q.Body))
	req.Header.Set("webhook-id", q.Delivery)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", signStandard(h.Secret, q.Delivery, ts, q.Body))
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, "", 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, keepAnswer))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBodySeen))
	return resp.StatusCode, string(b), RetryAfter(resp.Header.Get("Retry-After"), s.cfg.Now()), nil
}

// Backoff is the delay before try n+1 after n failed tries: 1 s doubling
// to an hour, plus up to half of it at random so that receivers coming
// back are not hit by every server at once; a longer Retry-After wins.
func Backoff(tries int, retryAfter time.Duration) time.Duration {
	d := firstDelay
	for i := 1; i < tries && d < maxDelay; i++ {
		d *= 2
	}
	d = min(d, maxDelay)
	d += time.Duration(mrand.Int64N(int64(d)/2 + 1))
	if retryAfter > d {
		d = min(retryAfter, Horizon)
	}
	return d
}

// RetryAfter parses a Retry-After header: seconds or an HTTP date.
func RetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// Public reports whether ip may receive webhooks from a server that does
// not allow private addresses: not loopback, private, link-local,
// unspecified, multicast, shared (100.64/10) or otherwise reserved.
func Public(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return false
	}
	for _, p := range reserved {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

var reserved = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("2001:db8::/32"),
}

// ErrPrivate is returned when a hook's address is private or loopback.
var ErrPrivate = errors.New("the address is private or loopback; webhooks go there only when the server runs with --webhook-allow-private")

// dialControl refuses a connection to a private address. It runs on the
// address the name resolved to, just before connecting, so neither a DNS
// name pointing inside nor a rebinding between check and use gets through.
func dialControl(allowPrivate bool) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error {
		if allowPrivate {
			return nil
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%s: %w", address, ErrPrivate)
		}
		if !Public(ap.Addr()) {
			return fmt.Errorf("%s: %w", address, ErrPrivate)
		}
		return nil
	}
}

// NewClient returns the HTTP client deliveries use: no proxy, no redirects
// followed (a 3xx is an answer like any other non-2xx), the address checked
// at dial time, Timeout per try.
func NewClient(allowPrivate bool) *http.Client {
	d := &net.Dialer{Timeout: Timeout, Control: dialControl(allowPrivate)}
	return &http.Client{
		Timeout: Timeout,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         d.DialContext,
			TLSHandshakeTimeout: Timeout,
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
