package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/rogpeppe/go-internal/testscript"
)

// cmdHookRecv (`hookrecv DIR [CODE...]`) starts an HTTP receiver on
// loopback for webhook deliveries and sets $HOOKURL. Each request N appends
// "N EVENT DELIVERY" to DIR/log and writes its body to DIR/N.body and its
// X-Hub-Signature-256 to DIR/N.sig; the story checks the signature with
// openssl, apart from the sender's code. It answers the CODEs in turn,
// then 200.
func cmdHookRecv(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 {
		ts.Fatalf("usage: hookrecv DIR [CODE...]")
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
		_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("%d.body", n)), body, 0o644)
		_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("%d.sig", n)), []byte(r.Header.Get("X-Hub-Signature-256")+"\n"), 0o644)
		// The log line last: a story waiting on it finds the files written.
		f, err := os.OpenFile(filepath.Join(dir, "log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err == nil {
			fmt.Fprintf(f, "%d %s %s %d\n", n, r.Header.Get("X-Refline-Event"), r.Header.Get("X-Refline-Delivery"), code)
			f.Close()
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
