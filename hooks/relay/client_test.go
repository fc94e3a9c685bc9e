package relay

import (
	"bytes"
	"net"
	"path/filepath"
	"strings"
	"testing"
)

func TestMainRelaysToTheServer(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "hook.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan *Request, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		req, err := ReadRequest(conn)
		if err != nil {
			t.Error(err)
			return
		}
		got <- req
		OutputWriter{W: conn}.Write([]byte("refline: checked\n"))
		WriteExit(conn, 3)
	}()
	env := map[string]string{"GIT_DIR": "/data/repos/app.git", TokenEnv: "tok", "GIT_PUSH_OPTION_COUNT": "1", "GIT_PUSH_OPTION_0": "follow",
		"GIT_QUARANTINE_PATH": "/q"}
	var stderr bytes.Buffer
	code := Main([]string{"--socket", sock, "pre-receive", "a"}, strings.NewReader("old new refs/heads/x\n"), &stderr,
		func(k string) string { return env[k] })
	if code != 3 || stderr.String() != "refline: checked\n" {
		t.Fatalf("exit %d, output %q; want 3 and the server's output", code, stderr.String())
	}
	req := <-got
	if req.Hook != "pre-receive" || req.Repo != "/data/repos/app.git" || req.Token != "tok" || string(req.Stdin) != "old new refs/heads/x\n" ||
		len(req.Args) != 1 || len(req.PushOptions) != 1 || req.PushOptions[0] != "follow" || req.Quarantine["GIT_QUARANTINE_PATH"] != "/q" {
		t.Fatalf("request %+v", req)
	}
}

func TestMainWithoutServer(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	getenv := func(k string) string { return map[string]string{"GIT_DIR": "/r.git"}[k] }
	var stderr bytes.Buffer
	if code := Main([]string{"--socket", sock, "pre-receive"}, strings.NewReader(""), &stderr, getenv); code != 1 ||
		!strings.Contains(stderr.String(), "not running") {
		t.Fatalf("without a server nor a fallback: exit %d, %q; want a refusal", code, stderr.String())
	}
	stderr.Reset()
	// The fallback decides: here /bin/false, which refuses whatever it is asked.
	if code := Main([]string{"--socket", sock, "--fallback", "/bin/false", "post-receive"}, strings.NewReader(""), &stderr, getenv); code != 1 {
		t.Fatalf("the fallback's verdict was not kept: exit %d", code)
	}
	if code := Main([]string{"--socket", sock, "--fallback", "/bin/true", "post-receive"}, strings.NewReader(""), &stderr, getenv); code != 0 {
		t.Fatalf("the fallback's verdict was not kept: exit %d", code)
	}
	if code := Main(nil, strings.NewReader(""), &stderr, getenv); code != 2 {
		t.Fatalf("no arguments: exit %d, want 2", code)
	}
}
