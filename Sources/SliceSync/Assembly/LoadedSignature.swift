#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Logging
import Synchronization

/// A signature as the client holds it: format 1 whole; format 2 as header and coarse table, with fine
/// tables fetched later for the slices that are not found locally.
final class LoadedSignature: Sendable {
    /// What the client holds of each format.
    enum Held: Sendable {
        /// Format 1: the whole signature.
        case v1(SignatureV1)
        /// Format 2: the header, the coarse table and the sketch entries that came with the first
        /// bytes (all of them, some, or none); fine tables are fetched later.
        case v2(SignatureV2Header, coarse: [HashRecord], sketch: [UInt16])
        /// A zsync control file, whole: its blocks play the part of format 1's slices.
        case zsync(ZsyncControl)
    }

    let remote: RemoteFile
    let held: Held
    /// The first bytes of the signature as fetched; small signatures arrive whole with them.
    let prefix: [UInt8]

    init(remote: RemoteFile, held: Held, prefix: [UInt8] = []) {
        self.remote = remote
        self.held = held
        self.prefix = prefix
    }

    /// Format 1, whole.
    convenience init(remote: RemoteFile, v1: SignatureV1) {
        self.init(remote: remote, held: .v1(v1))
    }

    /// Format 2 from its header, its coarse table and the signature's first bytes.
    convenience init(remote: RemoteFile, v2 header: SignatureV2Header, coarse: [HashRecord], prefix: [UInt8]) {
        let sketch = prefix.withUnsafeBytes { SketchTable.parse($0, header: header) }
        self.init(remote: remote, held: .v2(header, coarse: coarse, sketch: sketch), prefix: prefix)
    }

    /// The slicesync format version; 0 for a zsync control file.
    var formatVersion: Int {
        switch held {
        case .v1: 1
        case .v2: 2
        case .zsync: 0
        }
    }
    /// The format's name, for reports: `slicesync` or `zsync`.
    var formatName: String {
        if case .zsync = held { return "zsync" }
        return "slicesync"
    }
    /// The zsync control file, when it is one.
    var zsync: ZsyncControl? {
        if case .zsync(let control) = held { return control }
        return nil
    }
    /// The format 1 signature, when it is one.
    var v1: SignatureV1? {
        if case .v1(let signature) = held { return signature }
        return nil
    }
    /// The format 2 header, when it is one.
    var v2: SignatureV2Header? {
        if case .v2(let header, _, _) = held { return header }
        return nil
    }
    /// Format 2: one record per slice (empty for format 1).
    var coarse: [HashRecord] {
        if case .v2(_, let coarse, _) = held { return coarse }
        return []
    }
    /// Format 2: the sketch entries that arrived (empty for format 1).
    var sketch: [UInt16] {
        if case .v2(_, _, let sketch) = held { return sketch }
        return []
    }

    var length: Int {
        switch held {
        case .v1(let signature): signature.length
        case .v2(let header, _, _): header.length
        case .zsync(let control): control.length
        }
    }
    /// Format 1 and zsync: the unit of the records (slice, block); format 2: the slice.
    var sliceSize: Int {
        switch held {
        case .v1(let signature): signature.sliceSize
        case .v2(let header, _, _): header.sliceSize
        case .zsync(let control): control.blockSize
        }
    }
    var sliceCount: Int {
        switch held {
        case .v1(let signature): signature.slices.count
        case .v2(let header, _, _): header.sliceCount
        case .zsync(let control): control.blockCount
        }
    }
    /// The algorithm of the whole-file hash: SHA-256 where the signature has one (format 2, a zsync
    /// file with `File-Hash: SHA-256`), which proves the file alone; SHA-1 otherwise.
    var wholeFileAlgorithm: StreamingDigest.Algorithm {
        switch held {
        case .v1: .sha1
        case .v2: .sha256
        case .zsync(let control): control.sha256 != nil ? .sha256 : .sha1
        }
    }
    var wholeFileHash: [UInt8] {
        switch held {
        case .v1(let signature): signature.sha1
        case .v2(let header, _, _): header.sha256 ?? header.treeHash ?? []
        case .zsync(let control): control.sha256 ?? control.sha1 ?? []
        }
    }
    var hashLabel: String {
        if let v2, v2.sha256 == nil { return "tree-sha256:" + Encoding.hex(wholeFileHash) }
        return (wholeFileAlgorithm == .sha1 ? "sha1:" : "sha256:") + Encoding.hex(wholeFileHash)
    }

    func sliceRange(_ index: Int) -> Range<Int> {
        (index * sliceSize)..<min((index + 1) * sliceSize, length)
    }

    // MARK: Fetching

    /// The least asked for first: a header and a small coarse table (files up to about 340 MiB with
    /// the default sizes).
    static let prefixBytes = 16 * 1024

    /// Bytes asked for first when there is no local file to reuse: the header and the coarse table of
    /// files up to about 5 GiB with the default sizes, all that a plain download needs, so it takes
    /// two requests, as with zsync. A smaller signature comes whole; a larger one costs at most this
    /// much more than it needed, under 0.1 % of a file that large.
    static let freshPrefixBytes = 256 * 1024

    /// Bytes asked for first when local files hold `localLength` bytes and the largest starts with
    /// `localStart`: enough for the header, the coarse table, the sketch table and two fine tables of
    /// a new version a little larger than the local one, as the default sizes lay them out.
    ///
    /// The sketch spares a round trip for fine tables when a few things changed, and the fine tables
    /// of the first slices tell, when no slice is found whole, whether anything is shared at all. The
    /// signature's real sizes are known only from its header; a guess too small costs one more request.
    static func firstRequestBytes(localLength: Int, localStart: [UInt8]) -> Int {
        guard localLength > 0 else { return freshPrefixBytes }
        guard let defaults = try? SigningParameters().forFile(startingWith: localStart),
              let unit = defaults.sketchUnit else { return prefixBytes }
        let expected = localLength + localLength / 64 + defaults.sliceSize
        let tables = (expected / defaults.sliceSize + 1) * HashRecord.size + (expected / unit + 1)
            * SketchTable.entrySize
            + 2 * (defaults.sliceSize / defaults.blockSize) * HashRecord.size
        return min(max(prefixBytes, 1024 + tables), 64 << 20)
    }

    /// Local content is worth reusing piece by piece when it is at least 1/`worthwhileShare` of what
    /// is looked at; less is fetched whole, which saves requests for under that share of bytes.
    static let worthwhileShare = 64

    /// Bytes at the start of each local file searched for the first slices' blocks when no slice was
    /// found whole (see `locate`).
    static let sampleReach = 16 << 20


    /// `pieces` pieces of `piece` bytes (by default 16 of 1 MiB, `sampleReach` bytes) spread evenly over
    /// each scanned local file; a file under twice that is taken whole; nil when there is no file.
    static func spreadSample(_ alikes: [AlikeFile], pieces: Int = 16,
        piece: Int = sampleReach / 16) -> [Int: [Range<Int>]]? {
        var sample: [Int: [Range<Int>]] = [:]
        for (index, alike) in alikes.enumerated() where alike.scanned && alike.length > 0 {
            guard alike.length > 2 * pieces * piece else {
                sample[index] = [0..<alike.length]
                continue
            }
            let step = (alike.length - piece) / (pieces - 1)
            sample[index] = (0..<pieces).map { ($0 * step)..<($0 * step + piece) }
        }
        return sample.isEmpty ? nil : sample
    }

    /// Format 2's whole slices, looked for at any offset of the local files.
    ///
    /// A sample spread over each large local file is scanned first. When some slices are in it whole,
    /// but fewer than half of what an unchanged copy would hold there, the file changed everywhere (a
    /// release tarball: every member's header has a new time), and the rest of the scan is skipped:
    /// rolling a slice-wide window through content that changed every few kilobytes finds little
    /// (a fifth of the tarball) and costs as much as the scan for blocks that follows anyway (0.13 of
    /// its 0.26 s of matching with AVX-512, 0.3 of 0.4 s without). Nothing whole in the sample
    /// (unrelated content, or a few slices far apart) and a mostly whole sample scan everything.
    /// Returns a source per slice, and whether the scan stopped at the sample.
    static func wholeSlices(_ header: SignatureV2Header, coarse: [HashRecord], matcher: Matcher,
        logger: Logger) throws(FileSystemError) -> (found: [LocalSource?], changedEverywhere: Bool) {
        let everything = { () throws(FileSystemError) in (try matcher.matchSlices(header, coarse: coarse), false) }
        let piece = (slicesPerSamplePiece + 1) * header.sliceSize
        // Small files are scanned whole: the sample would be much of them.
        guard matcher.alikes.allSatisfy({ !$0.scanned || $0.length == 0 || $0.length >= 4 * samplePieces * piece }),
              let sample = spreadSample(matcher.alikes, pieces: samplePieces, piece: piece)
        else { return try everything() }
        let sampled = try matcher.matchSlices(header, coarse: coarse, within: sample)
        // An unchanged copy has `slicesPerSamplePiece` slices starting in each piece.
        let expected = samplePieces * slicesPerSamplePiece
        var whole: [Int: Int] = [:]
        for source in sampled.compactMap({ $0 }) { whole[source.file, default: 0] += 1 }
        let best = whole.values.max() ?? 0
        guard best > 0, 2 * best < expected else { return try everything() }
        let share = "\(best) of \(expected) slices are whole in a sample of the local files"
        logger.info("\(share): the file changed everywhere, so its blocks are looked for instead")
        return (sampled, true)
    }

    /// The sample of `wholeSlices`: pieces per local file, and window starts of slices per piece.
    static let samplePieces = 8
    static let slicesPerSamplePiece = 4

    /// Fetches and parses the signature at `remote`; nil when the server says it is not there.
    /// `firstBytes` is what the first request asks for; with `wantsSketch`, a second request for the
    /// rest of the coarse table brings the sketch table too.
    static func fetch(_ remote: RemoteFile, firstBytes: Int = prefixBytes, wantsSketch: Bool = false,
        logger: Logger) async throws -> LoadedSignature? {
        // A control file is read whole (records for every block, 0.2 % of the file): in one request
        // when its name says what it is.
        let whole = ZsyncControl.namesControlFile(remote.url)
        guard let first = try await remote.retrying("fetching the signature", {
            try await remote.fetchBytes(range: whole ? nil : 0..<firstBytes,
                                        limit: whole ? SignatureVerifier.maxSignatureBytes : firstBytes)
        }) else { return nil }
        if ZsyncControl.looksLike(first.bytes, url: remote.url) {
            var bytes = first.bytes
            if !whole, let total = first.total, total > bytes.count {
                let start = bytes.count
                bytes += try await remote.retrying("fetching the control file") {
                    try await remote.fetchExisting(range: start..<total, limit: total - start).bytes
                }
            }
            return LoadedSignature(remote: remote, held: .zsync(try ZsyncControl.parse(bytes)))
        }
        let version = try first.bytes.withUnsafeBytes { (raw) throws(SignatureError) in
            try SignatureVersion.detect(raw) }
        switch version {
        case .v1:
            var bytes = first.bytes
            if bytes.count == firstBytes && first.total != firstBytes {
                bytes = try await remote.retrying("fetching the signature") {
                    try await remote.fetchExisting(range: nil, limit: SignatureVerifier.maxSignatureBytes).bytes
                }
            }
            return LoadedSignature(remote: remote, v1: try SignatureV1.parse(bytes))
        case .v2:
            var bytes = first.bytes
            let header = try SignatureV2Header.parse(bytes)
            if let total = first.total, total != header.totalLength {
                throw SignatureError(total < header.totalLength ? .truncated : .trailingData,
                                     "\(remote.url) is \(total) bytes but its header describes \(header.totalLength)")
            }
            if bytes.count < header.sketchTableOffset {
                let needed = wantsSketch ? header.fineTablesOffset : header.sketchTableOffset
                let start = bytes.count
                bytes += try await remote.retrying("fetching the signature") {
                    try await remote.fetchExisting(range: start..<needed, limit: needed - start).bytes
                }
            }
            let coarse = try bytes.withUnsafeBytes { (raw) throws(SignatureError) in
                try SignatureV2.parseCoarseTable(raw, header: header) }
            return LoadedSignature(remote: remote, v2: header, coarse: coarse, prefix: bytes)
        }
    }

    // MARK: Matching

    /// Finds the file's pieces in the matcher's local files; format 2 fetches the fine tables it needs.
    /// `known`: a local file's cached slice digests; when it is the only file scanned, its slices are
    /// placed from them instead of by reading it.
    func locate(using matcher: Matcher, context: LocatingContext, known: KnownSlices? = nil) async throws -> PieceMap {
        // Whole slices first: scanned for at any offset, then where an interrupted run left them.
        let (slices, changedEverywhere) = try await context.runBlocking { () throws -> ([LocalSource?], Bool) in
            var found = [LocalSource?](repeating: nil, count: self.sliceCount)
            var everywhere = false
            if matcher.totalBytes > 0 {
                switch self.held {
                case .v1(let v1): found = try matcher.match(v1)
                case .v2(let header, let coarse, _):
                    let scanned = matcher.alikes.indices.filter { matcher.alikes[$0].scanned }
                    if let known, scanned == [known.file], known.sliceSize == header.sliceSize {
                        // Placed from the digests; the slices left are looked for at any offset, but
                        // only in what no slice was placed from (content that moved).
                        found = known.place(header, coarse: coarse)
                        let left = found.indices.filter { found[$0] == nil }
                        let map = PieceMap(unitSize: header.sliceSize, length: header.length,
                            sources: PackedSources(found, unitSize: header.sliceSize))
                        let unused = Self.unusedRegions(of: map, alikes: matcher.alikes, margin: header.sliceSize)
                        if !left.isEmpty, unused.values.contains(where: { !$0.isEmpty }) {
                            let moved = try matcher.matchSlices(header, coarse: coarse, wanted: left, within: unused)
                            for (index, source) in moved.enumerated() where found[index] == nil {
                                found[index] = source
                            }
                        }
                    } else {
                        (found, everywhere) = try Self.wholeSlices(header, coarse: coarse, matcher: matcher,
                            logger: context.logger)
                    }
                case .zsync(let control):
                    if let sample = Self.spreadSample(matcher.alikes), matcher.totalBytes > 4 * Self.sampleReach {
                        // zsync files have no slice records to tell quickly whether anything is shared:
                        // blocks are looked for in a sample spread over the local files first, and an
                        // unrelated file (another file, compressed data) comes whole without a full scan.
                        let sampled = sample.values.joined().reduce(0) { $0 + $1.count }
                        let shared = try matcher.match(control, within: sample).reduce(0) { $0 + ($1 == nil ? 0 : 1) }
                        guard shared * control.blockSize * Self.worthwhileShare >= sampled else {
                            let found = "\(shared) blocks are in a sample of the local files"
                            context.logger.info("\(found): the file comes whole")
                            break
                        }
                    }
                    found = try matcher.match(control)
                }
            }
            try self.probeSlices(&found, alikes: matcher.alikes)
            return (found, everywhere)
        }
        let header: SignatureV2Header
        switch held {
        case .v1, .zsync:
            return PieceMap(unitSize: sliceSize, length: length, sources: PackedSources(slices, unitSize: sliceSize))
        case .v2(let v2, _, _):
            header = v2
        }
        var map = PieceMap(unitSize: header.blockSize, length: header.length,
            sources: PackedSources(count: header.blockCount, unitSize: header.blockSize))
        guard matcher.totalBytes > 0 else {
            // Nothing to scan; what an interrupted run left is taken, the rest comes in whole slices.
            map.take(slices, header: header)
            map.verifyBySlice = true
            return map
        }
        map.take(slices, header: header)
        var missing = slices.indices.filter { slices[$0] == nil }
        context.logger.info("\(slices.count - missing.count) of \(slices.count) slices found whole")
        let zeros = zeroSlices(among: missing)
        if !zeros.isEmpty {
            for slice in zeros {
                for block in header.blockRange(ofSlice: slice) {
                    map.sources[block] = LocalSource(file: LocalSource.zeros, offset: block * header.blockSize)
                }
            }
            missing.removeAll { zeros.contains($0) }
            context.logger.info("\(zeros.count) slices are all zeros")
        }
        guard !missing.isEmpty else { return map }
        if slices.allSatisfy({ $0 == nil }) {
            // Nothing was found whole: the local files may share blocks with every slice (each changed
            // a little) or nothing at all (another file, compressed data). The fine tables that came
            // with the signature's first bytes decide it without a request: when (almost) none of their
            // blocks is in the local files, fetching the other fine tables would be a wasted request
            // and bytes, and the file comes whole.
            let sample = missing.filter { header.fineTableRange(ofSlice: $0).upperBound <= prefix.count }
            if !sample.isEmpty {
                try await loadFineTables(of: sample, into: &map, context: context)
                let records = map.fineRecords
                // The sample is the start of the file, and no slice of it is anywhere: when every slice
                // changed a little, its blocks are near the start of the local files. Looking there
                // only spares a second pass over all local bytes when nothing is shared.
                let sampleEnd = sample.map { header.sliceRange($0).upperBound }.max() ?? 0
                let reach = max(Self.sampleReach, 4 * sampleEnd)
                var regions: [Int: [Range<Int>]] = [:]
                for (index, alike) in matcher.alikes.enumerated()
                    where alike.scanned { regions[index] = [0..<min(alike.length, reach)] }
                let near = regions
                let found = try await context.runBlocking {
                    try matcher.matchBlocks(header, blocks: records, within: near)
                }
                let sampleBytes = sample.reduce(0) { $0 + header.sliceRange($1).count }
                // A few blocks in common (a gzip header, a trailer) would not pay for the round trip
                // that fetches the other fine tables: compressed or unrelated content comes whole.
                guard found.count * header.blockSize * Self.worthwhileShare >= sampleBytes else {
                    let share = "\(found.count) blocks of the first \(sample.count) slices"
                    context.logger.info("\(share) are in the local files: the file comes whole")
                    // Whole slices, so that each is checked against its coarse record as it arrives.
                    map.verifyBySlice = true
                    return map
                }
                map.take(found)
            }
        }

        // The blocks of a changed slice are first looked for where its old content must be: in the parts
        // of the local files that no whole slice was taken from (widened by a block, for blocks that
        // straddle the edge). Only when much is still missing is everything scanned, to find blocks
        // that moved far or repeat content used elsewhere.
        let unused = Self.unusedRegions(of: map, alikes: matcher.alikes, margin: header.blockSize)
        let missingBytes = missing.reduce(0) { $0 + header.sliceRange($1).count }
        if unused.values.allSatisfy({ $0.isEmpty }) && missingBytes <= header.length / 10 {
            // Whole slices already account for every local byte (an append, say): nothing else can be
            // found, so the fine tables would be a wasted request. The missing slices come whole and are
            // checked against their coarse records.
            map.verifyBySlice = true
            return map
        }
        // The sketch resolves slices between neighbours found whole; when most are not (changed
        // everywhere), nearly every slice needs its fine table anyway.
        if !sketch.isEmpty && !changedEverywhere {
            let sketchMatcher = SketchMatcher(header: header, sketch: sketch, alikes: matcher.alikes)
            let candidates = missing
            let (resolved, sources) = try await context.runBlocking {
                try sketchMatcher.resolve(missing: candidates, found: slices)
            }
            for run in sources { map.sources.setRun(run.blocks, from: run.source) }
            if !resolved.isEmpty {
                context.logger.info("\(resolved.count) changed slices resolved from the sketch table")
                let done = Set(resolved.map(\.slice))
                missing.removeAll { done.contains($0) }
                guard !missing.isEmpty else { return map }
                // Other slices need their fine tables, so the round trip is paid anyway: a resolved slice
                // that still misses more than a unit or two gets its fine table as well (a fraction of
                // the bytes it may find elsewhere); its blocks already found stay.
                let unit = header.sketchUnit ?? header.blockSize
                missing = (missing + resolved.filter { $0.missingBytes > 2 * unit }.map(\.slice)).sorted()
            }
        }
        try await loadFineTables(of: missing, into: &map, context: context)
        // The records stay where they are; each pass looks only for the blocks still missing.
        let records = map.fineRecords
        // What the sketch placed is taken too: the blocks still missing are looked for in what is left.
        let regions = Self.unusedRegions(of: map, alikes: matcher.alikes, margin: header.blockSize)
        do {
            // Scoped: the finds and the copy of the map's sources go as soon as the map has them.
            let before = map.sources
            let nearby = try await context.runBlocking {
                try matcher.matchBlocks(header, blocks: records, wanted: { before[$0] == nil }, within: regions)
            }
            map.take(nearby)
        }
        let stillMissing = records.reduce(0) { map.sources[$1.block] == nil ? $0 + map.unitRange($1.block).count : $0 }
        // The first pass was already everywhere when no whole slice was taken from any local file.
        let searchedEverything = matcher.alikes.enumerated().allSatisfy { index, alike in
            alike.length == 0 || !alike.scanned || regions[index] == [0..<alike.length]
        }
        if stillMissing > header.length / 10 && !searchedEverything {
            let after = map.sources
            let anywhere = try await context.runBlocking {
                try matcher.matchBlocks(header, blocks: records, wanted: { after[$0] == nil })
            }
            map.take(anywhere)
        }
        return map
    }

    /// The parts of each scanned local file that no piece of `map` is taken from, widened by `margin`
    /// bytes either side (for blocks that straddle the edge).
    static func unusedRegions(of map: PieceMap, alikes: [AlikeFile], margin: Int) -> [Int: [Range<Int>]] {
        var used: [Int: [Range<Int>]] = [:]
        for run in map.localRuns where run.source.file < alikes.count && alikes[run.source.file].scanned {
            used[run.source.file, default: []].append(run.source.offset..<(run.source.offset + run.target.count))
        }
        var unused: [Int: [Range<Int>]] = [:]
        for (index, alike) in alikes.enumerated() where alike.scanned {
            let taken = RequestPlanner.merge((used[index] ?? []).sorted { $0.lowerBound < $1.lowerBound }, gap: 0)
            var gaps: [Range<Int>] = []
            var cursor = 0
            for range in taken {
                if range.lowerBound > cursor { gaps.append(cursor..<range.lowerBound) }
                cursor = max(cursor, range.upperBound)
            }
            if cursor < alike.length { gaps.append(cursor..<alike.length) }
            let widened = gaps.map { max(0, $0.lowerBound - margin)..<min(alike.length, $0.upperBound + margin) }
            unused[index] = RequestPlanner.merge(widened, gap: 0)
        }
        return unused
    }

    /// Fetches the fine tables of `slices` (adjacent ones in one range) into the map. Each piece is
    /// written straight to its place among the tables as it arrives: the tables are held once.
    func loadFineTables(of slices: [Int], into map: inout PieceMap, context: LocatingContext) async throws {
        guard let header = v2 else { return }
        if map.fineRecords.isEmpty { map.fineRecords = FineRecords(blocksPerSlice: header.blocksPerSlice) }
        let wanted = Set(slices).filter { !map.fineRecords.holds(slice: $0) }.sorted()
        guard !wanted.isEmpty else { return }
        let tables = wanted.map { header.fineTableRange(ofSlice: $0) }
        let layout = LaidOutRanges(tables)
        var delivered = ByteRangeSet()
        let remaining = RequestPlanner.merge(tables.filter { $0.upperBound > prefix.count }, gap: 0)
        if !remaining.isEmpty {
            delivered = try await Self.fetchRanges(remaining, remote: remote, jobs: context.signatureFetchJobs,
                logger: context.logger, deliver: layout.store)
        }
        // Tables inside the prefix already fetched (small signatures arrive whole) are not fetched again.
        for table in tables where table.upperBound <= prefix.count {
            prefix[table].withUnsafeBytes { layout.store(table, $0) }
            delivered.insert(table)
        }
        for (slice, table) in zip(wanted, tables) where !delivered.gaps(in: table).isEmpty {
            throw SignatureError(.truncated,
                "the fine table of slice \(slice) could not be fetched whole from \(remote.url)")
        }
        let blocks = wanted.map { (slice: $0, blocks: header.blockRange(ofSlice: $0).count) }
        map.fineRecords.add(blocks, tables: layout.take())
    }

    // MARK: Verification

    /// The body one data request may ask for. zsync users expect its request counts (up to 20 ranges of
    /// any size per request); replies stream to disk, so only the spread over connections is lost, and
    /// more than 200 ranges still go out in parallel.
    var maxRequestBytes: Int { zsync == nil ? RequestPlanner.maxRequestBytes : 1 << 62 }

    /// The unit downloads are verified in: slices when the map says so, else the map's unit.
    func downloadUnit(_ map: PieceMap) -> Int { map.verifyBySlice ? sliceSize : map.unitSize }

    /// The first of units `first`, `first + 1`, … that `bytes` (whole units of `downloadUnit(map)` bytes,
    /// the last one possibly the file's short end) are not; nil when they are all right. zsync blocks are
    /// hashed all at once, in vector lanes: one at a time, their MD4 was 17 ms of the tarball's update.
    func firstMismatch(units first: Int, _ bytes: UnsafeRawBufferPointer, map: PieceMap) -> Int? {
        let unit = downloadUnit(map)
        let count = (bytes.count + unit - 1) / unit
        let last = first + count - 1
        // Exactly blocks `first...last`, as `blockMatches` would take them one by one.
        if case .zsync(let control) = held, unit == control.blockSize, first >= 0, last < control.blockCount,
           let base = bytes.baseAddress, first * unit + bytes.count == control.blockRange(last).upperBound {
            let computed = control.geometry.records(of: base, count: bytes.count)
            let size = control.recordSize
            return computed.withUnsafeBytes { computed in
                control.records.withUnsafeBytes { records in
                    (0..<count).first {
                        memcmp(computed.baseAddress! + $0 * size, records.baseAddress! + (first + $0) * size, size) != 0
                    }.map { first + $0 }
                }
            }
        }
        for k in 0..<count {
            let start = k * unit
            let piece = UnsafeRawBufferPointer(rebasing: bytes[start..<min(start + unit, bytes.count)])
            if !verifyUnit(first + k, piece, map: map) { return first + k }
        }
        return nil
    }

    /// Whether downloaded bytes are unit `index` of `downloadUnit(map)` bytes.
    func verifyUnit(_ index: Int, _ bytes: UnsafeRawBufferPointer, map: PieceMap) -> Bool {
        guard let base = bytes.baseAddress else { return bytes.isEmpty }
        if map.verifyBySlice || v2 == nil { return sliceMatches(index, bytes) }
        // A downloaded block without its record belongs to a slice resolved from the sketch table: the
        // whole-file hash checks it, and the slice records locate it if it is wrong.
        guard let record = map.fineRecords[index] else { return true }
        return HashRecord.block(base, length: bytes.count) == record
    }

    /// Whether `bytes` are slice `index`: its format 1 line, or its format 2 coarse record.
    func sliceMatches(_ index: Int, _ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress else { return bytes.isEmpty }
        switch held {
        case .v1(let v1):
            return v1.slices[index] == V1SliceHash(of: base, count: bytes.count)
        case .v2(let header, let coarse, _):
            return HashRecord.slice(base, length: bytes.count, blockSize: header.blockSize) == coarse[index]
        case .zsync(let control):
            return control.blockMatches(index, bytes)
        }
    }

    /// How a rebuilt file is proved: the tree hash when the signature has one (on every core), else
    /// the whole-file digest in one pass.
    var wholeFileCheck: WholeFileCheck {
        if let v2, v2.treeHash != nil { return .tree(sliceSize: v2.sliceSize, blockSize: v2.blockSize) }
        return .digest(wholeFileAlgorithm)
    }

    /// What `wholeFileCheck` must come to for the right file.
    var expectedDigest: [UInt8] { v2?.treeHash ?? wholeFileHash }

    /// The whole-file hash as a tree manifest states it; nil for a zsync control file.
    var fileHash: TreeManifest.FileHash? {
        if let v2 {
            if let tree = v2.treeHash { return TreeManifest.FileHash(kind: "t", digest: tree) }
            return v2.sha256.map { TreeManifest.FileHash(kind: "s", digest: $0) }
        }
        return v1.map { TreeManifest.FileHash(kind: "h", digest: $0.sha1) }
    }

    /// The digest `wholeFileCheck` computes for the first `length` bytes of `file`.
    func wholeFileDigest(of file: SystemFile, length: Int) throws -> [UInt8] {
        switch wholeFileCheck {
        case .digest(let algorithm):
            return try file.digest(algorithm, length: length)
        case .tree(let sliceSize, let blockSize):
            let threads = ProcessInfo.processInfo.activeProcessorCount
            return TreeHash.combine(try TreeHash.sliceDigests(of: file, length: length, sliceSize: sliceSize,
                blockSize: blockSize, threads: threads))
        }
    }

    /// Format 2: the slices whose digests (32 bytes each, in order) do not match their coarse records.
    func badSlices(fromDigests digests: [UInt8]) -> [Int] {
        (0..<min(sliceCount, digests.count / TreeHash.digestSize)).filter { index in
            digests.withUnsafeBufferPointer { HashRecord.truncate($0.baseAddress!
                + index * TreeHash.digestSize) } != coarse[index].strong
        }
    }

    /// The slices of `output` that do not match their signature records.
    func badSlices(in output: OutputFile) throws -> [Int] {
        var bad: [Int] = []
        for index in 0..<sliceCount {
            let range = sliceRange(index)
            let bytes = try output.read(range.count, at: range.lowerBound)
            if !bytes.withUnsafeBytes({ sliceMatches(index, $0) }) { bad.append(index) }
        }
        return bad
    }

}

extension LoadedSignature {
    /// Downloads `ranges` of a signature (sorted or not, disjoint), returning the bytes by range start.
    static func fetchRanges(_ ranges: [Range<Int>], remote: RemoteFile, jobs: Int, logger: Logger) async throws
        -> [Int: [UInt8]] {
        let layout = LaidOutRanges(ranges.sorted { $0.lowerBound < $1.lowerBound })
        let delivered = try await fetchRanges(layout.ranges, remote: remote, jobs: jobs, logger: logger,
            deliver: layout.store)
        let bytes = layout.take()
        var result: [Int: [UInt8]] = [:]
        for (index, range) in layout.ranges.enumerated() where delivered.gaps(in: range).isEmpty {
            result[range.lowerBound] = Array(bytes[layout.places[index]..<layout.places[index + 1]])
        }
        return result
    }

    /// Downloads `ranges` of a signature, handing each piece to `deliver` as it arrives (from several
    /// connections at once); returns what was delivered. A server that ignores ranges sends the whole
    /// signature, whose wanted parts are delivered from it.
    static func fetchRanges(_ ranges: [Range<Int>], remote: RemoteFile, jobs: Int, logger: Logger,
        deliver: @escaping @Sendable (Range<Int>, UnsafeRawBufferPointer) -> Void) async throws -> ByteRangeSet {
        let wanted = ranges.sorted { $0.lowerBound < $1.lowerBound }
        let delivered = Mutex(ByteRangeSet())
        // Any piece will do: pieces are never larger than the range they are in.
        let downloader = RangeDownloader(remote: remote, jobs: jobs, unit: 1, logger: logger)
        do {
            try await downloader.download(wanted) { piece, bytes in
                deliver(piece, bytes)
                delivered.withLock { $0.insert(piece) }
                return piece
            }
        } catch is RangeDownloader.RangesUnsupported {
            let whole = try await remote.fetchExisting(range: nil, limit: SignatureVerifier.maxSignatureBytes)
            for range in wanted where range.upperBound <= whole.bytes.count {
                whole.bytes[range].withUnsafeBytes { deliver(range, $0) }
                delivered.withLock { $0.insert(range) }
            }
        }
        return delivered.withLock { $0 }
    }
}

/// Sorted, disjoint ranges of a signature laid end to end in one buffer, filled by the pieces of a
/// fetch as they arrive, from several connections at once. A piece may span adjacent ranges (they
/// are fetched as one).
final class LaidOutRanges: Sendable {
    let ranges: [Range<Int>]
    /// Where each range starts in the buffer; one more at the end, the buffer's length.
    let places: [Int]
    private let index: SortedRanges
    private let buffer: Mutex<[UInt8]>

    init(_ ranges: [Range<Int>]) {
        self.ranges = ranges
        places = ranges.reduce(into: [0]) { $0.append($0[$0.count - 1] + $1.count) }
        index = SortedRanges(ranges)
        buffer = Mutex([UInt8](repeating: 0, count: places[places.count - 1]))
    }

    /// Copies the bytes of `piece` (signature positions) to their places; bytes of no range are dropped.
    @Sendable func store(_ piece: Range<Int>, _ bytes: UnsafeRawBufferPointer) {
        var at = piece.lowerBound
        while at < piece.upperBound, let range = index.index(containing: at..<(at + 1)) {
            let end = Swift.min(piece.upperBound, ranges[range].upperBound)
            let place = places[range] + at - ranges[range].lowerBound
            buffer.withLock { target in
                target.withUnsafeMutableBytes { raw in
                    raw.baseAddress!.advanced(by: place)
                        .copyMemory(from: bytes.baseAddress! + (at - piece.lowerBound), byteCount: end - at)
                }
            }
            at = end
        }
    }

    /// The buffer, handed over (the layout keeps nothing).
    func take() -> [UInt8] {
        buffer.withLock { bytes in
            defer { bytes = [] }
            return bytes
        }
    }
}
