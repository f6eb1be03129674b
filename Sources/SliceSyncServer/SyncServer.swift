import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
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
    /// Whether the server keeps signatures current at all.
    public var signatures = true
    /// Whether to log one line per request on standard output.
    public var accessLog = false
    /// Connection and request limits.
    public var limits = ConnectionLimits()
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

    /// Serves until a stop signal; `onListening` receives the URL once the socket is bound.
    public func run(onListening: @escaping @Sendable (String) -> Void) async throws {
        let tree = try ServedTree(root: configuration.root)
        let responder = FileServer(tree: tree, accessLog: configuration.accessLog)
        let applicationConfiguration = ApplicationConfiguration(
            address: .hostname(configuration.host, port: configuration.port),
            serverName: "syncserver",
            backlog: 1024
        )
        let host = configuration.host
        let app = Application(
            responder: responder,
            server: .guardedHTTP1(limits: configuration.limits),
            configuration: applicationConfiguration,
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                let shownHost = host.contains(":") ? "[\(host)]" : host
                onListening("http://\(shownHost):\(port)/")
            },
            logger: logger
        )
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: app)]
        if configuration.signatures {
            var options = TreeSigningOptions(parameters: configuration.signing)
            options.recursive = configuration.recursive
            options.signsLinksLeavingRoot = false
            let signer = BackgroundSigner(root: tree.root, options: options, logger: logger)
            services.append(.init(service: signer, successTerminationBehavior: .ignore))
        }
        var groupConfiguration = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = configuration.shutdownGrace
        try await ServiceGroup(configuration: groupConfiguration).run()
    }
}

/// Brings every signature of the tree up to date in the background, then waits for shutdown.
struct BackgroundSigner: Service {
    let root: String
    let options: TreeSigningOptions
    let logger: Logger

    func run() async throws {
        let cancellation = CancellationFlag()
        var options = self.options
        options.cancellation = cancellation
        let signer = TreeSigner(options: options, logger: logger)
        let root = self.root
        let logger = self.logger
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let thread = Thread {
                        let report = signer.run(paths: [root])
                        if !cancellation.isCancelled {
                            logger.info("signatures up to date: \(report.filesHashed) signed, \(report.filesUpToDate) already current, \(report.signaturesRemoved) removed, \(report.failures.count) failed")
                        }
                        continuation.resume()
                    }
                    thread.start()
                }
            } onCancel: {
                cancellation.cancel()
            }
        } onGracefulShutdown: {
            cancellation.cancel()
        }
        guard !cancellation.isCancelled else { return }
        try? await gracefulShutdown()
    }
}
