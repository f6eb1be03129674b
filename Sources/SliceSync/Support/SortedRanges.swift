/// Sorted, disjoint ranges, searched by bisection.
struct SortedRanges: Sendable {
    let ranges: [Range<Int>]

    init(_ ranges: [Range<Int>]) { self.ranges = ranges }

    /// The position of the range that holds all of `range`, or nil.
    func index(containing range: Range<Int>) -> Int? {
        var low = 0
        var high = ranges.count
        while low < high {
            let middle = (low + high) / 2
            if ranges[middle].upperBound <= range.lowerBound { low = middle + 1 } else { high = middle }
        }
        guard low < ranges.count, ranges[low].lowerBound <= range.lowerBound,
            range.upperBound <= ranges[low].upperBound else {
            return nil
        }
        return low
    }

    /// Whether `range` lies inside one of the ranges.
    func contains(_ range: Range<Int>) -> Bool { index(containing: range) != nil }

    /// Whether `range` shares a byte with any of the ranges.
    func overlaps(_ range: Range<Int>) -> Bool {
        var low = 0
        var high = ranges.count
        while low < high {
            let middle = (low + high) / 2
            if ranges[middle].upperBound <= range.lowerBound { low = middle + 1 } else { high = middle }
        }
        return low < ranges.count && ranges[low].lowerBound < range.upperBound
    }
}
