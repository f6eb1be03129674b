/// The outcome of checking a file against its signature.
public struct VerificationReport: Sendable, Codable, Equatable {
    /// The file checked.
    public var file: String
    /// The signature it was checked against.
    public var signature: String
    /// Whether the file is exactly the one the signature describes.
    public var matches: Bool
    /// File length the signature describes.
    public var expectedLength: Int
    /// The file's actual length.
    public var actualLength: Int
    /// Slices in the signature.
    public var sliceCount: Int
    /// Slice size of the signature.
    public var sliceSize: Int
    /// Indices of the slices that differ (or are missing or extra), in order.
    public var differingSlices: [Int]
    /// Whether the whole-file hash matches.
    public var wholeFileHashMatches: Bool

    enum CodingKeys: String, CodingKey {
        case file, signature, matches
        case expectedLength = "expected_length", actualLength = "actual_length"
        case sliceCount = "slice_count", sliceSize = "slice_size"
        case differingSlices = "differing_slices", wholeFileHashMatches = "whole_file_hash_matches"
    }

    /// A one-paragraph account for people: which slices differ, as byte ranges.
    public var summary: String {
        if matches { return "\(file): OK (\(actualLength) bytes, \(sliceCount) slices match \(signature))" }
        var lines = ["\(file): DIFFERS from \(signature)"]
        if expectedLength != actualLength {
            lines.append("  length: \(actualLength) bytes, the signature says \(expectedLength)")
        }
        if !differingSlices.isEmpty {
            let shown = differingSlices.prefix(20).map { index in
                let start = index * sliceSize
                let end = min(start + sliceSize, max(expectedLength, actualLength)) - 1
                return "\(index) (bytes \(start)-\(end))"
            }
            let more = differingSlices.count > 20 ? ", and \(differingSlices.count - 20) more" : ""
            lines.append("  \(differingSlices.count) of \(sliceCount) slices differ: " +
                "\(shown.joined(separator: ", "))\(more)")
        }
        if !wholeFileHashMatches { lines.append("  the whole-file hash differs") }
        return lines.joined(separator: "\n")
    }
}

/// Checks a file against a signature, slice by slice and as a whole: `shash --verify`.
public struct SignatureVerifier: Sendable {
    /// Threads that share the hashing.
    public var pool: HashingPool?

    /// Creates a verifier.
    public init(pool: HashingPool?) { self.pool = pool }

    /// Largest signature file read whole (format 1 signatures must be read whole).
    public static let maxSignatureBytes = 1 << 29

    /// Finds the signature of `filePath`: `DIR/.slicesync/NAME.slicesync`, then each ancestor's
    /// `.slicesync/` with the relative path, nearest first.
    public static func locateSignature(of filePath: String) -> String? {
        var relative = Paths.basename(filePath)
        var directory = Paths.parent(of: filePath)
        for _ in 0..<64 {
            let candidate = TreeNaming.signaturePath(root: directory, relativePath: relative)
            if (try? FileSystem.stamp(candidate))??.isRegularFile == true { return candidate }
            let parent = Paths.parent(of: directory)
            if parent == directory || directory == "." && parent == "." { break }
            relative = Paths.basename(directory) + "/" + relative
            directory = parent
        }
        return nil
    }

    /// Compares `filePath` with the signature at `signaturePath`.
    public func verify(filePath: String, signaturePath: String) throws -> VerificationReport {
        let signatureFile = try SystemFile.openForReading(signaturePath)
        let prefix = try signatureFile.readPrefix(limit: SignatureLimits.maxHeaderBytes + 64)
        let summary = try SignatureSummary.parse(prefix: prefix)
        let expected: [UInt8]
        let expectedDigest: [UInt8]?
        var expectedTree: [UInt8]?
        let parameters: SigningParameters
        switch summary.version {
        case .v1:
            let signature = try SignatureV1.parse(try signatureFile.readAll(limit: Self.maxSignatureBytes))
            expected = signature.slices.flatMap { $0.line + [UInt8(ascii: "\n")] }
            expectedDigest = signature.sha1
            parameters = try SigningParameters(version: .v1, sliceSize: signature.sliceSize)
        case .v2:
            let header = try SignatureV2Header.parse(prefix)
            let coarseBytes = try signatureFile.readPrefix(limit: header.headerLength + header.coarseTableLength)
            guard coarseBytes.count == header.headerLength + header.coarseTableLength else {
                throw SignatureError(.truncated, "the coarse table of \(signaturePath) is cut short")
            }
            expected = Array(coarseBytes[header.headerLength...])
            expectedDigest = header.sha256
            expectedTree = header.treeHash
            var own = try SigningParameters(version: .v2, sliceSize: header.sliceSize, blockSize: header.blockSize)
            own.plainDigest = header.sha256 != nil
            parameters = own
        }

        let source = try SystemFile.openForReading(filePath)
        let length = try source.stamp().size
        let recordSize = summary.version == .v1 ? SignatureV1.lineLength : HashRecord.size
        let actualSlices = summary.length == 0 && length == 0 ? 0 : (length + summary.sliceSize - 1) / summary.sliceSize
        // The local signature's header is discarded and its fine tables are never kept: only slice records count.
        let placeholderName = "f"
        let headerLength = Layout(parameters: parameters, length: length, filename: placeholderName,
            targetPieceSize: 1).headerLength
        let sink = MemorySink(limit: headerLength + actualSlices * recordSize)
        let outcome = try SignatureBuilder(parameters: parameters, pool: pool)
            .sign(source: source, length: length, filename: placeholderName, into: sink)
        let actual = Array(sink.bytes.dropFirst(headerLength))

        var differing: [Int] = []
        for index in 0..<max(summary.sliceCount, actualSlices) {
            let range = index * recordSize..<(index + 1) * recordSize
            if range.upperBound > expected.count || range.upperBound > actual.count
                || expected[range] != actual[range] {
                differing.append(index)
            }
        }
        // Both whole-file hashes, when the signature has both: a client may have checked either.
        let hashMatches = (expectedDigest == nil || outcome.fileDigest == expectedDigest) && (expectedTree == nil
            || outcome.treeHash == expectedTree)
        return VerificationReport(
            file: filePath, signature: signaturePath,
            matches: hashMatches && differing.isEmpty && length == summary.length,
            expectedLength: summary.length, actualLength: length,
            sliceCount: summary.sliceCount, sliceSize: summary.sliceSize,
            differingSlices: differing, wholeFileHashMatches: hashMatches)
    }
}

extension SignatureSummary {
    /// Number of slices the signature lists.
    public var sliceCount: Int { length == 0 ? 0 : (length - 1) / sliceSize + 1 }
}
