#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A malformed or unsupported signature file.
public struct SignatureError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What exactly is wrong with the signature; stable across releases.
    public enum Code: String, Sendable {
        case unsupportedVersion = "unsupported-version"
        case missingField = "missing-field"
        case duplicateField = "duplicate-field"
        case unknownField = "unknown-field"
        case malformedLine = "malformed-line"
        case invalidNumber = "invalid-number"
        case valueOutOfRange = "value-out-of-range"
        case invalidFilename = "invalid-filename"
        case unsupportedHashing = "unsupported-hashing"
        case invalidHash = "invalid-hash"
        case invalidRecord = "invalid-record"
        case truncated = "truncated"
        case trailingData = "trailing-data"
        case headerTooLong = "header-too-long"
        case lineTooLong = "line-too-long"
        /// No signature at any of the places looked at.
        case notFound = "not-found"
    }

    /// The kinds of file this error can be about.
    public enum Document: String, Sendable {
        case signature = "signature"
        case zsyncControl = "zsync control file"
    }

    /// The stable code of the problem.
    public var code: Code
    /// A sentence naming the problem, for people.
    public var message: String
    /// What was read: a user who fetched a `.zsync` file is told about a control file.
    public var document = Document.signature

    /// Creates an error with a code and a message.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The message prefixed with a short context.
    public var description: String { "malformed \(document.rawValue): \(message)" }

}

/// A failure of the local file system: reading, writing, renaming or listing files.
public struct FileSystemError: Error, Sendable, CustomStringConvertible {
    /// The class of failure; stable across releases.
    public enum Code: String, Sendable {
        case notFound = "not-found"
        case permissionDenied = "permission-denied"
        case noSpace = "no-space"
        case readOnly = "read-only"
        case notRegularFile = "not-regular-file"
        case changedWhileReading = "changed-while-reading"
        case invalidPath = "invalid-path"
        case io = "io"
        case cancelled = "cancelled"
        case corruptJournal = "corrupt-journal"
        case busy = "busy"
    }

    /// The stable code of the failure.
    public var code: Code
    /// The path the operation was working on.
    public var path: String
    /// A sentence that says what failed and what to do about it.
    public var message: String
    /// The `errno` value behind the failure, when there was one.
    public var errno: Int32?

    /// Creates an error from its parts.
    public init(_ code: Code, path: String, message: String, errno: Int32? = nil) {
        self.code = code
        self.path = path
        self.message = message
        self.errno = errno
    }

    /// Creates an error from a failed system call's `errno`, naming the operation and the path.
    public init(errno value: Int32, operation: String, path: String) {
        let reason = String(cString: strerror(value))
        let code: Code
        let hint: String
        switch value {
        case ENOENT, ENOTDIR:
            code = .notFound
            hint = ""
        case EACCES, EPERM:
            code = .permissionDenied
            hint = " (check the permissions of the file and its directory)"
        case ENOSPC, EDQUOT:
            code = .noSpace
            hint = " (free some space and run again; nothing was replaced)"
        case EROFS:
            code = .readOnly
            hint = ""
        default:
            code = .io
            hint = ""
        }
        self.init(code, path: path, message: "cannot \(operation) \(path): \(reason)\(hint)", errno: value)
    }

    /// The message.
    public var description: String { message }

}

/// The result of comparing a file with its signature, when they differ.
public struct VerificationError: Error, Sendable, CustomStringConvertible {
    /// A sentence that says what did not match.
    public var message: String

    /// Creates an error with a message.
    public init(_ message: String) { self.message = message }

    /// The message.
    public var description: String { message }

}
