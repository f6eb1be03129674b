import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOSSL
import ServiceLifecycle

/// One connection: the ``ConnectionGuard`` (connection cap, stalled readers), then HTTP/1.x bytes to
/// bytes in ``HTTP1Connection``; or, with TLS, HTTP/2 when the client offers it by ALPN (each stream
/// gets its own ``HTTP2StreamHandler``) and HTTP/1.x otherwise. The connection's task only waits for it to
/// close (or asks it to, on shutdown).
struct FileServingChannel: ServerChildChannel {
    /// The set-up connection and what stops it gracefully.
    struct Value: ServerChildChannelValue {
        let channel: any Channel
        let control: NIOLoopBound<ConnectionControl>
    }

    let replies: FileReplies
    let accessLog: Bool
    let limits: ConnectionLimits
    let counter: ConnectionCounter
    let tls: TLSContextHolder?
    /// The change feed, when the server keeps signatures (and so the manifest) current.
    var feed: ChangeFeed?

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let control = ConnectionControl()
            let operations = channel.pipeline.syncOperations
            try operations.addHandler(ConnectionGuard(limits: limits, counter: counter, logger: logger))
            guard let tls else {
                control.http1 = try addHTTP1(to: operations, logger: logger)
                return Value(channel: channel, control: NIOLoopBound(control, eventLoop: channel.eventLoop))
            }
            try operations.addHandler(NIOSSLServerHandler(context: tls.context))
            try operations.addHandler(HandshakeDeadline(timeout: limits.headerTimeout))
            let bound = NIOLoopBound(control, eventLoop: channel.eventLoop)
            let configured = channel.configureHTTP2SecureUpgrade(h2ChannelConfigurator: { channel in
                channel.eventLoop.makeCompletedFuture {
                    try addHTTP2(to: channel)
                    bound.value.http2 = true
                }
            }, http1ChannelConfigurator: { channel in
                channel.eventLoop.makeCompletedFuture {
                    bound.value.http1 = try addHTTP1(to: channel.pipeline.syncOperations, logger: logger)
                }
            })
            configured.whenFailure { _ in channel.close(promise: nil) }
            return Value(channel: channel, control: bound)
        }
    }

    /// The idle timeout and the HTTP/1.x handler.
    private func addHTTP1(to operations: ChannelPipeline.SynchronousOperations, logger: Logger) throws
    -> HTTP1Connection {
        try operations.addHandler(IdleStateHandler(readTimeout: limits.idleTimeout))
        let handler = HTTP1Connection(replies: replies, accessLog: accessLog, feed: feed, limits: limits,
            logger: logger)
        try operations.addHandler(handler)
        return handler
    }

    /// HTTP/2: each stream is translated to HTTP/1-style parts for its own file-serving handler.
    private func addHTTP2(to channel: any Channel) throws {
        var connection = NIOHTTP2Handler.ConnectionConfiguration()
        connection.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: 100),
            HTTP2Setting(parameter: .maxHeaderListSize, value: limits.maxHeaderBytes),
        ]
        let replies = self.replies
        let accessLog = self.accessLog
        let feed = self.feed
        _ = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
            mode: .server, connectionConfiguration: connection, streamConfiguration: .init()
        ) { stream in
            stream.eventLoop.makeCompletedFuture {
                let operations = stream.pipeline.syncOperations
                try operations.addHandler(HTTP2FramePayloadToHTTP1ServerCodec())
                try operations.addHandler(HTTP2StreamHandler(replies: replies, accessLog: accessLog, feed: feed))
            }
        }
        try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: limits.idleTimeout))
        try channel.pipeline.syncOperations.addHandler(IdleCloser())
    }

    func handle(value: Value, logger: Logger) async {
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                try? await value.channel.closeFuture.get()
            } onCancel: {
                value.channel.close(promise: nil)
            }
        } onGracefulShutdown: {
            value.channel.eventLoop.execute { value.control.value.shutDownGracefully(value.channel) }
        }
    }
}

/// What a connection speaks once it is set up, so that a graceful stop can ask it to finish.
final class ConnectionControl {
    /// The HTTP/1.1 handler, once the connection speaks HTTP/1.1.
    var http1: HTTP1Connection?
    /// Whether the connection speaks HTTP/2.
    var http2 = false

    /// HTTP/1.1: the reply in progress finishes, then the connection closes. HTTP/2: a GOAWAY, and the
    /// connection closes when its streams are done. A TLS handshake still under way is cut off.
    func shutDownGracefully(_ channel: any Channel) {
        if let http1 {
            http1.shutDownGracefully()
        } else if http2 {
            channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        } else {
            channel.close(promise: nil)
        }
    }
}

/// Closes an HTTP/2 connection on which nothing was read for the idle timeout (the streams of a long
/// download keep reading window updates, so they do not count as idle).
final class IdleCloser: ChannelInboundHandler {
    typealias InboundIn = NIOAny

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
