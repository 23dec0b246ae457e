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
/// MPLSGATE_FUZZ_REACH=1 (`FuzzReach`): each input's outcome, a result or its error's kind, counted and printed at exit.
let config = try! FIBCodec.decodeConfig(FuzzInputs.repoFile("examples/config.json"))

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFIB(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size >= 1 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    if data[0] & 1 == 1 {
        do {
            let c = try FIBCodec.decodeConfig(bytes)
            _ = try FIBEngine(config: c, maxEntries: 16)
            FuzzReach.count("result config")
        } catch {
            precondition(!error.description.isEmpty, "an error without a message")
            FuzzReach.count("error \(error.kind.rawValue)")
        }
        return 0
    }
    do {
        let fib = try FIBCodec.decodeFIB(bytes)
        let compiled = try FIBCompiler.compile(config: config, fib: fib, maxEntries: 256)
        compiled.release()
        let again = try FIBCodec.decodeFIB(Array(JSONWriter.write(FIBCodec.encode(fib)).utf8))
        precondition(again == fib, "a FIB does not survive encode and decode")
        FuzzReach.count("result fib")
    } catch {
        precondition(!error.description.isEmpty, "an error without a message")
        FuzzReach.count("error \(error.kind.rawValue)")
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
