#!/bin/sh
# k8s-build.sh builds kube-apiserver and kube-controller-manager from the
# k8s.io/kubernetes module on the Go proxy, for `make test-k8s`, and caches
# them in $K8S_BIN (default $HOME/.cache/refline/k8s/$K8S_VERSION).
#
# Why the rewrite: k8s.io/kubernetes's go.mod replaces its k8s.io/* staging
# modules with ./staging/src/k8s.io/*, and the module zip on the proxy omits
# staging/ (each staging module is published as its own module). So we copy
# the module, point every staging replace at the published k8s.io/* module of
# the matching v0.x version, drop its go.work, and build with -mod=mod.
set -eu

K8S_VERSION=${K8S_VERSION:-v1.37.2}
STAGING_VERSION=${STAGING_VERSION:-v0.${K8S_VERSION#v1.}}
K8S_BIN=${K8S_BIN:-$HOME/.cache/refline/k8s/$K8S_VERSION}
GO=${GO:-go}

if [ -x "$K8S_BIN/kube-apiserver" ] && [ -x "$K8S_BIN/kube-controller-manager" ]; then
	echo "$K8S_BIN"
	exit 0
fi

src=$($GO mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
[ -d "$src" ] || { echo "k8s-build: cannot download k8s.io/kubernetes@$K8S_VERSION" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/refline-k8s-build.XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
# Only what the two commands need: the module's code, not its docs or tests.
cp -r "$src/." "$work/"
chmod -R u+w "$work"
rm -f "$work/go.work" "$work/go.work.sum"
sed -i "s#^\(\s*k8s.io/[a-z0-9-]*\) => ./staging/src/\(k8s.io/[a-z0-9-]*\)\$#\1 => \2 $STAGING_VERSION#" "$work/go.mod"
if grep -q '=> ./staging' "$work/go.mod"; then
	echo "k8s-build: unrewritten staging replaces:" >&2
	grep '=> ./staging' "$work/go.mod" >&2
	exit 1
fi

mkdir -p "$K8S_BIN"
cd "$work"
# The staging modules' sums are not in kubernetes's go.sum; -mod=mod adds
# them from the proxy (checked against the checksum database as usual).
for cmd in kube-apiserver kube-controller-manager; do
	[ -x "$K8S_BIN/$cmd" ] && continue
	echo "k8s-build: building $cmd $K8S_VERSION (several minutes on 2 cores)" >&2
	CGO_ENABLED=0 GOFLAGS=-mod=mod $GO build -trimpath -ldflags=-s -o "$K8S_BIN/$cmd.tmp" "./cmd/$cmd"
	mv "$K8S_BIN/$cmd.tmp" "$K8S_BIN/$cmd"
done
echo "$K8S_BIN"
