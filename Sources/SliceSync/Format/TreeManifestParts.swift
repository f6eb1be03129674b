import CZlib

/// Format 2 of the tree manifest: the text in parts compressed one by one, behind an index of their
/// lengths and hashes (docs/FORMAT.md). A mirror that kept the previous manifest fetches the header and
/// index, then only the parts it does not already hold: the cost of a new manifest follows what
/// changed in the tree, not its size.
///
/// Parts end where a path's hash says (content-defined), so an added or removed entry changes the part
/// holding it and leaves the others, and their hashes, as they were.
extension TreeManifest {
    static let partsMagic = "slicesync-manifest 2 zlib-parts "
    /// A part ends after an entry whose path hashes to 0 modulo this (about 32 entries a part)...
    static let partModulus: UInt32 = 32
    /// ...or after this many entries.
    static let maxPartEntries = 1024

    /// Where the parts of a format 2 manifest are, from its header and index.
    struct PartLayout: Sendable, Equatable {
        struct Part: Sendable, Equatable {
            /// Its bytes in the manifest file.
            var range: Range<Int>
            /// The bytes of text it inflates to.
            var textLength: Int
            /// The first 16 bytes of SHA-256 of its compressed bytes.
            var hash: [UInt8]
        }
        var parts: [Part]
        /// The whole text's length.
        var textLength: Int
        /// The manifest file's length.
        var totalLength: Int

        /// The layout of the manifest starting with `prefix`; nil when `prefix` is a whole format 1 manifest
        /// or too short to hold the index (`needed` then says how many bytes would do).
        static func read(_ prefix: [UInt8]) throws(SignatureError) -> (layout: PartLayout?, needed: Int) {
            guard let newline = prefix.prefix(128).firstIndex(of: UInt8(ascii: "\n")),
                  let first = String(validating: prefix[..<newline], as: UTF8.self) else {
                if prefix.count < 128 { return (nil, 128) }
                throw SignatureError(.unsupportedVersion, "not a slicesync tree manifest")
            }
            guard first.hasPrefix(partsMagic) else { return (nil, 0) }
            let numbers = first.dropFirst(partsMagic.count).split(separator: " ", omittingEmptySubsequences: false)
            guard numbers.count == 3, let count = decimal(numbers[0].utf8), count <= maxEntries,
                  let indexLength = decimal(numbers[1].utf8), indexLength <= count * 64 + 64,
                  let textLength = decimal(numbers[2].utf8), textLength <= maxTextBytes else {
                throw SignatureError(.valueOutOfRange, "the manifest's first line \"\(first)\" must give the number "
                    + "of parts, the index's length and the text's length, each within bounds")
            }
            let indexStart = newline + 1
            guard prefix.count >= indexStart + indexLength else { return (nil, indexStart + indexLength) }
            let index = try inflate(Array(prefix[indexStart..<(indexStart + indexLength)]), upTo: count * 64,
                                    what: "the manifest's index")
            var parts: [Part] = []
            var offset = indexStart + indexLength
            var total = 0
            for line in index.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).dropLast() {
                let fields = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
                guard fields.count == 3, let packed = decimal(fields[0]), packed > 0, packed <= maxTextBytes,
                      let text = decimal(fields[1]), text <= packed * 1032,
                      let hash = Encoding.decodeHex(Array(fields[2]), length: 16) else {
                    throw SignatureError(.malformedLine, "part \(parts.count + 1) of the manifest's index is not "
                        + "\"COMPRESSED-LENGTH TEXT-LENGTH HASH\" within bounds")
                }
                parts.append(Part(range: offset..<(offset + packed), textLength: text, hash: hash))
                offset += packed
                total += text
                guard total <= maxTextBytes else {
                    throw SignatureError(.valueOutOfRange, "the manifest's parts hold more than \(maxTextBytes) bytes")
                }
            }
            guard parts.count == count, index.last == UInt8(ascii: "\n") || count == 0, total == textLength else {
                throw SignatureError(.malformedLine, "the manifest's index lists \(parts.count) parts of \(total) "
                    + "bytes where its first line says \(count) parts of \(textLength) bytes")
            }
            return (PartLayout(parts: parts, textLength: textLength, totalLength: offset), offset)
        }
    }

    /// The manifest in format 2.
    public func encoded() -> [UInt8] {
        var partTexts: [[UInt8]] = []
        var current: [UInt8] = []
        var entriesInPart = 0
        for entry in entries {
            current += Self.line(entry)
            entriesInPart += 1
            if Self.endsPart(entry.path) || entriesInPart == Self.maxPartEntries {
                partTexts.append(current)
                current = []
                entriesInPart = 0
            }
        }
        if !current.isEmpty { partTexts.append(current) }
        var index: [UInt8] = []
        var packedParts: [UInt8] = []
        var textLength = 0
        for text in partTexts {
            let packed = Self.deflate(text)
            index += Array("\(packed.count) \(text.count) \(Encoding.hex(Self.partHash(packed[...])))\n".utf8)
            packedParts += packed
            textLength += text.count
        }
        let packedIndex = Self.deflate(index)
        return Array((Self.partsMagic + "\(partTexts.count) \(packedIndex.count) \(textLength)\n").utf8)
            + packedIndex + packedParts
    }

    /// Reads a format 2 manifest: every part's hash is checked before its text is used.
    static func parseParts(_ bytes: [UInt8]) throws(SignatureError) -> TreeManifest {
        let (found, needed) = try PartLayout.read(bytes)
        guard let layout = found else {
            throw SignatureError(.truncated, "the manifest is cut short (\(bytes.count) bytes, its index needs "
                + "\(needed))")
        }
        guard layout.totalLength == bytes.count else {
            throw SignatureError(layout.totalLength > bytes.count ? .truncated : .trailingData, "the manifest is "
                + "\(bytes.count) bytes but its index describes \(layout.totalLength)")
        }
        var text: [UInt8] = []
        text.reserveCapacity(layout.textLength)
        for (number, part) in layout.parts.enumerated() {
            guard partHash(bytes[part.range]) == part.hash else {
                throw SignatureError(.invalidHash, "part \(number + 1) of the manifest does not match its hash in "
                    + "the index")
            }
            let inflated = try inflate(Array(bytes[part.range]), upTo: part.textLength,
                                       what: "part \(number + 1) of the manifest")
            guard inflated.count == part.textLength else {
                throw SignatureError(.truncated, "part \(number + 1) of the manifest holds \(inflated.count) bytes "
                    + "where its index says \(part.textLength)")
            }
            text += inflated
        }
        return try parse(text: text)
    }

    /// The line of one entry.
    static func line(_ entry: Entry) -> [UInt8] {
        var out: [UInt8]
        switch entry.kind {
        case .directory:
            out = Array("d\t".utf8)
        case .file(let size, let modified, let executable, let hash):
            out = Array("f\t\(executable ? "x" : "-")\t\(size)\t\(modified)\t\(hash.text)\t".utf8)
        case .link(let target):
            out = Array("l\t\(target)\t".utf8)
        }
        out += Array(entry.path.utf8)
        out.append(UInt8(ascii: "\n"))
        return out
    }

    /// Whether a part ends after the entry at `path` (FNV-1a of the path).
    static func endsPart(_ path: String) -> Bool {
        var hash: UInt32 = 2_166_136_261
        for byte in path.utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        return hash % partModulus == 0
    }

    static func partHash(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        bytes.withUnsafeBytes { raw in
            digest.withUnsafeMutableBufferPointer { sha256(raw.baseAddress!, count: raw.count, into: $0.baseAddress!) }
        }
        return Array(digest.prefix(16))
    }

    static func deflate(_ plain: [UInt8], level: Int32 = 9) -> [UInt8] {
        var bound = compressBound(uLong(plain.count))
        var packed = [UInt8](repeating: 0, count: Int(bound))
        let status = packed.withUnsafeMutableBufferPointer { output in
            plain.withUnsafeBufferPointer { input in
                compress2(output.baseAddress, &bound, input.baseAddress, uLong(input.count), level)
            }
        }
        precondition(status == Z_OK, "zlib could not compress \(plain.count) bytes (status \(status))")
        return Array(packed.prefix(Int(bound)))
    }

    /// Inflates at most `limit` bytes; more, or a damaged stream, is an error.
    static func inflate(_ packed: [UInt8], upTo limit: Int, what: String) throws(SignatureError) -> [UInt8] {
        var text = [UInt8](repeating: 0, count: max(limit, 1))
        var produced = uLong(text.count)
        let status = text.withUnsafeMutableBufferPointer { output in
            packed.withUnsafeBufferPointer { input in
                uncompress(output.baseAddress, &produced, input.baseAddress, uLong(input.count))
            }
        }
        guard status == Z_OK else {
            throw SignatureError(.truncated, "\(what) is damaged or holds more than it announces (zlib status "
                + "\(status))")
        }
        return Array(text.prefix(Int(produced)))
    }
}
