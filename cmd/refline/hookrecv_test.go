package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/rogpeppe/go-internal/testscript"
)

// cmdHookRecv (`hookrecv [-redirect URL] DIR [CODE...]`) starts an HTTP
// receiver on loopback for webhook deliveries and sets $HOOKURL. Each
// request N appends "N EVENT DELIVERY CODE" to DIR/log and writes its body
// to DIR/N.body, its X-Hub-Signature-256 to DIR/N.sig and all its headers,
// "Name: value" sorted, to DIR/N.headers; the story checks the signatures
// with openssl, apart from the sender's code. It answers the CODEs in
// turn, then 200. With -redirect, a 3xx answer carries "Location: URL"
// (another receiver, to show that nobody follows it).
func cmdHookRecv(ts *testscript.TestScript, neg bool, args []string) {
	var location string
	if len(args) >= 2 && args[0] == "-redirect" {
		location, args = args[1], args[2:]
	}
	if neg || len(args) < 1 {
		ts.Fatalf("usage: hookrecv [-redirect URL] DIR [CODE...]")
	}
	dir := ts.MkAbs(args[0])
	ts.Check(os.MkdirAll(dir, 0o755))
	var codes []int
	for _, a := range args[1:] {
		c, err := strconv.Atoi(a)
		ts.Check(err)
		codes = append(codes, c)
	}
	var mu sync.Mutex
	n := 0
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		n++
		code := 200
		if len(codes) > 0 {
			code, codes = codes[0], codes[1:]
		}
		var headers []string
		for k, vs := range r.Header {
			for _, v := range vs {
				headers = append(headers, k+": "+v)
			}
		}
		sort.Strings(headers)
		_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("%d.body", n)), body, 0o644)
		_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("%d.sig", n)), []byte(r.Header.Get("X-Hub-Signature-256")+"\n"), 0o644)
		_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("%d.headers", n)), []byte(strings.Join(headers, "\n")+"\n"), 0o644)
		// The log line last: a story waiting on it finds the files written.
		f, err := os.OpenFile(filepath.Join(dir, "log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err == nil {
			fmt.Fprintf(f, "%d %s %s %d\n", n, r.Header.Get("X-Refline-Event"), r.Header.Get("X-Refline-Delivery"), code)
			f.Close()
		}
		if location != "" && code >= 300 && code < 400 {
			w.Header().Set("Location", location)
		}
		w.WriteHeader(code)
		fmt.Fprintf(w, "answer %d\n", n)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	ts.Defer(func() { srv.Close() })
	ts.Setenv("HOOKURL", "http://"+ln.Addr().String()+"/hook")
}
