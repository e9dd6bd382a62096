#!/usr/bin/env bash
# Builds plugin.wasm from main.zig with the Cortex Zig SDK:
#
#   CORTEX_SDK_DIR=/path/to/cortex/sdk ./build.sh
#
# which runs
#
#   $PYTHON -m ziglang build-exe -target wasm32-wasi -fno-entry -rdynamic -O ReleaseSmall \
#       --stack 262144 --dep cortex -Mroot=main.zig -Mcortex=$CORTEX_SDK_DIR/zig/cortex.zig
#
# Environment:
#   CORTEX_SDK_DIR  the Cortex SDK folder (required; the Zig SDK is $CORTEX_SDK_DIR/zig).
#                   `cortex plugin new` records it in .cortex-env, which is read when unset.
#   PYTHON          the Python that has Zig 0.17 (PyPI `ziglang`); default python3.
#   ZIG_GLOBAL_CACHE_DIR, ZIG_LOCAL_CACHE_DIR   Zig's caches (default: Zig's global cache,
#                   and .zig-cache/ here).
#
# Flags: -fno-entry (no _start: the host refuses WASI commands), -rdynamic (export every
# @export: the capabilities and cortex_alloc), --stack 256 KiB (Zig's default 16 MiB stack is
# over the default 256-page memory limit on its own). Does nothing when plugin.wasm is newer
# than every source (*.zig here and in the SDK, and this script).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="$HERE/plugin.wasm"

die() { echo "build.sh: $*" >&2; exit 1; }

if [[ -z "${CORTEX_SDK_DIR:-}" && -f "$HERE/.cortex-env" ]]; then
    # Written by `cortex plugin new`: CORTEX_SDK_DIR and PYTHON (an explicit PYTHON wins).
    user_python="${PYTHON:-}"
    # shellcheck disable=SC1091
    source "$HERE/.cortex-env"
    PYTHON="${user_python:-${PYTHON:-}}"
fi
PYTHON="${PYTHON:-python3}"
[[ -n "${CORTEX_SDK_DIR:-}" ]] \
    || die "CORTEX_SDK_DIR is not set: point it at the Cortex SDK folder (the one holding zig/), e.g. CORTEX_SDK_DIR=/path/to/cortex/sdk ./build.sh"
SDK="$(cd "$CORTEX_SDK_DIR" 2>/dev/null && pwd)/zig" || die "CORTEX_SDK_DIR=$CORTEX_SDK_DIR is not a folder"
[[ -f "$SDK/cortex.zig" ]] || die "no Zig SDK at $SDK (expected $SDK/cortex.zig): check CORTEX_SDK_DIR"

# Up to date? (sources here and in the SDK, except the SDK's own template/)
if [[ -f "$OUT" ]]; then
    newer="$(find "$HERE" "$SDK" -path "$SDK/template" -prune -o -path "$HERE/.zig-cache" -prune \
        -o -type f \( -name '*.zig' -o -name build.sh \) -newer "$OUT" -print -quit)"
    if [[ -z "$newer" ]]; then
        echo "plugin.wasm is up to date"
        exit 0
    fi
fi

command -v "$PYTHON" >/dev/null 2>&1 || die "Python not found: PYTHON=$PYTHON (set PYTHON to the python that has ziglang)"
version="$("$PYTHON" -m ziglang version 2>/dev/null)" \
    || die "Zig not found: '$PYTHON -m ziglang' failed. Install it with '$PYTHON -m pip install ziglang' (Zig 0.17), or set PYTHON to a python that has it"
case "$version" in
    0.17.*) ;;
    *) echo "build.sh: warning: the Cortex Zig SDK is written for Zig 0.17, found $version" >&2 ;;
esac

export ZIG_LOCAL_CACHE_DIR="${ZIG_LOCAL_CACHE_DIR:-$HERE/.zig-cache}"

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
echo "built $OUT (Zig $version)"
