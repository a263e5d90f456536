#!/usr/bin/env bash
# Builds OffstFFI.xcframework (iOS device arm64; iOS simulator arm64 + x86_64; macOS arm64 +
# x86_64) from the ffi crate, and generates the Swift API into Sources/Offst. Run on macOS with
# Xcode: `ios/scripts/build-xcframework.sh && cd ios && swift test` (the tests run on macOS).
set -euo pipefail
cd "$(dirname "$0")/../.."
targets=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios aarch64-apple-darwin x86_64-apple-darwin)
rustup target add "${targets[@]}"
for target in "${targets[@]}"; do
  cargo build --profile release-smaller -p offst-ffi --target "$target"
done
lib() { echo "target/$1/release-smaller/liboffst.a"; }

build=target/ios
rm -rf "$build" ios/OffstFFI.xcframework
mkdir -p "$build/sim" "$build/macos" "$build/headers"
lipo -create "$(lib aarch64-apple-ios-sim)" "$(lib x86_64-apple-ios)" -output "$build/sim/liboffst.a"
lipo -create "$(lib aarch64-apple-darwin)" "$(lib x86_64-apple-darwin)" -output "$build/macos/liboffst.a"

# The Swift API and the C header + module map of the FFI module.
# Stripped libraries carry no uniffi metadata: generate from a debug host build of the same sources.
cargo build -p offst-ffi --features cli --bin uniffi-bindgen
cargo build -p offst-ffi
target/debug/uniffi-bindgen generate target/debug/liboffst.dylib --language swift --out-dir "$build/swift"
cp "$build/swift/OffstFFI.h" "$build/headers/"
cp "$build/swift/OffstFFI.modulemap" "$build/headers/module.modulemap"
mkdir -p ios/Sources/Offst
cp "$build/swift/Offst.swift" ios/Sources/Offst/Offst.swift

xcodebuild -create-xcframework \
  -library "$(lib aarch64-apple-ios)" -headers "$build/headers" \
  -library "$build/sim/liboffst.a" -headers "$build/headers" \
  -library "$build/macos/liboffst.a" -headers "$build/headers" \
  -output ios/OffstFFI.xcframework
echo "done: ios/OffstFFI.xcframework and ios/Sources/Offst/Offst.swift"
