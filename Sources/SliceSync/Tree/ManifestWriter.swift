import Logging

/// Builds and writes the manifest of a signed tree (`TreeManifest`) from the tree and its signatures.
///
/// Files are listed with the whole-file hash their signature states, so a manifest never describes
/// content its signatures do not: a file whose signature is missing or not current (being written,
/// failed) is left out until it is signed. The manifest is written like a signature (temporary
/// file, fsync, rename), and only when its bytes change, so a conditional GET of an unchanged tree
/// answers 304.
public struct ManifestWriter: Sendable {
    /// The tree's root.
    public let root: String
    /// Whether symbolic links to files outside the tree are listed as the file (as `shash` signs
    /// them); a server that does not serve them sets this to false.
    public var listsLinksLeavingRoot = true
    let logger: Logger

    /// A writer for the tree at `root`.
    public init(root: String, logger: Logger) {
        self.root = root
        self.logger = logger
    }

    /// Where the manifest of the tree is.
    public var path: String {
        Paths.join(Paths.join(root, TreeNaming.signatureDirectory), TreeManifest.fileName)
    }

    /// Builds the manifest; also returns the files left out (no current signature).
    public func build() throws(FileSystemError) -> (manifest: TreeManifest, unsigned: [String]) {
        var entries: [TreeManifest.Entry] = []
        var unsigned: [String] = []
        try walk(relative: "", into: &entries, unsigned: &unsigned)
        return (TreeManifest(entries: entries), unsigned)
    }

    /// Builds the manifest and writes it when it changed; returns whether it was written.
    @discardableResult
    public func update() throws(FileSystemError) -> Bool {
        let (manifest, unsigned) = try build()
        if !unsigned.isEmpty {
            logger.debug("the manifest leaves out \(unsigned.count) file(s) not signed yet: \(unsigned.prefix(5))")
        }
        let bytes = manifest.encoded()
        if let current = try? SystemFile.openForReading(path).readAll(limit: bytes.count + 1), current == bytes {
            return false
        }
        try FileSystem.createDirectories(Paths.parent(of: path))
        let temporary = TreeNaming.temporaryPath(for: path)
        do throws(FileSystemError) {
            let file = try SystemFile.createExclusive(temporary, mode: 0o644)
            try file.write(bytes, at: 0)
            try file.sync()
            try FileSystem.rename(temporary, to: path)
            try FileSystem.syncDirectory(Paths.parent(of: path))
        } catch {
            try? FileSystem.removeFile(temporary)
            throw error
        }
        logger.debug("wrote \(path): \(manifest.entries.count) entries, \(bytes.count) bytes")
        return true
    }

    private func walk(relative: String, into entries: inout [TreeManifest.Entry],
        unsigned: inout [String]) throws(FileSystemError) {
        let directory = Paths.join(root, relative)
        for entry in try FileSystem.list(directory) where !TreeNaming.isReserved(entry.name) {
            guard TreeNaming.isSignable(entry.name) else { continue }
            let path = relative.isEmpty ? entry.name : relative + "/" + entry.name
            let full = Paths.join(root, path)
            guard let (own, isLink) = try FileSystem.linkStamp(full) else { continue }
            if isLink, let target = FileSystem.readLink(full), !target.hasPrefix("/"),
               TreeManifest.resolves(target, from: relative), !target.contains(where: { $0 < " " }) {
                entries.append(TreeManifest.Entry(path: path, kind: .link(target: target)))
                continue
            }
            guard let stamp = isLink ? try? FileSystem.stamp(full) : own else { continue }
            if stamp.isDirectory {
                // Linked directories are not followed, as the signer does not follow them.
                guard !isLink else { continue }
                entries.append(TreeManifest.Entry(path: path, kind: .directory))
                try walk(relative: path, into: &entries, unsigned: &unsigned)
            } else if stamp.isRegularFile {
                if isLink && !listsLinksLeavingRoot && !TreeSigner.resolves(full, inside: root) { continue }
                guard let hash = signedHash(of: path, stamp: stamp) else {
                    unsigned.append(path)
                    continue
                }
                entries.append(TreeManifest.Entry(path: path, kind: .file(size: stamp.size,
                    modified: stamp.mtimeSeconds, executable: stamp.permissions & 0o111 != 0, hash: hash)))
            }
        }
    }

    /// The whole-file hash the file's signature states, when the signature describes the file as it
    /// is (its length, and the modification time the signer gives it: the file's, or a second less
    /// for a provisional one).
    private func signedHash(of relative: String, stamp: FileStamp) -> TreeManifest.FileHash? {
        let signaturePath = TreeNaming.signaturePath(root: root, relativePath: relative)
        guard let signatureStamp = try? FileSystem.stamp(signaturePath),
              ServedTree.signature(signatureStamp, isCurrentFor: stamp),
              let hash = TreeManifest.FileHash.stated(bySignatureAt: signaturePath, length: stamp.size)
        else { return nil }
        return hash
    }
}

extension TreeManifest.FileHash {
    /// The whole-file hash the signature at `path` states for a file of `length` bytes; nil when it
    /// cannot be read or describes another length.
    static func stated(bySignatureAt path: String, length: Int) -> TreeManifest.FileHash? {
        guard let file = try? SystemFile.openForReading(path),
              let prefix = try? file.readPrefix(limit: SignatureLimits.maxHeaderBytes + 64),
              let summary = try? SignatureSummary.parse(prefix: prefix), summary.length == length
        else { return nil }
        switch summary.version {
        case .v2:
            guard let header = try? SignatureV2Header.parse(prefix) else { return nil }
            if let tree = header.treeHash { return TreeManifest.FileHash(kind: "t", digest: tree) }
            return header.sha256.map { TreeManifest.FileHash(kind: "s", digest: $0) }
        case .v1:
            guard let whole = try? file.readAll(limit: SignatureVerifier.maxSignatureBytes),
                  let signature = try? SignatureV1.parse(whole) else { return nil }
            return TreeManifest.FileHash(kind: "h", digest: signature.sha1)
        }
    }
}
