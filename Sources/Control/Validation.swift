import Wire
import FIB

/// Checks a config on its own: unique port names, sane MTUs, VTEPs only on dc ports.
public func validate(_ config: InstanceConfig) throws(ValidationError) {
    guard config.version == schemaVersion else {
        throw ValidationError("version", "schema version \(config.version) is not supported (this build reads \(schemaVersion))", kind: .version)
    }
    guard !config.ports.isEmpty else { throw ValidationError("ports", "at least one port is required", kind: .empty) }
    guard config.ports.count < PortID.maxCount else { throw ValidationError("ports", "at most \(PortID.maxCount - 1) ports", kind: .limit) }
    var seen = Set<String>()
    for (i, p) in config.ports.enumerated() {
        func el() -> String { "ports[\(i)] (\(p.name))" }
        guard !p.name.isEmpty else { throw ValidationError("ports[\(i)]", "name must not be empty", kind: .empty) }
        guard seen.insert(p.name).inserted else { throw ValidationError(el(), "duplicate port name", kind: .duplicate) }
        guard (68...65535).contains(p.mtu) else { throw ValidationError(el(), "mtu \(p.mtu) outside 68–65535", kind: .range) }
        if p.role == .dc && p.vteps.isEmpty { throw ValidationError(el(), "a dc port needs at least one VTEP address") }
        if p.role != .dc && !p.vteps.isEmpty { throw ValidationError(el(), "only dc ports have VTEP addresses") }
        if p.vxlanPort == 0 { throw ValidationError(el(), "vxlanPort must not be 0", kind: .range) }
        if p.role != .core && !p.bfdAddresses.isEmpty { throw ValidationError(el(), "only core ports have BFD addresses") }
        if p.bfdAddresses.filter(\.isIPv4).count > 16 || p.bfdAddresses.filter({ !$0.isIPv4 }).count > 16 {
            throw ValidationError("\(el()).bfdAddresses", "at most 16 IPv4 and 16 IPv6 addresses", kind: .limit)
        }
    }
}

/// Checks that an out-going label value is legal in a pushed or swapped stack: 0 and 2 (explicit null) or ≥ 16.
func checkOutLabel(_ v: UInt32, _ el: @autoclosure () -> String) throws(ValidationError) {
    if v > MPLSLabel.maxValue { throw ValidationError(el(), "label \(v) above \(MPLSLabel.maxValue)", kind: .range) }
    if v < 16 && v != 0 && v != 2 {
        throw ValidationError(el(), "label \(v) is reserved; only 0 and 2 (explicit null) may be pushed, and [3] alone means PHP", kind: .reserved)
    }
}

func checkStack(_ labels: [UInt32], _ el: @autoclosure () -> String, allowEmpty: Bool) throws(ValidationError) {
    if labels.isEmpty && !allowEmpty { throw ValidationError(el(), "at least one label is required", kind: .empty) }
    if labels.count > 16 { throw ValidationError(el(), "\(labels.count) labels; at most 16", kind: .limit) }
    for (i, v) in labels.enumerated() { try checkOutLabel(v, "\(el())[\(i)]") }
}

/// Checks one next hop on its own (names are checked by the caller).
func checkNextHop(_ nh: NextHopSpec, _ el: @autoclosure () -> String, ports: Set<String>) throws(ValidationError) {
    guard ports.contains(nh.port) else { throw ValidationError(el(), "port \"\(nh.port)\" is not in the config", kind: .reference) }
    if let v = nh.vlan, !(1...Ethernet.maxVLAN).contains(v) { throw ValidationError(el(), "vlan \(v) outside 1–4094", kind: .range) }
    if let m = nh.mtu, !(68...65535).contains(m) { throw ValidationError(el(), "mtu \(m) outside 68–65535", kind: .range) }
}

/// Checks a next hop's BFD session against the config: a core port, peer and local of one family, the local
/// address one of the port's `bfdAddresses`.
func checkBFD(_ nh: NextHopSpec, _ el: @autoclosure () -> String, config: InstanceConfig) throws(ValidationError) {
    guard let b = nh.bfd else { return }
    let e = "\(el()).bfd"
    guard let port = config.ports.first(where: { $0.name == nh.port }) else { return }
    guard port.role == .core else {
        throw ValidationError(e, "BFD runs on core ports only; port \(port.name) is a \(port.role.name) port")
    }
    if !BFDSpec.intervalRange.contains(b.minTxMs) || !BFDSpec.intervalRange.contains(b.minRxMs) {
        throw ValidationError(e, "intervals must lie in \(BFDSpec.intervalRange.lowerBound)–\(BFDSpec.intervalRange.upperBound) ms", kind: .range)
    }
    if !(1...255).contains(b.multiplier) { throw ValidationError(e, "multiplier must lie in 1–255", kind: .range) }
    let unicast: Bool
    switch b.peer {
    case .v4(let a): unicast = a.value != 0 && a.value >> 28 < 14 && a.value >> 24 != 127
    case .v6(let a): unicast = a.high >> 56 != 0xFF && !(a.high == 0 && a.low <= 1)
    }
    guard unicast else { throw ValidationError(e, "peer \(b.peer) is not a unicast address of a neighbour") }
    guard let local = bfdLocal(b, port: port) else {
        throw ValidationError(e, "port \(port.name) has no \(b.peer.isIPv4 ? "IPv4" : "IPv6") address in the config's "
                              + "\"bfdAddresses\" to send BFD from; add one", kind: .reference)
    }
    guard local.isIPv4 == b.peer.isIPv4 else { throw ValidationError(e, "local \(local) and peer \(b.peer) are of different families") }
    guard port.bfdAddresses.contains(local) else {
        throw ValidationError(e, "local \(local) is not one of port \(port.name)'s bfdAddresses in the config", kind: .reference)
    }
    guard local != b.peer else { throw ValidationError(e, "peer and local are the same address") }
}

/// The address a BFD session sends from: the one given, else the port's first address of the peer's family.
public func bfdLocal(_ b: BFDSpec, port: PortConfig) -> IPAddress? {
    b.local ?? port.bfdAddresses.first { $0.isIPv4 == b.peer.isIPv4 }
}

extension IPAddress {
    var isIPv4: Bool { if case .v4 = self { return true } else { return false } }
}

/// Checks a next hop's backup: it exists, is not the next hop itself, and has no backup of its own; and a next
/// hop that is another's backup gets none.
func checkBackup(_ nh: NextHopSpec, _ el: @autoclosure () -> String, resolves: (String) -> Bool, backupOf: (String) -> String??,
                 usedAsBackup: (String) -> Bool) throws(ValidationError) {
    guard let b = nh.backup else { return }
    guard b != nh.name else { throw ValidationError(el(), "a next hop cannot be its own backup") }
    guard resolves(b) else { throw ValidationError(el(), "backup \"\(b)\" names no next hop or ECMP group", kind: .reference) }
    if case .some(.some(let bb)) = backupOf(b) {
        throw ValidationError(el(), "backup \"\(b)\" has a backup of its own (\"\(bb)\"); a backup has none")
    }
    if usedAsBackup(nh.name) {
        throw ValidationError(el(), "\"\(nh.name)\" is another next hop's backup, so it cannot have one")
    }
}

/// Checks a group's members: at least one, each an existing next hop, no duplicates.
func checkGroup(_ g: ECMPGroupSpec, _ el: @autoclosure () -> String, isNextHop: (String) -> Bool) throws(ValidationError) {
    guard !g.members.isEmpty else { throw ValidationError(el(), "a group needs at least one member", kind: .empty) }
    var members = Set<String>()
    for (j, m) in g.members.enumerated() {
        guard isNextHop(m) else { throw ValidationError("\(el()).members[\(j)]", "\"\(m)\" is not a next hop", kind: .reference) }
        guard members.insert(m).inserted else { throw ValidationError("\(el()).members[\(j)]", "duplicate member \"\(m)\"", kind: .duplicate) }
    }
}

/// Whether `via` names a next hop (backupOf answers nil only for names that are not next hops).
func resolvesToNextHop(_ via: String, _ backupOf: (String) -> String??) -> Bool { backupOf(via) != nil }

func checkVia(_ via: String, _ el: @autoclosure () -> String, _ resolves: (String) -> Bool) throws(ValidationError) {
    if !resolves(via) { throw ValidationError(el(), "via \"\(via)\" names no next hop or ECMP group", kind: .reference) }
}

/// Labels written while the entry's next hop is down: only with a next hop (a group protects itself bucket by
/// bucket), at most 8, and with the primary's at most 24 (`Action.area`). A next hop without a backup never uses
/// them; they are kept, not refused, so that removing a backup never makes a stored FIB invalid.
func checkBackupLabels(_ backup: [UInt32]?, primary: Int, via: String, _ el: @autoclosure () -> String, field: String,
                       backupOf: (String) -> String??) throws(ValidationError) {
    guard let backup else { return }
    if primary == 0 { throw ValidationError(el(), "\(field) needs labels in push: a plain IP route has none to replace") }
    if !resolvesToNextHop(via, backupOf) { throw ValidationError(el(), "\(field) needs via to name a next hop, not a group") }
    try checkStack(backup, "\(el()).\(field)", allowEmpty: false)
    if backup.count > 8 || primary + backup.count > 24 {
        throw ValidationError("\(el()).\(field)", "\(backup.count) labels; at most 8, and 24 with the primary's \(primary)", kind: .limit)
    }
}

/// Checks one ILM entry; `resolves` says whether a `via` name exists; `backupOf(name)` is nil for no next hop of
/// that name, else the next hop's backup.
func checkILM(_ e: ILMEntrySpec, _ el: @autoclosure () -> String, resolves: (String) -> Bool, vrfs: Set<String>,
              backupOf: (String) -> String?? = { _ in nil }) throws(ValidationError) {
    if e.label > MPLSLabel.maxValue { throw ValidationError(el(), "label \(e.label) above \(MPLSLabel.maxValue)", kind: .range) }
    if e.label < 16 { throw ValidationError(el(), "incoming label \(e.label) is reserved (0–15 are never ILM keys)", kind: .reserved) }
    switch e.operation {
    case .swap(let out, let via, let payload, _):
        try checkVia(via, el(), resolves)
        if out == [3] {
            if payload == nil { throw ValidationError(el(), "PHP (out [3]) needs payload: mpls, ipv4 or ipv6") }
            if e.backupOut != nil { throw ValidationError(el(), "backupOut is for swaps that write labels, not PHP") }
        } else {
            try checkStack(out, "\(el()).out", allowEmpty: false)
            try checkBackupLabels(e.backupOut, primary: out.count, via: via, el(), field: "backupOut", backupOf: backupOf)
        }
    case .pop, .popToIP, .popToVXLAN, .popToMultipoint, .drop:
        if e.backupOut != nil { throw ValidationError(el(), "backupOut is for swap entries") }
    }
    switch e.operation {
    case .swap, .pop:
        break
    case .popToIP(_, let via, let vrf, _):
        switch (via, vrf) {
        case (let v?, nil): try checkVia(v, el(), resolves)
        case (nil, let r?): if !vrfs.contains(r) { throw ValidationError(el(), "vrf \"\(r)\" is not named by any port", kind: .reference) }
        default: throw ValidationError(el(), "popToIP needs exactly one of via and vrf")
        }
    case .popToVXLAN(let pw):
        try checkVia(pw.via, el(), resolves)
        if pw.vni > VNI.maxValue { throw ValidationError(el(), "vni \(pw.vni) above \(VNI.maxValue)", kind: .range) }
        switch (pw.localVTEP, pw.remoteVTEP) {
        case (.v4, .v4), (.v6, .v6): break
        default: throw ValidationError(el(), "localVTEP and remoteVTEP must be the same address family")
        }
        if pw.udpPort == 0 { throw ValidationError(el(), "udpPort must not be 0", kind: .range) }
        if pw.ttl == 0 { throw ValidationError(el(), "ttl must not be 0", kind: .range) }
    case .popToMultipoint(let m):
        if m.vni > VNI.maxValue { throw ValidationError(el(), "vni \(m.vni) above \(VNI.maxValue)", kind: .range) }
        if m.site.isEmpty { throw ValidationError(el(), "site must not be empty", kind: .empty) }
    case .drop:
        break
    }
}

/// The most places (sites + local VTEPs) of one multipoint VNI.
public let maxMultipointPlaces = 1024

/// Checks a multipoint VNI's own fields (its MACs are checked against it by `checkMAC`).
func checkMultipoint(_ e: VNIEntrySpec, _ m: MultipointSpec, _ el: @autoclosure () -> String,
                     resolves: (String) -> Bool) throws(ValidationError) {
    if !e.push.isEmpty || !e.via.isEmpty || !e.allowedVTEPs.isEmpty || e.backupPush != nil || e.controlWord {
        throw ValidationError(el(), "a multipoint VNI has no push, via, allowedVTEPs, backupPush or controlWord of its own: "
                              + "they belong to its sites and vteps")
    }
    if m.sites.isEmpty && m.vteps.isEmpty { throw ValidationError(el(), "multipoint needs at least one site or vtep", kind: .empty) }
    if m.sites.count + m.vteps.count > maxMultipointPlaces {
        throw ValidationError(el(), "\(m.sites.count + m.vteps.count) sites and vteps; at most \(maxMultipointPlaces)", kind: .limit)
    }
    var names = Set<String>()
    for (i, s) in m.sites.enumerated() {
        let sel = "\(el()).multipoint.sites[\(i)] (\(s.name))"
        if s.name.isEmpty { throw ValidationError(sel, "name must not be empty", kind: .empty) }
        guard names.insert(s.name).inserted else { throw ValidationError(sel, "duplicate site name", kind: .duplicate) }
        try checkStack(s.push, "\(sel).push", allowEmpty: false)
        if let last = s.push.last, last < 16 { throw ValidationError("\(sel).push", "the bottom label is the site's pseudowire label and must be ≥ 16", kind: .reserved) }
        try checkVia(s.via, sel, resolves)
    }
    var addresses = Set<IPAddress>()
    for (i, v) in m.vteps.enumerated() {
        let vel = "\(el()).multipoint.vteps[\(i)] (\(v.address))"
        guard addresses.insert(v.address).inserted else { throw ValidationError(vel, "duplicate vtep address", kind: .duplicate) }
        if v.address.isV6 != m.localVTEP.isV6 { throw ValidationError(vel, "address and localVTEP must be the same family") }
        try checkVia(v.via, vel, resolves)
    }
    if m.udpPort == 0 { throw ValidationError(el(), "udpPort must not be 0", kind: .range) }
    if m.underlayTTL == 0 { throw ValidationError(el(), "underlayTTL must not be 0", kind: .range) }
    let l = m.learning
    if !MACLearningSpec.macLimitRange.contains(Int64(l.macLimit)) {
        throw ValidationError("\(el()).learning.macLimit", "\(l.macLimit) outside \(MACLearningSpec.macLimitRange)", kind: .range)
    }
    if !MACLearningSpec.agingRange.contains(Int64(l.agingSeconds)) {
        throw ValidationError("\(el()).learning.agingSeconds", "\(l.agingSeconds) outside \(MACLearningSpec.agingRange)", kind: .range)
    }
    if !(1...1000).contains(l.moveLimit) || !(1...86_400).contains(l.moveWindowSeconds) || l.holdSeconds > 1_000_000 {
        throw ValidationError("\(el()).learning", "moveLimit 1–1000, moveWindowSeconds 1–86400 and holdSeconds 0–1000000",
                              kind: .range)
    }
}

/// Checks that a static MAC names a place of its VNI (`vni`: the VNI's entry, nil when there is none).
func checkMAC(_ m: MACEntrySpec, _ el: @autoclosure () -> String, vni: VNIEntrySpec?) throws(ValidationError) {
    if m.vni > VNI.maxValue { throw ValidationError(el(), "vni \(m.vni) above \(VNI.maxValue)", kind: .range) }
    if m.mac.value & 0x0100_0000_0000 != 0 { throw ValidationError(el(), "\(m.mac) is a group address; only unicast MACs have one place") }
    if (m.site == nil) == (m.vtep == nil) { throw ValidationError(el(), "needs exactly one of site and vtep") }
    guard let v = vni else { throw ValidationError(el(), "vni \(m.vni) has no entry", kind: .reference) }
    guard let mp = v.multipoint else { throw ValidationError(el(), "vni \(m.vni) is point-to-point; static MACs need a multipoint VNI") }
    if mp.place(of: m) == nil {
        if let s = m.site { throw ValidationError(el(), "vni \(m.vni) has no site \"\(s)\"", kind: .reference) }
        throw ValidationError(el(), "vni \(m.vni) has no local vtep \(m.vtep!)", kind: .reference)
    }
}

func checkVNI(_ e: VNIEntrySpec, _ el: @autoclosure () -> String, resolves: (String) -> Bool,
              backupOf: (String) -> String?? = { _ in nil }) throws(ValidationError) {
    if e.vni > VNI.maxValue { throw ValidationError(el(), "vni \(e.vni) above \(VNI.maxValue)", kind: .range) }
    if e.tc > 7 { throw ValidationError(el(), "tc \(e.tc) above 7", kind: .range) }
    if e.ttl == 0 { throw ValidationError(el(), "ttl must not be 0", kind: .range) }
    if let m = e.multipoint { return try checkMultipoint(e, m, el(), resolves: resolves) }
    try checkStack(e.push, "\(el()).push", allowEmpty: false)
    if let last = e.push.last, last < 16 { throw ValidationError("\(el()).push", "the bottom label is the service label and must be ≥ 16", kind: .reserved) }
    try checkVia(e.via, el(), resolves)
    try checkBackupLabels(e.backupPush, primary: e.push.count, via: e.via, el(), field: "backupPush", backupOf: backupOf)
    if let b = e.backupPush, let last = b.last, last < 16 {
        throw ValidationError("\(el()).backupPush", "the bottom label is the service label and must be ≥ 16", kind: .reserved)
    }
    if e.allowedVTEPs.isEmpty { throw ValidationError(el(), "allowedVTEPs needs at least one remote VTEP", kind: .empty) }
    if e.tc > 7 { throw ValidationError(el(), "tc \(e.tc) above 7", kind: .range) }
    if e.ttl == 0 { throw ValidationError(el(), "ttl must not be 0", kind: .range) }
}

func checkFTN(_ e: FTNEntrySpec, _ el: @autoclosure () -> String, resolves: (String) -> Bool, vrfs: Set<String>,
              backupOf: (String) -> String?? = { _ in nil }) throws(ValidationError) {
    if !vrfs.contains(e.vrf) { throw ValidationError(el(), "vrf \"\(e.vrf)\" is not named by any port", kind: .reference) }
    let maxLength: Int
    switch e.prefix { case .v4: maxLength = 32; case .v6: maxLength = 128 }
    guard (0...maxLength).contains(e.length) else { throw ValidationError(el(), "prefix length \(e.length) outside 0–\(maxLength)", kind: .range) }
    guard hostBitsAreZero(e.prefix, e.length) else { throw ValidationError(el(), "address has bits set beyond the prefix length") }
    try checkStack(e.push, "\(el()).push", allowEmpty: true)
    try checkVia(e.via, el(), resolves)
    try checkBackupLabels(e.backupPush, primary: e.push.count, via: e.via, el(), field: "backupPush", backupOf: backupOf)
    if e.tc > 7 { throw ValidationError(el(), "tc \(e.tc) above 7", kind: .range) }
    if e.ttl == 0 { throw ValidationError(el(), "ttl must not be 0", kind: .range) }
}

/// Validates a whole FIB document against a config (resync end, --fib, state files, compile): every element,
/// names unique, every reference resolved.
public func validateDocument(_ fib: FIBSpec, config: InstanceConfig) throws(ValidationError) {
    guard fib.version == schemaVersion else {
        throw ValidationError("version", "schema version \(fib.version) is not supported (this build reads \(schemaVersion))", kind: .version)
    }
    let portNames = Set(config.ports.map(\.name))
    let vrfs = Set(config.vrfNames)
    var nextHops = Set<String>(), groups = Set<String>()
    for (i, nh) in fib.nextHops.enumerated() {
        func el() -> String { "nextHops[\(i)] (\(nh.name))" }
        guard !nh.name.isEmpty else { throw ValidationError("nextHops[\(i)]", "name must not be empty", kind: .empty) }
        guard nextHops.insert(nh.name).inserted else { throw ValidationError(el(), "duplicate name", kind: .duplicate) }
        try checkNextHop(nh, el(), ports: portNames)
        try checkBFD(nh, el(), config: config)
    }
    for (i, g) in fib.ecmpGroups.enumerated() {
        func el() -> String { "ecmpGroups[\(i)] (\(g.name))" }
        guard !g.name.isEmpty else { throw ValidationError("ecmpGroups[\(i)]", "name must not be empty", kind: .empty) }
        guard !nextHops.contains(g.name), groups.insert(g.name).inserted else { throw ValidationError(el(), "duplicate name", kind: .duplicate) }
        try checkGroup(g, el()) { nextHops.contains($0) }
    }
    let resolves: (String) -> Bool = { nextHops.contains($0) || groups.contains($0) }
    let backups = Dictionary(fib.nextHops.map { ($0.name, $0.backup) }, uniquingKeysWith: { a, _ in a })
    for (i, nh) in fib.nextHops.enumerated() {
        try checkBackup(nh, "nextHops[\(i)] (\(nh.name))", resolves: resolves, backupOf: { backups[$0] },
                        usedAsBackup: { n in fib.nextHops.contains { $0.backup == n } })
    }
    let backupOf: (String) -> String?? = { backups[$0] }
    var labels = Set<UInt32>()
    for (i, e) in fib.ilm.enumerated() {
        func el() -> String { "ilm[\(i)] (label \(e.label))" }
        try checkILM(e, el(), resolves: resolves, vrfs: vrfs, backupOf: backupOf)
        guard labels.insert(e.label).inserted else { throw ValidationError(el(), "duplicate label", kind: .duplicate) }
    }
    var vnis = Set<UInt32>()
    for (i, e) in fib.vni.enumerated() {
        func el() -> String { "vni[\(i)] (vni \(e.vni))" }
        try checkVNI(e, el(), resolves: resolves, backupOf: backupOf)
        guard vnis.insert(e.vni).inserted else { throw ValidationError(el(), "duplicate vni", kind: .duplicate) }
    }
    var prefixes = Set<String>()
    for (i, e) in fib.ftn.enumerated() {
        func el() -> String { "ftn[\(i)] (\(e.key))" }
        try checkFTN(e, el(), resolves: resolves, vrfs: vrfs, backupOf: backupOf)
        guard prefixes.insert(e.key).inserted else { throw ValidationError(el(), "duplicate prefix", kind: .duplicate) }
    }
    if fib.macs.count > MACTable.maxEntries {
        throw ValidationError("macs", "\(fib.macs.count) static MACs; at most \(MACTable.maxEntries)", kind: .limit)
    }
    if !fib.macs.isEmpty {
        let byVNI = Dictionary(fib.vni.map { ($0.vni, $0) }, uniquingKeysWith: { a, _ in a })
        var keys = Set<MACKey>()
        for (i, m) in fib.macs.enumerated() {
            func el() -> String { "macs[\(i)] (mac \(m.key))" }
            try checkMAC(m, el(), vni: byVNI[m.vni])
            guard keys.insert(m.key).inserted else { throw ValidationError(el(), "duplicate mac", kind: .duplicate) }
        }
    }
}

/// The address in wire order.
func addressBytes(_ a: IPAddress) -> [UInt8] {
    switch a {
    case .v4(let v): return (0..<4).map { UInt8(truncatingIfNeeded: v.value >> UInt32(24 - 8 * $0)) }
    case .v6(let v): return (0..<16).map { v.byte($0) }
    }
}

func hostBitsAreZero(_ a: IPAddress, _ length: Int) -> Bool {
    let bytes = addressBytes(a)
    for (i, b) in bytes.enumerated() {
        let keep = max(0, min(8, length - 8 * i))
        let mask: UInt8 = keep == 8 ? 0xFF : ~(0xFF >> UInt8(keep))
        if b & ~mask != 0 { return false }
    }
    return true
}
