#!/usr/bin/env bash
# FFI benchmark: builds the size-optimised release library (profile release-smaller: LTO,
# opt-level z, stripped), generates Python bindings for it and runs tests/python/bench_ffi.py,
# which prints one table (call overhead, open time, idle RSS, library size).
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir=${CARGO_TARGET_DIR:-target}
cargo build --quiet --profile release-smaller -p offst-ffi
cargo build --quiet -p offst-ffi --features cli --bin uniffi-bindgen
cargo build --quiet -p offst-ffi
lib="$target_dir/release-smaller/liboffst.so"
out="$target_dir/bench-bindings"
rm -rf "$out" && mkdir -p "$out"
# A stripped library has no uniffi metadata: generate from the debug build of the same sources.
"$target_dir/debug/uniffi-bindgen" generate "$target_dir/debug/liboffst.so" --no-format --language python --out-dir "$out"
cp "$lib" "$out/"
OFFST_BENCH_BINDINGS="$out" OFFST_BENCH_LIBRARY="$lib" python3 tests/python/bench_ffi.py
