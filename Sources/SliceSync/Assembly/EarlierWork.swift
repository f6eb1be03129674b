/// Reuse of what an interrupted run left behind.
///
/// Every verified piece a run downloads is written at once at its own offset of the temporary output
/// (`OutputFile`), which survives a kill, a crash or a power cut under its temporary name. The next
/// run opens those files as *probed* alikes: each missing piece is read where it belongs, and
/// only there, and taken when it matches its record. Nothing about the earlier run is trusted: a
/// piece that was in flight, or lost from the page cache by a power cut, simply fails its check and
/// is downloaded again. Holes (never written) are skipped without reading.
extension LoadedSignature {
    /// Gives missing slices (nil entries) the matching slices of positional files.
    func probeSlices(_ sources: inout [LocalSource?], alikes: [AlikeFile]) throws(FileSystemError) {
        for (fileIndex, alike) in alikes.enumerated() where alike.probed {
            let covered = SortedRanges(alike.extents)
            try withBuffer(sliceSize) { (buffer) throws(FileSystemError) in
                for index in sources.indices where sources[index] == nil {
                    let range = sliceRange(index)
                    guard covered.contains(range), range.upperBound <= alike.length else { continue }
                    guard try alike.file.read(into: buffer, count: range.count, at: range.lowerBound) == range.count
                        else { continue }
                    if sliceMatches(index, UnsafeRawBufferPointer(start: buffer, count: range.count)) {
                        sources[index] = LocalSource(file: fileIndex, offset: range.lowerBound)
                    }
                }
            }
        }
    }

    /// Format 2: gives missing units the matching pieces of positional files — blocks with a known
    /// fine record, and whole slices (checked against the coarse table) whose blocks have none.
    func probeUnits(_ map: inout PieceMap, alikes: [AlikeFile]) throws(FileSystemError) {
        guard let header = v2 else { return }
        for (fileIndex, alike) in alikes.enumerated() where alike.probed {
            let covered = SortedRanges(alike.extents)
            let records = map.fineRecords
            try withBuffer(sliceSize) { (buffer) throws(FileSystemError) in
                for slice in 0..<sliceCount {
                    let blocks = header.blockRange(ofSlice: slice)
                    let missing = blocks.filter { map.sources[$0] == nil }
                    guard !missing.isEmpty else { continue }
                    let range = sliceRange(slice)
                    let unrecorded = map.verifyBySlice || missing.contains { records[$0] == nil }
                    if unrecorded {
                        guard covered.contains(range), range.upperBound <= alike.length,
                              try alike.file.read(into: buffer, count: range.count,
                                  at: range.lowerBound) == range.count,
                              sliceMatches(slice, UnsafeRawBufferPointer(start: buffer, count: range.count))
                                  else { continue }
                        for block in missing { map.sources[block] = LocalSource(file: fileIndex,
                            offset: map.unitRange(block).lowerBound) }
                        continue
                    }
                    for block in missing {
                        let blockRange = map.unitRange(block)
                        guard let record = records[block], covered.contains(blockRange),
                            blockRange.upperBound <= alike.length,
                              try alike.file.read(into: buffer, count: blockRange.count,
                                  at: blockRange.lowerBound) == blockRange.count,
                              HashRecord.block(buffer, length: blockRange.count) == record else { continue }
                        map.sources[block] = LocalSource(file: fileIndex, offset: blockRange.lowerBound)
                    }
                }
            }
        }
    }

    private func withBuffer(_ size: Int,
        _ body: (UnsafeMutableRawPointer) throws(FileSystemError) -> Void) throws(FileSystemError) {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(1, size), alignment: 16)
        defer { buffer.deallocate() }
        try body(buffer)
    }
}
