import Testing
@testable import SliceSync

@Suite("Streaming digests")
struct StreamingDigestTests {
    /// The published test vectors of each algorithm (FIPS 180 for SHA, RFC 1321 for MD5).
    @Test(arguments: [
        (StreamingDigest.Algorithm.sha256, "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (.sha256, "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        (.sha1, "abc", "a9993e364706816aba3e25717850c26c9cd0d89d"),
        (.sha1, "", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        (.md5, "abc", "900150983cd24fb0d6963f7d28e17f72"),
        (.md5, "", "d41d8cd98f00b204e9800998ecf8427e"),
    ])
    func knownAnswers(algorithm: StreamingDigest.Algorithm, input: String, expected: String) {
        #expect(Encoding.hex(StreamingDigest.hash(algorithm, Array(input.utf8))) == expected)
    }

    /// Pieces of any size give the digest of the whole; finalizing starts over, as does reset.
    @Test(arguments: [StreamingDigest.Algorithm.sha256, .sha1, .md5])
    func piecesFinalizeAndReset(algorithm: StreamingDigest.Algorithm) {
        let data = randomBytes(10_000, seed: 7)
        let whole = StreamingDigest.hash(algorithm, data)
        #expect(whole.count == algorithm.length)
        let digest = StreamingDigest(algorithm)
        digest.update(Array(data[0..<1]))
        digest.update(Array(data[1..<65]))
        digest.update(Array(data[65...]))
        #expect(digest.finalize() == whole)
        digest.update(data)
        #expect(digest.finalize() == whole)
        digest.update(Array(data[0..<100]))
        digest.reset()
        digest.update(data)
        #expect(digest.finalize() == whole)
    }
}
