/// What a mirror installed, kept in `DEST/.slicesync-mirror`: for each file, the manifest's hash and
/// the local stamp it had right after it was installed.
///
/// It tells a file the mirror wrote and nobody touched since (same inode, size and times), whose
/// content is then known by its hash without reading it, from one changed locally, which a mirror
/// never overwrites or deletes without `--force`. A missing or damaged state file only means less is
/// known: files are then compared by size and modification time, as rsync does.
struct MirrorState: Sendable, Equatable {
    /// One installed file.
    struct Installed: Sendable, Equatable {
        var hash: TreeManifest.FileHash
        var size: Int
        var inode: UInt64
        var mtimeNanoseconds: Int
        var ctimeNanoseconds: Int

        init(hash: TreeManifest.FileHash, stamp: FileStamp) {
            self.hash = hash
            size = stamp.size
            inode = stamp.inode
            mtimeNanoseconds = stamp.mtimeTotalNanoseconds
            ctimeNanoseconds = stamp.ctimeSeconds &* 1_000_000_000 &+ stamp.ctimeNanoseconds
        }

        init(hash: TreeManifest.FileHash, size: Int, inode: UInt64, mtimeNanoseconds: Int, ctimeNanoseconds: Int) {
            self.hash = hash
            self.size = size
            self.inode = inode
            self.mtimeNanoseconds = mtimeNanoseconds
            self.ctimeNanoseconds = ctimeNanoseconds
        }

        /// Whether the file at `stamp` is still exactly what was installed.
        func isUntouched(_ stamp: FileStamp) -> Bool {
            stamp.size == size && stamp.inode == inode && stamp.mtimeTotalNanoseconds == mtimeNanoseconds
                && stamp.ctimeSeconds &* 1_000_000_000 &+ stamp.ctimeNanoseconds == ctimeNanoseconds
        }
    }

    /// Installed files by path below DEST.
    var files: [String: Installed] = [:]

    static let fileName = ".slicesync-mirror"
    private static let firstLine = "slicesync-mirror-state 1"

    /// The text form: a first line, then a line per file, fields separated by tabs.
    func encoded() -> [UInt8] {
        var out = Array((Self.firstLine + "\n").utf8)
        for (path, file) in files.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }) {
            out += Array("\(file.hash.kind):\(Encoding.hex(file.hash.prefix))\t\(file.size)\t\(file.inode)\t".utf8)
            out += Array("\(file.mtimeNanoseconds)\t\(file.ctimeNanoseconds)\t\(path)\n".utf8)
        }
        return out
    }

    /// Reads the text form; lines that do not parse are skipped (they only make the mirror compare by
    /// size and time).
    static func parse(_ bytes: [UInt8]) -> MirrorState {
        var state = MirrorState()
        let lines = bytes.split(separator: UInt8(ascii: "\n"))
        guard let first = lines.first, String(decoding: first, as: UTF8.self) == firstLine else { return state }
        for line in lines.dropFirst() {
            let fields = line.split(separator: UInt8(ascii: "\t"), maxSplits: 5, omittingEmptySubsequences: false)
            guard fields.count == 6, fields[0].count == 34,
                  let kind = fields[0].first.map({ Character(UnicodeScalar($0)) }),
                  let digest = Encoding.decodeHex(Array(fields[0].dropFirst(2)), length: 16),
                  let size = Int(String(decoding: fields[1], as: UTF8.self)),
                  let inode = UInt64(String(decoding: fields[2], as: UTF8.self)),
                  let mtime = Int(String(decoding: fields[3], as: UTF8.self)),
                  let ctime = Int(String(decoding: fields[4], as: UTF8.self)),
                  let path = String(validating: fields[5], as: UTF8.self) else { continue }
            state.files[path] = Installed(hash: TreeManifest.FileHash(kind: kind, digest: digest), size: size,
                inode: inode, mtimeNanoseconds: mtime, ctimeNanoseconds: ctime)
        }
        return state
    }
}
