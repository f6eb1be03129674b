import Foundation
import SliceSync
import Testing
import TestSupport

/// A published tree and a client directory for `slicesync URL/`.
struct MirrorScenario {
    let scratch: Scratch
    var pub: String { scratch.file("pub") }
    var mirror: String { scratch.file("mirror") }

    init() throws {
        scratch = try Scratch()
        try scratch.write("pub/a/b/big.bin", pseudoRandomData(2_000_000, seed: 170))
        try scratch.write("pub/c/small.txt", pseudoRandomData(1000, seed: 171))
        try scratch.write("pub/run.sh", Data("#!/bin/sh\necho hi\n".utf8))
        chmod(scratch.file("pub/run.sh"), 0o755)
        symlink("a/b/big.bin", scratch.file("pub/latest"))
        try FileManager.default.createDirectory(atPath: scratch.file("pub/empty"), withIntermediateDirectories: true)
        try sign()
    }

    func sign() throws {
        let signed = try ProgramRunner.run("shash", [pub])
        precondition(signed.status == 0, signed.stderr)
    }

    func mirror(_ url: String, _ extra: [String] = []) throws -> ProgramRunner.Result {
        try ProgramRunner.run("slicesync", [url, "-o", mirror, "--json"] + extra,
            environment: ["XDG_CACHE_HOME": scratch.file("cache")])
    }

    func report(_ result: ProgramRunner.Result) throws -> MirrorReport {
        try JSONDecoder().decode(MirrorReport.self, from: Data(result.stdout.utf8))
    }

    /// Every entry below `root` (tools' files left out): kind, bytes or target, executable bit.
    static func snapshot(_ root: String) throws -> [String: String] {
        var result: [String: String] = [:]
        let enumerator = FileManager.default.enumerator(atPath: root)
        while let relative = enumerator?.nextObject() as? String {
            if relative.split(separator: "/").contains(where: { $0.hasPrefix(".slicesync") }) { continue }
            let path = root + "/" + relative
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            switch attributes[.type] as? FileAttributeType {
            case .typeSymbolicLink?:
                result[relative] = "link " + (try FileManager.default.destinationOfSymbolicLink(atPath: path))
            case .typeDirectory?:
                result[relative] = "dir"
            default:
                let mode = (attributes[.posixPermissions] as? Int ?? 0) & 0o111 != 0 ? "x" : "-"
                let data = try Data(contentsOf: URL(fileURLWithPath: path))
                result[relative] = "file \(mode) \(data.count) \(data.hashValue)"
            }
        }
        return result
    }
}

@Suite("Mirroring a tree, end to end", .serialized)
struct MirrorEndToEndTests {
    /// A first mirror reproduces the tree; after edits, a rename, a delete, new files, a file that
    /// became a directory and a changed executable bit, the next one follows, copying the renamed file
    /// locally; then an update with nothing changed costs one request.
    @Test(arguments: ["syncserver", "nginx"])
    func mirrorsATreeAndFollowsItsChanges(server kind: String) throws {
        let scenario = try MirrorScenario()
        let server = kind == "nginx" ? try TestServer.nginx(root: scenario.pub, scratch: scenario.scratch.file("nginx"))
            : try TestServer.syncserver(root: scenario.pub, extra: ["--settle", "0.3"])
        let first = try scenario.mirror("\(server.base)/")
        #expect(first.status == 0, "\(first.stderr)")
        #expect(try MirrorScenario.snapshot(scenario.mirror) == MirrorScenario.snapshot(scenario.pub))
        #expect(try scenario.report(first).newFiles == 3)

        try FileManager.default.moveItem(atPath: scenario.scratch.file("pub/a/b/big.bin"),
            toPath: scenario.scratch.file("pub/c/renamed.bin"))
        var small = [UInt8](try scenario.scratch.read("pub/c/small.txt"))
        small[10] ^= 0xFF
        try scenario.scratch.write("pub/c/small.txt", Data(small), old: false)
        try FileManager.default.removeItem(atPath: scenario.scratch.file("pub/latest"))
        try scenario.scratch.write("pub/latest/inside.txt", Data("a file became a directory\n".utf8), old: false)
        chmod(scenario.scratch.file("pub/run.sh"), 0o644)
        try scenario.scratch.write("pub/new/n.txt", Data("new\n".utf8), old: false)
        try scenario.sign()
        // syncserver writes its own manifest once the files settle: wait for it to list the new file.
        _ = eventually(within: 10) { (try? exchange(server.port, "/.slicesync/.slicesync-manifest"))
            .flatMap { try? TreeManifest.parse($0.body) }?.entries.contains { $0.path == "new/n.txt" } == true }
        let second = try scenario.mirror("\(server.base)/", ["--delete"])
        #expect(second.status == 0, "\(second.stderr)")
        #expect(try MirrorScenario.snapshot(scenario.mirror) == MirrorScenario.snapshot(scenario.pub))
        let report = try scenario.report(second)
        #expect(report.files.first { $0.path == "c/renamed.bin" }?.action == "copied", "\(report.files)")
        #expect(report.bytesDownloaded < 100_000, "the renamed file was downloaded: \(report.bytesDownloaded)")

        let third = try scenario.mirror("\(server.base)/", ["--delete"])
        let unchanged = try scenario.report(third)
        #expect(unchanged.outcome == "unchanged" && unchanged.requests <= 2, "\(unchanged)")
    }

    /// A mirror keeps the manifest it fetched: the next run asks for it conditionally (304 when nothing
    /// changed) and then fetches only the parts that changed, whatever the size of the tree.
    @Test(arguments: ["syncserver", "nginx"])
    func onlyTheChangedPartsOfTheManifestAreFetched(server kind: String) throws {
        let scenario = try MirrorScenario()
        for index in 0..<1500 {
            try scenario.scratch.write("pub/many/file-\(index).txt", Data("content \(index)\n".utf8))
        }
        try scenario.sign()
        let manifestSize = try scenario.scratch.read("pub/.slicesync/.slicesync-manifest").count
        let server = kind == "nginx" ? try TestServer.nginx(root: scenario.pub, scratch: scenario.scratch.file("nginx"))
            : try TestServer.syncserver(root: scenario.pub, extra: ["--settle", "0.3"])
        #expect(try scenario.mirror("\(server.base)/").status == 0)

        let unchanged = try scenario.report(try scenario.mirror("\(server.base)/"))
        #expect(unchanged.requests == 1 && unchanged.bytesDownloaded == 0, "\(unchanged)")

        try scenario.scratch.write("pub/many/file-700.txt", Data("changed\n".utf8), old: false)
        try scenario.sign()
        _ = eventually(within: 10) { (try? exchange(server.port, "/.slicesync/.slicesync-manifest"))
            .flatMap { try? TreeManifest.parse($0.body) }?.entries.contains { entry in
                if case .file(let size, _, _, _) = entry.kind { entry.path == "many/file-700.txt" && size == 8 }
                else { false } } == true }
        let changed = try scenario.mirror("\(server.base)/")
        #expect(changed.status == 0, "\(changed.stderr)")
        #expect(try MirrorScenario.snapshot(scenario.mirror) == MirrorScenario.snapshot(scenario.pub))
        let report = try scenario.report(changed)
        #expect(report.changedFiles == 1)
        #expect(report.bytesDownloaded < manifestSize / 4, "\(report.bytesDownloaded) of \(manifestSize)")
    }

    /// An S3-compatible endpoint (moto) serves the tree as objects: the mirror reads its manifest there.
    @Test func mirrorsFromAnS3CompatibleEndpoint() throws {
        let scenario = try MirrorScenario()
        let server = try TestServer.s3(root: scenario.pub, bucket: "releases", prefix: "pub")
        let result = try scenario.mirror("\(server.base)/releases/pub/")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try MirrorScenario.snapshot(scenario.mirror) == MirrorScenario.snapshot(scenario.pub))
        let again = try scenario.report(try scenario.mirror("\(server.base)/releases/pub/"))
        #expect(again.outcome == "unchanged" && again.requests == 1)
    }

    /// --delete refuses, changing nothing, when too many files would go or the tree lists nothing;
    /// a file changed locally is kept unless --force.
    @Test func deletesAreGuarded() throws {
        let scenario = try MirrorScenario()
        let server = try TestServer.syncserver(root: scenario.pub, extra: ["--settle", "0.3"])
        #expect(try scenario.mirror("\(server.base)/").status == 0)
        for index in 0..<5 { try scenario.scratch.write("mirror/extra/\(index).txt", Data("x".utf8)) }
        let before = try MirrorScenario.snapshot(scenario.mirror)
        let refused = try scenario.mirror("\(server.base)/", ["--delete", "--max-delete", "3"])
        #expect(refused.status == 2 && refused.stderr.contains("--max-delete 3"), "\(refused.stderr)")
        #expect(try MirrorScenario.snapshot(scenario.mirror) == before)
        #expect(try scenario.mirror("\(server.base)/empty/", ["--delete"]).stderr.contains("lists nothing"))

        // A file the mirror wrote, then changed here: kept and reported; --force overwrites it.
        try scenario.scratch.write("mirror/c/small.txt", Data("mine".utf8), old: false)
        var small = [UInt8](try scenario.scratch.read("pub/c/small.txt"))
        small[0] ^= 1
        try scenario.scratch.write("pub/c/small.txt", Data(small), old: false)
        try scenario.sign()
        _ = eventually(within: 10) { (try? exchange(server.port, "/.slicesync/c/small.txt.slicesync"))?.status == 200 }
        let kept = try scenario.mirror("\(server.base)/", ["--delete"])
        #expect(try scenario.report(kept).files.first { $0.path == "c/small.txt" }?.action == "kept")
        #expect(try scenario.scratch.read("mirror/c/small.txt") == Data("mine".utf8))
        #expect(!scenario.scratch.exists("mirror/extra/0.txt"))
        let forced = try scenario.mirror("\(server.base)/", ["--delete", "--force"])
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(try scenario.scratch.read("mirror/c/small.txt") == Data(small))
    }

    /// --exclude leaves paths out: not fetched, and local ones never deleted; --include keeps some back.
    @Test func filtersLeavePathsOut() throws {
        let scenario = try MirrorScenario()
        let server = try TestServer.syncserver(root: scenario.pub, extra: ["--settle", "0.3"])
        try scenario.scratch.write("mirror/notes.txt", Data("mine".utf8))
        try scenario.scratch.write("mirror/junk.bin", Data("junk".utf8))
        let result = try scenario.mirror("\(server.base)/", ["--delete", "--include", "run.sh", "--exclude", "*.txt",
            "--exclude", "*.sh", "--exclude", "/a/"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(scenario.scratch.exists("mirror/notes.txt") && !scenario.scratch.exists("mirror/junk.bin"))
        #expect(!scenario.scratch.exists("mirror/c/small.txt") && !scenario.scratch.exists("mirror/a"))
        #expect(scenario.scratch.exists("mirror/run.sh"))
    }

    /// Content already local is used wherever it is: an --alike directory laid out like the tree, and a
    /// file that was renamed and edited on the server (its old name is about to be deleted).
    @Test func localContentIsReusedAcrossTheTree() throws {
        let scenario = try MirrorScenario()
        let server = try TestServer.syncserver(root: scenario.pub, extra: ["--settle", "0.3"])
        let old = scenario.scratch.file("old")
        try FileManager.default.copyItem(atPath: scenario.pub, toPath: old)
        var big = [UInt8](try scenario.scratch.read("pub/a/b/big.bin"))
        big[1_000_000] ^= 0xFF
        try scenario.scratch.write("pub/a/b/big.bin", Data(big), old: false)
        try scenario.sign()
        _ = eventually(within: 10) { (try? exchange(server.port, "/.slicesync/a/b/big.bin.slicesync"))?.status == 200 }
        let fresh = try scenario.mirror("\(server.base)/", ["--alike", old])
        #expect(fresh.status == 0, "\(fresh.stderr)")
        let first = try scenario.report(fresh)
        #expect(first.bytesDownloaded < 200_000, "the old copy was not used: \(first.bytesDownloaded)")
        #expect(try MirrorScenario.snapshot(scenario.mirror) == MirrorScenario.snapshot(scenario.pub))

        big[1_500_000] ^= 0xFF
        try FileManager.default.removeItem(atPath: scenario.scratch.file("pub/a/b/big.bin"))
        try scenario.scratch.write("pub/a/b/moved.bin", Data(big), old: false)
        try scenario.sign()
        _ = eventually(within: 10) {
            (try? exchange(server.port, "/.slicesync/a/b/moved.bin.slicesync"))?.status == 200
        }
        let moved = try scenario.mirror("\(server.base)/", ["--delete"])
        #expect(moved.status == 0, "\(moved.stderr)")
        let movedReport = try scenario.report(moved)
        #expect(movedReport.bytesDownloaded < 200_000, "\(movedReport)")
        #expect(try MirrorScenario.snapshot(scenario.mirror) == MirrorScenario.snapshot(scenario.pub))
    }

    /// Symbolic links planted in the destination never lead a write or a delete out of it.
    @Test func plantedLinksNeverLeadOut() throws {
        let scenario = try MirrorScenario()
        let server = try TestServer.syncserver(root: scenario.pub, extra: ["--settle", "0.3"])
        try FileManager.default.createDirectory(atPath: scenario.scratch.file("outside"),
            withIntermediateDirectories: true)
        try scenario.scratch.write("outside/keep.txt", Data("precious".utf8))
        try FileManager.default.createDirectory(atPath: scenario.mirror, withIntermediateDirectories: true)
        symlink(scenario.scratch.file("outside"), scenario.scratch.file("mirror/c"))
        symlink(scenario.scratch.file("outside"), scenario.scratch.file("mirror/gone"))
        let result = try scenario.mirror("\(server.base)/", ["--delete"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: scenario.scratch.file("outside")) == ["keep.txt"])
        #expect(try MirrorScenario.snapshot(scenario.mirror) == MirrorScenario.snapshot(scenario.pub))
    }

    /// A live mirror: a file written on the server appears, verified, within the settle period plus
    /// 2 s; a renamed file follows; SIGTERM stops it with status 0. syncserver announces changes on its
    /// change feed (the interval is a minute: only the feed can be that quick); nginx is polled.
    @Test(arguments: ["syncserver", "nginx"])
    func aLiveMirrorFollowsTheServer(server kind: String) throws {
        let scenario = try MirrorScenario()
        let server = kind == "nginx" ? try TestServer.nginx(root: scenario.pub, scratch: scenario.scratch.file("nginx"))
            : try TestServer.syncserver(root: scenario.pub, extra: ["--settle", "0.3"])
        let process = Process()
        process.executableURL = ProgramRunner.buildDirectory.appendingPathComponent("slicesync")
        process.arguments = ["\(server.base)/", "-o", scenario.mirror, "--watch",
                             "--interval", kind == "nginx" ? "0.3" : "60", "-q"]
        process.environment = ProcessInfo.processInfo.environment.merging(
            ["XDG_CACHE_HOME": scenario.scratch.file("cache")]) { $1 }
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL); _ = reap(process, timeout: 5) } }
        #expect(eventually(within: 10) { scenario.scratch.exists("mirror/c/small.txt") })
        let content = pseudoRandomData(300_000, seed: 180)
        try scenario.scratch.write("pub/live/new.bin", content, old: false)
        // nginx serves what shash writes; syncserver signs by itself.
        if kind == "nginx" { try scenario.sign() }
        let written = Date()
        #expect(eventually(within: 10) { (try? scenario.scratch.read("mirror/live/new.bin")) == content })
        #expect(Date().timeIntervalSince(written) < 0.3 + 2, "took \(Date().timeIntervalSince(written)) s")
        try FileManager.default.moveItem(atPath: scenario.scratch.file("pub/live/new.bin"),
            toPath: scenario.scratch.file("pub/live/renamed.bin"))
        if kind == "nginx" { try scenario.sign() }
        #expect(eventually(within: 10) { (try? scenario.scratch.read("mirror/live/renamed.bin")) == content })
        let stopped = Date()
        kill(process.processIdentifier, SIGTERM)
        #expect(reap(process, timeout: 10) == 0)
        #expect(Date().timeIntervalSince(stopped) < 3, "took \(Date().timeIntervalSince(stopped)) s to stop")
    }

    /// A manifest that lies (a path out of the tree) is refused before anything is written.
    @Test func aHostileManifestIsRefused() throws {
        let scenario = try MirrorScenario()
        // Built by hand: the writer would never make it.
        let bytes = TreeManifest.stored(text: Array("d\tok\nd\tok/../../escape\n".utf8))
        try scenario.scratch.write("pub/.slicesync/.slicesync-manifest", Data(bytes))
        let server = try TestServer.nginx(root: scenario.pub, scratch: scenario.scratch.file("nginx"))
        let result = try scenario.mirror("\(server.base)/")
        #expect(result.status == 3, "\(result.stderr)")
        #expect(result.stderr.contains(". or .. segment"), "\(result.stderr)")
        #expect(!scenario.scratch.exists("mirror/ok") && !scenario.scratch.exists("escape"))
    }
}
