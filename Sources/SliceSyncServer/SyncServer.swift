#if canImport(Glibc)
import Glibc
#endif
import Foundation
import HummingbirdCore
import NIOPosix
import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals
import SliceSync

/// Everything `syncserver` needs to run, parsed from its command line.
public struct SyncServerConfiguration: Sendable {
    /// The address to listen on.
    public var host = "127.0.0.1"
    /// The port to listen on; 0 picks a free one.
    public var port = 8000
    /// The directory to publish.
    public var root = "."
    /// The format and sizes of the signatures the server writes.
    public var signing = try! SigningParameters()
    /// Whether subdirectories are signed too.
    public var recursive = true
    /// Whether a zsync control file is kept beside each signature (`--zsync`).
    public var writesZsync = false
    /// Whether the server keeps signatures current at all.
    public var signatures = true
    /// How long a changed file must stay closed and unchanged before it is signed.
    public var settle: Duration = .seconds(2)
    /// How often the whole tree is checked again, events or not.
    public var rescanInterval: Duration = .seconds(600)
    /// Whether to log one line per request on standard output.
    public var accessLog = false
    /// Connection and request limits.
    public var limits = ConnectionLimits()
    /// Serve HTTPS (HTTP/2 by ALPN, HTTP/1.1 otherwise) with these files; reloaded on SIGHUP.
    public var tls: TLSFiles?
    /// How long in-flight responses may take to finish once a stop was asked for.
    public var shutdownGrace: Duration = .seconds(10)

    /// The defaults.
    public init() {}
}

/// Runs the server until SIGINT or SIGTERM: serving starts at once, signing runs in the background.
public struct SyncServer: Sendable {
    /// The configuration.
    public let configuration: SyncServerConfiguration
    /// Where the server logs.
    public let logger: Logger

    /// Creates a server.
    public init(configuration: SyncServerConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Each connection holds a socket and the file it last served, so the default cap of 1,024
    /// connections needs about 2,100 descriptors where many systems start a service with a soft limit of
    /// 1,024: the soft limit is raised as far as the hard one allows, as nginx's `worker_rlimit_nofile`
    /// and Go's runtime do.
    static func raiseDescriptorLimit(logger: Logger, needed: Int) {
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0, limit.rlim_cur < rlim_t(needed) else { return }
        let wanted = min(limit.rlim_max, rlim_t(needed))
        limit.rlim_cur = wanted
        if setrlimit(resource, &limit) != 0 || wanted < rlim_t(needed) {
            logger.warning("""
                only \(wanted) file descriptors may be open (ulimit -n); \(needed) are needed for the connection \
                limit: raise the hard limit (LimitNOFILE= under systemd)
                """)
        }
    }

    /// Serves until a stop signal; `onListening` receives the URL once the socket is bound.
    public func run(onListening: @escaping @Sendable (String) -> Void) async throws {
        let tree = try ServedTree(root: configuration.root)
        Self.raiseDescriptorLimit(logger: logger, needed: configuration.limits.maxConnections * 2 + 64)
        let tls = try configuration.tls.map(TLSContextHolder.init(files:))
        let feed = configuration.signatures ? ChangeFeed() : nil
        var channel = FileServingChannel(
            replies: FileReplies(tree: tree),
            accessLog: configuration.accessLog,
            limits: configuration.limits,
            counter: ConnectionCounter(),
            tls: tls
        )
        channel.feed = feed
        let host = configuration.host
        let server = Server(
            childChannelSetup: channel,
            configuration: ServerConfiguration(address: .hostname(configuration.host, port: configuration.port),
                serverName: "syncserver", backlog: 1024),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                let shownHost = host.contains(":") ? "[\(host)]" : host
                onListening("\(tls == nil ? "http" : "https")://\(shownHost):\(port)/")
            },
            eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
            logger: logger
        )
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: server)]
        if let tls { services.append(.init(service: CertificateReloader(holder: tls, logger: logger))) }
        if configuration.signatures {
            var signing = TreeSigningOptions(parameters: configuration.signing)
            signing.recursive = configuration.recursive
            signing.writesZsync = configuration.writesZsync
            signing.signsLinksLeavingRoot = false
            var options = SignatureServiceOptions(signing: signing)
            options.settle = configuration.settle
            options.rescanInterval = configuration.rescanInterval
            options.manifestWritten = { feed?.publish() }
            let service = try SignatureService(root: tree.root, options: options, logger: logger)
            services.append(.init(service: BackgroundSigner(service: service)))
        }
        var groupConfiguration = ServiceGroupConfiguration(services: services,
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = configuration.shutdownGrace
        try await ServiceGroup(configuration: groupConfiguration).run()
    }
}

/// Runs the signature service (the engine of `shash --service`) on a thread of its own until shutdown.
struct BackgroundSigner: Service {
    let service: SignatureService

    func run() async throws {
        let service = self.service
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let thread = Thread {
                        service.run()
                        continuation.resume()
                    }
                    thread.name = "signature-service"
                    thread.start()
                }
            } onCancel: {
                service.stop()
            }
        } onGracefulShutdown: {
            service.stop()
        }
    }
}

/// Reads the certificate files again on SIGHUP (after certbot renewed them, say), for new connections.
struct CertificateReloader: Service {
    let holder: TLSContextHolder
    let logger: Logger

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            holder.reload(logger: logger)
        }
    }
}
