package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/rogpeppe/go-internal/testscript"
)

// The dashboard's story commands: `http` speaks to it as a script would
// (with the story's own cookie jar, so a login sticks), `chrome` drives a
// real headless Chromium through the DevTools protocol.

// webSlot is a story's HTTP client and browser.
type webSlot struct {
	client  *http.Client
	browser context.Context
}

func newWebSlot() *webSlot {
	jar, _ := cookiejar.New(nil)
	return &webSlot{client: &http.Client{
		Jar:     jar,
		Timeout: 30 * time.Second,
		// A story sees each answer, redirects included.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

var fileRefRE = regexp.MustCompile(`\{@([^}]+)\}`)

// storyURL reads a URL argument: @FILE for one a command printed, a bare
// HOST:PORT/path for the server's own; {@FILE} in it stands for FILE's
// content, query-escaped (a commit id a git command printed, a cursor).
func storyURL(ts *testscript.TestScript, arg string) string {
	if f, ok := strings.CutPrefix(arg, "@"); ok {
		arg = strings.TrimSpace(ts.ReadFile(f))
	}
	arg = fileRefRE.ReplaceAllStringFunc(arg, func(m string) string {
		return url.QueryEscape(strings.TrimSpace(ts.ReadFile(fileRefRE.FindStringSubmatch(m)[1])))
	})
	if !strings.HasPrefix(arg, "http://") && !strings.HasPrefix(arg, "https://") {
		arg = "http://" + arg
	}
	return arg
}

// cmdHTTP is `http [-code N] [-until RE] [-H 'Name: value']... [-bearer
// FILE] METHOD URL [FIELD=VALUE]...`: one request with the story's cookies
// (-bearer sends the token in FILE instead); form fields
// make a POST body (FIELD=@FILE reads the value). It prints the body to
// stdout and "HTTP CODE" with the response's headers to stderr. Without
// -code any 2xx or 3xx answer passes; with -until it asks again until the
// body matches (30s at most).
func cmdHTTP(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! http (use -code)")
	}
	code := 0
	var until *regexp.Regexp
	var headers []string
	for len(args) > 1 && strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "-code":
			c, err := strconv.Atoi(args[1])
			ts.Check(err)
			code = c
		case "-until":
			until = regexp.MustCompile(args[1])
		case "-H":
			headers = append(headers, args[1])
		case "-bearer":
			headers = append(headers, "Authorization: Bearer "+strings.TrimSpace(ts.ReadFile(args[1])))
		default:
			ts.Fatalf("http: unknown flag %s", args[0])
		}
		args = args[2:]
	}
	if len(args) < 2 {
		ts.Fatalf("usage: http [-code N] [-until RE] [-H 'Name: value']... METHOD URL [FIELD=VALUE]...")
	}
	method, u := args[0], storyURL(ts, args[1])
	form := url.Values{}
	for _, kv := range args[2:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			ts.Fatalf("http: form field %q is not FIELD=VALUE", kv)
		}
		if f, ok := strings.CutPrefix(v, "@"); ok {
			v = strings.TrimSpace(ts.ReadFile(f))
		}
		form.Add(k, v)
	}
	web := ts.Value("web").(*webSlot)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var body io.Reader
		if len(form) > 0 {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequest(method, u, body)
		ts.Check(err)
		if len(form) > 0 {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		for _, h := range headers {
			k, v, _ := strings.Cut(h, ":")
			req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
		}
		resp, err := web.client.Do(req)
		ts.Check(err)
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		ts.Check(err)
		ok := resp.StatusCode < 400
		if code != 0 {
			ok = resp.StatusCode == code
		}
		if ok && (until == nil || until.Match(b)) {
			fmt.Fprintf(ts.Stderr(), "HTTP %d\n", resp.StatusCode)
			for _, k := range []string{"Content-Type", "Location", "Set-Cookie", "Www-Authenticate", "Content-Disposition"} {
				for _, v := range resp.Header.Values(k) {
					fmt.Fprintf(ts.Stderr(), "%s: %s\n", k, v)
				}
			}
			ts.Stdout().Write(b)
			return
		}
		if until == nil || time.Now().After(deadline) {
			ts.Fatalf("%s %s: %s (want %d%s)\n%s", method, u, resp.Status, code, map[bool]string{true: ", body matching " + fmt.Sprint(until)}[until != nil], b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// chromiumPath finds the browser the browser stories drive, "" without.
func chromiumPath() string {
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}

// cmdChrome drives headless Chromium:
//
//	chrome start               start the browser (one per story)
//	chrome open URL            navigate (URL as for http)
//	chrome click SELECTOR      click the first match, once it is visible
//	chrome text SELECTOR RE    wait until the element's text matches
//	chrome attr SELECTOR NAME RE  wait until the attribute matches
//	chrome eval JS RE          wait until the expression's value (as text) matches
//	chrome shot NAME           a screenshot: $REFLINE_SCREENSHOTS/NAME.png when
//	                           that is set (make screenshots), else in the work dir
//
// Every wait gives up after 30s.
func cmdChrome(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: chrome start|open|click|text|attr|eval|shot ...")
	}
	web := ts.Value("web").(*webSlot)
	if args[0] == "start" {
		path := chromiumPath()
		if path == "" {
			ts.Fatalf("chromium is not installed")
		}
		opts := append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(path),
			chromedp.NoSandbox, // the tests run as root, where Chromium's own sandbox cannot
			chromedp.WindowSize(1280, 860),
			chromedp.UserDataDir(ts.MkAbs("chrome-profile")),
			chromedp.Flag("disable-dev-shm-usage", true),
		)
		actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		bctx, cancel := chromedp.NewContext(actx)
		ts.Defer(func() { cancel(); cancelAlloc() })
		// The first call starts the browser, which lives as long as the
		// context of that call: no timeout on it.
		ts.Check(chromedp.Do(bctx, chromedp.Navigate("about:blank")))
		web.browser = bctx
		return
	}
	if web.browser == nil {
		ts.Fatalf("chrome start first")
	}
	ctx, stop := context.WithTimeout(web.browser, 30*time.Second)
	defer stop()
	want := func(n int) {
		if len(args) != n {
			ts.Fatalf("chrome %s takes %d arguments", args[0], n-1)
		}
	}
	// poll evaluates get until its result matches re.
	poll := func(what string, re *regexp.Regexp, js string) {
		var last string
		for {
			if s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js)); err == nil {
				last = s
				if re.MatchString(s) {
					fmt.Fprintf(ts.Stdout(), "%s\n", s)
					return
				}
			}
			select {
			case <-ctx.Done():
				ts.Fatalf("chrome: %s did not match %s within 30s; last: %q", what, re, last)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	switch args[0] {
	case "open":
		want(2)
		ts.Check(chromedp.Do(ctx, chromedp.Navigate(storyURL(ts, args[1]))))
	case "click":
		want(2)
		ts.Check(chromedp.Do(ctx, chromedp.Click(chromedp.CSS(args[1]), chromedp.NodeVisible)))
	case "text":
		want(3)
		sel, re := args[1], regexp.MustCompile(args[2])
		poll(sel, re, fmt.Sprintf(`(function(){var e=document.querySelector(%q);return e?e.textContent:"";})()`, sel))
	case "attr":
		want(4)
		sel, name, re := args[1], args[2], regexp.MustCompile(args[3])
		poll(sel+" @"+name, re, fmt.Sprintf(`(function(){var e=document.querySelector(%q);return e?(e.getAttribute(%q)||""):"";})()`, sel, name))
	case "eval":
		want(3)
		js, re := args[1], regexp.MustCompile(args[2])
		poll(js, re, fmt.Sprintf(`String(%s)`, js))
	case "shot":
		want(2)
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		ts.Check(err)
		dir := os.Getenv("REFLINE_SCREENSHOTS")
		if dir == "" {
			dir = ts.MkAbs("screenshots")
		}
		ts.Check(os.MkdirAll(dir, 0o755))
		ts.Check(os.WriteFile(filepath.Join(dir, args[1]+".png"), png, 0o644))
	default:
		ts.Fatalf("chrome: unknown step %q", args[0])
	}
}

// TestDashboardURL covers how --http-url defaults from the listener.
func TestDashboardURL(t *testing.T) {
	for _, tc := range []struct {
		flag, listen, want string
	}{
		{"", "127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"", "0.0.0.0:8080", "http://build-1:8080"},
		{"", "[::]:8080", "http://build-1:8080"},
		{"", "[::1]:9000", "http://[::1]:9000"},
		{"https://ci.example.com/", "127.0.0.1:8080", "https://ci.example.com"},
		{"ftp://x", "127.0.0.1:8080", "error"},
		{"ci.example.com", "127.0.0.1:8080", "error"},
	} {
		a, err := net.ResolveTCPAddr("tcp", tc.listen)
		if err != nil {
			t.Fatal(err)
		}
		got, err := dashboardURL(tc.flag, a, "build-1")
		if err != nil {
			got = "error"
		}
		if got != tc.want {
			t.Errorf("dashboardURL(%q, %s) = %q, want %q", tc.flag, tc.listen, got, tc.want)
		}
	}
}
