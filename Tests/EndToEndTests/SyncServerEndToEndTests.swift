import Foundation
import SliceSync
import Testing
import TestSupport

@Suite("syncserver, run as a program, beside nginx", .serialized)
struct SyncServerEndToEndTests {
    @Test func theClientRebuildsTheSameFileFromSyncserverAsFromNginx() throws {
        let scenario = try ClientScenario()
        let syncserver = try TestServer.syncserver(root: scenario.publishRoot)
        let nginx = try TestServer.nginx(root: scenario.publishRoot, scratch: scenario.scratch.file("nginx"))
        let fromSyncserver = try scenario.sync(syncserver, output: "client/via-syncserver.bin")
        let fromNginx = try scenario.sync(nginx, output: "client/via-nginx.bin")
        #expect(fromSyncserver.status == 0, "\(fromSyncserver.stderr)")
        #expect(fromNginx.status == 0, "\(fromNginx.stderr)")
        #expect(try scenario.scratch.read("client/via-syncserver.bin") == scenario.new)
        #expect(try scenario.scratch.read("client/via-nginx.bin") == scenario.new)
        let viaSyncserver = try scenario.report(fromSyncserver)
        let viaNginx = try scenario.report(fromNginx)
        #expect(viaSyncserver.bytesFromServer == viaNginx.bytesFromServer)
        #expect(viaSyncserver.requests == viaNginx.requests)
        #expect(viaSyncserver.bytesFromServer <= 6 * 4096)
    }

    @Test func signaturesItWritesItselfServeTheClient() throws {
        let scratch = try Scratch()
        let old = pseudoRandomData(2_000_000, seed: 5)
        var new = [UInt8](old)
        new.replaceSubrange(700_000..<700_100, with: [UInt8](repeating: 1, count: 100))
        try scratch.write("pub/a/new.bin", Data(new))
        try scratch.write("client/old.bin", old)
        let server = try TestServer.syncserver(root: scratch.file("pub"))
        // The server signs in the background; the signature appears within a few seconds.
        #expect(eventually(within: 10) { scratch.exists("pub/.slicesync/a/new.bin.slicesync") })
        let result = try ProgramRunner.run("slicesync",
            ["\(server.base)/a/new.bin", "--alike", scratch.file("client/old.bin"), "-o",
                scratch.file("client/new.bin"), "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try scratch.read("client/new.bin") == Data(new))
    }

    @Test func signaturesFollowTheTreeWhileItIsServed() throws {
        let scratch = try Scratch()
        try scratch.write("pub/first.bin", pseudoRandomData(10_000, seed: 1))
        let server = try TestServer.syncserver(root: scratch.file("pub"), extra: ["--settle", "0.3"])
        let status = { (target: String) in (try? exchange(server.port, target))?.status }
        #expect(eventually { status("/.slicesync/first.bin.slicesync") == 200 })
        try scratch.write("pub/later/second.bin", pseudoRandomData(20_000, seed: 2), old: false)
        #expect(eventually { status("/.slicesync/later/second.bin.slicesync") == 200 })
        try FileManager.default.removeItem(atPath: scratch.file("pub/first.bin"))
        #expect(eventually { status("/.slicesync/first.bin.slicesync") == 404 })
        #expect(!scratch.exists("pub/.slicesync/first.bin.slicesync"))
    }

    /// The tree's manifest is served, follows the tree once its signatures are written, and answers a
    /// conditional GET with 304 while nothing changed.
    @Test func theManifestFollowsTheTree() throws {
        let scratch = try Scratch()
        try scratch.write("pub/first.bin", pseudoRandomData(10_000, seed: 1))
        let server = try TestServer.syncserver(root: scratch.file("pub"), extra: ["--settle", "0.3"])
        let manifest = { () -> TreeManifest? in
            guard let reply = try? exchange(server.port, "/.slicesync/.slicesync-manifest"), reply.status == 200
                else { return nil }
            return try? TreeManifest.parse(reply.body)
        }
        #expect(eventually { manifest()?.entries.map(\.path) == ["first.bin"] })
        let reply = try exchange(server.port, "/.slicesync/.slicesync-manifest")
        let etag = try #require(reply.header("ETag"))
        #expect(try exchange(server.port, "/.slicesync/.slicesync-manifest",
            headers: ["If-None-Match: \(etag)"]).status == 304)
        try scratch.write("pub/later/second.bin", pseudoRandomData(20_000, seed: 2), old: false)
        #expect(eventually { manifest()?.entries.map(\.path) == ["first.bin", "later", "later/second.bin"] })
        try FileManager.default.removeItem(atPath: scratch.file("pub/first.bin"))
        #expect(eventually { manifest()?.entries.map(\.path) == ["later", "later/second.bin"] })
        #expect(try exchange(server.port, "/.slicesync/.slicesync-manifest",
            headers: ["If-None-Match: \(etag)"]).status == 200)
    }

    @Test func stopsCleanlyOnSIGTERMAndSIGINT() throws {
        for signal in [SIGTERM, SIGINT] {
            let scratch = try Scratch()
            // Large enough that signing is still running when the signal arrives.
            try scratch.write("pub/big.bin", pseudoRandomData(64 << 20, seed: 9))
            let server = try TestServer.syncserver(root: scratch.file("pub"))
            let connection = try RawConnection(port: server.port)
            connection.send("GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
            usleep(200_000)
            kill(server.process.processIdentifier, signal)
            _ = connection.readToEnd()
            let status = reap(server.process, timeout: 20)
            #expect(status == 0, "exit status \(String(describing: status)) after signal \(signal)")
            let leftovers = (try FileManager.default.subpathsOfDirectory(atPath: scratch.file("pub")))
                .filter { $0.contains(".slicesync.tmp-") }
            #expect(leftovers.isEmpty, "\(leftovers)")
        }
    }

    /// The same requests to syncserver and nginx: the same status, Content-Range and bytes.
    @Test func answersRangeRequestsAsNginxDoes() throws {
        let scratch = try Scratch()
        let content = [UInt8](pseudoRandomData(100_000, seed: 3))
        try scratch.write("pub/f.bin", Data(content))
        let syncserver = try TestServer.syncserver(root: scratch.file("pub"), extra: ["--no-signatures"])
        let nginx = try TestServer.nginx(root: scratch.file("pub"), scratch: scratch.file("nginx"))
        let headers = [
            "bytes=0-0", "bytes=0-99", "bytes=-1", "bytes=-100", "bytes=-200000", "bytes=99999-", "bytes=99990-200000",
            "bytes=100000-", "bytes=100000-100001", "bytes=0-1,10-11", "bytes=50000-50099, 0-9, -10",
            "bytes=0-9,100000-", "bytes=100000-,0-9", "lines=0-9", "bytes= 3-4", "bytes=0-99999",
        ]
        for header in headers {
            let ours = try exchange(syncserver.port, "/f.bin", headers: ["Range: \(header)"])
            let theirs = try exchange(nginx.port, "/f.bin", headers: ["Range: \(header)"])
            #expect(ours.status == theirs.status, "\(header)")
            #expect(ours.header("Content-Range") == theirs.header("Content-Range"), "\(header)")
            if (200..<300).contains(ours.status) {
                #expect(try Self.parts(ours) == Self.parts(theirs), "\(header)")
            }
        }
        // Where nginx departs from RFC 9110 we follow the RFC: an invalid Range header is ignored
        // (200, nginx says 416), and an empty list element is allowed (nginx says 416).
        for (header, ourStatus) in [("bytes=5-4", 200), ("bytes=abc", 200), ("bytes=1-2,", 206)] {
            #expect(try exchange(nginx.port, "/f.bin", headers: ["Range: \(header)"]).status == 416, "\(header)")
            #expect(try exchange(syncserver.port, "/f.bin", headers: ["Range: \(header)"]).status == ourStatus,
                "\(header)")
        }
        for method in ["HEAD", "GET"] {
            let ours = try exchange(syncserver.port, "/f.bin", method: method)
            let theirs = try exchange(nginx.port, "/f.bin", method: method)
            #expect(ours.status == theirs.status)
            #expect(ours.header("Content-Length") == theirs.header("Content-Length"))
            #expect(ours.header("Last-Modified") == theirs.header("Last-Modified"))
            #expect(ours.header("Accept-Ranges") == theirs.header("Accept-Ranges"))
            #expect(ours.body == theirs.body)
        }
        for target in ["/missing", "/../f.bin", "/%2e%2e/f.bin"] {
            let ours = try exchange(syncserver.port, target)
            let theirs = try exchange(nginx.port, target)
            #expect(ours.status == theirs.status || (ours.status == 400 && theirs.status == 404) || (ours.status == 404
                && theirs.status == 400), "\(target)")
        }
    }

    /// A reply's byte ranges and their bytes, whether single-part or multipart.
    private static func parts(_ reply: RawResponse) throws -> [[Int]] {
        if let type = reply.header("Content-Type"), let boundary = ByteRanges.boundary(ofContentType: type) {
            return try ByteRanges.parseMultipart(reply.body, boundary: boundary).map {
                [$0.range.lowerBound, $0.range.upperBound] + reply.body[$0.bodyRange].map(Int.init)
            }
        }
        return [reply.body.map(Int.init)]
    }
}
