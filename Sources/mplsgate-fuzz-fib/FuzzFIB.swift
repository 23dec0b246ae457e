#if canImport(Glibc)
import Glibc
#endif
import Control
import ControlServer
import FIB
import Wire
import FuzzInputs

/// libFuzzer target for the documents operators and controllers hand in: the instance config and the FIB (also the
/// state file's body). Byte 0 chooses: even, a FIB validated and compiled against the lab config; odd, a config.
/// Bad input must come back as a ValidationError naming an element, never a crash; a FIB that compiles must encode
/// to a document that decodes to the same FIB.
let config = try! FIBCodec.decodeConfig(FuzzInputs.repoFile("examples/config.json"))

/// MPLSGATE_FUZZ_REACH=1: counts each input's outcome (a compiled FIB or config, or the error's kind) and prints the
/// histogram at exit (scripts/fuzz.sh replays the corpus this way and fails if a kind of error is missing).
let reach = getenv("MPLSGATE_FUZZ_REACH") != nil
nonisolated(unsafe) var outcomes: [String: Int] = [:]
nonisolated(unsafe) var reachRegistered = false

func count(_ outcome: String) {
    guard reach else { return }
    if !reachRegistered {
        reachRegistered = true
        atexit {
            for (k, v) in outcomes.sorted(by: { $0.key < $1.key }) { print("reach \(k) \(v)") }
            fflush(nil)
        }
    }
    outcomes[outcome, default: 0] += 1
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFIB(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size >= 1 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    if data[0] & 1 == 1 {
        do {
            let c = try FIBCodec.decodeConfig(bytes)
            _ = try FIBEngine(config: c, maxEntries: 16)
            count("result config")
        } catch {
            precondition(!error.description.isEmpty, "an error without a message")
            count("error \(error.kind.rawValue)")
        }
        return 0
    }
    do {
        let fib = try FIBCodec.decodeFIB(bytes)
        let compiled = try FIBCompiler.compile(config: config, fib: fib, maxEntries: 256)
        compiled.release()
        let again = try FIBCodec.decodeFIB(Array(JSONWriter.write(FIBCodec.encode(fib)).utf8))
        precondition(again == fib, "a FIB does not survive encode and decode")
        count("result fib")
    } catch {
        precondition(!error.description.isEmpty, "an error without a message")
        count("error \(error.kind.rawValue)")
    }
    return 0
}

#if !FUZZING
/// Without libFuzzer (a plain `swift build`): runs the inputs given as files.
@main
struct ReplayInputs {
    static func main() { FuzzInputs.replayArguments(fuzzFIB) }
}
#endif
