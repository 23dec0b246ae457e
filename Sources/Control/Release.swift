/// The release of MPLSGate: one number for every binary's `--version` and the control socket's `info`.
public enum Release {
    public static let version = "0.2.0"
}
