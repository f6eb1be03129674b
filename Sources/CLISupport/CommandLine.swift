import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Logging
import SliceSync

/// Runs a command the way all three programs do: parse, run, and map any error to a distinct exit status.
public func runCommand<C: ParsableCommand>(_ type: C.Type) -> Never {
    do {
        var command = try type.parseAsRoot()
        try command.run()
        exit(ExitStatus.success.rawValue)
    } catch {
        exitWithError(type, error)
    }
}

/// Runs an async command: parse, run, and map any error to a distinct exit status.
public func runAsyncCommand<C: AsyncParsableCommand>(_ type: C.Type, arguments: [String]? = nil) async -> Never {
    do {
        var command = try type.parseAsRoot(arguments)
        if var asyncCommand = command as? any AsyncParsableCommand {
            try await asyncCommand.run()
        } else {
            try command.run()
        }
        exit(ExitStatus.success.rawValue)
    } catch {
        exitWithError(type, error)
    }
}

/// Process exit statuses shared by the three programs, one per class of failure.
public enum ExitStatus: Int32, Sendable {
    /// Everything worked.
    case success = 0
    /// A failure that fits no other class.
    case failure = 1
    /// The command line was wrong.
    case usage = 2
    /// A signature was missing or malformed.
    case signature = 3
    /// The network or a server failed.
    case network = 4
    /// A file did not match its signature.
    case verification = 5
    /// A local file could not be read or written.
    case localIO = 6
}

/// The exit status for an error of the library, by its domain (and for transport errors its code);
/// nil for errors that are not the library's.
public func exitStatus(for error: Error) -> ExitStatus? {
    switch error {
    case is SignatureError: .signature
    case let error as TransportError: error.code == .badURL ? .usage : .network
    case is FileSystemError: .localIO
    case is VerificationError: .verification
    case let error as MirrorError:
        switch error.code {
        case .notFound, .notADirectory: .signature
        case .deleteRefused: .usage
        case .unsafePath: .localIO
        }
    case let error as PublishError:
        switch error.code {
        case .accessDenied, .remoteChanged, .rejected: .network
        case .localChanged: .localIO
        case .deleteRefused, .badArguments: .usage
        }
    default: nil
    }
}

/// A command that adds advice in its own terms (its option names) to the library's errors.
public protocol CommandHints {
    /// A line of advice for `error`, or nil.
    static func hint(for error: Error) -> String?
}

/// Prints an error the way the programs do and exits with its status.
public func exitWithError<C: ParsableCommand>(_ type: C.Type, _ error: Error) -> Never {
    if let status = exitStatus(for: error) {
        printError(programName(of: type), "\(error)")
        if let hint = (type as? CommandHints.Type)?.hint(for: error) {
            writeStandardError("\(programName(of: type)): hint: \(hint)\n")
        }
        exit(status.rawValue)
    }
    switch error {
    case let error as CommandFailure:
        if !error.message.isEmpty { printError(programName(of: type), error.message) }
        exit(error.status.rawValue)
    case is CancellationError:
        printError(programName(of: type), "interrupted")
        exit(130)
    default:
        let code = type.exitCode(for: error)
        if code == .success { type.exit(withError: error) }
        if code == .validationFailure {
            writeStandardError(type.fullMessage(for: error) + "\n")
            exit(ExitStatus.usage.rawValue)
        }
        printError(programName(of: type), type.fullMessage(for: error))
        exit(ExitStatus.failure.rawValue)
    }
}

/// An error a command reports with a chosen exit status and an optional message already worded for people.
public struct CommandFailure: Error {
    /// The exit status.
    public var status: ExitStatus
    /// What to print on stderr; empty when everything was already said.
    public var message: String

    /// Creates a failure.
    public init(_ status: ExitStatus, _ message: String = "") {
        self.status = status
        self.message = message
    }
}

/// Writes `text` on stderr, whole (a terminal or a pipe may take it in pieces).
public func writeStandardError(_ text: String) { writeAll(STDERR_FILENO, text) }

/// Writes `text` on stdout, whole.
public func writeStandardOutput(_ text: String) { writeAll(STDOUT_FILENO, text) }

private func writeAll(_ descriptor: Int32, _ text: String) {
    let bytes = Array(text.utf8)
    let count = bytes.count
    var done = 0
    while done < count {
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + done, count - done) }
        if written > 0 {
            done += written
        } else if written < 0 && errno == EINTR {
            continue
        } else {
            return  // a closed pipe or a full disk: nothing more can be said there
        }
    }
}

/// Prints `program: error: message` on stderr.
public func printError(_ program: String, _ message: String) {
    writeStandardError("\(program): error: \(message)\n")
}

/// Writes a line on stdout.
public func printLine(_ text: String) {
    writeStandardOutput(text + "\n")
}

/// Encodes a value as one line of JSON with sorted keys.
public func jsonLine(_ value: some Encodable) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    guard let data = try? encoder.encode(value) else { return "{}" }
    return String(decoding: data, as: UTF8.self)
}

private func programName<C: ParsableCommand>(of type: C.Type) -> String {
    type.configuration.commandName ?? "\(type)".lowercased()
}

/// A log handler for command-line programs: `program: message` on stderr, with the level when it matters.
public struct TerminalLogHandler: LogHandler {
    private let program: String
    /// The lowest level printed.
    public var logLevel: Logger.Level
    /// Metadata attached to every message.
    public var metadata: Logger.Metadata = [:]

    /// A handler for `program` that prints from `level` up.
    public init(program: String, level: Logger.Level) {
        self.program = program
        self.logLevel = level
    }

    /// Metadata by key.
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Prints one message.
    public func log(event: LogEvent) {
        let prefix: String
        switch event.level {
        case .error, .critical: prefix = "error: "
        case .warning: prefix = "warning: "
        default: prefix = ""
        }
        writeStandardError("\(program): \(prefix)\(event.message)\n")
    }

    /// A logger for a command-line program with the verbosity flags applied.
    public static func logger(program: String, quiet: Bool, verbose: Bool) -> Logger {
        let level: Logger.Level = quiet ? .error : (verbose ? .info : .warning)
        return Logger(label: program) { _ in TerminalLogHandler(program: program, level: level) }
    }
}

/// Parses `--slice`/`--block` style sizes for ArgumentParser.
public struct ByteSize: ExpressibleByArgument, Sendable {
    /// The size in bytes.
    public var bytes: Int

    /// Parses `4096`, `64K`, `1M`, `2G`.
    public init?(argument: String) {
        guard let value = parseByteSize(argument), value > 0 else { return nil }
        bytes = value
    }

    /// What the value looks like, for --help.
    public static var defaultCompletionKind: CompletionKind { .default }
}


/// Keeps the C allocator's memory near what the program really uses; call it first thing in `main`.
///
/// glibc gives every thread that allocates an arena of its own (up to 8 per core), and raises its
/// threshold for `mmap`-backed blocks each time such a block is freed, after which big buffers stay
/// in the heap when freed. Both made the client's peak memory a third larger than its live data on
/// a 110 MB tarball (60 MiB against 45 MiB). Two arenas and a fixed 128 KiB threshold cost no
/// measurable time here.
public func tuneMemoryAllocator() {
    MemoryTuning.keepAllocatorSmall()
}

/// Unblocks SIGINT and SIGTERM on the calling thread; call it first thing in `main`, before any other
/// thread exists, so every later thread inherits the unblocked mask whatever the parent process left.
public func unblockInterruptSignals() {
    var signals = sigset_t()
    sigemptyset(&signals)
    sigaddset(&signals, SIGINT)
    sigaddset(&signals, SIGTERM)
    pthread_sigmask(SIG_UNBLOCK, &signals, nil)
}

/// The settle period and rescan interval of a signature service, checked and converted from the
/// `--settle SECONDS` and `--rescan MINUTES` options `shash --service` and `syncserver` share.
public func serviceTiming(settleSeconds: Double, rescanMinutes: Double) throws -> (settle: Duration, rescan: Duration) {
    guard settleSeconds >= 0 && settleSeconds <= 3600 else {
        throw ValidationError("--settle must be between 0 and 3600 seconds, not \(settleSeconds)")
    }
    guard rescanMinutes > 0 && rescanMinutes <= 10_080 else {
        throw ValidationError("--rescan must be more than 0 and at most 10080 minutes (a week), not \(rescanMinutes)")
    }
    return (.milliseconds(Int64(settleSeconds * 1000)), .milliseconds(Int64(rescanMinutes * 60_000)))
}

/// Calls `handler` once SIGINT or SIGTERM arrives (instead of the default of dying at once); keep the
/// returned sources alive as long as the handler should fire.
public func onInterrupt(_ handler: @escaping @Sendable () -> Void) -> [any DispatchSourceSignal] {
    unblockInterruptSignals()
    return [SIGINT, SIGTERM].map { number in
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler(handler: handler)
        source.resume()
        return source
    }
}
