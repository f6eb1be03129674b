import ArgumentParser
import AWSSigning
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
import SliceSyncHTTP
import Synchronization

/// Where S3 is and who we are there: the AWS CLI's options, over its environment variables and files.
struct S3Options: ParsableArguments {
    @Option(help: ArgumentHelp("An S3-compatible endpoint, such as http://127.0.0.1:9000 (default: "
        + "AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the profile's endpoint_url, else AWS).", valueName: "url"))
    var endpointURL: String?

    @Option(help: ArgumentHelp("The region (default: AWS_REGION, AWS_DEFAULT_REGION, the profile's region, else "
        + "us-east-1).", valueName: "region"))
    var region: String?

    @Option(help: ArgumentHelp("The profile in ~/.aws/credentials and ~/.aws/config (default: AWS_PROFILE, else "
        + "default).", valueName: "name"))
    var profile: String?

    @Option(help: ArgumentHelp("path (endpoint/BUCKET/KEY), virtual (BUCKET.endpoint/KEY) or auto (virtual on "
        + "AWS, path elsewhere; the default, or the profile's s3 addressing_style).", valueName: "style"))
    var addressingStyle: String?

    @Flag(help: "Send requests unsigned, as to a public bucket, even when credentials are configured.")
    var noSignRequest = false

    func validate() throws {
        if let addressingStyle, AWSConfiguration.AddressingStyle(rawValue: addressingStyle) == nil {
            throw ValidationError("--addressing-style must be path, virtual or auto")
        }
        if let endpointURL, !SignatureLocator.isHTTPURL(endpointURL) {
            throw ValidationError("--endpoint-url must be an http:// or https:// URL")
        }
    }

    /// The configuration from the environment and files, with these options on top.
    func configuration() throws -> AWSConfiguration {
        var environment = ProcessInfo.processInfo.environment
        if let profile {
            environment["AWS_PROFILE"] = profile
            // A named profile wins over keys in the environment, as with the AWS CLI's --profile.
            for name in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
                environment[name] = nil
            }
        }
        var configuration: AWSConfiguration
        do {
            configuration = try AWSConfiguration.load(environment: environment)
        } catch {
            throw CommandFailure(.usage, error.message)
        }
        if let region { configuration.region = region }
        if let endpointURL { configuration.endpoint = endpointURL }
        if let style = addressingStyle.flatMap(AWSConfiguration.AddressingStyle.init(rawValue:)) {
            configuration.addressingStyle = style
        }
        if noSignRequest {
            configuration.credentials = nil
            configuration.credentialsSource = nil
        }
        return configuration
    }
}

/// How a command reports: progress, JSON, quiet or verbose.
struct OutputOptions: ParsableArguments {
    @Flag(inversion: .prefixedNo, help: "Show a progress line (default: when stderr is a terminal).")
    var progress: Bool?

    @Flag(help: "Print one JSON object with the results on stdout.")
    var json = false

    @Flag(name: [.short, .long], help: "Print only errors.")
    var quiet = false

    @Flag(name: [.short, .long], help: "Explain what happens.")
    var verbose = false

    func validate() throws {
        if quiet && verbose { throw ValidationError("--quiet and --verbose exclude each other") }
    }

    /// Whether to draw a progress line: as asked, else when stderr is a terminal.
    var showsProgress: Bool { progress ?? (isatty(STDERR_FILENO) == 1 && !quiet) }
}

/// Which TLS certificates to trust.
struct TLSOptions: ParsableArguments {
    @Flag(help: "Accept invalid TLS certificates (TLS errors fail closed otherwise).")
    var insecure = false

    @Option(help: ArgumentHelp("Trust the certificate authorities in this PEM file instead of the system's (as curl's "
        + "--cacert); SSL_CERT_FILE does the same.", valueName: "file"))
    var cacert: String?

    /// An HTTP client with these settings.
    func exchange(connections: Int, rateLimiter: RateLimiter? = nil) throws -> AsyncHTTPExchange {
        try AsyncHTTPExchange(insecure: insecure, trustedCertificates: cacert, connections: connections,
                              rateLimiter: rateLimiter)
    }
}

/// `slicesync push`: publishes a file or a tree to S3, uploading only what changed.
struct PushCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slicesync push",
        abstract: "Publish a file or a tree to S3, uploading only what changed.",
        discussion: """
            Fetches the old object's signature, finds which of its ranges reappear in the new local file at \
            any offset, and assembles the new object on S3 from server-side copies of those ranges \
            (UploadPartCopy) and uploads of the rest, within S3's rules (parts of 5 MiB to 5 GiB but the \
            last, at most 10,000). Files up to --multipart-threshold go up in one PUT.

            Every copy is guarded by the old object's ETag (x-amz-copy-source-if-match), the completion by \
            If-Match where the endpoint supports it: if the object changes during the push, nothing is \
            published. Any failure aborts the multipart upload; an interruption (Ctrl-C, a broken \
            connection, a kill) keeps it, and running the same push again continues it. The new signature is \
            uploaded after the object; for a tree, the manifest after every file, then --delete removes the \
            objects the tree no longer has.

            A tree (DIR to s3://BUCKET/PREFIX/) is signed locally first, as shash does (DIR/.slicesync/), \
            then only new and changed files are pushed; a moved or copied file is copied on the server.

            Credentials and settings are read as the AWS CLI reads them: AWS_ACCESS_KEY_ID, \
            AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_PROFILE with ~/.aws/credentials and ~/.aws/config, \
            AWS_REGION, AWS_ENDPOINT_URL.

            Examples:
              slicesync push disk.img s3://releases/images/disk.img
              slicesync push -n ./dist/ s3://releases/v2/
              slicesync push --delete --endpoint-url http://127.0.0.1:9000 site/ s3://bucket/site/

            Exit status: 0 success, 2 bad usage or --delete refused, 4 network failure, access denied or the \
            object changed during the push, 6 local file failure, 130 interrupted.
            """
    )

    @Argument(help: "The local file or directory.")
    var source: String

    @Argument(help: ArgumentHelp("s3://BUCKET/KEY for a file (a key ending in / takes the file's name), "
        + "s3://BUCKET/PREFIX/ for a directory."))
    var destination: String

    @OptionGroup var s3: S3Options

    @Flag(name: [.customShort("n"), .long],
          help: "Work out and print what would be uploaded and copied; change nothing.")
    var dryRun = false

    @Flag(help: ArgumentHelp("With a directory: remove objects below the prefix that the directory does not have "
        + "(after the new manifest is up)."))
    var delete = false

    @Option(help: ArgumentHelp("With --delete: refuse, and change nothing, when more objects than this would go.",
        valueName: "n"))
    var maxDelete = 1000

    @Flag(help: "With --delete: pass --max-delete.")
    var force = false

    @Option(name: [.short, .long], help: "Requests at once (parts, files).")
    var jobs = 8

    @Option(help: ArgumentHelp("Files up to this size go up in one PUT (default 8M, as the AWS CLI).",
        valueName: "size"))
    var multipartThreshold: ByteSize?

    @Option(help: ArgumentHelp("The objects' Content-Type.", valueName: "type"))
    var contentType = "application/octet-stream"

    @OptionGroup var reporting: OutputOptions

    @OptionGroup var tls: TLSOptions

    private var quiet: Bool { reporting.quiet }
    private var json: Bool { reporting.json }

    func validate() throws {
        guard (1...64).contains(jobs) else { throw ValidationError("--jobs must be between 1 and 64") }
        guard S3Location.isS3URL(destination) else {
            throw ValidationError("the destination must be an s3://BUCKET/KEY URL")
        }
        guard maxDelete >= 0 else { throw ValidationError("--max-delete must be 0 or more") }
        let isDirectory = (try? FileSystem.stamp(source))??.isDirectory == true
        if (delete || force) && !isDirectory {
            throw ValidationError("--delete and --force apply to a directory")
        }
        if let multipartThreshold, multipartThreshold.bytes < 5 << 20 || multipartThreshold.bytes > 5 << 30 {
            throw ValidationError("--multipart-threshold must be between 5M and 5G")
        }
    }

    func run() async throws {
        let logger = TerminalLogHandler.logger(program: "slicesync push", quiet: quiet, verbose: reporting.verbose)
        let location: S3Location
        do {
            location = try S3Location(parsing: destination)
        } catch {
            throw CommandFailure(.usage, error.message)
        }
        let configuration = try s3.configuration()
        var options = PushOptions()
        options.dryRun = dryRun
        options.jobs = jobs
        options.threads = ProcessInfo.processInfo.activeProcessorCount
        options.delete = delete
        options.maxDelete = maxDelete
        options.force = force
        options.contentType = contentType
        if let multipartThreshold { options.multipartThreshold = multipartThreshold.bytes }
        let exchange = try tls.exchange(connections: jobs)
        let client = S3Client(configuration: configuration, requester: exchange, logger: logger)
        if configuration.credentials == nil && !s3.noSignRequest {
            let text = "no AWS credentials found: requests go unsigned (set AWS_ACCESS_KEY_ID and "
                + "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)"
            logger.warning("\(text)")
        }
        let bar = reporting.showsProgress && !json ? PushProgressBar() : nil
        let session = PushSession(source: source, destination: location, options: options, client: client,
                                  exchange: exchange, logger: logger, observer: bar)
        let task = Task { try await session.run() }
        let signals = SignalForwarder { task.cancel() }
        defer { signals.stop() }
        let report: PushReport
        do {
            report = try await task.value
            bar?.finish()
            await exchange.shutdown()
        } catch {
            bar?.finish()
            await exchange.shutdown()
            throw error
        }
        print(report)
    }

    private func print(_ report: PushReport) {
        if json {
            printLine(jsonLine(report))
            return
        }
        let saved = report.totalBytes == 0 ? 100
            : 100 * Double(report.totalBytes - report.uploadedBytes) / Double(report.totalBytes)
        let ranges = "\(report.copyParts) range\(report.copyParts == 1 ? "" : "s") copied on the server, "
            + "\(report.uploadParts) part\(report.uploadParts == 1 ? "" : "s") uploaded"
        let files = report.files.count > 1 || report.unchangedFiles + report.changedFiles != 1
            ? " (\(report.changedFiles) files changed, \(report.unchangedFiles) unchanged"
                + (report.deletedObjects > 0 ? ", \(report.deletedObjects) objects \(dryRun ? "to delete" : "deleted")"
                    : "") + ")"
            : ""
        let amounts = "\(formatBytes(report.uploadedBytes)) of \(formatBytes(report.totalBytes)), "
            + formatFixed(saved, places: saved > 99 && saved < 100 ? 2 : 1) + " % saved: " + ranges + files
        if dryRun {
            printLine("would upload " + amounts)
        } else if report.outcome == "unchanged" {
            if !quiet { writeStandardError("slicesync push: \(report.destination) is already up to date\n") }
        } else if !quiet {
            writeStandardError("slicesync push: \(report.destination): uploaded " + amounts + "; "
                + "\(report.requests) requests, " + formatFixed(report.seconds, places: 2) + " s\n")
        }
    }
}

/// A one-line progress display for a push.
final class PushProgressBar: PushProgressObserver, Sendable {
    private let last = Mutex<(time: ContinuousClock.Instant?, drawn: Bool)>((nil, false))

    func pushed(_ bytes: Int, of total: Int) {
        last.withLock { state in
            let now = ContinuousClock.now
            if let time = state.time, now - time < .milliseconds(100) { return }
            state = (now, true)
            let percent = total > 0 ? 100 * Double(bytes) / Double(total) : 100
            writeStandardError("\r\u{1B}[Kpushing: \(formatBytes(bytes)) of \(formatBytes(total)) ("
                + formatFixed(percent, places: 1) + " %)")
        }
    }

    func finish() {
        last.withLock { if $0.drawn { writeStandardError("\r\u{1B}[K") } }
    }
}
