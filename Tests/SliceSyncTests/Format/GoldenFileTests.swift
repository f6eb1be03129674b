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
        ("testfile.txt", "expected/testfile.txt.v1.slicesync", SignatureVersion.v1, 10, 0),
        ("example.bin", "expected/example.bin.v2.slicesync", SignatureVersion.v2, 128, 64),
    ])
    func signingTheBundledFilesReproducesTheirSignatures(file: String, expected: String, version: SignatureVersion, slice: Int, block: Int) throws {
        let parameters = try SigningParameters(version: version, sliceSize: slice, blockSize: block == 0 ? nil : block)
        let signature = try SignatureBuilder(parameters: parameters, pool: nil).signature(of: try bytes(file), filename: file)
        #expect(signature.serialized() == (try bytes(expected)))
        #expect(try Signature.parse(try bytes(expected)) == signature)
    }
}
