// Package relay is the hook side of the relay between git hooks and the
// server: the wire format both sides speak, and the client that a hook
// process runs. It imports nothing but the standard library, so that the
// small relay binary (cmd/refline-hook) that git starts for every hook
// call starts in a millisecond.
package relay

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// The relay between a git hook process and the server speaks a tiny framed
// protocol over a unix socket: each frame is a one-byte type, a four-byte
// big-endian length and the payload. The hook sends one request frame; the
// server answers with any number of output frames and one exit frame. Frames
// keep output streaming (for `git push -o follow`) without any parsing of the
// output itself.
const (
	frameRequest byte = 'q'
	frameOutput  byte = 'o'
	frameExit    byte = 'x'
)

// MaxFrame bounds a frame's payload so that a confused or hostile peer cannot
// make either side allocate without limit. Hook stdin is a list of ref
// updates; 16 MiB is room for well over 100,000 refs.
const MaxFrame = 16 << 20

// ErrFrameTooLarge is returned for a frame whose declared length exceeds MaxFrame.
var ErrFrameTooLarge = errors.New("hook relay: frame too large")

// Request is what a hook process sends to the server: which hook ran, in
// which repository, for which session, and what git gave it.
type Request struct {
	Hook  string   `json:"hook"`
	Args  []string `json:"args,omitempty"`
	Repo  string   `json:"repo"`            // absolute GIT_DIR of the bare repository
	Token string   `json:"token,omitempty"` // the session token from the git child's environment; empty for a local operator
	// PushOptions are the values of GIT_PUSH_OPTION_0..N.
	PushOptions []string `json:"push_options,omitempty"`
	// Quarantine holds the object-directory variables git sets for
	// pre-receive, so that the server can read the pushed objects before
	// they are accepted.
	Quarantine map[string]string `json:"quarantine,omitempty"`
	Stdin      []byte            `json:"stdin,omitempty"`
}

func writeFrame(w io.Writer, typ byte, payload []byte) error {
	if len(payload) > MaxFrame {
		return ErrFrameTooLarge
	}
	var hdr [5]byte
	hdr[0] = typ
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(payload)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

func readFrame(r io.Reader) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > MaxFrame {
		return 0, nil, ErrFrameTooLarge
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, fmt.Errorf("hook relay: short frame: %w", err)
	}
	return hdr[0], payload, nil
}

// WriteRequest sends req as a request frame.
func WriteRequest(w io.Writer, req *Request) error {
	b, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("hook relay: encode request: %w", err)
	}
	return writeFrame(w, frameRequest, b)
}

// ReadRequest reads one request frame.
func ReadRequest(r io.Reader) (*Request, error) {
	typ, payload, err := readFrame(r)
	if err != nil {
		return nil, err
	}
	if typ != frameRequest {
		return nil, fmt.Errorf("hook relay: expected request frame, got %q", typ)
	}
	var req Request
	if err := json.Unmarshal(payload, &req); err != nil {
		return nil, fmt.Errorf("hook relay: decode request: %w", err)
	}
	if req.Hook == "" || req.Repo == "" {
		return nil, errors.New("hook relay: request without hook or repo")
	}
	return &req, nil
}

// OutputWriter turns writes into output frames: the server's side of a
// hook call, streaming what the pusher sees.
type OutputWriter struct{ W io.Writer }

func (f OutputWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		chunk := p
		if len(chunk) > 64<<10 {
			chunk = chunk[:64<<10]
		}
		if err := writeFrame(f.W, frameOutput, chunk); err != nil {
			return 0, err
		}
		p = p[len(chunk):]
	}
	return n, nil
}

// WriteExit sends the exit frame that ends a response: the hook's exit code.
func WriteExit(w io.Writer, code int) error {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(int32(code)))
	return writeFrame(w, frameExit, b[:])
}

// ReadResponse copies output frames to out until the exit frame, and
// returns the exit code the server decided on.
func ReadResponse(r io.Reader, out io.Writer) (int, error) {
	for {
		typ, payload, err := readFrame(r)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return 0, errors.New("hook relay: server closed the connection without a verdict")
			}
			return 0, err
		}
		switch typ {
		case frameOutput:
			if _, err := out.Write(payload); err != nil {
				return 0, err
			}
		case frameExit:
			if len(payload) != 4 {
				return 0, fmt.Errorf("hook relay: bad exit frame of %d bytes", len(payload))
			}
			return int(int32(binary.BigEndian.Uint32(payload))), nil
		default:
			return 0, fmt.Errorf("hook relay: unexpected frame %q", typ)
		}
	}
}
