import Foundation
import Testing
import TestSupport
@testable import SliceSync

@Suite("The tree manifest")
struct TreeManifestTests {
    static let hash = TreeManifest.FileHash(kind: "t", digest: (0..<32).map { UInt8($0) })
    static let zeros = String(repeating: "0", count: 32)

    static let sample = TreeManifest(entries: [
        .init(path: "bin", kind: .directory),
        .init(path: "bin/run", kind: .file(size: 10, modified: 1_700_000_000, executable: true, hash: hash)),
        .init(path: "docs", kind: .directory),
        .init(path: "docs/a b.txt", kind: .file(size: 0, modified: -5, executable: false, hash: hash)),
        .init(path: "docs/latest", kind: .link(target: "a b.txt")),
        .init(path: "up", kind: .link(target: "docs/../bin/run")),
        .init(path: "z.iso", kind: .file(size: 1 << 40, modified: 0, executable: false,
            hash: TreeManifest.FileHash(kind: "h", digest: [UInt8](repeating: 0xAB, count: 20)))),
    ])

    @Test func writtenAndReadBack() throws {
        let bytes = Self.sample.encoded()
        #expect(try TreeManifest.parse(bytes) == Self.sample)
        #expect(String(decoding: Self.sample.text(), as: UTF8.self).hasPrefix("d\tbin\nf\tx\t10\t1700000000\tt:"))
    }

    /// Each way a manifest can lie is refused with a message naming the line, before anything is used.
    @Test(arguments: [
        ("f\t-\t1\t1\tt:\(zeros)\tb\nf\t-\t1\t1\tt:\(zeros)\ta\n", "out of order"),
        ("d\ta\nd\ta\n", "out of order or repeated"),
        ("d\t..\n", ". or .. segment"),
        ("d\ta\nd\ta/../b\n", ". or .. segment"),
        ("d\t/etc\n", "absolute path"),
        ("d\ta\u{01}b\n", "control character"),
        ("d\t" + String(repeating: "n", count: 256) + "\n", "longer than 255"),
        ("f\t-\t1\t1\tt:\(String(repeating: "0", count: 32))\ta\nd\ta/b\n", "cannot be both"),
        ("d\ta/b\n", "not listed as a directory"),
        ("l\t../x\tlink\n", "leaves the tree"),
        ("d\ta\nl\t../../etc/passwd\ta/link\n", "leaves the tree"),
        ("l\t/etc/passwd\tlink\n", "relative path"),
        ("f\t-\t99999999999999999999\t1\tt:\(String(repeating: "0", count: 32))\ta\n", "size"),
        ("f\t-\t1\t1\tt:\(String(repeating: "0", count: 31))\ta\n", "hash"),
        ("f\t-\t01\t1\tt:\(String(repeating: "0", count: 32))\ta\n", "size"),
        ("f\tw\t1\t1\tt:\(String(repeating: "0", count: 32))\ta\n", "mode"),
        ("d\t.slicesync\n", "keep for themselves"),
        ("x\ta\n", "unknown entry type"),
        ("d\ta\tb\n", "fields"),
        ("d\ta", "cut short"),
    ])
    func hostileManifestsAreRefused(text: String, expected: String) throws {
        do {
            _ = try TreeManifest.parse(text: Array(text.utf8))
            Issue.record("accepted: \(text.debugDescription)")
        } catch {
            #expect(error.message.contains(expected), "\(text.debugDescription): \(error.message)")
        }
    }

    /// The compressed form announces its length, bounded before anything is allocated; damage is caught.
    @Test func theCompressedFormIsChecked() throws {
        let good = TreeManifest.stored(text: Self.sample.text())
        #expect(try TreeManifest.parse(good) == Self.sample)
        let newline = try #require(good.firstIndex(of: UInt8(ascii: "\n")))
        let bomb = Array("slicesync-manifest 1 zlib 999999999999\n".utf8) + good[(newline + 1)...]
        #expect(throws: SignatureError.self) { try TreeManifest.parse(bomb) }
        let wrongLength = Array("slicesync-manifest 1 zlib 5\n".utf8) + good[(newline + 1)...]
        #expect(throws: SignatureError.self) { try TreeManifest.parse(wrongLength) }
        var flipped = good
        flipped[flipped.count - 3] ^= 0x55
        #expect(throws: SignatureError.self) { try TreeManifest.parse(flipped) }
        #expect(throws: SignatureError.self) { try TreeManifest.parse(Array(good.dropLast(4))) }
        #expect(throws: SignatureError.self) { try TreeManifest.parse(Array("<html>".utf8)) }
    }

    /// Format 2: the index describes every part exactly, each part's hash is checked, and numbers are
    /// bounded before anything is allocated.
    @Test func thePartsAreChecked() throws {
        let manifest = Self.manyEntries(300)
        let good = manifest.encoded()
        #expect(try TreeManifest.parse(good) == manifest)
        let layout = try #require(try TreeManifest.PartLayout.read(good).layout)
        #expect(layout.parts.count > 3 && layout.totalLength == good.count)
        // A byte of one part changed: its hash no longer matches.
        var flipped = good
        flipped[layout.parts[2].range.lowerBound + 3] ^= 0x55
        #expect { try TreeManifest.parse(flipped) } throws: { ($0 as? SignatureError)?.code == .invalidHash }
        #expect(throws: SignatureError.self) { try TreeManifest.parse(Array(good.dropLast(1))) }
        #expect(throws: SignatureError.self) { try TreeManifest.parse(good + [0]) }
        let newline = try #require(good.firstIndex(of: UInt8(ascii: "\n")))
        for first in ["slicesync-manifest 2 zlib-parts 99999999999 10 10", "slicesync-manifest 2 zlib-parts 1 1 1",
                      "slicesync-manifest 2 zlib-parts 3 x 5", "slicesync-manifest 2 zlib-parts \(layout.parts.count) "
                      + "\(layout.parts[0].range.lowerBound - newline - 1) \(layout.textLength + 1)"] {
            #expect(throws: SignatureError.self, "\(first)") {
                try TreeManifest.parse(Array((first + "\n").utf8) + good[(newline + 1)...])
            }
        }
    }

    /// An added or removed entry changes the part that holds it, not the others.
    @Test func partsFollowTheContent() throws {
        let before = Self.manyEntries(2000)
        var entries = before.entries
        entries.remove(at: 700)
        entries.append(.init(path: "dir-1/zz-new", kind: .file(size: 1, modified: 1, executable: false,
                                                                hash: Self.hash)))
        let after = TreeManifest(entries: entries)
        let old = try #require(try TreeManifest.PartLayout.read(before.encoded()).layout)
        let new = try #require(try TreeManifest.PartLayout.read(after.encoded()).layout)
        let kept = Set(old.parts.map(\.hash))
        let changed = new.parts.filter { !kept.contains($0.hash) }
        #expect(old.parts.count > 40)
        #expect(changed.count <= 4, "\(changed.count) of \(new.parts.count) parts changed")
    }

    static func manyEntries(_ count: Int) -> TreeManifest {
        var entries: [TreeManifest.Entry] = [.init(path: "dir-1", kind: .directory)]
        for index in 0..<count {
            let digest = (0..<32).map { UInt8(truncatingIfNeeded: index &* 31 &+ $0) }
            entries.append(.init(path: "dir-1/file-\(index)", kind: .file(size: index, modified: 1_700_000_000 + index,
                executable: false, hash: TreeManifest.FileHash(kind: "t", digest: digest))))
        }
        return TreeManifest(entries: entries)
    }

    /// 100,000 files with typical names take at most 60 bytes each, compressed.
    @Test func aBigTreeStaysSmall() throws {
        var entries: [TreeManifest.Entry] = []
        var generator = SeededGenerator(seed: 7)
        let words = ["src", "lib", "include", "docs", "tests", "assets", "images", "data", "build", "vendor"]
        for top in 0..<100 {
            let directory = "\(words[top % words.count])-\(top)"
            entries.append(.init(path: directory, kind: .directory))
            for index in 0..<1000 {
                var digest: [UInt8] = []
                for _ in 0..<4 { withUnsafeBytes(of: generator.next()) { digest += $0 } }
                let suffix = ["c", "h", "py", "json"][index % 4]
                let name = "\(directory)/\(words[index % words.count])_module_\(index).\(suffix)"
                entries.append(.init(path: name, kind: .file(size: Int.random(in: 1...(64 << 20), using: &generator),
                    modified: 1_700_000_000 + Int.random(in: 0...10_000_000, using: &generator),
                    executable: index % 9 == 0,
                    hash: TreeManifest.FileHash(kind: "t", digest: digest))))
            }
        }
        let manifest = TreeManifest(entries: entries)
        let bytes = manifest.encoded()
        #expect(bytes.count <= 60 * 100_000, "\(bytes.count) bytes: \(bytes.count / 100_000) per entry")
        print("a manifest of \(entries.count) entries: \(bytes.count) bytes")
        #expect(try TreeManifest.parse(bytes).entries.count == entries.count)
    }

    /// shash writes the manifest of a signed tree: every directory, file and in-tree link, with the
    /// hash its signature states; links leaving the tree are listed as the file they lead to.
    @Test func shashListsTheSignedTree() throws {
        let directory = try TemporaryDirectory()
        try directory.write("pub/a.bin", [UInt8](repeating: 1, count: 5000))
        try directory.write("pub/sub/b.sh", [UInt8](repeating: 2, count: 100))
        try directory.write("outside.bin", [UInt8](repeating: 3, count: 10))
        chmod(directory.file("pub/sub/b.sh"), 0o755)
        symlink("sub/b.sh", directory.file("pub/latest"))
        symlink(directory.file("outside.bin"), directory.file("pub/out"))
        try FileManager.default.createDirectory(atPath: directory.file("pub/empty"), withIntermediateDirectories: true)
        let report = TreeSigner(options: TreeSigningOptions(parameters: try SigningParameters()),
            logger: .init(label: "test")).run(paths: [directory.file("pub")])
        #expect(report.failures.isEmpty, "\(report.failures)")
        let bytes = try SystemFile.openForReading(directory.file("pub/.slicesync/.slicesync-manifest"))
            .readAll(limit: 1 << 20)
        let manifest = try TreeManifest.parse(bytes)
        #expect(manifest.entries.map(\.path) == ["a.bin", "empty", "latest", "out", "sub", "sub/b.sh"])
        let signature = try SignatureV2Header.parse(try SystemFile.openForReading(
            directory.file("pub/.slicesync/a.bin.slicesync")).readAll(limit: 1 << 20))
        #expect(manifest.entries[0].kind == .file(size: 5000, modified: 1_600_000_000, executable: false,
            hash: TreeManifest.FileHash(kind: "t", digest: try #require(signature.treeHash))))
        #expect(manifest.entries[2].kind == .link(target: "sub/b.sh"))
        guard case .file(let size, _, _, _) = manifest.entries[3].kind else {
            Issue.record("the link out of the tree is listed as \(manifest.entries[3].kind)")
            return
        }
        #expect(size == 10)
        guard case .file(_, _, let executable, _) = manifest.entries[5].kind else {
            Issue.record("sub/b.sh is listed as \(manifest.entries[5].kind)")
            return
        }
        #expect(executable)
        // Nothing changed: the manifest is not rewritten (its ETag stays, a conditional GET gets 304).
        let before = try #require(try FileSystem.stamp(directory.file("pub/.slicesync/.slicesync-manifest")))
        _ = TreeSigner(options: TreeSigningOptions(parameters: try SigningParameters()),
            logger: .init(label: "test")).run(paths: [directory.file("pub")])
        let after = try #require(try FileSystem.stamp(directory.file("pub/.slicesync/.slicesync-manifest")))
        #expect(before.inode == after.inode && before.mtimeNanoseconds == after.mtimeNanoseconds)
    }
}
