import Foundation

/// A directory under the system temp directory for one test, removed when the value goes away.
public final class TemporaryDirectory {
    /// Its absolute path.
    public let path: String

    /// Creates a fresh, empty directory.
    public init() throws {
        var template = Array((NSTemporaryDirectory() + "/slicesync-test-XXXXXX").utf8CString)
        guard let created = mkdtemp(&template) else {
            throw NSError(domain: NSPOSIXErrorDomain, code: Int(errno),
                userInfo: [NSLocalizedDescriptionKey: "cannot create a temporary directory"])
        }
        path = String(cString: created)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// The absolute path of `relative`.
    public func file(_ relative: String) -> String { path + "/" + relative }

    /// Writes a file (creating directories); an old modification time by default keeps the
    /// racy-timestamp rule out of tests that are not about it.
    @discardableResult
    public func write(_ relative: String, _ bytes: [UInt8],
        modified: Date? = Date(timeIntervalSince1970: 1_600_000_000)) throws -> String {
        let full = file(relative)
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent,
            withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: full))
        if let modified { try FileManager.default.setAttributes([.modificationDate: modified], ofItemAtPath: full) }
        return full
    }

    /// Whether `relative` exists.
    public func exists(_ relative: String) -> Bool { FileManager.default.fileExists(atPath: file(relative)) }

    /// Every regular file below the directory, relative and sorted.
    public func allFiles() -> [String] {
        let enumerator = FileManager.default.enumerator(atPath: path)
        var result: [String] = []
        while let next = enumerator?.nextObject() as? String {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: file(next),
                isDirectory: &isDirectory), !isDirectory.boolValue { result.append(next) }
        }
        return result.sorted()
    }
}
