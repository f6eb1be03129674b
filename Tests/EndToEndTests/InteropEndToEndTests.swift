import Foundation
import SliceSync
import Testing

/// A published tree of files with different sizes and edit patterns, signed with the real `shash`,
/// and a client directory with the previous version of each.
struct EditPatternTree {
    struct Case {
        var name: String
        var old: Data
        var new: Data
        /// Bytes of the new version found in no form in the old one, when most of it is found locally;
        /// nil when little or nothing is.
        var novelBytes: Int?
    }

    let scratch: Scratch
    let cases: [Case]
    var publishRoot: String { scratch.file("pub") }

    init() throws {
        scratch = try Scratch()
        func edited(_ base: Data, _ change: (inout [UInt8]) -> Void) -> Data {
            var bytes = [UInt8](base)
            change(&bytes)
            return Data(bytes)
        }
        let base = pseudoRandomData(4 << 20, seed: 11)
        let small = pseudoRandomData(2 << 20, seed: 12)
        cases = [
            Case(name: "scattered.img", old: base, new: edited(base) { bytes in
                for k in 0..<8 { bytes[k * (bytes.count / 8) + 4321] ^= 0x5A }
            }, novelBytes: 8),
            Case(name: "inserted.img", old: base, new: edited(base) { bytes in
                bytes.insert(contentsOf: [UInt8](pseudoRandomData(1000, seed: 13)), at: bytes.count / 3)
            }, novelBytes: 1000),
            Case(name: "deleted.img", old: base, new: edited(base) { bytes in
                bytes.removeSubrange((bytes.count * 2 / 3)..<(bytes.count * 2 / 3 + 5000))
            }, novelBytes: 0),
            Case(name: "appended.tar", old: small, new: small + pseudoRandomData(300_000, seed: 14),
                novelBytes: 300_000),
            Case(name: "unrelated.bin", old: pseudoRandomData(1 << 20, seed: 15),
                new: pseudoRandomData(1 << 20, seed: 16), novelBytes: nil),
            Case(name: "tiny.txt", old: Data("version 1\n".utf8), new: Data("version 2, a little longer\n".utf8),
                novelBytes: nil),
        ]
        for item in cases {
            try scratch.write("pub/releases/" + item.name, item.new)
            try scratch.write("client/" + item.name, item.old)
        }
        let signed = try ProgramRunner.run("shash", ["-q", publishRoot])
        precondition(signed.status == 0, signed.stderr)
    }

    /// Syncs every case from `base` (the URL of the published root) into a fresh client directory,
    /// each with its old version as the alike file, and checks the results.
    func syncAll(from base: String, label: String, check: (Case, SyncReport) -> Void = { _, _ in }) throws {
        let output = "out-" + label
        try FileManager.default.createDirectory(atPath: scratch.file(output), withIntermediateDirectories: true)
        for item in cases {
            let result = try ProgramRunner.run("slicesync", [
                "\(base)/releases/\(item.name)", "--alike", scratch.file("client/" + item.name),
                "-o", scratch.file("\(output)/\(item.name)"), "--json",
            ])
            #expect(result.status == 0, "\(label) \(item.name): \(result.stderr)")
            guard result.status == 0 else { continue }
            #expect(try scratch.read("\(output)/\(item.name)") == item.new, "\(label) \(item.name)")
            let report = try JSONDecoder().decode(SyncReport.self, from: Data(result.stdout.utf8))
            #expect(report.length == item.new.count)
            check(item, report)
        }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: scratch.file(output))
            .filter { $0.contains(".slicesync.") }
        #expect(leftovers.isEmpty, "\(label): \(leftovers)")
    }
}

@Suite("Interoperability with real servers on 127.0.0.1", .serialized)
struct InteropEndToEndTests {
    /// Range servers send little more than what is new: each edit costs a few blocks of 2 KiB.
    static func fetchesLittle(_ item: EditPatternTree.Case, _ report: SyncReport) {
        if let novel = item.novelBytes {
            #expect(!report.fullDownload, "\(item.name)")
            #expect(report.bytesFromServer <= novel + 48 * 1024,
                "\(item.name): \(report.bytesFromServer) bytes of \(item.new.count)")
        }
    }

    @Test func nginxServesEverySizeAndEditPattern() throws {
        let tree = try EditPatternTree()
        let nginx = try TestServer.nginx(root: tree.publishRoot, scratch: tree.scratch.file("nginx"))
        try tree.syncAll(from: nginx.base, label: "nginx") { item, report in
            Self.fetchesLittle(item, report)
        }
    }

    @Test func nginxWithOneRangePerRequestAsOnS3() throws {
        let tree = try EditPatternTree()
        let nginx = try TestServer.nginx(root: tree.publishRoot, scratch: tree.scratch.file("nginx"),
            extra: "max_ranges 1;")
        try tree.syncAll(from: nginx.base, label: "max_ranges 1") { item, report in
            Self.fetchesLittle(item, report)
        }
    }

    @Test func aServerThatIgnoresRangesStillGivesTheRightFile() throws {
        let tree = try EditPatternTree()
        let server = try TestServer.pythonHTTPServer(root: tree.publishRoot)
        try tree.syncAll(from: server.base, label: "http.server") { item, report in
            // Every reply is the whole file, so the whole file is taken (once) and verified.
            if item.new.count > 1000 {
                #expect(report.fullDownload, "\(item.name)")
                #expect(report.bytesFromServer == item.new.count, "\(item.name)")
            }
        }
    }

    @Test func anS3BucketUploadedWithAnS3Client() throws {
        let tree = try EditPatternTree()
        let s3 = try TestServer.s3(root: tree.publishRoot, bucket: "releases-bucket", prefix: "pub")
        try tree.syncAll(from: "\(s3.base)/releases-bucket/pub", label: "s3") { item, report in
            Self.fetchesLittle(item, report)
            #expect(report.signatureURL.hasSuffix("/releases-bucket/pub/releases/.slicesync/\(item.name).slicesync")
                || report.signatureURL.hasSuffix("/releases-bucket/pub/.slicesync/releases/\(item.name).slicesync"),
                "\(report.signatureURL)")
        }
    }
}
