#if canImport(Glibc)
import Glibc
#endif

/// Zeroed, address-stable memory for tables that grow to hundreds of MiB (the action slab, per-entry counters):
/// reserved with mmap (resident only where written) and advised for transparent huge pages, so a random lookup over
/// 1M entries costs one TLB entry per 2 MiB instead of one per 4 KiB (see docs/performance.md, "Scale").
public enum LargeTable {
    /// Reserves `bytes` of zeroed memory; nil when the address space is exhausted.
    public static func reserve(bytes: Int) -> UnsafeMutableRawPointer? {
        let raw = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let raw, raw != MAP_FAILED else { return nil }
        // Advice only: without THP (or with it set to "never") the table works on 4 KiB pages.
        _ = madvise(raw, bytes, 14 /* MADV_HUGEPAGE */)
        return raw
    }

    public static func release(_ memory: UnsafeMutableRawPointer, bytes: Int) {
        munmap(memory, bytes)
    }
}
