#!/usr/bin/env bash
# Builds plugin.wasm (the Rust conformance plugin) with Debian's rustc 1.63 + cargo for
# wasm32-wasi, offline against the crates in /usr/share/cargo/registry (see .cargo/config.toml),
# using the SDK in sdk/rust/cortexprism-wasm-sdk. Skips the build when plugin.wasm is newer than
# every source (this folder's and the SDK's). Toolchain: scripts/install-toolchains.
#
#   conformance/plugins/rust/build.sh            # or: RUSTC=... CARGO=... build.sh
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"   # not needed by the Rust build; kept for the convention
SDK="$ROOT/sdk/rust/cortexprism-wasm-sdk"
OUT="$HERE/plugin.wasm"
CRATE_WASM="conformance_rust.wasm"           # the [package] name with '-' -> '_'

die() { echo "build.sh (rust): $*" >&2; exit 1; }

# --- up to date? -----------------------------------------------------------------------------
sources=("$HERE/build.sh" "$HERE/Cargo.toml" "$HERE/src" "$HERE/.cargo" "$SDK/Cargo.toml" "$SDK/src")
if [[ -f "$OUT" ]] && [[ -z "$(find "${sources[@]}" -type f -newer "$OUT" -print -quit 2>/dev/null)" ]]; then
    echo "plugin.wasm is up to date"
    exit 0
fi
[[ -d "$SDK/src" ]] || die "the Rust SDK is missing at $SDK"

# --- toolchain -------------------------------------------------------------------------------
# Prefer Debian's rustc/cargo: the rustup toolchains first on PATH here have no wasm target.
if [[ -z "${RUSTC:-}" ]]; then
    if [[ -x /usr/bin/rustc ]]; then RUSTC=/usr/bin/rustc; else RUSTC="$(command -v rustc || true)"; fi
fi
if [[ -z "${CARGO:-}" ]]; then
    if [[ -x /usr/bin/cargo ]]; then CARGO=/usr/bin/cargo; else CARGO="$(command -v cargo || true)"; fi
fi
[[ -n "$RUSTC" && -x "$RUSTC" ]] || die "rustc not found; run scripts/install-toolchains (Debian rustc, cargo, libstd-rust-dev-wasm32, lld-14)"
[[ -n "$CARGO" && -x "$CARGO" ]] || die "cargo not found; run scripts/install-toolchains (Debian cargo)"
SYSROOT="$("$RUSTC" --print sysroot)"
TARGET=""
for t in wasm32-wasi wasm32-wasip1; do   # 'wasm32-wasi' up to Rust 1.83, 'wasm32-wasip1' from 1.78
    if [[ -d "$SYSROOT/lib/rustlib/$t/lib" ]]; then TARGET="$t"; break; fi
done
[[ -n "$TARGET" ]] || die "$RUSTC has no wasm32-wasi standard library; install Debian's libstd-rust-dev-wasm32 (scripts/install-toolchains)"
# rustc links wasm with rust-lld: Debian's /usr/bin/rust-lld is a symlink to lld-14's binary.
HOST="$("$RUSTC" -vV | sed -n 's/^host: //p')"
if [[ ! -x "$SYSROOT/lib/rustlib/$HOST/bin/rust-lld" ]] && ! rust-lld -flavor wasm --version >/dev/null 2>&1; then
    die "rust-lld (the wasm linker) is missing or broken; install Debian's lld-14 (apt-get install lld-14)"
fi
# .cargo/config.toml replaces crates.io with Debian's crate directory (this machine is offline).
compgen -G "/usr/share/cargo/registry/serde_json-1.*" >/dev/null && compgen -G "/usr/share/cargo/registry/serde_derive-1.*" >/dev/null \
    || die "serde crates missing in /usr/share/cargo/registry; install Debian's librust-serde-dev librust-serde-json-dev librust-serde-derive-dev"

# --- build -----------------------------------------------------------------------------------
cd "$HERE"
# cargo 1.65 reads lockfile v3 only; a lockfile written by a newer cargo is regenerated.
if [[ -f Cargo.lock ]] && grep -q '^version = [4-9]' Cargo.lock; then rm -f Cargo.lock; fi
RUSTC="$RUSTC" "$CARGO" build --release --offline --target "$TARGET" --target-dir "$HERE/target" \
    --message-format short

tmp="$OUT.tmp.$$"
trap 'rm -f "$tmp"' EXIT
cp "$HERE/target/$TARGET/release/$CRATE_WASM" "$tmp"
mv -f "$tmp" "$OUT"
trap - EXIT
echo "built $OUT ($TARGET, $("$RUSTC" --version))"
