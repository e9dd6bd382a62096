#!/usr/bin/env bash
# Builds the product document's Rust example (src/lib.rs) into my_wasm_plugin.wasm next to
# plugin.json, with the document's own command, `cargo build --release --target wasm32-wasi`,
# run with Debian's rustc 1.63 + cargo. The document's Cargo.toml is unchanged: its
# `cortexprism-wasm-sdk = "0.1"` resolves to ../cortexprism-wasm-sdk through the
# [patch.crates-io] entry in .cargo/config.toml, and crates come from Debian's registry offline.
# Skips the build when the .wasm is newer than every source.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"   # not needed by the Rust build; kept for the convention
SDK="$HERE/../cortexprism-wasm-sdk"
OUT="$HERE/my_wasm_plugin.wasm"

die() { echo "build.sh: $*" >&2; exit 1; }

if [[ -f "$OUT" ]] && [[ -z "$(find "$HERE/build.sh" "$HERE/Cargo.toml" "$HERE/src" "$HERE/.cargo" \
        "$SDK/Cargo.toml" "$SDK/src" -type f -newer "$OUT" -print -quit)" ]]; then
    echo "my_wasm_plugin.wasm is up to date"
    exit 0
fi
RUSTC="${RUSTC:-/usr/bin/rustc}"
CARGO="${CARGO:-/usr/bin/cargo}"
[[ -x "$RUSTC" && -x "$CARGO" ]] || die "Debian's rustc/cargo are missing: run scripts/install-toolchains"
[[ -d "$("$RUSTC" --print sysroot)/lib/rustlib/wasm32-wasi/lib" ]] \
    || die "$RUSTC has no wasm32-wasi standard library: install Debian's libstd-rust-dev-wasm32"
rust-lld -flavor wasm --version >/dev/null 2>&1 || die "rust-lld is broken: install Debian's lld-14"

cd "$HERE"
RUSTC="$RUSTC" "$CARGO" build --release --target wasm32-wasi --target-dir "$HERE/target"

tmp="$OUT.tmp.$$"
trap 'rm -f "$tmp"' EXIT
cp "$HERE/target/wasm32-wasi/release/my_wasm_plugin.wasm" "$tmp"
mv -f "$tmp" "$OUT"
trap - EXIT
echo "built $OUT"
