import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Limits that protect the server from slow, oversized or too many connections.
public struct ConnectionLimits: Sendable {
    /// The longest request line accepted (414 beyond).
    public var maxRequestLineBytes = 8 * 1024
    /// The largest request head, request line and header fields together (431 beyond).
    public var maxHeaderBytes = 32 * 1024
    /// How long a client may take to send a complete request head once it started one (408 after).
    public var headerTimeout: TimeAmount = .seconds(10)
    /// How long a connection may stay open with no request in progress.
    public var idleTimeout: TimeAmount = .seconds(60)
    /// How long a client may leave the server unable to write to it before the connection is dropped.
    public var stalledWriteTimeout: TimeAmount = .seconds(60)
    /// The most connections open at once; more are closed as soon as they are accepted.
    public var maxConnections = 1024

    /// The default limits.
    public init() {}
}

/// Counts open connections across event loops.
final class ConnectionCounter: Sendable {
    private let state = NIOLockedValueBox((open: 0, refusedLogged: false))

    /// Counts a new connection; false when the cap is reached (and whether to log that).
    func admit(limit: Int) -> (admitted: Bool, logRefusal: Bool) {
        state.withLockedValue { state in
            guard state.open < limit else {
                let log = !state.refusedLogged
                state.refusedLogged = true
                return (false, log)
            }
            state.open += 1
            return (true, false)
        }
    }

    /// Counts a connection that closed.
    func release() {
        state.withLockedValue { state in
            state.open -= 1
            state.refusedLogged = false
        }
    }
}

/// The first handler of every connection, below TLS when there is TLS: it enforces the connection
/// cap and drops clients that stop reading. (Request heads are watched above, in ``HTTP1Connection``,
/// and by NIO's HTTP/2 codec.)
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let limits: ConnectionLimits
    private let counter: ConnectionCounter
    private let logger: Logger
    private var admitted = false
    private var rejected = false
    private var writeTimer: Scheduled<Void>?

    init(limits: ConnectionLimits, counter: ConnectionCounter, logger: Logger) {
        self.limits = limits
        self.counter = counter
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let decision = counter.admit(limit: limits.maxConnections)
        admitted = decision.admitted
        if !decision.admitted {
            if decision.logRefusal {
                logger.warning("""
                    connection limit of \(limits.maxConnections) reached; refusing new connections until some \
                    close
                    """)
            }
            rejected = true
            context.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        releaseSlot()
    }

    func channelInactive(context: ChannelHandlerContext) {
        releaseSlot()
        context.fireChannelInactive()
    }

    /// Stops the timer and gives the connection's slot back, once, whichever event comes first.
    private func releaseSlot() {
        writeTimer?.cancel()
        if admitted {
            admitted = false
            counter.release()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !rejected else { return }
        context.fireChannelRead(data)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            writeTimer?.cancel()
            writeTimer = nil
        } else if writeTimer == nil {
            let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
            writeTimer = context.eventLoop.scheduleTask(in: limits.stalledWriteTimeout) {
                bound.value.handler.logger.debug("dropping a client that stopped reading")
                bound.value.context.close(promise: nil)
            }
        }
        context.fireChannelWritabilityChanged()
    }
}
