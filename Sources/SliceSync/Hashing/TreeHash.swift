import Synchronization

/// The tree hash of format 2 (`Tree-SHA-256`, docs/FORMAT.md): the SHA-256 of the file's slice
/// digests in order, where a slice digest is the SHA-256 of its blocks' SHA-256 digests in order.
///
/// It proves the whole file as the plain SHA-256 does, but its parts are independent: a client checks
/// a file on every core, names the slices that are wrong without reading anything again, and
/// (later) re-checks only the slices it wrote. The writer pays nothing for it: the block digests and
/// the slice digests are the very values the fine and coarse records are cut from.
public enum TreeHash {
    /// Bytes of a digest.
    public static let digestSize = 32

    /// The slice digest of the `length` bytes at `pointer`, cut into blocks of `blockSize`.
    static func sliceDigest(_ pointer: UnsafeRawPointer, length: Int, blockSize: Int,
        into output: UnsafeMutablePointer<UInt8>) {
        // A slice holds at most a few thousand blocks: their digests fit on the stack of any thread
        // in 64 KiB pieces.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64 * digestSize) { digests in
            let combined = StreamingDigest(.sha256)
            var offset = 0
            while offset < length {
                let count = min(64 * blockSize, length - offset)
                blockDigests(pointer + offset, length: count, blockSize: blockSize, into: digests.baseAddress!)
                combined.update(UnsafeRawPointer(digests.baseAddress!),
                                count: (count + blockSize - 1) / blockSize * digestSize)
                offset += count
            }
            let digest = combined.finalize()
            output.update(from: digest, count: digestSize)
        }
    }

    /// The SHA-256 digests, 32 bytes each in order, of the blocks of `blockSize` bytes of the `length`
    /// bytes at `pointer` (the last block may be shorter). Whole blocks go 16 at a time through the
    /// vector kernel where it runs (2.2 GB/s for 2 KiB blocks here, against 1.6 one block at a time).
    static func blockDigests(_ pointer: UnsafeRawPointer, length: Int, blockSize: Int,
        into digests: UnsafeMutablePointer<UInt8>) {
        let batched = VectorKernels.handles(blockSize: blockSize)
            ? VectorKernels.sha256(blocks: pointer, blockSize: blockSize, count: length / blockSize, into: digests)
            : 0
        var offset = batched * blockSize
        var index = batched
        while offset < length {
            sha256(pointer + offset, count: min(blockSize, length - offset), into: digests + index * digestSize)
            offset += blockSize
            index += 1
        }
    }

    /// The slice digest as an array.
    static func sliceDigest(_ pointer: UnsafeRawPointer, length: Int, blockSize: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: digestSize) { buffer, count in
            sliceDigest(pointer, length: length, blockSize: blockSize, into: buffer.baseAddress!)
            count = digestSize
        }
    }

    /// The tree hash from the slice digests, concatenated in file order.
    static func combine(_ sliceDigests: [UInt8]) -> [UInt8] {
        StreamingDigest.hash(.sha256, sliceDigests)
    }

    /// The slice digests of the first `length` bytes of `file`, read and hashed on `threads` threads.
    /// `known` gives the digests of some slices already (an in-place update's untouched slices, from
    /// the cache), laid out as the result: only the slices `isKnown` does not vouch for are read.
    static func sliceDigests(of file: SystemFile, length: Int, sliceSize: Int, blockSize: Int,
        threads: Int, known: (digests: [UInt8], isKnown: [Bool])? = nil) throws(FileSystemError) -> [UInt8] {
        let sliceCount = length == 0 ? 0 : (length - 1) / sliceSize + 1
        var initial = [UInt8](repeating: 0, count: sliceCount * digestSize)
        var unknown = Array(0..<sliceCount)
        if let known, known.digests.count == initial.count, known.isKnown.count == sliceCount {
            initial = known.digests
            unknown = unknown.filter { !known.isKnown[$0] }
        }
        let wanted = unknown
        let digests = Mutex(initial)
        let failure = Mutex<FileSystemError?>(nil)
        // Interleaved slices, so the threads read the file front to back together.
        let width = max(1, min(threads, wanted.count))
        runConcurrently(Array(0..<width), width: width) { worker in
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: sliceSize, alignment: 16)
            defer { buffer.deallocate() }
            var digest = [UInt8](repeating: 0, count: digestSize)
            for slice in stride(from: worker, to: wanted.count, by: width).map({ wanted[$0] }) {
                let start = slice * sliceSize
                let size = min(sliceSize, length - start)
                do throws(FileSystemError) {
                    guard try file.read(into: buffer, count: size, at: start) == size else {
                        throw FileSystemError(.changedWhileReading, path: file.path,
                            message: "\(file.path) became shorter while it was being read")
                    }
                } catch {
                    failure.withLock { $0 = $0 ?? error }
                    return
                }
                digest.withUnsafeMutableBufferPointer { sliceDigest(buffer, length: size, blockSize: blockSize,
                    into: $0.baseAddress!) }
                digests.withLock { $0.replaceSubrange((slice * digestSize)..<((slice + 1) * digestSize), with: digest) }
            }
        }
        if let error = failure.withLock({ $0 }) { throw error }
        return digests.withLock { $0 }
    }
}
