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
        #expect(header.sha256 == StreamingDigest.hash(.sha256, randomBytes(12_000, seed: 2)))
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
        #expect(try writer.update(filePath: path, signaturePath: dir.file(".slicesync/f.slicesync")) == .written(bytesHashed: 3))
    }
}
