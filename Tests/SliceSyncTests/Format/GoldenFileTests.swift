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

    @Test(arguments: [
        ("testfile.txt", "expected/testfile.txt.v1.slicesync", SignatureVersion.v1, 10, 0, false),
        ("example.bin", "expected/example.bin.v2.slicesync", SignatureVersion.v2, 128, 64, true),
        // As signatures were written before the sketch table: readers still take them.
        ("example.bin", "expected/example.bin.v2-nosketch.slicesync", SignatureVersion.v2, 128, 64, false),
    ])
    func signingTheBundledFilesReproducesTheirSignatures(file: String, expected: String, version: SignatureVersion, slice: Int, block: Int, sketch: Bool) throws {
        var parameters = try SigningParameters(version: version, sliceSize: slice, blockSize: block == 0 ? nil : block)
        parameters.sketch = sketch
        let signature = try SignatureBuilder(parameters: parameters, pool: nil).signature(of: try bytes(file), filename: file)
        #expect(signature.serialized() == (try bytes(expected)))
        #expect(try Signature.parse(try bytes(expected)) == signature)
    }
}
