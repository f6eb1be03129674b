import Foundation
import Logging
import Testing
@testable import SliceSync

/// Publishes files on a fake server the way `shash` lays them out, and syncs them.
struct SyncHarness {
    let server: FakeServer
    let dir: TemporaryDirectory
    let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    init(_ behaviour: FakeServer.Behaviour = .nginx) throws {
        server = FakeServer(behaviour)
        dir = try TemporaryDirectory()
    }

    /// Puts `bytes` at /pub/NAME with its signature at /pub/.slicesync/NAME.slicesync.
    @discardableResult
    func publish(_ name: String, _ bytes: [UInt8], version: SignatureVersion = .v2, slice: Int? = nil,
        block: Int? = nil, sketch: Bool = true) throws -> String {
        var parameters = try SigningParameters(version: version, sliceSize: slice, blockSize: block)
        parameters.sketch = sketch
        let signature = try SignatureBuilder(parameters: parameters, pool: nil).signature(of: bytes, filename: name)
        server.put("/pub/\(name)", bytes)
        server.put("/pub/.slicesync/\(name).slicesync", signature.serialized())
        return server.url("/pub/\(name)")
    }

    func sync(_ url: String, destination: String = "out.bin", alikes: [String] = [],
        configure: (inout SyncOptions) -> Void = { _ in }) async throws -> SyncReport {
        var options = SyncOptions(url: url)
        options.destination = dir.file(destination)
        options.alikes = alikes.map { dir.file($0) }
        options.threads = 2
        configure(&options)
        return try await SyncSession(options: options, exchange: server, logger: logger).run()
    }

    func read(_ name: String) throws -> [UInt8] {
        try SystemFile.openForReading(dir.file(name)).readAll(limit: 1 << 30)
    }
}

@Suite("Syncing: matching at any offset")
struct SyncMatchingTests {
    static let size = 3 * 1024 * 1024 + 777
    /// What the sketch table resolves a changed slice to: two blocks of the default 2 KiB.
    static let sketchUnit = 4096

    @discardableResult
    func check(alike: [UInt8], target: [UInt8], maxFromServer: Int, version: SignatureVersion = .v2, slice: Int? = nil,
        sketch: Bool = true) async throws -> SyncReport {
        let harness = try SyncHarness()
        let url = try harness.publish("f.bin", target, version: version, slice: slice, sketch: sketch)
        try harness.dir.write("old.bin", alike)
        let report = try await harness.sync(url, alikes: ["old.bin"])
        #expect(try harness.read("out.bin") == target)
        #expect(report.outcome == "updated")
        #expect(report.bytesFromServer <= maxFromServer, "fetched \(report.bytesFromServer) bytes")
        #expect(report.bytesReused + report.bytesFromServer == target.count || report.fullDownload)
        return report
    }

    @Test func scatteredInPlaceEdits() async throws {
        let old = randomBytes(Self.size, seed: 1)
        var new = old
        for k in 0..<10 { for i in 0..<100 { new[k * 300_001 + 5000 + i] ^= 0xA5 } }
        // The sketch table places every changed unit: the signature's first bytes, then the data.
        let report = try await check(alike: old, target: new, maxFromServer: 10 * 2 * Self.sketchUnit)
        #expect(report.requests == 2)
        #expect(report.signatureBytes <= LoadedSignature.firstRequestBytes(localLength: old.count, localStart: []))
    }

    @Test func insertionsAndDeletionsShiftEverything() async throws {
        let old = randomBytes(Self.size, seed: 2)
        var new = old
        new.insert(contentsOf: randomBytes(777, seed: 3), at: 1_000_000)
        new.removeSubrange(2_000_000..<2_000_500)
        new.insert(contentsOf: [1, 2, 3], at: 17)
        let report = try await check(alike: old, target: new, maxFromServer: 3 * 2 * Self.sketchUnit + 1000)
        #expect(report.requests == 2)
    }

    @Test func signaturesWithoutASketchFetchTheFineTablesOfChangedSlices() async throws {
        // Large enough that the changed slices' fine tables are not in the first 16 KiB.
        let old = randomBytes(8_000_000, seed: 2)
        var new = old
        new.insert(contentsOf: randomBytes(777, seed: 3), at: 5_000_000)
        for i in 0..<100 { new[7_000_000 + i] ^= 0x5A }
        let report = try await check(alike: old, target: new, maxFromServer: 2 * 2 * 2048 + 1000, sketch: false)
        #expect(report.requests == 3)
    }

    @Test func aChangedSliceWhoseContentMovedFarComesFromItsFineTable() async throws {
        // A slice's old content is not where its neighbours point (100 KB moved 1 MB away): the sketch
        // cannot place it, the fine tables find it, and only a unit at each seam and edit is fetched.
        // Large enough that the fine tables are not in the first 16 KiB.
        let old = randomBytes(8_000_000, seed: 21)
        let moved = Array(old[5_300_000..<5_400_000])
        var new = Array(old[..<5_300_000]) + Array(old[5_400_000..<6_400_000]) + moved + Array(old[6_400_000...])
        for i in 0..<100 { new[7_000_000 + i] ^= 0x33 }
        let report = try await check(alike: old, target: new, maxFromServer: 4 * Self.sketchUnit)
        #expect(report.requests == 3)
    }

    @Test func editsThatMoveNothingDoNotStopTheSketchBeforeAnEditThatDoes() async throws {
        // In one slice: three bytes changed in place, units apart, then 100 bytes inserted. The sketch's
        // test where the slice before leads goes on past the in-place edits; the one where the slice
        // after starts takes what follows the insertion. About the units of the four edits are fetched.
        let old = randomBytes(Self.size, seed: 24)
        var new = old
        for position in [530_000, 545_000, 560_000] { new[position] ^= 0x5A }
        new.insert(contentsOf: randomBytes(100, seed: 25), at: 640_000)
        let report = try await check(alike: old, target: new, maxFromServer: 6 * Self.sketchUnit)
        #expect(report.requests <= 3)
    }

    @Test func aUnitThatPassesTheSketchByChanceIsRepaired() async throws {
        // A hostile or unlucky sketch entry makes one changed unit pass: the whole-file hash fails, the
        // slice records find the slice, and it is fetched again. The result is still exact.
        let harness = try SyncHarness()
        let old = randomBytes(1_000_000, seed: 22)
        var new = old
        new[600_000] ^= 1
        new[610_000] ^= 1
        let url = try harness.publish("f.bin", new)
        let path = "/pub/.slicesync/f.bin.slicesync"
        guard case .v2(var signature) = try Signature.parse(harness.server.state.withLock { $0.files[path]! }) else {
            Issue.record("expected format 2")
            return
        }
        let unit = 610_000 / Self.sketchUnit
        signature.sketch[unit] = old.withUnsafeBytes {
            SketchTable.entry($0.baseAddress! + unit * Self.sketchUnit, length: Self.sketchUnit, blockSize: 2048)
        }
        harness.server.put(path, signature.serialized())
        try harness.dir.write("old.bin", old)
        let report = try await harness.sync(url, alikes: ["old.bin"])
        #expect(try harness.read("out.bin") == new)
        #expect(report.repairedSlices == 1)
        #expect(report.requests == 3)
    }

    @Test func aSliceTakenOnItsWeakHashInARunIsRepairedWhenItDiffers() async throws {
        // Runs of whole slices go on on the weak hash alone, RK64's high half, which a change of a slice's
        // last byte does not move. Such a slice is taken from the old file; the whole-file hash fails, the
        // slice records find it, and it is fetched again. The result is still exact.
        let harness = try SyncHarness()
        let old = randomBytes(1_000_000, seed: 23)
        var new = old
        let slice = 9
        new[(slice + 1) * 65536 - 1] ^= 1
        let weak = { (bytes: [UInt8]) in
            bytes.withUnsafeBytes { RollingHash.weak(RollingHash.hash($0.baseAddress! + slice * 65536, count: 65536)) }
        }
        #expect(weak(old) == weak(new))
        let url = try harness.publish("f.bin", new, slice: 65536)
        try harness.dir.write("old.bin", old)
        let report = try await harness.sync(url, alikes: ["old.bin"])
        #expect(try harness.read("out.bin") == new)
        #expect(report.repairedSlices == 1)
    }

    @Test func appendedData() async throws {
        let old = randomBytes(Self.size, seed: 4)
        let new = old + randomBytes(300_000, seed: 5)
        try await check(alike: old, target: new, maxFromServer: 300_000 + 4096)
    }

    @Test func truncatedToAPrefix() async throws {
        let old = randomBytes(Self.size, seed: 6)
        try await check(alike: old, target: Array(old.prefix(1_234_567)), maxFromServer: 0)
    }

    @Test func reorderedHalves() async throws {
        let old = randomBytes(2 * 1024 * 1024, seed: 7)
        let new = Array(old[1_048_576...]) + Array(old[..<1_048_576])
        try await check(alike: old, target: new, maxFromServer: 0)
    }

    @Test func formatOneSlicesAreFoundAtAnyOffset() async throws {
        let old = randomBytes(Self.size, seed: 8)
        var new = old
        new.insert(contentsOf: randomBytes(33, seed: 9), at: 500_000)
        // Slices of 64 KiB: one slice around the insertion (plus the short tail) comes from the server.
        try await check(alike: old, target: new, maxFromServer: 2 * 65536 + 65536, version: .v1, slice: 65536)
    }

    @Test(arguments: [0, 1, 2047, 2048, 2049, 262_143, 262_144, 262_145, 524_288])
    func sizesAroundBoundaries(length: Int) async throws {
        let target = randomBytes(length, seed: UInt64(length) + 10)
        var alike = target
        if length > 10 { alike[length / 2] ^= 1 }
        try await check(alike: alike, target: target, maxFromServer: length > 10 ? 2 * 2048 + 2048 : length)
    }

    @Test func severalAlikeFilesEachContributeTheirPart() async throws {
        let harness = try SyncHarness()
        let a = randomBytes(1_000_000, seed: 11)
        let b = randomBytes(1_000_000, seed: 12)
        let target = Array(a[0..<600_000]) + Array(b[300_000..<900_000])
        let url = try harness.publish("f.bin", target)
        try harness.dir.write("a", a)
        try harness.dir.write("b", b)
        let report = try await harness.sync(url, alikes: ["a", "b"])
        #expect(try harness.read("out.bin") == target)
        #expect(report.bytesFromServer <= 2 * Self.sketchUnit)
        #expect(report.alikeFiles.count == 2)
    }

    @Test func zerosNeedNoDownloadAndZeroSlicesNoFineTable() async throws {
        let harness = try SyncHarness()
        let a = randomBytes(600_000, seed: 31)
        let b = randomBytes(600_000, seed: 32)
        // 6 MiB of zeros: 24 whole zero slices, and zero blocks in the changed slices around them.
        let target = a + [UInt8](repeating: 0, count: (6 << 20) + 4321) + b
        let url = try harness.publish("f.bin", target)
        try harness.dir.write("old", a + b)
        let report = try await harness.sync(url, alikes: ["old"])
        #expect(try harness.read("out.bin") == target)
        // The slices around the edges of the zeros are changed; their blocks of zeros are not fetched.
        #expect(report.bytesFromServer <= 2 * 2048)
        // Beyond the first request, fine tables only for those edge slices (128 records of 12 bytes
        // each), not for the zero slices.
        let signature = harness.server.state.withLock { $0.files["/pub/.slicesync/f.bin.slicesync"]! }
        #expect(signature.count - LoadedSignature.prefixBytes > 4 * 3 * 128 * 12)
        #expect(report.signatureBytes <= LoadedSignature.prefixBytes + 3 * 128 * 12)
    }

    @Test(arguments: [SignatureVersion.v1, .v2])
    func aPieceThatRepeatsIsDownloadedOnce(version: SignatureVersion) async throws {
        let harness = try SyncHarness()
        let unit = version == .v1 ? 16_384 : 2048
        let old = randomBytes(64 * unit, seed: 33)
        let piece = randomBytes(unit, seed: 34)
        var new = old
        for k in stride(from: 3, to: 60, by: 4) { new.replaceSubrange((k * unit)..<((k + 1) * unit), with: piece) }
        let url = try harness.publish("f.bin", new, version: version, slice: version == .v1 ? unit : 8 * unit)
        try harness.dir.write("old", old)
        let report = try await harness.sync(url, alikes: ["old"])
        #expect(try harness.read("out.bin") == new)
        #expect(report.bytesFromServer == unit)
    }

    @Test func noAlikeFileMeansAPlainVerifiedDownload() async throws {
        let harness = try SyncHarness()
        let target = randomBytes(700_000, seed: 13)
        let url = try harness.publish("f.bin", target)
        let report = try await harness.sync(url)
        #expect(try harness.read("out.bin") == target)
        #expect(report.fullDownload)
        #expect(report.bytesFromServer == target.count)
    }

    @Test(arguments: [2_000_000, 6_000_000])
    func unrelatedContentCostsLittleMoreThanTheFile(length: Int) async throws {
        let harness = try SyncHarness()
        let target = randomBytes(length, seed: 14)
        let url = try harness.publish("f.bin", target)
        try harness.dir.write("old", randomBytes(length, seed: 15))
        let report = try await harness.sync(url, alikes: ["old"])
        #expect(try harness.read("out.bin") == target)
        #expect(Double(report.bytesDownloaded) <= Double(target.count) * 1.01)
        // The fine tables in the signature's first bytes show that nothing is shared: no request for
        // the others (6 MB has a signature of 35 KiB, the first request brings 16 KiB).
        #expect(report.requests == 2)
        #expect(report.signatureBytes <= LoadedSignature.prefixBytes)
    }

    @Test func compressedContentSharingAHeaderComesWholeInTwoRequests() async throws {
        // A new .tar.gz shares its first bytes (the gzip header) and its last with the old one and
        // nothing else: a few blocks are not worth the request that would fetch the other fine tables.
        let harness = try SyncHarness()
        let old = randomBytes(6_000_000, seed: 17)
        let target = Array(old.prefix(4096)) + randomBytes(6_000_000 - 8192, seed: 18) + Array(old.suffix(4096))
        let url = try harness.publish("f.bin", target)
        try harness.dir.write("old", old)
        let report = try await harness.sync(url, alikes: ["old"])
        #expect(try harness.read("out.bin") == target)
        #expect(report.requests == 2)
        #expect(report.fullDownload)
        #expect(report.signatureBytes <= LoadedSignature.firstRequestBytes(localLength: old.count,
            localStart: Array(old.prefix(1024))))
    }

    @Test func everySliceChangedStillReusesItsBlocks() async throws {
        let harness = try SyncHarness()
        let old = randomBytes(6_000_000, seed: 16)
        var new = old
        for slice in stride(from: 1000, to: new.count, by: 262_144) { new[slice] ^= 0xFF }
        let url = try harness.publish("f.bin", new)
        try harness.dir.write("old", old)
        let report = try await harness.sync(url, alikes: ["old"])
        #expect(try harness.read("out.bin") == new)
        #expect(report.bytesFromServer <= 23 * 2048)
    }

    /// Three slices in four changed (a tarball whose members all have new times): whole slices are
    /// looked for in a sample only, then every block is found by the fine tables.
    @Test func aFileChangedEverywhereIsRebuiltFromItsBlocks() async throws {
        let harness = try SyncHarness()
        let slice = 8192
        let old = randomBytes(400 * slice, seed: 17)
        var new = old
        var edits = 0
        for index in 0..<400 where index % 4 != 0 {
            new[index * slice + 1000] ^= 0xFF
            edits += 1
        }
        new.insert(contentsOf: randomBytes(300, seed: 18), at: 200 * slice + 5)
        let url = try harness.publish("f.bin", new, slice: slice, block: 512)
        try harness.dir.write("old", old)
        let report = try await harness.sync(url, alikes: ["old"])
        #expect(try harness.read("out.bin") == new)
        // The changed block of each edit, and the inserted bytes with the blocks they touch.
        #expect(report.bytesFromServer <= (edits + 2) * 512 + 300, "fetched \(report.bytesFromServer) bytes")
    }

    @Test func updatesInPlaceAndReportsUnchangedFiles() async throws {
        let harness = try SyncHarness()
        let old = randomBytes(1_500_000, seed: 16)
        var new = old
        new[1000] ^= 1
        let url = try harness.publish("f.bin", new)
        try harness.dir.write("f.bin", old)
        let first = try await harness.sync(url, destination: "f.bin")
        #expect(first.outcome == "updated")
        #expect(try harness.read("f.bin") == new)
        let second = try await harness.sync(url, destination: "f.bin")
        #expect(second.outcome == "unchanged")
        #expect(harness.dir.allFiles() == ["f.bin"])
    }

    @Test func dryRunChangesNothing() async throws {
        let harness = try SyncHarness()
        let old = randomBytes(1_000_000, seed: 17)
        var new = old
        new[500_000] ^= 1
        let url = try harness.publish("f.bin", new)
        try harness.dir.write("f.bin", old)
        let report = try await harness.sync(url, destination: "f.bin") { $0.dryRun = true }
        #expect(report.outcome == "dry-run")
        #expect(report.bytesFromServer == SyncMatchingTests.sketchUnit)
        #expect(try harness.read("f.bin") == old)
        #expect(harness.dir.allFiles() == ["f.bin"])
    }
}

@Suite("Syncing: servers and faults")
struct SyncServerBehaviourTests {
    func scenario(_ behaviour: FakeServer.Behaviour,
        configure: (FakeServer) -> Void = { _ in }) async throws -> (SyncReport, SyncHarness, [UInt8]) {
        let harness = try SyncHarness(behaviour)
        let old = randomBytes(2_500_000, seed: 20)
        var new = old
        for k in 0..<8 { new[k * 300_000 + 100] ^= 0xFF }
        let url = try harness.publish("f.bin", new)
        try harness.dir.write("old", old)
        configure(harness.server)
        let report = try await harness.sync(url, alikes: ["old"])
        #expect(try harness.read("out.bin") == new)
        return (report, harness, new)
    }

    @Test(arguments: [FakeServer.Behaviour.nginx, .s3, .multiRange501, .firstRangeOnly])
    func everyRangeBehaviourEndsWithTheRightFile(behaviour: FakeServer.Behaviour) async throws {
        let (report, _, _) = try await scenario(behaviour)
        #expect(!report.fullDownload)
        #expect(report.bytesFromServer <= 8 * SyncMatchingTests.sketchUnit)
    }

    @Test func aServerThatIgnoresRangesGivesAFullDownload() async throws {
        let (report, _, new) = try await scenario(.noRanges)
        #expect(report.fullDownload)
        #expect(report.bytesFromServer == new.count)
    }

    @Test func multiRangeRequestsAreUsedWhereTheServerAllows() async throws {
        let (report, harness, _) = try await scenario(.nginx)
        let multi = harness.server.requests.filter { $0.headers.contains { $0.0 == "Range" && $0.1.contains(",") } }
        #expect(!multi.isEmpty)
        #expect(report.requests <= 6)
    }

    @Test func truncatedBodiesAndResetsAreRetried() async throws {
        let (report, _, _) = try await scenario(.nginx) { server in
            server.state.withLock { $0.truncateNext = 2; $0.resetNext = 1 }
        }
        #expect(report.outcome == "updated")
    }

    @Test func corruptedRangesAreCaughtAndFetchedAgain() async throws {
        let (report, _, _) = try await scenario(.nginx) { server in
            server.state.withLock { $0.corruptNext = 1 }
        }
        #expect(report.outcome == "updated")
    }

    @Test func aFileThatChangesMidDownloadIsNotMixed() async throws {
        let harness = try SyncHarness()
        let old = randomBytes(1_000_000, seed: 30)
        var new = old
        new[10] ^= 1
        let url = try harness.publish("f.bin", new)
        try harness.dir.write("out.bin", old)
        // The file changes after the first request to it; its signature still describes the old one.
        harness.server.state.withLock { $0.changeAfter = ("/pub/f.bin", 0, randomBytes(1_000_000, seed: 31)) }
        await #expect(throws: (any Error).self) { try await harness.sync(url) }
        #expect(try harness.read("out.bin") == old)
    }

    @Test func redirectsAreFollowedButNeverToPlainHTTPFromHTTPS() async throws {
        let harness = try SyncHarness()
        let target = randomBytes(10_000, seed: 40)
        try harness.publish("f.bin", target)
        harness.server.state.withLock { $0.redirects["/moved/f.bin"] = "/pub/f.bin" }
        let report = try await harness.sync(harness.server.url("/moved/f.bin")) {
            $0.signatureURL = harness.server.url("/pub/.slicesync/f.bin.slicesync")
        }
        #expect(report.url.hasSuffix("/pub/f.bin"))
        #expect(try harness.read("out.bin") == target)
    }

    @Test func aMissingSignatureNamesThePlacesTried() async throws {
        let harness = try SyncHarness()
        harness.server.put("/a/b/f.bin", [1, 2, 3])
        do {
            _ = try await harness.sync(harness.server.url("/a/b/f.bin"))
            Issue.record("expected an error")
        } catch let error as SignatureError {
            #expect(error.code == .notFound)
            #expect(error.message.contains("/a/b/.slicesync/f.bin.slicesync"))
            #expect(error.message.contains("/.slicesync/a/b/f.bin.slicesync"))
        }
    }

    @Test func aMalformedSignatureIsAClearErrorAndTheDestinationIsUntouched() async throws {
        let harness = try SyncHarness()
        harness.server.put("/pub/f.bin", [1, 2, 3])
        harness.server.put("/pub/.slicesync/f.bin.slicesync", Array("Version: 2\nFilename: ../x\n\n".utf8))
        try harness.dir.write("out.bin", [9])
        await #expect(throws: SignatureError.self) { try await harness.sync(harness.server.url("/pub/f.bin")) }
        #expect(try harness.read("out.bin") == [9])
    }

    @Test func interruptedWorkIsKeptAndReused() async throws {
        let harness = try SyncHarness()
        let old = randomBytes(2_000_000, seed: 50)
        var new = old
        for k in 0..<4 { new[k * 450_000 + 7] ^= 1 }
        let url = try harness.publish("f.bin", new)
        try harness.dir.write("old", old)
        // Every data request fails: the run gives up but keeps what it copied locally.
        harness.server.state.withLock { $0.resetDataNext = 1000 }
        await #expect(throws: TransportError.self) { try await harness.sync(url, alikes: ["old"]) }
        #expect(harness.dir.allFiles().contains("out.bin.slicesync.part"))
        #expect(!harness.dir.exists("out.bin"))
        // Next run, without the alike file: the partial file alone supplies everything but the edits.
        harness.server.state.withLock { $0.resetDataNext = 0 }
        try FileManager.default.removeItem(atPath: harness.dir.file("old"))
        let report = try await harness.sync(url)
        #expect(try harness.read("out.bin") == new)
        #expect(report.bytesFromServer <= 4 * SyncMatchingTests.sketchUnit)
        #expect(!harness.dir.exists("out.bin.slicesync.part"))
    }

    @Test func aSignatureURLGivenDirectlyNamesItsFile() throws {
        #expect(try SignatureLocator.fileURL(forSignature: "http://h/a/.slicesync/b/c.iso.slicesync")
            == "http://h/a/b/c.iso")
        #expect(try SignatureLocator.candidates(for: "https://h:8080/a/b/c.iso?x=1") == [
            "https://h:8080/a/b/.slicesync/c.iso.slicesync?x=1",
            "https://h:8080/a/.slicesync/b/c.iso.slicesync?x=1",
            "https://h:8080/.slicesync/a/b/c.iso.slicesync?x=1",
        ])
        #expect(throws: TransportError.self) { try SignatureLocator.candidates(for: "ftp://h/x") }
        #expect(try SignatureLocator.fileName(of: "http://h/a/my%20file.iso") == "my file.iso")
        #expect(throws: TransportError.self) { try SignatureLocator.fileName(of: "http://h/a/%2E%2E") }
    }
}

@Suite("Matching runs of slices")
struct MatcherRunTests {
    @Test func aRunOfMatchesReachingTheLastSliceEndsCleanly() throws {
        // Slices matched one after another up to the last: the scanner then tries "the next one",
        // which does not exist.
        let dir = try TemporaryDirectory()
        let data = randomBytes(8 * 4096, seed: 90)
        try dir.write("alike", data + randomBytes(3 * 4096, seed: 91))
        let parameters = try SigningParameters(version: .v2, sliceSize: 4096, blockSize: 1024)
        guard case .v2(let signature) = try SignatureBuilder(parameters: parameters, pool: nil).signature(of: data,
            filename: "f") else { return }
        let matcher = Matcher(paths: [dir.file("alike")], threads: 2, progress: ScanProgress(),
            logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() })
        let found = try matcher.matchSlices(signature.header, coarse: signature.coarse)
        #expect(found.allSatisfy { $0 != nil })
        let v1 = try SignatureBuilder(parameters: try SigningParameters(version: .v1, sliceSize: 4096),
            pool: nil).signature(of: data, filename: "f")
        guard case .v1(let old) = v1 else { return }
        #expect(try matcher.match(old).allSatisfy { $0 != nil })
    }
}
