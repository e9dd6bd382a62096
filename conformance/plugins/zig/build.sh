#!/usr/bin/env bash
# Builds plugin.wasm, the Zig conformance plugin, with the Zig SDK in sdk/zig/:
#
#   python -m ziglang build-exe -target wasm32-wasi -fno-entry -rdynamic -O ReleaseSmall \
#       --stack 262144 --dep cortex -Mroot=main.zig -Mcortex=<repo>/sdk/zig/cortex.zig
#
# Zig 0.17 comes from PyPI `ziglang` in the project's venv (scripts/install-toolchains):
# $PYTHON -m ziglang, PYTHON defaulting to <repo>/.venv/bin/python. No libc and no WASI imports:
# the module imports only cortex.error / cortex.log and exports memory, cortex_alloc and the
# capabilities (-rdynamic exports every @export; -fno-entry: no _start, no _initialize needed).
# --stack: Zig's default 16 MiB stack would exceed the 256-page memory limit on its own.
#
# Caches stay in this folder (.zig-cache/, gitignored) unless ZIG_LOCAL_CACHE_DIR /
# ZIG_GLOBAL_CACHE_DIR are set. Idempotent: does nothing when plugin.wasm is newer than every
# source (this folder's *.zig, the SDK's *.zig and this script).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
SDK="$ROOT/sdk/zig"
OUT="$HERE/plugin.wasm"

die() { echo "conformance/plugins/zig/build.sh: $*" >&2; exit 1; }

[[ -f "$SDK/cortex.zig" ]] || die "the Zig SDK is missing: $SDK/cortex.zig not found"

# Up to date? (the SDK's template/ is a separate project and does not count)
if [[ -f "$OUT" ]]; then
    newer="$(find "$HERE" "$SDK" -path "$SDK/template" -prune -o -path "$HERE/.zig-cache" -prune \
        -o -type f \( -name '*.zig' -o -name build.sh \) -newer "$OUT" -print -quit)"
    if [[ -z "$newer" ]]; then
        echo "conformance/plugins/zig/plugin.wasm is up to date"
        exit 0
    fi
fi

command -v "$PYTHON" >/dev/null 2>&1 \
    || die "Python not found at $PYTHON (set PYTHON, or run scripts/setup-venv and scripts/install-toolchains)"
ZIG_VERSION="$("$PYTHON" -m ziglang version 2>/dev/null)" \
    || die "Zig not found: '$PYTHON -m ziglang' failed. Run scripts/install-toolchains (it pip-installs ziglang into the venv), or set PYTHON to an interpreter that has ziglang"
case "$ZIG_VERSION" in
    0.17.*) ;;
    *) echo "conformance/plugins/zig/build.sh: warning: the SDK is written for Zig 0.17, found $ZIG_VERSION" >&2 ;;
esac

export ZIG_LOCAL_CACHE_DIR="${ZIG_LOCAL_CACHE_DIR:-$HERE/.zig-cache}"
export ZIG_GLOBAL_CACHE_DIR="${ZIG_GLOBAL_CACHE_DIR:-$HERE/.zig-cache/global}"

TMP="$(mktemp "$HERE/.plugin.wasm.XXXXXX")"
trap 'rm -f "$TMP"' EXIT
cd "$HERE"
"$PYTHON" -m ziglang build-exe \
    -target wasm32-wasi -fno-entry -rdynamic -O ReleaseSmall --stack 262144 \
    --name plugin -femit-bin="$TMP" \
    --dep cortex -Mroot="$HERE/main.zig" -Mcortex="$SDK/cortex.zig"
chmod 644 "$TMP"
mv -f "$TMP" "$OUT"
trap - EXIT
echo "built conformance/plugins/zig/plugin.wasm (Zig $ZIG_VERSION)"
