#!/usr/bin/env bash
# Installs the onnxruntime 1.24 shared library that the parity checks
# (package parity, `mtlrun parity`) load, into .cache/onnxruntime/ of this
# repository (git-ignored). It comes from the npm package
# onnxruntime-node@1.24.1, whose tarball ships
# package/bin/napi-v6/linux/x64/libonnxruntime.so.1; nothing is downloaded
# from anywhere but the npm registry.
#
# Idempotent and quiet on success. Does nothing when ONNXRUNTIME_LIB names an
# existing file or the library is already installed.
# Usage: bash scripts/install-onnxruntime.sh
set -euo pipefail

version=1.24.1
member=package/bin/napi-v6/linux/x64/libonnxruntime.so.1

fail() {
  echo "install-onnxruntime: $*" >&2
  echo "install-onnxruntime: alternatively set ONNXRUNTIME_LIB to the path of an onnxruntime 1.24 libonnxruntime.so" >&2
  exit 1
}

if [ -n "${ONNXRUNTIME_LIB:-}" ]; then
  [ -f "$ONNXRUNTIME_LIB" ] && exit 0
  fail "ONNXRUNTIME_LIB=$ONNXRUNTIME_LIB does not exist (unset it to install into .cache/onnxruntime/)"
fi

root=$(cd "$(dirname "$0")/.." && pwd)
dest=$root/.cache/onnxruntime
lib=$dest/libonnxruntime.so.1
[ -s "$lib" ] && exit 0

case "$(uname -s)/$(uname -m)" in
  Linux/x86_64) ;;
  *) fail "onnxruntime-node@$version ships the library used here for linux/x64 only (this is $(uname -s)/$(uname -m))" ;;
esac
command -v npm >/dev/null 2>&1 || fail "npm is needed to fetch onnxruntime-node@$version (Debian: apt-get install npm)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! (cd "$tmp" && npm pack --silent --ignore-scripts "onnxruntime-node@$version" >"$tmp/npm.out" 2>"$tmp/npm.err"); then
  cat "$tmp/npm.err" >&2
  fail "npm pack onnxruntime-node@$version failed (is the npm registry reachable?)"
fi
tgz=$tmp/onnxruntime-node-$version.tgz
[ -f "$tgz" ] || fail "npm pack did not produce $(basename "$tgz")"
tar -xzf "$tgz" -C "$tmp" "$member" 2>"$tmp/tar.err" || { cat "$tmp/tar.err" >&2; fail "$member is not in onnxruntime-node-$version.tgz"; }
[ -s "$tmp/$member" ] || fail "$member is empty in onnxruntime-node-$version.tgz"
mkdir -p "$dest"
# move into place atomically so that a concurrent run never sees half a file
mv "$tmp/$member" "$lib.tmp.$$"
mv -f "$lib.tmp.$$" "$lib"
