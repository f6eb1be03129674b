/// Format 1 slices: Adler-32 already matched as the weak hash; MD5 decides.
struct V1SliceVerifier: PieceVerifier {
    let slices: [V1SliceHash]

    func verify(_ candidates: [Int32], window pointer: UnsafeRawPointer, length: Int) -> [Int32] {
        let md5 = StreamingDigest(.md5)
        md5.update(pointer, count: length)
        let digest = md5.finalize()
        return candidates.filter { slices.indices.contains(Int($0)) && slices[Int($0)].md5 == digest }
    }
}

/// Format 2 slices: the truncated SHA-256 of the blocks' SHA-256 digests decides.
struct V2SliceVerifier: PieceVerifier {
    let records: [HashRecord]
    let blockSize: Int

    func verify(_ candidates: [Int32], window pointer: UnsafeRawPointer, length: Int) -> [Int32] {
        let strong = Self.sliceStrong(pointer, length: length, blockSize: blockSize)
        return candidates.filter { records.indices.contains(Int($0)) && records[Int($0)].strong == strong }
    }

    /// A run of whole slices goes on when the next slice's weak hash matches its record, as zsync's
    /// runs of blocks do: RK64 over a slice runs at 10-15 GB/s, its tree digest at 1.6-2.2, and checking
    /// every slice of a run of 256 MiB took 0.08 of the 0.14 s of matching on both cores. A slice so
    /// taken by mistake (an edit of its last byte alone, which moves only RK64's low half, or one chance
    /// in 2^32) is caught by the whole-file check before anything is replaced, found by its slice
    /// digest and fetched again: one more request, never a wrong file.
    func follows(_ expected: Int32, window pointer: UnsafeRawPointer, length: Int) -> Bool {
        let index = Int(expected)
        guard records.indices.contains(index) else { return false }
        return RollingHash.weak(RollingHash.hash(pointer, count: length)) == records[index].weak
    }

    /// The strong half of a coarse record for `length` bytes at `pointer`: its slice digest, cut.
    static func sliceStrong(_ pointer: UnsafeRawPointer, length: Int, blockSize: Int) -> UInt64 {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: TreeHash.digestSize) { digest in
            TreeHash.sliceDigest(pointer, length: length, blockSize: blockSize, into: digest.baseAddress!)
            return HashRecord.truncate(digest.baseAddress!)
        }
    }
}

/// Format 2 blocks: the truncated SHA-256 of the block decides.
struct V2BlockVerifier: PieceVerifier {
    /// The records, shared with the map that holds them (no copy).
    private let blocks: FineRecords
    /// One bit per record of `blocks`, by its position there: whether its block is looked for.
    private let wanted: [UInt64]

    init(blocks: FineRecords, wanted: (Int) -> Bool) {
        var bits = [UInt64](repeating: 0, count: (blocks.count + 63) / 64)
        for (index, _) in blocks where wanted(index) {
            guard let position = blocks.position(of: index) else { continue }
            bits[position / 64] |= 1 << UInt64(position % 64)
        }
        self.blocks = blocks
        self.wanted = bits
    }

    func verify(_ candidates: [Int32], window pointer: UnsafeRawPointer, length: Int) -> [Int32] {
        let digest = Self.blockStrong(pointer, length: length)
        return candidates.filter { candidate in
            guard let position = blocks.position(of: Int(candidate)) else { return false }
            return wanted[position / 64] & (1 << UInt64(position % 64)) != 0 && blocks.strong(at: position) == digest
        }
    }

    /// Blocks of a run hashed together: 16 is one group of the AVX-512 kernel, eight pairs with the SHA
    /// extensions. A run that breaks wastes at most 15 digests; a tarball's runs are about 50 blocks.
    static let runBatch = 16

    /// Hashes the blocks of a run of matches together (`VectorKernels.sha256`): one at a time through
    /// libcrypto, 512-byte blocks ran at a quarter of the kernels' speed and were most of a tarball's
    /// matching once whole slices were no longer scanned for.
    func followingRun(from first: Int32, at pointer: UnsafeRawPointer, length: Int, limit: Int) -> Int {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Self.runBatch * TreeHash.digestSize) { digests in
            var done = 0
            while done < limit {
                let batch = min(Self.runBatch, limit - done)
                TreeHash.blockDigests(pointer + done * length, length: batch * length, blockSize: length,
                    into: digests.baseAddress!)
                for k in 0..<batch {
                    guard let position = blocks.position(of: Int(first) + done + k),
                          wanted[position / 64] & (1 << UInt64(position % 64)) != 0,
                          blocks.strong(at: position)
                            == HashRecord.truncate(digests.baseAddress! + k * TreeHash.digestSize)
                    else { return done + k }
                }
                done += batch
            }
            return done
        }
    }

    static func blockStrong(_ pointer: UnsafeRawPointer, length: Int) -> UInt64 {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: TreeHash.digestSize) { digest in
            sha256(pointer, count: length, into: digest.baseAddress!)
            return HashRecord.truncate(digest.baseAddress!)
        }
    }
}

extension HashRecord {
    /// The fine record of the `length`-byte block at `pointer`.
    static func block(_ pointer: UnsafeRawPointer, length: Int) -> HashRecord {
        HashRecord(weak: RollingHash.weak(RollingHash.hash(pointer, count: length)),
            strong: V2BlockVerifier.blockStrong(pointer, length: length))
    }

    /// The coarse record of the `length`-byte slice at `pointer`, made of blocks of `blockSize`.
    static func slice(_ pointer: UnsafeRawPointer, length: Int, blockSize: Int) -> HashRecord {
        HashRecord(weak: RollingHash.weak(RollingHash.hash(pointer, count: length)),
                   strong: V2SliceVerifier.sliceStrong(pointer, length: length, blockSize: blockSize))
    }
}
