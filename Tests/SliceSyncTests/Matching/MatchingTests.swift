import Glibc
import Logging
import Testing
@testable import SliceSync

/// The matching stage on its own: window hashers, the weak table, the scanner and the sketch matcher.
@Suite("Matching: window hashers and the weak table")
struct WindowHasherTests {
    func rollsLikeRecomputing<H: WindowHasher>(_ hasher: H, _ data: [UInt8]) -> Bool {
        data.withUnsafeBytes { raw in
            var state = hasher.hash(raw.baseAddress!)
            for start in 1...(data.count - hasher.window) {
                state = hasher.roll(state, outgoing: data[start - 1], incoming: data[start - 1 + hasher.window])
                guard state == hasher.hash(raw.baseAddress! + start) else { return false }
            }
            return true
        }
    }

    @Test(arguments: [1, 7, 512, 2048])
    func bothHashersRollLikeRecomputingAtEveryOffset(window: Int) {
        let data = randomBytes(window + 3000, seed: UInt64(window))
        #expect(rollsLikeRecomputing(RKWindowHasher(window: window), data))
        #expect(rollsLikeRecomputing(AdlerWindowHasher(window: window), data))
    }

    @Test(arguments: [1, 2, 7, 512])
    func rollingTwoBytesAtOnceGivesBothStates(window: Int) {
        let data = randomBytes(window + 600, seed: UInt64(window) + 40)
        let hasher = RKWindowHasher(window: window)
        data.withUnsafeBytes { raw in
            let bytes = raw.baseAddress!.assumingMemoryBound(to: UInt8.self)
            for start in 0..<(data.count - window - 1) {
                let (next, afterNext) = hasher.roll2(hasher.hash(raw.baseAddress! + start), bytes: bytes, at: start)
                #expect(next == hasher.hash(raw.baseAddress! + start + 1))
                #expect(afterNext == hasher.hash(raw.baseAddress! + start + 2))
            }
        }
    }

    /// At every kernel level this machine runs (the AVX-512 scan takes 8 positions per turn).
    @Test(arguments: [0, 1, 2, 3], Array(0...VectorKernels.level))
    func theFilterLoopStopsWhereOneStepAtATimeWould(seed: UInt64, level: Int32) {
        let window = [16, 1, 9, 300][Int(seed)]
        expectFilterLoopStops(RKWindowHasher(window: window, kernelLevel: level), seed: seed)
    }

    /// zsync's sums over one block or a pair, with records of 1 to 4 bytes (the AVX-512 scan takes 16
    /// positions per turn, and keys pairs whose sums exceed 16 bits by a 64-bit mix; AVX2 takes 8 and
    /// leaves such pairs to the loop).
    @Test(arguments: [(64, 1, 2), (64, 2, 2), (512, 2, 3), (16, 2, 4), (32, 1, 1), (48, 2, 1), (8, 1, 4)],
          Array(0...VectorKernels.level))
    func theZsyncFilterLoopStopsWhereOneStepAtATimeWould(shape: (block: Int, sequence: Int, rsum: Int),
                                                         level: Int32) {
        let hasher = ZsyncWindowHasher(blockSize: shape.block, sequenceMatches: shape.sequence,
                                       rsumBytes: shape.rsum, kernelLevel: level)
        expectFilterLoopStops(hasher, seed: UInt64(shape.block + shape.rsum))
    }

    /// Windows over random data (with a run of one value); the table holds the weak hashes of a few
    /// positions, so the loop must stop exactly at the first of them at or after its start, odd or even,
    /// except where the weak hash is exhausted (all its pieces found).
    func expectFilterLoopStops<H: WindowHasher>(_ hasher: H, seed: UInt64) {
        let window = hasher.window
        var data = randomBytes(4096, seed: seed + 50)
        for index in 1000..<1200 { data[index] = 0xFF }
        var generator = SeededGenerator(seed: seed)
        let marked = (0..<12).map { _ in Int(generator.next() % UInt64(data.count - window)) } + [1100, 1150]
        data.withUnsafeBytes { raw in
            let bytes = raw.baseAddress!.assumingMemoryBound(to: UInt8.self)
            let weakAt = { (position: Int) in hasher.weak(hasher.hash(raw.baseAddress! + position)) }
            let table = WeakTable(marked.enumerated().map { (weak: weakAt($0.element), index: $0.offset) })
            var exhausted = ExhaustedWeakHashes()
            exhausted.insert(weakAt(marked[0]))
            let end = data.count - window
            for from in stride(from: 0, to: end, by: 37) {
                var state = hasher.hash(raw.baseAddress! + from)
                let stop = table.nextPossible(hasher: hasher, bytes: bytes, from: from, to: end, state: &state,
                    exhausted: exhausted)
                let expected = (from..<end).first {
                    table.mayContain(weakAt($0)) && !exhausted.contains(weakAt($0))
                } ?? end
                #expect(stop == expected)
                #expect(state == hasher.hash(raw.baseAddress! + stop))
            }
        }
    }

    /// Two sums that keep more than 16 bits each are keyed by both, not by the second alone.
    @Test func pairKeysDependOnBothSums() {
        let keys = Set((0..<64).map { ZsyncWindowHasher.pairKey(0x12_0000 + UInt32($0) << 16, 0x34_5678) })
        #expect(keys.count == 64)
        #expect(ZsyncWindowHasher.pairKey(0x1234, 0x5678) == 0x1234_5678)
    }

    @Test func theTableFindsEveryEntryAndItsDuplicates() {
        var entries: [(weak: UInt32, index: Int)] = (0..<5000).map { (k: Int) in
            (weak: UInt32(truncatingIfNeeded: k &* 2_654_435_761), index: k)
        }
        entries += [(weak: 12345, index: 9000), (weak: 12345, index: 9001)]
        let table = WeakTable(entries)
        for entry in entries.prefix(5000) {
            #expect(table.mayContain(entry.weak))
            #expect(table.lookup(entry.weak)?.contains(Int32(entry.index)) == true)
        }
        #expect(Set(table.lookup(12345) ?? []) == [9000, 9001])
        // The filter lets few absent values through, and the lookup then rejects them.
        let probes: [UInt32] = (0..<100_000).map { (k: Int) -> UInt32 in UInt32(k) &* 7919 &+ 3 }
        let absent = probes.filter { table.lookup($0) == nil }
        let passed = absent.filter { table.mayContain($0) }.count
        #expect(Double(passed) / Double(absent.count) < 0.05)
    }
}

@Suite("Matching: the scanner and the matcher")
struct ScannerTests {
    let logger = Logger(label: "t") { _ in SwiftLogNoOpLogHandler() }

    struct NotFormat2: Error {}

    /// The format 2 signature of `data` with these sizes (the defaults when nil).
    func sign(_ data: [UInt8], slice: Int? = nil, block: Int? = nil) throws -> SignatureV2 {
        let parameters = try SigningParameters(version: .v2, sliceSize: slice, blockSize: block)
        let built = try SignatureBuilder(parameters: parameters, pool: nil).signature(of: data, filename: "f")
        guard case .v2(let signature) = built
        else { throw NotFormat2() }
        return signature
    }

    @Test func blocksAreFoundAtAnyOffsetInEveryAlikeFile() throws {
        let dir = try TemporaryDirectory()
        let target = randomBytes(64 * 1024, seed: 70)
        let signature = try sign(target, slice: 8192, block: 1024)
        // Block 3 at an odd offset of the first file, block 40 near the end of the second and the last
        // block, 63, at the very start of the second.
        let first = randomBytes(5001, seed: 71) + Array(target[3072..<4096]) + randomBytes(999, seed: 72)
        let second = Array(target[(63 * 1024)...]) + randomBytes(20_000, seed: 73)
            + Array(target[(40 * 1024)..<(41 * 1024)]) + [1, 2, 3]
        try dir.write("first", first)
        try dir.write("second", second)
        let matcher = Matcher(paths: [dir.file("first"), dir.file("second")], threads: 2, progress: ScanProgress(),
            logger: logger)
        // Fine tables come a slice at a time: the three blocks' slices are held, only they are wanted.
        var records = FineRecords(blocksPerSlice: 8)
        for slice in [0, 5, 7] { records.add(Array(signature.fine[(slice * 8)..<(slice * 8 + 8)]), slice: slice) }
        let wanted: @Sendable (Int) -> Bool = { [3, 40, 63].contains($0) }
        let found = Dictionary(uniqueKeysWithValues: try matcher.matchBlocks(signature.header, blocks: records,
            wanted: wanted).map { ($0.block, $0.source) })
        #expect(found[3] == LocalSource(file: 0, offset: 5001))
        #expect(found[63] == LocalSource(file: 1, offset: 0))
        #expect(found[40] == LocalSource(file: 1, offset: 1024 + 20_000))
        #expect(found.count == 3)
        // Limited to a range that holds only the first file's block.
        let limited = try matcher.matchBlocks(signature.header, blocks: records, wanted: wanted,
            within: [0: [4000..<7000]])
        #expect(limited.map(\.block) == [3])
    }

    /// A run of matches is checked in batches (one hash call for up to 16 blocks): it stops at the first
    /// block that differs, at one that is not looked for, and at its limit.
    @Test func aRunOfBlocksIsCheckedTogetherAndStopsWhereABlockDiffers() throws {
        let target = randomBytes(64 * 512, seed: 80)
        let signature = try sign(target, slice: 8192, block: 512)
        var records = FineRecords(blocksPerSlice: 16)
        for slice in 0..<4 { records.add(Array(signature.fine[(slice * 16)..<(slice * 16 + 16)]), slice: slice) }
        var local = target
        local[37 * 512 + 100] ^= 1
        let verifier = V2BlockVerifier(blocks: records, wanted: { $0 != 50 })
        local.withUnsafeBytes { raw in
            let base = raw.baseAddress!
            #expect(verifier.followingRun(from: 0, at: base, length: 512, limit: 64) == 37)
            #expect(verifier.followingRun(from: 3, at: base + 3 * 512, length: 512, limit: 20) == 20)
            // Block 50 is not looked for.
            #expect(verifier.followingRun(from: 38, at: base + 38 * 512, length: 512, limit: 26) == 12)
            #expect(verifier.followingRun(from: 51, at: base + 51 * 512, length: 512, limit: 13) == 13)
            // Blocks out of place.
            #expect(verifier.followingRun(from: 1, at: base, length: 512, limit: 10) == 0)
        }
    }

    @Test func foundPiecesTakeRunsUnderOneLock() {
        let found = FoundPieces(count: 10)
        found.record([4], at: LocalSource(file: 0, offset: 999))
        #expect(found.missingRun(from: 1, limit: 10) == 3)
        #expect(found.missingRun(from: 5, limit: 3) == 3)
        #expect(found.missingRun(from: 8, limit: 5) == 2)
        found.recordRun(from: 2, count: 4, at: LocalSource(file: 1, offset: 100), pieceLength: 50)
        let all = Dictionary(uniqueKeysWithValues: found.all)
        #expect(all[2] == LocalSource(file: 1, offset: 100))
        #expect(all[3] == LocalSource(file: 1, offset: 150))
        // The first source recorded wins.
        #expect(all[4] == LocalSource(file: 0, offset: 999))
        #expect(all[5] == LocalSource(file: 1, offset: 250))
        #expect(all.count == 4)
    }

    @Test func heldFindsKeepRunsAndSwitchToAWordPerRecordWhenRunsWouldTakeMore() {
        var records = FineRecords(blocksPerSlice: 8)
        let record = HashRecord(weak: 1, strong: 2)
        records.add([HashRecord](repeating: record, count: 8), slice: 0)
        records.add([HashRecord](repeating: record, count: 8), slice: 2)
        var finds = HeldFinds(records: records, blockSize: 100)
        func at(_ offset: Int) -> UInt64 { PackedSource.pack(LocalSource(file: 1, offset: offset)) }
        for block in 16..<20 { finds.record(Int32(block), at(5000 + (block - 16) * 100)) }
        finds.record(3, at(77))
        // The first source recorded wins; blocks not held are not recorded.
        finds.record(3, at(999))
        finds.record(9, at(0))
        #expect(!finds.isMissing(3) && finds.isMissing(4) && !finds.isMissing(9))
        var found = Array(finds.blocks)
        #expect(found.map(\.block) == [3, 16, 17, 18, 19])
        #expect(found.first?.source == LocalSource(file: 1, offset: 77))
        #expect(found.last?.source == LocalSource(file: 1, offset: 5300))
        // Nine runs take more than a word for each of the 16 records: the finds switch, keeping all.
        for block in [0, 2, 4, 6, 21, 23, 1] { finds.record(Int32(block), at(block * 1000)) }
        found = Array(finds.blocks)
        #expect(found.map(\.block) == [0, 1, 2, 3, 4, 6, 16, 17, 18, 19, 21, 23])
        #expect(found.first { $0.block == 18 }?.source == LocalSource(file: 1, offset: 5200))
        #expect(found.first { $0.block == 23 }?.source == LocalSource(file: 1, offset: 23000))
        #expect(finds.blocks.count == 12 && finds.isMissing(5) && !finds.isMissing(1))
    }

    /// A run of found blocks goes into the map as a run, and the map's segments merge as before.
    @Test func foundBlocksGoIntoTheMapAsRuns() {
        var records = FineRecords(blocksPerSlice: 200)
        records.add([HashRecord](repeating: HashRecord(weak: 1, strong: 2), count: 200), slice: 0)
        var finds = HeldFinds(records: records, blockSize: 10)
        for block in 0..<200 where block != 150 {
            let offset = block < 150 ? 7 + block * 10 : 3000 + block * 10
            finds.record(Int32(block), PackedSource.pack(LocalSource(file: 0, offset: offset)))
        }
        var map = PieceMap(unitSize: 10, length: 1995, sources: PackedSources(count: 200, unitSize: 10))
        map.take(finds.blocks)
        #expect(map.sources[149] == LocalSource(file: 0, offset: 1497) && map.sources[150] == nil)
        #expect(map.sources[199] == LocalSource(file: 0, offset: 4990))
        #expect(map.segments == [.local(LocalSource(file: 0, offset: 7), 0..<1500), .output(1500..<1510),
                                 .local(LocalSource(file: 0, offset: 4510), 1510..<1995)])
    }

    /// Blocks changed in place break a run of matches, which goes on from the block after each (tested
    /// there first); two changed in a row, and content that moved, are rolled through as before.
    @Test func runsGoOnPastBlocksChangedInPlace() throws {
        let dir = try TemporaryDirectory()
        let target = randomBytes(256 * 512, seed: 81)
        let signature = try sign(target, slice: 8192, block: 512)
        var old = Array(target[..<(150 * 512)]) + [7, 8, 9] + Array(target[(150 * 512)...])
        let changed = [5, 6, 40, 100, 149, 200, 255]
        for block in changed { old[block * 512 + (block < 150 ? 0 : 3) + 7] ^= 0x40 }
        try dir.write("old", old)
        let matcher = Matcher(paths: [dir.file("old")], threads: 2, progress: ScanProgress(), logger: logger)
        var records = FineRecords(blocksPerSlice: 16)
        for slice in 0..<16 { records.add(Array(signature.fine[(slice * 16)..<(slice * 16 + 16)]), slice: slice) }
        let found = Dictionary(uniqueKeysWithValues: try matcher.matchBlocks(signature.header, blocks: records)
            .map { ($0.block, $0.source) })
        for block in 0..<256 {
            let expected = changed.contains(block) ? nil
                : LocalSource(file: 0, offset: block * 512 + (block < 150 ? 0 : 3))
            #expect(found[block] == expected, "block \(block)")
        }
    }

    /// The scan for whole slices stops at a sample of the local file when the file changed everywhere;
    /// a few edits, unrelated content and a small file are scanned whole.
    @Test func aFileChangedEverywhereIsScannedForWholeSlicesOnlyInASample() throws {
        let dir = try TemporaryDirectory()
        let slice = 4096
        let count = 4 * LoadedSignature.samplePieces * (LoadedSignature.slicesPerSamplePiece + 1) + 10
        let target = randomBytes(count * slice, seed: 82)
        let signature = try sign(target, slice: slice, block: 512)
        var everywhere = target
        for index in 0..<count where index % 4 != 0 { everywhere[index * slice + 100] ^= 1 }
        var fewEdits = target
        for index in [3, 77, 150] { fewEdits[index * slice + 9] ^= 1 }
        try dir.write("everywhere", everywhere)
        try dir.write("few", fewEdits)
        try dir.write("unrelated", randomBytes(count * slice, seed: 83))
        try dir.write("small", Array(everywhere.prefix(100 * slice)))
        func whole(_ name: String) throws -> (found: [LocalSource?], changedEverywhere: Bool) {
            let matcher = Matcher(paths: [dir.file(name)], threads: 2, progress: ScanProgress(), logger: logger)
            return try LoadedSignature.wholeSlices(signature.header, coarse: signature.coarse, matcher: matcher,
                logger: logger)
        }
        let sampled = try whole("everywhere")
        #expect(sampled.changedEverywhere)
        let inSample = sampled.found.indices.filter { sampled.found[$0] != nil }
        #expect(!inSample.isEmpty && inSample.allSatisfy { $0 % 4 == 0 })
        #expect(inSample.count <= LoadedSignature.samplePieces * LoadedSignature.slicesPerSamplePiece / 2)
        let few = try whole("few")
        #expect(!few.changedEverywhere && few.found.indices.filter { few.found[$0] == nil } == [3, 77, 150])
        let unrelated = try whole("unrelated")
        #expect(!unrelated.changedEverywhere && unrelated.found.allSatisfy { $0 == nil })
        let small = try whole("small")
        #expect(!small.changedEverywhere && small.found.compactMap { $0 }.count == 25)
    }

    @Test func holesAreNotScannedButDataNextToThemIs() throws {
        let dir = try TemporaryDirectory()
        let target = randomBytes(16 * 1024, seed: 74)
        let signature = try sign(target, slice: 4096, block: 1024)
        // A sparse file: 8 MiB of hole, then block 5, then another hole.
        let path = dir.file("sparse")
        let file = try SystemFile.createExclusive(path, mode: 0o600)
        try file.write(Array(target[5120..<6144]), at: 8 << 20)
        #expect(ftruncate(file.descriptor, off_t(16 << 20)) == 0)
        let extents = try SystemFile.openForReading(path).dataExtents(length: 16 << 20)
        // Where the file system tells holes (it does here), only the written part is data.
        #expect(extents.contains { $0.contains(8 << 20) })
        #expect(extents.reduce(0) { $0 + $1.count } < 1 << 20 || extents == [0..<(16 << 20)])
        let matcher = Matcher(paths: [path], threads: 2, progress: ScanProgress(), logger: logger)
        var records = FineRecords(blocksPerSlice: 4)
        records.add(Array(signature.fine[4..<8]), slice: 1)
        let found = Array(try matcher.matchBlocks(signature.header, blocks: records, wanted: { $0 == 5 }))
        #expect(found.map(\.block) == [5] && found.first?.source == LocalSource(file: 0, offset: 8 << 20))
    }

    @Test func theSketchPlacesTheUnchangedUnitsOfAnEditedSlice() throws {
        let dir = try TemporaryDirectory()
        let old = randomBytes(1 << 20, seed: 75)
        var new = old
        // One byte changed in slice 1 (of 256 KiB): one 4 KiB unit of it differs.
        new[262_144 + 10_000] ^= 0xFF
        let signature = try sign(new)
        try dir.write("old", old)
        let matcher = Matcher(paths: [dir.file("old")], threads: 2, progress: ScanProgress(), logger: logger)
        let slices = try matcher.matchSlices(signature.header, coarse: signature.coarse)
        #expect(slices.map { $0 == nil } == [false, true, false, false])
        let sketch = SketchMatcher(header: signature.header, sketch: signature.sketch, alikes: matcher.alikes)
        let (resolved, sources) = try sketch.resolve(missing: [1], found: slices)
        #expect(resolved.map(\.slice) == [1])
        #expect(resolved.first?.missingBytes == 4096)
        // Every block of slice 1 but the two of the changed unit, each where it was.
        let unit = (262_144 + 10_000) / 4096 * 4096
        let placed = blockSources(sources, blockSize: 2048)
        for block in signature.header.blockRange(ofSlice: 1) {
            let offset = block * 2048
            if offset / 4096 * 4096 == unit {
                #expect(placed[block] == nil)
            } else {
                #expect(placed[block] == LocalSource(file: 0, offset: offset))
            }
        }
    }

    /// The source of every block of the sketch matcher's runs.
    func blockSources(_ runs: [SketchMatcher.Run], blockSize: Int) -> [Int: LocalSource] {
        var placed: [Int: LocalSource] = [:]
        for run in runs {
            for block in run.blocks {
                #expect(placed[block] == nil)
                placed[block] = LocalSource(file: run.source.file,
                    offset: run.source.offset + (block - run.blocks.lowerBound) * blockSize)
            }
        }
        return placed
    }

    @Test func theSketchFollowsContentShiftedByAnInsertion() throws {
        let dir = try TemporaryDirectory()
        let old = randomBytes(1 << 20, seed: 76)
        var new = old
        new.insert(contentsOf: randomBytes(100, seed: 77), at: 300_000)
        let signature = try sign(new)
        try dir.write("old", old)
        let matcher = Matcher(paths: [dir.file("old")], threads: 2, progress: ScanProgress(), logger: logger)
        let slices = try matcher.matchSlices(signature.header, coarse: signature.coarse)
        let missing = slices.indices.filter { slices[$0] == nil }
        #expect(missing.contains(1))
        let sketch = SketchMatcher(header: signature.header, sketch: signature.sketch, alikes: matcher.alikes)
        let (resolved, sources) = try sketch.resolve(missing: missing, found: slices)
        #expect(resolved.contains { $0.slice == 1 && $0.missingBytes <= 2 * 4096 })
        // A block after the insertion comes from 100 bytes earlier in the old file.
        let after = (300_000 + 100) / 2048 + 4
        #expect(blockSources(sources, blockSize: 2048)[after] == LocalSource(file: 0, offset: after * 2048 - 100))
    }
}
