#!/usr/bin/env bash
# Builds plugin.wasm for {{name}} from the C sources here (*.c) and the Cortex C/C++ SDK:
#
#   CORTEX_SDK_DIR=/path/to/cortex/sdk ./build.sh
#
# which runs
#
#   $PYTHON -m ziglang cc --target=wasm32-wasi -mexec-model=reactor -O2 -std=c11 \
#       -I $CORTEX_SDK_DIR/c -Wl,-z,stack-size=262144 -Wl,--strip-all -o plugin.wasm *.c
#
# Environment (each falls back to .cortex-env, which `cortex plugin new` writes here):
#   CORTEX_SDK_DIR  the Cortex SDK folder (required; the header is $CORTEX_SDK_DIR/c/cortex_plugin.h).
#   PYTHON          the Python that has zig's clang (PyPI `ziglang`); default python3.
#   CFLAGS          extra compiler flags (e.g. -g, or -DNDEBUG).
#
# Flags: -mexec-model=reactor (export _initialize, not _start: the host refuses WASI commands),
# stack-size 256 KiB (zig's default 16 MiB stack is over the default 256-page memory limit on
# its own), --strip-all (no debug sections in the module). Does nothing when plugin.wasm is
# newer than every source (*.c and *.h here, the SDK header, and this script).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="$HERE/plugin.wasm"

die() { echo "build.sh: $*" >&2; exit 1; }

if [[ -f "$HERE/.cortex-env" ]]; then
    # CORTEX_SDK_DIR and PYTHON recorded by `cortex plugin new`; the environment wins.
    env_sdk="${CORTEX_SDK_DIR:-}"
    env_python="${PYTHON:-}"
    # shellcheck disable=SC1091
    source "$HERE/.cortex-env"
    [[ -n "$env_sdk" ]] && CORTEX_SDK_DIR="$env_sdk"
    [[ -n "$env_python" ]] && PYTHON="$env_python"
fi
PYTHON="${PYTHON:-python3}"
[[ -n "${CORTEX_SDK_DIR:-}" ]] \
    || die "CORTEX_SDK_DIR is not set: point it at the Cortex SDK folder (the one holding c/), e.g. CORTEX_SDK_DIR=/path/to/cortex/sdk ./build.sh"
SDK="$(cd "$CORTEX_SDK_DIR" 2>/dev/null && pwd)/c" || die "CORTEX_SDK_DIR=$CORTEX_SDK_DIR is not a folder"
[[ -f "$SDK/cortex_plugin.h" ]] || die "no C SDK at $SDK (expected $SDK/cortex_plugin.h): check CORTEX_SDK_DIR"

shopt -s nullglob
C_SOURCES=("$HERE"/*.c)
HEADERS=("$HERE"/*.h)
shopt -u nullglob
(( ${#C_SOURCES[@]} > 0 )) || die "no .c files in $HERE"

up_to_date=1
[[ -f "$OUT" ]] || up_to_date=0
for src in "${C_SOURCES[@]}" "${HEADERS[@]}" "$SDK/cortex_plugin.h" "$HERE/build.sh"; do
    [[ "$up_to_date" == 1 && "$OUT" -nt "$src" ]] || up_to_date=0
done
if [[ "$up_to_date" == 1 ]]; then
    echo "plugin.wasm is up to date"
    exit 0
fi

"$PYTHON" -m ziglang version >/dev/null 2>&1 \
    || die "the C toolchain is missing: '$PYTHON -m ziglang' does not run. Install it with '$PYTHON -m pip install ziglang' (or the Cortex repository's scripts/install-toolchains), or set PYTHON to an interpreter that has it."

TMP="$OUT.tmp.$$"
trap 'rm -f "$TMP"' EXIT

# shellcheck disable=SC2086  # CFLAGS is a list of flags
"$PYTHON" -m ziglang cc \
    --target=wasm32-wasi -mexec-model=reactor -O2 -std=c11 \
    -Wall -Wextra ${CFLAGS:-} \
    -I "$SDK" \
    -Wl,-z,stack-size=262144 \
    -Wl,--strip-all \
    -o "$TMP" "${C_SOURCES[@]}"

mv -f "$TMP" "$OUT"
trap - EXIT
echo "built $OUT"
