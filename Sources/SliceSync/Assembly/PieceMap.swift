/// Where every unit (format 1 slice, format 2 block) of the target file comes from: a local file or
/// the server.
struct PieceMap: Sendable {
    /// Bytes per unit; the last unit may be shorter.
    let unitSize: Int
    /// The target file's length.
    let length: Int
    /// Per unit: where it is locally, or nil when it must be downloaded (8 bytes per unit).
    var sources: PackedSources
    /// Format 2: the fine records known so far, by block index (those of the slices not found whole).
    var fineRecords = FineRecords()
    /// Format 2: missing data is whole slices, verified against the coarse table (no fine tables fetched).
    var verifyBySlice = false

    func unitRange(_ index: Int) -> Range<Int> {
        (index * unitSize)..<min((index + 1) * unitSize, length)
    }

    /// Format 2: gives the blocks of every found slice their source.
    mutating func take(_ slices: [LocalSource?], header: SignatureV2Header) {
        for (index, source) in slices.enumerated() {
            guard let source else { continue }
            sources.setRun(header.blockRange(ofSlice: index), from: source)
        }
    }

    /// Bytes found locally.
    var reusedBytes: Int {
        sources.indices.reduce(0) { $0 + (sources[$1] == nil ? 0 : unitRange($1).count) }
    }

    /// The byte ranges to download, sorted, adjacent units merged.
    var missingRanges: [Range<Int>] {
        segments.compactMap { if case .output(let range) = $0 { range } else { nil } }
    }

    /// Local copies to make, with units that are contiguous in both files merged into one run.
    var localRuns: [(source: LocalSource, target: Range<Int>)] {
        segments.compactMap { if case .local(let source, let range) = $0 { (source, range) } else { nil } }
    }

    /// Where each part of the output comes from, in file order.
    enum Segment: Sendable, Equatable {
        /// Copied from a local file.
        case local(LocalSource, Range<Int>)
        /// Already written into the output (downloaded).
        case output(Range<Int>)

        var range: Range<Int> {
            switch self {
            case .local(_, let range), .output(let range): range
            }
        }
    }

    /// Takes what a block scan found (units are blocks), a run of blocks at a time, so that the groups
    /// a run covers stay compact: taken a block at a time, every group a find touched kept a word per
    /// block, 2 MB of small allocations for a tarball whose blocks were all found by the block scan.
    mutating func take(_ found: FoundBlocks) {
        var run: (blocks: Range<Int>, source: LocalSource)?
        for (block, source) in found {
            if let current = run, current.blocks.upperBound == block, current.source.file == source.file,
               current.source.offset + current.blocks.count * unitSize == source.offset {
                run = (current.blocks.lowerBound..<(block + 1), current.source)
                continue
            }
            if let current = run { sources.setRun(current.blocks, from: current.source) }
            run = (block..<(block + 1), source)
        }
        if let current = run { sources.setRun(current.blocks, from: current.source) }
    }

    /// The output's parts in order, in one pass over the units: local runs (units contiguous in both
    /// files merged) and downloaded ranges (adjacent units merged). Made from the runs and the ranges,
    /// concatenated and sorted, they were 3.4 MB at once for a tarball whose blocks were all found by the
    /// block scan, the peak of its run.
    var segments: [Segment] {
        var result: [Segment] = []
        for index in sources.indices {
            let target = unitRange(index)
            guard let source = sources[index] else {
                if case .output(let range)? = result.last, range.upperBound == target.lowerBound {
                    result[result.count - 1] = .output(range.lowerBound..<target.upperBound)
                } else {
                    result.append(.output(target))
                }
                continue
            }
            if case .local(let first, let range)? = result.last, first.file == source.file,
               range.upperBound == target.lowerBound, first.offset + range.count == source.offset {
                result[result.count - 1] = .local(first, range.lowerBound..<target.upperBound)
            } else {
                result.append(.local(source, target))
            }
        }
        return result
    }

    /// Whether every unit comes from `fileIndex` at its own offset: that file already is the target.
    func isIdentity(fileIndex: Int?, length: Int) -> Bool {
        guard let fileIndex else { return false }
        return sources.indices.allSatisfy {
            sources[$0] == LocalSource(file: fileIndex, offset: unitRange($0).lowerBound)
        }
    }
}

/// Per-unit local sources, kept compact: units go in groups of 64, and a group whose units all come
/// from consecutive places of one file (a slice found whole), or that is all missing, takes 8 bytes.
/// Only groups that mix sources keep 8 bytes per unit. A 4 GiB file of 2 KiB blocks with a few
/// changed slices needs a few hundred KiB instead of 16 MiB.
struct PackedSources: Sendable {
    static let groupSize = 64
    /// Number of units.
    let count: Int
    /// Bytes per unit, to place the units of a uniform group.
    let unitSize: Int
    /// Per group: the packed source of its first unit (`PackedSource.none`: all missing), when the
    /// group is uniform.
    private var uniform: [UInt64]
    /// Per group: its index in `mixed`, or -1 when it is uniform.
    private var mixedIndex: [Int32]
    /// Per-unit sources of the groups that are not uniform.
    private var mixed: [[UInt64]] = []

    /// `count` units of `unitSize` bytes, none found.
    init(count: Int, unitSize: Int) {
        self.count = count
        self.unitSize = unitSize
        let groups = (count + Self.groupSize - 1) / Self.groupSize
        uniform = Array(repeating: PackedSource.none, count: groups)
        mixedIndex = Array(repeating: -1, count: groups)
    }

    /// From one optional source per unit.
    init(_ sources: [LocalSource?], unitSize: Int) {
        self.init(count: sources.count, unitSize: unitSize)
        for (index, source) in sources.enumerated() where source != nil { self[index] = source }
    }

    var indices: Range<Int> { 0..<count }

    subscript(index: Int) -> LocalSource? {
        get {
            let group = index / Self.groupSize
            let slot = mixedIndex[group]
            if slot >= 0 { return PackedSource.unpack(mixed[Int(slot)][index % Self.groupSize]) }
            return unit(index % Self.groupSize, ofUniform: uniform[group])
        }
        set {
            let group = index / Self.groupSize
            var slot = mixedIndex[group]
            if slot < 0 {
                let base = uniform[group]
                if unit(index % Self.groupSize, ofUniform: base) == newValue { return }
                let size = min(Self.groupSize, count - group * Self.groupSize)
                mixed.append((0..<size).map { unit($0, ofUniform: base).map(PackedSource.pack) ?? PackedSource.none })
                slot = Int32(mixed.count - 1)
                mixedIndex[group] = slot
            }
            mixed[Int(slot)][index % Self.groupSize] = newValue.map(PackedSource.pack) ?? PackedSource.none
        }
    }

    /// Gives `units` the consecutive bytes of a file from `source` on: whole groups stay compact.
    mutating func setRun(_ units: Range<Int>, from source: LocalSource) {
        var index = units.lowerBound
        while index < units.upperBound {
            let group = index / Self.groupSize
            let groupStart = group * Self.groupSize
            let groupEnd = min(groupStart + Self.groupSize, count)
            let at = LocalSource(file: source.file, offset: source.offset + (index - units.lowerBound) * unitSize)
            if index == groupStart && groupEnd <= units.upperBound && mixedIndex[group] < 0 {
                uniform[group] = PackedSource.pack(at)
                index = groupEnd
            } else {
                self[index] = at
                index += 1
            }
        }
    }

    private func unit(_ offset: Int, ofUniform base: UInt64) -> LocalSource? {
        guard let first = PackedSource.unpack(base) else { return nil }
        return LocalSource(file: first.file, offset: first.offset + offset * unitSize)
    }
}
