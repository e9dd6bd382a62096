#!/usr/bin/env bash
# Builds plugin.wasm (conformance-wat) from plugin.wat and the WAT SDK (sdk/wat/cortex.wat).
#
# WAT has no include directive: the line `;; @include cortex.wat` in plugin.wat is replaced by
# the SDK file, the result is written to build/plugin.full.wat (kept: wat2wasm error positions
# refer to it), compiled with wasmtime.wat2wasm() from the project's Python (wasmtime-py is
# the only toolchain), validated, and moved into place.
#
# Skips the build when plugin.wasm is newer than plugin.wat, the SDK and this script.
# PYTHON selects the interpreter (default: <repo>/.venv/bin/python).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
SDK="$ROOT/sdk/wat/cortex.wat"
SRC="$HERE/plugin.wat"
OUT="$HERE/plugin.wasm"
FULL="$HERE/build/plugin.full.wat"

for f in "$SRC" "$SDK"; do
    [[ -f "$f" ]] || { echo "build.sh: missing source $f" >&2; exit 1; }
done

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
    echo "build.sh: the WAT toolchain is missing: '$PYTHON' cannot import wasmtime (wasmtime-py)." >&2
    echo "          Run 'make toolchains' (scripts/install-toolchains) or set PYTHON to a Python with wasmtime." >&2
    exit 1
fi

mkdir -p "$HERE/build"
# Splice the SDK in place of the include line.
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
# wat2wasm only parses; validation catches type errors now instead of at load time.
"$PYTHON" -c 'import sys, wasmtime; wasmtime.Module.validate(wasmtime.Engine(), open(sys.argv[1], "rb").read())' "$TMP"
mv -f "$TMP" "$OUT"
trap - EXIT
echo "built $OUT"
