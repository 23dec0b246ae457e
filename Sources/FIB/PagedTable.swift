/// A table indexed by a key's high bits (the directory) and low bits (the page), changed copy-on-write: a commit
/// copies the directory once and each page it touches once; the old ones stay readable until the grace period.
/// The ILM (labels) and the VNI table use it. Unused directory slots point at one shared empty page that is never
/// written or freed. Control thread only.
struct PagedTable<Entry> {
    let pageBits: Int
    let directorySize: Int
    let emptyPage: UnsafeMutablePointer<Entry>
    /// The published directory.
    private(set) var directory: UnsafeMutablePointer<UnsafeMutablePointer<Entry>>
    /// The directory of the commit being built (nil until its first change).
    private var working: UnsafeMutablePointer<UnsafeMutablePointer<Entry>>?
    private var copied = Set<Int>()
    /// Pages in use (not the empty page).
    private(set) var pages = 0

    init(pageBits: Int, directorySize: Int, emptyPage: UnsafeMutablePointer<Entry>) {
        self.pageBits = pageBits
        self.directorySize = directorySize
        self.emptyPage = emptyPage
        directory = .allocate(capacity: directorySize)
        directory.initialize(repeating: emptyPage, count: directorySize)
    }

    var pageSize: Int { 1 << pageBits }
    /// Bytes of the directory and the pages in use.
    var bytes: Int {
        MemoryLayout<UnsafeMutablePointer<Entry>>.stride * directorySize + pages * MemoryLayout<Entry>.stride * pageSize
    }

    /// The entry of `key` in the tables being built.
    func read(_ key: UInt32) -> Entry {
        (working ?? directory)[Int(key >> UInt32(pageBits)) & (directorySize - 1)][Int(key & UInt32(pageSize - 1))]
    }

    /// Writes `key`'s entry, copying the directory (once per commit) and its page (once per commit) first. What
    /// only the old snapshot references goes to `retired`; `copiedBytes` counts what was allocated.
    mutating func write(_ key: UInt32, _ entry: Entry, retired: inout [UnsafeMutableRawPointer], copiedBytes: inout Int) {
        if working == nil {
            let d = UnsafeMutablePointer<UnsafeMutablePointer<Entry>>.allocate(capacity: directorySize)
            d.initialize(from: directory, count: directorySize)
            working = d
            copiedBytes += MemoryLayout<UnsafeMutablePointer<Entry>>.stride * directorySize
            retired.append(UnsafeMutableRawPointer(directory))
        }
        let dir = working!
        let page = Int(key >> UInt32(pageBits)) & (directorySize - 1)
        if !copied.contains(page) {
            let old = dir[page]
            let fresh = UnsafeMutablePointer<Entry>.allocate(capacity: pageSize)
            fresh.initialize(from: old, count: pageSize)
            copiedBytes += MemoryLayout<Entry>.stride * pageSize
            if old != emptyPage { retired.append(UnsafeMutableRawPointer(old)) } else { pages += 1 }
            dir[page] = fresh
            copied.insert(page)
        }
        dir[page][Int(key & UInt32(pageSize - 1))] = entry
    }

    /// Makes the commit's directory the published one.
    mutating func commit() {
        if let d = working { directory = d }
        working = nil
        copied.removeAll(keepingCapacity: true)
    }

    /// Frees the directory and every page. Only once nothing reads them.
    func deallocate() {
        for i in 0..<directorySize where directory[i] != emptyPage { directory[i].deallocate() }
        directory.deallocate()
    }
}

/// The control side of `MACTable`: inserts, replaces and removes (backward-shift deletion, so no tombstones pile
/// up) through a `PagedTable`, copy-on-write per commit.
struct MACTableWriter {
    var table = PagedTable<MACSlot>(pageBits: MACTable.pageBits, directorySize: MACTable.directorySize,
                                    emptyPage: MACTable.emptyPage)
    private(set) var count = 0

    private func slot(_ i: Int) -> MACSlot { table.read(UInt32(i)) }

    /// The slot holding (vni, mac), or the empty slot where it would go.
    private func find(vni: UInt32, mac: UInt64) -> (index: Int, found: Bool) {
        var i = MACTable.home(vni: vni, mac: mac)
        while true {
            let s = slot(i)
            if s.place == 0 { return (i, false) }
            if s.mac == mac && s.vni == vni { return (i, true) }
            i = (i + 1) & (MACTable.capacity - 1)
        }
    }

    func place(vni: UInt32, mac: UInt64) -> UInt32 {
        let (i, found) = find(vni: vni, mac: mac)
        return found ? slot(i).place : 0
    }

    mutating func set(vni: UInt32, mac: UInt64, place: UInt32, retired: inout [UnsafeMutableRawPointer], copiedBytes: inout Int) {
        precondition(place != 0)
        let (i, found) = find(vni: vni, mac: mac)
        if !found { count += 1 }
        table.write(UInt32(i), MACSlot(mac: mac, vni: vni, place: place), retired: &retired, copiedBytes: &copiedBytes)
    }

    mutating func remove(vni: UInt32, mac: UInt64, retired: inout [UnsafeMutableRawPointer], copiedBytes: inout Int) {
        var (i, found) = find(vni: vni, mac: mac)
        guard found else { return }
        count -= 1
        let mask = MACTable.capacity - 1
        var j = i
        while true {
            j = (j + 1) & mask
            let s = slot(j)
            if s.place == 0 { break }
            let h = MACTable.home(vni: s.vni, mac: s.mac)
            // Move s back into the hole unless its home lies cyclically in (i, j].
            let inRange = i <= j ? (h > i && h <= j) : (h > i || h <= j)
            if !inRange {
                table.write(UInt32(i), s, retired: &retired, copiedBytes: &copiedBytes)
                i = j
            }
        }
        table.write(UInt32(i), MACSlot(mac: 0, vni: 0, place: 0), retired: &retired, copiedBytes: &copiedBytes)
    }
}
