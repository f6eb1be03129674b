import Testing
@testable import SliceSync

/// The HTTP/1.x request framer and head parser, fed bytes as a connection would.
struct RequestFramerTests {
    private static let limits = RequestFramer.Limits(maxRequestLineBytes: 64, maxHeaderBytes: 256)

    /// Feeds `text` in pieces of `piece` bytes; returns every head and rejection, in order.
    private func frame(_ text: String, piece: Int = .max) -> [Result<RequestHead, RequestHead.Rejection>] {
        var framer = RequestFramer(limits: Self.limits)
        var results: [Result<RequestHead, RequestHead.Rejection>] = []
        let bytes = Array(text.utf8)
        var start = 0
        while start < bytes.count {
            let end = min(bytes.count, start + min(piece, bytes.count - start))
            var offset = start
            while offset < end {
                let (consumed, event) = bytes[offset..<end].withUnsafeBytes { framer.consume($0) }
                #expect(consumed > 0)
                offset += consumed
                switch event {
                case .head(let head): results.append(.success(head))
                case .reject(let rejection): results.append(.failure(rejection))
                case nil: #expect(offset == end)
                }
            }
            start = end
        }
        return results
    }

    private func heads(_ text: String, piece: Int = .max) -> [RequestHead] {
        frame(text, piece: piece).compactMap { try? $0.get() }
    }

    @Test(arguments: [1, 2, 7, 1000])
    func pipelinedHeadsArriveInOrderWhateverTheReadSizes(piece: Int) {
        let text = "GET /a HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9\r\n\r\n" +
            "\r\nHEAD /b?q=1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" +
            "GET /c HTTP/1.1\nHost: y\n\n"
        let found = heads(text, piece: piece)
        #expect(found.map(\.method) == ["GET", "HEAD", "GET"])
        #expect(found.map(\.target) == ["/a", "/b?q=1", "/c"])
        #expect(found.map(\.minorVersion) == [1, 0, 1])
        #expect(found.first?.first("range") == "bytes=0-9")
        #expect(found.last?.first("Host") == "y")
        #expect(found.map(\.isKeepAlive) == [true, true, true])
    }

    @Test func fieldsAreTrimmedFoldedByNameAndJoined() throws {
        let head = try #require(heads("GET / HTTP/1.1\r\nHost: x\r\nIf-None-Match:  \"a\" \t\r\n" +
            "if-none-match: \"b\"\r\nX-Empty:\r\nCONNECTION: Close\r\n\r\n").first)
        #expect(head.values("If-None-Match") == ["\"a\"", "\"b\""])
        #expect(head.joined("if-NONE-match") == "\"a\", \"b\"")
        #expect(head.first("X-Empty") == "")
        #expect(head.first("X-Missing") == nil)
        #expect(!head.isKeepAlive)
        // Names fold only letters: "^" and "~" differ by the case bit too, and are different names.
        #expect(try #require(heads("GET / HTTP/1.1\r\nHost: x\r\nX~: 1\r\n\r\n").first).first("X^") == nil)
    }

    @Test func http10ClosesUnlessAskedToKeepAlive() throws {
        #expect(try #require(heads("GET / HTTP/1.0\r\n\r\n").first).isKeepAlive == false)
        #expect(try #require(heads("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").first).isKeepAlive)
        let closing = try #require(heads("GET / HTTP/1.1\r\nHost: x\r\nConnection: foo, close\r\n\r\n").first)
        #expect(closing.isKeepAlive == false)
    }

    @Test func aBodyByLengthIsSkippedBeforeTheNextHead() {
        let found = heads("GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n" +
            "GET /x HTTP/1.1GET /b HTTP/1.0\r\n\r\n", piece: 5)
        #expect(found.map(\.target) == ["/a", "/b"])
    }

    @Test func afterAChunkedBodyNothingMoreIsFramed() {
        let found = heads("POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" +
            "GET /b HTTP/1.0\r\n\r\n")
        #expect(found.map(\.target) == ["/a"])
        #expect(found.first?.hasTransferEncoding == true)
    }

    @Test(arguments: [
        ("GET / HTTP/1.1\r\n" + String(repeating: "x", count: 300) + "\r\n\r\n", "431"),
        ("GET /" + String(repeating: "a", count: 70) + " HTTP/1.1\r\n\r\n", "414"),
        ("GET / HTTP/1.1\r\n" + (0..<20).map { "X-F\($0): " + String(repeating: "b", count: 10) }
            .joined(separator: "\r\n") + "\r\n\r\n", "431"),
        ("GET / HTTP/2.0\r\n\r\n", "505"),
        ("GET / HTTP/1.1 extra\r\n\r\n", "400"),
        ("GET  / HTTP/1.1\r\n\r\n", "400"),
        ("GET / HTTP/1.x\r\n\r\n", "400"),
        ("GET / FTP/1.1\r\n\r\n", "400"),
        ("G(T / HTTP/1.1\r\n\r\n", "400"),
        ("GET /\u{1} HTTP/1.1\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost : x\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: x\r\nNo colon\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: x\r\n: empty name\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "400"),
        ("GET / HTTP/1.0\r\nContent-Length: 99999999999999999999\r\n\r\n", "400"),
        ("GET / HTTP/1.0\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\n\r\n", "400"),
        ("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", "400"),
    ])
    func malformedOrOversizedHeadsAreRejectedWithTheirStatus(request: String, status: String) {
        let results = frame(request)
        guard results.count == 1, case .failure(let rejection) = results[0] else {
            Issue.record("expected one rejection for \(request.debugDescription), got \(results)")
            return
        }
        #expect(rejection.status.hasPrefix(status + " "), "\(request.debugDescription): \(rejection.status)")
    }

    @Test func equalRepeatedLengthsAreOneLength() throws {
        let text = "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nxx"
        let head = try #require(heads(text).first)
        #expect(head.contentLength == 2)
    }

    @Test func aHeadInProgressIsReportedUntilItEnds() {
        var framer = RequestFramer(limits: Self.limits)
        #expect(!framer.inHead)
        _ = Array("\r\n".utf8).withUnsafeBytes { framer.consume($0) }
        #expect(!framer.inHead)
        _ = Array("GET / HT".utf8).withUnsafeBytes { framer.consume($0) }
        #expect(framer.inHead)
        let (consumed, event) = Array("TP/1.1\r\nHost: x\r\n\r\nGET".utf8).withUnsafeBytes { framer.consume($0) }
        #expect(consumed == 19)
        if case .head = event {} else { Issue.record("expected a head") }
        #expect(!framer.inHead)
    }

    @Test func headsBuiltFromFieldsAnswerTheSameQuestions() {
        let head = RequestHead(method: "GET", target: "/x", fields: [("range", "bytes=1-2"), ("Accept", "a/b")])
        #expect(head.first("Range") == "bytes=1-2")
        #expect(head.values("accept") == ["a/b"])
        #expect(head.allFields.map(\.name) == ["range", "Accept"])
        #expect(head.isKeepAlive)
    }
}
