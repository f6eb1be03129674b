import Logging
import NIOCore
import NIOHTTP1
import SliceSync

/// One HTTP/1.x connection, from request bytes to reply bytes: ``RequestFramer`` finds and parses each
/// request head (and answers 414, 431 and 408 for heads over the limits or too slow), ``FileReplies``
/// plans the reply, and the head is written straight into one buffer. Small replies leave in one
/// flush; large bodies are read chunk by chunk as the client takes them (one chunk waits at most).
///
/// Why not NIO's HTTP/1 codec: with 4 KiB ranges on a two-core machine its decoder, pipelining
/// handler, error handler and encoder took about 15 % of the server's time per request (perf, 40,000
/// requests/s), and the head had to be scanned for the limits anyway. Serving runs on the event loop
/// rather than in a task per request for the same reason: a reply is planned from a few system calls
/// and page-cache reads, as nginx does.
///
/// Pipelined requests are answered in order, and only while the client takes the replies: bytes that
/// arrive while a large body is being sent, or while the replies already written wait for the client
/// to read them, stay unparsed, and reading stops until the client catches up. A client that pipelines
/// requests and never reads the replies thus makes the server hold one read's worth of requests and a
/// socket's worth of replies, not a reply for everything it sends.
final class HTTP1Connection: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let replies: FileReplies
    private let accessLog: Bool
    private let feed: ChangeFeed?
    private let limits: ConnectionLimits
    private let logger: Logger
    private var framer: RequestFramer
    /// Bytes received and not yet framed.
    private var pending: ByteBuffer?
    /// A large body being sent, and whether the connection stays open after it.
    private var stream: (body: BodyStream, keepAlive: Bool)?
    /// While this connection listens to the change feed: its subscription.
    private var listening: FeedListening?
    /// While this connection is the change feed: whether events go out as chunks (HTTP/1.1) or until
    /// the connection closes (HTTP/1.0).
    private var feedChunked: Bool?
    /// A streamed body or the feed is being written.
    private var responding: Bool { stream != nil || feedChunked != nil }
    /// No further request is answered: the last reply said `Connection: close`, or a stop was asked for.
    private var ending = false
    /// A read was asked for while requests were waiting for the client to take replies.
    private var readHeld = false
    private var headTimer: Scheduled<Void>?
    private var headStarted: NIODeadline?
    private var context: ChannelHandlerContext?
    private var date = CachedDate()
    /// The file the previous request named.
    private var recent: RecentFile?

    init(replies: FileReplies, accessLog: Bool, feed: ChangeFeed?, limits: ConnectionLimits, logger: Logger) {
        self.replies = replies
        self.accessLog = accessLog
        self.feed = feed
        self.limits = limits
        self.logger = logger
        framer = RequestFramer(limits: .init(maxRequestLineBytes: limits.maxRequestLineBytes,
            maxHeaderBytes: limits.maxHeaderBytes))
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        tearDown()
    }

    func channelInactive(context: ChannelHandlerContext) {
        tearDown()
        context.fireChannelInactive()
    }

    private func tearDown() {
        stream = nil
        recent = nil
        pending = nil
        headTimer?.cancel()
        headTimer = nil
        stopListening()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if ending { return }
        if pending == nil {
            pending = buffer
        } else {
            pending?.writeBuffer(&buffer)
        }
        answerPending(context: context)
    }

    func read(context: ChannelHandlerContext) {
        if let pending, pending.readableBytes > 0, responding || !context.channel.isWritable {
            readHeld = true
            return
        }
        context.read()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            if stream != nil {
                pump(context: context)
            } else {
                answerPending(context: context)
            }
        }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Idle keep-alive connections are closed; a long reply to a slow reader is not idle, and a
        // head in progress has its own deadline.
        if event is IdleStateHandler.IdleStateEvent {
            if !responding && !framer.inHead && pending == nil { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// Finishes the reply in progress, then closes; closes at once when there is none, or when it is
    /// the change feed, which has no end of its own.
    func shutDownGracefully() {
        ending = true
        guard let context else { return }
        if let chunked = feedChunked {
            stopListening()
            closeAfterWrites(context: context, last: chunked ? Self.lastChunk : nil)
            return
        }
        if !responding { context.close(promise: nil) }
    }

    /// Frames and answers the requests that have arrived, in order, until one needs the connection
    /// (a streamed body) or ends it, or the client stops taking replies; then reads again if a read
    /// was held back and nothing waits any more.
    private func answerPending(context: ChannelHandlerContext) {
        while !responding && !ending && context.channel.isWritable, var buffer = pending {
            pending = nil
            let (consumed, event) = buffer.withUnsafeReadableBytes { framer.consume($0) }
            buffer.moveReaderIndex(forwardBy: consumed)
            if buffer.readableBytes > 0 { pending = buffer }
            watchHeadDeadline(context: context)
            switch event {
            case nil:
                break
            case .head(let head):
                respond(to: head, context: context)
            case .reject(let rejection):
                reject(rejection, context: context)
            }
        }
        context.flush()
        if readHeld && !responding && context.channel.isWritable {
            readHeld = false
            context.read()
        }
    }

    private func respond(to head: RequestHead, context: ChannelHandlerContext) {
        if let feed, head.method == "GET", head.target.prefix(while: { $0 != "?" }) == ChangeFeed.path {
            listen(to: feed, head: head, context: context)
            return
        }
        let reply = replies.reply(to: head, allocator: context.channel.allocator, recent: &recent)
        let keepAlive = head.isKeepAlive && !reply.closesConnection && !head.hasTransferEncoding && !ending
        let buffer = replyHead(reply.status, reply.headers, minorVersion: head.minorVersion, keepAlive: keepAlive,
            allocator: context.channel.allocator)
        if accessLog {
            AccessLog.write(peer: context.channel.remoteAddress?.ipAddress ?? "-", date: date.now(), head: head,
                version: "HTTP/1.\(head.minorVersion)", status: Int(reply.status.code), headers: reply.headers)
        }
        context.write(wrapOutboundOut(buffer), promise: nil)
        switch reply.body {
        case .none:
            finish(context: context, keepAlive: keepAlive)
        case .buffer(let body):
            context.write(wrapOutboundOut(body), promise: nil)
            finish(context: context, keepAlive: keepAlive)
        case .file(let file, let segments):
            stream = (BodyStream(file: file, segments: segments, budget: replies.budget), keepAlive)
            pump(context: context)
        }
    }

    /// The status line and header fields, with `Date`, `Server` and what the connection does next.
    private func replyHead(_ status: HTTPResponseStatus, _ headers: [(name: String, value: String)],
        minorVersion: Int, keepAlive: Bool, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 384)
        buffer.writeStaticString(minorVersion == 0 ? "HTTP/1.0 " : "HTTP/1.1 ")
        buffer.writeString(String(status.code))
        buffer.writeStaticString(" ")
        buffer.writeString(status.reasonPhrase)
        buffer.writeStaticString("\r\n")
        for (name, value) in headers {
            buffer.writeString(name)
            buffer.writeStaticString(": ")
            buffer.writeString(value)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("Date: ")
        buffer.writeString(date.now())
        buffer.writeStaticString("\r\nServer: syncserver\r\n")
        if !keepAlive {
            buffer.writeStaticString("Connection: close\r\n")
        } else if minorVersion == 0 {
            buffer.writeStaticString("Connection: keep-alive\r\n")
        }
        buffer.writeStaticString("\r\n")
        return buffer
    }

    /// Writes chunks of the body while the channel takes them; resumes on writability.
    private func pump(context: ChannelHandlerContext) {
        guard var current = stream else { return }
        stream = nil
        while context.channel.isWritable {
            switch current.body.next(allocator: context.channel.allocator) {
            case .chunk(let buffer):
                context.write(wrapOutboundOut(buffer), promise: nil)
            case .fileShrank:
                context.close(promise: nil)
                return
            case .end:
                finish(context: context, keepAlive: current.keepAlive)
                answerPending(context: context)
                return
            }
        }
        stream = current
        context.flush()
    }

    private func finish(context: ChannelHandlerContext, keepAlive: Bool) {
        if !keepAlive || ending {
            ending = true
            closeAfterWrites(context: context, last: nil)
        }
    }

    /// Flushes what was written (and `last`), then closes.
    private func closeAfterWrites(context: ChannelHandlerContext, last: StaticString?) {
        var buffer = context.channel.allocator.buffer(capacity: 8)
        if let last { buffer.writeStaticString(last) }
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
    }

    private func reject(_ rejection: RequestHead.Rejection, context: ChannelHandlerContext) {
        ending = true
        headTimer?.cancel()
        headTimer = nil
        logger.debug("rejecting a request: \(rejection.status) (\(rejection.reason))")
        var buffer = context.channel.allocator.buffer(capacity: 96)
        buffer.writeString("HTTP/1.1 \(rejection.status)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        context.write(wrapOutboundOut(buffer), promise: nil)
        closeAfterWrites(context: context, last: nil)
    }

    // MARK: The head deadline

    /// One timer serves many requests of a keep-alive connection: it is armed when a head starts and
    /// none is pending, and when it fires for a head that began later, it waits for that head's turn.
    private func watchHeadDeadline(context: ChannelHandlerContext) {
        guard framer.inHead else {
            headStarted = nil
            return
        }
        if headStarted == nil {
            headStarted = .now()
            if headTimer == nil { armHeadTimer(context: context, in: limits.headerTimeout) }
        }
    }

    private func armHeadTimer(context: ChannelHandlerContext, in delay: TimeAmount) {
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        headTimer = context.eventLoop.scheduleTask(in: delay) {
            let (handler, context) = bound.value
            handler.headTimer = nil
            guard let started = handler.headStarted, !handler.ending else { return }
            let elapsed = NIODeadline.now() - started
            if elapsed >= handler.limits.headerTimeout {
                handler.reject(.init(status: "408 Request Timeout", reason: "the head took too long"),
                    context: context)
            } else {
                handler.armHeadTimer(context: context, in: handler.limits.headerTimeout - elapsed)
            }
        }
    }

    // MARK: The change feed

    private static let lastChunk: StaticString = "0\r\n\r\n"

    /// Answers a request for the change feed: chunked on HTTP/1.1, until the connection closes on 1.0.
    private func listen(to feed: ChangeFeed, head: RequestHead, context: ChannelHandlerContext) {
        let chunked = head.minorVersion >= 1
        var headers = ChangeFeed.headers
        if chunked { headers.append(("Transfer-Encoding", "chunked")) }
        if !chunked { ending = true }
        context.write(wrapOutboundOut(replyHead(.ok, headers, minorVersion: head.minorVersion, keepAlive: chunked,
            allocator: context.channel.allocator)), promise: nil)
        feedChunked = chunked
        listening = feed.listen(self, on: context.eventLoop) { $0.sendEvent($1) }
    }

    private func sendEvent(_ text: String) {
        guard let context, let chunked = feedChunked else { return }
        var buffer = context.channel.allocator.buffer(capacity: text.utf8.count + 16)
        if chunked { buffer.writeString(String(text.utf8.count, radix: 16) + "\r\n") }
        buffer.writeString(text)
        if chunked { buffer.writeStaticString("\r\n") }
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    private func stopListening() {
        feedChunked = nil
        guard let subscription = listening else { return }
        listening = nil
        subscription.stop(feed)
    }
}
