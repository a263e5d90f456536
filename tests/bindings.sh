#!/usr/bin/env bash
# Builds the Offst library, generates its Kotlin, Swift and Python bindings with uniffi-bindgen,
# and runs the Python (pytest) and Kotlin (Maven, JVM) binding tests against it and a real
# strelay. Swift is generated only (no Swift toolchain on these machines).
# Usage: tests/bindings.sh            (from anywhere)
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/bindings

echo "bindings: building the library, strelay and uniffi-bindgen (debug)"
cargo build --quiet -p offst-ffi
cargo build --quiet -p offst-relay --bin strelay
cargo build --quiet -p offst-index --bin stindex
cargo build --quiet -p offst-ffi --features cli --bin uniffi-bindgen
lib=target/debug/liboffst.so

rm -rf "$out"
mkdir -p "$out/python" "$out/kotlin" "$out/swift"
target/debug/uniffi-bindgen generate "$lib" --no-format --language python --out-dir "$out/python"
target/debug/uniffi-bindgen generate "$lib" --no-format --language kotlin --out-dir "$out/kotlin"
target/debug/uniffi-bindgen generate "$lib" --no-format --language swift --out-dir "$out/swift"
# The Android flavour (android/scripts/build-android.sh) must generate too.
target/debug/uniffi-bindgen generate "$lib" --no-format --language kotlin \
  --config ffi/uniffi-android.toml --out-dir "$out/kotlin-android"
grep -q "SystemCleaner" "$out/kotlin-android/org/offst/offst.kt"
cp "$lib" "$out/python/"
cp "$lib" "$out/kotlin/"

echo "bindings: Python tests"
python3 -m pytest -q tests/python

echo "bindings: Kotlin tests (JVM)"
(cd tests/kotlin && mvn -q -B test)
grep -h "Tests run" tests/kotlin/target/surefire-reports/*.txt
