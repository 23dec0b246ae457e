// swift-tools-version:6.1
// MPLSGate: an MPLS / VXLAN fast-path forwarder. Module boundaries follow docs/architecture.md:
// dependency arrows point down; the data plane never sees JSON, sockets or Foundation.
import PackageDescription

let package = Package(
    name: "MPLSGate",
    products: [
        .executable(name: "mplsgate", targets: ["mplsgate"]),
        .library(name: "MPLSGateCore", targets: ["Wire", "FIB", "Dataplane", "Control", "ControlServer", "IO"]),
    ],
    targets: [
        // Header layouts, field accessors, label / VNI newtypes, checksums. Imports nothing.
        .target(name: "Wire"),
        // The contract between control and data plane: the immutable FIB snapshot in raw memory.
        .target(name: "FIB", dependencies: ["Wire"]),
        // process(batch, fib): parse, look up, rewrite in place, verdict per frame, counters.
        .target(name: "Dataplane", dependencies: ["Wire", "FIB"]),
        // The control model: config and FIB intent, validation, compile into a snapshot.
        .target(name: "Control", dependencies: ["Wire", "FIB"]),
        // The JSON codec for config, FIB and (later) the control socket: the only module that knows JSON.
        .target(name: "ControlServer", dependencies: ["Control"]),
        // libpcap, through a module map.
        .systemLibrary(name: "CPcap", path: "CSources/CPcap", pkgConfig: "libpcap",
                       providers: [.apt(["libpcap-dev"])]),
        // Frame I/O: pcap/pcapng files (replay). Only IO imports C shims.
        .target(name: "IO", dependencies: ["CPcap", "Dataplane", "FIB"]),
        // The agent: replay (and later run, demo).
        .executableTarget(name: "mplsgate", dependencies: ["Wire", "FIB", "Dataplane", "Control", "ControlServer", "IO"]),

        .testTarget(name: "WireTests", dependencies: ["Wire"]),
        .testTarget(name: "DataplaneTests", dependencies: ["Wire", "FIB", "Dataplane", "Control", "ControlServer"]),
        .testTarget(name: "ControlTests", dependencies: ["Control", "ControlServer", "Wire"]),
        .testTarget(name: "ReplayTests", dependencies: ["IO", "Dataplane", "Control", "ControlServer"]),
    ]
)
