/// The byte ranges of the output that downloads have written, checked, so far: an assembly that runs
/// while the downloads are still coming waits here before it reads a downloaded range back.
///
/// Why the two overlap: the assembly copies and hashes every local byte (0.17 s for the 110 MiB
/// tarball here, seconds for a large file on a slow disk) and the downloads wait on the network; one
/// after the other, a run takes the sum of both.
///
/// `@unchecked Sendable`: `arrived` and `abandoned` are read and written only with `condition` locked.
final class Arrivals: @unchecked Sendable {
    private let condition = ThreadCondition()
    /// Sorted, disjoint and never touching (neighbours merge): a tarball's update brings thousands of
    /// 512-byte units, so finding and inserting go by bisection.
    private var arrived: [Range<Int>] = []
    private var abandoned = false

    /// Records a range that was written and checked, and wakes the assembly if it waits for it.
    func add(_ range: Range<Int>) {
        guard !range.isEmpty else { return }
        condition.withLock {
            // The first range that touches or follows `range`, and those it merges with.
            let first = firstIndex { $0.upperBound >= range.lowerBound }
            var last = first
            var merged = range
            while last < arrived.count && arrived[last].lowerBound <= range.upperBound {
                let next = arrived[last]
                merged = min(merged.lowerBound, next.lowerBound)..<max(merged.upperBound, next.upperBound)
                last += 1
            }
            arrived.replaceSubrange(first..<last, with: CollectionOfOne(merged))
            condition.broadcast()
        }
    }

    /// No more ranges will come (the downloads failed or changed course): a waiting assembly returns.
    func abandon() {
        condition.withLock {
            abandoned = true
            condition.broadcast()
        }
    }

    /// Waits until all of `range` has arrived; false when the downloads were abandoned first.
    func wait(for range: Range<Int>) -> Bool {
        condition.withLock {
            while !holds(range) {
                if abandoned { return false }
                condition.wait()
            }
            return true
        }
    }

    /// Whether one arrived range holds all of `range`; call with the lock held.
    private func holds(_ range: Range<Int>) -> Bool {
        let index = firstIndex { $0.upperBound > range.lowerBound }
        return index < arrived.count && arrived[index].lowerBound <= range.lowerBound
            && range.upperBound <= arrived[index].upperBound
    }

    /// The first position whose range satisfies `isAtOrAfter` (false for a prefix, true after it).
    private func firstIndex(where isAtOrAfter: (Range<Int>) -> Bool) -> Int {
        var low = 0
        var high = arrived.count
        while low < high {
            let middle = (low + high) / 2
            if isAtOrAfter(arrived[middle]) { high = middle } else { low = middle + 1 }
        }
        return low
    }
}
