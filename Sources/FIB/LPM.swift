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

/// A route to put in a VRF's trie: the prefix in wire order, its length, and the action.
public struct RouteSpec: Sendable {
    public var vrf: UInt16
    public var v6: Bool
    public var bytes: [UInt8]
    public var length: Int
    public var action: ActionID
    public init(vrf: UInt16, v6: Bool, bytes: [UInt8], length: Int, action: ActionID) {
        self.vrf = vrf; self.v6 = v6; self.bytes = bytes; self.length = length; self.action = action
    }
}

extension LPMBuilder {
    /// Every VRF's IPv4 and IPv6 tries (one root each) and default routes, built from `routes` in ascending
    /// prefix length so that longer prefixes overwrite the expanded slots of shorter ones.
    public static func build(_ routes: [RouteSpec], vrfCount: Int) -> (v4: [LPMSlot], v6: [LPMSlot], vrfs: [VRFRecord]) {
        var v4 = LPMBuilder(), v6 = LPMBuilder()
        var records: [VRFRecord] = []
        for _ in 0..<max(vrfCount, 1) {
            records.append(VRFRecord(v4Root: v4.newNode(), v6Root: v6.newNode(), v4Default: 0, v6Default: 0))
        }
        for r in routes.sorted(by: { $0.length < $1.length }) {
            let leaf = r.action.rawValue + 1
            let vrf = Int(r.vrf)
            if r.length == 0 {
                if r.v6 { records[vrf].v6Default = leaf } else { records[vrf].v4Default = leaf }
            } else if r.v6 {
                v6.insert(root: records[vrf].v6Root, bytes: r.bytes, length: r.length, leaf: leaf)
            } else {
                v4.insert(root: records[vrf].v4Root, bytes: r.bytes, length: r.length, leaf: leaf)
            }
        }
        return (v4.nodes, v6.nodes, records)
    }
}
