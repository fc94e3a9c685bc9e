package hooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/refline/refline/gitcmd"
	"github.com/refline/refline/pipelines/spec"
	"github.com/refline/refline/secrets"
)

// SecretsChecker rejects a push that brings a secrets file the server could
// not use at deploy time (SPEC §8). For every pushed branch, each
// .refline/secrets/ENV.age that changed (every one, for a new branch) must
// be an ASCII-armored age file that one of the server's identities
// decrypts, bound to this repository and ENV (secrets.Binding), whose
// plaintext is valid dotenv, for an environment that a pipeline at the
// same commit defines. Problems read "file: reason"; no
// message ever holds a secret value, nor a line of a file that may hold
// one. Like PipelineChecker it reads the pushed objects from git's
// quarantine, so nothing of a rejected push is stored.
type SecretsChecker struct {
	// Identities are the server's active age identities.
	Identities func() []age.Identity
	// Recipients are their recipients (age1…), oldest first; the newest
	// is the one a rejection asks to add.
	Recipients func() []string
	// KeysHint is the command that prints the recipients, like
	// "ssh -p 2222 git@HOST keys"; nil means "ssh HOST keys".
	KeysHint func() string
}

// Check implements Checker.
func (c SecretsChecker) Check(ctx context.Context, ev *Event, out io.Writer) error {
	if ev.Hook != "pre-receive" {
		return nil
	}
	g := secretsGit{gitDir: ev.GitDir, env: ev.Quarantine}
	var problems []string
	seen := map[string]bool{}
	warned := map[string]bool{}
	var commits []string
	for _, u := range ev.Updates {
		if !u.Deletes() && strings.HasPrefix(u.Ref, "refs/heads/") {
			commits = append(commits, u.Old, u.New)
		}
	}
	// What is checked lies under .refline/ (secrets, server recipients,
	// pipeline environments): a branch whose .refline/ is absent or did
	// not change has nothing to check, and branches with the same old and
	// new .refline/ the same outcome.
	dirs, err := pathObjects(ctx, ev.GitDir, ev.Quarantine, commits, reflineDir)
	if err != nil {
		return fmt.Errorf("read the pushed secrets files: %w", err)
	}
	checked := map[[2]string]bool{}
	for _, u := range ev.Updates {
		if u.Deletes() || strings.Trim(u.New, "0") == "" || !strings.HasPrefix(u.Ref, "refs/heads/") {
			continue
		}
		if dirs != nil {
			isNew := strings.Trim(u.Old, "0") == ""
			key := [2]string{dirs[u.Old], dirs[u.New]}
			if isNew {
				key[0] = "new"
			}
			if key[1] == "" || key[0] == key[1] || checked[key] {
				continue
			}
			checked[key] = true
		}
		probs, warns, err := c.checkCommit(ctx, g, ev.Repo, u.Old, u.New)
		if err != nil {
			return fmt.Errorf("check the secrets files of %s: %w", u.Ref, err)
		}
		for _, p := range probs {
			if !seen[p] {
				seen[p] = true
				problems = append(problems, p)
			}
		}
		for _, w := range warns {
			if !warned[w] {
				warned[w] = true
				fmt.Fprintf(out, "refline: warning: %s\n", w)
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s\nfix the secrets files and push again; nothing of this push was stored", strings.Join(problems, "\n"))
	}
	return nil
}

// reflineDir holds everything the secrets check reads.
const reflineDir = ".refline/"

// checkCommit checks the secrets files that differ between old and new.
func (c SecretsChecker) checkCommit(ctx context.Context, g secretsGit, repo, oldID, newID string) (problems, warnings []string, err error) {
	isNew := strings.Trim(oldID, "0") == ""
	var changed map[string]bool
	if !isNew {
		paths, err := g.changed(ctx, oldID, newID, secrets.Dir, secrets.ServerRecipientsFile)
		if err != nil {
			return nil, nil, err
		}
		if len(paths) == 0 {
			return nil, nil, nil // the common push: no credentials touched
		}
		changed = map[string]bool{}
		for _, p := range paths {
			changed[p] = true
		}
	}
	entries, err := g.tree(ctx, newID, secrets.Dir)
	if err != nil {
		return nil, nil, err
	}
	var check []treeEntry
	for _, e := range entries {
		if _, ok := secrets.EnvOf(e.path); ok && (isNew || changed[e.path]) {
			check = append(check, e)
		}
	}
	if len(check) > 0 || isNew || changed[secrets.ServerRecipientsFile] {
		warnings = c.staleServerRecipients(ctx, g, newID)
	}
	if len(check) == 0 {
		return nil, warnings, nil
	}

	envs, known, err := c.environments(ctx, g, newID)
	if err != nil {
		return nil, nil, err
	}
	var blobs []treeEntry
	for _, e := range check {
		env, _ := secrets.EnvOf(e.path)
		switch {
		case !secrets.ValidEnv(env):
			problems = append(problems, fmt.Sprintf("%s: %q is not an environment name: name the file ENV.age, "+
				"ENV being lower-case letters, digits and - as under environments: in a pipeline file", e.path, env))
		case e.mode == "120000":
			problems = append(problems, e.path+": must be a regular file, not a symbolic link")
		case e.typ != "blob":
			problems = append(problems, fmt.Sprintf("%s: must be a regular file, not a %s", e.path, e.typ))
		case e.size > secrets.MaxFileSize:
			problems = append(problems, fmt.Sprintf("%s: too large for a secrets file (%d bytes, at most %d)", e.path, e.size, secrets.MaxFileSize))
		default:
			blobs = append(blobs, e)
		}
	}
	contents, err := g.blobs(ctx, blobs)
	if err != nil {
		return nil, nil, err
	}
	for i, e := range blobs {
		env, _ := secrets.EnvOf(e.path)
		if reason := c.checkFile(repo, env, contents[i]); reason != "" {
			problems = append(problems, e.path+": "+reason)
			continue
		}
		if known && !slices.Contains(envs, env) {
			problems = append(problems, fmt.Sprintf("%s: no pipeline defines the environment %q, so these secrets would never be used: "+
				"add it under environments: in a %s*.yml file, or rename the file", e.path, env, spec.Dir))
		}
	}
	return problems, warnings, nil
}

// checkFile says what is wrong with the content of env's secrets file in
// repo, or "" when the server can use it. It never quotes the content.
func (c SecretsChecker) checkFile(repo, env string, data []byte) string {
	reencrypt := "refline secrets reencrypt --refresh " + env
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	switch {
	case bytes.HasPrefix(trimmed, []byte(armor.Header)):
	case bytes.HasPrefix(data, []byte("age-encryption.org/")):
		return "is a binary age file; secrets files must be ASCII-armored (as age -a writes them) so that " +
			"git can diff and merge them: re-encrypt it with " + reencrypt
	default:
		return "is not an age-encrypted file; if it holds plaintext secrets, remove them from the branch's history " +
			"before pushing again (they are compromised once pushed), and write them with refline secrets edit " + env
	}
	var ids []age.Identity
	if c.Identities != nil {
		ids = c.Identities()
	}
	plain, err := secrets.Decrypt(data, ids...)
	switch {
	case err == nil:
	case errors.Is(err, secrets.ErrNoIdentity):
		return fmt.Sprintf("the server cannot decrypt it: add %s (from %s) to the file's recipients and re-encrypt: %s",
			c.newestRecipient(), c.keysHint(), reencrypt)
	default:
		// age's messages may quote the damaged lines: say only where.
		var aerr *armor.Error
		if errors.As(err, &aerr) {
			return "its ASCII armor is damaged (a changed, missing or extra line?): restore it, or write it again with refline secrets edit " + env
		}
		return "it is not a valid age file (its header or payload is damaged): restore it, or write it again with refline secrets edit " + env
	}
	want := secrets.Binding{Repo: repo, Env: env}
	if err := want.Check(plain); err != nil {
		// Check's messages name bindings (validated names), never values.
		var mismatch *secrets.MismatchError
		if errors.As(err, &mismatch) {
			return fmt.Sprintf("%v: a secrets file is decrypted only for the repository and environment it was written for "+
				"(was it copied?): remove it and write %s's own secrets with refline secrets set %s KEY=VALUE "+
				"(or, if you can read it and mean to use it here, bind it with refline secrets reencrypt %s)", err, want, env, env)
		}
		return fmt.Sprintf("%v: the server uses a secrets file only when its first line names the repository and environment "+
			"it belongs to (%s): add that line with refline secrets reencrypt %s (or --all) in a clone, commit and push", err, want.Line(), env)
	}
	if _, err := secrets.ParseDotenv(plain); err != nil {
		// ParseDotenv's messages name keys and lines, never values.
		return fmt.Sprintf("its plaintext is not valid dotenv: %v: fix it with refline secrets edit %s", err, env)
	}
	return ""
}

func (c SecretsChecker) newestRecipient() string {
	if c.Recipients != nil {
		if rs := c.Recipients(); len(rs) > 0 {
			return rs[len(rs)-1]
		}
	}
	return "the server's age recipient"
}

func (c SecretsChecker) keysHint() string {
	if c.KeysHint != nil {
		return c.KeysHint()
	}
	return "ssh HOST keys"
}

// environments lists the environments the pipelines at commit define.
// known is false when a pipeline file is invalid (PipelineChecker reports
// it), so that its environments cannot be told.
func (c SecretsChecker) environments(ctx context.Context, g secretsGit, commit string) (envs []string, known bool, err error) {
	entries, err := g.tree(ctx, commit, spec.Dir)
	if err != nil {
		return nil, false, err
	}
	var files []treeEntry
	for _, e := range entries {
		// As the pipeline runner reads them: regular files directly in
		// the directory, named *.yml or *.yaml.
		if e.typ == "blob" && (strings.HasSuffix(e.path, ".yml") || strings.HasSuffix(e.path, ".yaml")) {
			if e.size > spec.MaxFileSize {
				return nil, false, nil
			}
			files = append(files, e)
		}
	}
	contents, err := g.blobs(ctx, files)
	if err != nil {
		return nil, false, err
	}
	byPath := make(map[string][]byte, len(files))
	for i, e := range files {
		byPath[e.path] = contents[i]
	}
	specs, err := spec.ParseAll(byPath)
	if err != nil {
		return nil, false, nil
	}
	for _, s := range specs {
		for _, e := range s.Environments {
			envs = append(envs, e.Name)
		}
	}
	return envs, true, nil
}

// staleServerRecipients warns when the pushed ServerRecipientsFile lists an
// age recipient the server no longer holds (a retired key): whoever
// encrypts with that cache keeps encrypting to it.
func (c SecretsChecker) staleServerRecipients(ctx context.Context, g secretsGit, commit string) []string {
	if c.Recipients == nil {
		return nil
	}
	entries, err := g.tree(ctx, commit, secrets.ServerRecipientsFile)
	if err != nil || len(entries) != 1 || entries[0].typ != "blob" || entries[0].size > secrets.MaxFileSize {
		return nil
	}
	contents, err := g.blobs(ctx, entries)
	if err != nil {
		return nil
	}
	active := c.Recipients()
	var warns []string
	for _, line := range strings.Split(string(contents[0]), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "age1") && !slices.Contains(active, line) {
			warns = append(warns, fmt.Sprintf("%s lists %s, which is not a key of this server (a retired key, or another server's): "+
				"run refline secrets reencrypt --refresh --all and push the result", secrets.ServerRecipientsFile, line))
		}
	}
	return warns
}

// secretsGit reads a repository's objects with the git binary, under the
// quarantine environment of a push that pre-receive has not accepted yet.
type secretsGit struct {
	gitDir string
	env    []string
}

// treeEntry is one line of `git ls-tree --long`.
type treeEntry struct {
	mode, typ, id, path string
	size                int64 // -1 for entries that are not blobs
}

func (g secretsGit) output(ctx context.Context, args ...string) ([]byte, error) {
	return gitcmd.Repo{GitDir: g.gitDir, Env: g.env}.Output(ctx, args...)
}

// tree lists the entries at path in commit: the directory's entries when
// path ends in "/", else the entry itself.
func (g secretsGit) tree(ctx context.Context, commit, path string) ([]treeEntry, error) {
	out, err := g.output(ctx, "ls-tree", "-z", "--long", "--full-tree", commit, "--", path)
	if err != nil {
		return nil, err
	}
	var ents []treeEntry
	for _, rec := range bytes.Split(out, []byte{0}) {
		// "<mode> SP <type> SP <object> SP+ <size> TAB <file>"
		meta, p, ok := bytes.Cut(rec, []byte{'\t'})
		f := strings.Fields(string(meta))
		if !ok || len(f) != 4 {
			continue
		}
		size, err := strconv.ParseInt(f[3], 10, 64)
		if err != nil {
			size = -1
		}
		ents = append(ents, treeEntry{mode: f[0], typ: f[1], id: f[2], path: string(p), size: size})
	}
	return ents, nil
}

// changed lists the paths under the given pathspecs that differ between
// two commits.
func (g secretsGit) changed(ctx context.Context, from, to string, pathspecs ...string) ([]string, error) {
	args := append([]string{"diff-tree", "-r", "-z", "--no-renames", "--name-only", "--no-commit-id", from, to, "--"}, pathspecs...)
	return gitcmd.Repo{GitDir: g.gitDir, Env: g.env}.Paths(ctx, args...)
}

// blobs reads the entries' contents with one `git cat-file --batch`. The
// entries' sizes have been checked by the caller.
func (g secretsGit) blobs(ctx context.Context, ents []treeEntry) (_ [][]byte, err error) {
	if len(ents) == 0 {
		return nil, nil
	}
	objs, err := gitcmd.Repo{GitDir: g.gitDir, Env: g.env}.Objects(ctx)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := objs.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	out := make([][]byte, len(ents))
	for i, e := range ents {
		obj, ok, err := objs.Read(e.id, e.size)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", e.path, err)
		}
		if !ok || obj.Type != "blob" {
			return nil, fmt.Errorf("read %s: %s is not a blob", e.path, e.id)
		}
		if obj.Size != e.size {
			return nil, fmt.Errorf("read %s: unexpected size %d of %s", e.path, obj.Size, e.id)
		}
		out[i] = obj.Data
	}
	return out, nil
}
