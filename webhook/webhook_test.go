package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// A receiver written for GitHub checks the signature this way.
func TestSignVerifiesLikeGitHub(t *testing.T) {
	secret, body := "It's a Secret to Everybody", []byte("Hello, World!")
	// The example from GitHub's documentation on validating deliveries.
	want := "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	if got := Sign(secret, body); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	if !hmac.Equal([]byte(Sign(secret, body)), []byte("sha256="+hex.EncodeToString(m.Sum(nil)))) {
		t.Fatal("signature does not verify")
	}
}

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		tries      int
		retryAfter time.Duration
		lo, hi     time.Duration
	}{
		{1, 0, time.Second, 1500 * time.Millisecond},
		{2, 0, 2 * time.Second, 3 * time.Second},
		{4, 0, 8 * time.Second, 12 * time.Second},
		{30, 0, time.Hour, 90 * time.Minute},
		{1, 2 * time.Minute, 2 * time.Minute, 2 * time.Minute},
		{1, 1000 * time.Hour, Horizon, Horizon},
	} {
		for range 20 {
			d := Backoff(tc.tries, tc.retryAfter)
			if d < tc.lo || d > tc.hi {
				t.Fatalf("Backoff(%d, %v) = %v, want in [%v, %v]", tc.tries, tc.retryAfter, d, tc.lo, tc.hi)
			}
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              0,
		"120":                           2 * time.Minute,
		"-3":                            0,
		"soon":                          0,
		"Thu, 01 Jan 2026 00:01:00 GMT": time.Minute,
		"Wed, 31 Dec 2025 00:01:00 GMT": 0,
	} {
		if got := RetryAfter(v, now); got != want {
			t.Errorf("RetryAfter(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestPublicAndCheckURL(t *testing.T) {
	for a, want := range map[string]bool{
		"127.0.0.1": false, "10.1.2.3": false, "192.168.0.1": false, "172.16.5.4": false,
		"169.254.169.254": false, "100.64.0.1": false, "0.0.0.0": false, "::1": false,
		"fc00::1": false, "fe80::1": false, "::ffff:127.0.0.1": false, "::ffff:10.0.0.1": false,
		"8.8.8.8": true, "2001:4860:4860::8888": true, "1.1.1.1": true,
	} {
		if got := Public(netip.MustParseAddr(a)); got != want {
			t.Errorf("Public(%s) = %v, want %v", a, got, want)
		}
	}
	for u, ok := range map[string]bool{
		"http://127.0.0.1:8080/h": false, "https://localhost/h": false, "http://[::1]/": false,
		"ftp://example.com/": false, "https://u:p@example.com/": false, "https://example.com/h": true,
		"http://8.8.8.8/": true,
	} {
		if err := CheckURL(u, false); (err == nil) != ok {
			t.Errorf("CheckURL(%s) = %v, want ok=%v", u, err, ok)
		}
	}
	if err := CheckURL("http://127.0.0.1:8080/h", true); err != nil {
		t.Errorf("with allowPrivate: %v", err)
	}
}

// The dial-time check refuses a loopback receiver even when the URL's
// name gives no hint of it.
func TestClientRefusesPrivateAtDial(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	_, err := NewClient(false).Post(srv.URL, "application/json", nil)
	if err == nil || !strings.Contains(err.Error(), "--webhook-allow-private") {
		t.Fatalf("loopback POST: err = %v, want a refusal", err)
	}
	resp, err := NewClient(true).Post(srv.URL, "application/json", nil)
	if err != nil {
		t.Fatalf("with allowPrivate: %v", err)
	}
	resp.Body.Close()
}

type recv struct {
	mu   sync.Mutex
	got  []*http.Request
	body []string
	code []int // answers in turn; 200 after them
	seen chan struct{}
}

func (rc *recv) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.got = append(rc.got, r)
	rc.body = append(rc.body, string(b))
	code := 200
	if len(rc.code) > 0 {
		code, rc.code = rc.code[0], rc.code[1:]
	}
	rc.mu.Unlock()
	if code == 500 {
		w.Header().Set("Retry-After", "0")
	}
	w.WriteHeader(code)
	io.WriteString(w, "answer")
	rc.seen <- struct{}{}
}

func newService(t *testing.T, dir string, now func() time.Time) *Service {
	t.Helper()
	s, err := New(Config{Dir: dir, AllowPrivate: true, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Deliveries queued while no worker ran are delivered, in order, by the
// next instance; a 500 is retried with the same delivery id.
func TestQueueReplayOrderAndRetry(t *testing.T) {
	rc := &recv{code: []int{500}, seen: make(chan struct{}, 10)}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	dir := t.TempDir()
	// A clock that jumps past every backoff so the test never waits.
	var mu sync.Mutex
	clock := time.Now()
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); clock = clock.Add(time.Hour); return clock }

	s := newService(t, dir, now)
	h, err := s.Add("team/app", srv.URL, []string{Push, RunFinished}, "s3cret", "alice")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, ev := range []Event{
		{Type: Push, Repo: "team/app", Fields: map[string]any{"commit": "c1"}},
		{Type: RunStarted, Repo: "team/app"}, // not subscribed
		{Type: RunFinished, Repo: "team/app", Fields: map[string]any{"state": "passed"}},
		{Type: Push, Repo: "other/repo"},
	} {
		if err := s.Emit(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	// A new instance on the same directory, as after a crash.
	s2 := newService(t, dir, now)
	wctx, cancel := context.WithCancel(ctx)
	s2.Start(wctx)
	for range 3 {
		select {
		case <-rc.seen:
		case <-time.After(30 * time.Second):
			t.Fatal("no delivery")
		}
	}
	// The third answer is logged after the receiver returned: poll for it.
	for deadline := time.Now().Add(30 * time.Second); ; {
		if atts, _ := s2.Deliveries("team/app", h.ID); len(atts) == 3 || time.Now().After(deadline) {
			break
		}
		<-time.After(5 * time.Millisecond)
	}
	cancel()
	s2.Wait()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.got) != 3 {
		t.Fatalf("got %d requests, want 3", len(rc.got))
	}
	var events, ids []string
	for i, r := range rc.got {
		events = append(events, r.Header.Get("X-Refline-Event"))
		ids = append(ids, r.Header.Get("X-Refline-Delivery"))
		if sig := r.Header.Get("X-Hub-Signature-256"); sig != Sign("s3cret", []byte(rc.body[i])) {
			t.Errorf("request %d: bad signature %s", i, sig)
		}
		if strings.Contains(rc.body[i], "s3cret") {
			t.Errorf("the secret is in a payload: %s", rc.body[i])
		}
		var p map[string]any
		if err := json.Unmarshal([]byte(rc.body[i]), &p); err != nil || p["repo"] != "team/app" || p["event"] != events[i] || p["delivery"] != ids[i] {
			t.Errorf("payload %d: %s", i, rc.body[i])
		}
	}
	if strings.Join(events, " ") != "push push run.finished" || ids[0] != ids[1] || ids[1] == ids[2] {
		t.Fatalf("events %v ids %v: want push retried with the same id, then run.finished", events, ids)
	}
	atts, err := s2.Deliveries("team/app", h.ID)
	if err != nil || len(atts) != 3 || atts[2].Outcome != "retry" || atts[2].Status != 500 || atts[0].Outcome != "delivered" || atts[0].Answer != "answer" {
		t.Fatalf("deliveries = %+v, %v", atts, err)
	}
	for _, hk := range s2.List("team/app") {
		if hk.Secret != "" {
			t.Fatal("List shows the secret")
		}
	}
}

// A redirect is an answer like any other: not followed.
func TestClientFollowsNoRedirect(t *testing.T) {
	hit := make(chan string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hit <- r.URL.Path
		if r.URL.Path == "/hook" {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		}
	}))
	defer srv.Close()
	resp, err := NewClient(true).Post(srv.URL+"/hook", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || len(hit) != 1 {
		t.Fatalf("status %d after %d requests; want the 302 itself and no second request", resp.StatusCode, len(hit))
	}
}

// A 410 disables the hook and keeps what is queued for it.
func TestGoneDisables(t *testing.T) {
	rc := &recv{code: []int{410}, seen: make(chan struct{}, 10)}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	s := newService(t, t.TempDir(), time.Now)
	h, err := s.Add("app", srv.URL, nil, "k", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Emit(context.Background(), Event{Type: Push, Repo: "app"}); err != nil {
		t.Fatal(err)
	}
	s.attempt(context.Background(), mustHook(t, s, h.ID), s.head(h.ID))
	if got := s.List("app")[0].Disabled; got == "" {
		t.Fatal("a 410 left the hook enabled")
	}
	if err := s.Emit(context.Background(), Event{Type: Push, Repo: "app"}); err != nil {
		t.Fatal(err)
	}
	if n := len(rc.seen); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
}

func mustHook(t *testing.T, s *Service, id string) Hook {
	h, ok := s.hook(id)
	if !ok {
		t.Fatal("no hook", id)
	}
	return h
}

// BenchmarkEmit is what an event costs its emitter with one hook and with
// five: a synced queue file per hook, whatever the receivers do. The five
// are synced at once, so they cost about what one does.
func BenchmarkEmit(b *testing.B) {
	for _, n := range []int{1, 5} {
		b.Run(fmt.Sprintf("hooks=%d", n), func(b *testing.B) {
			s, err := New(Config{Dir: b.TempDir(), AllowPrivate: true})
			if err != nil {
				b.Fatal(err)
			}
			for range n {
				if _, err := s.Add("app", "http://127.0.0.1:9/h", nil, "k", "alice"); err != nil {
					b.Fatal(err)
				}
			}
			ev := Event{Type: RunFinished, Repo: "app", Fields: map[string]any{"state": "passed"}}
			for b.Loop() {
				if err := s.Emit(context.Background(), ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// A keyed event reported again (after a crash between reporting a run's
// end and noting it) keeps, for each hook, the delivery id of the first
// report, so that receivers deduplicating on X-Refline-Delivery see it
// once; unkeyed events and other hooks get ids of their own.
func TestKeyedEventKeepsItsDeliveryID(t *testing.T) {
	dir := t.TempDir()
	s := newService(t, dir, time.Now)
	var hooks []string
	for range 2 {
		h, err := s.Add("app", "http://127.0.0.1:9/h", nil, "k", "alice")
		if err != nil {
			t.Fatal(err)
		}
		hooks = append(hooks, h.ID)
	}
	keyed := Event{Type: RunFinished, Repo: "app", Key: "app\x00web\x007\x00queued\x00run.finished"}
	for _, ev := range []Event{keyed, {Type: Push, Repo: "app"}, {Type: Push, Repo: "app"}} {
		if err := s.Emit(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	// The same event from a new instance, as after a restart.
	if err := newService(t, dir, time.Now).Emit(context.Background(), keyed); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, id := range hooks {
		ents, err := os.ReadDir(s.queueDir(id))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range ents {
			var q queued
			b, err := os.ReadFile(filepath.Join(s.queueDir(id), e.Name()))
			if err == nil {
				err = json.Unmarshal(b, &q)
			}
			if err != nil {
				t.Fatal(err)
			}
			var p map[string]any
			if err := json.Unmarshal(q.Body, &p); err != nil || p["delivery"] != q.Delivery {
				t.Fatalf("hook %d: body %s does not carry its delivery id %s", i, q.Body, q.Delivery)
			}
			got = append(got, q.Event+" "+q.Delivery)
		}
		if len(got) != 4 {
			t.Fatalf("hook %d: %d queued, want 4: %v", i, len(got), got)
		}
		// In queue order: run.finished, push, push, run.finished again.
		if got[0] != got[3] || got[1] == got[2] || got[0] == got[1] {
			t.Fatalf("hook %d: deliveries %v: want the keyed event's id twice and two new ids", i, got)
		}
		for _, g := range got[:3] {
			if seen[g] {
				t.Fatalf("hook %d: delivery %s also went to another hook", i, g)
			}
			seen[g] = true
		}
	}
}
