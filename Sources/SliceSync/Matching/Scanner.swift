import Synchronization

/// A place in one of the local files the client reuses.
public struct LocalSource: Sendable, Hashable, Codable {
    /// Index of the file in the matcher's list of alike files.
    public var file: Int
    /// Byte offset in that file.
    public var offset: Int

    /// Creates a source.
    public init(file: Int, offset: Int) {
        self.file = file
        self.offset = offset
    }

    /// Alike files the matcher takes at most; the file numbers above are the two kinds below.
    public static let maxFiles = 250
    /// Not a file: the piece is all zeros (`offset` is its own offset in the target, so runs merge).
    public static let zeros = 255
    /// Not a file: the piece repeats another, downloaded, piece of the target at `offset`.
    public static let repeated = 254
}

/// Decides which of the candidate pieces (whose weak hash matched) a window of bytes really is.
protocol PieceVerifier: Sendable {
    /// The candidates whose strong hash matches the `length` bytes starting at `pointer`; indices the
    /// verifier does not know (the successor of the last piece, say) never match. A window of several
    /// pieces (see `piecesPerWindow`) names its first piece, and matches only when every piece does.
    func verify(_ candidates: [Int32], window pointer: UnsafeRawPointer, length: Int) -> [Int32]
    /// Consecutive pieces one weak-hash window spans: 1, or 2 for zsync files that need two
    /// consecutive blocks to match before one is believed.
    var piecesPerWindow: Int { get }
    /// Whether the `length` bytes at `pointer`, right behind a match of the piece before, are piece
    /// `expected` (the run of matches goes on).
    func follows(_ expected: Int32, window pointer: UnsafeRawPointer, length: Int) -> Bool
    /// How many of pieces `first`, `first + 1`, … (at most `limit`) lie one after another from `pointer`,
    /// `length` bytes each: the pieces of a run of matches, which a verifier may check together.
    func followingRun(from first: Int32, at pointer: UnsafeRawPointer, length: Int, limit: Int) -> Int
}

extension PieceVerifier {
    var piecesPerWindow: Int { 1 }

    func follows(_ expected: Int32, window pointer: UnsafeRawPointer, length: Int) -> Bool {
        !verify([expected], window: pointer, length: length).isEmpty
    }

    func followingRun(from first: Int32, at pointer: UnsafeRawPointer, length: Int, limit: Int) -> Int {
        followingRunOneByOne(from: first, at: pointer, length: length, limit: limit)
    }

    /// `followingRun` by `follows`, for verifiers that check some runs their own way.
    func followingRunOneByOne(from first: Int32, at pointer: UnsafeRawPointer, length: Int, limit: Int) -> Int {
        var count = 0
        while count < limit && follows(first + Int32(count), window: pointer + count * length, length: length) {
            count += 1
        }
        return count
    }
}

/// Counts bytes scanned across threads, for progress display, and carries the run's cancellation
/// (the one `CancellationFlag` that blocking work polls, as signing does).
public final class ScanProgress: Sendable {
    private let scanned = Atomic<Int>(0)
    /// The flag scans poll between chunks.
    public let cancellation: CancellationFlag

    /// Creates a counter at zero, stopped by `cancellation`.
    public init(cancellation: CancellationFlag = CancellationFlag()) {
        self.cancellation = cancellation
    }

    /// Bytes of local files scanned so far.
    public var bytesScanned: Int { scanned.load(ordering: .relaxed) }

    /// Asks running scans to stop at their next chunk.
    public func cancel() { cancellation.cancel() }

    /// Whether `cancel()` was called.
    public var isCancelled: Bool { cancellation.isCancelled }

    func add(_ bytes: Int) { scanned.add(bytes, ordering: .relaxed) }
}

/// The pieces found so far, shared by the threads of one scan: 8 bytes per piece, or the finds among
/// the blocks whose fine records are held (see `HeldFinds`).
final class FoundPieces: Sendable {
    private enum Table {
        case dense([UInt64])
        /// The pieces are the blocks whose fine records were fetched.
        case held(HeldFinds)
    }
    private let found: Mutex<Table>

    /// For pieces `0..<count`.
    init(count: Int) {
        found = Mutex(.dense([UInt64](repeating: PackedSource.none, count: count)))
    }

    /// For the blocks (of `blockSize` bytes) whose fine records `records` holds.
    init(records: FineRecords, blockSize: Int) {
        found = Mutex(.held(HeldFinds(records: records, blockSize: blockSize)))
    }

    /// Records matches. The first source recorded for a piece wins.
    func record(_ pieces: [Int32], at source: LocalSource) {
        let packed = PackedSource.pack(source)
        store(pieces.lazy.map { ($0, packed) })
    }

    /// Records pieces `first..<first + count`, `pieceLength` bytes apart from `source` on, under one lock.
    func recordRun(from first: Int32, count: Int, at source: LocalSource, pieceLength: Int) {
        let packed = PackedSource.pack(source)
        store((0..<count).lazy.map { (first + Int32($0), packed + UInt64($0 * pieceLength)) })
    }

    /// Stores (piece, packed source) pairs where no source is recorded yet.
    private func store(_ pairs: some Sequence<(Int32, UInt64)>) {
        found.withLock { table in
            switch table {
            case .dense(var entries):
                table = .dense([])
                for (piece, packed) in pairs where entries.indices.contains(Int(piece))
                    && entries[Int(piece)] == PackedSource.none {
                    entries[Int(piece)] = packed
                }
                table = .dense(entries)
            case .held(var finds):
                table = .dense([])
                for (piece, packed) in pairs { finds.record(piece, packed) }
                table = .held(finds)
            }
        }
    }

    /// How many of pieces `first`, `first + 1`, … (at most `limit`) are not found yet and looked for:
    /// one lock for a run of matches, which asked for every block in turn.
    func missingRun(from first: Int32, limit: Int) -> Int {
        found.withLock { table in
            var count = 0
            while count < limit && Self.isMissing(first + Int32(count), in: table) { count += 1 }
            return count
        }
    }

    /// Whether `piece` is not found yet (and is one of the pieces looked for).
    func isMissing(_ piece: Int32) -> Bool { missingRun(from: piece, limit: 1) == 1 }

    /// The candidates not found yet.
    func missing(_ candidates: [Int32]) -> [Int32] {
        found.withLock { table in candidates.filter { Self.isMissing($0, in: table) } }
    }

    private static func isMissing(_ piece: Int32, in table: Table) -> Bool {
        switch table {
        case .dense(let entries):
            entries.indices.contains(Int(piece)) && entries[Int(piece)] == PackedSource.none
        case .held(let finds):
            finds.isMissing(piece)
        }
    }

    /// What a scan for the blocks of held fine records found (nil for pieces counted by index).
    var blocks: FoundBlocks? {
        found.withLock { table in
            guard case .held(let finds) = table else { return nil }
            return finds.blocks
        }
    }

    /// Every found piece, as (index, source).
    var all: [(Int, LocalSource)] {
        found.withLock { table in
            switch table {
            case .dense(let entries):
                entries.indices.compactMap { index in PackedSource.unpack(entries[index]).map { (index, $0) } }
            case .held(let finds):
                finds.blocks.map { ($0.block, $0.source) }
            }
        }
    }
}

/// A `LocalSource` in 8 bytes: file index in the top 8 bits, offset in the low 56 (2^56 bytes).
enum PackedSource {
    static let none = UInt64.max

    static func pack(_ source: LocalSource) -> UInt64 {
        UInt64(source.file) << 56 | UInt64(source.offset)
    }

    static func unpack(_ value: UInt64) -> LocalSource? {
        value == none ? nil : LocalSource(file: Int(value >> 56), offset: Int(value & (1 << 56 - 1)))
    }
}

/// One contiguous range of window start positions in one local file.
struct ScanRegion: Sendable {
    var fileIndex: Int
    var file: SystemFile
    var fileLength: Int
    /// First window start scanned.
    var start: Int
    /// Window starts scanned are below this.
    var end: Int
}

/// Rolls a weak hash over every byte offset of a region, verifies weak hits with the strong hash and
/// jumps a whole window ahead after a match, as zsync does.
struct Scanner<Hasher: WindowHasher, Verifier: PieceVerifier>: Sendable {
    let hasher: Hasher
    let table: WeakTable
    let verifier: Verifier
    /// Bytes read at a time besides the window. 512 KiB reads run at page-cache speed; larger buffers
    /// only add to the peak memory of every scanning thread.
    var chunk = 512 << 10

    func scan(_ region: ScanRegion, found: FoundPieces, progress: ScanProgress) throws(FileSystemError) {
        let window = hasher.window
        let piecesPerWindow = verifier.piecesPerWindow
        let piece = window / piecesPerWindow
        var fileLength = region.fileLength
        guard region.start < region.end, fileLength - region.start >= window, !table.isEmpty else { return }
        // No byte at or past `readEnd` is ever looked at: the last window starts before `region.end`, and
        // rolling past it needs one byte more. A small region (a gap between pieces already found) so
        // reads only its own bytes, into a buffer of its own size that the allocator can reuse, instead
        // of a fresh mapping that every read would fault in page by page.
        let readEnd = min(fileLength, region.end + window)
        let capacity = min(window + chunk, readEnd - region.start)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 64)
        defer { buffer.deallocate() }
        var base = region.start
        var count = 0
        var reported = region.start

        // Makes the buffer start at `newBase` and hold as much as fits (less only at end of file).
        func refill(from newBase: Int) throws(FileSystemError) {
            let keep = max(0, base + count - newBase)
            if keep > 0 && newBase != base { buffer.copyMemory(from: buffer + (newBase - base), byteCount: keep) }
            base = newBase
            count = keep
            let want = min(capacity - keep, min(fileLength, readEnd) - (base + keep))
            if want > 0 {
                let got = try region.file.read(into: buffer + keep, count: want, at: base + keep)
                count += got
                if got < want { fileLength = base + count } // the file shrank: scan what is there
            }
            progress.add(max(0, min(base + count, region.end + window) - reported))
            reported = max(reported, base + count)
        }

        try refill(from: region.start)
        var p = region.start
        guard base + count - p >= window else { return }
        var state = hasher.hash(buffer + (p - base))
        let bytes = buffer.assumingMemoryBound(to: UInt8.self)
        var lastMatch: Int32?
        var exhausted = ExhaustedWeakHashes()

        while true {
            if progress.isCancelled { return }
            // Positions below `limit` have their window and the next byte in the buffer, and are not
            // the region's last position or the file's last window.
            let limit = min(region.end - 1, fileLength - window, base + count - window)
            var i = p - base
            let fastEnd = limit - base
            var jumped = false
            while i < fastEnd {
                // Most positions fail the filter: roll through them in a tight loop.
                i = table.nextPossible(hasher: hasher, bytes: bytes, from: i, to: fastEnd, state: &state,
                                       exhausted: exhausted)
                guard i < fastEnd else { break }
                let weak = hasher.weak(state)
                if !exhausted.contains(weak), let candidates = table.lookup(weak) {
                    p = base + i
                    switch handleHit(candidates, at: p, pointer: buffer + i, region: region, found: found) {
                    case .matched(let last):
                        lastMatch = last
                        jumped = true
                    case .allFound: exhausted.insert(weak)
                    case .none: break
                    }
                    if jumped { break }
                }
                state = hasher.roll(state, bytes: bytes, at: i)
                i += 1
            }
            if !jumped {
                // The slow path: position p = base + i is at a boundary.
                p = base + i
                let weak = hasher.weak(state)
                var hit = HitOutcome.none
                if table.mayContain(weak), !exhausted.contains(weak), let candidates = table.lookup(weak) {
                    hit = handleHit(candidates, at: p, pointer: buffer + i, region: region, found: found)
                    if case .allFound = hit { exhausted.insert(weak) }
                }
                if case .matched(let last) = hit {
                    lastMatch = last
                    jumped = true
                } else {
                    if p >= region.end - 1 || p + window >= fileLength { return }
                    if p + window >= base + count { try refill(from: p) }
                    guard p + window < base + count else { return }
                    state = hasher.roll(state, bytes: bytes, at: p - base)
                    p += 1
                    continue
                }
            }
            // After a match, continue right behind it, where the next piece most likely is: try it
            // directly with the strong hash (a weak hit would cost that anyway) and compute the rolling
            // state only when the run of matches breaks.
            p += window
            // A piece shorter than the window may still follow where no window starts any more.
            let followEnd = region.end + (window - piece)
            while let last = lastMatch {
                if p >= followEnd || p + piece > fileLength { return }
                if p + piece > base + count { try refill(from: p) }
                guard p + piece <= base + count else { return }
                // The pieces in the buffer are checked together: one lock for those still missing, one
                // call to the verifier (a tarball's run is about 50 blocks of 512 bytes).
                let room = min((base + count - p) / piece, (followEnd - p + piece - 1) / piece)
                let open = found.missingRun(from: last + 1, limit: room)
                let run = open == 0 ? 0
                    : verifier.followingRun(from: last + 1, at: buffer + (p - base), length: piece, limit: open)
                if run > 0 {
                    found.recordRun(from: last + 1, count: run, at: LocalSource(file: region.fileIndex, offset: p),
                        pieceLength: piece)
                    lastMatch = last + Int32(run)
                    p += run * piece
                }
                guard run < room else { continue }
                // A piece that changed in place (a tar member's header with a new time, an edit that
                // kept the length) breaks the run, but the piece after it is still where the run puts
                // it: test that first, before rolling through every byte of the changed one (512 rolled
                // positions and about 25 filter lookups per changed header of a tarball). Content that
                // moved fails this test and is rolled through as before.
                let next = last + Int32(run) + 2
                guard run < open, p + 2 * piece <= base + count, p + piece < followEnd, found.isMissing(next),
                      verifier.followingRun(from: next, at: buffer + (p + piece - base), length: piece, limit: 1) == 1
                else { break }
                found.record([next], at: LocalSource(file: region.fileIndex, offset: p + piece))
                lastMatch = next
                p += 2 * piece
            }
            if p + window > fileLength { return }
            if p + window > base + count { try refill(from: p) }
            guard p + window <= base + count else { return }
            state = hasher.hash(buffer + (p - base))
        }
    }

    /// What a weak hit turned out to be.
    enum HitOutcome {
        /// New pieces, the highest of which is given.
        case matched(Int32)
        /// Every piece with this weak hash is already found: nothing here can be new.
        case allFound
        /// None of the candidates.
        case none
    }

    /// Verifies a weak hit and records the pieces the window is.
    ///
    /// Pieces already found are no candidates any more (zsync unlinks them from its hash chains): a
    /// window that repeats one is rolled through byte by byte like any other, since a piece still
    /// missing may start inside it (in a tar archive, 512 bytes further, say).
    @inline(never)
    private func handleHit(_ candidates: [Int32], at position: Int, pointer: UnsafeRawPointer, region: ScanRegion,
                           found: FoundPieces) -> HitOutcome {
        let open = found.missing(candidates)
        if open.isEmpty { return .allFound }
        let matched = verifier.verify(open, window: pointer, length: hasher.window)
        guard let highest = matched.max() else { return .none }
        let pieces = verifier.piecesPerWindow
        let piece = hasher.window / pieces
        for k in 0..<pieces {
            found.record(matched.map { $0 + Int32(k) }, at: LocalSource(file: region.fileIndex,
                offset: position + k * piece))
        }
        return .matched(highest + Int32(pieces - 1))
    }
}

/// Weak hashes whose pieces are all found, so that a run of repeats (zeros, padding) costs one probe
/// per byte instead of a table lookup and a lock. Found pieces stay found, so an entry never goes
/// stale; a direct-mapped cache of one thread's scan, small enough to stay in the L1 cache.
struct ExhaustedWeakHashes {
    private var slots = [UInt64](repeating: .max, count: 512)

    @inline(__always) func contains(_ weak: UInt32) -> Bool {
        slots.withUnsafeBufferPointer { $0[Int(weak & 511)] == UInt64(weak) }
    }

    @inline(__always) mutating func insert(_ weak: UInt32) {
        slots[Int(weak & 511)] = UInt64(weak)
    }
}
