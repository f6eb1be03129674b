import Testing
@testable import SliceSync

struct RangeSelectionTests {
    @Test(arguments: [
        ("bytes=0-99", RangeSelection.single(0..<100)),
        ("bytes=-100", .single(900..<1000)),
        ("bytes=-5000", .single(0..<1000)),
        ("bytes=990-", .single(990..<1000)),
        ("bytes=990-5000", .single(990..<1000)),
        ("bytes=0-0,-1", .multiple([0..<1, 999..<1000])),
        ("bytes=500-599, 0-99", .multiple([500..<600, 0..<100])),
        ("bytes=0-99,50-149", .single(0..<150)),
        ("bytes=500-599,0-99,90-109", .multiple([0..<110, 500..<600])),
        ("bytes=0-99,0-99,0-99", .single(0..<100)),
        ("bytes=1000-", .unsatisfiable),
        ("bytes=-0", .unsatisfiable),
        ("bytes=1000-1001,2000-", .unsatisfiable),
        ("bytes=1000-1001,0-0", .single(0..<1)),
        ("bytes=5-4", .whole),
        ("bytes=abc", .whole),
        ("items=0-1", .whole),
        ("bytes=0-1;", .whole),
        ("bytes=--1", .whole),
        ("bytes=", .whole),
    ])
    func selectsWhatRFC9110Allows(header: String, expected: RangeSelection) {
        #expect(RangeSelection.select(header: header, length: 1000) == expected)
    }

    @Test func tooManyDisjointRangesGetTheWholeFile() {
        let header = "bytes=" + (0..<201).map { "\($0 * 2)-\($0 * 2)" }.joined(separator: ",")
        #expect(RangeSelection.select(header: header, length: 1000) == .whole)
        let allowed = "bytes=" + (0..<200).map { "\($0 * 2)-\($0 * 2)" }.joined(separator: ",")
        guard case .multiple(let parts) = RangeSelection.select(header: allowed, length: 1000) else {
            Issue.record("200 ranges should be served as multipart")
            return
        }
        #expect(parts.count == 200)
    }

    @Test func overlappingRequestsNeverCostMoreThanTheFile() {
        // The "Apache Killer" shape: many overlapping ranges over the whole file.
        let header = "bytes=0-," + (0..<500).map { "\($0)-\(999 - $0)" }.joined(separator: ",")
        #expect(RangeSelection.select(header: header, length: 1000) == .single(0..<1000))
    }
}

struct MultipartByteRangesTests {
    @Test func layoutMatchesTheFormatAndParsesBack() throws {
        let file = (0..<1000).map { UInt8($0 % 251) }
        let ranges = [10..<20, 500..<512]
        let multipart = MultipartByteRanges(ranges: ranges, length: 1000, contentType: "application/octet-stream",
            boundary: "BOUNDARY1234")
        var body: [UInt8] = []
        for segment in multipart.segments {
            switch segment {
            case .bytes(let bytes): body += bytes
            case .file(let range): body += file[range]
            }
        }
        #expect(body.count == multipart.contentLength)
        let text = String(decoding: body.prefix(120), as: UTF8.self)
        #expect(text.hasPrefix("\r\n--BOUNDARY1234\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes " +
            "10-19/1000\r\n\r\n"))
        #expect(String(decoding: body.suffix(20), as: UTF8.self) == "\r\n--BOUNDARY1234--\r\n")
        #expect(multipart.contentType == "multipart/byteranges; boundary=BOUNDARY1234")
        let parts = try ByteRanges.parseMultipart(body, boundary: "BOUNDARY1234")
        #expect(parts.map(\.range) == ranges)
        #expect(parts.map { Array(body[$0.bodyRange]) } == ranges.map { Array(file[$0]) })
    }

    @Test func boundariesAreFreshAndSafe() {
        let first = MultipartByteRanges.randomBoundary()
        #expect(first != MultipartByteRanges.randomBoundary())
        #expect(first.utf8.count == 25)
        #expect(first.allSatisfy { $0.isLetter || $0.isNumber })
    }
}
