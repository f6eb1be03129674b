import Synchronization
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Logging

/// Options of a one-shot signing run over files and directory trees.
public struct TreeSigningOptions: Sendable {
    /// The format and sizes to write.
    public var parameters: SigningParameters
    /// Whether to descend into subdirectories.
    public var recursive = true
    /// Whether to rewrite signatures that are already current.
    public var force = false
    /// Whether a zsync control file is kept beside each signature (`--zsync`).
    public var writesZsync = false
    /// Where the slice digests of the files signed are kept for `slicesync` on this machine, or nil.
    public var digestCache: SliceDigestCache?
    /// Threads used for hashing, and files hashed at once.
    public var jobs = ProcessInfo.processInfo.activeProcessorCount
    /// Age after which a temporary file left in `.slicesync/` by a crashed run is removed, in seconds.
    public var staleTemporaryAge = 3600
    /// Whether symbolic links to files outside the signed directory are signed (as `shash` does); a
    /// server sets this to false, since it would not serve those files.
    public var signsLinksLeavingRoot = true
    /// When set, the run stops early once it is cancelled: no new file is started and the one being
    /// hashed is abandoned without leaving a temporary file.
    public var cancellation: CancellationFlag?

    /// Options with the given parameters and defaults for the rest.
    public init(parameters: SigningParameters) {
        self.parameters = parameters
    }
}

/// What a signing run did, for the summary line and `--json`.
public struct TreeSigningReport: Sendable, Codable, Equatable {
    /// One file or path that could not be handled.
    public struct Failure: Sendable, Codable, Equatable {
        /// The path concerned.
        public var path: String
        /// What went wrong.
        public var message: String
        /// The stable error code.
        public var code: String
    }

    /// Files whose signature was written.
    public var filesHashed = 0
    /// Files whose signature was already current.
    public var filesUpToDate = 0
    /// Orphaned signatures (and stale temporary files) removed.
    public var signaturesRemoved = 0
    /// Bytes hashed.
    public var bytesHashed = 0
    /// Wall-clock seconds the run took.
    public var seconds = 0.0
    /// Paths that failed.
    public var failures: [Failure] = []

    /// Bytes hashed per second.
    public var bytesPerSecond: Double { seconds > 0 ? Double(bytesHashed) / seconds : 0 }

    /// Creates an empty report.
    public init() {}

    enum CodingKeys: String, CodingKey {
        case filesHashed = "files_hashed", filesUpToDate = "files_up_to_date", signaturesRemoved = "signatures_removed"
        case bytesHashed = "bytes_hashed", seconds, failures
    }
}

/// Signs every regular file under the given paths and removes orphaned signatures: `shash` one-shot.
public struct TreeSigner: Sendable {
    /// The run's options.
    public var options: TreeSigningOptions
    /// Where progress and problems are logged.
    public var logger: Logger

    /// Creates a signer.
    public init(options: TreeSigningOptions, logger: Logger) {
        self.options = options
        self.logger = logger
    }

    /// One file to sign.
    struct SigningJob: Sendable {
        var filePath: String
        var signaturePath: String
    }

    /// Signs every file under `paths` (files or directories) and removes orphans under each directory.
    public func run(paths: [String]) -> TreeSigningReport {
        let clock = ContinuousClock.now
        let report = ReportCollector()
        var tasks: [SigningJob] = []
        var directoryRoots: [String] = []
        for raw in paths {
            let path = Paths.trimTrailingSlashes(raw)
            collect(path: path, into: &tasks, roots: &directoryRoots, report: report)
        }
        let pool = HashingPool(threads: options.jobs)
        defer { pool.shutdown() }
        var writer = SignatureFileWriter(parameters: options.parameters, pool: pool)
        writer.cancellation = options.cancellation
        writer.writesZsync = options.writesZsync
        writer.digestCache = options.digestCache
        runConcurrently(tasks, width: options.jobs) { [writer] task in
            if options.cancellation?.isCancelled == true { return }
            do throws(FileSystemError) {
                switch try writer.update(filePath: task.filePath, signaturePath: task.signaturePath,
                    force: options.force) {
                case .written(let bytes):
                    report.update { $0.filesHashed += 1; $0.bytesHashed += bytes }
                    logger.info("signed \(task.filePath)",
                        metadata: ["bytes": "\(bytes)", "signature": "\(task.signaturePath)"])
                case .upToDate:
                    report.update { $0.filesUpToDate += 1 }
                    logger.debug("up to date: \(task.filePath)")
                }
            } catch where error.code == .cancelled {
                logger.debug("stopped signing \(task.filePath)")
            } catch {
                report.fail(task.filePath, error, logger: logger)
            }
        }
        for root in Set(directoryRoots).sorted() where options.cancellation?.isCancelled != true {
            sweepOrphans(root: root, report: report)
            var manifest = ManifestWriter(root: root, logger: logger)
            manifest.listsLinksLeavingRoot = options.signsLinksLeavingRoot
            do throws(FileSystemError) {
                try manifest.update()
            } catch {
                report.fail(manifest.path, error, logger: logger)
            }
        }
        var result = report.snapshot
        let elapsed = ContinuousClock.now - clock
        result.seconds = elapsed.inSeconds
        return result
    }

    /// Lists the files under `path` to sign; directories go to `roots` for the orphan sweep.
    func collect(path: String, into tasks: inout [SigningJob], roots: inout [String], report: ReportCollector) {
        if path.split(separator: "/").contains(where: { TreeNaming.isReserved(String($0)) }) {
            report.fail(path, "\(path) is a signature directory or a temporary file of slicesync; it is never signed",
                FileSystemError.Code.invalidPath.rawValue, logger: logger)
            return
        }
        do throws(FileSystemError) {
            guard let stamp = try FileSystem.stamp(path) else {
                throw FileSystemError(.notFound, path: path, message: "\(path) does not exist")
            }
            if stamp.isDirectory {
                roots.append(path)
                try walk(root: path, relative: "", into: &tasks, report: report)
            } else if stamp.isRegularFile {
                let name = Paths.basename(path)
                tasks.append(SigningJob(filePath: path,
                    signaturePath: TreeNaming.signaturePath(root: Paths.parent(of: path), relativePath: name)))
            } else {
                throw FileSystemError(.notRegularFile, path: path,
                    message: "\(path) is neither a regular file nor a directory")
            }
        } catch {
            report.fail(path, error, logger: logger)
        }
    }

    private func walk(root: String, relative: String, into tasks: inout [SigningJob],
        report: ReportCollector) throws(FileSystemError) {
        // A stop during the walk of a huge tree need not wait for the walk to end.
        if options.cancellation?.isCancelled == true { return }
        let directory = Paths.join(root, relative)
        let entries = try FileSystem.list(directory) { dir in
            report.fail(dir, "\(dir) holds a name that is not valid UTF-8; that entry is skipped",
                FileSystemError.Code.invalidPath.rawValue, logger: logger)
        }
        for entry in entries where !TreeNaming.isReserved(entry.name) {
            let relativePath = relative.isEmpty ? entry.name : relative + "/" + entry.name
            let path = Paths.join(root, relativePath)
            var kind = entry.kind
            if kind == .symlink || kind == .unknown {
                // Symbolic links to files are signed as the file; linked directories are not followed,
                // which keeps walks finite and inside the tree.
                let followed = try? FileSystem.stamp(path)
                if !options.signsLinksLeavingRoot && !Self.resolves(path, inside: root) {
                    logger.debug("not signing \(path): the link leaves \(root)")
                    continue
                } else if followed?.isRegularFile == true {
                    kind = .file
                } else if entry.kind == .unknown && followed?.isDirectory == true {
                    kind = .directory
                } else {
                    logger.debug("not following \(path)")
                    continue
                }
            }
            switch kind {
            case .file:
                guard TreeNaming.isSignable(entry.name) else {
                    report.fail(path,
                        "\(path) has a control character in its name or a name longer than 255 bytes; it cannot be " +
                            "described in a signature", FileSystemError.Code.invalidPath.rawValue, logger: logger)
                    continue
                }
                tasks.append(SigningJob(filePath: path, signaturePath: TreeNaming.signaturePath(root: root,
                    relativePath: relativePath)))
            case .directory where options.recursive:
                do {
                    try walk(root: root, relative: relativePath, into: &tasks, report: report)
                } catch {
                    report.fail(path, error, logger: logger)
                }
            default:
                continue
            }
        }
    }

    /// Whether `path`, with every link followed, is `root` or below it.
    static func resolves(_ path: String, inside root: String) -> Bool {
        guard let resolvedRoot = ServedTree.realPath(root), let resolved = ServedTree.realPath(path)
            else { return false }
        return resolved.hasPrefix(resolvedRoot == "/" ? "/" : resolvedRoot + "/")
    }

    /// Removes signatures whose file is gone, stale temporary files and empty signature directories.
    func sweepOrphans(root: String, report: ReportCollector) {
        let signatureRoot = Paths.join(root, TreeNaming.signatureDirectory)
        guard (try? FileSystem.stamp(signatureRoot))??.isDirectory == true else { return }
        sweep(root: root, signatureRoot: signatureRoot, relative: "", report: report)
    }

    private func sweep(root: String, signatureRoot: String, relative: String, report: ReportCollector) {
        let directory = Paths.join(signatureRoot, relative)
        let entries: [FileSystem.Entry]
        do {
            entries = try FileSystem.list(directory)
        } catch {
            report.fail(directory, error, logger: logger)
            return
        }
        let now = Date().timeIntervalSince1970
        for entry in entries {
            let relativePath = relative.isEmpty ? entry.name : relative + "/" + entry.name
            let path = Paths.join(signatureRoot, relativePath)
            if entry.kind == .directory {
                guard options.recursive else { continue }
                sweep(root: root, signatureRoot: signatureRoot, relative: relativePath, report: report)
                if FileSystem.removeDirectoryIfEmpty(path) { logger.debug("removed empty directory \(path)") }
                continue
            }
            if TreeNaming.isTemporary(entry.name) {
                guard let stamp = try? FileSystem.linkStamp(path),
                    now - Double(stamp.stamp.mtimeSeconds) > Double(options.staleTemporaryAge) else { continue }
                remove(path, because: "stale temporary file", report: report)
                continue
            }
            // Signatures, and the zsync control files `--zsync` keeps beside them.
            guard let suffix = [TreeNaming.signatureSuffix, TreeNaming.zsyncSuffix].first(where: entry.name.hasSuffix)
                else { continue }
            let sourceRelative = String(relativePath.dropLast(suffix.count))
            let components = sourceRelative.split(separator: "/").map(String.init)
            let source = Paths.join(root, sourceRelative)
            let sourceIsSigned = !components.contains(where: TreeNaming.isReserved)
                && !sourceRelative.isEmpty
                && (try? FileSystem.stamp(source))??.isRegularFile == true
            if !sourceIsSigned {
                let what = suffix == TreeNaming.zsyncSuffix ? "orphaned control file" : "orphaned signature"
                remove(path, because: "\(what) (\(source) is gone)", report: report)
            }
        }
    }

    private func remove(_ path: String, because reason: String, report: ReportCollector) {
        do {
            try FileSystem.removeFile(path)
            report.update { $0.signaturesRemoved += 1 }
            logger.info("removed \(path)", metadata: ["reason": "\(reason)"])
        } catch {
            report.fail(path, error, logger: logger)
        }
    }
}

/// A report shared by the threads of one run.
final class ReportCollector: Sendable {
    private let report = Mutex(TreeSigningReport())

    func update(_ change: (inout TreeSigningReport) -> Void) {
        report.withLock { change(&$0) }
    }

    func fail(_ path: String, _ error: FileSystemError, logger: Logger) {
        fail(path, error.message, error.code.rawValue, logger: logger)
    }

    func fail(_ path: String, _ message: String, _ code: String, logger: Logger) {
        logger.error("\(message)")
        update { $0.failures.append(.init(path: path, message: message, code: code)) }
    }

    var snapshot: TreeSigningReport { report.withLock { $0 } }
}

/// Runs `body` for every element on `width` threads and waits for all of them.
///
/// On the blocking pool, because the callers (scans, hashing) block for seconds on purpose: on Swift's
/// cooperative pool of one thread per core they would starve every task, the HTTP client's included.
func runConcurrently<T: Sendable>(_ items: [T], width: Int, _ body: @escaping @Sendable (T) -> Void) {
    guard !items.isEmpty else { return }
    let threads = max(1, min(width, items.count))
    if threads == 1 {
        items.forEach(body)
        return
    }
    let state = ConcurrentCursor(count: items.count, threads: threads)
    for _ in 0..<threads {
        BlockingPool.shared.run {
            while let index = state.next() { body(items[index]) }
            state.threadFinished()
        }
    }
    state.waitForAll()
}

/// Hands out indices to threads and lets the caller wait until they are all done.
///
/// `@unchecked Sendable`: its variables are read and written only with `condition` held.
private final class ConcurrentCursor: @unchecked Sendable {
    private let condition = ThreadCondition()
    private var nextIndex = 0
    private let count: Int
    private var running: Int

    init(count: Int, threads: Int) {
        self.count = count
        running = threads
    }

    func next() -> Int? {
        condition.lock()
        defer { condition.unlock() }
        guard nextIndex < count else { return nil }
        nextIndex += 1
        return nextIndex - 1
    }

    func threadFinished() {
        condition.lock()
        running -= 1
        condition.broadcast()
        condition.unlock()
    }

    func waitForAll() {
        condition.lock()
        while running > 0 { condition.wait() }
        condition.unlock()
    }
}
