import Testing
@testable import SliceSync

@Suite("Format 1 signatures")
struct SignatureV1Tests {
    static let workedExampleInput = Array("AAAAAAAAA\nBBBBBBBBB\nCCCCCCCCC\nDDDDDDDDD\nEEEEEEEEE\nAAAAAAAAA\n".utf8)
    static let workedExampleSignature = """
        Version: 1
        Filename: testfile.txt
        Slice: 10
        Slice Hashing: adler32+md5
        Length: 60
        DcoCVPJSsowi0Ltoyvhw3wY7YGQ=
        DgACXZYTENCSZULkXXGQoi1otIw=
        DjYCZg/EJFTikPwoAWaKt7lUkts=
        DmwCb3eXNRanYIJDCMAm0+qS+GE=
        DqICeE9O0wUD3FWqJ64K09DM5rc=
        DcoCVPJSsowi0Ltoyvhw3wY7YGQ=
        sha1: 6e1eb4d4daf850c250bdc9a16669c7f66915f842

        """

    @Test func writesTheWorkedExampleByteForByte() throws {
        let builder = SignatureBuilder(parameters: try SigningParameters(version: .v1, sliceSize: 10), pool: nil)
        let signature = try builder.signature(of: Self.workedExampleInput, filename: "testfile.txt")
        #expect(String(decoding: signature.serialized(), as: UTF8.self) == Self.workedExampleSignature)
    }

    @Test func readsTheWorkedExample() throws {
        let parsed = try SignatureV1.parse(Array(Self.workedExampleSignature.utf8))
        #expect(parsed.filename == "testfile.txt")
        #expect(parsed.sliceSize == 10)
        #expect(parsed.length == 60)
        #expect(parsed.slices.count == 6)
        #expect(parsed.slices[0] == parsed.slices[5])
        #expect(parsed.slices[0].adler32 == Adler32.checksum(Array(Self.workedExampleInput[0..<10])))
        #expect(parsed.slices[1].md5 == StreamingDigest.hash(.md5, Array(Self.workedExampleInput[10..<20])))
        #expect(Encoding.hex(parsed.sha1) == "6e1eb4d4daf850c250bdc9a16669c7f66915f842")
        #expect(parsed.serialized() == Array(Self.workedExampleSignature.utf8))
    }

    @Test func writesAnEmptyFileAsHeaderAndEmptySHA1() throws {
        let builder = SignatureBuilder(parameters: try SigningParameters(version: .v1), pool: nil)
        let signature = try builder.signature(of: [], filename: "empty")
        #expect(String(decoding: signature.serialized(), as: UTF8.self) == """
            Version: 1
            Filename: empty
            Slice: 1048576
            Slice Hashing: adler32+md5
            Length: 0
            sha1: da39a3ee5e6b4b0d3255bfef95601890afd80709

            """)
    }

    @Test(arguments: [1, 7, 10, 11, 59, 60, 61, 4096])
    func shortLastSliceIsHashedAsIs(sliceSize: Int) throws {
        let data = Self.workedExampleInput + [1, 2, 3]
        let builder = SignatureBuilder(parameters: try SigningParameters(version: .v1, sliceSize: sliceSize), pool: nil)
        guard case .v1(let signature) = try builder.signature(of: data, filename: "f") else {
            Issue.record("expected version 1")
            return
        }
        #expect(signature.slices.count == (data.count + sliceSize - 1) / sliceSize)
        let lastStart = (signature.slices.count - 1) * sliceSize
        let last = Array(data[lastStart...])
        #expect(signature.slices.last == V1SliceHash(adler32: Adler32.checksum(last),
            md5: StreamingDigest.hash(.md5, last)))
        #expect(signature.sha1 == StreamingDigest.hash(.sha1, data))
    }

    @Test func parallelAndSequentialSigningAgree() throws {
        let data = randomBytes(3 * 1024 * 1024 + 123, seed: 7)
        let pool = HashingPool(threads: 2)
        defer { pool.shutdown() }
        for slice in [1000, 65536, 1 << 20] {
            let parameters = try SigningParameters(version: .v1, sliceSize: slice)
            var small = SignatureBuilder(parameters: parameters, pool: pool)
            small.targetPieceSize = 128 * 1024
            let parallel = try small.signature(of: data, filename: "f")
            let sequential = try SignatureBuilder(parameters: parameters, pool: nil).signature(of: data, filename: "f")
            #expect(parallel == sequential)
        }
        // Slices larger than a piece take the sequential path inside the pipeline.
        var big = SignatureBuilder(parameters: try SigningParameters(version: .v1, sliceSize: 1 << 20), pool: pool)
        big.targetPieceSize = 100_000
        let bigSlices = try big.signature(of: data, filename: "f")
        #expect(bigSlices == (try SignatureBuilder(parameters: try SigningParameters(version: .v1, sliceSize: 1 << 20),
            pool: nil).signature(of: data, filename: "f")))
    }
}


/// Random bytes from a seed.
func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var generator = SeededGenerator(seed: seed)
    var out = [UInt8](repeating: 0, count: count)
    var i = 0
    while i < count {
        var word = generator.next()
        for _ in 0..<8 where i < count {
            out[i] = UInt8(truncatingIfNeeded: word)
            word >>= 8
            i += 1
        }
    }
    return out
}
