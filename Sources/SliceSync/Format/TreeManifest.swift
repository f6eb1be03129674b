import CZlib

/// The manifest of a signed tree (`ROOT/.slicesync/.slicesync-manifest`, docs/FORMAT.md): every
/// directory, file and symbolic link inside the tree, sorted by path, with what a mirror needs to
/// decide what to do without asking the server anything else.
public struct TreeManifest: Sendable, Equatable {
    /// One entry.
    public struct Entry: Sendable, Equatable {
        /// What the entry is.
        public enum Kind: Sendable, Equatable {
            /// A directory.
            case directory
            /// A regular file: its size, modification time (seconds), whether it is executable, and
            /// the first 16 bytes of its whole-file hash as its signature states it.
            case file(size: Int, modified: Int, executable: Bool, hash: FileHash)
            /// A symbolic link to `target`, relative, resolving inside the tree.
            case link(target: String)
        }

        /// The path below the tree's root, `/`-separated.
        public var path: String
        /// What it is.
        public var kind: Kind

        /// Creates an entry.
        public init(path: String, kind: Kind) {
            self.path = path
            self.kind = kind
        }
    }

    /// A whole-file hash, cut to 16 bytes, and which hash it is.
    public struct FileHash: Sendable, Equatable, Hashable {
        /// `t`: the tree hash (format 2); `s`: SHA-256 (format 2 without a tree hash); `h`: SHA-1 (format 1).
        public var kind: Character
        /// The hash's first 16 bytes.
        public var prefix: [UInt8]

        /// Creates a hash from a full digest.
        public init(kind: Character, digest: [UInt8]) {
            self.kind = kind
            prefix = Array(digest.prefix(16))
        }

        var text: String { String(kind) + ":" + Encoding.hex(prefix) }
    }

    /// The entries, sorted by the bytes of their paths.
    public var entries: [Entry]

    /// The manifest's name inside a tree's signature directory. It cannot collide with the signatures
    /// of a published file or directory: those end in `.slicesync` (or `.zsync`), and names beginning
    /// with `.slicesync-` are the tools' own.
    public static let fileName = ".slicesync-manifest"
    /// Bounds a reader checks before allocating: entries, and bytes of the text.
    public static let maxEntries = 10_000_000
    public static let maxTextBytes = 1 << 30
    /// Longest path, and longest name in it, accepted.
    public static let maxPathBytes = 4096
    public static let maxNameBytes = 255
    private static let magic = "slicesync-manifest 1 zlib "

    /// Creates a manifest from entries (sorted here).
    public init(entries: [Entry]) {
        self.init(sorted: entries.sorted { $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) })
    }

    private init(sorted entries: [Entry]) { self.entries = entries }

    // MARK: Writing

    /// The text form: one line per entry, fields separated by a tab.
    func text() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(entries.count * 80)
        for entry in entries { out += Self.line(entry) }
        return out
    }

    /// Format 1 of a manifest's text, one zlib stream (still read; tests use it to build manifests the writer
    /// never would).
    public static func stored(text plain: [UInt8]) -> [UInt8] {
        Array((magic + "\(plain.count)\n").utf8) + deflate(plain, level: 6)
    }

    // MARK: Reading

    /// Reads a stored manifest; every rule of docs/FORMAT.md is checked, and any breach is an error
    /// that names the line.
    public static func parse(_ bytes: [UInt8]) throws(SignatureError) -> TreeManifest {
        if bytes.starts(with: Array(partsMagic.utf8)) { return try parseParts(bytes) }
        guard let newline = bytes.prefix(64).firstIndex(of: UInt8(ascii: "\n")),
              let first = String(validating: bytes[..<newline], as: UTF8.self), first.hasPrefix(magic) else {
            throw SignatureError(.unsupportedVersion, "not a slicesync tree manifest (its first line is not "
                + "\"\(partsMagic)…\" or \"\(magic)LENGTH\")")
        }
        let lengthText = first.dropFirst(magic.count)
        guard let length = decimal(lengthText.utf8), length <= maxTextBytes,
              length <= max(1 << 20, (bytes.count - newline) * 1032) else {
            throw SignatureError(.valueOutOfRange, "the manifest's length \"\(lengthText)\" is not a number up to "
                + "\(maxTextBytes), or more than zlib can have made of \(bytes.count) bytes")
        }
        var text = [UInt8](repeating: 0, count: length)
        var produced = uLong(length)
        let packed = Array(bytes[(newline + 1)...])
        let status = text.withUnsafeMutableBufferPointer { output in
            packed.withUnsafeBufferPointer { input in
                uncompress(output.baseAddress, &produced, input.baseAddress, uLong(input.count))
            }
        }
        guard status == Z_OK, Int(produced) == length else {
            throw SignatureError(.truncated, "the manifest's compressed text is damaged or does not hold the "
                + "\(length) bytes it announces (zlib status \(status))")
        }
        return try parse(text: text)
    }

    /// Reads the text form.
    static func parse(text: [UInt8]) throws(SignatureError) -> TreeManifest {
        var entries: [Entry] = []
        var directories = Set<String>()
        var previous: [UInt8]?
        var lineNumber = 0
        for line in text.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).dropLast() {
            lineNumber += 1
            func bad(_ why: String) -> SignatureError {
                SignatureError(.malformedLine, "line \(lineNumber) of the manifest: \(why)")
            }
            guard entries.count < maxEntries else { throw bad("more than \(maxEntries) entries") }
            let fields = line.split(separator: UInt8(ascii: "\t"), omittingEmptySubsequences: false)
            guard let kind = fields.first, kind.count == 1 else { throw bad("no entry type") }
            let expected: Int = switch kind.first {
            case UInt8(ascii: "d"): 2
            case UInt8(ascii: "f"): 6
            case UInt8(ascii: "l"): 3
            default: 0
            }
            guard expected > 0 else { throw bad("unknown entry type") }
            guard fields.count == expected else { throw bad("\(fields.count) fields where \(expected) belong") }
            let pathBytes = Array(fields[fields.count - 1])
            guard let path = String(validating: pathBytes, as: UTF8.self) else { throw bad("a path that is not UTF-8") }
            try checkPath(path, bytes: pathBytes, bad: bad)
            if let previous {
                guard previous.lexicographicallyPrecedes(pathBytes) else {
                    throw bad("\(path) is out of order or repeated (entries are sorted by path, each once)")
                }
            }
            previous = pathBytes
            let slash = pathBytes.lastIndex(of: UInt8(ascii: "/"))
            let parent = slash.map { String(decoding: pathBytes[..<$0], as: UTF8.self) } ?? ""
            if slash != nil {
                guard directories.contains(parent) else {
                    throw bad("\(path) is inside \(parent), which is not listed as a directory before it "
                        + "(or is listed as a file or link: a path cannot be both)")
                }
            }
            switch kind.first {
            case UInt8(ascii: "d"):
                directories.insert(path)
                entries.append(Entry(path: path, kind: .directory))
            case UInt8(ascii: "f"):
                let mode = fields[1]
                guard mode.count == 1, mode.first == UInt8(ascii: "x") || mode.first == UInt8(ascii: "-") else {
                    throw bad("the mode must be x or -")
                }
                guard let size = decimal(fields[2]), size <= SignatureLimits.maxLength else {
                    throw bad("the size must be a number up to \(SignatureLimits.maxLength)")
                }
                let negative = fields[3].first == UInt8(ascii: "-")
                guard let magnitude = decimal(fields[3].dropFirst(negative ? 1 : 0)), magnitude < 1 << 40 else {
                    throw bad("the modification time must be a number of seconds within ±2^40")
                }
                let hashField = fields[4]
                guard hashField.count == 34, let letter = hashField.first,
                      [UInt8(ascii: "t"), UInt8(ascii: "s"), UInt8(ascii: "h")].contains(letter),
                      hashField[hashField.startIndex + 1] == UInt8(ascii: ":"),
                      let digest = Encoding.decodeHex(hashField.dropFirst(2), length: 16) else {
                    throw bad("the hash must be t:, s: or h: and 32 lowercase hex digits")
                }
                let hashKind = Character(Unicode.Scalar(letter))
                entries.append(Entry(path: path, kind: .file(size: size, modified: negative ? -magnitude : magnitude,
                    executable: mode.first == UInt8(ascii: "x"), hash: FileHash(kind: hashKind, digest: digest))))
            default:
                let targetBytes = Array(fields[1])
                guard let target = String(validating: targetBytes, as: UTF8.self), !target.isEmpty,
                      !targetBytes.contains(where: { $0 < 0x20 || $0 == 0x7F }), targetBytes.count <= maxPathBytes,
                      !target.hasPrefix("/") else {
                    throw bad("the link's target must be a relative path without control characters")
                }
                guard resolves(target, from: parent) else {
                    throw bad("the link \(path) -> \(target) leaves the tree")
                }
                entries.append(Entry(path: path, kind: .link(target: target)))
            }
        }
        if let last = text.last, last != UInt8(ascii: "\n") {
            throw SignatureError(.truncated, "the manifest's last line is cut short")
        }
        // The reader checked the order line by line.
        return TreeManifest(sorted: entries)
    }

    /// A plain decimal number (no sign, no leading zeros), or nil.
    static func decimal(_ digits: some Collection<UInt8>) -> Int? {
        try? SignatureHeader.parseDecimal(Array(digits), field: "number", in: 0...Int.max)
    }

    /// A path below the root: relative, no empty, `.` or `..` segment, no control characters, no name
    /// of the tools' own, bounded.
    private static func checkPath(_ path: String, bytes: [UInt8],
        bad: (String) -> SignatureError) throws(SignatureError) {
        guard !bytes.isEmpty, bytes.count <= maxPathBytes else { throw bad("an empty or over-long path") }
        guard !bytes.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
            throw bad("a path with a control character")
        }
        guard bytes.first != UInt8(ascii: "/") else { throw bad("an absolute path") }
        // Every name the tools keep holds ".slicesync": the rest need no closer look (this runs per entry).
        let mayBeReserved = bytes.firstRange(of: reservedMarker) != nil
        var start = 0
        for end in 0...bytes.count where end == bytes.count || bytes[end] == UInt8(ascii: "/") {
            let segment = bytes[start..<end]
            start = end + 1
            let dot = UInt8(ascii: ".")
            guard !segment.isEmpty, !(segment.count == 1 && segment.first == dot),
                  !(segment.count == 2 && segment.allSatisfy { $0 == dot }) else {
                throw bad("\(path) has an empty, . or .. segment")
            }
            guard segment.count <= maxNameBytes else { throw bad("a name longer than \(maxNameBytes) bytes") }
            guard !mayBeReserved || !TreeNaming.isReserved(String(decoding: segment, as: UTF8.self)) else {
                throw bad("\(path) holds a name the tools keep for themselves")
            }
        }
    }

    private static let reservedMarker = Array(TreeNaming.signatureDirectory.utf8)

    /// Whether `target`, relative to the directory `from` (below the root), stays below the root.
    static func resolves(_ target: String, from directory: String) -> Bool {
        var depth = directory.isEmpty ? 0 : directory.split(separator: "/").count
        for segment in target.split(separator: "/", omittingEmptySubsequences: true) {
            switch segment {
            case ".": continue
            case "..":
                depth -= 1
                if depth < 0 { return false }
            default:
                depth += 1
            }
        }
        return true
    }
}
