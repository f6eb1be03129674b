/// What a scan for the blocks of held fine records found: a bit per record, and the sources as runs of
/// consecutive blocks at consecutive local bytes (16 bytes a run).
///
/// A word per record (the source of each) took 1.8 MB for a release tarball once all of its 225,000
/// blocks went through the block scan, the largest allocation of its matching; its finds are runs of
/// about 50 blocks. Finds that do not run (blocks found one by one, far apart) switch to a word per
/// record when the runs would take more.
struct HeldFinds: Sendable {
    let records: FineRecords
    let blockSize: Int
    /// One bit per record, by its position among those held: found.
    private var found: [UInt64]
    private var runs: [Run] = []
    /// `PackedSource` by position, once runs would take more.
    private var sources: [UInt64]?

    /// Blocks `first..<first + count`, the first at `source`, the next ones `blockSize` bytes apart.
    struct Run: Sendable {
        var first: Int32
        var count: Int32
        var source: UInt64
    }

    init(records: FineRecords, blockSize: Int) {
        self.records = records
        self.blockSize = blockSize
        found = [UInt64](repeating: 0, count: (records.count + 63) / 64)
    }

    /// Whether `block` is held and not found yet.
    func isMissing(_ block: Int32) -> Bool {
        guard let position = records.position(of: Int(block)) else { return false }
        return found[position >> 6] & (1 << UInt64(position & 63)) == 0
    }

    /// Records `block` at the packed source `packed`, unless it is not held or already found.
    mutating func record(_ block: Int32, _ packed: UInt64) {
        guard let position = records.position(of: Int(block)) else { return }
        let bit: UInt64 = 1 << UInt64(position & 63)
        guard found[position >> 6] & bit == 0 else { return }
        found[position >> 6] |= bit
        if sources != nil {
            sources?[position] = packed
            return
        }
        // A packed offset plus a run's length stays within its low 56 bits: offsets are file positions.
        if let last = runs.last, Int(last.first) + Int(last.count) == Int(block),
           last.source &+ UInt64(Int(last.count) * blockSize) == packed {
            runs[runs.count - 1].count += 1
            return
        }
        runs.append(Run(first: block, count: 1, source: packed))
        if runs.count * MemoryLayout<Run>.stride > records.count * MemoryLayout<UInt64>.stride {
            var dense = [UInt64](repeating: PackedSource.none, count: records.count)
            for run in runs {
                for k in 0..<Int(run.count) {
                    if let at = records.position(of: Int(run.first) + k) {
                        dense[at] = run.source &+ UInt64(k * blockSize)
                    }
                }
            }
            sources = dense
            runs = []
        }
    }

    /// The finds, in block order.
    var blocks: FoundBlocks {
        if let sources { return FoundBlocks(.dense(records, sources)) }
        return FoundBlocks(.runs(runs.sorted { $0.first < $1.first }, blockSize: blockSize))
    }
}

/// The blocks a scan found, in block order, with their sources (see `HeldFinds`).
struct FoundBlocks: Sequence, Sendable {
    fileprivate enum Storage: Sendable {
        /// Runs sorted by their first block.
        case runs([HeldFinds.Run], blockSize: Int)
        /// `PackedSource` by record position.
        case dense(FineRecords, [UInt64])
    }
    private let storage: Storage

    fileprivate init(_ storage: Storage) { self.storage = storage }

    /// Nothing found.
    static let empty = FoundBlocks(.runs([], blockSize: 1))

    /// Blocks found.
    var count: Int {
        switch storage {
        case .runs(let runs, _): runs.reduce(0) { $0 + Int($1.count) }
        case .dense(_, let sources): sources.reduce(0) { $0 + ($1 == PackedSource.none ? 0 : 1) }
        }
    }

    func makeIterator() -> Iterator { Iterator(storage: storage) }

    struct Iterator: IteratorProtocol {
        fileprivate let storage: Storage
        private var run = 0
        private var k = 0
        private var records: FineRecords.Iterator?

        fileprivate init(storage: Storage) {
            self.storage = storage
            if case .dense(let held, _) = storage { records = held.makeIterator() }
        }

        mutating func next() -> (block: Int, source: LocalSource)? {
            switch storage {
            case .runs(let runs, let blockSize):
                while run < runs.count {
                    let current = runs[run]
                    guard k < Int(current.count) else {
                        run += 1
                        k = 0
                        continue
                    }
                    defer { k += 1 }
                    guard let source = PackedSource.unpack(current.source &+ UInt64(k * blockSize)) else { continue }
                    return (Int(current.first) + k, source)
                }
                return nil
            case .dense(let held, let sources):
                while let (block, _) = records?.next() {
                    guard let position = held.position(of: block), position < sources.count,
                          let source = PackedSource.unpack(sources[position]) else { continue }
                    return (block, source)
                }
                return nil
            }
        }
    }
}
