import Foundation
import SliceSync
import Testing

/// A published tree with two new versions of one old file: one with scattered edits (4 KiB blocks
/// rewritten, 100-byte edits), one with an insertion that shifts everything after it; the client holds
/// the old version under each name.
struct InPlaceScenario {
    let scratch: Scratch
    let old: Data
    let versions: [String: Data]
    let server: TestServer
    /// The client's own cache directory.
    var cache: String { scratch.file("cache") }

    init() throws {
        scratch = try Scratch()
        // Above the 8 MiB the slice digest cache keeps.
        old = pseudoRandomData(9_000_000, seed: 140)
        var edited = [UInt8](old)
        for k in 0..<4 {
            let at = 100_000 + k * 700_000
            edited.replaceSubrange(at..<(at + 4096), with: [UInt8](pseudoRandomData(4096, seed: 141 + UInt64(k))))
            edited.replaceSubrange((at + 300_000)..<(at + 300_100), with: [UInt8](repeating: 0x5A, count: 100))
        }
        var inserted = [UInt8](old)
        inserted.insert(contentsOf: [UInt8](pseudoRandomData(5000, seed: 150)), at: 1_000_000)
        inserted.removeSubrange(2_500_000..<2_520_000)
        versions = ["edited.img": Data(edited), "inserted.img": Data(inserted)]
        for (name, data) in versions {
            try scratch.write("pub/" + name, data)
            try scratch.write("client/" + name, old)
        }
        let signed = try ProgramRunner.run("shash", [scratch.file("pub")])
        precondition(signed.status == 0, signed.stderr)
        server = try TestServer.syncserver(root: scratch.file("pub"))
    }

    func sync(_ name: String, _ extra: [String] = ["--inplace"],
              crashAt: String? = nil) throws -> ProgramRunner.Result {
        var environment = ["XDG_CACHE_HOME": cache]
        if let crashAt { environment["SLICESYNC_CRASH_AT"] = crashAt }
        return try ProgramRunner.run("slicesync", ["\(server.base)/\(name)", "-o", scratch.file("client/" + name),
            "--json", "-v"] + extra, environment: environment)
    }

    func report(_ result: ProgramRunner.Result) throws -> SyncReport {
        try JSONDecoder().decode(SyncReport.self, from: Data(result.stdout.utf8))
    }

    func inode(_ name: String) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: scratch.file("client/" + name))
        return attributes[.systemFileNumber] as? Int ?? -1
    }

    /// The tools' own files left in the client directory.
    func leftovers() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: scratch.file("client")).filter { $0.contains(".slicesync") }
    }
}

@Suite("in-place updates, end to end", .serialized)
struct InPlaceEndToEndTests {
    /// The destination keeps its inode, only the changed ranges are written (once into the journal,
    /// once into the file), and nothing of the tools' is left behind.
    @Test func editsAndInsertionsAreWrittenInPlace() throws {
        let scenario = try InPlaceScenario()
        for (name, data) in scenario.versions.sorted(by: { $0.key < $1.key }) {
            let inode = try scenario.inode(name)
            let result = try scenario.sync(name)
            #expect(result.status == 0, "\(name): \(result.stderr)")
            #expect(try scenario.scratch.read("client/" + name) == data, "\(name)")
            #expect(try scenario.inode(name) == inode, "\(name) was replaced, not updated in place")
            let report = try scenario.report(result)
            #expect(report.update == "in-place" && report.outcome == "updated")
            if name == "edited.img" {
                // Eight changes of at most two 2 KiB blocks each, written twice.
                #expect(report.bytesWritten <= 2 * 8 * 3 * 2048, "\(report.bytesWritten)")
            } else {
                // Everything from the insertion on moves: at most that part, twice.
                #expect(report.bytesWritten <= 2 * (data.count - 1_000_000 + 4096), "\(report.bytesWritten)")
            }
        }
        #expect(try scenario.leftovers().isEmpty)
    }

    /// A crash at every phase (gathering, journal sealed, half applied, applied but not cleaned up)
    /// is finished by the next run, with or without --inplace: the exact file, nothing left behind.
    @Test(arguments: ["staged", "sealed", "applying", "applied"])
    func crashesAtEveryPhaseAreFinishedByTheNextRun(phase: String) throws {
        let scenario = try InPlaceScenario()
        for (name, data) in scenario.versions.sorted(by: { $0.key < $1.key }) {
            let crashed = try scenario.sync(name, crashAt: phase)
            #expect(crashed.status == 137, "\(phase) \(name): \(crashed.stderr)")
            let journal = scenario.scratch.exists("client/\(name).slicesync.journal")
            #expect(journal == (phase != "staged"), "\(phase) \(name): journal \(journal)")
            let next = try scenario.sync(name, name == "edited.img" ? ["--inplace"] : [])
            #expect(next.status == 0, "\(phase) \(name): \(next.stderr)")
            #expect(try scenario.scratch.read("client/" + name) == data, "\(phase) \(name)")
            if journal { #expect(next.stderr.contains("finished the interrupted in-place update")) }
        }
        #expect(try scenario.leftovers().isEmpty)
    }

    /// After a sync the cache knows the file: a second run reads nothing of it, the next version is
    /// verified by hashing only the slices it wrote; a damaged or stale entry is never used.
    @Test func theCacheSparesReadingAndIsNeverTrustedBeyondItsKey() throws {
        let scenario = try InPlaceScenario()
        let name = "edited.img"
        let first = try scenario.report(try scenario.sync(name))
        #expect(first.cache == "miss")
        let again = try scenario.sync(name)
        #expect(try scenario.report(again).outcome == "unchanged")
        #expect(try scenario.report(again).cache == "hit")
        #expect(again.stderr.contains("it is not read"))

        // A new version on the server: only the slices it changes are read to verify it.
        var newer = [UInt8](scenario.versions[name]!)
        newer.replaceSubrange(2_000_000..<2_004_096, with: [UInt8](repeating: 7, count: 4096))
        try scenario.scratch.write("pub/" + name, Data(newer), old: false)
        #expect(try ProgramRunner.run("shash", [scenario.scratch.file("pub")]).status == 0)
        let warm = try scenario.sync(name)
        #expect(warm.status == 0, "\(warm.stderr)")
        #expect(try scenario.scratch.read("client/" + name) == Data(newer))
        #expect(try scenario.report(warm).cache == "hit")
        #expect(warm.stderr.contains(" slices by reading, ") && !warm.stderr.contains("verified 35 slices by reading"),
            "\(warm.stderr)")

        // A damaged entry is dropped, and the file is read instead.
        let entries = try FileManager.default.contentsOfDirectory(atPath: scenario.cache + "/slicesync")
        #expect(entries.count == 1)
        let entry = scenario.cache + "/slicesync/" + (entries.first ?? "")
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: entry)))
        bytes[bytes.count / 2] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: entry))
        let damaged = try scenario.sync(name)
        #expect(try scenario.report(damaged).cache == "miss")
        #expect(try scenario.report(damaged).outcome == "unchanged")

        // A file changed behind the cache's back (same size, any write changes its times) is read.
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: scenario.scratch.file("client/" + name)))
        try handle.seek(toOffset: 1_234_567)
        try handle.write(contentsOf: Data([0x01, 0x02]))
        try handle.close()
        let changed = try scenario.sync(name)
        #expect(changed.status == 0, "\(changed.stderr)")
        #expect(try scenario.report(changed).cache == "miss")
        #expect(try scenario.scratch.read("client/" + name) == Data(newer))
    }

    /// A journal that cannot be read whole, or that belongs to an earlier file of that name, is
    /// removed with a message; the destination is then checked whole and comes out right.
    @Test func damagedAndForeignJournalsAreSetAside() throws {
        let scenario = try InPlaceScenario()
        let name = "edited.img"
        try scenario.scratch.write("client/\(name).slicesync.journal", Data("not a journal".utf8))
        let damaged = try scenario.sync(name)
        #expect(damaged.status == 0, "\(damaged.stderr)")
        #expect(damaged.stderr.contains("is not a usable update journal"))
        #expect(try scenario.scratch.read("client/" + name) == scenario.versions[name])

        // A sealed journal, then the destination replaced by another file: the journal is not applied.
        try scenario.scratch.write("client/" + name, scenario.old)
        #expect(try scenario.sync(name, crashAt: "sealed").status == 137)
        let other = scenario.scratch.file("client/other")
        try scenario.scratch.write("client/other", scenario.old)
        try FileManager.default.removeItem(atPath: scenario.scratch.file("client/" + name))
        try FileManager.default.moveItem(atPath: other, toPath: scenario.scratch.file("client/" + name))
        let foreign = try scenario.sync(name)
        #expect(foreign.status == 0, "\(foreign.stderr)")
        #expect(foreign.stderr.contains("belongs to an earlier file"))
        #expect(try scenario.scratch.read("client/" + name) == scenario.versions[name])
        #expect(try scenario.leftovers().isEmpty)
    }

    /// A dry run says which path would be taken and what would be written, and changes nothing.
    @Test func aDryRunTellsThePath() throws {
        let scenario = try InPlaceScenario()
        let inPlace = try scenario.sync("edited.img", ["--inplace", "-n"])
        let report = try scenario.report(inPlace)
        #expect(report.outcome == "dry-run" && report.update == "in-place" && report.cache == "miss")
        #expect(report.bytesWritten > 0 && report.bytesWritten < 100_000, "\(report.bytesWritten)")
        let replace = try scenario.report(try scenario.sync("edited.img", ["-n"]))
        #expect(replace.update == "replace" && replace.bytesWritten == 9_000_000)
        #expect(try scenario.scratch.read("client/edited.img") == scenario.old)
        let text = try ProgramRunner.run("slicesync", ["\(scenario.server.base)/edited.img", "-n", "--inplace",
            "-o", scenario.scratch.file("client/edited.img")], environment: ["XDG_CACHE_HOME": scenario.cache])
        #expect(text.stdout.contains("would update in place, writing"), "\(text.stdout)")
    }
}
