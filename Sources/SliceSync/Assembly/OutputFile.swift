import CSliceSyncSystem
#if canImport(Glibc)
import Glibc
#endif

/// The file being rebuilt: a temporary file next to the destination, replaced atomically at the end.
///
/// Interrupted work is kept as `DEST.slicesync.part`, which the next run reuses as an alike file.
final class OutputFile: @unchecked Sendable {
    let destination: String
    let temporaryPath: String
    let file: SystemFile
    let length: Int

    /// The partial-work path of a destination.
    static func partialPath(of destination: String) -> String { destination + TreeNaming.partialSuffix }

    init(destination: String, length: Int) throws(FileSystemError) {
        self.destination = destination
        self.length = length
        temporaryPath = TreeNaming.temporaryPath(for: destination)
        file = try SystemFile.createExclusive(temporaryPath, mode: 0o600)
        if ftruncate(file.descriptor, off_t(length)) != 0 {
            let error = FileSystemError(errno: errno, operation: "size", path: temporaryPath)
            try? FileSystem.removeFile(temporaryPath)
            throw error
        }
    }

    /// Copies `count` bytes from `source` at `from` to `to`, in the kernel where it can.
    func copy(from source: SystemFile, at from: Int, to: Int, count: Int) throws(FileSystemError) {
        var inOffset = off_t(from)
        var outOffset = off_t(to)
        var remaining = count
        while remaining > 0 {
            let n = slicesync_copy_file_range(source.descriptor, &inOffset, file.descriptor, &outOffset, remaining)
            if n > 0 {
                remaining -= n
                continue
            }
            if n == 0 { throw FileSystemError(.changedWhileReading, path: source.path, message: "\(source.path) became shorter while it was being read") }
            if errno == EINTR { continue }
            if [EXDEV, ENOSYS, EINVAL, EOPNOTSUPP, EBADF].contains(errno) {
                try copyByReading(from: source, at: Int(inOffset), to: Int(outOffset), count: remaining)
                return
            }
            throw FileSystemError(errno: errno, operation: "write", path: temporaryPath)
        }
    }

    private func copyByReading(from source: SystemFile, at from: Int, to: Int, count: Int) throws(FileSystemError) {
        let size = min(count, 1 << 20)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 4096)
        defer { buffer.deallocate() }
        var done = 0
        while done < count {
            let want = min(size, count - done)
            let got = try source.read(into: buffer, count: want, at: from + done)
            guard got == want else { throw FileSystemError(.changedWhileReading, path: source.path, message: "\(source.path) became shorter while it was being read") }
            try file.write(from: buffer, count: want, at: to + done)
            done += want
        }
    }

    /// Reads `count` bytes at `offset` of the output.
    func read(_ count: Int, at offset: Int) throws(FileSystemError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let got = try withMutableRawBytes(&bytes) { (raw) throws(FileSystemError) in try file.read(into: raw.baseAddress!, count: count, at: offset) }
        return Array(bytes.prefix(got))
    }

    /// Flushes the file, gives it `mode` and renames it over the destination.
    func commit(mode: mode_t) throws(FileSystemError) {
        try file.sync()
        if fchmod(file.descriptor, mode) != 0 { throw FileSystemError(errno: errno, operation: "set the permissions of", path: temporaryPath) }
        try FileSystem.rename(temporaryPath, to: destination)
        try FileSystem.syncDirectory(Paths.parent(of: destination))
    }

    /// Keeps the work done so far as the destination's partial file, for the next run.
    func keepAsPartial() -> String? {
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
        try? FileSystem.removeFile(temporaryPath)
    }
}
