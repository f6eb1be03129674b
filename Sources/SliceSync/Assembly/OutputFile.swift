import CSliceSyncSystem
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The file being rebuilt: a temporary file next to the destination, replaced atomically at the end.
///
/// Interrupted work is kept as `DEST.slicesync.part`, which the next run reuses as an alike file.
/// An in-place update's repairs write into the destination itself (`init(updating:)`).
///
/// `@unchecked Sendable`: every stored property is a `let`, and `SystemFile`'s positioned reads and
/// writes need no lock.
final class OutputFile: @unchecked Sendable {
    let destination: String
    let temporaryPath: String
    let file: SystemFile
    let length: Int
    /// Writes go into the destination itself: nothing to rename, nothing to keep or discard.
    let inPlace: Bool
    /// Flushes what was written while the writing goes on; `commit` reports its failures.
    let flushAhead: FlushAhead
    /// The same file opened with `O_DIRECT`, for the whole pages of the assembly's long local runs; nil in
    /// place (the journal's order of writes is buffered), for smaller files (`DirectWrites.minimumFile`)
    /// or where the file system refuses it.
    private let direct: DirectWrites?

    /// Whether long local runs may go past the page cache, and whether they now do.
    var writesDirect: Bool { direct != nil }
    var directEngaged: Bool { direct?.engaged ?? false }

    /// The partial-work path of a destination.
    static func partialPath(of destination: String) -> String { destination + TreeNaming.partialSuffix }

    /// `directFrom`: the length from which long local runs may go past the page cache; `directAtOnce`
    /// sends them there from the start instead of once the page cache is slow (for tests).
    init(destination: String, length: Int, directFrom: Int = DirectWrites.minimumFile,
         directAtOnce: Bool = false) throws(FileSystemError) {
        self.destination = destination
        self.length = length
        temporaryPath = TreeNaming.temporaryPath(for: destination)
        inPlace = false
        file = try SystemFile.createExclusive(temporaryPath, mode: 0o600)
        flushAhead = FlushAhead(file: file)
        direct = length >= directFrom ? DirectWrites(file, engaged: directAtOnce) : nil
        // The blocks are reserved up front: a disk without room for the file fails here, before any
        // work, and writes into reserved blocks cost less than delayed allocation does at writeback
        // (the tarball's update: median 0.286 -> 0.256 s over 7 alternating runs on ext4). Where the
        // file system cannot reserve, the file is sparse until written, as before.
        let reserved = length > 0 ? slicesync_preallocate(file.descriptor, off_t(length)) : 0
        if reserved == ENOSPC || reserved == EDQUOT {
            let error = FileSystemError(errno: reserved, operation: "allocate", path: temporaryPath)
            try? FileSystem.removeFile(temporaryPath)
            throw error
        }
        // A reservation sets the length too.
        if reserved != 0, ftruncate(file.descriptor, off_t(length)) != 0 {
            let error = FileSystemError(errno: errno, operation: "size", path: temporaryPath)
            try? FileSystem.removeFile(temporaryPath)
            throw error
        }
    }

    /// The destination itself, already `length` bytes long, open for writing in place.
    init(updating destination: SystemFile, length: Int) {
        self.destination = destination.path
        temporaryPath = destination.path
        file = destination
        self.length = length
        inPlace = true
        flushAhead = FlushAhead(file: destination)
        direct = nil
    }

    /// Copies `count` bytes from `source` at `from` to `to`, in the kernel where it can.
    func copy(from source: SystemFile, at from: Int, to: Int, count: Int) throws(FileSystemError) {
        try file.copy(from: source, at: from, to: to, count: count)
    }

    /// Writes the local segments into the output and hashes the whole output, in one pass in file order.
    ///
    /// The calling thread reads and writes chunk n+1 while other threads hash chunk n, so the copy
    /// hides behind the hash: one thread for a plain digest, which must see the bytes in order; one
    /// per core for the tree hash, whose slices are independent (chunks then hold whole slices).
    /// The file is flushed as it goes (`FlushAhead`), so the final fsync has little left to do.
    ///
    /// With `arrivals`, the downloads are still coming: a downloaded range is read back once it has
    /// arrived, and the assembly ends with `.cancelled` if they are abandoned first.
    func assemble(_ segments: [PieceMap.Segment], sources: [SystemFile], check: WholeFileCheck,
        arrivals: Arrivals? = nil) throws(FileSystemError) -> AssembledDigest {
        // 512 KiB chunks: big enough for the copy to stay ahead (1 MiB measured no faster), small enough
        // for the memory budget (the ring is the largest allocation of an assembly).
        // While downloads run, their buffers and the fine records that check them are still held, so
        // chunks are halved: the tarball's peak went from 30 to 32.4 MiB with 512 KiB, the budget being 32.
        let size = check.chunkSize(preferred: arrivals == nil ? 512 << 10 : 256 << 10)
        let hashers = check.hasherCount
        // One buffer filling while each hasher has one (and at least one more, so a lone hasher
        // never waits for the copy), and four more whose direct writes are still in flight.
        let ring = BufferRing(count: max(3, hashers + 1) + (direct == nil ? 0 : 4), size: size)
        let handoff = ChunkHandoff(slots: ring.count, consumers: hashers)
        let sliceDigests = Mutex([UInt8](repeating: 0, count: check.sliceCount(length: length) * TreeHash.digestSize))
        // On the blocking pool: hashing blocks for the whole assembly, and the copying thread hands
        // them buffers through the condition variable of `ChunkHandoff`.
        for _ in 0..<hashers {
            BlockingPool.shared.run { [ring] in
                switch check {
                case .digest(let algorithm):
                    let digest = StreamingDigest(algorithm)
                    while let (slot, count, _) = handoff.take() {
                        digest.update(ring[slot], count: count)
                        handoff.release(slot)
                    }
                    handoff.finish(digest.finalize())
                case .tree(let sliceSize, let blockSize):
                    var digest = [UInt8](repeating: 0, count: TreeHash.digestSize)
                    while let (slot, count, offset) = handoff.take() {
                        for start in stride(from: 0, to: count, by: sliceSize) {
                            digest.withUnsafeMutableBufferPointer {
                                TreeHash.sliceDigest(ring[slot] + start, length: min(sliceSize, count - start),
                                    blockSize: blockSize,
                                                     into: $0.baseAddress!)
                            }
                            let at = (offset + start) / sliceSize * TreeHash.digestSize
                            sliceDigests.withLock { $0.replaceSubrange(at..<(at + TreeHash.digestSize), with: digest) }
                        }
                        handoff.release(slot)
                    }
                    handoff.finish([])
                }
            }
        }
        var bufferStart = 0
        var flushed = 0
        var slot = 0
        // Bytes of the current buffer filled so far: consecutive segments share a buffer, so a file
        // made of thousands of small pieces (a tar's headers between its members) is still handed to
        // the hasher in big chunks.
        var filled = 0
        // Local bytes read into the buffer but not yet written: buffer[unwritten..<filled], which
        // belong at `unwrittenAt` in the output. They go out in one write per buffer or run.
        var unwritten = 0
        var unwrittenAt = 0
        // A buffer's byte k belongs at bufferStart + k, and bufferStart is a multiple of the chunk size,
        // so a run's bytes are as aligned in memory as in the file (what `writeRun` needs).
        func writePending() throws(FileSystemError) {
            if filled > unwritten {
                try writeRun(ring, slot: slot, from: unwritten, count: filled - unwritten, at: unwrittenAt)
            }
            unwritten = filled
        }
        handoff.acquire(slot)
        do throws(FileSystemError) {
            for segment in segments {
                var position = segment.range.lowerBound
                while position < segment.range.upperBound {
                    let count = min(size - filled, segment.range.upperBound - position)
                    let buffer = ring[slot] + filled
                    switch segment {
                    case .local(let source, let range):
                        if unwritten == filled { unwrittenAt = position }
                        let at = source.offset + (position - range.lowerBound)
                        switch source.file {
                        case LocalSource.zeros:
                            buffer.initializeMemory(as: UInt8.self, repeating: 0, count: count)
                        case LocalSource.repeated:
                            // A copy of a downloaded piece.
                            try awaitArrival(at..<(at + count), arrivals)
                            try readBack(into: buffer, count: count, at: at)
                        default:
                            let file = sources[source.file]
                            guard try file.read(into: buffer, count: count, at: at) == count else {
                                throw FileSystemError(.changedWhileReading, path: file.path,
                                    message: "\(file.path) became shorter while it was being read; run again")
                            }
                        }
                    case .output:
                        try writePending()
                        try awaitArrival(position..<(position + count), arrivals)
                        try readBack(into: buffer, count: count, at: position)
                    }
                    filled += count
                    position += count
                    if case .output = segment { unwritten = filled }
                    if filled == size {
                        try writePending()
                        handoff.give(slot, count: filled, offset: bufferStart)
                        bufferStart += filled
                        slot = (slot + 1) % ring.count
                        filled = 0
                        unwritten = 0
                        handoff.acquire(slot)
                        try direct?.wait(for: slot)
                    }
                    if position - flushed >= 32 << 20 {
                        flushed = position
                        flushAhead.request()
                    }
                }
            }
            try writePending()
            handoff.give(slot, count: filled, offset: bufferStart)
        } catch {
            handoff.close()
            _ = handoff.results()
            try? direct?.wait(for: nil)
            throw error
        }
        handoff.close()
        let results = handoff.results()
        // Every write is done before the output is flushed, renamed or kept as partial work.
        try direct?.wait(for: nil)
        try flushAhead.finish()
        switch check {
        case .digest:
            return AssembledDigest(digest: results.first ?? [], sliceDigests: nil)
        case .tree:
            let digests = sliceDigests.withLock { $0 }
            return AssembledDigest(digest: TreeHash.combine(digests), sliceDigests: digests)
        }
    }

    /// Writes a run of local bytes: through the page cache, or, once the page cache has been slow to take
    /// them (`DirectWrites.observe`), the whole pages of a long run straight to the disk and the rest (its
    /// edges, short runs, downloads elsewhere) through the page cache. No page is written both ways: a
    /// direct page lies wholly inside the run, and every other byte of the output is written once.
    ///
    /// Why: this machine's memory is handed back to its host when freed (virtio free page reporting), and
    /// after another program's large file was written and deleted, copying into new page-cache pages
    /// (`copy_folio_from_iter_atomic`) ran at a fraction of its speed. In the benchmark's order (zsync's
    /// run, its output compared and deleted, then slicesync), medians of 5 alternating runs, durable:
    /// (a) 0.77 -> 0.28 s, (b) 0.70 -> 0.29, (c) 0.68 -> 0.32 against zsync's 1.32-1.34 s with every long
    /// run direct; when the copies were fast, the same within noise ((a) 0.319 against 0.322 s). Another
    /// day's disk here took direct writes slower than buffered ones (0.60-1.12 s against 0.45-0.62 s for a
    /// bare 256 MiB copy), hence direct writes only where the page cache is the slow part.
    private func writeRun(_ ring: BufferRing, slot: Int, from: Int, count: Int,
                          at offset: Int) throws(FileSystemError) {
        let buffer = ring[slot] + from
        let page = DirectWrites.alignment
        let start = (offset + page - 1) / page * page
        let end = (offset + count) / page * page
        guard let direct, end - start >= DirectWrites.minimumRun,
              Int(bitPattern: buffer + (start - offset)) % page == 0
        else { return try file.write(from: buffer, count: count, at: offset) }
        guard direct.engaged else {
            let began = ContinuousClock.now
            try file.write(from: buffer, count: count, at: offset)
            direct.observe(bytes: count, took: ContinuousClock.now - began)
            return
        }
        if start > offset { try file.write(from: buffer, count: start - offset, at: offset) }
        direct.start(ring, slot: slot, from: from + start - offset, count: end - start, at: start, fallback: file)
        if offset + count > end { try file.write(from: buffer + (end - offset), count: offset + count - end, at: end) }
    }

    /// Returns once `range` has been downloaded into the output (at once without `arrivals`).
    private func awaitArrival(_ range: Range<Int>, _ arrivals: Arrivals?) throws(FileSystemError) {
        guard let arrivals, !arrivals.wait(for: range) else { return }
        throw FileSystemError(.cancelled, path: temporaryPath,
            message: "the downloads stopped before bytes \(range.lowerBound)-\(range.upperBound - 1) arrived")
    }

    /// Reads `count` bytes the output already holds at `offset`.
    private func readBack(into buffer: UnsafeMutableRawPointer, count: Int, at offset: Int) throws(FileSystemError) {
        guard try file.read(into: buffer, count: count, at: offset) == count else {
            throw FileSystemError(.io, path: temporaryPath, message: "\(temporaryPath) is shorter than expected")
        }
    }

    /// Reads `count` bytes at `offset` of the output.
    func read(_ count: Int, at offset: Int) throws(FileSystemError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let got = try withMutableRawBytes(&bytes) { (raw) throws(FileSystemError) in
            try file.read(into: raw.baseAddress!, count: count, at: offset) }
        return Array(bytes.prefix(got))
    }

    /// Flushes the file, gives it `mode` and renames it over the destination.
    /// `modified`, when given, becomes the file's modification time (a zsync control file's `MTime`).
    func commit(mode: mode_t, modified: Int? = nil) throws(FileSystemError) {
        if let modified { try file.setModificationTime(seconds: modified, nanoseconds: 0) }
        try flushAhead.finish()
        try file.sync()
        if inPlace { return }
        if fchmod(file.descriptor,
            mode) != 0 { throw FileSystemError(errno: errno, operation: "set the permissions of", path: temporaryPath) }
        try FileSystem.rename(temporaryPath, to: destination)
        try FileSystem.syncDirectory(Paths.parent(of: destination))
    }

    /// Keeps the work done so far as the destination's partial file, for the next run.
    func keepAsPartial() -> String? {
        if inPlace { return nil }
        let partial = Self.partialPath(of: destination)
        try? file.sync()
        guard (try? FileSystem.rename(temporaryPath, to: partial)) != nil else {
            discard()
            return nil
        }
        return partial
    }

    /// Removes the temporary file.
    func discard() {
        if inPlace { return }
        try? FileSystem.removeFile(temporaryPath)
    }
}

/// Flushes a file to the disk on another thread while it is still being written.
///
/// A disk with a volatile write cache (this project's virtual disk takes writes into its host's cache)
/// pays for the data at the flush: a bare copy of 256 MiB spent 0.32-0.35 s in its final `fsync` however
/// long the copy had run (`bench/disk-floor.sh`). Flushes asked for during the assembly overlap that cost
/// with the copy and the hash instead of following them: medians of 7 alternating runs, (a) 0.70 -> 0.62 s,
/// (b) 0.75 -> 0.66, (c) 0.73 -> 0.63, (a) from its zsync file 0.78 -> 0.68.
///
/// The writer only asks (`request`), which never waits: whoever starts writeback can be held by the
/// block layer's write throttling (`wbt_wait`), which cost the copying thread 48 ms of the tarball's
/// 0.18 s assembly when it started writeback itself every 32 MiB (`perf sched timehist`). A request made
/// while a flush runs is served by one more flush right after it.
///
/// A flush that fails is reported by `finish`: Linux reports a writeback error to one `fsync` of an open
/// file, so the final `fsync` would not see an error that an early one took. The flushing thread holds
/// the file, so a flush still running when its owner gives up never meets a closed or reused descriptor.
///
/// `@unchecked Sendable`: `running`, `pending` and `failure` are read and written only with `condition`
/// held.
final class FlushAhead: @unchecked Sendable {
    private let condition = ThreadCondition()
    private let file: SystemFile
    private var running = false
    private var pending = false
    private var failure: Int32 = 0

    init(file: SystemFile) {
        self.file = file
    }

    /// More was written: flushes it on the blocking pool, after the flush in progress if one is.
    func request() {
        condition.lock()
        defer { condition.unlock() }
        guard failure == 0 else { return }
        if running {
            pending = true
            return
        }
        running = true
        BlockingPool.shared.run { [self] in flushWhileRequested() }
    }

    private func flushWhileRequested() {
        condition.lock()
        repeat {
            pending = false
            condition.unlock()
            let failed = fdatasync(file.descriptor) != 0 ? errno : 0
            condition.lock()
            if failed != 0 { failure = failed }
        } while pending && failure == 0
        running = false
        condition.broadcast()
        condition.unlock()
    }

    /// Waits for the flushes asked for so far; throws when any of them failed.
    func finish() throws(FileSystemError) {
        condition.lock()
        while running { condition.wait() }
        let failed = failure
        condition.unlock()
        if failed != 0 { throw FileSystemError(errno: failed, operation: "sync", path: file.path) }
    }
}

/// How a rebuilt file is proved: one digest of its bytes in order, or the tree hash (`TreeHash`).
enum WholeFileCheck: Sendable {
    case digest(StreamingDigest.Algorithm)
    case tree(sliceSize: Int, blockSize: Int)

    /// Threads that hash at once: the tree hash's slices are independent.
    var hasherCount: Int {
        switch self {
        case .digest: 1
        case .tree: max(1, min(4, ProcessInfo.processInfo.activeProcessorCount))
        }
    }

    /// Chunks of about `preferred` bytes; for the tree hash a whole number of slices.
    func chunkSize(preferred: Int) -> Int {
        switch self {
        case .digest: preferred
        case .tree(let sliceSize, _): max(1, preferred / sliceSize) * sliceSize
        }
    }

    /// Slices of a file of `length` bytes (0 for a plain digest).
    func sliceCount(length: Int) -> Int {
        guard case .tree(let sliceSize, _) = self, length > 0 else { return 0 }
        return (length - 1) / sliceSize + 1
    }
}

/// What assembly computed: the digest to compare with the signature's, and for the tree hash each
/// slice's digest (32 bytes each, in order), which names the wrong slices at once.
struct AssembledDigest: Sendable {
    var digest: [UInt8]
    var sliceDigests: [UInt8]?
}

/// Hands filled buffers, in order, from the copying thread to the hashing threads.
///
/// `@unchecked Sendable`: every stored property is read and written only between `condition.lock()`
/// and `condition.unlock()`.
private final class ChunkHandoff: @unchecked Sendable {
    private let condition = ThreadCondition()
    private var busy: [Bool]
    private var queue: [(slot: Int, count: Int, offset: Int)] = []
    private var closed = false
    private var finished: [[UInt8]] = []
    private let consumers: Int

    init(slots: Int, consumers: Int) {
        busy = Array(repeating: false, count: slots)
        self.consumers = consumers
    }

    /// Waits until the hashers are done with `slot`, then claims it.
    func acquire(_ slot: Int) {
        condition.lock()
        while busy[slot] { condition.wait() }
        busy[slot] = true
        condition.unlock()
    }

    /// Queues `slot`, holding `count` bytes of the file from `offset`.
    func give(_ slot: Int, count: Int, offset: Int) {
        condition.lock()
        queue.append((slot, count, offset))
        condition.broadcast()
        condition.unlock()
    }

    func take() -> (Int, Int, Int)? {
        condition.lock()
        defer { condition.unlock() }
        while queue.isEmpty && !closed { condition.wait() }
        return queue.isEmpty ? nil : queue.removeFirst()
    }

    func release(_ slot: Int) {
        condition.lock()
        busy[slot] = false
        condition.broadcast()
        condition.unlock()
    }

    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }

    /// A hashing thread is done, with its result.
    func finish(_ value: [UInt8]) {
        condition.lock()
        finished.append(value)
        condition.broadcast()
        condition.unlock()
    }

    /// Waits for every hashing thread; their results.
    func results() -> [[UInt8]] {
        condition.lock()
        defer { condition.unlock() }
        while finished.count < consumers { condition.wait() }
        return finished
    }
}

/// Writes that bypass the page cache, to the file being assembled, each on the blocking pool: one
/// thread waiting for the device at a time took (c)'s assembly from 0.19 to 0.27-0.45 s, as the copy
/// waited for every write; with the writes of the ring's buffers in flight together, the copy goes on.
///
/// `@unchecked Sendable`: `inFlight`, `failure`, `refused`, `directNow` and the window are read and
/// written only with `condition` held; the descriptor is only written through (`pwrite` needs no lock).
final class DirectWrites: @unchecked Sendable {
    /// Offsets, lengths and buffer addresses are multiples of this (the page size covers every common
    /// device's logical block).
    static let alignment = 4096
    /// Shorter runs go through the page cache: a direct write waits for the device, and a tarball's runs
    /// between downloaded pieces are mostly a few KiB.
    static let minimumRun = 256 << 10
    /// Smaller files are written through the page cache: the slow copies below were seen with 256 MiB
    /// outputs, never with the 110 MiB tarball's, whose update direct writes made 6-10 % slower (medians
    /// of 5 alternating runs: 0.245 -> 0.260 s from its zsync file, 0.398 -> 0.439 s from its signature).
    static let minimumFile = 128 << 20
    /// Buffered writes of long runs are timed in windows of this many bytes; a window slower than
    /// `slowRate` bytes a second turns direct writes on for the rest of the file. Writing 256 MiB in
    /// 512 KiB pieces into new page-cache pages ran at 1.7-3.8 GB/s here, and at 0.24-0.6 GB/s in the
    /// state described at `OutputFile.writeRun` (its first 16 MiB still at 2.1-4.9 GB/s); direct writes
    /// of the assembly's runs went at 1.3-2 GB/s in both.
    static let window = 16 << 20
    static let slowRate = 800_000_000
    private let file: SystemFile
    private let condition = ThreadCondition()
    private var windowBytes = 0
    private var windowTime = Duration.zero
    private var directNow = false
    /// Writes started and not yet done, by ring buffer.
    private var inFlight: [Int: Int] = [:]
    private var failure: FileSystemError?
    /// The device refused the alignment (`EINVAL`): the rest goes through the page cache.
    private var refused = false

    /// Nil where the file system refuses `O_DIRECT`. `engaged`: direct writes from the start.
    init?(_ buffered: SystemFile, engaged: Bool = false) {
        let descriptor = slicesync_reopen_direct(buffered.descriptor)
        guard descriptor >= 0 else { return nil }
        file = SystemFile.adopting(descriptor: descriptor, path: buffered.path)
        directNow = engaged
    }

    /// Whether long runs now go straight to the disk.
    var engaged: Bool { condition.withLock { directNow && !refused } }

    /// Records a buffered write of a long run; a slow window turns direct writes on.
    func observe(bytes: Int, took: Duration) {
        condition.withLock {
            windowBytes += bytes
            windowTime += took
            guard windowBytes >= Self.window else { return }
            if windowTime > .seconds(Double(windowBytes) / Double(Self.slowRate)) { directNow = true }
            windowBytes = 0
            windowTime = .zero
        }
    }

    /// Starts writing `count` bytes of ring buffer `slot` at `offset`. `ring` is held until the write
    /// is done; `fallback` writes what the device refuses, through the page cache.
    func start(_ ring: BufferRing, slot: Int, from: Int, count: Int, at offset: Int, fallback: SystemFile) {
        condition.withLock { inFlight[slot, default: 0] += 1 }
        BlockingPool.shared.run { [self] in
            let buffer = UnsafeRawPointer(ring[slot] + from)
            var outcome: FileSystemError?
            do throws(FileSystemError) {
                let done = write(from: buffer, count: count, at: offset)
                if done < count { try fallback.write(from: buffer + done, count: count - done, at: offset + done) }
            } catch {
                outcome = error
            }
            condition.withLock {
                if failure == nil, let outcome { failure = outcome }
                inFlight[slot, default: 1] -= 1
                condition.broadcast()
            }
        }
    }

    /// Returns the bytes the device took: short only after `EINVAL`, leaving the rest to the caller's
    /// buffered write; after any other failure, which it records for `wait`, `count` (nothing to redo).
    private func write(from buffer: UnsafeRawPointer, count: Int, at offset: Int) -> Int {
        if condition.withLock({ refused || failure != nil }) { return 0 }
        var done = 0
        while done < count {
            let n = pwrite(file.descriptor, buffer + done, count - done, off_t(offset + done))
            if n > 0 {
                done += n
            } else if n < 0 && errno == EINTR {
                continue
            } else {
                let code = n < 0 ? errno : EIO
                condition.withLock {
                    if code == EINVAL { refused = true } else if failure == nil {
                        failure = FileSystemError(errno: code, operation: "write", path: file.path)
                    }
                }
                return code == EINVAL ? done : count
            }
        }
        return done
    }

    /// Waits until the writes from ring buffer `slot` (or from all, with nil) are done; throws the first
    /// failure of any write.
    func wait(for slot: Int?) throws(FileSystemError) {
        condition.lock()
        while slot.map({ inFlight[$0, default: 0] > 0 }) ?? inFlight.values.contains(where: { $0 > 0 }) {
            condition.wait()
        }
        let failed = failure
        condition.unlock()
        if let failed { throw failed }
    }
}
