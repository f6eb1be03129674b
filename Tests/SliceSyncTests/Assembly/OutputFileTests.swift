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
}
