#if canImport(Glibc)
import Glibc
#endif

/// Checks a whole-file download while it streams in, so the file is never read back: the whole-file
/// digest, and every slice against its record (format 1 slice line, format 2 coarse record) the moment
/// its last byte is in. A slice that fails is known before the download ends, and only it is fetched
/// again. Memory: one slice.
///
/// Not thread-safe: it belongs to the one task that receives the download.
final class StreamingCheck {
    private let signature: LoadedSignature
    private var digest: StreamingDigest
    private let buffer: UnsafeMutableRawPointer
    private var filled = 0
    private var slice = 0
    /// Bytes taken so far, from the start of the file.
    private(set) var position = 0
    /// Slices that did not match their records.
    private(set) var badSlices: [Int] = []

    init(signature: LoadedSignature) {
        self.signature = signature
        digest = StreamingDigest(signature.version == .v1 ? .sha1 : .sha256)
        buffer = UnsafeMutableRawPointer.allocate(byteCount: max(1, signature.sliceSize), alignment: 16)
    }

    deinit { buffer.deallocate() }

    /// Starts again from the first byte (the server restarted the file with a 200).
    func restart() {
        digest = StreamingDigest(signature.version == .v1 ? .sha1 : .sha256)
        filled = 0
        slice = 0
        position = 0
        badSlices = []
    }

    /// Takes the next bytes of the file.
    func add(_ chunk: UnsafeRawBufferPointer) {
        guard let base = chunk.baseAddress, !chunk.isEmpty else { return }
        digest.update(UnsafeRawPointer(base), count: chunk.count)
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
        if !signature.sliceMatches(slice, UnsafeRawBufferPointer(start: buffer, count: filled)) { badSlices.append(slice) }
        slice += 1
        filled = 0
    }

    /// The whole-file digest of what was taken.
    func finish() -> [UInt8] { digest.finalize() }
}
