/// The Prometheus text exposition format 0.0.4, written by hand from counter snapshots at scrape time: one
/// `# HELP` and `# TYPE` line per family, then its samples. Names follow Prometheus' conventions (base units,
/// `_total` on counters); label values are escaped (backslash, double quote, newline).
public struct Exposition {
    public enum Kind: String { case counter, gauge }

    public private(set) var bytes: [UInt8] = []
    private var families = Set<String>()

    public init(capacity: Int = 1 << 16) { bytes.reserveCapacity(capacity) }

    /// Starts a family; its samples follow. A family named twice is a bug in the caller (the second is skipped).
    public mutating func family(_ name: String, _ kind: Kind, _ help: String) {
        guard families.insert(name).inserted else { return }
        append("# HELP \(name) \(Exposition.escapeHelp(help))\n# TYPE \(name) \(kind.rawValue)\n")
    }

    public mutating func sample(_ name: String, _ labels: [(String, String)] = [], _ value: UInt64) {
        sampleText(name, labels, String(value))
    }

    public mutating func sample(_ name: String, _ labels: [(String, String)] = [], _ value: Double) {
        let text: String
        if value.isNaN { text = "NaN" } else if value.isInfinite { text = value > 0 ? "+Inf" : "-Inf" }
        else if value == value.rounded(), abs(value) < 1e15 { text = String(Int64(value)) } else { text = String(value) }
        sampleText(name, labels, text)
    }

    public mutating func sample(_ name: String, _ labels: [(String, String)] = [], _ value: Bool) {
        sampleText(name, labels, value ? "1" : "0")
    }

    /// Text another writer produced in the same format (swift-prometheus' registry), appended as is.
    public mutating func appendRaw(_ other: [UInt8]) { bytes += other }

    private mutating func sampleText(_ name: String, _ labels: [(String, String)], _ value: String) {
        var line = name
        if !labels.isEmpty {
            line += "{" + labels.map { "\($0.0)=\"\(Exposition.escapeLabel($0.1))\"" }.joined(separator: ",") + "}"
        }
        append(line + " " + value + "\n")
    }

    private mutating func append(_ s: String) { bytes += s.utf8 }

    static func escapeLabel(_ s: String) -> String {
        guard s.contains(where: { $0 == "\\" || $0 == "\"" || $0 == "\n" }) else { return s }
        var out = ""
        for c in s {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out
    }

    static func escapeHelp(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out
    }
}
