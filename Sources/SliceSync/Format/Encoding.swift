/// Hex and base64 encodings used by the text parts of signatures.
enum Encoding {
    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)
    private static let base64Alphabet: [UInt8] =
        Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let base64Values: [Int8] = {
        var table = [Int8](repeating: -1, count: 256)
        for (index, char) in base64Alphabet.enumerated() { table[Int(char)] = Int8(index) }
        return table
    }()

    /// Lowercase hex of bytes.
    static func hex(_ bytes: [UInt8]) -> String {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(hexDigits[Int(byte >> 4)])
            out.append(hexDigits[Int(byte & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Each value as 8 bytes, big-endian, one after the other.
    static func bigEndian(_ values: [UInt64]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(8 * values.count)
        for value in values { withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) } }
        return bytes
    }

    /// Decodes lowercase hex of exactly `length` bytes; nil for anything else.
    static func decodeHex<S: Collection<UInt8>>(_ text: S, length: Int) -> [UInt8]? {
        guard text.count == length * 2 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(length)
        var high: UInt8?
        for char in text {
            let value: UInt8
            switch char {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = char - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = char - UInt8(ascii: "a") + 10
            default: return nil
            }
            if let h = high {
                out.append(h << 4 | value)
                high = nil
            } else {
                high = value
            }
        }
        return out
    }

    /// Standard padded base64 of bytes.
    static func base64(_ bytes: [UInt8]) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i + 3 <= bytes.count {
            let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out.append(base64Alphabet[Int(v >> 18 & 63)])
            out.append(base64Alphabet[Int(v >> 12 & 63)])
            out.append(base64Alphabet[Int(v >> 6 & 63)])
            out.append(base64Alphabet[Int(v & 63)])
            i += 3
        }
        let rest = bytes.count - i
        if rest == 1 {
            let v = UInt32(bytes[i]) << 16
            out.append(base64Alphabet[Int(v >> 18 & 63)])
            out.append(base64Alphabet[Int(v >> 12 & 63)])
            out.append(UInt8(ascii: "="))
            out.append(UInt8(ascii: "="))
        } else if rest == 2 {
            let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
            out.append(base64Alphabet[Int(v >> 18 & 63)])
            out.append(base64Alphabet[Int(v >> 12 & 63)])
            out.append(base64Alphabet[Int(v >> 6 & 63)])
            out.append(UInt8(ascii: "="))
        }
        return out
    }

    /// Decodes canonical padded base64 (unused bits zero, exact padding); nil for anything else.
    static func decodeBase64<S: Collection<UInt8>>(_ text: S) -> [UInt8]? {
        let chars = Array(text)
        guard chars.count % 4 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(chars.count / 4 * 3)
        var index = 0
        while index < chars.count {
            let isLast = index + 4 == chars.count
            var values: [Int] = []
            var padding = 0
            for offset in 0..<4 {
                let char = chars[index + offset]
                if char == UInt8(ascii: "=") {
                    guard isLast, offset >= 2 else { return nil }
                    padding += 1
                    continue
                }
                guard padding == 0 else { return nil }
                let value = base64Values[Int(char)]
                guard value >= 0 else { return nil }
                values.append(Int(value))
            }
            let v = values.enumerated().reduce(0) { $0 | $1.element << (18 - 6 * $1.offset) }
            out.append(UInt8(v >> 16 & 255))
            if padding < 2 { out.append(UInt8(v >> 8 & 255)) }
            if padding < 1 { out.append(UInt8(v & 255)) }
            // Canonical form: the bits below the last decoded byte must be zero.
            if padding == 1 && v & 0xFF != 0 { return nil }
            if padding == 2 && v & 0xFFFF != 0 { return nil }
            index += 4
        }
        return out
    }
}
