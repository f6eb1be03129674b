// formatbench: measures the weak-hash candidates and the slice/block size trade-off of format 2.
//
//   swift run -c release --package-path bench/formatbench formatbench [DIR...]
//
// The weak-hash test builds a set of block hashes from one half of the files found under DIR (default:
// /usr/lib and /usr/share), rolls each candidate hash over every byte offset of the other half, and
// counts positions whose weak hash is in the set although the block is different. An ideal 32-bit hash
// gives positions × blocks / 2^32 such false hits.
import Foundation
import SliceSync

// MARK: Corpus

func collectFiles(under roots: [String], limit: Int) -> [Data] {
    var files: [Data] = []
    var total = 0
    for root in roots {
        guard let walker = FileManager.default.enumerator(atPath: root) else { continue }
        while let relative = walker.nextObject() as? String, total < limit {
            let path = root + "/" + relative
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
                  attributes[.type] as? FileAttributeType == .typeRegular,
                  let size = attributes[.size] as? Int, size >= 4096, size <= 8 << 20,
                  let data = FileManager.default.contents(atPath: path) else { continue }
            files.append(data)
            total += data.count
        }
    }
    return files
}

// MARK: Candidates

protocol WeakHash {
    var name: String { get }
    init(window: Int)
    func hash(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> UInt32
    mutating func start(_ bytes: UnsafePointer<UInt8>)
    mutating func roll(out: UInt8, in: UInt8)
    var value: UInt32 { get }
}

/// Format 2's choice: the high half of RK64.
struct RK: WeakHash {
    let name = "rk64 (high 32 bits)"
    let roller: RollingHash
    var state: UInt64 = 0
    init(window: Int) { roller = RollingHash(window: window) }
    func hash(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> UInt32 { RollingHash.weak(RollingHash.hash(bytes, count: count)) }
    mutating func start(_ bytes: UnsafePointer<UInt8>) { state = RollingHash.hash(bytes, count: roller.window) }
    mutating func roll(out: UInt8, in: UInt8) { state = roller.roll(state, outgoing: out, incoming: `in`) }
    var value: UInt32 { RollingHash.weak(state) }
}

/// zsync's rsum with both 16-bit halves kept (its strongest setting, 4 bytes).
struct ZsyncRsum: WeakHash {
    let name = "zsync rsum (a16|b16)"
    let window: Int
    let shift: Int
    var a: UInt16 = 0, b: UInt16 = 0
    init(window: Int) { self.window = window; shift = window.trailingZeroBitCount }
    func hash(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> UInt32 {
        var a: UInt16 = 0, b: UInt16 = 0
        for i in 0..<count { a &+= UInt16(bytes[i]); b &+= UInt16(truncatingIfNeeded: count - i) &* UInt16(bytes[i]) }
        return UInt32(a) << 16 | UInt32(b)
    }
    mutating func start(_ bytes: UnsafePointer<UInt8>) {
        let v = hash(bytes, window)
        a = UInt16(v >> 16)
        b = UInt16(v & 0xFFFF)
    }
    mutating func roll(out: UInt8, in: UInt8) {
        a = a &+ UInt16(`in`) &- UInt16(out)
        b = b &+ a &- (UInt16(out) << shift)
    }
    var value: UInt32 { UInt32(a) << 16 | UInt32(b) }
}

/// The zlib Adler-32 that format 1 stores.
struct ZlibAdler: WeakHash {
    let name = "zlib adler32"
    let window: Int
    var state: UInt32 = 0
    init(window: Int) { self.window = window }
    func hash(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> UInt32 { Adler32.update(Adler32.initial, bytes, count: count) }
    mutating func start(_ bytes: UnsafePointer<UInt8>) { state = hash(bytes, window) }
    mutating func roll(out: UInt8, in: UInt8) { state = Adler32.roll(state, outgoing: out, incoming: `in`, window: window) }
    var value: UInt32 { state }
}

func measure<H: WeakHash>(_ type: H.Type, window: Int, targets: [Data], alikes: [Data]) {
    var hasher = H(window: window)
    var set = Set<UInt32>()
    var blocks = Set<Data>()
    for file in targets {
        file.withUnsafeBytes { raw in
            let base = raw.bindMemory(to: UInt8.self).baseAddress!
            var offset = 0
            while offset + window <= file.count {
                set.insert(hasher.hash(base + offset, window))
                blocks.insert(file.subdata(in: offset..<offset + window))
                offset += window
            }
        }
    }
    var positions = 0
    var hits = 0
    var trueHits = 0
    var distinctFalse = Set<Data>()
    for file in alikes where file.count > window {
        file.withUnsafeBytes { raw in
            let base = raw.bindMemory(to: UInt8.self).baseAddress!
            hasher.start(base)
            var position = 0
            while true {
                positions += 1
                if set.contains(hasher.value) {
                    let candidate = Data(bytes: base + position, count: window)
                    if blocks.contains(candidate) {
                        trueHits += 1
                    } else {
                        hits += 1
                        distinctFalse.insert(candidate)
                    }
                }
                if position + window >= file.count { break }
                hasher.roll(out: base[position], in: base[position + window])
                position += 1
            }
        }
    }
    let ideal = Double(positions) * Double(set.count) / 4294967296.0
    print(String(format: "| %@ | %d | %d | %d | %.0f | %d |", hasher.name, set.count, hits, distinctFalse.count, ideal, trueHits))
}

// MARK: Size model

/// Bytes a client downloads for `edits` scattered small edits: coarse table, the fine tables of the
/// slices that hold an edit, and the blocks that overlap one (an ideal matcher finds everything else).
func modelDownload(length: Int, slice: Int, block: Int, edits: [(offset: Int, length: Int)]) -> (signature: Int, data: Int) {
    let coarse = (length + slice - 1) / slice * HashRecord.size
    var slices = Set<Int>()
    var blocks = Set<Int>()
    for edit in edits {
        for s in (edit.offset / slice)...((edit.offset + edit.length - 1) / slice) { slices.insert(s) }
        for b in (edit.offset / block)...((edit.offset + edit.length - 1) / block) { blocks.insert(b) }
    }
    return (coarse + slices.count * (slice / block) * HashRecord.size, blocks.count * block)
}

/// Rolls over a buffer in a tight loop, as a matcher's inner loop does, and returns MB/s.
func rollingSpeed<H: WeakHash>(_ type: H.Type, window: Int, buffer: [UInt8]) -> Double {
    var hasher = H(window: window)
    var best = Double.infinity
    var sink: UInt32 = 0
    buffer.withUnsafeBufferPointer { raw in
        let base = raw.baseAddress!
        for _ in 0..<3 {
            let clock = ContinuousClock.now
            hasher.start(base)
            for position in 0..<(raw.count - window) {
                hasher.roll(out: base[position], in: base[position + window])
                sink ^= hasher.value
            }
            best = min(best, (ContinuousClock.now - clock) / .seconds(1))
        }
    }
    if sink == 42 { print("") }
    return Double(buffer.count - window) / best / 1e6
}

/// Lines of a numeric table: the kind of structured data where sum-based hashes collide.
func numericTable(from start: Int, lines: Int) -> Data {
    var text = ""
    text.reserveCapacity(lines * 24)
    for i in start..<(start + lines) { text += String(format: "%09d,%09d,%04d\n", i, i &* 7 % 1_000_000_007, i % 9973) }
    return Data(text.utf8)
}

let roots = CommandLine.arguments.count > 1 ? Array(CommandLine.arguments.dropFirst()) : ["/usr/lib", "/usr/share"]
let files = collectFiles(under: roots, limit: 96 << 20)
let targets = stride(from: 0, to: files.count, by: 2).map { files[$0] }
let alikes = stride(from: 1, to: files.count, by: 2).map { files[$0] }
print("corpus: \(files.count) files, \(files.reduce(0) { $0 + $1.count } >> 20) MiB, split in two halves\n")
func weakHashTable(_ title: String, targets: [Data], alikes: [Data]) {
    print(title + "\n")
    print("| hash | distinct block hashes | false hits (positions) | distinct false windows | ideal 32-bit | true hits |")
    print("|---|---|---|---|---|---|")
    measure(RK.self, window: 2048, targets: targets, alikes: alikes)
    measure(ZsyncRsum.self, window: 2048, targets: targets, alikes: alikes)
    measure(ZlibAdler.self, window: 2048, targets: targets, alikes: alikes)
}

weakHashTable("Weak-hash false hits, 2 KiB window (blocks of one half looked up at every offset of the other)", targets: targets, alikes: alikes)
weakHashTable("\nSame test on a numeric table (one 24 MiB half against another)",
              targets: [numericTable(from: 0, lines: 1_000_000)], alikes: [numericTable(from: 3_000_000, lines: 1_000_000)])

print("\nRolling speed, one byte at a time over 64 MiB (what a matcher's inner loop pays before its lookup)\n")
print("| hash | window 2 KiB, MB/s | window 256 KiB, MB/s |")
print("|---|---|---|")
let rollBuffer = Array(files.reduce(Data(), +).prefix(64 << 20))
print(String(format: "| %@ | %.0f | %.0f |", RK(window: 1).name, rollingSpeed(RK.self, window: 2048, buffer: rollBuffer), rollingSpeed(RK.self, window: 256 << 10, buffer: rollBuffer)))
print(String(format: "| %@ | %.0f | %.0f |", ZsyncRsum(window: 2048).name, rollingSpeed(ZsyncRsum.self, window: 2048, buffer: rollBuffer), rollingSpeed(ZsyncRsum.self, window: 256 << 10, buffer: rollBuffer)))
print(String(format: "| %@ | %.0f | %.0f |", ZlibAdler(window: 1).name, rollingSpeed(ZlibAdler.self, window: 2048, buffer: rollBuffer), rollingSpeed(ZlibAdler.self, window: 256 << 10, buffer: rollBuffer)))

print("\nDownload model: 256 MiB file, 10 scattered 100-byte edits (mean of 20 random layouts)\n")
print("| slice | block | coarse table | fine tables | blocks | total KiB | coarse/file |")
print("|---|---|---|---|---|---|---|")
let length = 256 << 20
var generator = SystemRandomNumberGenerator()
for slice in [128 << 10, 256 << 10, 512 << 10, 1 << 20] {
    for block in [1024, 2048, 4096] {
        var signature = 0, data = 0
        for _ in 0..<20 {
            let edits = (0..<10).map { _ in (offset: Int.random(in: 0..<(length - 100), using: &generator), length: 100) }
            let result = modelDownload(length: length, slice: slice, block: block, edits: edits)
            signature += result.signature
            data += result.data
        }
        let coarse = (length + slice - 1) / slice * HashRecord.size
        print(String(format: "| %d KiB | %d | %d | %d | %d | %.1f | %.4f %% |", slice >> 10, block, coarse, signature / 20 - coarse, data / 20,
                     Double(signature + data) / 20 / 1024, Double(coarse) / Double(length) * 100))
    }
}
