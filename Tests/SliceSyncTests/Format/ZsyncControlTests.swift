import Foundation
import Testing
@testable import SliceSync

/// zsync control files as zsync 0.6.2 reads them and zsyncmake 0.6.2 writes them. The files under
/// testdata/expected/*.zsync were written by zsyncmake 0.6.2 (`zsyncmake -u NAME`, modification time
/// 2026-01-02 03:04:05 UTC) from `example.bin` and from `randomBytes(5000, seed: 7)` and
/// `randomBytes(300_000, seed: 8)`.
@Suite("zsync control files: reading and writing")
struct ZsyncControlTests {
    static let goldenTime = 1_767_323_045

    func golden(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: GoldenFileTests.testdata.appendingPathComponent("expected/" + name)))
    }

    static let goldenFiles: [(name: String, bytes: @Sendable () throws -> [UInt8], lengths: String)] = [
        ("example.bin", { Array(try Data(contentsOf: GoldenFileTests.testdata.appendingPathComponent("example.bin"))) },
         "1,2,4"),
        ("random-5000.bin", { randomBytes(5000, seed: 7) }, "2,2,3"),
        ("random-300000.bin", { randomBytes(300_000, seed: 8) }, "2,2,4"),
    ]

    static func make(_ data: [UInt8], name: String, mtime: Int? = goldenTime, url: String? = nil,
                     sha256: [UInt8]? = nil) -> ZsyncControl {
        let maker = ZsyncMaker(length: data.count)
        data.withUnsafeBytes { raw in
            // Odd piece sizes, as a reader with its own buffer sizes would feed them.
            var start = 0
            var piece = 1000
            while start < raw.count {
                let count = min(piece, raw.count - start)
                maker.add(raw.baseAddress! + start, count: count)
                start += count
                piece = piece * 3 % 7919 + 1
            }
        }
        return maker.finish(filename: name, mtime: mtime, url: url ?? name, sha256: sha256)
    }

    @Test(arguments: [0, 1, 2])
    func theWriterReproducesZsyncmakeByteForByte(index: Int) throws {
        let file = Self.goldenFiles[index]
        let expected = try golden(file.name + ".zsync")
        let made = Self.make(try file.bytes(), name: file.name)
        #expect(made.serialized() == expected)
        let parsed = try ZsyncControl.parse(expected)
        #expect(parsed == made)
        let lengths = "\(parsed.sequenceMatches),\(parsed.rsumBytes),\(parsed.strongBytes)"
        #expect(lengths == file.lengths)
        #expect(parsed.urls == [file.name])
        #expect(parsed.mtime == Self.goldenTime)
    }

    /// Block sizes and hash lengths zsyncmake 0.6.2 chose for files of these lengths (read off it).
    @Test(arguments: [
        (0, 2048, "1,2,3"), (1, 2048, "1,2,3"), (100, 2048, "1,2,4"), (2047, 2048, "1,2,4"), (2048, 2048, "1,2,4"),
        (2049, 2048, "2,2,3"), (4097, 2048, "2,2,3"), (65536, 2048, "2,2,4"), (300_000, 2048, "2,2,4"),
        (1_000_000, 2048, "2,2,4"), (10_000_000, 2048, "2,2,5"), (99_999_999, 2048, "2,2,5"),
        (100_000_000, 4096, "2,2,5"), (200_000_000, 4096, "2,2,5"), (1_000_000_000, 4096, "2,3,5"),
        (4_294_967_296, 4096, "2,3,5"), (10_000_000_000, 4096, "2,3,6"),
    ])
    func hashLengthsAreZsyncmakes(length: Int, blockSize: Int, lengths: String) {
        #expect(ZsyncControl.defaultBlockSize(length: length) == blockSize)
        let (seq, rsum, strong) = ZsyncControl.hashLengths(length: length, blockSize: blockSize)
        #expect("\(seq),\(rsum),\(strong)" == lengths)
    }

    @Test func headersAreReadInAnyOrderAsZsyncmake2WritesThem() throws {
        let original = try ZsyncControl.parse(try golden("random-5000.bin.zsync"))
        let bytes = try golden("random-5000.bin.zsync")
        let split = bytes.firstRange(of: Array("\n\n".utf8))!
        var lines = String(decoding: bytes[..<split.lowerBound], as: UTF8.self).split(separator: "\n").map(String.init)
        lines.sort() // alphabetical: zsync: comes last, as zsyncmake2 writes it
        #expect(lines.last?.hasPrefix("zsync:") == true)
        let reordered = Array((lines.joined(separator: "\n") + "\n\n").utf8) + bytes[split.upperBound...]
        #expect(try ZsyncControl.parse(reordered) == original)
        #expect(ZsyncControl.looksLike(reordered, url: "http://h/x"))
        #expect(!ZsyncControl.looksLike(Array("Version: 2\n".utf8), url: "http://h/x"))
        #expect(ZsyncControl.looksLike([], url: "http://h/a/x.zsync?token=1"))
    }

    @Test func safeHeadersAreSkippedAndOthersAreRefused() throws {
        let records = [UInt8](repeating: 7, count: 20)
        let base = "zsync: 0.6.2\nBlocksize: 2048\nLength: 100\nURL: f\nSHA-1: \(String(repeating: "ab", count: 20))\n"
        #expect(throws: SignatureError.self) { try ZsyncControl.parse(Array((base + "X-New: 1\n\n").utf8) + records) }
        let safe = try ZsyncControl.parse(Array((base + "Safe: X-New, Other\nX-New: 1\n\n").utf8) + records)
        #expect(safe.length == 100 && safe.recordSize == 20 && safe.urls == ["f"])
    }

    /// `Hash-Lengths` absent means 1,4,16; a `Z-Map2` block of binary pairs inside the header is skipped,
    /// whatever bytes it holds (newlines and empty lines included).
    @Test func defaultsAndTheZMap2BlockAreHandled() throws {
        let data = randomBytes(3000, seed: 3)
        var control = Self.make(data, name: "f")
        let geometry = ZsyncRecordGeometry(blockSize: 2048, rsumBytes: 4, strongBytes: 16)
        control.records = data.withUnsafeBytes { geometry.records(of: $0.baseAddress!, count: 3000) }
        let hex = Encoding.hex(control.sha1!)
        let map: [UInt8] = [0x0A, 0x0A, 0x00, 0x01, 0x0A, 0x0A, 0x20, 0x3A]
        let text = "zsync: 0.6.2\nZ-Map2: 2\n"
        let rest = "Blocksize: 2048\nLength: 3000\nZ-URL: f.gz\nURL: f\nSHA-1: \(hex)\n\n"
        let parsed = try ZsyncControl.parse(Array(text.utf8) + map + Array(rest.utf8) + control.records)
        #expect(parsed.sequenceMatches == 1 && parsed.rsumBytes == 4 && parsed.strongBytes == 16)
        #expect(parsed.records == control.records && !parsed.compressedOnly)
        let onlyCompressed = "zsync: 0.6.2\nBlocksize: 2048\nLength: 3000\nZ-URL: f.gz\nSHA-1: \(hex)\n\n"
        #expect(try ZsyncControl.parse(Array(onlyCompressed.utf8) + control.records).compressedOnly)
    }

    @Test func newerHashesAreRead() throws {
        let data = randomBytes(10_000, seed: 4)
        let sha256 = StreamingDigest.hash(.sha256, data)
        var control = Self.make(data, name: "f", sha256: sha256)
        control.strongHash = .sha224
        control.strongBytes = 16
        control.records = data.withUnsafeBytes {
            ZsyncRecordGeometry(blockSize: 2048, rsumBytes: 2, strongBytes: 16, strongHash: .sha224)
                .records(of: $0.baseAddress!, count: data.count)
        }
        let text = String(decoding: control.serialized().prefix(400), as: UTF8.self)
        #expect(text.contains("Safe: File-Hash,Strong-Hash-Algorithm\nFile-Hash: SHA-256:"))
        let parsed = try ZsyncControl.parse(control.serialized())
        #expect(parsed == control)
        #expect(parsed.sha256 == sha256 && parsed.strongHash == .sha224)
    }

    static let sha = "SHA-1: " + String(repeating: "0", count: 40)
    static let malformed: [(String, SignatureError.Code)] = [
        ("Blocksize: 2048\nLength: 10\n\(sha)\n\n", .missingField),
        ("zsync: 0.6.2\nLength: 10\n\(sha)\n\n", .missingField),
        ("zsync: 0.6.2\nBlocksize: 2048\n\(sha)\n\n", .missingField),
        ("zsync: 0.6.2\nBlocksize: 2048\nLength: 10\n\n", .missingField),
        ("zsync: 0.6.2\nBlocksize: 2000\nLength: 10\n\(sha)\n\n", .valueOutOfRange),
        ("zsync: 0.6.2\nBlocksize: 02048\nLength: 10\n\(sha)\n\n", .invalidNumber),
        ("zsync: 0.6.2\nBlocksize: 2048\nLength: -10\n\(sha)\n\n", .invalidNumber),
        ("zsync: 0.6.2\nBlocksize: 2048\nLength: 99999999999999999999\n\(sha)\n\n",
         .valueOutOfRange),
        ("zsync: 0.6.2\nBlocksize: 2048\nLength: 9223372036854775807\n\(sha)\n\n",
         .truncated),
        ("zsync: 0.6.2\nBlocksize: 2048\nLength: 10\nHash-Lengths: 3,2,4\n\(sha)\n\n",
         .valueOutOfRange),
        ("zsync: 0.6.2\nBlocksize: 2048\nLength: 10\nHash-Lengths: 1,5,4\n\(sha)\n\n",
         .valueOutOfRange),
        ("zsync: 0.6.2\nBlocksize: 2048\nLength: 10\nHash-Lengths: 1,2,2\n\(sha)\n\n",
         .valueOutOfRange),
        ("zsync: 0.6.2\nBlocksize: 2048\nLength: 10\nHash-Lengths: 1,2\n\(sha)\n\n",
         .malformedLine),
        ("zsync: 0.6.2\nBlocksize: 2048\nLength: 10\nSHA-1: 12345\n\n", .invalidHash),
        ("zsync: 0.6.2\nBlocksize: 2048\nLength: 10\nLength: 10\n\(sha)\n\n",
         .duplicateField),
        ("zsync: 0.6.2\nBlocksize: 2048\nLength: 10\nColour: blue\n\(sha)\n\n",
         .unknownField),
        ("zsync: 0.6.2\nFilename: ../etc/passwd\nBlocksize: 2048\nLength: 10\n\(sha)\n\n",
         .invalidFilename),
        ("zsync: 0.6.2\nBlocksize: 2048\nLength: 10\nStrong-Hash-Algorithm: CRC32\nSafe: Strong-Hash-Algorithm\n"
            + "SHA-1: \(String(repeating: "0", count: 40))\n\n", .unsupportedHashing),
        ("zsync: 0.6.2\nBlocksize: 2048\nLength: 10\n\(sha)\n", .truncated),
        ("zsync: 0.6.2\nBlocksize: 2048\nLength: 10\nURL: a\u{1}b\n\(sha)\n\n",
         .malformedLine),
        ("<html><body>Not found</body></html>\n\n", .malformedLine),
        ("zsync: 0.6.2\nBlocksize: 2048\nZ-Map2: 100\n", .truncated),
    ]

    @Test(arguments: 0..<malformed.count)
    func malformedControlFilesAreClearErrors(index: Int) {
        let (text, code) = Self.malformed[index]
        // A record of 20 bytes (the default 4 + 16) for the one block of 10 bytes.
        let bytes = Array(text.utf8) + [UInt8](repeating: 1, count: 20)
        #expect {
            try ZsyncControl.parse(bytes)
        } throws: { error in
            guard let error = error as? SignatureError else { return false }
            return error.code == code && error.document == .zsyncControl
                && error.description.hasPrefix("malformed zsync control file: ")
        }
    }

    @Test func recordsMustBeExactlyWhatTheLengthNeeds() throws {
        let control = Self.make(randomBytes(5000, seed: 7), name: "random-5000.bin")
        let bytes = control.serialized()
        #expect(throws: SignatureError.self) { try ZsyncControl.parse(Array(bytes.dropLast())) }
        #expect(throws: SignatureError.self) { try ZsyncControl.parse(bytes + [0]) }
        #expect(throws: SignatureError.self) { try ZsyncControl.parse(bytes + [UInt8](repeating: 0, count: 5)) }
        let overlong = Array("zsync: 0.6.2\nURL: ".utf8) + [UInt8](repeating: 0x61, count: 9000) + Array("\n\n".utf8)
        #expect(throws: SignatureError.self) { try ZsyncControl.parse(overlong) }
    }

    /// The control file made in the signing pass is the same whatever the pieces the signer reads:
    /// whole blocks hashed on pool threads, or odd pieces (a format 1 slice of 1000 bytes) on the
    /// reading thread.
    @Test(arguments: [(SignatureVersion.v2, 262_144), (.v1, 1000), (.v1, 1 << 20)])
    func signingMakesTheSameControlFileWhateverThePieces(version: SignatureVersion, slice: Int) throws {
        let data = randomBytes(1_234_567, seed: 6)
        let expected = Self.make(data, name: "f", mtime: nil)
        let maker = ZsyncMaker(length: data.count)
        let pool = HashingPool(threads: 2)
        defer { pool.shutdown() }
        var builder = SignatureBuilder(parameters: try SigningParameters(version: version, sliceSize: slice),
                                       pool: pool)
        builder.targetPieceSize = 100_000
        _ = try builder.sign(source: MemorySource(data), length: data.count, filename: "f", into: MemorySink(),
                             zsync: maker)
        let made = maker.finish(filename: "f", mtime: nil, url: "f", sha256: nil)
        #expect(made == expected)
    }

    /// Thousands of damaged control files (bytes flipped, cut, repeated or inserted, in the header and
    /// the records): each is read or refused with a `SignatureError`, never a crash or a huge allocation.
    @Test func damagedControlFilesAreRefusedCleanly() throws {
        var generator = SeededGenerator(seed: 2026)
        let originals = [try golden("random-5000.bin.zsync"), try golden("random-300000.bin.zsync"),
                         Self.make(randomBytes(70_000, seed: 5), name: "f", sha256: [UInt8](repeating: 7, count: 32))
                             .serialized()]
        var refused = 0
        for round in 0..<3000 {
            var bytes = originals[round % originals.count]
            let headerEnd = bytes.firstRange(of: Array("\n\n".utf8))?.upperBound ?? bytes.count
            for _ in 0..<(1 + Int(generator.next() % 3)) {
                // Mostly in the header, where the parsing is.
                let limit = generator.next() % 4 == 0 ? bytes.count : min(bytes.count, headerEnd)
                let at = limit == 0 ? 0 : Int(generator.next() % UInt64(limit))
                switch generator.next() % 6 {
                case 0: if at < bytes.count { bytes[at] = UInt8(truncatingIfNeeded: generator.next()) }
                case 1: bytes = Array(bytes.prefix(at))
                case 2: bytes.insert(contentsOf: Array("9999999999".utf8), at: at)
                case 3: bytes.insert(UInt8(ascii: "\n"), at: at)
                case 4: bytes.insert(contentsOf: bytes[at..<min(bytes.count, at + 40)], at: at)
                default: if at < bytes.count { bytes.remove(at: at) }
                }
            }
            do {
                let control = try ZsyncControl.parse(bytes)
                #expect(control.records.count == control.blockCount * control.recordSize)
            } catch {
                refused += 1
            }
        }
        #expect(refused > 1000)
    }

    @Test func theMTimeHeaderIsReadWithAnyZone() {
        #expect(ZsyncControl.parseTime("Fri, 02 Jan 2026 03:04:05 +0000") == Self.goldenTime)
        #expect(ZsyncControl.parseTime("Fri, 02 Jan 2026 04:04:05 +0100") == Self.goldenTime)
        #expect(ZsyncControl.parseTime("Fri, 02 Jan 2026 03:04:05 GMT") == Self.goldenTime)
        #expect(ZsyncControl.parseTime("yesterday") == nil)
        #expect(ZsyncControl.formatTime(Self.goldenTime) == "Fri, 02 Jan 2026 03:04:05 +0000")
    }

    @Test func relativeURLsLeadFromTheControlFileToTheFile() {
        #expect(TreeNaming.zsyncRelativeURL(forSignature: "/srv/pub/.slicesync/a b/c.iso.slicesync")
            == "../../a%20b/c.iso")
        #expect(TreeNaming.zsyncRelativeURL(forSignature: ".slicesync/x.slicesync") == "../x")
        #expect(TreeNaming.zsyncPath(forSignature: "/r/.slicesync/d/f.slicesync") == "/r/.slicesync/d/f.zsync")
        #expect(SignatureLocator.resolve("../../a%20b/c.iso", against: "http://h/pub/.slicesync/a%20b/c.iso.zsync")
            == "http://h/pub/a%20b/c.iso")
        #expect(SignatureLocator.resolve("http://other/f", against: nil) == "http://other/f")
        #expect(SignatureLocator.resolve("f", against: nil) == nil)
        #expect(SignatureLocator.resolve("file:///etc/passwd", against: "http://h/x.zsync") == nil)
    }
}
