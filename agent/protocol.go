// Package agent is refline's remote job runner and the protocol it speaks.
//
// A run executed elsewhere (a Kubernetes Job, a local process, a sandbox)
// runs `refline agent`. The agent dials the server over SSH with a per-run
// ed25519 key, checks the server's host key against the one it was given
// (never trust on first use), and opens one session with the exec request
// "agent RUNID". That session's stdin and stdout carry the protocol below;
// its stderr is unused. Nothing else is allowed to that key: no git, no
// commands, no other run, and it stops working when the run ends.
//
// # Protocol, version 1
//
// Every message is a frame:
//
//	frame   = type:uint8 length:uint32(big endian) payload[length]
//	length  ≤ MaxFrame (1 MiB); control payloads are JSON objects,
//	          data payloads are raw bytes
//
// The exchange, A = agent, S = server:
//
//	A→S  'H' hello    {"version":1,"run":"RUNID"}
//	S→A  'P' plan     {"version":1,"env":["K=V",…],"deadline_ms":N}
//	                  (or '!' when the version or run is refused)
//	S→A  'T'…  'E'    the workspace: a tar stream cut into 'T' data
//	                  frames, ended by one empty 'E' frame. Regular files,
//	                  directories and symlinks only; no .git.
//	A→S  'R' ready    {} once the workspace is laid out
//	then, once per stage, one at a time:
//	S→A  'S' start    {"name":"build","script":"…","timeout_ms":N}
//	A→S  'O'…         the stage's output (stdout and stderr together), raw
//	A→S  'X' exit     {"code":N,"error":"…"} after the last 'O' of the stage
//	S→A  'C' cancel   {"grace_ms":N} while a stage runs: SIGTERM to its
//	                  process group, SIGKILL after the grace; 'X' follows
//	at the end of a passed run:
//	S→A  'G' get      {} asks for the workspace back
//	A→S  'T'…  'E'    the workspace after the stages, as a tar stream
//	S→A  'B' bye      {} the agent exits 0
//	either '!' error  {"message":"…"} the sender gives up the run
//
// Every stage runs as `/bin/sh -e -c SCRIPT` in the workspace, in its own
// process group, with exactly the plan's environment (TMPDIR is the
// agent's). Output goes back unmasked over the encrypted channel; the
// server masks secrets before anything reaches a log. When the connection
// ends, the agent kills the running stage and exits non-zero; it also
// kills a stage that outlives its timeout_ms by more than StageBackstop,
// in case the server is unreachable but the connection lingers, and says
// so in the stage's output.
//
// Once its session is open and before the hello, the agent ends its own
// stderr with QuietLine and points its stdio at a pipe it drains (Config.Detach),
// so that a stage, which runs as its user with the plan's secrets, cannot
// write them through the agent's descriptors to a log that does not mask
// them; `refline agent` also makes itself not dumpable before it reads its
// key. docs/AGENT-PROTOCOL.md says what a stage can and cannot reach.
package agent

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// Version is the protocol version this build speaks.
const Version = 1

// MaxFrame bounds one frame's payload.
const MaxFrame = 1 << 20

// StageBackstop is how long past its timeout the agent lets a stage run
// when the server has not cancelled it.
const StageBackstop = 30 * time.Second

// Frame types.
const (
	FrameHello  byte = 'H'
	FramePlan   byte = 'P'
	FrameTar    byte = 'T'
	FrameTarEnd byte = 'E'
	FrameReady  byte = 'R'
	FrameStart  byte = 'S'
	FrameOutput byte = 'O'
	FrameExit   byte = 'X'
	FrameCancel byte = 'C'
	FrameGet    byte = 'G'
	FrameBye    byte = 'B'
	FrameError  byte = '!'
)

// Hello is the agent's first frame.
type Hello struct {
	Version int    `json:"version"`
	Run     string `json:"run"`
}

// Plan is what a run executes with.
type Plan struct {
	Version    int      `json:"version"`
	Env        []string `json:"env"`
	DeadlineMS int64    `json:"deadline_ms"`
}

// Start starts one stage.
type Start struct {
	Name      string `json:"name"`
	Script    string `json:"script"`
	TimeoutMS int64  `json:"timeout_ms"`
}

// Exit ends one stage. Error says why the stage could not run at all.
type Exit struct {
	Code  int    `json:"code"`
	Error string `json:"error,omitempty"`
}

// Cancel stops the running stage.
type Cancel struct {
	GraceMS int64 `json:"grace_ms"`
}

// Error is the last frame of a side that gives up.
type Error struct {
	Message string `json:"message"`
}

// ErrFrameTooLarge is returned for a frame longer than MaxFrame.
var ErrFrameTooLarge = errors.New("agent protocol: frame too large")

// Conn reads and writes frames; writes are safe from several goroutines,
// reads are for one reader.
type Conn struct {
	r   io.Reader
	w   io.Writer
	wmu sync.Mutex
	hdr [5]byte
}

// NewConn frames r and w.
func NewConn(r io.Reader, w io.Writer) *Conn { return &Conn{r: r, w: w} }

// Write sends one frame.
func (c *Conn) Write(typ byte, payload []byte) error {
	if len(payload) > MaxFrame {
		return ErrFrameTooLarge
	}
	var hdr [5]byte
	hdr[0] = typ
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(payload)))
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if _, err := c.w.Write(hdr[:]); err != nil {
		return err
	}
	if len(payload) > 0 {
		if _, err := c.w.Write(payload); err != nil {
			return err
		}
	}
	return nil
}

// WriteJSON sends one frame with v as its JSON payload.
func (c *Conn) WriteJSON(typ byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.Write(typ, b)
}

// Read returns the next frame. The payload is fresh memory.
func (c *Conn) Read() (byte, []byte, error) {
	if _, err := io.ReadFull(c.r, c.hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(c.hdr[1:])
	if n > MaxFrame {
		return 0, nil, ErrFrameTooLarge
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(c.r, p); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return c.hdr[0], p, nil
}

// Decode unmarshals a control payload, saying which frame was bad.
func Decode(typ byte, p []byte, v any) error {
	if err := json.Unmarshal(p, v); err != nil {
		return fmt.Errorf("agent protocol: bad %q frame: %w", typ, err)
	}
	return nil
}

// Writer returns an io.Writer that sends what is written as frames of typ,
// cut at MaxFrame.
func (c *Conn) Writer(typ byte) io.Writer { return frameWriter{c, typ} }

type frameWriter struct {
	c   *Conn
	typ byte
}

func (w frameWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), MaxFrame)
		if err := w.c.Write(w.typ, p[:k]); err != nil {
			return n, err
		}
		n += k
		p = p[k:]
	}
	return n, nil
}
