import Wire

/// A longest-prefix-match trie with 8-bit strides (4 levels for IPv4, 16 for IPv6). Each node is 256 slots;
/// a slot holds the best leaf for the prefixes that end inside this node's byte (expanded at build time) and the
/// child for longer ones. A lookup walks one byte per level and remembers the last leaf it saw.
@frozen
public struct LPMSlot: Sendable {
    /// Action index + 1; 0 means no route ends here.
    public var leaf: UInt32
    /// Child node index; 0 means none (node 0 is never a child: it is the first root).
    public var child: UInt32
}

/// One VRF's roots in the shared node pools, and its default routes (prefix length 0).
@frozen
public struct VRFRecord: Sendable {
    public var v4Root: UInt32
    public var v6Root: UInt32
    /// Action index + 1 of 0.0.0.0/0 and ::/0; 0 when absent.
    public var v4Default: UInt32
    public var v6Default: UInt32
}

/// Builds the trie pools on the control side.
public struct LPMBuilder {
    public private(set) var nodes: [LPMSlot] = []

    public init() {}

    /// Allocates an empty node and returns its index.
    public mutating func newNode() -> UInt32 {
        let i = UInt32(nodes.count / 256)
        nodes.append(contentsOf: repeatElement(LPMSlot(leaf: 0, child: 0), count: 256))
        return i
    }

    /// Inserts `bytes[0..<ceil(length/8)]`/`length` → `leaf` under `root`. Insert in ascending prefix length so
    /// that longer prefixes overwrite the expanded slots of shorter ones. `length` must be ≥ 1.
    public mutating func insert(root: UInt32, bytes: [UInt8], length: Int, leaf: UInt32) {
        var node = root
        let level = (length - 1) / 8
        for depth in 0..<level {
            let s = Int(node) * 256 + Int(bytes[depth])
            if nodes[s].child == 0 {
                let c = newNode()
                nodes[s].child = c
            }
            node = nodes[s].child
        }
        let bits = length - 8 * level
        let span = 1 << (8 - bits)
        let first = Int(bytes[level]) & ~(span - 1)
        for i in first..<(first + span) {
            nodes[Int(node) * 256 + i].leaf = leaf
        }
    }
}
