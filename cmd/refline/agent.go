package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/refline/refline/agent"
	"github.com/refline/refline/gitserver"
	"github.com/refline/refline/pipelines"
	"github.com/sirupsen/logrus"
)

// agentKeyEnv carries the per-run private key when no --key-file is given.
const agentKeyEnv = "REFLINE_AGENT_KEY"

// agentCmd is `refline agent`: it serves one run for the server that
// launched it (package agent has the protocol) and exits 0 when the server
// says bye.
func agentCmd(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg agent.Config
	var keyFile string
	var removeKey bool
	fs.StringVar(&cfg.Server, "server", "", "host:port of the refline SSH server")
	fs.StringVar(&cfg.HostKey, "host-key", "", "the server's host public key (authorized_keys format); no other is accepted")
	fs.StringVar(&cfg.Run, "run", "", "the run id the key is for")
	fs.StringVar(&keyFile, "key-file", "", "the per-run private key (OpenSSH PEM); default: $"+agentKeyEnv)
	fs.BoolVar(&removeKey, "remove-key-file", false, "remove --key-file once read (the launcher wrote it for this agent alone), so that no stage can read it")
	fs.StringVar(&cfg.WorkDir, "workdir", "/workspace", "where the workspace is laid out and the stages run")
	fs.DurationVar(&cfg.DialTimeout, "dial-timeout", time.Minute, "how long to keep trying to reach the server")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if cfg.Server == "" || cfg.HostKey == "" || cfg.Run == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "refline agent: --server, --host-key and --run are required, and nothing else")
		return 2
	}
	// Before the key is in memory: a stage of the same (unprivileged) uid
	// cannot read this process's memory, environment or descriptors.
	if err := agent.NotDumpable(); err != nil {
		fmt.Fprintf(stderr, "refline agent: %v\n", err)
		return 1
	}
	if keyFile != "" {
		b, err := os.ReadFile(keyFile)
		if err != nil {
			fmt.Fprintf(stderr, "refline agent: %v\n", err)
			return 2
		}
		cfg.Key = b
		if removeKey {
			if err := os.Remove(keyFile); err != nil {
				fmt.Fprintf(stderr, "refline agent: the key file must go before any stage runs: %v\n", err)
				return 1
			}
		}
	} else {
		cfg.Key = []byte(os.Getenv(agentKeyEnv))
	}
	// Stages get only the plan's environment; the key leaves this one
	// all the same.
	_ = os.Unsetenv(agentKeyEnv)
	if len(cfg.Key) == 0 {
		fmt.Fprintf(stderr, "refline agent: no key: give --key-file or set %s\n", agentKeyEnv)
		return 2
	}
	cfg.Log = stderr
	// Once connected, the agent's stdio is /dev/null (agent.QuietLine);
	// what Run returns after that is said to the server, not here.
	cfg.Detach = true
	if err := agent.Run(ctx, cfg); err != nil {
		fmt.Fprintf(stderr, "refline agent: %v\n", err)
		return 1
	}
	return 0
}

// agentWiring is what the agent executor needs of the server: the binary
// agents run as, the host key they check and the address they dial.
type agentWiring struct {
	binary  string
	hostKey gossh.Signer
	server  func() string
}

// newAgentExecutor builds --executor agent with the launcher
// --agent-launcher names.
func newAgentExecutor(f *serveFlags, data string, log *logrus.Entry, aw agentWiring) (pipelines.Executor, error) {
	dir := filepath.Join(data, "run", "agents")
	var launcher pipelines.Launcher
	switch f.agent.launcher {
	case "local":
		log.Warn("--executor agent --agent-launcher local: agents and their jobs run as the server's own user with no isolation; a development and testing mode")
		launcher = pipelines.LocalLauncher{Binary: aw.binary, Dir: dir, Logger: log.WithField("component", "agent")}
	default:
		sb := pipelines.NewSandbox(pipelines.SandboxConfig{
			DataDir: data, Limits: f.jobLimits, Logger: log.WithField("component", "sandbox"),
		})
		if err := sb.Usable(); err != nil {
			log.WithError(err).Error("agents cannot start: every run will fail until the sandbox is usable")
		}
		launcher = &pipelines.SandboxLauncher{Sandbox: sb, Binary: aw.binary, Dir: dir, Logger: log.WithField("component", "agent")}
	}
	sum := sha256.Sum256([]byte(data))
	return pipelines.NewAgentExecutor(pipelines.AgentConfig{
		Launcher:       launcher,
		Instance:       "refline-" + hex.EncodeToString(sum[:4]),
		Server:         aw.server,
		HostKey:        strings.TrimSpace(string(gossh.MarshalAuthorizedKey(aw.hostKey.PublicKey()))),
		ConnectTimeout: f.agent.connectTimeout,
		MaxWorkspace:   f.jobLimits.Disk,
		Logger:         log.WithField("component", "agent"),
	}), nil
}

// agentShutdownMargin is how much longer than --grace the SSH server keeps
// agent sessions at shutdown: enough for the runner to cancel their stages
// and close them itself.
const agentShutdownMargin = 20 * time.Second

// agentRuns is the executor's run-principal side for the SSH server, or
// nil when runs do not go through agents.
func agentRuns(e pipelines.Executor) gitserver.AgentRuns {
	if a, ok := e.(*pipelines.AgentExecutor); ok {
		return a
	}
	return nil
}
