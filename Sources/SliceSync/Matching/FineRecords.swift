/// Format 2: the fine records the client holds, by global block index.
///
/// Fine tables arrive a slice at a time, so records are kept by whole slices, as the signature stores
/// them (12 bytes each, big-endian), behind an index of the slices held: a fetch writes the tables
/// straight into their place, and nothing is held twice. A dictionary entry per block took about 40
/// bytes, and twice that while it grew; the fine tables of a changed release tarball (170,000
/// blocks) were the largest allocation of a run.
struct FineRecords: Sendable, Sequence {
    /// Blocks per slice; the last slice of a file may have fewer.
    let blocksPerSlice: Int
    /// Per slice up to the last one held: where its records start (in records; -1: not held), and how
    /// many it has. Arrays, not a dictionary: the scan asks for every candidate of every weak hit.
    private var starts: [Int] = []
    private var counts: [Int32] = []
    /// The records, `HashRecord.size` bytes each, in the order their slices were added.
    private var raw: [UInt8] = []

    init(blocksPerSlice: Int = 1) {
        self.blocksPerSlice = Swift.max(1, blocksPerSlice)
    }

    /// Blocks whose records are held.
    var count: Int { raw.count / HashRecord.size }
    var isEmpty: Bool { raw.isEmpty }

    /// Whether the fine table of `slice` is held.
    func holds(slice: Int) -> Bool { slice >= 0 && slice < starts.count && starts[slice] >= 0 }

    /// Adds the fine tables of `slices` (each with its number of blocks), laid end to end in `tables`
    /// as the signature stores them. Slices already held, or a size that does not add up, are refused.
    mutating func add(_ slices: [(slice: Int, blocks: Int)], tables: [UInt8]) {
        let blocks = slices.reduce(0) { $0 + Swift.min(Swift.max(0, $1.blocks), blocksPerSlice) }
        guard tables.count == blocks * HashRecord.size, slices.allSatisfy({ $0.slice >= 0 && !holds(slice: $0.slice) }),
              Set(slices.map(\.slice)).count == slices.count else { return }
        var next = count
        for (slice, blocks) in slices {
            if slice >= starts.count {
                starts += repeatElement(-1, count: slice + 1 - starts.count)
                counts += repeatElement(0, count: slice + 1 - counts.count)
            }
            starts[slice] = next
            counts[slice] = Int32(Swift.min(blocks, blocksPerSlice))
            next += Int(counts[slice])
        }
        if raw.isEmpty { raw = tables } else { raw += tables }
    }

    /// Where the record of `block` is among those held, when it is held.
    func position(of block: Int) -> Int? {
        guard block >= 0 else { return nil }
        let slice = block / blocksPerSlice
        guard slice < starts.count, starts[slice] >= 0 else { return nil }
        let k = block - slice * blocksPerSlice
        return k < Int(counts[slice]) ? starts[slice] + k : nil
    }

    /// The strong hash at a position `position(of:)` gave.
    func strong(at position: Int) -> UInt64 {
        raw.withUnsafeBytes {
            UInt64(bigEndian: $0.loadUnaligned(fromByteOffset: position * HashRecord.size + 4, as: UInt64.self))
        }
    }

    subscript(block: Int) -> HashRecord? {
        position(of: block).map { position in
            raw.withUnsafeBytes { HashRecord.load(from: $0.baseAddress! + position * HashRecord.size) }
        }
    }

    /// The blocks held, with their records, in block order.
    func makeIterator() -> Iterator { Iterator(records: self) }

    /// A plain struct, not an `AnyIterator`: the closure's captured counters were boxed and checked for
    /// exclusive access at every step, a twentieth of a tarball's block matching.
    struct Iterator: IteratorProtocol {
        let records: FineRecords
        var slice = 0
        var k = 0

        mutating func next() -> (block: Int, record: HashRecord)? {
            while slice < records.starts.count {
                guard records.starts[slice] >= 0, k < Int(records.counts[slice]) else {
                    slice += 1
                    k = 0
                    continue
                }
                defer { k += 1 }
                let position = records.starts[slice] + k
                let record = records.raw.withUnsafeBytes {
                    HashRecord.load(from: $0.baseAddress! + position * HashRecord.size)
                }
                return (slice * records.blocksPerSlice + k, record)
            }
            return nil
        }
    }
}
