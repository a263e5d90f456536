#!/usr/bin/env bash
# Builds liboffst.so for the Android ABIs with cargo-ndk (16 KB page alignment, required by
# Google Play for Android 15+), generates the Android flavour of the Kotlin bindings, and leaves
# both where android/lib picks them up. Then: `cd android && ./gradlew :lib:assembleRelease`.
#
# Needs: the Android NDK (ANDROID_NDK_HOME), `cargo install cargo-ndk`, and
# `rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android`.
set -euo pipefail
cd "$(dirname "$0")/../.."
android=android/lib/src/main

: "${ANDROID_NDK_HOME:?set ANDROID_NDK_HOME to the Android NDK (r28 or later)}"
command -v cargo-ndk >/dev/null || { echo "install cargo-ndk: cargo install cargo-ndk" >&2; exit 1; }

export RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-Wl,-z,max-page-size=16384 -C link-arg=-Wl,-z,common-page-size=16384"
cargo ndk --platform 24 -t arm64-v8a -t armeabi-v7a -t x86_64 -o "$android/jniLibs" \
  build --profile release-smaller -p offst-ffi

# Check the 16 KB alignment of every LOAD segment.
readelf=$(find "$ANDROID_NDK_HOME" -name llvm-readelf -type f | head -1)
for so in "$android"/jniLibs/*/liboffst.so; do
  if "$readelf" -lW "$so" | awk '/LOAD/ { if ($NF != "0x4000") bad = 1 } END { exit bad }'; then
    echo "16 KB aligned: $so"
  else
    echo "not 16 KB aligned: $so" >&2
    exit 1
  fi
done

# Generate the Kotlin API from the host build of the same sources (Android flavour: the
# android.system.SystemCleaner on API 33+).
cargo build -p offst-ffi --features cli --bin uniffi-bindgen
cargo build -p offst-ffi
rm -rf "$android/kotlin"
target/debug/uniffi-bindgen generate target/debug/liboffst.so --language kotlin \
  --config ffi/uniffi-android.toml --out-dir "$android/kotlin"
echo "done: $android/jniLibs and $android/kotlin"
