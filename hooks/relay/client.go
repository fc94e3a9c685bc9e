package relay

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// maxSunPath is the room for a unix socket path in sockaddr_un on Linux.
const maxSunPath = 107

// ShortSocketPath works around the 107-byte limit of unix socket paths (a
// data dir deep in a temp dir exceeds it): the directory is opened and named
// through /proc/self/fd, which bind and connect resolve like any other path.
// The returned function closes the directory once the socket is bound or
// connected.
func ShortSocketPath(path string) (string, func(), error) {
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

func dialUnix(ctx context.Context, path string) (net.Conn, error) {
	p, done, err := ShortSocketPath(path)
	if err != nil {
		return nil, err
	}
	defer done()
	var d net.Dialer
	return d.DialContext(ctx, "unix", p)
}

// Getenv is the part of the process environment a hook relays.
type Getenv func(key string) string

// MaxInput bounds what a hook reads from git: a list of ref updates.
const MaxInput = MaxFrame / 2

// NewRequest builds the request for hook name, run by git with args and
// input on stdin, from what git put in the hook's environment: the
// repository, the session token, push options and the quarantine.
func NewRequest(name string, args []string, input []byte, getenv Getenv) (*Request, error) {
	gitDir := getenv("GIT_DIR")
	if gitDir == "" || !filepath.IsAbs(gitDir) {
		wd, err := os.Getwd()
		if err != nil {
			return nil, err
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
	return req, nil
}

// TokenEnv is the environment variable that carries a session token from the
// server, through git, into the hook process.
const TokenEnv = "REFLINE_HOOK_TOKEN"

// ErrNoServer is returned by Call when nothing answers on the socket.
var ErrNoServer = errors.New("the refline server is not running")

// Call sends req to the server on socket, copies the server's output to
// out as it comes, and returns the exit code the server decided on. It
// returns an error wrapping ErrNoServer when it cannot connect.
func Call(ctx context.Context, socket string, req *Request, out io.Writer) (int, error) {
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	conn, err := dialUnix(dctx, socket)
	cancel()
	if err != nil {
		return 0, fmt.Errorf("%w (%v)", ErrNoServer, err)
	}
	defer conn.Close()
	if err := WriteRequest(conn, req); err != nil {
		return 0, err
	}
	return ReadResponse(conn, out)
}

// Main is the relay binary (cmd/refline-hook), which git runs for every
// hook call through the shims in DATA/hooks:
//
//	refline-hook --socket PATH [--fallback BINARY] NAME [ARGS...]
//
// It relays the call to the server and exits as the server decides. When
// no server answers, the decision without the server is the full binary's
// (`BINARY hook`, see hooks.RunHook): the relay hands the call over to it,
// with the same input. Without --fallback it refuses, like a hook whose
// server is down should.
func Main(args []string, stdin io.Reader, stderr io.Writer, getenv Getenv) int {
	fs := flag.NewFlagSet("refline-hook", flag.ContinueOnError)
	fs.SetOutput(stderr)
	socket := fs.String("socket", "", "the server's hook socket")
	fallback := fs.String("fallback", "", "the refline binary, which decides when the server is down")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *socket == "" || fs.NArg() == 0 {
		fmt.Fprintln(stderr, "usage: refline-hook --socket PATH [--fallback BINARY] NAME [ARGS...]")
		return 2
	}
	name, hookArgs := fs.Arg(0), fs.Args()[1:]
	input, err := io.ReadAll(io.LimitReader(stdin, MaxInput))
	if err != nil {
		fmt.Fprintf(stderr, "refline: read hook input: %v\n", err)
		return 1
	}
	req, err := NewRequest(name, hookArgs, input, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "refline: %v\n", err)
		return 1
	}
	code, err := Call(context.Background(), *socket, req, stderr)
	switch {
	case err == nil:
		return code
	case !errors.Is(err, ErrNoServer):
		fmt.Fprintf(stderr, "refline: %v\n", err)
		return 1
	case *fallback == "":
		fmt.Fprintf(stderr, "refline: error: %v; refused\n", ErrNoServer)
		return 1
	}
	cmd := exec.Command(*fallback, append([]string{"hook", "--socket", *socket, name}, hookArgs...)...)
	cmd.Stdin = bytes.NewReader(input)
	cmd.Stdout = os.Stdout
	cmd.Stderr = stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() > 0 {
			return ee.ExitCode()
		}
		fmt.Fprintf(stderr, "refline: %v\n", err)
		return 1
	}
	return 0
}
