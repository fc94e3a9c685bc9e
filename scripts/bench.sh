#!/usr/bin/env bash
# scripts/bench.sh — `make bench`.
#
# Measures refline against what a team would otherwise use, each section in
# the same run, on 127.0.0.1 only, and rewrites that section of
# docs/BENCHMARKS.md (other sections are left alone):
#
#   transport    ls-remote, clone, push and incremental fetch of a generated
#                ~30 MB repository against OpenSSH sshd + git-shell, with the
#                server side's peak RSS and CPU time
#   pipelines    push → first stage process started (p50, p99), against a
#                git-shell post-receive hook; push overhead of pipeline files
#   deploys      deploy ref moved (ssh … deploy, git push) → deploy started
#   artifacts    recording a signed 100 MB artifact against git add + commit,
#                and end to end through a pipeline
#   concurrency  50 concurrent clones and 20 concurrent pushes against
#                OpenSSH + git-shell: failures, wall time, peak RSS
#   sandbox      what the sandbox executor adds to a stage against the
#                local one, alternating in one run (needs bwrap)
#   agent        push → first stage started through the agent executor
#                (local launcher, the stand-in for a Kubernetes Job) against
#                the sandbox executor, two servers, alternating (needs bwrap)
#   manyrefs     push --mirror, clone --mirror, fetch and ls-remote of the
#                generated repository with 2,000+ branches and tags added,
#                against OpenSSH + git-shell
#   hostile      ssh whoami, clone and push by a legitimate user (median,
#                p99), refline's RSS and open files: idle, then while the
#                benchmark holds 10,000 silent connections and floods env
#                requests
#   webhooks     push → run.finished delivered to a loopback receiver (p50,
#                p90); a push's wall time with 5 hooks on a receiver that
#                answers after 5 s against none, alternating
#
# The Go side of it is cmd/refline-bench. Needs root (it creates a git-shell
# user and runs a private sshd), Go and git; installs openssh-server/-client
# with apt-get when missing. Everything it starts or creates is removed on
# exit, failure included.
#
# Environment:
#   BENCH_ONLY       sections to run, comma-separated (default: all of the above)
#   BENCH_RUNS       transport, manyrefs: timed runs per operation and server (default 7; the median is reported)
#   BENCH_PUSHES     pipelines: timed pushes per contender (default 60)
#   BENCH_DEPLOYS    deploys: timed deploys per way of deploying (default 20)
#   BENCH_ART_RUNS   artifacts: timed runs per contender, and end to end (default 5)
#   BENCH_CONC_RUNS  concurrency: rounds per burst and server (default 5)
#   BENCH_STAGES     sandbox: timed stages per executor (default 300)
#   BENCH_AGENT_PUSHES  agent: timed pushes per executor (default 30)
#   BENCH_HOSTILE_RUNS  hostile: timed runs of each operation per phase (default 30)
#   BENCH_HOSTILE_CONNS hostile: silent connections (default 10000)
#   BENCH_WEBHOOK_PUSHES webhooks: timed pushes for push → run.finished delivered (default 40)
#   BENCH_WEBHOOK_PAIRS  webhooks: timed pushes per repository, 5 slow hooks and none (default 40)
#   BENCH_SSHD_MAX_STARTUPS  sshd's MaxStartups (default 100:30:200; see below)
#   BENCH_EXECUTOR   the --executor of the server the job sections drive
#                    (default sandbox: the builds fetch their files and send
#                    their timestamps over loopback with network: true, the
#                    deploys write theirs into a --deploy-path)
#   BENCH_USER       the git-shell account (default refline-bench)
#   BENCH_KEEP       set to 1 to keep the scratch directory for inspection
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
SECTIONS=transport,pipelines,deploys,artifacts,concurrency,sandbox,agent,manyrefs,hostile,webhooks
ONLY=${BENCH_ONLY:-$SECTIONS}
RUNS=${BENCH_RUNS:-7}
PUSHES=${BENCH_PUSHES:-60}
DEPLOYS=${BENCH_DEPLOYS:-20}
ART_RUNS=${BENCH_ART_RUNS:-5}
CONC_RUNS=${BENCH_CONC_RUNS:-5}
STAGES=${BENCH_STAGES:-300}
AGENT_PUSHES=${BENCH_AGENT_PUSHES:-30}
HOSTILE_RUNS=${BENCH_HOSTILE_RUNS:-30}
HOSTILE_CONNS=${BENCH_HOSTILE_CONNS:-10000}
WEBHOOK_PUSHES=${BENCH_WEBHOOK_PUSHES:-40}
WEBHOOK_PAIRS=${BENCH_WEBHOOK_PAIRS:-40}
BENCH_USER=${BENCH_USER:-refline-bench}
DOC=$ROOT/docs/BENCHMARKS.md
GIT_SHELL=/usr/bin/git-shell
SSHD=/usr/sbin/sshd

# The command line recorded in the report, with the settings that change it.
if [ -n "${MAKELEVEL:-}" ]; then
	COMMAND="make bench"
else
	COMMAND="./scripts/bench.sh${*:+ $*}"
fi
for v in BENCH_AGENT_PUSHES BENCH_WEBHOOK_PAIRS BENCH_WEBHOOK_PUSHES BENCH_HOSTILE_CONNS BENCH_HOSTILE_RUNS BENCH_SSHD_MAX_STARTUPS BENCH_EXECUTOR BENCH_STAGES BENCH_CONC_RUNS BENCH_ART_RUNS BENCH_DEPLOYS BENCH_PUSHES BENCH_RUNS BENCH_ONLY; do
	[ -n "${!v:-}" ] && COMMAND="$v=${!v} $COMMAND"
done

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

for v in RUNS PUSHES DEPLOYS ART_RUNS CONC_RUNS STAGES AGENT_PUSHES HOSTILE_RUNS HOSTILE_CONNS WEBHOOK_PUSHES WEBHOOK_PAIRS; do
	case ${!v} in '' | *[!0-9]* | 0) die "BENCH_$v must be a positive number, not '${!v}'" ;; esac
done
IFS=, read -ra only <<<"$ONLY"
for s in "${only[@]}"; do
	case ",$SECTIONS," in *",$s,"*) ;; *) die "BENCH_ONLY: unknown section '$s' (sections: $SECTIONS)" ;; esac
done
want() { case ",$ONLY," in *",$1,"*) return 0 ;; esac; return 1; }
# The git-shell baseline serves transport, concurrency and the pipelines'
# post-receive hook; the generated repository serves transport and
# concurrency.
NEED_SSHD= NEED_REPO=
if want transport || want concurrency || want manyrefs; then NEED_SSHD=1 NEED_REPO=1; fi
if want pipelines; then NEED_SSHD=1; fi

[ "$(id -u)" = 0 ] || die "run as root: it creates the '$BENCH_USER' user and runs a private sshd"
command -v go >/dev/null || die "Go is needed (see go.mod for the version)"

# --- cleanup -----------------------------------------------------------------
WORK=
STEP_PID=
REFLINE_PID=
SSHD_PID=
CREATED_USER=
CREATED_PRIVSEP=
CREATED_POLICY=

stop_pid() { # pid: SIGTERM, up to 5 s, then SIGKILL
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$?
	set +e
	[ -n "$CREATED_POLICY" ] && rm -f /usr/sbin/policy-rc.d
	# timeout passes the signal on to its whole process group: the
	# benchmark tool and the git and ssh clients it runs.
	[ -n "$STEP_PID" ] && stop_pid "$STEP_PID"
	[ -n "$SSHD_PID" ] && stop_pid "$SSHD_PID"
	[ -n "$REFLINE_PID" ] && stop_pid "$REFLINE_PID"
	if [ -n "$CREATED_USER" ]; then
		# sshd's per-connection processes exit on their own once their
		# client is gone; give the last ones a moment.
		for _ in $(seq 50); do
			[ -z "$(ps -o pid= -u "$BENCH_USER" 2>/dev/null)" ] && break
			sleep 0.1
		done
		userdel "$BENCH_USER" 2>/dev/null || log "could not remove user $BENCH_USER"
	fi
	[ -n "$CREATED_PRIVSEP" ] && rmdir /run/sshd 2>/dev/null
	if [ -n "$WORK" ]; then
		if [ "${BENCH_KEEP:-}" = 1 ]; then
			log "kept $WORK"
		else
			rm -rf "$WORK"
		fi
	fi
	[ "$rc" = 0 ] || log "failed (exit $rc)"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# step runs a long step under a time limit, in the background so that a
# signal to this script runs the cleanup at once (bash runs traps only
# between foreground commands, but interrupts wait).
step() { # limit command...
	local limit=$1 rc=0
	shift
	timeout "$limit" "$@" &
	STEP_PID=$!
	wait "$STEP_PID" || rc=$?
	STEP_PID=
	[ "$rc" != 124 ] || log "timed out after $limit: $*"
	return "$rc"
}

# --- packages ----------------------------------------------------------------
need=()
command -v git >/dev/null && [ -x "$GIT_SHELL" ] || need+=(git)
[ -x "$SSHD" ] || need+=(openssh-server)
command -v ssh >/dev/null && command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v useradd >/dev/null || need+=(passwd)
command -v bwrap >/dev/null || need+=(bubblewrap)
if [ ${#need[@]} -gt 0 ]; then
	log "installing ${need[*]}"
	# Keep the package's own sshd from starting on 0.0.0.0:22 (the usual
	# policy-rc.d of containers); only ours runs, and only on loopback.
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		CREATED_POLICY=1
	fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	if [ -n "$CREATED_POLICY" ]; then
		rm -f /usr/sbin/policy-rc.d
		CREATED_POLICY=
	fi
fi

# --- scratch space, binaries, repository ------------------------------------
WORK=$(mktemp -d /tmp/refline-bench.XXXXXX)
chmod 711 "$WORK" # the git-shell user must reach its home and sshd files below
mkdir -p "$WORK/bin" "$WORK/client" "$WORK/sshd" "$WORK/home"

# Client-side git sees only this configuration, whatever the machine has.
cat >"$WORK/gitconfig" <<EOF
[user]
	name = refline bench
	email = bench@localhost
[init]
	defaultBranch = master
[gc]
	auto = 0
[maintenance]
	auto = false
[protocol]
	version = 2
EOF
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=$WORK/gitconfig

log "building refline and refline-bench"
step 10m go build -o "$WORK/bin/refline" ./cmd/refline
step 10m go build -o "$WORK/bin/refline-hook" ./cmd/refline-hook # the hook relay, next to refline
step 10m go build -o "$WORK/bin/refline-bench" ./cmd/refline-bench
BENCH=$WORK/bin/refline-bench

if [ -n "$NEED_REPO" ]; then
	log "generating the repository"
	t0=$SECONDS
	step 5m "$BENCH" genrepo -out "$WORK/src.git"
	log "generated in $((SECONDS - t0)) s"
fi

KEY=$WORK/client/id_ed25519
ssh-keygen -q -t ed25519 -N '' -C refline-bench-client -f "$KEY"
export GIT_SSH_COMMAND="ssh -F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes -o BatchMode=yes -o LogLevel=ERROR -i $KEY"

wait_for() { # seconds description command...: poll until the command succeeds
	local secs=$1 what=$2 i
	shift 2
	for i in $(seq $((secs * 10))); do
		"$@" && return 0
		sleep 0.1
	done
	die "timed out waiting for $what"
}

# --- refline -----------------------------------------------------------------
DATA=$WORK/refline-data
# --webhook-allow-private: the webhooks section's receivers are on
# loopback; no other section adds a hook.
"$WORK/bin/refline" serve --data "$DATA" --ssh-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
	--executor "${BENCH_EXECUTOR:-sandbox}" --deploy-path "$WORK/client/deploy-stamps" \
	--webhook-allow-private --admin-key "$KEY.pub" >"$WORK/refline.log" 2>&1 &
REFLINE_PID=$!
refline_ready() {
	kill -0 "$REFLINE_PID" 2>/dev/null || die "refline exited: $(tail -5 "$WORK/refline.log")"
	[ -s "$DATA/run/ssh.addr" ]
}
wait_for 30 "refline to listen" refline_ready
REFLINE_ADDR=$(cat "$DATA/run/ssh.addr")
case $REFLINE_ADDR in 127.0.0.1:*) ;; *) die "refline listens on $REFLINE_ADDR, not loopback" ;; esac
log "refline (pid $REFLINE_PID) on $REFLINE_ADDR"

# --- OpenSSH + git-shell -----------------------------------------------------
# sshd's default MaxStartups (10:30:100) refuses new connections at random
# once 10 are unauthenticated, which a burst of 50 clones reaches: the
# concurrency section would then compare refline's 50 clones with fewer.
# An operator expecting bursts raises it, so the benchmark does;
# BENCH_SSHD_MAX_STARTUPS=10:30:100 shows the default (the sequential
# sections never have more than one connection open).
SSHD_MAX_STARTUPS=${BENCH_SSHD_MAX_STARTUPS:-100:30:200}
OPENSSH_URL=
if [ -n "$NEED_SSHD" ]; then
	if id "$BENCH_USER" >/dev/null 2>&1; then
		shell=$(getent passwd "$BENCH_USER" | cut -d: -f7)
		[ "$shell" = "$GIT_SHELL" ] || die "user $BENCH_USER exists with shell $shell; set BENCH_USER to another name"
		# A leftover of an interrupted run: point it at this run's home.
		usermod -d "$WORK/home" "$BENCH_USER"
	else
		useradd --system --user-group --no-create-home --home-dir "$WORK/home" --shell "$GIT_SHELL" "$BENCH_USER"
		CREATED_USER=1
		# useradd leaves the password "!" (locked), and sshd without PAM
		# refuses locked accounts even for key logins; "*" is no password.
		usermod -p '*' "$BENCH_USER"
	fi
	chown "$BENCH_USER:" "$WORK/home"

	printf 'restrict %s\n' "$(cat "$KEY.pub")" >"$WORK/sshd/authorized_keys"
	chmod 755 "$WORK/sshd"
	chmod 644 "$WORK/sshd/authorized_keys"
	ssh-keygen -q -t ed25519 -N '' -C refline-bench-sshd -f "$WORK/sshd/host_ed25519"
	if [ ! -d /run/sshd ]; then
		mkdir -m 755 /run/sshd # sshd's privilege separation directory
		CREATED_PRIVSEP=1
	fi

	# Some containers ship a /dev/null that only root may write, and git
	# run by the git-shell user needs to: sshd then runs in a mount
	# namespace of its own with a proper null device bound over it (the
	# machine's /dev/null is left as it is).
	SSHD_WRAP=()
	if [ "$(stat -c %a /dev/null)" != 666 ]; then
		mknod -m 666 "$WORK/sshd/null" c 1 3
		SSHD_WRAP=(unshare --mount sh -c 'mount --bind "$0" /dev/null && exec "$@"' "$WORK/sshd/null")
	fi
	start_sshd() {
		SSH_PORT=$("$BENCH" freeport)
		cat >"$WORK/sshd/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $SSH_PORT
HostKey $WORK/sshd/host_ed25519
PidFile $WORK/sshd/sshd.pid
AuthorizedKeysFile $WORK/sshd/authorized_keys
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers $BENCH_USER
AcceptEnv GIT_PROTOCOL
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
AllowTcpForwarding no
MaxStartups $SSHD_MAX_STARTUPS
LogLevel ERROR
EOF
		"$SSHD" -t -f "$WORK/sshd/sshd_config"
		"${SSHD_WRAP[@]}" "$SSHD" -D -f "$WORK/sshd/sshd_config" -E "$WORK/sshd/sshd.log" &
		SSHD_PID=$!
	}
	sshd_ready() {
		kill -0 "$SSHD_PID" 2>/dev/null || return 2
		(exec 3<>"/dev/tcp/127.0.0.1/$SSH_PORT") 2>/dev/null
	}
	for try in 1 2 3; do # the free port may be taken again before sshd binds it
		start_sshd
		for i in $(seq 100); do
			rc=0
			sshd_ready || rc=$?
			[ "$rc" = 1 ] || break
			sleep 0.1
		done
		[ "$rc" = 0 ] && break
		stop_pid "$SSHD_PID"
		SSHD_PID=
		[ "$try" = 3 ] && die "sshd did not start: $(tail -5 "$WORK/sshd/sshd.log")"
	done
	log "sshd (pid $SSHD_PID) on 127.0.0.1:$SSH_PORT"
fi

# --- the repository on both servers -----------------------------------------
REFLINE_URL=ssh://git@$REFLINE_ADDR
[ -n "$NEED_SSHD" ] && OPENSSH_URL=ssh://$BENCH_USER@127.0.0.1:$SSH_PORT
if [ -n "$NEED_REPO" ]; then
	git init -q --bare "$WORK/home/medium.git"
	chown -R "$BENCH_USER:" "$WORK/home/medium.git"
	for url in "$REFLINE_URL/medium.git" "$OPENSSH_URL$WORK/home/medium.git"; do
		git -C "$WORK/src.git" push -q "$url" 'refs/heads/*:refs/heads/*' 'refs/tags/*:refs/tags/*'
		# Both must speak protocol v2, or the comparison is not like for like.
		trace=$(GIT_TRACE_PACKET=1 git ls-remote "$url" 2>&1 >/dev/null)
		case $trace in *"< version 2"*) ;; *) die "$url does not speak protocol v2" ;; esac
	done
fi

# --- measure -----------------------------------------------------------------
mkdir -p "$(dirname "$DOC")"
SECTION_START=$SECONDS
write_section() { # name heading
	"$BENCH" section -file "$DOC" -heading "$2" -body "$WORK/$1.md"
	log "wrote the ${2#\#\# } section of ${DOC#"$ROOT"/} ($((SECONDS - SECTION_START)) s; $SECONDS s since the start)"
	SECTION_START=$SECONDS
}
SERVERS=(-refline-url "$REFLINE_URL/" -refline-repos "$DATA/repos" -refline-pid "$REFLINE_PID"
	-openssh-url "$OPENSSH_URL" -openssh-home "$WORK/home" -openssh-user "$BENCH_USER" -sshd-pid "${SSHD_PID:-0}")
REFLINE=(-refline-url "$REFLINE_URL/" -refline-data "$DATA" -refline-log "$WORK/refline.log" -refline-bin "$WORK/bin/refline")

if want transport; then
	log "transport: $RUNS runs per operation and server, plus a warm-up"
	step 20m "$BENCH" transport -runs "$RUNS" -src "$WORK/src.git" -work "$WORK/client" -command "$COMMAND" \
		"${SERVERS[@]}" -out "$WORK/transport.md"
	write_section transport "## Transport"
fi

if want pipelines; then
	log "pipelines: $PUSHES pushes per contender, plus a warm-up"
	step 20m "$BENCH" pipelines -pushes "$PUSHES" -work "$WORK/client" -command "$COMMAND" "${REFLINE[@]}" \
		-openssh-url "$OPENSSH_URL" -openssh-home "$WORK/home" -openssh-user "$BENCH_USER" -out "$WORK/pipelines.md" \
		-executor "${BENCH_EXECUTOR:-sandbox}"
	write_section pipelines "## Pipelines"
fi

if want deploys; then
	log "deploys: $DEPLOYS deploys per way, plus a warm-up"
	step 20m "$BENCH" deploys -deploys "$DEPLOYS" -work "$WORK/client" -command "$COMMAND" "${REFLINE[@]}" \
		-out "$WORK/deploys.md"
	write_section deploys "## Deploys"
fi

if want artifacts; then
	log "artifacts: $ART_RUNS runs per contender and end to end, plus a warm-up"
	step 20m "$BENCH" artifacts -runs "$ART_RUNS" -e2e-runs "$ART_RUNS" -work "$WORK/client" -command "$COMMAND" \
		"${REFLINE[@]}" -out "$WORK/artifacts.md"
	write_section artifacts "## Artifacts"
fi

if [ "$SSHD_MAX_STARTUPS" = 10:30:100 ]; then
	SSHD_NOTE="runs with OpenSSH's default \`MaxStartups 10:30:100\`, which refuses new connections at random once 10 are unauthenticated."
else
	SSHD_NOTE="runs with \`MaxStartups $SSHD_MAX_STARTUPS\`, so that it admits the whole burst, as an operator expecting bursts would set it; the default, 10:30:100, refuses new connections at random once 10 are unauthenticated, and fails some of the burst's clones and pushes (run with \`BENCH_SSHD_MAX_STARTUPS=10:30:100\` to see it)."
fi
if want concurrency; then
	log "concurrency: $CONC_RUNS rounds per burst and server"
	step 30m "$BENCH" concurrency -runs "$CONC_RUNS" -src "$WORK/src.git" -work "$WORK/client" -command "$COMMAND" \
		"${SERVERS[@]}" -sshd-note "$SSHD_NOTE" \
		-out "$WORK/concurrency.md"
	write_section concurrency "## Concurrency"
fi

if want sandbox; then
	log "sandbox: $STAGES stages per executor, alternating, plus a warm-up"
	step 20m "$BENCH" sandbox -stages "$STAGES" -work "$WORK" -command "$COMMAND" -out "$WORK/sandbox.md"
	write_section sandbox "## Sandbox"
fi

if want agent; then
	log "agent: $AGENT_PUSHES pushes per executor, alternating, plus a warm-up"
	step 20m "$BENCH" agent -pushes "$AGENT_PUSHES" -refline-bin "$WORK/bin/refline" -admin-key "$KEY.pub" \
		-work "$WORK/client" -command "$COMMAND" -out "$WORK/agent.md"
	write_section agent "## Agent"
fi

if want manyrefs; then
	log "manyrefs: $RUNS runs per operation and server, plus a warm-up"
	step 30m "$BENCH" manyrefs -runs "$RUNS" -src "$WORK/src.git" -work "$WORK/client" -command "$COMMAND" \
		"${SERVERS[@]}" -out "$WORK/manyrefs.md"
	write_section manyrefs "## Many refs"
fi

if want hostile; then
	log "hostile: $HOSTILE_RUNS runs of each operation, idle and under $HOSTILE_CONNS silent connections and an env flood"
	# The attacker's connections are this machine's too: the benchmark
	# raises its own open file limit to the hard one, which must hold them.
	step 20m "$BENCH" hostile -runs "$HOSTILE_RUNS" -conns "$HOSTILE_CONNS" -work "$WORK/client" -command "$COMMAND" \
		"${REFLINE[@]}" -refline-pid "$REFLINE_PID" -out "$WORK/hostile.md"
	write_section hostile "## Hostile load"
fi

if want webhooks; then
	log "webhooks: $WEBHOOK_PUSHES pushes to a fast receiver, then $WEBHOOK_PAIRS pairs with 5 slow hooks and none, plus warm-ups"
	step 20m "$BENCH" webhooks -pushes "$WEBHOOK_PUSHES" -pairs "$WEBHOOK_PAIRS" -work "$WORK/client" -command "$COMMAND" \
		"${REFLINE[@]}" -out "$WORK/webhooks.md"
	write_section webhooks "## Webhooks"
fi
