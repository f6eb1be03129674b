import Testing
@testable import SliceSync

@Suite("Content-Range and multipart/byteranges")
struct ByteRangesTests {
    @Test(arguments: [
        ("bytes 0-99/1000", 0..<100, 1000),
        ("bytes 999-999/1000", 999..<1000, 1000),
        ("bytes 5-9/*", 5..<10, nil),
    ] as [(String, Range<Int>, Int?)])
    func validContentRanges(value: String, range: Range<Int>, total: Int?) {
        #expect(ByteRanges.parseContentRange(value) == ByteRanges.ContentRange(range: range, completeLength: total))
    }

    @Test(arguments: ["bytes 10-5/100", "bytes 0-100/100", "bytes -1-5/10", "items 0-1/2", "bytes 0-1", "bytes a-b/c",
        "bytes 0-1/x", ""])
    func invalidContentRanges(value: String) {
        #expect(ByteRanges.parseContentRange(value) == nil)
    }

    @Test func boundaryParameter() {
        #expect(ByteRanges.boundary(ofContentType: "multipart/byteranges; boundary=abc") == "abc")
        #expect(ByteRanges.boundary(ofContentType: "Multipart/ByteRanges;boundary=\"a b\"") == "a b")
        #expect(ByteRanges.boundary(ofContentType: "text/plain; boundary=abc") == nil)
        #expect(ByteRanges.boundary(ofContentType: "multipart/byteranges") == nil)
    }

    func body(_ parts: [(String, String)], boundary: String = "B", preamble: String = "",
        epilogue: String = "") -> [UInt8] {
        var text = preamble
        for (range,
            data) in parts { text += "\r\n--\(boundary)\r\nContent-Type: text/plain\r\nContent-Range: bytes " +
                "\(range)\r\n\r\n\(data)" }
        text += "\r\n--\(boundary)--\r\n" + epilogue
        return Array(text.utf8)
    }

    @Test func splitsPartsInOrder() throws {
        let bytes = body([("0-2/10", "abc"), ("7-9/10", "hij")], preamble: "ignored preamble")
        let parts = try ByteRanges.parseMultipart(bytes, boundary: "B")
        #expect(parts.map(\.range) == [0..<3, 7..<10])
        #expect(parts.map { String(decoding: bytes[$0.bodyRange], as: UTF8.self) } == ["abc", "hij"])
        #expect(parts.allSatisfy { $0.completeLength == 10 })
    }

    @Test func dataThatContainsTheBoundaryTextIsStillSplitByLength() throws {
        let bytes = body([("0-5/10", "--B--x")])
        let parts = try ByteRanges.parseMultipart(bytes, boundary: "B")
        #expect(parts.count == 1)
        #expect(String(decoding: bytes[parts[0].bodyRange], as: UTF8.self) == "--B--x")
    }

    @Test(arguments: ["short", "long", "noRange", "cut", "noBoundary"])
    func malformedBodiesAreRejected(kind: String) {
        let bytes: [UInt8]
        switch kind {
        case "short": bytes = body([("0-9/10", "abc")])
        case "long": bytes = body([("0-1/10", "abc")])
        case "noRange": bytes = Array("\r\n--B\r\nContent-Type: x\r\n\r\nabc\r\n--B--\r\n".utf8)
        case "cut": bytes = Array(body([("0-2/10", "abc")]).prefix(30))
        default: bytes = Array("abc".utf8)
        }
        #expect(throws: TransportError.self) { try ByteRanges.parseMultipart(bytes, boundary: "B") }
    }
}

@Suite("Range request headers (RFC 9110)")
struct RangeRequestTests {
    @Test(arguments: [
        ("bytes=0-99", RangeRequest.ranges([0..<100])),
        ("bytes=900-", .ranges([900..<1000])),
        ("bytes=-100", .ranges([900..<1000])),
        ("bytes=-5000", .ranges([0..<1000])),
        ("bytes=990-2000", .ranges([990..<1000])),
        ("bytes=0-0, 5-9 ,-1", .ranges([0..<1, 5..<10, 999..<1000])),
        ("bytes=1000-", .unsatisfiable),
        ("bytes=-0", .unsatisfiable),
        ("bytes=5-1", .invalid),
        ("bytes=abc", .invalid),
        ("items=0-1", .invalid),
        ("bytes=0-1,x", .invalid),
        // Numbers of any length: a last position past the end is clamped, a first one is past the end.
        ("bytes=0-99999999999999999999", .ranges([0..<1000])),
        ("bytes=10-000000000000000000000000000099", .ranges([10..<100])),
        ("bytes=-99999999999999999999999", .ranges([0..<1000])),
        ("bytes=99999999999999999999-", .unsatisfiable),
        ("bytes=99999999999999999999-5", .invalid),
    ])
    func parses(header: String, expected: RangeRequest) {
        #expect(RangeRequest.parse(header, length: 1000) == expected)
    }
}

@Suite("Request planning")
struct RequestPlannerTests {
    @Test func mergesOnlySmallGaps() {
        #expect(RequestPlanner.merge([0..<100, 200..<300, 2000..<2100]) == [0..<300, 2000..<2100])
        #expect(RequestPlanner.merge([0..<100, 100..<200], gap: 0) == [0..<200])
    }

    @Test func boundsRangesPerRequestAndHeaderLength() {
        let ranges = (0..<200).map { ($0 * 10_000)..<($0 * 10_000 + 2048) }
        let requests = RequestPlanner.requests(for: ranges, maxRanges: 64, unit: 2048)
        #expect(requests.map(\.count) == [64, 64, 64, 8])
        #expect(requests.flatMap { $0 } == ranges)
        #expect(RequestPlanner.requests(for: ranges, maxRanges: 1, unit: 2048).count == 200)
        // Far into a large file every range takes more than 20 characters: the header bound cuts first.
        let far = (0..<400).map { (10_000_000_000 + $0 * 10_000_000)..<(10_000_000_000 + $0 * 10_000_000 + 2048) }
        let cut = RequestPlanner.requests(for: far, maxRanges: 200, unit: 2048)
        #expect(cut.allSatisfy { ByteRanges.header(for: $0).utf8.count <= RequestPlanner.maxRangeHeader + 40 })
        #expect(cut.count == 3 && cut.allSatisfy { $0.count < 200 })
        #expect(cut.flatMap { $0 } == far)
    }

    @Test func cutsLongRangesIntoWholeUnits() {
        let requests = RequestPlanner.requests(for: [1000..<(1000 + 40 * 1024 * 1024 + 500)], maxRanges: 64, unit: 4096)
        let pieces = requests.flatMap { $0 }
        #expect(pieces.first?.lowerBound == 1000)
        #expect(pieces.dropLast().allSatisfy { $0.count % 4096 == 0 && $0.count <= RequestPlanner.maxRequestBytes })
        #expect(pieces.reduce(0) { $0 + $1.count } == 40 * 1024 * 1024 + 500)
    }
}

@Suite("Proxies from the environment")
struct ProxySettingsTests {
    @Test func choosesByScheme() {
        let settings = ProxySettings(environment: ["http_proxy": "http://proxy:3128",
            "HTTPS_PROXY": "https://user:p%40ss@secure:8443"])
        #expect(settings.server(for: "http://a.example/x") == .init(host: "proxy", port: 3128, user: nil,
            password: nil))
        #expect(settings.server(for: "https://a.example/x") == .init(host: "secure", port: 8443, user: "user",
            password: "p@ss"))
    }

    @Test func noProxyListsHostsAndDomains() {
        let settings = ProxySettings(environment: ["http_proxy": "proxy:8080",
            "no_proxy": "localhost, .internal.example,127.0.0.1"])
        #expect(settings.server(for: "http://localhost/x") == nil)
        #expect(settings.server(for: "http://files.internal.example/x") == nil)
        #expect(settings.server(for: "http://127.0.0.1:8080/x") == nil)
        #expect(settings.server(for: "http://example.org/x")?.port == 8080)
        #expect(ProxySettings(environment: ["http_proxy": "p:1", "NO_PROXY": "*"]).server(for: "http://a/x") == nil)
    }
}
