package gitserver

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/gliderlabs/ssh"
	"github.com/sirupsen/logrus"
	gossh "golang.org/x/crypto/ssh"

	"github.com/refline/refline/access"
)

// Call is one SSH command invocation. The gate fills the fields after Args
// from the arguments it checked: a handler reads c.Repo, never c.Args[0].
type Call struct {
	Ctx  context.Context
	Name string // the command's name
	Sub  string // the subcommand ("create" of `repo create`), if any
	User access.User
	// Args are the arguments after the command (and subcommand), without
	// --json and flags, each checked against its declared kind.
	Args  []string
	Flags map[string]bool // the flags given, by canonical name ("follow")
	JSON  bool
	In    io.Reader
	Out   io.Writer
	Err   io.Writer
	Log   *logrus.Entry

	Repo     string // the ArgRepo argument, cleaned (names.CleanRepo)
	Pipeline string // the ArgPipeline argument (names.Pipeline)
	Env      string // the ArgEnv argument (names.Env)
	Number   int    // the ArgRun argument, 1 or more
	Rev      string // the ArgRev argument, "" when not given
	All      bool   // the command's server-wide form (--all) was given
}

// Command is one SSH command: what it takes, what it needs, what it does.
// The gate (see gate.go) checks Args and Need before Run is called.
type Command struct {
	Usage string // e.g. "repo create|delete|list|info NAME"
	Help  string
	Args  []Arg
	Flags map[string]string // flag as typed -> canonical name: "-f" -> "follow"
	Need  Need
	// Sub holds the subcommands of a command like `repo create|delete`:
	// the first argument picks one, whose Args, Need and Run then apply
	// (after the parent's Need.Admin).
	Sub map[string]Command
	// All is the server-wide form of a command that takes a REPO first:
	// when the first argument is --all, All's Args, Need and Run apply
	// instead, with Call.Repo "" (`webhook add --all URL`).
	All *Command
	Run func(c *Call) error
}

// UsageError marks wrong arguments; the command's usage line is printed.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// Usagef builds a UsageError.
func Usagef(format string, a ...any) error { return &UsageError{Msg: fmt.Sprintf(format, a...)} }

// ErrDenied is returned when the caller lacks the rights for a command. Its
// text does not say whether the repository exists.
var ErrDenied = errors.New("permission denied")

func (s *Server) runCommand(sess ssh.Session, log *logrus.Entry, user access.User, args []string) int {
	result := "error"
	defer func() { s.metrics.sessions.WithLabelValues("command", result).Inc() }()
	if len(args) == 0 || args[0] == "help" || args[0] == "--help" {
		fmt.Fprintf(sess, "Hi %s! This is refline. Commands:\n", user.Name)
		s.printUsage(sess)
		result = "ok"
		return 0
	}
	cmd, ok := s.commands[args[0]]
	if !ok {
		fmt.Fprintf(sess.Stderr(), "refline: unknown command %q; run `ssh HOST help` for the list\n", args[0])
		result = "usage"
		return 2
	}
	c := &Call{Ctx: sess.Context(), Name: args[0], User: user, In: sess, Out: sess, Err: sess.Stderr(),
		Log: log.WithField("command", args[0])}
	for _, a := range args[1:] {
		if a == "--json" {
			c.JSON = true
			continue
		}
		c.Args = append(c.Args, a)
	}
	run, err := s.gate(cmd, c)
	if err == nil {
		if c.Repo != "" {
			c.Log = c.Log.WithField("repo", c.Repo)
		}
		err = run.Run(c)
	}
	var ue *UsageError
	switch {
	case err == nil:
		result = "ok"
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(sess.Stderr(), "refline: %s; usage: %s\n", ue.Msg, cmd.Usage)
		result = "usage"
		return 2
	default:
		fmt.Fprintf(sess.Stderr(), "refline: %v\n", err)
		c.Log.WithError(err).Info("command failed")
		return 1
	}
}

func (s *Server) printUsage(w io.Writer) {
	names := make([]string, 0, len(s.commands))
	for n := range s.commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-44s %s\n", s.commands[n].Usage, s.commands[n].Help)
	}
	fmt.Fprintln(w, "Add --json to any command for JSON output.")
}

// Print writes rows as tab-separated lines, or v as JSON with --json.
func (c *Call) Print(v any, rows [][]string) error {
	if c.JSON {
		enc := json.NewEncoder(c.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	bw := bufio.NewWriter(c.Out)
	for _, r := range rows {
		bw.WriteString(strings.Join(r, "\t"))
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

func (s *Server) builtinCommands() map[string]Command {
	name := []Arg{{Name: "NAME", Kind: ArgRepo}}
	user := Arg{Name: "NAME", Kind: ArgUser}
	return map[string]Command{
		"repo": {Usage: "repo create|delete|list|info [NAME]", Help: "manage repositories", Sub: map[string]Command{
			"create": {Args: name, Need: Need{Create: true, Denied: "creating repositories needs an admin's permission"}, Run: s.cmdRepoCreate},
			"delete": {Args: name, Need: Need{Repo: access.Admin}, Run: s.cmdRepoDelete},
			"list":   {Run: s.cmdRepoList},
			"info":   {Args: name, Need: Need{Repo: access.Read}, Run: s.cmdRepoInfo},
		}},
		"user": {Usage: "user add NAME KEY... | list | remove NAME | grant|revoke NAME admin|create", Help: "manage users (admins)",
			Need: Need{Admin: true, Denied: "managing users is for admins"}, Sub: map[string]Command{
				"add":    {Args: []Arg{user, {Name: "KEY", Kind: ArgKey, Many: true}}, Run: s.cmdUserAdd},
				"list":   {Run: s.cmdUserList},
				"remove": {Args: []Arg{user}, Run: s.cmdUserRemove},
				"grant":  {Args: []Arg{user, {Name: "admin|create", Kind: ArgRight}}, Run: s.cmdUserRight},
				"revoke": {Args: []Arg{user, {Name: "admin|create", Kind: ArgRight}}, Run: s.cmdUserRight},
			}},
		"access": {Usage: "access NAME USER LEVEL", Help: "set USER's level on repository NAME (none, read, write, deploy, deploy:ENV,ENV…, admin)",
			Args: []Arg{{Name: "NAME", Kind: ArgRepo}, {Name: "USER", Kind: ArgUser}, {Name: "LEVEL", Kind: ArgLevel}},
			Need: Need{Repo: access.Admin}, Run: s.cmdAccess},
		"keys":   {Usage: "keys", Help: "the server's age recipients and its allowed_signers line", Run: s.cmdKeys},
		"whoami": {Usage: "whoami", Help: "the user your key authenticates as", Run: s.cmdWhoami},
	}
}

// RequireRepo checks that the caller has at least need on the repository,
// answering "not found" when they have nothing at all so that a repository's
// existence is not revealed to those who cannot read it.
func (s *Server) RequireRepo(c *Call, name string, need access.Level) error {
	level := s.cfg.Access.Level(name, c.User)
	if !s.cfg.Repos.Exists(name) || !level.Can(access.Read) {
		return fmt.Errorf("repository %q not found, or you have no access to it", name)
	}
	if !level.Can(need) {
		return fmt.Errorf("%w: this needs %s access to %s (you have %s)", ErrDenied, need, name, level)
	}
	return nil
}

type repoInfo struct {
	Name         string            `json:"name"`
	Level        string            `json:"level"`
	DeployBranch string            `json:"deploy_branch,omitempty"`
	Grants       map[string]string `json:"grants,omitempty"`
}

func (s *Server) cmdRepoCreate(c *Call) error {
	name := c.Repo
	if err := s.createRepo(c.Ctx, name, c.User); err != nil {
		return err
	}
	c.Log.Info("repository created")
	return c.Print(repoInfo{Name: name, Level: access.Admin.String()}, [][]string{{name}})
}

// RepoRemover forgets a deleted repository's runs.
type RepoRemover interface {
	RemoveRepo(repo string) error
}

func (s *Server) cmdRepoDelete(c *Call) error {
	name := c.Repo
	if err := s.cfg.Repos.Delete(name); err != nil {
		return err
	}
	if err := s.cfg.Access.RemoveRepo(name); err != nil {
		return err
	}
	if s.cfg.RepoRemover != nil {
		if err := s.cfg.RepoRemover.RemoveRepo(name); err != nil {
			return err
		}
	}
	c.Log.Info("repository deleted")
	return c.Print(map[string]string{"deleted": name}, [][]string{{name}})
}

func (s *Server) cmdRepoList(c *Call) error {
	names, err := s.cfg.Repos.List()
	if err != nil {
		return err
	}
	infos := []repoInfo{}
	var rows [][]string
	for _, n := range names {
		l := s.cfg.Access.Level(n, c.User)
		if !l.Can(access.Read) {
			continue
		}
		infos = append(infos, repoInfo{Name: n, Level: l.String()})
		rows = append(rows, []string{n, l.String()})
	}
	return c.Print(infos, rows)
}

func (s *Server) cmdRepoInfo(c *Call) error {
	name := c.Repo
	l := s.cfg.Access.Level(name, c.User)
	info := repoInfo{Name: name, Level: s.cfg.Access.GrantOf(name, c.User).String(), DeployBranch: s.cfg.Repos.DeployBranch(c.Ctx, name)}
	rows := [][]string{{"name", name}, {"level", info.Level}, {"deploy_branch", info.DeployBranch}}
	if l.Can(access.Admin) {
		info.Grants = map[string]string{}
		grants := s.cfg.Access.Grants(name)
		users := make([]string, 0, len(grants))
		for u := range grants {
			users = append(users, u)
		}
		sort.Strings(users)
		for _, u := range users {
			info.Grants[u] = grants[u].String()
			rows = append(rows, []string{"grant", u, grants[u].String()})
		}
	}
	return c.Print(info, rows)
}

type userInfo struct {
	Name      string   `json:"name"`
	Admin     bool     `json:"admin"`
	CanCreate bool     `json:"can_create"`
	Keys      []string `json:"keys"`
}

func (s *Server) cmdUserAdd(c *Call) error {
	name := c.Args[0]
	keyArgs := c.Args[1:]
	if len(keyArgs) == 0 {
		// `ssh HOST user add bob < bob.pub`
		b, err := io.ReadAll(io.LimitReader(c.In, 64<<10))
		if err != nil {
			return err
		}
		for _, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				keyArgs = append(keyArgs, l)
			}
		}
	}
	keys, err := parseKeyArgs(keyArgs)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return Usagef("user add needs at least one KEY (an OpenSSH public key line)")
	}
	if err := s.cfg.Access.AddUser(name, keys, false); err != nil {
		return err
	}
	c.Log.WithField("new_user", name).Info("user added")
	return c.Print(map[string]any{"added": name, "keys": len(keys)}, [][]string{{name, fmt.Sprint(len(keys))}})
}

func (s *Server) cmdUserList(c *Call) error {
	users := s.cfg.Access.Users()
	infos := make([]userInfo, 0, len(users))
	var rows [][]string
	for _, u := range users {
		role := "user"
		if u.Admin {
			role = "admin"
		}
		infos = append(infos, userInfo{Name: u.Name, Admin: u.Admin, CanCreate: u.CanCreate || u.Admin, Keys: u.Keys})
		for _, k := range u.Keys {
			fp := k
			if pk, err := access.ParseAuthorizedKey(k); err == nil {
				fp = gossh.FingerprintSHA256(pk)
			}
			rows = append(rows, []string{u.Name, role, fp})
		}
	}
	return c.Print(infos, rows)
}

func (s *Server) cmdUserRemove(c *Call) error {
	if err := s.cfg.Access.RemoveUser(c.Args[0]); err != nil {
		return err
	}
	c.Log.WithField("removed_user", c.Args[0]).Info("user removed")
	return c.Print(map[string]string{"removed": c.Args[0]}, [][]string{{c.Args[0]}})
}

// cmdUserRight serves user grant and user revoke.
func (s *Server) cmdUserRight(c *Call) error {
	name, right := c.Args[0], c.Args[1]
	on := c.Sub == "grant"
	var err error
	if right == "admin" {
		err = s.cfg.Access.SetAdmin(name, on)
	} else {
		err = s.cfg.Access.SetCanCreate(name, on)
	}
	if err != nil {
		return err
	}
	c.Log.WithFields(logrus.Fields{"target_user": name, "right": right, "on": on}).Info("user right changed")
	return c.Print(map[string]any{"user": name, right: on}, [][]string{{name, right, fmt.Sprint(on)}})
}

func (s *Server) cmdWhoami(c *Call) error {
	return c.Print(map[string]any{"user": c.User.Name, "admin": c.User.Admin}, [][]string{{c.User.Name}})
}

// parseKeyArgs accepts keys as whole quoted lines ("ssh-ed25519 AAAA… c")
// or split into words by the shell (ssh-ed25519 AAAA… c).
func parseKeyArgs(args []string) ([]gossh.PublicKey, error) {
	var lines []string
	for _, a := range args {
		if strings.Contains(a, " ") || len(lines) == 0 || isKeyType(a) {
			lines = append(lines, a)
			continue
		}
		lines[len(lines)-1] += " " + a
	}
	var keys []gossh.PublicKey
	for _, l := range lines {
		k, err := access.ParseAuthorizedKey(l)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func isKeyType(s string) bool {
	return strings.HasPrefix(s, "ssh-") || strings.HasPrefix(s, "ecdsa-") || strings.HasPrefix(s, "sk-")
}

func (s *Server) cmdAccess(c *Call) error {
	name, grantee := c.Repo, c.Args[1]
	level, err := access.ParseGrant(c.Args[2])
	if err != nil {
		return Usagef("%v", err)
	}
	if err := s.cfg.Access.SetGrant(name, grantee, level); err != nil {
		return err
	}
	c.Log.WithFields(logrus.Fields{"grantee": grantee, "level": level}).Info("access set")
	return c.Print(map[string]string{"repo": name, "user": grantee, "level": level.String()},
		[][]string{{name, grantee, level.String()}})
}

func (s *Server) cmdKeys(c *Call) error {
	recips := s.cfg.Keys.AgeRecipients()
	signers := s.cfg.Keys.AllowedSignersLine()
	var rows [][]string
	for _, r := range recips {
		rows = append(rows, []string{r})
	}
	rows = append(rows, []string{signers})
	return c.Print(map[string]any{"age_recipients": recips, "allowed_signers": signers}, rows)
}
