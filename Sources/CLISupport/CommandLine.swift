#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Logging

/// What every MPLSGate command line shares: the parse-and-exit rules and the log options.
public enum CommandLineRules {
    /// Parses the process's arguments. `--help`, `help` and `--version` print to standard output and exit 0; a usage
    /// error prints the full message (error, usage, hint) to standard error and exits 2, as the docs promise.
    public static func parse<Root: ParsableCommand>(_ root: Root.Type, _ arguments: [String]? = nil) -> ParsableCommand {
        do {
            return try Root.parseAsRoot(arguments)
        } catch {
            let message = Root.fullMessage(for: error)
            if Root.exitCode(for: error) == .success {
                print(message)
                exit(0)
            }
            LineLogHandler.standardError(message + "\n")
            exit(2)
        }
    }

    /// Moves options every subcommand takes (`global`: name → whether it takes a value) from before the first
    /// subcommand name to just before the first option after it (or the end), so `tool --socket P info` means
    /// `tool info --socket P` (subcommands declare them through one `@OptionGroup`; ArgumentParser reads a
    /// subcommand's options only after its name). Options written later still win, and nothing moves past `--`.
    public static func hoisting(_ global: [String: Bool], in arguments: [String]) -> [String] {
        var moved: [String] = []
        var i = 0
        while i < arguments.count {
            let a = arguments[i]
            let name = a.split(separator: "=", maxSplits: 1).first.map(String.init) ?? a
            guard let takesValue = global[name] else { break }
            moved.append(a)
            if takesValue && !a.contains("=") && i + 1 < arguments.count {
                moved.append(arguments[i + 1])
                i += 1
            }
            i += 1
        }
        let rest = Array(arguments[i...])
        let at = rest.firstIndex { $0.hasPrefix("-") } ?? rest.count
        return Array(rest[..<at]) + moved + Array(rest[at...])
    }

    /// Parses, then runs the chosen command; an error thrown by `run()` is printed and exits 1 (an `ExitCode`
    /// exits with its own status).
    public static func main<Root: ParsableCommand>(_ root: Root.Type, arguments: [String]? = nil) -> Never {
        var command = parse(root, arguments)
        do {
            try command.run()
        } catch let code as ExitCode {
            exit(code.rawValue)
        } catch {
            let message = Root.fullMessage(for: error)
            if Root.exitCode(for: error) == .success { print(message); exit(0) }
            if Root.exitCode(for: error) == .validationFailure {
                LineLogHandler.standardError(message + "\n")
                exit(2)
            }
            LineLogHandler.standardError(message + "\n")
            exit(1)
        }
        exit(0)
    }

    /// A command run without one of its subcommands: its help (with the full command path) on standard error, exit 2.
    public static func subcommandRequired<Root: ParsableCommand>(_ root: Root.Type, _ command: ParsableCommand.Type) -> Never {
        LineLogHandler.standardError(Root.helpMessage(for: command) + "\n")
        exit(2)
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// `--log-level`, shared by the agent and the control client.
public struct LogOptions: ParsableArguments {
    @Option(name: .customLong("log-level"),
            help: "Lowest level logged to standard error: trace, debug, info, notice, warning, error or critical.")
    public var level: Logger.Level = .info

    public init() {}

    /// Installs `LineLogHandler` for the process (once) and returns the program's logger.
    public func bootstrap(program: String) -> Logger {
        let level = self.level
        LogBootstrap.once(program: program, level: level)
        var logger = Logger(label: program)
        logger.logLevel = level
        return logger
    }
}

enum LogBootstrap {
    nonisolated(unsafe) static var done = false
    static func once(program: String, level: Logger.Level) {
        guard !done else { return }
        done = true
        LoggingSystem.bootstrap { _ in LineLogHandler(program: program, level: level) }
    }
}
