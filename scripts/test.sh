#!/usr/bin/env bash
# The project's one test command: installs what the tests need on a fresh
# Debian machine (Debian packages, the onnxruntime shared library from npm),
# then runs every Go test, the pure-Go kernel path, and short fuzz runs.
# Usage: bash scripts/test.sh [extra go test flags]
set -euo pipefail
cd "$(dirname "$0")/.."

# ok NAME prints "NAME: ok (N s)", the seconds since the previous section
# ended, so a slow section shows in every CI log (the whole suite is to
# stay well under 15 minutes on a 2-core machine)
lap=$SECONDS
ok() { echo "$1: ok ($((SECONDS - lap)) s)"; lap=$SECONDS; }

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

# static analysis, with pinned tools installed once into .cache/tools:
# staticcheck (its checks in staticcheck.conf) and deadcode with every main
# package and every test binary as entry points (-test), so exported API
# that only its tests call counts as used (docs/ARCHITECTURE.md)
tools="$PWD/.cache/tools"
install_tool() { # binary module@version
  if [ -x "$tools/$1" ] && [ "$(cat "$tools/$1.version" 2>/dev/null)" = "$2" ]; then return; fi
  mkdir -p "$tools"
  if ! GOBIN="$tools" go install "$2" >"$tools/$1.log" 2>&1; then
    cat "$tools/$1.log" >&2
    exit 1
  fi
  echo "$2" >"$tools/$1.version"
}
install_tool staticcheck honnef.co/go/tools/cmd/staticcheck@v0.8.2
install_tool deadcode golang.org/x/tools/cmd/deadcode@v0.52.0
"$tools/staticcheck" ./...
dead=$("$tools/deadcode" -test ./...)
if [ -n "$dead" ]; then
  printf 'deadcode: unreachable functions (remove them, or test the API they are):\n%s\n' "$dead" >&2
  exit 1
fi
ok "install, vet, build, staticcheck, deadcode"

# quiet runs a command with its output held back: on success nothing is
# shown (the caller prints one line), on failure its output (less the
# passing packages) and the command, and the script stops. ("cmd && echo
# ok" would not stop it: set -e ignores a failure inside an && list.)
quiet() {
  local out
  if ! out=$("$@" 2>&1); then
    printf '%s\n' "$out" | grep -v '^ok ' >&2
    echo "test.sh: FAILED: $*" >&2
    exit 1
  fi
}

# short fuzz runs of every parser (bounded; see docs/ARCHITECTURE.md)
for target in $(go test ./importer -list '^Fuzz' 2>/dev/null | grep '^Fuzz' || true); do
  quiet go test ./importer -run '^$' -fuzz "^${target}\$" -fuzztime "${MTLRUN_FUZZTIME:-15s}" -fuzzminimizetime 5s
  ok "fuzz importer/${target}"
done

# the pure-Go kernel path, forced by the purego tag, against the same references
quiet go test -count=1 -tags purego ./ops/... ./train/autodiff
ok "purego kernels"
# which kernel sets the linalg tests ran, and which they skipped and why
# (MTLRUN_KERNELS caps them; a CPU without AVX-512 skips it)
for tags in "" purego; do
  go test -count=1 -tags "$tags" -run '^TestKernelSetChoice$' -v ./ops/linalg | grep '^linalg kernel sets:' |
    sed "s/^/${tags:-default} build: /"
done

# qemu-user-static runs the arm64 tests and the emulated AVX2-only CPU below
if ! command -v qemu-aarch64-static >/dev/null || ! command -v qemu-x86_64-static >/dev/null; then
  echo "test.sh: installing Debian package qemu-user-static"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq qemu-user-static >/dev/null
fi

# an AVX2-only CPU (qemu's Haswell model: AVX2+FMA, no AVX-512), so the
# avx2 kernels run where AVX-512 instructions or registers fault; forcing
# MTLRUN_KERNELS=avx2 on an AVX-512 CPU cannot show that (the avx2 SGEMM
# tiles once held B in Y24/Y25 and raised SIGILL here). The kernel set is
# chosen by CPUID, as on a real server. The linalg tests run the avx2 set
# alone here (MTLRUN_TEST_SETS): the pure-Go set is tested natively above.
# 134 s on the 2-core Intel Xeon of 2026-12-04 (warm cache; linalg ~115 s
# and rnn ~119 s of CPU, in parallel): the emulated AVX2 is slow.
haswell="qemu-x86_64-static -cpu Haswell-v4"
if [ "$(go env GOARCH)" = amd64 ]; then
  log=$(mktemp)
  export MTLRUN_TEST_SETS=avx2
  go test -count=1 -exec "$haswell" -run '^TestKernelSetChoice$' -v ./ops/linalg 2>/dev/null |
    grep '^linalg kernel sets:' | sed 's/^/AVX2-only CPU (qemu Haswell): /'
  if ! go test -count=1 -short -exec "$haswell" ./ops/linalg ./ops/rnn >"$log" 2>&1; then
    grep -v "TCG doesn't support" "$log" >&2; exit 1
  fi
  hbin="$(mktemp -d)/mtlrun"
  CGO_ENABLED=0 go build -o "$hbin" ./cmd/mtlrun
  $haswell "$hbin" version 2>/dev/null | grep '^kernel set' | sed 's/^/AVX2-only CPU (qemu Haswell) mtlrun version: /'
  $haswell "$hbin" test models/* 2>/dev/null | tail -1 | sed 's/^/AVX2-only CPU (qemu Haswell) mtlrun test models\/*: /'
  rm -rf "$(dirname "$hbin")" "$log"
  unset MTLRUN_TEST_SETS
  ok "AVX2-only CPU under qemu"
fi

# on an AVX-512 machine, the AVX2 kernel set end to end too (what an
# AVX2-only server runs), forced with MTLRUN_KERNELS
if grep -qw avx512f /proc/cpuinfo 2>/dev/null; then
  quiet env MTLRUN_KERNELS=avx2 go test -count=1 ./ops/... ./runtime ./conformance
  ok "kernel set avx2 (forced)"
fi

# arm64 under emulation: the NEON kernel set against the naive references
# and the Go path, the op families, runtime and conformance suites (-short),
# and the sample models end to end (mtlrun test built for arm64). ops/nn
# runs only its Dense/Gemm/Relu/Gelu/BiasAdd tests. All of it took 3 min
# on the 2-core Intel Xeon of 2026-12-04, ~1 min of it the arm64 builds
# with a cold cache. CPU time of the tests, measured before their
# allocation checks went down to 5 runs (the ops/nn one from 100: 85 s →
# 7 s): linalg 22 s, rnn 24 s, math 11 s, runtime 53 s (37 s of it the
# 20-run allocation check), conformance 8 s, the ops/nn subset 135 s.
GOARCH=arm64 go test -count=1 -exec qemu-aarch64-static -run '^TestKernelSetChoice$' -v ./ops/linalg |
  grep '^linalg kernel sets:' | sed 's/^/arm64 (qemu): /'
quiet env GOARCH=arm64 go test -count=1 -short -exec qemu-aarch64-static ./ops/linalg/... ./ops/math ./ops/shape ./ops/rnn ./runtime ./conformance
quiet env GOARCH=arm64 go test -count=1 -short -exec qemu-aarch64-static -run 'Relu|Dense|Gemm|Gelu|BiasAdd' ./ops/nn
arm64bin="$(mktemp -d)/mtlrun"
GOARCH=arm64 CGO_ENABLED=0 go build -o "$arm64bin" ./cmd/mtlrun
qemu-aarch64-static "$arm64bin" version | grep '^kernel set' | sed 's/^/arm64 (qemu) mtlrun version: /'
qemu-aarch64-static "$arm64bin" test models/* 2>/dev/null | tail -1 | sed 's/^/arm64 (qemu) mtlrun test models\/*: /'
rm -rf "$(dirname "$arm64bin")"
ok "arm64 under qemu"

# cross-builds with CGO_ENABLED=0: everything for the platforms people run
# the CLI and server on; the library packages alone (the portable kernel
# fallbacks, 32-bit sizes) for the rest, which halves their cold compile
# (linux/386: tensor.MaxElements is min(2^31, math.MaxInt), so a 32-bit
# build caps tensors at 2^31-1 elements)
library="./tensor/... ./graph/... ./importer/... ./ops/... ./runtime/... ./shapeinfer/... ./train/... ./exporter/... ./tensorio/... ./edit/..."
for p in linux/arm64 darwin/arm64 windows/amd64 linux/riscv64 wasip1/wasm linux/386; do
  pkgs="./..."
  case $p in linux/riscv64 | wasip1/wasm | linux/386) pkgs=$library ;; esac
  # shellcheck disable=SC2086 # $pkgs is a list of patterns
  GOOS="${p%/*}" GOARCH="${p#*/}" CGO_ENABLED=0 go build $pkgs || { echo "cross-build $p: FAILED"; exit 1; }
done
ok "cross-builds (linux/arm64, darwin/arm64, windows/amd64: everything; linux/riscv64, wasip1/wasm, linux/386: the library)"

# the data-race detector over the concurrent parts: server, sessions, kernels
quiet go test -count=1 -race -short ./serve ./runtime ./ops/rnn
ok "race detector (serve, runtime, ops/rnn)"

# grpcurl (pinned) for serve/internal/interop's grpcurl test
G=.cache/tools/grpcurl-v1.9.3; [ -x "$G/grpcurl" ] || GOBIN="$PWD/$G" go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.3 2>/dev/null || echo "test.sh: could not install grpcurl; its test skips"; export PATH="$PWD/$G:$PATH"
go test -count=1 "$@" ./...
ok "go test ./..."
echo "test.sh: all passed in $SECONDS s"
