package pipelines

import (
	"context"
	"time"
)

// Launcher starts a refline agent for one run somewhere else (a local
// process, the sandbox, a Kubernetes Job) and removes it afterwards. The
// agent executor (issue: runs as Kubernetes Jobs) drives a run through the
// agent over SSH; a Launcher only decides where the agent process lives.
type Launcher interface {
	// Launch starts the agent described by a and returns a durable handle
	// that Remove and a restarted server's Sweep understand.
	Launch(ctx context.Context, a AgentLaunch) (handle string, err error)
	// Remove stops the agent and deletes everything Launch created (for
	// Kubernetes: the Job, its pods and the per-run Secret). It is
	// idempotent: removing what is already gone is not an error.
	Remove(ctx context.Context, handle string) error
	// Sweep removes every agent this server instance launched whose
	// handle keep does not claim: what a crashed server left behind.
	Sweep(ctx context.Context, keep func(handle string) bool) error
}

// AgentLaunch is everything a Launcher needs to start one run's agent.
type AgentLaunch struct {
	// Instance names this server (labels and sweeps are per instance).
	Instance string
	// Repo, Pipeline and Run name the run (labels, names, messages).
	Repo, Pipeline string
	Run            int
	// Image is the pipeline's image: reference ("" means the launcher's
	// default image).
	Image string
	// Server is the host:port the agent dials over SSH, HostKey the
	// server's host public key in authorized_keys format (the agent
	// checks it), Key the per-run private key (OpenSSH PEM) that is
	// valid only for this run and only while it runs.
	Server  string
	HostKey string
	Key     []byte
	// Args are the agent's arguments after the binary, e.g.
	// ["agent", "--server", ...]; the launcher decides where the binary is.
	Args []string
	// Deadline bounds the whole run (Kubernetes activeDeadlineSeconds).
	Deadline time.Duration
	// Limits and Network are the pipeline's requests.
	Limits  Limits
	Network bool
}
