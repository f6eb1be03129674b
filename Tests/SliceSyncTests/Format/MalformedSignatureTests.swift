import Testing
@testable import SliceSync

@Suite("Malformed signatures are rejected with a named problem")
struct MalformedSignatureTests {
    static let v1 = Array(SignatureV1Tests.workedExampleSignature.utf8)
    /// With both whole-file hashes, so that each can be damaged.
    static let v2: [UInt8] = {
        // Constant sizes within the format's bounds: they cannot fail.
        var parameters = try! SigningParameters(version: .v2, sliceSize: 4096, blockSize: 1024)
        parameters.plainDigest = true
        let builder = SignatureBuilder(parameters: parameters, pool: nil)
        return try! builder.signature(of: randomBytes(9000, seed: 1), filename: "data.bin").serialized()
    }()

    func code(_ bytes: [UInt8]) -> SignatureError.Code? {
        do {
            _ = try Signature.parse(bytes)
            return nil
        } catch {
            #expect(!error.message.isEmpty)
            return error.code
        }
    }

    func replacing(_ bytes: [UInt8], _ old: String, with new: String) -> [UInt8] {
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains(old))
        return Array(text.replacingOccurrences(of: old, with: new).utf8)
    }

    @Test func everyTruncationOfAValidV1SignatureIsRejected() {
        for length in 0..<Self.v1.count {
            let result = code(Array(Self.v1.prefix(length)))
            #expect(result != nil, "prefix of \(length) bytes was accepted")
        }
    }

    @Test func everyTruncationOfAValidV2SignatureIsRejected() {
        for length in 0..<Self.v2.count {
            let result = code(Array(Self.v2.prefix(length)))
            #expect(result != nil, "prefix of \(length) bytes was accepted")
        }
    }

    @Test func truncationInsideTheTablesSaysTruncated() {
        #expect(code(Array(Self.v2.dropLast(1))) == .truncated)
        #expect(code(Array(Self.v2.dropLast(12))) == .truncated)
        #expect(code(Array(Self.v1.dropLast(1))) == .truncated)
        #expect(code(Array(Self.v1.dropLast(48))) == .truncated)
    }

    @Test func extraBytesAreRejected() {
        #expect(code(Self.v1 + Array("x".utf8)) == .trailingData)
        #expect(code(Self.v1 + Array("sha1: 6e1eb4d4daf850c250bdc9a16669c7f66915f842\n".utf8)) == .trailingData)
        #expect(code(Self.v2 + [0]) == .trailingData)
        let extraLine = replacing(Self.v1, "sha1:", with: "DcoCVPJSsowi0Ltoyvhw3wY7YGQ=\nsha1:")
        #expect(code(extraLine) == .trailingData)
    }

    @Test func unknownVersionsAreRejected() {
        #expect(code(replacing(Self.v1, "Version: 1", with: "Version: 3")) == .unsupportedVersion)
        #expect(code(replacing(Self.v1, "Version: 1", with: "Version: 0")) == .unsupportedVersion)
        #expect(code(replacing(Self.v1, "Version: 1", with: "Version: 99999999999999999999999")) == .valueOutOfRange)
        #expect(code(replacing(Self.v1, "Version: 1", with: "version: 1")) == .malformedLine)
        #expect(code(Array(("PK\u{3}\u{4} not a signature at all, just some other file that happens to be " +
            "here\n").utf8)) == .malformedLine)
        #expect(code([]) == .truncated)
    }

    @Test func missingAndDuplicateFieldsAreRejected() {
        #expect(code(replacing(Self.v1, "Filename: testfile.txt\n", with: "")) == .missingField)
        #expect(code(replacing(Self.v1, "Length: 60\n", with: "")) == .missingField)
        #expect(code(replacing(Self.v1, "Slice: 10\n", with: "Slice: 10\nSlice: 10\n")) == .duplicateField)
        #expect(code(replacing(Self.v2, "Block: 1024\n", with: "")) == .missingField)
        #expect(code(replacing(Self.v2, "Hashing: rk64+sha256\n", with: "")) == .missingField)
        #expect(code(replacing(Self.v2, "Length: 9000\n", with: "Length: 9000\nLength: 9000\n")) == .duplicateField)
        #expect(code(replacing(Self.v1, "Length: 60\n", with: "Length: 60\nColour: blue\n")) == .unknownField)
    }

    @Test(arguments: ["+60", "-60", " 60", "60 ", "060", "0x3c", "6e1", "", "60.0", "٦٠", "99999999999999999999999"])
    func numbersAreParsedStrictly(value: String) {
        #expect(code(replacing(Self.v1, "Length: 60", with: "Length: \(value)")) != nil)
        #expect(code(replacing(Self.v2, "Length: 9000", with: "Length: \(value)")) != nil)
    }

    @Test func numbersOutOfBoundsAreRejected() {
        #expect(code(replacing(Self.v1, "Slice: 10", with: "Slice: 0")) == .valueOutOfRange)
        #expect(code(replacing(Self.v1, "Slice: 10", with: "Slice: 2147483648")) == .valueOutOfRange)
        #expect(code(replacing(Self.v1, "Length: 60", with: "Length: 1125899906842625")) == .valueOutOfRange)
        // A lying length must fail on the size check, before anything is allocated for it.
        #expect(code(replacing(Self.v1, "Slice: 10", with: "Slice: 1")) == .truncated)
        #expect(code(replacing(Self.v1, "Length: 60", with: "Length: 167772170")) == .valueOutOfRange)
        #expect(code(replacing(Self.v2, "Length: 9000", with: "Length: 1125899906842624")) == .valueOutOfRange)
        #expect(code(replacing(Self.v2, "Length: 9000", with: "Length: 9000000")) == .truncated)
        #expect(code(replacing(Self.v2, "Block: 1024", with: "Block: 1000")) == .valueOutOfRange)
        #expect(code(replacing(Self.v2, "Block: 1024", with: "Block: 32")) == .valueOutOfRange)
        #expect(code(replacing(Self.v2, "Slice: 4096", with: "Slice: 512")) == .valueOutOfRange)
        #expect(code(replacing(Self.v2, "Slice: 4096", with: "Slice: 1073741824")) == .valueOutOfRange)
    }

    @Test(arguments: ["a/b", "..", ".", "", "a\u{0}b", "tab\there", String(repeating: "x", count: 256)])
    func badFilenamesAreRejected(name: String) {
        #expect(code(replacing(Self.v1, "Filename: testfile.txt", with: "Filename: \(name)")) == .invalidFilename)
        #expect(code(replacing(Self.v2, "Filename: data.bin", with: "Filename: \(name)")) == .invalidFilename)
    }

    @Test func invalidUTF8FilenameIsRejected() {
        var bytes = Self.v1
        let index = bytes.firstIndex(of: UInt8(ascii: "t"))!
        bytes[index] = 0xFF
        #expect(code(bytes) == .invalidFilename)
    }

    @Test func wholeFileHashesOfTheWrongShapeAreRejected() {
        #expect(code(replacing(Self.v1, "sha1: 6e1eb4d4daf850c250bdc9a16669c7f66915f842",
            with: "sha1: 6e1eb4d4daf850c250bdc9a16669c7f66915f84")) == .invalidHash)
        #expect(code(replacing(Self.v1, "sha1: 6e1eb4d4daf850c250bdc9a16669c7f66915f842",
            with: "sha1: 6e1eb4d4daf850c250bdc9a16669c7f66915f8422")) == .invalidHash)
        #expect(code(replacing(Self.v1, "sha1: 6e1eb4d4daf850c250bdc9a16669c7f66915f842",
            with: "sha1: 6E1EB4D4DAF850C250BDC9A16669C7F66915F842")) == .invalidHash)
        let header = String(decoding: Self.v2.prefix(300), as: UTF8.self)
        let hashLine = header.split(separator: "\n").first { $0.hasPrefix("SHA-256: ") }!
        #expect(code(replacing(Self.v2, String(hashLine), with: String(hashLine.dropLast()))) == .invalidHash)
        #expect(code(replacing(Self.v2, String(hashLine), with: String(hashLine) + "0")) == .invalidHash)
        #expect(code(replacing(Self.v2, String(hashLine),
            with: "SHA-256: zz" + String(hashLine.dropFirst(11)))) == .invalidHash)
    }

    /// Either whole-file hash may be missing, not both: nothing would prove the file.
    @Test func aSignatureNeedsOneWholeFileHash() throws {
        let header = String(decoding: Self.v2.prefix(400), as: UTF8.self)
        let plain = try #require(header.split(separator: "\n").first { $0.hasPrefix("SHA-256: ") })
        let tree = try #require(header.split(separator: "\n").first { $0.hasPrefix("Tree-SHA-256: ") })
        let withoutPlain = replacing(Self.v2, String(plain) + "\n", with: "")
        let withoutTree = replacing(Self.v2, "\n" + String(tree), with: "")
        let plainOnly = try SignatureV2Header.parse(withoutTree)
        #expect(plainOnly.sha256 != nil && plainOnly.treeHash == nil)
        let treeOnly = try SignatureV2Header.parse(withoutPlain)
        #expect(treeOnly.sha256 == nil && treeOnly.treeHash != nil)
        do {
            _ = try SignatureV2Header.parse(replacing(withoutPlain, "\n" + String(tree), with: ""))
            Issue.record("a header without any whole-file hash was accepted")
        } catch {
            #expect(error.code == .missingField && error.message.contains("neither SHA-256 nor Tree-SHA-256"))
        }
    }

    @Test func unsupportedHashingIsRejected() {
        #expect(code(replacing(Self.v1, "adler32+md5", with: "adler32+sha1")) == .unsupportedHashing)
        #expect(code(replacing(Self.v2, "rk64+sha256", with: "rk64+blake3")) == .unsupportedHashing)
    }

    @Test func badSliceLinesAreRejected() {
        #expect(code(replacing(Self.v1, "DgACXZYTENCSZULkXXGQoi1otIw=",
            with: "DgACXZYTENCSZULkXXGQoi1otIw")) == .invalidRecord)
        #expect(code(replacing(Self.v1, "DgACXZYTENCSZULkXXGQoi1otIw=",
            with: "DgACXZYTENCSZULkXXGQoi1otI*=")) == .invalidRecord)
        // Non-canonical base64: the unused low bits of the last character are not zero.
        #expect(code(replacing(Self.v1, "DgACXZYTENCSZULkXXGQoi1otIw=",
            with: "DgACXZYTENCSZULkXXGQoi1otIx=")) == .invalidRecord)
    }

    @Test func overlongHeadersAndLinesAreRejected() {
        let longValue = String(repeating: "y", count: 600)
        #expect(code(replacing(Self.v2, "Block: 1024\n", with: "Block: 1024\nX-Long: \(longValue)\n")) == .lineTooLong)
        let manyFields = (0..<40).map { "X-Field-\($0): v\n" }.joined()
        #expect(code(replacing(Self.v2, "Block: 1024\n", with: "Block: 1024\n\(manyFields)")) == .headerTooLong)
        let bigFields = (0..<12).map { "X-F\($0): \(String(repeating: "z", count: 400))\n" }.joined()
        #expect(code(replacing(Self.v2, "Block: 1024\n", with: "Block: 1024\n\(bigFields)")) == .headerTooLong)
        #expect(code(Array("Version: 2\nFilename: a".utf8) + [UInt8](repeating: UInt8(ascii: "a"),
            count: 100_000)) == .lineTooLong)
    }

    @Test func headerLinesWithoutSeparatorAreRejected() {
        #expect(code(replacing(Self.v2, "Block: 1024", with: "Block 1024")) == .malformedLine)
        #expect(code(replacing(Self.v2, "Block: 1024", with: "Block:1024")) == .malformedLine)
    }

    @Test func randomCorruptionNeverCrashes() {
        var generator = SeededGenerator(seed: 42)
        for _ in 0..<3000 {
            var bytes = Bool.random(using: &generator) ? Self.v1 : Self.v2
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                let index = Int.random(in: 0..<bytes.count, using: &generator)
                switch Int.random(in: 0..<3, using: &generator) {
                case 0: bytes[index] = UInt8.random(in: 0...255, using: &generator)
                case 1: bytes.remove(at: index)
                default: bytes.insert(UInt8.random(in: 0...255, using: &generator), at: index)
                }
            }
            _ = try? Signature.parse(bytes)
        }
    }
}
