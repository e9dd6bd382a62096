#!/usr/bin/env bash
# Builds the benchmark plugin twice from the same logic (bench_logic.h) with zig's clang and
# wasi-libc (PyPI `ziglang`):
#   cortex_bench.wasm  Cortex plugin ABI v1 (sdk/c/cortex_plugin.h): scenarios A and B
#   extism_bench.wasm  Extism ABI ("extism:host/env" imports): scenario C
# Skips a build when its .wasm is newer than every source. PYTHON picks the interpreter that
# has ziglang (default: the repository's .venv). The suite runs this on demand.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
SDK="$ROOT/sdk/c"
COMMON=("$HERE/bench_logic.h" "$SDK/cortex_plugin.h" "$HERE/build.sh")

if ! "$PYTHON" -m ziglang version >/dev/null 2>&1; then
    echo "build.sh: the C toolchain is missing: '$PYTHON -m ziglang' does not run." >&2
    echo "Install it with scripts/install-toolchains (PyPI package 'ziglang'), or set PYTHON." >&2
    exit 1
fi

build() {
    local src="$HERE/$1" out="$HERE/$2"
    local fresh=1
    [[ -f "$out" ]] || fresh=0
    for dep in "$src" "${COMMON[@]}"; do
        [[ "$fresh" == 1 && "$out" -nt "$dep" ]] || fresh=0
    done
    if [[ "$fresh" == 1 ]]; then
        echo "benchmarks: $2 is up to date"
        return
    fi
    local tmp="$out.tmp.$$"
    # -mexec-model=reactor: _initialize, no _start. stack-size: zig's default 16 MiB stack is
    # above the memory limit; 256 KiB is plenty (the JSON scanners are iterative).
    "$PYTHON" -m ziglang cc \
        --target=wasm32-wasi -mexec-model=reactor -O2 -std=c11 \
        -Wall -Wextra -Wno-unused-function \
        -I "$SDK" -I "$HERE" \
        -Wl,-z,stack-size=262144 \
        -Wl,--strip-all \
        -o "$tmp" "$src" || { rm -f "$tmp"; exit 1; }
    mv -f "$tmp" "$out"
    echo "benchmarks: built $out"
}

build cortex_bench.c cortex_bench.wasm
build extism_bench.c extism_bench.wasm
