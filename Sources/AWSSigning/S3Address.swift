/// A bucket and a key (or key prefix), from `s3://BUCKET/KEY`.
public struct S3Location: Sendable, Equatable, CustomStringConvertible {
    /// The bucket's name.
    public var bucket: String
    /// The key; for a tree, the prefix, empty or ending in `/`.
    public var key: String

    /// A location from its parts.
    public init(bucket: String, key: String) {
        self.bucket = bucket
        self.key = key
    }

    /// Whether `text` starts with `s3://`.
    public static func isS3URL(_ text: String) -> Bool { text.lowercased().hasPrefix("s3://") }

    /// Parses `s3://BUCKET/KEY`; the key may be empty (the bucket's root) or end in `/` (a prefix).
    public init(parsing text: String) throws(AWSConfigurationError) {
        guard Self.isS3URL(text) else { throw AWSConfigurationError("\(text) is not an s3://BUCKET/KEY URL") }
        let rest = text.dropFirst(5)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let bucket = String(rest[..<slash])
        guard (3...63).contains(bucket.count), bucket.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber
            || $0 == "-" || $0 == "." || $0 == "_" || $0.isUppercase) }) else {
            throw AWSConfigurationError("\(text): '\(bucket)' is not a bucket name (3 to 63 letters, digits, "
                + "dots and hyphens)")
        }
        let key = slash == rest.endIndex ? "" : String(rest[rest.index(after: slash)...])
        let control = key.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }
        guard key.utf8.count <= 1024, !control else {
            throw AWSConfigurationError("\(text): the key is longer than 1,024 bytes or has a control character")
        }
        self.bucket = bucket
        self.key = key
    }

    /// `s3://BUCKET/KEY`.
    public var description: String { "s3://\(bucket)/\(key)" }

    /// Whether the key names a prefix (a tree): empty or ending in `/`.
    public var isPrefix: Bool { key.isEmpty || key.hasSuffix("/") }
}

/// Where S3 requests go: the endpoint and addressing style of a configuration made into URLs.
public struct S3Endpoint: Sendable {
    /// The configuration (region, endpoint, addressing style).
    public var configuration: AWSConfiguration

    /// The endpoint of `configuration`.
    public init(configuration: AWSConfiguration) { self.configuration = configuration }

    /// The URL of `key` in `bucket`, the key encoded as S3 expects (slashes kept), with `query`
    /// (already encoded, without `?`) appended.
    public func url(bucket: String, key: String, query: String = "") -> String {
        let encodedKey = SigV4Signer.encode(key, keepSlash: true)
        let suffix = query.isEmpty ? "" : "?" + query
        let (scheme, host) = schemeAndHost
        if usesVirtualHost(bucket) {
            return "\(scheme)://\(bucket).\(host)/\(encodedKey)\(suffix)"
        }
        let base = "\(scheme)://\(host)\(basePath)"
        return "\(base)/\(bucket)/\(encodedKey)\(suffix)"
    }

    /// The URL of a bucket, for listing (`?list-type=2…`).
    public func bucketURL(_ bucket: String, query: String) -> String {
        let (scheme, host) = schemeAndHost
        if usesVirtualHost(bucket) { return "\(scheme)://\(bucket).\(host)/?\(query)" }
        return "\(scheme)://\(host)\(basePath)/\(bucket)?\(query)"
    }

    /// Whether `bucket` goes into the host name.
    public func usesVirtualHost(_ bucket: String) -> Bool {
        let dnsCompatible = !bucket.contains(".") && !bucket.contains("_")
            && bucket.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "-" }
        switch configuration.addressingStyle {
        case .path: return false
        case .virtual: return true
        case .auto: return configuration.endpoint == nil && dnsCompatible
        }
    }

    private var schemeAndHost: (String, String) {
        guard let endpoint = configuration.endpoint else {
            return ("https", "s3.\(configuration.region).amazonaws.com")
        }
        let lower = endpoint.lowercased()
        let scheme = lower.hasPrefix("http://") ? "http" : "https"
        var rest = Substring(endpoint)
        if let range = rest.firstRange(of: "://") { rest = rest[range.upperBound...] }
        let hostEnd = rest.firstIndex(of: "/") ?? rest.endIndex
        return (scheme, String(rest[..<hostEnd]))
    }

    /// A path the endpoint URL carries (some gateways serve S3 below one), without a trailing slash.
    private var basePath: String {
        guard let endpoint = configuration.endpoint else { return "" }
        var rest = Substring(endpoint)
        if let range = rest.firstRange(of: "://") { rest = rest[range.upperBound...] }
        guard let slash = rest.firstIndex(of: "/") else { return "" }
        var path = String(rest[slash...])
        while path.hasSuffix("/") { path.removeLast() }
        return path
    }
}
