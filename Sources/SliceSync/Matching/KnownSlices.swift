/// A local file's slice digests from the cache (`SliceDigestCache`): its slices are placed by digest,
/// without reading the file. Only the regions nothing was placed from are read afterwards, to find
/// the blocks of changed slices and content that moved.
struct KnownSlices: Sendable {
    /// The file's index among the alike files.
    let file: Int
    /// Its length.
    let length: Int
    /// Its full slice digests, 32 bytes each, in order.
    let digests: [UInt8]
    /// The slice size they were computed with (the signature's).
    let sliceSize: Int

    /// A source for each slice of the signature whose coarse record a cached slice has: the slice at
    /// the same offset first, else any slice of the same length with that digest.
    func place(_ header: SignatureV2Header, coarse: [HashRecord]) -> [LocalSource?] {
        let count = digests.count / TreeHash.digestSize
        func strong(_ slice: Int) -> UInt64 {
            digests.withUnsafeBufferPointer { HashRecord.truncate($0.baseAddress! + slice * TreeHash.digestSize) }
        }
        func size(_ slice: Int) -> Int { min(sliceSize, length - slice * sliceSize) }
        var placed = [LocalSource?](repeating: nil, count: coarse.count)
        var elsewhere: [UInt64: Int]?
        for index in coarse.indices {
            let wanted = header.sliceRange(index).count
            if index < count && size(index) == wanted && strong(index) == coarse[index].strong {
                placed[index] = LocalSource(file: file, offset: index * sliceSize)
                continue
            }
            if elsewhere == nil {
                var table: [UInt64: Int] = [:]
                for slice in (0..<count).reversed() { table[strong(slice)] = slice }
                elsewhere = table
            }
            if let slice = elsewhere?[coarse[index].strong], size(slice) == wanted {
                placed[index] = LocalSource(file: file, offset: slice * sliceSize)
            }
        }
        return placed
    }
}
