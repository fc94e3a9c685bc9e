package main

import (
	"flag"
	"fmt"
	"syscall"

	"github.com/sirupsen/logrus"

	"github.com/refline/refline/gitserver"
	"github.com/refline/refline/pipelines/spec"
)

// limitFlags are the serve flags that bound what clients and runs may use
// (README "Limits").
type limitFlags struct {
	ssh          gitserver.Limits
	pushSize     sizeFlag
	jobsPerRepo  int
	queuedRuns   int
	logSize      sizeFlag
	artifactSize sizeFlag
}

func (l *limitFlags) register(fs *flag.FlagSet) {
	d := gitserver.DefaultLimits
	l.pushSize = sizeFlag(d.MaxPushSize)
	l.logSize = 32 << 20
	l.artifactSize = 512 << 20
	fs.IntVar(&l.ssh.MaxConns, "max-conns", d.MaxConns, "SSH connections at once")
	fs.IntVar(&l.ssh.MaxConnsPerAddr, "max-conns-per-addr", d.MaxConnsPerAddr, "SSH connections at once from one address (IPv6: one /64)")
	fs.IntVar(&l.ssh.MaxUnauth, "max-unauth-conns", d.MaxUnauth, "SSH connections not authenticated yet; a new one replaces the oldest")
	fs.DurationVar(&l.ssh.AuthTimeout, "auth-timeout", d.AuthTimeout, "time a connection has to authenticate")
	fs.DurationVar(&l.ssh.IdleTimeout, "idle-timeout", d.IdleTimeout, "an SSH connection with no traffic this long is closed")
	fs.IntVar(&l.ssh.MaxSessions, "max-sessions", 0, "SSH sessions open at once over all users (default: twice --max-conns, lowered to fit the open file limit)")
	fs.IntVar(&l.ssh.MaxSessionsPerConn, "max-sessions-per-conn", d.MaxSessionsPerConn, "SSH sessions open at once on one connection")
	fs.IntVar(&l.ssh.MaxSessionsPerUser, "max-sessions-per-user", d.MaxSessionsPerUser, "SSH sessions open at once by one user")
	fs.Var(&l.pushSize, "max-push-size", "largest pack a push may send (e.g. 512MiB)")
	fs.IntVar(&l.jobsPerRepo, "max-jobs-per-repo", 0, "job slots one repository may hold (default: --max-jobs minus one from 3 slots up, else --max-jobs)")
	fs.IntVar(&l.queuedRuns, "max-queued-runs", 32, "queued runs per repository; a push past it is refused")
	fs.Var(&l.logSize, "max-log-size", "largest log of one run, all stages (e.g. 32MiB)")
	fs.Var(&l.artifactSize, "max-artifact-size", "largest artifact (its files in all, e.g. 512MiB)")
}

func (l *limitFlags) check() error {
	for name, v := range map[string]int{"max-conns": l.ssh.MaxConns, "max-conns-per-addr": l.ssh.MaxConnsPerAddr,
		"max-unauth-conns": l.ssh.MaxUnauth, "max-sessions-per-conn": l.ssh.MaxSessionsPerConn,
		"max-sessions-per-user": l.ssh.MaxSessionsPerUser, "max-queued-runs": l.queuedRuns} {
		if v < 1 {
			return fmt.Errorf("--%s must be at least 1", name)
		}
	}
	if l.ssh.AuthTimeout <= 0 || l.ssh.IdleTimeout <= 0 {
		return fmt.Errorf("--auth-timeout and --idle-timeout must be positive")
	}
	if l.jobsPerRepo < 0 || l.ssh.MaxSessions < 0 {
		return fmt.Errorf("--max-jobs-per-repo and --max-sessions must not be negative")
	}
	l.ssh.MaxPushSize = int64(l.pushSize)
	return nil
}

// slotsPerRepo is --max-jobs-per-repo, by default one slot fewer than
// --max-jobs so that another repository always finds one free; with one
// or two slots that would halve what a single repository gets, and the
// slot given up between stages is what keeps the others going.
func (l *limitFlags) slotsPerRepo(maxJobs int) int {
	if l.jobsPerRepo > 0 {
		return min(l.jobsPerRepo, maxJobs)
	}
	if maxJobs < 3 {
		return maxJobs
	}
	return maxJobs - 1
}

// fitFiles keeps the connection limit below the file descriptors the
// process may open, leaving room for git, logs, repositories and the HTTP
// endpoint: a full SSH side must not starve /healthz.
//
// Sessions over all connections are bounded the same way (each may run a
// git process with its pipes): by default twice --max-conns, so that every
// connection can run one and clients that multiplex (ControlMaster) a few
// more, and never more than the file limit holds.
func (l *limitFlags) fitFiles(nofile uint64, log *logrus.Entry) {
	const reserve = 1024
	if l.ssh.MaxSessions <= 0 {
		l.ssh.MaxSessions = 2 * l.ssh.MaxConns
	}
	if nofile > 0 {
		room := (int64(nofile) - reserve) / 2 // a connection, and a git pipe or two
		if room < 16 {
			room = 16
		}
		if int64(l.ssh.MaxConns) > room {
			log.WithFields(logrus.Fields{"max_conns": room, "nofile": nofile}).Warn("--max-conns lowered to fit the open file limit (raise it with ulimit -n)")
			l.ssh.MaxConns = int(room)
		}
		if int64(l.ssh.MaxSessions) > room {
			log.WithFields(logrus.Fields{"max_sessions": room, "nofile": nofile}).Warn("--max-sessions lowered to fit the open file limit (raise it with ulimit -n)")
			l.ssh.MaxSessions = int(room)
		}
	}
	if l.ssh.MaxConnsPerAddr > l.ssh.MaxConns {
		l.ssh.MaxConnsPerAddr = l.ssh.MaxConns
	}
}

// raiseFileLimit raises the soft RLIMIT_NOFILE to the hard one and returns
// it (0 if unknown).
func raiseFileLimit(log *logrus.Entry) uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	if rl.Cur < rl.Max {
		old := rl.Cur
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			log.WithError(err).Warn("could not raise the open file limit")
			return old
		}
	}
	return rl.Cur
}

// sizeFlag is a byte count as spec.ParseSize reads it: 1048576, 512KiB,
// 100MiB, 2GiB (also K, M, G, KB, MB, GB, all powers of 1024).
type sizeFlag int64

func (s *sizeFlag) String() string { return spec.FormatSize(int64(*s)) }

func (s *sizeFlag) Set(v string) error {
	n, err := spec.ParseSize(v)
	if err != nil {
		return err
	}
	*s = sizeFlag(n)
	return nil
}
