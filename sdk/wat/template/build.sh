#!/usr/bin/env bash
# Builds plugin.wasm from plugin.wat and the Cortex WAT SDK. Works from any folder.
#
#   CORTEX_SDK_DIR  the Cortex `sdk/` folder (the SDK is $CORTEX_SDK_DIR/wat/cortex.wat).
#                   `cortex plugin new` records it in .cortex-env next to this script, which is
#                   read when the variable is not set.
#   PYTHON          a Python with wasmtime-py (default: python3; .cortex-env records the one
#                   that ran `cortex plugin new`).
#
# WAT has no include directive: the line `;; @include cortex.wat` in plugin.wat is replaced by
# the SDK, the result is written to build/plugin.full.wat (wat2wasm error positions refer to
# it), compiled with wasmtime.wat2wasm(), validated, and moved into place. Skips the build when
# plugin.wasm is newer than plugin.wat, the SDK and this script.
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
if [[ -z "${CORTEX_SDK_DIR:-}" ]]; then
    echo "build.sh: CORTEX_SDK_DIR is not set: point it at the Cortex sdk/ folder," >&2
    echo "          e.g. CORTEX_SDK_DIR=/path/to/cortex/sdk ./build.sh" >&2
    exit 1
fi
PYTHON="${PYTHON:-python3}"
SDK="$CORTEX_SDK_DIR/wat/cortex.wat"
SRC="$HERE/plugin.wat"
OUT="$HERE/plugin.wasm"
FULL="$HERE/build/plugin.full.wat"

if [[ ! -f "$SDK" ]]; then
    echo "build.sh: no WAT SDK at $SDK (check CORTEX_SDK_DIR=$CORTEX_SDK_DIR)" >&2
    exit 1
fi

if [[ -f "$OUT" ]]; then
    stale=0
    for f in "$SRC" "$SDK" "${BASH_SOURCE[0]}"; do
        [[ "$f" -nt "$OUT" ]] && stale=1
    done
    if [[ $stale -eq 0 ]]; then
        echo "plugin.wasm is up to date"
        exit 0
    fi
fi

if ! "$PYTHON" -c 'import wasmtime' >/dev/null 2>&1; then
    echo "build.sh: the WAT toolchain is missing: '$PYTHON' cannot import wasmtime (pip install wasmtime)," >&2
    echo "          or set PYTHON to the Cortex venv's python." >&2
    exit 1
fi

mkdir -p "$HERE/build"
awk -v sdk="$SDK" '
    /^[[:space:]]*;;[[:space:]]*@include[[:space:]]+"?cortex\.wat"?[[:space:]]*$/ {
        while ((getline line < sdk) > 0) print line
        close(sdk)
        next
    }
    { print }
' "$SRC" > "$FULL"

TMP="$OUT.tmp"
trap 'rm -f "$TMP"' EXIT
cd "$HERE"
"$PYTHON" -c 'import sys, wasmtime; open(sys.argv[2], "wb").write(wasmtime.wat2wasm(open(sys.argv[1], encoding="utf-8").read()))' "$FULL" "$TMP"
"$PYTHON" -c 'import sys, wasmtime; wasmtime.Module.validate(wasmtime.Engine(), open(sys.argv[1], "rb").read())' "$TMP"
mv -f "$TMP" "$OUT"
trap - EXIT
echo "built $OUT"
