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
    /// The suffix of an in-place update's journal.
    public static let journalSuffix = ".slicesync.journal"

    /// The signature path of `relativePath` (slash-separated, below `root`).
    public static func signaturePath(root: String, relativePath: String) -> String {
        Paths.join(Paths.join(root, signatureDirectory), relativePath + signatureSuffix)
    }

    /// The suffix of the zsync control files `shash --zsync` keeps beside signatures.
    public static let zsyncSuffix = ".zsync"

    /// The zsync control file kept beside the signature at `signaturePath`.
    public static func zsyncPath(forSignature signaturePath: String) -> String {
        String(signaturePath.dropLast(signatureSuffix.count)) + zsyncSuffix
    }

    /// The relative URL, from the control file beside the signature at `signaturePath` to the signed
    /// file: up out of `.slicesync/` and its subdirectories, then down the file's own path,
    /// percent-encoded.
    public static func zsyncRelativeURL(forSignature signaturePath: String) -> String {
        var components = signaturePath.split(separator: "/").map(String.init)
        if let directory = components.dropLast().lastIndex(of: signatureDirectory) {
            components.removeFirst(directory + 1)
        }
        if let last = components.last {
            components[components.count - 1] = String(last.dropLast(signatureSuffix.count))
        }
        return String(repeating: "../", count: components.count) + RequestPath.encode(components.joined(separator: "/"))
    }

    /// Whether a directory entry with this name is a file the tools never sign: their own temporary
    /// and partial files, signature directories, and names beginning with `.slicesync-` (the tree
    /// manifest's, so that no published name can collide with it).
    public static func isReserved(_ name: String) -> Bool {
        name == signatureDirectory || name.hasPrefix(signatureDirectory + "-") || isTemporary(name)
            || isPartial(name) || isJournal(name)
    }

    /// Whether this name is an in-place update's journal.
    public static func isJournal(_ name: String) -> Bool {
        name.utf8.count >= journalSuffix.utf8.count
            && name.utf8.reversed().starts(with: journalSuffix.utf8.reversed())
    }

    /// Whether this name is one of the tools' temporary files.
    public static func isTemporary(_ name: String) -> Bool {
        // Compared as bytes, as the file system stores names: this runs for every path a server resolves.
        let marker = temporaryMarker.utf8
        let bytes = name.utf8
        guard bytes.count >= marker.count else { return false }
        var index = bytes.startIndex
        while let dot = bytes[index...].firstIndex(of: UInt8(ascii: ".")) {
            if bytes[dot...].starts(with: marker) { return true }
            index = bytes.index(after: dot)
        }
        return false
    }

    /// Whether this name is a download's kept partial work.
    public static func isPartial(_ name: String) -> Bool {
        name.utf8.count >= partialSuffix.utf8.count
            && name.utf8.reversed().starts(with: partialSuffix.utf8.reversed())
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
