import Foundation
import Synchronization
@testable import SliceSync

/// An in-process HTTP server for the client's tests, with the behaviours of real servers.
final class FakeServer: HTTPExchange, Sendable {
    enum Behaviour: Sendable {
        /// nginx: multipart for several ranges; 200 when the ranges sum past the file size.
        case nginx
        /// S3: single ranges only; several ranges get 200 with the whole object.
        case s3
        /// Python's http.server: ignores Range, always 200.
        case noRanges
        /// GitHub's CDN: 501 for multi-range requests.
        case multiRange501
        /// Aliyun OSS: answers only the first of several ranges, as a single-part 206.
        case firstRangeOnly
    }

    struct State {
        var files: [String: [UInt8]] = [:]
        var etags: [String: String] = [:]
        var redirects: [String: String] = [:]
        var requests: [(url: String, headers: [(String, String)])] = []
        var bytesSent = 0
        /// Fail the next N requests with a connection error after sending half of the body.
        var truncateNext = 0
        /// Fail the next N requests before any answer.
        var resetNext = 0
        /// Fail the next N requests for file data (not signatures) before any answer.
        var resetDataNext = 0
        /// Replace a file after this many requests to it: (path, request count, new content).
        var changeAfter: (path: String, count: Int, content: [UInt8])?
        /// Corrupt one byte of the next N data replies.
        var corruptNext = 0
    }

    let behaviour: Behaviour
    let state = Mutex(State())
    let host = "http://files.test"

    init(_ behaviour: Behaviour = .nginx) { self.behaviour = behaviour }

    func put(_ path: String, _ bytes: [UInt8]) {
        state.withLock {
            $0.files[path] = bytes
            $0.etags[path] = "\"\(bytes.count)-\(RollingHash.hash(bytes))\""
        }
    }

    func url(_ path: String) -> String { host + path }
    var requestCount: Int { state.withLock { $0.requests.count } }
    var bytesSent: Int { state.withLock { $0.bytesSent } }
    var requests: [(url: String, headers: [(String, String)])] { state.withLock { $0.requests } }

    struct ConnectionReset: Error {}

    func get(_ url: String, headers: [(String, String)], head: (HTTPResponseHead) throws -> Void,
        body: (UnsafeRawBufferPointer) throws -> Void) async throws {
        let path = String(url.dropFirst(host.count))
        let header = { (name: String) in headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
        typealias Served = ([UInt8]?, String?, Bool, Bool, Bool, String?)
        let (file, etag, reset, truncate, corrupt, redirect): Served = state.withLock { s in
            s.requests.append((url, headers))
            if let change = s.changeAfter, change.path == path {
                let seen = s.requests.filter { $0.url == url }.count
                if seen > change.count {
                    s.files[path] = change.content
                    s.etags[path] = "\"changed-\(change.content.count)\""
                    s.changeAfter = nil
                }
            }
            let isData = s.files[path] != nil && !path.contains(".slicesync")
            var reset = s.resetNext > 0
            if reset { s.resetNext -= 1 }
            if !reset && isData && s.resetDataNext > 0 {
                reset = true
                s.resetDataNext -= 1
            }
            let truncate = isData && !reset && s.truncateNext > 0
            if truncate { s.truncateNext -= 1 }
            let corrupt = isData && !reset && !truncate && s.corruptNext > 0 && header("Range") != nil
            if corrupt { s.corruptNext -= 1 }
            return (s.files[path], s.etags[path], reset, truncate, corrupt, s.redirects[path])
        }
        if reset { throw TransportError(.connection, "connection reset by peer") }
        if let redirect {
            try head(HTTPResponseHead(status: 302, headers: [("Location", redirect)]))
            return
        }
        guard let file, let etag else {
            try head(HTTPResponseHead(status: 404, headers: [("Content-Length", "9")]))
            try send(Array("not found".utf8), body)
            return
        }
        if let ifMatch = header("If-Match"), ifMatch != etag {
            try head(HTTPResponseHead(status: 412, headers: [("Content-Length", "0")]))
            return
        }
        var reply = file
        var status = 200
        var replyHeaders: [(String, String)] = [("ETag", etag), ("Accept-Ranges", "bytes")]
        if let rangeHeader = header("Range"), behaviour != .noRanges {
            switch RangeRequest.parse(rangeHeader, length: file.count) {
            case .invalid:
                break
            case .unsatisfiable:
                try head(HTTPResponseHead(status: 416, headers: [("Content-Range", "bytes */\(file.count)")]))
                return
            case .ranges(let ranges):
                let total = ranges.reduce(0) { $0 + $1.count }
                if ranges.count == 1 {
                    status = 206
                    reply = Array(file[ranges[0]])
                    replyHeaders.append(("Content-Range",
                        "bytes \(ranges[0].lowerBound)-\(ranges[0].upperBound - 1)/\(file.count)"))
                } else {
                    switch behaviour {
                    case .nginx where total <= file.count:
                        status = 206
                        let boundary = "00000000000000000042"
                        var out: [UInt8] = []
                        for range in ranges {
                            let part = "\r\n--\(boundary)\r\nContent-Type: application/octet-stream\r\n"
                                + "Content-Range: bytes \(range.lowerBound)-\(range.upperBound - 1)/\(file.count)"
                                + "\r\n\r\n"
                            out += Array(part.utf8)
                            out += file[range]
                        }
                        out += Array("\r\n--\(boundary)--\r\n".utf8)
                        reply = out
                        replyHeaders.append(("Content-Type", "multipart/byteranges; boundary=\(boundary)"))
                    case .multiRange501:
                        try head(HTTPResponseHead(status: 501, headers: [("Content-Length", "0")]))
                        return
                    case .firstRangeOnly:
                        status = 206
                        reply = Array(file[ranges[0]])
                        replyHeaders.append(("Content-Range",
                            "bytes \(ranges[0].lowerBound)-\(ranges[0].upperBound - 1)/\(file.count)"))
                    default:
                        break
                    }
                }
            }
        }
        if corrupt && !reply.isEmpty { reply[reply.count / 2] ^= 0x55 }
        replyHeaders.append(("Content-Length", "\(reply.count)"))
        try head(HTTPResponseHead(status: status, headers: replyHeaders))
        if truncate {
            try send(Array(reply.prefix(reply.count / 2)), body)
            throw TransportError(.connection, "connection reset by peer mid-body")
        }
        try send(reply, body)
    }

    private func send(_ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        // Chunks of 16 KiB, as a network would deliver them.
        var offset = 0
        while offset < bytes.count {
            let end = min(offset + 16384, bytes.count)
            try bytes[offset..<end].withUnsafeBytes { try body($0) }
            state.withLock { $0.bytesSent += end - offset }
            offset = end
        }
    }
}
