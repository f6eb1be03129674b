/// Zeros in a pushed file (the free space of a disk image, the padding of an archive) are copied on the
/// server from zeros of the old object, wherever each lies: the matcher ties every zero piece of the
/// old object to one place in the new file, so runs of zeros would otherwise be uploaded.
enum ZeroRuns {
    /// Zeros are looked for in blocks of this size, aligned in the new file.
    static let block = 4096

    /// The runs of zero blocks in the first `length` bytes of `file` at least `minimum` long: holes
    /// cost nothing to find, data is read.
    static func find(in file: SystemFile, length: Int, minimum: Int) throws -> [Range<Int>] {
        var runs: [Range<Int>] = []
        func add(_ range: Range<Int>) {
            if let last = runs.last, last.upperBound == range.lowerBound {
                runs[runs.count - 1] = last.lowerBound..<range.upperBound
            } else {
                runs.append(range)
            }
        }
        var position = 0
        for extent in file.dataExtents(length: length) + [length..<length] {
            if position < extent.lowerBound { add(position..<extent.lowerBound) }
            // Pieces are whole numbers of blocks, so blocks aligned in the file never straddle two.
            _ = try file.readChunks(extent, chunk: 256 * block) { raw, offset in
                var start = (offset + block - 1) / block * block
                while start + block <= offset + raw.count {
                    let slice = UnsafeRawBufferPointer(rebasing: raw[(start - offset)..<(start - offset + block)])
                    if slice.allSatisfy({ $0 == 0 }) { add(start..<(start + block)) }
                    start += block
                }
                return true
            }
            position = max(position, extent.upperBound)
        }
        return runs.filter { $0.count >= minimum }
    }

    /// Whether the bytes of `range` in `file` are all zeros.
    static func isZero(_ file: SystemFile, _ range: Range<Int>) throws -> Bool {
        try file.readChunks(range) { piece, _ in piece.allSatisfy { $0 == 0 } }
    }

    /// Matches for the new file's zero runs `zeros`, from the longest run of zeros of the old object
    /// that `matches` (and `oldZeros`, pieces the matcher knew to be zeros) show; none when it is
    /// shorter than `minimum` (S3 would not copy less). A match shows zeros in the old object when its
    /// bytes in the new file are zeros (`isZero`, asked once per range); only matches that share their
    /// place in the new file with others are asked (the matcher ties all zero pieces to one place).
    static func matches(for zeros: [Range<Int>], oldZeros: [Range<Int>], matches: [(new: Range<Int>, old: Int)],
                        minimum: Int, isZero: (Range<Int>) throws -> Bool) rethrows -> [(new: Range<Int>, old: Int)] {
        var known = oldZeros
        var claims: [Range<Int>: Int] = [:]
        for match in matches { claims[match.new, default: 0] += 1 }
        var answers: [Range<Int>: Bool] = [:]
        for match in matches where claims[match.new, default: 0] > 1 {
            let zero = try answers[match.new] ?? isZero(match.new)
            answers[match.new] = zero
            if zero { known.append(match.old..<(match.old + match.new.count)) }
        }
        known.sort { $0.lowerBound < $1.lowerBound }
        var merged: [Range<Int>] = []
        for range in known {
            if let last = merged.last, last.upperBound >= range.lowerBound {
                merged[merged.count - 1] = last.lowerBound..<max(last.upperBound, range.upperBound)
            } else {
                merged.append(range)
            }
        }
        guard let longest = merged.max(by: { $0.count < $1.count }), longest.count >= minimum else { return [] }
        var result: [(new: Range<Int>, old: Int)] = []
        for run in zeros {
            var start = run.lowerBound
            while start < run.upperBound {
                let end = min(run.upperBound, start + longest.count)
                result.append((start..<end, longest.lowerBound))
                start = end
            }
        }
        return result
    }
}
