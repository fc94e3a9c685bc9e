package hooks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/refline/refline/atomicfile"
	"github.com/refline/refline/hooks/relay"
	"github.com/refline/refline/refs"
)

func listenUnix(path string) (net.Listener, error) {
	p, done, err := relay.ShortSocketPath(path)
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

// HookEnv is the part of the process environment a hook relays.
type HookEnv func(key string) string

// RunHook is the body of `refline hook NAME ARGS...`, the program git runs as
// a hook: it relays the call to the server on socket and returns the exit
// code the server decided on. When no server answers it decides on its own,
// conservatively: pushes are refused; a transaction run by hand may go ahead
// unless it moves a deploy ref or a server-owned ref (those need the
// server's verification).
func RunHook(ctx context.Context, socket, name string, args []string, stdin io.Reader, stderr io.Writer, getenv HookEnv) int {
	input, err := io.ReadAll(io.LimitReader(stdin, relay.MaxInput))
	if err != nil {
		fmt.Fprintf(stderr, "refline: read hook input: %v\n", err)
		return 1
	}
	req, err := relay.NewRequest(name, args, input, relay.Getenv(getenv))
	if err != nil {
		fmt.Fprintf(stderr, "refline: %v\n", err)
		return 1
	}
	code, err := relay.Call(ctx, socket, req, stderr)
	switch {
	case errors.Is(err, relay.ErrNoServer):
		return decideAlone(req, stderr)
	case err != nil:
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

// PushNames are the hooks of a push. receive-pack runs with a hooks
// directory holding only these (gitserver passes it as core.hooksPath):
// git runs reference-transaction twice for every ref a push moves, and
// pre-receive has already vetted them all, so a push of thousands of refs
// would otherwise start thousands of processes that decide nothing.
var PushNames = []string{"pre-receive", "post-receive"}

// SkipTxEnv marks git processes whose reference-transaction callbacks the
// shim answers by itself: pushes (pre-receive has already vetted them and
// post-receive reacts to them) and the server's own writes of the refs it
// alone owns. Both normally run with a hooks directory without that hook;
// the variable covers a git process started with the repository's own.
const SkipTxEnv = "REFLINE_SKIP_TX_HOOK"

// Shim says what the hook scripts run.
type Shim struct {
	// Binary is the refline binary: `Binary hook NAME`.
	Binary string
	// Relay, when set, is the small relay binary (cmd/refline-hook),
	// which starts in a fraction of the full binary's time; it hands the
	// call to Binary when the server is down.
	Relay  string
	Socket string
}

// WriteShims writes the hook scripts names into dir (a repository's
// core.hooksPath) and removes any other hook refline writes. They are
// rewritten at every start so that they always name the running binary
// and socket.
func WriteShims(dir string, names []string, sh Shim) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("hooks dir: %w", err)
	}
	for _, name := range Names {
		path := filepath.Join(dir, name)
		if !slices.Contains(names, name) {
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("remove hook %s: %w", name, err)
			}
			continue
		}
		var b strings.Builder
		b.WriteString("#!/bin/sh\n# Written by refline at start; changes are overwritten.\n")
		if name == "reference-transaction" {
			fmt.Fprintf(&b, "[ \"$%s\" = 1 ] && exit 0\n", SkipTxEnv)
		}
		if sh.Relay != "" {
			fmt.Fprintf(&b, "exec %s --socket %s --fallback %s %s \"$@\"\n", shellQuote(sh.Relay), shellQuote(sh.Socket), shellQuote(sh.Binary), name)
		} else {
			fmt.Fprintf(&b, "exec %s hook --socket %s %s \"$@\"\n", shellQuote(sh.Binary), shellQuote(sh.Socket), name)
		}
		if _, err := atomicfile.Write(path, []byte(b.String()), 0o755); err != nil {
			return fmt.Errorf("install hook %s: %w", name, err)
		}
	}
	return nil
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
