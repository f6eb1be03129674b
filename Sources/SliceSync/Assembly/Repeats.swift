/// Pieces no local file has that still need no download: pieces of zeros (holes of disk images, the
/// padding of archives) are written as zeros, and a piece that occurs several times in the file is
/// downloaded once and copied to its other places (a tar's per-member extended headers, for example,
/// which all change to the same new timestamp between releases).
extension PieceMap {
    /// Gives every missing unit that is all zeros, or repeats an earlier missing unit, a source.
    /// `record` is a unit's record when it is known; `zero` the record of `length` zero bytes.
    mutating func fillRepeats<Record: Hashable>(record: (Int) -> Record?, zero: (Int) -> Record) {
        var zeroRecords: [Int: Record] = [:]
        var firstOf: [Record: Int] = [:]
        for index in sources.indices where sources[index] == nil {
            guard let record = record(index) else { continue }
            let range = unitRange(index)
            let zeroRecord = zeroRecords[range.count] ?? zero(range.count)
            zeroRecords[range.count] = zeroRecord
            if record == zeroRecord {
                sources[index] = LocalSource(file: LocalSource.zeros, offset: range.lowerBound)
            } else if let earlier = firstOf[record], unitRange(earlier).count == range.count {
                sources[index] = LocalSource(file: LocalSource.repeated, offset: unitRange(earlier).lowerBound)
            } else {
                firstOf[record] = index
            }
        }
    }
}

extension LoadedSignature {
    /// Fills the map's missing units that are zeros or repeats (see `PieceMap.fillRepeats`).
    func fillRepeats(_ map: inout PieceMap) {
        if let v1 {
            map.fillRepeats(record: { v1.slices[$0] }, zero: { length in
                Self.withZeros(length) { V1SliceHash(of: $0, count: length) }
            })
        } else if let control = zsync {
            // Only zeros: zsync records may be as short as 5 bytes, too short to tell two blocks of a
            // large file apart by record alone (zsync itself never copies by record).
            let zero = Self.withZeros(control.blockSize) { control.geometry.records(of: $0, count: control.blockSize) }
            for index in map.sources.indices where map.sources[index] == nil
                && map.unitRange(index).count == control.blockSize {
                let start = index * control.recordSize
                if control.records[start..<(start + control.recordSize)].elementsEqual(zero) {
                    map.sources[index] = LocalSource(file: LocalSource.zeros, offset: map.unitRange(index).lowerBound)
                }
            }
        } else if !map.verifyBySlice {
            let records = map.fineRecords
            map.fillRepeats(record: { records[$0] }, zero: { length in
                Self.withZeros(length) { HashRecord.block($0, length: length) }
            })
        }
    }

    /// Format 2: the missing slices that are all zeros, which then need no fine table.
    func zeroSlices(among missing: [Int]) -> Set<Int> {
        guard let header = v2 else { return [] }
        var zeroRecords: [Int: HashRecord] = [:]
        var result = Set<Int>()
        for index in missing {
            let length = sliceRange(index).count
            let zero = zeroRecords[length] ?? Self.withZeros(length) {
                HashRecord.slice($0, length: length, blockSize: header.blockSize)
            }
            zeroRecords[length] = zero
            if coarse[index] == zero { result.insert(index) }
        }
        return result
    }

    private static func withZeros<T>(_ length: Int, _ body: (UnsafeRawPointer) -> T) -> T {
        let zeros = UnsafeMutableRawPointer.allocate(byteCount: max(length, 1), alignment: 16)
        defer { zeros.deallocate() }
        zeros.initializeMemory(as: UInt8.self, repeating: 0, count: max(length, 1))
        return body(zeros)
    }
}
