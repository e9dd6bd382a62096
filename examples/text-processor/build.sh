#!/usr/bin/env bash
# Builds text_processor.wasm (a WASI reactor) next to this script with zig's bundled clang
# and wasi-libc (PyPI `ziglang`) and the C/C++ SDK header (sdk/c/cortex_plugin.h). Skips the
# build when the .wasm is newer than the .c and the SDK header.
# Set PYTHON to pick the interpreter that has ziglang installed, e.g.
#   PYTHON=.venv/bin/python examples/text-processor/build.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$here/text_processor.c"
sdk="$here/../../sdk/c"
out="$here/text_processor.wasm"

if [[ -f "$out" && "$out" -nt "$src" && "$out" -nt "$sdk/cortex_plugin.h" ]]; then
    echo "text_processor.wasm is up to date"
    exit 0
fi

tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT

# -mexec-model=reactor: export _initialize instead of _start (the host refuses commands).
# --export=malloc: the manifest's "allocator": "wasi" makes the host call malloc.
# stack-size=64 KiB: the code does not recurse; a small stack leaves the 50-page memory
# limit for the heap.
"${PYTHON:-python3}" -m ziglang cc \
    --target=wasm32-wasi \
    -mexec-model=reactor \
    -O2 \
    -Wall -Wextra \
    -I "$sdk" \
    -Wl,--export=malloc \
    -Wl,-z,stack-size=65536 \
    -Wl,--strip-all \
    -o "$tmp" "$src"

mv -f "$tmp" "$out"
trap - EXIT
echo "built $out"
