import CSliceSyncKernels

/// The C vector kernels (`CSliceSyncKernels`) at the best instruction set this machine runs, found once.
enum VectorKernels {
    /// The instruction set the kernels use: 0 portable C, 1 AVX2, 2 AVX-512.
    static let level = slicesync_kernel_level()
    /// Whether this machine has the SHA extensions (SHA-1 and SHA-256 round instructions).
    static let shaExtensions = slicesync_has_sha_extensions() != 0
    /// The AVX2 level.
    static let avx2 = Int32(SLICESYNC_LEVEL_AVX2)
    /// The AVX-512 level.
    static let avx512 = Int32(SLICESYNC_LEVEL_AVX512)

    /// MD4 digests, 16 bytes each, of `count` consecutive blocks of `blockSize` bytes (a multiple of 64).
    static func md4(blocks pointer: UnsafeRawPointer, blockSize: Int, count: Int,
                    into digests: UnsafeMutablePointer<UInt8>, level: Int32 = level) {
        slicesync_md4_blocks(level, pointer.assumingMemoryBound(to: UInt8.self), blockSize, count, digests)
    }

    /// SHA-256 digests, 32 bytes each, of the leading blocks among `count` consecutive blocks of
    /// `blockSize` bytes (a multiple of 64); returns how many it hashed (16 at a time with AVX-512, then two
    /// at a time with the SHA extensions; none without either).
    static func sha256(blocks pointer: UnsafeRawPointer, blockSize: Int, count: Int,
                       into digests: UnsafeMutablePointer<UInt8>, level: Int32 = level) -> Int {
        slicesync_sha256_blocks(level, pointer.assumingMemoryBound(to: UInt8.self), blockSize, count, digests)
    }

    /// Rolls a window hasher with `kernel` from `from` to the first position whose weak hash passes
    /// `WeakTable`'s bit filter (`filter`, `shift`), or `end`, leaving that position's state in `state`;
    /// reads up to `end - 1 + window`.
    static func scan(_ kernel: ScanKernel, _ bytes: UnsafePointer<UInt8>, from: Int, to end: Int, window: Int,
                     filter: UnsafePointer<UInt64>, shift: UInt32, state: inout UInt64) -> Int {
        switch kernel {
        case .rk(let level, let outgoingFactor):
            Int(slicesync_rk_scan(level, bytes, from, end, window, outgoingFactor, filter, shift, &state))
        case .zsync(let level, let blockSize, let pairs, let mask):
            Int(slicesync_zsync_scan(level, bytes, from, end, blockSize, pairs ? 1 : 0, mask, filter, shift,
                                     &state))
        }
    }

    /// zsync's rolling sums (`ZsyncRollingSum.sum`) of `count` consecutive blocks of `blockSize` bytes.
    static func rsum(blocks pointer: UnsafeRawPointer, blockSize: Int, count: Int,
                     into sums: UnsafeMutablePointer<UInt32>, level: Int32 = level) {
        slicesync_rsum_blocks(level, pointer.assumingMemoryBound(to: UInt8.self), blockSize, count, sums)
    }

    /// Whether the block kernels take blocks of this size.
    static func handles(blockSize: Int) -> Bool {
        blockSize > 0 && blockSize % 64 == 0 && blockSize < 1 << 27
    }

    /// `RollingHash.hash` of `count` bytes, with `multiplier`.
    static func rk64(_ pointer: UnsafeRawPointer, count: Int, multiplier: UInt64, level: Int32 = level) -> UInt64 {
        slicesync_rk64(level, pointer.assumingMemoryBound(to: UInt8.self), count, multiplier)
    }
}
