package hooks

import (
	"io"

	"github.com/refline/refline/hooks/relay"
)

// The wire format lives in hooks/relay, which the relay binary shares; these
// are the names the server side uses.

// Request is what a hook process sends to the server.
type Request = relay.Request

// ReadRequest reads one request frame.
func ReadRequest(r io.Reader) (*Request, error) { return relay.ReadRequest(r) }

type frameWriter = relay.OutputWriter

func writeExit(w io.Writer, code int) error { return relay.WriteExit(w, code) }
