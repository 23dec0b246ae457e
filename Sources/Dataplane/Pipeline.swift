import Wire
import FIB

/// The forwarding pipeline: `process(batch, fib, counters)` parses each frame, looks it up, rewrites it in place
/// and sets its verdict. It allocates nothing, takes no locks, never throws and reads the snapshot it is given.
public enum Pipeline {
    /// Labels processed per frame before giving up (pops of explicit null, ELI/EL pairs and `pop` entries).
    public static let maxLabelDepth = 32

    /// Processes a batch in place. The caller reads the FIB snapshot pointer once per batch and passes it here.
    /// With large tables, entries of frames a few places ahead are prefetched while a frame is processed
    /// (Prefetch.swift); with small ones everything is cached and the prefetch would only cost time.
    @inlinable
    public static func process(_ batch: UnsafeMutableBufferPointer<Frame>, fib: FIBSnapshot, counters: WorkerCounters) {
        let n = batch.count
        if fib.actionCount < prefetchMinimumActions {
            var i = 0
            while i < n {
                processFrame(&batch[i], fib: fib, counters: counters)
                i &+= 1
            }
            return
        }
        var j = 0
        while j < n && j < headDistance { prefetchHead(batch[j]); j &+= 1 }
        j = 0
        while j < n && j < entryDistance { prefetchEntry(batch[j], fib: fib); j &+= 1 }
        j = 0
        while j < n && j < actionDistance { prefetchAction(batch[j], fib: fib, counters: counters); j &+= 1 }
        j = 0
        while j < n && j < vtepDistance { prefetchVTEPs(batch[j], fib: fib); j &+= 1 }
        var i = 0
        while i < n {
            if i &+ headDistance < n { prefetchHead(batch[i &+ headDistance]) }
            if i &+ entryDistance < n { prefetchEntry(batch[i &+ entryDistance], fib: fib) }
            if i &+ actionDistance < n { prefetchAction(batch[i &+ actionDistance], fib: fib, counters: counters) }
            if i &+ vtepDistance < n { prefetchVTEPs(batch[i &+ vtepDistance], fib: fib) }
            processFrame(&batch[i], fib: fib, counters: counters)
            i &+= 1
        }
    }

    /// Processes one frame; sets `egress` or `drop`, and moves `offset`/`length` to the rewritten frame.
    @inlinable @inline(__always)
    public static func processFrame(_ f: inout Frame, fib: FIBSnapshot, counters: WorkerCounters) {
        let inPort = Int(f.ingress.rawValue)
        let rxBytes = UInt64(f.length)
        if inPort >= fib.portCount {
            counters.drops[Int(DropReason.unknownPort.rawValue)] &+= 1
            f.egress = .none; f.drop = .unknownPort
            return
        }
        counters.ports[inPort].rxPackets &+= 1
        counters.ports[inPort].rxBytes &+= rxBytes
        let verdict = classify(&f, fib: fib, counters: counters)
        if verdict.drop == .none {
            f.egress = verdict.port; f.drop = .none
            let out = Int(verdict.port.rawValue)
            counters.ports[out].txPackets &+= 1
            counters.ports[out].txBytes &+= UInt64(f.length)
        } else if verdict.drop == .flood {
            // Replicated by the caller (`Replication`): its copies count as tx.
            f.egress = .none; f.drop = .flood
        } else {
            f.egress = .none; f.drop = verdict.drop
            counters.drops[Int(verdict.drop.rawValue)] &+= 1
            counters.ports[inPort].dropPackets &+= 1
        }
    }

    /// A frame's fate: forwarded to `port`, or dropped for `drop`.
    @frozen @usableFromInline
    struct Verdict {
        @usableFromInline var port: PortID
        @usableFromInline var drop: DropReason
        @inlinable @inline(__always) init(port: PortID, drop: DropReason) { self.port = port; self.drop = drop }
        @inlinable @inline(__always) static func dropped(_ r: DropReason) -> Verdict { Verdict(port: .none, drop: r) }
        @inlinable @inline(__always) static func forward(_ p: PortID) -> Verdict { Verdict(port: p, drop: .none) }
    }

    @inlinable @inline(__always)
    static func classify(_ f: inout Frame, fib: FIBSnapshot, counters: WorkerCounters) -> Verdict {
        let b = PacketBytes(f.buffer)
        let start = Int(f.offset)
        let end = start + Int(f.length)
        if end - start < Ethernet.headerSize { return .dropped(.tooShort) }
        let port = fib.ports + Int(f.ingress.rawValue)
        if MACAddress(b, at: start) != port.pointee.mac { return .dropped(.notForUs) }
        var type = b.be16(start + Ethernet.typeOffset)
        var l3 = start + Ethernet.headerSize
        if type == EtherType.vlan {
            // One 802.1Q tag is accepted and removed: the port is the interface, not the VLAN.
            if end - start < Ethernet.headerSize + Ethernet.vlanTagSize { return .dropped(.tooShort) }
            type = b.be16(l3 + 2)
            l3 += Ethernet.vlanTagSize
        }
        let role = port.pointee.role
        switch type {
        case EtherType.mpls:
            guard role == .core else { return .dropped(.mplsNotEnabled) }
            return mplsInput(&f, b, top: l3, end: end, vrf: port.pointee.vrf, fib: fib, counters: counters)
        case EtherType.ipv4, EtherType.ipv6:
            switch role {
            case .dc:
                return vxlanInput(&f, b, ip: l3, end: end, isIPv6: type == EtherType.ipv6, port: port, fib: fib,
                                  counters: counters)
            case .vrf:
                return ipInput(&f, b, ip: l3, end: end, isIPv6: type == EtherType.ipv6, port: port, fib: fib,
                               counters: counters)
            case .core:
                return controlInput(b, ip: l3, end: end, isIPv6: type == EtherType.ipv6)
            }
        default:
            return .dropped(.notForUs)
        }
    }

    /// IP on a core port: a BFD control packet (UDP to 3784, RFC 5881) is `control` (the live agent's protection
    /// thread checks the rest); anything else is the host's.
    @inline(never) @usableFromInline
    static func controlInput(_ b: PacketBytes, ip: Int, end: Int, isIPv6: Bool) -> Verdict {
        var udp: Int
        if isIPv6 {
            if end - ip < IPv6.headerSize + UDP.headerSize || b.u8(ip + IPv6.nextHeaderOffset) != UDP.protocolNumber {
                return .dropped(.notForUs)
            }
            udp = ip + IPv6.headerSize
        } else {
            if end - ip < IPv4.minHeaderSize { return .dropped(.notForUs) }
            let ihl = Int(b.u8(ip) & 0x0F) << 2
            if ihl < IPv4.minHeaderSize || b.u8(ip + IPv4.protocolOffset) != UDP.protocolNumber
                || b.be16(ip + IPv4.flagsFragmentOffset) & IPv4.fragmentMask != 0 {
                return .dropped(.notForUs)
            }
            udp = ip + ihl
            if end - udp < UDP.headerSize { return .dropped(.notForUs) }
        }
        return b.be16(udp + UDP.destinationPortOffset) == 3784 ? .dropped(.control) : .dropped(.notForUs)
    }

    // MARK: MPLS

    @inlinable @inline(__always)
    static func mplsInput(_ f: inout Frame, _ b: PacketBytes, top: Int, end: Int, vrf: UInt16, fib: FIBSnapshot,
                          counters: WorkerCounters) -> Verdict {
        var off = top
        var depth = 0
        let rxBytes = UInt64(f.length)
        // A uniform-mode pop hands TTL − 1 to the next real label (RFC 3443 §3.1), across an ELI/EL pair.
        var inherited: UInt16 = 0x100  // > 255: none
        while depth < maxLabelDepth {
            depth &+= 1
            if off + LabelStackEntry.size > end { return .dropped(.tooShort) }
            var lse = LabelStackEntry(bits: b.be32(off))
            let label = lse.labelValue
            if inherited <= 0xFF && label != 7 { lse = lse.with(ttl: UInt8(truncatingIfNeeded: inherited)) }
            let ttl = lse.ttl
            if label < 16 {
                switch label {
                case 0, 2:
                    // Explicit null (RFC 4182): pop; at the bottom forward the IP payload in the port's table.
                    if ttl <= 1 { return .dropped(.ttlExpired) }
                    if !lse.bottomOfStack { off &+= 4; continue }
                    return ipAfterPop(&f, b, ip: off + 4, end: end, isIPv6: label == 2, uniformTTL: ttl &- 1,
                                      vrf: vrf, fib: fib, counters: counters)
                case 1, 13, 14:
                    return .dropped(.oam)
                case 3:
                    return .dropped(.illegalLabel)
                case 7:
                    // ELI/EL (RFC 6790): pop the pair and continue with the label below.
                    if lse.bottomOfStack { return .dropped(.bosMismatch) }
                    if off + 8 > end { return .dropped(.tooShort) }
                    if b.be32(off + 4) & 0x100 != 0 { return .dropped(.bosMismatch) }
                    off &+= 8
                    continue
                default:
                    return .dropped(.reservedLabel)
                }
            }
            let entry = fib.ilm(label)
            switch entry.operation {
            case .none, .push, .vxlanToMPLS, .multipoint:
                return .dropped(.unknownLabel)
            case .drop:
                count(counters, entry.action, rxBytes)
                return .dropped(.fibDrop)
            case .pop:
                if ttl <= 1 { return .dropped(.ttlExpired) }
                if lse.bottomOfStack { return .dropped(.bosMismatch) }
                if off + 8 > end { return .dropped(.tooShort) }
                count(counters, entry.action, rxBytes)
                inherited = entry.flags & ActionFlags.uniform != 0 ? UInt16(ttl &- 1) : 0x100
                off &+= 4
                continue
            case .swap:
                if ttl <= 1 { return .dropped(.ttlExpired) }
                let action = fib.actions + Int(entry.action.rawValue)
                count(counters, entry.action, rxBytes)
                return swap(&f, b, lse: lse, at: off, top: top, end: end, action: action, fib: fib)
            case .popToIP:
                if ttl <= 1 { return .dropped(.ttlExpired) }
                if !lse.bottomOfStack { return .dropped(.bosMismatch) }
                let action = fib.actions + Int(entry.action.rawValue)
                count(counters, entry.action, rxBytes)
                return popToIP(&f, b, ttl: ttl, ip: off + 4, end: end, action: action, fib: fib, counters: counters)
            case .popToVXLAN, .popToMultipoint:
                // A pseudowire label (to one VTEP, or into a multipoint VNI) with TTL 1 is VCCV (RFC 5085 type 3):
                // OAM, not expiry.
                if ttl == 1 { return .dropped(.oam) }
                if ttl == 0 { return .dropped(.ttlExpired) }
                if !lse.bottomOfStack { return .dropped(.bosMismatch) }
                let action = fib.actions + Int(entry.action.rawValue)
                var inner = off + 4
                if action.pointee.hasControlWord {
                    if inner + ControlWord.size > end { return .dropped(.tooShort) }
                    if b.u8(inner) >> 4 != 0 { return .dropped(.badControlWord) }
                    inner &+= ControlWord.size
                }
                if end - inner < Ethernet.headerSize { return .dropped(.tooShort) }
                count(counters, entry.action, rxBytes)
                if entry.operation == .popToMultipoint {
                    return multipointFromSite(&f, b, inner: inner, end: end, vni: action.pointee.aux,
                                              site: action.pointee.area.0, fib: fib, counters: counters)
                }
                return vxlanEncap(&f, b, inner: inner, end: end, action: action, fib: fib)
            }
        }
        return .dropped(.malformed)
    }

    @inlinable @inline(__always)
    static func count(_ counters: WorkerCounters, _ action: ActionID, _ bytes: UInt64) {
        let i = Int(action.rawValue)
        counters.entries[i].packets &+= 1
        counters.entries[i].bytes &+= bytes
    }

    /// Swap (or PHP when the out stack is empty): TTL − 1 and TC kept on every written label (RFC 3032 §2.4).
    @inlinable @inline(__always)
    static func swap(_ f: inout Frame, _ b: PacketBytes, lse: LabelStackEntry, at off: Int, top: Int, end: Int,
                     action: UnsafeMutablePointer<Action>, fib: FIBSnapshot) -> Verdict {
        let newTTL = lse.ttl &- 1
        let payloadStart = off + 4
        let n = Int(action.pointee.labelCount)
        if n == 0 {
            // PHP: pop and forward what is below as the entry's payload type.
            let etherType: UInt16
            switch action.pointee.payload {
            case .mpls:
                if lse.bottomOfStack { return .dropped(.bosMismatch) }
                if !stackIsTerminated(b, from: payloadStart, top: top, end: end) { return .dropped(.noBottomOfStack) }
                if action.pointee.isUniform { b.setU8(payloadStart + 3, newTTL) }
                etherType = EtherType.mpls
            case .ipv4, .ipv6:
                if !lse.bottomOfStack { return .dropped(.bosMismatch) }
                let isIPv6 = action.pointee.payload == .ipv6
                let r = setExposedIPTTL(b, ip: payloadStart, end: end, isIPv6: isIPv6,
                                        uniformTTL: action.pointee.isUniform ? newTTL : nil)
                if r != .none { return .dropped(r) }
                etherType = isIPv6 ? EtherType.ipv6 : EtherType.ipv4
            }
            let hash = action.pointee.target.isGroup ? FlowHash.labelStack(b, top: top, end: end) : 0
            return forward(&f, b, payloadStart: payloadStart, end: end, etherType: etherType,
                           target: action.pointee.target, hash: hash, fib: fib)
        }
        // The labels below are sent on untouched: they must end (S=1) inside the frame, or the next router would
        // read the payload as labels.
        if !lse.bottomOfStack && !stackIsTerminated(b, from: payloadStart, top: top, end: end) {
            return .dropped(.noBottomOfStack)
        }
        // While the next hop is down, the labels its backup path understands (backupOut).
        let (count, templates) = labelsFor(action, fib: fib)
        let labelsStart = payloadStart - 4 * count
        if labelsStart < Ethernet.headerSize + Ethernet.vlanTagSize { return .dropped(.noHeadroom) }
        // Hash before the rewrite: the received stack decides the member.
        let hash = action.pointee.target.isGroup ? FlowHash.labelStack(b, top: top, end: end) : 0
        let dynamic = UInt32(lse.tc) << 9 | UInt32(newTTL)
        var i = 0
        while i < count {
            b.setBE32(labelsStart + 4 * i, templates.load(fromByteOffset: 4 * i, as: UInt32.self) | dynamic)
            i &+= 1
        }
        if lse.bottomOfStack { b.setU8(payloadStart - 2, b.u8(payloadStart - 2) | 1) }
        return forward(&f, b, payloadStart: labelsStart, end: end, etherType: EtherType.mpls,
                       target: action.pointee.target, hash: hash, fib: fib)
    }

    /// Whether the label stack entries from `from` on reach one with S=1 before the frame's end and within
    /// `maxLabelDepth` entries of the stack's top (`top`). Only the S bit of each entry is read.
    @inlinable @inline(__always)
    static func stackIsTerminated(_ b: PacketBytes, from: Int, top: Int, end: Int) -> Bool {
        let limit = min(end, top &+ LabelStackEntry.size &* maxLabelDepth)
        var o = from
        while o &+ LabelStackEntry.size <= limit {
            if b.u8(o &+ 2) & 1 != 0 { return true }
            o &+= LabelStackEntry.size
        }
        return false
    }

    /// Validates the IPv4 header at `ip`; returns the packet's end (total length), or nil when malformed or short.
    @inlinable @inline(__always)
    static func checkedIPv4(_ b: PacketBytes, ip: Int, end: Int) -> Int? {
        if ip + IPv4.minHeaderSize > end { return nil }
        let vihl = b.u8(ip)
        let hl = Int(vihl & 0xF) << 2
        if vihl >> 4 != 4 || hl < IPv4.minHeaderSize || ip + hl > end { return nil }
        let total = Int(b.be16(ip + IPv4.totalLengthOffset))
        if total < hl || ip + total > end { return nil }
        return ip + total
    }

    /// Validates the IPv6 header at `ip`; returns the packet's end (payload length), or nil when malformed or short.
    @inlinable @inline(__always)
    static func checkedIPv6(_ b: PacketBytes, ip: Int, end: Int) -> Int? {
        if ip + IPv6.headerSize > end || b.u8(ip) >> 4 != 6 { return nil }
        let e = ip + IPv6.headerSize + Int(b.be16(ip + IPv6.payloadLengthOffset))
        return e > end ? nil : e
    }

    /// Pop to IP (RFC 3443): uniform writes label TTL − 1 into the IP header, pipe decrements the IP TTL.
    @inlinable @inline(__always)
    static func popToIP(_ f: inout Frame, _ b: PacketBytes, ttl: UInt8, ip: Int, end: Int,
                        action: UnsafeMutablePointer<Action>, fib: FIBSnapshot, counters: WorkerCounters) -> Verdict {
        let isIPv6 = action.pointee.payload == .ipv6
        let uniformTTL: UInt8? = action.pointee.isUniform ? ttl &- 1 : nil
        if action.pointee.flags & ActionFlags.lookupInVRF != 0 {
            return ipAfterPop(&f, b, ip: ip, end: end, isIPv6: isIPv6, uniformTTL: uniformTTL,
                              vrf: action.pointee.vrf, fib: fib, counters: counters)
        }
        let r = setExposedIPTTL(b, ip: ip, end: end, isIPv6: isIPv6, uniformTTL: uniformTTL)
        if r != .none { return .dropped(r) }
        var hash: UInt32 = 0
        if action.pointee.target.isGroup {
            hash = FlowHash.finish(isIPv6 ? FlowHash.ipv6(b, ip: ip, end: end, into: FlowHash.seed)
                                          : FlowHash.ipv4(b, ip: ip, end: end, into: FlowHash.seed))
        }
        return forward(&f, b, payloadStart: ip, end: end, etherType: isIPv6 ? EtherType.ipv6 : EtherType.ipv4,
                       target: action.pointee.target, hash: hash, fib: fib)
    }

    /// Checks the IP header exposed by a pop and sets its TTL: `uniformTTL` when given (uniform mode), else the
    /// IP TTL − 1 (pipe; ≤ 1 expires). Returns `.none` or the drop reason.
    @inlinable @inline(__always)
    static func setExposedIPTTL(_ b: PacketBytes, ip: Int, end: Int, isIPv6: Bool, uniformTTL: UInt8?) -> DropReason {
        if isIPv6 {
            if ip + IPv6.headerSize > end { return .tooShort }
            if b.u8(ip) >> 4 != 6 { return .malformed }
            if let t = uniformTTL {
                b.setU8(ip + IPv6.hopLimitOffset, t)
            } else {
                let hl = b.u8(ip + IPv6.hopLimitOffset)
                if hl <= 1 { return .ttlExpired }
                b.setU8(ip + IPv6.hopLimitOffset, hl &- 1)
            }
        } else {
            if checkedIPv4(b, ip: ip, end: end) == nil { return ip + IPv4.minHeaderSize > end ? .tooShort : .malformed }
            if let t = uniformTTL {
                IPv4.setTTL(b, at: ip, t)
            } else {
                if b.u8(ip + IPv4.ttlOffset) <= 1 { return .ttlExpired }
                IPv4.decrementTTL(b, at: ip)
            }
        }
        return .none
    }

    /// Forwards an IP packet exposed by a pop (explicit null, or pop to IP into a VRF): sets its TTL, then routes
    /// it in `vrf` as an FTN lookup without a second decrement.
    @inlinable @inline(__always)
    static func ipAfterPop(_ f: inout Frame, _ b: PacketBytes, ip: Int, end: Int, isIPv6: Bool, uniformTTL: UInt8?,
                           vrf: UInt16, fib: FIBSnapshot, counters: WorkerCounters) -> Verdict {
        let r = setExposedIPTTL(b, ip: ip, end: end, isIPv6: isIPv6, uniformTTL: uniformTTL)
        if r != .none { return .dropped(r) }
        return route(&f, b, ip: ip, end: end, isIPv6: isIPv6, vrf: vrf, decrement: false, fib: fib, counters: counters)
    }

    // MARK: IP (FTN)

    /// IP from a vrf port: drop host traffic, check TTL, route in the port's VRF.
    @inlinable @inline(__always)
    static func ipInput(_ f: inout Frame, _ b: PacketBytes, ip: Int, end: Int, isIPv6: Bool,
                        port: UnsafeMutablePointer<PortRecord>, fib: FIBSnapshot, counters: WorkerCounters) -> Verdict {
        var ipEnd = end
        if isIPv6 {
            guard let e = checkedIPv6(b, ip: ip, end: end) else {
                return .dropped(ip + IPv6.headerSize > end ? .tooShort : .malformed)
            }
            ipEnd = e
            if port.pointee.addressCount != 0
                && fib.portOwns(port, IPv6Address(b, at: ip + IPv6.destinationOffset)) { return .dropped(.notForUs) }
        } else {
            if ip + IPv4.minHeaderSize > end { return .dropped(.tooShort) }
            guard let e = checkedIPv4(b, ip: ip, end: end) else { return .dropped(.malformed) }
            ipEnd = e
            if port.pointee.addressCount != 0
                && fib.portOwns(port, IPv6Address(mapping: b.be32(ip + IPv4.destinationOffset))) { return .dropped(.notForUs) }
            if !IPv4.checksumIsValid(b, at: ip, headerLength: Int(b.u8(ip) & 0xF) << 2) { return .dropped(.badIPChecksum) }
        }
        // Ethernet padding after the IP packet is not forwarded.
        f.length = Int32(ipEnd - Int(f.offset))
        return route(&f, b, ip: ip, end: ipEnd, isIPv6: isIPv6, vrf: port.pointee.vrf, decrement: true, fib: fib,
                     counters: counters)
    }

    /// FTN lookup and push. `decrement`: the IP TTL is decremented here (routing); false after a pop already set it.
    @inlinable @inline(__always)
    static func route(_ f: inout Frame, _ b: PacketBytes, ip: Int, end: Int, isIPv6: Bool, vrf: UInt16,
                      decrement: Bool, fib: FIBSnapshot, counters: WorkerCounters) -> Verdict {
        let leaf: UInt32
        let ttl: UInt8
        let tc: UInt8
        if isIPv6 {
            leaf = fib.lookupV6(vrf: vrf, IPv6Address(b, at: ip + IPv6.destinationOffset))
            ttl = b.u8(ip + IPv6.hopLimitOffset)
            tc = IPv6.trafficClass(b, at: ip) >> 5
        } else {
            leaf = fib.lookupV4(vrf: vrf, b.be32(ip + IPv4.destinationOffset))
            ttl = b.u8(ip + IPv4.ttlOffset)
            tc = b.u8(ip + IPv4.tosOffset) >> 5
        }
        if leaf == 0 { return .dropped(.noRoute) }
        var newTTL = ttl
        if decrement {
            if ttl <= 1 { return .dropped(.ttlExpired) }
            newTTL = ttl &- 1
            if isIPv6 { b.setU8(ip + IPv6.hopLimitOffset, newTTL) } else { IPv4.setTTL(b, at: ip, newTTL) }
        }
        let id = ActionID(leaf &- 1)
        count(counters, id, UInt64(f.length))
        let action = fib.actions + Int(id.rawValue)
        let hash = action.pointee.target.isGroup
            ? FlowHash.finish(isIPv6 ? FlowHash.ipv6(b, ip: ip, end: end, into: FlowHash.seed)
                                     : FlowHash.ipv4(b, ip: ip, end: end, into: FlowHash.seed))
            : 0
        let n = Int(action.pointee.labelCount)
        if n == 0 {
            return forward(&f, b, payloadStart: ip, end: end, etherType: isIPv6 ? EtherType.ipv6 : EtherType.ipv4,
                           target: action.pointee.target, hash: hash, fib: fib)
        }
        // Uniform: labels take the IP TTL (already decremented) and TC from the DSCP's top three bits (RFC 3270).
        let dynamic: UInt32 = action.pointee.isUniform ? UInt32(tc) << 9 | UInt32(newTTL) : 0
        let start = pushLabels(b, payloadStart: ip, action: action, dynamic: dynamic, fib: fib)
        if start < Ethernet.headerSize + Ethernet.vlanTagSize { return .dropped(.noHeadroom) }
        return forward(&f, b, payloadStart: start, end: end, etherType: EtherType.mpls,
                       target: action.pointee.target, hash: hash, fib: fib)
    }

    /// The label templates to write: the primary ones, or the backup ones while the action's next hop is down
    /// and it has some (one byte load of the liveness array, only for actions with backup labels).
    @inlinable @inline(__always)
    static func labelsFor(_ action: UnsafeMutablePointer<Action>, fib: FIBSnapshot) -> (count: Int, templates: UnsafeRawPointer) {
        let area = UnsafeRawPointer(action) + Action.areaOffset
        let n = Int(action.pointee.labelCount)
        if action.pointee.backupLabelCount != 0 && fib.isDown(action.pointee.target) {
            return (Int(action.pointee.backupLabelCount), area + 4 * n)
        }
        return (n, area)
    }

    /// Writes the action's labels (`labelsFor`) in front of `payloadStart`; returns the new start. Templates carry
    /// label, S and (pipe) TC/TTL; `dynamic` ORs in per-packet TC/TTL for uniform mode.
    @inlinable @inline(__always)
    static func pushLabels(_ b: PacketBytes, payloadStart: Int, action: UnsafeMutablePointer<Action>, dynamic: UInt32,
                           fib: FIBSnapshot) -> Int {
        let (n, templates) = labelsFor(action, fib: fib)
        let start = payloadStart - 4 * n
        if start < Ethernet.headerSize + Ethernet.vlanTagSize { return start }
        var i = 0
        while i < n {
            b.setBE32(start + 4 * i, templates.load(fromByteOffset: 4 * i, as: UInt32.self) | dynamic)
            i &+= 1
        }
        return start
    }

    // MARK: VXLAN ↔ MPLS

    /// IP on a dc port: VXLAN to one of our VTEPs on the port's UDP port is stitched into its pseudowire.
    @inlinable @inline(__always)
    static func vxlanInput(_ f: inout Frame, _ b: PacketBytes, ip: Int, end: Int, isIPv6: Bool,
                           port: UnsafeMutablePointer<PortRecord>, fib: FIBSnapshot, counters: WorkerCounters) -> Verdict {
        let udp: Int
        let ipEnd: Int
        let source: IPv6Address
        if isIPv6 {
            guard let e = checkedIPv6(b, ip: ip, end: end) else {
                return .dropped(ip + IPv6.headerSize > end ? .tooShort : .malformed)
            }
            ipEnd = e
            if !fib.portOwns(port, IPv6Address(b, at: ip + IPv6.destinationOffset)) { return .dropped(.notForUs) }
            // Extension headers are not walked: such traffic is left to the host.
            if b.u8(ip + IPv6.nextHeaderOffset) != UDP.protocolNumber { return .dropped(.notForUs) }
            udp = ip + IPv6.headerSize
            source = IPv6Address(b, at: ip + IPv6.sourceOffset)
        } else {
            if ip + IPv4.minHeaderSize > end { return .dropped(.tooShort) }
            guard let e = checkedIPv4(b, ip: ip, end: end) else { return .dropped(.malformed) }
            ipEnd = e
            if !fib.portOwns(port, IPv6Address(mapping: b.be32(ip + IPv4.destinationOffset))) { return .dropped(.notForUs) }
            if b.u8(ip + IPv4.protocolOffset) != UDP.protocolNumber { return .dropped(.notForUs) }
            if b.be16(ip + IPv4.flagsFragmentOffset) & IPv4.fragmentMask != 0 { return .dropped(.underlayFragment) }
            let hl = Int(b.u8(ip) & 0xF) << 2
            if !IPv4.checksumIsValid(b, at: ip, headerLength: hl) { return .dropped(.badIPChecksum) }
            udp = ip + hl
            source = IPv6Address(mapping: b.be32(ip + IPv4.sourceOffset))
        }
        if udp + UDP.headerSize > ipEnd { return .dropped(.tooShort) }
        if b.be16(udp + UDP.destinationPortOffset) != port.pointee.vxlanPort { return .dropped(.notForUs) }
        let udpLength = Int(b.be16(udp + UDP.lengthOffset))
        if udpLength < UDP.headerSize || udp + udpLength > ipEnd { return .dropped(.malformed) }
        let vx = udp + UDP.headerSize
        let payloadEnd = udp + udpLength
        if vx + VXLAN.headerSize > payloadEnd { return .dropped(.tooShort) }
        if b.u8(vx) & VXLAN.flagI == 0 { return .dropped(.vxlanNoIFlag) }
        let vniValue = VXLAN.vni(b, at: vx)
        guard let id = fib.vni(vniValue) else { return .dropped(.unknownVNI) }
        let action = fib.actions + Int(id.rawValue)
        if action.pointee.operation == .multipoint {
            return multipointFromVTEP(&f, b, inner: vx + VXLAN.headerSize, end: payloadEnd, source: source, id: id,
                                      action: action, fib: fib, counters: counters)
        }
        // Only the remote VTEPs the VNI entry names may send on it.
        let vteps = UnsafePointer<IPv6Address>(bitPattern: UInt(action.pointee.vteps))
        if !listed(source, in: vteps, count: Int(action.pointee.auxCount)) { return .dropped(.vtepNotAllowed) }
        let inner = vx + VXLAN.headerSize
        if payloadEnd - inner < Ethernet.headerSize { return .dropped(.tooShort) }
        count(counters, id, UInt64(f.length))
        // The VNI's pseudowire is pushed as a multipoint VNI's site is (`toSite`).
        return toSite(&f, b, inner: inner, end: payloadEnd, site: action, fib: fib)
    }

    /// Whether `address` is one of the `count` addresses at `list` (a VNI's allowed VTEPs).
    @inlinable @inline(__always)
    static func listed(_ address: IPv6Address, in list: UnsafePointer<IPv6Address>?, count: Int) -> Bool {
        guard let list else { return false }
        return index(of: address, in: list, count: count) >= 0
    }

    /// MPLS → VXLAN: outer IP (DF, valid checksum) / UDP (source port from the inner-frame hash; checksum 0 over
    /// IPv4, computed over IPv6: RFC 6935/6936) / VXLAN (I flag, VNI) in front of the inner Ethernet frame.
    @inlinable @inline(__always)
    static func vxlanEncap(_ f: inout Frame, _ b: PacketBytes, inner: Int, end: Int,
                           action: UnsafeMutablePointer<Action>, fib: FIBSnapshot) -> Verdict {
        let hash = FlowHash.ethernet(b, at: inner, end: end)
        let v6 = action.pointee.flags & ActionFlags.ipv6Underlay != 0
        let ipSize = v6 ? IPv6.headerSize : IPv4.minHeaderSize
        let udp = inner - VXLAN.headerSize - UDP.headerSize
        let ip = udp - ipSize
        if ip < Ethernet.headerSize + Ethernet.vlanTagSize { return .dropped(.noHeadroom) }
        let area = UnsafeRawPointer(action) + Action.areaOffset
        // VXLAN header, then the IP header template.
        b.copySmall(from: area + 40, count: VXLAN.headerSize, to: inner - VXLAN.headerSize)
        b.copySmall(from: area, count: ipSize, to: ip)
        let udpLength = end - udp
        b.setBE16(udp + UDP.sourcePortOffset, VXLAN.sourcePortBase | UInt16(truncatingIfNeeded: hash) & 0x3FFF)
        b.setBE16(udp + UDP.destinationPortOffset, UInt16(truncatingIfNeeded: action.pointee.aux))
        b.setBE16(udp + UDP.lengthOffset, UInt16(truncatingIfNeeded: udpLength))
        b.setBE16(udp + UDP.checksumOffset, 0)
        if v6 {
            b.setBE16(ip + IPv6.payloadLengthOffset, UInt16(truncatingIfNeeded: udpLength))
            b.setBE16(udp + UDP.checksumOffset, UDP.checksumOverIPv6(b, ipOffset: ip, udpOffset: udp, length: udpLength))
        } else {
            let total = UInt16(truncatingIfNeeded: end - ip)
            b.setBE16(ip + IPv4.totalLengthOffset, total)
            // The template's checksum over its constant fields is precomputed; add the length and fold.
            b.setBE16(ip + IPv4.checksumOffset, InternetChecksum.finish(action.pointee.auxCount &+ UInt32(total)))
        }
        return forward(&f, b, payloadStart: ip, end: end, etherType: v6 ? EtherType.ipv6 : EtherType.ipv4,
                       target: action.pointee.target, hash: hash, fib: fib)
    }

    // MARK: Output

    /// The flow hash for a next hop that fell back to a group backup (its own target needed none): the label stack
    /// as written, or the IP 5-tuple. Off the fast path (only while a next hop is down).
    @inlinable @inline(never)
    static func backupFlowHash(_ b: PacketBytes, payloadStart: Int, end: Int, etherType: UInt16) -> UInt32 {
        switch etherType {
        case EtherType.mpls: return FlowHash.labelStack(b, top: payloadStart, end: end)
        case EtherType.ipv4: return FlowHash.finish(FlowHash.ipv4(b, ip: payloadStart, end: end, into: FlowHash.seed))
        default: return FlowHash.finish(FlowHash.ipv6(b, ip: payloadStart, end: end, into: FlowHash.seed))
        }
    }

    /// Resolves the target as it is now (liveness: a down next hop's backup, a group bucket's second choice),
    /// checks the MTU (bytes after the Ethernet header, detour labels included) and writes the next hop's Ethernet
    /// header in front of `payloadStart`.
    @inlinable @inline(__always)
    static func forward(_ f: inout Frame, _ b: PacketBytes, payloadStart: Int, end: Int, etherType: UInt16,
                        target: ForwardTarget, hash: UInt32, fib: FIBSnapshot) -> Verdict {
        guard let nh = fib.resolveLive(target, hash: hash, flowHash: {
            backupFlowHash(b, payloadStart: payloadStart, end: end, etherType: etherType)
        }) else { return .dropped(.nextHopDown) }
        if end - payloadStart > Int(nh.pointee.mtu) { return .dropped(.mtuExceeded) }
        let start = nh.pointee.writeHeader(b, payloadOffset: payloadStart, etherType: etherType)
        f.offset = Int32(start)
        f.length = Int32(end - start)
        return .forward(nh.pointee.port)
    }
}
