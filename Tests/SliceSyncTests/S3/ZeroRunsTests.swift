import Foundation
@testable import SliceSync
import Testing
import TestSupport

@Suite struct ZeroRunsTests {
    @Test func findsZerosInDataAndHoles() throws {
        let directory = try TemporaryDirectory()
        // 1 MiB of data, 3 MiB of written zeros, 1 MiB of data, a 4 MiB hole, then 1 byte.
        var bytes = [UInt8](repeating: 7, count: 1 << 20) + [UInt8](repeating: 0, count: 3 << 20)
            + [UInt8](repeating: 9, count: 1 << 20)
        bytes[(1 << 20) + 5] = 0
        let path = try directory.write("image", bytes)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.truncate(atOffset: UInt64(bytes.count + (4 << 20)))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data([1]))
        try handle.close()
        let file = try SystemFile.openForReading(path)
        let length = bytes.count + (4 << 20) + 1
        let runs = try ZeroRuns.find(in: file, length: length, minimum: 1 << 20)
        #expect(runs == [(1 << 20)..<(4 << 20), (5 << 20)..<(9 << 20)])
        #expect(try ZeroRuns.isZero(file, (1 << 20)..<(4 << 20)))
        #expect(try !ZeroRuns.isZero(file, ((1 << 20) - 1)..<(2 << 20)))
    }

    @Test func zeroRunsAreCopiedFromTheOldObjectsZeros() throws {
        // The matcher tied three zero pieces of the old object (at 100, 200 and 300) to one place (50).
        let matches: [(new: Range<Int>, old: Int)] = [(0..<50, 0), (50..<60, 100), (50..<60, 200), (50..<60, 300)]
        let found = ZeroRuns.matches(for: [1000..<1025], oldZeros: [110..<120], matches: matches, minimum: 10,
                                     isZero: { $0 == 50..<60 })
        // Old zeros: 100..<120 (from the tie and the known piece), 200..<210, 300..<310; the longest is used.
        #expect(found.map(\.new) == [1000..<1020, 1020..<1025])
        #expect(found.map(\.old) == [100, 100])
        #expect(ZeroRuns.matches(for: [1000..<1025], oldZeros: [], matches: matches, minimum: 30,
                                 isZero: { _ in true }).isEmpty)
    }
}
