#if canImport(Glibc)
import Glibc
#endif

/// zsync's rolling sum over one block, or over two consecutive blocks at once when the control file
/// asks for two consecutive matches (`Hash-Lengths: 2,…`): the weak hash is then that of the pair.
struct ZsyncWindowHasher: WindowHasher {
    let blockSize: Int
    let pairs: Bool
    /// The bits of each packed sum the records keep.
    let mask: UInt32
    let scanKernel: ScanKernel?

    /// `kernelLevel` is the vector level the scan may use (the tests ask for each).
    init(blockSize: Int, sequenceMatches: Int, rsumBytes: Int, kernelLevel: Int32 = VectorKernels.level) {
        self.blockSize = blockSize
        pairs = sequenceMatches == 2
        mask = ZsyncRollingSum.mask(bytes: rsumBytes)
        scanKernel = ScanKernel.zsyncLevel(kernelLevel, widePairs: pairs && mask > 0xFFFF).map { [pairs, mask] in
            .zsync(level: $0, blockSize: blockSize, pairs: pairs, mask: mask)
        }
    }

    var window: Int { pairs ? 2 * blockSize : blockSize }

    @inline(__always) func hash(_ pointer: UnsafeRawPointer) -> UInt64 {
        let first = UInt64(ZsyncRollingSum.sum(pointer, count: blockSize))
        guard pairs else { return first }
        return first << 32 | UInt64(ZsyncRollingSum.sum(pointer + blockSize, count: blockSize))
    }

    @inline(__always) func roll(_ state: UInt64, outgoing: UInt8, incoming: UInt8) -> UInt64 {
        // Only meaningful for single blocks; pairs roll through `roll(_:bytes:at:)`.
        UInt64(ZsyncRollingSum.roll(UInt32(truncatingIfNeeded: state), outgoing: outgoing, incoming: incoming,
                                    window: UInt32(truncatingIfNeeded: blockSize)))
    }

    @inline(__always) func roll(_ state: UInt64, bytes: UnsafePointer<UInt8>, at i: Int) -> UInt64 {
        let size = UInt32(truncatingIfNeeded: blockSize)
        guard pairs else {
            return UInt64(ZsyncRollingSum.roll(UInt32(truncatingIfNeeded: state), outgoing: bytes[i],
                                               incoming: bytes[i + blockSize], window: size))
        }
        let first = ZsyncRollingSum.roll(UInt32(truncatingIfNeeded: state >> 32), outgoing: bytes[i],
                                         incoming: bytes[i + blockSize], window: size)
        let second = ZsyncRollingSum.roll(UInt32(truncatingIfNeeded: state), outgoing: bytes[i + blockSize],
                                          incoming: bytes[i + 2 * blockSize], window: size)
        return UInt64(first) << 32 | UInt64(second)
    }

    @inline(__always) func weak(_ state: UInt64) -> UInt32 {
        guard pairs else { return UInt32(truncatingIfNeeded: state) & mask }
        return Self.pairKey(UInt32(truncatingIfNeeded: state >> 32) & mask, UInt32(truncatingIfNeeded: state) & mask)
    }

    /// One 32-bit key for the stored sums of two consecutive blocks: exact when each keeps 16 bits
    /// (the usual 2-byte records), else the high half of a 64-bit mix of both (the low half would
    /// depend on the second sum alone), which only adds candidates the strong hashes then reject.
    @inline(__always) static func pairKey(_ first: UInt32, _ second: UInt32) -> UInt32 {
        if first <= 0xFFFF && second <= 0xFFFF { return first << 16 | second }
        return UInt32(truncatingIfNeeded: ((UInt64(first) << 32 | UInt64(second)) &* 0x9E37_79B9_7F4A_7C15) >> 32)
    }
}

/// zsync blocks: the stored rolling sum and strong-hash prefix of each block decide, over one block or
/// two consecutive ones. The file's last block is compared zero-padded, as zsync stores it.
struct ZsyncBlockVerifier: PieceVerifier {
    let control: ZsyncControl
    let piecesPerWindow: Int

    init(control: ZsyncControl) {
        self.control = control
        piecesPerWindow = control.sequenceMatches
    }

    func verify(_ candidates: [Int32], window pointer: UnsafeRawPointer, length: Int) -> [Int32] {
        let blockSize = control.blockSize
        let blocks = max(1, length / blockSize)
        let recordSize = control.recordSize
        let rsumBytes = control.rsumBytes
        let strongBytes = control.strongBytes
        let mask = ZsyncRollingSum.mask(bytes: rsumBytes)
        // Digests of the window's whole blocks, computed once whatever the number of candidates.
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32 * blocks) { digests in
            var hashed = 0
            return control.records.withUnsafeBufferPointer { records in
                candidates.filter { candidate in
                    for k in 0..<blocks {
                        let index = Int(candidate) + k
                        guard index >= 0, index < control.blockCount else { return false }
                        let size = control.blockRange(index).count
                        guard size <= length - k * blockSize else { return false }
                        let block = pointer + k * blockSize
                        if size < blockSize {
                            // The zero-padded last block.
                            guard control.blockMatches(index, UnsafeRawBufferPointer(start: block, count: size))
                                else { return false }
                            continue
                        }
                        let record = records.baseAddress! + index * recordSize
                        if k >= hashed {
                            control.strongHash.hash(block, count: blockSize, into: digests.baseAddress! + 32 * k)
                            hashed = k + 1
                        }
                        guard memcmp(digests.baseAddress! + 32 * k, record + rsumBytes, strongBytes) == 0,
                              ZsyncRollingSum.sum(block, count: blockSize) & mask
                                == ZsyncControl.storedSum(record, bytes: rsumBytes) else { return false }
                    }
                    return true
                }
            }
        }
    }

    /// A run of matches goes on when the next block's rolling sum matches its record; its strong hash
    /// is not computed here. A block so accepted by mistake (odds of 2^-(8·rsum) per run that ends
    /// where content changed) is caught by the whole-file hash before anything is replaced, then
    /// found by its record in the rebuilt file and fetched again. The strong hashes of every block
    /// of every run were most of the matching time (MD4 runs at about 1 GB/s per core).
    func follows(_ expected: Int32, window pointer: UnsafeRawPointer, length: Int) -> Bool {
        let index = Int(expected)
        guard index >= 0, index < control.blockCount else { return false }
        let size = control.blockRange(index).count
        guard size <= length else { return false }
        // A whole block pads with nothing, so this is its plain sum.
        let sum = ZsyncRollingSum.paddedSum(pointer, count: size, window: control.blockSize)
        return sum & ZsyncRollingSum.mask(bytes: control.rsumBytes) == control.rsum(index)
    }

    /// A run's whole blocks are summed several at a time by the vector kernel (22 GB/s), not one by one in
    /// `follows` (3.5 GB/s here: 27 ms of the tarball's matching, whose runs cover 96 MiB). Batches grow
    /// from 4 blocks, so a run that ends at once costs little more than one block.
    func followingRun(from first: Int32, at pointer: UnsafeRawPointer, length: Int, limit: Int) -> Int {
        let blockSize = control.blockSize
        let start = Int(first)
        guard length == blockSize, start >= 0, VectorKernels.handles(blockSize: blockSize) else {
            return followingRunOneByOne(from: first, at: pointer, length: length, limit: limit)
        }
        // The file's short last block is summed zero-padded, by `follows`.
        let wholeBlocks = control.length / blockSize
        let mask = ZsyncRollingSum.mask(bytes: control.rsumBytes)
        var count = 0
        var batch = 4
        let stopped: Bool = withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 64) { sums in
            while count < limit {
                let take = min(batch, limit - count, wholeBlocks - (start + count))
                guard take > 0 else { return false }
                VectorKernels.rsum(blocks: pointer + count * blockSize, blockSize: blockSize, count: take,
                                   into: sums.baseAddress!)
                for k in 0..<take where sums[k] & mask != control.rsum(start + count + k) {
                    count += k
                    return true
                }
                count += take
                batch = min(64, 2 * batch)
            }
            return true
        }
        if stopped { return count }
        return count + followingRunOneByOne(from: first + Int32(count), at: pointer + count * blockSize,
                                            length: length, limit: limit - count)
    }
}

extension ZsyncControl {
    /// Whether `bytes` are block `index` (the last one compared zero-padded).
    func blockMatches(_ index: Int, _ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress, bytes.count == blockRange(index).count else { return false }
        let start = index * recordSize
        return geometry.records(of: base, count: bytes.count)[...] == records[start..<(start + recordSize)]
    }
}

extension Matcher {
    /// zsync control files: finds every block; returns a source per block (nil where not found).
    ///
    /// As zsync does, a block is believed at a new place only when the blocks the control file asks
    /// for (one, or two in a row) all match; after that, the next block is tried right behind it. The
    /// last block is zero-padded in the control file, so it is looked for where it can be whole: at
    /// the end of each local file and at its own offset.
    /// `within` limits the search to byte ranges of each alike file (by index), and then skips the
    /// last block's own search.
    public func match(_ control: ZsyncControl, within: [Int: [Range<Int>]]? = nil) throws(FileSystemError)
        -> [LocalSource?] {
        let count = control.blockCount
        guard count > 0 else { return [] }
        let size = control.blockSize
        let lastIndex = count - 1
        let lastIsFull = control.length % size == 0
        let hasher = ZsyncWindowHasher(blockSize: size, sequenceMatches: control.sequenceMatches,
                                       rsumBytes: control.rsumBytes)
        var entries: [(weak: UInt32, index: Int)] = []
        if control.sequenceMatches == 2 {
            // A pair whose second block is the padded last one cannot be whole in a local file.
            let pairs = lastIsFull ? lastIndex : lastIndex - 1
            entries.reserveCapacity(max(0, pairs))
            for index in 0..<max(0, pairs) {
                entries.append((ZsyncWindowHasher.pairKey(control.rsum(index), control.rsum(index + 1)), index))
            }
        } else {
            for index in 0..<(lastIsFull ? count : lastIndex) { entries.append((control.rsum(index), index)) }
        }
        let verifier = ZsyncBlockVerifier(control: control)
        let found = FoundPieces(count: count)
        if !entries.isEmpty {
            try scanAll(hasher: hasher, table: WeakTable(entries), verifier: verifier, found: found, within: within)
        }
        if within == nil && found.isMissing(Int32(lastIndex)) {
            try matchLastBlock(control, found: found)
        }
        var result = [LocalSource?](repeating: nil, count: count)
        for (index, source) in found.all { result[index] = source }
        return result
    }

    private func matchLastBlock(_ control: ZsyncControl, found: FoundPieces) throws(FileSystemError) {
        let index = control.blockCount - 1
        let range = control.blockRange(index)
        var bytes = [UInt8](repeating: 0, count: range.count)
        // Right behind its predecessor, wherever that was found; else at the end of each local file, or
        // at its own offset.
        let behind = found.all.last { $0.0 == index - 1 }
            .map { (file: $0.1.file, offset: $0.1.offset + control.blockSize) }
        for (fileIndex, alike) in alikes.enumerated() {
            let places = [behind?.file == fileIndex ? behind?.offset : nil, alike.length - range.count,
                          range.lowerBound]
            for offset in places.compactMap({ $0 }) where offset >= 0 && offset + range.count <= alike.length {
                let matched = try withMutableRawBytes(&bytes) { (raw) throws(FileSystemError) -> Bool in
                    guard try alike.file.read(into: raw.baseAddress!, count: range.count, at: offset) == range.count
                        else { return false }
                    return control.blockMatches(index, UnsafeRawBufferPointer(raw))
                }
                if matched {
                    found.record([Int32(index)], at: LocalSource(file: fileIndex, offset: offset))
                    return
                }
            }
        }
    }
}
