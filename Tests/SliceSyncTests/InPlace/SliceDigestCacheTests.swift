import Foundation
import Testing
import TestSupport
@testable import SliceSync

@Suite("The slice digest cache")
struct SliceDigestCacheTests {
    private func stamp(_ path: String) throws -> FileStamp {
        try #require(try FileSystem.stamp(path))
    }

    /// A sparse file of `size` bytes (the cache keeps only files of 8 MiB or more).
    private func sparse(_ directory: TemporaryDirectory, _ name: String, size: Int) throws -> String {
        let path = try directory.write(name, [])
        #expect(truncate(path, off_t(size)) == 0)
        return path
    }

    /// An entry is found under exactly the key and geometry it was stored with.
    @Test func entriesAreFoundOnlyByTheirWholeKey() throws {
        let directory = try TemporaryDirectory()
        let cache = SliceDigestCache(directory: directory.file("cache"))
        let path = try sparse(directory, "file", size: 40 * 262_144 + 5)
        let key = try stamp(path)
        let digests = (0..<(41 * 32)).map { UInt8(truncatingIfNeeded: $0) }
        cache.store(key, sliceSize: 262_144, blockSize: 2048, digests: digests)
        #expect(cache.load(key, sliceSize: 262_144, blockSize: 2048) == digests)
        #expect(cache.load(key, sliceSize: 262_144, blockSize: 4096) == nil)
        var touched = key
        touched.mtimeNanoseconds += 1
        #expect(cache.load(touched, sliceSize: 262_144, blockSize: 2048) == nil)
        var moved = key
        moved.ctimeSeconds += 1
        #expect(cache.load(moved, sliceSize: 262_144, blockSize: 2048) == nil)
        // Small files are not kept; nor is the wrong number of digests.
        let small = try directory.write("small", [1, 2, 3])
        cache.store(try stamp(small), sliceSize: 262_144, blockSize: 2048, digests: [UInt8](repeating: 0, count: 32))
        #expect(cache.load(try stamp(small), sliceSize: 262_144, blockSize: 2048) == nil)
        cache.store(key, sliceSize: 131_072, blockSize: 2048, digests: digests)
        #expect(cache.load(key, sliceSize: 131_072, blockSize: 2048) == nil)
    }

    /// A damaged entry is never returned, and is removed.
    @Test func damagedEntriesAreDropped() throws {
        let directory = try TemporaryDirectory()
        let cache = SliceDigestCache(directory: directory.file("cache"))
        let path = try sparse(directory, "file", size: 32 * 262_144)
        let key = try stamp(path)
        cache.store(key, sliceSize: 262_144, blockSize: 2048, digests: [UInt8](repeating: 9, count: 32 * 32))
        let entries = try FileManager.default.contentsOfDirectory(atPath: cache.directory)
        let entry = cache.directory + "/" + (entries.first ?? "")
        for damage in 0..<3 {
            var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: entry)))
            switch damage {
            case 0: bytes[bytes.count - 40] ^= 1
            case 1: bytes.removeLast()
            default: bytes += [0]
            }
            try Data(bytes).write(to: URL(fileURLWithPath: entry))
            #expect(cache.load(key, sliceSize: 262_144, blockSize: 2048) == nil, "damage \(damage)")
            #expect(!FileManager.default.fileExists(atPath: entry))
            cache.store(key, sliceSize: 262_144, blockSize: 2048, digests: [UInt8](repeating: 9, count: 32 * 32))
        }
    }

    /// The cache stays within its bound by removing the least recently used entries.
    @Test func theLeastRecentlyUsedEntriesGoFirst() throws {
        let directory = try TemporaryDirectory()
        var cache = SliceDigestCache(directory: directory.file("cache"), limitBytes: 3 * 1400)
        cache.evictsEvery = 1
        var keys: [FileStamp] = []
        for index in 0..<5 {
            let path = try sparse(directory, "file\(index)", size: 40 * 262_144)
            keys.append(try stamp(path))
            let digests = [UInt8](repeating: 2, count: 40 * 32)
            cache.store(keys[index], sliceSize: 262_144, blockSize: 2048, digests: digests)
            // Entries used in different seconds: the oldest is the least recently used.
            let entries = try FileManager.default.contentsOfDirectory(atPath: cache.directory)
            for entry in entries {
                let full = cache.directory + "/" + entry
                let date = try FileManager.default.attributesOfItem(atPath: full)[.modificationDate] as? Date
                if let date, date > Date(timeIntervalSince1970: 1_600_000_000 + Double(index) * 10) {
                    try FileManager.default.setAttributes(
                        [.modificationDate: Date(timeIntervalSince1970: 1_600_000_000 + Double(index) * 10)],
                        ofItemAtPath: full)
                }
            }
        }
        let present = keys.map { cache.load($0, sliceSize: 262_144, blockSize: 2048) != nil }
        #expect(present.filter { $0 }.count <= 3)
        #expect(present.last == true)
    }
}
