#!/usr/bin/env bash
# Builds the browser package: the crate for wasm32 (SIMD128 on, see .cargo/config.toml), then
# wasm-bindgen's ES-module glue into pkg/generated/ (not committed). pkg/ is then the npm package.
# Needs: rustup target wasm32-unknown-unknown, and wasm-bindgen-cli equal to Cargo.lock's
# wasm-bindgen (`cargo install wasm-bindgen-cli --version 0.2.130`).
set -euo pipefail
cd "$(dirname "$0")/.."

want=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p' | head -1)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$want" != "$have" ]; then
  echo "error: wasm-bindgen-cli ${have:-missing} but the crate uses $want: cargo install wasm-bindgen-cli --version $want" >&2
  exit 1
fi

cargo build --release --locked --target wasm32-unknown-unknown --lib
rm -rf pkg/generated
wasm-bindgen --target web --out-dir pkg/generated target/wasm32-unknown-unknown/release/pocketllm.wasm
raw=$(stat -c %s pkg/generated/pocketllm_bg.wasm)
gz=$(gzip -9 -c pkg/generated/pocketllm_bg.wasm | wc -c)
echo "pkg/generated/pocketllm_bg.wasm: $raw bytes, $gz gzipped"
