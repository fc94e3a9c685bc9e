#!/bin/bash
# k8s-test.sh (`make test-k8s`) runs refline's Kubernetes executor against a
# real kube-apiserver (on a real etcd) and a real kube-controller-manager
# (the Job, garbage-collector, TTL and service-account controllers), with
# kube/internal/standin in place of a kubelet: there is no container runtime
# here, so pods run as bubblewrapped local processes, images ignored.
#
# It builds kube-apiserver and kube-controller-manager once (see
# k8s-build.sh; cached), needs etcd (apt-get install etcd-server), bwrap and
# openssl, and takes GOTESTFLAGS (e.g. -v) and K8S_RUN (a -run pattern).
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
NS=refline
command -v etcd >/dev/null || { echo "k8s-test: etcd is missing: apt-get install etcd-server" >&2; exit 1; }
command -v bwrap >/dev/null || { echo "k8s-test: bwrap is missing: apt-get install bubblewrap" >&2; exit 1; }
command -v openssl >/dev/null || { echo "k8s-test: openssl is missing" >&2; exit 1; }

KBIN=$(./scripts/k8s-build.sh)
# Tokens and keys stay private (umask); pods, which run as uid 65534, must
# still reach their volumes under $T/standin (traverse, not list).
umask 077
T=$(mktemp -d "${TMPDIR:-/tmp}/refline-k8s.XXXXXX")
chmod 711 "$T"
pids=()
cleanup() {
	local rc=$?
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	# kube-apiserver's graceful shutdown can take long: 10s, then SIGKILL.
	for _ in $(seq 100); do
		alive=
		for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ -z "$alive" ] && break
		sleep 0.1
	done
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	if [ "$rc" != 0 ]; then
		for f in etcd apiserver controller-manager standin; do
			echo "--- $f.log (last 30 lines)" >&2; tail -n 30 "$T/$f.log" >&2 || true
		done
	fi
	rm -rf "$T"
	exit "$rc"
}
trap cleanup EXIT INT TERM

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
waitfor() { # waitfor WHAT PID SECONDS CMD...: until CMD succeeds, while PID lives
	local what=$1 pid=$2 n=$(( $3 * 10 )); shift 3
	until "$@" >/dev/null 2>&1; do
		kill -0 "$pid" 2>/dev/null || { echo "k8s-test: $what exited" >&2; return 1; }
		n=$((n - 1)); [ "$n" -gt 0 ] || { echo "k8s-test: $what did not come up" >&2; return 1; }
		sleep 0.1
	done
}

# Every pod sees the refline binary (the agent image's) from here.
mkdir -m 755 "$T/bin"
CGO_ENABLED=0 $GO build -o "$T/bin/refline" ./cmd/refline
$GO build -o "$T/bin/standin" ./kube/internal/standin
chmod 755 "$T/bin/refline"

EPORT=$(freeport); EPEER=$(freeport)
etcd --data-dir "$T/etcd" --listen-client-urls "http://127.0.0.1:$EPORT" --advertise-client-urls "http://127.0.0.1:$EPORT" \
	--listen-peer-urls "http://127.0.0.1:$EPEER" --initial-advertise-peer-urls "http://127.0.0.1:$EPEER" \
	--initial-cluster "default=http://127.0.0.1:$EPEER" --quota-backend-bytes 1073741824 >"$T/etcd.log" 2>&1 &
pids+=($!)

openssl genrsa -out "$T/sa.key" 2048 2>/dev/null
openssl rsa -in "$T/sa.key" -pubout -out "$T/sa.pub" 2>/dev/null
ADMIN_TOKEN=$(openssl rand -hex 16)
REFLINE_TOKEN=$(openssl rand -hex 16)
# refline authenticates as its ServiceAccount's user name, so that the
# RoleBinding in deploy/k8s/rbac.yaml (subject: ServiceAccount refline) is
# what authorizes it, exactly as in a cluster.
cat >"$T/tokens.csv" <<CSV
$ADMIN_TOKEN,admin,admin,"system:masters"
$REFLINE_TOKEN,system:serviceaccount:$NS:refline,refline,"system:serviceaccounts,system:serviceaccounts:$NS,system:authenticated"
CSV

APORT=$(freeport)
waitfor etcd "${pids[0]}" 30 curl -sf "http://127.0.0.1:$EPORT/health"
"$KBIN/kube-apiserver" --etcd-servers "http://127.0.0.1:$EPORT" \
	--bind-address 127.0.0.1 --advertise-address 127.0.0.1 --endpoint-reconciler-type none --secure-port "$APORT" --cert-dir "$T/certs" \
	--token-auth-file "$T/tokens.csv" --authorization-mode RBAC \
	--service-account-issuer https://kubernetes.default.svc --service-account-key-file "$T/sa.pub" \
	--service-account-signing-key-file "$T/sa.key" --service-cluster-ip-range 10.96.0.0/24 \
	--enable-priority-and-fairness=false --profiling=false >"$T/apiserver.log" 2>&1 &
pids+=($!)
waitfor kube-apiserver "${pids[1]}" 120 curl -skf -H "Authorization: Bearer $ADMIN_TOKEN" "https://127.0.0.1:$APORT/readyz"

kubeconfig() { # kubeconfig FILE TOKEN
	cat >"$1" <<KC
apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {server: "https://127.0.0.1:$APORT", certificate-authority: "$T/certs/apiserver.crt"}
users:
- name: u
  user: {token: "$2"}
contexts:
- name: test
  context: {cluster: test, user: u}
current-context: test
KC
}
kubeconfig "$T/admin.kubeconfig" "$ADMIN_TOKEN"
kubeconfig "$T/refline.kubeconfig" "$REFLINE_TOKEN"

"$KBIN/kube-controller-manager" --kubeconfig "$T/admin.kubeconfig" \
	--controllers job-controller,garbage-collector-controller,ttl-after-finished-controller,serviceaccount-controller \
	--leader-elect=false --secure-port 0 --profiling=false >"$T/controller-manager.log" 2>&1 &
pids+=($!)

# deploy/k8s/namespace.yaml (Pod Security "restricted") and rbac.yaml, applied
# as an administrator would.
"$T/bin/standin" -kubeconfig "$T/admin.kubeconfig" -apply deploy/k8s/namespace.yaml -apply deploy/k8s/rbac.yaml

mkdir -m 711 "$T/standin"
"$T/bin/standin" -kubeconfig "$T/admin.kubeconfig" -root "$T/standin" -namespace "$NS" \
	-image-file "/usr/local/bin/refline=$T/bin/refline" >"$T/standin.log" 2>&1 &
pids+=($!)

export REFLINE_K8S_KUBECONFIG="$T/refline.kubeconfig"
export REFLINE_K8S_ADMIN_KUBECONFIG="$T/admin.kubeconfig"
export REFLINE_K8S_NAMESPACE="$NS"
start=$(date +%s)
$GO test -tags k8s -count=1 ${GOTESTFLAGS:-} -run "${K8S_RUN:-TestCluster|TestK8sScripts}" ./kube ./cmd/refline
echo "k8s-test: tests took $(( $(date +%s) - start ))s against kube-apiserver and kube-controller-manager from k8s.io/kubernetes ${K8S_VERSION:-v1.37.2}"
