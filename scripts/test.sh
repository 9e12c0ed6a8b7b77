#!/usr/bin/env bash
# The project's one test command: installs what the tests need on a fresh
# Debian machine (Debian packages, the onnxruntime shared library from npm),
# then runs every Go test, the pure-Go kernel path, and short fuzz runs.
# Usage: bash scripts/test.sh [extra go test flags]
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
[ -d /usr/share/libonnx-testdata/data/node ] || need_apt+=(libonnx-testdata)
/usr/bin/python3 -c 'import onnx' 2>/dev/null || need_apt+=(python3-onnx)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "test.sh: installing Debian packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ -f scripts/install-onnxruntime.sh ]; then
  bash scripts/install-onnxruntime.sh
  if [ -z "${ONNXRUNTIME_LIB:-}" ] && [ -f .cache/onnxruntime/libonnxruntime.so.1 ]; then
    export ONNXRUNTIME_LIB="$PWD/.cache/onnxruntime/libonnxruntime.so.1"
  fi
fi

go vet ./...
CGO_ENABLED=0 go build ./...
# short fuzz runs of every parser (bounded; see docs/ARCHITECTURE.md)
for target in $(go test ./importer -list '^Fuzz' 2>/dev/null | grep '^Fuzz' || true); do
  go test ./importer -run '^$' -fuzz "^${target}\$" -fuzztime "${MTLRUN_FUZZTIME:-15s}" -fuzzminimizetime 5s >/dev/null
  echo "fuzz importer/${target}: ok"
done

# the pure-Go kernel path, forced by the purego tag, against the same references
go test -count=1 -tags purego ./ops/... ./train/autodiff >/dev/null && echo "purego kernels: ok"

# the data-race detector over the concurrent parts: server, sessions, kernels
go test -count=1 -race -short ./serve ./runtime ./ops/rnn >/dev/null && echo "race detector (serve, runtime, ops/rnn): ok"

# grpcurl (pinned) for serve/internal/interop's grpcurl test
G=.cache/tools/grpcurl-v1.9.3; [ -x "$G/grpcurl" ] || GOBIN="$PWD/$G" go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.3 2>/dev/null || echo "test.sh: could not install grpcurl; its test skips"; export PATH="$PWD/$G:$PATH"
go test -count=1 "$@" ./...
