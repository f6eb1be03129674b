import CSliceSyncSystem
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import SliceSync

struct OutputFileTests {
    private func allocatedBytes(_ path: String) -> Int {
        var st = stat()
        return stat(path, &st) == 0 ? Int(st.st_blocks) * 512 : -1
    }

    /// Whether the file system under `directory` can reserve blocks at all (tmpfs, ext4, XFS and
    /// btrfs can; some network file systems cannot, and then the file is sparse as before).
    private func canReserve(in directory: TemporaryDirectory) throws -> Bool {
        let probe = try SystemFile.createExclusive(directory.path + "/probe", mode: 0o600)
        return slicesync_preallocate(probe.descriptor, 4096) == 0
    }

    @Test func aNewOutputHasItsLengthAndItsBlocksReserved() throws {
        let directory = try TemporaryDirectory()
        let length = 3 << 20 + 123
        let output = try OutputFile(destination: directory.path + "/out.bin", length: length)
        defer { output.discard() }
        #expect(try output.file.stamp().size == length)
        #expect(try output.read(16, at: length - 16) == [UInt8](repeating: 0, count: 16))
        if try canReserve(in: directory) {
            #expect(allocatedBytes(output.temporaryPath) >= length)
        } else {
            #expect(allocatedBytes(output.temporaryPath) < length)
        }
    }

    @Test func anEmptyOutputReservesNothing() throws {
        let directory = try TemporaryDirectory()
        let output = try OutputFile(destination: directory.path + "/empty.bin", length: 0)
        defer { output.discard() }
        #expect(try output.file.stamp().size == 0)
        #expect(allocatedBytes(output.temporaryPath) == 0)
    }

    /// An assembly long enough to flush ahead (every 32 MiB) writes and hashes every byte as before.
    @Test func aLongAssemblyFlushesAheadAndKeepsEveryByte() throws {
        let directory = try TemporaryDirectory()
        let length = 40 << 20 + 777
        let bytes = randomBytes(length, seed: 41)
        let sourcePath = directory.path + "/old.bin"
        let source = try SystemFile.createExclusive(sourcePath, mode: 0o600)
        try source.write(bytes, at: 0)
        let output = try OutputFile(destination: directory.path + "/new.bin", length: length)
        defer { output.discard() }
        // The output is the source with its two halves swapped.
        let half = length / 2
        let segments: [PieceMap.Segment] = [
            .local(LocalSource(file: 0, offset: half), 0..<(length - half)),
            .local(LocalSource(file: 0, offset: 0), (length - half)..<length),
        ]
        let assembled = try output.assemble(segments, sources: [source], check: .digest(.sha256))
        let expected = Array(bytes[half...] + bytes[..<half])
        #expect(assembled.digest == StreamingDigest.hash(.sha256, expected))
        #expect(try output.read(length, at: 0) == expected)
    }

    /// Long local runs go to the disk directly (whole pages) and their edges, short runs and downloaded
    /// ranges through the page cache; every byte ends up where it belongs, whatever its alignment.
    @Test(arguments: [SHA256Check.digest, .tree])
    func directAndBufferedWritesMakeOneFile(check: SHA256Check) throws {
        let directory = try TemporaryDirectory()
        let length = 5 << 20 + 1234
        let bytes = randomBytes(length, seed: 43)
        let sourcePath = directory.path + "/old.bin"
        let source = try SystemFile.createExclusive(sourcePath, mode: 0o600)
        // The source holds the wanted bytes 1000 bytes further on, so no run is page-aligned in both.
        try source.write(randomBytes(1000, seed: 44) + bytes, at: 0)
        let output = try OutputFile(destination: directory.path + "/new.bin", length: length, directFrom: 0,
                                    directAtOnce: true)
        defer { output.discard() }
        let probe = slicesync_reopen_direct(source.descriptor)
        if probe >= 0 { close(probe) }
        #expect(output.writesDirect == (probe >= 0))
        #expect(output.directEngaged == (probe >= 0))
        // Downloaded: an odd range in the middle of what would be a long run, written before.
        let downloaded = 1_500_001..<1_505_003
        try output.file.write(Array(bytes[downloaded]), at: downloaded.lowerBound)
        func local(_ range: Range<Int>) -> PieceMap.Segment {
            .local(LocalSource(file: 0, offset: range.lowerBound + 1000), range)
        }
        let segments: [PieceMap.Segment] = [
            local(0..<downloaded.lowerBound), .output(downloaded), local(downloaded.upperBound..<3_000_000),
            local(3_000_000..<3_010_000), local(3_010_000..<length),
        ]
        let assembled = try output.assemble(segments, sources: [source], check: check.whole)
        #expect(try output.read(length, at: 0) == bytes)
        if case .digest = check.whole { #expect(assembled.digest == StreamingDigest.hash(.sha256, bytes)) }
        // The tree hash is computed from the bytes the hashers saw: the same as a fresh one of the file.
        if case .tree = check.whole {
            let again = try OutputFile(destination: directory.path + "/again.bin", length: length)
            defer { again.discard() }
            let copied = try again.assemble([local(0..<length)], sources: [source], check: check.whole)
            #expect(assembled.digest == copied.digest)
        }
    }

    /// Long runs go direct only after a window of buffered writes ran slower than the page cache
    /// normally takes them, and then for the rest of the file.
    @Test func directWritesEngageWhenThePageCacheIsSlow() throws {
        let directory = try TemporaryDirectory()
        let file = try SystemFile.createExclusive(directory.path + "/out.bin", mode: 0o600)
        guard let direct = DirectWrites(file) else { return }  // a file system without O_DIRECT
        #expect(!direct.engaged)
        // 16 MiB in 5 ms: 3.4 GB/s, as new page-cache pages normally go.
        direct.observe(bytes: DirectWrites.window, took: .milliseconds(5))
        #expect(!direct.engaged)
        // Half a window at any speed decides nothing yet.
        direct.observe(bytes: DirectWrites.window / 2, took: .milliseconds(200))
        #expect(!direct.engaged)
        // The rest of that window: 16 MiB in 205 ms, 82 MB/s.
        direct.observe(bytes: DirectWrites.window / 2, took: .milliseconds(5))
        #expect(direct.engaged)
        direct.observe(bytes: DirectWrites.window, took: .milliseconds(1))
        #expect(direct.engaged)
    }

    enum SHA256Check: Sendable {
        case digest, tree
        var whole: WholeFileCheck {
            switch self {
            case .digest: .digest(.sha256)
            case .tree: .tree(sliceSize: 1 << 20, blockSize: 4096)
            }
        }
    }

    /// Linux reports a writeback error to one fsync only, so a flush ahead that fails must fail the
    /// assembly rather than leave the final fsync to succeed (fdatasync refuses a pipe: EINVAL).
    @Test func aFlushAheadThatFailsIsReported() throws {
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        defer { close(ends[0]) }
        let flush = FlushAhead(file: SystemFile.adopting(descriptor: ends[1], path: "a pipe"))
        flush.request()
        #expect(throws: FileSystemError.self) { try flush.finish() }
        // Once failed, it starts no more flushes and keeps reporting the failure.
        flush.request()
        #expect(throws: FileSystemError.self) { try flush.finish() }
    }
}
