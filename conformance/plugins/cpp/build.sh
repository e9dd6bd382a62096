#!/usr/bin/env bash
# Builds plugin.wasm (conformance-cpp) from plugin.cpp and the C/C++ SDK (sdk/c/cortex_plugin.h)
# with zig's clang++, libc++ and wasi-libc (PyPI `ziglang`, installed by scripts/install-toolchains).
# The first C++ build compiles libc++ into zig's global cache (~30 s); later builds take a second.
# Skips the build when plugin.wasm is newer than every source. PYTHON picks the interpreter
# that has ziglang (default: the repository's .venv).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
SDK="$ROOT/sdk/c"
OUT="$HERE/plugin.wasm"
SOURCES=("$HERE/plugin.cpp" "$SDK/cortex_plugin.h" "$HERE/build.sh")

up_to_date=1
[[ -f "$OUT" ]] || up_to_date=0
for src in "${SOURCES[@]}"; do
    [[ -f "$src" ]] || { echo "build.sh: missing source $src" >&2; exit 1; }
    [[ "$up_to_date" == 1 && "$OUT" -nt "$src" ]] || up_to_date=0
done
if [[ "$up_to_date" == 1 ]]; then
    echo "conformance-cpp: plugin.wasm is up to date"
    exit 0
fi

if ! "$PYTHON" -m ziglang version >/dev/null 2>&1; then
    echo "build.sh: the C++ toolchain is missing: '$PYTHON -m ziglang' does not run." >&2
    echo "Install it with scripts/install-toolchains (PyPI package 'ziglang'), or set PYTHON" >&2
    echo "to an interpreter that has it." >&2
    exit 1
fi

TMP="$OUT.tmp.$$"
trap 'rm -f "$TMP"' EXIT

# -mexec-model=reactor: export _initialize, not _start (the host refuses commands).
# stack-size: zig's default stack (16 MiB) is above the default memory limit; 256 KiB is plenty.
# -fno-exceptions -fno-rtti: wasm32-wasi has no exception support in this toolchain.
"$PYTHON" -m ziglang c++ \
    --target=wasm32-wasi -mexec-model=reactor -O2 -std=c++17 \
    -fno-exceptions -fno-rtti \
    -Wall -Wextra \
    -I "$SDK" \
    -Wl,-z,stack-size=262144 \
    -Wl,--strip-all \
    -o "$TMP" "$HERE/plugin.cpp"

mv -f "$TMP" "$OUT"
trap - EXIT
echo "conformance-cpp: built $OUT"
