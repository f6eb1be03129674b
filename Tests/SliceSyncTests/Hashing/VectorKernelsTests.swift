import Testing
@testable import SliceSync

/// Every instruction-set level this machine runs (portable C always), each checked against libcrypto's
/// one-block digests and the scalar rolling hash, so a fast path can never drift from the formats.
private let levels = Array(Int32(0)...VectorKernels.level)

@Suite("Vector kernels")
struct VectorKernelsTests {
    // Counts around the lane widths (8 for AVX2, 16 for AVX-512) and their tails (hashed in a padded
    // group from two blocks on); sizes from one
    // compression block to zsync's and our usual block sizes.
    @Test(arguments: [64, 128, 2048, 4096], [0, 1, 2, 3, 7, 8, 9, 10, 15, 16, 17, 18, 31, 33])
    func md4OfEveryBlockEqualsLibcrypto(blockSize: Int, count: Int) {
        let data = randomBytes(blockSize * count + 1, seed: UInt64(blockSize * 100 + count))
        let expected = (0..<count).map { index in
            data.withUnsafeBytes {
                ZsyncStrongHash.md4.blockHash($0.baseAddress! + index * blockSize, count: blockSize,
                                              window: blockSize, prefix: 16)
            }
        }
        for level in levels {
            var digests = [UInt8](repeating: 0xee, count: 16 * count + 1)
            data.withUnsafeBytes { raw in
                digests.withUnsafeMutableBufferPointer { out in
                    VectorKernels.md4(blocks: raw.baseAddress!, blockSize: blockSize, count: count,
                                      into: out.baseAddress!, level: level)
                }
            }
            for index in 0..<count {
                #expect(Array(digests[(16 * index)..<(16 * index + 16)]) == expected[index],
                        "level \(level), block \(index)")
            }
            #expect(digests.last == 0xee, "level \(level) wrote past the last digest")
        }
    }

    @Test(arguments: [64, 192, 2048, 4096], [0, 1, 15, 16, 17, 32, 40])
    func sha256OfTheBlocksItTakesEqualsLibcrypto(blockSize: Int, count: Int) {
        let data = randomBytes(blockSize * count, seed: UInt64(blockSize + count))
        for level in levels {
            var digests = [UInt8](repeating: 0xee, count: 32 * count + 1)
            let done = data.withUnsafeBytes { raw in
                digests.withUnsafeMutableBufferPointer { out in
                    VectorKernels.sha256(blocks: raw.baseAddress ?? UnsafeRawPointer(bitPattern: 64)!,
                                         blockSize: blockSize, count: count, into: out.baseAddress!, level: level)
                }
            }
            #expect(done >= 0 && done <= count)
            // AVX-512 takes every whole group of 16; with the SHA extensions, pairs take what is left.
            let groups = level >= 2 ? count / 16 * 16 : 0
            let pairs = level >= 1 && VectorKernels.shaExtensions ? (count - groups) / 2 * 2 : 0
            #expect(done == groups + pairs, "level \(level)")
            for index in 0..<done {
                let block = Array(data[(index * blockSize)..<((index + 1) * blockSize)])
                #expect(Array(digests[(32 * index)..<(32 * index + 32)])
                        == StreamingDigest.hash(.sha256, block), "level \(level), block \(index)")
            }
            #expect(digests[32 * done] == 0xee, "level \(level) wrote past the blocks it reported")
        }
    }

    @Test(arguments: [64, 128, 2048, 65_536])
    func zsyncRollingSumsEqualTheScalarSum(blockSize: Int) {
        let count = 9
        var data = randomBytes(blockSize * count, seed: UInt64(blockSize))
        // A block of 0xFF bytes: the largest products and sums the lanes hold.
        for index in (blockSize * 2)..<(blockSize * 3) { data[index] = 0xFF }
        let expected = (0..<count).map { index in
            data.withUnsafeBytes { ZsyncRollingSum.sum($0.baseAddress! + index * blockSize, count: blockSize) }
        }
        for level in levels {
            var sums = [UInt32](repeating: 0, count: count)
            data.withUnsafeBytes { raw in
                sums.withUnsafeMutableBufferPointer {
                    VectorKernels.rsum(blocks: raw.baseAddress!, blockSize: blockSize, count: count,
                                       into: $0.baseAddress!, level: level)
                }
            }
            #expect(sums == expected, "level \(level)")
        }
    }

    @Test func rollingHashEqualsTheDefinitionAtEveryLevel() {
        let data = randomBytes(5000, seed: 7)
        for length in Array(0..<300) + [511, 512, 513, 4096, 4999] {
            let slice = Array(data[..<length])
            let expected = naiveRK(slice)
            for level in levels {
                let got = slice.withUnsafeBytes {
                    VectorKernels.rk64($0.baseAddress ?? UnsafeRawPointer(bitPattern: 64)!, count: length,
                                       multiplier: RollingHash.multiplier, level: level)
                }
                #expect(got == expected, "level \(level), length \(length)")
            }
            #expect(RollingHash.hash(slice) == expected)
        }
    }

    @Test func blockSizesTheKernelsTake() {
        #expect(VectorKernels.handles(blockSize: 64))
        #expect(VectorKernels.handles(blockSize: 4096))
        #expect(!VectorKernels.handles(blockSize: 0))
        #expect(!VectorKernels.handles(blockSize: 100))
        #expect(!VectorKernels.handles(blockSize: 1 << 27))
    }
}

@Suite("Whole-file digests")
struct WholeFileDigestsTests {
    /// Both engines: the paired one where the machine has the SHA extensions, libcrypto's everywhere.
    @Test(arguments: [(true, false), (false, true), (true, true)], [false, true])
    func bothAtOnceEqualEachAlone(wanted: (sha1: Bool, sha256: Bool), paired: Bool) throws {
        let (sha1, sha256) = wanted
        let data = randomBytes(300_001, seed: 3)
        let whole = try #require(WholeFileDigests(sha1: sha1, sha256: sha256,
                                                  paired: paired && VectorKernels.shaExtensions))
        // Pieces of odd lengths, so the alternating 64-byte steps meet every partial-block case.
        let lengths = [0, 1, 63, 64, 65, 127, 4096, 100_003]
        var offset = 0
        var index = 0
        while offset < data.count {
            let take = min(lengths[index % lengths.count] + index % 3, data.count - offset)
            data.withUnsafeBytes { whole.update($0.baseAddress! + offset, count: take) }
            offset += take
            index += 1
        }
        #expect(offset == data.count)
        let (one, two) = whole.finalize()
        #expect(one == (sha1 ? StreamingDigest.hash(.sha1, data) : nil))
        #expect(two == (sha256 ? StreamingDigest.hash(.sha256, data) : nil))
    }

    @Test func emptyInputAndNothingWanted() throws {
        #expect(WholeFileDigests(sha1: false, sha256: false) == nil)
        for paired in [false, VectorKernels.shaExtensions] {
            let (one, two) = try #require(WholeFileDigests(sha1: true, sha256: true, paired: paired)).finalize()
            #expect(one == StreamingDigest.hash(.sha1, []))
            #expect(two == StreamingDigest.hash(.sha256, []))
        }
    }

    /// Every length around the padding's two cases (one final block or two), fed in uneven pieces.
    @Test(.enabled(if: VectorKernels.shaExtensions, "the paired engine runs only with the SHA extensions"))
    func thePairedEngineEqualsLibcryptoAtEveryTailLength() throws {
        let data = randomBytes(400, seed: 11)
        for length in 0...data.count {
            let whole = try #require(WholeFileDigests(sha1: true, sha256: true, paired: true))
            var offset = 0
            var step = length % 7 + 1
            while offset < length {
                let take = min(step, length - offset)
                data.withUnsafeBytes { whole.update($0.baseAddress! + offset, count: take) }
                offset += take
                step = step * 3 % 67 + 1
            }
            let (one, two) = whole.finalize()
            let bytes = Array(data[..<length])
            #expect(one == StreamingDigest.hash(.sha1, bytes), "length \(length)")
            #expect(two == StreamingDigest.hash(.sha256, bytes), "length \(length)")
        }
    }
}
