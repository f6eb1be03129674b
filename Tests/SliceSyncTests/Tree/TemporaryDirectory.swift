import Foundation
@testable import SliceSync

/// A directory under the system temp directory, removed when the value is deinitialised.
final class TemporaryDirectory {
    let path: String

    init() throws {
        var template = Array((NSTemporaryDirectory() + "/slicesync-test-XXXXXX").utf8CString)
        guard let created = mkdtemp(&template) else { throw FileSystemError(errno: errno, operation: "create", path: "temp dir") }
        path = String(cString: created)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ relative: String) -> String { path + "/" + relative }

    @discardableResult
    func write(_ relative: String, _ bytes: [UInt8], modified: Date? = Date(timeIntervalSince1970: 1_600_000_000)) throws -> String {
        let full = file(relative)
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: full))
        // An old modification time keeps the racy-timestamp rule out of tests that are not about it.
        if let modified { try FileManager.default.setAttributes([.modificationDate: modified], ofItemAtPath: full) }
        return full
    }

    func exists(_ relative: String) -> Bool { FileManager.default.fileExists(atPath: file(relative)) }

    func allFiles() -> [String] {
        let enumerator = FileManager.default.enumerator(atPath: path)
        var result: [String] = []
        while let next = enumerator?.nextObject() as? String {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: file(next), isDirectory: &isDirectory), !isDirectory.boolValue { result.append(next) }
        }
        return result.sorted()
    }
}
