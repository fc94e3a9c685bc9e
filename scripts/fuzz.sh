#!/usr/bin/env bash
# Runs every fuzz target for the given time (default 60s). New inputs that
# find problems are written to each package's testdata/fuzz/TARGET, which is
# committed, so the regression stays in the plain test run.
set -euo pipefail
cd "$(dirname "$0")/.."
t="${1:-60s}"
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
    echo "== $pkg $target ($t)"
    go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$t"
  done
done
