import Testing
@testable import SliceSync

@Suite("The piece map's compact sources")
struct PackedSourcesTests {
    @Test(arguments: [1, 63, 64, 65, 1000])
    func behavesLikeOneOptionalPerUnit(count: Int) {
        var packed = PackedSources(count: count, unitSize: 2048)
        var model = [LocalSource?](repeating: nil, count: count)
        var random = SystemRandomNumberGenerator()
        for step in 0..<300 {
            let start = Int.random(in: 0..<count, using: &random)
            let end = min(count, start + Int.random(in: 1...200, using: &random))
            let source = LocalSource(file: step % 3, offset: Int.random(in: 0..<(1 << 40), using: &random))
            switch step % 3 {
            case 0:
                // A whole slice found: consecutive bytes of one file.
                packed.setRun(start..<end, from: source)
                for index in start..<end { model[index] = LocalSource(file: source.file, offset: source.offset
                    + (index - start) * 2048) }
            case 1:
                packed[start] = source
                model[start] = source
            default:
                packed[start] = nil
                model[start] = nil
            }
            #expect(packed.indices.allSatisfy { packed[$0] == model[$0] })
        }
    }

    @Test func aMapOfWholeSlicesStaysSmall() throws {
        // 4 GiB of 2 KiB blocks, every slice found whole but one with a changed block.
        let header = try SignatureV2Header(filename: "f", length: 4 << 30, sliceSize: 256 << 10, blockSize: 2048,
                                           sha256: [UInt8](repeating: 0, count: 32))
        var map = PieceMap(unitSize: 2048, length: header.length,
            sources: PackedSources(count: header.blockCount, unitSize: 2048))
        map.take((0..<header.sliceCount).map { LocalSource(file: 0, offset: $0 * (256 << 10)) }, header: header)
        map.sources[1000 * 128 + 5] = nil
        #expect(map.missingRanges == [((1000 * 128 + 5) * 2048)..<((1000 * 128 + 6) * 2048)])
        #expect(map.localRuns.count == 2)
        #expect(map.sources[7] == LocalSource(file: 0, offset: 7 * 2048))
    }
}

@Suite("Planning what to fetch")
struct SyncPlanTests {
    func map(length: Int, found: Range<Int>) -> PieceMap {
        var map = PieceMap(unitSize: 2048, length: length, sources: PackedSources(count: (length + 2047) / 2048,
            unitSize: 2048))
        map.sources.setRun(found, from: LocalSource(file: 0, offset: found.lowerBound * 2048))
        return map
    }

    @Test func rangesWhenMostIsLocal() {
        let plan = SyncPlan(map: map(length: 1 << 20, found: 0..<500), length: 1 << 20, maxRanges: 200, unit: 2048)
        #expect(!plan.fullDownload)
        #expect(plan.missingRanges == [(500 * 2048)..<(1 << 20)])
        #expect(plan.bytesFromServer(length: 1 << 20) == plan.missingBytes)
        #expect(plan.dataRequests == 1)
    }

    @Test func wholeWhenTooLittleIsLocal() {
        // 2 KiB found of 1 MiB: under 1/64, not worth the ranges' requests.
        let plan = SyncPlan(map: map(length: 1 << 20, found: 3..<4), length: 1 << 20, maxRanges: 200, unit: 2048)
        #expect(plan.fullDownload)
        #expect(plan.bytesFromServer(length: 1 << 20) == 1 << 20)
        #expect(plan.dataRequests == 1)
    }

    @Test func nothingToFetchWhenEverythingIsLocal() {
        let plan = SyncPlan(map: map(length: 1 << 20, found: 0..<512), length: 1 << 20, maxRanges: 200, unit: 2048)
        #expect(!plan.fullDownload && plan.missingBytes == 0 && plan.dataRequests == 0)
        #expect(plan.reusedBytes == 1 << 20)
    }
}
