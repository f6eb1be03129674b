#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix
import NIOSSL
import SliceSync

/// Turns a failed TLS handshake into words: what failed (not trusted, name mismatch, expired, not
/// yet valid, no common protocol, not TLS at all) and what to do, instead of the TLS library's
/// internal error. For certificate failures it connects once more without verification, only to read
/// the certificate the server presents; nothing is sent over that connection.
enum TLSDiagnosis {
    static let advice = "trust its authority with --cacert FILE or SSL_CERT_FILE=FILE, "
        + "or use --insecure only if you trust this server"

    /// A sentence for the failure `error` of a request to `url`.
    static func explain(_ error: Error, url: String, proxied: Bool) async -> String {
        let text = String(describing: error)
        guard let parts = URLComponents(string: url), let host = parts.host else {
            return "TLS failed for \(url): \(brief(text))"
        }
        let port = parts.port ?? 443
        let place = "\(host):\(port)"
        if text.contains("WRONG_VERSION_NUMBER") || text.contains("HTTP_REQUEST") {
            return "TLS failed for \(url): \(place) does not speak TLS (is it an http:// URL?)"
        }
        if ["UNSUPPORTED_PROTOCOL", "PROTOCOL_VERSION", "NO_SHARED_CIPHER", "NO_CIPHERS_AVAILABLE",
            "NO_COMMON_SIGNATURE_ALGORITHMS", "HANDSHAKE_FAILURE"].contains(where: text.contains) {
            return "TLS failed for \(url): \(place) and this client have no TLS version or cipher in common "
                + "(this client speaks TLS 1.2 and 1.3); the server needs updating"
        }
        guard !proxied, let certificate = await presentedCertificate(host: host, port: port) else {
            return "TLS failed for \(url): the certificate of \(place) could not be verified (\(brief(text))); "
                + advice
        }
        let now = time(nil)
        if certificate.notValidAfter < now {
            return "TLS failed for \(url): the certificate of \(place) expired on \(date(certificate.notValidAfter)); "
                + "the server must renew it"
        }
        if certificate.notValidBefore > now {
            return "TLS failed for \(url): the certificate of \(place) is not valid before "
                + "\(date(certificate.notValidBefore)); check this machine's clock"
        }
        let names = subjectNames(certificate)
        if !names.isEmpty, !names.contains(where: { matches($0, host: host) }) {
            return "TLS failed for \(url): the certificate of \(place) is for \(names.joined(separator: ", ")), "
                + "not \(host); use the name the certificate is for"
        }
        return "TLS failed for \(url): the certificate of \(place) is not trusted (self-signed, or issued by an "
            + "authority this machine does not trust); " + advice
    }

    /// The first line of the library's text, without the build paths it may carry.
    private static func brief(_ text: String) -> String {
        let line = text.split(separator: "\n").first.map(String.init) ?? text
        return line.count > 160 ? String(line.prefix(160)) + "…" : line
    }

    private static func date(_ seconds: time_t) -> String { HTTPDate.format(Int(seconds)) }

    /// DNS names and IP addresses the certificate is for (its subject alternative names).
    static func subjectNames(_ certificate: NIOSSLCertificate) -> [String] {
        certificate._subjectAlternativeNames().compactMap { name -> String? in
            let bytes = name.contents.withUnsafeBufferPointer { Array($0) }
            switch name.nameType {
            case .dnsName:
                return String(decoding: bytes, as: UTF8.self)
            case .ipAddress where bytes.count == 4:
                return bytes.map(String.init).joined(separator: ".")
            case .ipAddress where bytes.count == 16:
                return "[" + stride(from: 0, to: 16, by: 2).map { String(Int(bytes[$0]) << 8 | Int(bytes[$0 + 1]),
                    radix: 16) }.joined(separator: ":") + "]"
            default:
                return nil
            }
        }
    }

    /// Whether a certificate name covers `host` (one leading `*.` label wildcard, as browsers allow).
    static func matches(_ name: String, host: String) -> Bool {
        let name = name.lowercased()
        let host = unbracketed(host.lowercased())
        let bare = unbracketed(name)
        if bare == host { return true }
        if name.hasPrefix("*."), let dot = host.firstIndex(of: ".") {
            return host[host.index(after: dot)...] == name.dropFirst(2)
        }
        return IPv6Text.normalized(bare) != nil && IPv6Text.normalized(bare) == IPv6Text.normalized(host)
    }

    /// An IPv6 literal without its brackets.
    private static func unbracketed(_ text: String) -> String {
        text.hasPrefix("[") && text.hasSuffix("]") ? String(text.dropFirst().dropLast()) : text
    }

    /// The leaf certificate `host:port` presents, read over a connection that verifies nothing.
    private static func presentedCertificate(host: String, port: Int) async -> NIOSSLCertificate? {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .none
        guard let context = try? NIOSSLContext(configuration: configuration) else { return nil }
        let serverName = host.first?.isNumber == true || host.contains(":") ? nil : host
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(5))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = try NIOSSLClientHandler(context: context, serverHostname: serverName)
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
        guard let channel = try? await bootstrap.connect(host: unbracketed(host), port: port).get() else { return nil }
        defer { channel.close(promise: nil) }
        for _ in 0..<50 {
            if let certificate = try? await channel.nioSSL_peerCertificate().get() { return certificate }
            try? await Task.sleep(nanoseconds: 100_000_000)
        }
        return nil
    }
}

/// IPv6 addresses compared by value, whatever their spelling.
enum IPv6Text {
    static func normalized(_ text: String) -> [UInt8]? {
        var address = in6_addr()
        guard text.contains(":"), inet_pton(AF_INET6, text, &address) == 1 else { return nil }
        return withUnsafeBytes(of: &address) { Array($0) }
    }
}
