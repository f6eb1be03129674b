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

/// What `slicesync URL` was asked to do.
public struct SyncOptions: Sendable {
    /// The file's URL (or a signature's URL ending in `.slicesync`).
    public var url: String
    /// Where the signature is, when not in the usual place.
    public var signatureURL: String?
    /// What relative `URL:` values of a zsync control file resolve against, instead of the control
    /// file's own URL (needed for a control file read from a local path).
    public var baseURL: String?
    /// The destination path; default: the URL's last path component in the current directory.
    public var destination: String?
    /// Local files that probably share content with the new version.
    public var alikes: [String] = []
    /// A slice size hint, as the original accepted; reported when it differs from the signature's.
    public var sliceHint: Int?
    /// Only report what would be downloaded.
    public var dryRun = false
    /// Parallel requests.
    public var jobs = 4
    /// Threads that scan local files.
    public var threads = ProcessInfo.processInfo.activeProcessorCount
    /// Extra request headers (for example an authorization).
    public var headers: [(String, String)] = []
    /// Update the destination in place (journaled) instead of replacing it with a new copy. Chosen
    /// automatically when the file system has no room for a second copy.
    public var inPlace = false
    /// Check every byte of the result, even where the cache vouches for unchanged slices.
    public var verifyAll = false
    /// The cache of local files' slice digests; nil: none.
    public var cache: SliceDigestCache? = SliceDigestCache.standard()

    /// Options for `url` with defaults for the rest.
    public init(url: String) { self.url = url }
}

/// What a sync did, for people and for `--json`.
public struct SyncReport: Sendable, Codable, Equatable {
    /// `updated`, `unchanged` or `dry-run`.
    public var outcome: String
    /// The file's URL (after redirects).
    public var url: String
    /// The signature's URL.
    public var signatureURL: String
    /// The destination path.
    public var destination: String
    /// The signature's format: `slicesync` or `zsync`.
    public var signatureFormat: String
    /// The signature's format version (0 for a zsync control file).
    public var formatVersion: Int
    /// The file's length.
    public var length: Int
    /// Bytes taken from local files.
    public var bytesReused: Int
    /// Bytes of the file that had to come from the server.
    public var bytesFromServer: Int
    /// Bytes received in all (file data, signature and HTTP framing of bodies).
    public var bytesDownloaded: Int
    /// Bytes of signature received (header, coarse table, fine tables).
    public var signatureBytes: Int
    /// HTTP requests sent.
    public var requests: Int
    /// Wall-clock seconds.
    public var seconds: Double
    /// The whole-file hash, `sha256:…` or `sha1:…`.
    public var hash: String
    /// Whether the file was downloaded whole (no alike data, or ranges unsupported or not worth it).
    public var fullDownload: Bool
    /// Slices fetched again after the whole-file check failed.
    public var repairedSlices: Int
    /// The local files that were scanned.
    public var alikeFiles: [String]
    /// Requests planned for the file's data (what a dry run would send).
    public var dataRequestsPlanned: Int
    /// How the destination is (or would be) updated: `replace` (a new copy renamed over it) or
    /// `in-place` (journaled writes of the changed ranges only).
    public var update: String = "replace"
    /// The slice digest cache for the destination: `hit`, `miss` or `off`.
    public var cache: String = "off"
    /// Bytes written (or, for a dry run, to be written) to disk, journal included.
    public var bytesWritten: Int = 0

    enum CodingKeys: String, CodingKey {
        case outcome, url, destination, length, requests, seconds, hash
        case signatureURL = "signature_url", formatVersion = "format_version", signatureFormat = "signature_format"
        case bytesReused = "bytes_reused", bytesFromServer = "bytes_from_server", bytesDownloaded = "bytes_downloaded"
        case signatureBytes = "signature_bytes", fullDownload = "full_download", repairedSlices = "repaired_slices"
        case alikeFiles = "alike_files", dataRequestsPlanned = "data_requests_planned"
        case update, cache, bytesWritten = "bytes_written"
    }
}

/// Receives progress as a sync runs; called from any thread.
public protocol SyncProgressObserver: Sendable {
    /// A new phase began: `signature`, `scanning`, `downloading`, `verifying`.
    func phase(_ name: String)
    /// Bytes of local files scanned so far (over all passes); `total` is 0 when it is not known ahead.
    func scanned(_ bytes: Int, of total: Int)
    /// Bytes of the file downloaded so far, out of `total`.
    func downloaded(_ bytes: Int, of total: Int)
}

/// Rebuilds one file from local alike files plus HTTP Range requests: the `slicesync` client.
public final class SyncSession: Sendable, LocatingContext {
    let options: SyncOptions
    let exchange: HTTPExchange
    let logger: Logger
    let observer: SyncProgressObserver?
    let scanProgress = ScanProgress()
    /// The mirrors of a zsync control file (its `URL:` lines): the one in use, whether another one is
    /// left to try, and those that failed.
    private let mirrors = Mutex<(current: String?, anotherLeft: Bool, failed: Set<String>)>((nil, false, []))

    /// Creates a session; nothing happens until `run()`.
    public init(options: SyncOptions, exchange: HTTPExchange, logger: Logger, observer: SyncProgressObserver? = nil) {
        self.options = options
        self.exchange = exchange
        self.logger = logger
        self.observer = observer
    }

    /// Asks a running session to stop; it keeps its partial work.
    public func cancel() { scanProgress.cancel() }

    /// Runs the sync. When the file changes on the server mid-way, starts over once.
    public func run() async throws -> SyncReport {
        var startedOver = false
        while true {
            do {
                return try await runOnce()
            } catch let error as TransportError where error.code == .changed && !startedOver {
                logger.warning("\(error.message); starting over from the signature")
                startedOver = true
            } catch let error as TransportError where Self.mirrorMayHelp(error) {
                // A control file's other URLs are mirrors: the work done so far is kept and reused.
                let next = mirrors.withLock { mirrors -> String? in
                    guard mirrors.anotherLeft, let current = mirrors.current else { return nil }
                    mirrors.failed.insert(current)
                    return current
                }
                guard let failed = next else { throw error }
                logger.warning("\(failed): \(error.message); trying the control file's next URL")
            }
        }
    }

    /// Failures of the file's server that another mirror may not have.
    private static func mirrorMayHelp(_ error: TransportError) -> Bool {
        switch error.code {
        case .unreachable, .connection, .timeout, .tls, .redirect: true
        case .status: true
        default: false
        }
    }

    // MARK: - One attempt

    private func runOnce() async throws -> SyncReport {
        let clock = ContinuousClock.now
        mirrors.withLock { $0.current = nil }
        observer?.phase("signature")
        var phases = PhaseTimer(logger: logger)
        let (fileURL, signature) = try await loadSignature()
        phases.done("fetched the signature")
        if let hint = options.sliceHint, hint != signature.sliceSize {
            let own = "the signature's own slice size, \(signature.sliceSize) bytes"
            logger.warning("a slice size of \(hint) is ignored: matching uses \(own)")
        }
        let destination = try resolveDestination(fileURL: fileURL, name: signature.zsync?.filename)
        // An interrupted in-place update is finished first: until it is, the destination is a mix.
        if options.dryRun {
            if (try? FileSystem.stamp(UpdateJournal.path(of: destination))) != nil {
                logger.warning("\(destination) has an interrupted in-place update; the next run finishes it first")
            }
        } else if let note = try UpdateJournal.recover(destination, lock: Self.lockForUpdate) {
            logger.warning("\(note)")
        }
        let remote = RemoteFile(url: fileURL, exchange: exchange, headers: options.headers, logger: logger)
        let length = signature.length

        // Local files: the ones given, the destination itself and a failed run's kept work, scanned;
        // the outputs of interrupted or failed runs are also probed where their pieces belong.
        let directory = Paths.parent(of: destination)
        let name = Paths.basename(destination)
        let leftovers = ((try? FileSystem.list(directory)) ?? [])
            .filter { $0.name.hasPrefix("." + name + TreeNaming.temporaryMarker) }
            .map { Paths.join(directory, $0.name) }
        let partial = OutputFile.partialPath(of: destination)
        let matcher = Matcher(paths: localPaths(destination: destination) + [partial], probed: leftovers + [partial],
                              threads: options.threads, progress: scanProgress, firstFileFirst: true, logger: logger)

        // Find what we have.
        observer?.phase("scanning")
        let destinationIndex = matcher.alikes.firstIndex { $0.path == destination && $0.scanned }
        // The destination's stamp now: an in-place update later checks nothing changed it since.
        let destinationStamp = destinationIndex.flatMap { try? matcher.alikes[$0].file.stamp() }
        var cached = cachedDigests(signature, stamp: destinationStamp)
        if cached != nil { logger.info("the slice digests of \(destination) are in the cache: it is not read") }
        let cacheState = options.cache == nil || signature.v2?.treeHash == nil ? "off"
            : (cached == nil ? "miss" : "hit")
        if cached == nil, let index = destinationIndex, let stamp = destinationStamp,
           matcher.alikes.filter(\.scanned).count == 1 {
            cached = try await digestsInPlace(signature, alike: matcher.alikes[index], stamp: stamp)
        }
        let known = cached.flatMap { digests in
            destinationIndex.map { KnownSlices(file: $0, length: matcher.alikes[$0].length, digests: digests,
                sliceSize: signature.sliceSize) }
        }
        let found = try await SyncPlan.find(signature, matcher: matcher, context: self, known: known)
        phases.done("matched local files (\(formatBytes(found.reusedBytes)) found)")
        try Task.checkCancellation()
        if scanProgress.isCancelled { throw CancellationError() }
        var plan = SyncPlan(map: found, length: length, maxRanges: remote.maxRanges,
            unit: signature.downloadUnit(found), wholeWhenLittleShared: signature.zsync == nil,
            maxRequestBytes: signature.maxRequestBytes)

        func report(_ outcome: String, hash: String, repaired: Int = 0, update: String = "replace",
                    written: Int = 0) -> SyncReport {
            let elapsed = ContinuousClock.now - clock
            var result = SyncReport(
                outcome: outcome, url: remote.url, signatureURL: signature.remote.url, destination: destination,
                signatureFormat: signature.formatName, formatVersion: signature.formatVersion, length: length,
                bytesReused: plan.reusedBytes,
                bytesFromServer: plan.bytesFromServer(length: length),
                bytesDownloaded: remote.bytesReceived + signature.remote.bytesReceived,
                signatureBytes: signature.remote.bytesReceived, requests: remote.requests + signature.remote.requests,
                seconds: elapsed.inSeconds,
                hash: signature.hashLabel, fullDownload: plan.fullDownload, repairedSlices: repaired,
                alikeFiles: matcher.alikes.map(\.path), dataRequestsPlanned: plan.dataRequests)
            result.update = update
            result.cache = cacheState
            result.bytesWritten = written
            return result
        }

        // Already there: the destination holds every piece in place.
        if plan.missingBytes == 0, plan.map.isIdentity(fileIndex: destinationIndex, length: length),
           let index = destinationIndex, matcher.alikes[index].length == length {
            if options.dryRun { return report("dry-run", hash: signature.hashLabel) }
            observer?.phase("verifying")
            if try await isCurrent(matcher.alikes[index], signature: signature, cached: cached) {
                cleanUp(leftovers + [OutputFile.partialPath(of: destination)], except: destination)
                return report("unchanged", hash: signature.hashLabel)
            }
        }

        // In place: asked for, or the only way when a second copy does not fit.
        if let index = destinationIndex, let inPlace = try decideInPlace(destination: destination, length: length) {
            let alike = matcher.alikes[index]
            let changes = try await runBlocking {
                try InPlacePlan(map: found, destination: index, destinationFile: alike.file,
                    destinationLength: alike.length, extents: alike.extents)
            }
            if options.dryRun {
                return report("dry-run", hash: signature.hashLabel, update: "in-place",
                    written: changes.bytesToWrite)
            }
            if inPlace == .forLackOfRoom {
                let free = Self.lacksRoomForCopy(of: length, in: Paths.parent(of: destination)).free
                // The journal's data plus its trailer and a little slack; a write that still fails
                // says so (nothing of the destination changes before the journal is complete).
                guard free > changes.changedBytes + changes.changedBytes / 64 + (1 << 20) else {
                    throw FileSystemError(.noSpace, path: destination, message: "\(destination) cannot be updated: "
                        + "\(formatBytes(free)) are free, and even an in-place update needs room for its journal "
                        + "(\(formatBytes(changes.changedBytes))); free some space and run again")
                }
            }
            let inputs = InPlaceInputs(destination: destination, alike: alike, stamp: destinationStamp, index: index,
                plan: changes, cached: options.verifyAll ? nil : cached)
            let outcome = try await updateInPlace(inputs, plan: &plan, signature: signature, remote: remote,
                matcher: matcher)
            phases.done("updated \(destination) in place")
            remember(destination, signature: signature, digests: outcome.sliceDigests)
            cleanUp(leftovers + [OutputFile.partialPath(of: destination)], except: destination)
            return report("updated", hash: signature.hashLabel, repaired: outcome.repaired, update: "in-place",
                written: outcome.written)
        }
        if options.dryRun { return report("dry-run", hash: signature.hashLabel, written: length) }

        let output = try OutputFile(destination: destination, length: length)
        var assembled = false
        do {
            observer?.phase("downloading")
            let digest: [UInt8]
            let knownBad: [Int]?
            let sliceDigests: [UInt8]?
            if let assembledDigest = try await downloadAndAssemble(&plan, remote: remote, output: output,
                signature: signature, sources: matcher.alikes.map(\.file)) {
                digest = assembledDigest.digest
                sliceDigests = assembledDigest.sliceDigests
                knownBad = assembledDigest.sliceDigests.map(signature.badSlices(fromDigests:))
                let downloaded = formatBytes(plan.bytesFromServer(length: length))
                phases.done("downloaded \(downloaded), assembled the file and computed its hash")
            } else {
                // Checked as it arrives: nothing to copy, nothing to read back.
                let streamed = try await downloadWhole(remote: remote, output: output, signature: signature)
                digest = streamed.digest
                knownBad = streamed.badSlices
                sliceDigests = streamed.sliceDigests
                phases.done("downloaded \(formatBytes(plan.bytesFromServer(length: length)))")
            }
            // Downloads were checked against the fine records; repairs use the slice records.
            plan.map.fineRecords = FineRecords()
            if let known = remote.length, known != length {
                throw VerificationError("the server's file is \(known) bytes but its signature describes "
                    + "\(length) bytes: the signature is out of date (re-run shash on the server)")
            }
            observer?.phase("verifying")
            assembled = true
            var repaired = 0
            if digest != signature.expectedDigest {
                repaired = try await repair(output: output, remote: remote, signature: signature, map: &plan.map,
                    knownBad: knownBad)
            }
            // As zsync does, the file gets the modification time its control file gives.
            try output.commit(mode: targetMode(for: destination), modified: signature.zsync?.mtime)
            phases.done("replaced the destination")
            remember(destination, signature: signature, digests: repaired == 0 ? sliceDigests : nil)
            cleanUp(leftovers + [OutputFile.partialPath(of: destination)], except: destination)
            return report("updated", hash: signature.hashLabel, repaired: repaired,
                written: length + repaired * signature.sliceSize)
        } catch {
            // Keep the work for the next run: what was downloaded, plus the local pieces (unless the user
            // is waiting for Ctrl-C to take effect; the local files are still there).
            if !assembled && !(error is CancellationError) && !scanProgress.isCancelled {
                for run in plan.map.localRuns where run.source.file < LocalSource.maxFiles {
                    try? output.copy(from: matcher.alikes[run.source.file].file, at: run.source.offset,
                        to: run.target.lowerBound, count: run.target.count)
                }
                assembled = !plan.map.localRuns.isEmpty
            }
            if (assembled || remote.bytesReceived > 0), let partial = output.keepAsPartial() {
                logger.warning("kept the work done so far in \(partial); run the same command again to continue")
            } else {
                output.discard()
            }
            throw error
        }
    }

    // MARK: - Signature

    private func loadSignature() async throws -> (fileURL: String, signature: LoadedSignature) {
        var fileURL = options.url
        var candidates: [String]
        if let explicit = options.signatureURL {
            candidates = [explicit]
        } else if ZsyncControl.namesControlFile(fileURL) {
            if !SignatureLocator.isHTTPURL(fileURL) { return try await loadLocalControlFile(fileURL) }
            candidates = [fileURL]
        } else if fileURL.lowercased().hasSuffix(TreeNaming.signatureSuffix) {
            candidates = [fileURL]
            fileURL = try SignatureLocator.fileURL(forSignature: fileURL)
        } else {
            // zsync's control file comes last: `FILE.zsync` beside the file, as zsyncmake puts it.
            candidates = try SignatureLocator.candidates(for: fileURL) + [SignatureLocator.zsyncURL(for: fileURL)]
        }
        let local = largestLocalFile(fileURL: fileURL)
        let firstBytes = LoadedSignature.firstRequestBytes(localLength: local.length, localStart: local.start)
        var tried: [String] = []
        for candidate in candidates {
            try Task.checkCancellation()
            let remote = RemoteFile(url: candidate, exchange: exchange, headers: options.headers, logger: logger)
            guard let signature = try await LoadedSignature.fetch(remote, firstBytes: firstBytes,
                wantsSketch: local.length > 0, logger: logger) else {
                tried.append(candidate)
                continue
            }
            if let control = signature.zsync {
                // Relative URLs resolve against where the control file really was (after redirects).
                fileURL = try zsyncFileURL(control, controlURL: remote.url, asked: fileURL,
                    named: candidate == options.url)
            }
            // A control file names the zsync version that wrote it; format 0 would say nothing.
            let format = signature.zsync.map { "zsync \($0.writerVersion)" } ?? "slicesync \(signature.formatVersion)"
            let size = "\(signature.length) bytes, units of \(signature.sliceSize)"
            logger.info("signature: \(remote.url) (\(format), \(size))")
            return (fileURL, signature)
        }
        // Private buckets answer 403 or 404 for what is not there: the file itself tells a missing signature
        // from a private object.
        if options.signatureURL == nil {
            let file = RemoteFile(url: fileURL, exchange: exchange, headers: options.headers, logger: logger)
            _ = try? await file.fetchBytes(range: 0..<1, limit: 1)
            if file.missingStatus == 403 {
                throw TransportError(.status, "access denied at \(fileURL) (HTTP 403): the object is not public, or "
                    + "the credentials may not read it; use s3://BUCKET/KEY with credentials or a presigned URL",
                    status: 403)
            }
        }
        throw SignatureError(.notFound, "no signature found for \(fileURL); looked at:\n  "
            + tried.joined(separator: "\n  ")
            + "\nSign the published tree with 'shash', or give the signature's URL.")
    }

    /// A zsync control file given as a local path (downloaded separately, as zsync allows).
    private func loadLocalControlFile(_ path: String) async throws -> (fileURL: String, signature: LoadedSignature) {
        let bytes = try SystemFile.openForReading(path).readAll(limit: SignatureVerifier.maxSignatureBytes)
        let control = try ZsyncControl.parse(bytes)
        let remote = RemoteFile(url: path, exchange: exchange, headers: options.headers, logger: logger)
        let fileURL = try zsyncFileURL(control, controlURL: nil, asked: path, named: true)
        return (fileURL, LoadedSignature(remote: remote, held: .zsync(control)))
    }

    /// The file a zsync control file describes: its first `URL:` that is http(s), resolved against
    /// `--base-url` or the control file's URL. `named` says the user named the control file itself
    /// (else it was found beside `asked`, which is then the file's URL already).
    private func zsyncFileURL(_ control: ZsyncControl, controlURL: String?, asked: String,
                              named: Bool) throws -> String {
        if control.compressedOnly {
            throw SignatureError(.unsupportedHashing,
                "the control file describes a file served gzip-compressed (zsyncmake -z: Z-URL, Recompress)"
                    + ", which slicesync does not rebuild; use the uncompressed file's control file")
        }
        guard named else { return asked }
        let base = options.baseURL ?? controlURL
        let usable = control.urls.compactMap { SignatureLocator.resolve($0, against: base) }
        let failed = mirrors.withLock { $0.failed }
        if let resolved = usable.first(where: { !failed.contains($0) }) {
            let left = usable.filter { !failed.contains($0) }.count > 1
            mirrors.withLock { $0 = (resolved, left, $0.failed) }
            if usable.count > 1 { logger.info("the control file lists \(usable.count) URLs; using \(resolved)") }
            return resolved
        }
        if control.urls.isEmpty {
            throw SignatureError(.missingField, "the control file names no URL for the file (it has no URL: "
                + "header): there is nothing to download from")
        }
        if base == nil {
            throw TransportError(.badURL, "the control file's URL \(control.urls[0]) is relative and the control file "
                + "was read from a local path: give the URL it was published at with --base-url")
        }
        throw SignatureError(.malformedLine, "none of the control file's URLs is an http:// or https:// URL: "
            + control.urls.joined(separator: ", "))
    }

    /// The local files a sync scans first: the destination itself and the alike files given (the work
    /// of earlier runs is added to them in `runOnce`). The destination comes first and is scanned on its
    /// own first, so that a piece it already holds in place is taken from there: a destination that is
    /// already the new version is then recognised as unchanged, whatever alike files are given.
    private func localPaths(destination: String) -> [String] {
        [destination] + options.alikes.filter { $0 != destination }
    }

    /// The length and first bytes of the largest local file the sync will use, for sizing the first
    /// request. A destination that cannot be used leaves only the alike files; the sync reports it
    /// once the signature is in.
    private func largestLocalFile(fileURL: String) -> (length: Int, start: [UInt8]) {
        let paths = (try? resolveDestination(fileURL: fileURL, name: nil)).map(localPaths(destination:))
            ?? options.alikes
        var best: (length: Int, start: [UInt8]) = (0, [])
        for path in paths {
            guard let stamp = try? FileSystem.stamp(path), stamp.isRegularFile, stamp.size > best.length,
                  let start = try? SystemFile.openForReading(path).readPrefix(limit: SigningParameters.sniffedBytes)
            else { continue }
            best = (stamp.size, start)
        }
        return best
    }

    /// The destination path: as given, or `name` (a zsync control file's `Filename`) or the URL's
    /// last component, in the directory given or the current one.
    private func resolveDestination(fileURL: String, name: String?) throws -> String {
        var destination: String
        if let given = options.destination {
            destination = given
        } else {
            destination = try name ?? SignatureLocator.fileName(of: fileURL)
        }
        if let stamp = try FileSystem.stamp(destination), stamp.isDirectory {
            destination = Paths.join(destination, try name ?? SignatureLocator.fileName(of: fileURL))
        }
        let directory = Paths.parent(of: destination)
        guard let stamp = try FileSystem.stamp(directory), stamp.isDirectory else {
            throw FileSystemError(.notFound, path: directory,
                message: "the destination directory \(directory) does not exist")
        }
        if let existing = try FileSystem.stamp(destination), !existing.isRegularFile {
            throw FileSystemError(.notRegularFile, path: destination,
                message: "\(destination) exists and is not a regular file; choose another destination")
        }
        return destination
    }

    /// Connections that fetch the signature's fine tables at once: those of the downloads.
    var signatureFetchJobs: Int { options.jobs }

    // MARK: - Downloading

    /// Downloads the plan's missing ranges into `output`, unless it fetches the file whole; a server
    /// that ignores ranges turns it into a whole download.
    /// Downloads the missing ranges into the output; a server that ignores ranges sets the plan's
    /// `fullDownload` instead. `arrivals` hears of each range written.
    func downloadMissing(_ plan: inout SyncPlan, remote: RemoteFile, output: OutputFile,
        signature: LoadedSignature, arrivals: Arrivals? = nil) async throws {
        guard plan.missingBytes > 0 && !plan.fullDownload else { return }
        do {
            try await downloadRanges(plan.missingRanges, remote: remote, output: output, map: plan.map,
                signature: signature, arrivals: arrivals)
        } catch is RangeDownloader.RangesUnsupported {
            plan.fullDownload = true
        }
    }

    /// Downloads the missing ranges into the output while another thread copies the local pieces and
    /// hashes the whole output in file order, reading each downloaded range once it has arrived (see
    /// `Arrivals`). Returns nil, having assembled nothing, when the file is to be fetched whole: the
    /// plan said so, or the server turned out to ignore ranges (the plan then says so).
    func downloadAndAssemble(_ plan: inout SyncPlan, remote: RemoteFile, output: OutputFile,
        signature: LoadedSignature, sources: [SystemFile]) async throws -> AssembledDigest? {
        guard !plan.fullDownload else { return nil }
        let segments = plan.map.segments
        let check = signature.wholeFileCheck
        guard plan.missingBytes > 0 else {
            return try await runBlocking { try output.assemble(segments, sources: sources, check: check) }
        }
        let arrivals = Arrivals()
        async let assembling = runBlocking {
            try output.assemble(segments, sources: sources, check: check, arrivals: arrivals)
        }
        do {
            try await downloadMissing(&plan, remote: remote, output: output, signature: signature,
                arrivals: arrivals)
        } catch {
            arrivals.abandon()
            _ = try? await assembling
            throw error
        }
        if plan.fullDownload {
            arrivals.abandon()
            _ = try? await assembling
            return nil
        }
        return try await assembling
    }

    func downloadRanges(_ ranges: [Range<Int>], remote: RemoteFile, output: OutputFile, map: PieceMap,
        signature: LoadedSignature, arrivals: Arrivals? = nil) async throws {
        let total = ranges.reduce(0) { $0 + $1.count }
        let done = Atomic<Int>(0)
        let observer = observer
        let unit = signature.downloadUnit(map)
        var downloader = RangeDownloader(remote: remote, jobs: options.jobs, unit: unit, logger: logger)
        downloader.maxRequestBytes = signature.maxRequestBytes
        try await downloader.download(ranges) { range, bytes in
            // Whole units only: a unit cut by the reply's boundaries is asked for again.
            let first = (range.lowerBound + unit - 1) / unit
            let endUnit = range.upperBound == output.length
                ? (output.length + unit - 1) / unit : range.upperBound / unit
            guard first < endUnit else { return range.lowerBound..<range.lowerBound }
            let accepted = (first * unit)..<min(endUnit * unit, output.length)
            let start = accepted.lowerBound - range.lowerBound
            let units = UnsafeRawBufferPointer(rebasing: bytes[start..<(start + accepted.count)])
            if let index = signature.firstMismatch(units: first, units, map: map) {
                let piece = (index * unit)..<min((index + 1) * unit, output.length)
                throw TransportError(.protocolViolation,
                    "downloaded bytes \(piece.lowerBound)-\(piece.upperBound - 1) do not match the signature: " +
                        "the file on the server may have changed since it was signed (re-run shash on the server)")
            }
            try output.file.write(from: bytes.baseAddress! + start, count: accepted.count, at: accepted.lowerBound)
            arrivals?.add(accepted)
            let now = done.add(accepted.count, ordering: .relaxed).newValue
            observer?.downloaded(now, of: total)
            return accepted
        }
    }

    /// Downloads the whole file into the output, checking it as it streams (see `StreamingCheck`);
    /// returns the whole-file digest and the slices that failed their records.
    func downloadWhole(remote: RemoteFile, output: OutputFile,
        signature: LoadedSignature) async throws -> (digest: [UInt8], badSlices: [Int], sliceDigests: [UInt8]?) {
        logger.info("downloading the whole file")
        let length = output.length
        let check = StreamingCheck(signature: signature)
        var flushed = 0
        // Each attempt resumes where the last one stopped (the server may restart from 0 with a 200).
        try await remote.retrying("downloading the file", attempts: 6) {
            try await remote.streamWhole(from: check.position, restarted: {
                check.restart()
                flushed = 0
            }, body: { chunk in
                let offset = check.position
                guard offset + chunk.count <= length else {
                    throw TransportError(.changed,
                        "the server's file is longer than its signature says: the signature is out of date")
                }
                try output.file.write(from: chunk.baseAddress!, count: chunk.count, at: offset)
                check.add(chunk)
                // Flushed as the data comes, so the fsync before the rename has little left.
                if check.position - flushed >= 32 << 20 {
                    output.flushAhead.request()
                    flushed = check.position
                }
                self.observer?.downloaded(check.position, of: length)
            })
            guard check.position == length else {
                throw TransportError(.protocolViolation,
                    "the download ended after \(check.position) of \(length) bytes")
            }
        }
        return (check.finish(), check.badSlices, check.treeSliceDigests)
    }

    /// Finds the slices that do not match their hashes, fetches them again once, and checks again.
    /// `knownBad` are the slices already found bad while the file streamed in, when it did.
    func repair(output: OutputFile, remote: RemoteFile, signature: LoadedSignature, map: inout PieceMap,
                        knownBad: [Int]?) async throws -> Int {
        var bad = knownBad ?? []
        if knownBad == nil { bad = try await runBlocking { try signature.badSlices(in: output) } }
        if bad.isEmpty && signature.zsync != nil {
            // zsync records may be as short as 5 bytes, so a local block that matched by chance passes
            // its record check again: everything taken from local files is fetched instead.
            bad = map.localRuns.filter { $0.source.file < LocalSource.maxFiles }.flatMap { run in
                (run.target.lowerBound / map.unitSize)..<((run.target.upperBound + map.unitSize - 1) / map.unitSize)
            }
        }
        logger.warning("the rebuilt file failed its whole-file check; fetching \(bad.count) slice(s) again")
        guard !bad.isEmpty else {
            throw VerificationError("the rebuilt file does not match the signature's whole-file hash although every " +
                "slice does: the signature is inconsistent; re-run shash on the server")
        }
        // Whole slices, each checked against its coarse record (format 1: its slice line).
        map.verifyBySlice = true
        let ranges = RequestPlanner.merge(bad.map { signature.sliceRange($0) }, gap: 0)
        try await downloadRanges(ranges, remote: remote, output: output, map: map, signature: signature)
        if try await runBlocking({ try signature.wholeFileDigest(of: output.file,
            length: output.length) }) != signature.expectedDigest {
            throw VerificationError("the rebuilt file still does not match the signature after fetching \(bad.count) " +
                "slice(s) again: the file on the server does not match its signature (re-run shash on the server)")
        }
        return bad.count
    }

    // MARK: - Helpers

    private func targetMode(for destination: String) -> mode_t {
        var st = stat()
        if stat(destination, &st) == 0 { return st.st_mode & 0o7777 }
        let mask = umask(0)
        umask(mask)
        return 0o666 & ~mask
    }

    private func cleanUp(_ paths: [String], except keep: String) {
        for path in Set(paths) where path != keep {
            try? FileSystem.removeFile(path)
        }
    }

    /// Runs blocking, CPU-bound work on the blocking pool, reporting scan progress meanwhile. A pool
    /// thread, not a task: scans and assembly block for seconds, which on the cooperative pool would
    /// stall the downloads and the progress display.
    func runBlocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        let progress = scanProgress
        let observer = observer
        let reporter = Task {
            while !Task.isCancelled {
                observer?.scanned(progress.bytesScanned, of: 0)
                try? await Task.sleep(nanoseconds: 100_000_000)
            }
        }
        defer { reporter.cancel() }
        return try await onBlockingPool(onCancel: { progress.cancel() }, body)
    }
}
