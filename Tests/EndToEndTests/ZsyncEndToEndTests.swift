import Foundation
import SliceSync
import Testing

/// A published directory with zsync control files only (no slicesync signatures), made by zsyncmake
/// 0.6.2 with relative URLs as it makes them by default, and a client directory with old versions.
struct ZsyncScenario {
    let scratch: Scratch
    let items: [(name: String, old: Data, new: Data)]
    var releases: String { scratch.file("pub/releases/v2") }

    init() throws {
        scratch = try Scratch()
        let base = pseudoRandomData(3_000_000, seed: 120)
        var edited = [UInt8](base)
        for k in 0..<5 { edited[k * 600_000 + 777] ^= 0x3C }
        edited.insert(contentsOf: [UInt8](pseudoRandomData(500, seed: 121)), at: 1_500_000)
        items = [
            ("edited.img", base, Data(edited)),
            ("appended.bin", base.prefix(1_000_000), base.prefix(1_000_000) + pseudoRandomData(70_000, seed: 122)),
            ("one-block.txt", Data("old text\n".utf8), Data("a new text, a little longer\n".utf8)),
        ]
        for item in items {
            let path = try scratch.write("pub/releases/v2/" + item.name, item.new)
            try scratch.write("client/" + item.name, item.old)
            let made = try ProgramRunner.run("/usr/bin/zsyncmake", ["-u", item.name, "-o", path + ".zsync", path])
            precondition(made.status == 0, "zsyncmake: \(made.stderr) (apt-get install zsync)")
        }
        try FileManager.default.createDirectory(atPath: scratch.file("out"), withIntermediateDirectories: true)
    }

    func sync(_ url: String, _ name: String, _ extra: [String] = []) throws -> ProgramRunner.Result {
        try ProgramRunner.run("slicesync", [url, "--alike", scratch.file("client/" + name),
                                            "-o", scratch.file("out/" + name), "--json"] + extra)
    }

    func report(_ result: ProgramRunner.Result) throws -> SyncReport {
        try JSONDecoder().decode(SyncReport.self, from: Data(result.stdout.utf8))
    }
}

private let sha = "SHA-1: " + String(repeating: "a", count: 40)

@Suite("zsync control files, end to end", .serialized)
struct ZsyncEndToEndTests {
    /// zsyncmake's control files are read over servers that refuse multi-range requests or ignore
    /// ranges altogether (zsync 0.6.2 aborts on both), named directly or found beside the file.
    @Test(arguments: ["normal", "multi-501", "first-range-only", "ignore-range"])
    func zsyncmakesControlFilesRebuildTheFiles(mode: String) throws {
        let scenario = try ZsyncScenario()
        let server = try TestServer.fault(root: scenario.scratch.file("pub"), mode: mode)
        for (index, item) in scenario.items.enumerated() {
            // The control file by its URL, or (no slicesync signature published) found beside the file.
            let url = "\(server.base)/releases/v2/\(item.name)" + (index % 2 == 0 ? ".zsync" : "")
            let result = try scenario.sync(url, item.name)
            #expect(result.status == 0, "\(mode) \(item.name): \(result.stderr)")
            guard result.status == 0 else { continue }
            #expect(try scenario.scratch.read("out/" + item.name) == item.new, "\(mode) \(item.name)")
            let report = try scenario.report(result)
            #expect(report.signatureFormat == "zsync" && report.formatVersion == 0)
            #expect(report.url == "\(server.base)/releases/v2/\(item.name)")
            #expect(report.hash.hasPrefix("sha1:"))
            // The modification time of the control file's MTime, as zsync sets it.
            let published = try FileManager.default.attributesOfItem(atPath: "\(scenario.releases)/\(item.name)")
            let rebuilt = try FileManager.default.attributesOfItem(atPath: scenario.scratch.file("out/" + item.name))
            let seconds = { (attributes: [FileAttributeKey: Any]) in
                Int((attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? -1)
            }
            #expect(seconds(rebuilt) == seconds(published))
            if mode != "ignore-range" && item.name == "edited.img" {
                // Six changes, each a block or two of 2 KiB.
                #expect(report.bytesFromServer <= 14 * 2048, "\(report.bytesFromServer)")
            }
        }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: scenario.scratch.file("out"))
            .filter { $0.contains(".slicesync.") }
        #expect(leftovers.isEmpty, "\(leftovers)")
    }

    /// A relative `URL:` resolves against where the control file really is, after redirects (as zsync
    /// 0.6.2 does), and against --base-url for a control file read from a local path.
    @Test func relativeURLsResolveAfterRedirectsAndAgainstTheBaseURL() throws {
        let scenario = try ZsyncScenario()
        let server = try TestServer.fault(root: scenario.scratch.file("pub"), mode: "normal")
        let item = scenario.items[0]
        let redirected = try scenario.sync("\(server.base)/latest/\(item.name).zsync", item.name)
        #expect(redirected.status == 0, "\(redirected.stderr)")
        #expect(try scenario.scratch.read("out/" + item.name) == item.new)
        #expect(try scenario.report(redirected).url == "\(server.base)/releases/v2/\(item.name)")

        let local = scenario.releases + "/" + item.name + ".zsync"
        let withoutBase = try scenario.sync(local, item.name, ["-o", scenario.scratch.file("out/local.img")])
        #expect(withoutBase.status == 2, "\(withoutBase.stderr)")
        #expect(withoutBase.stderr.contains("--base-url"))
        #expect(!scenario.scratch.exists("out/local.img"))
        let withBase = try scenario.sync(local, item.name, ["-o", scenario.scratch.file("out/local.img"),
                                                            "--base-url", "\(server.base)/releases/v2/"])
        #expect(withBase.status == 0, "\(withBase.stderr)")
        #expect(try scenario.scratch.read("out/local.img") == item.new)
    }

    /// The `URL:` lines of a control file are mirrors: when the first fails, the next one is used, and
    /// what was done so far is kept.
    @Test func otherURLsAreTriedWhenOneFails() throws {
        let scenario = try ZsyncScenario()
        let item = scenario.items[0]
        var control = try ZsyncControl.parse([UInt8](try scenario.scratch.read("pub/releases/v2/\(item.name).zsync")))
        control.urls = ["gone/\(item.name)", "http://127.0.0.1:1/\(item.name)", item.name]
        try scenario.scratch.write("pub/releases/v2/mirrors.zsync", Data(control.serialized()))
        let server = try TestServer.fault(root: scenario.scratch.file("pub"), mode: "normal")
        let result = try scenario.sync("\(server.base)/releases/v2/mirrors.zsync", item.name)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try scenario.scratch.read("out/" + item.name) == item.new)
        #expect(result.stderr.contains("trying the control file's next URL"), "\(result.stderr)")
        #expect(try scenario.report(result).url == "\(server.base)/releases/v2/\(item.name)")
    }

    /// Run again, with the old version still given as an alike file, the sync finds the destination
    /// already up to date and leaves it alone.
    @Test func aSecondRunFindsTheFileUnchanged() throws {
        let scenario = try ZsyncScenario()
        let server = try TestServer.fault(root: scenario.scratch.file("pub"), mode: "normal")
        let item = scenario.items[0]
        let url = "\(server.base)/releases/v2/\(item.name).zsync"
        #expect(try scenario.report(try scenario.sync(url, item.name)).outcome == "updated")
        let again = try scenario.sync(url, item.name)
        #expect(again.status == 0, "\(again.stderr)")
        let report = try scenario.report(again)
        #expect(report.outcome == "unchanged" && report.bytesFromServer == 0 && report.requests == 1)
        #expect(try scenario.scratch.read("out/" + item.name) == item.new)
    }

    /// A run of matches goes on on the rolling sums alone: a block whose sum matches but whose content
    /// does not is caught by the whole-file hash, found by its record and fetched again.
    @Test func aBlockThatOnlyLooksRightIsFetchedAgain() throws {
        let scratch = try Scratch()
        let new = [UInt8](pseudoRandomData(20 * 2048, seed: 140))
        var old = new
        // Block 10 changed so that zsync's rolling sum b (all a 2-byte record keeps) stays the same:
        // byte 0 weighs 2048 in b, byte 1024 weighs 1024.
        let start = 10 * 2048
        old[start] = 100
        old[start + 1024] = 100
        var target = new
        target[start] = 101
        target[start + 1024] = 98
        let maker = ZsyncMaker(length: target.count)
        target.withUnsafeBytes { maker.add($0.baseAddress!, count: $0.count) }
        let control = maker.finish(filename: "f.bin", mtime: nil, url: "f.bin", sha256: nil)
        #expect(control.rsumBytes == 2 && control.sequenceMatches == 2)
        try scratch.write("pub/f.bin", Data(target))
        try scratch.write("pub/f.bin.zsync", Data(control.serialized()))
        try scratch.write("old.bin", Data(old))
        let server = try TestServer.fault(root: scratch.file("pub"), mode: "normal")
        let result = try ProgramRunner.run("slicesync", ["\(server.base)/f.bin.zsync",
                                                         "--alike", scratch.file("old.bin"),
                                                         "-o", scratch.file("f.bin"), "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try scratch.read("f.bin") == Data(target))
        let report = try JSONDecoder().decode(SyncReport.self, from: Data(result.stdout.utf8))
        #expect(report.repairedSlices == 1 && report.bytesFromServer <= 2 * 2048, "\(result.stderr)")
    }

    /// A broken control file is exit status 3 with a message that names the problem; nothing is written.
    @Test(arguments: [
        ("garbage", Data("<html>no</html>\n\nmore".utf8), "zsync control file"),
        ("short records", Data("zsync: 0.6.2\nBlocksize: 2048\nLength: 5000\n\(sha)\n\nxyz".utf8),
         "block records"),
        ("unknown header", Data("zsync: 0.6.2\nBlocksize: 2048\nLength: 1\nFancy: yes\n\(sha)\n\n".utf8),
         "Fancy"),
    ])
    func malformedControlFilesChangeNothing(label: String, content: Data, words: String) throws {
        let scenario = try ZsyncScenario()
        try scenario.scratch.write("pub/releases/v2/bad.zsync", content)
        try scenario.scratch.write("out/bad", Data("precious".utf8))
        let server = try TestServer.fault(root: scenario.scratch.file("pub"), mode: "normal")
        let result = try ProgramRunner.run("slicesync", ["\(server.base)/releases/v2/bad.zsync",
                                                         "-o", scenario.scratch.file("out/bad")])
        #expect(result.status == 3, "\(label): \(result.stderr)")
        #expect(result.stderr.contains(words), "\(label): \(result.stderr)")
        #expect(try scenario.scratch.read("out/bad") == Data("precious".utf8))
        #expect(try FileManager.default.contentsOfDirectory(atPath: scenario.scratch.file("out")) == ["bad"])
    }

    /// `shash --zsync` writes control files that zsync 0.6.2's own client rebuilds from (served by nginx),
    /// byte for byte what zsyncmake writes for the same file but for the SHA-256 behind `Safe:`.
    @Test func zsyncRebuildsFromTheControlFilesShashWrites() throws {
        let scenario = try ZsyncScenario()
        let pub = scenario.scratch.file("pub")
        let signed = try ProgramRunner.run("shash", ["-q", "--zsync", pub])
        #expect(signed.status == 0, "\(signed.stderr)")
        let server = try TestServer.nginx(root: pub, scratch: scenario.scratch.file("nginx"))
        for item in scenario.items {
            let ours = try scenario.scratch.read("pub/.slicesync/releases/v2/\(item.name).zsync")
            let theirs = try scenario.scratch.read("pub/releases/v2/\(item.name).zsync")
            let text = String(decoding: ours.prefix(600), as: UTF8.self)
            #expect(text.contains("URL: ../../../releases/v2/\(item.name)\n"))
            #expect(text.contains("Safe: File-Hash\nFile-Hash: SHA-256:"))
            // The same header facts and the same block records as zsyncmake.
            let parsedOurs = try ZsyncControl.parse([UInt8](ours))
            let parsedTheirs = try ZsyncControl.parse([UInt8](theirs))
            #expect(parsedOurs.records == parsedTheirs.records && parsedOurs.sha1 == parsedTheirs.sha1)
            #expect(parsedOurs.blockSize == parsedTheirs.blockSize && parsedOurs.rsumBytes == parsedTheirs.rsumBytes)
            #expect(parsedOurs.sequenceMatches == parsedTheirs.sequenceMatches)
            #expect(parsedOurs.strongBytes == parsedTheirs.strongBytes && parsedOurs.mtime == parsedTheirs.mtime)

            let output = scenario.scratch.file("out/zsync-" + item.name)
            let zsync = try ProgramRunner.run("/usr/bin/zsync", [
                "-q", "-i", scenario.scratch.file("client/" + item.name), "-o", output,
                "\(server.base)/.slicesync/releases/v2/\(item.name).zsync",
            ])
            #expect(zsync.status == 0, "zsync \(item.name): \(zsync.stderr)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: output)) == item.new, "zsync \(item.name)")

            let ourClient = try scenario.sync("\(server.base)/.slicesync/releases/v2/\(item.name).zsync", item.name)
            #expect(ourClient.status == 0, "\(ourClient.stderr)")
            #expect(try scenario.scratch.read("out/" + item.name) == item.new)
            // Our control files carry a SHA-256, which the client checks rather than the SHA-1.
            #expect(try scenario.report(ourClient).hash.hasPrefix("sha256:"))
        }
        // Removing a file removes its control file on the next run; renaming moves it.
        try FileManager.default.removeItem(atPath: scenario.scratch.file("pub/releases/v2/appended.bin"))
        #expect(try ProgramRunner.run("shash", ["-q", "--zsync", pub]).status == 0)
        #expect(!scenario.scratch.exists("pub/.slicesync/releases/v2/appended.bin.zsync"))
        #expect(scenario.scratch.exists("pub/.slicesync/releases/v2/edited.img.zsync"))
    }
}
