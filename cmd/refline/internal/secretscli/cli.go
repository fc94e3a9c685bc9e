// Package secretscli is `refline secrets` (SPEC §8): it edits the
// encrypted secrets files of a clone, asking the server for its recipients
// over ssh, running the user's $EDITOR and prompting on the terminal. The
// file format, age, dotenv and recipients are package secrets; this package
// adds what runs on a user's machine.
package secretscli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"

	"filippo.io/age"

	"github.com/refline/refline/atomicfile"
	"github.com/refline/refline/names"
	"github.com/refline/refline/secrets"
)

// Config wires a CLI. Only Dir is required: the rest defaults to the
// process's own environment, and tests replace it.
type Config struct {
	// Dir is a directory inside the clone to work in.
	Dir string
	// Identity is the file given with --identity: an age identity file or
	// an unencrypted OpenSSH private key. "" means ~/.ssh/id_ed25519 and
	// ~/.ssh/id_rsa, whichever exist.
	Identity string
	// Home is the directory holding .ssh/; default os.UserHomeDir.
	Home string
	// Refresh asks the server for its recipients even when
	// secrets.ServerRecipientsFile exists.
	Refresh bool
	// Repo is the repository's name on the server, which every file
	// written is bound to (secrets.Binding). "" means the path of the
	// origin remote's URL (RepoFromRemote).
	Repo string

	Getenv func(string) string // default os.Getenv
	Stdin  io.Reader           // default os.Stdin
	Stdout io.Writer           // values and keys; default os.Stdout
	Stderr io.Writer           // everything else; default os.Stderr

	// FetchKeys returns what `ssh HOST keys` prints, and that command line
	// for messages. Default: OriginKeys.
	FetchKeys func(ctx context.Context) (out []byte, source string, err error)
	// Editor runs the user's editor on path and returns when it exits.
	// Default: $EDITOR (vi when unset) through sh -c, as git runs it.
	Editor func(ctx context.Context, path string) error
	// Confirm asks a yes-or-no question. Default: ask on the terminal when
	// Stdin is one; otherwise the answer is no.
	Confirm func(question string) bool
	// TempDirs are the directories, best first, where edit may put the
	// plaintext while the editor runs; they should be memory-backed.
	// Default: $XDG_RUNTIME_DIR, /dev/shm. When none is usable, edit
	// falls back to os.TempDir with a warning.
	TempDirs []string
}

// CLI runs the `refline secrets` commands in a clone (SPEC §8): it decrypts
// .refline/secrets/ENV.age with the user's identity and encrypts it to the
// server's recipients plus .refline/recipients, bound (secrets.Binding) to the
// repository (Config.Repo, or origin's) and ENV.
//
// A command rewrites a secrets file only when its plaintext or its set of
// recipients changed, since age output is random and every rewrite is a
// diff; reencrypt always rewrites. Files are written atomically, and the
// plaintext reaches the disk only while edit's editor runs, in a private
// directory that is removed afterwards.
type CLI struct {
	cfg  Config
	root string // the clone's top-level directory

	ids    identitySet
	idErr  error
	idDone bool

	recips *secrets.RecipientSet
	repo   string // resolved from Config.Repo or origin; "" until needed
}

// New returns a CLI for the clone holding cfg.Dir.
func New(ctx context.Context, cfg Config) (*CLI, error) {
	if cfg.Getenv == nil {
		cfg.Getenv = os.Getenv
	}
	if cfg.Stdin == nil {
		cfg.Stdin = os.Stdin
	}
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	if cfg.Home == "" {
		cfg.Home, _ = os.UserHomeDir()
	}
	out, err := gitOutput(ctx, cfg.Dir, "rev-parse", "--show-toplevel")
	if err != nil {
		return nil, fmt.Errorf("run it inside a clone of the repository (%v)", err)
	}
	c := &CLI{cfg: cfg, root: strings.TrimSpace(out)}
	if c.cfg.FetchKeys == nil {
		c.cfg.FetchKeys = OriginKeys(c.root, cfg.Getenv, cfg.Stderr)
	}
	if c.cfg.Editor == nil {
		c.cfg.Editor = c.runEditor
	}
	return c, nil
}

// Set sets variables in env's secrets file, creating it when missing.
// args are KEY=VALUE pairs, or a single KEY whose value is read from stdin
// (for multi-line values, and to keep values out of shell history); one
// trailing newline of stdin is dropped.
func (c *CLI) Set(ctx context.Context, env string, args ...string) error {
	if !secrets.ValidEnv(env) {
		return secrets.EnvError(env)
	}
	vars, err := c.assignments(args)
	if err != nil {
		return err
	}
	f, err := c.open(env, false)
	if err != nil {
		return err
	}
	if _, err := f.vars(); err != nil {
		return err
	}
	body := f.body
	for _, v := range vars {
		if body, err = secrets.SetVar(body, v.Key, v.Value); err != nil {
			return err
		}
	}
	return c.store(ctx, f, body, false)
}

// assignments parses Set's arguments.
func (c *CLI) assignments(args []string) ([]secrets.Var, error) {
	if len(args) == 0 {
		return nil, errors.New("set needs KEY=VALUE arguments, or one KEY to read its value from stdin")
	}
	if len(args) == 1 && !strings.Contains(args[0], "=") {
		key := args[0]
		if !secrets.ValidKey(key) {
			return nil, keyError(key)
		}
		if isTerminal(c.cfg.Stdin) {
			fmt.Fprintf(c.cfg.Stderr, "Enter the value of %s, then press Ctrl-D:\n", key)
		}
		data, err := readLimited(c.cfg.Stdin, "the value on stdin")
		if err != nil {
			return nil, fmt.Errorf("read the value of %s: %w", key, err)
		}
		val := string(data)
		if v, ok := strings.CutSuffix(val, "\r\n"); ok {
			val = v
		} else {
			val = strings.TrimSuffix(val, "\n")
		}
		if strings.IndexByte(val, 0) >= 0 {
			return nil, fmt.Errorf("the value of %s contains a NUL byte, which environment variables cannot hold", key)
		}
		return []secrets.Var{{Key: key, Value: val}}, nil
	}
	// Errors name arguments by position: a malformed one may be a value.
	var vars []secrets.Var
	for i, a := range args {
		key, val, ok := strings.Cut(a, "=")
		if !ok {
			return nil, fmt.Errorf("assignment %d of %d is not KEY=VALUE (give a single KEY alone to read its value from stdin)", i+1, len(args))
		}
		if !secrets.ValidKey(key) {
			return nil, fmt.Errorf("assignment %d of %d: invalid key: keys are letters, digits and _, and do not start with a digit", i+1, len(args))
		}
		if slices.ContainsFunc(vars, func(v secrets.Var) bool { return v.Key == key }) {
			return nil, fmt.Errorf("%s is given twice", key)
		}
		vars = append(vars, secrets.Var{Key: key, Value: val})
	}
	return vars, nil
}

func keyError(key string) error {
	return fmt.Errorf("invalid key %q: keys are letters, digits and _, and do not start with a digit", key)
}

// Get prints the value of key in env's secrets file, followed by a newline.
func (c *CLI) Get(ctx context.Context, env, key string) error {
	f, vars, err := c.openVars(env)
	if err != nil {
		return err
	}
	for _, v := range vars {
		if v.Key == key {
			_, err := fmt.Fprintln(c.cfg.Stdout, v.Value)
			return err
		}
	}
	return fmt.Errorf("%s is not set in %s (refline secrets list %s shows the keys)", key, f.rel, env)
}

// List prints the keys of env's secrets file, one a line, in file order.
// It never prints values.
func (c *CLI) List(ctx context.Context, env string) error {
	_, vars, err := c.openVars(env)
	if err != nil {
		return err
	}
	for _, v := range vars {
		fmt.Fprintln(c.cfg.Stdout, v.Key)
	}
	return nil
}

// Unset removes keys from env's secrets file. A key that is not set is an
// error, and then nothing changes.
func (c *CLI) Unset(ctx context.Context, env string, keys ...string) error {
	if len(keys) == 0 {
		return errors.New("unset needs the keys to remove")
	}
	f, err := c.open(env, true)
	if err != nil {
		return err
	}
	if _, err := f.vars(); err != nil {
		return err
	}
	body, err := secrets.UnsetVars(f.body, keys)
	if err != nil {
		return fmt.Errorf("%w in %s; nothing was changed", err, f.rel)
	}
	return c.store(ctx, f, body, false)
}

// Reencrypt encrypts each env's secrets file again to the current
// recipients, whether or not they changed, bound to this repository and
// env: it is how a file written before refline bound files gets its
// binding line, and what the server asks for until it has one.
func (c *CLI) Reencrypt(ctx context.Context, envs ...string) error {
	if len(envs) == 0 {
		return errors.New("reencrypt needs an environment, or --all")
	}
	for _, env := range envs {
		f, err := c.open(env, true)
		if err != nil {
			return err
		}
		if err := c.store(ctx, f, f.body, true); err != nil {
			return err
		}
	}
	return nil
}

// ReencryptAll re-encrypts every secrets file of the clone.
func (c *CLI) ReencryptAll(ctx context.Context) error {
	if _, err := c.recipients(ctx); err != nil {
		return err
	}
	paths, err := filepath.Glob(filepath.Join(c.root, secrets.Dir, "*"+secrets.Ext))
	if err != nil {
		return err
	}
	var envs []string
	for _, p := range paths {
		env := strings.TrimSuffix(filepath.Base(p), secrets.Ext)
		if !secrets.ValidEnv(env) {
			fmt.Fprintf(c.cfg.Stderr, "warning: skipping %s%s: %v\n", secrets.Dir, filepath.Base(p), secrets.EnvError(env))
			continue
		}
		envs = append(envs, env)
	}
	if len(envs) == 0 {
		fmt.Fprintf(c.cfg.Stderr, "no secrets files in %s\n", secrets.Dir)
		return nil
	}
	return c.Reencrypt(ctx, envs...)
}

// Edit opens env's secrets file, decrypted, in the user's editor, and
// encrypts the result. The plaintext lives, while the editor runs, in a
// fresh private directory, memory-backed where possible, which is removed
// afterwards whatever happens, with any swap or backup files the editor
// left in it. A result that is not valid dotenv re-opens the editor when the
// user agrees, and otherwise changes nothing.
func (c *CLI) Edit(ctx context.Context, env string) (err error) {
	f, err := c.open(env, false)
	if err != nil {
		return err
	}
	// Resolve the recipients and the repository first: an unreachable
	// server or an unknown name must not cost the user their edit.
	if _, err := c.repoName(ctx); err != nil {
		return err
	}
	if _, err := c.recipients(ctx); err != nil {
		return err
	}
	dir, err := c.editDir()
	if err != nil {
		return err
	}
	defer func() {
		if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
			err = fmt.Errorf("remove the plaintext copy in %s: %w", dir, rerr)
		}
	}()
	path := filepath.Join(dir, env+".env")
	if err := os.WriteFile(path, f.body, 0o600); err != nil {
		return fmt.Errorf("write the plaintext copy: %w", err)
	}

	// Until the editor is done, a termination signal stops the editor
	// rather than this process, so that the plaintext is still removed.
	// An interrupt (Ctrl-C) is left to the editor, which gets it too.
	ectx, cancel := context.WithCancel(ctx)
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	var terminated atomic.Bool
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case s := <-sigs:
				if s != os.Interrupt {
					terminated.Store(true)
					cancel()
				}
			case <-done:
				return
			}
		}
	}()

	var edited []byte
	for {
		err := c.cfg.Editor(ectx, path)
		switch {
		case terminated.Load():
			return errors.New("terminated while editing; nothing was changed")
		case err != nil:
			return fmt.Errorf("the editor failed: %w; nothing was changed", err)
		}
		fh, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("read the edited file: %w; nothing was changed", err)
		}
		edited, err = readLimited(fh, "the edited file")
		fh.Close()
		if err != nil {
			return fmt.Errorf("%w; nothing was changed", err)
		}
		_, perr := secrets.ParseDotenv(edited)
		if perr == nil {
			break
		}
		if !c.confirm(fmt.Sprintf("%s: %v\nEdit again? (no discards your changes) [Y/n]", f.rel, perr)) {
			return fmt.Errorf("%s: %w; nothing was changed", f.rel, perr)
		}
	}
	if !f.exists && len(bytes.TrimSpace(edited)) == 0 {
		fmt.Fprintf(c.cfg.Stderr, "nothing to save; %s was not created\n", f.rel)
		return nil
	}
	return c.store(ctx, f, edited, false)
}

// editDir makes the private directory edit puts the plaintext in.
func (c *CLI) editDir() (string, error) {
	cands := c.cfg.TempDirs
	if cands == nil {
		cands = []string{c.cfg.Getenv("XDG_RUNTIME_DIR"), "/dev/shm"}
	}
	for _, base := range cands {
		if base == "" {
			continue
		}
		if fi, err := os.Stat(base); err != nil || !fi.IsDir() {
			continue
		}
		if dir, err := os.MkdirTemp(base, "refline-secrets-"); err == nil {
			return dir, nil
		}
	}
	fmt.Fprintf(c.cfg.Stderr, "warning: no memory-backed directory ($XDG_RUNTIME_DIR, /dev/shm) is usable: "+
		"the plaintext is written under %s while you edit, and removed afterwards\n", os.TempDir())
	dir, err := os.MkdirTemp("", "refline-secrets-")
	if err != nil {
		return "", fmt.Errorf("make a private directory for the plaintext: %w", err)
	}
	return dir, nil
}

// runEditor is the default Config.Editor.
func (c *CLI) runEditor(ctx context.Context, path string) error {
	editor := c.cfg.Getenv("EDITOR")
	if editor == "" {
		editor = "vi"
	}
	cmd := exec.CommandContext(ctx, "sh", "-c", editor+` "$@"`, editor, path)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = c.cfg.Stdin, c.cfg.Stdout, c.cfg.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", editor, err)
	}
	return nil
}

func (c *CLI) confirm(question string) bool {
	if c.cfg.Confirm != nil {
		return c.cfg.Confirm(question)
	}
	if !isTerminal(c.cfg.Stdin) {
		return false
	}
	fmt.Fprint(c.cfg.Stderr, question+" ")
	line, _ := bufio.NewReader(c.cfg.Stdin).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "", "y", "yes":
		return true
	}
	return false
}

func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// secretsFile is one environment's secrets file as found in the clone.
type secretsFile struct {
	env     string
	path    string // absolute
	rel     string // from the clone's root, for messages
	exists  bool
	armored []byte          // the file as it is
	binding secrets.Binding // the one it records; zero if none (or malformed)
	marker  string          // the recipient-set hash it records; "" if none
	body    []byte          // the plaintext after the binding and the marker
}

// open reads and decrypts env's secrets file. A missing file is an error
// when mustExist, else it reads as empty.
func (c *CLI) open(env string, mustExist bool) (*secretsFile, error) {
	if !secrets.ValidEnv(env) {
		return nil, secrets.EnvError(env)
	}
	f := &secretsFile{env: env, rel: secrets.FilePath(env), path: filepath.Join(c.root, secrets.FilePath(env))}
	fh, err := os.Open(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		if mustExist {
			return nil, fmt.Errorf("%s does not exist: create it with refline secrets set %s KEY=VALUE, or refline secrets edit %s", f.rel, env, env)
		}
		return f, nil
	}
	if err != nil {
		return nil, err
	}
	data, err := readLimited(fh, f.rel)
	fh.Close()
	if err != nil {
		return nil, err
	}
	f.exists, f.armored = true, data
	plain, err := c.decrypt(f, data)
	if err != nil {
		return nil, err
	}
	// A file without a binding is read all the same: the user may read
	// it, and writing it again binds it (the upgrade path).
	var rest []byte
	f.binding, rest, _ = secrets.SplitBinding(plain)
	f.marker, f.body = secrets.SplitMarker(rest)
	return f, nil
}

// openVars opens env's secrets file, which must exist, and parses it.
func (c *CLI) openVars(env string) (*secretsFile, []secrets.Var, error) {
	f, err := c.open(env, true)
	if err != nil {
		return nil, nil, err
	}
	vars, err := f.vars()
	return f, vars, err
}

// vars parses the file's plaintext.
func (f *secretsFile) vars() ([]secrets.Var, error) {
	vars, err := secrets.ParseDotenv(f.body)
	if err != nil {
		return nil, fmt.Errorf("%s does not hold valid dotenv: %w; fix it with refline secrets edit %s", f.rel, err, f.env)
	}
	return vars, nil
}

func (c *CLI) decrypt(f *secretsFile, data []byte) ([]byte, error) {
	ids, err := c.identities()
	if err != nil {
		return nil, fmt.Errorf("cannot decrypt %s: %w", f.rel, err)
	}
	plain, err := secrets.Decrypt(data, ids.ids...)
	switch {
	case err == nil:
		return plain, nil
	case errors.Is(err, secrets.ErrNoIdentity):
		msg := fmt.Sprintf("cannot decrypt %s with %s: %v", f.rel, strings.Join(ids.used, ", "), err)
		if len(ids.skipped) > 0 {
			msg += " (skipped " + strings.Join(ids.skipped, "; ") + ")"
		}
		return nil, fmt.Errorf("%s: ask someone who can read it to add your public key to %s and run "+
			"refline secrets reencrypt %s, or pass --identity FILE", msg, secrets.RecipientsFile, f.env)
	case errors.Is(err, secrets.ErrNotArmored):
		return nil, fmt.Errorf("%s is not an age-encrypted file", f.rel)
	}
	// age's own message may quote the damaged lines; keep them out.
	return nil, fmt.Errorf("%s is damaged: it is not a valid age file (restore it with git checkout, or ask someone to write it again)", f.rel)
}

// store encrypts body as env's new plaintext, bound to this repository
// and env, and writes the file, unless body, binding and recipient set are
// those of the file already (and !force).
func (c *CLI) store(ctx context.Context, f *secretsFile, body []byte, force bool) error {
	repo, err := c.repoName(ctx)
	if err != nil {
		return err
	}
	set, err := c.recipients(ctx)
	if err != nil {
		return err
	}
	bind := secrets.Binding{Repo: repo, Env: f.env}
	if f.exists && !force && bytes.Equal(body, f.body) && f.binding == bind && f.marker == set.Hash() && set.MatchesHeader(f.armored) {
		fmt.Fprintf(c.cfg.Stderr, "%s is unchanged\n", f.rel)
		return nil
	}
	out, err := secrets.Encrypt(secrets.JoinBinding(bind, secrets.JoinMarker(set.Hash(), body)), set.Recipients()...)
	if err != nil {
		return fmt.Errorf("encrypt %s: %w", f.rel, err)
	}
	if err := writeFileAtomic(f.path, out, 0o644); err != nil {
		return err
	}
	n := 0
	if vars, err := secrets.ParseDotenv(body); err == nil {
		n = len(vars)
	}
	switch {
	case f.exists && f.binding == secrets.Binding{}:
		fmt.Fprintf(c.cfg.Stderr, "bound %s to %s (it was not bound to a repository and environment)\n", f.rel, bind)
	case f.exists && f.binding != bind:
		fmt.Fprintf(c.cfg.Stderr, "warning: %s was bound to %s; it is now bound to %s\n", f.rel, f.binding, bind)
	}
	fmt.Fprintf(c.cfg.Stderr, "wrote %s: %d key(s), encrypted to %d recipient(s); commit it to publish the change\n", f.rel, n, len(set.Recipients()))
	// Tell the user now, not when they next try to read it.
	if ids, err := c.identities(); err == nil {
		if _, err := secrets.Decrypt(out, ids.ids...); errors.Is(err, secrets.ErrNoIdentity) {
			fmt.Fprintf(c.cfg.Stderr, "warning: %s is not a recipient of %s, so you cannot read it back: "+
				"add your public key to %s and run refline secrets reencrypt %s\n", strings.Join(ids.used, ", "), f.rel, secrets.RecipientsFile, f.env)
		}
	}
	return nil
}

// repoName resolves, once, the repository the files are bound to:
// Config.Repo, else the path of the origin remote's URL.
func (c *CLI) repoName(ctx context.Context) (string, error) {
	if c.repo != "" {
		return c.repo, nil
	}
	if c.cfg.Repo != "" {
		name := strings.TrimSuffix(strings.Trim(c.cfg.Repo, "/"), ".git")
		if err := names.Repo(name); err != nil {
			return "", fmt.Errorf("--repo: %w", err)
		}
		c.repo = name
		return name, nil
	}
	raw, err := gitOutput(ctx, c.root, "remote", "get-url", "origin")
	if err != nil {
		return "", fmt.Errorf("cannot tell which repository the secrets belong to: the clone has no origin remote (%v): "+
			"add it (git remote add origin ssh://git@HOST:2222/NAME.git), or pass --repo NAME", err)
	}
	name, err := RepoFromRemote(strings.TrimSpace(raw))
	if err != nil {
		return "", fmt.Errorf("cannot tell which repository the secrets belong to from origin: %w; "+
			"pass --repo NAME (the repository's name on the refline server)", err)
	}
	c.repo = name
	return name, nil
}

// recipients resolves, once, the set to encrypt to: the server's recipients
// from secrets.ServerRecipientsFile, fetched and cached there when it is
// missing or empty or Refresh is set, plus every recipient of
// secrets.RecipientsFile.
func (c *CLI) recipients(ctx context.Context) (*secrets.RecipientSet, error) {
	if c.recips != nil {
		return c.recips, nil
	}
	serverPath := filepath.Join(c.root, secrets.ServerRecipientsFile)
	cached, err := os.ReadFile(serverPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var old secrets.RecipientSet
	if err := old.Add(secrets.ServerRecipientsFile, cached); err != nil {
		if !c.cfg.Refresh {
			return nil, fmt.Errorf("%w (--refresh writes the file again from the server)", err)
		}
		old = secrets.RecipientSet{} // about to be replaced
	}
	server := cached
	if c.cfg.Refresh || len(old.Keys()) == 0 {
		out, source, err := c.cfg.FetchKeys(ctx)
		if err != nil {
			return nil, err
		}
		recips, err := secrets.ServerRecipients(out)
		if err != nil {
			return nil, fmt.Errorf("`%s`: %w: is origin a refline server?", source, err)
		}
		server = secrets.FormatServerRecipients(recips)
		var fresh secrets.RecipientSet
		if err := fresh.Add(secrets.ServerRecipientsFile, server); err != nil {
			return nil, err
		}
		if slices.Equal(fresh.Keys(), old.Keys()) {
			server = cached // the same keys: keep the file as it is
		} else {
			if err := writeFileAtomic(serverPath, server, 0o644); err != nil {
				return nil, err
			}
			fmt.Fprintf(c.cfg.Stderr, "wrote %s: %d server recipient(s) from `%s`\n", secrets.ServerRecipientsFile, len(recips), source)
		}
	}

	set := &secrets.RecipientSet{}
	if err := set.Add(secrets.ServerRecipientsFile, server); err != nil {
		return nil, err
	}
	people, err := os.ReadFile(filepath.Join(c.root, secrets.RecipientsFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	nserver := len(set.Keys())
	if err := set.Add(secrets.RecipientsFile, people); err != nil {
		return nil, err
	}
	if len(set.Keys()) == nserver {
		fmt.Fprintf(c.cfg.Stderr, "warning: %s lists nobody, so only the server can decrypt the secrets: "+
			"add the public keys (age1…, ssh-ed25519, ssh-rsa) of the people who may read them, one a line\n", secrets.RecipientsFile)
	}
	c.recips = set
	return set, nil
}

// identitySet is what decrypts: the identities and the files they came
// from, and the default keys that could not be used, with why.
type identitySet struct {
	ids     []age.Identity
	used    []string
	skipped []string
}

// identities loads, once, the user's identities.
func (c *CLI) identities() (identitySet, error) {
	if !c.idDone {
		c.ids, c.idErr = resolveIdentities(c.cfg.Identity, c.cfg.Home)
		c.idDone = true
	}
	return c.ids, c.idErr
}

// defaultKeys are the SSH keys tried, in order, without --identity.
var defaultKeys = []string{"id_ed25519", "id_rsa"}

// resolveIdentities loads the file given with --identity, else every one of
// the default SSH keys in home/.ssh that exists and can be used.
func resolveIdentities(file, home string) (identitySet, error) {
	var s identitySet
	if file != "" {
		ids, err := secrets.LoadIdentityFile(file)
		if err != nil {
			return s, err
		}
		s.ids, s.used = ids, []string{file}
		return s, nil
	}
	var problems []string
	for _, name := range defaultKeys {
		path := filepath.Join(home, ".ssh", name)
		if _, err := os.Stat(path); err != nil {
			continue
		}
		ids, err := secrets.LoadIdentityFile(path)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		s.ids = append(s.ids, ids...)
		s.used = append(s.used, path)
	}
	if len(s.ids) > 0 {
		s.skipped = problems
		return s, nil
	}
	hint := "pass --identity FILE (an age identity file from age-keygen, or an OpenSSH private key without a passphrase)"
	if len(problems) > 0 {
		return s, fmt.Errorf("%s; %s", strings.Join(problems, "; "), hint)
	}
	return s, fmt.Errorf("no identity to decrypt with: neither %s nor %s exists; %s",
		filepath.Join(home, ".ssh", defaultKeys[0]), filepath.Join(home, ".ssh", defaultKeys[1]), hint)
}

// readLimited reads at most secrets.MaxFileSize bytes of r, failing beyond.
func readLimited(r io.Reader, what string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, secrets.MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > secrets.MaxFileSize {
		return nil, fmt.Errorf("%s is too large (over %d bytes)", what, secrets.MaxFileSize)
	}
	return data, nil
}

// writeFileAtomic replaces path with data (atomicfile.Write), creating its
// directory first, so that a reader (or a crash) never sees half a file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	_, err := atomicfile.Write(path, data, perm)
	return err
}
