#!/usr/bin/env bash
# Builds plugin.wasm for the Cortex plugin {{name}} from assembly/*.ts with the AssemblyScript
# compiler (asc 0.28) and the Cortex AssemblyScript SDK. Works from any folder:
#   CORTEX_SDK_DIR  the Cortex sdk/ folder (required; `cortex plugin new` writes it to .cortex-env)
#   ASC             the asc executable (default: $CORTEX_SDK_DIR/../.toolchains/node/node_modules/.bin/asc,
#                   else `npx --no-install asc`, i.e. a local `npm install --save-dev assemblyscript@0.28`)
#   PYTHON          a Python with the `wasmtime` package, for a post-build import check (default: python3;
#                   the check is skipped if it has no wasmtime)
# Skips the build when plugin.wasm is newer than every source (the SDK's included).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# Settings from `cortex plugin new`; variables already set in the environment win.
if [[ -f "$HERE/.cortex-env" ]]; then
    env_sdk="${CORTEX_SDK_DIR:-}"
    env_python="${PYTHON:-}"
    # shellcheck disable=SC1091
    source "$HERE/.cortex-env"
    if [[ -n "$env_sdk" ]]; then CORTEX_SDK_DIR="$env_sdk"; fi
    if [[ -n "$env_python" ]]; then PYTHON="$env_python"; fi
fi
if [[ -z "${CORTEX_SDK_DIR:-}" ]]; then
    echo "error: CORTEX_SDK_DIR is not set; point it at the Cortex sdk/ folder, e.g." >&2
    echo "  CORTEX_SDK_DIR=/path/to/cortex/sdk ./build.sh" >&2
    exit 1
fi
SDK="$CORTEX_SDK_DIR/assemblyscript"
if [[ ! -f "$SDK/asconfig.json" ]]; then
    echo "error: no AssemblyScript SDK at $SDK (CORTEX_SDK_DIR=$CORTEX_SDK_DIR)" >&2
    exit 1
fi
PYTHON="${PYTHON:-python3}"
OUT="$HERE/plugin.wasm"

sources() {
    find "$HERE/assembly" "$SDK/cortex-sdk" -name '*.ts'
    printf '%s\n' "$SDK/exports.ts" "$SDK/asconfig.json" "$HERE/build.sh"
}
if [[ -f "$OUT" ]]; then
    stale=0
    while IFS= read -r f; do
        if [[ "$f" -nt "$OUT" ]]; then stale=1; break; fi
    done < <(sources)
    if [[ $stale -eq 0 ]]; then
        echo "{{name}}: plugin.wasm is up to date"
        exit 0
    fi
fi

if ! command -v node >/dev/null 2>&1; then
    echo "error: node is not installed; the AssemblyScript compiler runs on Node.js" >&2
    exit 1
fi
if [[ -n "${ASC:-}" ]]; then
    if ! command -v "$ASC" >/dev/null 2>&1; then
        echo "error: ASC=$ASC is not an executable" >&2
        exit 1
    fi
    asc=("$ASC")
elif [[ -x "$CORTEX_SDK_DIR/../.toolchains/node/node_modules/.bin/asc" ]]; then
    asc=("$CORTEX_SDK_DIR/../.toolchains/node/node_modules/.bin/asc")
elif [[ -x "$HERE/node_modules/.bin/asc" ]]; then
    asc=(npx --no-install asc)
else
    echo "error: the AssemblyScript compiler (asc) was not found. Either set ASC=/path/to/asc," >&2
    echo "  run the Cortex scripts/install-toolchains, or run here: npm install --save-dev assemblyscript@0.28" >&2
    exit 1
fi

TMP="$HERE/plugin.wasm.tmp.$$"
trap 'rm -f "$TMP"' EXIT

# The SDK's asconfig.json adds the cortex_alloc export, --exportStart _initialize, --runtime stub,
# -O3 --noAssert, and replaces the abort/trace/seed imports that the host would refuse.
(cd "$HERE" && "${asc[@]}" assembly/index.ts --config "$SDK/asconfig.json" -o "$TMP")

# The host refuses imports outside `cortex` and `wasi_snapshot_preview1`: catch them now.
if "$PYTHON" -c 'import wasmtime' >/dev/null 2>&1; then
    "$PYTHON" - "$TMP" <<'PY'
import sys, wasmtime
module = wasmtime.Module.from_file(wasmtime.Engine(), sys.argv[1])
bad = [f"{i.module}.{i.name}" for i in module.imports if i.module not in ("cortex", "wasi_snapshot_preview1")]
if bad:
    sys.exit("error: the module imports " + ", ".join(bad) + ", which the Cortex host refuses")
PY
fi

mv -f "$TMP" "$OUT"
trap - EXIT
echo "{{name}}: built $OUT"
