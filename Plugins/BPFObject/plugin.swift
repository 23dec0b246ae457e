import Foundation
import PackagePlugin

/// Compiles bpf/steer.bpf.c with clang -target bpf and embeds the object in the target as a Swift source, so
/// `swift build` builds the XDP program too (DESIGN §2: bpf/ is part of the build, not an install step).
@main
struct BPFObject: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let root = context.package.directoryURL
        let source = root.appending(path: "bpf/steer.bpf.c")
        let header = root.appending(path: "CSources/CXDP/include/mplsgate_xdp.h")
        let script = root.appending(path: "bpf/build.sh")
        let fastTier = root.appending(path: "bpf/fast_tier.h")
        let xmitErrors = root.appending(path: "bpf/xmit_errors.h")
        let outSwift = context.pluginWorkDirectoryURL.appending(path: "SteerProgramObject.swift")
        let outObject = context.pluginWorkDirectoryURL.appending(path: "steer.bpf.o")
        return [.buildCommand(
            displayName: "Compiling XDP program bpf/steer.bpf.c",
            executable: URL(filePath: "/bin/sh"),
            arguments: [script.path(), source.path(), header.deletingLastPathComponent().path(), outSwift.path(),
                        outObject.path()],
            environment: ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"],
            inputFiles: [source, header, script, fastTier, xmitErrors],
            outputFiles: [outSwift])]
    }
}
