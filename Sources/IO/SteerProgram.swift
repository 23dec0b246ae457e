#if canImport(Glibc)
import Glibc
#endif
internal import CXDP
import FIB
import Wire

/// An error of the live data path, worded for the operator (what failed, on what, and what to do).
public struct AgentError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// `strerror` for a negative or positive errno.
func errnoText(_ code: Int32) -> String { String(cString: strerror(abs(code))) }

/// Where the XDP program runs on a device.
public enum XDPMode: String, Sendable {
    /// In the driver (veth and most NICs support it).
    case native
    /// The kernel's generic (skb) hook, for devices without native XDP.
    case generic
    var raw: Int32 { self == .native ? Int32(MG_XDP_NATIVE) : Int32(MG_XDP_GENERIC) }
}

/// Counters kept by the XDP program (summed over CPUs).
public struct SteerCounters: Sendable, Equatable {
    /// Sent to the queue's AF_XDP socket.
    public var redirected: UInt64 = 0
    /// Not ours: passed to the host stack.
    public var passed: UInt64 = 0
    /// Ours, but no socket was bound on the receive queue: passed to the host.
    public var noSocket: UInt64 = 0
    public init() {}
}

/// One loaded copy of the XDP steering program (bpf/steer.bpf.c), configured for one port.
public final class SteerProgram {
    let prog: OpaquePointer
    /// This port's program runs the fast tier.
    public let fastTierOn: Bool
    public private(set) var attachedIfindex: Int32 = 0
    private var attachedMode: XDPMode = .native
    private var attachedID: UInt32 = 0

    /// The program's name in the object: an attached program with this name is a stale MPLSGate attachment.
    public static let programName = "mplsgate_steer"

    /// Loads the embedded object and configures it for a port: its role, VXLAN port (dc) and the addresses the
    /// program matches (dc: our VTEPs; vrf: the host's own addresses).
    public convenience init(role: PortRole, vxlanPort: UInt16 = 4789, addresses: [IPAddress] = []) throws(AgentError) {
        try self.init(config: SteerProgram.portConfig(role: role, vxlanPort: vxlanPort, addresses: addresses))
    }

    /// Loads the program for a core port with the fast tier on (bpf/fast_tier.h): `index` is the port's index in
    /// the config, `mac` its MAC (FIB.PortRecord.mac). The first core port's program owns the fast tier's tables,
    /// sized for `entries` labels (allocated as used); the others share them (`sharing`).
    public convenience init(fastTierPort index: UInt16, mac: UInt64, entries: Int, sharing owner: SteerProgram? = nil,
                            addresses: [IPAddress] = []) throws(AgentError) {
        var c = try SteerProgram.portConfig(role: .core, vxlanPort: 4789, addresses: addresses)
        c.fast = 1
        c.port_index = index
        withUnsafeMutableBytes(of: &c.mac) { m in
            for i in 0..<6 { m[i] = UInt8(truncatingIfNeeded: mac >> UInt64(40 - 8 * i)) }
        }
        try self.init(config: c, sizes: FastTier.sizes(entries: entries), sharing: owner)
    }

    init(config: mg_port_config, sizes: mg_fast_sizes = mg_fast_sizes(), sharing owner: SteerProgram? = nil) throws(AgentError) {
        let object = SteerProgram.objectBytes
        var p: OpaquePointer?
        var sz = sizes
        let rc = object.withUnsafeBytes { raw in
            owner.map { mg_prog_load_shared(raw.baseAddress, raw.count, $0.prog, &p) }
                ?? mg_prog_load_sized(raw.baseAddress, raw.count, &sz, &p)
        }
        guard rc == 0, let p else {
            if rc == -EPERM || rc == -EACCES {
                throw AgentError("loading the XDP program: permission denied; run as root, or with CAP_BPF, "
                                 + "CAP_NET_ADMIN, CAP_NET_RAW and CAP_IPC_LOCK (docs/agent.md)")
            }
            throw AgentError("loading the XDP program failed: \(errnoText(rc))")
        }
        prog = p
        fastTierOn = config.fast != 0
        var c = config
        let set = mg_prog_set_config(prog, &c)
        if set != 0 {
            mg_prog_close(prog)
            throw AgentError("writing the XDP program's port config failed: \(errnoText(set))")
        }
    }

    deinit { mg_prog_close(prog) }

    /// Loads and attaches, for the owner of the fast tier's tables, the tracing programs that count the frames it
    /// redirected and the egress device refused (bpf/xmit_errors.bpf.c: the kernel's BTF and CAP_PERFMON).
    func countRefusedRedirects() throws(AgentError) {
        let object = SteerProgram.decode(XmitErrorsObject.hex)
        let rc = object.withUnsafeBytes { mg_prog_count_refused(prog, $0.baseAddress, $0.count) }
        if rc != 0 { throw AgentError(errnoText(rc)) }
    }

    /// The object bytes, decoded once from the hex the build embeds.
    static let objectBytes: [UInt8] = decode(SteerProgramObject.hex)

    static func decode(_ hex: StaticString) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(hex.utf8CodeUnitCount / 2)
        hex.withUTF8Buffer { buf in
            func nibble(_ c: UInt8) -> UInt8 { c <= 57 ? c &- 48 : c &- 87 }
            var i = 0
            while i + 1 < buf.count { out.append(nibble(buf[i]) << 4 | nibble(buf[i + 1])); i += 2 }
        }
        return out
    }

    /// Builds the map value for a port: its role, VXLAN port and the addresses to match.
    static func portConfig(role: PortRole, vxlanPort: UInt16, addresses: [IPAddress]) throws(AgentError) -> mg_port_config {
        var c = mg_port_config()
        c.role = role.rawValue
        c.vxlan_port_be = vxlanPort.bigEndian
        var v4: [UInt32] = []
        var v6: [IPv6Address] = []
        for a in addresses {
            switch a {
            case .v4(let x): v4.append(x.value)
            case .v6(let x): v6.append(x)
            }
        }
        if v4.count > Int(MG_MAX_PORT_V4) || v6.count > Int(MG_MAX_PORT_V6) {
            throw AgentError("a port may list at most \(MG_MAX_PORT_V4) IPv4 and \(MG_MAX_PORT_V6) IPv6 addresses "
                             + "for the XDP program to match")
        }
        c.v4_count = UInt8(v4.count)
        c.v6_count = UInt8(v6.count)
        withUnsafeMutableBytes(of: &c.v4) { raw in
            for (i, a) in v4.enumerated() { raw.storeBytes(of: a.bigEndian, toByteOffset: i * 4, as: UInt32.self) }
        }
        withUnsafeMutableBytes(of: &c.v6) { raw in
            for (i, a) in v6.enumerated() {
                raw.storeBytes(of: a.high.bigEndian, toByteOffset: i * 16, as: UInt64.self)
                raw.storeBytes(of: a.low.bigEndian, toByteOffset: i * 16 + 8, as: UInt64.self)
            }
        }
        return c
    }

    /// Binds an AF_XDP socket to receive queue `queue`.
    public func setSocket(queue: UInt32, fd: Int32) throws(AgentError) {
        let rc = mg_prog_set_socket(prog, queue, fd)
        if rc != 0 { throw AgentError("adding the AF_XDP socket of queue \(queue) to the XSKMAP failed: \(errnoText(rc))") }
    }

    public func counters() -> SteerCounters {
        var raw = [UInt64](repeating: 0, count: Int(MG_STAT_COUNT))
        var s = SteerCounters()
        if mg_prog_stats(prog, &raw) == 0 {
            s.redirected = raw[Int(MG_STAT_REDIRECTED)]; s.passed = raw[Int(MG_STAT_PASSED)]
            s.noSocket = raw[Int(MG_STAT_NO_SOCKET)]
        }
        return s
    }

    /// Runs the program once on `frame` (BPF_PROG_TEST_RUN) as if received on `ifindex` queue `queue`.
    public func testRun(_ frame: [UInt8], ifindex: UInt32 = 1, queue: UInt32 = 0) throws(AgentError) -> UInt32 {
        var action: UInt32 = 0
        let rc = frame.withUnsafeBytes { mg_prog_test_run(prog, $0.baseAddress, UInt32($0.count), ifindex, queue, &action) }
        if rc != 0 { throw AgentError("BPF_PROG_TEST_RUN failed: \(errnoText(rc))") }
        return action
    }

    /// What is attached to a device now: (id, name), id 0 when nothing.
    public static func attached(ifindex: Int32, mode: XDPMode) -> (id: UInt32, name: String) {
        var id: UInt32 = 0
        var name = [CChar](repeating: 0, count: 16)
        _ = mg_xdp_attached(ifindex, mode.raw, &id, &name)
        return (id, String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }

    /// Attaches to a device. A stale MPLSGate program (left by a killed agent) is replaced; any other program is
    /// refused unless `force`. Returns the id of the program it replaced, if any.
    @discardableResult
    public func attach(ifindex: Int32, interface: String, mode: XDPMode, force: Bool) throws(AgentError) -> UInt32? {
        let current = SteerProgram.attached(ifindex: ifindex, mode: mode)
        if current.id != 0 && current.name != SteerProgram.programName && !force {
            throw AgentError("\(interface) already has XDP program '\(current.name)' (id \(current.id)) attached; "
                             + "detach it (ip link set dev \(interface) xdp off) or pass --force to replace it")
        }
        let rc = mg_xdp_attach(ifindex, mode.raw, prog)
        if rc != 0 {
            var hint = ""
            if rc == -EINVAL || rc == -ERANGE {
                hint = " (veth refuses XDP when the peer's MTU is above about 3.5 KB; other drivers may need "
                    + "--xdp-mode generic)"
            } else if rc == -EOPNOTSUPP {
                hint = " (the driver has no native XDP: try --xdp-mode generic)"
            } else if rc == -EPERM {
                hint = " (needs root or CAP_NET_ADMIN and CAP_BPF)"
            } else if rc == -EBUSY || rc == -EEXIST {
                hint = " (another XDP program is attached in a different mode)"
            }
            throw AgentError("attaching XDP (\(mode.rawValue)) to \(interface) was refused: \(errnoText(rc))\(hint)")
        }
        attachedIfindex = ifindex
        attachedMode = mode
        var id: UInt32 = 0
        _ = mg_prog_id(prog, &id)
        attachedID = id
        return current.id != 0 ? current.id : nil
    }

    /// Detaches from the device, unless someone replaced our program since (then it is left alone).
    public func detach() {
        guard attachedIfindex != 0 else { return }
        _ = mg_xdp_detach_id(attachedIfindex, attachedMode.raw, attachedID)
        attachedIfindex = 0
    }
}
