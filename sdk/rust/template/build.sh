#!/usr/bin/env bash
# Builds plugin.wasm for the Cortex plugin {{name}} from this Rust crate and the Cortex Rust SDK
# (cortexprism-wasm-sdk). Works from any folder:
#
#   CORTEX_SDK_DIR=/path/to/cortex/sdk ./build.sh
#
# Environment (`cortex plugin new` records CORTEX_SDK_DIR and PYTHON in .cortex-env next to this
# script; variables already set in the environment win):
#   CORTEX_SDK_DIR    the Cortex sdk/ folder (required; the crate is $CORTEX_SDK_DIR/rust/cortexprism-wasm-sdk)
#   PYTHON            the project's Python (default python3); the Rust build itself does not need it
#   RUSTC, CARGO      the toolchain (default: Debian's /usr/bin/rustc + /usr/bin/cargo when they have
#                     the wasm32-wasi standard library, else rustc/cargo on PATH, e.g. rustup's
#                     with `rustup target add wasm32-wasip1`)
#   CORTEX_CRATES_DIR a local crate directory used instead of crates.io (default
#                     /usr/share/cargo/registry, Debian's librust-*-dev crates, if it holds serde;
#                     set it to "" to use crates.io)
#
# It writes .cargo/config.toml (crate source + a [patch.crates-io] entry that resolves
# `cortexprism-wasm-sdk = "0.1"` to the SDK folder), so plain `cargo build --release --target
# wasm32-wasi` works here afterwards too. Skips the build when plugin.wasm is newer than every
# source (this crate's and the SDK's). Build output stays in ./target/.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ -f "$HERE/.cortex-env" ]]; then
    env_sdk="${CORTEX_SDK_DIR:-}"
    env_python="${PYTHON:-}"
    # shellcheck disable=SC1091
    source "$HERE/.cortex-env"
    if [[ -n "$env_sdk" ]]; then CORTEX_SDK_DIR="$env_sdk"; fi
    if [[ -n "$env_python" ]]; then PYTHON="$env_python"; fi
fi
PYTHON="${PYTHON:-python3}"
OUT="$HERE/plugin.wasm"

die() { echo "build.sh: $*" >&2; exit 1; }

[[ -n "${CORTEX_SDK_DIR:-}" ]] \
    || die "CORTEX_SDK_DIR is not set: point it at the Cortex SDK folder (the one holding rust/), e.g. CORTEX_SDK_DIR=/path/to/cortex/sdk ./build.sh"
SDK_ROOT="$(cd "$CORTEX_SDK_DIR" 2>/dev/null && pwd)" || die "CORTEX_SDK_DIR=$CORTEX_SDK_DIR is not a folder"
SDK="$SDK_ROOT/rust/cortexprism-wasm-sdk"
[[ -f "$SDK/Cargo.toml" ]] || die "no Rust SDK at $SDK (expected $SDK/Cargo.toml): check CORTEX_SDK_DIR"

# --- up to date? -------------------------------------------------------------------------------
sources=()
for p in "$HERE/build.sh" "$HERE/Cargo.toml" "$HERE/build.rs" "$HERE/src" "$SDK/Cargo.toml" "$SDK/src"; do
    if [[ -e "$p" ]]; then sources+=("$p"); fi
done
if [[ -f "$OUT" ]] && [[ -z "$(find "${sources[@]}" -type f -newer "$OUT" -print -quit)" ]]; then
    echo "plugin.wasm is up to date"
    exit 0
fi

# --- toolchain ---------------------------------------------------------------------------------
wasm_target() {   # prints the wasm32 WASI target whose standard library $1 (a rustc) has
    local sysroot t
    sysroot="$("$1" --print sysroot 2>/dev/null)" || return 1
    for t in wasm32-wasi wasm32-wasip1; do   # 'wasm32-wasi' up to Rust 1.83, 'wasm32-wasip1' from 1.78
        if [[ -d "$sysroot/lib/rustlib/$t/lib" ]]; then echo "$t"; return 0; fi
    done
    return 1
}
if [[ -n "${RUSTC:-}" || -n "${CARGO:-}" ]]; then
    RUSTC="${RUSTC:-rustc}"
    CARGO="${CARGO:-cargo}"
elif [[ -x /usr/bin/rustc && -x /usr/bin/cargo ]] && wasm_target /usr/bin/rustc >/dev/null; then
    # Debian's toolchain. Use its cargo too: a newer cargo (rustup's, first on PATH) cannot drive
    # rustc 1.63 ("unknown print request `split-debuginfo`").
    RUSTC=/usr/bin/rustc
    CARGO=/usr/bin/cargo
else
    RUSTC=rustc
    CARGO=cargo
fi
command -v "$RUSTC" >/dev/null && command -v "$CARGO" >/dev/null \
    || die "no Rust toolchain ($RUSTC / $CARGO not found). Debian: apt-get install rustc cargo libstd-rust-dev-wasm32 lld-14 librust-serde-dev librust-serde-json-dev librust-serde-derive-dev (the Cortex repo's scripts/install-toolchains does this); rustup: rustup target add wasm32-wasip1"
TARGET="$(wasm_target "$RUSTC")" \
    || die "$RUSTC ($("$RUSTC" --version)) has no wasm32-wasi standard library. Debian: apt-get install libstd-rust-dev-wasm32; rustup: rustup target add wasm32-wasip1"
HOST="$("$RUSTC" -vV | sed -n 's/^host: //p')"
if [[ ! -x "$("$RUSTC" --print sysroot)/lib/rustlib/$HOST/bin/rust-lld" ]] \
        && ! rust-lld -flavor wasm --version >/dev/null 2>&1; then
    die "rust-lld (the wasm linker rustc uses) is missing or broken; on Debian: apt-get install lld-14"
fi

# --- cargo configuration -----------------------------------------------------------------------
CRATES_DIR="${CORTEX_CRATES_DIR-/usr/share/cargo/registry}"
if [[ -n "$CRATES_DIR" ]] && ! compgen -G "$CRATES_DIR/serde-1.*" >/dev/null; then
    CRATES_DIR=""   # no local crates: use crates.io
fi
toml_string() { local s="${1//\\/\\\\}"; printf '"%s"' "${s//\"/\\\"}"; }
mkdir -p "$HERE/.cargo"
{
    echo "# Written by build.sh for this machine; edit build.sh's settings instead."
    if [[ -n "$CRATES_DIR" ]]; then
        echo "[source.crates-io]"
        echo 'replace-with = "local-crates"'
        echo
        echo "[source.local-crates]"
        echo "directory = $(toml_string "$CRATES_DIR")"
        echo
        echo "[net]"
        echo "offline = true"
        echo
    fi
    echo "[patch.crates-io]"
    echo "cortexprism-wasm-sdk = { path = $(toml_string "$SDK") }"
} > "$HERE/.cargo/config.toml.new"
mv -f "$HERE/.cargo/config.toml.new" "$HERE/.cargo/config.toml"

# cargo before 1.78 cannot read lockfile version 4 (written by newer cargo): regenerate it.
cargo_minor="$("$CARGO" --version | sed -n 's/^cargo 1\.\([0-9]*\).*/\1/p')"
if [[ -f "$HERE/Cargo.lock" && -n "$cargo_minor" ]] && (( cargo_minor < 78 )) \
        && grep -q '^version = [4-9]' "$HERE/Cargo.lock"; then
    rm -f "$HERE/Cargo.lock"
fi

# --- build -------------------------------------------------------------------------------------
cd "$HERE"
messages="$(RUSTC="$RUSTC" "$CARGO" build --release --target "$TARGET" --target-dir "$HERE/target" \
    --message-format=json-render-diagnostics)" || die "cargo build failed"
# The cdylib artifact's path, from cargo's JSON messages (whatever the crate is called).
wasm="$(printf '%s\n' "$messages" | grep '"reason":"compiler-artifact"' | grep '"cdylib"' \
    | grep -o '"[^"]*\.wasm"' | tail -n 1 | tr -d '"')"
[[ -n "$wasm" && -f "$wasm" ]] || die "cargo built no .wasm: is [lib] crate-type = [\"cdylib\"] in Cargo.toml?"

tmp="$OUT.tmp.$$"
trap 'rm -f "$tmp"' EXIT
cp "$wasm" "$tmp"
mv -f "$tmp" "$OUT"
trap - EXIT
echo "built $OUT ($TARGET, $("$RUSTC" --version))"
