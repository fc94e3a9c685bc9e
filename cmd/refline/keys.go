package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/refline/refline/keyring"
)

const keysUsage = `usage:
  refline keys rotate-age [--data DIR]            add a new age identity beside the active ones
  refline keys retire-age [--data DIR] RECIPIENT  remove the identity of an age1… recipient

These work offline on the server's data directory (default ./refline-data, or
$REFLINE_DATA). A running server keeps the identities it started with: restart
it after either command.
`

// keysCmd runs the offline age key rotation commands.
func keysCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, keysUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	sub := args[0]
	fs := flag.NewFlagSet("refline keys "+sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	defData := "./refline-data"
	if v := os.Getenv("REFLINE_DATA"); v != "" {
		defData = v
	}
	data := fs.String("data", defData, "")
	pos, err := parseInterspersed(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stderr, keysUsage)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "refline keys %s: %v\n%s", sub, err, keysUsage)
		return 2
	}
	switch {
	case sub == "rotate-age" && len(pos) == 0, sub == "retire-age" && len(pos) == 1:
	case sub == "rotate-age" || sub == "retire-age":
		fmt.Fprintf(stderr, "refline keys %s: wrong number of arguments\n%s", sub, keysUsage)
		return 2
	default:
		fmt.Fprintf(stderr, "refline keys: unknown command %q\n%s", sub, keysUsage)
		return 2
	}
	k, err := keyring.LoadAge(filepath.Join(*data, "keys"))
	if err != nil {
		fmt.Fprintf(stderr, "refline keys %s: %v\n", sub, err)
		return 1
	}
	if sub == "rotate-age" {
		old := k.AgeRecipients()
		id, err := k.RotateAge()
		if err != nil {
			fmt.Fprintf(stderr, "refline keys rotate-age: %v\n", err)
			return 1
		}
		fmt.Fprintln(stdout, id.Recipient())
		fmt.Fprintf(stderr, "added age recipient %s; %d identities are active.\n"+
			"Next: restart the server, so that it decrypts with every one and `ssh HOST keys` lists them;\n"+
			"in each repository run refline secrets reencrypt --refresh --all, commit and push;\n"+
			"then retire the old key(s): refline keys retire-age --data %s %s, and restart again.\n",
			id.Recipient(), len(k.Age), *data, old[len(old)-1])
		return 0
	}
	if err := k.RetireAge(pos[0]); err != nil {
		fmt.Fprintf(stderr, "refline keys retire-age: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "retired age recipient %s; %d identities are active. Restart the server to stop using it:\n"+
		"secrets files encrypted only to it can then no longer be deployed.\n", pos[0], len(k.Age))
	return 0
}
