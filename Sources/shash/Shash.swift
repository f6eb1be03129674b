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
import Logging
import SliceSync

/// `shash`: writes and checks `.slicesync` signatures.
struct Shash: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shash",
        abstract: "Write .slicesync signatures so clients can download only what changed.",
        discussion: """
            For every regular file under each PATH, writes ROOT/.slicesync/REL.slicesync, where ROOT is PATH \
            when it is a directory and its parent otherwise. Up-to-date signatures are skipped (a signature is \
            current when its modification time equals the file's and it was written with the same format and \
            sizes); signatures whose file is gone are removed. Signatures are written atomically.

            With --service (or -service), shash signs DIR like a one-shot run and then keeps watching it \
            with inotify until SIGINT or SIGTERM: new, changed and moved-in files are signed once they \
            were closed and stayed unchanged for --settle seconds; renamed files and directories have \
            their signatures moved; deleted or moved-away files and directories have them removed. A full \
            rescan runs when the kernel's event queue overflows and every --rescan minutes, which also \
            covers network file systems that send no events. It logs one line per signature written or \
            removed (-q: errors only).

            Examples:
              shash /srv/mirror                  sign a whole tree (format 2)
              shash --service /srv/mirror        sign it and keep it signed as it changes
              shash --format 1 --slice 1M a.iso  the original slicesync format
              shash --verify /srv/mirror/a.iso   check a file against its signature
              shash --zsync /srv/mirror          also write zsync control files (.slicesync/REL.zsync)

            Exit status: 0 success (for --service: stopped by a signal), 2 bad usage, 3 malformed signature,
            5 a file differs from its signature, 6 a file could not be read or written.
            """
    )

    @Option(help: "Signature format: 1 (the original slicesync format) or 2 (hierarchical).")
    var format: Int = 2

    @Option(help: ArgumentHelp("Slice size, with an optional K, M or G suffix (default: 1M for format 1, 256K for " +
        "format 2).", valueName: "size"))
    var slice: ByteSize?

    @Option(help: ArgumentHelp("Block size of format 2, with an optional K or M suffix (default: 2K; 512 for tar " +
        "archives).", valueName: "size"))
    var block: ByteSize?

    @Flag(inversion: .prefixedNo, help: "Descend into subdirectories.")
    var recursive = true

    @Flag(help: "Rewrite signatures even when they are up to date.")
    var force = false

    @Flag(help: ArgumentHelp("Also write a zsync control file beside each signature (.slicesync/REL.zsync), in the "
        + "same read pass, as zsyncmake 0.6.2 would write it, with a relative URL: to the file; zsync's own clients "
        + "(and slicesync) can use it."))
    var zsync = false

    @Flag(help: ArgumentHelp("Do not keep the slice digests of the files signed in the cache slicesync reads "
        + "($XDG_CACHE_HOME/slicesync): with them, slicesync updates a file signed here without reading it first."))
    var noCache = false

    @Flag(name: .customLong("sha256"), help: ArgumentHelp("Also write the plain SHA-256 of each file into its "
        + "format 2 signature (the tree hash proves the file without it; this one-core pass makes signing about "
        + "1.5x slower). --zsync implies it."))
    var plainSHA256 = false

    @Flag(help: "Check each FILE against its signature instead of writing signatures.")
    var verify = false

    @Option(help: ArgumentHelp("With --verify: the signature to check against (default: found in .slicesync/ of the " +
        "file's directory or an ancestor).", valueName: "path"))
    var signature: String?

    @Option(name: [.short, .long], help: "Threads for hashing and files hashed at once (default: the number of cores).")
    var jobs: Int?

    @Flag(name: [.short, .long], help: "Print only errors.")
    var quiet = false

    @Flag(name: [.short, .long], help: "Print a line for every signature written or removed.")
    var verbose = false

    @Flag(help: "Print one JSON object with the results on stdout.")
    var json = false

    @Flag(name: [.customLong("service"), .customLong("service", withSingleDash: true)],
        help: "Keep watching DIR and its signatures current until SIGINT or SIGTERM.")
    var service = false

    @Option(help: ArgumentHelp("With --service: seconds a changed file must stay closed and unchanged before it is " +
        "signed.", valueName: "seconds"))
    var settle: Double = 2

    @Option(help: ArgumentHelp("With --service: minutes between full rescans of the tree.", valueName: "minutes"))
    var rescan: Double = 10

    @Argument(help: ArgumentHelp("Files or directories to sign (with --verify: files to check).", valueName: "path"))
    var paths: [String] = []

    func validate() throws {
        guard format == 1 || format == 2 else { throw ValidationError("--format must be 1 or 2, not \(format)") }
        guard !paths.isEmpty else { throw ValidationError("name at least one file or directory") }
        if let jobs, !(1...256).contains(jobs) { throw ValidationError("--jobs must be between 1 and 256") }
        if zsync && verify { throw ValidationError("--zsync does not go with --verify") }
        if plainSHA256 && format == 1 { throw ValidationError("--sha256 applies to format 2 (format 1 has SHA-1)") }
        if signature != nil && !(verify && paths.count == 1) {
            throw ValidationError("--signature goes with --verify and exactly one file")
        }
        if quiet && verbose { throw ValidationError("--quiet and --verbose exclude each other") }
        if service {
            guard paths.count == 1 else { throw ValidationError("--service watches exactly one directory") }
            guard !verify && !json
                && !force else { throw ValidationError("--service does not go with --verify, --json or --force") }
            _ = try serviceTiming(settleSeconds: settle, rescanMinutes: rescan)
        }
    }

    func run() throws {
        if service {
            try runService()
            return
        }
        let logger = TerminalLogHandler.logger(program: "shash", quiet: quiet, verbose: verbose)
        if verify {
            try runVerify(logger: logger)
            return
        }
        let options = try signingOptions()
        let report = TreeSigner(options: options, logger: logger).run(paths: paths)
        if json {
            printLine(jsonLine(report))
        } else if !quiet {
            printLine(summary(report))
        }
        if !report.failures.isEmpty {
            throw CommandFailure(.localIO)
        }
    }

    private func signingOptions() throws -> TreeSigningOptions {
        var parameters: SigningParameters
        do {
            parameters = try SigningParameters(version: format == 1 ? .v1 : .v2, sliceSize: slice?.bytes,
                blockSize: block?.bytes)
        } catch {
            throw CommandFailure(.usage, error.message)
        }
        parameters.plainDigest = plainSHA256
        var options = TreeSigningOptions(parameters: parameters)
        options.recursive = recursive
        options.force = force
        options.writesZsync = zsync
        if !noCache { options.digestCache = SliceDigestCache.standard() }
        if let jobs { options.jobs = jobs }
        return options
    }

    /// `--service`: one line per signature written or removed by default, errors only with -q.
    private func runService() throws {
        let level: Logger.Level = quiet ? .error : (verbose ? .debug : .info)
        let logger = Logger(label: "shash") { _ in TerminalLogHandler(program: "shash", level: level) }
        var options = SignatureServiceOptions(signing: try signingOptions())
        (options.settle, options.rescanInterval) = try serviceTiming(settleSeconds: settle, rescanMinutes: rescan)
        let service = try SignatureService(root: paths[0], options: options, logger: logger)
        let signals = onInterrupt { service.stop() }
        service.run()
        withExtendedLifetime(signals) {}
    }

    private func summary(_ report: TreeSigningReport) -> String {
        let rate = report.bytesPerSecond / 1e6
        let files = "\(report.filesHashed) file\(report.filesHashed == 1 ? "" : "s")"
        var parts = ["signed \(files) (\(formatBytes(report.bytesHashed))"
            + " in \(formatFixed(report.seconds, places: 2)) s, \(formatFixed(rate, places: 0)) MB/s)"]
        parts.append("\(report.filesUpToDate) up to date")
        if report.signaturesRemoved > 0 { parts.append("\(report.signaturesRemoved) orphaned removed") }
        if !report.failures.isEmpty { parts.append("\(report.failures.count) failed") }
        return "shash: " + parts.joined(separator: ", ")
    }

    private func runVerify(logger: Logger) throws {
        let pool = HashingPool(threads: jobs ?? ProcessInfo.processInfo.activeProcessorCount)
        defer { pool.shutdown() }
        let verifier = SignatureVerifier(pool: pool)
        var reports: [VerificationReport] = []
        var worst = ExitStatus.success
        for path in paths {
            guard let signaturePath = signature ?? SignatureVerifier.locateSignature(of: path) else {
                printError("shash",
                    "no signature found for \(path) (looked in .slicesync/ of its directory and of each parent); " +
                        "sign it with 'shash' or pass --signature")
                worst = .signature
                continue
            }
            do {
                let report = try verifier.verify(filePath: path, signaturePath: signaturePath)
                reports.append(report)
                if !json && (!quiet || !report.matches) {
                    if report.matches { printLine(report.summary) } else { writeStandardError(report.summary + "\n") }
                }
                if !report.matches && worst == .success { worst = .verification }
            } catch {
                guard let status = exitStatus(for: error) else { throw error }
                printError("shash", "\(error)")
                worst = status
            }
        }
        if json { printLine(jsonLine(reports)) }
        if worst != .success { throw CommandFailure(worst) }
    }
}
