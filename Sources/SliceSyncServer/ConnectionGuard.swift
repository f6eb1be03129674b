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

/// Sits below the HTTP decoder and watches each request head as raw bytes: it answers 414 for an
/// over-long request line, 431 for an over-large head and 408 for a head that takes too long, and it
/// enforces the connection cap and drops clients that stop reading.
///
/// It tracks request boundaries itself (a head ends at an empty line; a `Content-Length` body is
/// skipped), because the decoder above reports every oversize as the same parse error and does not
/// time out a slow head at all.
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    /// What one guard does: everything (plain HTTP/1.1); only the connection (cap and stalled
    /// readers) below TLS, where the bytes are encrypted; only the request heads, above TLS once the
    /// connection speaks HTTP/1.1.
    enum Role {
        case everything, connection, requests
    }

    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let limits: ConnectionLimits
    private let counter: ConnectionCounter
    private let logger: Logger
    private var admitted = false
    private var rejected = false
    // Request-head tracking.
    private var inHead = false
    private var inRequestLine = false
    private var lineBytes = 0
    private var headBytes = 0
    private var recent: UInt32 = 0
    private var head: [UInt8] = []
    private var bodyRemaining = 0
    private var untrackable = false
    private var headTimer: Scheduled<Void>?
    private var headStarted = NIODeadline.uptimeNanoseconds(0)
    private var writeTimer: Scheduled<Void>?

    private let role: Role

    init(limits: ConnectionLimits, counter: ConnectionCounter, logger: Logger, role: Role = .everything) {
        self.limits = limits
        self.counter = counter
        self.logger = logger
        self.role = role
        untrackable = role == .connection
    }

    func handlerAdded(context: ChannelHandlerContext) {
        guard role != .requests else { return }
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

    /// Stops the timers and gives the connection's slot back, once, whichever event comes first.
    private func releaseSlot() {
        headTimer?.cancel()
        writeTimer?.cancel()
        if admitted {
            admitted = false
            counter.release()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !rejected else { return }
        let buffer = unwrapInboundIn(data)
        if !untrackable, let status = scan(buffer, context: context) {
            reject(context: context, status: status)
            return
        }
        context.fireChannelRead(data)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if role == .requests {
            context.fireChannelWritabilityChanged()
            return
        }
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

    /// Walks the bytes of a read; returns a status to answer with when a limit is broken.
    ///
    /// Allocation-free on the common path: the head's bytes are copied once, in runs, and searched
    /// for body-framing fields as bytes when the head ends.
    private func scan(_ buffer: ByteBuffer, context: ChannelHandlerContext) -> String? {
        buffer.withUnsafeReadableBytes { bytes -> String? in
            var index = 0
            var runStart = 0
            while index < bytes.count {
                if bodyRemaining > 0 {
                    let skipped = min(bodyRemaining, bytes.count - index)
                    bodyRemaining -= skipped
                    index += skipped
                    runStart = index
                    continue
                }
                let byte = bytes[index]
                index += 1
                if !inHead {
                    // Empty lines between requests are allowed (RFC 9112 §2.2).
                    if byte == 0x0D || byte == 0x0A {
                        runStart = index
                        continue
                    }
                    startHead(context: context)
                    runStart = index - 1
                }
                headBytes += 1
                if headBytes > limits.maxHeaderBytes { return "431 Request Header Fields Too Large" }
                recent = recent << 8 | UInt32(byte)
                if inRequestLine {
                    if byte == 0x0A {
                        inRequestLine = false
                    } else {
                        lineBytes += 1
                        if lineBytes > limits.maxRequestLineBytes { return "414 URI Too Long" }
                    }
                }
                if byte == 0x0A && (recent == 0x0D0A_0D0A || recent & 0xFFFF == 0x0A0A) {
                    head.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart..<index]))
                    runStart = index
                    finishHead()
                    if untrackable { return nil }
                }
            }
            if inHead && runStart < bytes.count {
                head.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart..<bytes.count]))
            }
            return nil
        }
    }

    private func startHead(context: ChannelHandlerContext) {
        inHead = true
        inRequestLine = true
        lineBytes = 0
        headBytes = 0
        recent = 0
        head.removeAll(keepingCapacity: true)
        headStarted = .now()
        // One timer serves many requests of a keep-alive connection: it is armed when a head starts and
        // none is pending, and when it fires for a head that began later, it waits for that head's turn.
        if headTimer == nil { armHeadTimer(context: context, in: limits.headerTimeout) }
    }

    private func armHeadTimer(context: ChannelHandlerContext, in delay: TimeAmount) {
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        headTimer = context.eventLoop.scheduleTask(in: delay) {
            let (handler, context) = bound.value
            handler.headTimer = nil
            guard handler.inHead, !handler.rejected else { return }
            let elapsed = NIODeadline.now() - handler.headStarted
            if elapsed >= handler.limits.headerTimeout {
                handler.reject(context: context, status: "408 Request Timeout")
            } else {
                handler.armHeadTimer(context: context, in: handler.limits.headerTimeout - elapsed)
            }
        }
    }

    private func finishHead() {
        inHead = false
        let framing = Self.bodyFraming(of: head)
        if let length = framing.contentLength {
            var value = 0
            for byte in length where byte >= 0x30 && byte <= 0x39 {
                value = min(value &* 10 &+ Int(byte - 0x30), Int.max / 16)
            }
            bodyRemaining = value
        }
        if framing.chunked {
            // A chunked body cannot be followed without decoding it; the server refuses bodies and
            // closes such connections anyway, so stop watching this one.
            untrackable = true
        }
    }

    private static let contentLength = Array("content-length:".utf8)
    private static let transferEncoding = Array("transfer-encoding:".utf8)

    /// The value of `Content-Length` and whether `Transfer-Encoding` is present, found in one pass over
    /// the head's lines by case-insensitive matches at the start of a line.
    private static func bodyFraming(of head: [UInt8]) -> (contentLength: ArraySlice<UInt8>?, chunked: Bool) {
        var contentLength: ArraySlice<UInt8>?
        var chunked = false
        var lineStart = 0
        while lineStart < head.count {
            let lineEnd = head[lineStart...].firstIndex(of: 0x0A) ?? head.count
            switch head[lineStart] | 0x20 {
            case UInt8(ascii: "c") where matches(Self.contentLength, head, lineStart, lineEnd):
                contentLength = head[(lineStart + Self.contentLength.count)..<lineEnd]
            case UInt8(ascii: "t") where matches(Self.transferEncoding, head, lineStart, lineEnd):
                chunked = true
            default:
                break
            }
            lineStart = lineEnd + 1
        }
        return (contentLength, chunked)
    }

    private static func matches(_ name: [UInt8], _ head: [UInt8], _ lineStart: Int, _ lineEnd: Int) -> Bool {
        guard lineEnd - lineStart > name.count else { return false }
        for offset in 0..<name.count where head[lineStart + offset] | 0x20 != name[offset] | 0x20 { return false }
        return true
    }

    private func reject(context: ChannelHandlerContext, status: String) {
        rejected = true
        headTimer?.cancel()
        logger.debug("rejecting a request: \(status)")
        let reply = "HTTP/1.1 \(status)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        var buffer = context.channel.allocator.buffer(capacity: reply.utf8.count)
        buffer.writeString(reply)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
    }
}
