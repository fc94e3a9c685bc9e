// Command refline is a git-native continuous-delivery server: an SSH git
// server whose pushes run pipelines, record signed artifacts and deploy them.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage:
  refline serve [flags]            run the server (refline serve --help for flags)
  refline hook --socket S NAME...  the program git runs as a hook (internal)
  refline secrets COMMAND ENV ...  edit a clone's encrypted secrets (refline secrets help)
  refline keys rotate-age|retire-age --data DIR ...  rotate the server's age key (offline)
  refline agent --server H:P --host-key K --run ID  run one run's stages for a server (started by its launcher)
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		return serve(ctx, args[1:], stderr)
	case "hook":
		return hook(args[1:], stdin, stderr)
	case "secrets":
		return secretsCmd(args[1:], stdin, stdout, stderr)
	case "keys":
		return keysCmd(args[1:], stdout, stderr)
	case "agent":
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		return agentCmd(ctx, args[1:], stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "refline: unknown command %q\n%s", args[0], usage)
		return 2
	}
}
