// swift-tools-version: 6.1
import PackageDescription

// Layers follow the data: dump → store → query → (API → wire, later issues).
// See Sources/README.md for what each module may import.
let optimize: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-wmo"], .when(configuration: .release))]

let package = Package(
    name: "Tally",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "tally", targets: ["tally"]),
        .library(name: "TallyStorage", targets: ["TallyStorage"]),
        .library(name: "TallyIngest", targets: ["TallyIngest"]),
        .library(name: "TallyQuery", targets: ["TallyQuery"]),
        .library(name: "TallyAPI", targets: ["TallyAPI"]),
        .library(name: "TallyServer", targets: ["TallyServer"]),
        .library(name: "TallyGenerate", targets: ["TallyGenerate"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
    ],
    targets: [
        .systemLibrary(name: "CLZ4", path: "Sources/CLZ4", pkgConfig: "liblz4",
                       providers: [.apt(["liblz4-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        .target(name: "TallyStorage", dependencies: ["CLZ4"], swiftSettings: optimize),
        .target(name: "TallyIngest",
                dependencies: ["TallyStorage", "CLZ4", "CZlib", .product(name: "Crypto", package: "swift-crypto")],
                swiftSettings: optimize),
        .target(name: "TallyQuery", dependencies: ["TallyStorage"], swiftSettings: optimize),
        .target(name: "TallyAPI",
                dependencies: ["TallyQuery", "TallyStorage", .product(name: "Crypto", package: "swift-crypto")],
                resources: [.copy("openapi.json")], swiftSettings: optimize),
        .target(name: "TallyServer",
                dependencies: ["TallyAPI", "TallyIngest",
                               .product(name: "NIOCore", package: "swift-nio"),
                               .product(name: "NIOPosix", package: "swift-nio"),
                               .product(name: "NIOHTTP1", package: "swift-nio"),
                               .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                               .product(name: "NIOExtras", package: "swift-nio-extras")],
                swiftSettings: optimize),
        .target(name: "TallyGenerate", dependencies: ["TallyStorage", "CLZ4"], swiftSettings: optimize),
        .executableTarget(name: "tally",
                          dependencies: ["TallyStorage", "TallyIngest", "TallyQuery", "TallyGenerate", "TallyAPI", "TallyServer",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: optimize),
        .target(name: "TallyTestSupport", dependencies: ["TallyStorage", "TallyQuery", "TallyGenerate", "CLZ4", "CZlib", .product(name: "Crypto", package: "swift-crypto")],
                path: "Tests/TallyTestSupport"),
        .testTarget(name: "TallyStorageTests", dependencies: ["TallyStorage"]),
        .testTarget(name: "TallyIngestTests", dependencies: ["TallyIngest", "TallyStorage", "TallyTestSupport"]),
        .testTarget(name: "TallyAPITests",
                    dependencies: ["TallyAPI", "TallyServer", "TallyQuery", "TallyIngest", "TallyStorage", "TallyTestSupport"]),
        .testTarget(name: "TallyQueryTests",
                    dependencies: ["TallyQuery", "TallyIngest", "TallyStorage", "TallyTestSupport"]),
    ]
)
