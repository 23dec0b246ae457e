import Wire
import FIB

/// A compiled FIB: the snapshot workers read, plus names for its actions (for counters and reports).
public struct CompiledFIB: @unchecked Sendable {
    public let snapshot: FIBSnapshot
    /// `actionNames[i]` names action i: "ilm 100", "vni 5000", "ftn default:10.0.0.0/8".
    public let actionNames: [String]
    public let portNames: [String]
}

/// Compiles intent into an immutable snapshot: validates the whole document first, so an invalid one produces
/// nothing; then precomputes every rewrite in network order.
public enum FIBCompiler {
    public static func compile(config: InstanceConfig, fib: FIBSpec, generation: UInt64 = 1) throws(ValidationError) -> CompiledFIB {
        try validate(config)
        let targets = try validate(fib, config: config)
        var b = FIBSnapshotBuilder()
        let vrfNames = config.vrfNames
        for _ in vrfNames { _ = b.addVRF() }
        func vrfIndex(_ name: String) -> UInt16 { UInt16(vrfNames.firstIndex(of: name)!) }
        var portIndex: [String: Int] = [:]
        for (i, p) in config.ports.enumerated() {
            let list = (p.role == .dc ? p.vteps : p.addresses).map(IPv6Address.init)
            let start = b.addAddresses(list)
            _ = b.addPort(PortRecord(mac: p.mac, role: p.role, vrf: vrfIndex(p.vrf), vxlanPort: p.vxlanPort,
                                     addressStart: start, addressCount: UInt16(list.count)))
            portIndex[p.name] = i
        }
        for nh in fib.nextHops {
            let pi = portIndex[nh.port]!
            let port = config.ports[pi]
            _ = b.addNextHop(NextHopRecord(port: PortID(UInt16(pi)), destination: nh.mac, source: nh.sourceMAC ?? port.mac,
                                           vlan: nh.vlan ?? 0, mtu: UInt16(nh.mtu ?? port.mtu)))
        }
        for g in fib.ecmpGroups {
            _ = b.addGroup(members: g.members.map { UInt32(targets.nextHops[$0]!) }, memberKeys: g.members)
        }
        func target(_ via: String) -> ForwardTarget {
            let r = try! targets.resolve(via, "")
            return r.isGroup ? .group(UInt32(r.index)) : .nextHop(UInt32(r.index))
        }
        var names: [String] = []
        for e in fib.ilm.sorted(by: { $0.label < $1.label }) {
            var a = Action()
            var flags: UInt8 = 0
            switch e.operation {
            case .swap(let out, let via, let payload, let mode):
                a.operation = .swap
                a.target = target(via)
                if mode == .uniform { flags |= ActionFlags.uniform }
                if out == [3] {
                    a.labelCount = 0
                    a.payload = payload ?? .mpls
                } else {
                    a.labelCount = UInt8(out.count)
                    // Label and S=0; TC, TTL and the S of the last label come from the packet.
                    for (i, l) in out.enumerated() { a.setLabelTemplate(i, l << 12) }
                }
            case .pop(let mode):
                a.operation = .pop
                if mode == .uniform { flags |= ActionFlags.uniform }
            case .popToIP(let payload, let via, let vrf, let mode):
                a.operation = .popToIP
                a.payload = payload
                if mode == .uniform { flags |= ActionFlags.uniform }
                if let via { a.target = target(via) }
                if let vrf { flags |= ActionFlags.lookupInVRF; a.vrf = vrfIndex(vrf) }
            case .popToVXLAN(let pw):
                a.operation = .popToVXLAN
                a.target = target(pw.via)
                a.ttl = pw.ttl
                a.aux = UInt32(pw.udpPort)
                if pw.controlWord { flags |= ActionFlags.controlWord }
                var ip: [UInt8]
                switch (pw.localVTEP, pw.remoteVTEP) {
                case (.v4(let l), .v4(let r)):
                    ip = [0x45, 0, 0, 0, 0, 0, 0x40, 0, pw.ttl, UDP.protocolNumber, 0, 0]
                    ip += addressBytes(.v4(l)) + addressBytes(.v4(r))
                    // Sum of the constant words; the data plane adds the total length and folds.
                    var s: UInt32 = 0
                    for i in stride(from: 0, to: 20, by: 2) { s += UInt32(ip[i]) << 8 | UInt32(ip[i + 1]) }
                    a.auxCount = s
                default:
                    flags |= ActionFlags.ipv6Underlay
                    ip = [0x60, 0, 0, 0, 0, 0, UDP.protocolNumber, pw.ttl]
                    ip += addressBytes(pw.localVTEP) + addressBytes(pw.remoteVTEP)
                }
                a.setAreaBytes(ip, at: 0)
                a.setAreaBytes([VXLAN.flagI, 0, 0, 0, UInt8(pw.vni >> 16), UInt8(pw.vni >> 8 & 0xFF), UInt8(pw.vni & 0xFF), 0], at: 40)
            case .drop:
                a.operation = .drop
            }
            a.flags = flags
            let id = b.addAction(a)
            b.setILM(e.label, ILMEntry(action: id, operation: a.operation, flags: flags, payload: a.payload, reserved: 0))
            names.append("ilm \(e.label)")
        }
        for e in fib.vni.sorted(by: { $0.vni < $1.vni }) {
            var a = pushAction(e.push, mode: .pipe, tc: e.tc, ttl: e.ttl)
            a.operation = .vxlanToMPLS
            a.target = target(e.via)
            if e.controlWord { a.flags |= ActionFlags.controlWord }
            let list = e.allowedVTEPs.map(IPv6Address.init)
            a.aux = b.addAddresses(list)
            a.auxCount = UInt32(list.count)
            b.setVNI(e.vni, b.addAction(a))
            names.append("vni \(e.vni)")
        }
        for e in fib.ftn {
            var a = pushAction(e.push, mode: e.ttlMode, tc: e.tc, ttl: e.ttl)
            a.operation = .push
            a.target = target(e.via)
            let id = b.addAction(a)
            let v6: Bool
            if case .v6 = e.prefix { v6 = true } else { v6 = false }
            b.addRoute(vrf: vrfIndex(e.vrf), v6: v6, bytes: addressBytes(e.prefix), length: e.length, action: id)
            names.append("ftn \(e.key)")
        }
        return CompiledFIB(snapshot: b.build(generation: generation), actionNames: names,
                           portNames: config.ports.map(\.name))
    }

    /// A push action: templates carry label and S (bottom); pipe mode also TC and TTL.
    static func pushAction(_ labels: [UInt32], mode: TTLMode, tc: UInt8, ttl: UInt8) -> Action {
        var a = Action()
        a.labelCount = UInt8(labels.count)
        a.tc = tc; a.ttl = ttl
        if mode == .uniform { a.flags |= ActionFlags.uniform }
        for (i, l) in labels.enumerated() {
            var bits = l << 12
            if i == labels.count - 1 { bits |= 0x100 }
            if mode == .pipe { bits |= UInt32(tc & 7) << 9 | UInt32(ttl) }
            a.setLabelTemplate(i, bits)
        }
        return a
    }
}
