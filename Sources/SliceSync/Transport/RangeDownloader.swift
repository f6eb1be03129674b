#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Logging

/// Turns missing byte ranges into requests.
public enum RequestPlanner {
    /// Gaps up to this many bytes between two missing ranges are downloaded rather than skipped: a
    /// separate part costs about 100 bytes of multipart headers plus about 20 bytes of Range header,
    /// so below a few hundred bytes fetching the gap is cheaper than describing two ranges. Ranges are
    /// block-aligned, so in practice only the unaligned tail of a file meets this.
    public static let mergeGap = 256
    /// Longest Range header sent: room for 200 ranges of a file of some GiB, while the whole request
    /// stays inside the 8 KiB that nginx (`large_client_header_buffers`), Apache
    /// (`LimitRequestFieldSize`) and most proxies allow for a header line, with room left for a long
    /// Authorization header.
    public static let maxRangeHeader = 4400
    /// Largest body asked for in one request. Replies stream to disk, so this no longer bounds memory;
    /// it spreads a large download over the parallel connections and bounds what one request that keeps
    /// failing can hold up.
    public static let maxRequestBytes = 8 << 20

    /// Merges ranges separated by small gaps; input must be sorted and disjoint.
    public static func merge(_ ranges: [Range<Int>], gap: Int = mergeGap) -> [Range<Int>] {
        var result: [Range<Int>] = []
        for range in ranges where !range.isEmpty {
            if let last = result.last, range.lowerBound - last.upperBound <= gap {
                result[result.count - 1] = last.lowerBound..<max(last.upperBound, range.upperBound)
            } else {
                result.append(range)
            }
        }
        return result
    }

    /// Groups ranges into requests of at most `maxRanges` ranges, `maxRangeHeader` header bytes and
    /// `maxRequestBytes` body bytes; long ranges are cut at multiples of `unit` so every piece holds
    /// whole units.
    public static func requests(for ranges: [Range<Int>], maxRanges: Int, unit: Int,
        maxBytes: Int = maxRequestBytes) -> [[Range<Int>]] {
        let pieceLimit = max(unit, maxBytes / unit * unit)
        var pieces: [Range<Int>] = []
        for range in ranges {
            var start = range.lowerBound
            while start < range.upperBound {
                // Pieces are whole multiples of the unit from the range's start, which is unit-aligned,
                // so each piece can be verified on its own.
                let end = min(range.upperBound, start + pieceLimit)
                pieces.append(start..<end)
                start = end
            }
        }
        var requests: [[Range<Int>]] = []
        var current: [Range<Int>] = []
        var bytes = 0
        var headerLength = 6
        for piece in pieces {
            let entry = "\(piece.lowerBound)-\(piece.upperBound - 1),".utf8.count
            if !current.isEmpty && (current.count >= maxRanges || bytes + piece.count > maxBytes
                || headerLength + entry > maxRangeHeader) {
                requests.append(current)
                current = []
                bytes = 0
                headerLength = 6
            }
            current.append(piece)
            bytes += piece.count
            headerLength += entry
        }
        if !current.isEmpty { requests.append(current) }
        return requests
    }

    /// Rough bytes on the wire for fetching `ranges` beyond the bytes themselves: request and response
    /// headers per request, part headers per range.
    public static func overhead(rangeCount: Int, requestCount: Int) -> Int {
        requestCount * 600 + rangeCount * 110
    }
}

/// Fetches byte ranges of a remote file in parallel, with retries and the fallbacks servers need.
struct RangeDownloader: Sendable {
    let remote: RemoteFile
    let jobs: Int
    let unit: Int
    let logger: Logger
    /// Tries per request for transient failures.
    var attempts = 5
    /// Largest body asked for in one request (see `RequestPlanner.maxRequestBytes`).
    var maxRequestBytes = RequestPlanner.maxRequestBytes

    /// Thrown when the server ignores Range requests altogether.
    struct RangesUnsupported: Error {}

    /// Downloads `ranges` (sorted, disjoint), handing verified pieces to `deliver`.
    func download(_ ranges: [Range<Int>],
        deliver: @escaping @Sendable (Range<Int>, UnsafeRawBufferPointer) throws -> Range<Int>) async throws {
        var pending = ranges
        var rounds = 0
        while !pending.isEmpty {
            rounds += 1
            // A round that makes no progress still changes how we ask (fewer ranges); bound it anyway.
            guard rounds <= 12 else {
                throw TransportError(.protocolViolation, "the server keeps answering without the requested bytes")
            }
            let requests = RequestPlanner.requests(for: pending, maxRanges: remote.maxRanges, unit: unit,
                                                   maxBytes: maxRequestBytes)
            var leftovers: [Range<Int>] = []
            try await withThrowingTaskGroup(of: [Range<Int>].self) { group in
                var iterator = requests.makeIterator()
                for _ in 0..<max(1, jobs) {
                    guard let request = iterator.next() else { break }
                    group.addTask { try await fetchWithRetry(request, deliver: deliver) }
                }
                while let rest = try await group.next() {
                    leftovers += rest
                    if let request = iterator.next() {
                        group.addTask { try await fetchWithRetry(request, deliver: deliver) }
                    }
                }
            }
            if remote.rangesUnsupported { throw RangesUnsupported() }
            pending = leftovers.sorted { $0.lowerBound < $1.lowerBound }
        }
    }

    private func fetchWithRetry(_ ranges: [Range<Int>],
        deliver: (Range<Int>, UnsafeRawBufferPointer) throws -> Range<Int>) async throws -> [Range<Int>] {
        var remaining = ranges
        return try await remote.retrying("fetching \(ranges.count) range(s)", attempts: attempts) {
            var delivered = ByteRangeSet()
            do {
                return try await remote.fetchOnce(remaining, unit: unit) { range, bytes in
                    let accepted = try deliver(range, bytes)
                    delivered.insert(accepted)
                    return accepted
                }
            } catch let error as TransportError where error.isTransient {
                // The next attempt asks only for what did not arrive.
                remaining = remaining.flatMap { delivered.gaps(in: $0) }
                if remaining.isEmpty { return [] }
                throw error
            }
        }
    }
}
