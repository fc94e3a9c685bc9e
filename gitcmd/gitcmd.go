// Package gitcmd is the one way the server starts git: the transport
// (upload-pack, receive-pack), ref updates (update-ref), repository set-up
// (init, config) and every read git must do itself.
//
// # Environment
//
// A git child gets a whole environment built here, never the server's own
// (which holds the server's secrets) nor a client's (GIT_DIR,
// GIT_OBJECT_DIRECTORY, GIT_CONFIG_* would redirect git). Env builds it:
//
//   - PATH, so that git finds its helpers and the hooks find `refline`.
//   - HOME, when set, for the server user's own git configuration.
//   - GORACE, when set: the tests build refline with -race and git runs the
//     `refline hook` processes; GORACE=atexit_sleep_ms=0 spares each of them
//     the race detector's one-second sleep at exit.
//   - then what the caller adds: the session token of a push, git's
//     quarantine variables for a read in pre-receive, GIT_INDEX_FILE, …
//   - LC_ALL=C last, so that git's messages stay in English: callers
//     classify them (refs.Updater's stale/locked/refused, a missing file).
//
// # The binary
//
// The binary is Bin, "git" found in the server's PATH, the same PATH every child
// gets, so the git that runs the transport, its hooks' git and the server's
// own calls are one git. Put the wanted git first in PATH to choose it.
//
// # Stopping
//
// Every command takes a context. Cancelling it sends git SIGTERM, on which
// git removes its lock files, and SIGKILL only StopGrace later: a killed
// update-ref would leave a ref locked until someone removes the lock by hand.
// The SSH transport (Transport) is the exception: its git stops by itself
// when the client leaves, and gitserver stops the rare one that does not.
//
// # go-git or the binary
//
// Reads of what a user pushed go through the binary: a push's objects in
// pre-receive live in git's quarantine directory, which only git knows how to
// read (with the variables it hands its hooks), and revisions typed by users
// must follow git's own rules (rev-parse). Diffs (diff-tree, ls-tree),
// checkouts (read-tree -u), and all ref writes (update-ref, under git's locks
// and the reference-transaction hook) use the binary too.
//
// go-git reads and writes the server's own objects in process, and that is
// what its modules (15 linked into refline, go-git's own dependencies:
// go-billy, gcfg, sha1cd, go-crypto, …) are kept for:
//
//   - encoding: refs.WriteTree and refs.WriteSignedCommit build the trees
//     and commits of artifacts and runs with go-git's encoders; the exact
//     bytes of a commit without its signature are the payload refs.Signer
//     signs and refs.VerifyCommit checks, so encoding and verifying must be
//     the same code (refs/sign.go, refs/commit.go; blobs go through refs'
//     own loose writer, refs/loose.go);
//   - reading the server's chains: refs.Resolve and Updater.Append resolve
//     refs and check parents, refs.Chain and the deploy controller
//     (pipelines/deploy.go) walk the artifact, run and deploy chains,
//     without a process per commit;
//   - plumbing.Hash and object.Signature are the types of refs' API.
//
// The binary would need a hand-written commit encoder to sign, and a process
// per step to walk; these working reads stay on go-git. Most of the linked
// modules come with parts refline does not call: the root package's remotes
// and transports (ssh_config, knownhosts, ssh-agent, mergo, groupcache) and
// plumbing/object's OpenPGP verification and diffs (go-crypto, circl,
// go-diff).
//
// # Not here
//
// The client side (cmd/refline/internal/secretscli: `git remote`, `ssh HOST
// keys`, $EDITOR) runs in the user's clone with the user's environment on
// purpose, and the benchmarks (cmd/refline-bench) drive git as a user would;
// neither goes through this package.
package gitcmd

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Bin is the git binary, looked up in PATH (see the package comment).
const Bin = "git"

// StopGrace bounds how long a git child may take to exit after its context
// is done and it was sent SIGTERM; it is killed after that.
const StopGrace = 5 * time.Second

// Env returns the whole environment of a git child: PATH, HOME and GORACE of
// this process (see the package comment), extra, and LC_ALL=C.
func Env(extra ...string) []string {
	env := make([]string, 0, len(extra)+4)
	env = append(env, "PATH="+os.Getenv("PATH"))
	for _, k := range []string{"HOME", "GORACE"} {
		if v := os.Getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	env = append(env, extra...)
	return append(env, "LC_ALL=C")
}

// Repo is a bare repository and the extra environment to run git with.
type Repo struct {
	// GitDir is passed as --git-dir; when empty, the command names its
	// repository itself (`init DIR`, `upload-pack DIR`).
	GitDir string
	// Env is added to the environment after PATH, HOME and GORACE.
	Env []string
}

// Command prepares `git --git-dir=GITDIR ARGS...` with the environment of
// Env. Cancelling ctx stops git with SIGTERM, then SIGKILL after StopGrace.
func (r Repo) Command(ctx context.Context, args ...string) *exec.Cmd {
	if r.GitDir != "" {
		args = append([]string{"--git-dir=" + r.GitDir}, args...)
	}
	cmd := exec.CommandContext(ctx, Bin, args...)
	cmd.Env = Env(r.Env...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = StopGrace
	return cmd
}

// Transport prepares the git of an SSH session: `git ARGS...` where ARGS
// end in "upload-pack DIR" or "receive-pack DIR", with the environment of
// Env. Unlike Command, cancelling ctx does not reach git, and Wait waits for
// the session's streams as long as they last: git notices a client that left
// by itself (EOF, EPIPE) and cleans up, and the caller stops the rare one
// that does not (gitserver's reap, after a grace period).
func (r Repo) Transport(ctx context.Context, args ...string) *exec.Cmd {
	if r.GitDir != "" {
		args = append([]string{"--git-dir=" + r.GitDir}, args...)
	}
	cmd := exec.CommandContext(context.WithoutCancel(ctx), Bin, args...)
	cmd.Env = Env(r.Env...)
	return cmd
}

// Output runs git and returns its standard output; a failure carries git's
// standard error.
func (r Repo) Output(ctx context.Context, args ...string) ([]byte, error) {
	var stderr bytes.Buffer
	cmd := r.Command(ctx, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// Run runs git for its effect; a failure carries git's standard error.
func (r Repo) Run(ctx context.Context, args ...string) error {
	_, err := r.Output(ctx, args...)
	return err
}

// Paths runs a git command whose output is NUL-terminated paths (`-z`) and
// returns them.
func (r Repo) Paths(ctx context.Context, args ...string) ([]string, error) {
	out, err := r.Output(ctx, args...)
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, p := range bytes.Split(out, []byte{0}) {
		if len(p) > 0 {
			paths = append(paths, string(p))
		}
	}
	return paths, nil
}

// Object is one object read by an Objects reader.
type Object struct {
	ID   string // hex; its length tells SHA-1 from SHA-256
	Type string // "blob", "tree", "commit" or "tag"
	Size int64  // the whole size, even when Data holds less
	Data []byte
}

// Objects reads objects one after the other from a single
// `git cat-file --batch` process: one process for many objects, on paths
// (a push, a pipeline start) where a process per object would show.
// It is not safe for concurrent use. Close it.
type Objects struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	br     *bufio.Reader
	stderr bytes.Buffer
	broken bool // a read failed midway: the stream is out of step
}

// Objects starts `git cat-file --batch`.
func (r Repo) Objects(ctx context.Context) (*Objects, error) {
	o := &Objects{cmd: r.Command(ctx, "cat-file", "--batch")}
	var err error
	if o.stdin, err = o.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := o.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	o.cmd.Stderr = &o.stderr
	if err := o.cmd.Start(); err != nil {
		return nil, fmt.Errorf("git cat-file: %w", err)
	}
	o.br = bufio.NewReader(stdout)
	return o, nil
}

// Read reads the object named by rev (an id, or any expression cat-file
// takes, like "COMMIT^{commit}:dir"). Data holds at most limit bytes of its
// content; the rest is skipped. ok is false when there is no such object.
func (o *Objects) Read(rev string, limit int64) (obj Object, ok bool, err error) {
	if o.broken {
		return Object{}, false, fmt.Errorf("read %s: an earlier read failed", rev)
	}
	defer func() {
		if err != nil {
			o.broken = true
		}
	}()
	if _, err := io.WriteString(o.stdin, rev+"\n"); err != nil {
		return Object{}, false, fmt.Errorf("read %s: %w", rev, err)
	}
	hdr, err := o.br.ReadString('\n')
	if err != nil {
		return Object{}, false, fmt.Errorf("read %s: %w", rev, err)
	}
	f := strings.Fields(hdr)
	if len(f) == 2 && f[1] == "missing" {
		return Object{}, false, nil
	}
	if len(f) != 3 {
		return Object{}, false, fmt.Errorf("read %s: %s", rev, strings.TrimSpace(hdr))
	}
	size, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil || size < 0 {
		return Object{}, false, fmt.Errorf("read %s: %s", rev, strings.TrimSpace(hdr))
	}
	keep := min(size, max(limit, 0))
	data := make([]byte, keep)
	if _, err := io.ReadFull(o.br, data); err != nil {
		return Object{}, false, fmt.Errorf("read %s: %w", rev, err)
	}
	if _, err := io.CopyN(io.Discard, o.br, size-keep+1); err != nil { // the rest + LF
		return Object{}, false, fmt.Errorf("read %s: %w", rev, err)
	}
	return Object{ID: f[0], Type: f[1], Size: size, Data: data}, true, nil
}

// Close ends the process. After a failed Read git may be blocked writing
// what was left unread, so it is stopped rather than waited for, and Close
// reports nothing more than that Read's error.
func (o *Objects) Close() error {
	o.stdin.Close()
	if o.broken {
		_ = o.cmd.Process.Kill()
		_ = o.cmd.Wait()
		return nil
	}
	if err := o.cmd.Wait(); err != nil {
		return fmt.Errorf("git cat-file: %w: %s", err, strings.TrimSpace(o.stderr.String()))
	}
	return nil
}
