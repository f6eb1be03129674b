/// One part of a multipart upload: a range of the new file, copied on the server from the old object
/// (`copyFrom` is the offset there) or uploaded from the local file.
public struct PushPart: Sendable, Equatable, Codable {
    /// The bytes of the new file the part holds.
    public var range: Range<Int>
    /// Where the same bytes start in the old object; nil: uploaded.
    public var copyFrom: Int?
}

/// How a new version is assembled on S3 from the old object's ranges and uploaded data, within S3's rules:
/// parts 1 to 10,000, each 5 MiB to 5 GiB except the last, which may be smaller.
///
/// Pure: the pieces of the old object found in the new file go in, the parts come out. A run copied on
/// the server shorter than the minimum part is uploaded instead; an uploaded run shorter than the minimum
/// is widened first into the spare bytes of its neighbours (bytes that a copy would have given are
/// uploaded from the local file instead), and only when they have too few is a neighbour uploaded whole.
public struct PushPlan: Sendable, Equatable {
    /// S3's smallest part (all but the last).
    public static let minimumPart = 5 << 20
    /// S3's largest part.
    public static let maximumPart = 5 << 30
    /// S3's most parts.
    public static let maximumParts = 10_000
    /// The size uploaded runs are cut into: parts that run in parallel, and a retry costs little.
    public static let uploadPartSize = 16 << 20

    /// The parts in order, numbered from 1.
    public let parts: [PushPart]
    /// The new file's length.
    public let length: Int

    /// Bytes sent from the local file.
    public var uploadedBytes: Int { parts.reduce(0) { $0 + ($1.copyFrom == nil ? $1.range.count : 0) } }
    /// Bytes copied on the server.
    public var copiedBytes: Int { length - uploadedBytes }
    /// Parts copied on the server.
    public var copyParts: Int { parts.count { $0.copyFrom != nil } }
    /// Parts uploaded.
    public var uploadParts: Int { parts.count - copyParts }

    /// Plans a file of `length` bytes of which `matches` (new-file ranges and where each starts in the old
    /// object) can be copied. `minimumPart` and `partSize` are S3's and ours, smaller in tests.
    public init(length: Int, matches: [(new: Range<Int>, old: Int)], minimumPart: Int = Self.minimumPart,
                partSize: Int = Self.uploadPartSize, maximumPart: Int = Self.maximumPart,
                maximumParts: Int = Self.maximumParts) {
        self.length = length
        var minimum = minimumPart, size = max(partSize, 2 * minimumPart)
        let runs = Self.normalized(matches, length: length)
        while true {
            let segments = Self.widened(Self.segments(runs, length: length, minimum: minimum), length: length,
                                        minimum: minimum)
            let parts = Self.cut(segments, length: length, partSize: size, maximumPart: maximumPart)
            if parts.count <= maximumParts {
                self.parts = parts
                return
            }
            // Too many parts for S3: bigger ones, which also turns the shorter copies into uploads.
            minimum *= 2
            size *= 2
        }
    }

    /// Matches sorted by their place in the new file, overlaps cut off, neighbours that continue each
    /// other in both files joined.
    static func normalized(_ matches: [(new: Range<Int>, old: Int)], length: Int) -> [PushPart] {
        var result: [PushPart] = []
        for match in matches.sorted(by: { $0.new.lowerBound < $1.new.lowerBound }) {
            var start = match.new.lowerBound, old = match.old
            let end = min(match.new.upperBound, length)
            if let last = result.last, last.range.upperBound > start {
                old += last.range.upperBound - start
                start = last.range.upperBound
            }
            guard start < end else { continue }
            if let last = result.last, let from = last.copyFrom, last.range.upperBound == start,
               from + last.range.count == old {
                result[result.count - 1].range = last.range.lowerBound..<end
            } else {
                result.append(PushPart(range: start..<end, copyFrom: old))
            }
        }
        return result
    }

    /// The file as alternating copies and uploads; copies shorter than `minimum` become uploads, except
    /// one that ends the file (the last part may be short).
    static func segments(_ runs: [PushPart], length: Int, minimum: Int) -> [PushPart] {
        var result: [PushPart] = []
        func add(_ part: PushPart) {
            guard !part.range.isEmpty else { return }
            if part.copyFrom == nil, let last = result.last, last.copyFrom == nil {
                result[result.count - 1].range = last.range.lowerBound..<part.range.upperBound
            } else {
                result.append(part)
            }
        }
        var position = 0
        for run in runs {
            add(PushPart(range: position..<run.range.lowerBound, copyFrom: nil))
            let keeps = run.range.count >= minimum || run.range.upperBound == length
            add(keeps ? run : PushPart(range: run.range, copyFrom: nil))
            position = run.range.upperBound
        }
        add(PushPart(range: position..<length, copyFrom: nil))
        return result
    }

    /// Every upload but a last one made at least `minimum` long: from the spare bytes of the copy before
    /// it first (no later upload can use them), then of the copy after it; a copy with too few spare
    /// bytes is uploaded whole, with the upload beyond it.
    static func widened(_ input: [PushPart], length: Int, minimum: Int) -> [PushPart] {
        var parts = input
        var index = 0
        while index < parts.count {
            let part = parts[index]
            guard part.copyFrom == nil, part.range.count < minimum, part.range.upperBound < length else {
                index += 1
                continue
            }
            let deficit = minimum - part.range.count
            let previous = index > 0 ? index - 1 : nil
            let next = index + 1 < parts.count ? index + 1 : nil
            let previousSpare = previous.map { parts[$0].range.count - minimum } ?? 0
            let nextSpare = next.map { parts[$0].range.upperBound == length ? parts[$0].range.count
                : parts[$0].range.count - minimum } ?? 0
            if max(0, previousSpare) + max(0, nextSpare) >= deficit {
                let fromPrevious = min(max(0, previousSpare), deficit)
                let fromNext = deficit - fromPrevious
                if let previous, fromPrevious > 0 {
                    parts[previous].range = parts[previous].range.lowerBound..<(parts[previous].range.upperBound
                        - fromPrevious)
                }
                parts[index].range = (part.range.lowerBound - fromPrevious)..<(part.range.upperBound + fromNext)
                if let next, fromNext > 0 {
                    parts[next].range = (parts[next].range.lowerBound + fromNext)..<parts[next].range.upperBound
                    parts[next].copyFrom = parts[next].copyFrom.map { $0 + fromNext }
                    if parts[next].range.isEmpty { parts.remove(at: next) }
                }
                index += 1
                continue
            }
            // Upload a neighbouring copy whole: the shorter one (a missing one counts as endless).
            let previousLength = previous.map { parts[$0].range.count } ?? .max
            let nextLength = next.map { parts[$0].range.count } ?? .max
            let absorbed = previousLength <= nextLength ? index - 1 : index + 1
            let low = max(0, absorbed - 1), high = min(parts.count - 1, absorbed + 1)
            // The uploads either side of the absorbed copy join it; copies further out stay.
            let first = parts[low].copyFrom == nil || low == absorbed ? low : low + 1
            let last = parts[high].copyFrom == nil || high == absorbed ? high : high - 1
            parts.replaceSubrange(first...last, with: [PushPart(range: parts[first].range.lowerBound
                ..< parts[last].range.upperBound, copyFrom: nil)])
            index = first
        }
        return parts
    }

    /// Uploads cut into parts of about `partSize`, copies into parts of at most `maximumPart`.
    static func cut(_ segments: [PushPart], length: Int, partSize: Int, maximumPart: Int) -> [PushPart] {
        var result: [PushPart] = []
        for segment in segments {
            let limit = segment.copyFrom == nil ? partSize : maximumPart
            let pieces = max(1, (segment.range.count + limit - 1) / limit)
            let base = segment.range.count / pieces, extra = segment.range.count % pieces
            var start = segment.range.lowerBound
            for piece in 0..<pieces {
                let count = base + (piece < extra ? 1 : 0)
                let offset = start - segment.range.lowerBound
                result.append(PushPart(range: start..<(start + count), copyFrom: segment.copyFrom.map { $0 + offset }))
                start += count
            }
        }
        return result
    }
}
