import AsyncHTTPClient
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import SliceSync
import Synchronization

/// `HTTPExchange` over AsyncHTTPClient: HTTP/1.1 and HTTP/2, TLS, keep-alive pools, proxies from the
/// environment. Redirects and decompression are off: the library handles redirects under its own
/// rules and asks for `identity` encoding so byte ranges mean bytes of the file.
public final class AsyncHTTPExchange: HTTPExchange, HTTPRequester, Sendable {
    private let configuration: HTTPClient.Configuration
    private let proxies: ProxySettings
    private let clients = Mutex<[ProxySettings.Server?: HTTPClient]>([:])
    private let rateLimiter: RateLimiter?

    /// Creates the exchange; `insecure` accepts invalid TLS certificates; `trustedCertificates`
    /// (a PEM file) replaces the system's authorities, as curl's `--cacert` does, and so does the file
    /// `SSL_CERT_FILE` names (which OpenSSL and curl honour and swift-nio-ssl does not read by itself);
    /// `rateLimiter` caps the rate at which reply bodies are read, over all connections together.
    public init(insecure: Bool = false, trustedCertificates: String? = nil, connections: Int = 8,
                proxies: ProxySettings = ProxySettings(), rateLimiter: RateLimiter? = nil) throws {
        self.rateLimiter = rateLimiter
        var tls = TLSConfiguration.makeClientConfiguration()
        if insecure { tls.certificateVerification = .none }
        // As OpenSSL and curl read it; swift-nio-ssl does not by itself.
        let fromEnvironment = getenv("SSL_CERT_FILE").map { String(cString: $0) }
        let file = trustedCertificates ?? fromEnvironment.flatMap { $0.isEmpty ? nil : $0 }
        if let file, !insecure {
            let origin = trustedCertificates == nil ? "SSL_CERT_FILE names " : ""
            guard (try? FileSystem.stamp(file))??.isRegularFile == true else {
                throw TransportError(.tls, "cannot read the certificates \(origin)\(file): there is no such file")
            }
            // Checked here for a clear message; NIOSSL reads the file itself when it builds its context.
            // (Parsing the certificates here with NIOSSLCertificate.fromPEMFile measured about 2 MiB more
            // peak memory for every run, with or without the option.)
            let start = (try? SystemFile.openForReading(file).readPrefix(limit: 1 << 16)) ?? []
            guard start.firstRange(of: Array("-----BEGIN CERTIFICATE-----".utf8)) != nil else {
                throw TransportError(.tls, "cannot read the certificates \(origin)\(file): it must be a PEM file of "
                    + "certificate authorities (-----BEGIN CERTIFICATE-----)")
            }
            tls.trustRoots = .file(file)
        }
        var configuration = HTTPClient.Configuration(
            tlsConfiguration: tls,
            redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(5), read: .seconds(60)),
            connectionPool: .init(idleTimeout: .seconds(60),
                concurrentHTTP1ConnectionsPerHostSoftLimit: max(1, connections)),
            decompression: .disabled
        )
        configuration.httpVersion = .automatic
        self.configuration = configuration
        self.proxies = proxies
    }

    private func client(for url: String) -> HTTPClient {
        let server = proxies.server(for: url)
        return clients.withLock { clients in
            if let existing = clients[server] { return existing }
            var configuration = self.configuration
            if let server {
                let authorization = server.user.map {
                    HTTPClient.Authorization.basic(username: $0, password: server.password ?? "")
                }
                configuration.proxy = .server(host: server.host, port: server.port, authorization: authorization)
            }
            let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
            clients[server] = client
            return client
        }
    }

    /// Closes every connection.
    public func shutdown() async {
        let all = clients.withLock { clients in
            let values = Array(clients.values)
            clients.removeAll()
            return values
        }
        for client in all { try? await client.shutdown() }
    }

    /// Sends one GET and streams the reply to the callbacks.
    public func get(
        _ url: String,
        headers: [(String, String)],
        head: (SliceSync.HTTPResponseHead) throws -> Void,
        body: (UnsafeRawBufferPointer) throws -> Void
    ) async throws {
        var request = HTTPClientRequest(url: url)
        request.method = .GET
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        // Errors the callbacks throw belong to the caller and pass through unchanged.
        var callbackError: Error?
        do {
            let response = try await client(for: url).execute(request, timeout: .hours(24))
            do {
                try head(SliceSync.HTTPResponseHead(status: Int(response.status.code),
                    headers: response.headers.map { ($0.name, $0.value) }))
            } catch {
                callbackError = error
                throw error
            }
            for try await buffer in response.body {
                do {
                    try buffer.withUnsafeReadableBytes { try body($0) }
                } catch {
                    callbackError = error
                    throw error
                }
                // Not reading on leaves the rest in the socket, which slows the sender down.
                try await rateLimiter?.took(buffer.readableBytes)
            }
        } catch where callbackError != nil {
            throw callbackError!
        } catch {
            throw await translated(error, url: url)
        }
    }

    /// Sends one request of any method, streaming a file body from disk, and collects the reply.
    public func send(method: String, url: String, headers: [(String, String)], body: RequestBody,
                     limit: Int) async throws -> HTTPReply {
        var request = HTTPClientRequest(url: url)
        request.method = HTTPMethod(rawValue: method)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        switch body {
        case .empty:
            // S3 wants a length on every PUT and POST, even an empty one.
            if method != "GET" && method != "HEAD" && method != "DELETE" { request.body = .bytes(ByteBuffer()) }
        case .bytes(let bytes):
            request.body = .bytes(ByteBuffer(bytes: bytes))
        case .file(let path, let range):
            let file = try SystemFile.openForReading(path)
            request.body = .stream(FileChunks(file: file, range: range), length: .known(Int64(range.count)))
        }
        do {
            let response = try await client(for: url).execute(request, timeout: .hours(24))
            let head = SliceSync.HTTPResponseHead(status: Int(response.status.code),
                                                  headers: response.headers.map { ($0.name, $0.value) })
            var collected: [UInt8] = []
            for try await buffer in response.body {
                guard collected.count + buffer.readableBytes <= limit else {
                    throw TransportError(.protocolViolation, "\(Self.hostPart(url)) sent a reply longer than "
                        + "\(limit) bytes to \(method) \(url)")
                }
                collected += buffer.readableBytesView
            }
            return HTTPReply(head: head, body: collected)
        } catch {
            throw await translated(error, url: url)
        }
    }

    /// The HTTP stack's errors as `TransportError`s that say what failed and what to do.
    private func translated(_ error: Error, url: String) async -> Error {
        do {
            throw error
        } catch let error as TransportError {
            return error
        } catch let error as FileSystemError {
            return error
        } catch let error as HTTPClientError {
            return Self.translate(error, url: url)
        } catch where error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError {
            return await tlsFailure(error, url: url)
        } catch is CancellationError {
            return CancellationError()
        } catch let error as IOError {
            if [ECONNREFUSED, EHOSTUNREACH, ENETUNREACH].contains(error.errnoCode) {
                let reason = String(cString: strerror(error.errnoCode))
                return TransportError(.unreachable, "cannot reach \(Self.hostPart(url)): \(reason); check the URL and "
                    + "that the server is running")
            }
            return TransportError(.connection, "cannot reach \(Self.hostPart(url)): \(error.description)")
        } catch let error as ChannelError {
            return TransportError(.connection, "the connection to \(Self.hostPart(url)) failed: \(error)")
        } catch {
            let text = String(describing: error)
            if text.contains("NIOConnectionError") || text.contains("dnsAAAAError") || text.contains("dnsAError") {
                return TransportError(.unreachable, "cannot reach \(Self.hostPart(url)): \(text)")
            }
            if text.lowercased().contains("ssl") || text.lowercased().contains("certificate") {
                return await tlsFailure(error, url: url)
            }
            // Anything else from the HTTP stack (a body cut short, a parse error) is a broken connection.
            return TransportError(.connection, "the connection to \(Self.hostPart(url)) broke: \(text)")
        }
    }

    /// A TLS failure, in words (see `TLSDiagnosis`).
    private func tlsFailure(_ error: Error, url: String) async -> TransportError {
        TransportError(.tls, await TLSDiagnosis.explain(error, url: url, proxied: proxies.server(for: url) != nil))
    }

    private static func translate(_ error: HTTPClientError, url: String) -> TransportError {
        if [.connectTimeout, .readTimeout, .deadlineExceeded, .writeTimeout].contains(error) {
            return TransportError(.timeout, "\(hostPart(url)) did not answer in time")
        }
        if [.invalidURL, .emptyHost, .emptyScheme].contains(error) {
            return TransportError(.badURL, "\(url) is not a URL this client can fetch")
        }
        if error == .remoteConnectionClosed && url.lowercased().hasPrefix("http:") {
            return TransportError(.connection, "\(hostPart(url)) closed the connection without answering; "
                + "if it serves HTTPS, use an https:// URL")
        }
        return TransportError(.connection, "talking to \(hostPart(url)) failed: \(error)")
    }

    private static func hostPart(_ url: String) -> String {
        URLComponents(string: url).map { ($0.host ?? url) + ($0.port.map { ":\($0)" } ?? "") } ?? url
    }
}

/// A range of a file as a stream of buffers read on demand, so that a part of many MiB is sent with one
/// buffer in memory; a file that turns out shorter than the range ends the request with an error.
struct FileChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let file: SystemFile
    let range: Range<Int>
    static let chunk = 256 << 10

    struct AsyncIterator: AsyncIteratorProtocol {
        let file: SystemFile
        var offset: Int
        let end: Int

        mutating func next() async throws -> ByteBuffer? {
            guard offset < end else { return nil }
            let count = Swift.min(FileChunks.chunk, end - offset)
            var buffer = ByteBufferAllocator().buffer(capacity: count)
            let at = offset
            let file = file
            let read = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { raw in
                try file.read(into: raw.baseAddress!, count: count, at: at)
            }
            guard read == count else {
                throw FileSystemError(.changedWhileReading, path: file.path,
                    message: "\(file.path) became shorter while it was being uploaded")
            }
            offset += count
            return buffer
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(file: file, offset: range.lowerBound, end: range.upperBound)
    }
}
