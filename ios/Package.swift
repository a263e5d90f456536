// swift-tools-version:5.9
// The Offst Swift package: the uniffi-generated Swift API (Sources/Offst/Offst.swift) over the
// OffstFFI XCFramework (device + simulator static libraries), both built by
// scripts/build-xcframework.sh. For a release, replace the path with `url:` and `checksum:`.
import PackageDescription

let package = Package(
    name: "Offst",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "Offst", targets: ["Offst"]),
    ],
    targets: [
        .binaryTarget(name: "OffstFFI", path: "OffstFFI.xcframework"),
        .target(
            name: "Offst",
            dependencies: ["OffstFFI"],
            path: "Sources/Offst",
            linkerSettings: [.linkedFramework("SystemConfiguration")]
        ),
        .testTarget(name: "OffstTests", dependencies: ["Offst"], path: "Tests/OffstTests"),
    ],
    swiftLanguageModes: [.v5]
)
