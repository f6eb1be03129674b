#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Logging
import Synchronization

/// Receives a mirror's progress, for one display for the whole tree; called from any thread.
public protocol MirrorProgressObserver: Sendable {
    /// `files` of the `total` files to fetch or copy are done, and `bytes` were downloaded so far.
    func mirrored(files: Int, of total: Int, bytes: Int)
}

/// What `slicesync URL/` was asked to do.
public struct MirrorOptions: Sendable {
    /// The directory's URL, ending in `/`.
    public var url: String
    /// The local directory; default: the directory's name in the current directory.
    public var destination: String?
    /// Only report what would be done.
    public var dryRun = false
    /// Remove local files the manifest does not list.
    public var delete = false
    /// With `delete`: refuse (and change nothing) when more files than this would go, unless `force`.
    public var maxDelete = 1000
    /// Overwrite and delete files changed locally, and pass the `maxDelete` guard.
    public var force = false
    /// Files rebuilt at once.
    public var parallelFiles = 4
    /// Options each file's sync takes (connections, threads, headers, cache).
    public var file = SyncOptions(url: "")
    /// Local directories laid out like the tree (an older copy, a neighbouring release): the file at the
    /// same path in each is used as an alike file.
    public var alikeDirectories: [String] = []
    /// `--include` and `--exclude` rules: what they leave out is neither fetched nor deleted.
    public var filter = MirrorFilter()
    /// Where progress goes (files done of the files to fetch or copy, bytes downloaded).
    public var progress: MirrorProgressObserver?
    /// With `watch`: whether to listen to the server's change feed. The feed holds a connection for as
    /// long as it runs, so with a single connection the manifest is polled instead.
    public var followsFeed = true
    /// With `watch`: seconds between two checks of the manifest (a conditional GET).
    public var interval: Duration = .seconds(10)

    /// Options for `url` with defaults for the rest.
    public init(url: String) { self.url = url }
}

/// What a mirror run did, for people and for `--json`.
public struct MirrorReport: Sendable, Codable, Equatable {
    /// One file's outcome.
    public struct FileOutcome: Sendable, Codable, Equatable {
        /// Its path below the destination.
        public var path: String
        /// `new`, `changed`, `copied` (content found locally), `unchanged`, `deleted`, `kept` (changed
        /// locally; not touched without --force) or `failed`.
        public var action: String
        /// Bytes received for it (file data and signature).
        public var bytesDownloaded: Int = 0
        /// What went wrong, for `failed` and `kept`.
        public var message: String?

        enum CodingKeys: String, CodingKey {
            case path, action, message
            case bytesDownloaded = "bytes_downloaded"
        }
    }

    /// `updated`, `unchanged`, `dry-run` or `failed` (some files failed; the others are done).
    public var outcome: String
    /// The directory's URL.
    public var url: String
    /// The manifest's URL.
    public var manifestURL: String
    /// The local directory.
    public var destination: String
    public var newFiles = 0
    public var changedFiles = 0
    public var copiedFiles = 0
    public var unchangedFiles = 0
    public var deletedFiles = 0
    public var keptFiles = 0
    public var failedFiles = 0
    /// Bytes of all the files the manifest lists.
    public var totalBytes = 0
    /// Bytes downloaded (or, for a dry run, to download), manifest included.
    public var bytesDownloaded = 0
    /// HTTP requests sent (or, for a dry run, planned for the files' data).
    public var requests = 0
    /// Wall-clock seconds.
    public var seconds = 0.0
    /// Per file, except unchanged ones.
    public var files: [FileOutcome] = []

    enum CodingKeys: String, CodingKey {
        case outcome, url, destination, requests, seconds, files
        case manifestURL = "manifest_url", newFiles = "new_files", changedFiles = "changed_files"
        case copiedFiles = "copied_files", unchangedFiles = "unchanged_files", deletedFiles = "deleted_files"
        case keptFiles = "kept_files", failedFiles = "failed_files", totalBytes = "total_bytes"
        case bytesDownloaded = "bytes_downloaded"
    }
}

/// A problem that stops a mirror before it changes anything.
public struct MirrorError: Error, Sendable, CustomStringConvertible {
    /// The stable code of the failure.
    public enum Code: String, Sendable {
        case notFound = "manifest-not-found"
        case notADirectory = "not-a-directory"
        case deleteRefused = "delete-refused"
        case unsafePath = "unsafe-path"
    }
    public var code: Code
    public var message: String
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { message }
}

/// Mirrors the tree below a URL into a local directory, file by file with the sync engine.
public final class MirrorSession: Sendable {
    let options: MirrorOptions
    let exchange: HTTPExchange
    let logger: Logger
    /// Set to stop between files: no file is started after it, the ones under way finish.
    let stop: CancellationFlag
    /// The manifest as last fetched: its URL and ETag, for conditional checks.
    private let lastManifest = Mutex<(url: String, etag: String?)?>(nil)

    /// Creates a session; nothing happens until `run()` or `watch`.
    public init(options: MirrorOptions, exchange: HTTPExchange, logger: Logger, stop: CancellationFlag = .init()) {
        self.options = options
        self.exchange = exchange
        self.logger = logger
        self.stop = stop
    }

    /// Mirrors, then follows the tree until `stop` is set: through the server's change feed when it has
    /// one (syncserver: each rewrite of the manifest is announced at once), else by checking the
    /// manifest every `options.interval` with a conditional GET; each announcement is confirmed the
    /// same way, and a change mirrors again. Each run's report goes to `completed`; a run that fails
    /// (the server unreachable, say) is reported and retried at the next check.
    public func watch(_ completed: @Sendable (Result<MirrorReport, Error>) -> Void) async throws {
        let listener = FeedListener()
        var listening: Task<Void, Never>?
        defer { listening?.cancel() }
        var due = true
        var acted: String?
        while !stop.isCancelled {
            if due {
                acted = listener.latest.withLock { $0 }
                do {
                    completed(.success(try await run()))
                } catch let error as MirrorError where error.code == .deleteRefused || error.code == .notADirectory {
                    throw error
                } catch {
                    completed(.failure(error))
                    lastManifest.withLock { $0 = nil }
                }
                if listening == nil, options.followsFeed, let manifest = lastManifest.withLock({ $0?.url }),
                   manifest.hasSuffix(TreeManifest.fileName) {
                    let feed = String(manifest.dropLast(TreeManifest.fileName.count)) + ".slicesync-events"
                    let (exchange, headers, logger) = (self.exchange, options.file.headers, self.logger)
                    listening = Task { await listener.run(url: feed, exchange: exchange, headers: headers,
                        logger: logger) }
                }
            }
            // Wait in short steps, so that a stop or an announcement is seen at once.
            let wake = ContinuousClock.now + options.interval
            due = false
            while !stop.isCancelled {
                if let latest = listener.latest.withLock({ $0 }), latest != acted {
                    acted = latest
                    due = try await manifestChanged()
                    if due { break }
                }
                let following = listener.connected.load(ordering: .acquiring)
                if !following && ContinuousClock.now >= wake {
                    due = try await manifestChanged()
                    break
                }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// Whether the manifest changed since it was last fetched (a conditional GET: 304 means no).
    private func manifestChanged() async throws -> Bool {
        guard let last = lastManifest.withLock({ $0 }), let etag = last.etag else { return true }
        var status = 0
        do {
            try await exchange.get(last.url, headers: options.file.headers + [("If-None-Match", etag)],
                head: { head in status = head.status }, body: { _ in })
        } catch {
            logger.warning("checking \(last.url): \(error); trying again in \(options.interval)")
            return false
        }
        return status != 304
    }

    /// Runs the mirror.
    public func run() async throws -> MirrorReport {
        let clock = ContinuousClock.now
        var phases = PhaseTimer(logger: logger)
        let destination = try resolveDestination()
        let kept = KeptManifest.load(from: destination)
        let filter = options.filter
        // The destination is listed on another core while the manifest is fetched and read.
        async let listed = onBlockingPool { () throws -> ([String: LocalEntry], MirrorState) in
            // Excluded local files are left alone: never deleted, never in the way.
            let local = try Self.listing(of: destination).filter { path, entry in
                filter.includes(path, isDirectory: entry == .directory)
            }
            let statePath = Paths.join(destination, MirrorState.fileName)
            let state = MirrorState.parse((try? SystemFile.openForReading(statePath).readAll(limit: 1 << 30)) ?? [])
            return (local, state)
        }
        let (manifestURL, root, subpath, manifest, fetched) = try await loadManifest(kept: kept)
        phases.done("fetched and read the manifest")
        let entries = try Self.entries(of: manifest, below: subpath, url: options.url).filter { entry in
            filter.includes(entry.path, isDirectory: entry.kind == .directory)
        }
        var report = MirrorReport(outcome: "updated", url: options.url, manifestURL: manifestURL,
            destination: destination)
        report.bytesDownloaded = fetched.received
        report.requests = fetched.requests
        report.totalBytes = entries.reduce(0) { total, entry in
            if case .file(let size, _, _, _) = entry.kind { total + size } else { total }
        }
        if !options.dryRun {
            try FileSystem.createDirectories(destination)
            if fetched.received > 0 || kept?.url != manifestURL {
                KeptManifest(url: manifestURL, etag: fetched.etag ?? "", bytes: fetched.bytes).store(in: destination)
            }
        }
        let (local, state) = try await listed
        phases.done("listed \(local.count) local entries")
        let plan = MirrorPlan(entries: entries, local: local, state: state, force: options.force)
        phases.done("planned")
        if options.delete {
            if entries.isEmpty {
                throw MirrorError(.deleteRefused, "the manifest lists nothing under \(options.url); --delete would "
                    + "empty \(destination), so nothing was changed")
            }
            let count = plan.deletions.count + plan.directoriesInTheWay.count
            if count > options.maxDelete && !options.force {
                throw MirrorError(.deleteRefused, "--delete would remove \(count) files from \(destination), more "
                    + "than --max-delete \(options.maxDelete); nothing was changed (raise --max-delete, or --force)")
            }
        }
        let fileBase = root + (subpath.isEmpty ? "" : RequestPath.encode(subpath) + "/")
        var runner = MirrorRunner(options: options, exchange: exchange, logger: logger, destination: destination,
            fileBase: fileBase, state: state, stateAsRead: state, stop: stop)
        try await runner.apply(plan, local: local, report: &report)
        phases.done("applied the plan")
        report.seconds = (ContinuousClock.now - clock).inSeconds
        let changed = report.newFiles + report.changedFiles + report.copiedFiles + report.deletedFiles
        if options.dryRun {
            report.outcome = "dry-run"
        } else if report.failedFiles > 0 {
            report.outcome = "failed"
        } else if changed == 0 {
            report.outcome = "unchanged"
        }
        return report
    }

    /// The manifest of the tree that holds the URL's directory: its URL, the tree's root URL, the
    /// directory's path below the root, the manifest and the bytes it took.
    private func loadManifest(kept: KeptManifest?) async throws
        -> (String, String, String, TreeManifest, fetched: ManifestFetch.Result) {
        var tried: [String] = []
        var denied = false
        for candidate in try SignatureLocator.manifestCandidates(forDirectory: options.url) {
            tried.append(candidate.manifest)
            let fetch = ManifestFetch(url: candidate.manifest, exchange: exchange, headers: options.file.headers,
                                      kept: kept, jobs: options.file.jobs, logger: logger)
            var missing: Int?
            guard let fetched = try await fetch.run(missingStatus: &missing) else {
                denied = denied || missing == 403
                continue
            }
            let manifest = fetched.manifest
            lastManifest.withLock { $0 = (fetched.finalURL, fetched.etag) }
            logger.info("manifest: \(candidate.manifest) (\(manifest.entries.count) entries)")
            return (candidate.manifest, candidate.root, candidate.subpath, manifest, fetched)
        }
        throw MirrorError(.notFound, "no tree manifest found for \(options.url); looked at:\n  "
            + tried.joined(separator: "\n  ") + "\nSign the published tree with a current shash (or serve it "
            + "with syncserver), which writes .slicesync/\(TreeManifest.fileName)."
            + (denied ? "\nSome answered 403 (access denied): for a private bucket, use s3://BUCKET/PREFIX/ with "
                + "credentials." : ""))
    }

    /// The entries below `subpath`, with paths relative to it.
    static func entries(of manifest: TreeManifest, below subpath: String, url: String) throws -> [TreeManifest.Entry] {
        guard !subpath.isEmpty else { return manifest.entries }
        guard manifest.entries.contains(where: { entry in
            if case .directory = entry.kind { return entry.path == subpath }
            return false
        }) else {
            throw MirrorError(.notADirectory, "\(url) is not a directory of the published tree")
        }
        let prefix = subpath + "/"
        return manifest.entries.compactMap { entry in
            guard entry.path.hasPrefix(prefix) else { return nil }
            var rebased = entry
            rebased.path = String(entry.path.dropFirst(prefix.count))
            return rebased
        }
    }

    private func resolveDestination() throws -> String {
        if let given = options.destination { return Paths.trimTrailingSlashes(given) }
        do {
            // The URL's last directory name (its path is split into non-empty names, query apart).
            return try SignatureLocator.fileName(of: options.url)
        } catch {
            throw TransportError(.badURL, "cannot take a directory name from \(options.url); name the destination "
                + "with -o")
        }
    }

    /// What the destination holds, by path below it; links are not followed, the tools' own files and
    /// names that cannot be published are left out.
    static func listing(of destination: String) throws(FileSystemError) -> [String: LocalEntry] {
        var result: [String: LocalEntry] = [:]
        guard let (stamp, _) = try FileSystem.linkStamp(destination) else { return result }
        guard (try FileSystem.stamp(destination))?.isDirectory == true || stamp.isDirectory else {
            throw FileSystemError(.invalidPath, path: destination, message: "\(destination) exists and is not a "
                + "directory; choose another destination with -o")
        }
        func walk(_ relative: String) throws(FileSystemError) {
            for entry in try FileSystem.list(Paths.join(destination, relative))
                where !TreeNaming.isReserved(entry.name) && TreeNaming.isSignable(entry.name) {
                let path = relative.isEmpty ? entry.name : relative + "/" + entry.name
                guard let (stamp, isLink) = try FileSystem.linkStamp(Paths.join(destination, path)) else { continue }
                if isLink {
                    result[path] = .link(target: FileSystem.readLink(Paths.join(destination, path)) ?? "")
                } else if stamp.isDirectory {
                    result[path] = .directory
                    try walk(path)
                } else if stamp.isRegularFile {
                    result[path] = .file(stamp)
                } else {
                    result[path] = .other
                }
            }
        }
        try walk("")
        return result
    }
}

