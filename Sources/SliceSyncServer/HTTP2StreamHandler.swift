import NIOCore
import NIOHTTP1
import SliceSync

/// Answers the one request of an HTTP/2 stream on its event loop (the stream arrives as HTTP/1-style
/// parts from NIO's HTTP/2 codec): a small reply in one write, a large body read chunk by chunk as the
/// client takes it, and the change feed for as long as the stream stays open.
final class HTTP2StreamHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let replies: FileReplies
    private let accessLog: Bool
    private let feed: ChangeFeed?
    private var listening: FeedListening?
    private var request: HTTPRequestHead?
    private var stream: BodyStream?
    private var context: ChannelHandlerContext?
    private var date = CachedDate()

    init(replies: FileReplies, accessLog: Bool, feed: ChangeFeed?) {
        self.replies = replies
        self.accessLog = accessLog
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

    func channelInactive(context: ChannelHandlerContext) {
        stream = nil
        stopListening()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
        case .body:
            break
        case .end:
            guard let head = request else { return }
            request = nil
            respond(to: RequestHead(method: head.method.rawValue, target: head.uri,
                fields: head.headers.map { ($0.name, $0.value) }), context: context)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { pump(context: context) }
        context.fireChannelWritabilityChanged()
    }

    private func respond(to head: RequestHead, context: ChannelHandlerContext) {
        if let feed, head.method == "GET", head.target.prefix(while: { $0 != "?" }) == ChangeFeed.path {
            context.write(wrapOutboundOut(.head(responseHead(.ok, ChangeFeed.headers))), promise: nil)
            listening = feed.listen(self, on: context.eventLoop) { $0.sendEvent($1) }
            return
        }
        let reply = replies.reply(to: head, allocator: context.channel.allocator)
        if accessLog {
            AccessLog.write(peer: context.channel.remoteAddress?.ipAddress ?? "-", date: date.now(), head: head,
                version: "HTTP/2.0", status: Int(reply.status.code), headers: reply.headers)
        }
        context.write(wrapOutboundOut(.head(responseHead(reply.status, reply.headers))), promise: nil)
        switch reply.body {
        case .none:
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        case .buffer(let buffer):
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        case .file(let file, let segments):
            stream = BodyStream(file: file, segments: segments, budget: replies.budget)
            pump(context: context)
        }
    }

    private func responseHead(_ status: HTTPResponseStatus, _ fields: [(name: String, value: String)])
    -> NIOHTTP1.HTTPResponseHead {
        var headers = HTTPHeaders(fields.map { ($0.name, $0.value) })
        headers.add(name: "Date", value: date.now())
        headers.add(name: "Server", value: "syncserver")
        return NIOHTTP1.HTTPResponseHead(version: .http2, status: status, headers: headers)
    }

    /// Writes chunks of the body while the stream takes them; resumes on writability.
    private func pump(context: ChannelHandlerContext) {
        guard var current = stream else { return }
        stream = nil
        while context.channel.isWritable {
            switch current.next(allocator: context.channel.allocator) {
            case .chunk(let buffer):
                context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
            case .fileShrank:
                context.close(promise: nil)
                return
            case .end:
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                return
            }
        }
        stream = current
        context.flush()
    }

    private func sendEvent(_ text: String) {
        guard let context else { return }
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: text)))),
            promise: nil)
    }

    private func stopListening() {
        guard let listening else { return }
        self.listening = nil
        listening.stop(feed)
    }
}
