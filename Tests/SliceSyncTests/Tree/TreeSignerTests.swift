import Foundation
import Logging
import Testing
@testable import SliceSync

@Suite("Signing trees")
struct TreeSignerTests {
    let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    func signer(_ version: SignatureVersion = .v2, recursive: Bool = true, slice: Int? = nil) throws -> TreeSigner {
        var options = TreeSigningOptions(parameters: try SigningParameters(version: version, sliceSize: slice))
        options.recursive = recursive
        options.jobs = 2
        return TreeSigner(options: options, logger: logger)
    }

    @Test func signsEveryRegularFileIntoTheMirroredSignatureTree() throws {
        let dir = try TemporaryDirectory()
        try dir.write("a.iso", randomBytes(700_000, seed: 1))
        try dir.write("x/y/b.img", randomBytes(5000, seed: 2))
        try dir.write("x/empty", [])
        try dir.write(".hidden", [1, 2, 3])
        let report = try signer().run(paths: [dir.path])
        #expect(report.filesHashed == 4)
        #expect(report.bytesHashed == 705_003)
        #expect(report.failures.isEmpty)
        #expect(dir.allFiles() == [
            ".hidden", ".slicesync/.hidden.slicesync", ".slicesync/.slicesync-manifest", ".slicesync/a.iso.slicesync",
            ".slicesync/x/empty.slicesync",
            ".slicesync/x/y/b.img.slicesync", "a.iso", "x/empty", "x/y/b.img",
        ])
        let bytes = try SystemFile.openForReading(dir.file(".slicesync/x/y/b.img.slicesync")).readAll(limit: 1 << 20)
        guard case .v2(let signature) = try Signature.parse(bytes) else {
            Issue.record("expected format 2")
            return
        }
        #expect(signature.header.filename == "b.img")
        // The tree hash by default, not the plain SHA-256 (shash --sha256).
        #expect(signature.header.sha256 == nil)
        let data = randomBytes(5000, seed: 2)
        let digests = data.withUnsafeBytes {
            TreeHash.sliceDigest($0.baseAddress!, length: data.count, blockSize: signature.header.blockSize)
        }
        #expect(signature.header.treeHash == TreeHash.combine(digests))
    }

    @Test func skipsCurrentSignaturesAndRedoesChangedOnes() throws {
        let dir = try TemporaryDirectory()
        try dir.write("a", randomBytes(1000, seed: 1))
        try dir.write("b", randomBytes(1000, seed: 2))
        #expect(try signer().run(paths: [dir.path]).filesHashed == 2)
        let second = try signer().run(paths: [dir.path])
        #expect(second.filesHashed == 0)
        #expect(second.filesUpToDate == 2)
        try dir.write("b", randomBytes(1000, seed: 3), modified: Date(timeIntervalSince1970: 1_600_000_100))
        let third = try signer().run(paths: [dir.path])
        #expect(third.filesHashed == 1)
        #expect(third.filesUpToDate == 1)
        // Different parameters make every signature stale.
        let fourth = try signer(.v1).run(paths: [dir.path])
        #expect(fourth.filesHashed == 2)
    }

    @Test func aFileModifiedJustNowIsHashedAgainNextTime() throws {
        let dir = try TemporaryDirectory()
        try dir.write("fresh", randomBytes(100, seed: 1), modified: nil)
        #expect(try signer().run(paths: [dir.path]).filesHashed == 1)
        // Its signature is provisional: the file could still change within the same timestamp tick.
        #expect(try signer().run(paths: [dir.path]).filesHashed == 1)
    }

    @Test func removesOrphansStaleTemporariesAndEmptyDirectories() throws {
        let dir = try TemporaryDirectory()
        try dir.write("keep", [1])
        try dir.write("gone/deep/file", [2])
        _ = try signer().run(paths: [dir.path])
        try FileManager.default.removeItem(atPath: dir.file("gone"))
        try dir.write(".slicesync/.keep.slicesync.slicesync.tmp-abc", [0],
            modified: Date(timeIntervalSince1970: 1_000_000_000))
        try dir.write(".slicesync/.other.slicesync.slicesync.tmp-new", [0], modified: nil)
        try dir.write(".slicesync/README", [0])
        let report = try signer().run(paths: [dir.path])
        #expect(report.signaturesRemoved == 2)
        // The tree's manifest is kept (it is the tools' own), like files the sweep does not know.
        #expect(dir.allFiles() == [".slicesync/.other.slicesync.slicesync.tmp-new", ".slicesync/.slicesync-manifest",
            ".slicesync/README", ".slicesync/keep.slicesync", "keep"])
    }

    @Test func neverSignsItsOwnFiles() throws {
        let dir = try TemporaryDirectory()
        try dir.write("data", [1])
        try dir.write(".data.slicesync.tmp-123", [1])
        try dir.write("download.iso.slicesync.part", [1])
        try dir.write("nested/.slicesync/x.slicesync", [1])
        let report = try signer().run(paths: [dir.path])
        #expect(report.filesHashed == 1)
        #expect(try signer().run(paths: [dir.file(".slicesync")]).failures.count == 1)
    }

    @Test func noRecursiveStaysInTheTopDirectory() throws {
        let dir = try TemporaryDirectory()
        try dir.write("top", [1])
        try dir.write("sub/inner", [2])
        let report = try signer(recursive: false).run(paths: [dir.path])
        #expect(report.filesHashed == 1)
        #expect(!dir.exists(".slicesync/sub/inner.slicesync"))
    }

    @Test func aFilePathSignsIntoItsParentsSignatureDirectory() throws {
        let dir = try TemporaryDirectory()
        let file = try dir.write("sub/one.bin", randomBytes(10, seed: 1))
        try dir.write("sub/other.bin", randomBytes(10, seed: 2))
        let report = try signer(.v1, slice: 4).run(paths: [file])
        #expect(report.filesHashed == 1)
        #expect(dir.allFiles().contains("sub/.slicesync/one.bin.slicesync"))
        #expect(!dir.exists("sub/.slicesync/other.bin.slicesync"))
    }

    @Test func missingPathsAndUnreadableFilesAreReportedAndTheRestIsSigned() throws {
        let dir = try TemporaryDirectory()
        try dir.write("ok", [1])
        let locked = try dir.write("locked", [2])
        chmod(locked, 0)
        defer { chmod(locked, 0o644) }
        let report = try signer().run(paths: [dir.path, dir.file("missing")])
        #expect(report.failures.contains { $0.path.hasSuffix("missing") && $0.code == "not-found" })
        // root can read anything; only check the unreadable file where permissions apply.
        if getuid() != 0 { #expect(report.failures.contains { $0.path == locked && $0.code == "permission-denied" }) }
        #expect(dir.exists(".slicesync/ok.slicesync"))
    }

    @Test func symlinkedFilesAreSignedAndSymlinkedDirectoriesAreNotFollowed() throws {
        let dir = try TemporaryDirectory()
        try dir.write("real/file", [1, 2, 3])
        try FileManager.default.createSymbolicLink(atPath: dir.file("alias"), withDestinationPath: "real/file")
        try FileManager.default.createSymbolicLink(atPath: dir.file("loop"), withDestinationPath: ".")
        let report = try signer().run(paths: [dir.path])
        #expect(report.filesHashed == 2)
        #expect(dir.exists(".slicesync/alias.slicesync"))
    }

    @Test func unsignableNamesAreReported() throws {
        let dir = try TemporaryDirectory()
        try dir.write("line\nbreak", [1])
        let report = try signer().run(paths: [dir.path])
        #expect(report.filesHashed == 0)
        #expect(report.failures.count == 1)
    }
}

@Suite("Verifying files against signatures")
struct SignatureVerifierTests {
    @Test(arguments: [SignatureVersion.v1, .v2])
    func reportsWhichSlicesDiffer(version: SignatureVersion) throws {
        let dir = try TemporaryDirectory()
        var data = randomBytes(1_000_000, seed: 8)
        let path = try dir.write("f", data)
        var options = TreeSigningOptions(parameters: try SigningParameters(version: version, sliceSize: 65536))
        options.jobs = 2
        _ = TreeSigner(options: options,
            logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() }).run(paths: [path])
        let signature = try #require(SignatureVerifier.locateSignature(of: path))
        let verifier = SignatureVerifier(pool: nil)
        #expect(try verifier.verify(filePath: path, signaturePath: signature).matches)

        data[70_000] ^= 1
        data[900_000] ^= 1
        try dir.write("f", data)
        let report = try verifier.verify(filePath: path, signaturePath: signature)
        #expect(!report.matches)
        #expect(report.differingSlices == [1, 13])
        #expect(!report.wholeFileHashMatches)

        try dir.write("f", Array(data.prefix(65536 * 3)))
        let shorter = try verifier.verify(filePath: path, signaturePath: signature)
        #expect(shorter.differingSlices == [1] + Array(3..<16))
        #expect(shorter.actualLength == 65536 * 3)
    }

    @Test func findsSignaturesOfAncestorTrees() throws {
        let dir = try TemporaryDirectory()
        let path = try dir.write("a/b/c.iso", [1, 2])
        try dir.write(".slicesync/a/b/c.iso.slicesync", [0])
        #expect(SignatureVerifier.locateSignature(of: path) == dir.file(".slicesync/a/b/c.iso.slicesync"))
        try dir.write("a/.slicesync/b/c.iso.slicesync", [0])
        #expect(SignatureVerifier.locateSignature(of: path) == dir.file("a/.slicesync/b/c.iso.slicesync"))
    }
}
