import Foundation
import Logging
import SliceSync
@testable import SliceSyncServer

/// A syncserver running inside the test process on 127.0.0.1 and a free port.
final class RunningServer: @unchecked Sendable {
    let port: Int
    private let task: Task<Void, Error>

    private init(port: Int, task: Task<Void, Error>) {
        self.port = port
        self.task = task
    }

    /// Starts a server on `root`; signing is off unless asked for, so tests control the tree.
    static func start(root: String, signatures: Bool = false, configure: (inout SyncServerConfiguration) -> Void = { _ in }) async throws -> RunningServer {
        var configuration = SyncServerConfiguration()
        configuration.port = 0
        configuration.root = root
        configuration.signatures = signatures
        configure(&configuration)
        var logger = Logger(label: "test-syncserver")
        logger.logLevel = .critical
        let server = SyncServer(configuration: configuration, logger: logger)
        let (stream, continuation) = AsyncStream.makeStream(of: String.self)
        let task = Task {
            try await server.run { url in continuation.yield(url) }
        }
        var iterator = stream.makeAsyncIterator()
        guard let url = await iterator.next(), let port = URL(string: url)?.port else {
            task.cancel()
            throw NSError(domain: "RunningServer", code: 1)
        }
        return RunningServer(port: port, task: task)
    }

    /// Stops the server and waits until it has.
    func stop() async {
        task.cancel()
        _ = try? await task.value
    }
}

/// One HTTP/1.1 response as read off the wire.
struct RawResponse {
    var status: Int
    var headers: [(String, String)]
    var body: [UInt8]

    func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }
}

/// A plain TCP connection to the server, so tests control every byte of a request.
final class RawConnection {
    let fd: Int32
    private var buffer: [UInt8] = []

    init(port: Int, timeoutSeconds: Int = 10) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            throw NSError(domain: "RawConnection", code: Int(errno))
        }
    }

    deinit { close(fd) }

    /// Ends the connection from the client's side.
    func closeConnection() { shutdown(fd, Int32(SHUT_RDWR)) }

    func send(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Reads more bytes; false at end of stream or timeout.
    private func fill() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return false }
        buffer += chunk[..<count]
        return true
    }

    /// Reads one response; `head` says the request was HEAD (no body whatever Content-Length says).
    func readResponse(head: Bool = false) -> RawResponse? {
        var end: Int?
        while end == nil {
            if let found = Self.find([13, 10, 13, 10], in: buffer) { end = found; break }
            guard fill() else { return nil }
        }
        guard let end else { return nil }
        let text = String(decoding: buffer[..<end], as: UTF8.self)
        buffer.removeFirst(end + 4)
        var lines = text.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { return nil }
        let headers = lines.compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        var response = RawResponse(status: status, headers: headers, body: [])
        if head || status == 304 || status == 204 { return response }
        let length = response.header("Content-Length").flatMap(Int.init) ?? 0
        while buffer.count < length { guard fill() else { break } }
        let take = min(length, buffer.count)
        response.body = Array(buffer[..<take])
        buffer.removeFirst(take)
        return response
    }

    /// Reads until the server closes the connection; returns what came.
    func readToEnd() -> [UInt8] {
        while fill() {}
        defer { buffer.removeAll() }
        return buffer
    }

    /// Whether the server closed the connection (or sent nothing before the timeout).
    func isClosedByServer() -> Bool {
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, 0) <= 0
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for index in 0...(haystack.count - needle.count) where haystack[index] == needle[0] {
            if Array(haystack[index..<(index + needle.count)]) == needle { return index }
        }
        return nil
    }
}

/// One request on a fresh connection.
func exchange(_ port: Int, _ target: String, method: String = "GET", headers: [String] = []) throws -> RawResponse {
    let connection = try RawConnection(port: port)
    connection.send("\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers.map { $0 + "\r\n" }.joined() + "\r\n")
    guard let response = connection.readResponse(head: method == "HEAD") else {
        throw NSError(domain: "exchange", code: 1, userInfo: [NSLocalizedDescriptionKey: "no response to \(method) \(target)"])
    }
    return response
}

/// A directory for one test, removed afterwards.
final class ScratchTree {
    let path: String

    init() throws {
        var template = Array((NSTemporaryDirectory() + "/syncserver-test-XXXXXX").utf8CString)
        guard let created = mkdtemp(&template) else { throw NSError(domain: "ScratchTree", code: Int(errno)) }
        path = String(cString: created)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ relative: String) -> String { path + "/" + relative }

    @discardableResult
    func write(_ relative: String, _ bytes: [UInt8], modified: Date? = Date(timeIntervalSince1970: 1_600_000_000)) throws -> String {
        let full = file(relative)
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: full))
        if let modified { try FileManager.default.setAttributes([.modificationDate: modified], ofItemAtPath: full) }
        return full
    }
}

func patterned(_ count: Int, seed: UInt64 = 1) -> [UInt8] {
    var state = seed &* 0x9E37_79B9_7F4A_7C15
    return (0..<count).map { _ in
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return UInt8(truncatingIfNeeded: state)
    }
}
