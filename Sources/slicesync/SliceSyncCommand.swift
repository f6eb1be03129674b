import ArgumentParser
import CLISupport
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import AWSSigning
import Logging
import SliceSync
import SliceSyncHTTP
import Synchronization

/// `slicesync`: rebuilds a file from local alike files plus HTTP Range requests.
struct SliceSyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slicesync",
        abstract: "Download only what changed in a big file, reusing the pieces local files already have.",
        discussion: """
            Fetches the file's signature (written by shash), finds every piece of the new file that local \
            files already hold, at any byte offset, downloads only the missing byte ranges from any server \
            that honours Range requests, verifies the whole-file hash and only then replaces the destination.

            The signature of http://host/a/b/file.iso is looked for at /a/b/.slicesync/file.iso.slicesync, \
            then /a/.slicesync/b/file.iso.slicesync, then /.slicesync/a/b/file.iso.slicesync. A URL ending \
            in .slicesync names the signature itself. When there is none, FILE.zsync beside the file is \
            read: zsync control files (from zsyncmake, for Ubuntu's ISO images, AppImages and more) work \
            like signatures, with HTTPS, resume and every core. A URL ending in .zsync names one itself; \
            the file is then the control file's URL: header, resolved against where the control file was \
            (after redirects) or against --base-url. A control file may also be given as a local path.

            The destination itself, if it exists, and the partial work of an interrupted run are always \
            used as alike files, so running the same command again updates it or resumes.

            By default a new copy is built beside the destination and renamed over it: readers see the old \
            version or the new one, never a mix. --inplace writes only the ranges that change into the \
            destination itself, through a journal (DEST.slicesync.journal) made durable first, so a crash \
            at any point is finished by the next run; while it runs, readers of the file can see a mix of \
            versions. It is chosen automatically, with a message, when a second copy does not fit. The slice \
            digests of files slicesync wrote or checked are kept in $XDG_CACHE_HOME/slicesync (default \
            ~/.cache/slicesync), keyed by device, inode, size and times: an unchanged file is then matched \
            and verified without being read again.

            An s3://BUCKET/KEY (or s3://BUCKET/PREFIX/) URL reads a private bucket with the AWS credentials \
            of the environment or ~/.aws (see the S3 options). To publish to S3, uploading only what \
            changed: slicesync push --help.

            Examples:
              slicesync https://mirror.example/iso/new.iso --alike old.iso
              slicesync -n https://mirror.example/iso/new.iso -o current.iso
              slicesync https://cdimage.example/daily/current.iso.zsync --alike yesterday.iso

            Exit status: 0 success, 2 bad usage, 3 signature not found or malformed, 4 network failure,
            5 verification failure, 6 local file failure (disk full, permission), 130 interrupted.
            """
    )

    @Argument(help: ArgumentHelp("The file's URL (http, https, or s3://BUCKET/KEY for a private bucket), a "
        + "signature's, or a zsync control file's (a URL or a path)."))
    var url: String

    @Option(name: [.short, .customLong("output")],
        help: ArgumentHelp("Destination (default: the last path component of the URL, in the current directory).",
            valueName: "path"))
    var output: String?

    @Option(name: .customLong("alike"), help: ArgumentHelp("A local file that probably shares content with the new "
        + "version; with URL/, a directory laid out like the tree (an older copy); repeatable.", valueName: "path"))
    var alikes: [String] = []

    @Option(help: ArgumentHelp("Accepted as in the original slicesync; matching uses the signature's own slice size, " +
        "and a different value is reported.", valueName: "size"))
    var slice: ByteSize?

    @Option(help: ArgumentHelp("Where the signature is, when not in the usual place.", valueName: "url"))
    var signature: String?

    @Option(name: [.customShort("u"), .customLong("base-url")],
            help: ArgumentHelp("What a zsync control file's relative URL: headers resolve against, instead of the "
                + "control file's own URL (needed for a control file read from a local path).", valueName: "url"))
    var baseURL: String?

    @Flag(name: [.customShort("n"), .long],
        help: "Fetch the signature, scan the alike files and say what would be downloaded; change nothing.")
    var dryRun = false

    @Flag(name: .customLong("inplace"), help: ArgumentHelp("Update the destination in place, writing only what "
        + "changes (journaled, crash-safe); readers can see a mix of versions while it runs."))
    var inPlace = false

    @Flag(help: ArgumentHelp("With URL/ (a tree): remove local files the tree does not list, only inside the "
        + "destination, never through a symbolic link."))
    var delete = false

    @Option(name: .customLong("exclude"), parsing: .unconditionalSingleValue,
        help: ArgumentHelp("With URL/: leave out paths matching PATTERN (rsync's rules: * ? [..] **, a leading / "
            + "anchors, a trailing / matches directories); repeatable, in order with --include.", valueName: "pattern"))
    var excludes: [String] = []

    @Option(name: .customLong("include"), parsing: .unconditionalSingleValue,
        help: ArgumentHelp("With URL/: keep paths matching PATTERN even when a later --exclude matches; the first "
            + "matching rule decides.", valueName: "pattern"))
    var includes: [String] = []

    @Option(help: ArgumentHelp("With --delete: refuse, and change nothing, when more files than this would go "
        + "(default 1000).", valueName: "n"))
    var maxDelete = 1000

    @Flag(help: ArgumentHelp("With URL/: overwrite and delete files changed locally since the mirror wrote them, "
        + "and pass --max-delete."))
    var force = false

    @Flag(help: ArgumentHelp("With URL/: keep the mirror live: after the first run, check the tree's manifest "
        + "every --interval seconds (a conditional GET) and mirror again when it changed, until SIGINT or "
        + "SIGTERM, which stop it between files."))
    var watch = false

    @Option(help: ArgumentHelp("With --watch: seconds between two checks (default 10).", valueName: "seconds"))
    var interval: Double = 10

    @Flag(help: "Check every byte of the result, even where the cache vouches for unchanged slices.")
    var verifyAll = false

    @Flag(help: "Neither use nor fill the cache of slice digests.")
    var noCache = false

    @Option(name: [.short, .long], help: "Parallel connections.")
    var jobs = 4

    @OptionGroup var reporting: OutputOptions

    @Option(name: [.customShort("H"), .long],
        help: ArgumentHelp("Extra request header, \"Name: value\" (for example an authorization); repeatable.",
            valueName: "header"))
    var header: [String] = []

    @OptionGroup var tls: TLSOptions

    @OptionGroup(title: "S3 (with an s3:// URL)") var s3: S3Options

    @Option(help: ArgumentHelp("Cap the download rate, over all connections together,"
        + " in bytes per second, with an optional K, M or G suffix (as curl's option).", valueName: "rate"))
    var limitRate: ByteSize?

    func validate() throws {
        guard (1...64).contains(jobs) else { throw ValidationError("--jobs must be between 1 and 64") }
        for value in header where !value.contains(":") {
            throw ValidationError("--header takes \"Name: value\", not \"\(value)\"")
        }
        let lower = url.lowercased()
        let isLocalControlFile = !lower.contains("://") && ZsyncControl.namesControlFile(url)
        guard lower.hasPrefix("http://") || lower.hasPrefix("https://") || lower.hasPrefix("s3://")
            || isLocalControlFile else {
            throw ValidationError("URL must start with http://, https:// or s3:// (or be the path of a .zsync control "
                + "file)")
        }
        if let baseURL, !SignatureLocator.isHTTPURL(baseURL) {
            throw ValidationError("--base-url must be an http:// or https:// URL")
        }
        if !namesDirectory && (delete || force || watch || !includes.isEmpty || !excludes.isEmpty) {
            throw ValidationError("--delete, --force, --watch, --include and --exclude apply to a tree: "
                + "a URL ending in /")
        }
        guard interval >= 0.1 && interval <= 86_400 else {
            throw ValidationError("--interval must be between 0.1 and 86400 seconds")
        }
        if namesDirectory && (inPlace || signature != nil) {
            throw ValidationError("--inplace and --signature apply to one file, not to a URL ending in /")
        }
        guard maxDelete >= 0 else { throw ValidationError("--max-delete must be 0 or more") }
        // With a tree, --alike names directories laid out like it.
        for directory in alikes where namesDirectory && (try? FileSystem.stamp(directory))??.isDirectory != true {
            throw ValidationError("--alike \(directory): with a URL ending in /, --alike names a directory laid out "
                + "like the tree")
        }
    }

    /// A URL ending in `/` names a directory: the tree below it is mirrored.
    private var namesDirectory: Bool { url.prefix { $0 != "?" && $0 != "#" }.hasSuffix("/") }

    func run() async throws {
        let logger = TerminalLogHandler.logger(program: "slicesync", quiet: quiet, verbose: verbose)
        var options = SyncOptions(url: url)
        options.destination = output
        options.alikes = alikes
        options.sliceHint = slice?.bytes
        options.signatureURL = signature
        options.baseURL = baseURL
        options.dryRun = dryRun
        options.inPlace = inPlace
        options.verifyAll = verifyAll
        if noCache { options.cache = nil }
        options.jobs = jobs
        options.headers = header.map { value in
            let parts = value.split(separator: ":", maxSplits: 1)
            return (parts[0].trimmingSpaces, parts.count > 1 ? parts[1].trimmingSpaces : "")
        }
        let exchange = try makeExchange()
        let reading = try resolveS3(exchange: exchange, logger: logger)
        options.url = reading.url
        if namesDirectory {
            try await mirror(options, logger: logger, exchange: exchange, reading: reading.exchange)
            return
        }
        let bar = showsProgress ? ProgressBar() : nil
        let session = SyncSession(options: options, exchange: reading.exchange, logger: logger, observer: bar)
        let report = try await interruptible(exchange: exchange, bar: bar, onSignal: { session.cancel() }) {
            try await session.run()
        }

        if json {
            printLine(jsonLine(report))
        } else if dryRun {
            printLine(dryRunLine(report))
        } else if !quiet && (verbose || isatty(STDERR_FILENO) == 1) {
            writeStandardError(summaryLine(report) + "\n")
        }
    }

    private var quiet: Bool { reporting.quiet }
    private var verbose: Bool { reporting.verbose }
    private var json: Bool { reporting.json }
    private var showsProgress: Bool { reporting.showsProgress }

    private func makeExchange() throws -> AsyncHTTPExchange {
        try tls.exchange(connections: jobs, rateLimiter: limitRate.map { RateLimiter(bytesPerSecond: $0.bytes) })
    }

    /// Runs `body` in a task that SIGINT and SIGTERM stop (`onSignal` first; the task is cancelled too
    /// unless `cancels` is false), then clears the progress line and closes the connections, whatever
    /// the outcome.
    private func interruptible<T: Sendable>(exchange: AsyncHTTPExchange, bar: ProgressBar?,
        onSignal: @escaping @Sendable () -> Void = {}, cancels: Bool = true,
        _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let task = Task { try await body() }
        let signals = SignalForwarder {
            onSignal()
            if cancels { task.cancel() }
        }
        defer { signals.stop() }
        do {
            let value = try await task.value
            bar?.finish()
            await exchange.shutdown()
            return value
        } catch {
            bar?.finish()
            await exchange.shutdown()
            throw error
        }
    }

    /// For an s3:// URL, the object's URL at the endpoint and an exchange that signs every request with
    /// the configured credentials (none configured: unsigned, as for a public bucket).
    private func resolveS3(exchange: AsyncHTTPExchange, logger: Logger) throws
        -> (url: String, exchange: HTTPExchange) {
        guard S3Location.isS3URL(url) else { return (url, exchange) }
        let location: S3Location
        do {
            location = try S3Location(parsing: url)
        } catch {
            throw CommandFailure(.usage, error.message)
        }
        let client = S3Client(configuration: try s3.configuration(), requester: exchange, logger: logger)
        return (client.endpoint.url(bucket: location.bucket, key: location.key),
                SigningExchange(exchange, client: client))
    }

    /// `slicesync URL/`: mirrors the tree below URL.
    private func mirror(_ file: SyncOptions, logger: Logger, exchange: AsyncHTTPExchange,
                        reading: HTTPExchange) async throws {
        var options = MirrorOptions(url: file.url)
        options.destination = output
        options.dryRun = dryRun
        options.delete = delete
        options.maxDelete = maxDelete
        options.force = force
        var rules = Self.filterRules(CommandLine.arguments)
        if rules.count != includes.count + excludes.count {
            // Not found as given (say, through a wrapper): the includes first, then the excludes.
            rules = includes.map { .init(include: true, pattern: $0) }
                + excludes.map { .init(include: false, pattern: $0) }
        }
        options.filter = MirrorFilter(rules: rules)
        // With a tree, --alike names directories laid out like it.
        options.alikeDirectories = alikes
        options.file = file
        options.file.url = ""
        options.file.destination = nil
        // Files at once share the connections: each file's requests take the rest.
        options.file.jobs = max(1, jobs / 2)
        options.interval = .milliseconds(Int(interval * 1000))
        options.followsFeed = jobs >= 2
        let bar = showsProgress && !json ? ProgressBar() : nil
        options.progress = bar
        let stop = CancellationFlag()
        let session = MirrorSession(options: options, exchange: reading, logger: logger, stop: stop)
        if watch {
            // A signal stops the watch between files: the files under way finish.
            try await interruptible(exchange: exchange, bar: bar, onSignal: { stop.cancel() }, cancels: false) {
                try await session.watch { result in
                    bar?.finish()
                    switch result {
                    case .success(let report): printMirror(report)
                    case .failure(let error): logger.error("\(error); trying again in \(interval) s")
                    }
                }
            }
            return
        }
        let report = try await interruptible(exchange: exchange, bar: bar) { try await session.run() }
        printMirror(report)
        if report.failedFiles > 0 {
            throw CommandFailure(.network,
                "\(report.failedFiles) file(s) could not be mirrored; run again to retry them")
        }
    }

    /// The --include and --exclude rules in the order they were given (the order decides, as in rsync).
    static func filterRules(_ arguments: [String]) -> [MirrorFilter.Rule] {
        var rules: [MirrorFilter.Rule] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            for (flag, include) in [("--include", true), ("--exclude", false)] {
                if argument == flag, index + 1 < arguments.count {
                    rules.append(.init(include: include, pattern: arguments[index + 1]))
                    index += 1
                } else if argument.hasPrefix(flag + "=") {
                    rules.append(.init(include: include, pattern: String(argument.dropFirst(flag.count + 1))))
                }
            }
            index += 1
        }
        return rules
    }

    private func printMirror(_ report: MirrorReport) {
        let totals = "\(report.newFiles) new, \(report.changedFiles) changed, "
            + "\(report.copiedFiles) moved or copied, \(report.deletedFiles) deleted files; "
            + "\(report.unchangedFiles) unchanged"
            + (report.keptFiles > 0 ? ", \(report.keptFiles) kept (changed locally)" : "")
            + (report.failedFiles > 0 ? ", \(report.failedFiles) failed" : "")
        if json {
            printLine(jsonLine(report))
        } else if dryRun {
            printLine("would download \(formatBytes(report.bytesDownloaded)) of \(formatBytes(report.totalBytes)) for "
                + totals)
        } else if !quiet {
            writeStandardError("slicesync: \(report.destination): \(totals); \(formatBytes(report.bytesDownloaded)) "
                + "downloaded in \(report.requests) requests, " + formatFixed(report.seconds, places: 2) + " s\n")
        }
    }

    private func dryRunLine(_ report: SyncReport) -> String {
        let saved = report.length == 0 ? 100 : 100
            * Double(report.length - report.bytesFromServer) / Double(report.length)
        let requests = report.dataRequestsPlanned
        return "would download \(formatBytes(report.bytesFromServer)) of \(formatBytes(report.length)), "
            + formatFixed(saved, places: saved > 99 && saved < 100 ? 2 : 1) + " % saved"
            + (requests == 0 ? "" : ", in \(requests) request\(requests == 1 ? "" : "s")")
            + "; the signature took \(formatBytes(report.signatureBytes))"
            + (report.update == "in-place" ? "; would update in place, writing \(formatBytes(report.bytesWritten))"
                : "; would write a new copy of \(formatBytes(report.length))")
            + (report.cache == "off" ? "" : " (slice digest cache: \(report.cache))")
    }

    private func summaryLine(_ report: SyncReport) -> String {
        if report.outcome == "unchanged" { return "slicesync: \(report.destination) is already up to date" }
        let reused = report.length == 0 ? 0 : 100 * Double(report.bytesReused) / Double(report.length)
        return "slicesync: \(report.destination) updated: \(formatBytes(report.length)), "
            + formatFixed(reused, places: 1) + " % reused"
            + ", \(formatBytes(report.bytesDownloaded)) downloaded in \(report.requests) requests, "
            + formatFixed(report.seconds, places: 2) + " s"
    }
}

/// Set by the signal handler; read by `SignalForwarder`'s poller.
extension SliceSyncCommand: CommandHints {
    /// Advice in terms of this command's options for the library's errors.
    static func hint(for error: Error) -> String? {
        switch error {
        case let error as SignatureError where error.code == .notFound:
            "pass the signature's URL with --signature URL"
        case let error as FileSystemError where error.code == .notRegularFile:
            "choose another destination with -o PATH"
        case let error as TransportError where error.code == .badURL && error.message.contains("name the destination"):
            "name the destination with -o PATH"
        case let error as TransportError where error.code == .badURL && error.message.contains("signature's URL"):
            "pass the file's URL, and the signature's with --signature URL"
        default:
            nil
        }
    }
}

private let interruptRequested = Atomic<Int>(0)

/// Turns SIGINT and SIGTERM into a cancellation, so partial work is kept.
///
/// A plain `sigaction` handler sets a flag (async-signal-safe) and a task polls it. The signals are
/// unblocked first: a parent may have started us with them blocked (Foundation's Process does).
final class SignalForwarder: Sendable {
    private let poller: Task<Void, Never>

    init(_ handler: @escaping @Sendable () -> Void) {
        var signals = sigset_t()
        sigemptyset(&signals)
        for number in [SIGINT, SIGTERM] {
            sigaddset(&signals, number)
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { _ in interruptRequested.store(1, ordering: .relaxed) }
            sigemptyset(&action.sa_mask)
            sigaction(number, &action, nil)
        }
        pthread_sigmask(SIG_UNBLOCK, &signals, nil)
        poller = Task {
            while !Task.isCancelled {
                if interruptRequested.load(ordering: .relaxed) != 0 {
                    handler()
                    return
                }
                try? await Task.sleep(nanoseconds: 50_000_000)
            }
        }
    }

    func stop() { poller.cancel() }
}

/// A one-line progress display on stderr, redrawn at most ten times a second.
final class ProgressBar: SyncProgressObserver, MirrorProgressObserver, Sendable {
    private struct State {
        var lastDraw = Date.distantPast
        var drawn = false
    }
    private let state = Mutex(State())

    /// Each phase draws its own line; nothing to do when one begins.
    func phase(_ name: String) {}

    func scanned(_ bytes: Int, of total: Int) {
        draw("scanning local files: \(formatBytes(bytes))")
    }

    func downloaded(_ bytes: Int, of total: Int) {
        let percent = total > 0 ? 100 * Double(bytes) / Double(total) : 100
        let width = 30
        let filled = min(width, Int(Double(width) * percent / 100))
        draw("downloading [" + String(repeating: "#", count: filled)
            + String(repeating: ".", count: width - filled) + "] "
             + String(repeating: " ", count: max(0, 5 - formatFixed(percent, places: 1).count))
                 + formatFixed(percent, places: 1)
             + " % \(formatBytes(bytes)) of \(formatBytes(total))")
    }

    func mirrored(files: Int, of total: Int, bytes: Int) {
        let width = 30
        let filled = total == 0 ? width : min(width, width * files / total)
        draw("mirroring [" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            + "] \(files) of \(total) files, \(formatBytes(bytes)) downloaded")
    }

    private func draw(_ text: String) {
        state.withLock { state in
            let now = Date()
            guard now.timeIntervalSince(state.lastDraw) >= 0.1 else { return }
            state.lastDraw = now
            state.drawn = true
            writeStandardError("\r\u{1B}[K" + text)
        }
    }

    func finish() {
        state.withLock { state in
            if state.drawn { writeStandardError("\r\u{1B}[K") }
        }
    }
}
