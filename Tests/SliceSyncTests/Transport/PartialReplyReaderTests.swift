import Testing
@testable import SliceSync

@Suite("Reading 206 replies as they arrive")
struct PartialReplyReaderTests {
    /// Feeds `body` in pieces of the given sizes (cycled) and returns the file bytes by offset.
    func read(_ body: [UInt8], head: HTTPResponseHead, pieces: [Int]) throws -> [Int: UInt8] {
        var reader = try PartialReplyReader(head: head)
        var bytes: [Int: UInt8] = [:]
        var parts = 0
        func collect(_ event: PartialReplyReader.Event) {
            switch event {
            case .part: parts += 1
            case .data(let offset, let data):
                for (k, byte) in data.enumerated() { bytes[offset + k] = byte }
            }
        }
        var index = 0
        var turn = 0
        while index < body.count {
            let size = min(pieces[turn % pieces.count], body.count - index)
            try body[index..<(index + size)].withUnsafeBytes { try reader.feed($0, collect) }
            index += size
            turn += 1
        }
        try reader.finish(collect)
        return bytes
    }

    func multipart(_ file: [UInt8], _ ranges: [Range<Int>], boundary: String) -> [UInt8] {
        var body = Array("preamble\r\n".utf8)
        for range in ranges {
            let contentRange = "bytes \(range.lowerBound)-\(range.upperBound - 1)/\(file.count)"
            let partHeaders = "Content-Type: application/octet-stream\r\nContent-Range: \(contentRange)"
            body += Array("\r\n--\(boundary)\r\n\(partHeaders)\r\n\r\n".utf8)
            body += file[range]
        }
        return body + Array("\r\n--\(boundary)--\r\n".utf8)
    }

    @Test(arguments: [[1], [7], [3, 1000], [65536], [2, 5, 11]])
    func multipartBodiesReadTheSameInAnyPieces(pieces: [Int]) throws {
        let file = randomBytes(5000, seed: 3)
        let ranges = [0..<100, 700..<2048, 4999..<5000]
        // A boundary that begins with dashes, preceded in the preamble by more dashes.
        let boundary = "--x--"
        var body = multipart(file, ranges, boundary: boundary)
        body.insert(contentsOf: Array("-----".utf8), at: 0)
        let head = HTTPResponseHead(status: 206, headers: [("Content-Type",
            "multipart/byteranges; boundary=\(boundary)")])
        let bytes = try read(body, head: head, pieces: pieces)
        #expect(bytes.count == ranges.reduce(0) { $0 + $1.count })
        for range in ranges { for offset in range { #expect(bytes[offset] == file[offset]) } }
    }

    @Test func aSinglePartIsPlacedByItsContentRange() throws {
        let file = randomBytes(3000, seed: 4)
        let head = HTTPResponseHead(status: 206, headers: [("Content-Range", "bytes 1000-2999/3000")])
        let bytes = try read(Array(file[1000...]), head: head, pieces: [333])
        #expect(bytes.count == 2000 && bytes[1000] == file[1000] && bytes[2999] == file[2999])
    }

    @Test(arguments: ["cut", "extra", "noRange"])
    func brokenSinglePartRepliesAreErrors(kind: String) throws {
        let range = kind == "noRange" ? [("Content-Length", "10")] : [("Content-Range", "bytes 0-9/100")]
        let head = HTTPResponseHead(status: 206, headers: range)
        let body = [UInt8](repeating: 1, count: kind == "cut" ? 9 : (kind == "extra" ? 11 : 10))
        #expect(throws: TransportError.self) { try read(body, head: head, pieces: [4]) }
    }

    @Test(arguments: ["short", "long", "badRange", "noEnd", "hugeHeaders"])
    func brokenMultipartBodiesAreErrorsInAnyPieces(kind: String) throws {
        let file = randomBytes(200, seed: 5)
        var body: [UInt8]
        switch kind {
        case "short": body = Array("--B\r\nContent-Range: bytes 0-9/200\r\n\r\nabc\r\n--B--".utf8)
        case "long": body = Array("--B\r\nContent-Range: bytes 0-1/200\r\n\r\nabc\r\n--B--".utf8)
        case "badRange": body = Array("--B\r\nContent-Range: bytes 9-1/200\r\n\r\nabc\r\n--B--".utf8)
        case "noEnd": body = Array(multipart(file, [0..<50], boundary: "B").dropLast(8))
        default: body = Array("--B\r\n".utf8) + [UInt8](repeating: 65, count: 10000)
        }
        let head = HTTPResponseHead(status: 206, headers: [("Content-Type", "multipart/byteranges; boundary=B")])
        for pieces in [[1], [1 << 20]] {
            #expect(throws: TransportError.self) { try read(body, head: head, pieces: pieces) }
        }
    }

    @Test func theCollectorHandsOnWholeUnitsWhateverThePieces() throws {
        let unit = 16
        let wanted = [32..<100, 160..<203]  // the last range ends the file, mid-unit
        let file = randomBytes(203, seed: 6)
        for pieceSize in [1, 5, 16, 17, 64, 300] {
            let collector = UnitCollector(unit: unit, wanted: wanted)
            var handed: [Range<Int>] = []
            // The server sends one coalesced range with bytes nobody asked for.
            var offset = 0
            while offset < file.count {
                let end = min(file.count, offset + pieceSize)
                try file[offset..<end].withUnsafeBytes { raw in
                    try collector.add(offset: offset, bytes: raw) { range, bytes in
                        #expect(Array(bytes) == Array(file[range]))
                        handed.append(range)
                        return range
                    }
                }
                offset = end
            }
            for range in handed {
                #expect(wanted.contains { $0.lowerBound <= range.lowerBound && range.upperBound <= $0.upperBound })
                #expect(range.lowerBound % unit == 0 || range.lowerBound == 32)
                #expect(range.upperBound % unit == 0 || range.upperBound == 100 || range.upperBound == 203)
            }
            #expect(collector.accepted.gaps(in: 0..<203) == [0..<32, 100..<160])
        }
    }

    /// Small network reads of one long range are handed on in pieces of the batch size, not read by read.
    @Test func theCollectorGathersSmallReads() throws {
        let unit = 512
        let file = randomBytes(40_000, seed: 7)
        let collector = UnitCollector(unit: unit, wanted: [0..<40_000], batch: 8192)
        var handed: [Range<Int>] = []
        for offset in stride(from: 0, to: file.count, by: 1000) {
            let end = min(file.count, offset + 1000)
            try file[offset..<end].withUnsafeBytes { raw in
                try collector.add(offset: offset, bytes: raw) { range, bytes in
                    #expect(Array(bytes) == Array(file[range]))
                    handed.append(range)
                    return range
                }
            }
        }
        #expect(handed.count == 5)
        #expect(handed.dropLast().allSatisfy { $0.count == 8192 })
        #expect(collector.accepted.gaps(in: 0..<40_000).isEmpty)
    }

    /// When a reply breaks off, the whole units that arrived are handed on; the unit cut short is not.
    @Test func aBrokenReplyKeepsItsWholeUnits() throws {
        let unit = 512
        let file = randomBytes(10_000, seed: 8)
        let collector = UnitCollector(unit: unit, wanted: [0..<10_000], batch: 8192)
        var handed: [Range<Int>] = []
        let deliver: UnitCollector.Deliver = { range, bytes in
            #expect(Array(bytes) == Array(file[range]))
            handed.append(range)
            return range
        }
        try file[0..<3000].withUnsafeBytes { try collector.add(offset: 0, bytes: $0, deliver: deliver) }
        #expect(handed.isEmpty)
        try collector.flushWholeUnits(deliver)
        #expect(handed == [0..<2560])
        // The rest of the unit cut short stays buffered and continues if more comes.
        try file[3000..<10_000].withUnsafeBytes { try collector.add(offset: 3000, bytes: $0, deliver: deliver) }
        #expect(collector.accepted.gaps(in: 0..<10_000).isEmpty)
    }

    /// A piece the receiver refuses leaves nothing buffered that could be handed on at the wrong place.
    @Test func aRefusedPieceLeavesNothingBehind() throws {
        let unit = 512
        let file = randomBytes(9000, seed: 9)
        let collector = UnitCollector(unit: unit, wanted: [0..<9000], batch: 4096)
        struct Refused: Error {}
        var refuse = true
        var handed: [Range<Int>] = []
        let deliver: UnitCollector.Deliver = { range, bytes in
            if refuse { throw Refused() }
            #expect(Array(bytes) == Array(file[range]))
            handed.append(range)
            return range
        }
        // 4100 bytes fill the buffer: its 4096 go to the receiver, which refuses them.
        #expect(throws: Refused.self) {
            try file[0..<4100].withUnsafeBytes { try collector.add(offset: 0, bytes: $0, deliver: deliver) }
        }
        refuse = false
        try collector.flushWholeUnits(deliver)
        try collector.flush(deliver)
        #expect(handed.isEmpty)
    }
}

@Suite("The download rate cap")
struct RateLimiterTests {
    @Test func takersOverTheirShareWaitInProportion() {
        var bucket = RateLimiter.Bucket(rate: 1_000_000, now: 0)
        // The first burst (a tenth of a second's worth) is free.
        #expect(bucket.take(100_000, now: 0) == 0)
        // One more second's worth at once: a second's wait.
        #expect(abs(bucket.take(1_000_000, now: 0) - 1.0) < 1e-9)
        // Two connections in debt: each later taker waits for all the debt before it.
        #expect(abs(bucket.take(500_000, now: 0) - 1.5) < 1e-9)
        // Time pays the debt back at the rate, never beyond the burst.
        #expect(bucket.take(0, now: 1.5) == 0)
        #expect(bucket.take(0, now: 100) == 0 && bucket.tokens == bucket.burst)
    }

    @Test func aSlowRateStillMovesWholeReads() {
        var bucket = RateLimiter.Bucket(rate: 1000, now: 0)
        #expect(bucket.burst == 16 * 1024)
        #expect(bucket.take(16 * 1024, now: 0) == 0)
        #expect(abs(bucket.take(1000, now: 0) - 1.0) < 1e-9)
    }
}
