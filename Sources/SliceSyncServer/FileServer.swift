import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import SliceSync

/// The request context of the file server: what Hummingbird needs, plus the peer for the access log.
public struct FileServerContext: RequestContext {
    /// Hummingbird's per-request storage.
    public var coreContext: CoreRequestContextStorage
    /// The client's address, as text.
    public let peer: String

    /// Creates the context for a request arriving on a channel.
    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        peer = source.channel.remoteAddress?.ipAddress ?? "-"
    }
}

/// Answers GET and HEAD for the files and directories of a published tree (RFC 9110 semantics).
public struct FileServer: HTTPResponder {
    /// The context type this responder works with.
    public typealias Context = FileServerContext

    /// The tree being served.
    public let tree: ServedTree
    /// The most parts in one multipart reply.
    public var maxRanges = RangeSelection.defaultMaxRanges
    /// Whether to write one access-log line per request to standard output.
    public var accessLog = false
    /// Bodies up to this size are read at once and sent in a single write.
    static let smallBodyLimit = 64 * 1024
    /// Larger bodies are read and sent in chunks of this size.
    static let chunkSize = 256 * 1024

    /// Creates a responder for `tree`.
    public init(tree: ServedTree, accessLog: Bool = false) {
        self.tree = tree
        self.accessLog = accessLog
    }

    /// Answers one request.
    public func respond(to request: Request, context: FileServerContext) async throws -> Response {
        let response = await answer(request, context: context)
        if accessLog {
            let length = response.headers[.contentLength] ?? "-"
            let line = "\(context.peer) - - [\(HTTPDate.format(Int(Date().timeIntervalSince1970)))] \"\(request.method) \(request.head.path ?? "") HTTP/1.1\" \(response.status.code) \(length)\n"
            AccessLog.write(line)
        }
        return response
    }

    private func answer(_ request: Request, context: FileServerContext) async -> Response {
        guard request.method == .get || request.method == .head else {
            var headers = HTTPFields()
            headers[.allow] = "GET, HEAD"
            headers[.connection] = "close"
            return Self.plain(.methodNotAllowed, "only GET and HEAD are served\n", headers: headers)
        }
        let path: RequestPath
        do {
            path = try RequestPath.parse(request.head.path ?? "")
        } catch {
            return Self.plain(.badRequest, "bad request path\n")
        }
        let isHead = request.method == .head
        switch tree.resolve(path) {
        case .notFound:
            return Self.plain(.notFound, "not found\n", isHead: isHead)
        case .directory(let directory):
            guard path.hasTrailingSlash || path.segments.isEmpty else {
                var headers = HTTPFields()
                headers[.location] = RequestPath.encode("/" + path.relativePath + "/") + (path.query.map { "?" + $0 } ?? "")
                return Self.plain(.movedPermanently, "moved\n", headers: headers, isHead: isHead)
            }
            return listing(directory: directory, path: path, request: request, isHead: isHead)
        case .file(let file, let stamp):
            return serve(file, stamp: stamp, path: path, request: request, isHead: isHead, context: context)
        }
    }

    private func listing(directory: String, path: RequestPath, request: Request, isHead: Bool) -> Response {
        guard let listing = try? DirectoryListing.read(tree: tree, directory: directory, relativePath: path.relativePath) else {
            return Self.plain(.notFound, "not found\n", isHead: isHead)
        }
        let wantsJSON = path.query?.split(separator: "&").contains("format=json") == true
            || (request.headers[.accept]?.contains("application/json") ?? false)
        var headers = HTTPFields()
        headers[.contentType] = wantsJSON ? "application/json" : "text/html; charset=utf-8"
        headers[.vary] = "Accept"
        headers[.cacheControl] = "no-cache"
        let body = wantsJSON ? listing.json() : listing.html()
        headers[.contentLength] = String(body.count)
        return Response(status: .ok, headers: headers, body: isHead ? .init() : .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    private func serve(_ opened: SystemFile, stamp openedStamp: FileStamp, path: RequestPath, request: Request, isHead: Bool, context: FileServerContext) -> Response {
        let preconditions = RequestPreconditions(
            ifMatch: request.headers.joined(.ifMatch),
            ifNoneMatch: request.headers.joined(.ifNoneMatch),
            ifModifiedSince: request.headers[.ifModifiedSince],
            ifUnmodifiedSince: request.headers[.ifUnmodifiedSince],
            ifRange: request.headers[.ifRange],
            range: request.headers.joined(.range)
        )
        var file = opened
        var stamp = openedStamp
        // A file that shrinks between planning and reading is opened and planned again.
        for attempt in 0..<3 {
            if attempt > 0 {
                guard case .file(let again, let againStamp) = tree.resolve(path) else { return Self.plain(.notFound, "not found\n", isHead: isHead) }
                file = again
                stamp = againStamp
            }
            let representation = FileRepresentation(stamp: stamp, contentType: MediaTypes.forName(path.segments.last ?? ""))
            let plan = FileResponsePlan.plan(file: representation, preconditions: preconditions, isHead: isHead, maxRanges: maxRanges)
            var headers = HTTPFields()
            headers.reserveCapacity(plan.headers.count + 2)
            for (name, value) in plan.headers {
                if let field = Self.fieldNames[name] ?? HTTPField.Name(name) { headers.append(HTTPField(name: field, value: value)) }
            }
            let status = HTTPResponse.Status(code: plan.status)
            let length = plan.body.reduce(0) { $0 + $1.count }
            if length == 0 {
                return Response(status: status, headers: headers, body: .init())
            }
            if length <= Self.smallBodyLimit {
                guard let buffer = Self.read(plan.body, from: file, total: length) else { continue }
                return Response(status: status, headers: headers, body: .init(byteBuffer: buffer))
            }
            let segments = plan.body
            let logger = context.logger
            return Response(status: status, headers: headers, body: .init(contentLength: length) { [file] writer in
                try await Self.stream(segments, from: file, to: &writer, logger: logger)
            })
        }
        return Self.plain(.serviceUnavailable, "the file is changing; try again\n", isHead: isHead)
    }

    /// The header names a file reply uses, made once rather than parsed per request.
    private static let fieldNames: [String: HTTPField.Name] = [
        "ETag": .eTag, "Last-Modified": .lastModified, "Accept-Ranges": .acceptRanges, "Content-Type": .contentType,
        "Content-Range": .contentRange, "Content-Length": .contentLength,
    ]

    /// Reads a small body in one go; nil when the file turned out shorter than planned.
    private static func read(_ segments: [BodySegment], from file: SystemFile, total: Int) -> ByteBuffer? {
        var buffer = ByteBufferAllocator().buffer(capacity: total)
        for segment in segments {
            switch segment {
            case .bytes(let bytes):
                buffer.writeBytes(bytes)
            case .file(let range):
                let complete = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: range.count) { pointer in
                    (try? file.read(into: pointer.baseAddress!, count: range.count, at: range.lowerBound)) ?? 0
                }
                guard complete == range.count else { return nil }
            }
        }
        return buffer
    }

    /// Streams a large body chunk by chunk; reads run on NIO's blocking-I/O pool.
    ///
    /// When the file shrinks under us the stream throws, which closes the connection before the
    /// promised length: the client sees a truncated reply, never bytes that are not the file's.
    private static func stream(_ segments: [BodySegment], from file: SystemFile, to writer: inout any ResponseBodyWriter, logger: Logger) async throws {
        let allocator = ByteBufferAllocator()
        for segment in segments {
            switch segment {
            case .bytes(let bytes):
                try await writer.write(ByteBuffer(bytes: bytes))
            case .file(let range):
                var offset = range.lowerBound
                while offset < range.upperBound {
                    let chunk = offset..<min(range.upperBound, offset + chunkSize)
                    let buffer = try await NIOThreadPool.singleton.runIfActive { () throws -> ByteBuffer in
                        var buffer = allocator.buffer(capacity: chunk.count)
                        let count = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: chunk.count) { pointer in
                            try file.read(into: pointer.baseAddress!, count: chunk.count, at: chunk.lowerBound)
                        }
                        guard count == chunk.count else {
                            throw FileSystemError(.changedWhileReading, path: file.path, message: "\(file.path) shrank while it was being sent")
                        }
                        return buffer
                    }
                    try await writer.write(buffer)
                    offset = chunk.upperBound
                }
            }
        }
        try await writer.finish(nil)
        _ = file // keeps the descriptor open until the last byte is sent
    }

    private static func plain(_ status: HTTPResponse.Status, _ text: String, headers: HTTPFields = HTTPFields(), isHead: Bool = false) -> Response {
        var headers = headers
        headers[.contentType] = "text/plain; charset=utf-8"
        headers[.contentLength] = String(text.utf8.count)
        return Response(status: status, headers: headers, body: isHead ? .init() : .init(byteBuffer: ByteBuffer(string: text)))
    }
}

extension HTTPFields {
    /// All values of a repeated field joined with commas, as RFC 9110 §5.3 allows; nil when absent.
    fileprivate func joined(_ name: HTTPField.Name) -> String? {
        let values = self[values: name]
        return values.isEmpty ? nil : values.joined(separator: ", ")
    }
}

/// Serialises access-log lines on standard output.
enum AccessLog {
    private static let lock = NSLock()

    static func write(_ line: String) {
        lock.lock()
        defer { lock.unlock() }
        FileHandle.standardOutput.write(Data(line.utf8))
    }
}
