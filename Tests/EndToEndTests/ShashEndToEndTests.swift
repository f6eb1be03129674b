import Foundation
import Testing
import SliceSync

@Suite("shash, run as a program")
struct ShashEndToEndTests {
    @Test func signsSkipsAndCleansARealTree() throws {
        let tree = try Scratch()
        try tree.write("release/big.img", pseudoRandomData(3_000_000, seed: 1))
        try tree.write("release/notes.txt", Data("hello\n".utf8))
        try tree.write("empty", Data())

        let first = try ProgramRunner.run("shash", ["--json", tree.path])
        #expect(first.status == 0, "\(first.stderr)")
        let report = try JSONDecoder().decode(TreeSigningReport.self, from: Data(first.stdout.utf8))
        #expect(report.filesHashed == 3)
        #expect(report.bytesHashed == 3_000_006)
        #expect(tree.exists(".slicesync/release/big.img.slicesync"))
        #expect(tree.exists(".slicesync/empty.slicesync"))

        let second = try ProgramRunner.run("shash", [tree.path])
        #expect(second.status == 0)
        #expect(second.stdout.contains("signed 0 files"))
        #expect(second.stdout.contains("3 up to date"))

        try FileManager.default.removeItem(atPath: tree.file("release/notes.txt"))
        let third = try ProgramRunner.run("shash", ["-v", tree.path])
        #expect(third.status == 0)
        #expect(third.stdout.contains("1 orphaned removed"))
        #expect(third.stderr.contains("removed"))
        #expect(!tree.exists(".slicesync/release/notes.txt.slicesync"))
    }

    @Test func writesTheOriginalFormatByteForByte() throws {
        let tree = try Scratch()
        let file = try tree.write("testfile.txt",
            Data("AAAAAAAAA\nBBBBBBBBB\nCCCCCCCCC\nDDDDDDDDD\nEEEEEEEEE\nAAAAAAAAA\n".utf8))
        let result = try ProgramRunner.run("shash", ["--format", "1", "--slice", "10", "-q", file])
        #expect(result.status == 0)
        #expect(result.stdout.isEmpty)
        let signature = try String(decoding: tree.read(".slicesync/testfile.txt.slicesync"), as: UTF8.self)
        #expect(signature.hasSuffix("DcoCVPJSsowi0Ltoyvhw3wY7YGQ=\nsha1: 6e1eb4d4daf850c250bdc9a16669c7f66915f842\n"))
    }

    @Test func verifyNamesTheSlicesThatDiffer() throws {
        let tree = try Scratch()
        var data = pseudoRandomData(1_000_000, seed: 2)
        let file = try tree.write("disk.img", data)
        #expect(try ProgramRunner.run("shash", ["-q", "--slice", "64K", tree.path]).status == 0)
        let ok = try ProgramRunner.run("shash", ["--verify", file])
        #expect(ok.status == 0)
        #expect(ok.stdout.contains("OK"))

        data[500_000] ^= 0xFF
        try tree.write("disk.img", data)
        let bad = try ProgramRunner.run("shash", ["--verify", file])
        #expect(bad.status == 5)
        #expect(bad.stderr.contains("1 of 16 slices differ: 7 (bytes 458752-524287)"))

        let json = try ProgramRunner.run("shash", ["--verify", "--json", file])
        let reports = try JSONDecoder().decode([VerificationReport].self, from: Data(json.stdout.utf8))
        #expect(reports.first?.differingSlices == [7])
    }

    @Test func distinctExitStatuses() throws {
        let tree = try Scratch()
        #expect(try ProgramRunner.run("shash", []).status == 2)
        #expect(try ProgramRunner.run("shash", ["--format", "7", tree.path]).status == 2)
        #expect(try ProgramRunner.run("shash", ["--block", "1000", tree.path]).status == 2)
        #expect(try ProgramRunner.run("shash", ["--format", "1", "--block", "4K", tree.path]).status == 2)
        let missing = try ProgramRunner.run("shash", [tree.file("nope")])
        #expect(missing.status == 6)
        #expect(missing.stderr.contains("does not exist"))
        let file = try tree.write("f", Data("x".utf8))
        let noSignature = try ProgramRunner.run("shash", ["--verify", file])
        #expect(noSignature.status == 3)
        try tree.write(".slicesync/f.slicesync", Data("Version: 9\n".utf8))
        let malformed = try ProgramRunner.run("shash", ["--verify", file])
        #expect(malformed.status == 3)
        #expect(malformed.stderr.contains("version 9 is not supported"))
        #expect(try ProgramRunner.run("shash", ["--help"]).status == 0)
    }

    @Test func manyFilesAreHashedConcurrentlyAndAllSigned() throws {
        let tree = try Scratch()
        for index in 0..<200 {
            try tree.write("d\(index % 7)/f\(index)", pseudoRandomData(1000 + index * 37, seed: UInt64(index)))
        }
        let result = try ProgramRunner.run("shash", ["--json", "-j", "2", tree.path])
        let report = try JSONDecoder().decode(TreeSigningReport.self, from: Data(result.stdout.utf8))
        #expect(report.filesHashed == 200)
        for index in 0..<200 {
            let signature = try SignatureV2Header.parse(
                Array(try tree.read(".slicesync/d\(index % 7)/f\(index).slicesync")))
            #expect(signature.length == 1000 + index * 37)
            #expect(signature.filename == "f\(index)")
        }
    }
}
