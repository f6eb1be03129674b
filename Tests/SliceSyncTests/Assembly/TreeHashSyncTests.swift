import Foundation
import Testing
@testable import SliceSync

@Suite("Proving a rebuilt file: the tree hash and the plain digest")
struct TreeHashSyncTests {
    /// The signature of `bytes` as the builder writes it, with its `Tree-SHA-256` line replaced (nil:
    /// removed, as signatures were written before it existed).
    func signature(_ bytes: [UInt8], name: String, slice: Int? = nil, tree: String?) throws -> [UInt8] {
        // With the plain SHA-256, so that a signature without a tree hash still proves the file.
        var parameters = try SigningParameters(version: .v2, sliceSize: slice)
        parameters.plainDigest = true
        let serialized = try SignatureBuilder(parameters: parameters, pool: nil).signature(of: bytes,
            filename: name).serialized()
        let text = String(decoding: serialized.prefix(400), as: UTF8.self)
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Tree-SHA-256: ") })
            else { return serialized }
        let start = text.utf8.distance(from: text.startIndex, to: line.startIndex)
        let replacement = tree.map { Array("Tree-SHA-256: \($0)\n".utf8) } ?? []
        return Array(serialized[..<start]) + replacement + Array(serialized[(start + line.utf8.count + 1)...])
    }

    @Test(arguments: [nil, 3 << 20] as [Int?])
    func theTreeHashProvesTheFileWhateverTheSliceSize(slice: Int?) async throws {
        // 3 MiB slices do not divide the 2 MiB assembly chunk: chunks then hold whole slices.
        let harness = try SyncHarness()
        let old = randomBytes(7_000_000, seed: 60)
        var new = old
        for k in 0..<5 { new[k * 1_300_000 + 11] ^= 0x5A }
        let url = try harness.publish("f.bin", new, slice: slice)
        try harness.dir.write("old", old)
        let report = try await harness.sync(url, alikes: ["old"])
        #expect(try harness.read("out.bin") == new)
        #expect(report.repairedSlices == 0)
    }

    @Test func aSignatureWithoutATreeHashIsCheckedWithItsSHA256() async throws {
        let harness = try SyncHarness()
        let old = randomBytes(3_000_000, seed: 61)
        var new = old
        new[1_234_567] ^= 1
        harness.server.put("/pub/f.bin", new)
        harness.server.put("/pub/.slicesync/f.bin.slicesync", try signature(new, name: "f.bin", tree: nil))
        try harness.dir.write("old", old)
        _ = try await harness.sync(harness.server.url("/pub/f.bin"), alikes: ["old"])
        #expect(try harness.read("out.bin") == new)
        // And a download with nothing local, checked as it streams.
        _ = try await harness.sync(harness.server.url("/pub/f.bin"), destination: "fresh.bin")
        #expect(try harness.read("fresh.bin") == new)
    }

    @Test(arguments: [false, true])
    func aTreeHashThatDoesNotMatchIsAnErrorAndTheDestinationIsUntouched(local: Bool) async throws {
        let harness = try SyncHarness()
        let old = randomBytes(3_000_000, seed: 62)
        var new = old
        new[2_000_000] ^= 1
        harness.server.put("/pub/f.bin", new)
        harness.server.put("/pub/.slicesync/f.bin.slicesync", try signature(new, name: "f.bin",
            tree: String(repeating: "ab", count: 32)))
        try harness.dir.write("old", old)
        try harness.dir.write("out.bin", [1, 2, 3])
        await #expect(throws: VerificationError.self) {
            _ = try await harness.sync(harness.server.url("/pub/f.bin"), alikes: local ? ["old"] : [])
        }
        #expect(try harness.read("out.bin") == [1, 2, 3])
    }

    @Test func aFreshDownloadOfALargeFileTakesTwoRequests() async throws {
        // 1,465 slices: the coarse table (17.6 KB) is past the first 16 KiB, still within the first
        // request of a client with nothing to reuse. Signature, then file: as zsync.
        let harness = try SyncHarness()
        let data = randomBytes(6_000_000, seed: 64)
        let url = try harness.publish("f.bin", data, slice: 4096, block: 1024)
        let report = try await harness.sync(url)
        #expect(try harness.read("out.bin") == data)
        #expect(report.fullDownload)
        #expect(report.requests == 2)
    }

    @Test func sliceDigestsOfAFileComeOutTheSameOnAnyNumberOfThreads() throws {
        let dir = try TemporaryDirectory()
        let data = randomBytes(1_000_003, seed: 63)
        try dir.write("f", data)
        let file = try SystemFile.openForReading(dir.file("f"))
        let one = try TreeHash.sliceDigests(of: file, length: data.count, sliceSize: 65536, blockSize: 2048, threads: 1)
        let three = try TreeHash.sliceDigests(of: file, length: data.count, sliceSize: 65536, blockSize: 2048,
            threads: 3)
        #expect(one == three)
        #expect(one.count == 16 * TreeHash.digestSize)
        let last = data.withUnsafeBytes { TreeHash.sliceDigest($0.baseAddress! + 15 * 65536,
            length: data.count - 15 * 65536, blockSize: 2048) }
        #expect(Array(one.suffix(32)) == last)
    }
}
