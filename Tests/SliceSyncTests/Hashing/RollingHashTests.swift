import Testing
@testable import SliceSync

@Suite("Rolling hashes")
struct RollingHashTests {
    @Test(arguments: [1, 2, 3, 4, 5, 64, 2048, 4099])
    func rollingEqualsRecomputingAtEveryOffset(window: Int) {
        let data = randomBytes(window + 300, seed: UInt64(window))
        let roller = RollingHash(window: window)
        var h = RollingHash.hash(Array(data[0..<window]))
        for start in 1...300 {
            h = roller.roll(h, outgoing: data[start - 1], incoming: data[start + window - 1])
            #expect(h == naiveRK(Array(data[start..<(start + window)])))
        }
    }

    @Test func laneSplitHashEqualsTheDefinition() {
        for length in 0..<40 {
            let data = randomBytes(length, seed: 99)
            #expect(RollingHash.hash(data) == naiveRK(data))
        }
    }

    @Test func combiningPiecesEqualsHashingTheWhole() {
        let data = randomBytes(5000, seed: 1)
        for split in [0, 1, 17, 2048, 4999, 5000] {
            let combined = RollingHash.combine(RollingHash.hash(Array(data[..<split])),
                RollingHash.hash(Array(data[split...])), secondLength: 5000 - split)
            #expect(combined == RollingHash.hash(data))
        }
    }

    @Test func knownValues() {
        // Pinned so the definition in docs/FORMAT.md cannot drift from the code.
        #expect(RollingHash.hash([]) == 0)
        #expect(RollingHash.hash([0]) == 1)
        #expect(RollingHash.hash([0, 0]) == RollingHash.multiplier &+ 1)
        // Computed independently (Python) from the definition.
        #expect(RollingHash.hash(Array("slicesync".utf8)) == 0x1edb_92f2_2928_e54e)
        #expect(RollingHash.weak(RollingHash.hash(Array("slicesync".utf8))) == 0x1edb_92f2)
    }

    @Test func zlibAdler32RollsLikeRecomputing() {
        let data = randomBytes(1200, seed: 4)
        let window = 1000
        var a = Adler32.checksum(Array(data[0..<window]))
        for start in 1...200 {
            a = Adler32.roll(a, outgoing: data[start - 1], incoming: data[start + window - 1], window: window)
            #expect(a == Adler32.checksum(Array(data[start..<(start + window)])))
        }
        #expect(Adler32.checksum(Array("Wikipedia".utf8)) == 0x11E6_0398)
    }

    @Test func digestsMatchKnownVectors() {
        #expect(Encoding.hex(StreamingDigest.hash(.sha256,
            Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Encoding.hex(StreamingDigest.hash(.sha1,
            Array("abc".utf8))) == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(Encoding.hex(StreamingDigest.hash(.md5, Array("abc".utf8))) == "900150983cd24fb0d6963f7d28e17f72")
    }
}
