// swift-tools-version: 6.1
// Benchmarks live in their own package so package-benchmark stays out of the product's graph.
// Run from this folder: `swift package benchmark` (see docs/BENCHMARKS.md).
import Foundation
import PackageDescription

// A path dependency's identity is its folder's name, which depends on where the repository was cloned.
let tally = URL(fileURLWithPath: Context.packageDirectory).deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "TallyBenchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .systemLibrary(name: "CRoaring", path: "Sources/CRoaring", providers: [.apt(["libroaring-dev"])]),
        .executableTarget(
            name: "BitmapKernels",
            dependencies: [.product(name: "Benchmark", package: "benchmark"),
                           .product(name: "TallyStorage", package: tally), "CRoaring"],
            path: "Benchmarks/BitmapKernels",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]),
        .executableTarget(
            name: "JSONWriting",
            dependencies: [.product(name: "Benchmark", package: "benchmark"),
                           .product(name: "TallyQuery", package: tally), .product(name: "TallyStorage", package: tally)],
            path: "Benchmarks/JSONWriting",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]),
        .executableTarget(
            name: "Engine",
            dependencies: [.product(name: "Benchmark", package: "benchmark"),
                           .product(name: "TallyStorage", package: tally),
                           .product(name: "TallyQuery", package: tally),
                           .product(name: "TallyGenerate", package: tally)],
            path: "Benchmarks/Engine",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]),
    ]
)
