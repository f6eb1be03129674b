import Testing
import TestSupport
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

    /// Hostile input: valid requests with bytes flipped, inserted, deleted or cut, fed in random read
    /// sizes. Nothing may trap, every call must make progress, and a head that gets through has a
    /// method of token bytes and a target, and answers every question the server asks of it.
    @Test func mutatedRequestsNeverTrapAndAlwaysProgress() throws {
        let corpus = [
            "GET /a/b.iso HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9,20-29\r\nIf-Range: \"e\"\r\n\r\n",
            "HEAD /x HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nabc",
            "POST /y HTTP/1.1\r\nHost: y\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            "GET http://h/z?q=1 HTTP/1.1\nHost: h\n\n",
        ].map { Array($0.utf8) }
        var random = SeededGenerator(seed: 16)
        let alphabet = Array(" :\r\n\t,-0123456789aAzZ/\u{0}\u{7F}".utf8) + [0x80, 0xFF]
        for _ in 0..<3000 {
            let count = Int.random(in: 1...3, using: &random)
            var bytes = (0..<count).flatMap { _ in corpus.randomElement(using: &random)! }
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                let at = Int.random(in: 0..<bytes.count, using: &random)
                switch Int.random(in: 0..<4, using: &random) {
                case 0: bytes[at] = alphabet.randomElement(using: &random)!
                case 1: bytes.insert(alphabet.randomElement(using: &random)!, at: at)
                case 2: if bytes.count > 1 { bytes.remove(at: at) }
                default: bytes = Array(bytes[..<max(1, at)])
                }
            }
            var framer = RequestFramer(limits: .init(maxRequestLineBytes: 48, maxHeaderBytes: 160))
            var offset = 0
            while offset < bytes.count {
                let end = min(bytes.count, offset + Int.random(in: 1...64, using: &random))
                let (consumed, event) = bytes[offset..<end].withUnsafeBytes { framer.consume($0) }
                try #require(consumed > 0 && consumed <= end - offset)
                offset += consumed
                if case .head(let head) = event {
                    #expect(head.method.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F })
                    #expect(!head.target.isEmpty && head.minorVersion <= 9)
                    _ = (head.isKeepAlive, head.contentLength, head.joined("Range"), head.allFields)
                }
            }
        }
    }

    @Test func headsBuiltFromFieldsAnswerTheSameQuestions() {
        let head = RequestHead(method: "GET", target: "/x", fields: [("range", "bytes=1-2"), ("Accept", "a/b")])
        #expect(head.first("Range") == "bytes=1-2")
        #expect(head.values("accept") == ["a/b"])
        #expect(head.allFields.map(\.name) == ["range", "Accept"])
        #expect(head.isKeepAlive)
    }
}
