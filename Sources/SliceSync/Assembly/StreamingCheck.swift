#if canImport(Glibc)
import Glibc
#endif

/// Checks a whole-file download while it streams in, so the file is never read back: each slice
/// the moment its last byte is in, and the whole file. With a tree hash, one pass per slice gives its
/// digest, which both makes the tree hash and, cut to 8 bytes, checks the slice against its coarse
/// record. Without one: the slice's record (format 1 line, coarse record) and the file's digest. The
/// slices that fail are fetched again, and only they. Memory: one slice.
///
/// Not thread-safe: it belongs to the one task that receives the download.
final class StreamingCheck {
    private let signature: LoadedSignature
    private var digest: StreamingDigest
    /// With a tree hash: the block size, and the slice digests so far.
    private let treeBlockSize: Int?
    private var sliceDigests: [UInt8] = []
    private let buffer: UnsafeMutableRawPointer
    private var filled = 0
    private var slice = 0
    /// Bytes taken so far, from the start of the file.
    private(set) var position = 0
    /// Slices that did not match their records (with a tree hash: computed from the slice digests).
    private var failedSlices: [Int] = []
    var badSlices: [Int] { treeBlockSize == nil ? failedSlices : signature.badSlices(fromDigests: sliceDigests) }
    /// With a tree hash: the digest of every slice, in order.
    var treeSliceDigests: [UInt8]? { treeBlockSize == nil ? nil : sliceDigests }

    init(signature: LoadedSignature) {
        self.signature = signature
        if case .tree(_, let blockSize) = signature.wholeFileCheck { treeBlockSize = blockSize }
            else { treeBlockSize = nil }
        digest = StreamingDigest(signature.wholeFileAlgorithm)
        buffer = UnsafeMutableRawPointer.allocate(byteCount: max(1, signature.sliceSize), alignment: 16)
    }

    deinit { buffer.deallocate() }

    /// Starts again from the first byte (the server restarted the file with a 200).
    func restart() {
        digest = StreamingDigest(signature.wholeFileAlgorithm)
        filled = 0
        slice = 0
        position = 0
        failedSlices = []
        sliceDigests = []
    }

    /// Takes the next bytes of the file.
    func add(_ chunk: UnsafeRawBufferPointer) {
        guard let base = chunk.baseAddress, !chunk.isEmpty else { return }
        if treeBlockSize == nil { digest.update(UnsafeRawPointer(base), count: chunk.count) }
        var done = 0
        while done < chunk.count {
            let want = signature.sliceRange(slice).count - filled
            let take = min(want, chunk.count - done)
            (buffer + filled).copyMemory(from: base + done, byteCount: take)
            filled += take
            done += take
            if filled == signature.sliceRange(slice).count { checkSlice() }
        }
        position += chunk.count
    }

    private func checkSlice() {
        if let blockSize = treeBlockSize {
            // One pass gives both the slice's check and its part of the tree hash.
            sliceDigests += TreeHash.sliceDigest(buffer, length: filled, blockSize: blockSize)
        } else if !signature.sliceMatches(slice, UnsafeRawBufferPointer(start: buffer, count: filled)) {
            failedSlices.append(slice)
        }
        slice += 1
        filled = 0
    }

    /// The digest of what was taken, to compare with `LoadedSignature.expectedDigest`.
    func finish() -> [UInt8] { treeBlockSize == nil ? digest.finalize() : TreeHash.combine(sliceDigests) }
}
