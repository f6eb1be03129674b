import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOTLS
import NIOHTTP2
import NIOSSL
import SliceSync

/// Where the server's certificate chain and private key are (PEM files, as Let's Encrypt's certbot
/// writes them: `fullchain.pem` and `privkey.pem`).
public struct TLSFiles: Sendable, Equatable {
    /// The certificate chain, leaf first.
    public var certificateChain: String
    /// The private key.
    public var privateKey: String

    /// Names the two files.
    public init(certificateChain: String, privateKey: String) {
        self.certificateChain = certificateChain
        self.privateKey = privateKey
    }
}

/// The TLS context new connections are served with, replaced as a whole when the certificate files
/// are read again (SIGHUP): connections already open keep the context they started with.
final class TLSContextHolder: Sendable {
    let files: TLSFiles
    private let current: NIOLockedValueBox<NIOSSLContext>

    /// Reads the files; throws a `FileSystemError` that names what is wrong with them.
    init(files: TLSFiles) throws {
        self.files = files
        current = NIOLockedValueBox(try Self.load(files))
    }

    var context: NIOSSLContext { current.withLockedValue { $0 } }

    /// Reads the files again and serves new connections with them; on failure keeps the old context.
    func reload(logger: Logger) {
        do {
            let fresh = try Self.load(files)
            current.withLockedValue { $0 = fresh }
            logger.info("reloaded the TLS certificate from \(files.certificateChain)")
        } catch {
            logger.error("kept the previous TLS certificate: \(error)")
        }
    }

    private static func load(_ files: TLSFiles) throws -> NIOSSLContext {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(files.certificateChain)
        } catch {
            throw FileSystemError(.io, path: files.certificateChain,
                message: "cannot read a PEM certificate chain from \(files.certificateChain) (\(error)); "
                    + "give the full chain, leaf first (certbot's fullchain.pem)")
        }
        guard !chain.isEmpty else {
            throw FileSystemError(.io, path: files.certificateChain,
                message: "\(files.certificateChain) holds no certificate")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: files.privateKey, format: .pem)
        } catch {
            throw FileSystemError(.io, path: files.privateKey,
                message: "cannot read a PEM private key from \(files.privateKey) (\(error)); "
                    + "give the key of the certificate (certbot's privkey.pem)")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        // HTTP/2 when the client offers it, HTTP/1.1 otherwise.
        configuration.applicationProtocols = NIOHTTP2SupportedALPNProtocols
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw FileSystemError(.io, path: files.privateKey,
                message: "the certificate in \(files.certificateChain) and the key in \(files.privateKey) "
                    + "cannot be used together (\(error)); check that the key belongs to the certificate")
        }
    }
}

/// Closes a connection whose TLS handshake has not completed in time (a client that connects and
/// says nothing would otherwise hold a slot until the idle timeout), then steps aside.
final class HandshakeDeadline: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let timeout: TimeAmount
    private var timer: Scheduled<Void>?

    init(timeout: TimeAmount) { self.timeout = timeout }

    func handlerAdded(context: ChannelHandlerContext) {
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: timeout) { bound.value.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        context.fireUserInboundEventTriggered(event)
        if case TLSUserEvent.handshakeCompleted = event {
            // After passing the event on: the negotiation handler behind waits for it.
            timer?.cancel()
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }
}
