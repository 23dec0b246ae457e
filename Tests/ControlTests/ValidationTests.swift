import Testing
import Wire
import FIB
import Control
import ControlServer

/// Bad documents are refused with an error naming the element; nothing is compiled.
@Suite struct ValidationTests {
    static let config = """
        {"version":1,"ports":[{"name":"core0","mac":"02:00:00:00:00:01","role":"core"},
          {"name":"dc0","mac":"02:00:00:00:00:03","role":"dc","vteps":["192.0.2.1"]}]}
        """
    static let nh = #"{"name":"p1","port":"core0","mac":"02:aa:00:00:00:01"}"#

    func compile(_ body: String) throws(ValidationError) {
        let cfg = try FIBCodec.decodeConfig(Array(Self.config.utf8))
        let fib = try FIBCodec.decodeFIB(Array(#"{"version":1,"nextHops":[\#(Self.nh)],"# .utf8) + Array(body.utf8) + Array("}".utf8))
        try FIBCompiler.compile(config: cfg, fib: fib).release()
    }

    /// Backups (link protection): they exist, are not the next hop itself, have no backup of their own, and a
    /// backup's own next hop gets none; backup labels only where a backup can use them.
    @Test(arguments: [
        (#"{"name":"q","port":"core0","mac":"02:aa:00:00:00:09","backup":"q"}"#, "", "nextHops[1] (q)", "its own backup"),
        (#"{"name":"q","port":"core0","mac":"02:aa:00:00:00:09","backup":"nowhere"}"#, "", "nextHops[1] (q)", "nowhere"),
        (#"{"name":"q","port":"core0","mac":"02:aa:00:00:00:09","backup":"r"},{"name":"r","port":"core0","mac":"02:aa:00:00:00:0a","backup":"p1"}"#,
         "", "nextHops[1] (q)", "backup of its own"),
        (#"{"name":"q","port":"core0","mac":"02:aa:00:00:00:09","backup":"p1"}"#,
         #","ecmpGroups":[{"name":"g","members":["p1","q"]}],"ilm":[{"label":16,"op":"swap","out":[20],"via":"g","backupOut":[30]}]"#,
         "ilm[0] (label 16)", "not a group"),
        (#"{"name":"q","port":"core0","mac":"02:aa:00:00:00:09","backup":"p1"}"#,
         #","ilm":[{"label":16,"op":"swap","out":[3],"payload":"mpls","via":"q","backupOut":[30]}]"#, "ilm[0] (label 16)", "not PHP"),
        (#"{"name":"q","port":"core0","mac":"02:aa:00:00:00:09","backup":"p1"}"#,
         #","ilm":[{"label":16,"op":"pop","backupOut":[30]}]"#, "ilm[0] (label 16)", "swap entries"),
        (#"{"name":"q","port":"core0","mac":"02:aa:00:00:00:09","backup":"p1"}"#,
         #","ilm":[{"label":16,"op":"swap","out":[20],"via":"q","backupOut":[30,31,32,33,34,35,36,37,38]}]"#,
         "ilm[0] (label 16).backupOut", "at most 8"),
    ])
    func backupsAreChecked(_ nextHop: String, _ rest: String, _ element: String, _ phrase: String) throws {
        let cfg = try FIBCodec.decodeConfig(Array(Self.config.utf8))
        let doc = #"{"version":1,"nextHops":[\#(Self.nh),\#(nextHop)]\#(rest)}"#
        do {
            try FIBCompiler.compile(config: cfg, fib: try FIBCodec.decodeFIB(Array(doc.utf8))).release()
            Issue.record("accepted: \(doc)")
        } catch {
            #expect(error.element == element && error.description.contains(phrase), "\(doc) → \(error)")
        }
    }

    /// BFD on a next hop: core ports only, addresses of one family, the local one the port's; the document and the
    /// apply paths refuse alike, and a good one round-trips through the codec.
    static let bfdConfig = """
        {"version":1,"ports":[{"name":"core0","mac":"02:00:00:00:00:01","role":"core","bfdAddresses":["10.1.0.1","fe80::1"]},
          {"name":"core1","mac":"02:00:00:00:00:02","role":"core"},
          {"name":"dc0","mac":"02:00:00:00:00:03","role":"dc","vteps":["192.0.2.1"]}]}
        """
    @Test(arguments: [
        (#""port":"dc0","bfd":{"peer":"10.1.0.2"}"#, "core ports only"),
        (#""port":"core1","bfd":{"peer":"10.1.0.2"}"#, "no IPv4 address"),
        (#""port":"core0","bfd":{"peer":"10.1.0.2","local":"10.1.0.9"}"#, "not one of port core0's bfdAddresses"),
        (#""port":"core0","bfd":{"peer":"10.1.0.2","local":"fe80::1"}"#, "different families"),
        (#""port":"core0","bfd":{"peer":"10.1.0.1"}"#, "the same address"),
        (#""port":"core0","bfd":{"peer":"224.0.0.5"}"#, "not a unicast"),
        (#""port":"core0","bfd":{"peer":"ff02::5"}"#, "not a unicast"),
        (#""port":"core0","bfd":{"peer":"10.1.0.2","minTxMs":5}"#, "minTxMs"),
        (#""port":"core0","bfd":{"peer":"10.1.0.2","multiplier":0}"#, "multiplier"),
        (#""port":"core0","bfd":{"peer":"10.1.0.2","echo":true}"#, "echo"),
        (#""port":"core0","bfd":{"local":"10.1.0.1"}"#, "peer"),
    ])
    func bfdIsChecked(_ fields: String, _ phrase: String) throws {
        let cfg = try FIBCodec.decodeConfig(Array(Self.bfdConfig.utf8))
        let nh = #"{"name":"q","mac":"02:aa:00:00:00:09",\#(fields)}"#
        do {
            let fib = try FIBCodec.decodeFIB(Array(#"{"version":1,"nextHops":[\#(nh)]}"#.utf8))
            try FIBCompiler.compile(config: cfg, fib: fib).release()
            Issue.record("accepted: \(nh)")
        } catch {
            #expect(error.element.hasPrefix("nextHops[0] (q)") && error.description.contains(phrase), "\(nh) → \(error)")
        }
        // The same next hop through an apply transaction.
        let engine = try FIBEngine(config: cfg)
        if let op = try? FIBCodec.decodeNextHop(try JSONParser.parse(Array(nh.utf8)), "q") {
            #expect(throws: (any Error).self, "apply accepted \(nh)") { try engine.apply([.add(.nextHop(op))]) }
        }
    }

    @Test func bfdRoundTripsWithDefaults() throws {
        let cfg = try FIBCodec.decodeConfig(Array(Self.bfdConfig.utf8))
        let doc = #"{"version":1,"nextHops":[{"name":"q","port":"core0","mac":"02:aa:00:00:00:09","bfd":{"peer":"fe80::2"}}]}"#
        let fib = try FIBCodec.decodeFIB(Array(doc.utf8))
        let b = try #require(fib.nextHops[0].bfd)
        #expect(b.peer == IPAddress("fe80::2") && b.local == nil && b.minTxMs == 300 && b.minRxMs == 300 && b.multiplier == 3)
        #expect(bfdLocal(b, port: cfg.ports[0]) == IPAddress("fe80::1"))
        let again = try FIBCodec.decodeFIB(Array(JSONWriter.write(FIBCodec.encode(fib)).utf8))
        #expect(again == fib)
        try FIBCompiler.compile(config: cfg, fib: fib).release()
    }

    @Test func validFIBCompiles() throws {
        try compile(#""ilm":[{"label":16,"op":"swap","out":[0],"via":"p1"},{"label":1048575,"op":"swap","out":[3],"payload":"ipv4","via":"p1"}]"#)
    }

    static let bad: [(String, String, String)] = [
        (#""ilm":[{"label":15,"op":"pop"}]"#, "ilm[0] (label 15)", "reserved"),
        (#""ilm":[{"label":0,"op":"pop"}]"#, "ilm[0] (label 0)", "reserved"),
        (#""ilm":[{"label":1048576,"op":"pop"}]"#, "ilm[0] (label 1048576)", "above 1048575"),
        (#""ilm":[{"label":16,"op":"swap","out":[1048576],"via":"p1"}]"#, "ilm[0] (label 16).out[0]", "outside"),
        (#""ilm":[{"label":16,"op":"swap","out":[3,100],"via":"p1"}]"#, "ilm[0] (label 16).out[0]", "reserved"),
        (#""ilm":[{"label":16,"op":"swap","out":[1],"via":"p1"}]"#, "ilm[0] (label 16).out[0]", "reserved"),
        (#""ilm":[{"label":16,"op":"swap","out":[],"via":"p1"}]"#, "ilm[0] (label 16).out", "at least one"),
        (#""ilm":[{"label":16,"op":"swap","out":[17,17,17,17,17,17,17,17,17,17,17,17,17,17,17,17,17],"via":"p1"}]"#, "ilm[0] (label 16).out", "at most 16"),
        (#""ilm":[{"label":16,"op":"swap","out":[3],"via":"p1"}]"#, "ilm[0] (label 16)", "payload"),
        (#""ilm":[{"label":16,"op":"swap","out":[20],"via":"nowhere"}]"#, "ilm[0] (label 16)", "nowhere"),
        (#""ilm":[{"label":16,"op":"pop"},{"label":16,"op":"drop"}]"#, "ilm[1] (label 16)", "duplicate"),
        (#""ilm":[{"label":16,"op":"jump"}]"#, "ilm[0] (label 16).op", "not swap"),
        (#""ilm":[{"label":16,"op":"pop","tllMode":"pipe"}]"#, "ilm[0] (label 16)", "unknown key"),
        (#""ilm":[{"label":16,"op":"popToVXLAN","vni":1,"localVtep":"192.0.2.1","remoteVtep":"192.0.2.2","via":"p1","ttlMode":"uniform"}]"#, "ilm[0] (label 16).ttlMode", "pipe only"),
        (#""ilm":[{"label":16,"op":"popToVXLAN","vni":16777216,"localVtep":"192.0.2.1","remoteVtep":"192.0.2.2","via":"p1"}]"#, "ilm[0] (label 16)", "vni"),
        (#""ilm":[{"label":16,"op":"popToVXLAN","vni":1,"localVtep":"192.0.2.1","remoteVtep":"2001:db8::2","via":"p1"}]"#, "ilm[0] (label 16)", "family"),
        (#""ilm":[{"label":16,"op":"popToIP","payload":"ipv4"}]"#, "ilm[0] (label 16)", "exactly one"),
        (#""ilm":[{"label":16,"op":"popToIP","payload":"ipv4","vrf":"red"}]"#, "ilm[0] (label 16)", "red"),
        (#""vni":[{"vni":16777216,"push":[100],"via":"p1","allowedVteps":["192.0.2.2"]}]"#, "vni[0] (vni 16777216)", "above"),
        (#""vni":[{"vni":5,"push":[100,2],"via":"p1","allowedVteps":["192.0.2.2"]}]"#, "vni[0] (vni 5).push", "service label"),
        (#""vni":[{"vni":5,"push":[100],"via":"p1","allowedVteps":[]}]"#, "vni[0] (vni 5)", "allowedVTEPs"),
        (#""vni":[{"vni":5,"push":[100],"via":"p1","allowedVteps":["192.0.2.2"],"ttlMode":"uniform"}]"#, "vni[0] (vni 5).ttlMode", "pipe only"),
        (#""vni":[{"vni":5,"push":[100],"via":"p1","allowedVteps":["192.0.2.2"]},{"vni":5,"push":[100],"via":"p1","allowedVteps":["192.0.2.2"]}]"#, "vni[1] (vni 5)", "duplicate"),
        (#""ftn":[{"prefix":"10.0.0.1/8","via":"p1"}]"#, "ftn[0] (default:10.0.0.1/8)", "beyond the prefix"),
        (#""ftn":[{"prefix":"10.0.0.0/33","via":"p1"}]"#, "ftn[0] (default:10.0.0.0/33)", "outside"),
        (#""ftn":[{"prefix":"10.0.0.0","via":"p1"}]"#, "ftn[0] (10.0.0.0).prefix", "ADDRESS/LENGTH"),
        (#""ftn":[{"prefix":"10.0.0.0/8","via":"p1","vrf":"nope"}]"#, "ftn[0] (nope:10.0.0.0/8)", "nope"),
        (#""ecmpGroups":[{"name":"g","members":[]}]"#, "ecmpGroups[0] (g)", "at least one"),
        (#""ecmpGroups":[{"name":"g","members":["p1","p1"]}]"#, "ecmpGroups[0] (g).members[1]", "duplicate"),
        (#""ecmpGroups":[{"name":"p1","members":["p1"]}]"#, "ecmpGroups[0] (p1)", "duplicate"),
        (#""ecmpGroups":[{"name":"g","members":["zz"]}]"#, "ecmpGroups[0] (g).members[0]", "not a next hop"),
        (#""ilm":[{"label":"16","op":"pop"}]"#, "ilm[0].label", "expected an integer"),
        (#""ilm":[{"label":16.5,"op":"pop"}]"#, "ilm[0].label", "not an integer"),
        (#""ilm":{"label":16}"#, "fib.ilm", "expected an array"),
        (#""ilm":{"columns":["label","op"],"rows":[[16,"pop"],[17]]}"#, "ilm.rows[1]", "1 cells for 2 columns"),
        (#""ilm":{"columns":["label","label"],"rows":[]}"#, "ilm.columns[1]", "duplicate column"),
        (#""ilm":{"columns":["label","op"],"rows":[{"label":16}]}"#, "ilm.rows[0]", "expected an array of 2 cells"),
        (#""ilm":{"columns":["label","op","out"],"rows":[[16,"swap",[5]]]}"#, "ilm.rows[0] (label 16)", "missing \"via\""),
        (#""ilm":{"columns":["label","op","colour"],"rows":[[16,"pop","red"]]}"#, "ilm.rows[0] (label 16)", "unknown key \"colour\""),
        (#""ilm":{"columns":[],"rows":[]}"#, "ilm.columns", "column names"),
        (#""ilm":[{"label":16,"op":"pop"}],"ilm":[]"#, "json", "duplicate key"),
        (#""ilm":[{"label":16,"op":"pop"}"#, "json", "expected"),
    ]

    @Test("bad FIB", arguments: 0..<bad.count)
    func badFIB(_ i: Int) {
        let (body, element, phrase) = Self.bad[i]
        do {
            try compile(body)
            Issue.record("accepted: \(body)")
        } catch {
            #expect(error.element == element, "\(body) → \(error)")
            #expect(error.description.contains(phrase), "\(body) → \(error)")
        }
    }

    @Test func compactSectionsMeanTheSameEntries() throws {
        let objects = try FIBCodec.decodeFIB(Array(#"{"version":1,"nextHops":[{"name":"p1","port":"core0","mac":"02:aa:00:00:00:01"}],"ilm":[{"label":16,"op":"swap","out":[17],"via":"p1"},{"label":18,"op":"pop","ttlMode":"pipe"}]}"#.utf8))
        let compact = try FIBCodec.decodeFIB(Array(#"{"version":1,"nextHops":{"columns":["name","port","mac"],"rows":[["p1","core0","02:aa:00:00:00:01"]]},"ilm":{"columns":["label","op","out","via","ttlMode"],"rows":[[16,"swap",[17],"p1",null],[18,"pop",null,null,"pipe"]]}}"#.utf8))
        #expect(objects == compact && compact.ilm.count == 2)
    }

    @Test func nextHopReferencingAMissingPort() {
        let cfg = try! FIBCodec.decodeConfig(Array(Self.config.utf8))
        let fib = FIBSpec(nextHops: [NextHopSpec(name: "x", port: "core9", mac: MACAddress(value: 1))])
        #expect(throws: ValidationError("nextHops[0] (x)", "port \"core9\" is not in the config", kind: .reference)) {
            try FIBCompiler.compile(config: cfg, fib: fib)
        }
    }

    @Test func badConfigs() {
        let cases: [(String, String)] = [
            (#"{"version":2,"ports":[]}"#, "version"),
            (#"{"version":1,"ports":[]}"#, "ports"),
            (#"{"version":1,"ports":[{"name":"a","mac":"02:00:00:00:00:01","role":"dc"}]}"#, "ports[0] (a)"),
            (#"{"version":1,"ports":[{"name":"a","mac":"zz","role":"core"}]}"#, "ports[0] (a).mac"),
            (#"{"version":1,"ports":[{"name":"a","mac":"02:00:00:00:00:01","role":"edge"}]}"#, "ports[0] (a).role"),
        ]
        for (text, element) in cases {
            do {
                let c = try FIBCodec.decodeConfig(Array(text.utf8))
                try validate(c)
                Issue.record("accepted \(text)")
            } catch {
                #expect(error.element == element, "\(text) → \(error)")
            }
        }
    }
}

@Suite struct JSONTests {
    @Test func parsesAndRoundTrips() throws {
        let text = #"{"a":[1,-2.5e3,true,false,null,"x\"\\\/\n\u00e9\ud83d\ude00"],"b":{}}"#
        let v = try JSONParser.parse(text)
        #expect(try JSONParser.parse(JSONWriter.write(v)) == v)
    }

    @Test func duplicateKeysAreFoundInSmallAndLargeObjects() throws {
        func object(_ keys: [Int]) -> String { "{" + keys.map { "\"k\($0)\":\($0)" }.joined(separator: ",") + "}" }
        _ = try JSONParser.parse(object(Array(0..<40)))
        for dup in [[0, 1, 2, 1], Array(0..<15) + [14], Array(0..<16) + [15], Array(0..<16) + [0], Array(0..<30) + [17]] {
            #expect(throws: JSONSyntaxError.self, "keys \(dup)") { try JSONParser.parse(object(dup)) }
        }
    }

    @Test func rejectsBadInput() {
        let bad: [[UInt8]] = [
            Array("".utf8), Array("{".utf8), Array("[1,]".utf8), Array("01".utf8), Array("{\"a\":1,\"a\":2}".utf8),
            Array("\"\u{01}\"".utf8), Array("[1] x".utf8), Array("\"\\ud800\"".utf8), Array("nul".utf8),
            [0x22, 0xFF, 0xFE, 0x22],  // invalid UTF-8
            Array(String(repeating: "[", count: 100).utf8) + Array(String(repeating: "]", count: 100).utf8),
        ]
        for b in bad {
            #expect(throws: JSONSyntaxError.self, "\(b)") { try JSONParser.parse(b) }
        }
    }
}
