// swift-tools-version: 6.1
// libFuzzer targets, one executable per fuzzer, in their own package (as swift-protobuf's
// FuzzTesting): the product's graph stays free of fuzzer flags. Build and run with
// `./tools/fuzz.sh` from the repository root; docs/FUZZING.md says what each target covers.
//
//   swift build --package-path Fuzz --scratch-path Fuzz/.build -c debug \
//       -Xswiftc -O -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
import Foundation
import PackageDescription

// A path dependency's identity is its folder's name, which depends on where the repository was cloned.
let tally = URL(fileURLWithPath: Context.packageDirectory).deletingLastPathComponent().lastPathComponent

func fuzzer(_ name: String, _ products: [String], nio: [String] = []) -> Target {
    .executableTarget(name: name,
                      dependencies: ["FuzzSupport"] + products.map { .product(name: $0, package: tally) }
                          + nio.map { .product(name: $0, package: "swift-nio") },
                      path: "Sources/\(name)")
}

let package = Package(
    name: "TallyFuzz",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        // libFuzzer's driver entry; LZ4 and zlib to make seeds (compressed CSV, snapshots stored raw).
        .systemLibrary(name: "CFuzz", path: "Sources/CFuzz", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev", "zlib1g-dev"])]),
        .target(name: "FuzzSupport",
                dependencies: [.product(name: "TallyStorage", package: tally), .product(name: "TallyIngest", package: tally),
                               .product(name: "TallyAPI", package: tally), .product(name: "TallyGenerate", package: tally), "CFuzz"]),
        fuzzer("FuzzCSV", ["TallyIngest", "TallyStorage"]),
        fuzzer("FuzzFrame", ["TallyWire", "TallyAPI"], nio: ["NIOCore", "NIOEmbedded"]),
        fuzzer("FuzzCompact", ["TallyWire"]),
        fuzzer("FuzzQuery", ["TallyAPI", "TallyQuery", "TallyStorage"]),
        fuzzer("FuzzAppendBody", ["TallyAPI", "TallyWrite", "TallyStorage"]),
        fuzzer("FuzzSnapshot", ["TallyStorage", "TallyAPI", "TallyGenerate"]),
        fuzzer("FuzzWAL", ["TallyStorage"]),
    ]
)
