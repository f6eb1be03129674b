#if canImport(Glibc)
import Glibc
#endif

/// A zsync control file (`.zsync`), read as zsync 0.6.2's own code reads it and written as its
/// `zsyncmake` writes it. See docs/FORMAT.md, "zsync control files".
public struct ZsyncControl: Sendable, Equatable {
    /// The `zsync:` version line's value (`0.6.2`).
    public var writerVersion: String
    /// The file's name, when given.
    public var filename: String?
    /// The file's modification time, seconds since the epoch, when given.
    public var mtime: Int?
    /// Block size in bytes, a power of two.
    public var blockSize: Int
    /// File length in bytes.
    public var length: Int
    /// Consecutive blocks a match needs (1 or 2).
    public var sequenceMatches: Int
    /// Trailing bytes of the rolling sum kept per block (1...4).
    public var rsumBytes: Int
    /// Leading bytes of the strong hash kept per block (3...16).
    public var strongBytes: Int
    /// The strong hash of the block records.
    public var strongHash: ZsyncStrongHash
    /// `URL:` values in file order, as written (relative ones resolve against the control file's URL).
    public var urls: [String]
    /// Whole-file SHA-1, when given.
    public var sha1: [UInt8]?
    /// Whole-file SHA-256 (`File-Hash: SHA-256:`), when given.
    public var sha256: [UInt8]?
    /// Whether the file is only offered gzip-compressed (`Z-URL` without `URL`) or is recompressed
    /// after the rebuild (`Recompress`).
    public var compressedOnly: Bool
    /// The block records, `rsumBytes + strongBytes` bytes each, in block order.
    public var records: [UInt8]

    /// The version `zsyncmake` 0.6.2 writes and this writer imitates.
    public static let writtenVersion = "0.6.2"
    /// Longest header, without the `Z-Map2` block: generous for many mirror URLs.
    public static let maxHeaderBytes = 64 << 10
    /// Longest header line.
    public static let maxLineBytes = 8 << 10
    /// Most `URL:` lines kept.
    public static let maxURLs = 64

    /// Creates a control file from its parts.
    public init(writerVersion: String = writtenVersion, filename: String?, mtime: Int?, blockSize: Int, length: Int,
                sequenceMatches: Int, rsumBytes: Int, strongBytes: Int, strongHash: ZsyncStrongHash = .md4,
                urls: [String], sha1: [UInt8]?, sha256: [UInt8]? = nil, compressedOnly: Bool = false,
                records: [UInt8]) {
        self.writerVersion = writerVersion
        self.filename = filename
        self.mtime = mtime
        self.blockSize = blockSize
        self.length = length
        self.sequenceMatches = sequenceMatches
        self.rsumBytes = rsumBytes
        self.strongBytes = strongBytes
        self.strongHash = strongHash
        self.urls = urls
        self.sha1 = sha1
        self.sha256 = sha256
        self.compressedOnly = compressedOnly
        self.records = records
    }

    /// Bytes per block record.
    public var recordSize: Int { rsumBytes + strongBytes }
    /// Number of blocks: the last one is zero-padded to the block size.
    public var blockCount: Int { Self.blockCount(length: length, blockSize: blockSize) }

    static func blockCount(length: Int, blockSize: Int) -> Int {
        length == 0 ? 0 : (length - 1) / blockSize + 1
    }

    /// The stored (masked) rolling sum of block `index`, right-aligned as `a << 16 | b` would be.
    public func rsum(_ index: Int) -> UInt32 {
        records.withUnsafeBufferPointer { Self.storedSum($0.baseAddress! + index * recordSize, bytes: rsumBytes) }
    }

    /// The rolling sum a record at `record` stores in its first `bytes` bytes, right-aligned.
    @inline(__always) static func storedSum(_ record: UnsafePointer<UInt8>, bytes: Int) -> UInt32 {
        var value: UInt32 = 0
        for k in 0..<bytes { value = value << 8 | UInt32(record[k]) }
        return value
    }

    /// How this file's block records are computed.
    var geometry: ZsyncRecordGeometry {
        ZsyncRecordGeometry(blockSize: blockSize, rsumBytes: rsumBytes, strongBytes: strongBytes,
                            strongHash: strongHash)
    }

    /// The stored strong-hash prefix of block `index`.
    public func strong(_ index: Int) -> ArraySlice<UInt8> {
        let start = index * recordSize + rsumBytes
        return records[start..<(start + strongBytes)]
    }

    /// The bytes of block `index` of the file.
    public func blockRange(_ index: Int) -> Range<Int> {
        (index * blockSize)..<min((index + 1) * blockSize, length)
    }

    // MARK: Choices zsyncmake makes

    /// zsyncmake's default block size: 2048 below 100 MB, else 4096.
    public static func defaultBlockSize(length: Int) -> Int { length < 100_000_000 ? 2048 : 4096 }

    /// The hash lengths zsyncmake 0.6.2 chooses for a file: short enough to keep the control file small,
    /// long enough that a false match is unlikely over the whole file (two consecutive blocks must match
    /// when the file has more than one).
    public static func hashLengths(length: Int, blockSize: Int) -> (sequenceMatches: Int, rsum: Int, strong: Int) {
        let seq = length > blockSize ? 2 : 1
        let l = Double(length)
        let b = Double(blockSize)
        let blocks = Double(length / blockSize)
        let rsumWanted = length > 0 ? ((log2(l) + log2(b) - 8.6) / Double(seq) / 8).rounded(.up) : 2
        let rsum = Int(min(4, max(2, rsumWanted)))
        let strongByLength = length > 0 ? Int(((20 + log2(l) + log2(1 + blocks)) / Double(seq) / 8).rounded(.up)) : 0
        let strongFloor = Int(((27.9 + log2(1 + blocks)) / 8).rounded(.down))
        return (seq, rsum, min(16, max(strongByLength, strongFloor)))
    }

    // MARK: Writing

    /// The exact bytes of the control file, header in zsyncmake's order.
    public func serialized() -> [UInt8] {
        var header = "zsync: \(writerVersion)\n"
        if let filename { header += "Filename: \(filename)\n" }
        if let mtime { header += "MTime: \(Self.formatTime(mtime))\n" }
        header += "Blocksize: \(blockSize)\nLength: \(length)\n"
        header += "Hash-Lengths: \(sequenceMatches),\(rsumBytes),\(strongBytes)\n"
        for url in urls { header += "URL: \(url)\n" }
        if let sha1 { header += "SHA-1: \(Encoding.hex(sha1))\n" }
        // zsync 0.6.2 reads `Safe:` line by line: it must come before the headers it names.
        var safe: [String] = []
        var newer = ""
        if let sha256 {
            newer += "File-Hash: SHA-256:\(Encoding.hex(sha256))\n"
            safe.append("File-Hash")
        }
        if strongHash != .md4 {
            newer += "Strong-Hash-Algorithm: \(strongHash.rawValue)\n"
            safe.append("Strong-Hash-Algorithm")
        }
        if !safe.isEmpty { header += "Safe: \(safe.joined(separator: ","))\n" + newer }
        return Array(header.utf8) + [UInt8(ascii: "\n")] + records
    }

    /// `MTime` as zsyncmake writes it: `Mon, 30 Nov 2026 23:42:07 +0000`.
    static func formatTime(_ seconds: Int) -> String {
        String(HTTPDate.format(seconds).dropLast(3)) + "+0000"
    }

    // MARK: Reading

    /// Whether the path of `url` (a URL or a local path) ends in `.zsync`, before any query.
    public static func namesControlFile(_ url: String) -> Bool {
        var path = Substring(url)
        if let end = path.firstIndex(where: { $0 == "?" || $0 == "#" }) { path = path[..<end] }
        return path.lowercased().hasSuffix(".zsync")
    }

    /// Whether a resource is a zsync control file rather than a slicesync signature: its URL's path
    /// ends in `.zsync`, or a line of its header is `zsync: …` (zsyncmake writes it first, zsyncmake2
    /// last).
    public static func looksLike(_ prefix: [UInt8], url: String) -> Bool {
        if namesControlFile(url) { return true }
        if prefix.starts(with: Array("Version: ".utf8)) { return false }
        var start = 0
        let end = min(prefix.count, maxHeaderBytes)
        while start < end {
            let next = prefix[start..<end].firstIndex(of: UInt8(ascii: "\n")) ?? end
            if next == start { return false }
            if prefix[start..<next].starts(with: Array("zsync: ".utf8)) { return true }
            start = next + 1
        }
        return false
    }

    /// Headers zsync 0.6.2 and its successors define; any other is an error unless listed in `Safe:`.
    private static let knownHeaders: Set<String> = [
        "zsync", "Min-Version", "Filename", "MTime", "Blocksize", "Length", "Hash-Lengths", "URL", "Z-URL",
        "SHA-1", "File-Hash", "Strong-Hash-Algorithm", "Z-Map2", "Recompress", "Z-Filename", "Safe",
    ]

    /// Parses a whole control file, checking every field and the records' length before allocating.
    public static func parse(_ bytes: [UInt8]) throws(SignatureError) -> ZsyncControl {
        try withRawBytes(bytes) { (raw) throws(SignatureError) in try parse(raw) }
    }

    /// Parses a whole control file from raw memory.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(SignatureError) -> ZsyncControl {
        do {
            let (fields, offset) = try parseFields(bytes)
            return try build(fields: fields, records: UnsafeRawBufferPointer(rebasing: bytes[offset...]))
        } catch {
            var named = error
            named.document = .zsyncControl
            throw named
        }
    }

    /// The `Filename` and `Length` of a control file from its first bytes (the whole header), for
    /// deciding whether one is current without reading its records.
    public static func headerFacts(_ prefix: [UInt8]) -> (filename: String?, length: Int)? {
        prefix.withUnsafeBytes { raw in
            guard let (fields, _) = try? parseFields(raw),
                  let length = fields.first(where: { $0.key == "Length" }).flatMap({ Int($0.value) })
            else { return nil }
            return (fields.first { $0.key == "Filename" }?.value, length)
        }
    }

    /// The header lines, in order, and where the records start.
    private static func parseFields(_ bytes: UnsafeRawBufferPointer) throws(SignatureError)
        -> (fields: [(key: String, value: String)], recordsOffset: Int) {
        var fields: [(key: String, value: String)] = []
        var offset = 0
        var textBytes = 0
        while true {
            guard offset < bytes.count else {
                throw SignatureError(.truncated, "the control file ends inside its header (no empty line)")
            }
            let (rawLine, next) = try SignatureHeader.line(in: bytes, from: offset, limit: maxLineBytes)
            var line = rawLine
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            textBytes += next - offset
            offset = next
            guard textBytes <= maxHeaderBytes else {
                throw SignatureError(.headerTooLong, "the control file's header is longer than \(maxHeaderBytes) bytes")
            }
            if line.isEmpty { break }
            guard let separator = line.firstRange(of: [UInt8(ascii: ":"), UInt8(ascii: " ")]),
                  let key = String(validating: line[line.startIndex..<separator.lowerBound], as: UTF8.self),
                  !key.isEmpty, key.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }),
                  let value = String(validating: line[separator.upperBound...], as: UTF8.self) else {
                let number = fields.count + 1
                if fields.isEmpty {
                    throw SignatureError(.malformedLine,
                        "the first line is not \"Key: value\"; is this a zsync control file?")
                }
                throw SignatureError(.malformedLine, "header line \(number) is not of the form \"Key: value\"")
            }
            guard !value.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
                throw SignatureError(.malformedLine, "the \"\(key)\" header holds a control character")
            }
            guard fields.count < 256 else {
                throw SignatureError(.headerTooLong, "the control file's header has more than 256 lines")
            }
            fields.append((key, value))
            if key == "Z-Map2" {
                // N pairs of 16-bit numbers follow, inside the header: skip them.
                let count = try decimal(Array(value.utf8), field: key, in: 0...(1 << 40))
                guard bytes.count - offset >= count * 4 else {
                    throw SignatureError(.truncated, "the control file ends inside its Z-Map2 block")
                }
                offset += count * 4
            }
        }
        return (fields, offset)
    }

    private static func build(fields: [(key: String, value: String)],
                              records raw: UnsafeRawBufferPointer) throws(SignatureError) -> ZsyncControl {
        func values(_ key: String) -> [String] { fields.filter { $0.key == key }.map(\.value) }
        func single(_ key: String) throws(SignatureError) -> String? {
            let found = values(key)
            guard found.count <= 1 else { throw SignatureError(.duplicateField, "the header has \"\(key)\" twice") }
            return found.first
        }
        func required(_ key: String) throws(SignatureError) -> String {
            guard let value = try single(key) else {
                throw SignatureError(.missingField, "the control file has no \"\(key)\" header")
            }
            return value
        }
        let safe = Set(values("Safe").flatMap { $0.split(whereSeparator: { $0 == "," || $0 == " " }) }.map(String.init))
        for (key, _) in fields where !knownHeaders.contains(key) && !safe.contains(key) {
            throw SignatureError(.unknownField,
                "the control file has a header \"\(key)\" that this reader does not know and that is not marked Safe")
        }
        let version = try required("zsync")
        guard !version.isEmpty else { throw SignatureError(.malformedLine, "the \"zsync\" header is empty") }
        let filename = try single("Filename").map { (name) throws(SignatureError) in
            try SignatureHeader.validateFilename(Array(name.utf8))
        }
        let mtime = try single("MTime").map { (text) throws(SignatureError) in
            guard let seconds = parseTime(text) else {
                throw SignatureError(.malformedLine,
                    "the MTime header \"\(text)\" is not a date as zsyncmake writes it")
            }
            return seconds
        }
        let blockSize = try decimal(Array(try required("Blocksize").utf8), field: "Blocksize", in: 16...(1 << 24))
        guard blockSize & (blockSize - 1) == 0 else {
            throw SignatureError(.valueOutOfRange, "the block size \(blockSize) is not a power of two")
        }
        let length = try decimal(Array(try required("Length").utf8), field: "Length", in: 0...Int.max)
        var (seq, rsum, strong) = (1, 4, 16)
        if let lengths = try single("Hash-Lengths") {
            let parts = lengths.split(separator: ",", omittingEmptySubsequences: false).map { Array($0.utf8) }
            guard parts.count == 3 else {
                throw SignatureError(.malformedLine, "Hash-Lengths \"\(lengths)\" is not three numbers seq,rsum,strong")
            }
            seq = try decimal(parts[0], field: "Hash-Lengths (sequence matches)", in: 1...2)
            rsum = try decimal(parts[1], field: "Hash-Lengths (rolling sum bytes)", in: 1...4)
            strong = try decimal(parts[2], field: "Hash-Lengths (strong hash bytes)", in: 3...16)
        }
        var strongHash = ZsyncStrongHash.md4
        if let name = try single("Strong-Hash-Algorithm") {
            guard let known = ZsyncStrongHash(rawValue: name.uppercased()) else {
                throw SignatureError(.unsupportedHashing, "the strong hash \"\(name)\" is not MD4, MD5 or SHA-224")
            }
            strongHash = known
        }
        let sha1 = try single("SHA-1").map { (text) throws(SignatureError) in
            try hexDigest(text, length: 20, field: "SHA-1")
        }
        var sha256: [UInt8]?
        for value in values("File-Hash") {
            guard let colon = value.firstIndex(of: ":") else {
                throw SignatureError(.malformedLine, "File-Hash \"\(value)\" is not ALGORITHM:HEX")
            }
            let algorithm = value[..<colon].uppercased()
            let hex = String(value[value.index(after: colon)...])
            switch algorithm {
            case "SHA-256":
                guard sha256 == nil else { throw SignatureError(.duplicateField, "File-Hash gives SHA-256 twice") }
                sha256 = try hexDigest(hex, length: 32, field: "File-Hash")
            case "SHA-1":
                let digest = try hexDigest(hex, length: 20, field: "File-Hash")
                if let sha1, sha1 != digest {
                    throw SignatureError(.invalidHash, "the SHA-1 and File-Hash headers disagree")
                }
            default:
                // Another algorithm we cannot check: the ones we can still protect the file.
                continue
            }
        }
        guard sha1 != nil || sha256 != nil else {
            throw SignatureError(.missingField,
                "the control file has neither an SHA-1 nor a File-Hash: SHA-256 header, "
                    + "so a rebuild could not be checked")
        }
        let urls = values("URL")
        guard urls.count <= maxURLs else {
            throw SignatureError(.valueOutOfRange, "the control file lists more than \(maxURLs) URLs")
        }
        let compressedOnly = (urls.isEmpty && !values("Z-URL").isEmpty) || !values("Recompress").isEmpty

        let recordSize = rsum + strong
        let count = blockCount(length: length, blockSize: blockSize)
        // Compared through division, so that an absurd Length cannot overflow or make us allocate.
        guard raw.count % recordSize == 0, raw.count / recordSize == count else {
            if raw.count / recordSize < count {
                throw SignatureError(.truncated,
                    "the control file has \(raw.count) bytes of block records; "
                        + "\(count) blocks need \(count * recordSize)")
            }
            throw SignatureError(.trailingData,
                "the control file has \(raw.count - count * recordSize) bytes after its \(count) block records")
        }
        return ZsyncControl(writerVersion: version, filename: filename, mtime: mtime, blockSize: blockSize,
                            length: length, sequenceMatches: seq, rsumBytes: rsum, strongBytes: strong,
                            strongHash: strongHash, urls: urls, sha1: sha1, sha256: sha256,
                            compressedOnly: compressedOnly, records: Array(raw))
    }

    private static func decimal(_ digits: [UInt8], field: String,
                                in range: ClosedRange<Int>) throws(SignatureError) -> Int {
        try SignatureHeader.parseDecimal(digits, field: field, in: range)
    }

    private static func hexDigest(_ text: String, length: Int, field: String) throws(SignatureError) -> [UInt8] {
        guard let digest = Encoding.decodeHex(Array(text.lowercased().utf8), length: length) else {
            throw SignatureError(.invalidHash, "the \(field) header is not \(length * 2) hex digits")
        }
        return digest
    }

    /// Parses `Mon, 30 Nov 2026 23:42:07 +0000` (any numeric zone, or GMT).
    static func parseTime(_ text: String) -> Int? {
        let fields = text.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count == 6, let zone = fields.last else { return nil }
        var offset = 0
        if zone != "GMT" && zone != "UTC" {
            let digits = zone.dropFirst()
            guard zone.count == 5, zone.first == "+" || zone.first == "-", digits.allSatisfy(\.isASCII),
                  let value = Int(digits), value >= 0 else { return nil }
            offset = (value / 100 * 60 + value % 100) * 60 * (zone.first == "-" ? -1 : 1)
        }
        guard let seconds = HTTPDate.parse(fields.dropLast().joined(separator: " ") + " GMT") else { return nil }
        return seconds - offset
    }
}
