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
    var fineRecords: [Int: HashRecord] = [:]
    /// Format 2: missing data is whole slices, verified against the coarse table (no fine tables fetched).
    var verifyBySlice = false

    func unitRange(_ index: Int) -> Range<Int> {
        (index * unitSize)..<min((index + 1) * unitSize, length)
    }

    /// Format 2: gives the blocks of every found slice their source.
    mutating func take(_ slices: [LocalSource?], header: SignatureV2Header) {
        for (index, source) in slices.enumerated() {
            guard let source else { continue }
            for (k, block) in header.blockRange(ofSlice: index).enumerated() {
                sources[block] = LocalSource(file: source.file, offset: source.offset + k * header.blockSize)
            }
        }
    }

    /// Bytes found locally.
    var reusedBytes: Int {
        sources.indices.reduce(0) { $0 + (sources[$1] == nil ? 0 : unitRange($1).count) }
    }

    /// The byte ranges to download, sorted, adjacent units merged.
    var missingRanges: [Range<Int>] {
        var result: [Range<Int>] = []
        for index in sources.indices where sources[index] == nil {
            let range = unitRange(index)
            if let last = result.last, last.upperBound == range.lowerBound {
                result[result.count - 1] = last.lowerBound..<range.upperBound
            } else {
                result.append(range)
            }
        }
        return result
    }

    /// Local copies to make, with units that are contiguous in both files merged into one run.
    var localRuns: [(source: LocalSource, target: Range<Int>)] {
        var runs: [(source: LocalSource, target: Range<Int>)] = []
        for index in sources.indices {
            guard let source = sources[index] else { continue }
            let target = unitRange(index)
            if let last = runs.last, last.source.file == source.file, last.target.upperBound == target.lowerBound,
               last.source.offset + last.target.count == source.offset {
                runs[runs.count - 1].target = last.target.lowerBound..<target.upperBound
            } else {
                runs.append((source, target))
            }
        }
        return runs
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

    /// The output's parts in order: local runs and downloaded ranges.
    var segments: [Segment] {
        let local = localRuns.map { Segment.local($0.source, $0.target) }
        let downloaded = missingRanges.map { Segment.output($0) }
        return (local + downloaded).sorted { $0.range.lowerBound < $1.range.lowerBound }
    }

    /// Whether every unit comes from `fileIndex` at its own offset: that file already is the target.
    func isIdentity(fileIndex: Int?, length: Int) -> Bool {
        guard let fileIndex else { return false }
        return sources.indices.allSatisfy { sources[$0] == LocalSource(file: fileIndex, offset: unitRange($0).lowerBound) }
    }
}

/// Per-unit local sources in 8 bytes each (a 4 GiB file of 2 KiB blocks needs 16 MiB).
struct PackedSources: Sendable {
    private var storage: [UInt64]

    /// `count` units, none found.
    init(count: Int) { storage = Array(repeating: PackedSource.none, count: count) }

    /// From one optional source per unit.
    init(_ sources: [LocalSource?]) { storage = sources.map { $0.map(PackedSource.pack) ?? PackedSource.none } }

    var indices: Range<Int> { storage.indices }

    subscript(index: Int) -> LocalSource? {
        get { PackedSource.unpack(storage[index]) }
        set { storage[index] = newValue.map(PackedSource.pack) ?? PackedSource.none }
    }
}
