#if canImport(Glibc)
import Glibc
#endif
import Control
import ControlServer
import FIB
import Wire
import FuzzInputs

/// libFuzzer target for the control socket's request decoder and dispatcher: every input is one request line
/// handed to a ControlService over the examples' config and a small FIB. Every input starts from the same state
/// (FIB content, generation, a new service: no open resync or subscription), so a crash reproduces from its one
/// file. Built only with `swift build --sanitize=fuzzer --product mplsgate-fuzz-request --scratch-path .build-fuzz`
/// (scripts/fuzz.sh).
let baseFIB = FIBSpec(
    nextHops: [NextHopSpec(name: "p1", port: "core0", mac: MACAddress(value: 0x02AA_0000_0001))],
    ilm: [ILMEntrySpec(label: 100, operation: .swap(out: [200], via: "p1", payload: nil, ttlMode: .uniform))])
nonisolated(unsafe) let engine: FIBEngine = {
    let config = InstanceConfig(ports: [
        PortConfig(name: "core0", mac: MACAddress(value: 0x0200_0000_0001), role: .core),
        PortConfig(name: "dc0", mac: MACAddress(value: 0x0200_0000_0003), role: .dc, vteps: [.v4(IPv4Address(value: 0xC000_0201))]),
        PortConfig(name: "vrf0", mac: MACAddress(value: 0x0200_0000_0004), role: .vrf, vrf: "blue"),
    ])
    let engine = try! FIBEngine(config: config, maxEntries: 10_000)
    try! engine.replaceAll(with: baseFIB)
    return engine
}()
let baseGeneration = engine.generation
nonisolated(unsafe) let client = FuzzSupport.makeClient()

/// MPLSGATE_FUZZ_REACH=1: counts each reply's outcome (a result, or the error code) and prints the histogram at exit
/// (scripts/fuzz.sh replays the corpus this way and fails if a reachable error code is missing).
let reach = getenv("MPLSGATE_FUZZ_REACH") != nil
nonisolated(unsafe) var outcomes: [String: Int] = [:]
nonisolated(unsafe) var reachRegistered = false

func countOutcomes(_ text: String) {
    if !reachRegistered {
        reachRegistered = true
        atexit {
            for (k, v) in outcomes.sorted(by: { $0.key < $1.key }) { print("reach \(k) \(v)") }
            fflush(nil)
        }
    }
    // Each reply is one line: {"jsonrpc":"2.0","id":…,"error":{"code":-32602,…}} or {…,"result":…}.
    for line in text.split(separator: "\n") {
        if let r = line.firstRange(of: "\"code\":") {
            let code = line[r.upperBound...].prefix { $0 == "-" || $0.isNumber }
            outcomes["code \(code)", default: 0] += 1
        } else if line.contains("\"result\":") {
            outcomes["result", default: 0] += 1
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRequest(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    if engine.generation != baseGeneration {
        try! engine.replaceAll(with: baseFIB)
        engine.resetGeneration(baseGeneration)
    }
    let service = ControlService(engine: engine, stateWriter: nil)
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    service.handle(line: bytes[...], from: client)
    if reach { countOutcomes(FuzzSupport.output(client)) }
    #if FUZZING
    FuzzSupport.discardOutput(client)
    #endif
    return 0
}

#if !FUZZING
/// Without libFuzzer (a plain `swift build`): replays inputs given as files, one request per file, so a crash found
/// by the fuzzer can be reproduced under the debugger.
@main
struct ReplayInputs {
    static func main() { FuzzInputs.replayArguments(fuzzRequest) { _ in FuzzSupport.output(client) } }
}
#endif
