import Foundation
import Logging
import Testing
import CLISupport
import ControlServer

/// The three command lines: exit statuses (0 help and version on stdout, 2 usage errors naming the option, the
/// documented others), per-subcommand help, and the log line format. Checks status and the option named, not the
/// wording.
@Suite(.serialized) struct CLITests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let binDir: URL = {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("mplsgate").path) && dir.path != "/" {
            dir = dir.deletingLastPathComponent()
        }
        return dir
    }()

    func run(_ exe: String, _ args: [String]) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = Self.binDir.appendingPathComponent(exe)
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    @Test(arguments: [
        ("mplsgate", ["--help"]), ("mplsgate", ["run", "--help"]), ("mplsgate", ["replay", "--help"]),
        ("mplsgate", ["check", "--help"]), ("mplsgate", ["help", "replay"]),
        ("mplsgatectl", ["--help"]), ("mplsgatectl", ["show", "--help"]), ("mplsgatectl", ["show", "counters", "--help"]),
        ("mplsgatectl", ["resync", "--help"]), ("mplsgate-traffic", ["--help"]), ("mplsgate-traffic", ["sink", "--help"]),
    ])
    func helpExitsZeroOnStandardOutput(_ exe: String, _ args: [String]) throws {
        let r = try run(exe, args)
        #expect(r.status == 0 && r.out.contains("USAGE:") && r.err.isEmpty, "\(exe) \(args): \(r.status) \(r.err)")
    }

    @Test(arguments: ["mplsgate", "mplsgatectl", "mplsgate-traffic"])
    func versionIsTheReleaseInfoReports(_ exe: String) throws {
        let r = try run(exe, ["--version"])
        #expect(r.status == 0 && r.out == "\(exe) \(ControlService.version)\n", "\(r.out)")
    }

    /// Usage errors: exit 2, the message on standard error naming the option or argument.
    @Test(arguments: [
        ("mplsgate", [] as [String], "SUBCOMMAND"),
        ("mplsgate", ["frobnicate"], "frobnicate"),
        ("mplsgate", ["replay", "--config", "c.json", "--fib", "f.json", "--in", "x.pcap", "--bogus"], "--bogus"),
        ("mplsgate", ["replay", "--config", "c.json", "--fib", "f.json"], "--in"),
        ("mplsgate", ["run"], "--config"),
        ("mplsgate", ["run", "--config", "c.json", "--workers", "0"], "--workers"),
        ("mplsgate", ["run", "--config", "c.json", "--bind", "fast"], "--bind"),
        ("mplsgate", ["run", "--config", "c.json", "--cpus", "1,x"], "--cpus"),
        ("mplsgate", ["run", "--config", "c.json", "--ring-size", "1000"], "--ring-size"),
        ("mplsgate", ["run", "--config", "c.json", "--log-level", "loud"], "--log-level"),
        ("mplsgatectl", [], "SUBCOMMAND"),
        ("mplsgatectl", ["show"], "SUBCOMMAND"),
        ("mplsgatectl", ["show", "counters", "nope"], "nope"),
        ("mplsgatectl", ["resync", "fib.json", "--chunk", "0"], "--chunk"),
        ("mplsgatectl", ["trace", "5000"], "trace"),
        ("mplsgatectl", ["info", "--timeout", "soon"], "--timeout"),
        ("mplsgate-traffic", ["send", "--pcap", "x.pcap"], "--iface"),
        ("mplsgate-traffic", ["sink", "--iface", "lo", "--idle", "-1"], "--idle"),
    ])
    func usageErrorsExitTwoNamingTheOption(_ exe: String, _ args: [String], _ named: String) throws {
        let r = try run(exe, args)
        #expect(r.status == 2 && r.err.contains(named) && r.out.isEmpty, "\(exe) \(args): \(r.status) \(r.err)")
    }

    /// The client's options go before or after the subcommand; an unreachable agent is exit 3, not a usage error.
    @Test func clientOptionsAnywhereAndUnreachableIsThree() throws {
        for args in [["info", "--socket", "/nonexistent/x.sock"], ["show", "labels", "--json", "--socket", "/nonexistent/x.sock"],
                     ["--socket", "/nonexistent/x.sock", "info"], ["--json", "--socket=/nonexistent/x.sock", "--timeout", "3", "show", "labels"]] {
            let r = try run("mplsgatectl", args)
            #expect(r.status == 3 && r.err.contains("/nonexistent/x.sock"), "\(args): \(r.status) \(r.err)")
        }
    }

    /// `mplsgate run --help` names every option docs/agent.md documents, and nothing is documented that run lacks.
    @Test func runHelpMatchesTheDocumentedOptions() throws {
        let doc = try String(contentsOf: Self.root.appendingPathComponent("docs/agent.md"), encoding: .utf8)
        let documented = doc.split(separator: "\n").filter { $0.hasPrefix("| `--") }.flatMap { row in
            row.split(separator: "|")[0].split(separator: "`").filter { $0.hasPrefix("--") }.map { String($0.split(separator: " ")[0]) }
        }
        #expect(documented.count >= 18, "\(documented)")
        let help = try run("mplsgate", ["run", "--help"]).out
        for o in documented { #expect(help.contains(o), "mplsgate run --help does not name \(o)") }
    }

    /// An error found before connecting (a missing file) is one line in our format, with the documented status.
    @Test func errorsBeforeConnectingUseTheLineFormat() throws {
        let r = try run("mplsgatectl", ["apply", "/nonexistent/change.json"])
        #expect(r.status == 2 && r.err == "mplsgatectl: /nonexistent/change.json: No such file or directory\n", "\(r.err)")
    }

    @Test func optionsBeforeTheSubcommandMoveBehindItsWords() {
        let global = ["--socket": true, "--json": false, "--timeout": true]
        #expect(CommandLineRules.hoisting(global, in: ["--socket", "A", "show", "labels", "--socket", "B"])
                == ["show", "labels", "--socket", "A", "--socket", "B"], "a later value still wins")
        #expect(CommandLineRules.hoisting(global, in: ["--json", "--timeout=3", "call", "info", "--", "-x"])
                == ["call", "info", "--json", "--timeout=3", "--", "-x"], "nothing moves past --")
        #expect(CommandLineRules.hoisting(global, in: ["info"]) == ["info"])
    }

    @Test func logLinesAreProgramMessageAndSortedQuotedMetadata() {
        let start = "forwarding since 1795635202.812: west=eth1(core, copy); generation 1 from /x.json, 2 entries"
        #expect(LineLogHandler.format(program: "mplsgate", message: start, metadata: [:]) == "mplsgate: " + start + "\n")
        let line = LineLogHandler.format(program: "mplsgate", message: "state file write failed",
                                         metadata: ["path": "/var/lib/a b", "generation": "7", "error": "x=y", "empty": ""])
        #expect(line == "mplsgate: state file write failed empty=\"\" error=\"x=y\" generation=7 path=\"/var/lib/a b\"\n")
    }

    @Test func theHandlerWritesOneLinePerEventAtOrAboveItsLevel() {
        final class Lines: @unchecked Sendable { var all: [String] = [] }
        let lines = Lines()
        var logger = Logger(label: "t") { _ in LineLogHandler(program: "mplsgatectl", level: .info) { lines.all.append($0) } }
        logger.logLevel = .info
        logger.debug("hidden")
        logger.info("shown", metadata: ["k": "v"])
        #expect(lines.all == ["mplsgatectl: shown k=v\n"])
    }
}
