import AWSSigning
import Logging
import Synchronization

/// What a push was asked to do, for files and trees alike.
public struct PushOptions: Sendable {
    /// Only work out and report what would be sent; change nothing.
    public var dryRun = false
    /// Requests at once (parts, files).
    public var jobs = 4
    /// Threads that scan the local file against the old signature.
    public var threads = 2
    /// Files up to this size go up in one PUT (as the AWS CLI's `multipart_threshold`).
    public var multipartThreshold = 8 << 20
    /// With a tree: remove objects below the prefix that the local tree does not have.
    public var delete = false
    /// With `delete`: refuse when more objects than this would go, unless `force`.
    public var maxDelete = 1000
    /// With `delete`: pass `maxDelete`.
    public var force = false
    /// The objects' `Content-Type`.
    public var contentType = "application/octet-stream"

    /// Defaults.
    public init() {}
}

/// How one file reached its key.
public struct ObjectPushOutcome: Sendable, Codable, Equatable {
    /// `unchanged`, `put` (one request), `copy` (a whole copy on the server), `multipart`.
    public var method: String
    /// The file's length.
    public var length: Int
    /// Bytes sent from the local file (or, for a dry run, to be sent).
    public var uploadedBytes: Int
    /// Bytes copied on the server from the old object.
    public var copiedBytes: Int
    /// Parts copied on the server.
    public var copyParts: Int
    /// Parts uploaded.
    public var uploadParts: Int
    /// Parts an interrupted push had already done.
    public var resumedParts: Int

    /// A file of `length` bytes that is published already.
    static func unchanged(_ length: Int) -> ObjectPushOutcome {
        ObjectPushOutcome(method: "unchanged", length: length, uploadedBytes: 0, copiedBytes: 0, copyParts: 0,
                          uploadParts: 0, resumedParts: 0)
    }

    enum CodingKeys: String, CodingKey {
        case method, length
        case uploadedBytes = "uploaded_bytes", copiedBytes = "copied_bytes", copyParts = "copy_parts"
        case uploadParts = "upload_parts", resumedParts = "resumed_parts"
    }
}

/// An object on the endpoint that a new file may be assembled from.
struct OldObject: Sendable {
    /// Where it is.
    var location: S3Location
    /// Its ETag and size now.
    var info: S3ObjectInfo
    /// Where its signature is, if it has one.
    var signatureKey: String?
    /// Known to hold exactly the new file's bytes (a tree manifest says so, for a trusted signature).
    var identical = false
}

/// One file to push.
struct ObjectPushJob: Sendable {
    /// The local file.
    var localPath: String
    /// Its current signature, written by the signer.
    var signaturePath: String
    /// Where the file goes.
    var destination: S3Location
    /// Where its signature goes.
    var signatureKey: String
    /// The ETag of the object now at the destination, if any (what a conditional write expects).
    var destinationETag: String?
    /// What to assemble it from.
    var old: OldObject?
}

/// The metadata key, on a signature object, of the ETag of the object the signature describes: a push
/// trusts an old signature only when it names the old object's current ETag.
let signedETagMetadata = "slicesync-etag"

/// Pushes files to S3: finds which ranges of the old object reappear in the new file, and assembles the
/// new object from server-side copies of those and uploads of the rest, guarded by the old object's
/// ETag; then publishes the new signature.
final class Publisher: Sendable, LocatingContext {
    let client: S3Client
    let exchange: HTTPExchange
    let options: PushOptions
    let logger: Logger
    let progress: PushProgress
    /// Bytes of signatures read through `exchange` (the client counts its own requests).
    private let signatureTraffic = Mutex<(requests: Int, bytes: Int)>((0, 0))

    init(client: S3Client, exchange: HTTPExchange, options: PushOptions, logger: Logger, progress: PushProgress) {
        self.client = client
        self.exchange = SigningExchange(exchange, client: client)
        self.options = options
        self.logger = logger
        self.progress = progress
    }

    /// Requests and bytes received for old signatures.
    var signatureRequests: (requests: Int, bytes: Int) { signatureTraffic.withLock { $0 } }

    // MARK: - LocatingContext

    func runBlocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await onBlockingPool(body)
    }

    var signatureFetchJobs: Int { options.jobs }

    // MARK: - One file

    /// Pushes one file; nothing at the destination changes unless the whole object is complete.
    func push(_ job: ObjectPushJob) async throws -> ObjectPushOutcome {
        let local = try SystemFile.openForReading(job.localPath)
        let stamp = try local.stamp()
        guard stamp.isRegularFile else {
            throw PublishError(.badArguments, "\(job.localPath) is not a regular file")
        }
        let length = stamp.size
        let target = "s3://\(job.destination.bucket)/\(job.destination.key)"
        var matches: [(new: Range<Int>, old: Int)] = []
        var trusted = true
        if let old = job.old {
            if old.identical && old.info.size == length {
                if old.location == job.destination {
                    return .unchanged(length)
                }
                matches = [(0..<length, 0)]
            } else if length > options.multipartThreshold, old.info.size > 5_000_000,
                      let signatureKey = old.signatureKey {
                let found = try await findMatches(job, old: old, signatureKey: signatureKey, stamp: stamp)
                if found.unchanged {
                    if !found.trusted {
                        // Samples across the file confirm it; the signature then names the ETag for next time.
                        let pieces = (0..<16).map { index -> PushPart in
                            let range = (index * length / 16)..<((index + 1) * length / 16)
                            return PushPart(range: range, copyFrom: range.lowerBound)
                        }
                        if try await samplesAgree(pieces.filter { !$0.range.isEmpty }, old: old,
                                                  localPath: job.localPath) {
                            try await putSignature(job, etag: old.info.etag)
                            return .unchanged(length)
                        }
                    } else {
                        return .unchanged(length)
                    }
                }
                matches = found.matches
                trusted = found.trusted
            }
        }
        var plan = PushPlan(length: length, matches: matches)
        if !trusted, plan.copyParts > 0, let old = job.old,
           try await !samplesAgree(plan.parts.filter { $0.copyFrom != nil }, old: old, localPath: job.localPath) {
            let text = "\(old.location): its bytes differ from what its signature describes (the signature is "
                + "out of date); \(target) is uploaded whole"
            logger.warning("\(text)")
            plan = PushPlan(length: length, matches: [])
        }
        let method: String
        if plan.copiedBytes == 0 && length <= options.multipartThreshold {
            method = "put"
        } else if plan.parts.count == 1, plan.parts[0].copyFrom == 0, job.old?.location != job.destination {
            method = "copy"
        } else {
            method = "multipart"
        }
        var outcome = ObjectPushOutcome(method: method, length: length, uploadedBytes: plan.uploadedBytes,
            copiedBytes: plan.copiedBytes, copyParts: method == "put" ? 0 : plan.copyParts,
            uploadParts: method == "put" ? 1 : plan.uploadParts, resumedParts: 0)
        if options.dryRun { return outcome }

        let condition = job.destinationETag.map { (name: "If-Match", value: $0) } ?? (name: "If-None-Match", value: "*")
        let etag: String
        switch method {
        case "put":
            etag = try await withConditionFallback(condition, what: "a PUT", recheck: {
                try await self.checkUnchanged(job.destination, etag: job.destinationETag)
            }) { condition in
                try await self.client.put(job.destination.bucket, job.destination.key,
                    body: .file(path: job.localPath, range: 0..<length),
                    headers: [("Content-Type", self.options.contentType)] + (condition.map { [$0] } ?? []))
            }
            progress.add(length)
        case "copy":
            guard let old = job.old else { throw PublishError(.rejected, "internal: a copy without a source") }
            etag = try await client.copy(from: old.location, ifMatch: old.info.etag, to: job.destination.bucket,
                                         job.destination.key, headers: [("Content-Type", options.contentType)])
            progress.add(length)
        default:
            let done = try await multipart(job, plan: plan, stamp: stamp, condition: condition)
            etag = done.etag
            outcome.resumedParts = done.resumed
            // What an earlier run sent is not sent again.
            outcome.uploadedBytes -= plan.parts.enumerated().filter { done.resumedNumbers.contains($0.offset + 1)
                && $0.element.copyFrom == nil }.reduce(0) { $0 + $1.element.range.count }
        }
        // Only now the signature: a reader never finds one that describes other content.
        try await putSignature(job, etag: etag)
        return outcome
    }

    /// Publishes the file's signature, naming the ETag of the object it describes.
    private func putSignature(_ job: ObjectPushJob, etag: String) async throws {
        try await client.put(job.destination.bucket, job.signatureKey,
            body: try .wholeFile(job.signaturePath),
            headers: [("Content-Type", "application/octet-stream"), ("x-amz-meta-" + signedETagMetadata, etag)])
    }

    /// The old object's pieces found in the local file, by its signature; or that the old object is the
    /// file already.
    private func findMatches(_ job: ObjectPushJob, old: OldObject, signatureKey: String, stamp: FileStamp)
        async throws -> (matches: [(new: Range<Int>, old: Int)], trusted: Bool, unchanged: Bool) {
        let none: (matches: [(new: Range<Int>, old: Int)], trusted: Bool, unchanged: Bool) = ([], true, false)
        guard let signatureInfo = try await client.head(old.location.bucket, signatureKey) else {
            logger.info("\(old.location) has no signature at \(signatureKey): it is uploaded whole")
            return none
        }
        let url = client.endpoint.url(bucket: old.location.bucket, key: signatureKey)
        let remote = RemoteFile(url: url, exchange: exchange, headers: [], logger: logger)
        let start = try SystemFile.openForReading(job.localPath).readPrefix(limit: SigningParameters.sniffedBytes)
        let fetched = try await LoadedSignature.fetch(remote, firstBytes: LoadedSignature.firstRequestBytes(
            localLength: stamp.size, localStart: start), wantsSketch: true, logger: logger)
        defer { signatureTraffic.withLock { $0.requests += remote.requests; $0.bytes += remote.bytesReceived } }
        guard let signature = fetched, signature.zsync == nil else { return none }
        guard signature.length == old.info.size else {
            let text = "the signature of \(old.location) describes \(signature.length) bytes, the object has "
                + "\(old.info.size): it is out of date and not used"
            logger.warning("\(text)")
            return none
        }
        let trusted = signatureInfo.metadata[signedETagMetadata].map { sameETag($0, old.info.etag) } ?? false
        if !trusted {
            let text = "the signature of \(old.location) does not name the object's ETag (it was not published by "
                + "slicesync push): the ranges it finds are checked against samples of the object first"
            logger.info("\(text)")
        }
        let newHash = TreeManifest.FileHash.stated(bySignatureAt: job.signaturePath, length: stamp.size)
        if old.location == job.destination, old.info.size == stamp.size, let newHash, signature.fileHash == newHash {
            return ([], trusted, true)
        }
        let matcher = Matcher(paths: [job.localPath], threads: options.threads, progress: ScanProgress(),
                              logger: logger)
        let map = try await SyncPlan.find(signature, matcher: matcher, context: self)
        var matches = map.localRuns.filter { $0.source.file == 0 }.map { run in
            (new: run.source.offset..<(run.source.offset + run.target.count), old: run.target.lowerBound)
        }
        // Zeros of the old object: pieces known to be zeros, or many pieces tied to one place.
        var oldZeros: [Range<Int>] = []
        for index in map.sources.indices where map.sources[index]?.file == LocalSource.zeros {
            oldZeros.append(map.unitRange(index))
        }
        var places = Set<Range<Int>>()
        if !oldZeros.isEmpty || matches.contains(where: { !places.insert($0.new).inserted }) {
            let path = job.localPath, length = stamp.size, found = matches, known = oldZeros
            matches += try await runBlocking {
                let file = try SystemFile.openForReading(path)
                let zeros = try ZeroRuns.find(in: file, length: length, minimum: PushPlan.minimumPart)
                guard !zeros.isEmpty else { return [] }
                return try ZeroRuns.matches(for: zeros, oldZeros: known, matches: found, minimum: PushPlan.minimumPart,
                                            isZero: { try ZeroRuns.isZero(file, $0) })
            }
        }
        return (matches, trusted, false)
    }

    /// For a signature that does not name the object's ETag: a sample of each piece (up to 64), read from
    /// the old object where the piece says, equals the local bytes.
    private func samplesAgree(_ copies: [PushPart], old: OldObject, localPath: String) async throws -> Bool {
        let step = max(1, copies.count / 64)
        let local = try SystemFile.openForReading(localPath)
        let sampled = stride(from: 0, to: copies.count, by: step).map { copies[$0] }
        let agree = Atomic<Bool>(true)
        try await forEachConcurrently(sampled, width: options.jobs) { part in
            guard let from = part.copyFrom else { return }
            let count = min(64 << 10, part.range.count)
            let offset = (part.range.count - count) / 2
            let remote = try await self.client.getRange(old.location.bucket, old.location.key,
                                                        (from + offset)..<(from + offset + count))
            var mine = [UInt8](repeating: 0, count: count)
            let read = try mine.withUnsafeMutableBytes { try local.read(into: $0.baseAddress!, count: count,
                                                                         at: part.range.lowerBound + offset) }
            if read != count || remote != mine { agree.store(false, ordering: .relaxed) }
        }
        return agree.load(ordering: .relaxed)
    }

    // MARK: - Multipart

    private func multipart(_ job: ObjectPushJob, plan: PushPlan, stamp: FileStamp,
                           condition: (name: String, value: String)) async throws
        -> (etag: String, resumed: Int, resumedNumbers: Set<Int>) {
        let bucket = job.destination.bucket, key = job.destination.key
        let statePath = PushState.path(endpoint: client.endpoint.url(bucket: bucket, key: ""), bucket: bucket, key: key)
        var state: PushState
        var resumed = 0
        if let path = statePath, let previous = PushState.load(path),
           previous.continues(stamp: stamp, oldETag: job.old?.info.etag, parts: plan.parts) {
            state = previous
            resumed = previous.done.count
            logger.info("resuming the upload of s3://\(bucket)/\(key): \(resumed) of \(plan.parts.count) parts done")
        } else {
            if let path = statePath, let stale = PushState.load(path) {
                // Made for another file or version: its parts are of no use.
                logger.info("aborting an earlier, unfinished upload to s3://\(bucket)/\(key)")
                try? await client.abort(stale.bucket, stale.key, uploadID: stale.uploadID)
                PushState.remove(path)
            }
            let id = try await client.createUpload(bucket, key, headers: [("Content-Type", options.contentType)])
            state = PushState(endpoint: client.endpoint.url(bucket: bucket, key: ""), bucket: bucket, key: key,
                uploadID: id, localPath: job.localPath, device: stamp.device, inode: stamp.inode, size: stamp.size,
                mtimeSeconds: stamp.mtimeSeconds, mtimeNanoseconds: stamp.mtimeNanoseconds,
                oldETag: job.old?.info.etag, parts: plan.parts)
            if let statePath { try? state.save(statePath) }
        }
        let uploadID = state.uploadID
        let shared = Mutex(state)
        CrashPoints.pause("push-upload-started")
        do {
            let todo = plan.parts.enumerated().filter { state.done[$0.offset + 1] == nil }
            progress.add(plan.parts.enumerated().filter { state.done[$0.offset + 1] != nil }
                .reduce(0) { $0 + $1.element.range.count })
            try await forEachConcurrently(todo, width: options.jobs) { item in
                let number = item.offset + 1, part = item.element
                let etag: String
                if let from = part.copyFrom, let old = job.old {
                    etag = try await self.client.uploadPartCopy(bucket, key, uploadID: uploadID, number: number,
                        source: old.location, range: from..<(from + part.range.count), ifMatch: old.info.etag)
                } else {
                    etag = try await self.client.uploadPart(bucket, key, uploadID: uploadID, number: number,
                        body: .file(path: job.localPath, range: part.range))
                }
                self.progress.add(part.range.count)
                shared.withLock { state in
                    state.done[number] = etag
                    if let statePath { try? state.save(statePath) }
                }
                CrashPoints.reach("push-part-done")
            }
            CrashPoints.pause("push-parts-done")
            // The last checks before anything is published: the local file and the old object are as planned.
            let after = try FileSystem.stamp(job.localPath)
            guard let after, !after.contentMayDiffer(from: stamp) else {
                throw PublishError(.localChanged, "\(job.localPath) changed while it was being pushed; nothing was "
                    + "published; push it again once it is complete")
            }
            if let old = job.old { try await checkUnchanged(old.location, etag: old.info.etag) }
            let done = shared.withLock { $0.done }
            let parts = (1...plan.parts.count).map { (number: $0, etag: done[$0] ?? "") }
            let etag = try await completeUpload(bucket, key, uploadID: uploadID, parts: parts, condition: condition)
            PushState.remove(statePath)
            return (etag, resumed, Set(state.done.keys))
        } catch {
            if Self.keepsForResume(error) {
                logger.warning("the upload to s3://\(bucket)/\(key) is kept: run the same push again to continue it")
            } else {
                try? await client.abort(bucket, key, uploadID: uploadID)
                PushState.remove(statePath)
            }
            throw error
        }
    }

    /// Completes with the condition (see `withConditionFallback`).
    private func completeUpload(_ bucket: String, _ key: String, uploadID: String, parts: [(number: Int, etag: String)],
                                condition: (name: String, value: String)) async throws -> String {
        try await withConditionFallback(condition, what: "a completion") { condition in
            try await self.client.complete(bucket, key, uploadID: uploadID, parts: parts, condition: condition)
        }
    }

    /// Sends a write with its condition (`If-Match`, `If-None-Match`); an endpoint that does not implement
    /// conditional writes gets it again without (the old object's ETag was checked just before).
    private func withConditionFallback(_ condition: (name: String, value: String), what: String,
        recheck: () async throws -> Void = {},
        _ write: @escaping ((name: String, value: String)?) async throws -> String) async throws -> String {
        do {
            return try await write(condition)
        } catch let error as PublishError where error.status == 501 || error.s3Code == "NotImplemented" {
            logger.info("the endpoint does not take \(condition.name) on \(what); sending it without")
            try await recheck()
            return try await write(nil)
        }
    }

    /// Throws `remoteChanged` unless the object at `location` still has `etag` (nil: still does not exist).
    private func checkUnchanged(_ location: S3Location, etag: String?) async throws {
        let now = try await client.head(location.bucket, location.key)
        let unchanged: Bool
        switch (now?.etag, etag) {
        case (nil, nil): unchanged = true
        case (let current?, let expected?): unchanged = sameETag(current, expected)
        default: unchanged = false
        }
        guard unchanged else {
            throw PublishError(.remoteChanged, "\(location) changed on the endpoint during the push (ETag "
                + "\(etag ?? "none"), now \(now?.etag ?? "none")); nothing was published; run the push again")
        }
    }

    /// Interruptions and broken connections keep the upload for the next run; everything else aborts it.
    static func keepsForResume(_ error: Error) -> Bool {
        switch error {
        case is CancellationError: true
        case let error as TransportError: error.isTransient || error.code == .unreachable
        default: false
        }
    }
}

/// Counts bytes pushed (uploaded or copied), for the progress display.
public protocol PushProgressObserver: Sendable {
    /// Bytes of the files done so far, of `total`.
    func pushed(_ bytes: Int, of total: Int)
}

/// The running total behind a `PushProgressObserver`.
final class PushProgress: Sendable {
    let observer: PushProgressObserver?
    private let state = Mutex<(done: Int, total: Int)>((0, 0))

    init(_ observer: PushProgressObserver?) { self.observer = observer }

    func expect(_ bytes: Int) { state.withLock { $0.total += bytes } }

    func add(_ bytes: Int) {
        let now = state.withLock { state -> (Int, Int) in
            state.done += bytes
            return (state.done, state.total)
        }
        observer?.pushed(now.0, of: now.1)
    }
}

/// Runs `body` for every item, at most `width` at once. After the first error no item is started and the
/// ones under way finish (a part cut off mid-request could land on the server after the upload is
/// aborted); then the error is thrown.
func forEachConcurrently<T: Sendable>(_ items: [T], width: Int,
                                      _ body: @escaping @Sendable (T) async throws -> Void) async throws {
    var failure: Error?
    await withTaskGroup(of: Error?.self) { group in
        var next = 0
        func startNext() {
            let item = items[next]
            next += 1
            group.addTask {
                do {
                    try await body(item)
                    return nil
                } catch {
                    return error
                }
            }
        }
        while next < min(width, items.count) { startNext() }
        while let result = await group.next() {
            if let result, failure == nil { failure = result }
            if failure == nil && next < items.count { startNext() }
        }
    }
    if let failure { throw failure }
}
