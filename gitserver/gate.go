package gitserver

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/refline/refline/access"
	"github.com/refline/refline/dashboard/auth"
	"github.com/refline/refline/names"
)

// The gate: every SSH command declares what its arguments name and the access
// it needs, and runCommand checks both before the command's handler runs. A
// handler therefore never sees a repository, pipeline or environment name
// that could make a path or a ref outside the repository the caller was
// checked against ("logs mine ../theirs/web 1"), and a command cannot forget
// a check: there is one place that makes them, as in soft-serve.

// ArgKind is what a command argument names.
type ArgKind int

// The kinds of arguments. Adding one means adding its case to checkArg.
const (
	ArgRepo     ArgKind = iota + 1 // a repository, as names.CleanRepo takes it ("/team/app.git" is team/app); sets Call.Repo
	ArgPipeline                    // names.Pipeline; sets Call.Pipeline
	ArgEnv                         // names.Env; sets Call.Env
	ArgRun                         // a run number, 1 or more; sets Call.Number
	ArgRev                         // a revision for git rev-parse: not an option, no control characters; sets Call.Rev
	ArgUser                        // a user name (access.ValidName)
	ArgLevel                       // an access level or grant (access.ParseGrant: "write", "deploy:staging,qa")
	ArgRight                       // a server-wide right of a user: admin or create
	ArgKey                         // a public key or a word of one; the handler parses them
	ArgImage                       // an image name (names.Image)
	ArgURL                         // an http(s) URL; the handler checks what it may reach
	ArgWord                        // an id or an option word: printable ASCII, no spaces, at most 200 bytes
	ArgToken                       // the name of an API token (auth.ValidName)
)

var argKindNames = map[ArgKind]string{
	ArgRepo: "repo", ArgPipeline: "pipeline", ArgEnv: "env", ArgRun: "run number", ArgRev: "rev",
	ArgUser: "user name", ArgLevel: "level", ArgRight: "right", ArgKey: "key", ArgImage: "image",
	ArgURL: "url", ArgWord: "word", ArgToken: "token name",
}

// String returns the kind's name, for the command table in docs and tests.
func (k ArgKind) String() string {
	if n, ok := argKindNames[k]; ok {
		return n
	}
	return fmt.Sprintf("ArgKind(%d)", int(k))
}

// Arg declares one positional argument.
type Arg struct {
	Name     string // as the usage line writes it: "REPO"
	Kind     ArgKind
	Optional bool // may be left out; only the last arguments may be optional
	Many     bool // takes all remaining arguments, zero or more; last only
}

// Need is the access a command needs. The gate checks it in this order:
// Admin (before the arguments, so that a non-admin learns nothing of them),
// then the arguments' kinds, then Create, Repo and Check.
type Need struct {
	// Admin requires a server admin.
	Admin bool
	// Create requires the right to create repositories (admins have it).
	Create bool
	// Repo requires at least this level on the repository argument, which
	// must exist. None means the command needs no level on a repository.
	Repo access.Level
	// Check, when set, is a last check with the parsed arguments, such as a
	// deploy right scoped to the ENV argument.
	Check func(c *Call) error
	// Denied completes "permission denied: …" when Admin or Create is
	// missing: "managing users is for admins".
	Denied string
}

// gate picks the subcommand, checks the arguments against their kinds and
// the caller's access, and fills c from the arguments. It returns the
// command whose Run is to be called. Malformed arguments give a UsageError.
func (s *Server) gate(cmd Command, c *Call) (Command, error) {
	if err := s.serverNeed(cmd.Need, c, true); err != nil {
		return cmd, err
	}
	if cmd.Sub != nil {
		if len(c.Args) == 0 {
			return cmd, Usagef("missing subcommand")
		}
		sub, ok := cmd.Sub[c.Args[0]]
		if !ok {
			return cmd, Usagef("unknown subcommand %q", c.Args[0])
		}
		c.Sub, c.Args = c.Args[0], c.Args[1:]
		cmd = sub
		if err := s.serverNeed(cmd.Need, c, true); err != nil {
			return cmd, err
		}
	}
	if cmd.All != nil && len(c.Args) > 0 && c.Args[0] == "--all" {
		c.Args, c.All = c.Args[1:], true
		cmd = *cmd.All
		if err := s.serverNeed(cmd.Need, c, true); err != nil {
			return cmd, err
		}
	}
	if err := parseArgs(cmd, c); err != nil {
		return cmd, err
	}
	if err := s.serverNeed(cmd.Need, c, false); err != nil {
		return cmd, err
	}
	if cmd.Need.Repo > access.None {
		if err := s.RequireRepo(c, c.Repo, cmd.Need.Repo); err != nil {
			return cmd, err
		}
	}
	if cmd.Need.Check != nil {
		if err := cmd.Need.Check(c); err != nil {
			return cmd, err
		}
	}
	return cmd, nil
}

// serverNeed checks the server-wide rights: Admin when admin is set, Create
// otherwise.
func (s *Server) serverNeed(n Need, c *Call, admin bool) error {
	denied := n.Denied
	if denied == "" {
		denied = "this command is for admins"
	}
	switch {
	case admin && n.Admin && !c.User.Admin:
		return fmt.Errorf("%w: %s", ErrDenied, denied)
	case !admin && n.Create && !c.User.MayCreate():
		return fmt.Errorf("%w: %s", ErrDenied, denied)
	}
	return nil
}

// parseArgs takes the flags out of c.Args, checks the count and the kind of
// each argument, and sets the fields of c the kinds name. It depends on
// nothing but its arguments, so the whole table is tested without a server.
func parseArgs(cmd Command, c *Call) error {
	var args []string
	for _, a := range c.Args {
		if f, ok := cmd.Flags[a]; ok {
			if c.Flags == nil {
				c.Flags = map[string]bool{}
			}
			c.Flags[f] = true
			continue
		}
		args = append(args, a)
	}
	c.Args = args
	least, most := 0, len(cmd.Args)
	for _, a := range cmd.Args {
		if !a.Optional && !a.Many {
			least++
		}
		if a.Many {
			most = -1
		}
	}
	if len(args) < least || (most >= 0 && len(args) > most) {
		return Usagef("%s", takes(c, cmd))
	}
	for i, a := range args {
		decl := cmd.Args[min(i, len(cmd.Args)-1)]
		if err := checkArg(c, decl, a); err != nil {
			return err
		}
	}
	return nil
}

// takes says what a command takes: "logs takes REPO PIPELINE RUN".
func takes(c *Call, cmd Command) string {
	name := c.Name
	if c.Sub != "" {
		name += " " + c.Sub
	}
	if len(cmd.Args) == 0 {
		return name + " takes no arguments"
	}
	var words []string
	for _, a := range cmd.Args {
		w := a.Name
		if a.Many {
			w += "..."
		}
		if a.Optional {
			w = "[" + w + "]"
		}
		words = append(words, w)
	}
	return name + " takes " + strings.Join(words, " ")
}

// maxRevLen bounds a REV argument; git's own limit on ref names is PATH_MAX.
const maxRevLen = 4096

// checkArg checks one argument against its kind and records it in c.
func checkArg(c *Call, decl Arg, v string) error {
	usage := func(err error) error { return &UsageError{Msg: err.Error()} }
	switch decl.Kind {
	case ArgRepo:
		name, err := names.CleanRepo(v)
		if err != nil {
			return usage(err)
		}
		c.Repo = name
	case ArgPipeline:
		if err := names.Pipeline(v); err != nil {
			return usage(err)
		}
		c.Pipeline = v
	case ArgEnv:
		if err := names.Env(v); err != nil {
			return usage(err)
		}
		c.Env = v
	case ArgRun:
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || strings.HasPrefix(v, "+") {
			return Usagef("%s must be a run number, not %q", decl.Name, v)
		}
		c.Number = n
	case ArgRev:
		if v == "" || strings.HasPrefix(v, "-") || len(v) > maxRevLen ||
			strings.IndexFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
			return Usagef("invalid revision %q: give a commit id, an artifact such as web~1, or a ref", v)
		}
		c.Rev = v
	case ArgUser:
		if !access.ValidName(v) {
			return Usagef("user name %q is invalid; use 1 to 64 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit", v)
		}
	case ArgLevel:
		if _, err := access.ParseGrant(v); err != nil {
			return usage(err)
		}
	case ArgRight:
		if v != "admin" && v != "create" {
			return Usagef("unknown right %q (admin or create)", v)
		}
	case ArgImage:
		if err := names.Image(v); err != nil {
			return usage(err)
		}
	case ArgURL:
		if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(v) > maxRevLen {
			return Usagef("%s must be an http:// or https:// URL, not %q", decl.Name, v)
		}
	case ArgWord:
		if v == "" || len(v) > 200 || strings.IndexFunc(v, func(r rune) bool { return r <= 0x20 || r >= 0x7f }) >= 0 {
			return Usagef("invalid %s %q", decl.Name, v)
		}
	case ArgToken:
		if !auth.ValidName(v) {
			return Usagef("token name %q is invalid; use 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' and '-', starting with a letter or digit", v)
		}
	case ArgKey:
		// A key is checked by the handler, which also reads keys from stdin.
	default:
		return fmt.Errorf("command %s: argument %s has no kind", c.Name, decl.Name)
	}
	return nil
}
