import Wire
import FIB
import Control

/// The JSON form of config and FIB documents (docs/fib-format.md). Decoding names the offending element in every
/// error; it only builds the model, and `FIBCompiler` validates the whole document afterwards.
public enum FIBCodec {
    /// Largest document accepted from a file or (later) one control message.
    public static let maxDocumentBytes = 256 << 20

    /// Parses JSON text with the document limit, mapping syntax errors to a `ValidationError` on "json".
    public static func parseDocument(_ bytes: [UInt8]) throws(ValidationError) -> JSONValue {
        guard bytes.count <= maxDocumentBytes else {
            throw ValidationError("json", "document of \(bytes.count) bytes exceeds the \(maxDocumentBytes)-byte limit", kind: .limit)
        }
        do {
            return try JSONParser.parse(bytes)
        } catch {
            throw ValidationError("json", error.description, kind: .syntax)
        }
    }

    // MARK: Config

    public static func decodeConfig(_ bytes: [UInt8]) throws(ValidationError) -> InstanceConfig {
        var r = try ObjectReader(try parseDocument(bytes), path: "config")
        let version = Int(try r.integer("version", in: 0...1_000_000))
        var ports: [PortConfig] = []
        for (i, v) in try r.array("ports").enumerated() { ports.append(try decodePort(v, "ports[\(i)]")) }
        try r.rejectUnknownKeys()
        return InstanceConfig(version: version, ports: ports)
    }

    static func decodePort(_ v: JSONValue, _ path: String) throws(ValidationError) -> PortConfig {
        var r = try ObjectReader(v, path: path)
        let name = try r.string("name")
        let el = "\(path) (\(name))"
        r.path = el
        let roleText = try r.string("role")
        guard let role = PortRole.allCases.first(where: { $0.name == roleText }) else {
            throw ValidationError("\(el).role", "\"\(roleText)\" is not core, dc or vrf", kind: .format)
        }
        var p = PortConfig(
            name: name, interface: try r.optionalString("interface"), mac: try mac(try r.string("mac"), "\(el).mac"),
            role: role, vrf: try r.optionalString("vrf") ?? "default",
            vteps: try addresses(r.optionalArray("vteps"), "\(el).vteps"),
            addresses: try addresses(r.optionalArray("addresses"), "\(el).addresses"),
            vxlanPort: UInt16(try r.optionalInteger("vxlanPort", in: 1...65535) ?? Int64(VXLAN.defaultUDPPort)),
            mtu: Int(try r.optionalInteger("mtu", in: 68...65535) ?? 1500))
        p.bfdAddresses = try addresses(r.optionalArray("bfdAddresses"), "\(el).bfdAddresses")
        try r.rejectUnknownKeys()
        return p
    }

    // MARK: FIB

    public static func decodeFIB(_ bytes: [UInt8]) throws(ValidationError) -> FIBSpec {
        try decodeFIB(try parseDocument(bytes))
    }

    /// The most columns a compact section may have (more than any entry kind has fields).
    static let maxColumns = 32

    /// Calls `body` with each element of a section and its path: an array of objects (`ilm[3]`), or the compact form
    /// `{"columns": [names], "rows": [[values]]}` (`ilm.rows[3]`), where each row is the object of its columns' names
    /// and its non-null cells, decoded exactly like the object form. Nil or null: no elements.
    /// `section`: the section's own name in errors about its shape (default `path`).
    static func forEachElement(_ v: JSONValue?, _ path: String, section: String? = nil,
                               _ body: (JSONValue, ElementPath) throws(ValidationError) -> Void) throws(ValidationError) {
        guard let v, v != .null else { return }
        switch v {
        case .array(let a):
            for (i, e) in a.enumerated() { try body(e, ElementPath(path, index: i, compact: false)) }
        case .object(let f) where f.contains { $0.0 == "columns" }:
            var r = try ObjectReader(v, path: section ?? path)
            let columns = try r.array("columns")
            let rows = try r.array("rows")
            try r.rejectUnknownKeys()
            guard !columns.isEmpty, columns.count <= maxColumns else {
                throw ValidationError("\(path).columns", "1–\(maxColumns) column names", kind: .limit)
            }
            var names: [String] = []
            for (j, c) in columns.enumerated() {
                let n = try ObjectReader.string(c, "\(path).columns[\(j)]")
                guard !names.contains(n) else { throw ValidationError("\(path).columns[\(j)]", "duplicate column \"\(n)\"", kind: .duplicate) }
                names.append(n)
            }
            for (i, row) in rows.enumerated() {
                guard case .array(let cells) = row else {
                    throw ValidationError("\(path).rows[\(i)]", "expected an array of \(names.count) cells, got \(row.typeName)", kind: .type)
                }
                guard cells.count == names.count else {
                    throw ValidationError("\(path).rows[\(i)]", "\(cells.count) cells for \(names.count) columns", kind: .format)
                }
                var fields: [(String, JSONValue)] = []
                fields.reserveCapacity(names.count)
                for j in 0..<names.count where cells[j] != .null { fields.append((names[j], cells[j])) }
                try body(.object(fields), ElementPath(path, index: i, compact: true))
            }
        default:
            throw ValidationError(section ?? path, "expected an array of entries, or the compact form {\"columns\", \"rows\"}; "
                                  + "got \(v.typeName)\(v.typeName == "object" ? " without \"columns\"" : "")", kind: .type)
        }
    }

    /// Elements of a section (`forEachElement`), decoded.
    static func section<T>(_ v: JSONValue?, _ path: String, section: String? = nil,
                           _ decode: (JSONValue, ElementPath) throws(ValidationError) -> T) throws(ValidationError) -> [T] {
        var out: [T] = []
        if case .array(let a)? = v { out.reserveCapacity(a.count) }
        try forEachElement(v, path, section: section) { (e, p) throws(ValidationError) in out.append(try decode(e, p)) }
        return out
    }

    public static func decodeFIB(_ doc: JSONValue) throws(ValidationError) -> FIBSpec {
        var r = try ObjectReader(doc, path: "fib")
        var f = FIBSpec(version: Int(try r.integer("version", in: 0...1_000_000)))
        f.nextHops = try section(r.value("nextHops"), "nextHops", section: "fib.nextHops", decodeNextHop)
        f.ecmpGroups = try section(r.value("ecmpGroups"), "ecmpGroups", section: "fib.ecmpGroups", decodeGroup)
        f.ilm = try section(r.value("ilm"), "ilm", section: "fib.ilm", decodeILM)
        f.vni = try section(r.value("vni"), "vni", section: "fib.vni", decodeVNI)
        f.ftn = try section(r.value("ftn"), "ftn", section: "fib.ftn", decodeFTN)
        f.macs = try section(r.value("macs"), "macs", section: "fib.macs", decodeMAC)
        try r.rejectUnknownKeys()
        return f
    }

    public static func decodeNextHop(_ v: JSONValue, _ path: ElementPath) throws(ValidationError) -> NextHopSpec {
        var r = try ObjectReader(v, element: path)
        let name = try r.string("name")
        let el = path.keyed(name)
        r.element = el
        let src = try r.optionalString("sourceMac")
        let nh = NextHopSpec(
            name: name, port: try r.string("port"), mac: try mac(try r.string("mac"), "\(el).mac"),
            sourceMAC: try src.map { (s: String) throws(ValidationError) -> MACAddress in try mac(s, "\(el).sourceMac") },
            vlan: try r.optionalInteger("vlan", in: 1...Int64(Ethernet.maxVLAN)).map { UInt16($0) },
            mtu: try r.optionalInteger("mtu", in: 68...65535).map { Int($0) },
            backup: try r.optionalString("backup"),
            bfd: try r.value("bfd").map { (v: JSONValue) throws(ValidationError) -> BFDSpec in try decodeBFD(v, "\(el).bfd") })
        try r.rejectUnknownKeys()
        return nh
    }

    static func decodeBFD(_ v: JSONValue, _ path: String) throws(ValidationError) -> BFDSpec {
        var r = try ObjectReader(v, path: path)
        let range = Int64(BFDSpec.intervalRange.lowerBound)...Int64(BFDSpec.intervalRange.upperBound)
        let local = try r.optionalString("local")
        let spec = BFDSpec(
            peer: try address(try r.string("peer"), "\(path).peer"),
            local: try local.map { (s: String) throws(ValidationError) -> IPAddress in try address(s, "\(path).local") },
            minTxMs: Int(try r.optionalInteger("minTxMs", in: range) ?? 300),
            minRxMs: Int(try r.optionalInteger("minRxMs", in: range) ?? 300),
            multiplier: Int(try r.optionalInteger("multiplier", in: 1...255) ?? 3))
        try r.rejectUnknownKeys()
        return spec
    }

    public static func decodeILM(_ v: JSONValue, _ path: ElementPath) throws(ValidationError) -> ILMEntrySpec {
        var r = try ObjectReader(v, element: path)
        let label = UInt32(try r.integer("label", in: 0...Int64(UInt32.max)))
        let el = path.keyed("label", UInt64(label))
        r.element = el
        let opText = try r.string("op")
        let op: ILMOperationSpec
        switch opText {
        case "swap":
            let out = try labels(try r.array("out"), "\(el).out")
            let payload = try r.optionalString("payload").map { (s: String) throws(ValidationError) -> Payload in try self.payload(s, "\(el).payload") }
            op = .swap(out: out, via: try r.string("via"), payload: payload, ttlMode: try ttlMode(&r, el, l2: false))
        case "pop":
            op = .pop(ttlMode: try ttlMode(&r, el, l2: false))
        case "popToIP":
            let p = try payload(try r.string("payload"), "\(el).payload")
            guard p != .mpls else { throw ValidationError("\(el).payload", "popToIP carries ipv4 or ipv6") }
            op = .popToIP(payload: p, via: try r.optionalString("via"), vrf: try r.optionalString("vrf"),
                          ttlMode: try ttlMode(&r, el, l2: false))
        case "popToVXLAN":
            _ = try ttlMode(&r, el, l2: true)
            op = .popToVXLAN(PseudowireEgress(
                vni: UInt32(try r.integer("vni", in: 0...Int64(UInt32.max))),
                controlWord: try r.optionalBool("controlWord") ?? false,
                localVTEP: try address(try r.string("localVtep"), "\(el).localVtep"),
                remoteVTEP: try address(try r.string("remoteVtep"), "\(el).remoteVtep"),
                via: try r.string("via"),
                udpPort: UInt16(try r.optionalInteger("udpPort", in: 1...65535) ?? Int64(VXLAN.defaultUDPPort)),
                ttl: UInt8(try r.optionalInteger("ttl", in: 1...255) ?? 64)))
        case "popToMultipoint":
            _ = try ttlMode(&r, el, l2: true)
            op = .popToMultipoint(MultipointIngress(
                vni: UInt32(try r.integer("vni", in: 0...Int64(UInt32.max))), site: try r.string("site"),
                controlWord: try r.optionalBool("controlWord") ?? true))
        case "drop":
            op = .drop
        default:
            throw ValidationError("\(el).op", "\"\(opText)\" is not swap, pop, popToIP, popToVXLAN, popToMultipoint or drop", kind: .format)
        }
        let backupOut = try r.arrayIfPresent("backupOut").map { (a: [JSONValue]) throws(ValidationError) -> [UInt32] in
            try labels(a, "\(el).backupOut")
        }
        try r.rejectUnknownKeys()
        return ILMEntrySpec(label: label, operation: op, backupOut: backupOut)
    }

    public static func decodeVNI(_ v: JSONValue, _ path: ElementPath) throws(ValidationError) -> VNIEntrySpec {
        var r = try ObjectReader(v, element: path)
        let vni = UInt32(try r.integer("vni", in: 0...Int64(UInt32.max)))
        let el = path.keyed("vni", UInt64(vni))
        r.element = el
        _ = try ttlMode(&r, el, l2: true)
        if let m = r.value("multipoint"), m != .null {
            let e = VNIEntrySpec(vni: vni, multipoint: try decodeMultipoint(m, "\(el).multipoint"),
                                 tc: UInt8(try r.optionalInteger("tc", in: 0...7) ?? 0),
                                 ttl: UInt8(try r.optionalInteger("ttl", in: 1...255) ?? 255))
            try r.rejectUnknownKeys()
            return e
        }
        let e = VNIEntrySpec(
            vni: vni, push: try labels(try r.array("push"), "\(el).push"),
            controlWord: try r.optionalBool("controlWord") ?? false, via: try r.string("via"),
            allowedVTEPs: try addresses(try r.array("allowedVteps"), "\(el).allowedVteps"),
            tc: UInt8(try r.optionalInteger("tc", in: 0...7) ?? 0),
            ttl: UInt8(try r.optionalInteger("ttl", in: 1...255) ?? 255),
            backupPush: try backupPush(&r, el))
        try r.rejectUnknownKeys()
        return e
    }

    static func decodeMultipoint(_ v: JSONValue, _ path: String) throws(ValidationError) -> MultipointSpec {
        var r = try ObjectReader(v, path: path)
        var sites: [SiteSpec] = []
        for (i, s) in try (r.optionalArray("sites")).enumerated() {
            var o = try ObjectReader(s, path: "\(path).sites[\(i)]")
            let name = try o.string("name")
            o.path = "\(path).sites[\(i)] (\(name))"
            sites.append(SiteSpec(name: name, push: try labels(try o.array("push"), "\(o.path).push"), via: try o.string("via"),
                                  controlWord: try o.optionalBool("controlWord") ?? true))
            try o.rejectUnknownKeys()
        }
        var vteps: [LocalVTEPSpec] = []
        for (i, t) in try (r.optionalArray("vteps")).enumerated() {
            var o = try ObjectReader(t, path: "\(path).vteps[\(i)]")
            vteps.append(LocalVTEPSpec(address: try address(try o.string("address"), "\(o.path).address"), via: try o.string("via")))
            try o.rejectUnknownKeys()
        }
        let m = MultipointSpec(
            localVTEP: try address(try r.string("localVtep"), "\(path).localVtep"), vteps: vteps, sites: sites,
            udpPort: UInt16(try r.optionalInteger("udpPort", in: 1...65535) ?? Int64(VXLAN.defaultUDPPort)),
            underlayTTL: UInt8(try r.optionalInteger("underlayTtl", in: 1...255) ?? 64),
            bumPerSecond: UInt32(try r.optionalInteger("bumPerSecond", in: 0...100_000_000) ?? Int64(MultipointSpec.defaultBUMPerSecond)),
            learning: try decodeLearning(r.value("learning"), "\(path).learning"))
        try r.rejectUnknownKeys()
        return m
    }

    static func decodeLearning(_ v: JSONValue?, _ path: String) throws(ValidationError) -> MACLearningSpec {
        let d = MACLearningSpec()
        guard let v else { return d }
        var r = try ObjectReader(v, path: path)
        let l = MACLearningSpec(
            enabled: try r.optionalBool("enabled") ?? d.enabled,
            macLimit: UInt32(try r.optionalInteger("macLimit", in: MACLearningSpec.macLimitRange) ?? Int64(d.macLimit)),
            agingSeconds: UInt32(try r.optionalInteger("agingSeconds", in: MACLearningSpec.agingRange) ?? Int64(d.agingSeconds)),
            moveLimit: UInt32(try r.optionalInteger("moveLimit", in: 1...1000) ?? Int64(d.moveLimit)),
            moveWindowSeconds: UInt32(try r.optionalInteger("moveWindowSeconds", in: 1...86_400) ?? Int64(d.moveWindowSeconds)),
            holdSeconds: UInt32(try r.optionalInteger("holdSeconds", in: 0...1_000_000) ?? Int64(d.holdSeconds)))
        try r.rejectUnknownKeys()
        return l
    }

    static func encode(_ l: MACLearningSpec) -> JSONValue {
        .object([("enabled", .bool(l.enabled)), ("macLimit", num(l.macLimit)), ("agingSeconds", num(l.agingSeconds)),
                 ("moveLimit", num(l.moveLimit)), ("moveWindowSeconds", num(l.moveWindowSeconds)),
                 ("holdSeconds", num(l.holdSeconds))])
    }

    public static func decodeMAC(_ v: JSONValue, _ path: ElementPath) throws(ValidationError) -> MACEntrySpec {
        var r = try ObjectReader(v, element: path)
        let vni = UInt32(try r.integer("vni", in: 0...Int64(UInt32.max)))
        let text = try r.string("mac")
        r.element = path.keyed("mac \(vni)/\(text)")
        let vtep = try r.optionalString("vtep")
        let e = MACEntrySpec(vni: vni, mac: try mac(text, "\(r.path).mac"), site: try r.optionalString("site"),
                             vtep: try vtep.map { (s: String) throws(ValidationError) -> IPAddress in try address(s, "\(r.path).vtep") })
        try r.rejectUnknownKeys()
        return e
    }

    static func backupPush(_ r: inout ObjectReader, _ el: ElementPath) throws(ValidationError) -> [UInt32]? {
        try r.arrayIfPresent("backupPush").map { (a: [JSONValue]) throws(ValidationError) -> [UInt32] in
            try labels(a, "\(el).backupPush")
        }
    }

    public static func decodeFTN(_ v: JSONValue, _ path: ElementPath) throws(ValidationError) -> FTNEntrySpec {
        var r = try ObjectReader(v, element: path)
        let prefixText = try r.string("prefix")
        let el = path.keyed(prefixText)
        r.element = el
        let (address, length) = try prefix(prefixText, "\(el).prefix")
        let e = FTNEntrySpec(
            vrf: try r.optionalString("vrf") ?? "default", prefix: address, length: length,
            push: try labels(try r.optionalArray("push"), "\(el).push"), via: try r.string("via"),
            ttlMode: try ttlMode(&r, el, l2: false),
            tc: UInt8(try r.optionalInteger("tc", in: 0...7) ?? 0),
            ttl: UInt8(try r.optionalInteger("ttl", in: 1...255) ?? 255),
            backupPush: try backupPush(&r, el))
        try r.rejectUnknownKeys()
        return e
    }

    // MARK: Field helpers


    /// Reads "ttlMode": uniform (default for IP) or pipe; L2 entries (pseudowires, VNIs) accept only pipe.
    static func ttlMode(_ r: inout ObjectReader, _ el: ElementPath, l2: Bool) throws(ValidationError) -> TTLMode {
        guard let text = try r.optionalString("ttlMode") else { return l2 ? .pipe : .uniform }
        guard let m = TTLMode(rawValue: text) else { throw ValidationError("\(el).ttlMode", "\"\(text)\" is not uniform or pipe", kind: .format) }
        if l2 && m == .uniform {
            throw ValidationError("\(el).ttlMode", "L2 payloads have no TTL: pseudowire and VNI entries are pipe only")
        }
        return m
    }

    static func labels(_ a: [JSONValue], _ path: @autoclosure () -> String) throws(ValidationError) -> [UInt32] {
        var out: [UInt32] = []
        out.reserveCapacity(a.count)
        for (i, v) in a.enumerated() {
            out.append(UInt32(try ObjectReader.integer(v, "\(path())[\(i)]", in: 0...Int64(MPLSLabel.maxValue))))
        }
        return out
    }

    static func payload(_ s: String, _ path: @autoclosure () -> String) throws(ValidationError) -> Payload {
        switch s {
        case "mpls": return .mpls
        case "ipv4": return .ipv4
        case "ipv6": return .ipv6
        default: throw ValidationError(path(), "\"\(s)\" is not mpls, ipv4 or ipv6", kind: .format)
        }
    }

    static func mac(_ s: String, _ path: @autoclosure () -> String) throws(ValidationError) -> MACAddress {
        guard let m = MACAddress(s) else { throw ValidationError(path(), "\"\(s)\" is not a MAC address (aa:bb:cc:dd:ee:ff)", kind: .format) }
        return m
    }

    static func address(_ s: String, _ path: @autoclosure () -> String) throws(ValidationError) -> IPAddress {
        guard let a = IPAddress(s) else { throw ValidationError(path(), "\"\(s)\" is not an IPv4 or IPv6 address", kind: .format) }
        return a
    }

    static func addresses(_ a: [JSONValue], _ path: @autoclosure () -> String) throws(ValidationError) -> [IPAddress] {
        var out: [IPAddress] = []
        out.reserveCapacity(a.count)
        for (i, v) in a.enumerated() { out.append(try address(try ObjectReader.string(v, "\(path())[\(i)]"), "\(path())[\(i)]")) }
        return out
    }

    static func prefix(_ s: String, _ path: @autoclosure () -> String) throws(ValidationError) -> (IPAddress, Int) {
        let parts = s.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let a = IPAddress(String(parts[0])), let len = Int(parts[1]) else {
            throw ValidationError(path(), "\"\(s)\" is not ADDRESS/LENGTH", kind: .format)
        }
        return (a, len)
    }
}

// MARK: Encoding (dump, state file, mplsgatectl): the exact form decodeFIB reads back.

extension FIBCodec {
    static func num<T: BinaryInteger>(_ v: T) -> JSONValue { .number(String(v)) }

    public static func encode(_ nh: NextHopSpec) -> JSONValue {
        var f: [(String, JSONValue)] = [("name", .string(nh.name)), ("port", .string(nh.port)), ("mac", .string(nh.mac.description))]
        if let s = nh.sourceMAC { f.append(("sourceMac", .string(s.description))) }
        if let v = nh.vlan { f.append(("vlan", num(v))) }
        if let m = nh.mtu { f.append(("mtu", num(m))) }
        if let b = nh.backup { f.append(("backup", .string(b))) }
        if let b = nh.bfd {
            var o: [(String, JSONValue)] = [("peer", .string(b.peer.description))]
            if let l = b.local { o.append(("local", .string(l.description))) }
            o += [("minTxMs", num(b.minTxMs)), ("minRxMs", num(b.minRxMs)), ("multiplier", num(b.multiplier))]
            f.append(("bfd", .object(o)))
        }
        return .object(f)
    }

    public static func encode(_ g: ECMPGroupSpec) -> JSONValue {
        .object([("name", .string(g.name)), ("members", .array(g.members.map { .string($0) }))])
    }

    static func labelArray(_ l: [UInt32]) -> JSONValue { .array(l.map { num($0) }) }

    static func payloadName(_ p: Payload) -> String {
        switch p { case .mpls: return "mpls"; case .ipv4: return "ipv4"; case .ipv6: return "ipv6" }
    }

    public static func encode(_ e: ILMEntrySpec) -> JSONValue {
        var f: [(String, JSONValue)] = [("label", num(e.label))]
        switch e.operation {
        case .swap(let out, let via, let payload, let mode):
            f += [("op", .string("swap")), ("out", labelArray(out)), ("via", .string(via))]
            if let p = payload { f.append(("payload", .string(payloadName(p)))) }
            f.append(("ttlMode", .string(mode.rawValue)))
        case .pop(let mode):
            f += [("op", .string("pop")), ("ttlMode", .string(mode.rawValue))]
        case .popToIP(let payload, let via, let vrf, let mode):
            f += [("op", .string("popToIP")), ("payload", .string(payloadName(payload)))]
            if let via { f.append(("via", .string(via))) }
            if let vrf { f.append(("vrf", .string(vrf))) }
            f.append(("ttlMode", .string(mode.rawValue)))
        case .popToVXLAN(let pw):
            f += [("op", .string("popToVXLAN")), ("vni", num(pw.vni)), ("controlWord", .bool(pw.controlWord)),
                  ("localVtep", .string(pw.localVTEP.description)), ("remoteVtep", .string(pw.remoteVTEP.description)),
                  ("via", .string(pw.via)), ("udpPort", num(pw.udpPort)), ("ttl", num(pw.ttl))]
        case .popToMultipoint(let m):
            f += [("op", .string("popToMultipoint")), ("vni", num(m.vni)), ("site", .string(m.site)),
                  ("controlWord", .bool(m.controlWord))]
        case .drop:
            f.append(("op", .string("drop")))
        }
        if let b = e.backupOut { f.append(("backupOut", labelArray(b))) }
        return .object(f)
    }

    public static func encode(_ e: VNIEntrySpec) -> JSONValue {
        if let m = e.multipoint {
            let sites: [JSONValue] = m.sites.map {
                .object([("name", .string($0.name)), ("push", labelArray($0.push)), ("via", .string($0.via)),
                         ("controlWord", .bool($0.controlWord))])
            }
            let vteps: [JSONValue] = m.vteps.map { .object([("address", .string($0.address.description)), ("via", .string($0.via))]) }
            var fields: [(String, JSONValue)] = [
                ("localVtep", .string(m.localVTEP.description)), ("vteps", .array(vteps)), ("sites", .array(sites)),
                ("udpPort", num(m.udpPort)), ("underlayTtl", num(m.underlayTTL)), ("bumPerSecond", num(m.bumPerSecond))]
            // Only when not the defaults: dumps and state files of VNIs that never set it stay as they were.
            if m.learning != MACLearningSpec() { fields.append(("learning", encode(m.learning))) }
            return .object([("vni", num(e.vni)), ("multipoint", .object(fields)), ("tc", num(e.tc)), ("ttl", num(e.ttl))])
        }
        var f: [(String, JSONValue)] = [
            ("vni", num(e.vni)), ("push", labelArray(e.push)), ("controlWord", .bool(e.controlWord)),
            ("via", .string(e.via)), ("allowedVteps", .array(e.allowedVTEPs.map { .string($0.description) })),
            ("tc", num(e.tc)), ("ttl", num(e.ttl))]
        if let b = e.backupPush { f.append(("backupPush", labelArray(b))) }
        return .object(f)
    }

    public static func encode(_ e: FTNEntrySpec) -> JSONValue {
        var f: [(String, JSONValue)] = [
            ("vrf", .string(e.vrf)), ("prefix", .string("\(e.prefix)/\(e.length)")), ("push", labelArray(e.push)),
            ("via", .string(e.via)), ("ttlMode", .string(e.ttlMode.rawValue)), ("tc", num(e.tc)), ("ttl", num(e.ttl))]
        if let b = e.backupPush { f.append(("backupPush", labelArray(b))) }
        return .object(f)
    }

    public static func encode(_ e: MACEntrySpec) -> JSONValue {
        var f: [(String, JSONValue)] = [("vni", num(e.vni)), ("mac", .string(e.mac.description))]
        if let s = e.site { f.append(("site", .string(s))) }
        if let v = e.vtep { f.append(("vtep", .string(v.description))) }
        return .object(f)
    }

    public static func encode(_ e: FIBEntry) -> JSONValue {
        switch e {
        case .nextHop(let x): return encode(x)
        case .ecmpGroup(let x): return encode(x)
        case .ilm(let x): return encode(x)
        case .vni(let x): return encode(x)
        case .ftn(let x): return encode(x)
        case .mac(let x): return encode(x)
        }
    }

    public static func encode(_ fib: FIBSpec) -> JSONValue {
        .object([("version", num(fib.version)),
                 ("nextHops", .array(fib.nextHops.map(encode))), ("ecmpGroups", .array(fib.ecmpGroups.map(encode))),
                 ("ilm", .array(fib.ilm.map(encode))), ("vni", .array(fib.vni.map(encode))),
                 ("ftn", .array(fib.ftn.map(encode))), ("macs", .array(fib.macs.map(encode)))])
    }

    /// Decodes one element of `kind` ("nextHop", "ecmpGroup", "ilm", "vni", "ftn").
    public static func decodeEntry(kind: String, _ v: JSONValue, _ path: ElementPath) throws(ValidationError) -> FIBEntry {
        switch kind {
        case "nextHop": return .nextHop(try decodeNextHop(v, path))
        case "ecmpGroup": return .ecmpGroup(try decodeGroup(v, path))
        case "ilm": return .ilm(try decodeILM(v, path))
        case "vni": return .vni(try decodeVNI(v, path))
        case "ftn": return .ftn(try decodeFTN(v, path))
        case "mac": return .mac(try decodeMAC(v, path))
        default: throw ValidationError("\(path).kind", "\"\(kind)\" is not nextHop, ecmpGroup, ilm, vni, ftn or mac", kind: .format)
        }
    }

    public static func decodeGroup(_ v: JSONValue, _ path: ElementPath) throws(ValidationError) -> ECMPGroupSpec {
        var g = try ObjectReader(v, element: path)
        let name = try g.string("name")
        var members: [String] = []
        for (j, m) in try g.array("members").enumerated() {
            members.append(try ObjectReader.string(m, "\(path).members[\(j)]"))
        }
        try g.rejectUnknownKeys()
        return ECMPGroupSpec(name: name, members: members)
    }

    /// Decodes the key of `kind`: a name (nextHop, ecmpGroup), a label, a VNI, or {"vrf", "prefix"} for ftn.
    public static func decodeKey(kind: String, _ v: JSONValue, _ path: String) throws(ValidationError) -> EntryKey {
        switch kind {
        case "nextHop": return .nextHop(try ObjectReader.string(v, path))
        case "ecmpGroup": return .ecmpGroup(try ObjectReader.string(v, path))
        case "ilm": return .ilm(UInt32(try ObjectReader.integer(v, path, in: 0...Int64(MPLSLabel.maxValue))))
        case "vni": return .vni(UInt32(try ObjectReader.integer(v, path, in: 0...Int64(VNI.maxValue))))
        case "ftn":
            var r = try ObjectReader(v, path: path)
            let vrf = try r.optionalString("vrf") ?? "default"
            let (a, len) = try prefix(try r.string("prefix"), "\(path).prefix")
            try r.rejectUnknownKeys()
            return .ftn("\(vrf):\(a)/\(len)")
        case "mac":
            var r = try ObjectReader(v, path: path)
            let vni = UInt32(try r.integer("vni", in: 0...Int64(VNI.maxValue)))
            let m = try mac(try r.string("mac"), "\(path).mac")
            try r.rejectUnknownKeys()
            return .mac(MACKey(vni: vni, mac: m.value))
        default: throw ValidationError("\(path).kind", "\"\(kind)\" is not nextHop, ecmpGroup, ilm, vni, ftn or mac", kind: .format)
        }
    }
}
