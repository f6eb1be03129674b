import Foundation
import Testing
import TestSupport
@testable import SliceSync

@Suite("The in-place update journal")
struct UpdateJournalTests {
    private func sealed(_ journal: UpdateJournal, data: [UInt8], in directory: TemporaryDirectory) throws -> String {
        let destination = try directory.write("dest", [UInt8](repeating: 0xEE, count: 10_000))
        let staging = try SystemFile.createExclusive(directory.file("staging"), mode: 0o600)
        try staging.truncate(to: journal.length)
        for range in journal.ranges { try staging.write(Array(data[range]), at: range.lowerBound) }
        try journal.seal(staging, destination: destination)
        return destination
    }

    /// Sealed, read back, applied twice (as after a crash mid-way): the destination holds the new
    /// bytes in the ranges, keeps the rest, and takes the new length.
    @Test(arguments: [6_000, 10_000, 14_321])
    func sealReadAndApplyAreRepeatable(length: Int) throws {
        let directory = try TemporaryDirectory()
        let data = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let ranges = [0..<100, 4096..<5000, (length - 700)..<length]
        let journal = UpdateJournal(device: 1, inode: 2, length: length, modified: 1_700_000_000,
            ranges: ranges)
        let destination = try sealed(journal, data: data, in: directory)
        let file = try SystemFile.openForReading(UpdateJournal.path(of: destination))
        #expect(try UpdateJournal.read(file) == journal)
        let target = try SystemFile.openForUpdating(destination)
        try journal.apply(from: file, to: target)
        try journal.apply(from: file, to: target)
        let result = [UInt8](try Data(contentsOf: URL(fileURLWithPath: destination)))
        #expect(result.count == length)
        for index in 0..<length {
            let changed = ranges.contains { $0.contains(index) }
            let expected = changed ? data[index] : (index < 10_000 ? 0xEE : 0)
            if result[index] != expected {
                Issue.record("byte \(index): \(result[index]) instead of \(expected)")
                break
            }
        }
        #expect(try target.stamp().mtimeSeconds == 1_700_000_000)
    }

    /// Every damage to the trailer is refused with a message that names the journal.
    @Test func damagedTrailersAreRefused() throws {
        let directory = try TemporaryDirectory()
        let journal = UpdateJournal(device: 1, inode: 2, length: 5000, modified: nil, ranges: [10..<20, 30..<40])
        let destination = try sealed(journal, data: [UInt8](repeating: 1, count: 5000), in: directory)
        let path = UpdateJournal.path(of: destination)
        let good = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let trailer = 8192
        var cases: [(String, [UInt8])] = [("empty", []), ("short", Array(good.prefix(10))),
                                          ("truncated", Array(good.dropLast(1)))]
        for offset in [trailer, trailer + 20, trailer + 50, good.count - 40, good.count - 12, good.count - 1] {
            var bytes = good
            bytes[offset] ^= 0x40
            cases.append(("flipped byte at \(offset)", bytes))
        }
        for (label, bytes) in cases {
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            let file = try SystemFile.openForReading(path)
            #expect(throws: FileSystemError.self, "\(label)") { try UpdateJournal.read(file) }
            do {
                _ = try UpdateJournal.read(file)
            } catch {
                #expect(error.code == .corruptJournal && error.message.contains("not a usable update journal"))
            }
        }
    }

    /// Ranges out of order, overlapping or beyond the length are refused even under a valid checksum.
    @Test(arguments: [[20..<30, 10..<15], [10..<20, 15..<25], [10..<6000], [10..<10]])
    func rangesOutOfPlaceAreRefused(ranges: [Range<Int>]) throws {
        let directory = try TemporaryDirectory()
        let journal = UpdateJournal(device: 1, inode: 2, length: 5000, modified: nil, ranges: ranges)
        let path = directory.file("j")
        let file = try SystemFile.createExclusive(path, mode: 0o600)
        try file.truncate(to: 8192)
        try file.write(journal.encodedTrailer(), at: 8192)
        #expect(throws: FileSystemError.self) { try UpdateJournal.read(file) }
    }
}
