package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"

	"github.com/refline/refline/access"
	"github.com/refline/refline/atomicfile"
	"github.com/refline/refline/dashboard"
	"github.com/refline/refline/dashboard/auth"
	"github.com/refline/refline/dashboard/view"
	"github.com/refline/refline/gitcmd"
	"github.com/refline/refline/gitserver"
	"github.com/refline/refline/hooks"
	"github.com/refline/refline/keyring"
	"github.com/refline/refline/pipelines"
	"github.com/refline/refline/pipelines/spec"
	"github.com/refline/refline/refs"
	"github.com/refline/refline/webhook"
)

type serveFlags struct {
	data       string
	sshListen  string
	httpListen string
	httpURL    string
	loginTTL   time.Duration
	adminKeys  multiFlag
	maxJobs    int
	logFormat  string
	logLevel   string
	grace      time.Duration
	// Job isolation (SPEC §9).
	executor            string
	deployPaths         multiFlag
	jobMemory           string
	jobPids             int
	jobDisk             string
	webhookAllowPrivate bool
	jobLimits           pipelines.Limits
	limits              limitFlags
	agent               agentFlags
	kube                kubeFlags
}

// agentFlags configure --executor agent (a development and testing mode:
// the agent executor with a launcher that needs no cluster).
type agentFlags struct {
	launcher       string
	server         string
	connectTimeout time.Duration
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ", ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// parseServeFlags reads flags, each also settable as REFLINE_<FLAG>
// (SPEC §1); a flag on the command line wins over the environment.
func parseServeFlags(args []string, stderr io.Writer) (*serveFlags, error) {
	f := &serveFlags{}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.data, "data", "./refline-data", "all state: repos, keys, run records, work dirs")
	fs.StringVar(&f.sshListen, "ssh-listen", ":2222", "SSH git + command endpoint")
	fs.StringVar(&f.httpListen, "http-listen", "127.0.0.1:8080", "the dashboard, /healthz and /metrics")
	fs.DurationVar(&f.loginTTL, "login-ttl", auth.TicketTTL, "how long a login URL from `ssh HOST login` works")
	fs.StringVar(&f.httpURL, "http-url", "", "the dashboard's address as users reach it, for the URLs `login` prints (default: http:// and --http-listen's address, with this host's name for an unspecified IP)")
	fs.Var(&f.adminKeys, "admin-key", "an OpenSSH public key (file or literal) given admin rights; repeatable")
	fs.IntVar(&f.maxJobs, "max-jobs", runtime.NumCPU(), "jobs that run at once; the rest queue")
	fs.StringVar(&f.logFormat, "log-format", "text", "text or json")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.DurationVar(&f.grace, "grace", 30*time.Second, "how long running jobs and sessions may finish on shutdown")
	fs.StringVar(&f.executor, "executor", "sandbox", "sandbox (each job isolated with bubblewrap) or local (no isolation); agent runs each run through `refline agent` (development and testing); kubernetes runs each run as a Job (SPEC §12)")
	fs.StringVar(&f.agent.launcher, "agent-launcher", "sandbox", "with --executor agent: where agents run, local (processes) or sandbox (bubblewrap)")
	fs.StringVar(&f.agent.server, "agent-server", "", "host:port agents dial to reach this server's SSH (default: loopback and the SSH port)")
	fs.DurationVar(&f.agent.connectTimeout, "agent-connect-timeout", 2*time.Minute, "how long a launched agent has to connect")
	f.kube.register(fs)
	fs.Var(&f.deployPaths, "deploy-path", "a host directory deploy jobs see read-write at the same path; repeatable")
	fs.StringVar(&f.jobMemory, "job-memory", "", "each job's memory: the default and the cap for limits: memory (e.g. 2G; empty: none)")
	fs.IntVar(&f.jobPids, "job-pids", 4096, "each job's processes: the default and the cap for limits: pids (0: none)")
	fs.StringVar(&f.jobDisk, "job-disk", "", "each job's largest file and /tmp: the default and the cap for limits: disk (e.g. 10G; empty: none)")
	fs.BoolVar(&f.webhookAllowPrivate, "webhook-allow-private", false, "let webhooks reach private and loopback addresses")
	f.limits.register(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
	var envErr error
	fs.VisitAll(func(fl *flag.Flag) {
		key := "REFLINE_" + strings.ToUpper(strings.ReplaceAll(fl.Name, "-", "_"))
		v, ok := os.LookupEnv(key)
		if !ok || given[fl.Name] {
			return
		}
		vals := []string{v}
		if fl.Name == "admin-key" {
			vals = strings.Split(strings.TrimSpace(v), "\n")
		}
		if fl.Name == "deploy-path" {
			vals = filepath.SplitList(v)
		}
		for _, val := range vals {
			if err := fs.Set(fl.Name, val); err != nil && envErr == nil {
				envErr = fmt.Errorf("%s=%q: %w", key, v, err)
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	if f.logFormat != "text" && f.logFormat != "json" {
		return nil, fmt.Errorf("--log-format must be text or json, not %q", f.logFormat)
	}
	if f.loginTTL <= 0 {
		return nil, fmt.Errorf("--login-ttl must be positive")
	}
	if f.maxJobs < 1 {
		return nil, fmt.Errorf("--max-jobs must be at least 1")
	}
	switch f.executor {
	case "sandbox", "local":
	case "agent":
		if f.agent.launcher != "local" && f.agent.launcher != "sandbox" {
			return nil, fmt.Errorf("--agent-launcher must be local or sandbox, not %q", f.agent.launcher)
		}
	case "kubernetes":
		if err := f.kube.check(); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("--executor must be sandbox, local, agent or kubernetes, not %q", f.executor)
	}
	for i, p := range f.deployPaths {
		if !filepath.IsAbs(p) {
			abs, err := filepath.Abs(p)
			if err != nil {
				return nil, fmt.Errorf("--deploy-path %s: %w", p, err)
			}
			f.deployPaths[i] = abs
		}
		f.deployPaths[i] = filepath.Clean(f.deployPaths[i])
		if f.deployPaths[i] == "/" {
			return nil, fmt.Errorf("--deploy-path / would give deploys the whole host; name the directories they write to")
		}
	}
	for _, l := range []struct {
		flag, v string
		dst     *int64
	}{{"job-memory", f.jobMemory, &f.jobLimits.Memory}, {"job-disk", f.jobDisk, &f.jobLimits.Disk}} {
		if l.v == "" || l.v == "0" {
			continue
		}
		n, err := spec.ParseSize(l.v)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", l.flag, err)
		}
		*l.dst = n
	}
	if f.jobPids < 0 {
		return nil, fmt.Errorf("--job-pids must be 0 (no limit) or more")
	}
	f.jobLimits.Pids = f.jobPids
	if err := f.limits.check(); err != nil {
		return nil, err
	}
	return f, nil
}

func newLogger(f *serveFlags, out io.Writer) (*logrus.Logger, error) {
	l := logrus.New()
	l.SetOutput(out)
	if f.logFormat == "json" {
		l.SetFormatter(&logrus.JSONFormatter{})
	} else {
		l.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, DisableColors: true})
	}
	lvl, err := logrus.ParseLevel(f.logLevel)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	l.SetLevel(lvl)
	return l, nil
}

func serve(ctx context.Context, args []string, stderr io.Writer) int {
	f, err := parseServeFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "refline serve: %v\n", err)
		return 2
	}
	logger, err := newLogger(f, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "refline serve: %v\n", err)
		return 2
	}
	log := logrus.NewEntry(logger)
	if err := runServer(ctx, f, log); err != nil {
		log.WithError(err).Error("refline stopped")
		return 1
	}
	log.Info("refline stopped")
	return 0
}

func runServer(ctx context.Context, f *serveFlags, log *logrus.Entry) error {
	data, err := filepath.Abs(f.data)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	self, err := selfPath()
	if err != nil {
		return err
	}
	if _, err := exec.LookPath(gitcmd.Bin); err != nil {
		return fmt.Errorf("git is not installed: %w", err)
	}
	f.limits.fitFiles(raiseFileLimit(log), log)

	keys, err := keyring.Load(filepath.Join(data, "keys"))
	if err != nil {
		return err
	}
	for _, p := range keys.Created {
		log.WithField("file", p).Info("created key")
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	signer := refs.NewSigner(keys.Signing, "refline@"+host)

	users, err := access.Open(filepath.Join(data, access.FileName))
	if err != nil {
		return err
	}
	home, _ := os.UserHomeDir()
	login := ""
	if u, err := user.Current(); err == nil {
		login = u.Username
	}
	if err := access.Bootstrap(users, access.BootstrapConfig{AdminKeys: f.adminKeys, Home: home, User: login, Logger: log}); err != nil {
		return err
	}

	runDir := filepath.Join(data, "run")
	socket := filepath.Join(runDir, "hook.sock")
	hooksDir := filepath.Join(data, "hooks")
	pushHooksDir := filepath.Join(data, "hooks", "push")
	shim := hooks.Shim{Binary: self, Relay: relayPath(self), Socket: socket}
	if shim.Relay == "" {
		log.Info("no refline-hook next to the refline binary: hooks run `refline hook` (slower; make build installs both)")
	}
	if err := hooks.WriteShims(hooksDir, hooks.Names, shim); err != nil {
		return err
	}
	if err := hooks.WriteShims(pushHooksDir, hooks.PushNames, shim); err != nil {
		return err
	}
	store := &gitserver.Store{Root: filepath.Join(data, "repos"), HooksDir: hooksDir, PushHooksDir: pushHooksDir}
	if err := os.MkdirAll(store.Root, 0o755); err != nil {
		return fmt.Errorf("repos dir: %w", err)
	}
	if err := store.Reconfigure(ctx); err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	sessions := hooks.NewSessions()
	// The server's own ref writes carry a session token of their own; for
	// the refs only the server writes, the hook is skipped altogether.
	serverToken, _ := sessions.Register(hooks.Session{Source: hooks.SourceServer, User: "refline"})
	var sshAddr atomic.Value // the SSH listener's address, once it listens
	sshAddr.Store("")
	executor, err := newExecutor(f, data, log, agentWiring{binary: self, hostKey: keys.Host, server: func() string {
		if f.agent.server != "" {
			return f.agent.server
		}
		return sshAddr.Load().(string)
	}})
	if err != nil {
		return err
	}
	// The server's own writes need no reference-transaction call (the
	// server decided them): git runs them with the push hooks.
	serverUpdater := refs.Updater{Env: []string{hooks.TokenEnv + "=" + serverToken, hooks.SkipTxEnv + "=1",
		"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=core.hooksPath", "GIT_CONFIG_VALUE_0=" + pushHooksDir}}
	webhooks, err := webhook.New(webhook.Config{
		Dir:          filepath.Join(data, "webhooks"),
		AllowPrivate: f.webhookAllowPrivate,
		Logger:       log.WithField("component", "webhook"),
	})
	if err != nil {
		return err
	}
	// Open dashboard pages hear of every run and push as webhooks do.
	notices := dashboard.NewHub()
	var sshPort atomic.Value
	sshPort.Store("2222")
	logsHint := func(repo, pipeline string, n int) string {
		return fmt.Sprintf("ssh -p %s git@%s logs %s %s %d -f", sshPort.Load(), host, repo, pipeline, n)
	}
	runner, err := pipelines.New(pipelines.Config{
		Events:     fanout{webhooks, notices},
		LogsHint:   logsHint,
		DataDir:    data,
		Repos:      store,
		Executor:   executor,
		MaxJobs:    f.maxJobs,
		Signer:     signer,
		Updater:    serverUpdater,
		Committer:  object.Signature{Name: "refline", Email: "refline@" + host},
		Logger:     log.WithField("component", "pipelines"),
		Registerer: reg,
		BaseEnv:    jobBaseEnv(),

		// Every run acts for a user: what it reads across repositories
		// and where it deploys are that user's rights.
		Auth:             users,
		AgeIdentities:    keys.AgeIdentities,
		MaxJobsPerRepo:   f.limits.slotsPerRepo(f.maxJobs),
		MaxQueuedPerRepo: f.limits.queuedRuns,
		MaxLogSize:       int64(f.limits.logSize),
		MaxArtifactSize:  int64(f.limits.artifactSize),
	})
	if err != nil {
		return err
	}
	if err := runner.Start(ctx); err != nil {
		return err
	}
	hookSrv, err := hooks.Listen(hooks.Config{
		Socket:     socket,
		Repos:      store,
		Sessions:   sessions,
		Rights:     users,
		Logger:     log.WithField("component", "hooks"),
		Registerer: reg,
		Checkers: []hooks.Checker{
			hooks.PipelineChecker{},
			hooks.QueueLimit{Runner: runner},
			hooks.DeployGate{Deployer: runner.Deployer()},
			hooks.SecretsChecker{Identities: keys.AgeIdentities, Recipients: keys.AgeRecipients,
				KeysHint: func() string { return fmt.Sprintf("ssh -p %s git@%s keys", sshPort.Load(), host) }},
			// Last: only a push every checker accepted is journaled.
			hooks.PushJournal{Runner: runner},
		},
		Reactors: []hooks.Reactor{
			hooks.PipelineTrigger{Runner: runner, Branches: store, LogsHint: logsHint, Logger: log.WithField("component", "hooks")},
			hooks.DeployTrigger{Deployer: runner.Deployer(), LogsHint: logsHint, Logger: log.WithField("component", "hooks")},
		},
	})
	if err != nil {
		return err
	}
	httpLn, err := net.Listen("tcp", f.httpListen)
	if err != nil {
		return fmt.Errorf("listen http on %s: %w", f.httpListen, err)
	}
	defer httpLn.Close()
	webURL, err := dashboardURL(f.httpURL, httpLn.Addr(), host)
	if err != nil {
		return err
	}
	webAuth, err := auth.Open(filepath.Join(data, "tokens.json"))
	if err != nil {
		return err
	}
	webAuth.SetTicketTTL(f.loginTTL)
	sshSrv := gitserver.New(gitserver.Config{
		Listen:     f.sshListen,
		HostKey:    keys.Host,
		Repos:      store,
		Access:     users,
		Sessions:   sessions,
		Keys:       keyInfo{keys, signer},
		Hostname:   host,
		Logger:     log.WithField("component", "ssh"),
		Registerer: reg,
		LogsHint:   logsHint,
		ImagesDir:  filepath.Join(data, "images"),
		Webhooks:   webhooks,
		Limits:     f.limits.ssh,

		// The one runner is every part the commands use.
		PipelineLister: runner,
		RunReader:      runner,
		RunControl:     runner,
		Deploys:        runner.Deployer(),
		RepoRemover:    runner,
		Agents:         agentRuns(executor),

		// The dashboard's login URLs and API tokens (SPEC §11).
		Logins: webAuth,
		Tokens: webAuth,
		WebURL: webURL,
	})
	dash, err := dashboard.New(dashboard.Config{
		Pages: view.New(view.Config{
			Repos:      store,
			Access:     users,
			Runs:       runner,
			Deploys:    runner.Deployer(),
			SigningKey: signer.PublicKey(),
			Logger:     log.WithField("component", "view"),
		}),
		Users:     users,
		Repos:     store,
		Auth:      webAuth,
		Commands:  sshSrv,
		Notices:   notices,
		URL:       webURL,
		LoginHint: func() string { return fmt.Sprintf("ssh -p %s git@%s login", sshPort.Load(), host) },
		Logger:    log.WithField("component", "dashboard"),
	})
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Deliveries queued before a restart or a crash go out first.
	webhooks.Start(ctx)
	errc := make(chan error, 3)
	hookCtx, stopHooks := context.WithCancel(context.Background())
	defer stopHooks()
	go func() { errc <- hookSrv.Serve(hookCtx) }()

	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/", dash)
	httpSrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	httpSrv.RegisterOnShutdown(dash.Close)
	go func() {
		if err := httpSrv.Serve(gitserver.BackoffListener(httpLn, log.WithField("component", "http"))); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http: %w", err)
		}
	}()
	if err := writeAddr(runDir, "http.addr", httpLn.Addr()); err != nil {
		return err
	}

	// Agent sessions must outlive the runner's grace: the runner stops
	// their runs (recorded as interrupted) and then closes them; cut off
	// first, a run would fail for its lost agent instead.
	sshGrace := f.grace
	if agentRuns(executor) != nil {
		sshGrace += agentShutdownMargin
	}
	sshDone := make(chan error, 1)
	go func() {
		sshDone <- sshSrv.ListenAndServe(ctx, func(a net.Addr) {
			if ta, ok := a.(*net.TCPAddr); ok {
				sshPort.Store(strconv.Itoa(ta.Port))
				sshAddr.Store(net.JoinHostPort("127.0.0.1", strconv.Itoa(ta.Port)))
			}
			if err := writeAddr(runDir, "ssh.addr", a); err != nil {
				log.WithError(err).Error("write ssh.addr")
			}
			log.WithFields(logrus.Fields{"ssh": a.String(), "http": httpLn.Addr().String(), "data": data}).Info("refline serving")
			// Deploy refs moved while the server was down (or whose
			// deploy a crash interrupted) are deployed now.
			go runner.Deployer().ReconcileAll(ctx)
		}, sshGrace)
	}()

	var runErr error
	select {
	case runErr = <-sshDone:
		sshDone = nil
	case runErr = <-errc:
	case <-ctx.Done():
		log.Info("shutting down")
	}
	cancel()
	runnerDone := make(chan struct{})
	go func() { runner.Shutdown(f.grace); close(runnerDone) }()
	if sshDone != nil {
		if err := <-sshDone; err != nil && runErr == nil {
			runErr = err
		}
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	_ = httpSrv.Shutdown(sctx)
	<-runnerDone
	if c, ok := executor.(interface{ Close() }); ok {
		c.Close()
	}
	stopHooks()
	return runErr
}

// newExecutor builds the executor --executor names. The sandbox fails
// closed: without a usable bubblewrap the server starts, says so, and every
// run fails saying what to install.
func newExecutor(f *serveFlags, data string, log *logrus.Entry, aw agentWiring) (pipelines.Executor, error) {
	if f.executor == "agent" {
		return newAgentExecutor(f, data, log, aw)
	}
	if f.executor == "kubernetes" {
		return newKubeExecutor(f, data, log, aw)
	}
	if f.executor == "local" {
		log.Warn("--executor local: jobs run as the server's own user with no isolation; any pipeline can read the server's keys and take it over. Use it only on a machine where every pusher is trusted.")
		return pipelines.Local{Limits: f.jobLimits}, nil
	}
	for _, p := range f.deployPaths {
		if err := os.MkdirAll(p, 0o755); err != nil {
			return nil, fmt.Errorf("--deploy-path %s: %w", p, err)
		}
	}
	sb := pipelines.NewSandbox(pipelines.SandboxConfig{
		DataDir:     data,
		DeployPaths: f.deployPaths,
		Limits:      f.jobLimits,
		Logger:      log.WithField("component", "sandbox"),
	})
	if err := sb.Usable(); err != nil {
		log.WithError(err).Error("jobs cannot run: every run will fail until the sandbox is usable")
		return sb, nil
	}
	fields := logrus.Fields{"limits": sb.LimitsBy(), "deploy_paths": strings.Join(f.deployPaths, ",")}
	if sb.LimitsBy() == "rlimits" && os.Geteuid() == 0 && f.jobLimits.Pids > 0 {
		log.WithFields(fields).Warn("no writable cgroup hierarchy and the server runs as root: the pids limit (RLIMIT_NPROC) counts every process of the jobs' uid 65534 together, all jobs' included")
	}
	log.WithFields(fields).Info("jobs run in a sandbox")
	return sb, nil
}

// writeAddr records a listening address for tools and tests that start the
// server on port 0.
func writeAddr(dir, name string, a net.Addr) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	_, err := atomicfile.Write(filepath.Join(dir, name), []byte(a.String()+"\n"), 0o600)
	return err
}

// selfPath is how hooks call back into this binary. It keeps the name it
// was run by (not the resolved executable), so that a binary reached
// through a symlink is run the same way again.
func selfPath() (string, error) {
	p := os.Args[0]
	if !strings.Contains(p, "/") {
		lp, err := exec.LookPath(p)
		if err != nil {
			return os.Executable()
		}
		p = lp
	}
	return filepath.Abs(p)
}

// relayPath is the hook relay binary (cmd/refline-hook) installed next to
// the refline binary self, or "" when there is none.
func relayPath(self string) string {
	p := filepath.Join(filepath.Dir(self), "refline-hook")
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return p
	}
	return ""
}

// jobBaseEnv is the part of the server's environment jobs see (SPEC §5).
func jobBaseEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "LANG", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

type keyInfo struct {
	keys   *keyring.Keys
	signer *refs.Signer
}

func (k keyInfo) AgeRecipients() []string    { return k.keys.AgeRecipients() }
func (k keyInfo) AllowedSignersLine() string { return k.signer.AllowedSignersLine() }

// fanout sends the runner's events to each emitter: the webhooks, and the
// dashboard's open pages.
type fanout []pipelines.Emitter

func (f fanout) Emit(ctx context.Context, ev webhook.Event) error {
	var errs []error
	for _, e := range f {
		errs = append(errs, e.Emit(ctx, ev))
	}
	return errors.Join(errs...)
}

// dashboardURL is --http-url, or the address the HTTP listener got: an
// unspecified IP (":8080", "0.0.0.0:8080") becomes this host's name.
func dashboardURL(flagURL string, a net.Addr, host string) (string, error) {
	if flagURL != "" {
		u, err := url.Parse(flagURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "", fmt.Errorf("--http-url must be an http:// or https:// URL, not %q", flagURL)
		}
		return strings.TrimSuffix(flagURL, "/"), nil
	}
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return "http://" + a.String(), nil
	}
	h := ta.IP.String()
	if ta.IP.IsUnspecified() {
		h = host
	}
	return "http://" + net.JoinHostPort(h, strconv.Itoa(ta.Port)), nil
}
