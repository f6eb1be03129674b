@testable import SliceSync
import Testing
import TestSupport

@Suite struct PushPlanTests {
    /// Every plan: parts back to back over the whole file, all but the last at least the minimum, none
    /// over the maximum, at most the most parts, and every copied byte where a match put it.
    static func checkRules(_ plan: PushPlan, matches: [(new: Range<Int>, old: Int)], minimum: Int, maximum: Int,
                           maximumParts: Int) {
        var position = 0
        for (index, part) in plan.parts.enumerated() {
            #expect(part.range.lowerBound == position)
            position = part.range.upperBound
            #expect(!part.range.isEmpty)
            if index < plan.parts.count - 1 { #expect(part.range.count >= minimum, "part \(index + 1) is short") }
            #expect(part.range.count <= maximum)
            guard let from = part.copyFrom else { continue }
            // Each copied byte lies in a match that maps it to the same place in the old object.
            var checked = part.range.lowerBound
            while checked < part.range.upperBound {
                let match = matches.first { $0.new.contains(checked)
                    && $0.old + (checked - $0.new.lowerBound) == from + (checked - part.range.lowerBound) }
                guard let match else {
                    Issue.record("byte \(checked) of a copied part is in no match")
                    return
                }
                checked = min(part.range.upperBound, match.new.upperBound)
            }
        }
        #expect(position == plan.length)
        #expect(plan.parts.count <= maximumParts)
    }

    @Test func scatteredEditsCostAMinimumPartEach() {
        let mib = 1 << 20
        let length = 1024 * mib
        // 20 edits of 100 bytes, spread evenly: the old blocks around each are not found.
        var matches: [(new: Range<Int>, old: Int)] = []
        var start = 0
        for edit in 1...20 {
            let at = edit * length / 21
            matches.append((start..<(at - 2048), start))
            start = at + 2048
        }
        matches.append((start..<length, start))
        let plan = PushPlan(length: length, matches: matches)
        Self.checkRules(plan, matches: matches, minimum: PushPlan.minimumPart, maximum: PushPlan.maximumPart,
                        maximumParts: PushPlan.maximumParts)
        #expect(plan.uploadedBytes == 20 * PushPlan.minimumPart)
        #expect(plan.uploadParts == 20)
        #expect(plan.copyParts == 21)
    }

    @Test func insertionsShiftTheOldOffsets() {
        let mib = 1 << 20
        // 40 MiB old; the new file has 1,000 bytes inserted at 20 MiB.
        let matches: [(new: Range<Int>, old: Int)] = [(0..<(20 * mib), 0), ((20 * mib + 1000)..<(40 * mib + 1000),
                                                                           20 * mib)]
        let plan = PushPlan(length: 40 * mib + 1000, matches: matches)
        Self.checkRules(plan, matches: matches, minimum: PushPlan.minimumPart, maximum: PushPlan.maximumPart,
                        maximumParts: PushPlan.maximumParts)
        #expect(plan.uploadedBytes == PushPlan.minimumPart)
        let copies = plan.parts.compactMap { part in part.copyFrom.map { (part.range, $0) } }
        #expect(copies.count == 2)
        #expect(copies.last.map { $0.1 - $0.0.lowerBound } == -1000)
    }

    @Test func shortCopiesAndNothingFoundAreUploaded() {
        let mib = 1 << 20
        let none = PushPlan(length: 50 * mib, matches: [])
        #expect(none.copiedBytes == 0)
        #expect(none.parts.count == 4)
        Self.checkRules(none, matches: [], minimum: PushPlan.minimumPart, maximum: PushPlan.maximumPart,
                        maximumParts: PushPlan.maximumParts)
        let short = PushPlan(length: 50 * mib, matches: [(mib..<(3 * mib), mib)])
        #expect(short.copiedBytes == 0)
        // A short copy that ends the file stays a copy: the last part has no minimum.
        let tail = PushPlan(length: 50 * mib, matches: [((48 * mib)..<(50 * mib), 0)])
        #expect(tail.copiedBytes == 2 * mib)
        #expect(tail.parts.last?.copyFrom == 0)
        Self.checkRules(tail, matches: [((48 * mib)..<(50 * mib), 0)], minimum: PushPlan.minimumPart,
                        maximum: PushPlan.maximumPart,
                        maximumParts: PushPlan.maximumParts)
    }

    @Test func aNeighbourWithoutSpareIsUploadedWhole() {
        // minimum 10: copies of exactly 10 have nothing spare, so the 2-byte upload between them takes one.
        let matches: [(new: Range<Int>, old: Int)] = [(0..<10, 100), (12..<22, 200), (22..<60, 300)]
        let plan = PushPlan(length: 60, matches: matches, minimumPart: 10, partSize: 20, maximumPart: 1000)
        Self.checkRules(plan, matches: matches, minimum: 10, maximum: 1000, maximumParts: 10_000)
        #expect(plan.uploadedBytes == 12)
    }

    @Test func tooManyPartsMakeThemBigger() {
        let matches: [(new: Range<Int>, old: Int)] = stride(from: 0, to: 10_000, by: 20).map { ($0..<($0 + 15), $0) }
        let plan = PushPlan(length: 10_000, matches: matches, minimumPart: 10, partSize: 20, maximumPart: 1000,
                            maximumParts: 100)
        #expect(plan.parts.count <= 100)
        Self.checkRules(plan, matches: matches, minimum: 10, maximum: 1000, maximumParts: 100)
    }

    @Test(arguments: 0..<200) func randomMatchesKeepTheRules(seed: Int) {
        var random = SeededGenerator(seed: UInt64(seed))
        let length = Int.random(in: 1...5000, using: &random)
        var matches: [(new: Range<Int>, old: Int)] = []
        for _ in 0..<Int.random(in: 0...30, using: &random) {
            let start = Int.random(in: 0..<length, using: &random)
            let end = min(length, start + Int.random(in: 1...800, using: &random))
            matches.append((start..<end, Int.random(in: 0...10_000, using: &random)))
        }
        let minimum = Int.random(in: 1...200, using: &random)
        let plan = PushPlan(length: length, matches: matches, minimumPart: minimum,
                            partSize: Int.random(in: 1...900, using: &random), maximumPart: 4 * minimum + 1000,
                            maximumParts: 10_000)
        Self.checkRules(plan, matches: matches, minimum: minimum, maximum: 4 * minimum + 1000, maximumParts: 10_000)
    }
}
