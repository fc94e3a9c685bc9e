package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/refline/refline/hooks"
)

// hook relays a git hook to the running server. Git runs it through the
// shims that serve writes into DATA/hooks.
func hook(args []string, stdin io.Reader, stderr io.Writer) int {
	fs := flag.NewFlagSet("hook", flag.ContinueOnError)
	fs.SetOutput(stderr)
	socket := fs.String("socket", "", "the server's hook socket")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *socket == "" || fs.NArg() == 0 {
		fmt.Fprintln(stderr, "usage: refline hook --socket PATH NAME [ARGS...]")
		return 2
	}
	return hooks.RunHook(context.Background(), *socket, fs.Arg(0), fs.Args()[1:], stdin, stderr, os.Getenv)
}
