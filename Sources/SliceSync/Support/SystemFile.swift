import CSliceSyncSystem
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The identity and freshness facts of a file that decide whether its signature is current.
public struct FileStamp: Sendable, Equatable {
    /// Device number.
    public var device: UInt64
    /// Inode number.
    public var inode: UInt64
    /// Size in bytes.
    public var size: Int
    /// Modification time, seconds part.
    public var mtimeSeconds: Int
    /// Modification time, nanoseconds part.
    public var mtimeNanoseconds: Int
    /// Status change time, seconds part.
    public var ctimeSeconds: Int
    /// Status change time, nanoseconds part.
    public var ctimeNanoseconds: Int
    /// Whether the file is a regular file.
    public var isRegularFile: Bool
    /// Whether the file is a directory.
    public var isDirectory: Bool
    /// The permission bits (`st_mode & 0o7777`).
    public var permissions: UInt32

    /// Builds a stamp from a `stat` record.
    init(_ st: stat) {
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
        size = Int(st.st_size)
        mtimeSeconds = Int(st.st_mtim.tv_sec)
        mtimeNanoseconds = Int(st.st_mtim.tv_nsec)
        ctimeSeconds = Int(st.st_ctim.tv_sec)
        ctimeNanoseconds = Int(st.st_ctim.tv_nsec)
        isRegularFile = (st.st_mode & S_IFMT) == S_IFREG
        isDirectory = (st.st_mode & S_IFMT) == S_IFDIR
        permissions = UInt32(st.st_mode & 0o7777)
    }

    /// Whether the content may differ between two stamps of the same path.
    func contentMayDiffer(from other: FileStamp) -> Bool {
        device != other.device || inode != other.inode || size != other.size
            || mtimeSeconds != other.mtimeSeconds || mtimeNanoseconds != other.mtimeNanoseconds
            || ctimeSeconds != other.ctimeSeconds || ctimeNanoseconds != other.ctimeNanoseconds
    }

    /// Modification time in nanoseconds since the epoch.
    var mtimeTotalNanoseconds: Int { mtimeSeconds &* 1_000_000_000 &+ mtimeNanoseconds }
}

/// An open file descriptor with the few positioned operations the library needs; closes on deinit.
public final class SystemFile: @unchecked Sendable {
    /// The descriptor.
    public let descriptor: Int32
    /// The path it was opened with, for error messages.
    public let path: String

    private init(descriptor: Int32, path: String) {
        self.descriptor = descriptor
        self.path = path
    }

    deinit { close(descriptor) }

    /// Takes ownership of an open descriptor; it is closed when the value goes away.
    public static func adopting(descriptor: Int32, path: String) -> SystemFile {
        SystemFile(descriptor: descriptor, path: path)
    }

    /// Opens an existing regular file for reading; refuses FIFOs, devices and directories without blocking.
    public static func openForReading(_ path: String) throws(FileSystemError) -> SystemFile {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        if fd < 0 { throw FileSystemError(errno: errno, operation: "open", path: path) }
        let file = SystemFile(descriptor: fd, path: path)
        let stamp = try file.stamp()
        guard stamp.isRegularFile else {
            throw FileSystemError(.notRegularFile, path: path, message: "\(path) is not a regular file")
        }
        // Regular files ignore O_NONBLOCK, but clear it so later reads never see EAGAIN semantics.
        let flags = fcntl(fd, F_GETFL)
        if flags >= 0 { _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) }
        return file
    }

    /// Creates a new file that must not exist yet, with the given permission bits (umask applies).
    public static func createExclusive(_ path: String, mode: mode_t) throws(FileSystemError) -> SystemFile {
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        if fd < 0 { throw FileSystemError(errno: errno, operation: "create", path: path) }
        return SystemFile(descriptor: fd, path: path)
    }

    /// Opens an existing regular file for reading and writing in place (an in-place update).
    public static func openForUpdating(_ path: String) throws(FileSystemError) -> SystemFile {
        let fd = open(path, O_RDWR | O_CLOEXEC | O_NONBLOCK)
        if fd < 0 { throw FileSystemError(errno: errno, operation: "open", path: path) }
        let file = SystemFile(descriptor: fd, path: path)
        guard try file.stamp().isRegularFile else {
            throw FileSystemError(.notRegularFile, path: path, message: "\(path) is not a regular file")
        }
        let flags = fcntl(fd, F_GETFL)
        if flags >= 0 { _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) }
        return file
    }

    /// Sets the file's length: cut, or extended with a hole.
    public func truncate(to length: Int) throws(FileSystemError) {
        if ftruncate(descriptor, off_t(length)) != 0 {
            throw FileSystemError(errno: errno, operation: "set the length of", path: path)
        }
    }

    /// Copies `count` bytes at `from` of `source` to `to` of this file, in the kernel where it can.
    public func copy(from source: SystemFile, at from: Int, to: Int, count: Int) throws(FileSystemError) {
        var inOffset = off_t(from)
        var outOffset = off_t(to)
        var remaining = count
        while remaining > 0 {
            let n = slicesync_copy_file_range(source.descriptor, &inOffset, descriptor, &outOffset, remaining)
            if n > 0 {
                remaining -= n
                continue
            }
            if n == 0 {
                throw FileSystemError(.changedWhileReading, path: source.path,
                    message: "\(source.path) became shorter while it was being read")
            }
            if errno == EINTR { continue }
            if [EXDEV, ENOSYS, EINVAL, EOPNOTSUPP, EBADF].contains(errno) {
                try copyByReading(from: source, at: Int(inOffset), to: Int(outOffset), count: remaining)
                return
            }
            throw FileSystemError(errno: errno, operation: "write", path: path)
        }
    }

    private func copyByReading(from source: SystemFile, at from: Int, to: Int, count: Int) throws(FileSystemError) {
        let size = min(count, 1 << 20)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 4096)
        defer { buffer.deallocate() }
        var done = 0
        while done < count {
            let want = min(size, count - done)
            guard try source.read(into: buffer, count: want, at: from + done) == want else {
                throw FileSystemError(.changedWhileReading, path: source.path,
                    message: "\(source.path) became shorter while it was being read")
            }
            try write(from: buffer, count: want, at: to + done)
            done += want
        }
    }

    /// The file's current stamp.
    public func stamp() throws(FileSystemError) -> FileStamp {
        var st = stat()
        if fstat(descriptor, &st) != 0 { throw FileSystemError(errno: errno, operation: "stat", path: path) }
        return FileStamp(st)
    }

    /// Reads up to `count` bytes at `offset`, retrying short reads; returns fewer only at end of file.
    public func read(into buffer: UnsafeMutableRawPointer, count: Int, at offset: Int) throws(FileSystemError) -> Int {
        var done = 0
        while done < count {
            let n = pread(descriptor, buffer + done, count - done, off_t(offset + done))
            if n > 0 {
                done += n
            } else if n == 0 {
                break
            } else if errno != EINTR {
                throw FileSystemError(errno: errno, operation: "read", path: path)
            }
        }
        return done
    }

    /// Most extents `dataExtents` reports; a file with more holes is taken as data from there on.
    static let maxExtents = 4096

    /// The parts of the first `length` bytes that hold data, skipping holes (`SEEK_DATA`/`SEEK_HOLE`).
    /// A file system that cannot tell reports the whole file as data, which is always safe: a hole
    /// reads as zeros, so this only spares reading what could be nothing else.
    public func dataExtents(length: Int) -> [Range<Int>] {
        var result: [Range<Int>] = []
        var offset = 0
        while offset < length {
            let data = slicesync_seek_data(descriptor, off_t(offset))
            if data < 0 {
                // ENXIO: no data after `offset`; anything else: the file system cannot say.
                if errno != ENXIO { result.append(offset..<length) }
                break
            }
            let hole = slicesync_seek_hole(descriptor, data)
            let end = hole < 0 ? length : min(Int(hole), length)
            guard result.count < Self.maxExtents else {
                result.append(Int(data)..<length)
                break
            }
            if Int(data) < end { result.append(Int(data)..<end) }
            offset = max(end, offset + 1)
        }
        return result
    }

    /// Writes all `count` bytes at `offset`, retrying short writes.
    public func write(from buffer: UnsafeRawPointer, count: Int, at offset: Int) throws(FileSystemError) {
        var done = 0
        while done < count {
            let n = pwrite(descriptor, buffer + done, count - done, off_t(offset + done))
            if n > 0 {
                done += n
            } else if n < 0 && errno != EINTR {
                throw FileSystemError(errno: errno, operation: "write", path: path)
            } else if n == 0 {
                throw FileSystemError(errno: EIO, operation: "write", path: path)
            }
        }
    }

    /// Writes a byte array at `offset`.
    public func write(_ bytes: [UInt8], at offset: Int) throws(FileSystemError) {
        try withRawBytes(bytes) { (raw) throws(FileSystemError) in
            guard let base = raw.baseAddress else { return }
            try write(from: base, count: raw.count, at: offset)
        }
    }

    /// Flushes the file's data and metadata to stable storage.
    public func sync() throws(FileSystemError) {
        if fsync(descriptor) != 0 { throw FileSystemError(errno: errno, operation: "sync", path: path) }
    }

    /// Sets the file's access and modification times to the given modification time.
    public func setModificationTime(seconds: Int, nanoseconds: Int) throws(FileSystemError) {
        var times = [
            timespec(tv_sec: seconds, tv_nsec: nanoseconds),
            timespec(tv_sec: seconds, tv_nsec: nanoseconds),
        ]
        if futimens(descriptor, &times) != 0 {
            throw FileSystemError(errno: errno, operation: "set the modification time of", path: path)
        }
    }

    /// Reads at most `limit` bytes from the start of the file.
    public func readPrefix(limit: Int) throws(FileSystemError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: limit)
        let n = try withMutableRawBytes(&bytes) { (raw) throws(FileSystemError) -> Int in
            try read(into: raw.baseAddress!, count: limit, at: 0)
        }
        bytes.removeSubrange(n...)
        return bytes
    }

    /// Reads `range` in order, at most `chunk` bytes at a time, handing each piece and its offset to `body`,
    /// which returns false to stop. True when the whole range was read and `body` never stopped; false when
    /// it stopped or the file ended first.
    public func readChunks(_ range: Range<Int>, chunk: Int = 1 << 20,
                           _ body: (UnsafeRawBufferPointer, Int) throws -> Bool) throws -> Bool {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(1, min(chunk, range.count)), alignment: 4096)
        defer { buffer.deallocate() }
        var offset = range.lowerBound
        while offset < range.upperBound {
            let want = min(chunk, range.upperBound - offset)
            let got = try read(into: buffer, count: want, at: offset)
            guard got == want, try body(UnsafeRawBufferPointer(start: buffer, count: got), offset) else { return false }
            offset += got
        }
        return true
    }

    /// The digest of the first `length` bytes, read sequentially.
    public func digest(_ algorithm: StreamingDigest.Algorithm, length: Int) throws(FileSystemError) -> [UInt8] {
        let digest = StreamingDigest(algorithm)
        let size = 4 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 4096)
        defer { buffer.deallocate() }
        var offset = 0
        while offset < length {
            let want = min(size, length - offset)
            let got = try read(into: buffer, count: want, at: offset)
            guard got == want else {
                throw FileSystemError(.changedWhileReading, path: path,
                    message: "\(path) is shorter than the \(length) bytes expected")
            }
            digest.update(buffer, count: got)
            offset += got
        }
        return digest.finalize()
    }

    /// Reads the whole file, refusing files larger than `limit` bytes.
    public func readAll(limit: Int) throws(FileSystemError) -> [UInt8] {
        let size = try stamp().size
        guard size <= limit else {
            throw FileSystemError(.io, path: path,
                message: "\(path) is \(size) bytes, more than the \(limit) bytes allowed here")
        }
        var bytes = try readPrefix(limit: size + 1)
        if bytes.count > size { bytes.removeLast(bytes.count - size) }
        return bytes
    }
}

/// Small path and directory operations on top of the C library.
public enum FileSystem {
    /// The stamp of a path, following symbolic links; nil when it does not exist.
    public static func stamp(_ path: String) throws(FileSystemError) -> FileStamp? {
        var st = stat()
        if stat(path, &st) != 0 {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw FileSystemError(errno: errno, operation: "stat", path: path)
        }
        return FileStamp(st)
    }

    /// The stamp of a path itself, not following a final symbolic link; nil when it does not exist.
    public static func linkStamp(_ path: String) throws(FileSystemError) -> (stamp: FileStamp, isSymlink: Bool)? {
        var st = stat()
        if lstat(path, &st) != 0 {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw FileSystemError(errno: errno, operation: "stat", path: path)
        }
        return (FileStamp(st), (st.st_mode & S_IFMT) == S_IFLNK)
    }

    /// The target of a symbolic link, as stored; nil when `path` is not a link or cannot be read.
    public static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4097)
        let count = readlink(path, &buffer, 4096)
        guard count > 0 else { return nil }
        return String(validating: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Creates a directory and its missing parents.
    public static func createDirectories(_ path: String) throws(FileSystemError) {
        if let existing = try stamp(path) {
            if existing.isDirectory { return }
            throw FileSystemError(.invalidPath, path: path, message: "\(path) exists and is not a directory")
        }
        let parent = Paths.parent(of: path)
        if parent != path { try createDirectories(parent) }
        if mkdir(path, 0o755) != 0 && errno != EEXIST {
            throw FileSystemError(errno: errno, operation: "create the directory", path: path)
        }
    }

    /// Flushes a directory's entries to stable storage, so a rename inside it survives a crash.
    public static func syncDirectory(_ path: String) throws(FileSystemError) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw FileSystemError(errno: errno, operation: "open the directory", path: path) }
        defer { close(fd) }
        if fsync(fd) != 0 && errno != EINVAL {
            throw FileSystemError(errno: errno, operation: "sync the directory", path: path)
        }
    }

    /// Renames a file, replacing the destination atomically.
    public static func rename(_ from: String, to: String) throws(FileSystemError) {
        if Glibc.rename(from, to) != 0 { throw FileSystemError(errno: errno, operation: "rename \(from) to", path: to) }
    }

    /// Removes a file; a file that is already gone is not an error.
    public static func removeFile(_ path: String) throws(FileSystemError) {
        if unlink(path) != 0 && errno != ENOENT { throw FileSystemError(errno: errno, operation: "remove", path: path) }
    }

    /// Removes a directory if it is empty; returns whether it was removed.
    @discardableResult
    public static func removeDirectoryIfEmpty(_ path: String) -> Bool {
        rmdir(path) == 0
    }

    /// Removes a directory tree without following symbolic links; returns how many files it removed.
    @discardableResult
    public static func removeTree(_ path: String) throws(FileSystemError) -> Int {
        guard let (stamp, isSymlink) = try linkStamp(path) else { return 0 }
        guard stamp.isDirectory && !isSymlink else {
            try removeFile(path)
            return 1
        }
        var removed = 0
        for entry in try list(path) {
            removed += try removeTree(Paths.join(path, entry.name))
        }
        if rmdir(path) != 0 && errno != ENOENT {
            throw FileSystemError(errno: errno, operation: "remove the directory", path: path)
        }
        return removed
    }

    /// One entry of a directory listing.
    public struct Entry: Sendable {
        /// The entry's name.
        public var name: String
        /// The entry's type as reported by the directory, without following links.
        public var kind: Kind
        /// The types the library distinguishes.
        public enum Kind: Sendable { case file, directory, symlink, other, unknown }
    }

    /// Lists a directory; names that are not valid UTF-8 are reported through `skipped` and left out.
    public static func list(_ path: String, skipped: (String) -> Void = { _ in }) throws(FileSystemError) -> [Entry] {
        guard let dir = opendir(path) else { throw FileSystemError(errno: errno, operation: "list", path: path) }
        defer { closedir(dir) }
        var entries: [Entry] = []
        while true {
            errno = 0
            guard let ent = readdir(dir) else {
                if errno != 0 { throw FileSystemError(errno: errno, operation: "list", path: path) }
                break
            }
            let name: String? = withUnsafePointer(to: &ent.pointee.d_name) { ptr in
                ptr.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(validatingCString: $0) }
            }
            guard let name else {
                skipped(path)
                continue
            }
            if name == "." || name == ".." { continue }
            let kind: Entry.Kind
            switch Int32(ent.pointee.d_type) {
            case Int32(DT_REG): kind = .file
            case Int32(DT_DIR): kind = .directory
            case Int32(DT_LNK): kind = .symlink
            case Int32(DT_UNKNOWN): kind = .unknown
            default: kind = .other
            }
            entries.append(Entry(name: name, kind: kind))
        }
        entries.sort { $0.name < $1.name }
        return entries
    }
}
