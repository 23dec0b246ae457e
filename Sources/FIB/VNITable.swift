import Wire

/// The VNI table: a 4096-pointer directory over 4096-entry pages, indexed by the 24-bit VNI, like the ILM (and for
/// the same reasons): a lookup is two dependent loads with no hashing or probing, and a commit that changes one VNI
/// copies the directory (32 KiB) and one page (16 KiB) whatever the table's size — the open-addressed hash table it
/// replaces had to be rebuilt whole. An entry is the action index + 1 (0: no entry). Memory: 16 KiB per 4096-VNI
/// range in use (4 MiB for a million VNIs allocated in ranges; up to 64 MiB when they are spread over all 16M).
///
/// Unused directory slots point at one shared, all-zero page so that the lookup has no nil test.
public enum VNITable {
    @inlinable public static var pageBits: Int { 12 }
    @inlinable public static var pageSize: Int { 1 << pageBits }
    @inlinable public static var directorySize: Int { 1 << (24 - pageBits) }
    @inlinable public static var pageMask: UInt32 { UInt32(pageSize - 1) }

    /// The shared empty page; never freed.
    nonisolated(unsafe) public static let emptyPage: UnsafeMutablePointer<UInt32> = {
        let p = UnsafeMutablePointer<UInt32>.allocate(capacity: pageSize)
        p.initialize(repeating: 0, count: pageSize)
        return p
    }()

    /// The address of a VNI's entry (VNIs are 24-bit; higher bits are masked off).
    @inlinable @inline(__always)
    public static func entry(_ directory: UnsafeMutablePointer<UnsafeMutablePointer<UInt32>>, _ vni: UInt32) -> UnsafeMutablePointer<UInt32> {
        directory[Int((vni >> UInt32(pageBits)) & UInt32(directorySize - 1))] + Int(vni & pageMask)
    }
}
