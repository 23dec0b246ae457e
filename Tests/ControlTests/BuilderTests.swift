#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import Wire
import FIB
import Control
@testable import ControlServer

/// A large resync compiles on a builder thread: the control thread keeps answering (busy for what needs the engine,
/// `info` from the facts before the compile), and the reply comes when the build is published.
@Suite struct BuilderTests {
    static let config = InstanceConfig(ports: [
        PortConfig(name: "core0", mac: MACAddress(value: 0x0200_0000_0001), role: .core),
        PortConfig(name: "dc0", mac: MACAddress(value: 0x0200_0000_0003), role: .dc, vteps: [.v4(IPv4Address(value: 0xC000_0201))]),
    ])

    func request(_ s: ControlService, _ c: RPCClient, _ id: Int, _ method: String, _ params: String = "{}") -> String {
        FuzzSupport.discardOutput(c)
        s.handle(line: Array("{\"jsonrpc\":\"2.0\",\"id\":\(id),\"method\":\"\(method)\",\"params\":\(params)}".utf8)[...], from: c)
        return FuzzSupport.output(c)
    }

    func waitReadable(_ fd: Int32) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&p, 1, 10_000) == 1
    }

    @Test func resyncCompilesOffTheControlThread() throws {
        let engine = try FIBEngine(config: Self.config, maxEntries: 10_000)
        let service = ControlService(engine: engine, stateWriter: nil)
        service.builderThreshold = 2
        let gate = DispatchSemaphore(value: 0)
        service.beforeCompile = { gate.wait() }
        let owner = RPCClient(id: 1, fd: -1, uid: 0, pid: 0), other = RPCClient(id: 2, fd: -1, uid: 0, pid: 0)
        let begin = request(service, owner, 1, "resync.begin")
        let session = try #require(begin.firstMatch(of: /"session":"([0-9a-f]+)"/)?.1)
        let chunk = request(service, owner, 2, "resync.chunk", """
            {"session":"\(session)","nextHops":[{"name":"p1","port":"core0","mac":"02:aa:00:00:00:01"}],
             "ilm":[{"label":100,"op":"swap","out":[200],"via":"p1"},{"label":101,"op":"swap","out":[201],"via":"p1"}]}
            """.replacingOccurrences(of: "\n", with: ""))
        #expect(chunk.contains("\"received\":3"), "\(chunk)")
        #expect(request(service, owner, 3, "resync.end", "{\"session\":\"\(session)\"}") == "", "the reply waits for the build")
        #expect(service.isCompiling)
        // Meanwhile: info from the facts before the compile, busy for what needs the engine, bfd served.
        let info = request(service, other, 4, "info")
        #expect(info.contains("\"generation\":0") && info.contains("\"compiling\":{\"what\":\"a resync of 3 entries\""), "\(info)")
        let apply = request(service, other, 5, "apply", "{\"operations\":[]}")
        #expect(apply.contains("-32001") && apply.contains("being compiled"), "\(apply)")
        #expect(request(service, other, 6, "dump", "{\"kind\":\"ilm\"}").contains("being compiled"))
        #expect(request(service, other, 7, "events.subscribe").contains("\"subscribed\":true"))
        #expect(request(service, other, 8, "no.such.method").contains("-32601"), "an unknown method is still unknown")
        weak var compile = service.compiling
        gate.signal()
        #expect(waitReadable(service.builderDone))
        service.finishCompile()
        #expect(!service.isCompiling)
        #expect(compile == nil, "the compile (and the resync it held) is freed once finished")
        let reply = FuzzSupport.output(owner)
        #expect(reply.contains("\"id\":3") && reply.contains("\"generation\":1") && reply.contains("\"added\":3"), "\(reply)")
        #expect(FuzzSupport.output(other).contains("\"type\":\"generation\""), "the subscriber hears the new generation")
        #expect(engine.counts.ilm == 2 && engine.generation == 1)
        let after = request(service, other, 18, "info")
        #expect(after.contains("\"generation\":1") && after.contains("\"compiling\":null")
                && after.contains("\"onBuilderThread\":1"), "\(after)")
        // An invalid resync fails on the builder thread and changes nothing.
        service.beforeCompile = nil
        let s2 = try #require(request(service, owner, 9, "resync.begin").firstMatch(of: /"session":"([0-9a-f]+)"/)?.1)
        _ = request(service, owner, 10, "resync.chunk", "{\"session\":\"\(s2)\",\"ilm\":[{\"label\":5,\"op\":\"swap\",\"out\":[200],\"via\":\"nowhere\"},{\"label\":102,\"op\":\"swap\",\"out\":[202],\"via\":\"nowhere\"}]}")
        #expect(request(service, owner, 11, "resync.end", "{\"session\":\"\(s2)\"}") == "")
        #expect(waitReadable(service.builderDone))
        service.finishCompile()
        let refused = FuzzSupport.output(owner)
        #expect(refused.contains("\"id\":11") && refused.contains("changed nothing"), "\(refused)")
        #expect(engine.generation == 1 && engine.counts.ilm == 2)
        // A large apply goes the same way; a notification (no id) compiles there too and gets no reply.
        let rows = (200..<203).map { "[\($0),\"swap\",[300],\"p1\"]" }.joined(separator: ",")
        let ops = "{\"operations\":[{\"op\":\"add\",\"kind\":\"ilm\",\"columns\":[\"label\",\"op\",\"out\",\"via\"],\"rows\":[\(rows)]}]}"
        #expect(request(service, owner, 12, "apply", ops) == "" && service.isCompiling)
        #expect(request(service, other, 13, "apply", "{\"operations\":[]}").contains("an apply of 3 changes is being compiled"))
        #expect(waitReadable(service.builderDone))
        service.collectFinishedWork()
        let applied = FuzzSupport.output(owner)
        #expect(applied.contains("\"id\":12") && applied.contains("\"generation\":2") && applied.contains("\"applied\":3"), "\(applied)")
        FuzzSupport.discardOutput(owner)
        let delete = "{\"jsonrpc\":\"2.0\",\"method\":\"apply\",\"params\":{\"operations\":[{\"op\":\"delete\",\"kind\":\"ilm\",\"keys\":[200,201,202]}]}}"
        service.handle(line: Array(delete.utf8)[...], from: owner)
        #expect(service.isCompiling && !owner.awaitingReply, "a notification does not hold its connection")
        #expect(waitReadable(service.builderDone))
        service.collectFinishedWork()
        #expect(FuzzSupport.output(owner) == "" && engine.generation == 3 && engine.counts.ilm == 2)
    }

    /// Large requests are parsed and decoded on a thread: the connection's reply waits (and its next request behind
    /// it), other connections are served meanwhile, and errors read as they do inline.
    @Test func largeRequestsDecodeOffTheControlThread() throws {
        let engine = try FIBEngine(config: Self.config, maxEntries: 10_000)
        let service = ControlService(engine: engine, stateWriter: nil)
        service.decodeThreshold = 200   // the applies and the bad chunk below; not info
        let a = RPCClient(id: 1, fd: -1, uid: 0, pid: 0), b = RPCClient(id: 2, fd: -1, uid: 0, pid: 0)
        func collect(_ c: RPCClient) -> String {
            while FuzzSupport.output(c).isEmpty {
                guard waitReadable(service.builderDone) else { break }
                service.collectFinishedWork()
            }
            return FuzzSupport.output(c)
        }
        #expect(request(service, a, 1, "apply", """
            {"operations":[{"op":"add","kind":"nextHop","entry":{"name":"p1","port":"core0","mac":"02:aa:00:00:00:01"}},\
            {"op":"add","kind":"ilm","columns":["label","op","out","via"],"rows":[[100,"swap",[200],"p1"],[101,"swap",[201],"p1"]]}]}
            """) == "", "the reply waits for the decoder")
        #expect(a.awaitingReply)
        let info = request(service, b, 2, "info")
        // (Only collectFinishedWork delivers a decoded reply, so a's output is empty here by construction: what this
        // shows is that b was answered while a still waits for its reply.)
        #expect(info.contains("\"id\":2") && a.awaitingReply,
                "another connection is served while the first one's reply waits for its decoder: \(info)")
        let applied = collect(a)
        #expect(applied.contains("\"id\":1") && applied.contains("\"applied\":3") && !a.awaitingReply, "\(applied)")
        #expect(engine.counts.ilm == 2)
        // Errors name what they named inline: a bad row of a compact operation, a bad row of a chunk, bad JSON.
        FuzzSupport.discardOutput(a)
        _ = request(service, a, 3, "apply", "{\"operations\":[{\"op\":\"add\",\"kind\":\"ilm\",\"columns\":[\"label\",\"op\",\"out\",\"via\"],\"rows\":[[102,\"swap\",[202],\"p1\"],[103,\"swap\",[5],\"p1\"]]}]}")
        let bad = collect(a)
        #expect(bad.contains("-32003") && bad.contains("operations[0].rows[1]"), "\(bad)")
        FuzzSupport.discardOutput(a)
        _ = request(service, a, 4, "resync.begin")
        let session = try #require(collect(a).firstMatch(of: /"session":"([0-9a-f]+)"/)?.1)
        FuzzSupport.discardOutput(a)
        _ = request(service, a, 5, "resync.chunk", "{\"session\":\"\(session)\",\"ilm\":[]}")
        #expect(collect(a).contains("\"chunk\":0"))
        FuzzSupport.discardOutput(a)
        _ = request(service, a, 6, "resync.chunk", "{\"session\":\"\(session)\",\"ilm\":{\"columns\":[\"label\",\"op\",\"out\",\"via\"],\"rows\":[[7,\"swap\",[9],\"p1\"],[104,\"swap\",[1048576],\"p1\"]]}}")
        let badChunk = collect(a)
        #expect(badChunk.contains("chunk 1 ilm.rows[1]") && badChunk.contains("the session stays open"), "\(badChunk)")
        // A good chunk from the owner is appended on the decoder thread; the resync then holds every entry sent.
        FuzzSupport.discardOutput(a)
        _ = request(service, a, 8, "resync.chunk", "{\"session\":\"\(session)\",\"nextHops\":[{\"name\":\"p1\",\"port\":\"core0\",\"mac\":\"02:aa:00:00:00:01\"}],\"ilm\":{\"columns\":[\"label\",\"op\",\"out\",\"via\"],\"rows\":[[300,\"swap\",[900],\"p1\"],[301,\"swap\",[901],\"p1\"],[302,\"swap\",[902],\"p1\"]]}}")
        #expect(a.awaitingReply)
        let good = collect(a)
        #expect(good.contains("\"chunk\":1") && good.contains("\"received\":4") && good.contains("\"total\":4"), "\(good)")
        FuzzSupport.discardOutput(a)
        _ = request(service, a, 9, "resync.chunk", "{\"session\":\"\(session)\",\"ilm\":{\"columns\":[\"label\",\"op\",\"out\",\"via\"],\"rows\":[[303,\"swap\",[903],\"p1\"],[304,\"swap\",[904],\"p1\"],[305,\"swap\",[905],\"p1\"]]}}")
        #expect(collect(a).contains("\"total\":7"))
        // A chunk its decoder appended but the control thread refuses (an unknown parameter, a bad envelope) is not
        // taken: the resync below holds only the 6 labels above.
        let rows = "{\"columns\":[\"label\",\"op\",\"out\",\"via\"],\"rows\":["
            + (400..<406).map { "[\($0),\"swap\",[906],\"p1\"]" }.joined(separator: ",") + "]}"
        FuzzSupport.discardOutput(a)
        _ = request(service, a, 20, "resync.chunk", "{\"session\":\"\(session)\",\"foo\":1,\"ilm\":\(rows)}")
        #expect(a.awaitingReply, "the chunk goes to the decoder")
        let unknown = collect(a)
        #expect(unknown.contains("-32602") && unknown.contains("foo"), "\(unknown)")
        FuzzSupport.discardOutput(a)
        service.handle(line: Array("{\"jsonrpc\":\"1.0\",\"id\":21,\"method\":\"resync.chunk\",\"params\":{\"session\":\"\(session)\",\"ilm\":\(rows)}}".utf8)[...], from: a)
        #expect(a.awaitingReply, "the chunk goes to the decoder")
        #expect(collect(a).contains("-32600"))
        FuzzSupport.discardOutput(a)
        let end = request(service, a, 10, "resync.end", "{\"session\":\"\(session)\"}")
        #expect(end.contains("\"generation\":2") && end.contains("\"added\":6") && end.contains("\"deleted\":2"), "\(end)")
        #expect(engine.counts.ilm == 6)
        FuzzSupport.discardOutput(a)
        service.handle(line: Array(("{\"jsonrpc\":\"2.0\",\"id\":7," + String(repeating: " ", count: 300)).utf8)[...], from: a)
        #expect(a.awaitingReply, "a long line goes to the decoder")
        #expect(collect(a).contains("-32700"))
        #expect(engine.counts.ilm == 6 && engine.generation == 2)
    }

    /// After a resync the digest is the document's (summed on a second thread while the engine works): the same as
    /// summing the engine's entries, into an empty FIB and as a large diff into a full one.
    @Test func aResyncsDigestIsTheFIBs() throws {
        let engine = try FIBEngine(config: Self.config, maxEntries: 20_000)
        let service = ControlService(engine: engine, stateWriter: nil)
        let owner = RPCClient(id: 1, fd: -1, uid: 0, pid: 0)
        for (round, base) in [100, 9_000].enumerated() {
            let s = try #require(request(service, owner, 1, "resync.begin").firstMatch(of: /"session":"([0-9a-f]+)"/)?.1)
            let rows = (base..<base + 5_000).map { "[\($0),\"swap\",[\($0 + 1)],\"p1\"]" }.joined(separator: ",")
            _ = request(service, owner, 2, "resync.chunk", "{\"session\":\"\(s)\",\"nextHops\":[{\"name\":\"p1\",\"port\":\"core0\",\"mac\":\"02:aa:00:00:00:01\"}],\"ilm\":{\"columns\":[\"label\",\"op\",\"out\",\"via\"],\"rows\":[\(rows)]}}")
            let end = request(service, owner, 3, "resync.end", "{\"session\":\"\(s)\"}")
            #expect(end.contains("\"generation\":\(round + 1)"), "\(end)")
            #expect(service.digestText == ControlService(engine: engine, stateWriter: nil).digestText, "round \(round)")
        }
        #expect(engine.counts.ilm == 5_000)
    }

    @Test func smallResyncsStayOnTheControlThread() throws {
        let engine = try FIBEngine(config: Self.config, maxEntries: 10_000)
        let service = ControlService(engine: engine, stateWriter: nil)
        service.builderThreshold = 100
        let owner = RPCClient(id: 1, fd: -1, uid: 0, pid: 0)
        let s = try #require(request(service, owner, 1, "resync.begin").firstMatch(of: /"session":"([0-9a-f]+)"/)?.1)
        _ = request(service, owner, 2, "resync.chunk", "{\"session\":\"\(s)\",\"nextHops\":[{\"name\":\"p1\",\"port\":\"core0\",\"mac\":\"02:aa:00:00:00:01\"}]}")
        let end = request(service, owner, 3, "resync.end", "{\"session\":\"\(s)\"}")
        #expect(end.contains("\"generation\":1") && !service.isCompiling, "\(end)")
    }
}
