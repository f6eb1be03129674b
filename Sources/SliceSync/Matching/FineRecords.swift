/// Format 2: the fine records the client holds, by global block index.
///
/// Fine tables arrive a slice at a time, so records are kept by whole slices: 12 bytes per block in
/// two flat arrays behind an index of the slices held. A dictionary entry per block took about 40
/// bytes, and twice that while it grew; the fine tables of a changed release tarball (150,000 blocks)
/// were the largest allocation of a run.
struct FineRecords: Sendable, Sequence {
    /// Blocks per slice; the last slice of a file may have fewer.
    let blocksPerSlice: Int
    /// Per slice up to the last one held: where its records start in `weak` and `strong` (-1: not
    /// held), and how many it has. Arrays, not a dictionary: the scan asks for every candidate of
    /// every weak hit.
    private var starts: [Int] = []
    private var counts: [Int32] = []
    private var weak: [UInt32] = []
    private var strong: [UInt64] = []

    init(blocksPerSlice: Int = 1) {
        self.blocksPerSlice = Swift.max(1, blocksPerSlice)
    }

    /// Blocks whose records are held.
    var count: Int { weak.count }
    var isEmpty: Bool { weak.isEmpty }

    /// Makes room for `blocks` more records, so that adding them never holds two copies.
    mutating func reserve(_ blocks: Int) {
        weak.reserveCapacity(weak.count + blocks)
        strong.reserveCapacity(strong.count + blocks)
    }

    /// Whether the fine table of `slice` is held.
    func holds(slice: Int) -> Bool { slice >= 0 && slice < starts.count && starts[slice] >= 0 }

    private mutating func claim(slice: Int, blocks: Int) {
        if slice >= starts.count {
            starts += repeatElement(-1, count: slice + 1 - starts.count)
            counts += repeatElement(0, count: slice + 1 - counts.count)
        }
        starts[slice] = weak.count
        counts[slice] = Int32(blocks)
    }

    /// Adds the fine table of `slice`: `blocks` records of `HashRecord.size` bytes at `raw`. A table
    /// already held stays as it is.
    mutating func add(slice: Int, records raw: UnsafeRawPointer, blocks: Int) {
        guard !holds(slice: slice), slice >= 0, blocks > 0 else { return }
        claim(slice: slice, blocks: Swift.min(blocks, blocksPerSlice))
        for k in 0..<Swift.min(blocks, blocksPerSlice) {
            let record = HashRecord.load(from: raw + k * HashRecord.size)
            weak.append(record.weak)
            strong.append(record.strong)
        }
    }

    /// Adds records given one by one (tests; a table of `blocksPerSlice` records per slice).
    mutating func add(_ records: [HashRecord], slice: Int) {
        guard !holds(slice: slice), slice >= 0, !records.isEmpty else { return }
        claim(slice: slice, blocks: Swift.min(records.count, blocksPerSlice))
        for record in records.prefix(blocksPerSlice) {
            weak.append(record.weak)
            strong.append(record.strong)
        }
    }

    /// Where the record of `block` is in the flat arrays, when it is held.
    func position(of block: Int) -> Int? {
        guard block >= 0 else { return nil }
        let slice = block / blocksPerSlice
        guard slice < starts.count, starts[slice] >= 0 else { return nil }
        let k = block - slice * blocksPerSlice
        return k < Int(counts[slice]) ? starts[slice] + k : nil
    }

    /// The strong hash at a position `position(of:)` gave.
    func strong(at position: Int) -> UInt64 { strong[position] }

    subscript(block: Int) -> HashRecord? {
        position(of: block).map { HashRecord(weak: weak[$0], strong: strong[$0]) }
    }

    /// The blocks held, with their records, in block order.
    func makeIterator() -> AnyIterator<(block: Int, record: HashRecord)> {
        var slice = 0
        var k = 0
        return AnyIterator { [self] in
            while slice < starts.count {
                guard starts[slice] >= 0, k < Int(counts[slice]) else {
                    slice += 1
                    k = 0
                    continue
                }
                defer { k += 1 }
                let position = starts[slice] + k
                return (slice * blocksPerSlice + k, HashRecord(weak: weak[position], strong: strong[position]))
            }
            return nil
        }
    }
}
