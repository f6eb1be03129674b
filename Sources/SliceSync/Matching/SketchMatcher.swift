import Dispatch
import Synchronization

/// Format 2: resolves slices that changed from the sketch table alone, without their fine tables.
///
/// A few local edits leave a changed slice's old content where its found neighbours point: the part
/// before an edit continues the slice found before it, the part after the edit leads up to the slice
/// found after it (shifted by what was inserted or deleted). Each unit of the slice is tested at those
/// two places against its 16-bit sketch entry; what passes is taken, what fails is downloaded. A
/// slice is resolved this way only when little is left to download, because the fine tables could
/// find the rest elsewhere; and never when every unit passes, since the slice's own record says that
/// something changed (a unit passed by chance, one test in 65,536).
///
/// A unit that passes by chance makes the rebuilt slice wrong. The whole-file hash catches it, the
/// slice records locate it, and it is fetched again: a rare extra request, never a wrong file.
struct SketchMatcher: Sendable {
    let header: SignatureV2Header
    /// The sketch entries that arrived with the first request (possibly not all of them).
    let sketch: [UInt16]
    let alikes: [AlikeFile]

    /// A resolved slice leaves at most this many bytes to download.
    var maxMissingPerSlice: Int { header.sliceSize / 8 }

    /// Where the bytes of the target file would be in a local file if they had not moved relative to a
    /// found slice: target offset `x` is at `x + shift` in `file`.
    struct Anchor: Equatable {
        var file: Int
        var shift: Int
    }

    /// Shift searches per sync, each over `probeReach` bytes either way (about 30 ms each here).
    static let maxProbes = 8
    static let probeReach = 4096
    /// Runs of changed slices longer than this are not searched: many edits, which the fine tables
    /// handle better.
    static let maxProbedRun = 4

    /// A run of consecutive blocks found at consecutive local bytes from `source` on.
    typealias Run = (blocks: Range<Int>, source: LocalSource)

    /// For the slices in `missing` that it can resolve: where the blocks it found are, in runs (a
    /// changed release tarball has 150,000 of them; one entry per block took 7 MB).
    /// `found` holds every slice's whole-slice source (nil when not found whole).
    /// A resolved slice comes with the bytes it still needs from the server.
    func resolve(missing: [Int], found: [LocalSource?]) throws(FileSystemError)
        -> (resolved: [(slice: Int, missingBytes: Int)], sources: [Run]) {
        guard header.sketchUnit != nil, !missing.isEmpty else { return ([], []) }
        let wanted = Set(missing)
        var runs: [ClosedRange<Int>] = []
        var first = 0
        while first < found.count {
            guard found[first] == nil else {
                first += 1
                continue
            }
            var last = first
            while last + 1 < found.count && found[last + 1] == nil { last += 1 }
            if (first...last).contains(where: wanted.contains) { runs.append(first...last) }
            first = last + 1
        }
        // Runs are independent: both cores hash local bytes, each run on one of them.
        let runList = runs
        let probesLeft = Atomic<Int>(Self.maxProbes)
        let results = Mutex<(resolved: [(slice: Int, missingBytes: Int)], sources: [Run], error: FileSystemError?)>(
            ([], [], nil))
        DispatchQueue.concurrentPerform(iterations: runList.count) { index in
            do throws(FileSystemError) {
                let (resolved, sources) = try resolve(run: runList[index], wanted: wanted, found: found,
                    probesLeft: probesLeft)
                results.withLock {
                    $0.resolved += resolved
                    $0.sources += sources
                }
            } catch {
                results.withLock { $0.error = error }
            }
        }
        let collected = results.withLock { $0 }
        if let error = collected.error { throw error }
        return (collected.resolved.sorted { $0.slice < $1.slice }, collected.sources)
    }

    private func resolve(run: ClosedRange<Int>, wanted: Set<Int>, found: [LocalSource?],
        probesLeft: borrowing Atomic<Int>) throws(FileSystemError)
        -> (resolved: [(slice: Int, missingBytes: Int)], sources: [Run]) {
        let units = header.sketchUnits(ofSlice: run.lowerBound).lowerBound
            ..< header.sketchUnits(ofSlice: run.upperBound).upperBound
        guard units.upperBound <= sketch.count else { return ([], []) }
        var anchors = anchors(before: run.lowerBound > 0 ? run.lowerBound - 1 : nil,
            after: run.upperBound + 1 < found.count ? run.upperBound + 1 : nil, found: found)
        guard !anchors.isEmpty else { return ([], []) }
        var taken = TakenUnits(units)
        // Two anchors: the one before the run serves the units up to its first edit, the one after it
        // the units from its last edit on, each tested from its own end until a stretch fails. One
        // anchor (nothing moved) serves them all.
        if anchors.count == 2 {
            try test(anchors[0], units: units, taken: &taken, order: .forward)
            try test(anchors[1], units: units, taken: &taken, order: .backward)
        } else {
            for anchor in anchors { try test(anchor, units: units, taken: &taken, order: .all) }
        }
        // Content between two edits of one run has moved by the first edit's size: search for it.
        var probed = Set<Int>()
        while run.count <= Self.maxProbedRun,
              run.contains(where: {
                  wanted.contains($0) && missingBytes(slice: $0, taken: taken) > maxMissingPerSlice
              }),
              let (probe, base) = nextGap(units: units, taken: taken, skipping: probed),
              probesLeft.subtract(1, ordering: .relaxed).oldValue > 0 {
            probed.insert(probe)
            guard let anchor = try search(unit: probe, around: base), !anchors.contains(anchor) else { continue }
            anchors.append(anchor)
            try test(anchor, units: units, taken: &taken, order: .all)
        }
        var resolved: [(slice: Int, missingBytes: Int)] = []
        var sources: [Run] = []
        for slice in run where wanted.contains(slice) {
            let missing = missingBytes(slice: slice, taken: taken)
            guard missing > 0, missing <= maxMissingPerSlice else { continue }
            resolved.append((slice, missing))
            for index in header.sketchUnits(ofSlice: slice) {
                guard let source = taken[index] else { continue }
                let target = header.sketchUnitRange(index)
                let blocks = (target.lowerBound / header.blockSize)..<((target.upperBound - 1) / header.blockSize + 1)
                // Units taken at one anchor follow each other in the local file too: one run.
                let follows = sources.last.map { last in
                    last.blocks.upperBound == blocks.lowerBound && last.source.file == source.file
                        && last.source.offset + (blocks.lowerBound - last.blocks.lowerBound) * header.blockSize
                            == source.offset
                } ?? false
                if follows, let last = sources.last {
                    sources[sources.count - 1].blocks = last.blocks.lowerBound..<blocks.upperBound
                } else {
                    sources.append((blocks, source))
                }
            }
        }
        return (resolved, sources)
    }

    private func missingBytes(slice: Int, taken: TakenUnits) -> Int {
        header.sketchUnits(ofSlice: slice).reduce(0) { $0 + (taken[$1] == nil ? header.sketchUnitRange($1).count : 0) }
    }

    /// Whether unit `index`, moved by `shift`, matches its entry in `count` local bytes read at `start`.
    private func unit(_ index: Int, matchesAt shift: Int, in buffer: UnsafeRawPointer, readFrom start: Int,
        count: Int) -> Bool {
        let target = header.sketchUnitRange(index)
        let local = (target.lowerBound + shift - start)..<(target.upperBound + shift - start)
        return local.lowerBound >= 0 && local.upperBound <= count
            && SketchTable.entry(buffer + local.lowerBound, length: local.count,
                blockSize: header.blockSize) == sketch[index]
    }

    /// The order in which `test` goes through the units at an anchor.
    enum TestOrder {
        /// Every unit.
        case all
        /// From the first unit on, stopping after `maxMisses` in a row fail: past an edit that moved
        /// the rest, nothing more matches here.
        case forward
        /// From the last unit back, stopping likewise.
        case backward
    }

    /// Units that fail in a row before a directed test stops: 16 units (16 or 64 KiB) pass over an
    /// edit that changed bytes without moving the rest. Testing every unit at both anchors hashed
    /// 1.5 times the changed slices of a release tarball, most of it where nothing could match.
    static let maxMisses = 16

    /// Tests the units not yet taken at `anchor`, taking those whose local bytes match their entry.
    private func test(_ anchor: Anchor, units: Range<Int>, taken: inout TakenUnits,
        order: TestOrder) throws(FileSystemError) {
        let alike = alikes[anchor.file]
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: header.sliceSize, alignment: 16)
        defer { buffer.deallocate() }
        let perRead = max(1, header.sliceSize / header.sketchUnit!)
        var chunks = Array(stride(from: units.lowerBound, to: units.upperBound, by: perRead))
        if order == .backward { chunks.reverse() }
        var misses = 0
        for chunk in chunks {
            let chunkUnits = chunk..<min(chunk + perRead, units.upperBound)
            guard chunkUnits.contains(where: { taken[$0] == nil }) else { continue }
            let start = max(header.sketchUnitRange(chunkUnits.lowerBound).lowerBound + anchor.shift, 0)
            let end = min(header.sketchUnitRange(chunkUnits.upperBound - 1).upperBound + anchor.shift, alike.length)
            guard start < end else { continue }
            let count = try alike.file.read(into: buffer, count: end - start, at: start)
            for index in order == .backward ? Array(chunkUnits.reversed()) : Array(chunkUnits) {
                if taken[index] != nil { continue }
                if unit(index, matchesAt: anchor.shift, in: buffer, readFrom: start, count: count) {
                    taken[index] = LocalSource(file: anchor.file,
                        offset: header.sketchUnitRange(index).lowerBound + anchor.shift)
                    misses = 0
                } else {
                    misses += 1
                    if order != .all && misses >= Self.maxMisses { return }
                }
            }
        }
    }

    /// The first unit after an edit inside a long gap, with the place of the unit before the edit:
    /// a taken unit followed by at least four that are not.
    private func nextGap(units: Range<Int>, taken: TakenUnits,
        skipping: Set<Int>) -> (probe: Int, base: Anchor)? {
        for index in units.dropFirst() where index + 3 < units.upperBound {
            guard let before = taken[index - 1], !skipping.contains(index + 1),
                  (index...(index + 3)).allSatisfy({ taken[$0] == nil }) else { continue }
            return (index + 1,
                Anchor(file: before.file, shift: before.offset - header.sketchUnitRange(index - 1).lowerBound))
        }
        return nil
    }

    /// Looks for unit `probe` within `probeReach` bytes of where `base` puts it; three consecutive
    /// units must match at the same place, so a chance match is one in 2^48 per place tried.
    private func search(unit probe: Int, around base: Anchor) throws(FileSystemError) -> Anchor? {
        let alike = alikes[base.file]
        let reach = Self.probeReach
        let span = header.sketchUnitRange(probe).lowerBound..<header.sketchUnitRange(probe + 2).upperBound
        let start = max(span.lowerBound + base.shift - reach, 0)
        let end = min(span.upperBound + base.shift + reach, alike.length)
        guard start < end else { return nil }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: end - start, alignment: 16)
        defer { buffer.deallocate() }
        let count = try alike.file.read(into: buffer, count: end - start, at: start)
        // A unit's entry is the XOR of its blocks' entries, and the shifts a block apart share blocks:
        // each block offset is hashed once (the 8,192 shifts of a probe hashed 8 MiB, now about 4.5).
        var blockEntries = [Int32](repeating: -1, count: count)
        func blockEntry(_ offset: Int) -> UInt16 {
            if blockEntries[offset] < 0 {
                blockEntries[offset] = Int32(SketchTable.entry(buffer + offset, length: header.blockSize,
                                                               blockSize: header.blockSize))
            }
            return UInt16(blockEntries[offset])
        }
        func matches(_ index: Int, at shift: Int) -> Bool {
            let target = header.sketchUnitRange(index)
            guard target.count % header.blockSize == 0 else {
                return unit(index, matchesAt: shift, in: buffer, readFrom: start, count: count)
            }
            let local = target.lowerBound + shift - start
            guard local >= 0, local + target.count <= count else { return false }
            var entry: UInt16 = 0
            for offset in stride(from: local, to: local + target.count, by: header.blockSize) {
                entry ^= blockEntry(offset)
            }
            return entry == sketch[index]
        }
        for delta in -reach...reach where delta != 0 {
            let shift = base.shift + delta
            if (probe...(probe + 2)).allSatisfy({ matches($0, at: shift) }) {
                return Anchor(file: base.file, shift: shift)
            }
        }
        return nil
    }

    /// The places a changed slice's old content may be: continuing the nearest slice found before it,
    /// and leading up to the nearest slice found after it. With nothing found on one side, the start
    /// (or end) of the other side's file stands in for it: an edit near the start or end of the file.
    func anchors(before: Int?, after: Int?, found: [LocalSource?]) -> [Anchor] {
        var anchors: [Anchor] = []
        if let before, let source = found[before] {
            anchors.append(Anchor(file: source.file, shift: source.offset - before * header.sliceSize))
        } else if let after, let source = found[after] {
            anchors.append(Anchor(file: source.file, shift: 0))
        }
        if let after, let source = found[after] {
            anchors.append(Anchor(file: source.file, shift: source.offset - after * header.sliceSize))
        } else if let before, let source = found[before] {
            anchors.append(Anchor(file: source.file, shift: alikes[source.file].length - header.length))
        }
        return anchors.enumerated().filter { index, anchor in !anchors[..<index].contains(anchor) }.map(\.element)
    }
}

/// Where the units of one run of changed slices were taken from, by unit index (nil: not taken).
struct TakenUnits {
    private let first: Int
    private var sources: [LocalSource?]

    init(_ units: Range<Int>) {
        first = units.lowerBound
        sources = [LocalSource?](repeating: nil, count: units.count)
    }

    /// Nil for a unit outside the run.
    subscript(index: Int) -> LocalSource? {
        get { sources.indices.contains(index - first) ? sources[index - first] : nil }
        set { if sources.indices.contains(index - first) { sources[index - first] = newValue } }
    }
}
