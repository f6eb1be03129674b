import Foundation
import SliceSync
import Testing
import TestSupport

/// An S3-compatible endpoint with the bucket `bkt`, and what the tests ask of it through boto3.
final class S3Endpoint {
    let server: TestServer
    let kind: String
    let data: String
    let scratch: Scratch

    init(_ kind: String, scratch: Scratch) throws {
        self.kind = kind
        self.scratch = scratch
        data = scratch.file("endpoint-data")
        server = try TestServer.s3Endpoint(kind: kind, data: data, bucket: "bkt")
    }

    var environment: [String: String] {
        ["AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1",
         "AWS_ENDPOINT_URL": server.base, "AWS_CONFIG_FILE": "/nonexistent",
         "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
         "XDG_CACHE_HOME": scratch.file("cache")]
    }

    func tool(_ arguments: [String]) throws -> String {
        let result = try ProgramRunner.run("/usr/bin/env", ["python3", TestServer.serversDirectory
            .appendingPathComponent("s3tool.py").path, String(server.port)] + arguments)
        precondition(result.status == 0, result.stderr)
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func object(_ key: String) throws -> Data {
        let out = scratch.file("fetched-" + UUID().uuidString)
        _ = try tool(["get", "bkt", key, out])
        defer { try? FileManager.default.removeItem(atPath: out) }
        return try Data(contentsOf: URL(fileURLWithPath: out))
    }

    func put(_ key: String, _ data: Data) throws {
        let path = try scratch.write("put-" + UUID().uuidString, data)
        _ = try tool(["put", "bkt", key, path])
    }

    var uploadsInProgress: Int { (try? Int(tool(["uploads", "bkt", data]))) ?? -1 }

    func keys() throws -> [String] {
        try JSONDecoder().decode([String].self, from: Data(tool(["keys", "bkt"]).utf8))
    }

    func push(_ arguments: [String], extra: [String: String] = [:]) throws -> ProgramRunner.Result {
        try ProgramRunner.run("slicesync", ["push", "--json"] + arguments,
                              environment: environment.merging(extra) { $1 })
    }

    static func report(_ result: ProgramRunner.Result) throws -> PushReport {
        try JSONDecoder().decode(PushReport.self, from: Data(result.stdout.utf8))
    }
}

/// Two versions of a 24 MiB image: an edit of 100 bytes at 2 MiB and 1,000 bytes inserted at 18 MiB.
struct ImagePair {
    let old: Data
    let new: Data

    init(seed: UInt64) {
        old = pseudoRandomData(24 << 20, seed: seed)
        var bytes = [UInt8](old)
        for index in (2 << 20)..<((2 << 20) + 100) { bytes[index] ^= 0x5A }
        bytes.insert(contentsOf: [UInt8](pseudoRandomData(1000, seed: seed + 1)), at: 18 << 20)
        new = Data(bytes)
    }
}

@Suite("Pushing to S3, end to end", .serialized)
struct PushEndToEndTests {
    static let endpoints = ["moto", "localbucket"]

    @Test(arguments: endpoints) func uploadsOnlyWhatChanged(kind: String) throws {
        let scratch = try Scratch()
        let endpoint = try S3Endpoint(kind, scratch: scratch)
        let pair = ImagePair(seed: 300)
        let first = try endpoint.push([try scratch.write("v1/disk.img", pair.old), "s3://bkt/images/disk.img"])
        try #require(first.status == 0, "\(first.stderr)")
        let firstReport = try S3Endpoint.report(first)
        #expect(firstReport.copiedBytes == 0 && firstReport.uploadedBytes == pair.old.count)

        let second = try endpoint.push([try scratch.write("v2/disk.img", pair.new), "s3://bkt/images/disk.img"])
        try #require(second.status == 0, "\(second.stderr)")
        let report = try S3Endpoint.report(second)
        #expect(report.copiedBytes > 10 << 20, "\(report)")
        #expect(report.uploadedBytes + report.copiedBytes == pair.new.count)
        #expect(report.copyParts >= 1)
        #expect(try endpoint.object("images/disk.img") == pair.new)
        #expect(endpoint.uploadsInProgress == 0)
        // The signature names the ETag of the object it describes, and the client rebuilds from it.
        if kind == "moto" {
            // localbucket keeps no metadata: its pushes check samples of the old object instead.
            let metadata = try endpoint.tool(["meta", "bkt", "images/.slicesync/disk.img.slicesync"])
            #expect(metadata.contains("slicesync-etag"))
        }
        let download = try ProgramRunner.run("slicesync", ["s3://bkt/images/disk.img", "-o", scratch.file("out.img"),
            "--alike", scratch.file("v1/disk.img")], environment: endpoint.environment)
        #expect(download.status == 0, "\(download.stderr)")
        #expect(try scratch.read("out.img") == pair.new)

        let again = try endpoint.push([scratch.file("v2/disk.img"), "s3://bkt/images/disk.img"])
        #expect(try S3Endpoint.report(again).outcome == "unchanged")
    }

    @Test(arguments: endpoints) func aChangeOfTheObjectDuringThePushPublishesNothing(kind: String) async throws {
        let scratch = try Scratch()
        let endpoint = try S3Endpoint(kind, scratch: scratch)
        let pair = ImagePair(seed: 310)
        #expect(try endpoint.push([try scratch.write("v1.img", pair.old), "s3://bkt/disk.img"]).status == 0)
        let third = pseudoRandomData(24 << 20, seed: 312)
        let pause = scratch.file("pause")
        let newPath = try scratch.write("v2.img", pair.new)
        let environment = endpoint.environment.merging(["SLICESYNC_PAUSE_AT": "push-upload-started",
                                                        "SLICESYNC_PAUSE_FILE": pause]) { $1 }
        let running = Task.detached {
            try ProgramRunner.run("slicesync", ["push", newPath, "s3://bkt/disk.img"], environment: environment)
        }
        try #require(eventually(within: 60) { FileManager.default.fileExists(atPath: pause + ".reached") })
        // Someone else publishes meanwhile.
        try endpoint.put("disk.img", third)
        FileManager.default.createFile(atPath: pause, contents: nil)
        let result = try await running.value
        #expect(result.status == 4, "\(result.stderr)")
        #expect(result.stderr.contains("changed"), "\(result.stderr)")
        #expect(try endpoint.object("disk.img") == third)
        #expect(endpoint.uploadsInProgress == 0)
    }

    @Test(arguments: endpoints) func aKilledPushIsResumed(kind: String) throws {
        let scratch = try Scratch()
        let endpoint = try S3Endpoint(kind, scratch: scratch)
        let pair = ImagePair(seed: 320)
        #expect(try endpoint.push([try scratch.write("v1.img", pair.old), "s3://bkt/disk.img"]).status == 0)
        let newPath = try scratch.write("v2.img", pair.new)
        let killed = try endpoint.push(["-j", "1", newPath, "s3://bkt/disk.img"],
                                       extra: ["SLICESYNC_CRASH_AT": "push-part-done"])
        #expect(killed.status == 137)
        #expect(try endpoint.object("disk.img") == pair.old)
        #expect(endpoint.uploadsInProgress == 1)
        let resumed = try endpoint.push([newPath, "s3://bkt/disk.img"])
        try #require(resumed.status == 0, "\(resumed.stderr)")
        #expect(try S3Endpoint.report(resumed).files.first?.outcome.resumedParts == 1)
        #expect(try endpoint.object("disk.img") == pair.new)
        #expect(endpoint.uploadsInProgress == 0)
    }

    @Test(arguments: endpoints) func aTreeIsPushedMirroredAndPrunedWithinLimits(kind: String) throws {
        let scratch = try Scratch()
        let endpoint = try S3Endpoint(kind, scratch: scratch)
        let pair = ImagePair(seed: 330)
        try scratch.write("tree/images/big.img", pair.old)
        try scratch.write("tree/docs/a.txt", pseudoRandomData(3000, seed: 331))
        try scratch.write("tree/docs/b.txt", pseudoRandomData(5000, seed: 332))
        try scratch.write("tree/docs/sp ace+plus é.txt", pseudoRandomData(700, seed: 333))
        try scratch.write("tree/run.sh", Data("#!/bin/sh\necho hi\n".utf8))
        chmod(scratch.file("tree/run.sh"), 0o755)
        symlink("images/big.img", scratch.file("tree/latest"))
        let first = try endpoint.push([scratch.file("tree"), "s3://bkt/rel/"])
        try #require(first.status == 0, "\(first.stderr)")
        #expect(try S3Endpoint.report(first).changedFiles == 5)
        let mirror = { () throws -> ProgramRunner.Result in
            try ProgramRunner.run("slicesync", ["s3://bkt/rel/", "-o", scratch.file("mirror"), "--delete"],
                                  environment: endpoint.environment)
        }
        let mirrored = try mirror()
        #expect(mirrored.status == 0, "\(mirrored.stderr)")
        #expect(try MirrorScenario.snapshot(scratch.file("mirror")) == MirrorScenario.snapshot(scratch.file("tree")))

        // An edit, a rename, a deletion and a new file.
        try scratch.write("tree/images/big.img", pair.new)
        try FileManager.default.moveItem(atPath: scratch.file("tree/docs/a.txt"),
                                         toPath: scratch.file("tree/docs/c.txt"))
        try FileManager.default.removeItem(atPath: scratch.file("tree/docs/b.txt"))
        try scratch.write("tree/new.txt", Data("new".utf8))
        let second = try endpoint.push(["--delete", scratch.file("tree"), "s3://bkt/rel/"])
        try #require(second.status == 0, "\(second.stderr)")
        let report = try S3Endpoint.report(second)
        #expect(report.files.first { $0.path == "docs/c.txt" }?.outcome.method == "copy", "\(report.files)")
        #expect(report.files.first { $0.path == "images/big.img" }?.outcome.copiedBytes ?? 0 > 10 << 20)
        #expect(report.files.first { $0.path == "run.sh" }?.outcome.method == "unchanged")
        #expect(report.deletedObjects == 4, "a.txt, b.txt and their signatures")
        #expect(try !endpoint.keys().contains("rel/docs/a.txt"))
        #expect(try mirror().status == 0)
        #expect(try MirrorScenario.snapshot(scratch.file("mirror")) == MirrorScenario.snapshot(scratch.file("tree")))
        #expect(endpoint.uploadsInProgress == 0)

        // Deletes stay within bounds: an empty directory, or too many objects, changes nothing.
        try FileManager.default.createDirectory(atPath: scratch.file("empty"), withIntermediateDirectories: true)
        let keys = try endpoint.keys()
        let emptied = try endpoint.push(["--delete", scratch.file("empty"), "s3://bkt/rel/"])
        #expect(emptied.status == 2 && emptied.stderr.contains("nothing was changed"), "\(emptied.stderr)")
        try FileManager.default.removeItem(atPath: scratch.file("tree/new.txt"))
        let bounded = try endpoint.push(["--delete", "--max-delete", "1", scratch.file("tree"), "s3://bkt/rel/"])
        #expect(bounded.status == 2 && bounded.stderr.contains("--max-delete"), "\(bounded.stderr)")
        #expect(try endpoint.keys() == keys)
    }

    /// A tree signed with `shash --zsync` keeps its control files on S3, and `--delete` leaves them.
    @Test func zsyncControlFilesArePublishedWithTheTree() throws {
        let scratch = try Scratch()
        let endpoint = try S3Endpoint("moto", scratch: scratch)
        try scratch.write("tree/a/file.bin", pseudoRandomData(300_000, seed: 350))
        let signed = try ProgramRunner.run("shash", ["--zsync", scratch.file("tree")])
        try #require(signed.status == 0, "\(signed.stderr)")
        #expect(try endpoint.push([scratch.file("tree"), "s3://bkt/z/"]).status == 0)
        #expect(try endpoint.keys().contains("z/.slicesync/a/file.bin.zsync"))
        #expect(scratch.exists("tree/.slicesync/a/file.bin.zsync"))
        let again = try endpoint.push(["--delete", scratch.file("tree"), "s3://bkt/z/"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try S3Endpoint.report(again).deletedObjects == 0, "\(again.stdout)")
        #expect(try endpoint.keys().contains("z/.slicesync/a/file.bin.zsync"))
    }

    @Test func aPrivateObjectIsReportedAsDenied() throws {
        let scratch = try Scratch()
        let endpoint = try S3Endpoint("moto", scratch: scratch)
        try endpoint.put("private.bin", pseudoRandomData(1000, seed: 340))
        let anonymous = try ProgramRunner.run("slicesync", [endpoint.server.base + "/bkt/private.bin", "-o",
            scratch.file("out")])
        #expect(anonymous.status == 4, "\(anonymous.stderr)")
        #expect(anonymous.stderr.contains("access denied") && anonymous.stderr.contains("s3://"), "\(anonymous.stderr)")
    }
}
