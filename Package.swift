// swift-tools-version: 6.1
import Foundation
import PackageDescription

// Layers follow the data: dump → store → query → (API → wire, later issues).
// See Sources/README.md for what each module may import.
//
// Release builds are `-O` (SwiftPM's default, whole-module): bounds, overflow and precondition
// checks stay on in every module, the ones that parse outside bytes first of all. `-Ounchecked`
// measured 6% faster in process (the Engine benchmarks' p50, geometric mean of two alternated
// runs each) and no faster over HTTP (docs/BENCHMARKS.md, "Checked release builds"): not worth
// the checks. It is kept only as a switch for that comparison: `TALLY_UNCHECKED=1 swift build -c release`.
//
// On x86-64, the hardware population count (`POPCNT`, every x86-64 CPU since 2008 and x86-64-v2's
// baseline): without it `nonzeroBitCount` is a dozen instructions of bit tricks, and the
// members' pass of a department-filtered list counts the days of every pair with it. A under
// the enterprise client's first department (30 days) took 1.14 ms p50 without and 0.61–0.64
// with it (as `-target-cpu nehalem`; with this flag 0.60–0.71 in later runs: docs/BENCHMARKS.md,
// "Hardware popcount"). Swift takes the target features of its clang importer, so the one
// clang flag is enough.
#if arch(x86_64)
let hardware: [SwiftSetting] = [.unsafeFlags(["-Xcc", "-mpopcnt"])]
#else
let hardware: [SwiftSetting] = []
#endif
let optimize: [SwiftSetting] = hardware + (ProcessInfo.processInfo.environment["TALLY_UNCHECKED"] == "1"
    ? [.unsafeFlags(["-Ounchecked", "-wmo"], .when(configuration: .release))] : [])

let package = Package(
    name: "Tally",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "tally", targets: ["tally"]),
        .library(name: "TallyStorage", targets: ["TallyStorage"]),
        .library(name: "TallyIngest", targets: ["TallyIngest"]),
        .library(name: "TallyQuery", targets: ["TallyQuery"]),
        .library(name: "TallyWrite", targets: ["TallyWrite"]),
        .library(name: "TallyAPI", targets: ["TallyAPI"]),
        .library(name: "TallyServer", targets: ["TallyServer"]),
        .library(name: "TallyGenerate", targets: ["TallyGenerate"]),
        .library(name: "TallyWire", targets: ["TallyWire"]),
        .library(name: "TallyClient", targets: ["TallyClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-configuration", from: "1.4.0", traits: []),
    ],
    targets: [
        .systemLibrary(name: "CLZ4", path: "Sources/CLZ4", pkgConfig: "liblz4",
                       providers: [.apt(["liblz4-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CMalloc", path: "Sources/CMalloc"),
        .target(name: "TallyStorage", dependencies: ["CLZ4", "CZlib"], swiftSettings: optimize),
        .target(name: "TallyIngest",
                dependencies: ["TallyStorage", "CLZ4", "CZlib", .product(name: "Crypto", package: "swift-crypto")],
                swiftSettings: optimize),
        .target(name: "TallyQuery", dependencies: ["TallyStorage"], swiftSettings: optimize),
        .target(name: "TallyWrite",
                dependencies: ["TallyStorage", "TallyIngest", "TallyRemote", "CMalloc",
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: optimize),
        .target(name: "TallyAPI",
                dependencies: ["TallyQuery", "TallyStorage", "TallyWrite", .product(name: "Crypto", package: "swift-crypto"),
                               .product(name: "Logging", package: "swift-log"),
                               .product(name: "CoreMetrics", package: "swift-metrics")],
                resources: [.embedInCode("openapi.json"), .embedInCode("console.html")], swiftSettings: optimize),
        .target(name: "TallyRemote",
                dependencies: ["TallyIngest", "TallyStorage",
                               .product(name: "AsyncHTTPClient", package: "async-http-client"),
                               .product(name: "Crypto", package: "swift-crypto"),
                               .product(name: "NIOCore", package: "swift-nio"),
                               .product(name: "NIOHTTP1", package: "swift-nio")],
                swiftSettings: optimize),
        .target(name: "TallyWire", dependencies: [.product(name: "NIOCore", package: "swift-nio")], swiftSettings: optimize),
        .target(name: "TallyClient",
                dependencies: ["TallyWire",
                               .product(name: "NIOCore", package: "swift-nio"),
                               .product(name: "NIOPosix", package: "swift-nio"),
                               .product(name: "NIOConcurrencyHelpers", package: "swift-nio")],
                swiftSettings: optimize),
        .target(name: "TallyServer",
                dependencies: ["TallyAPI", "TallyWrite", "TallyIngest", "TallyWire",
                               .product(name: "NIOCore", package: "swift-nio"),
                               .product(name: "NIOPosix", package: "swift-nio"),
                               .product(name: "NIOHTTP1", package: "swift-nio"),
                               .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                               .product(name: "NIOExtras", package: "swift-nio-extras"),
                               .product(name: "Logging", package: "swift-log"),
                               .product(name: "Prometheus", package: "swift-prometheus"),
                               .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                               .product(name: "UnixSignals", package: "swift-service-lifecycle")],
                swiftSettings: optimize),
        .target(name: "TallyGenerate", dependencies: ["TallyStorage", "CLZ4"], swiftSettings: optimize),
        .executableTarget(name: "tally",
                          dependencies: ["TallyStorage", "TallyIngest", "TallyQuery", "TallyGenerate", "TallyWrite", "TallyAPI", "TallyServer", "TallyWire", "TallyRemote",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser"),
                                         .product(name: "Logging", package: "swift-log"),
                                         .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                                         .product(name: "Configuration", package: "swift-configuration")],
                          swiftSettings: optimize),
        .target(name: "TallyTestSupport", dependencies: ["TallyStorage", "TallyQuery", "TallyGenerate", "CLZ4", "CZlib", .product(name: "Crypto", package: "swift-crypto")],
                path: "Tests/TallyTestSupport"),
        .testTarget(name: "TallyStorageTests", dependencies: ["TallyStorage"]),
        .testTarget(name: "TallyIngestTests", dependencies: ["TallyIngest", "TallyStorage", "TallyGenerate", "TallyRemote", "TallyTestSupport"]),
        .testTarget(name: "TallyAPITests",
                    dependencies: ["TallyAPI", "TallyServer", "TallyWrite", "TallyQuery", "TallyIngest", "TallyStorage", "TallyTestSupport",
                                   "TallyWire", "TallyClient"]),
        .testTarget(name: "TallyQueryTests",
                    dependencies: ["TallyQuery", "TallyIngest", "TallyStorage", "TallyTestSupport"]),
    ]
)
