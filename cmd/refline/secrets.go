package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/refline/refline/cmd/refline/internal/secretscli"
)

const secretsUsage = `usage: refline secrets COMMAND [flags] ENV [ARGS]

Run in a clone. Decrypts .refline/secrets/ENV.age with your identity and
encrypts it to the server's recipients (.refline/server-recipients, fetched
with ssh HOST keys through origin when missing) and .refline/recipients.
Every file written is bound to its repository and environment (its first
line is "# refline: REPO ENV"); the server uses a file only where it is bound.

  set ENV KEY=VALUE...    set variables (values given here land in shell history)
  set ENV KEY             set KEY to what stdin holds (one final newline dropped)
  get ENV KEY             print KEY's value
  unset ENV KEY...        remove variables
  list ENV                print the keys, never the values
  edit ENV                edit the decrypted file with $EDITOR (default vi)
  reencrypt ENV...|--all  encrypt again to the current recipients, and bind
                          files written before refline bound them

flags:
  --identity FILE  age identity file or OpenSSH private key to decrypt with
                   (default: ~/.ssh/id_ed25519 and ~/.ssh/id_rsa, whichever exist)
  --refresh        ask the server for its recipients again (after a key rotation)
  --repo NAME      the repository's name on the server, to bind files to
                   (default: the path of the origin remote's URL)
  --all            reencrypt: every secrets file of the clone
`

// secretsCmd parses `refline secrets` arguments; secretscli.CLI does the work.
func secretsCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, secretsUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	sub := args[0]
	fs := flag.NewFlagSet("refline secrets "+sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	identity := fs.String("identity", "", "")
	refresh := fs.Bool("refresh", false, "")
	repo := fs.String("repo", "", "")
	all := fs.Bool("all", false, "")
	pos, err := parseInterspersed(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stderr, secretsUsage)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "refline secrets %s: %v\n%s", sub, err, secretsUsage)
		return 2
	}
	var want string // the command's usage
	var fits bool   // whether the arguments fit it
	switch sub {
	case "set":
		want, fits = "set ENV KEY=VALUE... | set ENV KEY < value", len(pos) >= 2
	case "get":
		want, fits = "get ENV KEY", len(pos) == 2
	case "unset":
		want, fits = "unset ENV KEY...", len(pos) >= 2
	case "list", "edit":
		want, fits = sub+" ENV", len(pos) == 1
	case "reencrypt":
		want, fits = "reencrypt ENV... | reencrypt --all", *all != (len(pos) > 0)
	default:
		fmt.Fprintf(stderr, "refline secrets: unknown command %q\n%s", sub, secretsUsage)
		return 2
	}
	if *all && sub != "reencrypt" {
		want, fits = want+" (--all is only for reencrypt)", false
	}
	if !fits {
		fmt.Fprintf(stderr, "refline secrets %s: usage: refline secrets %s\n", sub, want)
		return 2
	}

	ctx := context.Background()
	cli, err := secretscli.New(ctx, secretscli.Config{
		Dir: ".", Identity: *identity, Refresh: *refresh, Repo: *repo,
		Stdin: stdin, Stdout: stdout, Stderr: stderr,
	})
	if err == nil {
		switch sub {
		case "set":
			err = cli.Set(ctx, pos[0], pos[1:]...)
		case "get":
			err = cli.Get(ctx, pos[0], pos[1])
		case "unset":
			err = cli.Unset(ctx, pos[0], pos[1:]...)
		case "list":
			err = cli.List(ctx, pos[0])
		case "edit":
			err = cli.Edit(ctx, pos[0])
		case "reencrypt":
			if *all {
				err = cli.ReencryptAll(ctx)
			} else {
				err = cli.Reencrypt(ctx, pos...)
			}
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "refline secrets %s: %v\n", sub, err)
		return 1
	}
	return 0
}

// parseInterspersed parses flags anywhere among the positional arguments,
// as git does (`refline secrets get prod KEY --identity F`); "--" ends the
// flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
