import Wire

/// One entry of the incoming label map: 8 bytes, so a 4096-entry page is 32 KiB.
@frozen
public struct ILMEntry: Sendable {
    /// The action to run; meaningful when `operation != .none`.
    public var action: ActionID
    public var operation: Operation
    public var flags: UInt8
    public var payload: Payload
    public var reserved: UInt8

    @inlinable
    public init(action: ActionID, operation: Operation, flags: UInt8, payload: Payload, reserved: UInt8 = 0) {
        self.action = action; self.operation = operation; self.flags = flags; self.payload = payload
        self.reserved = reserved
    }

    public static let empty = ILMEntry(action: ActionID(0), operation: .none, flags: 0, payload: .mpls, reserved: 0)
}

/// The label table: a 256-pointer directory over 4096-entry pages, indexed by the 20-bit label (like VPP's
/// `mpls_fib` and Linux's `platform_labels`). A lookup is two dependent loads with no hashing; a commit that changes
/// one label copies one page.
///
/// Unused directory slots point at one shared, all-empty page so that the lookup has no nil test.
public enum ILM {
    // Computed and inlinable, not stored: a `static let` from another module is read through an addressor call
    // (and a swift_once check) on every packet.
    @inlinable public static var pageBits: Int { 12 }
    @inlinable public static var pageSize: Int { 1 << pageBits }
    @inlinable public static var directorySize: Int { 1 << (20 - pageBits) }
    @inlinable public static var pageMask: UInt32 { UInt32(pageSize - 1) }

    /// The shared empty page; never freed.
    nonisolated(unsafe) public static let emptyPage: UnsafeMutablePointer<ILMEntry> = {
        let p = UnsafeMutablePointer<ILMEntry>.allocate(capacity: pageSize)
        p.initialize(repeating: .empty, count: pageSize)
        return p
    }()
}
