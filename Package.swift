// swift-tools-version:6.1
// MPLSGate: an MPLS / VXLAN fast-path forwarder. Module boundaries follow docs/architecture.md:
// dependency arrows point down; the data plane never sees JSON, sockets or Foundation.
import PackageDescription

let package = Package(
    name: "MPLSGate",
    products: [
        .executable(name: "mplsgate", targets: ["mplsgate"]),
        .executable(name: "mplsgate-traffic", targets: ["mplsgate-traffic"]),
        .executable(name: "mplsgatectl", targets: ["mplsgatectl"]),
        .library(name: "MPLSGateCore", targets: ["Wire", "BFD", "FIB", "Dataplane", "Control", "ControlServer", "Capture", "IO"]),
    ],
    dependencies: [
        // Command lines (subcommands, help, completion) and logs of the executables only: Wire, FIB, Dataplane and
        // the library product stay dependency-free, so the fuzz targets and Benchmarks/ do not build these.
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // /metrics of the live agent only (the MetricsEndpoint module): NIOHTTP1 serves it, swift-prometheus keeps what the
        // agent measures itself (commit latency, control requests). Nothing in the library product sees them.
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // Header layouts, field accessors, label / VNI newtypes, checksums. Imports nothing.
        .target(name: "Wire"),
        // The contract between control and data plane: the immutable FIB snapshot in raw memory.
        .target(name: "FIB", dependencies: ["Wire"]),
        // process(batch, fib): parse, look up, rewrite in place, verdict per frame, counters.
        .target(name: "Dataplane", dependencies: ["Wire", "FIB", "CPrefetch"]),
        // __builtin_prefetch for the pipeline's batch prefetch (header-only, inlined).
        .systemLibrary(name: "CPrefetch", path: "CSources/CPrefetch"),
        // BFD (RFC 5880/5881): control packets, the session state machine and their frames; pure logic the
        // protection thread runs.
        .target(name: "BFD", dependencies: ["Wire"]),
        // The control model: config and FIB intent, validation, compile into a snapshot.
        .target(name: "Control", dependencies: ["Wire", "FIB"]),
        // accept4 / SO_PEERCRED / signalfd / eventfd, hidden from Swift's Glibc module behind _GNU_SOURCE.
        .target(name: "CControlSocket", path: "CSources/CControlSocket"),
        // The JSON-RPC control socket, the state file, and the JSON codec for config and FIB: the only module
        // that knows JSON.
        .target(name: "ControlServer", dependencies: ["Control", "CControlSocket"]),
        // libpcap, through a module map.
        .systemLibrary(name: "CPcap", path: "CSources/CPcap", pkgConfig: "libpcap",
                       providers: [.apt(["libpcap-dev"])]),
        // Thin C shim over libbpf / libxdp / libnuma: UMEM, AF_XDP sockets, inline ring ops, XDP program load and
        // attach. Its include/mplsgate_xdp.h is shared with bpf/steer.bpf.c.
        .target(name: "CXDP", path: "CSources/CXDP",
                linkerSettings: [.linkedLibrary("xdp"), .linkedLibrary("bpf"), .linkedLibrary("numa")]),
        // Compiles bpf/steer.bpf.c (clang -target bpf) and embeds the object in IO.
        .plugin(name: "BPFObject", capability: .buildTool()),
        // Capture files: pcap/pcapng reading and writing, and offline replay through the pipeline.
        .target(name: "Capture", dependencies: ["CPcap", "Dataplane", "FIB"]),
        // Live frame I/O: the XDP steering program, AF_XDP ports, workers, the agent. (libpcap's and the kernel's
        // `struct bpf_insn` collide in one Clang module graph, so pcap and AF_XDP live in separate modules, each
        // importing its shim `internal`ly.)
        .target(name: "IO", dependencies: ["CXDP", "CControlSocket", "Dataplane", "FIB", "Wire", "BFD"], plugins: ["BPFObject"]),
        // The agent's Prometheus endpoint: an HTTP server (SwiftNIO) and the text-format writer.
        .target(name: "MetricsEndpoint", dependencies: [.product(name: "NIOCore", package: "swift-nio"),
                                                .product(name: "NIOPosix", package: "swift-nio"),
                                                .product(name: "NIOHTTP1", package: "swift-nio")]),
        // What the three command lines share: exit-status rules, --log-level and our log line format.
        .target(name: "CLISupport", dependencies: [.product(name: "ArgumentParser", package: "swift-argument-parser"),
                                                   .product(name: "Logging", package: "swift-log")]),
        // The agent: run (live), replay (offline), check.
        .executableTarget(name: "mplsgate", dependencies: ["Wire", "BFD", "FIB", "Dataplane", "Control", "ControlServer", "Capture", "IO",
                                                          "CControlSocket", "CLISupport", "MetricsEndpoint",
                                                          .product(name: "Prometheus", package: "swift-prometheus"),
                                                          .product(name: "ArgumentParser", package: "swift-argument-parser"),
                                                          .product(name: "Logging", package: "swift-log")]),
        // libFuzzer target for the control request decoder (scripts/fuzz.sh builds it with --sanitize=fuzzer).
        // What the fuzz targets share: reading files, the repository's files, replaying inputs without libFuzzer.
        .target(name: "FuzzInputs"),
        .executableTarget(name: "mplsgate-fuzz-request", dependencies: ["Control", "ControlServer", "FIB", "Wire", "FuzzInputs"],
                          swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
        // libFuzzer targets of the pipeline (lab FIB, redzoned frames), BFD as the core links face it, and the config /
        // FIB documents (scripts/fuzz.sh builds them with --sanitize=fuzzer --sanitize=address).
        .executableTarget(name: "mplsgate-fuzz-pipeline", dependencies: ["Control", "ControlServer", "Dataplane", "FIB", "Wire", "FuzzInputs"],
                          swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
        .executableTarget(name: "mplsgate-fuzz-bfd", dependencies: ["BFD", "Wire", "FuzzInputs"],
                          swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
        .executableTarget(name: "mplsgate-fuzz-fib", dependencies: ["Control", "ControlServer", "FIB", "Wire", "FuzzInputs"],
                          swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
        // The MAC learner: records, aging, flushes and controller changes against its tables' invariants.
        .executableTarget(name: "mplsgate-fuzz-learn", dependencies: ["Dataplane", "FIB", "Wire", "FuzzInputs"],
                          swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
        // Our pcap and pcapng readers (replay's input), frames into an exactly sized buffer.
        .executableTarget(name: "mplsgate-fuzz-capture", dependencies: ["Capture", "FuzzInputs"],
                          swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
        // The operator's and controllers' command-line client of the control socket.
        .executableTarget(name: "mplsgatectl", dependencies: ["ControlServer", "CLISupport",
                                                             .product(name: "ArgumentParser", package: "swift-argument-parser"),
                                                             .product(name: "Logging", package: "swift-log")]),
        // The project's traffic generator and sink (AF_PACKET) for tests and benchmarks on veth.
        .target(name: "CRawSocket", path: "CSources/CRawSocket"),
        .executableTarget(name: "mplsgate-traffic", dependencies: ["CRawSocket", "Capture", "Control", "CLISupport",
                                                                  .product(name: "ArgumentParser", package: "swift-argument-parser")]),

        .testTarget(name: "WireTests", dependencies: ["Wire"]),
        .testTarget(name: "BFDTests", dependencies: ["BFD", "Wire"]),
        .testTarget(name: "MetricsEndpointTests", dependencies: ["MetricsEndpoint"]),
        .testTarget(name: "DataplaneTests", dependencies: ["Wire", "FIB", "Dataplane", "Control", "ControlServer"]),
        .testTarget(name: "ControlTests", dependencies: ["Control", "ControlServer", "Wire"]),
        .testTarget(name: "ReplayTests", dependencies: ["Capture", "Dataplane", "Control", "ControlServer"]),
        // The three command lines' exit statuses and help, and the log line format.
        .testTarget(name: "CLITests", dependencies: ["CLISupport", "ControlServer", .product(name: "Logging", package: "swift-log")]),
        // The XDP program through BPF_PROG_TEST_RUN, the shared header's layout, QSBR (some need root).
        .testTarget(name: "IOTests", dependencies: ["IO", "CXDP", "FIB", "Control", "ControlServer", "Dataplane", "Wire"]),
    ]
)
