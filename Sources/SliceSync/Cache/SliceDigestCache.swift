import Synchronization
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// The per-user cache of local files' slice digests (`$XDG_CACHE_HOME/slicesync`, docs/FORMAT.md).
///
/// An entry holds the full SHA-256 slice digests (the tree hash's parts) of one file, keyed by its
/// device, inode, size, and modification and change times to the nanosecond: any write to the file,
/// or a replacement, changes the key, and the entry is no longer found. With it, a sync matches the
/// new signature's slices against a local file without reading it, reads only around what changed,
/// and verifies an in-place update by hashing only the slices it wrote.
///
/// Nothing in an entry is trusted beyond its key: an entry that fails its checksum or describes
/// another geometry is ignored (and removed), and a sync whose result does not match the signature
/// checks every byte again before repairing anything. Entries are written to a temporary name and
/// renamed, so concurrent runs only ever see whole entries; the oldest are removed when the cache
/// grows past its bound.
public struct SliceDigestCache: Sendable {
    /// The directory of the entries.
    public let directory: String
    /// Bytes the entries may take together.
    public let limitBytes: Int
    /// The cache is listed to evict entries on a process's first store, then every `evictsEvery`th.
    var evictsEvery = 64

    private static let magic = Array("SSCACHE1".utf8)
    private static let stores = Atomic<Int>(0)
    /// Files smaller than this are not kept: reading them is cheap, and a tree of small files would
    /// fill the cache with entries that spare nothing.
    public static let minimumFileSize = 8 << 20
    /// Magic, seven key fields, slice size, block size, slice count.
    private static let fixedBytes = 8 + 10 * 8

    /// A cache in `directory`.
    public init(directory: String, limitBytes: Int = 256 << 20) {
        self.directory = directory
        self.limitBytes = limitBytes
    }

    /// The user's cache: `$XDG_CACHE_HOME/slicesync`, else `$HOME/.cache/slicesync`; nil without either.
    public static func standard() -> SliceDigestCache? {
        Paths.userCacheDirectory().map { SliceDigestCache(directory: $0) }
    }

    private func entryPath(_ stamp: FileStamp, sliceSize: Int, blockSize: Int) -> String {
        let name = String(stamp.device, radix: 16) + "-" + String(stamp.inode, radix: 16)
            + "-\(sliceSize)-\(blockSize).digests"
        return Paths.join(directory, name)
    }

    /// What an entry starts with: the magic, the key and the geometry.
    private static func header(_ stamp: FileStamp, sliceSize: Int, blockSize: Int, slices: Int) -> [UInt8] {
        magic + Encoding.bigEndian([stamp.device, stamp.inode, UInt64(stamp.size),
            UInt64(bitPattern: Int64(stamp.mtimeSeconds)), UInt64(stamp.mtimeNanoseconds),
            UInt64(bitPattern: Int64(stamp.ctimeSeconds)), UInt64(stamp.ctimeNanoseconds),
            UInt64(sliceSize), UInt64(blockSize), UInt64(slices)])
    }

    /// The slice digests of the file whose stamp is `stamp`, cut into slices of `sliceSize` and blocks
    /// of `blockSize`; nil when there is no current, whole entry.
    public func load(_ stamp: FileStamp, sliceSize: Int, blockSize: Int) -> [UInt8]? {
        guard stamp.size >= Self.minimumFileSize else { return nil }
        let path = entryPath(stamp, sliceSize: sliceSize, blockSize: blockSize)
        guard let file = try? SystemFile.openForReading(path) else { return nil }
        let slices = stamp.size == 0 ? 0 : (stamp.size - 1) / max(1, sliceSize) + 1
        let expected = Self.fixedBytes + slices * TreeHash.digestSize + 32
        guard let bytes = try? file.readAll(limit: expected), bytes.count == expected else {
            try? FileSystem.removeFile(path)
            return nil
        }
        let body = Array(bytes[..<(expected - 32)])
        guard Array(body[..<Self.fixedBytes]) == Self.header(stamp, sliceSize: sliceSize, blockSize: blockSize,
            slices: slices) else {
            // Another file now has this device and inode, or the file changed: the entry is stale.
            try? FileSystem.removeFile(path)
            return nil
        }
        guard StreamingDigest.hash(.sha256, body) == Array(bytes[(expected - 32)...]) else {
            try? FileSystem.removeFile(path)
            return nil
        }
        // Used entries are the last to be evicted.
        _ = try? file.setModificationTime(seconds: Int(time(nil)), nanoseconds: 0)
        return Array(body[Self.fixedBytes...])
    }

    /// Keeps `digests` for the file whose stamp is `stamp`. Failures are ignored: the cache only
    /// spares work.
    public func store(_ stamp: FileStamp, sliceSize: Int, blockSize: Int, digests: [UInt8]) {
        let slices = stamp.size == 0 ? 0 : (stamp.size - 1) / max(1, sliceSize) + 1
        guard stamp.size >= Self.minimumFileSize, digests.count == slices * TreeHash.digestSize,
              (try? FileSystem.createDirectories(directory)) != nil else { return }
        var bytes = Self.header(stamp, sliceSize: sliceSize, blockSize: blockSize, slices: slices) + digests
        bytes += StreamingDigest.hash(.sha256, bytes)
        let path = entryPath(stamp, sliceSize: sliceSize, blockSize: blockSize)
        let temporary = TreeNaming.temporaryPath(for: path)
        guard let file = try? SystemFile.createExclusive(temporary, mode: 0o600) else { return }
        guard (try? file.write(bytes, at: 0)) != nil, (try? FileSystem.rename(temporary, to: path)) != nil else {
            try? FileSystem.removeFile(temporary)
            return
        }
        // Eviction lists the cache (a stat per entry): on a process's first store, then every 64th, so
        // signing a tree of many big files does not list it once per file.
        if Self.stores.add(1, ordering: .relaxed).oldValue % max(1, evictsEvery) == 0 { evict(keeping: path) }
    }

    /// Removes the least recently used entries until the cache is within its bound.
    private func evict(keeping kept: String) {
        guard let entries = try? FileSystem.list(directory) else { return }
        var files: [(path: String, size: Int, used: Int)] = []
        for entry in entries where entry.kind == .file || entry.kind == .unknown {
            let path = Paths.join(directory, entry.name)
            guard let stamp = try? FileSystem.stamp(path), stamp.isRegularFile else { continue }
            // Temporary files of runs that were killed are removed after an hour.
            if TreeNaming.isTemporary(entry.name) {
                if stamp.mtimeSeconds < Int(time(nil)) - 3600 { try? FileSystem.removeFile(path) }
                continue
            }
            files.append((path, stamp.size, stamp.mtimeSeconds))
        }
        var total = files.reduce(0) { $0 + $1.size }
        for file in files.sorted(by: { $0.used < $1.used }) where total > limitBytes && file.path != kept {
            try? FileSystem.removeFile(file.path)
            total -= file.size
        }
    }
}
