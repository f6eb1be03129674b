#if canImport(Glibc)
import Glibc
#endif

/// What happened to one file's signature.
public enum SignatureFileResult: Sendable, Equatable {
    /// A new signature was written.
    case written(bytesHashed: Int)
    /// The existing signature was current.
    case upToDate
}

/// Writes one file's signature atomically and decides whether an existing one is current.
///
/// Freshness rule: a signature is current when its modification time equals the file's (to the
/// nanosecond), its header names the file and its length, and it was written with the requested format
/// and sizes. The writer copies the file's modification time onto the signature only when the file did
/// not change while it was hashed and was last modified more than `racyWindow` seconds before hashing
/// began; otherwise the signature is stamped one second older than the file, so the next run hashes the
/// file again (a write within the same timestamp tick would otherwise go unnoticed).
public struct SignatureFileWriter: Sendable {
    /// The format and sizes to write.
    public var parameters: SigningParameters
    /// Threads that share the hashing of one file.
    public var pool: HashingPool?
    /// How recent a modification makes a signature provisional, in seconds.
    public var racyWindow = 2
    /// How often to try again when the file changes while it is hashed.
    public var attempts = 3
    /// When set, a signature in progress is abandoned (its temporary file removed) once it is cancelled.
    public var cancellation: CancellationFlag?
    /// Whether a zsync control file is kept beside each signature (`shash --zsync`), made in the same
    /// read pass; without it, a control file left beside a signature that is rewritten is removed, so
    /// that none describes older content.
    public var writesZsync = false
    /// Where the slice digests of each file signed (format 2) are kept for `slicesync`, or nil.
    public var digestCache: SliceDigestCache?
    /// Called between hashing and the final stat; lets tests change the file at exactly that moment.
    var afterHashing: (@Sendable (String) -> Void)?

    /// Creates a writer.
    public init(parameters: SigningParameters, pool: HashingPool?) {
        self.parameters = parameters
        self.pool = pool
    }

    /// The parameters a file starting with `start` is signed with: a control file's `File-Hash` needs
    /// the plain SHA-256, which the signature then carries too (it costs nothing more).
    private func parameters(forFileStartingWith start: [UInt8]) -> SigningParameters {
        var chosen = parameters.forFile(startingWith: start)
        if writesZsync && chosen.version == .v2 { chosen.plainDigest = true }
        return chosen
    }

    /// Whether the signature at `signaturePath` is current for the file with `stamp`, `filename` and
    /// first bytes `fileStart` (which decide the block size of a tar archive).
    public func isCurrent(signaturePath: String, fileStamp stamp: FileStamp, filename: String,
        fileStart: [UInt8] = []) -> Bool {
        guard let signatureStamp = try? FileSystem.stamp(signaturePath), signatureStamp.isRegularFile,
              signatureStamp.mtimeSeconds == stamp.mtimeSeconds,
              signatureStamp.mtimeNanoseconds == stamp.mtimeNanoseconds,
              let file = try? SystemFile.openForReading(signaturePath),
              let prefix = try? file.readPrefix(limit: SignatureLimits.maxHeaderBytes + 64),
              let summary = try? SignatureSummary.parse(prefix: prefix)
        else { return false }
        guard parameters(forFileStartingWith: fileStart).matches(summary) && summary.length == stamp.size
            && summary.filename == filename else { return false }
        return !writesZsync || zsyncIsCurrent(TreeNaming.zsyncPath(forSignature: signaturePath), fileStamp: stamp,
                                              filename: filename)
    }

    /// Whether the control file at `path` carries the file's stamp, name and length.
    func zsyncIsCurrent(_ path: String, fileStamp stamp: FileStamp, filename: String) -> Bool {
        guard let controlStamp = try? FileSystem.stamp(path), controlStamp.isRegularFile,
              controlStamp.mtimeSeconds == stamp.mtimeSeconds, controlStamp.mtimeNanoseconds == stamp.mtimeNanoseconds,
              let prefix = try? SystemFile.openForReading(path).readPrefix(limit: ZsyncControl.maxHeaderBytes),
              let facts = ZsyncControl.headerFacts(prefix) else { return false }
        return facts.filename == filename && facts.length == stamp.size
    }

    /// Brings the signature of `filePath` at `signaturePath` up to date.
    public func update(filePath: String, signaturePath: String,
        force: Bool = false) throws(FileSystemError) -> SignatureFileResult {
        let filename = Paths.basename(filePath)
        guard TreeNaming.isSignable(filename) else {
            throw FileSystemError(.invalidPath, path: filePath,
                message: "cannot sign \(filePath): its name has a control character or is longer than 255 bytes")
        }
        for attempt in 1...attempts {
            let startedAt = Self.now()
            let source = try SystemFile.openForReading(filePath)
            let before = try source.stamp()
            let start = try source.readPrefix(limit: SigningParameters.sniffedBytes)
            if !force && isCurrent(signaturePath: signaturePath, fileStamp: before, filename: filename,
                fileStart: start) {
                return .upToDate
            }
            do {
                try write(source: source, stamp: before, parameters: parameters(forFileStartingWith: start),
                    filename: filename, startedAt: startedAt, to: signaturePath)
                return .written(bytesHashed: before.size)
            } catch where error.code == .changedWhileReading && attempt < attempts {
                continue
            }
        }
        throw FileSystemError(.changedWhileReading, path: filePath,
            message: "\(filePath) kept changing while it was hashed; it will be signed once it is stable")
    }

    /// Signatures larger than this (files of many GiB) are hashed again after a rename rather than held
    /// in memory whole.
    static let largestSignatureMoved = 256 << 20

    /// Rewrites the current signature of a file renamed from `oldFilename` under its new name at
    /// `signaturePath`, keeping its stamp, and removes the old one: a rename needs no hashing. False,
    /// with nothing changed, when the old signature is not current for the file (it must be hashed).
    public func moveSignature(from oldSignaturePath: String, oldFilename: String, to signaturePath: String,
        filePath: String) throws(FileSystemError) -> Bool {
        let filename = Paths.basename(filePath)
        guard TreeNaming.isSignable(filename), let stamp = try FileSystem.stamp(filePath), stamp.isRegularFile,
              let start = try? SystemFile.openForReading(filePath).readPrefix(limit: SigningParameters.sniffedBytes),
              isCurrent(signaturePath: oldSignaturePath, fileStamp: stamp, filename: oldFilename, fileStart: start),
              let signature = try? Signature.parse(
                SystemFile.openForReading(oldSignaturePath).readAll(limit: Self.largestSignatureMoved))
        else { return false }
        let oldControlPath = TreeNaming.zsyncPath(forSignature: oldSignaturePath)
        var control: ZsyncControl?
        if writesZsync {
            // The records stay; the name and the relative URL follow the file.
            guard zsyncIsCurrent(oldControlPath, fileStamp: stamp, filename: oldFilename),
                  var moved = try? ZsyncControl.parse(SystemFile.openForReading(oldControlPath)
                      .readAll(limit: Self.largestSignatureMoved)) else { return false }
            moved.filename = filename
            moved.urls = [TreeNaming.zsyncRelativeURL(forSignature: signaturePath)]
            control = moved
        }
        try Self.replace(signaturePath) { (output) throws(FileSystemError) in
            try output.write(signature.serialized(renamedTo: filename), at: 0)
            return (stamp.mtimeSeconds, stamp.mtimeNanoseconds)
        }
        try placeControlFile(control, signaturePath: signaturePath, stamp: (stamp.mtimeSeconds, stamp.mtimeNanoseconds))
        try FileSystem.removeFile(oldSignaturePath)
        if (try? FileSystem.linkStamp(oldControlPath)) ?? nil != nil { try FileSystem.removeFile(oldControlPath) }
        return true
    }

    private func write(source: SystemFile, stamp before: FileStamp, parameters: SigningParameters, filename: String,
        startedAt: Int, to signaturePath: String) throws(FileSystemError) {
        let maker = writesZsync ? ZsyncMaker(length: before.size) : nil
        var control: ZsyncControl?
        var stamped = (seconds: 0, nanoseconds: 0)
        try Self.replace(signaturePath) { (output) throws(FileSystemError) in
            var builder = SignatureBuilder(parameters: parameters, pool: pool)
            builder.cancellation = cancellation
            let outcome = try builder.sign(source: source, length: before.size, filename: filename, into: output,
                                           zsync: maker)
            control = maker?.finish(filename: filename, mtime: before.mtimeSeconds,
                                    url: TreeNaming.zsyncRelativeURL(forSignature: signaturePath),
                                    sha256: parameters.version == .v2 ? outcome.fileDigest : nil)
            afterHashing?(source.path)
            let after = try source.stamp()
            let atPath = try FileSystem.stamp(source.path)
            guard !after.contentMayDiffer(from: before), let atPath,
                  atPath.device == before.device, atPath.inode == before.inode else {
                throw FileSystemError(.changedWhileReading, path: source.path,
                    message: "\(source.path) changed while it was being hashed")
            }
            let racy = before.mtimeSeconds >= startedAt - racyWindow
            stamped = (before.mtimeSeconds - (racy ? 1 : 0), before.mtimeNanoseconds)
            if let digestCache, let digests = outcome.sliceDigests {
                digestCache.store(after, sliceSize: parameters.sliceSize, blockSize: parameters.blockSize,
                    digests: digests)
            }
            return stamped
        }
        try placeControlFile(control, signaturePath: signaturePath, stamp: stamped)
    }

    /// Writes the control file beside the signature with the signature's stamp, or, with none to write,
    /// removes one left there (it would describe older content).
    private func placeControlFile(_ control: ZsyncControl?, signaturePath: String,
                                  stamp: (seconds: Int, nanoseconds: Int)) throws(FileSystemError) {
        let path = TreeNaming.zsyncPath(forSignature: signaturePath)
        guard let control else {
            if (try? FileSystem.linkStamp(path)) ?? nil != nil { try FileSystem.removeFile(path) }
            return
        }
        try Self.replace(path) { (output) throws(FileSystemError) in
            try output.write(control.serialized(), at: 0)
            return stamp
        }
    }

    /// Replaces `path` atomically: `fill` writes a temporary file next to it and returns the modification
    /// time to give it; the file is fsynced, renamed into place and its directory fsynced. On any
    /// failure the temporary file is removed and `path` is untouched.
    private static func replace(_ path: String,
        fill: (SystemFile) throws(FileSystemError) -> (seconds: Int, nanoseconds: Int)) throws(FileSystemError) {
        let directory = Paths.parent(of: path)
        try FileSystem.createDirectories(directory)
        let temporary = TreeNaming.temporaryPath(for: path)
        let output = try SystemFile.createExclusive(temporary, mode: 0o644)
        var renamed = false
        defer { if !renamed { try? FileSystem.removeFile(temporary) } }
        let modified = try fill(output)
        try output.setModificationTime(seconds: modified.seconds, nanoseconds: modified.nanoseconds)
        try output.sync()
        try FileSystem.rename(temporary, to: path)
        renamed = true
        try FileSystem.syncDirectory(directory)
    }

    private static func now() -> Int {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return ts.tv_sec
    }
}
