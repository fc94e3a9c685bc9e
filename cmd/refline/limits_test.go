package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/crypto/ssh"
)

// Commands for the limits-* stories: an attacker's connections and
// requests, which the OpenSSH client cannot make, against the real server.
func init() {
	scriptCmds["silent"] = cmdSilent
	scriptCmds["silentwait"] = cmdSilentWait
	scriptCmds["sshhold"] = cmdSSHHold
	scriptCmds["sshreq"] = cmdSSHReq
}

// attack is a script's open attacker connections.
type attack struct {
	mu     sync.Mutex
	conns  []*silentConn
	holds  []*ssh.Client
	closed chan struct{} // a token per connection the server closed
}

type silentConn struct {
	c    net.Conn
	got  bytes.Buffer // what the server sent
	done bool         // the server closed it
}

var (
	attacksMu sync.Mutex
	attacks   = map[*testscript.TestScript]*attack{}
)

func attackOf(ts *testscript.TestScript) *attack {
	attacksMu.Lock()
	defer attacksMu.Unlock()
	a, ok := attacks[ts]
	if !ok {
		a = &attack{closed: make(chan struct{}, 1<<16)}
		attacks[ts] = a
		ts.Defer(func() {
			a.mu.Lock()
			for _, c := range a.conns {
				c.c.Close()
			}
			for _, h := range a.holds {
				h.Close()
			}
			a.mu.Unlock()
			attacksMu.Lock()
			delete(attacks, ts)
			attacksMu.Unlock()
		})
	}
	return a
}

// cmdSilent opens N TCP connections to the SSH port from source address
// FROM (any 127.x.y.z) and sends nothing: `silent N FROM`.
func cmdSilent(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: silent N FROM")
	}
	n, err := strconv.Atoi(args[0])
	ts.Check(err)
	a := attackOf(ts)
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(args[1])}, Timeout: 10 * time.Second}
	for range n {
		c, err := d.Dial("tcp", net.JoinHostPort("127.0.0.1", ts.Getenv("SSHPORT")))
		ts.Check(err)
		sc := &silentConn{c: c}
		a.mu.Lock()
		a.conns = append(a.conns, sc)
		a.mu.Unlock()
		go func() {
			buf := make([]byte, 512)
			for {
				k, err := c.Read(buf)
				a.mu.Lock()
				sc.got.Write(buf[:k])
				if err != nil {
					sc.done = true
				}
				a.mu.Unlock()
				if err != nil {
					a.closed <- struct{}{}
					return
				}
			}
		}()
	}
}

// cmdSilentWait waits (30s at most) until the server has closed at least
// K of the silent connections, then prints what the closed ones were told,
// one distinct line each, and how many are closed and open:
// `silentwait K`.
func cmdSilentWait(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: silentwait K")
	}
	k, err := strconv.Atoi(args[0])
	ts.Check(err)
	a := attackOf(ts)
	deadline := time.After(30 * time.Second)
	for {
		a.mu.Lock()
		closed := 0
		for _, c := range a.conns {
			if c.done {
				closed++
			}
		}
		total := len(a.conns)
		if closed >= k {
			lines := map[string]bool{}
			for _, c := range a.conns {
				if c.done {
					for _, l := range strings.Split(strings.TrimSpace(c.got.String()), "\n") {
						if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "SSH-") {
							lines[l] = true
						}
					}
				}
			}
			a.mu.Unlock()
			var out []string
			for l := range lines {
				out = append(out, l)
			}
			sort.Strings(out)
			for _, l := range out {
				fmt.Fprintln(ts.Stdout(), l)
			}
			fmt.Fprintf(ts.Stdout(), "closed %d open %d\n", closed, total-closed)
			return
		}
		a.mu.Unlock()
		select {
		case <-a.closed:
		case <-deadline:
			ts.Fatalf("waited 30s for %d closed connections; %d of %d are", k, closed, total)
		}
	}
}

func dialAs(ts *testscript.TestScript, user string) (*ssh.Client, error) {
	keyPEM, err := os.ReadFile(filepath.Join(ts.Getenv("HOME"), ".ssh", "id_"+user))
	ts.Check(err)
	signer, err := ssh.ParsePrivateKey(keyPEM)
	ts.Check(err)
	return ssh.Dial("tcp", net.JoinHostPort("127.0.0.1", ts.Getenv("SSHPORT")), &ssh.ClientConfig{
		User:            "git",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		Timeout:         10 * time.Second,
	})
}

// cmdSSHHold opens one authenticated connection as USER with N sessions,
// each running COMMAND and holding its stdin open (an idle fetch: `sshhold
// bob 3 git-upload-pack app.git`), and keeps them until the script ends or
// `sshhold release`. It prints "opened K" and each refusal. `sshhold wait`
// waits (30s at most) until the server has closed every held connection.
func cmdSSHHold(ts *testscript.TestScript, neg bool, args []string) {
	a := attackOf(ts)
	if len(args) == 1 && (args[0] == "release" || args[0] == "wait") {
		a.mu.Lock()
		holds := a.holds
		a.holds = nil
		a.mu.Unlock()
		for _, h := range holds {
			if args[0] == "release" {
				h.Close()
				continue
			}
			done := make(chan error, 1)
			go func() { done <- h.Wait() }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				ts.Fatalf("a held connection was still open after 30s")
			}
		}
		fmt.Fprintf(ts.Stdout(), "%s %d\n", map[string]string{"release": "released", "wait": "closed by server"}[args[0]], len(holds))
		return
	}
	if len(args) < 3 {
		ts.Fatalf("usage: sshhold USER N COMMAND... | sshhold release | sshhold wait")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	client, err := dialAs(ts, args[0])
	ts.Check(err)
	a.mu.Lock()
	a.holds = append(a.holds, client)
	a.mu.Unlock()
	opened := 0
	for range n {
		sess, err := client.NewSession()
		if err != nil {
			fmt.Fprintf(ts.Stdout(), "refused: %v\n", err)
			continue
		}
		var stderr bytes.Buffer
		sess.Stderr = &stderr
		sess.Stdout = io.Discard
		if _, err := sess.StdinPipe(); err != nil { // held open, never written
			ts.Fatalf("stdin: %v", err)
		}
		if err := sess.Start(strings.Join(args[2:], " ")); err != nil {
			fmt.Fprintf(ts.Stdout(), "refused: %v\n", err)
			continue
		}
		opened++
	}
	fmt.Fprintf(ts.Stdout(), "opened %d\n", opened)
}

// cmdSSHReq opens a session as USER and sends requests with want_reply
// set, printing "TYPE ok" or "TYPE refused" for each: `sshreq bob pty-req
// auth-agent-req@openssh.com x11-req env:NAME=VALUE env*N:SIZE ...`.
// env*N:SIZE sends N env requests with SIZE-byte values and prints how many
// were granted, and whether the session was closed.
func cmdSSHReq(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: sshreq USER REQUEST...")
	}
	client, err := dialAs(ts, args[0])
	ts.Check(err)
	defer client.Close()
	ch, reqs, err := client.OpenChannel("session", nil)
	ts.Check(err)
	go ssh.DiscardRequests(reqs)
	defer ch.Close()
	for _, r := range args[1:] {
		switch {
		case strings.HasPrefix(r, "env*"):
			spec := strings.TrimPrefix(r, "env*")
			nStr, sizeStr, _ := strings.Cut(spec, ":")
			n, err := strconv.Atoi(nStr)
			ts.Check(err)
			size, err := strconv.Atoi(sizeStr)
			ts.Check(err)
			value := strings.Repeat("x", size)
			granted, sent := 0, 0
			for i := range n {
				ok, err := ch.SendRequest("env", true, ssh.Marshal(struct{ Key, Value string }{fmt.Sprintf("FLOOD_%d", i), value}))
				if err != nil {
					break // the server closed the session
				}
				sent++
				if ok {
					granted++
				}
			}
			fmt.Fprintf(ts.Stdout(), "env flood: sent %d of %d, granted %d\n", sent, n, granted)
		case strings.HasPrefix(r, "env:"):
			k, v, _ := strings.Cut(strings.TrimPrefix(r, "env:"), "=")
			ok, err := ch.SendRequest("env", true, ssh.Marshal(struct{ Key, Value string }{k, v}))
			fmt.Fprintf(ts.Stdout(), "env %s %s\n", k, verdict(ok, err))
		case r == "pty-req":
			payload := ssh.Marshal(struct {
				Term          string
				Cols, Rows    uint32
				Width, Height uint32
				Modes         string
			}{"xterm", 80, 24, 0, 0, ""})
			ok, err := ch.SendRequest(r, true, payload)
			fmt.Fprintf(ts.Stdout(), "%s %s\n", r, verdict(ok, err))
		case r == "x11-req":
			payload := ssh.Marshal(struct {
				Single        bool
				Proto, Cookie string
				Screen        uint32
			}{false, "MIT-MAGIC-COOKIE-1", "00112233445566778899aabbccddeeff", 0})
			ok, err := ch.SendRequest(r, true, payload)
			fmt.Fprintf(ts.Stdout(), "%s %s\n", r, verdict(ok, err))
		default:
			ok, err := ch.SendRequest(r, true, nil)
			fmt.Fprintf(ts.Stdout(), "%s %s\n", r, verdict(ok, err))
		}
	}
	// Global requests: port forwarding is no more granted.
	ok, _, err := client.SendRequest("tcpip-forward", true, ssh.Marshal(struct {
		Addr string
		Port uint32
	}{"127.0.0.1", 0}))
	fmt.Fprintf(ts.Stdout(), "tcpip-forward %s\n", verdict(ok, err))
	if c, err := client.Dial("tcp", net.JoinHostPort("127.0.0.1", ts.Getenv("SSHPORT"))); err == nil {
		c.Close()
		fmt.Fprintln(ts.Stdout(), "direct-tcpip ok")
	} else {
		fmt.Fprintln(ts.Stdout(), "direct-tcpip refused")
	}
}

func verdict(ok bool, err error) string {
	switch {
	case err != nil:
		return "closed"
	case ok:
		return "ok"
	}
	return "refused"
}
