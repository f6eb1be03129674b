import Foundation
import NIOCore
import NIOHTTP1
import SliceSync

/// Answers the requests of one connection on its event loop: small replies in one write, large bodies
/// read chunk by chunk as the client takes them (at most one chunk waits per connection).
///
/// Serving runs on the event loop rather than in a task per request: a reply is planned from a few
/// system calls and page-cache reads, as nginx does, and skipping a task hop per request is what lets a
/// two-core machine serve small ranges at a useful rate.
final class FileServingHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// Large bodies are read and sent in chunks of this size.
    static let chunkSize = 256 * 1024

    private let replies: FileReplies
    private let accessLog: Bool
    /// The change feed this server offers, if any.
    private let feed: ChangeFeed?
    /// While this connection (or stream) listens to the feed: its token and the heartbeat.
    private var listening: (token: Int, heartbeat: RepeatedTask)?
    private var request: HTTPRequestHead?
    private var stream: Stream?
    /// A reply is being written (its `.end` not yet sent).
    private var responding = false
    /// Shutting down: close once the current reply is done, take no further requests.
    private var closing = false
    private var context: ChannelHandlerContext?
    private var date = CachedDate()

    /// The rest of a large body.
    private struct Stream {
        var file: SystemFile
        var segments: [BodySegment]
        var index = 0
        var offset: Int?
        var keepAlive: Bool
    }

    /// One HTTP/2 stream rather than a connection: no connection headers, and the stream ends with
    /// its reply.
    private let multiplexed: Bool

    init(replies: FileReplies, accessLog: Bool, multiplexed: Bool = false, feed: ChangeFeed? = nil) {
        self.replies = replies
        self.accessLog = accessLog
        self.multiplexed = multiplexed
        self.feed = feed
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        stream = nil
        stopListening()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
        case .body:
            break
        case .end:
            guard let head = request, !closing else { return }
            request = nil
            respond(to: head, context: context)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { pump(context: context) }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Idle keep-alive connections are closed; a long reply to a slow reader is not idle.
        if event is IdleStateHandler.IdleStateEvent {
            if !responding && request == nil { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        stream = nil
        stopListening()
        context.fireChannelInactive()
    }

    /// Finishes the reply in progress, then closes; closes at once when there is none, or when it is
    /// the change feed, which has no end of its own.
    func shutDownGracefully() {
        closing = true
        if listening != nil, let context {
            stopListening()
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
            return
        }
        if !responding { context?.close(promise: nil) }
    }

    /// Answers a request for the change feed: the current event at once, then each new one as the
    /// manifest is rewritten, and a comment every 15 s so that idle proxies keep the stream open.
    private func listen(to feed: ChangeFeed, head: HTTPRequestHead, context: ChannelHandlerContext) {
        var headers = ChangeFeed.headers
        headers.add(name: "Date", value: date.now())
        headers.add(name: "Server", value: "syncserver")
        responding = true
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers))),
            promise: nil)
        let loop = context.eventLoop
        let bound = NIOLoopBound(self, eventLoop: loop)
        let (token, current) = feed.subscribe { id in
            loop.execute { bound.value.send(ChangeFeed.event(id)) }
        }
        let heartbeat = loop.scheduleRepeatedTask(initialDelay: .seconds(15), delay: .seconds(15)) { _ in
            bound.value.send(": keep-alive\n\n")
        }
        listening = (token, heartbeat)
        send(ChangeFeed.event(current))
    }

    private func send(_ text: String) {
        guard let context, listening != nil else { return }
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: text)))),
            promise: nil)
    }

    private func stopListening() {
        guard let (token, heartbeat) = listening else { return }
        listening = nil
        heartbeat.cancel()
        feed?.unsubscribe(token)
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        if let feed, head.method == .GET, head.uri.prefix(while: { $0 != "?" }) == ChangeFeed.path {
            listen(to: feed, head: head, context: context)
            return
        }
        var reply = replies.reply(to: head, allocator: context.channel.allocator)
        let keepAlive = multiplexed || (head.isKeepAlive && !reply.closesConnection && !closing)
        reply.headers.add(name: "Date", value: date.now())
        reply.headers.add(name: "Server", value: "syncserver")
        if multiplexed {
            reply.headers.remove(name: "Connection")
        } else if !keepAlive {
            reply.headers.replaceOrAdd(name: "Connection", value: "close")
        } else if head.version.minor == 0 {
            reply.headers.add(name: "Connection", value: "keep-alive")
        }
        if accessLog {
            let peer = context.channel.remoteAddress?.ipAddress ?? "-"
            let length = reply.headers.first(name: "Content-Length") ?? "-"
            AccessLog.write("\(peer) - - [\(date.now())] \"\(head.method.rawValue) \(head.uri) " +
                "HTTP/\(head.version.major).\(head.version.minor)\" \(reply.status.code) \(length)\n")
        }
        responding = true
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: reply.status,
            headers: reply.headers))), promise: nil)
        switch reply.body {
        case .none:
            finish(context: context, keepAlive: keepAlive)
        case .buffer(let buffer):
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
            finish(context: context, keepAlive: keepAlive)
        case .file(let file, let segments):
            stream = Stream(file: file, segments: segments, keepAlive: keepAlive)
            pump(context: context)
        }
    }

    /// Writes chunks of the body while the channel takes them; resumes on writability.
    ///
    /// When the file turns out shorter than planned, the connection is closed before the promised
    /// length: the client sees a truncated reply, never bytes that are not the file's.
    private func pump(context: ChannelHandlerContext) {
        while var current = stream {
            guard current.index < current.segments.count else {
                stream = nil
                finish(context: context, keepAlive: current.keepAlive)
                return
            }
            guard context.channel.isWritable else { break }
            switch current.segments[current.index] {
            case .bytes(let bytes):
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: bytes)))),
                    promise: nil)
                current.index += 1
            case .file(let range):
                let start = current.offset ?? range.lowerBound
                let chunk = start..<min(range.upperBound, start + Self.chunkSize)
                var buffer = context.channel.allocator.buffer(capacity: chunk.count)
                guard FileReplies.read(chunk, from: current.file, into: &buffer) else {
                    stream = nil
                    context.close(promise: nil)
                    return
                }
                context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
                if chunk.upperBound == range.upperBound {
                    current.index += 1
                    current.offset = nil
                } else {
                    current.offset = chunk.upperBound
                }
            }
            stream = current
        }
        context.flush()
    }

    private func finish(context: ChannelHandlerContext, keepAlive: Bool) {
        responding = false
        guard keepAlive && !closing else {
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
            return
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}

/// The `Date` header value, formatted at most once per second.
struct CachedDate {
    private var second = -1
    private var text = ""

    /// The current time as an IMF-fixdate.
    mutating func now() -> String {
        let current = Int(Date().timeIntervalSince1970)
        if current != second {
            second = current
            text = HTTPDate.format(current)
        }
        return text
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
