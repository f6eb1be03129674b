#if canImport(Glibc)
import Glibc
#endif

/// The journal of an in-place update (`DEST.slicesync.journal`, docs/FORMAT.md): a redo log that
/// holds the final bytes of every range of the destination that changes.
///
/// Its data area is a sparse file as long as the new version, each changed range at its own offset
/// (so downloads stream into it exactly as into a new copy, and an interrupted run's staging file is
/// probed like any other partial output). A trailer after the data names the ranges, the file they
/// belong to (device and inode) and the new length, under a SHA-256. The journal is fsynced, then
/// renamed to its name: a journal found under that name is complete.
///
/// Applying it copies every range into the destination and sets its length. That only ever writes
/// final bytes, whatever the destination held before, so it can be repeated after a crash at any
/// point of an earlier application: content that moves inside the file was copied into the journal
/// while the destination was still whole, and no copy reads the destination.
struct UpdateJournal: Sendable, Equatable {
    /// The destination's device, when the journal was written.
    var device: UInt64
    /// The destination's inode.
    var inode: UInt64
    /// The destination's new length.
    var length: Int
    /// A modification time (seconds) the destination takes at the end (a zsync control file's
    /// `MTime`), or nil.
    var modified: Int?
    /// The ranges that change, sorted and disjoint, inside `0..<length`.
    var ranges: [Range<Int>]

    static let suffix = TreeNaming.journalSuffix
    private static let magic = Array("SSJRNL01".utf8)
    private static let endMagic = Array("SSJEND01".utf8)
    /// The trailer is at most this large (8 + 5 × 8 + 16 per range + 32): 64 MiB holds 4 million
    /// ranges, far more than a file cut into blocks can change in separate places.
    static let maxTrailerBytes = 64 << 20

    /// The journal of `destination`.
    static func path(of destination: String) -> String { destination + suffix }

    /// Bytes the ranges hold.
    var bytes: Int { ranges.reduce(0) { $0 + $1.count } }

    /// Where the trailer starts: after the data, on a page boundary.
    private var trailerOffset: Int { (length + 4095) / 4096 * 4096 }

    /// The trailer and the footer, as written after the data.
    func encodedTrailer() -> [UInt8] {
        var values = [device, inode, UInt64(length), modified.map { UInt64(bitPattern: Int64($0)) } ?? UInt64.max,
                      UInt64(ranges.count)]
        for range in ranges { values += [UInt64(range.lowerBound), UInt64(range.upperBound)] }
        var bytes = Self.magic + Encoding.bigEndian(values)
        bytes += StreamingDigest.hash(.sha256, bytes)
        return bytes + Encoding.bigEndian([UInt64(trailerOffset)]) + Self.endMagic
    }

    /// Reads the journal's trailer from `file`.
    static func read(_ file: SystemFile) throws(FileSystemError) -> UpdateJournal {
        let path = file.path
        let damaged = { @Sendable (why: String) -> FileSystemError in
            FileSystemError(.corruptJournal, path: path, message: "\(path) is not a usable update journal (\(why))")
        }
        let size = try file.stamp().size
        guard size >= 16 else { throw damaged("it is \(size) bytes long") }
        var footer = [UInt8](repeating: 0, count: 16)
        _ = try withMutableRawBytes(&footer) { (raw) throws(FileSystemError) in
            try file.read(into: raw.baseAddress!, count: 16, at: size - 16)
        }
        guard Array(footer[8...]) == endMagic else { throw damaged("its last bytes are not a journal's") }
        let start = Int(truncatingIfNeeded: load(footer, 0))
        guard start >= 0, start % 4096 == 0, start <= size - 16, size - 16 - start <= maxTrailerBytes else {
            throw damaged("its trailer offset \(start) is out of place")
        }
        var trailer = [UInt8](repeating: 0, count: size - 16 - start)
        let wanted = trailer.count
        guard try withMutableRawBytes(&trailer, { (raw) throws(FileSystemError) in
            try file.read(into: raw.baseAddress!, count: wanted, at: start)
        }) == wanted else { throw damaged("it became shorter while it was read") }
        let fixed = 8 + 5 * 8
        guard trailer.count >= fixed + 32, Array(trailer[0..<8]) == magic else {
            throw damaged("its trailer does not start as a journal's")
        }
        let body = Array(trailer[..<(trailer.count - 32)])
        guard StreamingDigest.hash(.sha256, body) == Array(trailer[(trailer.count - 32)...]) else {
            throw damaged("its trailer does not match its checksum")
        }
        let length = load(body, 24)
        let modified = load(body, 32)
        let count = load(body, 40)
        guard length <= UInt64(Int.max), (length + 4095) / 4096 * 4096 == UInt64(start) else {
            throw damaged("its length \(length) does not agree with where its trailer is")
        }
        guard count == UInt64(body.count - fixed) / 16, UInt64(body.count - fixed) % 16 == 0 else {
            throw damaged("it lists \(count) ranges in a trailer of \(body.count) bytes")
        }
        var ranges: [Range<Int>] = []
        ranges.reserveCapacity(Int(count))
        var end = 0
        for index in 0..<Int(count) {
            let lower = load(body, fixed + 16 * index)
            let upper = load(body, fixed + 16 * index + 8)
            guard lower >= UInt64(end), lower < upper, upper <= length else {
                throw damaged("range \(index) (\(lower)..<\(upper)) is out of order or outside the file")
            }
            ranges.append(Int(lower)..<Int(upper))
            end = Int(upper)
        }
        return UpdateJournal(device: load(body, 8), inode: load(body, 16), length: Int(length),
            modified: modified == UInt64.max ? nil : Int(Int64(bitPattern: modified)), ranges: ranges)
    }

    private static func load(_ bytes: [UInt8], _ at: Int) -> UInt64 {
        bytes[at..<(at + 8)].reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// Writes the trailer after the data of `staging` (whose first `length` bytes hold the ranges),
    /// makes it durable and gives it the journal's name. From then on the update is decided: any
    /// later run finishes it.
    func seal(_ staging: SystemFile, destination: String) throws(FileSystemError) {
        try staging.truncate(to: trailerOffset)
        try staging.write(encodedTrailer(), at: trailerOffset)
        try staging.sync()
        try FileSystem.rename(staging.path, to: Self.path(of: destination))
        try FileSystem.syncDirectory(Paths.parent(of: destination))
    }

    /// Copies every range from `journal` into `destination`, sets its length (and modification time)
    /// and makes it durable. Safe to repeat.
    func apply(from journal: SystemFile, to destination: SystemFile,
        crashPoint: (String) -> Void = { _ in }) throws(FileSystemError) {
        for (index, range) in ranges.enumerated() {
            try destination.copy(from: journal, at: range.lowerBound, to: range.lowerBound, count: range.count)
            if index == ranges.count / 2 { crashPoint("applying") }
        }
        if try destination.stamp().size != length { try destination.truncate(to: length) }
        if let modified { try destination.setModificationTime(seconds: modified, nanoseconds: 0) }
        try destination.sync()
    }

    /// Finishes an interrupted in-place update of `destination`, if its journal is there: applies it
    /// and removes it. A journal that belongs to another file (the destination was replaced since)
    /// or cannot be read whole is removed with a warning: the run that follows checks every byte of
    /// the destination against the signature and fetches what differs, so nothing depends on it.
    /// Returns what was done, for the log.
    static func recover(_ destination: String, lock: (SystemFile) throws -> Void) throws -> String? {
        let path = path(of: destination)
        guard try FileSystem.stamp(path) != nil else { return nil }
        let journalFile = try SystemFile.openForReading(path)
        guard try FileSystem.stamp(destination) != nil else {
            try FileSystem.removeFile(path)
            return "removed \(path): its destination no longer exists"
        }
        let target = try SystemFile.openForUpdating(destination)
        try lock(target)
        let decoded = Result { () throws(FileSystemError) in try read(journalFile) }
        if case .failure(let error) = decoded {
            try FileSystem.removeFile(path)
            return "\(error.message); removed it: the destination is checked whole instead"
        }
        guard case .success(let journal) = decoded else { return nil }
        let stamp = try target.stamp()
        guard stamp.device == journal.device, stamp.inode == journal.inode else {
            try FileSystem.removeFile(path)
            return "removed \(path): it belongs to an earlier file of that name (the destination was replaced)"
        }
        try journal.apply(from: journalFile, to: target)
        try FileSystem.removeFile(path)
        try FileSystem.syncDirectory(Paths.parent(of: destination))
        let changed = formatBytes(journal.bytes)
        return "finished the interrupted in-place update of \(destination) from its journal (\(changed))"
    }
}
