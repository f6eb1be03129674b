import Foundation
import Testing
@testable import SliceSync

@Suite("Bundled golden signatures")
struct GoldenFileTests {
    static let testdata = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("testdata")

    func bytes(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: Self.testdata.appendingPathComponent(name)))
    }

    /// (file, golden signature, version, slice, block, sketch, plain SHA-256): the last is what
    /// `shash --slice 128 --block 64` writes by default, the others add `--sha256` or `--no-sketch`.
    @Test(arguments: [
        ("testfile.txt", "expected/testfile.txt.v1.slicesync", SignatureVersion.v1, 10, 0, false, false),
        ("example.bin", "expected/example.bin.v2.slicesync", SignatureVersion.v2, 128, 64, true, true),
        ("example.bin", "expected/example.bin.v2-nosketch.slicesync", SignatureVersion.v2, 128, 64, false, true),
        ("example.bin", "expected/example.bin.v2-tree.slicesync", SignatureVersion.v2, 128, 64, true, false),
    ])
    func signingTheBundledFilesReproducesTheirSignatures(file: String, expected: String, version: SignatureVersion,
        slice: Int, block: Int, sketch: Bool, plain: Bool) throws {
        var parameters = try SigningParameters(version: version, sliceSize: slice, blockSize: block == 0 ? nil : block)
        parameters.sketch = sketch
        parameters.plainDigest = plain
        let signature = try SignatureBuilder(parameters: parameters, pool: nil).signature(of: try bytes(file),
            filename: file)
        #expect(signature.serialized() == (try bytes(expected)))
        #expect(try Signature.parse(try bytes(expected)) == signature)
    }

    @Test func signaturesWrittenBeforeTheSketchAndTheTreeHashAreStillRead() throws {
        // As signatures were written before the sketch table and the tree hash: the same tables.
        var parameters = try SigningParameters(version: .v2, sliceSize: 128, blockSize: 64)
        parameters.sketch = false
        parameters.plainDigest = true
        guard case .v2(var signed) = try SignatureBuilder(parameters: parameters,
            pool: nil).signature(of: try bytes("example.bin"), filename: "example.bin"),
              case .v2(let legacy) = try Signature.parse(try bytes("expected/example.bin.v2-legacy.slicesync")) else {
            Issue.record("expected format 2")
            return
        }
        #expect(legacy.header.treeHash == nil && legacy.header.sketchUnit == nil)
        signed.header.treeHash = nil
        #expect(legacy.header == signed.header && legacy.coarse == signed.coarse && legacy.fine == signed.fine)
    }

    @Test func theTreeHashIsTheDigestOfTheSliceDigests() throws {
        // FORMAT.md's worked example: 200 bytes, slices of 128, blocks of 64.
        let data = try bytes("example.bin")
        var slices: [UInt8] = []
        for start in stride(from: 0, to: data.count, by: 128) {
            var blocks: [UInt8] = []
            for block in stride(from: start, to: min(start + 128, data.count), by: 64) {
                blocks += StreamingDigest.hash(.sha256, Array(data[block..<min(block + 64, data.count, start + 128)]))
            }
            slices += StreamingDigest.hash(.sha256, blocks)
        }
        guard case .v2(let signature) = try Signature.parse(try bytes("expected/example.bin.v2.slicesync")) else {
            Issue.record("expected format 2")
            return
        }
        #expect(signature.header.treeHash == StreamingDigest.hash(.sha256, slices))
        #expect(Encoding.hex(StreamingDigest.hash(.sha256,
            slices)) == "f88c5e09a14bf890f72c872dd9d4c9156eac47f01f01c02a9aaf11c726481002")
    }
}
