/// What an in-place update writes: the ranges of the destination whose bytes change, found from the
/// piece map with no I/O except reading the destination where the new version has zeros.
///
/// A piece is unchanged when it comes from the destination at its own offset. Zeros found by record
/// are unchanged where the destination already holds zeros there (its holes, or zero bytes), so a
/// sparse disk image is not rewritten on every update. Everything else is written: downloaded pieces,
/// pieces of other local files, repeats, and content that moves inside the destination.
struct InPlacePlan: Sendable {
    /// The ranges that change, sorted, disjoint, adjacent ones merged.
    let changed: [Range<Int>]
    /// The ranges that stay as they are (from the destination at their own offset), sorted.
    let unchanged: SortedRanges
    /// The new length.
    let length: Int

    /// Bytes that change.
    var changedBytes: Int { changed.reduce(0) { $0 + $1.count } }

    /// Bytes an update writes: each changed byte once into the journal and once into the destination.
    var bytesToWrite: Int { 2 * changedBytes }

    /// The plan for `map` when the destination is alike file `destination` (of `destinationLength`
    /// bytes, data in `extents`).
    init(map: PieceMap, destination: Int, destinationFile: SystemFile, destinationLength: Int,
         extents: [Range<Int>]) throws(FileSystemError) {
        length = map.length
        var changed: [Range<Int>] = []
        var same: [Range<Int>] = []
        func add(_ range: Range<Int>, to list: inout [Range<Int>]) {
            guard !range.isEmpty else { return }
            if let last = list.last, last.upperBound == range.lowerBound {
                list[list.count - 1] = last.lowerBound..<range.upperBound
            } else {
                list.append(range)
            }
        }
        let data = SortedRanges(extents)
        for segment in map.segments {
            let range = segment.range
            switch segment {
            case .local(let source, _) where source.file == destination && source.offset == range.lowerBound
                && range.upperBound <= destinationLength:
                add(range, to: &same)
            case .local(let source, _) where source.file == LocalSource.zeros:
                // Already zeros in the destination: holes, or data that reads as zeros.
                var cursor = range.lowerBound
                for part in try Self.zeroParts(of: range, in: destinationFile, length: destinationLength,
                    data: data) {
                    add(cursor..<part.lowerBound, to: &changed)
                    add(part, to: &same)
                    cursor = part.upperBound
                }
                add(cursor..<range.upperBound, to: &changed)
            default:
                add(range, to: &changed)
            }
        }
        self.changed = changed
        unchanged = SortedRanges(same)
    }

    /// The parts of `range` (inside the destination's length) that already hold zeros.
    private static func zeroParts(of range: Range<Int>, in file: SystemFile, length: Int,
        data: SortedRanges) throws(FileSystemError) -> [Range<Int>] {
        let within = range.lowerBound..<min(range.upperBound, length)
        guard !within.isEmpty else { return [] }
        var parts: [Range<Int>] = []
        let chunk = 1 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 16)
        defer { buffer.deallocate() }
        var offset = within.lowerBound
        while offset < within.upperBound {
            let end = min(offset + chunk, within.upperBound)
            let piece = offset..<end
            var zero = !data.overlaps(piece)
            if !zero, try file.read(into: buffer, count: piece.count, at: offset) == piece.count {
                zero = UnsafeRawBufferPointer(start: buffer, count: piece.count).allSatisfy { $0 == 0 }
            }
            if zero {
                if let last = parts.last, last.upperBound == offset { parts[parts.count - 1] = last.lowerBound..<end }
                    else { parts.append(piece) }
            }
            offset = end
        }
        return parts
    }
}
