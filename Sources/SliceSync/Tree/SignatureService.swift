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

/// Options of the service that keeps a tree's signatures current.
public struct SignatureServiceOptions: Sendable {
    /// What and how to sign, as for a one-shot run.
    public var signing: TreeSigningOptions
    /// How long a file must stay closed and unchanged before it is hashed.
    public var settle: Duration = .seconds(2)
    /// How often the whole tree is checked again, events or not (network file systems send none).
    public var rescanInterval: Duration = .seconds(600)
    /// Files at least this large are hashed one at a time, each with every hashing thread.
    public var largeFileSize = 64 << 20
    /// Files handed to the hashing threads at most at once; the rest wait as paths, not as work.
    public var dispatchLimit = 64
    /// Called (on the service's thread) each time the tree's manifest was rewritten.
    public var manifestWritten: (@Sendable () -> Void)?

    /// Options with the given signing options and defaults for the rest.
    public init(signing: TreeSigningOptions) {
        self.signing = signing
    }
}

/// Keeps the signatures of one tree current as it changes: an initial pass like one-shot `shash`, then
/// inotify events (with a settle period), plus a full rescan on queue overflow and at a fixed interval.
///
/// `run()` blocks its thread until `stop()` is called; hashing runs on `signing.jobs` threads of its own.
public final class SignatureService: @unchecked Sendable {
    /// The tree's root.
    public let root: String
    /// The options.
    public let options: SignatureServiceOptions
    private let logger: Logger
    private let cancellation = CancellationFlag()
    private let watcher: DirectoryWatcher
    private let work: WorkQueue
    /// Writes, checks and moves signatures; the hashing threads use a copy with their pool.
    private let writer: SignatureFileWriter
    /// The signing options with the service's cancellation, so a stop also ends a walk in progress.
    private let signing: TreeSigningOptions

    /// Everything below is owned by the thread that runs `run()`.
    private var watches: [Int32: String] = [:]
    private var pending: [String: PendingFile] = [:]
    private var queue = DueHeap()
    private var nextToken = 0
    private var inFlight: Set<String> = []
    private var scan = ScanProgress()
    private var nextRescan = ContinuousClock.now
    private var reportedWatchLimit = false
    /// The tree changed since the manifest was last written: it is written again once every pending
    /// file is signed (the manifest only lists files whose signatures are current).
    private var manifestStale = true

    /// A file waiting to settle before it is hashed.
    struct PendingFile {
        /// When the last change was seen.
        var lastChange: ContinuousClock.Instant
        /// Opened for writing (created or modified) and not closed since.
        var writing: Bool
        /// Hash even when the signature looks current: it changed while it was being hashed.
        var force: Bool
        /// The full scan it is counted in, if any.
        var scanID: Int?
        /// The file's stamp when it was last looked at.
        var stamp: FileStamp?
        /// Tells this entry's place in the schedule from earlier places of the same path.
        var token = 0
        /// When its place in the schedule comes up.
        var scheduled = ContinuousClock.Instant.now

        /// When the file may be hashed.
        func due(settle: Duration, writerGrace: Duration) -> ContinuousClock.Instant {
            lastChange + (writing ? writerGrace : settle)
        }
    }

    /// Counts of one full scan, logged once its last file is done.
    struct ScanProgress {
        var id = 0
        var outstanding = 0
        var active = false
        var isInitial = true
        var report = TreeSigningReport()
        var started = ContinuousClock.now
    }

    /// Prepares the service; nothing happens until `run()`.
    public init(root: String, options: SignatureServiceOptions, logger: Logger) throws(FileSystemError) {
        self.root = Paths.trimTrailingSlashes(root)
        self.options = options
        self.logger = logger
        guard let stamp = try FileSystem.stamp(self.root), stamp.isDirectory else {
            throw FileSystemError(.notFound, path: root,
                message: "\(root) is not a directory; the service watches a directory tree")
        }
        var signing = options.signing
        signing.cancellation = cancellation
        self.signing = signing
        watcher = try DirectoryWatcher()
        var writer = SignatureFileWriter(parameters: options.signing.parameters, pool: nil)
        writer.cancellation = cancellation
        writer.writesZsync = options.signing.writesZsync
        // Inotify reports every later write, and a file is hashed only after it settled, so a
        // signature need not be made provisional for a recent modification time.
        writer.racyWindow = 0
        self.writer = writer
        work = WorkQueue(writer: writer, threads: max(1, options.signing.jobs), largeFileSize: options.largeFileSize,
            cancellation: cancellation, logger: logger)
    }

    /// Asks `run()` to return: no new file is started and the files being hashed are abandoned.
    public func stop() {
        cancellation.cancel()
        watcher.wake()
    }

    /// Watches and signs until `stop()`.
    public func run() {
        work.onFinished = { [watcher] in watcher.wake() }
        work.start()
        defer { work.shutdown() }
        fullScan(initial: true)
        while !cancellation.isCancelled {
            let now = ContinuousClock.now
            if now >= nextRescan { fullScan(initial: false) }
            dispatchSettledFiles()
            handleFinishedWork()
            updateManifestIfSettled()
            switch watcher.wait(timeoutMilliseconds: nextTimeout()) {
            case .events(let events):
                logger.trace("events: \(events)")
                handle(events)
            case .timedOut, .woken: break
            }
        }
        logger.debug("signature service stopped")
    }

    // MARK: - Scans

    /// Watches every directory and queues every file, as the one-shot signer would sign them; removes
    /// orphaned signatures at once (they depend only on which files exist).
    ///
    /// After a queue overflow, events were lost, so no pending file is still taken to be open for
    /// writing (its close may have been among them); a writer still at work sets that again.
    private func fullScan(initial: Bool, eventsLost: Bool = false) {
        nextRescan = ContinuousClock.now + options.rescanInterval
        watchTree(relative: "")
        let (tasks, collector) = filesToSign(under: root)
        if !cancellation.isCancelled {
            TreeSigner(options: signing, logger: logger).sweepOrphans(root: root, report: collector)
        }
        scan = ScanProgress(id: scan.id + 1, outstanding: 0, active: true, isInitial: initial,
            report: collector.snapshot, started: .now)
        let now = ContinuousClock.now
        let recent = Date().timeIntervalSince1970 - options.settle.inSeconds
        for task in tasks {
            let relative = relativePath(of: task.filePath)
            scan.outstanding += 1
            if var existing = pending[relative] {
                // A file still being written keeps waiting; the scan does not restart its clock.
                existing.scanID = scan.id
                pending[relative] = existing
                if eventsLost && existing.writing {
                    existing.writing = false
                    existing.lastChange = now
                    schedule(relative, existing)
                }
                continue
            }
            // A file modified within the settle period may still be written: it waits like one
            // reported by an event.
            let stamp = try? FileSystem.stamp(task.filePath)
            let modified = stamp.map { Double($0.mtimeSeconds) + Double($0.mtimeNanoseconds) / 1e9 } ?? 0
            let lastChange = modified > recent ? now : now - options.settle
            schedule(relative,
                PendingFile(lastChange: lastChange, writing: false, force: false, scanID: scan.id, stamp: stamp))
        }
        finishScanIfDone()
    }

    /// The files below `path` that one-shot signing would sign, and what the walk had to report.
    private func filesToSign(under path: String) -> (tasks: [TreeSigner.SigningJob], report: ReportCollector) {
        let report = ReportCollector()
        var tasks: [TreeSigner.SigningJob] = []
        var roots: [String] = []
        TreeSigner(options: signing, logger: logger).collect(path: path, into: &tasks, roots: &roots, report: report)
        return (tasks, report)
    }

    private func finishScanIfDone() {
        guard scan.active, scan.outstanding == 0 else { return }
        scan.active = false
        let report = scan.report
        let elapsed = (ContinuousClock.now - scan.started).inSeconds
        let what = scan.isInitial ? "signatures up to date" : "rescan done"
        let message = "\(what): \(report.filesHashed) signed, \(report.filesUpToDate) already current,"
            + " \(report.signaturesRemoved) removed, \(report.failures.count) failed,"
            + " \(watches.count) directories watched (\(formatFixed(elapsed, places: 1)) s)"
        if scan.isInitial || report.filesHashed + report.signaturesRemoved + report.failures.count > 0 {
            logger.info("\(message)")
        } else {
            logger.debug("\(message)")
        }
    }

    /// Adds watches for a directory and every directory below it that has none yet.
    private func watchTree(relative: String) {
        guard !cancellation.isCancelled else { return }
        let directory = Paths.join(root, relative)
        switch watcher.add(directory) {
        case .success(let watch):
            watches[watch] = relative
        case .failure(.limitReached):
            if !reportedWatchLimit {
                reportedWatchLimit = true
                let current = (try? String(contentsOfFile: "/proc/sys/fs/inotify/max_user_watches",
                    encoding: .utf8)).map { $0.filter { !$0.isWhitespace } } ?? "?"
                let raised = max((Int(current) ?? 8192) * 4, 524_288)
                logger.error("""
                    cannot watch \(directory): the inotify watch limit (fs.inotify.max_user_watches = \(current)) is \
                    reached; raise it with 'sysctl fs.inotify.max_user_watches=\(raised)'. Until then, changes there \
                    are found by the rescan every \(describe(options.rescanInterval))
                    """)
            }
            return
        case .failure(.vanished):
            return
        case .failure(.other(let code)):
            logger.error("cannot watch \(directory): \(String(cString: strerror(code)))")
            return
        }
        guard signing.recursive, let entries = try? FileSystem.list(directory) else { return }
        for entry in entries where !TreeNaming.isReserved(entry.name) {
            // Linked directories are not followed, as in one-shot signing.
            guard entry.kind == .directory || (entry.kind == .unknown
                && (try? FileSystem.linkStamp(Paths.join(directory, entry.name)))??.stamp.isDirectory == true)
            else { continue }
            watchTree(relative: join(relative, entry.name))
        }
    }

    // MARK: - Events

    private func handle(_ events: [WatchEvent]) {
        if !events.isEmpty { manifestStale = true }
        var movedAway: [UInt32: (relative: String, isDirectory: Bool)] = [:]
        var moveOrder: [UInt32] = []
        let now = ContinuousClock.now
        for event in events {
            if event.watch == -1 && event.has(IN_Q_OVERFLOW) {
                logger.warning("the inotify event queue overflowed; rescanning the whole tree")
                fullScan(initial: false, eventsLost: true)
                continue
            }
            guard let directory = watches[event.watch] else { continue }
            if event.has(IN_IGNORED) {
                watches[event.watch] = nil
                continue
            }
            if event.has(IN_DELETE_SELF) || event.has(IN_MOVE_SELF) {
                if directory.isEmpty {
                    logger.error("""
                        \(root) itself was removed or moved; its signatures are kept current again once it is back \
                        (checked every rescan)
                        """)
                }
                continue
            }
            guard let name = event.name else {
                logger.warning("""
                    a name that is not valid UTF-8 changed in \(Paths.join(root, directory)); it is skipped
                    """)
                continue
            }
            guard !name.isEmpty, !TreeNaming.isReserved(name) else { continue }
            let relative = join(directory, name)
            if event.has(IN_MOVED_FROM) {
                movedAway[event.cookie] = (relative, event.isDirectory)
                moveOrder.append(event.cookie)
                continue
            }
            if event.has(IN_MOVED_TO), let source = movedAway.removeValue(forKey: event.cookie) {
                moved(from: source.relative, to: relative, isDirectory: event.isDirectory)
                continue
            }
            if event.isDirectory {
                guard signing.recursive else { continue }
                if event.has(IN_CREATE) || event.has(IN_MOVED_TO) { directoryAppeared(relative) }
                if event.has(IN_DELETE) { directoryRemoved(relative) }
                continue
            }
            if event.has(IN_DELETE) {
                fileRemoved(relative)
            } else if event.has(IN_CLOSE_WRITE) || event.has(IN_MOVED_TO) {
                touch(relative, now: now, writing: false)
            } else if event.has(IN_CREATE) {
                touch(relative, now: now, writing: Self.mayBeOpenForWriting(Paths.join(root, relative)))
            } else if event.has(IN_MODIFY) {
                touch(relative, now: now, writing: true)
            } else if event.has(IN_ATTRIB) {
                // A new modification time (touch, cp -p) without a writer; keeps a writer's state.
                touch(relative, now: now, writing: pending[relative]?.writing ?? false)
            }
        }
        // The other half of a rename never came: the entry left the tree.
        for cookie in moveOrder {
            guard let source = movedAway[cookie] else { continue }
            if source.isDirectory {
                directoryRemoved(source.relative)
            } else {
                fileRemoved(source.relative)
            }
        }
    }

    private func touch(_ relative: String, now: ContinuousClock.Instant, writing: Bool) {
        if var file = pending[relative] {
            // A later due time keeps the place (it is moved back when it comes up too early); an earlier
            // one, when a writer closed the file, takes a new place.
            file.lastChange = now
            file.writing = writing
            file.force = file.force || inFlight.contains(relative)
            pending[relative] = file
            if file.due(settle: options.settle, writerGrace: options.rescanInterval) < file.scheduled {
                schedule(relative, file)
            }
        } else {
            schedule(relative,
                PendingFile(lastChange: now, writing: writing, force: inFlight.contains(relative), scanID: nil,
                    stamp: nil))
        }
    }

    /// Gives a pending file a new place in the schedule, which makes any earlier place stale.
    private func schedule(_ relative: String, _ file: PendingFile, at due: ContinuousClock.Instant? = nil) {
        var file = file
        nextToken += 1
        file.token = nextToken
        file.scheduled = due ?? file.due(settle: options.settle, writerGrace: options.rescanInterval)
        pending[relative] = file
        queue.push(DueHeap.Entry(due: file.scheduled, token: file.token, relative: relative))
    }

    /// Whether a new entry may be a file someone is writing: symbolic links and new hard links to an
    /// existing file are created complete and are never closed after writing.
    private static func mayBeOpenForWriting(_ path: String) -> Bool {
        var st = stat()
        guard lstat(path, &st) == 0 else { return false }
        return (st.st_mode & S_IFMT) == S_IFREG && st.st_nlink <= 1
    }

    private func fileRemoved(_ relative: String) {
        forget(relative)
        removeSignature(TreeNaming.signaturePath(root: root, relativePath: relative))
    }

    private func directoryAppeared(_ relative: String) {
        watchTree(relative: relative)
        // Files may have been created before the watch existed: queue whatever is there now.
        let now = ContinuousClock.now
        for task in filesToSign(under: Paths.join(root, relative)).tasks {
            touch(relativePath(of: task.filePath), now: now, writing: false)
        }
    }

    private func directoryRemoved(_ relative: String) {
        let prefix = relative + "/"
        for (watch, directory) in watches where directory == relative || directory.hasPrefix(prefix) {
            watcher.remove(watch)
            watches[watch] = nil
        }
        for key in pending.keys where key.hasPrefix(prefix) {
            forget(key)
        }
        let signatures = Paths.join(Paths.join(root, TreeNaming.signatureDirectory), relative)
        guard (try? FileSystem.linkStamp(signatures))??.stamp.isDirectory == true else { return }
        do {
            let removed = try FileSystem.removeTree(signatures)
            logger.info("removed \(signatures)", metadata: ["signatures": "\(removed)"])
            pruneEmptyParents(of: signatures)
        } catch {
            logger.error("\(error.message)")
        }
    }

    /// A rename inside the tree: the signatures move with the entry, so nothing is hashed again.
    private func moved(from old: String, to new: String, isDirectory: Bool) {
        let signatureRoot = Paths.join(root, TreeNaming.signatureDirectory)
        if isDirectory {
            let oldPrefix = old + "/"
            for (watch, directory) in watches where directory == old || directory.hasPrefix(oldPrefix) {
                watches[watch] = new + directory.dropFirst(old.count)
            }
            for (key, file) in pending where key.hasPrefix(oldPrefix) {
                pending[key] = nil
                schedule(new + key.dropFirst(old.count), file)
            }
            let from = Paths.join(signatureRoot, old)
            let to = Paths.join(signatureRoot, new)
            if (try? FileSystem.linkStamp(from))??.stamp.isDirectory == true {
                do throws(FileSystemError) {
                    try FileSystem.removeTree(to)
                    try FileSystem.createDirectories(Paths.parent(of: to))
                    try FileSystem.rename(from, to: to)
                    logger.info("moved \(from) to \(to)")
                    pruneEmptyParents(of: from)
                } catch {
                    logger.error("\(error.message); the signatures under \(to) are written again")
                }
            }
            // Whatever moved in without a signature, or replaced one, is queued.
            directoryAppeared(new)
            return
        }
        let state = pending.removeValue(forKey: old)
        let from = TreeNaming.signaturePath(root: root, relativePath: old)
        let to = TreeNaming.signaturePath(root: root, relativePath: new)
        if state == nil, !inFlight.contains(old), moveSignature(from: from, to: to, oldName: Paths.basename(old),
            file: Paths.join(root, new)) {
            logger.info("moved \(from) to \(to)")
            return
        }
        removeSignature(from)
        var file = state ?? PendingFile(lastChange: .now, writing: false, force: false, scanID: nil, stamp: nil)
        file.lastChange = .now
        file.force = file.force || inFlight.contains(old)
        file.stamp = nil
        if let existing = pending.removeValue(forKey: new) { countDone(existing.scanID) }
        schedule(new, file)
    }

    /// Moves a current signature along with its renamed file; false when the file must be hashed again.
    private func moveSignature(from: String, to: String, oldName: String, file: String) -> Bool {
        do {
            guard try writer.moveSignature(from: from, oldFilename: oldName, to: to,
                filePath: file) else { return false }
            pruneEmptyParents(of: from)
            return true
        } catch {
            logger.error("\(error.message)")
            return false
        }
    }

    private func forget(_ relative: String) {
        if let file = pending.removeValue(forKey: relative) { countDone(file.scanID) }
    }

    /// Counts a file of a full scan as done, whatever became of it.
    private func countDone(_ scanID: Int?) {
        guard let scanID, scanID == scan.id, scan.active else { return }
        scan.outstanding -= 1
        finishScanIfDone()
    }

    /// Removes a signature and the zsync control file beside it, if any.
    private func removeSignature(_ path: String) {
        for file in [path, TreeNaming.zsyncPath(forSignature: path)] {
            guard (try? FileSystem.linkStamp(file)) ?? nil != nil else { continue }
            do {
                try FileSystem.removeFile(file)
                logger.info("removed \(file)")
            } catch {
                logger.error("\(error.message)")
            }
        }
        pruneEmptyParents(of: path)
    }

    /// Removes signature directories left empty, up to (not including) `.slicesync/` itself.
    private func pruneEmptyParents(of path: String) {
        let signatureRoot = Paths.join(root, TreeNaming.signatureDirectory)
        var directory = Paths.parent(of: path)
        while directory.hasPrefix(signatureRoot + "/"), FileSystem.removeDirectoryIfEmpty(directory) {
            directory = Paths.parent(of: directory)
        }
    }

    // MARK: - Hashing

    /// Hands every settled file to the hashing threads, up to the dispatch limit.
    private func dispatchSettledFiles() {
        let now = ContinuousClock.now
        var room = options.dispatchLimit - work.queued
        while room > 0, let top = queue.top, top.due <= now {
            queue.pop()
            guard var file = pending[top.relative], file.token == top.token else { continue }
            // A writer that never closed its file gets as long as a rescan interval before the file is
            // taken as finished.
            let due = file.due(settle: options.settle, writerGrace: options.rescanInterval)
            if due > now || inFlight.contains(top.relative) {
                schedule(top.relative, file, at: max(due, now + options.settle))
                continue
            }
            let path = Paths.join(root, top.relative)
            guard let stamp = try? FileSystem.stamp(path), stamp.isRegularFile, isSignedUnderPolicy(path) else {
                forget(top.relative)
                continue
            }
            if let seen = file.stamp, seen.contentMayDiffer(from: stamp) {
                // Changed without an event (a writable mapping, another machine): wait again.
                file.lastChange = now
                file.stamp = stamp
                schedule(top.relative, file)
                continue
            }
            pending[top.relative] = nil
            inFlight.insert(top.relative)
            work.submit(WorkItem(relative: top.relative, filePath: path,
                signaturePath: TreeNaming.signaturePath(root: root,
                    relativePath: top.relative), size: stamp.size, force: file.force, scanID: file.scanID))
            room -= 1
        }
    }

    /// Whether a path may be signed: a link that leaves the root is not, when the options say so.
    private func isSignedUnderPolicy(_ path: String) -> Bool {
        guard !signing.signsLinksLeavingRoot, (try? FileSystem.linkStamp(path))??.isSymlink == true else { return true }
        return TreeSigner.resolves(path, inside: root)
    }

    /// Writes the manifest again when the tree changed and nothing waits to be signed.
    private func updateManifestIfSettled() {
        guard manifestStale, pending.isEmpty, inFlight.isEmpty, work.queued == 0, !scan.active,
              !cancellation.isCancelled else { return }
        manifestStale = false
        var writer = ManifestWriter(root: root, logger: logger)
        writer.listsLinksLeavingRoot = signing.signsLinksLeavingRoot
        do {
            if try writer.update() {
                logger.debug("manifest updated")
                options.manifestWritten?()
            }
        } catch {
            logger.error("cannot write the tree's manifest: \(error.message)")
        }
    }

    private func handleFinishedWork() {
        for (item, outcome) in work.takeFinished() {
            inFlight.remove(item.relative)
            manifestStale = true
            if item.scanID == scan.id && scan.active {
                switch outcome {
                case .written(let bytes): scan.report.filesHashed += 1; scan.report.bytesHashed += bytes
                case .upToDate: scan.report.filesUpToDate += 1
                case .failed(let error): scan.report.failures.append(.init(path: item.filePath, message: error.message,
                    code: error.code.rawValue))
                case .cancelled: break
                }
                countDone(item.scanID)
            }
            // Deleted while it was hashed: the signature just written is an orphan.
            if pending[item.relative] == nil, (try? FileSystem.stamp(item.filePath))??.isRegularFile != true {
                removeSignature(item.signaturePath)
            }
        }
    }

    /// How long to wait for events: until the next file is due, the next rescan, or forever.
    private func nextTimeout() -> Int32 {
        var next = nextRescan
        if work.queued < options.dispatchLimit, let top = queue.top, top.due < next {
            next = top.due
        }
        let wait = (next - ContinuousClock.now).inSeconds
        if wait <= 0 { return 0 }
        return Int32(min(wait * 1000 + 1, Double(Int32.max)))
    }

    // MARK: - Paths

    private func relativePath(of path: String) -> String {
        String(path.dropFirst(root.count + 1))
    }

    private func join(_ directory: String, _ name: String) -> String {
        directory.isEmpty ? name : directory + "/" + name
    }
}

/// "10 minutes", "90 seconds": how often the rescan runs, for log lines.
private func describe(_ interval: Duration) -> String {
    let total = interval.inSeconds
    return total >= 120 ? "\(Int(total / 60)) minutes" : "\(Int(total.rounded())) seconds"
}

/// One file for the hashing threads.
struct WorkItem: Sendable {
    var relative: String
    var filePath: String
    var signaturePath: String
    var size: Int
    var force: Bool
    var scanID: Int?
}

/// How one file's signature came out.
enum WorkOutcome: Sendable {
    case written(Int)
    case upToDate
    case failed(FileSystemError)
    case cancelled
}

/// The service's hashing threads: a queue of files, large ones one at a time with the whole pool.
///
/// `@unchecked Sendable`: its variables are read and written only with `condition` held, except
/// `onFinished`, which is set once before `start()`.
final class WorkQueue: @unchecked Sendable {
    private let writer: SignatureFileWriter
    private let threadCount: Int
    private let largeFileSize: Int
    private let cancellation: CancellationFlag
    private let logger: Logger
    private let pool: HashingPool
    private let condition = ThreadCondition()
    private var items: [WorkItem] = []
    private var finished: [(WorkItem, WorkOutcome)] = []
    private var running = 0
    private var largeFileActive = false
    private var stopping = false
    private var threadsAlive = 0
    /// Called on a hashing thread after each file.
    var onFinished: @Sendable () -> Void = {}

    init(writer: SignatureFileWriter, threads: Int, largeFileSize: Int, cancellation: CancellationFlag,
        logger: Logger) {
        self.threadCount = threads
        self.largeFileSize = largeFileSize
        self.cancellation = cancellation
        self.logger = logger
        pool = HashingPool(threads: threads)
        var writer = writer
        writer.pool = pool
        self.writer = writer
    }

    /// Files submitted and not yet finished.
    var queued: Int {
        condition.lock()
        defer { condition.unlock() }
        return items.count + running
    }

    /// Starts the workers on the blocking pool: each blocks for as long as one file takes to hash.
    func start() {
        for _ in 0..<threadCount {
            BlockingPool.shared.run { [self] in loop() }
        }
    }

    func submit(_ item: WorkItem) {
        condition.lock()
        items.append(item)
        condition.broadcast()
        condition.unlock()
    }

    func takeFinished() -> [(WorkItem, WorkOutcome)] {
        condition.lock()
        defer { condition.unlock() }
        let done = finished
        finished.removeAll()
        return done
    }

    /// Stops the threads once the files in progress are abandoned, and waits for them.
    func shutdown() {
        condition.lock()
        stopping = true
        items.removeAll()
        condition.broadcast()
        while threadsAlive > 0 { condition.wait() }
        condition.unlock()
        pool.shutdown()
    }

    private func next() -> WorkItem? {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if stopping { return nil }
            // A large file waits until no other large file is hashed; small ones go first meanwhile.
            if let index = items.firstIndex(where: { $0.size < largeFileSize || !largeFileActive }) {
                let item = items.remove(at: index)
                if item.size >= largeFileSize { largeFileActive = true }
                running += 1
                return item
            }
            condition.wait()
        }
    }

    private func loop() {
        condition.lock()
        threadsAlive += 1
        condition.unlock()
        while let item = next() {
            let outcome: WorkOutcome
            do throws(FileSystemError) {
                switch try writer.update(filePath: item.filePath, signaturePath: item.signaturePath,
                    force: item.force) {
                case .written(let bytes):
                    logger.info("signed \(item.filePath)",
                        metadata: ["bytes": "\(bytes)", "signature": "\(item.signaturePath)"])
                    outcome = .written(bytes)
                case .upToDate:
                    outcome = .upToDate
                }
            } catch where error.code == .cancelled {
                outcome = .cancelled
            } catch where error.code == .notFound {
                outcome = .upToDate
            } catch {
                if !cancellation.isCancelled { logger.error("\(error.message)") }
                outcome = .failed(error)
            }
            condition.lock()
            running -= 1
            if item.size >= largeFileSize { largeFileActive = false }
            finished.append((item, outcome))
            condition.broadcast()
            condition.unlock()
            onFinished()
        }
        condition.lock()
        threadsAlive -= 1
        condition.broadcast()
        condition.unlock()
    }
}

/// Pending files ordered by when they may be hashed. A file that was moved earlier in the schedule also
/// leaves its old entry behind; the token tells the stale one, which is skipped when it comes up.
struct DueHeap {
    struct Entry {
        var due: ContinuousClock.Instant
        var token: Int
        var relative: String
    }

    private var entries: [Entry] = []

    var top: Entry? { entries.first }

    mutating func push(_ entry: Entry) {
        entries.append(entry)
        var child = entries.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard entries[child].due < entries[parent].due else { break }
            entries.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() {
        guard !entries.isEmpty else { return }
        entries.swapAt(0, entries.count - 1)
        entries.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < entries.count && entries[left].due < entries[smallest].due { smallest = left }
            if right < entries.count && entries[right].due < entries[smallest].due { smallest = right }
            guard smallest != parent else { return }
            entries.swapAt(parent, smallest)
            parent = smallest
        }
    }
}
