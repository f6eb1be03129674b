import Foundation
import NIOCore
import NIOHTTP1
import SliceSync

/// One reply, decided before anything is written: status, headers and where the body comes from.
struct PlannedReply {
    /// Where the body's bytes come from.
    enum Body {
        /// No body (HEAD, 304, or an empty file).
        case none
        /// Bytes already in memory.
        case buffer(ByteBuffer)
        /// Parts of an open file (and multipart delimiters), streamed as the client takes them.
        case file(SystemFile, [BodySegment])
    }

    var status: HTTPResponseStatus
    /// Header fields in sending order; the connection adds `Date`, `Server` and `Connection`.
    var headers: [(name: String, value: String)]
    var body: Body
    /// The connection ends after this reply (an unsupported method, say).
    var closesConnection = false
}

/// The file the previous request of a connection named, kept open with what its replies say about
/// it: a client fetching many ranges of one file (every slicesync update does) then costs one `stat` of
/// the path per request instead of an open, an `fstat` and a close, and no path decoding.
///
/// It is used only while the path still names the same file with the same stamp (device, inode,
/// size, times, mode): a file replaced, renamed away, changed or moved out of the tree since is
/// resolved afresh, beneath the root, as any other request.
struct RecentFile {
    fileprivate let target: String
    fileprivate let path: RequestPath
    fileprivate let file: SystemFile
    fileprivate let stamp: FileStamp
    fileprivate let representation: FileRepresentation
}

/// Decides the reply to a GET or HEAD for the files and directories of a published tree, with RFC 9110
/// semantics; the I/O-free parts live in the core library's `Serving/`.
struct FileReplies: Sendable {
    /// The tree being served.
    let tree: ServedTree
    /// The most parts in one multipart reply.
    var maxRanges = RangeSelection.defaultMaxRanges
    /// The memory shared by the large bodies being sent.
    let budget = StreamBudget()
    /// Bodies up to this size are read at once and sent in a single write.
    static let smallBodyLimit = 64 * 1024

    /// The reply to one request.
    func reply(to head: RequestHead, allocator: ByteBufferAllocator) -> PlannedReply {
        var none: RecentFile?
        return reply(to: head, allocator: allocator, recent: &none)
    }

    /// The reply to one request of a connection whose previous request named `recent`; on return,
    /// `recent` is the file this one named, when it may be kept.
    func reply(to head: RequestHead, allocator: ByteBufferAllocator, recent: inout RecentFile?) -> PlannedReply {
        guard head.method == "GET" || head.method == "HEAD" else {
            var reply = Self.plain(.methodNotAllowed, "only GET and HEAD are served\n", allocator: allocator)
            reply.headers.append(("Allow", "GET, HEAD"))
            reply.closesConnection = true
            return reply
        }
        let isHead = head.method == "HEAD"
        if let known = recent, known.target == head.target {
            if let now = try? FileSystem.stamp(known.file.path), now == known.stamp {
                return serve(known.file, representation: known.representation, path: known.path, head: head,
                    isHead: isHead, allocator: allocator)
            }
            recent = nil
        }
        let path: RequestPath
        do {
            path = try RequestPath.parse(head.target)
        } catch {
            return Self.plain(.badRequest, "bad request path\n", isHead: isHead, allocator: allocator)
        }
        switch tree.resolve(path) {
        case .notFound:
            return Self.plain(.notFound, "not found\n", isHead: isHead, allocator: allocator)
        case .directory(let directory):
            guard path.hasTrailingSlash || path.segments.isEmpty else {
                var reply = Self.plain(.movedPermanently, "moved\n", isHead: isHead, allocator: allocator)
                reply.headers.append(("Location",
                    RequestPath.encode("/" + path.relativePath + "/") + (path.query.map { "?" + $0 } ?? "")))
                return reply
            }
            return listing(directory: directory, path: path, head: head, isHead: isHead, allocator: allocator)
        case .file(let file, let stamp):
            let representation = Self.representation(stamp, path)
            // A signature's currency depends on another file, so signatures are always resolved afresh.
            if !path.segments.contains(TreeNaming.signatureDirectory) {
                recent = RecentFile(target: head.target, path: path, file: file, stamp: stamp,
                    representation: representation)
            }
            return serve(file, representation: representation, path: path, head: head, isHead: isHead,
                allocator: allocator)
        }
    }

    private static func representation(_ stamp: FileStamp, _ path: RequestPath) -> FileRepresentation {
        FileRepresentation(stamp: stamp, contentType: MediaTypes.forName(path.segments.last ?? ""))
    }

    private func listing(directory: String, path: RequestPath, head: RequestHead, isHead: Bool,
        allocator: ByteBufferAllocator) -> PlannedReply {
        guard let listing = try? DirectoryListing.read(tree: tree, directory: directory,
            relativePath: path.relativePath) else {
            return Self.plain(.notFound, "not found\n", isHead: isHead, allocator: allocator)
        }
        let wantsJSON = path.query?.split(separator: "&").contains("format=json") == true
            || head.values("Accept").contains { $0.contains("application/json") }
        let body = wantsJSON ? listing.json() : listing.html()
        let headers = [
            ("Content-Type", wantsJSON ? "application/json" : "text/html; charset=utf-8"),
            ("Vary", "Accept"),
            ("Cache-Control", "no-cache"),
            ("Content-Length", String(body.count)),
        ]
        return PlannedReply(status: .ok, headers: headers,
            body: isHead ? .none : .buffer(allocator.buffer(bytes: body)))
    }

    private func serve(_ opened: SystemFile, representation known: FileRepresentation, path: RequestPath,
        head: RequestHead, isHead: Bool, allocator: ByteBufferAllocator) -> PlannedReply {
        let preconditions = RequestPreconditions(
            ifMatch: head.joined("If-Match"),
            ifNoneMatch: head.joined("If-None-Match"),
            ifModifiedSince: head.first("If-Modified-Since"),
            ifUnmodifiedSince: head.first("If-Unmodified-Since"),
            ifRange: head.first("If-Range"),
            range: head.joined("Range")
        )
        var file = opened
        var representation = known
        // A file that shrinks between planning and reading is opened and planned again.
        for attempt in 0..<3 {
            if attempt > 0 {
                guard case .file(let again, let againStamp) = tree.resolve(path) else {
                    return Self.plain(.notFound, "not found\n", isHead: isHead, allocator: allocator)
                }
                file = again
                representation = Self.representation(againStamp, path)
            }
            let plan = FileResponsePlan.plan(file: representation, preconditions: preconditions, isHead: isHead,
                maxRanges: maxRanges)
            let headers = plan.headers
            let status = HTTPResponseStatus(statusCode: plan.status)
            let length = plan.body.reduce(0) { $0 + $1.count }
            if length == 0 {
                return PlannedReply(status: status, headers: headers, body: .none)
            }
            if length <= Self.smallBodyLimit {
                guard let buffer = Self.read(plan.body, from: file, total: length,
                    allocator: allocator) else { continue }
                return PlannedReply(status: status, headers: headers, body: .buffer(buffer))
            }
            return PlannedReply(status: status, headers: headers, body: .file(file, plan.body))
        }
        return Self.plain(.serviceUnavailable, "the file is changing; try again\n", isHead: isHead,
            allocator: allocator)
    }

    /// Reads a small body in one go; nil when the file turned out shorter than planned.
    private static func read(_ segments: [BodySegment], from file: SystemFile, total: Int,
        allocator: ByteBufferAllocator) -> ByteBuffer? {
        var buffer = allocator.buffer(capacity: total)
        for segment in segments {
            switch segment {
            case .bytes(let bytes):
                buffer.writeBytes(bytes)
            case .file(let range):
                guard read(range, from: file, into: &buffer) else { return nil }
            }
        }
        return buffer
    }

    /// Appends the bytes of `range` to `buffer`; false when the file ended first.
    static func read(_ range: Range<Int>, from file: SystemFile, into buffer: inout ByteBuffer) -> Bool {
        let count = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: range.count) { pointer in
            (try? file.read(into: pointer.baseAddress!, count: range.count, at: range.lowerBound)) ?? 0
        }
        return count == range.count
    }

    /// A short text reply.
    static func plain(_ status: HTTPResponseStatus, _ text: String, isHead: Bool = false,
        allocator: ByteBufferAllocator) -> PlannedReply {
        let headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", String(text.utf8.count))]
        return PlannedReply(status: status, headers: headers,
            body: isHead ? .none : .buffer(allocator.buffer(string: text)))
    }
}
