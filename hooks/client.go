package hooks

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/refline/refline/atomicfile"
	"github.com/refline/refline/refs"
)

// maxSunPath is the room for a unix socket path in sockaddr_un on Linux.
const maxSunPath = 107

// shortSocketPath works around the 107-byte limit of unix socket paths (a
// data dir deep in a temp dir exceeds it): the directory is opened and named
// through /proc/self/fd, which bind and connect resolve like any other path.
// The returned function closes the directory once the socket is bound or
// connected.
func shortSocketPath(path string) (string, func(), error) {
	if len(path) <= maxSunPath {
		return path, func() {}, nil
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return "", nil, err
	}
	short := fmt.Sprintf("/proc/self/fd/%d/%s", dir.Fd(), filepath.Base(path))
	if len(short) > maxSunPath {
		dir.Close()
		return "", nil, fmt.Errorf("socket name %q is too long", filepath.Base(path))
	}
	return short, func() { dir.Close() }, nil
}

func listenUnix(path string) (net.Listener, error) {
	p, done, err := shortSocketPath(path)
	if err != nil {
		return nil, err
	}
	defer done()
	ln, err := net.Listen("unix", p)
	if err != nil {
		return nil, err
	}
	// The listener would otherwise unlink the /proc name on Close, which
	// is no file at all; the server removes the real path itself.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	return ln, nil
}

func dialUnix(ctx context.Context, path string) (net.Conn, error) {
	p, done, err := shortSocketPath(path)
	if err != nil {
		return nil, err
	}
	defer done()
	var d net.Dialer
	return d.DialContext(ctx, "unix", p)
}

// HookEnv is the part of the process environment a hook relays.
type HookEnv func(key string) string

// RunHook is the body of `refline hook NAME ARGS...`, the program git runs as
// a hook: it relays the call to the server on socket and returns the exit
// code the server decided on. When no server answers it decides on its own,
// conservatively: pushes are refused; a transaction run by hand may go ahead
// unless it moves a deploy ref or a server-owned ref (those need the
// server's verification).
func RunHook(ctx context.Context, socket, name string, args []string, stdin io.Reader, stderr io.Writer, getenv HookEnv) int {
	input, err := io.ReadAll(io.LimitReader(stdin, MaxFrame/2))
	if err != nil {
		fmt.Fprintf(stderr, "refline: read hook input: %v\n", err)
		return 1
	}
	gitDir := getenv("GIT_DIR")
	if gitDir == "" || !filepath.IsAbs(gitDir) {
		wd, err := os.Getwd()
		if err != nil {
			fmt.Fprintf(stderr, "refline: %v\n", err)
			return 1
		}
		gitDir = filepath.Join(wd, gitDir)
	}
	req := &Request{
		Hook:  name,
		Args:  args,
		Repo:  filepath.Clean(gitDir),
		Token: getenv(TokenEnv),
		Stdin: input,
	}
	if n, err := strconv.Atoi(getenv("GIT_PUSH_OPTION_COUNT")); err == nil {
		for i := 0; i < n && i < 100; i++ {
			req.PushOptions = append(req.PushOptions, getenv(fmt.Sprintf("GIT_PUSH_OPTION_%d", i)))
		}
	}
	for _, k := range []string{"GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_QUARANTINE_PATH"} {
		if v := getenv(k); v != "" {
			if req.Quarantine == nil {
				req.Quarantine = map[string]string{}
			}
			req.Quarantine[k] = v
		}
	}

	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	conn, err := dialUnix(dctx, socket)
	cancel()
	if err != nil {
		return decideAlone(req, stderr)
	}
	defer conn.Close()
	if err := WriteRequest(conn, req); err != nil {
		fmt.Fprintf(stderr, "refline: %v\n", err)
		return 1
	}
	code, err := ReadResponse(conn, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "refline: %v\n", err)
		return 1
	}
	return code
}

func decideAlone(req *Request, stderr io.Writer) int {
	switch req.Hook {
	case "pre-receive":
		fmt.Fprintf(stderr, "refline: error: %v; push refused, nothing was changed\n", ErrServerDown)
		return 1
	case "reference-transaction":
		if len(req.Args) == 0 || req.Args[0] != "prepared" {
			return 0 // the server reconciles deploy refs when it starts
		}
		ups, err := ParseUpdates(req.Stdin)
		if err != nil {
			fmt.Fprintf(stderr, "refline: %v\n", err)
			return 1
		}
		for _, u := range ups {
			if u.Deletes() {
				continue
			}
			if cur, err := refs.Resolve(req.Repo, u.Ref); err == nil && cur.String() == u.New {
				continue // housekeeping such as pack-refs
			}
			if refs.ServerOwned(u.Ref) || refs.IsDeploy(u.Ref) {
				fmt.Fprintf(stderr, "refline: error: %s can only be moved while the refline server runs, because the server verifies the target; start it and try again\n", u.Ref)
				return 1
			}
		}
		return 0
	default:
		fmt.Fprintf(stderr, "refline: warning: %v; the server will catch up when it starts\n", ErrServerDown)
		return 0
	}
}

// Names of the hooks every repository runs.
var Names = []string{"pre-receive", "post-receive", "reference-transaction"}

// SkipTxEnv marks git processes whose reference-transaction callbacks the
// shim answers by itself: pushes (pre-receive has already vetted them and
// post-receive reacts to them) and the server's own writes of the refs it
// alone owns. That saves two process starts on every push and every record.
const SkipTxEnv = "REFLINE_SKIP_TX_HOOK"

// WriteShims writes the hook scripts into dir (a repository's
// core.hooksPath). Each one runs `binary hook NAME`; they are rewritten at
// every start so that they always name the running binary and socket.
func WriteShims(dir, binary, socket string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("hooks dir: %w", err)
	}
	for _, name := range Names {
		var b strings.Builder
		b.WriteString("#!/bin/sh\n# Written by refline at start; changes are overwritten.\n")
		if name == "reference-transaction" {
			fmt.Fprintf(&b, "[ \"$%s\" = 1 ] && exit 0\n", SkipTxEnv)
		}
		fmt.Fprintf(&b, "exec %s hook --socket %s %s \"$@\"\n", shellQuote(binary), shellQuote(socket), name)
		if _, err := atomicfile.Write(filepath.Join(dir, name), []byte(b.String()), 0o755); err != nil {
			return fmt.Errorf("install hook %s: %w", name, err)
		}
	}
	return nil
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
