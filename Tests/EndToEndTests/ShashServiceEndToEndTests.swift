import Foundation
import SliceSync
import Testing
import TestSupport

/// `shash --service` running as a program on a scratch tree, stopped by SIGTERM at the end of each test.
final class RunningService {
    let process: Process
    let tree: Scratch
    let log: String

    init(tree: Scratch, arguments: [String] = []) throws {
        self.tree = tree
        log = NSTemporaryDirectory() + "/slicesync-service-log-" + UUID().uuidString
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process = Process()
        process.executableURL = ProgramRunner.buildDirectory.appendingPathComponent("shash")
        process.arguments = ["--service", "--settle", "0.5"] + arguments + [tree.file("pub")]
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    deinit {
        if process.isRunning { TestServer.stop(process) }
        try? FileManager.default.removeItem(atPath: log)
    }

    var output: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    /// Stops the service with SIGTERM; returns its exit status.
    func stop() -> Int32? {
        kill(process.processIdentifier, SIGTERM)
        return reap(process, timeout: 20)
    }

    /// CPU time the process used so far, in clock ticks (user plus system).
    func cpuTicks() throws -> Int {
        let stat = try String(contentsOfFile: "/proc/\(process.processIdentifier)/stat", encoding: .utf8)
        // Fields after the parenthesised command name; utime and stime are the 14th and 15th overall.
        let fields = stat[stat.index(after: stat.lastIndex(of: ")")!)...].split(separator: " ")
        return Int(fields[11])! + Int(fields[12])!
    }

    /// Whether the signature of `relative` (below pub/) is exactly what one-shot signing of the file's
    /// current content would write.
    /// Whether the file's signature is what one-shot signing writes (`plain`: with `--sha256`, which
    /// `--zsync` implies).
    func isSigned(_ relative: String, plain: Bool = false) -> Bool {
        guard var parameters = try? SigningParameters(), let content = try? tree.read("pub/" + relative),
              let signature = try? tree.read("pub/.slicesync/" + relative + ".slicesync") else { return false }
        parameters.plainDigest = plain
        guard let expected = try? SignatureBuilder(parameters: parameters, pool: nil)
            .signature(of: [UInt8](content), filename: (relative as NSString).lastPathComponent) else { return false }
        return [UInt8](signature) == expected.serialized()
    }

    func hasSignature(_ relative: String) -> Bool { tree.exists("pub/.slicesync/" + relative + ".slicesync") }

    /// Files left in the signature directory that are temporary files of the tools.
    func temporaryFiles() -> [String] {
        ((try? FileManager.default.subpathsOfDirectory(atPath: tree.file("pub"))) ?? [])
            .filter { $0.contains(".slicesync.tmp-") }
    }
}

@Suite("shash --service, run as a program on a changing tree", .serialized)
struct ShashServiceEndToEndTests {
    /// With --zsync, each file's control file follows its changes: written with the signature, moved
    /// (renamed inside) with a rename, removed with the file.
    @Test func keepsZsyncControlFilesCurrent() throws {
        let tree = try Scratch()
        try tree.write("pub/a.bin", pseudoRandomData(300_000, seed: 41))
        let service = try RunningService(tree: tree, arguments: ["--zsync"])
        func control(_ relative: String) -> ZsyncControl? {
            (try? tree.read("pub/.slicesync/" + relative + ".zsync")).flatMap { try? ZsyncControl.parse([UInt8]($0)) }
        }
        func isCurrent(_ relative: String) -> Bool {
            guard let content = try? tree.read("pub/" + relative), let parsed = control(relative) else { return false }
            return parsed.length == content.count && parsed.sha1 == StreamingDigest.hash(.sha1, [UInt8](content))
                && parsed.filename == (relative as NSString).lastPathComponent
        }
        #expect(eventually { isCurrent("a.bin") }, "start-up: \(service.output)")
        try tree.write("pub/a.bin", pseudoRandomData(310_000, seed: 42), old: false)
        #expect(eventually { isCurrent("a.bin") && service.isSigned("a.bin", plain: true) },
            "changed: \(service.output)")
        try FileManager.default.createDirectory(atPath: tree.file("pub/d"), withIntermediateDirectories: true)
        try FileManager.default.moveItem(atPath: tree.file("pub/a.bin"), toPath: tree.file("pub/d/b.bin"))
        #expect(eventually { isCurrent("d/b.bin") && control("a.bin") == nil }, "renamed: \(service.output)")
        #expect(control("d/b.bin")?.urls == ["../../d/b.bin"])
        try FileManager.default.removeItem(atPath: tree.file("pub/d/b.bin"))
        #expect(eventually { !tree.exists("pub/.slicesync/d/b.bin.zsync") }, "deleted: \(service.output)")
        #expect(service.stop() == 0)
        #expect(service.temporaryFiles().isEmpty)
    }

    @Test func keepsSignaturesCurrentThroughEveryKindOfChange() throws {
        let tree = try Scratch()
        try tree.write("pub/a.bin", pseudoRandomData(300_000, seed: 1))
        try tree.write("pub/dir1/b.bin", pseudoRandomData(100_000, seed: 2))
        try tree.write("pub/dir1/sub/c.bin", pseudoRandomData(50_000, seed: 3))
        try tree.write("outside/incoming.bin", pseudoRandomData(70_000, seed: 4))
        let service = try RunningService(tree: tree)
        let pub = tree.file("pub")
        let fm = FileManager.default

        #expect(eventually { service.isSigned("a.bin") && service.isSigned("dir1/b.bin")
            && service.isSigned("dir1/sub/c.bin") }, "start-up: \(service.output)")

        try tree.write("pub/new.bin", pseudoRandomData(80_000, seed: 5), old: false)
        #expect(eventually { service.isSigned("new.bin") }, "created: \(service.output)")

        let appended = try FileHandle(forWritingTo: URL(fileURLWithPath: pub + "/a.bin"))
        appended.seekToEndOfFile()
        appended.write(pseudoRandomData(5_000, seed: 6))
        try appended.close()
        #expect(eventually { service.isSigned("a.bin") }, "appended: \(service.output)")

        try tree.write("pub/dir1/b.bin", pseudoRandomData(100_000, seed: 7), old: false)
        #expect(eventually { service.isSigned("dir1/b.bin") }, "overwritten: \(service.output)")

        try fm.moveItem(atPath: pub + "/a.bin", toPath: pub + "/renamed.bin")
        #expect(eventually { service.isSigned("renamed.bin") && !service.hasSignature("a.bin") },
            "renamed: \(service.output)")

        try fm.createDirectory(atPath: pub + "/dir2", withIntermediateDirectories: true)
        try fm.moveItem(atPath: pub + "/dir1/b.bin", toPath: pub + "/dir2/b.bin")
        #expect(eventually { service.isSigned("dir2/b.bin") && !service.hasSignature("dir1/b.bin") },
            "moved across directories: \(service.output)")

        try fm.removeItem(atPath: pub + "/new.bin")
        #expect(eventually { !service.hasSignature("new.bin") }, "deleted: \(service.output)")

        try fm.createDirectory(atPath: pub + "/n1/n2/n3", withIntermediateDirectories: true)
        try tree.write("pub/n1/n2/n3/deep.bin", pseudoRandomData(10_000, seed: 8), old: false)
        try tree.write("pub/n1/top.bin", pseudoRandomData(10_000, seed: 9), old: false)
        #expect(eventually { service.isSigned("n1/n2/n3/deep.bin") && service.isSigned("n1/top.bin") },
            "nested directories: \(service.output)")
        try fm.removeItem(atPath: pub + "/n1")
        #expect(eventually { !tree.exists("pub/.slicesync/n1") }, "nested directories removed: \(service.output)")

        try fm.moveItem(atPath: pub + "/dir1", toPath: pub + "/dirX")
        #expect(eventually { service.isSigned("dirX/sub/c.bin")
            && !tree.exists("pub/.slicesync/dir1/sub/c.bin.slicesync") }, "directory renamed: \(service.output)")

        try fm.moveItem(atPath: pub + "/renamed.bin", toPath: tree.file("outside/renamed.bin"))
        #expect(eventually { !service.hasSignature("renamed.bin") }, "moved out: \(service.output)")
        try fm.moveItem(atPath: tree.file("outside/incoming.bin"), toPath: pub + "/incoming.bin")
        #expect(eventually { service.isSigned("incoming.bin") }, "moved in: \(service.output)")

        #expect(service.stop() == 0)
        #expect(service.temporaryFiles().isEmpty)
        #expect(service.output.contains("signed "))
        #expect(service.output.contains("removed "))
    }

    @Test func aFileWrittenSlowlyIsSignedOnlyOnceItIsFinished() throws {
        let tree = try Scratch()
        try tree.write("pub/ready.bin", pseudoRandomData(1_000, seed: 1))
        let service = try RunningService(tree: tree)
        #expect(eventually { service.isSigned("ready.bin") })
        let path = tree.file("pub/slow.bin")
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let writer = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        // Six pieces over three seconds, each gap longer than the settle period.
        for piece in 0..<6 {
            writer.write(pseudoRandomData(50_000, seed: UInt64(100 + piece)))
            usleep(600_000)
            #expect(!service.hasSignature("slow.bin"), "signed while still being written (piece \(piece))")
        }
        try writer.close()
        #expect(eventually { service.isSigned("slow.bin") }, "\(service.output)")
        #expect(try tree.read("pub/slow.bin").count == 300_000)
        #expect(service.stop() == 0)
    }

    @Test func twoThousandFilesAtOnceAreAllSignedThenTheServiceIdles() throws {
        let tree = try Scratch()
        try FileManager.default.createDirectory(atPath: tree.file("pub"), withIntermediateDirectories: true)
        let service = try RunningService(tree: tree, arguments: ["-q"])
        // Some files may come before the watches are set up; the start-up scan finds those.
        for index in 0..<2_000 {
            try tree.write("pub/d\(index % 20)/f\(index).txt", Data("file \(index)\n".utf8), old: false)
        }
        let signatures = { ((try? FileManager.default.subpathsOfDirectory(atPath: tree.file("pub/.slicesync"))) ?? [])
            .filter { $0.hasSuffix(".slicesync") }.count }
        #expect(eventually(within: 120) { signatures() == 2_000 }, "\(signatures()) of 2000 signed: \(service.output)")
        #expect(service.isSigned("d7/f1987.txt"))
        // Settled: no CPU time is spent while nothing changes.
        usleep(1_000_000)
        let before = try service.cpuTicks()
        usleep(3_000_000)
        let after = try service.cpuTicks()
        #expect(after - before <= 2, "used \(after - before) ticks while idle")
        #expect(service.stop() == 0)
        #expect(service.output.isEmpty, "-q printed: \(service.output)")
    }

    @Test func theOriginalSpellingAndBadUsage() throws {
        let tree = try Scratch()
        try tree.write("pub/x.bin", Data("x".utf8))
        let process = Process()
        process.executableURL = ProgramRunner.buildDirectory.appendingPathComponent("shash")
        process.arguments = ["-service", tree.file("pub")]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        #expect(eventually { tree.exists("pub/.slicesync/x.bin.slicesync") })
        kill(process.processIdentifier, SIGINT)
        #expect(reap(process, timeout: 20) == 0)
        #expect(try ProgramRunner.run("shash", ["--service", tree.file("pub"), tree.file("pub")]).status == 2)
        #expect(try ProgramRunner.run("shash", ["--service", "--settle", "-1", tree.file("pub")]).status == 2)
        let missing = try ProgramRunner.run("shash", ["--service", tree.file("nowhere")])
        #expect(missing.status == 6)
        #expect(missing.stderr.contains("nowhere"))
    }
}
