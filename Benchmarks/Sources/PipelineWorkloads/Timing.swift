#if canImport(Glibc)
import Glibc
#endif

/// What the benchmark executables (PipelineRatio, LearningBench) share: the clock, a timed loop, medians, fixed-point
/// figures and the usage error.
public enum Timing {
    /// CLOCK_MONOTONIC in nanoseconds.
    public static func now() -> UInt64 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
    }

    /// Nanoseconds `n` runs of `body` take.
    @inline(never)
    public static func time(_ n: Int, _ body: () -> Void) -> Double {
        let t = now()
        for _ in 0..<n { body() }
        return Double(now() - t)
    }

    public static func median(_ v: [Double]) -> Double { let s = v.sorted(); return s[s.count / 2] }

    /// `x` with `places` decimals ("-0.05", "12.30").
    public static func fixed(_ x: Double, _ places: Int) -> String {
        var scale = 1.0
        for _ in 0..<places { scale *= 10 }
        let text = String(Int((x * scale).rounded()))
        let neg = text.hasPrefix("-")
        var digits = neg ? String(text.dropFirst()) : text
        while digits.count <= places { digits = "0" + digits }
        return (neg ? "-" : "") + digits.dropLast(places) + "." + digits.suffix(places)
    }

    /// A usage error: the message and the usage on standard error, exit status 2.
    public static func usageError(_ message: String, _ usage: String) -> Never {
        let text = message + "\n" + usage + "\n"
        _ = text.withCString { write(2, $0, strlen($0)) }
        exit(2)
    }
}
