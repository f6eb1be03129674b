import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// HTTP/1.1 connections with a ``ConnectionGuard`` below the decoder, otherwise as Hummingbird's own.
struct GuardedHTTP1Channel: ServerChildChannel, HTTPChannelHandler {
    typealias Value = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>

    let responder: HTTPChannelHandler.Responder
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
                withPipeliningAssistance: false,
                withErrorHandling: false,
                withOutboundHeaderValidation: false,
                withEncoderConfiguration: .init(),
                withDecoderLimitConfiguration: decoderLimits
            )
            try operations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
            try operations.addHandler(HTTPConnectionStateHandler(idleTimeout: .nanoseconds(limits.idleTimeout.nanoseconds), logger: logger))
            return try NIOAsyncChannel(wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
        }
    }

    func handle(value asyncChannel: Value, logger: Logger) async {
        await handleHTTP(asyncChannel: asyncChannel, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// HTTP/1.1 with the server's connection guard.
    static func guardedHTTP1(limits: ConnectionLimits) -> HTTPServerBuilder {
        let counter = ConnectionCounter()
        return HTTPServerBuilder { responder in
            GuardedHTTP1Channel(responder: responder, limits: limits, counter: counter)
        }
    }
}
