import Foundation
import Synchronization
import Testing
@testable import SliceSync

@Suite("Writing one signature")
struct SignatureFileWriterTests {
    @Test func aFileThatChangesWhileHashedIsHashedAgainAndDescribedAsItEnds() throws {
        let dir = try TemporaryDirectory()
        let path = try dir.write("growing", randomBytes(10_000, seed: 1))
        let changes = Mutex(0)
        var writer = SignatureFileWriter(parameters: try SigningParameters(), pool: nil)
        writer.afterHashing = { file in
            let first = changes.withLock { count in
                count += 1
                return count == 1
            }
            if first { try? Data(randomBytes(12_000, seed: 2)).write(to: URL(fileURLWithPath: file)) }
        }
        let signaturePath = dir.file(".slicesync/growing.slicesync")
        #expect(try writer.update(filePath: path, signaturePath: signaturePath) == .written(bytesHashed: 12_000))
        #expect(changes.withLock { $0 } == 2)
        let header = try SignatureV2Header.parse(try SystemFile.openForReading(signaturePath).readAll(limit: 1 << 20))
        #expect(header.length == 12_000)
        let data = randomBytes(12_000, seed: 2)
        let digests = data.withUnsafeBytes {
            TreeHash.sliceDigest($0.baseAddress!, length: data.count, blockSize: header.blockSize)
        }
        #expect(header.treeHash == TreeHash.combine(digests))
    }

    @Test func aFileThatNeverSettlesGetsNoSignatureAndLeavesNoTemporaryFile() throws {
        let dir = try TemporaryDirectory()
        let path = try dir.write("busy", randomBytes(5000, seed: 1))
        let round = Mutex(UInt64(0))
        var writer = SignatureFileWriter(parameters: try SigningParameters(), pool: nil)
        writer.afterHashing = { file in
            let seed = round.withLock { value in
                value += 1
                return value
            }
            try? Data(randomBytes(5000 + Int(seed), seed: seed)).write(to: URL(fileURLWithPath: file))
        }
        #expect(throws: FileSystemError.self) {
            try writer.update(filePath: path, signaturePath: dir.file(".slicesync/busy.slicesync"))
        }
        #expect(dir.allFiles() == ["busy"])
    }

    @Test func theSignatureCarriesTheFilesModificationTime() throws {
        let dir = try TemporaryDirectory()
        let path = try dir.write("old", [1, 2, 3])
        let writer = SignatureFileWriter(parameters: try SigningParameters(), pool: nil)
        let signaturePath = dir.file(".slicesync/old.slicesync")
        _ = try writer.update(filePath: path, signaturePath: signaturePath)
        let file = try #require(try FileSystem.stamp(path))
        let signature = try #require(try FileSystem.stamp(signaturePath))
        #expect(signature.mtimeSeconds == file.mtimeSeconds)
        #expect(signature.mtimeNanoseconds == file.mtimeNanoseconds)
        #expect(writer.isCurrent(signaturePath: signaturePath, fileStamp: file, filename: "old"))
        #expect(!writer.isCurrent(signaturePath: signaturePath, fileStamp: file, filename: "renamed"))
    }

    @Test func aCorruptSignatureWithTheRightTimeIsNotCurrent() throws {
        let dir = try TemporaryDirectory()
        let path = try dir.write("f", [1, 2, 3])
        try dir.write(".slicesync/f.slicesync", Array("Version: 2\ngarbage".utf8))
        let writer = SignatureFileWriter(parameters: try SigningParameters(), pool: nil)
        let stamp = try #require(try FileSystem.stamp(path))
        #expect(!writer.isCurrent(signaturePath: dir.file(".slicesync/f.slicesync"), fileStamp: stamp, filename: "f"))
        #expect(try writer.update(filePath: path,
            signaturePath: dir.file(".slicesync/f.slicesync")) == .written(bytesHashed: 3))
    }

    /// A POSIX ustar header for a member `name` of `size` bytes, with a correct checksum.
    static func tarHeader(name: String, size: Int) -> [UInt8] {
        var header = [UInt8](repeating: 0, count: 512)
        func put(_ text: String,
            at offset: Int) { header.replaceSubrange(offset..<(offset + text.utf8.count), with: Array(text.utf8)) }
        put(name, at: 0)
        put("0000644", at: 100)
        put(String(format: "%011o", size), at: 124)
        put(String(format: "%011o", 1_724_099_932), at: 136)
        put("        ", at: 148)
        put("0", at: 156)
        put("ustar", at: 257)
        put("00", at: 263)
        let sum = header.reduce(0) { $0 + Int($1) }
        put(String(format: "%06o", sum), at: 148)
        header[154] = 0
        return header
    }

    @Test func tarArchivesGetTarSizedBlocksUnlessABlockSizeIsChosen() throws {
        let content = randomBytes(100_000, seed: 5)
        let tar = Self.tarHeader(name: "pkg-1.0/data.bin", size: content.count) + content
            + [UInt8](repeating: 0, count: 512 - content.count % 512 + 1024)
        #expect(SigningParameters.isTarHeader(tar))
        var damaged = tar
        damaged[10] ^= 1
        #expect(!SigningParameters.isTarHeader(damaged))
        #expect(!SigningParameters.isTarHeader(content))

        let dir = try TemporaryDirectory()
        let path = try dir.write("pkg.tar", tar)
        let signaturePath = dir.file(".slicesync/pkg.tar.slicesync")
        func blockSize() throws -> Int {
            try SignatureV2Header.parse(try SystemFile.openForReading(signaturePath).readAll(limit: 1 << 20)).blockSize
        }
        let automatic = SignatureFileWriter(parameters: try SigningParameters(), pool: nil)
        #expect(try automatic.update(filePath: path, signaturePath: signaturePath) == .written(bytesHashed: tar.count))
        #expect(try blockSize() == SigningParameters.tarBlockSize)
        #expect(try automatic.update(filePath: path, signaturePath: signaturePath) == .upToDate)

        let chosen = SignatureFileWriter(parameters: try SigningParameters(blockSize: 2048), pool: nil)
        #expect(try chosen.update(filePath: path, signaturePath: signaturePath) == .written(bytesHashed: tar.count))
        #expect(try blockSize() == 2048)
        // Signed with a chosen size, the signature is not what the default now gives: it is redone.
        #expect(try automatic.update(filePath: path, signaturePath: signaturePath) == .written(bytesHashed: tar.count))

        let other = try dir.write("data.bin", content)
        let otherSignature = dir.file(".slicesync/data.bin.slicesync")
        #expect(try automatic.update(filePath: other,
            signaturePath: otherSignature) == .written(bytesHashed: content.count))
        let written = try SignatureV2Header.parse(try SystemFile.openForReading(otherSignature).readAll(limit: 1 << 20))
        #expect(written.blockSize == SignatureV2Header.defaultBlockSize)
    }
}
