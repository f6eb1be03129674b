#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import AWSSigning
#if canImport(Glibc)
import Glibc
#endif

/// What an interrupted push leaves for the next run: the multipart upload under way, the plan it
/// follows, the local file and old object it was made for, and the parts already done
/// (`$XDG_CACHE_HOME/slicesync/pushes/`, one small JSON file per destination).
///
/// A run that finds one for its destination goes on with the same upload when the local file, the old
/// object and the plan are the same, and otherwise aborts that upload on the endpoint first, so no parts
/// are left behind.
struct PushState: Codable, Equatable {
    var endpoint: String
    var bucket: String
    var key: String
    var uploadID: String
    var localPath: String
    var device: UInt64
    var inode: UInt64
    var size: Int
    var mtimeSeconds: Int
    var mtimeNanoseconds: Int
    var oldETag: String?
    var parts: [PushPart]
    /// ETags of the parts done, by part number.
    var done: [Int: String] = [:]

    /// Whether this state was made for the same file (as it is now), old object and plan.
    func continues(stamp: FileStamp, oldETag: String?, parts: [PushPart]) -> Bool {
        device == stamp.device && inode == stamp.inode && size == stamp.size && mtimeSeconds == stamp.mtimeSeconds
            && mtimeNanoseconds == stamp.mtimeNanoseconds && self.oldETag == oldETag && self.parts == parts
    }

    /// Where the state of pushes to `bucket`/`key` at `endpoint` is kept; nil without a cache directory.
    static func path(endpoint: String, bucket: String, key: String) -> String? {
        guard let directory = Paths.userCacheDirectory() else { return nil }
        let name = SigV4Signer.payloadHash(Array("\(endpoint)\n\(bucket)\n\(key)".utf8))
        return Paths.join(Paths.join(directory, "pushes"), String(name.prefix(32)) + ".json")
    }

    static func load(_ path: String) -> PushState? {
        guard let bytes = try? SystemFile.openForReading(path).readAll(limit: 64 << 20) else { return nil }
        return try? JSONDecoder().decode(PushState.self, from: Data(bytes))
    }

    /// Written to a temporary name and renamed: a kill leaves the old state or the new one.
    func save(_ path: String) throws {
        let data = try JSONEncoder().encode(self)
        try FileSystem.createDirectories(Paths.parent(of: path))
        let temporary = path + ".tmp-\(getpid())"
        try? FileSystem.removeFile(temporary)
        let file = try SystemFile.createExclusive(temporary, mode: 0o600)
        try file.write(Array(data), at: 0)
        try FileSystem.rename(temporary, to: path)
    }

    static func remove(_ path: String?) {
        guard let path else { return }
        try? FileSystem.removeFile(path)
    }
}
