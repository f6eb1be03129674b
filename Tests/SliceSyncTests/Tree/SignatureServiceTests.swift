import Foundation
import Logging
import Synchronization
import Testing
@testable import SliceSync

/// Keeps the messages a component logs, so tests can tell what it did (moved or hashed again).
final class RecordingLogHandler: LogHandler, @unchecked Sendable {
    static let messages = Mutex<[String: [String]]>([:])
    let label: String
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]

    init(label: String) { self.label = label }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        Self.messages.withLock { $0[label, default: []].append("\(event.message)") }
    }

    static func lines(_ label: String) -> [String] { messages.withLock { $0[label] ?? [] } }
}

@Suite("The signature service, in process", .serialized)
struct SignatureServiceTests {
    /// Runs a service on `dir` on its own thread for the duration of `body`.
    func withService(_ root: String, configure: (inout SignatureServiceOptions) -> Void = { _ in },
        _ body: (String) throws -> Void) throws {
        let label = "service-\(UUID().uuidString)"
        var options = SignatureServiceOptions(signing: TreeSigningOptions(parameters: try SigningParameters()))
        options.settle = .milliseconds(200)
        options.signing.jobs = 2
        configure(&options)
        let service = try SignatureService(root: root, options: options,
            logger: Logger(label: label) { RecordingLogHandler(label: $0) })
        let done = DispatchSemaphore(value: 0)
        Thread {
            service.run()
            done.signal()
        }.start()
        defer {
            service.stop()
            done.wait()
        }
        try body(label)
    }

    @Test func aRenamedFileKeepsItsSignatureUnderTheNewNameWithoutHashing() throws {
        let dir = try TemporaryDirectory()
        let content = randomBytes(600_000, seed: 4)
        try dir.write("d/old-name.iso", content)
        try withService(dir.path) { label in
            #expect(eventually { dir.exists(".slicesync/d/old-name.iso.slicesync") })
            #expect(eventually { RecordingLogHandler.lines(label).contains { $0.hasPrefix("signatures up to date") } })
            try FileManager.default.moveItem(atPath: dir.file("d/old-name.iso"), toPath: dir.file("d/new-name.iso"))
            #expect(eventually { dir.exists(".slicesync/d/new-name.iso.slicesync")
                && !dir.exists(".slicesync/d/old-name.iso.slicesync") })
            let written = try Signature.parse(
                [UInt8](Data(contentsOf: URL(fileURLWithPath: dir.file(".slicesync/d/new-name.iso.slicesync")))))
            let expected = try SignatureBuilder(parameters: SigningParameters(), pool: nil).signature(of: content,
                filename: "new-name.iso")
            #expect(written == expected)
            let lines = RecordingLogHandler.lines(label)
            #expect(lines.contains { $0.hasPrefix("moved ") && $0.hasSuffix("new-name.iso.slicesync") })
            #expect(!lines.contains { $0.hasPrefix("signed ") && $0.hasSuffix("new-name.iso") })
            // Signature stamps still match, so a one-shot run finds nothing to do.
            let report = TreeSigner(options: TreeSigningOptions(parameters: try SigningParameters()),
                logger: Logger(label: "x") { _ in SwiftLogNoOpLogHandler() }).run(paths: [dir.path])
            #expect(report.filesHashed == 0 && report.filesUpToDate == 1)
        }
    }

    @Test func itsOwnSignatureWritesDoNotWakeIt() throws {
        let dir = try TemporaryDirectory()
        try dir.write("a.bin", randomBytes(10_000, seed: 1))
        try withService(dir.path) { label in
            #expect(eventually { RecordingLogHandler.lines(label).contains { $0.hasPrefix("signatures up to date") } })
            usleep(800_000)
            // One signature written, and no second look at it caused by that write.
            #expect(RecordingLogHandler.lines(label).filter { $0.hasPrefix("signed ") }.count == 1)
        }
    }

    @Test func aLinkLeavingTheRootIsNotSignedWhenThePolicySaysSo() throws {
        let dir = try TemporaryDirectory()
        let outside = try TemporaryDirectory()
        try outside.write("secret", randomBytes(1000, seed: 2))
        try dir.write("pub/inside.bin", randomBytes(1000, seed: 3))
        try withService(dir.file("pub"), configure: { $0.signing.signsLinksLeavingRoot = false }) { _ in
            #expect(eventually { dir.exists("pub/.slicesync/inside.bin.slicesync") })
            try FileManager.default.createSymbolicLink(atPath: dir.file("pub/leaves"),
                withDestinationPath: outside.file("secret"))
            try FileManager.default.createSymbolicLink(atPath: dir.file("pub/stays"), withDestinationPath: "inside.bin")
            #expect(eventually { dir.exists("pub/.slicesync/stays.slicesync") })
            usleep(300_000)
            #expect(!dir.exists("pub/.slicesync/leaves.slicesync"))
        }
    }

    @Test func theScheduleComesOutInDueOrder() {
        var heap = DueHeap()
        let start = ContinuousClock.now
        let offsets = [5, 1, 9, 3, 3, 0, 7, 2, 8, 6, 4]
        for (index, offset) in offsets.enumerated() {
            heap.push(DueHeap.Entry(due: start + .milliseconds(offset), token: index, relative: "f\(index)"))
        }
        var popped: [Int] = []
        while let top = heap.top {
            popped.append(offsets[top.token])
            heap.pop()
        }
        #expect(popped == offsets.sorted())
    }

    @Test func aRenamedSignatureNamesTheNewFileInBothFormats() throws {
        for version in [SignatureVersion.v1, .v2] {
            let builder = SignatureBuilder(parameters: try SigningParameters(version: version, sliceSize: 4096),
                pool: nil)
            let content = randomBytes(20_000, seed: 9)
            let original = try builder.signature(of: content, filename: "a.txt")
            #expect(original.serialized(renamedTo: "b c.txt") == (try builder.signature(of: content,
                filename: "b c.txt")).serialized())
        }
    }

    @Test func removingATreeRemovesEverythingButDoesNotFollowLinks() throws {
        let dir = try TemporaryDirectory()
        try dir.write("keep/precious", [1])
        try dir.write("gone/a/b", [2])
        try dir.write("gone/c", [3])
        try FileManager.default.createSymbolicLink(atPath: dir.file("gone/link"), withDestinationPath: dir.file("keep"))
        #expect(try FileSystem.removeTree(dir.file("gone")) == 3)
        #expect(!dir.exists("gone"))
        #expect(dir.exists("keep/precious"))
        #expect(try FileSystem.removeTree(dir.file("gone")) == 0)
    }
}
