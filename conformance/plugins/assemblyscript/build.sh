#!/usr/bin/env bash
# Builds plugin.wasm (the AssemblyScript conformance plugin) from assembly/*.ts and the SDK in
# sdk/assemblyscript/, with asc 0.28 from .toolchains/node (scripts/install-toolchains).
# Skips the build when plugin.wasm is newer than every source, the SDK included.
#   ASC=/path/to/asc      use another compiler (default: <repo>/.toolchains/node/node_modules/.bin/asc)
#   PYTHON=/path/to/python  used for a post-build import check (default: <repo>/.venv/bin/python)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
SDK="$ROOT/sdk/assemblyscript"
ASC="${ASC:-$ROOT/.toolchains/node/node_modules/.bin/asc}"
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
        echo "conformance-assemblyscript: plugin.wasm is up to date"
        exit 0
    fi
fi

if ! command -v node >/dev/null 2>&1; then
    echo "error: node is not installed (AssemblyScript's compiler runs on Node.js); install nodejs/npm, then run scripts/install-toolchains" >&2
    exit 1
fi
if [[ ! -x "$ASC" ]]; then
    echo "error: the AssemblyScript compiler is missing at $ASC; run scripts/install-toolchains (npm install assemblyscript@0.28 into .toolchains/node)" >&2
    exit 1
fi

TMP="$HERE/plugin.wasm.tmp.$$"
trap 'rm -f "$TMP"' EXIT

# The SDK's asconfig.json adds the SDK's exports (cortex_alloc), --exportStart _initialize,
# --runtime stub, -O3 --noAssert, and aliases abort/trace/seed so no `env` import remains.
(cd "$HERE" && "$ASC" assembly/index.ts --config "$SDK/asconfig.json" -o "$TMP")

# The host refuses any import outside `cortex` and `wasi_snapshot_preview1`: catch them here.
if "$PYTHON" -c 'import wasmtime' >/dev/null 2>&1; then
    "$PYTHON" - "$TMP" <<'PY'
import sys, wasmtime
module = wasmtime.Module.from_file(wasmtime.Engine(), sys.argv[1])
bad = [f"{i.module}.{i.name}" for i in module.imports if i.module not in ("cortex", "wasi_snapshot_preview1")]
if bad:
    sys.exit("error: the module imports " + ", ".join(bad) + ", which the Cortex host refuses "
             "(see docs/guides/assemblyscript.md, pitfalls)")
PY
fi

mv -f "$TMP" "$OUT"
trap - EXIT
echo "conformance-assemblyscript: built $OUT"
