#if canImport(Glibc)
import Glibc
#endif

/// What the libFuzzer targets share: reading a file whole, the repository's files (the lab config and FIB), and,
/// in a plain build without libFuzzer, running inputs given as files so a crash reproduces under the debugger.
public enum FuzzInputs {
    /// The whole file, or nil when it cannot be opened.
    public static func read(_ path: String) -> [UInt8]? {
        guard let f = fopen(path, "rb") else { return nil }
        defer { fclose(f) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&chunk, 1, chunk.count, f)
            out += chunk[0..<n]
            if n < chunk.count { return out }
        }
    }

    /// A file of this repository (`relative` to its root), found from the source file path of the caller.
    public static func repoFile(_ relative: String, from file: String = #filePath) -> [UInt8] {
        var root = file
        for _ in 0..<3 { root = String(root[..<(root.lastIndex(of: "/") ?? root.startIndex)]) }
        guard let bytes = read(root + "/" + relative) else { fatalError("cannot open \(relative)") }
        return bytes
    }

    /// Runs `target` on every file named on the command line; `report` says what each one did.
    public static func replayArguments(_ target: (UnsafePointer<UInt8>, Int) -> Int32,
                                       report: (String) -> String = { _ in "ok" }) {
        for path in CommandLine.arguments.dropFirst() {
            guard let bytes = read(path) else { continue }
            _ = bytes.withUnsafeBufferPointer { target($0.baseAddress ?? UnsafePointer(bitPattern: 1)!, $0.count) }
            print("\(path): \(report(path))")
        }
    }
}

/// MPLSGATE_FUZZ_REACH=1: targets count each input's outcome (a result, or the kind or code of its error) and the
/// histogram is printed at exit as `reach OUTCOME N` lines (scripts/fuzz.sh replays a corpus this way and fails when
/// an outcome it expects is missing). Off: `count` does nothing.
public enum FuzzReach {
    public static let enabled = getenv("MPLSGATE_FUZZ_REACH") != nil
    nonisolated(unsafe) static var outcomes: [String: Int] = [:]
    nonisolated(unsafe) static var registered = false

    public static func count(_ outcome: String) {
        guard enabled else { return }
        if !registered {
            registered = true
            atexit {
                for (k, v) in FuzzReach.outcomes.sorted(by: { $0.key < $1.key }) { print("reach \(k) \(v)") }
                fflush(nil)
            }
        }
        outcomes[outcome, default: 0] += 1
    }
}
