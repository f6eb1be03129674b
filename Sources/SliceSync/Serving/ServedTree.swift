import CSliceSyncSystem
#if canImport(Glibc)
import Glibc
#endif

/// A published directory tree, and how request paths map onto it.
///
/// Symbolic-link policy: a link is followed when its fully resolved target is the root or lies below
/// it, so a tree may link to files elsewhere in itself; a link that resolves outside the root answers
/// 404, exactly as a missing file does. The tools' temporary and partial files are never visible, and
/// a signature is visible only while it is current for its file, so a client never receives a
/// signature that describes other content.
public struct ServedTree: Sendable {
    /// The root, fully resolved.
    public let root: String
    /// The root, open, for resolving beneath it.
    private let rootDirectory: SystemFile

    /// What a request path names.
    public enum Resolution: Sendable, Equatable {
        /// A regular file, open for reading, with its stamp.
        case file(SystemFile, stamp: FileStamp)
        /// A directory, at this path below the root.
        case directory(path: String)
        /// Nothing that may be served.
        case notFound

        public static func == (lhs: Resolution, rhs: Resolution) -> Bool {
            switch (lhs, rhs) {
            case (.file(_, let a), .file(_, let b)): return a == b
            case (.directory(let a), .directory(let b)): return a == b
            case (.notFound, .notFound): return true
            default: return false
            }
        }
    }

    /// Opens a tree at `root`, which must be a directory.
    public init(root: String) throws(FileSystemError) {
        guard let resolved = Self.realPath(root) else {
            throw FileSystemError(.notFound, path: root, message: "\(root) does not exist")
        }
        guard (try FileSystem.stamp(resolved))?.isDirectory == true else {
            throw FileSystemError(.notRegularFile, path: root, message: "\(root) is not a directory")
        }
        let descriptor = open(resolved, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw FileSystemError(errno: errno, operation: "open", path: root) }
        self.root = resolved
        self.rootDirectory = SystemFile.adopting(descriptor: descriptor, path: resolved)
    }

    /// Resolves `path` under the root and opens what it names.
    ///
    /// The common case is one `openat2(RESOLVE_BENEATH)`, which follows links only while they stay
    /// below the root. Absolute links (which that call refuses even when they point inside) and kernels
    /// without it take the slow path: resolve every link with `realpath` and check the result's prefix.
    public func resolve(_ path: RequestPath) -> Resolution {
        let segments = path.segments
        if segments.contains(where: { TreeNaming.isTemporary($0) || TreeNaming.isPartial($0)
            || TreeNaming.isJournal($0) }) { return .notFound }
        if segments.isEmpty { return .directory(path: root) }
        let relative = segments.joined(separator: "/")
        let lexical = root == "/" ? "/" + relative : root + "/" + relative
        var descriptor = slicesync_open_beneath(rootDirectory.descriptor, relative)
        if descriptor < 0 {
            guard errno == EXDEV || errno == ENOSYS || errno == EPERM else { return .notFound }
            guard let resolved = Self.realPath(lexical), isInside(resolved) else { return .notFound }
            descriptor = open(resolved, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
            if descriptor < 0 { return .notFound }
        }
        let file = SystemFile.adopting(descriptor: descriptor, path: lexical)
        guard let stamp = try? file.stamp() else { return .notFound }
        if stamp.isDirectory { return .directory(path: lexical) }
        guard stamp.isRegularFile else { return .notFound }
        if let signatureIndex = segments.firstIndex(of: TreeNaming.signatureDirectory) {
            guard isCurrentSignature(stamp, segments: segments,
                signatureIndex: signatureIndex) else { return .notFound }
        }
        return .file(file, stamp: stamp)
    }

    /// Whether a resolved path is the root or below it.
    func isInside(_ resolved: String) -> Bool {
        resolved == root || resolved.hasPrefix(root == "/" ? "/" : root + "/")
    }

    /// A signature is current when its file exists and the signature carries the file's modification
    /// time, or the provisional stamp one second older that `shash` gives a file modified moments
    /// before it was hashed.
    /// The tree's manifest (`.slicesync/.slicesync-manifest`) is always served: it is written only after
    /// the signatures it lists. A zsync control file follows its signature's rule.
    private func isCurrentSignature(_ signature: FileStamp, segments: [String], signatureIndex: Int) -> Bool {
        if signatureIndex == segments.count - 2, segments.last == TreeManifest.fileName { return true }
        guard let last = segments.last, signatureIndex < segments.count - 1,
              let suffix = [TreeNaming.signatureSuffix, TreeNaming.zsyncSuffix].first(where: last.hasSuffix)
        else { return false }
        var source = Array(segments[..<signatureIndex]) + Array(segments[(signatureIndex + 1)...])
        source[source.count - 1] = String(last.dropLast(suffix.count))
        guard !source[source.count - 1].isEmpty, !source.contains(TreeNaming.signatureDirectory) else { return false }
        // The file behind a signature must itself be servable: a link out of the tree has no signature here.
        guard let resolved = Self.realPath(root + "/" + source.joined(separator: "/")), isInside(resolved),
              let stamp = try? FileSystem.stamp(resolved), stamp.isRegularFile else { return false }
        return Self.signature(signature, isCurrentFor: stamp)
    }

    /// Whether a signature (or control file) with stamp `signature` carries the time the signer gives
    /// it for a file with stamp `file`.
    static func signature(_ signature: FileStamp, isCurrentFor file: FileStamp) -> Bool {
        signature.mtimeNanoseconds == file.mtimeNanoseconds
            && (signature.mtimeSeconds == file.mtimeSeconds || signature.mtimeSeconds == file.mtimeSeconds - 1)
    }

    /// The URL path of the current signature of the file at `relativePath`, or nil when there is none.
    public func signatureURLPath(forFile relativePath: String, stamp: FileStamp) -> String? {
        guard let resolved = Self.realPath(root + "/" + relativePath), isInside(resolved) else { return nil }
        let signatureRelative = TreeNaming.signatureDirectory + "/" + relativePath + TreeNaming.signatureSuffix
        guard let signature = try? FileSystem.stamp(root + "/" + signatureRelative), signature.isRegularFile,
              Self.signature(signature, isCurrentFor: stamp)
        else { return nil }
        return "/" + signatureRelative
    }

    /// The canonical absolute form of `path` with every symbolic link resolved; nil when it does not exist.
    public static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
