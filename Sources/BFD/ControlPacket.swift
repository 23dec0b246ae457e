/// BFD (RFC 5880) in asynchronous mode, single hop (RFC 5881): the control packet, the session state machine and
/// the frames that carry them. Pure logic over bytes: the protection thread (IO) runs it, unit tests drive it.
///
/// The mandatory section of a control packet (RFC 5880 §4.1), in UDP to port 3784 (RFC 5881 §4):
///
///      0                   1                   2                   3
///      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |Vers |  Diag   |Sta|P|F|C|A|D|M|  Detect Mult  |    Length     |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |                       My Discriminator                        |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |                      Your Discriminator                       |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |                    Desired Min TX Interval                    |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |                   Required Min RX Interval                    |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |                 Required Min Echo RX Interval                 |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

/// bfd.SessionState (RFC 5880 §4.1); raw values are the wire's.
public enum BFDState: UInt8, Sendable, CustomStringConvertible {
    case adminDown = 0, down = 1, initializing = 2, up = 3
    public var description: String {
        switch self {
        case .adminDown: return "adminDown"
        case .down: return "down"
        case .initializing: return "init"
        case .up: return "up"
        }
    }
}

/// The diagnostic code (RFC 5880 §4.1): why the sender's session last changed state.
public struct BFDDiagnostic: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue & 0x1F }
    public static let none = BFDDiagnostic(rawValue: 0)
    public static let controlDetectionTimeExpired = BFDDiagnostic(rawValue: 1)
    public static let echoFunctionFailed = BFDDiagnostic(rawValue: 2)
    public static let neighborSignaledSessionDown = BFDDiagnostic(rawValue: 3)
    public static let forwardingPlaneReset = BFDDiagnostic(rawValue: 4)
    public static let pathDown = BFDDiagnostic(rawValue: 5)
    public static let concatenatedPathDown = BFDDiagnostic(rawValue: 6)
    public static let administrativelyDown = BFDDiagnostic(rawValue: 7)
    public static let reverseConcatenatedPathDown = BFDDiagnostic(rawValue: 8)
    public var description: String {
        switch rawValue {
        case 0: return "none"
        case 1: return "controlDetectionTimeExpired"
        case 2: return "echoFunctionFailed"
        case 3: return "neighborSignaledSessionDown"
        case 4: return "forwardingPlaneReset"
        case 5: return "pathDown"
        case 6: return "concatenatedPathDown"
        case 7: return "administrativelyDown"
        case 8: return "reverseConcatenatedPathDown"
        default: return "reserved\(rawValue)"
        }
    }
}

/// The mandatory section of a BFD control packet (RFC 5880 §4.1). Intervals are in microseconds, as on the wire.
public struct BFDControlPacket: Equatable, Sendable {
    public static let version: UInt8 = 1
    /// The mandatory section's length; authentication would follow it.
    public static let size = 24

    public var diagnostic = BFDDiagnostic.none
    public var state = BFDState.down
    public var poll = false
    public var final = false
    /// Control Plane Independent: set, since the session runs beside the forwarding path, not on the control thread.
    public var controlPlaneIndependent = false
    public var authenticationPresent = false
    public var demand = false
    public var multipoint = false
    public var detectMultiplier: UInt8 = 3
    public var length: UInt8 = 24
    public var myDiscriminator: UInt32 = 0
    public var yourDiscriminator: UInt32 = 0
    public var desiredMinTxUs: UInt32 = 1_000_000
    public var requiredMinRxUs: UInt32 = 1_000_000
    public var requiredMinEchoRxUs: UInt32 = 0
    public var versionField: UInt8 = BFDControlPacket.version

    public init() {}

    /// Why a received packet was discarded (RFC 5880 §6.8.6's checks, in its order).
    public enum Reject: String, Error, Sendable, CaseIterable {
        case tooShort, badVersion, badLength, authenticationNotConfigured, zeroDetectMultiplier, multipoint,
             zeroMyDiscriminator, zeroYourDiscriminatorNotDown, unknownYourDiscriminator, badTTL, badChecksum,
             notBFD
    }

    /// The 24 bytes on the wire.
    public var bytes: [UInt8] {
        var b = [UInt8](repeating: 0, count: BFDControlPacket.size)
        b[0] = versionField << 5 | diagnostic.rawValue
        var flags: UInt8 = state.rawValue << 6
        if poll { flags |= 0x20 }
        if final { flags |= 0x10 }
        if controlPlaneIndependent { flags |= 0x08 }
        if authenticationPresent { flags |= 0x04 }
        if demand { flags |= 0x02 }
        if multipoint { flags |= 0x01 }
        b[1] = flags
        b[2] = detectMultiplier
        b[3] = length
        func put(_ v: UInt32, _ at: Int) {
            b[at] = UInt8(v >> 24); b[at + 1] = UInt8(v >> 16 & 0xFF); b[at + 2] = UInt8(v >> 8 & 0xFF); b[at + 3] = UInt8(v & 0xFF)
        }
        put(myDiscriminator, 4); put(yourDiscriminator, 8); put(desiredMinTxUs, 12); put(requiredMinRxUs, 16)
        put(requiredMinEchoRxUs, 20)
        return b
    }

    /// Decodes and checks a packet (the UDP payload) as RFC 5880 §6.8.6 does before any session is looked up.
    /// Authentication is not supported: a packet with the A bit is discarded.
    public static func decode(_ p: ArraySlice<UInt8>) -> Result<BFDControlPacket, Reject> {
        guard p.count >= size else { return .failure(.tooShort) }
        let s = p.startIndex
        var c = BFDControlPacket()
        c.versionField = p[s] >> 5
        guard c.versionField == version else { return .failure(.badVersion) }
        c.diagnostic = BFDDiagnostic(rawValue: p[s])
        let flags = p[s + 1]
        c.state = BFDState(rawValue: flags >> 6)!
        c.poll = flags & 0x20 != 0
        c.final = flags & 0x10 != 0
        c.controlPlaneIndependent = flags & 0x08 != 0
        c.authenticationPresent = flags & 0x04 != 0
        c.demand = flags & 0x02 != 0
        c.multipoint = flags & 0x01 != 0
        c.detectMultiplier = p[s + 2]
        c.length = p[s + 3]
        // Length: at least 24 (26 with authentication), at most the payload.
        guard Int(c.length) >= size, Int(c.length) <= p.count else { return .failure(.badLength) }
        guard !c.authenticationPresent else { return .failure(.authenticationNotConfigured) }
        guard c.detectMultiplier != 0 else { return .failure(.zeroDetectMultiplier) }
        guard !c.multipoint else { return .failure(.multipoint) }
        func get(_ at: Int) -> UInt32 {
            UInt32(p[s + at]) << 24 | UInt32(p[s + at + 1]) << 16 | UInt32(p[s + at + 2]) << 8 | UInt32(p[s + at + 3])
        }
        c.myDiscriminator = get(4)
        c.yourDiscriminator = get(8)
        c.desiredMinTxUs = get(12)
        c.requiredMinRxUs = get(16)
        c.requiredMinEchoRxUs = get(20)
        guard c.myDiscriminator != 0 else { return .failure(.zeroMyDiscriminator) }
        if c.yourDiscriminator == 0 && c.state != .down && c.state != .adminDown {
            return .failure(.zeroYourDiscriminatorNotDown)
        }
        return .success(c)
    }
}
