/// A dictionary split into a fixed number of shards, each a Swift dictionary with its own copy-on-write storage.
///
/// Why: the state writer takes the engine's intent (`FIBIntent`) as an O(1) copy and serialises it on its own
/// thread. With one dictionary per table, the control thread's next change to that table copies all of it (about
/// 300 ms at a million entries) while the writer still holds the old one. With shards, a change copies only the
/// outer array (once) and the shard it touches, so a commit's cost stays independent of the table's size.
public struct ShardedMap<Key: Hashable & Sendable, Value: Sendable>: Sendable, Sequence {
    public static var shardCount: Int { 1024 }
    private var shards: [[Key: Value]]
    public private(set) var count = 0

    public init() { shards = Array(repeating: [:], count: Self.shardCount) }

    @inline(__always)
    private static func shard(_ key: Key) -> Int {
        // The high bits: a shard's dictionary buckets by the low ones (seeded per storage, but keep them apart).
        Int(truncatingIfNeeded: UInt(bitPattern: key.hashValue) >> (UInt.bitWidth - 10))
    }

    public var isEmpty: Bool { count == 0 }

    public subscript(key: Key) -> Value? {
        get { shards[Self.shard(key)][key] }
        set {
            let s = Self.shard(key)
            if let newValue {
                if shards[s].updateValue(newValue, forKey: key) == nil { count += 1 }
            } else if shards[s].removeValue(forKey: key) != nil {
                count -= 1
            }
        }
    }

    /// Room for `total` entries in all, spread evenly (keys hash uniformly over the shards), with 1/8 to spare.
    public mutating func reserveCapacity(_ total: Int) {
        let each = total / Self.shardCount + total / (8 * Self.shardCount) + 8
        for i in shards.indices where shards[i].capacity < each { shards[i].reserveCapacity(each) }
    }

    @discardableResult
    public mutating func removeValue(forKey key: Key) -> Value? {
        let v = shards[Self.shard(key)].removeValue(forKey: key)
        if v != nil { count -= 1 }
        return v
    }

    public var keys: [Key] {
        var out: [Key] = []
        out.reserveCapacity(count)
        for s in shards { out.append(contentsOf: s.keys) }
        return out
    }

    public struct Iterator: IteratorProtocol {
        var shards: IndexingIterator<[[Key: Value]]>
        var current: Dictionary<Key, Value>.Iterator?
        public mutating func next() -> (key: Key, value: Value)? {
            while true {
                if let e = current?.next() { return e }
                guard let s = shards.next() else { return nil }
                current = s.makeIterator()
            }
        }
    }

    public func makeIterator() -> Iterator { Iterator(shards: shards.makeIterator(), current: nil) }
    public var underestimatedCount: Int { count }
}
