#if canImport(Glibc)
import Glibc
#endif
internal import CXDP

/// Device changes the kernel announces (the netdev generic netlink family's "mgmt" group: a device added or
/// removed, its xdp-features changed, e.g. a veth whose peer turned GRO on or off), for a poll loop to watch.
public final class DeviceFeatureEvents {
    public let fd: Int32

    /// The subscription, or why there is none (no netdev family before Linux 6.3, or the socket failed).
    public static func subscribe() -> Result<DeviceFeatureEvents, AgentError> {
        let fd = mg_xdp_features_subscribe()
        if fd < 0 { return .failure(AgentError(errnoText(fd))) }
        return .success(DeviceFeatureEvents(fd: fd))
    }

    private init(fd: Int32) { self.fd = fd }

    /// Reads what is pending; true when anything was (the caller re-reads the devices' features).
    public func drain() -> Bool { mg_netlink_drain(fd) != 0 }

    deinit { close(fd) }
}
