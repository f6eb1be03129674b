import CZlib

/// The zlib Adler-32 checksum (RFC 1950), as format 1 stores it for each slice.
public enum Adler32 {
    /// The checksum of the empty input.
    public static let initial: UInt32 = 1

    /// Extends a running checksum with more bytes.
    public static func update(_ checksum: UInt32, _ pointer: UnsafeRawPointer, count: Int) -> UInt32 {
        var value = UInt(checksum)
        var base = pointer.assumingMemoryBound(to: UInt8.self)
        var remaining = count
        // zlib takes a 32-bit length; feed it in pieces below that.
        while remaining > 0 {
            let piece = min(remaining, 1 << 30)
            value = CZlib.adler32(value, base, UInt32(piece))
            base += piece
            remaining -= piece
        }
        return UInt32(truncatingIfNeeded: value)
    }

    /// The checksum of a byte array.
    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return initial }
            return update(initial, base, count: raw.count)
        }
    }

    /// Rolls a window checksum one byte forward: `outgoing` leaves, `incoming` enters, window length `window`.
    @inline(__always)
    public static func roll(_ checksum: UInt32, outgoing: UInt8, incoming: UInt8, window: Int) -> UInt32 {
        let modulus: UInt32 = 65521
        var a = checksum & 0xFFFF
        var b = checksum >> 16
        let windowMod = UInt32(window % Int(modulus))
        a = (a + modulus - UInt32(outgoing) + UInt32(incoming)) % modulus
        // b loses window * outgoing plus the initial 1 that every prefix sum carries, then gains the new a.
        let loss = (windowMod * UInt32(outgoing) + 1) % modulus
        b = (b + modulus - loss + a) % modulus
        return (b << 16) | a
    }
}
