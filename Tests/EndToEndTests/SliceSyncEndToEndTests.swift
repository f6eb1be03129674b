import Foundation
import Testing
import SliceSync

/// A published tree (signed with the real shash) and a client directory with an older version.
struct ClientScenario {
    let scratch: Scratch
    let new: Data
    let old: Data
    var publishRoot: String { scratch.file("pub") }

    init(size: Int = 3_000_000, appended: Int = 0) throws {
        scratch = try Scratch()
        old = pseudoRandomData(size, seed: 77)
        var bytes = [UInt8](old)
        for k in 0..<6 { bytes[k * (size / 6) + 1234] ^= 0xFF }
        bytes.insert(contentsOf: [UInt8](repeating: 7, count: 333), at: size / 2)
        bytes += [UInt8](pseudoRandomData(appended, seed: 78))
        new = Data(bytes)
        try scratch.write("pub/dir/file.bin", new)
        try scratch.write("client/old.bin", old)
        let signed = try ProgramRunner.run("shash", ["-q", publishRoot])
        precondition(signed.status == 0, signed.stderr)
    }

    func sync(_ server: TestServer, _ extra: [String] = [],
        output: String = "client/file.bin") throws -> ProgramRunner.Result {
        try ProgramRunner.run("slicesync",
            ["\(server.base)/dir/file.bin", "--alike", scratch.file("client/old.bin"), "-o", scratch.file(output),
                "--json"] + extra)
    }

    func report(_ result: ProgramRunner.Result) throws -> SyncReport {
        try JSONDecoder().decode(SyncReport.self, from: Data(result.stdout.utf8))
    }
}

@Suite("slicesync, run as a program against real servers on 127.0.0.1", .serialized)
struct SliceSyncEndToEndTests {
    @Test(arguments: ["normal", "ignore-range", "first-range-only", "multi-501", "truncate-once", "reset-once"])
    func everyServerBehaviourEndsWithTheRightFile(mode: String) throws {
        let scenario = try ClientScenario()
        let server = try TestServer.fault(root: scenario.publishRoot, mode: mode)
        let result = try scenario.sync(server)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try scenario.scratch.read("client/file.bin") == scenario.new)
        let report = try scenario.report(result)
        if mode == "ignore-range" {
            #expect(report.fullDownload)
        } else {
            // Six edits, each one 4 KiB sketch unit.
            #expect(report.bytesFromServer <= 6 * 4096, "fetched \(report.bytesFromServer)")
        }
        if mode == "normal" {
            // The signature's first bytes place every edit: one request for them, one for the data.
            #expect(report.requests == 2)
        }
    }

    @Test func aFileThatChangesOnTheServerIsAClearErrorAndTheDestinationIsUntouched() throws {
        // 20 MiB to fetch in 16 MiB requests, one at a time: the file changes after the first.
        let scenario = try ClientScenario(appended: 20 << 20)
        try scenario.scratch.write("client/file.bin", Data("previous".utf8))
        let server = try TestServer.fault(root: scenario.publishRoot, mode: "change-once")
        let result = try scenario.sync(server, ["-j", "1"])
        #expect(result.status == 4 || result.status == 5, "status \(result.status): \(result.stderr)")
        #expect(result.stderr.contains("changed") || result.stderr.contains("signature"))
        #expect(try scenario.scratch.read("client/file.bin") == Data("previous".utf8))
    }

    @Test func againstNginxUpdatesInPlaceThenFindsNothingToDo() throws {
        let scenario = try ClientScenario()
        let server = try TestServer.nginx(root: scenario.publishRoot, scratch: scenario.scratch.file("nginx"))
        try FileManager.default.copyItem(atPath: scenario.scratch.file("client/old.bin"),
            toPath: scenario.scratch.file("client/file.bin"))
        let first = try ProgramRunner.run("slicesync",
            ["\(server.base)/dir/file.bin", "-o", scenario.scratch.file("client/file.bin"), "--json"])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(try scenario.scratch.read("client/file.bin") == scenario.new)
        let report = try scenario.report(first)
        #expect(report.bytesFromServer <= 8 * 4096)
        #expect(report.requests <= 4)
        let second = try ProgramRunner.run("slicesync",
            ["\(server.base)/dir/file.bin", "-o", scenario.scratch.file("client/file.bin"), "--json"])
        #expect(try scenario.report(second).outcome == "unchanged")
        #expect(FileManager.default.fileExists(atPath: scenario.scratch.file("client/file.bin.slicesync.part"))
            == false)
    }

    @Test func dryRunSaysWhatWouldBeDownloaded() throws {
        let scenario = try ClientScenario()
        let server = try TestServer.nginx(root: scenario.publishRoot, scratch: scenario.scratch.file("nginx"))
        let result = try ProgramRunner.run("slicesync",
            ["-n", "\(server.base)/dir/file.bin", "--alike", scenario.scratch.file("client/old.bin"), "-o",
                scenario.scratch.file("client/file.bin")])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.hasPrefix("would download "))
        #expect(result.stdout.contains("% saved"))
        #expect(!scenario.scratch.exists("client/file.bin"))
    }

    @Test func interruptingLeavesTheDestinationAloneAndNoTemporaryFiles() throws {
        let scenario = try ClientScenario()
        try scenario.scratch.write("client/file.bin", Data("previous".utf8))
        let server = try TestServer.fault(root: scenario.publishRoot, mode: "stall")
        let process = Process()
        process.executableURL = ProgramRunner.buildDirectory.appendingPathComponent("slicesync")
        process.arguments = ["\(server.base)/dir/file.bin", "--alike", scenario.scratch.file("client/old.bin"), "-o",
            scenario.scratch.file("client/file.bin"), "-q"]
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Wait until the local pieces are copied and the download hangs, then press Ctrl-C.
        let deadline = Date().addingTimeInterval(30)
        func started() -> Bool {
            ((try? FileManager.default.contentsOfDirectory(atPath: scenario.scratch.file("client"))) ?? [])
                .contains { $0.contains(".slicesync.tmp-") }
        }
        while Date() < deadline && !started() {
            usleep(50_000)
        }
        usleep(300_000)
        kill(process.processIdentifier, SIGINT)
        #expect(reap(process, timeout: 30) == 130)
        #expect(try scenario.scratch.read("client/file.bin") == Data("previous".utf8))
        // Nothing was downloaded yet, so nothing is kept; and no temporary file is left behind.
        #expect(!started())
    }

    @Test func aRunKilledMidDownloadKeepsEveryVerifiedByteForTheNextRun() throws {
        // 8 MiB of new data from a slow server; the client is killed with SIGKILL once about half of
        // it has been sent.
        let scenario = try ClientScenario(size: 1_000_000, appended: 8 << 20)
        let slow = try TestServer.fault(root: scenario.publishRoot, mode: "slow")
        let process = Process()
        process.executableURL = ProgramRunner.buildDirectory.appendingPathComponent("slicesync")
        process.arguments = ["\(slow.base)/dir/file.bin", "--alike", scenario.scratch.file("client/old.bin"),
                             "-o", scenario.scratch.file("client/file.bin"), "-q"]
        process.standardError = FileHandle.nullDevice
        try process.run()
        func sent() -> Int { (try? String(contentsOfFile: scenario.scratch.file("sent-bytes"),
            encoding: .utf8)).flatMap { Int($0) } ?? 0 }
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline && sent() < 4 << 20 { usleep(20_000) }
        kill(process.processIdentifier, SIGKILL)
        // Foundation may reap the child first and report the signal's number alone.
        #expect([SIGKILL, 128 + SIGKILL].contains(reap(process, timeout: 30) ?? 0))
        let sentBeforeKill = sent()
        #expect(sentBeforeKill >= 4 << 20)
        #expect(!scenario.scratch.exists("client/file.bin"))

        let server = try TestServer.fault(root: scenario.publishRoot, mode: "normal")
        let result = try scenario.sync(server)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try scenario.scratch.read("client/file.bin") == scenario.new)
        // At most what had not arrived, plus per connection the block in flight and what sat unread
        // in its socket (the slow server sends 16 KiB at a time; four connections).
        let report = try scenario.report(result)
        print("resumed: fetched \(report.bytesFromServer) after \(sentBeforeKill) had been sent")
        let appended = 8 << 20
        #expect(report.bytesFromServer <= appended - sentBeforeKill + 4 * (2048 + 64 * 1024) + 8192,
                "fetched \(report.bytesFromServer) after \(sentBeforeKill) of \(appended) had been sent")
        let left = try FileManager.default.contentsOfDirectory(atPath: scenario.scratch.file("client"))
        #expect(left.sorted() == ["file.bin", "old.bin"])
    }

    @Test func limitRateCapsTheDownloadOverAllConnections() throws {
        // 2 MiB to fetch over four connections at 512 KiB/s: at least about 4 s, whatever the machine
        // (only a lower bound is checked: a slow machine can never make it fail).
        let scenario = try ClientScenario(size: 100_000, appended: 2 << 20)
        let server = try TestServer.fault(root: scenario.publishRoot, mode: "normal")
        let started = Date()
        let result = try scenario.sync(server, ["--limit-rate", "512K"])
        let elapsed = Date().timeIntervalSince(started)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try scenario.scratch.read("client/file.bin") == scenario.new)
        #expect(elapsed >= 3.0, "took \(elapsed) s")
        #expect(try ProgramRunner.run("slicesync", ["\(server.base)/dir/file.bin", "--limit-rate", "fast"]).status == 2)
    }

    @Test func exitStatusesAreDistinct() throws {
        let scenario = try ClientScenario(size: 10_000)
        let server = try TestServer.fault(root: scenario.publishRoot, mode: "normal")
        #expect(try ProgramRunner.run("slicesync", []).status == 2)
        #expect(try ProgramRunner.run("slicesync", ["ftp://x/y"]).status == 2)
        let missing = try ProgramRunner.run("slicesync",
            ["\(server.base)/dir/nothing.bin", "-o", scenario.scratch.file("x")])
        #expect(missing.status == 3)
        #expect(missing.stderr.contains("no signature found"))
        // The library says what is wrong; the command adds how to say it with its own options.
        #expect(missing.stderr.contains("hint: pass the signature's URL with --signature URL"))
        let refused = try ProgramRunner.run("slicesync",
            ["http://127.0.0.1:1/dir/file.bin", "-o", scenario.scratch.file("x")])
        #expect(refused.status == 4)
        let noDirectory = try ProgramRunner.run("slicesync",
            ["\(server.base)/dir/file.bin", "-o", scenario.scratch.file("no/such/dir/x")])
        #expect(noDirectory.status == 6)
    }
}
