#if canImport(Glibc)
import Glibc
#endif

/// A ring of page-aligned read buffers, in one mapping.
///
/// Every page of a buffer is new at its first `pread`, which faults and clears it: signing a 13 MB file
/// (four buffers of 4 MiB then) spent 6 ms of its 33 ms there, on the one thread that reads. Rings of 2 MiB
/// buffers or more are asked for huge pages (`MADV_HUGEPAGE`, which Linux's default THP mode requires),
/// one fault per 2 MiB; where the kernel has none to give, they are ordinary pages.
final class BufferRing: @unchecked Sendable {
    private static let hugePage = 2 << 20
    private let mapping: UnsafeMutableRawPointer?
    private let mappedLength: Int
    private let pointers: [UnsafeMutableRawPointer]
    var count: Int { pointers.count }

    init(count: Int, size: Int) {
        let stride = (max(size, 1) + 4095) & ~4095
        let huge = stride >= Self.hugePage
        // Room to start on a 2 MiB boundary: the unused head and tail are never touched.
        let length = stride * count + (huge ? Self.hugePage : 0)
        let mapped = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        if let mapped, mapped != MAP_FAILED {
            mapping = mapped
            mappedLength = length
            var start = Int(bitPattern: mapped)
            if huge {
                start = (start + Self.hugePage - 1) & ~(Self.hugePage - 1)
                _ = madvise(UnsafeMutableRawPointer(bitPattern: start), stride * count, MADV_HUGEPAGE)
            }
            pointers = (0..<count).map { UnsafeMutableRawPointer(bitPattern: start + $0 * stride)! }
        } else {
            mapping = nil
            mappedLength = 0
            pointers = (0..<count).map { _ in UnsafeMutableRawPointer.allocate(byteCount: stride, alignment: 4096) }
        }
    }

    deinit {
        if let mapping { munmap(mapping, mappedLength) } else { pointers.forEach { $0.deallocate() } }
    }

    subscript(index: Int) -> UnsafeMutableRawPointer { pointers[index] }
}
