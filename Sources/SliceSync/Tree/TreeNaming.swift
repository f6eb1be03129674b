/// Where signatures live in a published tree, and which names the tools keep for themselves.
public enum TreeNaming {
    /// The hidden directory at the root of a published tree that holds its signatures.
    public static let signatureDirectory = ".slicesync"
    /// The suffix of every signature file.
    public static let signatureSuffix = ".slicesync"
    /// The marker inside the name of every temporary file the tools create.
    public static let temporaryMarker = ".slicesync.tmp-"
    /// The suffix of a download's kept partial work.
    public static let partialSuffix = ".slicesync.part"

    /// The signature path of `relativePath` (slash-separated, below `root`).
    public static func signaturePath(root: String, relativePath: String) -> String {
        Paths.join(Paths.join(root, signatureDirectory), relativePath + signatureSuffix)
    }

    /// Whether a directory entry with this name is a file the tools never sign: their own temporary
    /// and partial files, and signature directories.
    public static func isReserved(_ name: String) -> Bool {
        name == signatureDirectory || isTemporary(name) || name.hasSuffix(partialSuffix)
    }

    /// Whether this name is one of the tools' temporary files.
    public static func isTemporary(_ name: String) -> Bool {
        name.contains(temporaryMarker)
    }

    /// A fresh temporary name next to `path` (same directory, so a rename is atomic).
    public static func temporaryPath(for path: String) -> String {
        let random = UInt64.random(in: 0...UInt64.max)
        let suffix = String(random, radix: 36)
        return Paths.join(Paths.parent(of: path), "." + Paths.basename(path) + temporaryMarker + suffix)
    }

    /// Whether a name can be written into a signature header: no control characters, at most 255 bytes.
    public static func isSignable(_ name: String) -> Bool {
        (try? SignatureHeader.validateFilename(Array(name.utf8))) != nil
    }
}
