import Logging
import Testing
import TestSupport
@testable import SliceSync

/// Finding the blocks of a zsync control file in local files: zsync's rolling sum, one block or two in
/// a row, every hash length zsyncmake writes and the newer strong hashes.
@Suite("Matching: zsync control files")
struct ZsyncMatchingTests {
    let logger = Logger(label: "t") { _ in SwiftLogNoOpLogHandler() }

    /// A control file for `data` with the given geometry (zsyncmake's choices when nil).
    static func control(_ data: [UInt8], blockSize: Int = 2048, seq: Int? = nil, rsum: Int? = nil, strong: Int? = nil,
                        hash: ZsyncStrongHash = .md4) -> ZsyncControl {
        let chosen = ZsyncControl.hashLengths(length: data.count, blockSize: blockSize)
        let geometry = ZsyncRecordGeometry(blockSize: blockSize, rsumBytes: rsum ?? chosen.rsum,
                                           strongBytes: strong ?? chosen.strong, strongHash: hash)
        let records = data.withUnsafeBytes { geometry.records(of: $0.baseAddress!, count: data.count) }
        return ZsyncControl(filename: "f", mtime: nil, blockSize: blockSize, length: data.count,
                            sequenceMatches: seq ?? chosen.sequenceMatches, rsumBytes: geometry.rsumBytes,
                            strongBytes: geometry.strongBytes, strongHash: hash, urls: ["f"],
                            sha1: StreamingDigest.hash(.sha1, data), records: records)
    }

    @Test(arguments: [(1, 2), (1, 4), (2, 2), (2, 3), (2, 4)])
    func theRollingSumRollsLikeRecomputing(seq: Int, rsum: Int) {
        let hasher = ZsyncWindowHasher(blockSize: 512, sequenceMatches: seq, rsumBytes: rsum)
        let data = randomBytes(hasher.window + 3000, seed: UInt64(seq * 10 + rsum))
        data.withUnsafeBytes { raw in
            let bytes = raw.baseAddress!.assumingMemoryBound(to: UInt8.self)
            var state = hasher.hash(raw.baseAddress!)
            for start in 1...(data.count - hasher.window) {
                state = hasher.roll(state, bytes: bytes, at: start - 1)
                #expect(hasher.weak(state) == hasher.weak(hasher.hash(raw.baseAddress! + start)))
                if hasher.weak(state) != hasher.weak(hasher.hash(raw.baseAddress! + start)) { return }
            }
        }
    }

    @Test func sumsAreZsyncsAndPaddingCountsAsZeros() {
        let data = randomBytes(2048, seed: 5)
        var a = 0
        var b = 0
        for byte in data {
            a += Int(byte)
            b += a
        }
        let expected = UInt32(a & 0xFFFF) << 16 | UInt32(b & 0xFFFF)
        data.withUnsafeBytes { #expect(ZsyncRollingSum.sum($0.baseAddress!, count: 2048) == expected) }
        let short = Array(data.prefix(700))
        let padded = short + [UInt8](repeating: 0, count: 2048 - 700)
        short.withUnsafeBytes { raw in
            padded.withUnsafeBytes {
                #expect(ZsyncRollingSum.paddedSum(raw.baseAddress!, count: 700, window: 2048)
                    == ZsyncRollingSum.sum($0.baseAddress!, count: 2048))
            }
        }
        #expect(ZsyncRollingSum.mask(bytes: 2) == 0xFFFF && ZsyncRollingSum.mask(bytes: 3) == 0xFF_FFFF)
    }

    /// Every block of the new version that the old one holds is found where it is, whatever moved.
    @Test(arguments: [
        (1, 4, 16, ZsyncStrongHash.md4), (2, 2, 3, .md4), (2, 2, 4, .md4), (2, 2, 5, .md4), (2, 3, 5, .md4),
        (2, 3, 6, .md4), (2, 4, 16, .md4), (2, 2, 5, .md5), (2, 2, 8, .sha224),
    ])
    func blocksAreFoundAtAnyOffset(seq: Int, rsum: Int, strong: Int, hash: ZsyncStrongHash) throws {
        let dir = try TemporaryDirectory()
        let old = randomBytes(400_000, seed: 90)
        var new = old
        new.insert(contentsOf: randomBytes(777, seed: 91), at: 100_000)
        new.removeSubrange(250_000..<251_500)
        new[330_000] ^= 0x55
        new += randomBytes(1234, seed: 92)
        try dir.write("old", old)
        let control = Self.control(new, seq: seq, rsum: rsum, strong: strong, hash: hash)
        let matcher = Matcher(paths: [dir.file("old")], threads: 2, progress: ScanProgress(), logger: logger)
        let found = try matcher.match(control)
        #expect(found.count == control.blockCount)
        var located = 0
        for (index, source) in found.enumerated() {
            guard let source else { continue }
            let range = control.blockRange(index)
            #expect(Array(old[source.offset..<(source.offset + range.count)]) == Array(new[range]), "block \(index)")
            located += 1
        }
        // Only the blocks touched by the four changes (and the new tail) are missing.
        #expect(located >= control.blockCount - 8, "\(located) of \(control.blockCount)")
    }

    /// With two consecutive matches required, a lone block in common is not believed (as in zsync); with
    /// one, it is.
    @Test func aLoneBlockNeedsSequenceMatchesOfOne() throws {
        let dir = try TemporaryDirectory()
        let shared = randomBytes(2048, seed: 93)
        let new = randomBytes(8192, seed: 94) + shared + randomBytes(8192, seed: 95)
        try dir.write("old", randomBytes(3001, seed: 96) + shared + randomBytes(5000, seed: 97))
        let matcher = Matcher(paths: [dir.file("old")], threads: 1, progress: ScanProgress(), logger: logger)
        #expect(try matcher.match(Self.control(new, seq: 2, rsum: 4, strong: 16))[4] == nil)
        #expect(try matcher.match(Self.control(new, seq: 1, rsum: 4, strong: 16))[4]
            == LocalSource(file: 0, offset: 3001))
    }

    /// The last block is stored zero-padded: it is found at the end of a local file, and right behind
    /// its predecessor.
    @Test func theShortLastBlockIsFound() throws {
        let dir = try TemporaryDirectory()
        let new = randomBytes(10 * 2048 + 300, seed: 98)
        try dir.write("tail", randomBytes(999, seed: 99) + Array(new.suffix(300)))
        try dir.write("whole", randomBytes(5, seed: 100) + new + randomBytes(70, seed: 101))
        let control = Self.control(new)
        #expect(control.sequenceMatches == 2)
        let tailOnly = Matcher(paths: [dir.file("tail")], threads: 1, progress: ScanProgress(), logger: logger)
        #expect(try tailOnly.match(control)[10] == LocalSource(file: 0, offset: 999))
        let shifted = Matcher(paths: [dir.file("whole")], threads: 2, progress: ScanProgress(), logger: logger)
        let found = try shifted.match(control)
        #expect(found.enumerated().allSatisfy { $0.element == LocalSource(file: 0, offset: 5 + $0.offset * 2048) },
                "\(found)")
    }

    /// Runs of blocks are summed in batches; they must end exactly where checking one block at a time
    /// ends: at a changed block anywhere in a batch, at the limit, and at the file's short last block.
    @Test(arguments: [-1, 0, 3, 4, 11, 40, 70])
    func aBatchedRunEndsWhereOneByOneEnds(changed: Int) {
        let blockSize = 1024
        let data = randomBytes(blockSize * 80 + 300, seed: 12)
        let verifier = ZsyncBlockVerifier(control: Self.control(data, blockSize: blockSize, seq: 1, rsum: 4))
        var local = data
        if changed >= 0 { local[changed * blockSize + 7] ^= 0x5A }
        local.withUnsafeBytes { raw in
            for first in [0, 2, 37, 75, 80] {
                for limit in [0, 1, 5, 33, 200] {
                    let room = min(limit, 81 - first)
                    let pointer = raw.baseAddress! + first * blockSize
                    let batched = verifier.followingRun(from: Int32(first), at: pointer, length: blockSize,
                                                        limit: room)
                    let single = verifier.followingRunOneByOne(from: Int32(first), at: pointer,
                                                               length: blockSize, limit: room)
                    #expect(batched == single, "first \(first), limit \(limit)")
                }
            }
        }
        // Unchanged: the run reaches the padded last block.
        if changed < 0 {
            data.withUnsafeBytes {
                #expect(verifier.followingRun(from: 0, at: $0.baseAddress!, length: blockSize, limit: 81) == 81)
            }
        }
    }
}
