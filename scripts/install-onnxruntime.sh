#!/usr/bin/env bash
# Installs the onnxruntime 1.24 shared library that the parity checks load,
# from the npm package onnxruntime-node (its tarball ships
# bin/napi-v6/linux/x64/libonnxruntime.so.1), into .cache/onnxruntime/.
# Idempotent; does nothing when ONNXRUNTIME_LIB points at a library.
set -euo pipefail
cd "$(dirname "$0")/.."
version=1.24.1
dest=.cache/onnxruntime
lib=$dest/libonnxruntime.so.1
if [ -n "${ONNXRUNTIME_LIB:-}" ] && [ -f "$ONNXRUNTIME_LIB" ]; then
  exit 0
fi
if [ -f "$lib" ]; then
  exit 0
fi
if ! command -v npm >/dev/null; then
  echo "install-onnxruntime: npm is needed to fetch onnxruntime-node@$version (apt-get install npm)" >&2
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "install-onnxruntime: fetching onnxruntime-node@$version with npm pack"
(cd "$tmp" && npm pack --silent "onnxruntime-node@$version" >/dev/null)
tar -xzf "$tmp"/onnxruntime-node-$version.tgz -C "$tmp" package/bin/napi-v6/linux/x64/libonnxruntime.so.1
mkdir -p "$dest"
mv "$tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" "$lib"
echo "install-onnxruntime: installed $lib"
