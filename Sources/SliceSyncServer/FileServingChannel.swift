import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle

/// One HTTP/1.1 connection: the ``ConnectionGuard`` below NIO's HTTP codec, then the file-serving
/// handler; the connection's task only waits for it to close (or asks it to, on shutdown).
struct FileServingChannel: ServerChildChannel {
    /// The set-up connection and its handler.
    struct Value: ServerChildChannelValue {
        let channel: any Channel
        let handler: NIOLoopBound<FileServingHandler>
    }

    let replies: FileReplies
    let accessLog: Bool
    let limits: ConnectionLimits
    let counter: ConnectionCounter

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            var decoderLimits = NIOHTTPDecoderLimitConfiguration()
            // The guard enforces the real limits with proper status codes; these are only a backstop.
            decoderLimits.maxHeaderFieldSize = limits.maxHeaderBytes * 2
            decoderLimits.maxHeaderListSize = limits.maxHeaderBytes * 2
            decoderLimits.maxHeaderFieldCount = 1000
            let operations = channel.pipeline.syncOperations
            try operations.addHandler(ConnectionGuard(limits: limits, counter: counter, logger: logger))
            try operations.configureHTTPServerPipeline(
                withPipeliningAssistance: true,
                withErrorHandling: true,
                withOutboundHeaderValidation: false,
                withEncoderConfiguration: .init(),
                withDecoderLimitConfiguration: decoderLimits
            )
            try operations.addHandler(IdleStateHandler(readTimeout: limits.idleTimeout))
            let handler = FileServingHandler(replies: replies, accessLog: accessLog)
            try operations.addHandler(handler)
            return Value(channel: channel, handler: NIOLoopBound(handler, eventLoop: channel.eventLoop))
        }
    }

    func handle(value: Value, logger: Logger) async {
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                try? await value.channel.closeFuture.get()
            } onCancel: {
                value.channel.close(promise: nil)
            }
        } onGracefulShutdown: {
            value.channel.eventLoop.execute { value.handler.value.shutDownGracefully() }
        }
    }
}
