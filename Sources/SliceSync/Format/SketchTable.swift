/// The sketch table of a format 2 signature: 16 bits per unit of a few blocks, small enough to come
/// with the coarse table in the client's first request. It lets the client tell, for a slice that
/// changed, which of its units are still where the neighbouring slices put them, so a few local edits
/// need neither the slice's fine table nor an extra round trip.
public enum SketchTable {
    /// Bytes per entry on disk (big-endian).
    public static let entrySize = 2

    /// The entry of one unit from the strong halves of its blocks' fine records: the XOR of their top
    /// 16 bits. A unit whose blocks all stay equal keeps its entry; any change gives a random one.
    @inline(__always)
    public static func entry<S: Sequence>(strongs: S) -> UInt16 where S.Element == UInt64 {
        strongs.reduce(0) { $0 ^ UInt16(truncatingIfNeeded: $1 >> 48) }
    }

    /// The entry of the `length` bytes at `pointer`, cut into blocks of `blockSize`.
    static func entry(_ pointer: UnsafeRawPointer, length: Int, blockSize: Int) -> UInt16 {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { digest in
            var entry: UInt16 = 0
            var offset = 0
            while offset < length {
                sha256(pointer + offset, count: min(blockSize, length - offset), into: digest.baseAddress!)
                entry ^= UInt16(digest[0]) << 8 | UInt16(digest[1])
                offset += blockSize
            }
            return entry
        }
    }

    /// All entries of a file from its fine records; empty when the header has no sketch unit.
    public static func entries(fine: [HashRecord], header: SignatureV2Header) -> [UInt16] {
        guard let unit = header.sketchUnit else { return [] }
        return entries(fine: fine, blocksPerEntry: unit / header.blockSize)
    }

    /// The entries of consecutive fine records, `blocksPerEntry` records to an entry.
    static func entries(fine: [HashRecord], blocksPerEntry: Int) -> [UInt16] {
        stride(from: 0, to: fine.count, by: blocksPerEntry).map { first in
            entry(strongs: fine[first..<min(first + blocksPerEntry, fine.count)].lazy.map(\.strong))
        }
    }

    /// The entries as they are stored: big-endian, one after the other.
    static func encoded(_ entries: [UInt16]) -> [UInt8] {
        entries.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }

    /// The entries held in `bytes`, the signature's first bytes: all of them, or as many as arrived.
    static func parse(_ bytes: UnsafeRawBufferPointer, header: SignatureV2Header) -> [UInt16] {
        let available = max(0, min(bytes.count, header.fineTablesOffset) - header.sketchTableOffset) / entrySize
        return (0..<min(available, header.sketchCount)).map { index in
            UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: header.sketchTableOffset + index * entrySize,
                as: UInt16.self))
        }
    }
}
