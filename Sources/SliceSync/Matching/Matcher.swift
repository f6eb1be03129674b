import Synchronization
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Logging

/// A local file the client may take pieces from.
public struct AlikeFile: Sendable {
    /// Its path.
    public var path: String
    /// Its length when it was opened.
    public var length: Int
    /// Scanned for pieces at any offset.
    public var scanned: Bool
    /// Probed where the target's pieces belong: the output of an interrupted or failed run, whose
    /// verified pieces sit at their own offsets. A file that is only probed is never scanned.
    public var probed: Bool
    /// The parts of the file that hold data; holes (of a sparse image, or of a partial output) hold
    /// nothing but zeros, which are never taken from a file.
    public var extents: [Range<Int>]
    let file: SystemFile
}

/// Finds, in local files, the pieces a signature describes, at any byte offset, using all cores.
public final class Matcher: Sendable {
    /// The local files, in the order given; unreadable ones are left out with a warning.
    public let alikes: [AlikeFile]
    private let threads: Int
    private let firstFileFirst: Bool
    private let progress: ScanProgress

    /// Opens the alike files. Paths that do not exist are skipped silently (the destination of a first
    /// download does not exist yet); unreadable ones are skipped with a warning. `probed` files are
    /// also probed in place (see `AlikeFile.probed`); those not in `paths` come last and are not scanned.
    /// With `firstFileFirst`, the first path (a sync's destination) is scanned before the others, so
    /// that what it already holds is taken from it.
    public init(paths: [String], probed: [String] = [], threads: Int, progress: ScanProgress,
                firstFileFirst: Bool = false, logger: Logger) {
        self.firstFileFirst = firstFileFirst
        var seen = Set<String>()
        var files: [AlikeFile] = []
        let probedPaths = Set(probed)
        for path in paths + probed where !seen.contains(path) {
            seen.insert(path)
            guard files.count < LocalSource.maxFiles else {
                logger.warning("""
                    not using \(path) as an alike file: at most \(LocalSource.maxFiles) alike files are scanned
                    """)
                continue
            }
            do {
                let file = try SystemFile.openForReading(path)
                let length = try file.stamp().size
                files.append(AlikeFile(path: path, length: length, scanned: paths.contains(path),
                    probed: probedPaths.contains(path),
                                       extents: file.dataExtents(length: length), file: file))
            } catch where error.code == .notFound {
                continue
            } catch {
                logger.warning("not using \(path) as an alike file: \(error.message)")
            }
        }
        alikes = files
        self.threads = max(1, threads)
        self.progress = progress
    }

    /// Total bytes of the scanned alike files: what a full scan reads once per pass.
    public var totalBytes: Int { alikes.reduce(0) { $0 + ($1.scanned ? $1.length : 0) } }

    /// Format 1: finds every slice; returns a source per slice (nil where not found).
    public func match(_ signature: SignatureV1) throws(FileSystemError) -> [LocalSource?] {
        let count = signature.slices.count
        guard count > 0 else { return [] }
        let size = signature.sliceSize
        let verifier = V1SliceVerifier(slices: signature.slices)
        let full = signature.length / size
        let entries = (0..<full).map { (weak: signature.slices[$0].adler32, index: $0) }
        let found = FoundPieces(count: count)
        if !entries.isEmpty {
            try scanAll(hasher: AdlerWindowHasher(window: size), table: WeakTable(entries), verifier: verifier,
                found: found)
        }
        if full < count {
            try matchTail(index: full, length: signature.length - full * size, targetOffset: full * size,
                          weak: signature.slices[full].adler32,
                          hasher: AdlerWindowHasher(window: signature.length - full * size),
                          verifier: verifier, found: found)
        }
        return Self.sources(found, count: count)
    }

    /// Format 2, first pass: finds whole slices; returns a source per slice (nil where not found).
    /// `wanted` limits the search to some slices, `within` to byte ranges of each alike file (by index).
    public func matchSlices(_ header: SignatureV2Header, coarse: [HashRecord], wanted: [Int]? = nil,
        within: [Int: [Range<Int>]]? = nil) throws(FileSystemError) -> [LocalSource?] {
        let count = header.sliceCount
        guard count > 0 else { return [] }
        let verifier = V2SliceVerifier(records: coarse, blockSize: header.blockSize)
        let full = header.length / header.sliceSize
        let entries = (wanted ?? Array(0..<count)).filter { $0 < full }.map { (weak: coarse[$0].weak, index: $0) }
        let found = FoundPieces(count: count)
        if !entries.isEmpty {
            try scanAll(hasher: RKWindowHasher(window: header.sliceSize), table: WeakTable(entries), verifier: verifier,
                found: found, within: within)
        }
        if full < count && wanted?.contains(full) != false {
            let length = header.length - full * header.sliceSize
            try matchTail(index: full, length: length, targetOffset: full * header.sliceSize, weak: coarse[full].weak,
                          hasher: RKWindowHasher(window: length), verifier: verifier, found: found)
        }
        return Self.sources(found, count: count)
    }

    /// Format 2, second pass: finds the given blocks (by global index); returns the blocks found, in
    /// order, with their sources (a word per record held: see `FoundBlocks`).
    /// `within` limits the search to byte ranges of each alike file (by index); nil searches everything.
    /// `wanted` picks the blocks of `blocks` to look for (all by default), without a copy of the records.
    func matchBlocks(_ header: SignatureV2Header, blocks: FineRecords, wanted: (Int) -> Bool = { _ in true },
        within: [Int: [Range<Int>]]? = nil) throws(FileSystemError) -> FoundBlocks {
        let lastIndex = header.blockCount - 1
        let lastLength = header.length - lastIndex * header.blockSize
        // Weak hash and block index in one word: half the memory of a tuple, sorted in place.
        var entries: [UInt64] = []
        entries.reserveCapacity(blocks.count)
        for (index, record) in blocks where wanted(index) && (index != lastIndex || lastLength == header.blockSize) {
            entries.append(WeakTable.pack(weak: record.weak, index: index))
        }
        let tail = blocks[lastIndex].flatMap { lastLength < header.blockSize && wanted(lastIndex) ? $0 : nil }
        guard !entries.isEmpty || tail != nil else { return .empty }
        // The blocks looked for are those of the fine tables held: what is found is kept by record.
        let verifier = V2BlockVerifier(blocks: blocks, wanted: wanted)
        let found = FoundPieces(records: blocks, blockSize: header.blockSize)
        if !entries.isEmpty {
            let table = WeakTable(packed: &entries)
            try scanAll(hasher: RKWindowHasher(window: header.blockSize), table: table, verifier: verifier,
                found: found, within: within)
        }
        if let last = tail {
            try matchTail(index: lastIndex, length: lastLength, targetOffset: lastIndex * header.blockSize,
                weak: last.weak,
                          hasher: RKWindowHasher(window: lastLength), verifier: verifier, found: found)
        }
        return found.blocks ?? .empty
    }

    /// Splits the alike files (or the given byte ranges of them) into regions and scans them on
    /// `threads` threads.
    func scanAll<H: WindowHasher, V: PieceVerifier>(
        hasher: H, table: WeakTable, verifier: V, found: FoundPieces, within: [Int: [Range<Int>]]? = nil
    ) throws(FileSystemError) {
        var regions: [ScanRegion] = []
        for (index, alike) in alikes.enumerated() where alike.length >= hasher.window && alike.scanned {
            let asked = within.map { $0[index] ?? [] } ?? [0..<alike.length]
            // Holes are skipped; a window may still reach a block's width into one.
            let withData = alike.extents.map { max(0, $0.lowerBound - hasher.window)..<min(alike.length, $0.upperBound
                + hasher.window) }
            for range in Self.intersection(asked, RequestPlanner.merge(withData, gap: 0)) {
                // Window starts whose whole window lies inside the range.
                let first = max(0, range.lowerBound)
                let positions = min(alike.length, range.upperBound) - hasher.window + 1 - first
                guard positions > 0 else { continue }
                // Big ranges are split so both cores work on one file; a region must be worth a thread.
                // Regions cost what does not match in them, so they are many and small enough to even
                // out: with 4 per thread of at least 4 MiB, one core often scanned alone at the end.
                let parts = max(1, min(threads * 16, positions / (1 << 20)))
                let step = (positions + parts - 1) / parts
                var start = first
                while start < first + positions {
                    regions.append(ScanRegion(fileIndex: index, file: alike.file, fileLength: alike.length,
                        start: start, end: min(start + step, first + positions)))
                    start += step
                }
            }
        }
        // Each thread's buffer holds a window and a chunk: for blocks, 128 KiB chunks read as fast and
        // keep 0.8 MB off the peak of a tarball whose every block is looked for.
        let scanner = Scanner(hasher: hasher, table: table, verifier: verifier,
            chunk: hasher.window <= 64 << 10 ? 128 << 10 : 512 << 10)
        let failure = Mutex<FileSystemError?>(nil)
        // The first file is scanned on its own first when asked: the pieces it holds are then taken
        // from it, whichever thread would have reached another file's copy of them first.
        let batches = firstFileFirst ? [regions.filter { $0.fileIndex == 0 }, regions.filter { $0.fileIndex != 0 }]
            : [regions]
        for batch in batches where !batch.isEmpty {
            runConcurrently(batch, width: threads) { region in
                do throws(FileSystemError) {
                    try scanner.scan(region, found: found, progress: self.progress)
                } catch {
                    failure.withLock { if $0 == nil { $0 = error } }
                }
            }
        }
        if let error = failure.withLock({ $0 }) { throw error }
    }

    /// A piece shorter than the window (the file's last) is looked for where it most likely is: at the
    /// end of each alike file and at its own offset.
    private func matchTail<H: WindowHasher, V: PieceVerifier>(
        index: Int, length: Int, targetOffset: Int, weak: UInt32, hasher: H, verifier: V, found: FoundPieces
    ) throws(FileSystemError) {
        var bytes = [UInt8](repeating: 0, count: length)
        for (fileIndex, alike) in alikes.enumerated() {
            let places = Set([alike.length - length, targetOffset])
            for offset in places where offset >= 0 && offset + length <= alike.length {
                let matched = try withMutableRawBytes(&bytes) { (raw) throws(FileSystemError) -> Bool in
                    let got = try alike.file.read(into: raw.baseAddress!, count: length, at: offset)
                    guard got == length else { return false }
                    guard hasher.weak(hasher.hash(raw.baseAddress!)) == weak else { return false }
                    return !verifier.verify([Int32(index)], window: raw.baseAddress!, length: length).isEmpty
                }
                if matched {
                    found.record([Int32(index)], at: LocalSource(file: fileIndex, offset: offset))
                    return
                }
            }
        }
    }

    /// The parts common to two sorted lists of disjoint ranges.
    static func intersection(_ first: [Range<Int>], _ second: [Range<Int>]) -> [Range<Int>] {
        var result: [Range<Int>] = []
        var i = 0
        var j = 0
        while i < first.count && j < second.count {
            let lower = max(first[i].lowerBound, second[j].lowerBound)
            let upper = min(first[i].upperBound, second[j].upperBound)
            if lower < upper { result.append(lower..<upper) }
            if first[i].upperBound < second[j].upperBound { i += 1 } else { j += 1 }
        }
        return result
    }

    private static func sources(_ found: FoundPieces, count: Int) -> [LocalSource?] {
        var result = [LocalSource?](repeating: nil, count: count)
        for (index, source) in found.all { result[index] = source }
        return result
    }
}
