// swift-tools-version:6.1
// MPLSGate benchmarks (package-benchmark). Run from this folder:
//   swift package --allow-writing-to-package-directory benchmark
// A separate package so the main build stays dependency-free and CI builds this only for the smoke pass.
import PackageDescription

let package = Package(
    name: "MPLSGateBenchmarks",
    dependencies: [
        .package(name: "MPLSGate", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        // The same-work C port of the pipeline, at -O3 (allowed here: this is a root package).
        .target(name: "CBaseline", path: "Benchmarks/CBaseline", cSettings: [.unsafeFlags(["-O3"])]),
        // Operations × tables × frame placements, run by both pipelines (shared by Pipeline and PipelineRatio).
        .target(
            name: "PipelineWorkloads",
            dependencies: ["CBaseline", .product(name: "MPLSGateCore", package: "MPLSGate")],
            path: "Sources/PipelineWorkloads"
        ),
        // libFuzzer differential target, Swift pipeline against its C port (scripts/fuzz.sh diff).
        .executableTarget(name: "mplsgate-fuzz-diff", dependencies: ["PipelineWorkloads"], path: "Sources/mplsgate-fuzz-diff"),
        // MAC learning: forwarding with learning on vs off, and the learner thread's throughput (issue 18).
        .executableTarget(name: "LearningBench", dependencies: ["PipelineWorkloads", .product(name: "MPLSGateCore", package: "MPLSGate")],
                          path: "Sources/LearningBench"),
        // Swift/C ratios, interleaved round by round: swift run -c release PipelineRatio --help
        .executableTarget(name: "PipelineRatio", dependencies: ["PipelineWorkloads"], path: "Sources/PipelineRatio"),
        .executableTarget(
            name: "Pipeline",
            dependencies: [
                "PipelineWorkloads",
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/Pipeline",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // Lookup cost and memory with 1M ILM, 1M VNI and 1M FTN entries (MPLSGATE_SCALE_ENTRIES overrides N).
        .executableTarget(
            name: "Scale",
            dependencies: [
                "PipelineWorkloads",
                .product(name: "MPLSGateCore", package: "MPLSGate"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/Scale",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
