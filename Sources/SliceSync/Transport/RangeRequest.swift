/// A parsed `Range` request header (RFC 9110 §14.1.2), resolved against a representation's length.
public enum RangeRequest: Sendable, Equatable {
    /// The header is syntactically invalid or not in bytes: serve the whole representation (200).
    case invalid
    /// No range is satisfiable: answer 416 with `Content-Range: bytes */LENGTH`.
    case unsatisfiable
    /// The satisfiable ranges, in request order, clamped to the length.
    case ranges([Range<Int>])

    /// Parses `value` for a representation of `length` bytes.
    public static func parse(_ value: String, length: Int) -> RangeRequest {
        var value = value
        // Bytes rather than Characters: a server parses this on every request.
        return value.withUTF8 { parse(bytes: $0, length: length) }
    }

    private static func parse(bytes: UnsafeBufferPointer<UInt8>, length: Int) -> RangeRequest {
        let (start, end) = trimmed(bytes, 0, bytes.count)
        guard let equals = bytes[start..<end].firstIndex(of: UInt8(ascii: "=")) else { return .invalid }
        let unit = trimmed(bytes, start, equals)
        guard unit.1 - unit.0 == 5,
            zip(bytes[unit.0..<unit.1], "bytes".utf8).allSatisfy({ $0 | 0x20 == $1 }) else { return .invalid }
        var result: [Range<Int>] = []
        var elements = 0
        var nonEmpty = false
        var elementStart = equals + 1
        while elementStart <= end {
            let elementEnd = bytes[elementStart..<end].firstIndex(of: UInt8(ascii: ",")) ?? end
            elements += 1
            guard elements <= 1000 else { return .invalid }
            let (lo, hi) = trimmed(bytes, elementStart, elementEnd)
            elementStart = elementEnd + 1
            // RFC 9110 allows empty list elements, as long as one is not empty.
            if lo == hi { continue }
            nonEmpty = true
            guard let dash = bytes[lo..<hi].firstIndex(of: UInt8(ascii: "-")) else { return .invalid }
            if dash == lo {
                guard let suffix = digits(bytes, dash + 1, hi) else { return .invalid }
                if suffix > 0 && length > 0 { result.append(max(0, length - suffix)..<length) }
            } else {
                guard let first = digits(bytes, lo, dash) else { return .invalid }
                var last = length
                if dash + 1 < hi {
                    guard let lastByte = digits(bytes, dash + 1, hi), lastByte >= first else { return .invalid }
                    last = lastByte == Int.max ? Int.max : lastByte + 1
                }
                if first < length { result.append(first..<min(last, length)) }
            }
        }
        guard nonEmpty else { return .invalid }
        return result.isEmpty ? .unsatisfiable : .ranges(result)
    }

    /// The bounds of `bytes[start..<end]` without leading and trailing spaces and tabs.
    private static func trimmed(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> (Int, Int) {
        var lo = start
        var hi = end
        while lo < hi && (bytes[lo] == 0x20 || bytes[lo] == 0x09) { lo += 1 }
        while hi > lo && (bytes[hi - 1] == 0x20 || bytes[hi - 1] == 0x09) { hi -= 1 }
        return (lo, hi)
    }

    /// A run of ASCII digits as a number, saturated at `Int.max`; nil for anything else. The grammar
    /// allows any number of digits, and a position past every file means "to the end" (or, for a
    /// first position, "past the end"), so a huge number is clamped, never rejected.
    private static func digits(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Int? {
        guard end > start else { return nil }
        var value = 0
        for index in start..<end {
            let digit = bytes[index] &- 0x30
            guard digit <= 9 else { return nil }
            let (product, overflowMultiply) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflowAdd) = product.addingReportingOverflow(Int(digit))
            value = overflowMultiply || overflowAdd ? Int.max : sum
        }
        return value
    }
}
