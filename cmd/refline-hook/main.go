// Command refline-hook is the hook relay: git runs it (through the scripts
// refline writes into DATA/hooks) for every hook call, and it passes the
// call to the running server over the hook socket. It imports only
// hooks/relay and the standard library, so it starts in about a
// millisecond where the whole refline binary takes several; `refline
// serve` uses it when it is installed next to the refline binary (`make
// build` puts both in bin/), and `refline hook` otherwise.
package main

import (
	"os"

	"github.com/refline/refline/hooks/relay"
)

func main() {
	os.Exit(relay.Main(os.Args[1:], os.Stdin, os.Stderr, os.Getenv))
}
