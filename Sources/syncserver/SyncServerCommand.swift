import ArgumentParser
import CLISupport
import Foundation
import Logging
import SliceSync
import SliceSyncServer

/// `syncserver`: serves a tree over HTTP with full Range support and keeps its signatures current.
struct SyncServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "syncserver",
        abstract: "Serve a directory tree over HTTP/1.1 with full Range support and fresh .slicesync signatures.",
        discussion: """
            Serves every regular file under --root with GET and HEAD: single, suffix, open-ended and \
            multiple ranges (multipart/byteranges), strong ETags, If-Range, If-Match, If-None-Match, \
            If-Modified-Since and If-Unmodified-Since. Directories are listed as HTML, or as JSON with \
            'Accept: application/json' or '?format=json'. At start-up every file without a current \
            signature is signed in the background (as 'shash' does) while serving starts at once; \
            then the tree is watched as 'shash --service' watches it, so files added, changed, renamed \
            or deleted get their signatures written, moved or removed. Signatures are served under \
            /.slicesync/ only while they match their file.

            Symbolic links are followed while they resolve inside the root; links that leave it answer 404.

            With --tls-cert and --tls-key it serves HTTPS: HTTP/2 for clients that offer it by ALPN \
            (slicesync, curl, browsers), HTTP/1.1 otherwise. SIGHUP reads the two files again (after a \
            certificate renewal), for new connections; if they cannot be used, the old ones stay.

            Examples:
              syncserver --root /srv/mirror                 serve on http://127.0.0.1:8000/
              syncserver --host 0.0.0.0 --port 80 --root .  serve on every interface
              syncserver --host 0.0.0.0 --port 443 --root /srv/mirror \
                --tls-cert /etc/letsencrypt/live/example.org/fullchain.pem \
                --tls-key /etc/letsencrypt/live/example.org/privkey.pem

            Stops cleanly on SIGINT or SIGTERM. Exit status: 0 stopped by a signal, 2 bad usage, \
            6 the root or the port cannot be used.
            """
    )

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on (0: any free port).")
    var port = 8000

    @Option(help: ArgumentHelp("Directory to serve.", valueName: "dir"))
    var root = "."

    @Option(help: "Signature format to write: 1 or 2.")
    var format: Int = 2

    @Option(help: ArgumentHelp("Slice size of the signatures written, with an optional K, M or G suffix.",
        valueName: "size"))
    var slice: ByteSize?

    @Flag(inversion: .prefixedNo, help: "Sign files in subdirectories too.")
    var recursive = true

    @Option(help: ArgumentHelp("Seconds a changed file must stay closed and unchanged before it is signed.",
        valueName: "seconds"))
    var settle: Double = 2

    @Option(help: ArgumentHelp("Minutes between full rescans of the tree (they catch changes no event reported).",
        valueName: "minutes"))
    var rescan: Double = 10

    @Flag(name: .customLong("no-signatures"),
        help: "Serve files only; do not write signatures (current ones are still served).")
    var noSignatures = false

    @Option(name: .customLong("tls-cert"), help: ArgumentHelp("Serve HTTPS with this PEM certificate chain, leaf first "
        + "(certbot's fullchain.pem); HTTP/2 when the client offers it, HTTP/1.1 otherwise. SIGHUP reads it again.",
        valueName: "file"))
    var tlsCertificate: String?

    @Option(name: .customLong("tls-key"),
            help: ArgumentHelp("The certificate's PEM private key (certbot's privkey.pem).", valueName: "file"))
    var tlsKey: String?

    @Flag(help: "Also keep a zsync control file beside each signature (.slicesync/REL.zsync), for zsync's clients.")
    var zsync = false

    @Flag(name: .customLong("sha256"), help: ArgumentHelp("Also write the plain SHA-256 of each file into its "
        + "signature, as shash --sha256 does."))
    var plainSHA256 = false

    @Flag(help: "Print one line per request on standard output.")
    var accessLog = false

    @Option(help: "Most connections open at once.")
    var maxConnections = 1024

    @Flag(name: [.short, .long], help: "Print only errors.")
    var quiet = false

    @Flag(name: [.short, .long], help: "Print debugging detail.")
    var verbose = false

    func validate() throws {
        if (tlsCertificate == nil) != (tlsKey == nil) {
            throw ValidationError("--tls-cert and --tls-key go together")
        }
        if zsync && noSignatures { throw ValidationError("--zsync does not go with --no-signatures") }
        guard format == 1 || format == 2 else { throw ValidationError("--format must be 1 or 2, not \(format)") }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be between 0 and 65535") }
        _ = try serviceTiming(settleSeconds: settle, rescanMinutes: rescan)
        guard maxConnections > 0 else { throw ValidationError("--max-connections must be positive") }
        if quiet && verbose { throw ValidationError("--quiet and --verbose exclude each other") }
    }

    func run() async throws {
        var configuration = SyncServerConfiguration()
        configuration.host = host
        configuration.port = port
        configuration.root = root
        do {
            configuration.signing = try SigningParameters(version: format == 1 ? .v1 : .v2, sliceSize: slice?.bytes)
            configuration.signing.plainDigest = plainSHA256 && format == 2
        } catch {
            throw ValidationError(error.message)
        }
        configuration.recursive = recursive
        configuration.writesZsync = zsync
        if let tlsCertificate, let tlsKey {
            configuration.tls = TLSFiles(certificateChain: tlsCertificate, privateKey: tlsKey)
        }
        configuration.signatures = !noSignatures
        (configuration.settle, configuration.rescanInterval) = try serviceTiming(settleSeconds: settle,
            rescanMinutes: rescan)
        configuration.accessLog = accessLog
        configuration.limits.maxConnections = maxConnections
        let level: Logger.Level = quiet ? .error : (verbose ? .debug : .info)
        let logger = Logger(label: "syncserver") { _ in TerminalLogHandler(program: "syncserver", level: level) }
        let root = self.root
        let server = SyncServer(configuration: configuration, logger: logger)
        do {
            try await server.run { url in
                // Always printed, even with --quiet: scripts read the URL from it (useful with --port 0).
                printLine("serving \(root) on \(url)")
            }
        } catch let error as FileSystemError {
            throw error
        } catch {
            throw CommandFailure(.localIO, "cannot serve on \(host):\(port): \(error)")
        }
    }
}
