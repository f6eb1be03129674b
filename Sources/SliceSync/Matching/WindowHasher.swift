/// A rolling weak hash over a fixed window, as the scanner needs it.
protocol WindowHasher: Sendable {
    /// The window length.
    var window: Int { get }
    /// The rolling state of the window starting at `pointer`.
    func hash(_ pointer: UnsafeRawPointer) -> UInt64
    /// Moves the window one byte forward.
    func roll(_ state: UInt64, outgoing: UInt8, incoming: UInt8) -> UInt64
    /// The 32-bit weak hash a signature stores for this state.
    func weak(_ state: UInt64) -> UInt32
    /// Moves the window starting at `bytes + i` one byte forward (a hasher of several consecutive
    /// blocks needs the bytes between too).
    func roll(_ state: UInt64, bytes: UnsafePointer<UInt8>, at i: Int) -> UInt64
    /// Moves the window starting at `bytes + i` one and two bytes forward: the states at i + 1 and
    /// i + 2, where the second need not wait for the first.
    func roll2(_ state: UInt64, bytes: UnsafePointer<UInt8>, at i: Int) -> (UInt64, UInt64)
    /// The vector kernel that rolls this hasher to the next position that may be wanted, on a machine
    /// where it is faster than rolling here; nil otherwise.
    var scanKernel: ScanKernel? { get }
}

/// A C kernel of `VectorKernels` that rolls a window hasher through the positions whose weak hash fails
/// the weak table's filter, and what it needs to know about the hasher.
enum ScanKernel {
    /// `slicesync_rk_scan`: RK64 over a window.
    case rk(level: Int32, outgoingFactor: UInt64)
    /// `slicesync_zsync_scan`: zsync's sum over one block, or two consecutive blocks (`pairs`).
    case zsync(level: Int32, blockSize: Int, pairs: Bool, mask: UInt32)

    /// The level for RK64 (the tests ask for each): only AVX-512 beats the loop in Swift, which rolls
    /// two positions per multiply; AVX2 needs three instructions per 64-bit multiply.
    static func rkLevel(_ level: Int32) -> Int32? { level >= VectorKernels.avx512 ? level : nil }

    /// The level for zsync's sums: AVX2 too, 4.2-4.9 ns a position against 7-8 one at a time on a
    /// machine without AVX-512, but not for pairs of sums wider than 16 bits, whose keys need 64-bit
    /// multiplies (zsyncmake keeps 2 bytes of each sum of a pair for files of 64 MiB or more).
    static func zsyncLevel(_ level: Int32, widePairs: Bool) -> Int32? {
        level >= VectorKernels.avx512 || (level >= VectorKernels.avx2 && !widePairs) ? level : nil
    }
}

extension WindowHasher {
    var scanKernel: ScanKernel? { nil }

    @inline(__always) func roll(_ state: UInt64, bytes: UnsafePointer<UInt8>, at i: Int) -> UInt64 {
        roll(state, outgoing: bytes[i], incoming: bytes[i + window])
    }

    @inline(__always) func roll2(_ state: UInt64, bytes: UnsafePointer<UInt8>, at i: Int) -> (UInt64, UInt64) {
        let next = roll(state, bytes: bytes, at: i)
        return (next, roll(next, bytes: bytes, at: i + 1))
    }
}

/// RK64 over a window: format 2.
struct RKWindowHasher: WindowHasher {
    let roller: RollingHash
    var window: Int { roller.window }
    private let terms: RKTerms
    let scanKernel: ScanKernel?

    /// `kernelLevel` is the vector level the scan may use (the tests ask for each).
    init(window: Int, kernelLevel: Int32 = VectorKernels.level) {
        roller = RollingHash(window: window)
        terms = RKTerms(outgoingFactor: roller.outgoingFactor)
        let factor = roller.outgoingFactor
        scanKernel = ScanKernel.rkLevel(kernelLevel).map { .rk(level: $0, outgoingFactor: factor) }
    }

    /// Two bytes at a time, the state at i + 2 straight from the state at i: one multiply on the chain
    /// from state to state instead of two, and the byte terms looked up, not multiplied. The tarball's
    /// scan for whole slices took 0.146 s rolling one byte at a time, 0.124 s with this.
    @inline(__always) func roll2(_ state: UInt64, bytes: UnsafePointer<UInt8>, at i: Int) -> (UInt64, UInt64) {
        let out0 = Int(bytes[i]), out1 = Int(bytes[i + 1])
        let in0 = bytes[i + roller.window], in1 = bytes[i + 1 + roller.window]
        let table = terms.table
        let next = state &* RollingHash.multiplier &+ (UInt64(in0) &+ 1) &- table[out0]
        let independent = table[512 + Int(in0)] &+ (UInt64(in1) &+ 1) &- table[256 + out0] &- table[out1]
        return (next, state &* RKTerms.multiplierSquared &+ independent)
    }

    @inline(__always) func hash(_ pointer: UnsafeRawPointer) -> UInt64 {
        RollingHash.hash(pointer, count: roller.window)
    }
    @inline(__always) func roll(_ state: UInt64, outgoing: UInt8, incoming: UInt8) -> UInt64 {
        roller.roll(state, outgoing: outgoing, incoming: incoming)
    }
    @inline(__always) func weak(_ state: UInt64) -> UInt32 { RollingHash.weak(state) }
}

/// The byte terms of rolling RK64 two bytes at a time, for every byte value: (b + 1)·F, (b + 1)·F·M
/// and (b + 1)·M, where F is M to the window length. 6 KiB, made once per scan.
///
/// `@unchecked Sendable`: the table is written only in `init` and freed in `deinit`.
final class RKTerms: @unchecked Sendable {
    static let multiplierSquared = RollingHash.multiplier &* RollingHash.multiplier
    let table: UnsafeMutablePointer<UInt64>

    init(outgoingFactor: UInt64) {
        table = .allocate(capacity: 768)
        for byte in 0..<256 {
            let value = UInt64(byte) &+ 1
            table[byte] = value &* outgoingFactor
            table[256 + byte] = value &* outgoingFactor &* RollingHash.multiplier
            table[512 + byte] = value &* RollingHash.multiplier
        }
    }

    deinit { table.deallocate() }
}

/// zlib Adler-32 over a window: format 1.
struct AdlerWindowHasher: WindowHasher {
    let window: Int

    @inline(__always) func hash(_ pointer: UnsafeRawPointer) -> UInt64 {
        UInt64(Adler32.update(Adler32.initial, pointer, count: window))
    }
    @inline(__always) func roll(_ state: UInt64, outgoing: UInt8, incoming: UInt8) -> UInt64 {
        UInt64(Adler32.roll(UInt32(truncatingIfNeeded: state), outgoing: outgoing, incoming: incoming, window: window))
    }
    @inline(__always) func weak(_ state: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: state) }
}

/// Weak hashes of the pieces being looked for, with a bit-set pre-filter so that most byte offsets cost
/// one bit test; hits are then looked up in the sorted entries (8 bytes per piece, weak hash and index in
/// one word, so millions of blocks fit in tens of MiB), starting from an index of where each range of
/// weak hashes begins.
struct WeakTable: Sendable {
    private let bits: [UInt64]
    private let shift: UInt32
    /// `pack(weak:index:)` of every piece, sorted.
    private let entries: [UInt64]
    /// `starts[k]`: the first entry whose weak hash's top `bucketBits` bits are k or more. A binary search
    /// of the 28,000 entries of a tarball's zsync file missed the cache at most of its 15 steps (265 ns a
    /// lookup, 5 % of the run's CPU time); a bucket holds two to four entries, 1 to 2 bytes per entry.
    private let starts: [UInt32]
    private let bucketShift: UInt32

    /// Builds the table from (weak hash, piece index) pairs.
    init(_ entries: [(weak: UInt32, index: Int)]) {
        var packed = entries.map { Self.pack(weak: $0.weak, index: $0.index) }
        self.init(packed: &packed)
    }

    /// A weak hash and a piece index (below 2^31) in one word that sorts by hash, then index.
    @inline(__always) static func pack(weak: UInt32, index: Int) -> UInt64 {
        UInt64(weak) << 32 | UInt64(UInt32(truncatingIfNeeded: index))
    }

    /// Builds the table from packed entries (`pack`), which it takes over, sorted in place: a table of
    /// millions of blocks never holds a second copy of them.
    init(packed entries: inout [UInt64]) {
        entries.sort()
        self.entries = entries
        entries = []
        let count = self.entries.count
        // 32 to 64 bits per entry keep the false pass rate within 1.5–3 %, within 2^20...2^27 bits, and
        // tables up to 32,768 entries get 128 bits per entry (up to 512 KiB, which stays in the L2
        // cache), so a far lower rate. (64 to 128 bits per entry made the bits of a tarball's 170,000
        // block records 2 MiB, a third of the peak.) With 32 bits per entry, the 28,000 block pairs of the
        // tarball's zsync file let 2.7 % of 16 million positions through to a lookup, and the scan took
        // 0.11 s; 0.7 % with 128, 0.08 s.
        var logBits = 20
        while logBits < 22 && (1 << logBits) < count * 128 { logBits += 1 }
        while logBits < 27 && (1 << logBits) < count * 32 { logBits += 1 }
        shift = UInt32(32 - logBits)
        var bits = [UInt64](repeating: 0, count: (1 << logBits) / 64)
        for entry in self.entries {
            let slot = Int(Self.mix(UInt32(truncatingIfNeeded: entry >> 32)) >> UInt32(32 - logBits))
            bits[slot >> 6] |= 1 << UInt64(slot & 63)
        }
        self.bits = bits
        var bucketBits = 4
        while bucketBits < 24 && (4 << bucketBits) <= count { bucketBits += 1 }
        bucketShift = UInt32(32 - bucketBits)
        var starts = [UInt32](repeating: 0, count: (1 << bucketBits) + 1)
        for entry in self.entries { starts[Int(entry >> UInt64(32 + bucketShift)) + 1] += 1 }
        for k in 1..<starts.count { starts[k] += starts[k - 1] }
        self.starts = starts
    }

    var isEmpty: Bool { entries.isEmpty }

    /// Spreads weak hashes whose low or high bits are poor (Adler-32's are) over the bit set.
    @inline(__always) static func mix(_ weak: UInt32) -> UInt32 { weak &* 0x9E37_79B1 ^ (weak >> 15) }

    @inline(__always) func mayContain(_ weak: UInt32) -> Bool {
        bits.withUnsafeBufferPointer { Self.passes(weak, words: $0.baseAddress!, shift: shift) }
    }

    @inline(__always) private static func passes(_ weak: UInt32, words: UnsafePointer<UInt64>, shift: UInt32) -> Bool {
        let slot = Int(mix(weak) >> shift)
        return words[slot >> 6] & (1 << UInt64(slot & 63)) != 0
    }

    /// Rolls `state` (the window at `from`) forward until a position whose weak hash passes the filter,
    /// or `end`; returns that position. Everything lives in locals, so the loop stays in registers.
    @inline(never)
    /// Positions whose weak hash is `exhausted` (all its pieces found) are rolled through too.
    func nextPossible<H: WindowHasher>(hasher: H, bytes: UnsafePointer<UInt8>, from: Int, to end: Int,
                                       state: inout UInt64, exhausted: ExhaustedWeakHashes) -> Int {
        let shift = self.shift
        return bits.withUnsafeBufferPointer { words in
            let words = words.baseAddress!
            var hash = state
            var i = from
            if let kernel = hasher.scanKernel {
                while true {
                    i = VectorKernels.scan(kernel, bytes, from: i, to: end, window: hasher.window, filter: words,
                        shift: shift, state: &hash)
                    guard i < end, exhausted.contains(hasher.weak(hash)) else { break }
                    hash = hasher.roll(hash, bytes: bytes, at: i)
                    i += 1
                }
                state = hash
                return i
            }
            // Two positions per turn: both states come from `hash`, so their filter checks and the
            // next turn's state overlap.
            pairs: while i + 1 < end {
                let weak = hasher.weak(hash)
                if Self.passes(weak, words: words, shift: shift) && !exhausted.contains(weak) { break pairs }
                let (next, afterNext) = hasher.roll2(hash, bytes: bytes, at: i)
                let nextWeak = hasher.weak(next)
                if Self.passes(nextWeak, words: words, shift: shift) && !exhausted.contains(nextWeak) {
                    hash = next
                    i += 1
                    break pairs
                }
                hash = afterNext
                i += 2
            }
            while i < end {
                let weak = hasher.weak(hash)
                if Self.passes(weak, words: words, shift: shift) && !exhausted.contains(weak) { break }
                hash = hasher.roll(hash, bytes: bytes, at: i)
                i += 1
            }
            state = hash
            return i
        }
    }

    /// The pieces with this weak hash, or nil.
    func lookup(_ weak: UInt32) -> [Int32]? {
        let bucket = Int(weak >> bucketShift)
        var low = Int(starts[bucket])
        var high = Int(starts[bucket + 1])
        while low < high {
            let middle = (low + high) / 2
            if UInt32(truncatingIfNeeded: entries[middle] >> 32) < weak { low = middle + 1 } else { high = middle }
        }
        var result: [Int32] = []
        while low < entries.count && UInt32(truncatingIfNeeded: entries[low] >> 32) == weak {
            result.append(Int32(truncatingIfNeeded: entries[low]))
            low += 1
        }
        return result.isEmpty ? nil : result
    }
}
