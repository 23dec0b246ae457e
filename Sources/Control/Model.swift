import Wire
import FIB

/// The schema version of config and FIB documents this build reads and writes.
public let schemaVersion = 1

/// TTL and TC handling when labels meet IP (RFC 3443): uniform copies between label and IP, pipe does not.
public enum TTLMode: String, Sendable, Equatable {
    case uniform
    case pipe
}

/// One port of the instance (from the config file).
public struct PortConfig: Sendable, Equatable {
    public var name: String
    /// The Linux interface the live agent binds (replay ignores it).
    public var interface: String?
    public var mac: MACAddress
    public var role: PortRole
    /// The VRF whose FTN routes IP from this port is looked up in; "default" unless set.
    public var vrf: String
    /// dc ports: our VTEP addresses (VXLAN to these is stitched).
    public var vteps: [IPAddress]
    /// The host's own addresses on this port (IP to these is left to the host).
    public var addresses: [IPAddress]
    /// core ports: the addresses MPLSGate's BFD sessions use; BFD control packets to them are taken from the host
    /// (an opt-in, so a host's own bfdd on other addresses keeps its packets).
    public var bfdAddresses: [IPAddress] = []
    /// dc ports: the VXLAN UDP port accepted.
    public var vxlanPort: UInt16
    /// Default MTU of next hops on this port (bytes after the Ethernet header).
    public var mtu: Int

    public init(name: String, interface: String? = nil, mac: MACAddress, role: PortRole, vrf: String = "default",
                vteps: [IPAddress] = [], addresses: [IPAddress] = [], vxlanPort: UInt16 = VXLAN.defaultUDPPort,
                mtu: Int = 1500) {
        self.name = name; self.interface = interface; self.mac = mac; self.role = role; self.vrf = vrf
        self.vteps = vteps; self.addresses = addresses; self.vxlanPort = vxlanPort; self.mtu = mtu
    }
}

/// The instance config: its ports.
public struct InstanceConfig: Sendable, Equatable {
    public var version: Int
    public var ports: [PortConfig]
    public init(version: Int = schemaVersion, ports: [PortConfig]) { self.version = version; self.ports = ports }

    /// The VRF names in use: "default" first, then those ports name, in order.
    public var vrfNames: [String] {
        var names = ["default"]
        for p in ports where !names.contains(p.vrf) { names.append(p.vrf) }
        return names
    }
}

/// A next hop named by the controller.
public struct NextHopSpec: Sendable, Equatable {
    public var name: String
    public var port: String
    /// Destination MAC.
    public var mac: MACAddress
    /// Source MAC; the port's when nil.
    public var sourceMAC: MACAddress?
    /// 802.1Q VLAN to tag with; untagged when nil.
    public var vlan: UInt16?
    /// Bytes allowed after the Ethernet header; the port's MTU when nil.
    public var mtu: Int?
    /// The next hop or ECMP group used while this one is down (link protection); it may not have a backup itself.
    public var backup: String?
    /// A BFD session to the neighbour that keeps this next hop up (core ports only).
    public var bfd: BFDSpec?
    public init(name: String, port: String, mac: MACAddress, sourceMAC: MACAddress? = nil, vlan: UInt16? = nil, mtu: Int? = nil,
                backup: String? = nil, bfd: BFDSpec? = nil) {
        self.name = name; self.port = port; self.mac = mac; self.sourceMAC = sourceMAC; self.vlan = vlan; self.mtu = mtu
        self.backup = backup; self.bfd = bfd
    }
}

/// Single-hop BFD to a next hop's neighbour (RFC 5880, 5881): the next hop is usable only while the session is up
/// (or the peer has it administratively down). Next hops naming the same port, local and peer address share one
/// session, which runs at the shortest intervals and smallest multiplier among them.
public struct BFDSpec: Sendable, Equatable {
    /// The neighbour's address on the link (IPv4, or IPv6 link-local).
    public var peer: IPAddress
    /// Our address on the port; one of the port's `bfdAddresses` in the config. Nil: the port's first of the
    /// peer's family.
    public var local: IPAddress?
    /// Desired minimum transmit interval once up, ms.
    public var minTxMs: Int
    /// Required minimum receive interval, ms.
    public var minRxMs: Int
    /// Detection multiplier.
    public var multiplier: Int
    public static let intervalRange = 10...60_000
    public init(peer: IPAddress, local: IPAddress? = nil, minTxMs: Int = 300, minRxMs: Int = 300, multiplier: Int = 3) {
        self.peer = peer; self.local = local; self.minTxMs = minTxMs; self.minRxMs = minRxMs; self.multiplier = multiplier
    }
}

/// An ECMP group over named next hops.
public struct ECMPGroupSpec: Sendable, Equatable {
    public var name: String
    public var members: [String]
    public init(name: String, members: [String]) { self.name = name; self.members = members }
}

/// What an ILM entry does with the label it matches (DESIGN §3).
public enum ILMOperationSpec: Sendable, Equatable {
    /// Replace the top label with `out` (1–16 labels); `[3]` alone is PHP, forwarding `payload` below.
    case swap(out: [UInt32], via: String, payload: Payload?, ttlMode: TTLMode)
    /// Pop and look up the next label.
    case pop(ttlMode: TTLMode)
    /// Pop the bottom label; forward the IP payload via a next hop/group, or look it up in a VRF.
    case popToIP(payload: Payload, via: String?, vrf: String?, ttlMode: TTLMode)
    /// Pop the pseudowire label and VXLAN-encapsulate the inner frame.
    case popToVXLAN(PseudowireEgress)
    /// Pop a site's pseudowire label into a multipoint VNI (`MultipointSpec`): its frames go to the local VTEPs.
    case popToMultipoint(MultipointIngress)
    /// Drop.
    case drop
}

/// MPLS → VXLAN parameters of a pseudowire label.
public struct PseudowireEgress: Sendable, Equatable {
    public var vni: UInt32
    public var controlWord: Bool
    public var localVTEP: IPAddress
    public var remoteVTEP: IPAddress
    public var via: String
    public var udpPort: UInt16
    /// Outer IP TTL / hop limit.
    public var ttl: UInt8
    public init(vni: UInt32, controlWord: Bool, localVTEP: IPAddress, remoteVTEP: IPAddress, via: String,
                udpPort: UInt16 = VXLAN.defaultUDPPort, ttl: UInt8 = 64) {
        self.vni = vni; self.controlWord = controlWord; self.localVTEP = localVTEP; self.remoteVTEP = remoteVTEP
        self.via = via; self.udpPort = udpPort; self.ttl = ttl
    }
}

/// The incoming pseudowire of a multipoint VNI's remote site.
public struct MultipointIngress: Sendable, Equatable {
    public var vni: UInt32
    /// The site's name in the VNI's `sites` (for reports; frames of a label whose VNI is not multipoint are
    /// dropped as unknownVNI).
    public var site: String
    public var controlWord: Bool
    public init(vni: UInt32, site: String, controlWord: Bool) { self.vni = vni; self.site = site; self.controlWord = controlWord }
}

/// A remote data centre of a multipoint VNI: the pseudowire toward its gateway.
public struct SiteSpec: Sendable, Equatable {
    public var name: String
    /// Labels to push, top first; the last is the site's pseudowire label (S=1).
    public var push: [UInt32]
    public var via: String
    public var controlWord: Bool
    public init(name: String, push: [UInt32], via: String, controlWord: Bool = true) {
        self.name = name; self.push = push; self.via = via; self.controlWord = controlWord
    }
}

/// A VTEP of this data centre on a multipoint VNI.
public struct LocalVTEPSpec: Sendable, Equatable {
    public var address: IPAddress
    /// The underlay next hop toward it (a dc port's).
    public var via: String
    public init(address: IPAddress, via: String) { self.address = address; self.via = via }
}

/// A multipoint VNI: one tenant segment across this data centre's VTEPs and the remote sites (RFC 4762 VPLS at
/// the RFC 9014 gateway), with ingress replication and split horizon.
public struct MultipointSpec: Sendable, Equatable {
    /// Our VTEP address: the outer source toward local VTEPs (one of the dc port's `vteps`).
    public var localVTEP: IPAddress
    public var vteps: [LocalVTEPSpec]
    public var sites: [SiteSpec]
    public var udpPort: UInt16
    /// Outer IP TTL toward local VTEPs.
    public var underlayTTL: UInt8
    /// Broadcast/unknown/multicast frames per second per worker that are replicated (0: no limit).
    public var bumPerSecond: UInt32
    public static let defaultBUMPerSecond: UInt32 = 10_000
    /// MAC learning (RFC 4762 §4): sources are learned from the traffic and checked against static MACs.
    public var learning: MACLearningSpec
    public init(localVTEP: IPAddress, vteps: [LocalVTEPSpec], sites: [SiteSpec], udpPort: UInt16 = VXLAN.defaultUDPPort,
                underlayTTL: UInt8 = 64, bumPerSecond: UInt32 = MultipointSpec.defaultBUMPerSecond,
                learning: MACLearningSpec = MACLearningSpec()) {
        self.localVTEP = localVTEP; self.vteps = vteps; self.sites = sites; self.udpPort = udpPort
        self.underlayTTL = underlayTTL; self.bumPerSecond = bumPerSecond; self.learning = learning
    }

    /// The place number (sites first, then local VTEPs) a MAC entry names, or nil.
    public func place(of m: MACEntrySpec) -> Int? {
        if let s = m.site { return sites.firstIndex { $0.name == s } }
        if let v = m.vtep { return vteps.firstIndex { $0.address == v }.map { sites.count + $0 } }
        return nil
    }
}

/// How a multipoint VNI learns MACs (docs/fib-format.md, "MAC learning").
public struct MACLearningSpec: Sendable, Equatable {
    /// Off: only static MACs forward as known unicast; sources are neither learned nor checked.
    public var enabled: Bool
    /// Learned MACs this VNI may hold; further sources are not learned (their frames still flood).
    public var macLimit: UInt32
    /// A learned MAC not refreshed for this long disappears.
    public var agingSeconds: UInt32
    /// RFC 7432 §15.1: more than `moveLimit` moves within `moveWindowSeconds` freeze the MAC as a duplicate for
    /// `holdSeconds` (0: until an operator clears it).
    public var moveLimit: UInt32
    public var moveWindowSeconds: UInt32
    public var holdSeconds: UInt32
    public static let defaultMACLimit: UInt32 = 16_384
    public static let macLimitRange: ClosedRange<Int64> = 1...4_194_304
    public static let agingRange: ClosedRange<Int64> = 10...1_000_000
    public init(enabled: Bool = true, macLimit: UInt32 = MACLearningSpec.defaultMACLimit, agingSeconds: UInt32 = 300,
                moveLimit: UInt32 = 5, moveWindowSeconds: UInt32 = 180, holdSeconds: UInt32 = 300) {
        self.enabled = enabled; self.macLimit = macLimit; self.agingSeconds = agingSeconds
        self.moveLimit = moveLimit; self.moveWindowSeconds = moveWindowSeconds; self.holdSeconds = holdSeconds
    }
}

/// A static MAC of a multipoint VNI: behind a remote site or a local VTEP.
public struct MACEntrySpec: Sendable, Equatable {
    public var vni: UInt32
    public var mac: MACAddress
    public var site: String?
    public var vtep: IPAddress?
    public init(vni: UInt32, mac: MACAddress, site: String? = nil, vtep: IPAddress? = nil) {
        self.vni = vni; self.mac = mac; self.site = site; self.vtep = vtep
    }
    public var key: MACKey { MACKey(vni: vni, mac: mac.value) }
}

/// The key of a static MAC entry.
public struct MACKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var vni: UInt32
    public var mac: UInt64
    public init(vni: UInt32, mac: UInt64) { self.vni = vni; self.mac = mac }
    public static func < (a: MACKey, b: MACKey) -> Bool { (a.vni, a.mac) < (b.vni, b.mac) }
    /// "5000/02:00:00:00:00:01"
    public var description: String { "\(vni)/\(MACAddress(value: mac))" }
}

/// An incoming label map entry.
public struct ILMEntrySpec: Sendable, Equatable {
    public var label: UInt32
    public var operation: ILMOperationSpec
    /// swap: the labels written instead of `out` while the entry's next hop is on its backup (the primary
    /// neighbour's labels mean nothing to the backup's).
    public var backupOut: [UInt32]?
    public init(label: UInt32, operation: ILMOperationSpec, backupOut: [UInt32]? = nil) {
        self.label = label; self.operation = operation; self.backupOut = backupOut
    }
}

/// VXLAN → MPLS: a VNI's pseudowire into the core.
public struct VNIEntrySpec: Sendable, Equatable {
    public var vni: UInt32
    /// Labels to push, top first; the last is the service (pseudowire) label and gets S=1.
    public var push: [UInt32]
    public var controlWord: Bool
    public var via: String
    /// Remote VTEPs allowed to send on this VNI.
    public var allowedVTEPs: [IPAddress]
    public var tc: UInt8
    public var ttl: UInt8
    /// The labels pushed instead of `push` while the next hop is on its backup.
    public var backupPush: [UInt32]?
    /// Set for a multipoint VNI (then `push`, `via` and `allowedVTEPs` are empty; `tc` and `ttl` are its sites').
    public var multipoint: MultipointSpec?
    public init(vni: UInt32, push: [UInt32], controlWord: Bool, via: String, allowedVTEPs: [IPAddress],
                tc: UInt8 = 0, ttl: UInt8 = 255, backupPush: [UInt32]? = nil) {
        self.vni = vni; self.push = push; self.controlWord = controlWord; self.via = via
        self.allowedVTEPs = allowedVTEPs; self.tc = tc; self.ttl = ttl; self.backupPush = backupPush
    }
    public init(vni: UInt32, multipoint: MultipointSpec, tc: UInt8 = 0, ttl: UInt8 = 255) {
        self.init(vni: vni, push: [], controlWord: false, via: "", allowedVTEPs: [], tc: tc, ttl: ttl)
        self.multipoint = multipoint
    }
}

/// A route in a VRF: IP prefix → push 0–16 labels (none: a plain IP route) and forward.
public struct FTNEntrySpec: Sendable, Equatable {
    public var vrf: String
    public var prefix: IPAddress
    public var length: Int
    public var push: [UInt32]
    public var via: String
    public var ttlMode: TTLMode
    /// Pipe mode TC and TTL of pushed labels.
    public var tc: UInt8
    public var ttl: UInt8
    /// The labels pushed instead of `push` while the next hop is on its backup.
    public var backupPush: [UInt32]?
    public init(vrf: String = "default", prefix: IPAddress, length: Int, push: [UInt32], via: String,
                ttlMode: TTLMode = .uniform, tc: UInt8 = 0, ttl: UInt8 = 255, backupPush: [UInt32]? = nil) {
        self.vrf = vrf; self.prefix = prefix; self.length = length; self.push = push; self.via = via
        self.ttlMode = ttlMode; self.tc = tc; self.ttl = ttl; self.backupPush = backupPush
    }

    /// "vrf:prefix/length", the entry's key.
    public var key: String { "\(vrf):\(prefix)/\(length)" }
}

/// A whole FIB document: the controller's intent.
public struct FIBSpec: Sendable, Equatable {
    public var version: Int
    public var nextHops: [NextHopSpec]
    public var ecmpGroups: [ECMPGroupSpec]
    public var ilm: [ILMEntrySpec]
    public var vni: [VNIEntrySpec]
    public var ftn: [FTNEntrySpec]
    /// Static MACs of multipoint VNIs.
    public var macs: [MACEntrySpec]
    public init(version: Int = schemaVersion, nextHops: [NextHopSpec] = [], ecmpGroups: [ECMPGroupSpec] = [],
                ilm: [ILMEntrySpec] = [], vni: [VNIEntrySpec] = [], ftn: [FTNEntrySpec] = [], macs: [MACEntrySpec] = []) {
        self.version = version; self.nextHops = nextHops; self.ecmpGroups = ecmpGroups
        self.ilm = ilm; self.vni = vni; self.ftn = ftn; self.macs = macs
    }
}

extension FIBSpec {
    /// The document without its multipoint parts (multipoint VNIs, their pseudowire labels, static MACs): what the
    /// C baseline, which has no replication, can be compared on.
    public var pointToPoint: FIBSpec {
        var f = self
        f.vni.removeAll { $0.multipoint != nil }
        f.ilm.removeAll { if case .popToMultipoint = $0.operation { return true }; return false }
        f.macs = []
        return f
    }
}

/// A validation error naming the offending element, e.g. `ilm[3] (label 15)`, and what kind of mistake it is (the
/// control protocol's `data.reason`, so a controller can tell a typo from a dangling reference without parsing text).
public struct ValidationError: Error, Equatable, CustomStringConvertible {
    /// The kinds of mistake a document or entry can make (docs/control-protocol.md, "Errors").
    public enum Kind: String, CaseIterable, Sendable {
        case syntax         // not JSON
        case type           // a value of the wrong JSON type
        case missing        // a required field is absent
        case unknownKey     // a field this schema does not have
        case format         // text that is not an address, MAC, prefix or one of the allowed words
        case range          // a number outside its range (labels, VNIs, TC, TTL, MTU, ports, intervals)
        case empty          // a name, list or label stack that must not be empty
        case reserved       // a reserved label where it is not allowed
        case duplicate      // a key, name or member given twice
        case reference      // a name or address that names nothing (next hop, port, VRF, VNI, site, VTEP)
        case limit          // more than the schema or the FIB allows
        case version        // a schema version this build does not read
        case rule           // a combination the model does not allow
    }
    public var element: String
    public var message: String
    public var kind: Kind
    public init(_ element: String, _ message: String, kind: Kind = .rule) {
        self.element = element; self.message = message; self.kind = kind
    }
    public var description: String { "\(element): \(message)" }
}
