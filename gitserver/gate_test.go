package gitserver

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"github.com/refline/refline/access"
	"github.com/refline/refline/pipelines"
)

// allCommands is the command table of a server with pipelines, built
// without one: the table holds method values, which are not called here.
func allCommands(s *Server) map[string]Command {
	cmds := s.builtinCommands()
	for n, c := range s.pipelineCommands() {
		cmds[n] = c
	}
	cmds["image"] = s.imageCommand()
	cmds["webhook"] = s.webhookCommand()
	for n, c := range s.webCommands() {
		cmds[n] = c
	}
	return cmds
}

// describe renders one command's declaration: its argument kinds and the
// access it needs.
func describe(name string, c Command, parent Need) string {
	var kinds []string
	for _, a := range c.Args {
		k := a.Name + ":" + a.Kind.String()
		if a.Many {
			k += "..."
		}
		if a.Optional {
			k = "[" + k + "]"
		}
		kinds = append(kinds, k)
	}
	var need []string
	if parent.Admin || c.Need.Admin {
		need = append(need, "server admin")
	}
	if c.Need.Create {
		need = append(need, "may create repos")
	}
	if c.Need.Repo > access.None {
		need = append(need, c.Need.Repo.String()+" on REPO")
	}
	if c.Need.Check != nil {
		need = append(need, "+check")
	}
	if len(need) == 0 {
		need = append(need, "any user")
	}
	flags := ""
	if len(c.Flags) > 0 {
		var fs []string
		for f := range c.Flags {
			fs = append(fs, f)
		}
		sort.Strings(fs)
		flags = " flags " + strings.Join(fs, ",")
	}
	return fmt.Sprintf("%s | %s%s | %s", name, strings.Join(kinds, " "), flags, strings.Join(need, ", "))
}

func gateTable(cmds map[string]Command) []string {
	var rows []string
	for n, c := range cmds {
		if c.Sub == nil {
			rows = append(rows, describe(n, c, Need{}))
			continue
		}
		for sn, sc := range c.Sub {
			rows = append(rows, describe(n+" "+sn, sc, c.Need))
			if sc.All != nil {
				rows = append(rows, describe(n+" "+sn+" --all", *sc.All, c.Need))
			}
		}
	}
	sort.Strings(rows)
	return rows
}

// TestGateTable pins what every command takes and needs: a change to a
// command's rights shows up here, on purpose.
func TestGateTable(t *testing.T) {
	want := []string{
		"access | NAME:repo USER:user name LEVEL:level | admin on REPO",
		"artifacts | REPO:repo PIPELINE:pipeline | read on REPO",
		"cancel | REPO:repo PIPELINE:pipeline RUN:run number | write on REPO, +check",
		"deploy | REPO:repo PIPELINE:pipeline ENV:env [REV:rev] | read on REPO, +check",
		"image import | NAME:image | server admin",
		"image list |  | server admin",
		"image remove | NAME:image | server admin",
		"keys |  | any user",
		"login |  | any user",
		"logs | REPO:repo PIPELINE:pipeline RUN:run number flags --follow,-f | read on REPO",
		"pipelines | REPO:repo | read on REPO",
		"repo create | NAME:repo | may create repos",
		"repo delete | NAME:repo | admin on REPO",
		"repo info | NAME:repo | read on REPO",
		"repo list |  | any user",
		"retry | REPO:repo PIPELINE:pipeline RUN:run number | write on REPO",
		"rollback | REPO:repo PIPELINE:pipeline ENV:env [REV:rev] | read on REPO, +check",
		"runs | REPO:repo [PIPELINE:pipeline] | read on REPO",
		"status | REPO:repo | read on REPO",
		"token create | NAME:token name | any user",
		"token delete | NAME:token name | any user",
		"token list |  | any user",
		"user add | NAME:user name KEY:key... | server admin",
		"user grant | NAME:user name admin|create:right | server admin",
		"user list |  | server admin",
		"user remove | NAME:user name | server admin",
		"user revoke | NAME:user name admin|create:right | server admin",
		"webhook add --all | URL:url OPTION:word... | server admin",
		"webhook add | REPO:repo URL:url OPTION:word... | admin on REPO",
		"webhook deliveries --all | ID:word | server admin",
		"webhook deliveries | REPO:repo ID:word | admin on REPO",
		"webhook list --all |  | server admin",
		"webhook list | REPO:repo | admin on REPO",
		"webhook redeliver --all | DELIVERY:word | server admin",
		"webhook redeliver | REPO:repo DELIVERY:word | admin on REPO",
		"webhook remove --all | ID:word | server admin",
		"webhook remove | REPO:repo ID:word | admin on REPO",
		"whoami |  | any user",
	}
	got := gateTable(allCommands(&Server{}))
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("command table:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestCommandDeclarations checks that every declaration can be enforced: a
// repository level needs a repository argument, optional and repeated
// arguments come last, every argument has a kind.
func TestCommandDeclarations(t *testing.T) {
	check := func(name string, c Command) {
		if c.Run == nil {
			t.Errorf("%s: no Run", name)
		}
		hasRepo := false
		for i, a := range c.Args {
			if _, ok := argKindNames[a.Kind]; !ok {
				t.Errorf("%s: argument %s has no kind", name, a.Name)
			}
			hasRepo = hasRepo || a.Kind == ArgRepo
			last := i == len(c.Args)-1
			if a.Many && !last {
				t.Errorf("%s: %s... is not last", name, a.Name)
			}
			if a.Optional && !last && !c.Args[i+1].Optional {
				t.Errorf("%s: optional %s is followed by a required argument", name, a.Name)
			}
		}
		if c.Need.Repo > access.None && !hasRepo {
			t.Errorf("%s: needs a level on a repository but takes none", name)
		}
	}
	for n, c := range allCommands(&Server{}) {
		if c.Usage == "" || c.Help == "" {
			t.Errorf("%s: no usage or help", n)
		}
		if c.Sub == nil {
			check(n, c)
			continue
		}
		if c.Run != nil || len(c.Args) > 0 {
			t.Errorf("%s: has subcommands and its own Run or Args", n)
		}
		for sn, sc := range c.Sub {
			check(n+" "+sn, sc)
			if sc.All != nil {
				check(n+" "+sn+" --all", *sc.All)
			}
		}
	}
}

// TestParseArgs covers the argument checks, which depend on nothing but the
// declaration and the words typed.
func TestParseArgs(t *testing.T) {
	cmds := allCommands(&Server{})
	for _, tc := range []struct {
		line  string
		want  string // the fields set, or "usage: <part of the message>"
		flags string
	}{
		{line: "logs mine web 1", want: "repo=mine pipeline=web run=1"},
		{line: "logs /team/app.git web 12 -f", want: "repo=team/app pipeline=web run=12", flags: "follow"},
		{line: "logs mine web --follow 3", want: "repo=mine pipeline=web run=3", flags: "follow"},
		{line: "logs mine ../theirs/web 1", want: `usage: pipeline name "../theirs/web" is invalid`},
		{line: "logs mine web/../../theirs/web 1", want: "usage: pipeline name"},
		{line: "logs mine .. 1", want: "usage: pipeline name"},
		{line: "logs mine /abs 1", want: "usage: pipeline name"},
		{line: "logs mine ..%2Ftheirs%2Fweb 1", want: "usage: pipeline name"},
		{line: "logs mine Web 1", want: "usage: pipeline name"},
		{line: "logs ../theirs web 1", want: "usage: repository name"},
		{line: "logs mine/../theirs web 1", want: "usage: repository name"},
		{line: "logs mine%2F..%2Ftheirs web 1", want: "usage: repository name"},
		{line: "logs mine web 0", want: `usage: RUN must be a run number, not "0"`},
		{line: "logs mine web -1", want: "usage: RUN must be a run number"},
		{line: "logs mine web +1", want: "usage: RUN must be a run number"},
		{line: "logs mine web 1x", want: "usage: RUN must be a run number"},
		{line: "logs mine web 99999999999999999999", want: "usage: RUN must be a run number"},
		{line: "logs mine web", want: "usage: logs takes REPO PIPELINE RUN"},
		{line: "logs mine web 1 2", want: "usage: logs takes REPO PIPELINE RUN"},
		{line: "runs mine", want: "repo=mine"},
		{line: "runs mine web", want: "repo=mine pipeline=web"},
		{line: "runs mine ../theirs/web", want: "usage: pipeline name"},
		{line: "runs", want: "usage: runs takes REPO [PIPELINE]"},
		{line: "retry mine web 2", want: "repo=mine pipeline=web run=2"},
		{line: "cancel mine web/../x 2", want: "usage: pipeline name"},
		{line: "artifacts mine web", want: "repo=mine pipeline=web"},
		{line: "artifacts mine ../theirs/web", want: "usage: pipeline name"},
		{line: "deploy mine web production", want: "repo=mine pipeline=web env=production"},
		{line: "deploy mine web production web~1", want: "repo=mine pipeline=web env=production rev=web~1"},
		{line: "rollback mine web production 3f2a9c1", want: "repo=mine pipeline=web env=production rev=3f2a9c1"},
		{line: "deploy mine ../theirs/web production", want: "usage: pipeline name"},
		{line: "deploy mine web ../../theirs/production", want: `usage: environment name "../../theirs/production" is invalid`},
		{line: "deploy mine web Prod", want: "usage: environment name"},
		{line: "deploy mine web production --upload-pack=x", want: "usage: invalid revision"},
		{line: "deploy mine web production a\x00b", want: "usage: invalid revision"},
		{line: "deploy mine web", want: "usage: deploy takes REPO PIPELINE ENV [REV]"},
		{line: "status mine", want: "repo=mine"},
		{line: "pipelines ../x", want: "usage: repository name"},
		{line: "access team/app bob write", want: "repo=team/app"},
		{line: "access team/app Bob write", want: `usage: user name "Bob" is invalid`},
		{line: "access team/app bob root", want: "usage: unknown access level"},
		{line: "access ../x bob read", want: "usage: repository name"},
		{line: "repo create /team/app.git", want: "repo=team/app"},
		{line: "repo create ../x", want: "usage: repository name"},
		{line: "repo list", want: ""},
		{line: "repo list x", want: "usage: repo list takes no arguments"},
		{line: "repo", want: "usage: missing subcommand"},
		{line: "repo rename a b", want: `usage: unknown subcommand "rename"`},
		{line: "user add bob ssh-ed25519 AAAA c", want: ""},
		{line: "user add bob", want: ""},
		{line: "user add", want: "usage: user add takes NAME KEY..."},
		{line: "user add ../bob k", want: "usage: user name"},
		{line: "user grant bob root", want: `usage: unknown right "root"`},
		{line: "whoami x", want: "usage: whoami takes no arguments"},
	} {
		words := strings.Split(tc.line, " ")
		cmd, ok := cmds[words[0]]
		if !ok {
			t.Fatalf("%s: no such command", tc.line)
		}
		c := &Call{Name: words[0], Args: words[1:]}
		err := func() error {
			if cmd.Sub != nil {
				if len(c.Args) == 0 {
					return Usagef("missing subcommand")
				}
				sub, ok := cmd.Sub[c.Args[0]]
				if !ok {
					return Usagef("unknown subcommand %q", c.Args[0])
				}
				c.Sub, c.Args, cmd = c.Args[0], c.Args[1:], sub
			}
			return parseArgs(cmd, c)
		}()
		var got string
		var ue *UsageError
		switch {
		case errors.As(err, &ue):
			got = "usage: " + ue.Msg
		case err != nil:
			got = "error: " + err.Error()
		default:
			var f []string
			for _, kv := range [][2]string{{"repo", c.Repo}, {"pipeline", c.Pipeline}, {"env", c.Env}, {"rev", c.Rev}} {
				if kv[1] != "" {
					f = append(f, kv[0]+"="+kv[1])
				}
			}
			if c.Number != 0 {
				f = append(f, fmt.Sprintf("run=%d", c.Number))
			}
			sort.Strings(f)
			got = strings.Join(f, " ")
		}
		want := strings.Fields(tc.want)
		if !strings.HasPrefix(tc.want, "usage: ") {
			sort.Strings(want)
			if got != strings.Join(want, " ") {
				t.Errorf("%q: got %q, want %q", tc.line, got, strings.Join(want, " "))
			}
		} else if !strings.HasPrefix(got, tc.want) {
			t.Errorf("%q: got %q, want %q...", tc.line, got, tc.want)
		}
		if err == nil {
			var fl []string
			for f := range c.Flags {
				fl = append(fl, f)
			}
			if strings.Join(fl, ",") != tc.flags {
				t.Errorf("%q: flags %v, want %q", tc.line, fl, tc.flags)
			}
		}
	}
}

// runKinds is the part of the runner the gate consults: the kind of a run,
// for cancel and retry.
type runKinds struct {
	unused // the gate calls nothing else
	kinds  map[string]pipelines.Kind
}

// unused is every runner part, so that the gate sees every command.
type unused interface {
	PipelineLister
	RunReader
	RunControl
	Deploys
	RepoRemover
}

func (r runKinds) Get(repo, pipeline string, n int) (*pipelines.Run, error) {
	k, ok := r.kinds[fmt.Sprintf("%s %s %d", repo, pipeline, n)]
	if !ok {
		return nil, pipelines.ErrNoRun
	}
	run := &pipelines.Run{Repo: repo, Pipeline: pipeline, Number: n, Kind: k}
	if k == pipelines.Deploy {
		run.Environment = "production"
	}
	return run, nil
}

// TestGateAccess runs the whole gate against a real access file and real
// repositories: each level allows exactly its commands, and a user without
// read access learns nothing, not even whether the repository exists.
func TestGateAccess(t *testing.T) {
	dir := t.TempDir()
	st, err := access.Open(filepath.Join(dir, "access.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "rita", "wendy", "dora", "adam", "nora", "cora", "sam"} {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k, err := gossh.NewPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.AddUser(u, []gossh.PublicKey{k}, u == "alice"); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.SetCanCreate("cora", true); err != nil {
		t.Fatal(err)
	}
	repos := &Store{Root: filepath.Join(dir, "repos"), HooksDir: "/nonexistent/hooks"}
	for _, r := range []string{"mine", "theirs"} {
		if err := repos.Create(context.Background(), r, ""); err != nil {
			t.Fatal(err)
		}
	}
	for u, l := range map[string]access.Level{"rita": access.Read, "wendy": access.Write, "dora": access.Deploy, "adam": access.Admin} {
		if err := st.Grant("mine", u, l); err != nil {
			t.Fatal(err)
		}
	}
	staging, err := access.ParseGrant("deploy:staging")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetGrant("mine", "sam", staging); err != nil {
		t.Fatal(err)
	}
	runner := runKinds{kinds: map[string]pipelines.Kind{"mine web 1": pipelines.Build, "mine web 2": pipelines.Deploy}}
	s := &Server{cfg: Config{Access: st, Repos: repos,
		PipelineLister: runner, RunReader: runner, RunControl: runner, Deploys: runner, RepoRemover: runner}}
	s.commands = allCommands(s)

	const (
		ok       = "ok"
		notFound = "not found"
		denied   = "denied"
		usage    = "usage"
	)
	for _, tc := range []struct {
		user, line, want string
	}{
		{"rita", "logs mine web 1", ok},
		{"rita", "runs mine", ok},
		{"rita", "artifacts mine web", ok},
		{"rita", "status mine", ok},
		{"rita", "repo info mine", ok},
		{"rita", "logs theirs web 1", notFound},
		{"rita", "logs nothere web 1", notFound},
		{"nora", "logs mine web 1", notFound},
		{"nora", "repo list", ok},
		{"nora", "whoami", ok},
		{"nora", "keys", ok},
		{"rita", "logs mine ../theirs/web 1", usage},
		{"rita", "retry mine web 1", denied},
		{"rita", "cancel mine web 1", denied},
		{"wendy", "retry mine web 1", ok},
		{"wendy", "retry mine web 2", ok}, // a deploy run: Retry decides, for the retrier
		{"wendy", "cancel mine web 2", denied},
		{"sam", "deploy mine web staging", ok},
		{"sam", "rollback mine web staging", ok},
		{"sam", "deploy mine web production", denied},
		{"sam", "cancel mine web 2", denied}, // a production deploy
		{"sam", "cancel mine web 1", ok},
		{"sam", "retry mine web 1", ok},
		{"wendy", "retry mine web 3", ok}, // no such run: the runner says so
		{"wendy", "deploy mine web production", denied},
		{"wendy", "rollback mine web production", denied},
		{"dora", "retry mine web 2", ok},
		{"dora", "deploy mine web production", ok},
		{"dora", "deploy mine ../theirs/web production", usage},
		{"dora", "deploy theirs web production", notFound},
		{"dora", "access mine rita write", denied},
		{"dora", "repo delete mine", denied},
		{"adam", "access mine rita write", ok},
		{"adam", "repo delete mine", ok},
		{"adam", "repo delete theirs", notFound},
		{"adam", "repo create x", denied},
		{"cora", "repo create x", ok},
		{"cora", "repo create ../x", usage},
		{"adam", "user list", denied},
		{"adam", "user add ../x k", denied}, // admins only, before the arguments
		{"adam", "user", denied},
		{"alice", "user list", ok},
		{"adam", "image list", denied},
		{"alice", "image list", ok},
		{"alice", "image remove ../keys", usage},
		{"alice", "image import .hidden", usage},
		{"alice", "user add ../x k", usage},
		{"alice", "logs theirs web 1", ok},
		{"alice", "deploy theirs web production", ok},
		{"adam", "webhook add mine http://example.com/x", ok},
		{"adam", "webhook list mine", ok},
		{"adam", "webhook add --all http://example.com/x", denied},
		{"adam", "webhook add --all ../x", denied}, // server admins only, before the arguments
		{"adam", "webhook list --all", denied},
		{"adam", "webhook remove --all 1234", denied},
		{"adam", "webhook deliveries --all 1234", denied},
		{"adam", "webhook redeliver --all 1234", denied},
		{"wendy", "webhook list mine", denied},
		{"alice", "webhook add --all http://example.com/x", ok},
		{"alice", "webhook add --all ftp://x", usage},
		{"alice", "webhook list --all", ok},
		{"alice", "webhook list --all mine", usage},
		{"alice", "webhook remove --all 1234", ok},
		{"alice", "webhook add --all", usage},
	} {
		words := strings.Split(tc.line, " ")
		u, _ := st.User(tc.user)
		c := &Call{Name: words[0], User: u, Args: words[1:]}
		_, err := s.gate(s.commands[words[0]], c)
		if err == nil && c.All != (len(words) > 2 && words[2] == "--all") {
			t.Errorf("%s: %s: Call.All %v", tc.user, tc.line, c.All)
		}
		if err == nil && c.All && c.Repo != "" {
			t.Errorf("%s: %s: Call.Repo %q with --all", tc.user, tc.line, c.Repo)
		}
		var ue *UsageError
		got := ok
		switch {
		case errors.As(err, &ue):
			got = usage
		case errors.Is(err, ErrDenied):
			got = denied
		case err != nil && strings.Contains(err.Error(), "not found, or you have no access"):
			got = notFound
		case err != nil:
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("%s: %s: got %s (%v), want %s", tc.user, tc.line, got, err, tc.want)
		}
	}
}

// TestGateCheck shows the hook for checks that depend on the arguments,
// such as deploy rights per environment: it runs after the level check,
// with the parsed arguments.
func TestGateCheck(t *testing.T) {
	var saw string
	cmd := Command{
		Args: []Arg{{Name: "ENV", Kind: ArgEnv}},
		Need: Need{Check: func(c *Call) error {
			saw = c.Env
			if c.Env != "staging" {
				return fmt.Errorf("%w: you may deploy to staging only", ErrDenied)
			}
			return nil
		}},
		Run: func(*Call) error { return nil },
	}
	s := &Server{}
	if _, err := s.gate(cmd, &Call{Name: "x", Args: []string{"staging"}}); err != nil || saw != "staging" {
		t.Errorf("staging: %v (check saw %q)", err, saw)
	}
	if _, err := s.gate(cmd, &Call{Name: "x", Args: []string{"production"}}); !errors.Is(err, ErrDenied) {
		t.Errorf("production: %v, want denied", err)
	}
	saw = ""
	if _, err := s.gate(cmd, &Call{Name: "x", Args: []string{"../x"}}); err == nil || saw != "" {
		t.Errorf("../x: %v; the check ran with %q", err, saw)
	}
}

// TestPipelineParts checks that every pipeline command belongs to a runner
// part: with every part set all are served, with none, none is.
func TestPipelineParts(t *testing.T) {
	var r runKinds
	all := pipelineParts(Config{PipelineLister: r, RunReader: r, RunControl: r, Deploys: r})
	none := pipelineParts(Config{})
	for name := range (&Server{}).pipelineCommands() {
		if !all[name] {
			t.Errorf("%s is not served with every runner part set", name)
		}
		if none[name] {
			t.Errorf("%s is served without its runner part", name)
		}
	}
}
