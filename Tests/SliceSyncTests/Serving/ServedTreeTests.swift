import Foundation
import Testing
@testable import SliceSync

struct RequestPathTests {
    @Test(arguments: [
        ("/", [String](), true),
        ("/a/b.iso", ["a", "b.iso"], false),
        ("/a//./b/", ["a", "b"], true),
        ("/a%20b/c%2Fd", ["a b", "c", "d"], false),
        ("/%252e%252e/x", ["%2e%2e", "x"], false),
        ("/caf%C3%A9?format=json", ["café"], false),
        ("/x#frag", ["x"], false),
    ])
    func decodesOnce(target: String, segments: [String], trailingSlash: Bool) throws {
        let path = try RequestPath.parse(target)
        #expect(path.segments == segments)
        #expect(path.hasTrailingSlash == trailingSlash)
    }

    @Test(arguments: [
        ("/../etc/passwd", RequestPath.Rejection.parentSegment),
        ("/a/%2e%2e/%2e%2e/etc", .parentSegment),
        ("/a/%2E%2E", .parentSegment),
        ("/..%2f..%2fetc", .parentSegment),
        ("/a%5c..%5c..%5cetc", .backslash),
        ("/a\\b", .backslash),
        ("/a%00b", .controlCharacter),
        ("/a%0d%0aSet-Cookie:x", .controlCharacter),
        ("/%ff%fe", .invalidUTF8),
        ("/%C0%AE%C0%AE/", .invalidUTF8),
        ("/bad%zz", .badPercentEncoding),
        ("/bad%2", .badPercentEncoding),
        ("relative", .notOriginForm),
        ("http:///a", .notOriginForm),
        ("ftp://example.com/a", .notOriginForm),
        ("http://example.com/../etc", .parentSegment),
        ("*", .notOriginForm),
    ])
    func rejectsHostileForms(target: String, rejection: RequestPath.Rejection) {
        #expect(throws: rejection) { try RequestPath.parse(target) }
    }

    @Test(arguments: [
        ("http://example.com/a/b?x=1", ["a", "b"], "x=1"),
        ("HTTPS://example.com:8443/a/", ["a"], nil),
        ("http://example.com", [], nil),
        ("http://example.com?format=json", [], "format=json"),
    ])
    func acceptsTheAbsoluteForm(target: String, segments: [String], query: String?) throws {
        let path = try RequestPath.parse(target)
        #expect(path.segments == segments && path.query == query)
    }

    @Test func encodesForLinks() {
        #expect(RequestPath.encode("/a b/ü?#%.iso") == "/a%20b/%C3%BC%3F%23%25.iso")
    }
}

struct ServedTreeTests {
    private func path(_ text: String) throws -> RequestPath { try RequestPath.parse(text) }

    @Test func resolvesFilesAndDirectoriesAndNothingOutside() throws {
        let outside = try TemporaryDirectory()
        try outside.write("secret", Array("secret".utf8))
        let dir = try TemporaryDirectory()
        try dir.write("pub/a.bin", [1, 2, 3])
        try dir.write("pub/.hidden", [1])
        try dir.write("pub/x.iso.slicesync.part", [1])
        try dir.write(".slicesync/.a.bin.slicesync.tmp-abc", [1])
        try FileManager.default.createSymbolicLink(atPath: dir.file("pub/in-link"), withDestinationPath: "a.bin")
        try FileManager.default.createSymbolicLink(atPath: dir.file("pub/out-link"),
            withDestinationPath: outside.file("secret"))
        try FileManager.default.createSymbolicLink(atPath: dir.file("pub/out-dir"), withDestinationPath: outside.path)
        try FileManager.default.createSymbolicLink(atPath: dir.file("pub/abs-in"),
            withDestinationPath: dir.file("pub/a.bin"))
        let tree = try ServedTree(root: dir.path)

        guard case .file(_, let stamp) = tree.resolve(try path("/pub/a.bin")) else { Issue.record("a.bin"); return }
        #expect(stamp.size == 3)
        #expect(tree.resolve(try path("/pub/")) == .directory(path: tree.root + "/pub"))
        #expect(tree.resolve(try path("/")) == .directory(path: tree.root))
        if case .file = tree.resolve(try path("/pub/in-link")) {} else {
            Issue.record("a link inside the tree is followed")
        }
        if case .file = tree.resolve(try path("/pub/abs-in")) {} else {
            Issue.record("an absolute link into the tree is followed")
        }
        if case .file = tree.resolve(try path("/pub/.hidden")) {} else { Issue.record("dot files are ordinary files") }
        #expect(tree.resolve(try path("/pub/out-link")) == .notFound)
        #expect(tree.resolve(try path("/pub/out-dir/secret")) == .notFound)
        #expect(tree.resolve(try path("/pub/out-dir/")) == .notFound)
        #expect(tree.resolve(try path("/pub/missing")) == .notFound)
        #expect(tree.resolve(try path("/pub/x.iso.slicesync.part")) == .notFound)
        #expect(tree.resolve(try path("/.slicesync/.a.bin.slicesync.tmp-abc")) == .notFound)
    }

    @Test func servesOnlyCurrentSignatures() throws {
        let dir = try TemporaryDirectory()
        let outside = try TemporaryDirectory()
        let modified = Date(timeIntervalSince1970: 1_600_000_000)
        try dir.write("a.bin", [1, 2, 3], modified: modified)
        try dir.write(".slicesync/a.bin.slicesync", [9], modified: modified)
        try dir.write("b.bin", [1], modified: modified)
        try dir.write(".slicesync/b.bin.slicesync", [9], modified: modified.addingTimeInterval(-1))
        try dir.write("c.bin", [1], modified: modified)
        try dir.write(".slicesync/c.bin.slicesync", [9], modified: modified.addingTimeInterval(-5))
        try dir.write(".slicesync/gone.bin.slicesync", [9], modified: modified)
        try outside.write("secret", [1], modified: modified)
        try FileManager.default.createSymbolicLink(atPath: dir.file("link"),
            withDestinationPath: outside.file("secret"))
        try dir.write(".slicesync/link.slicesync", [9], modified: modified)
        let tree = try ServedTree(root: dir.path)

        if case .file = tree.resolve(try path("/.slicesync/a.bin.slicesync")) {} else {
            Issue.record("current signature")
        }
        if case .file = tree.resolve(try path("/.slicesync/b.bin.slicesync")) {} else {
            Issue.record("provisional signature")
        }
        #expect(tree.resolve(try path("/.slicesync/c.bin.slicesync")) == .notFound)
        #expect(tree.resolve(try path("/.slicesync/gone.bin.slicesync")) == .notFound)
        #expect(tree.resolve(try path("/.slicesync/link.slicesync")) == .notFound)
        #expect(tree.resolve(try path("/.slicesync/")) == .directory(path: tree.root + "/.slicesync"))
    }

    @Test func listsEntriesWithTheirSignatures() throws {
        let dir = try TemporaryDirectory()
        let modified = Date(timeIntervalSince1970: 1_600_000_000)
        try dir.write("sub/a<b>.bin", [1, 2, 3], modified: modified)
        try dir.write("sub/z.bin", [1], modified: modified)
        try dir.write("sub/z.bin.slicesync.part", [1], modified: modified)
        try dir.write(".slicesync/sub/a<b>.bin.slicesync", [9], modified: modified)
        let tree = try ServedTree(root: dir.path)
        let listing = try DirectoryListing.read(tree: tree, directory: tree.root + "/sub", relativePath: "sub")
        #expect(listing.path == "/sub/")
        #expect(listing.entries.map(\.name) == ["a<b>.bin", "z.bin"])
        #expect(listing.entries[0].signature == "/.slicesync/sub/a<b>.bin.slicesync")
        #expect(listing.entries[0].size == 3)
        #expect(listing.entries[1].signature == nil)
        let html = String(decoding: listing.html(), as: UTF8.self)
        #expect(html.contains("a&lt;b&gt;.bin"))
        #expect(html.contains("href=\"a%3Cb%3E.bin\""))
        #expect(!html.contains("<b>"))
        let json = try JSONSerialization.jsonObject(with: Data(listing.json())) as? [String: Any]
        let entries = json?["entries"] as? [[String: Any]]
        #expect(entries?.first?["name"] as? String == "a<b>.bin")
        #expect(entries?.first?["mtime"] as? Int == 1_600_000_000)
    }
}
