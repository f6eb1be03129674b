#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// The proxy a URL should go through, from the usual environment variables.
///
/// `http_proxy` for http URLs and `https_proxy` for https URLs (upper-case spellings too, lower-case
/// first, as curl does); `no_proxy` lists hosts (and their subdomains) to reach directly, or `*`.
public struct ProxySettings: Sendable, Equatable {
    /// A proxy server.
    public struct Server: Sendable, Hashable {
        /// Host name or address.
        public var host: String
        /// Port.
        public var port: Int
        /// User name, when the proxy URL has one.
        public var user: String?
        /// Password, when the proxy URL has one.
        public var password: String?
    }

    /// The proxy for http URLs.
    public var http: Server?
    /// The proxy for https URLs.
    public var https: Server?
    /// Host suffixes reached directly.
    public var bypass: [String]
    /// Whether every host is reached directly.
    public var bypassAll: Bool

    /// Reads the settings from an environment.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        func value(_ name: String) -> String? {
            let found = environment[name] ?? environment[name.uppercased()]
            return found?.isEmpty == false ? found : nil
        }
        http = value("http_proxy").flatMap(Self.parse)
        https = value("https_proxy").flatMap(Self.parse)
        let list = (value("no_proxy") ?? "").split(separator: ",").map { $0.trimmingSpaces.lowercased() }
            .filter { !$0.isEmpty }
        bypassAll = list.contains("*")
        bypass = list.map { $0.hasPrefix(".") ? String($0.dropFirst()) : $0 }
    }

    /// The proxy for `url`, or nil to connect directly.
    public func server(for url: String) -> Server? {
        guard let components = URLComponents(string: url), let host = components.host?.lowercased() else { return nil }
        if bypassAll { return nil }
        let bareHost = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        for entry in bypass {
            let entryHost = entry.split(separator: ":").first.map(String.init) ?? entry
            if bareHost == entryHost || bareHost.hasSuffix("." + entryHost) { return nil }
        }
        return components.scheme?.lowercased() == "https" ? https : http
    }

    /// Parses `http://user:pass@host:port` (scheme optional, port 1080 for socks, else 80 by default).
    static func parse(_ text: String) -> Server? {
        let withScheme = text.contains("://") ? text : "http://" + text
        guard let components = URLComponents(string: withScheme), let host = components.host, !host.isEmpty
            else { return nil }
        let port = components.port ?? (components.scheme == "https" ? 443 : 80)
        return Server(host: host, port: port, user: components.percentEncodedUser.flatMap(Paths.percentDecoded),
                      password: components.percentEncodedPassword.flatMap(Paths.percentDecoded))
    }
}
