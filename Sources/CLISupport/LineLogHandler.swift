#if canImport(Glibc)
import Glibc
#endif
import Logging

/// MPLSGate's log format: one line per event on standard error, `PROGRAM: MESSAGE key=value …` (no timestamp:
/// journald adds it). Metadata keys are sorted so a line is the same every time; a value with a space, a quote, an
/// equals sign or nothing in it is quoted.
public struct LineLogHandler: LogHandler {
    public let program: String
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    let sink: @Sendable (String) -> Void

    /// `sink` receives each formatted line, newline included (default: written to fd 2 in one write call).
    public init(program: String, level: Logger.Level, sink: @escaping @Sendable (String) -> Void = LineLogHandler.standardError) {
        self.program = program
        self.logLevel = level
        self.sink = sink
    }

    public func log(event: LogEvent) {
        var all = metadata
        if let extra = event.metadata { all.merge(extra) { _, new in new } }
        sink(LineLogHandler.format(program: program, message: event.message.description, metadata: all))
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// `PROGRAM: MESSAGE key=value …\n`.
    public static func format(program: String, message: String, metadata: Logger.Metadata) -> String {
        var line = "\(program): \(message)"
        for key in metadata.keys.sorted() {
            line += " \(key)=\(quoted(metadata[key]!.description))"
        }
        return line + "\n"
    }

    static func quoted(_ value: String) -> String {
        guard value.isEmpty || value.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" || $0 == "\n" }) else {
            return value
        }
        var out = "\""
        for c in value {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out + "\""
    }

    /// Writes a line to standard error in one call (lines of concurrent writers do not interleave).
    @Sendable public static func standardError(_ line: String) {
        var bytes = Array(line.utf8)
        _ = write(2, &bytes, bytes.count)
    }
}
