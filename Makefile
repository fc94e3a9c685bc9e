# refline — see README.md.
GO      ?= go
BIN     := bin/refline
ARGS    ?=
FUZZTIME ?= 60s

.PHONY: all build run test test-short test-k8s vet bench fuzz screenshots clean

all: build

# refline-hook, the small hook relay, goes next to refline, where serve finds it.
build:
	$(GO) build -o $(BIN) ./cmd/refline
	$(GO) build -o $(dir $(BIN))refline-hook ./cmd/refline-hook

# Runs the server with the defaults of SPEC §1 (data in ./refline-data, SSH
# on :2222, HTTP on 127.0.0.1:8080). Pass flags with ARGS="--admin-key ...".
# Jobs run in a bubblewrap sandbox: install it when missing and we can; the
# quickstart's deploys write to ~/refline-example, allowed as a deploy path.
run: build
	@command -v bwrap >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; \
	  elif command -v sudo >/dev/null; then sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; \
	  else echo "make run: bubblewrap is missing; install it with: apt-get install bubblewrap" >&2; fi; }
	./$(BIN) serve --deploy-path $(HOME)/refline-example $(ARGS)

# The whole suite: unit tests, end-to-end stories (real git, ssh and server
# processes on loopback) and the race detector. The dashboard's browser
# story needs Chromium; without it, it is skipped, and this says so.
test: vet
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null || \
	  echo "make test: chromium is not installed: SKIPPING the dashboard browser story (apt-get install chromium)"
	$(GO) test -race -count=1 ./...

test-short:
	$(GO) test -count=1 ./...

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { gofmt -l .; echo "gofmt needed"; exit 1; }
	$(GO) vet ./...

bench:
	./scripts/bench.sh

# Each fuzz target for FUZZTIME; corpora live in each package's testdata/fuzz.
fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

# Retakes docs/screenshots/*.png with the dashboard-browser story.
screenshots:
	REFLINE_SCREENSHOTS=$(CURDIR)/docs/screenshots $(GO) test -count=1 -run 'TestScripts/dashboard-browser$$' ./cmd/refline

clean:
	rm -rf bin

# Not part of `make test`: the Kubernetes executor against a real
# kube-apiserver, etcd and kube-controller-manager (built once from the Go
# proxy, cached in ~/.cache/refline/k8s) with a stand-in kubelet. Needs
# etcd-server, bubblewrap and openssl. See README "Kubernetes".
test-k8s:
	./scripts/k8s-test.sh
