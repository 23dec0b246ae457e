#if canImport(Glibc)
import Glibc
#endif
internal import CXDP

/// A timerfd that fires every `milliseconds`, for a poll loop to watch (the control loop's periodic work).
public final class PeriodicTimer {
    public let fd: Int32

    public init?(milliseconds: Int) {
        let fd = mg_timerfd_periodic(milliseconds)
        if fd < 0 { return nil }
        self.fd = fd
    }

    /// Reads the expiry count so the fd stops being readable.
    public func drain() {
        var n: UInt64 = 0
        _ = read(fd, &n, 8)
    }

    deinit { close(fd) }
}
