package gitserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/refline/refline/access"
	"github.com/refline/refline/dashboard/auth"
)

// Logins is what `login` uses: a one-time ticket for the key's user, and
// the dashboard's address to put it in.
type Logins interface {
	NewTicket(user string) (string, error)
	TicketTTL() time.Duration
}

// Tokens is what `token create|list|delete` use: each user's own API
// tokens for the dashboard.
type Tokens interface {
	CreateToken(user, name string) (string, error)
	Tokens(user string) []auth.Token
	DeleteToken(user, name string) error
}

// webCommands are `login` and `token`, present when the dashboard is
// (Config.Logins and Config.Tokens). Any authenticated user may run them:
// what a session or a token then shows is decided per request by the same
// access rules as here.
func (s *Server) webCommands() map[string]Command {
	name := Arg{Name: "NAME", Kind: ArgToken}
	return map[string]Command{
		"login": {Usage: "login", Help: "a one-time URL (valid 60 s) that logs a browser in to the dashboard as you",
			Run: s.cmdLogin},
		"token": {Usage: "token create NAME | list | delete NAME", Help: "your API tokens for the dashboard (Authorization: Bearer …)",
			Sub: map[string]Command{
				"create": {Args: []Arg{name}, Run: s.cmdTokenCreate},
				"list":   {Run: s.cmdTokenList},
				"delete": {Args: []Arg{name}, Run: s.cmdTokenDelete},
			}},
	}
}

func (s *Server) cmdLogin(c *Call) error {
	t, err := s.cfg.Logins.NewTicket(c.User.Name)
	if err != nil {
		return err
	}
	u := strings.TrimSuffix(s.cfg.WebURL, "/") + "/login?t=" + t
	c.Log.Info("login URL issued")
	return c.Print(map[string]any{"url": u, "expires_in": int(s.cfg.Logins.TicketTTL() / time.Second)}, [][]string{{u}})
}

func (s *Server) cmdTokenCreate(c *Call) error {
	name := c.Args[0]
	secret, err := s.cfg.Tokens.CreateToken(c.User.Name, name)
	if err != nil {
		return err
	}
	c.Log.WithField("token", name).Info("token created")
	return c.Print(map[string]string{"name": name, "token": secret}, [][]string{{secret}})
}

func (s *Server) cmdTokenList(c *Call) error {
	toks := s.cfg.Tokens.Tokens(c.User.Name)
	type row struct {
		Name    string    `json:"name"`
		Created time.Time `json:"created"`
	}
	out := []row{}
	var rows [][]string
	for _, t := range toks {
		out = append(out, row{t.Name, t.Created})
		rows = append(rows, []string{t.Name, t.Created.UTC().Format(time.RFC3339)})
	}
	return c.Print(out, rows)
}

func (s *Server) cmdTokenDelete(c *Call) error {
	name := c.Args[0]
	if err := s.cfg.Tokens.DeleteToken(c.User.Name, name); err != nil {
		return err
	}
	c.Log.WithField("token", name).Info("token deleted")
	return c.Print(map[string]string{"deleted": name}, [][]string{{name}})
}

// ErrNotFound is what Exec returns for a repository the caller may not
// read or that does not exist: the dashboard answers 404 either way.
var ErrNotFound = errors.New("not found")

// Exec runs one command for user as the SSH endpoint would — the same
// gate, the same Need and Check, the same handler — with JSON output to
// out. The dashboard's actions (cancel, retry, deploy, rollback) go
// through here, so a browser has exactly the rights its user has over SSH.
// A caller without read access to the repository gets ErrNotFound, one
// without the right it needs an error wrapping ErrDenied, wrong arguments
// a *UsageError.
func (s *Server) Exec(ctx context.Context, user access.User, args []string, out io.Writer, log *logrus.Entry) error {
	if len(args) == 0 {
		return Usagef("no command")
	}
	cmd, ok := s.commands[args[0]]
	if !ok {
		return Usagef("unknown command %q", args[0])
	}
	var stderr bytes.Buffer
	c := &Call{Ctx: ctx, Name: args[0], User: user, Args: append([]string(nil), args[1:]...), JSON: true,
		In: strings.NewReader(""), Out: out, Err: &stderr, Log: log.WithFields(logrus.Fields{"command": args[0], "user": user.Name, "via": "dashboard"})}
	run, err := s.gate(cmd, c)
	if err != nil {
		if c.Repo != "" && !s.cfg.Access.Level(c.Repo, user).Can(access.Read) || c.Repo != "" && !s.cfg.Repos.Exists(c.Repo) {
			return fmt.Errorf("repository %q: %w", c.Repo, ErrNotFound)
		}
		return err
	}
	if c.Repo != "" {
		c.Log = c.Log.WithField("repo", c.Repo)
	}
	if err := run.Run(c); err != nil {
		c.Log.WithError(err).Info("command failed")
		return err
	}
	return nil
}
