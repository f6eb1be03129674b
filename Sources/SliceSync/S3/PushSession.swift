#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import AWSSigning
import Logging
import Synchronization

/// What a push did, for people and for `--json`.
public struct PushReport: Sendable, Codable, Equatable {
    /// One file of a tree.
    public struct File: Sendable, Codable, Equatable {
        /// Its path in the tree (or the local path of a single file).
        public var path: String
        /// How it went up.
        public var outcome: ObjectPushOutcome
    }

    /// `pushed`, `unchanged` or `dry-run`.
    public var outcome: String
    /// The local file or directory.
    public var source: String
    /// `s3://BUCKET/KEY` or `s3://BUCKET/PREFIX/`.
    public var destination: String
    /// Bytes of the local files that had to reach the destination.
    public var totalBytes = 0
    /// Bytes sent from local files (or to be sent).
    public var uploadedBytes = 0
    /// Bytes copied on the server from old objects.
    public var copiedBytes = 0
    /// Parts copied on the server.
    public var copyParts = 0
    /// Parts (or single PUTs) uploaded.
    public var uploadParts = 0
    /// Files that did not change.
    public var unchangedFiles = 0
    /// Files pushed (or to be pushed).
    public var changedFiles = 0
    /// Objects deleted (or to be deleted) with `--delete`.
    public var deletedObjects = 0
    /// Requests sent.
    public var requests = 0
    /// Bytes of request bodies sent (files, signatures, manifest, XML).
    public var bytesSent = 0
    /// Wall-clock seconds.
    public var seconds = 0.0
    /// Per file.
    public var files: [File] = []

    enum CodingKeys: String, CodingKey {
        case outcome, source, destination, requests, seconds, files
        case totalBytes = "total_bytes", uploadedBytes = "uploaded_bytes", copiedBytes = "copied_bytes"
        case copyParts = "copy_parts", uploadParts = "upload_parts", unchangedFiles = "unchanged_files"
        case changedFiles = "changed_files", deletedObjects = "deleted_objects", bytesSent = "bytes_sent"
    }

    mutating func add(_ path: String, _ outcome: ObjectPushOutcome) {
        files.append(File(path: path, outcome: outcome))
        if outcome.method == "unchanged" {
            unchangedFiles += 1
            return
        }
        changedFiles += 1
        totalBytes += outcome.length
        uploadedBytes += outcome.uploadedBytes
        copiedBytes += outcome.copiedBytes
        copyParts += outcome.copyParts
        uploadParts += outcome.uploadParts
    }
}

/// `slicesync push LOCAL s3://BUCKET/KEY` and `slicesync push DIR s3://BUCKET/PREFIX/`.
public final class PushSession: Sendable {
    let source: String
    let destination: S3Location
    let options: PushOptions
    let client: S3Client
    let publisher: Publisher
    let logger: Logger

    /// A push of `source` (a file or a directory) to `destination`; nothing happens until `run()`.
    public init(source: String, destination: S3Location, options: PushOptions, client: S3Client,
                exchange: HTTPExchange, logger: Logger, observer: PushProgressObserver? = nil) {
        self.source = source
        self.destination = destination
        self.options = options
        self.client = client
        self.logger = logger
        publisher = Publisher(client: client, exchange: exchange, options: options, logger: logger,
                              progress: PushProgress(observer))
    }

    /// Runs the push.
    public func run() async throws -> PushReport {
        let clock = ContinuousClock.now
        guard let stamp = try FileSystem.stamp(source) else {
            throw FileSystemError(.notFound, path: source, message: "\(source) does not exist")
        }
        var report = PushReport(outcome: "pushed", source: source, destination: destination.description)
        if stamp.isDirectory {
            var prefix = destination
            if !prefix.isPrefix { prefix.key += "/" }
            report.destination = prefix.description
            try await pushTree(to: prefix, report: &report)
        } else if stamp.isRegularFile {
            var target = destination
            if target.isPrefix { target.key += Paths.basename(source) }
            report.destination = target.description
            try await pushFile(to: target, report: &report)
        } else {
            throw PublishError(.badArguments, "\(source) is neither a regular file nor a directory")
        }
        if options.dryRun {
            report.outcome = "dry-run"
        } else if report.changedFiles == 0 && report.deletedObjects == 0 {
            report.outcome = "unchanged"
        }
        let traffic = client.traffic
        let signatures = publisher.signatureRequests
        report.requests = traffic.requests + signatures.requests
        report.bytesSent = traffic.sent
        report.seconds = (ContinuousClock.now - clock).inSeconds
        return report
    }

    // MARK: - One file

    private func pushFile(to target: S3Location, report: inout PushReport) async throws {
        let signaturePath = try signLocalFile()
        let name = Paths.basename(target.key)
        guard !name.isEmpty, TreeNaming.isSignable(name) else {
            throw PublishError(.badArguments, "\(target) does not end in a file name that can be signed")
        }
        // Where the signature is (a tree may keep it at its root); the nearest place for a new one.
        let candidates = Self.signatureKeyCandidates(for: target.key)
        var signatureKey = candidates[0]
        let info = try await client.head(target.bucket, target.key)
        if info != nil {
            for candidate in candidates where try await client.head(target.bucket, candidate) != nil {
                signatureKey = candidate
                break
            }
        }
        if signatureKey != candidates[0] {
            let text = "the signature of \(target) is kept at \(signatureKey), in a pushed tree: push the tree to "
                + "keep its manifest current"
            logger.warning("\(text)")
        }
        let old = info.map { OldObject(location: target, info: $0, signatureKey: signatureKey) }
        let job = ObjectPushJob(localPath: source, signaturePath: signaturePath, destination: target,
                                signatureKey: signatureKey, destinationETag: info?.etag, old: old)
        let size = try FileSystem.stamp(source)?.size ?? 0
        publisher.progress.expect(size)
        report.add(source, try await publisher.push(job))
    }

    /// The signature of the local file, kept current in the user's cache (`push-signatures/`), so that
    /// pushing an unchanged file again reads nothing.
    private func signLocalFile() throws -> String {
        let directory = Paths.join(Paths.userCacheDirectory() ?? "/tmp", "push-signatures")
        try FileSystem.createDirectories(directory)
        let absolute = source.hasPrefix("/") ? source : Paths.join(FileManager.default.currentDirectoryPath, source)
        let name = String(SigV4Signer.payloadHash(Array(absolute.utf8)).prefix(32)) + TreeNaming.signatureSuffix
        let path = Paths.join(directory, name)
        let pool = HashingPool(threads: options.threads)
        defer { pool.shutdown() }
        var writer = SignatureFileWriter(parameters: try SigningParameters(), pool: pool)
        writer.digestCache = SliceDigestCache.standard()
        _ = try writer.update(filePath: source, signaturePath: path)
        return path
    }

    /// For `a/b/f`: `a/b/.slicesync/f.slicesync`, `a/.slicesync/b/f.slicesync`, `.slicesync/a/b/f.slicesync`,
    /// where the client looks for it.
    static func signatureKeyCandidates(for key: String) -> [String] {
        let components = key.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        return stride(from: components.count - 1, through: 0, by: -1).map { depth in
            (components[..<depth] + [TreeNaming.signatureDirectory] + components[depth...])
                .joined(separator: "/") + TreeNaming.signatureSuffix
        }
    }

    // MARK: - A tree

    /// Whether the signature directory holds a zsync control file (looked for until one is found).
    static func holdsControlFiles(_ directory: String) -> Bool {
        guard let entries = try? FileSystem.list(directory) else { return false }
        for entry in entries {
            if entry.name.hasSuffix(TreeNaming.zsyncSuffix), !TreeNaming.isReserved(entry.name) { return true }
            let path = Paths.join(directory, entry.name)
            guard let (stamp, isLink) = (try? FileSystem.linkStamp(path)) ?? nil, !isLink else { continue }
            if stamp.isDirectory, holdsControlFiles(path) { return true }
        }
        return false
    }

    private func pushTree(to prefix: S3Location, report: inout PushReport) async throws {
        let root = Paths.trimTrailingSlashes(source)
        // Sign the local tree as shash does: signatures already current cost nothing.
        var signingOptions = TreeSigningOptions(parameters: try SigningParameters())
        signingOptions.digestCache = SliceDigestCache.standard()
        // A tree signed with `shash --zsync` keeps its control files, and they are published too.
        let zsync = Self.holdsControlFiles(Paths.join(root, TreeNaming.signatureDirectory))
        signingOptions.writesZsync = zsync
        signingOptions.jobs = max(1, options.threads)
        let signed = TreeSigner(options: signingOptions, logger: logger).run(paths: [root])
        if let failure = signed.failures.first {
            throw FileSystemError(.io, path: failure.path, message: "cannot sign \(failure.path): \(failure.message)"
                + (signed.failures.count > 1 ? " (and \(signed.failures.count - 1) more)" : ""))
        }
        let manifestPath = Paths.join(Paths.join(root, TreeNaming.signatureDirectory), TreeManifest.fileName)
        let manifestBytes = try SystemFile.openForReading(manifestPath).readAll(limit: TreeManifest.maxTextBytes)
        let local = try TreeManifest.parse(manifestBytes)

        // What the prefix holds now, and what the last push said it holds.
        let listed = Dictionary(try await client.list(prefix.bucket, prefix: prefix.key).map { ($0.key, $0) },
                                uniquingKeysWith: { first, _ in first })
        let manifestKey = prefix.key + TreeNaming.signatureDirectory + "/" + TreeManifest.fileName
        var remoteEntries: [String: TreeManifest.FileHash] = [:]
        var remoteManifestETag: String?
        if let remote = try await client.get(prefix.bucket, manifestKey, limit: TreeManifest.maxTextBytes) {
            remoteManifestETag = remote.etag
            if let parsed = try? TreeManifest.parse(remote.bytes) {
                for entry in parsed.entries {
                    if case .file(_, _, _, let hash) = entry.kind { remoteEntries[entry.path] = hash }
                }
            } else {
                logger.warning("the manifest at s3://\(prefix.bucket)/\(manifestKey) cannot be read; it is replaced")
            }
        }
        // Moved and copied files: any listed object with the same content is a source for a copy.
        var byHash: [TreeManifest.FileHash: String] = [:]
        for (path, hash) in remoteEntries where listed[prefix.key + path] != nil { byHash[hash] = byHash[hash] ?? path }

        var jobs: [(path: String, job: ObjectPushJob)] = []
        var expected: Set<String> = [manifestKey]
        var missingSignatures: [(path: String, etag: String)] = []
        var controlFiles: [String] = []
        for entry in local.entries {
            guard case .file(let size, _, _, let hash) = entry.kind else { continue }
            let key = prefix.key + entry.path
            let signatureKey = TreeNaming.signaturePath(root: prefix.key, relativePath: entry.path)
            expected.insert(key)
            expected.insert(signatureKey)
            if zsync {
                let controlKey = TreeNaming.zsyncPath(forSignature: signatureKey)
                expected.insert(controlKey)
                let unchanged = listed[key]?.size == size && remoteEntries[entry.path] == hash
                if !unchanged || listed[controlKey] == nil { controlFiles.append(entry.path) }
            }
            let object = listed[key]
            let localPath = Paths.join(root, entry.path)
            let signaturePath = TreeNaming.signaturePath(root: root, relativePath: entry.path)
            if let object, object.size == size, remoteEntries[entry.path] == hash {
                report.add(entry.path, .unchanged(size))
                if listed[signatureKey] == nil { missingSignatures.append((entry.path, object.etag)) }
                continue
            }
            var old: OldObject?
            if let object {
                old = OldObject(location: S3Location(bucket: prefix.bucket, key: key),
                                info: S3ObjectInfo(etag: object.etag, size: object.size, metadata: [:]),
                                signatureKey: listed[signatureKey] != nil ? signatureKey : nil)
            }
            if let otherPath = byHash[hash], let other = listed[prefix.key + otherPath], other.size == size {
                let otherSignature = TreeNaming.signaturePath(root: prefix.key, relativePath: otherPath)
                old = OldObject(location: S3Location(bucket: prefix.bucket, key: prefix.key + otherPath),
                                info: S3ObjectInfo(etag: other.etag, size: other.size, metadata: [:]),
                                signatureKey: otherSignature, identical: true)
            }
            jobs.append((entry.path, ObjectPushJob(localPath: localPath, signaturePath: signaturePath,
                destination: S3Location(bucket: prefix.bucket, key: key), signatureKey: signatureKey,
                destinationETag: object?.etag, old: old)))
            publisher.progress.expect(size)
        }

        // Deletions are decided before anything changes, so a refusal changes nothing.
        var extra: [String] = []
        if options.delete {
            // Only below the prefix, whatever the listing says.
            extra = listed.keys.filter { $0.hasPrefix(prefix.key) && !expected.contains($0) }.sorted()
            let files = local.entries.contains { if case .file = $0.kind { true } else { false } }
            if !files && !extra.isEmpty {
                throw PublishError(.deleteRefused, "\(source) holds no files: --delete would empty \(prefix); "
                    + "nothing was changed")
            }
            if extra.count > options.maxDelete && !options.force {
                throw PublishError(.deleteRefused, "--delete would remove \(extra.count) objects below \(prefix), "
                    + "more than --max-delete \(options.maxDelete); nothing was changed; pass --force or raise "
                    + "--max-delete")
            }
        }

        let outcomes = Mutex<[(String, ObjectPushOutcome)]>([])
        let failures = Mutex<[(String, Error)]>([])
        let publisher = publisher
        // Files at once share the requests: each file's parts take the rest.
        try await forEachConcurrently(jobs, width: max(1, options.jobs / 2)) { item in
            do {
                let outcome = try await publisher.push(item.job)
                outcomes.withLock { $0.append((item.path, outcome)) }
            } catch let error as PublishError where error.code == .remoteChanged || error.code == .accessDenied {
                throw error
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                publisher.logger.error("\(item.path): \(error)")
                failures.withLock { $0.append((item.path, error)) }
            }
        }
        for (path, outcome) in outcomes.withLock({ $0 }).sorted(by: { $0.0 < $1.0 }) { report.add(path, outcome) }
        report.files.sort { $0.path < $1.path }
        let failed = failures.withLock { $0 }
        if let first = failed.first {
            throw PublishError(.rejected, "\(failed.count) file(s) could not be pushed (first: \(first.0): "
                + "\(first.1)); the manifest was not updated; run the push again")
        }
        report.deletedObjects = extra.count
        if options.dryRun { return }
        for missing in missingSignatures {
            try await client.put(prefix.bucket, TreeNaming.signaturePath(root: prefix.key, relativePath: missing.path),
                body: try .wholeFile(TreeNaming.signaturePath(root: root, relativePath: missing.path)),
                headers: [("x-amz-meta-" + signedETagMetadata, missing.etag)])
        }
        for path in controlFiles {
            let local = TreeNaming.zsyncPath(forSignature: TreeNaming.signaturePath(root: root, relativePath: path))
            guard try FileSystem.stamp(local) != nil else { continue }
            try await client.put(prefix.bucket, TreeNaming.zsyncPath(forSignature: TreeNaming.signaturePath(
                root: prefix.key, relativePath: path)), body: try .wholeFile(local),
                headers: [("Content-Type", "application/x-zsync")])
        }
        // The manifest last, guarded: a concurrent push of the same tree makes this one fail.
        let condition = remoteManifestETag.map { ("If-Match", $0) } ?? ("If-None-Match", "*")
        do {
            try await client.put(prefix.bucket, manifestKey, body: .bytes(manifestBytes),
                                 headers: [("Content-Type", "application/octet-stream"), condition])
        } catch let error as PublishError where error.code == .remoteChanged {
            throw PublishError(.remoteChanged, "the manifest of \(prefix) changed during the push (another push?); "
                + "the files are up, the manifest was not replaced; run the push again", status: error.status,
                s3Code: error.s3Code)
        }
        if report.changedFiles > 0 || !extra.isEmpty {
            logger.info("published the manifest of \(prefix)")
        }
        // Deleted after the new manifest is up: no reader is sent to an object that is gone.
        try await forEachConcurrently(extra, width: options.jobs) { key in
            try await self.client.delete(prefix.bucket, key)
            self.logger.info("deleted s3://\(prefix.bucket)/\(key)")
        }
    }
}
