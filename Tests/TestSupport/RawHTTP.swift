import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One HTTP/1.1 response as read off the wire.
public struct RawResponse {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]

    public func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }
}

/// A plain TCP connection to the server, so tests control every byte of a request.
public final class RawConnection {
    public let fd: Int32
    private var buffer: [UInt8] = []

    public init(port: Int, timeoutSeconds: Int = 10) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self,
                capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            throw NSError(domain: "RawConnection", code: Int(errno))
        }
    }

    deinit { close(fd) }

    /// Ends the connection from the client's side.
    public func closeConnection() { shutdown(fd, Int32(SHUT_RDWR)) }

    public func send(_ text: String) {
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
    public func readResponse(head: Bool = false) -> RawResponse? {
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

    /// Reads until `text` has arrived; returns everything up to and including it, or nil at the end
    /// of the stream or a timeout.
    public func read(through text: String) -> String? {
        let needle = Array(text.utf8)
        while true {
            if let found = Self.find(needle, in: buffer) {
                defer { buffer.removeFirst(found + needle.count) }
                return String(decoding: buffer[..<(found + needle.count)], as: UTF8.self)
            }
            guard fill() else { return nil }
        }
    }

    /// Reads until the server closes the connection; returns what came.
    public func readToEnd() -> [UInt8] {
        while fill() {}
        defer { buffer.removeAll() }
        return buffer
    }

    /// Whether the server closed (or reset) the connection; false when bytes came or the read timed out.
    public func isClosedByServer() -> Bool {
        var byte: UInt8 = 0
        let count = recv(fd, &byte, 1, 0)
        return count == 0 || (count < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
    }

    public static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for index in 0...(haystack.count - needle.count) where haystack[index] == needle[0] {
            if Array(haystack[index..<(index + needle.count)]) == needle { return index }
        }
        return nil
    }
}

/// One request on a fresh connection.
public func exchange(_ port: Int, _ target: String, method: String = "GET",
    headers: [String] = []) throws -> RawResponse {
    let connection = try RawConnection(port: port)
    connection.send("\(method) \(target) HTTP/1.1\r\nHost: " +
        "127.0.0.1\r\n" + headers.map { $0 + "\r\n" }.joined() + "\r\n")
    guard let response = connection.readResponse(head: method == "HEAD") else {
        throw NSError(domain: "exchange", code: 1,
            userInfo: [NSLocalizedDescriptionKey: "no response to \(method) \(target)"])
    }
    return response
}

