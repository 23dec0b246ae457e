/// One address family's trie nodes (every VRF's) in address-stable memory, changed by path copying: a route change
/// copies the nodes from its VRF's root down to the node where the prefix ends (at most 4 for IPv4, 16 for IPv6,
/// 2 KiB each) and the old ones are freed after the grace period, so a commit copies the same few KiB whatever the
/// table's size, and a worker keeps reading the old path until the new root is published. Nodes made in the commit
/// being built are changed in place.
///
/// Next to each slot the control side keeps the length of the prefix whose leaf the slot holds (prefix expansion:
/// a prefix fills every slot of its node it covers unless a longer prefix holds it), so adding a prefix overwrites
/// only slots of shorter prefixes and removing one restores the prefix that covers it.
///
/// Node 0 is never used: a child index of 0 means "none". Single-threaded (the control thread).
final class LPMPool {
    let capacity: Int
    let slots: UnsafeMutablePointer<LPMSlot>
    /// Per slot, the length of the prefix its leaf came from (0: none). Control side only.
    private let lengths: UnsafeMutablePointer<UInt8>
    private var highWater: UInt32 = 1
    private var free: [UInt32] = []
    /// Nodes made by the commit being built (no snapshot references them yet).
    private var fresh = Set<UInt32>()
    /// Nodes the commit being built replaced: freed after the grace period.
    private(set) var retired: [UInt32] = []
    /// Nodes in use by the current tables (for the byte count).
    private(set) var inUse = 0
    /// Nodes allocated by the commit being built.
    private(set) var allocated = 0

    init?(capacity: Int) {
        self.capacity = capacity
        guard let s = LargeTable.reserve(bytes: capacity * 256 * MemoryLayout<LPMSlot>.stride) else { return nil }
        guard let l = LargeTable.reserve(bytes: capacity * 256) else {
            LargeTable.release(s, bytes: capacity * 256 * MemoryLayout<LPMSlot>.stride)
            return nil
        }
        slots = s.bindMemory(to: LPMSlot.self, capacity: capacity * 256)
        lengths = l.bindMemory(to: UInt8.self, capacity: capacity * 256)
    }

    func release() {
        LargeTable.release(UnsafeMutableRawPointer(slots), bytes: capacity * 256 * MemoryLayout<LPMSlot>.stride)
        LargeTable.release(UnsafeMutableRawPointer(lengths), bytes: capacity * 256)
    }

    /// Nodes that can still be made (free now, or never used).
    var room: Int { free.count + capacity - Int(highWater) }

    /// A zeroed node, fresh in this commit.
    func allocate() -> UInt32 {
        let n: UInt32
        if let f = free.popLast() { n = f } else {
            precondition(Int(highWater) < capacity, "LPM node pool full")
            n = highWater
            highWater += 1
        }
        (slots + Int(n) << 8).update(repeating: LPMSlot(leaf: 0, child: 0), count: 256)
        (lengths + Int(n) << 8).update(repeating: 0, count: 256)
        fresh.insert(n)
        inUse += 1
        allocated += 1
        return n
    }

    /// `n` itself when this commit made it, else a fresh copy (and `n` is retired).
    func writable(_ n: UInt32) -> UInt32 {
        if fresh.contains(n) { return n }
        let c = allocate()
        (slots + Int(c) << 8).update(from: slots + Int(n) << 8, count: 256)
        (lengths + Int(c) << 8).update(from: lengths + Int(n) << 8, count: 256)
        retire(n)
        return c
    }

    private func retire(_ n: UInt32) {
        inUse -= 1
        if fresh.remove(n) != nil { free.append(n) } else { retired.append(n) }
    }

    /// Ends the commit being built: its nodes become ordinary ones; returns the nodes to free after the grace period.
    func commit() -> [UInt32] {
        fresh.removeAll(keepingCapacity: true)
        allocated = 0
        defer { retired.removeAll() }
        return retired
    }

    func reclaim(_ nodes: [UInt32]) { free.append(contentsOf: nodes) }

    /// Whether `bytes`/`length` is reachable from `root` (its node exists), without changing anything.
    private func nodeExists(root: UInt32, bytes: [UInt8], length: Int) -> Bool {
        var node = root
        for depth in 0..<((length - 1) / 8) {
            let c = slots[Int(node) << 8 | Int(bytes[depth])].child
            if c == 0 { return false }
            node = c
        }
        return true
    }

    /// Adds or replaces `bytes`/`length` (length ≥ 1) → `leaf` under `root`; returns the root to publish.
    func insert(root: UInt32, bytes: [UInt8], length: Int, leaf: UInt32) -> UInt32 {
        let newRoot = writable(root)
        var node = newRoot
        let level = (length - 1) / 8
        for depth in 0..<level {
            let s = Int(node) << 8 | Int(bytes[depth])
            let old = slots[s].child
            let c = old == 0 ? allocate() : writable(old)
            slots[s].child = c
            node = c
        }
        let (first, span) = Self.span(bytes[level], length - 8 * level)
        let len = UInt8(length)
        for i in first..<(first + span) {
            let k = Int(node) << 8 | i
            if lengths[k] <= len { slots[k].leaf = leaf; lengths[k] = len }
        }
        return newRoot
    }

    /// Removes `bytes`/`length` under `root`: the slots it held get `cover` (the longest shorter prefix ending in
    /// the same node, or 0/0); nodes left empty are unlinked. Returns the root to publish.
    func remove(root: UInt32, bytes: [UInt8], length: Int, cover: (leaf: UInt32, length: UInt8)) -> UInt32 {
        guard nodeExists(root: root, bytes: bytes, length: length) else { return root }
        let newRoot = writable(root)
        var path: [Int] = []   // the slot in each node that leads on
        var node = newRoot
        let level = (length - 1) / 8
        for depth in 0..<level {
            let s = Int(node) << 8 | Int(bytes[depth])
            let c = writable(slots[s].child)
            slots[s].child = c
            path.append(s)
            node = c
        }
        let (first, span) = Self.span(bytes[level], length - 8 * level)
        let len = UInt8(length)
        for i in first..<(first + span) {
            let k = Int(node) << 8 | i
            if lengths[k] == len { slots[k].leaf = cover.leaf; lengths[k] = cover.length }
        }
        // Unlink nodes left empty, bottom up (never the root).
        while let s = path.last, isEmpty(node) {
            retire(node)
            slots[s].child = 0
            path.removeLast()
            node = UInt32(s >> 8)
        }
        return newRoot
    }

    private func isEmpty(_ n: UInt32) -> Bool {
        let base = slots + Int(n) << 8
        for i in 0..<256 where base[i].leaf != 0 || base[i].child != 0 { return false }
        return true
    }

    /// The slots a prefix of `bits` (1–8) significant bits in this node covers, starting at `byte`.
    static func span(_ byte: UInt8, _ bits: Int) -> (first: Int, count: Int) {
        let count = 1 << (8 - bits)
        return (Int(byte) & ~(count - 1), count)
    }
}
