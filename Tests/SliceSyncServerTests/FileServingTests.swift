import Foundation
import SliceSync
import Testing
@testable import SliceSyncServer

/// In-process HTTP tests: a real server on 127.0.0.1, raw requests, every header case of RFC 9110.
@Suite(.serialized)
struct FileServingTests {
    static let content = patterned(300_000)

    private func withServer(_ body: (Int, TemporaryDirectory) async throws -> Void,
        configure: (inout SyncServerConfiguration) -> Void = { _ in }) async throws {
        let tree = try TemporaryDirectory()
        try tree.write("data/file.bin", Self.content)
        try tree.write("data/small.txt", Array("hello\n".utf8))
        try tree.write("empty", [])
        let server = try await RunningServer.start(root: tree.path, configure: configure)
        do {
            try await body(server.port, tree)
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }

    @Test func wholeFileWithValidators() async throws {
        try await withServer { port, _ in
            let reply = try exchange(port, "/data/file.bin")
            #expect(reply.status == 200)
            #expect(reply.body == Self.content)
            #expect(reply.header("Content-Length") == "300000")
            #expect(reply.header("Accept-Ranges") == "bytes")
            #expect(reply.header("Content-Type") == "application/octet-stream")
            #expect(reply.header("Last-Modified") == "Sun, 13 Sep 2020 12:26:40 GMT")
            let etag = try #require(reply.header("ETag"))
            #expect(etag.hasPrefix("\"") && !etag.hasPrefix("W/"))
            #expect(try exchange(port, "/data/small.txt").header("Content-Type") == "text/plain; charset=utf-8")
            let empty = try exchange(port, "/empty")
            #expect(empty.status == 200 && empty.body.isEmpty && empty.header("Content-Length") == "0")
        }
    }

    @Test func headAnswersWhatGETWouldWithoutABody() async throws {
        try await withServer { port, _ in
            for range in [nil, "bytes=0-9", "bytes=0-9,100-109", "bytes=999999-"] {
                let connection = try RawConnection(port: port)
                let extra = range.map { "Range: \($0)\r\n" } ?? ""
                connection.send("HEAD /data/file.bin HTTP/1.1\r\nHost: x\r\n\(extra)\r\nGET /data/file.bin " +
                    "HTTP/1.1\r\nHost: x\r\n\(extra)\r\n")
                let head = try #require(connection.readResponse(head: true))
                let get = try #require(connection.readResponse())
                #expect(head.status == get.status)
                let ignored: Set<String> = ["date", "content-type"]
                #expect(head.headers.filter { !ignored.contains($0.0.lowercased()) }.map { "\($0.0): \($0.1)" }
                    == get.headers.filter { !ignored.contains($0.0.lowercased()) }.map { "\($0.0): \($0.1)" })
            }
        }
    }

    @Test func singleSuffixOpenEndedAndClampedRanges() async throws {
        try await withServer { port, _ in
            let cases: [(String, Range<Int>)] = [
                ("bytes=0-99", 0..<100), ("bytes=-100", 299_900..<300_000), ("bytes=299990-", 299_990..<300_000),
                ("bytes=299990-999999999", 299_990..<300_000), ("bytes=-999999", 0..<300_000), ("bytes = 5-5", 5..<6),
            ]
            for (header, range) in cases {
                let reply = try exchange(port, "/data/file.bin", headers: ["Range: \(header)"])
                #expect(reply.status == 206, "\(header)")
                #expect(reply.header("Content-Range") == "bytes \(range.lowerBound)-\(range.upperBound - 1)/300000",
                    "\(header)")
                #expect(reply.body == Array(Self.content[range]), "\(header)")
            }
        }
    }

    @Test func multipleRangesComeAsMultipartInRequestOrder() async throws {
        try await withServer { port, _ in
            let reply = try exchange(port, "/data/file.bin", headers: ["Range: bytes=200000-200099,0-9,-5"])
            #expect(reply.status == 206)
            let boundary = try #require(ByteRanges.boundary(ofContentType: reply.header("Content-Type") ?? ""))
            let parts = try ByteRanges.parseMultipart(reply.body, boundary: boundary)
            #expect(parts.map(\.range) == [200_000..<200_100, 0..<10, 299_995..<300_000])
            for part in parts {
                #expect(Array(reply.body[part.bodyRange]) == Array(Self.content[part.range]))
                #expect(part.completeLength == 300_000)
            }
            // Overlapping ranges are merged; the reply never exceeds the file plus part headers.
            let abusive = "bytes=" + (0..<90).map { "\($0)-299999" }.joined(separator: ",")
            let merged = try exchange(port, "/data/file.bin", headers: ["Range: \(abusive)"])
            #expect(merged.status == 206)
            #expect(merged.body.count == 300_000)
            let many = "bytes=" + (0..<201).map { "\($0 * 10)-\($0 * 10)" }.joined(separator: ",")
            #expect(try exchange(port, "/data/file.bin", headers: ["Range: \(many)"]).status == 200)
        }
    }

    @Test func unsatisfiableAndInvalidRanges() async throws {
        try await withServer { port, _ in
            let unsatisfiable = try exchange(port, "/data/file.bin", headers: ["Range: bytes=300000-"])
            #expect(unsatisfiable.status == 416)
            #expect(unsatisfiable.header("Content-Range") == "bytes */300000")
            for invalid in ["bytes=5-1", "bytes=x-y", "lines=0-1", "bytes=0-1;"] {
                let reply = try exchange(port, "/data/file.bin", headers: ["Range: \(invalid)"])
                #expect(reply.status == 200, "\(invalid)")
                #expect(reply.body.count == 300_000)
            }
        }
    }

    @Test func conditionalRequests() async throws {
        try await withServer { port, _ in
            let etag = try #require(try exchange(port, "/data/file.bin", method: "HEAD").header("ETag"))
            let weak = "W/" + etag
            let lastModified = "Sun, 13 Sep 2020 12:26:40 GMT"
            let cases: [([String], Int)] = [
                (["Range: bytes=0-9", "If-Range: \(etag)"], 206),
                (["Range: bytes=0-9", "If-Range: \(weak)"], 200),
                (["Range: bytes=0-9", "If-Range: \"stale\""], 200),
                (["Range: bytes=0-9", "If-Range: \(lastModified)"], 206),
                (["Range: bytes=0-9", "If-Range: Sun, 13 Sep 2020 12:26:41 GMT"], 200),
                (["If-None-Match: \(etag)"], 304),
                (["If-None-Match: \(weak)"], 304),
                (["If-None-Match: \"other\", \(etag)"], 304),
                (["If-None-Match: \"other\""], 200),
                (["If-Modified-Since: \(lastModified)"], 304),
                (["If-Modified-Since: Sun, 13 Sep 2020 12:26:39 GMT"], 200),
                (["If-Match: \(etag)", "Range: bytes=0-9"], 206),
                (["If-Match: \"stale\"", "Range: bytes=0-9"], 412),
                (["If-Match: \(weak)"], 412),
                (["If-Unmodified-Since: Sun, 13 Sep 2020 12:26:39 GMT"], 412),
                (["If-Unmodified-Since: \(lastModified)"], 200),
            ]
            for (headers, status) in cases {
                let reply = try exchange(port, "/data/file.bin", headers: headers)
                #expect(reply.status == status, "\(headers)")
                if status == 304 {
                    #expect(reply.header("ETag") == etag)
                    #expect(reply.body.isEmpty)
                }
            }
        }
    }

    @Test func traversalIsRefusedWithoutLeakingPaths() async throws {
        let outside = try TemporaryDirectory()
        try outside.write("secret.txt", Array("top secret".utf8))
        try await withServer { port, tree in
            try FileManager.default.createSymbolicLink(atPath: tree.file("data/out"),
                withDestinationPath: outside.file("secret.txt"))
            try FileManager.default.createSymbolicLink(atPath: tree.file("data/outdir"),
                withDestinationPath: outside.path)
            try FileManager.default.createSymbolicLink(atPath: tree.file("data/in"), withDestinationPath: "small.txt")
            let refused = ["/../etc/passwd", "/data/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
                "/data/%2E%2E/%2E%2E/etc/passwd",
                           "/..%2f..%2fetc%2fpasswd", "/data%5c..%5c..%5cetc%5cpasswd", "/data/small.txt%00.bin",
                           "/%c0%ae%c0%ae/etc/passwd"]
            for target in refused {
                let reply = try exchange(port, target)
                #expect(reply.status == 400, "\(target)")
            }
            let missing = ["/%252e%252e/%252e%252e/etc/passwd", "/data/out", "/data/outdir/secret.txt", "/data/outdir/",
                "/etc/passwd", "/data/nothing"]
            for target in missing {
                let reply = try exchange(port, target)
                #expect(reply.status == 404, "\(target)")
                let body = String(decoding: reply.body, as: UTF8.self)
                #expect(!body.contains(tree.path) && !body.contains("secret") && !body.contains("/"), "\(target)")
            }
            #expect(try exchange(port, "/data/in").body == Array("hello\n".utf8))
        }
    }

    @Test func directoriesAreListedAsHTMLAndJSON() async throws {
        try await withServer { port, _ in
            let redirect = try exchange(port, "/data")
            #expect(redirect.status == 301)
            #expect(redirect.header("Location") == "/data/")
            let html = try exchange(port, "/data/")
            #expect(html.status == 200)
            #expect(html.header("Content-Type")?.hasPrefix("text/html") == true)
            #expect(String(decoding: html.body, as: UTF8.self).contains("href=\"file.bin\""))
            for (target, headers) in [("/data/?format=json", [String]()), ("/data/", ["Accept: application/json"])] {
                let json = try exchange(port, target, headers: headers)
                #expect(json.header("Content-Type") == "application/json")
                let object = try #require(try JSONSerialization.jsonObject(with: Data(json.body)) as? [String: Any])
                let entries = try #require(object["entries"] as? [[String: Any]])
                #expect(entries.map { $0["name"] as? String } == ["file.bin", "small.txt"])
                #expect(entries.first?["size"] as? Int == 300_000)
            }
        }
    }

    @Test func onlyGETAndHEADAreServed() async throws {
        try await withServer { port, _ in
            let reply = try exchange(port, "/data/small.txt", method: "DELETE")
            #expect(reply.status == 405)
            #expect(reply.header("Allow") == "GET, HEAD")
        }
    }

    @Test func oversizedRequestsGetTheirOwnStatus() async throws {
        try await withServer({ port, _ in
            let longLine = try exchange(port, "/" + String(repeating: "a", count: 9000))
            #expect(longLine.status == 414)
            let bigHeaders = try exchange(port, "/data/small.txt",
                headers: (0..<40).map { "X-Filler-\($0): " + String(repeating: "b", count: 1000) })
            #expect(bigHeaders.status == 431)
            // A normal request on a keep-alive connection after a request with a body still works.
            let connection = try RawConnection(port: port)
            connection.send("GET /data/small.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /data/small.txt HTTP/1.1\r\nHost: " +
                "x\r\n\r\n")
            #expect(connection.readResponse()?.status == 200)
            #expect(connection.readResponse()?.body == Array("hello\n".utf8))
        })
    }

    @Test func aSlowClientTimesOutAndDoesNotStallOthers() async throws {
        try await withServer({ port, _ in
            let slow = try RawConnection(port: port)
            slow.send("GET /data/small.txt HTTP/1.1\r\nHost: x\r\n")
            // While the slow head is pending, other clients are served.
            #expect(try exchange(port, "/data/small.txt").status == 200)
            let timedOut = slow.readResponse()
            #expect(timedOut?.status == 408)
            #expect(slow.isClosedByServer())
        }, configure: { $0.limits.headerTimeout = .milliseconds(700) })
    }

    @Test func theConnectionCapRefusesExtraConnections() async throws {
        try await withServer({ port, _ in
            let first = try RawConnection(port: port)
            first.send("GET /data/small.txt HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(first.readResponse()?.status == 200)
            let second = try RawConnection(port: port)
            #expect(second.isClosedByServer())
            first.send("GET /data/small.txt HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(first.readResponse()?.status == 200)
            first.send("GET /data/small.txt HTTP/1.1\r\nConnection: close\r\nHost: x\r\n\r\n")
            #expect(first.readResponse()?.status == 200)
            #expect(first.isClosedByServer())
            first.closeConnection()
            // Once a slot is free again, new connections are served.
            var served = false
            for _ in 0..<50 where !served {
                served = (try? exchange(port, "/data/small.txt"))?.status == 200
                if !served { try await Task.sleep(nanoseconds: 20_000_000) }
            }
            #expect(served)
        }, configure: { $0.limits.maxConnections = 1 })
    }

    @Test func aFileThatShrinksWhileSentEndsTheReplyWithoutPadding() async throws {
        let tree = try TemporaryDirectory()
        // 32 MiB: more than the loopback socket buffers hold, so the server is still sending when it shrinks.
        let unit = patterned(1 << 20, seed: 7)
        var big: [UInt8] = []
        for index in 0..<32 { big += unit; big[big.count - 1] = UInt8(index) }
        try tree.write("big.bin", big)
        let server = try await RunningServer.start(root: tree.path)
        defer { Task { await server.stop() } }
        let connection = try RawConnection(port: server.port)
        connection.send("GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        // Not reading yet: the socket buffers fill (a few MiB) and the server waits to write more.
        try await Task.sleep(nanoseconds: 300_000_000)
        #expect(truncate(tree.file("big.bin"), 1 << 20) == 0)
        let received = connection.readToEnd()
        let headEnd = try #require(RawConnection.find([13, 10, 13, 10], in: received))
        let body = Array(received[(headEnd + 4)...])
        #expect(body.count < big.count)
        #expect(body == Array(big[..<body.count]))
    }

    @Test func temporaryAndPartialFilesAreNeverServed() async throws {
        try await withServer { port, tree in
            try tree.write(".slicesync/.file.bin.slicesync.tmp-x1", [1, 2])
            try tree.write("data/new.iso.slicesync.part", [1, 2])
            #expect(try exchange(port, "/.slicesync/.file.bin.slicesync.tmp-x1").status == 404)
            #expect(try exchange(port, "/data/new.iso.slicesync.part").status == 404)
            let listing = try exchange(port, "/data/?format=json")
            #expect(!String(decoding: listing.body, as: UTF8.self).contains(".part"))
        }
    }

    @Test func pipelinedRequestsAreAnsweredInOrderBehindALargeBodyAndARequestBody() async throws {
        try await withServer { port, _ in
            let connection = try RawConnection(port: port)
            connection.send("GET /data/file.bin HTTP/1.1\r\nHost: x\r\n\r\n" +
                "GET /data/small.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" +
                "HEAD /data/small.txt HTTP/1.1\r\nHost: x\r\n\r\n" +
                "GET /data/file.bin HTTP/1.0\r\nRange: bytes=0-9\r\n\r\n")
            let big = try #require(connection.readResponse())
            #expect(big.status == 200 && big.body == Self.content)
            let small = try #require(connection.readResponse())
            #expect(small.status == 200 && small.body == Array("hello\n".utf8))
            let head = try #require(connection.readResponse(head: true))
            #expect(head.status == 200 && head.header("Content-Length") == "6")
            let last = try #require(connection.readResponse())
            #expect(last.status == 206 && last.body == Array(Self.content[0..<10]))
            #expect(last.header("Connection") == "close")
            #expect(connection.isClosedByServer())
        }
    }

    @Test func aFileChangedBetweenRequestsOfOneConnectionIsNeverServedStale() async throws {
        try await withServer { port, tree in
            let connection = try RawConnection(port: port)
            func get() throws -> RawResponse {
                connection.send("GET /data/small.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=0-2\r\n\r\n")
                return try #require(connection.readResponse())
            }
            let first = try get()
            #expect(first.status == 206 && first.body == Array("hel".utf8))
            // Replaced by a rename (a new file), then rewritten in place (the same file, new times),
            // then moved away: each request sees the tree as it is.
            try tree.write("data/new.txt", Array("world\n".utf8))
            #expect(rename(tree.path + "/data/new.txt", tree.path + "/data/small.txt") == 0)
            let replaced = try get()
            #expect(replaced.body == Array("wor".utf8) && replaced.header("ETag") != first.header("ETag"))
            let handle = try #require(FileHandle(forWritingAtPath: tree.path + "/data/small.txt"))
            try handle.write(contentsOf: Array("abc".utf8))
            try handle.close()
            var times = [timespec(tv_sec: 1_700_000_000, tv_nsec: 0), timespec(tv_sec: 1_700_000_000, tv_nsec: 0)]
            #expect(utimensat(AT_FDCWD, tree.path + "/data/small.txt", &times, 0) == 0)
            let rewritten = try get()
            #expect(rewritten.body == Array("abc".utf8) && rewritten.header("ETag") != replaced.header("ETag"))
            #expect(rename(tree.path + "/data/small.txt", tree.path + "/elsewhere.txt") == 0)
            #expect(try get().status == 404)
        }
    }

    @Test func aBadHeadGets400AndTheConnectionCloses() async throws {
        try await withServer { port, _ in
            for request in ["GET /data/small.txt HTTP/1.1\r\nHost : x\r\n\r\n",
                            "GET /data/small.txt HTTP/1.0\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                            "GET /data/small.txt HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n"] {
                let connection = try RawConnection(port: port)
                connection.send(request + "GET /data/small.txt HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(connection.readResponse()?.status == 400, "\(request.debugDescription)")
                #expect(connection.isClosedByServer())
            }
            let hostless = try RawConnection(port: port)
            hostless.send("GET /data/small.txt HTTP/1.1\r\n\r\n")
            #expect(hostless.readResponse()?.status == 400)
            let version = try RawConnection(port: port)
            version.send("GET /data/small.txt HTTP/2.0\r\n\r\n")
            #expect(version.readResponse()?.status == 505)
        }
    }

    @Test func theChangeFeedIsChunkedOnHTTP11AndEndsWithTheConnectionOnHTTP10() async throws {
        let tree = try TemporaryDirectory()
        try tree.write("pub/file.bin", Self.content)
        let server = try await RunningServer.start(root: tree.path, signatures: true)
        let eleven = try RawConnection(port: server.port)
        eleven.send("GET /.slicesync/.slicesync-events HTTP/1.1\r\nHost: x\r\n\r\n")
        let ten = try RawConnection(port: server.port)
        ten.send("GET /.slicesync/.slicesync-events HTTP/1.0\r\n\r\n")
        let chunked = eleven.read(through: "\n\n\r\n") ?? ""
        let plain = ten.read(through: "\n\n") ?? ""
        await server.stop()
        #expect(chunked.hasPrefix("HTTP/1.1 200 OK\r\n") && chunked.contains("Transfer-Encoding: chunked\r\n"))
        #expect(chunked.contains("Content-Type: text/event-stream\r\n"))
        // One chunk: its size in hexadecimal, the event, CRLF.
        let body = try #require(chunked.components(separatedBy: "\r\n\r\n").last)
        let parts = body.split(separator: "\r\n", maxSplits: 1, omittingEmptySubsequences: false)
        try #require(parts.count == 2)
        // Bytes, not Characters: "\r\n" is one Character.
        let event = String(decoding: parts[1].utf8.dropLast(2), as: UTF8.self)
        #expect(Int(parts[0], radix: 16) == event.utf8.count)
        #expect(event.hasPrefix("id: ") && event.contains("event: manifest\n"))
        #expect(plain.hasPrefix("HTTP/1.0 200 OK\r\n") && plain.contains("Connection: close\r\n"))
        #expect(!plain.contains("Transfer-Encoding") && plain.contains("\r\n\r\nid: "))
        // A stop ends both (the chunked stream with its last chunk when the stop is graceful). The
        // signatures written in the background may have sent more events before it: whole ones only.
        let rest = eleven.readToEnd()
        #expect(Self.wholeChunkedEvents(rest), "\(String(decoding: rest, as: UTF8.self))")
        let plainRest = String(decoding: ten.readToEnd(), as: UTF8.self)
        #expect(plainRest.isEmpty || (plainRest.hasPrefix("id: ") && plainRest.hasSuffix("\n\n")), "\(plainRest)")
    }

    /// Whether `bytes` are whole chunks of events, then the last chunk or nothing.
    static func wholeChunkedEvents(_ bytes: [UInt8]) -> Bool {
        var rest = bytes[...]
        while !rest.isEmpty {
            guard let lineEnd = rest.firstRange(of: Array("\r\n".utf8)),
                  let size = Int(String(decoding: rest[..<lineEnd.lowerBound], as: UTF8.self), radix: 16)
            else { return false }
            let data = rest[lineEnd.upperBound...]
            guard data.count >= size + 2, Array(data.dropFirst(size).prefix(2)) == Array("\r\n".utf8) else {
                return false
            }
            if size == 0 { return data.count == 2 }
            guard String(decoding: data.prefix(size), as: UTF8.self).hasPrefix("id: ") else { return false }
            rest = data.dropFirst(size + 2)
        }
        return true
    }

    @Test func signaturesAreWrittenInTheBackgroundAndServed() async throws {
        let tree = try TemporaryDirectory()
        try tree.write("pub/file.bin", Self.content)
        let server = try await RunningServer.start(root: tree.path, signatures: true)
        var reply = try exchange(server.port, "/.slicesync/pub/file.bin.slicesync")
        for _ in 0..<100 where reply.status != 200 {
            try await Task.sleep(nanoseconds: 100_000_000)
            reply = try exchange(server.port, "/.slicesync/pub/file.bin.slicesync")
        }
        await server.stop()
        #expect(reply.status == 200)
        let signature = try Signature.parse(reply.body)
        #expect(signature.summary.length == 300_000)
        #expect(signature.summary.filename == "file.bin")
        let leftovers = try FileManager.default.subpathsOfDirectory(atPath: tree.path)
            .filter { $0.contains(".slicesync.tmp-") }
        #expect(leftovers.isEmpty)
    }
}
