import Foundation
import PackagePlugin

/// Compiles bpf/steer.bpf.c and bpf/xmit_errors.bpf.c with clang -target bpf and embeds the objects in the target
/// as Swift sources, so `swift build` builds the BPF programs too (DESIGN §2: bpf/ is part of the build, not an
/// install step).
@main
struct BPFObject: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let root = context.package.directoryURL
        let header = root.appending(path: "CSources/CXDP/include/mplsgate_xdp.h")
        let script = root.appending(path: "bpf/build.sh")
        let maps = root.appending(path: "bpf/xmit_maps.h")
        // The steering program (with the fast tier), and the tracing programs that count the fast tier's refused
        // redirects: a separate object, so that a kernel without BTF still loads the first.
        let objects: [(source: String, headers: [String], name: String)] = [
            ("bpf/steer.bpf.c", ["bpf/fast_tier.h"], "SteerProgramObject"),
            ("bpf/xmit_errors.bpf.c", [], "XmitErrorsObject"),
        ]
        return objects.map { o in
            let source = root.appending(path: o.source)
            let outSwift = context.pluginWorkDirectoryURL.appending(path: "\(o.name).swift")
            let outObject = context.pluginWorkDirectoryURL.appending(path: "\(o.name).o")
            return .buildCommand(
                displayName: "Compiling BPF object \(o.source)",
                executable: URL(filePath: "/bin/sh"),
                arguments: [script.path(), source.path(), header.deletingLastPathComponent().path(), outSwift.path(),
                            outObject.path(), o.name],
                environment: ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"],
                inputFiles: [source, header, script, maps] + o.headers.map { root.appending(path: $0) },
                outputFiles: [outSwift])
        }
    }
}
