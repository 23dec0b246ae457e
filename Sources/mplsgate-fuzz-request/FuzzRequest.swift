#if canImport(Glibc)
import Glibc
#endif
import Control
import ControlServer
import FIB
import Wire
import FuzzInputs

/// libFuzzer target for the control socket's request decoder and dispatcher: every input is one request line
/// handed to a ControlService over the examples' config and a small FIB (odd-sized inputs through `handleDecoded`,
/// the decoder-thread path of large requests). Every input starts from the same state
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

/// Outcomes (MPLSGATE_FUZZ_REACH=1, `FuzzReach`): each reply's result, or its error code.
let reach = FuzzReach.enabled

func countOutcomes(_ text: String) {
    // Each reply is one line: {"jsonrpc":"2.0","id":…,"error":{"code":-32602,…}} or {…,"result":…}.
    for line in text.split(separator: "\n") {
        if let r = line.firstRange(of: "\"code\":") {
            FuzzReach.count("code \(line[r.upperBound...].prefix { $0 == "-" || $0.isNumber })")
        } else if line.contains("\"result\":") {
            FuzzReach.count("result reply")
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
    // Odd-sized inputs go the way of a large request (parsed and decoded as on a decoder thread), even-sized ones
    // the inline way: both decoders see every kind of input.
    if size & 1 == 1 { service.handleDecoded(line: bytes[...], from: client) } else { service.handle(line: bytes[...], from: client) }
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
