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
        let trimmed = value.trimmingSpaces
        guard let equals = trimmed.firstIndex(of: "="), trimmed[..<equals].trimmingSpaces.lowercased() == "bytes" else { return .invalid }
        let specs = trimmed[trimmed.index(after: equals)...].split(separator: ",", omittingEmptySubsequences: false)
        guard !specs.isEmpty, specs.count <= 1000 else { return .invalid }
        // range-set is 1#range-spec: at least one non-empty element.
        guard specs.contains(where: { !$0.trimmingSpaces.isEmpty }) else { return .invalid }
        var result: [Range<Int>] = []
        for raw in specs {
            let spec = raw.trimmingSpaces
            if spec.isEmpty { continue } // RFC 9110 allows empty list elements
            guard let dash = spec.firstIndex(of: "-") else { return .invalid }
            let first = spec[..<dash]
            let last = spec[spec.index(after: dash)...]
            if first.isEmpty {
                guard let suffix = digits(last) else { return .invalid }
                if suffix > 0 && length > 0 { result.append(max(0, length - suffix)..<length) }
            } else {
                guard let start = digits(first) else { return .invalid }
                var end: Int
                if last.isEmpty {
                    end = length
                } else {
                    guard let lastByte = digits(last), lastByte >= start else { return .invalid }
                    end = lastByte == Int.max ? Int.max : lastByte + 1
                }
                end = min(end, length)
                if start < length { result.append(start..<end) }
            }
        }
        return result.isEmpty ? .unsatisfiable : .ranges(result)
    }

    private static func digits(_ text: some StringProtocol) -> Int? {
        guard !text.isEmpty, text.count <= 19, text.allSatisfy({ $0 >= "0" && $0 <= "9" }) else { return nil }
        return Int(text)
    }
}
