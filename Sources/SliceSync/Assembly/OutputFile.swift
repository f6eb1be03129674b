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

    /// The partial-work path of a destination.
    static func partialPath(of destination: String) -> String { destination + TreeNaming.partialSuffix }

    init(destination: String, length: Int) throws(FileSystemError) {
        self.destination = destination
        self.length = length
        temporaryPath = TreeNaming.temporaryPath(for: destination)
        inPlace = false
        file = try SystemFile.createExclusive(temporaryPath, mode: 0o600)
        flushAhead = FlushAhead(file: file)
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
        // never waits for the copy).
        let ring = BufferRing(count: max(3, hashers + 1), size: size)
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
        func writePending() throws(FileSystemError) {
            if filled > unwritten {
                try file.write(from: ring[slot] + unwritten, count: filled - unwritten, at: unwrittenAt)
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
            throw error
        }
        handoff.close()
        let results = handoff.results()
        try flushAhead.finish()
        switch check {
        case .digest:
            return AssembledDigest(digest: results.first ?? [], sliceDigests: nil)
        case .tree:
            let digests = sliceDigests.withLock { $0 }
            return AssembledDigest(digest: TreeHash.combine(digests), sliceDigests: digests)
        }
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
