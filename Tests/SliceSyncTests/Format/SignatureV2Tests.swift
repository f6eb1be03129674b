import Foundation
import Testing
@testable import SliceSync

@Suite("Format 2 signatures")
struct SignatureV2Tests {
    /// Signs with both whole-file hashes (as `shash --sha256`), so that both are checked.
    func sign(_ data: [UInt8], slice: Int? = nil, block: Int? = nil, pool: HashingPool? = nil,
              piece: Int? = nil, plain: Bool = true) throws -> SignatureV2 {
        var parameters = try SigningParameters(version: .v2, sliceSize: slice, blockSize: block)
        parameters.plainDigest = plain
        var builder = SignatureBuilder(parameters: parameters, pool: pool)
        if let piece { builder.targetPieceSize = piece }
        guard case .v2(let signature) = try builder.signature(of: data, filename: "data.bin") else {
            throw SignatureError(.unsupportedVersion, "expected version 2")
        }
        return signature
    }

    /// The record definitions of docs/FORMAT.md, computed the slow, obvious way.
    func referenceRecords(_ data: [UInt8], slice: Int, block: Int) -> (coarse: [HashRecord], fine: [HashRecord]) {
        var fine: [HashRecord] = []
        var coarse: [HashRecord] = []
        var start = 0
        while start < data.count {
            let sliceBytes = Array(data[start..<min(start + slice, data.count)])
            var blockDigests: [UInt8] = []
            var offset = 0
            while offset < sliceBytes.count {
                let blockBytes = Array(sliceBytes[offset..<min(offset + block, sliceBytes.count)])
                let digest = StreamingDigest.hash(.sha256, blockBytes)
                blockDigests += digest
                fine.append(HashRecord(weak: RollingHash.weak(naiveRK(blockBytes)), strong: bigEndian64(digest)))
                offset += block
            }
            let sliceDigest = StreamingDigest.hash(.sha256, blockDigests)
            coarse.append(HashRecord(weak: RollingHash.weak(naiveRK(sliceBytes)), strong: bigEndian64(sliceDigest)))
            start += slice
        }
        return (coarse, fine)
    }

    @Test(arguments: [0, 1, 63, 64, 65, 4096, 4097, 8192, 10_000, 70_000])
    func recordsMatchTheReferenceDefinition(length: Int) throws {
        let data = randomBytes(length, seed: UInt64(length))
        let signature = try sign(data, slice: 4096, block: 512)
        let reference = referenceRecords(data, slice: 4096, block: 512)
        #expect(signature.coarse == reference.coarse)
        #expect(signature.fine == reference.fine)
        #expect(signature.header.sha256 == StreamingDigest.hash(.sha256, data))
        #expect(signature.header.length == length)
    }

    @Test func roundTripsThroughBytes() throws {
        let data = randomBytes(300_000, seed: 3)
        let signature = try sign(data, slice: 65536, block: 1024)
        let bytes = signature.serialized()
        #expect(bytes.count == signature.header.totalLength)
        #expect(try SignatureV2.parse(bytes) == signature)
        #expect(try Signature.parse(bytes) == .v2(signature))
    }

    @Test func parallelPiecesGiveTheSameSignature() throws {
        let data = randomBytes(5_000_000, seed: 11)
        let pool = HashingPool(threads: 2)
        defer { pool.shutdown() }
        let sequential = try sign(data)
        // Pieces smaller than a slice, so slices straddle pieces hashed on different threads.
        let parallel = try sign(data, pool: pool, piece: 100 * 1024)
        #expect(parallel == sequential)
        #expect(try sign(data, pool: pool) == sequential)
    }

    @Test func fineTablesSitWhereTheHeaderSaysTheyDo() throws {
        let data = randomBytes(1_000_000, seed: 5)
        let signature = try sign(data, slice: 65536, block: 2048)
        let bytes = signature.serialized()
        let header = try SignatureV2Header.parse(Array(bytes.prefix(600)))
        #expect(header.sliceCount == 16)
        for slice in 0..<header.sliceCount {
            let range = header.fineTableRange(ofSlice: slice)
            let table = try SignatureV2.parseFineTable(Array(bytes[range]), ofSlice: slice, header: header)
            #expect(table == Array(signature.fine[header.blockRange(ofSlice: slice)]))
        }
        #expect(header.fineTableRange(ofSlice: 15).upperBound == bytes.count)
        let coarse = try bytes.withUnsafeBytes { try SignatureV2.parseCoarseTable($0, header: header) }
        #expect(coarse == signature.coarse)
    }

    @Test func headerWithUnknownFieldsStillLocatesTables() throws {
        let data = randomBytes(10_000, seed: 9)
        let signature = try sign(data, slice: 4096, block: 1024)
        var bytes = signature.serialized()
        let insertAt = Array("Version: 2\n".utf8).count
        bytes.insert(contentsOf: Array("X-Comment: produced by a future writer\n".utf8), at: insertAt)
        let parsed = try SignatureV2.parse(bytes)
        #expect(parsed == signature)
        #expect(parsed.header.headerLength == signature.header.headerLength + 39)
    }

    @Test func emptyFileHasNoTables() throws {
        let signature = try sign([])
        #expect(signature.coarse.isEmpty)
        #expect(signature.fine.isEmpty)
        // The tree hash of no slices is the SHA-256 of no bytes, as is the plain one.
        #expect(signature.header.sha256 == signature.header.treeHash)
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        #expect(Encoding.hex(signature.header.treeHash ?? []) == empty)
        #expect(signature.serialized() == signature.header.serialized())
    }
}

func naiveRK(_ bytes: [UInt8]) -> UInt64 {
    var h: UInt64 = 0
    for byte in bytes { h = h &* RollingHash.multiplier &+ UInt64(byte) &+ 1 }
    return h
}

func bigEndian64(_ digest: [UInt8]) -> UInt64 {
    digest.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
}

@Suite("The worked example of docs/FORMAT.md")
struct FormatDocumentExampleTests {
    @Test func matchesTheDocumentByteForByte() throws {
        let data = (0..<200).map { UInt8($0) }
        let builder = SignatureBuilder(parameters: try SigningParameters(version: .v2, sliceSize: 128, blockSize: 64),
            pool: nil)
        guard case .v2(let signature) = try builder.signature(of: data, filename: "example.bin") else {
            Issue.record("expected version 2")
            return
        }
        #expect(String(decoding: signature.header.serialized(), as: UTF8.self) == """
            Version: 2
            Filename: example.bin
            Length: 200
            Slice: 128
            Block: 64
            Sketch: 128
            Hashing: rk64+sha256
            Tree-SHA-256: f88c5e09a14bf890f72c872dd9d4c9156eac47f01f01c02a9aaf11c726481002


            """)
        #expect(signature.header.headerLength == 179)
        #expect(signature.coarse == [
            HashRecord(weak: 0x213a_c7be, strong: 0xf70d_e27c_568e_0eaa),
            HashRecord(weak: 0xd4c6_2d88, strong: 0xa8a9_1bfc_e4e6_b227),
        ])
        #expect(signature.fine == [
            HashRecord(weak: 0xa185_503c, strong: 0xfdea_b9ac_f371_0362),
            HashRecord(weak: 0x9659_8d26, strong: 0x9afa_eef0_05e2_8695),
            HashRecord(weak: 0x8b2d_ca11, strong: 0xc39e_13bb_b057_26a3),
            HashRecord(weak: 0x4479_df00, strong: 0x2d16_485c_5853_ff9f),
        ])
        // Each sketch entry: the XOR of the top 16 bits of its two blocks' strong hashes.
        #expect(signature.sketch == [0xfdea ^ 0x9afa, 0xc39e ^ 0x2d16])
        #expect(signature.sketch == [0x6710, 0xee88])
        #expect(signature.header.sketchTableOffset == 203)
        #expect(signature.header.fineTableRange(ofSlice: 1) == 231..<255)
        #expect(signature.serialized().count == 255)
    }
}

/// A source that fails part-way, as a disk with a bad sector would.
struct FailingSource: SignatureSource {
    let bytes: [UInt8]
    let failAt: Int
    var path: String { "<failing>" }

    func read(into buffer: UnsafeMutableRawPointer, count: Int, at offset: Int) throws(FileSystemError) -> Int {
        if offset >= failAt { throw FileSystemError(errno: EIO, operation: "read", path: path) }
        return try MemorySource(bytes).read(into: buffer, count: count, at: offset)
    }
}

@Suite("Signing fails cleanly")
struct SigningFailureTests {
    @Test func aReadErrorPartWayIsReportedWhileJobsAreInFlight() throws {
        let pool = HashingPool(threads: 2)
        defer { pool.shutdown() }
        var builder = SignatureBuilder(parameters: try SigningParameters(), pool: pool)
        builder.targetPieceSize = 64 * 1024
        let source = FailingSource(bytes: randomBytes(2_000_000, seed: 1), failAt: 1_000_000)
        for _ in 0..<20 {
            #expect(throws: FileSystemError.self) {
                _ = try builder.sign(source: source, length: 2_000_000, filename: "f", into: MemorySink())
            }
        }
    }

    @Test func aSourceShorterThanAnnouncedIsAChangedFile() throws {
        let builder = SignatureBuilder(parameters: try SigningParameters(), pool: nil)
        do {
            _ = try builder.sign(source: MemorySource(randomBytes(1000, seed: 1)), length: 2000, filename: "f",
                into: MemorySink())
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .changedWhileReading)
        }
        do {
            _ = try builder.sign(source: MemorySource(randomBytes(3000, seed: 1)), length: 2000, filename: "f",
                into: MemorySink())
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .changedWhileReading)
        }
    }
}
