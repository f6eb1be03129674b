import Crypto
#if canImport(Glibc)
import Glibc
#endif

/// An AWS access key, with the session token of temporary credentials.
public struct AWSCredentials: Sendable, Equatable {
    /// The access key ID (`AKIA…`, or `ASIA…` for temporary credentials).
    public var accessKeyID: String
    /// The secret that signs requests.
    public var secretAccessKey: String
    /// The token temporary credentials come with; sent as `x-amz-security-token`.
    public var sessionToken: String?

    /// Credentials from their parts.
    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }
}

/// AWS Signature Version 4 for one service and region, as S3 checks it: the canonical request, the
/// string to sign, the key derived by four HMACs, and the `Authorization` header.
///
/// Pure: the time is an argument, so the worked examples of AWS's documentation are tests.
public struct SigV4Signer: Sendable {
    /// Whose key signs.
    public var credentials: AWSCredentials
    /// The region, such as `us-east-1`.
    public var region: String
    /// The service, `s3` here.
    public var service: String

    /// The payload hash for a body that is not signed (S3 accepts it over any transport).
    public static let unsignedPayload = "UNSIGNED-PAYLOAD"
    /// SHA-256 of nothing: the payload hash of a request without a body.
    public static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    /// Headers never signed: proxies and clients change them (botocore leaves out the same ones).
    static let unsignedHeaders: Set<String> = ["user-agent", "expect", "x-amzn-trace-id", "connection",
                                               "transfer-encoding", "content-length"]

    /// A signer.
    public init(credentials: AWSCredentials, region: String, service: String = "s3") {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// The headers to add to a request so that AWS accepts it: `x-amz-date`, `x-amz-content-sha256`,
    /// `x-amz-security-token` for temporary credentials, and `Authorization`. `url` is the absolute URL
    /// the request goes to (its path and query percent-encoded); `headers` are the request's other
    /// headers, all signed (with `host` added from the URL when absent); `payloadHash` is the lowercase
    /// hex SHA-256 of the body, `UNSIGNED-PAYLOAD`, or the empty hash; `time` is seconds since 1970.
    public func signedHeaders(method: String, url: String, headers: [(String, String)], payloadHash: String,
                              time: Int) -> [(String, String)] {
        let stamp = Self.timestamp(time)
        let day = String(stamp.prefix(8))
        var added: [(String, String)] = [("x-amz-date", stamp), ("x-amz-content-sha256", payloadHash)]
        if let token = credentials.sessionToken, !token.isEmpty { added.append(("x-amz-security-token", token)) }
        let parts = Self.urlParts(url)
        var all = headers + added
        if !all.contains(where: { $0.0.lowercased() == "host" }) { all.append(("host", parts.host)) }
        let canonical = Self.canonicalRequest(method: method, path: parts.path, query: parts.query, headers: all,
                                              payloadHash: payloadHash)
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let requestHash = Self.hex(SHA256.hash(data: Array(canonical.request.utf8)))
        let toSign = "AWS4-HMAC-SHA256\n\(stamp)\n\(scope)\n" + requestHash
        let signature = Self.hex(HMAC<SHA256>.authenticationCode(for: Array(toSign.utf8), using: signingKey(day: day)))
        let authorization = "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), "
            + "SignedHeaders=\(canonical.signedHeaders), Signature=\(signature)"
        return added + [("Authorization", authorization)]
    }

    /// The key of one day: HMACs of the date, region, service and `aws4_request` in turn.
    func signingKey(day: String) -> SymmetricKey {
        var key = SymmetricKey(data: Array(("AWS4" + credentials.secretAccessKey).utf8))
        for part in [day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Array(HMAC<SHA256>.authenticationCode(for: Array(part.utf8), using: key)))
        }
        return key
    }

    /// The canonical request and its signed header list.
    static func canonicalRequest(method: String, path: String, query: String, headers: [(String, String)],
                                 payloadHash: String) -> (request: String, signedHeaders: String) {
        var byName: [String: [String]] = [:]
        for (name, value) in headers {
            let lower = name.lowercased()
            guard !unsignedHeaders.contains(lower) else { continue }
            byName[lower, default: []].append(trimmedValue(value))
        }
        let names = byName.keys.sorted()
        let canonicalHeaders = names.map { "\($0):\(byName[$0, default: []].joined(separator: ","))\n" }.joined()
        let signed = names.joined(separator: ";")
        let request = [method.uppercased(), canonicalPath(path), canonicalQuery(query), canonicalHeaders, signed,
                       payloadHash].joined(separator: "\n")
        return (request, signed)
    }

    /// S3's canonical URI: each segment decoded and encoded once more, slashes kept (no double encoding,
    /// unlike other services).
    static func canonicalPath(_ path: String) -> String {
        guard !path.isEmpty else { return "/" }
        return path.split(separator: "/", omittingEmptySubsequences: false)
            .map { encode(decode(String($0)), keepSlash: false) }.joined(separator: "/")
    }

    /// Query parameters decoded, encoded strictly, sorted by name then value.
    static func canonicalQuery(_ query: String) -> String {
        guard !query.isEmpty else { return "" }
        let pairs = query.split(separator: "&").map { item -> (String, String) in
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = encode(decode(String(parts[0])), keepSlash: false)
            let value = parts.count > 1 ? encode(decode(String(parts[1])), keepSlash: false) : ""
            return (name, value)
        }
        return pairs.sorted { $0.0 == $1.0 ? $0.1 < $1.1 : $0.0 < $1.0 }.map { "\($0.0)=\($0.1)" }
            .joined(separator: "&")
    }

    /// Leading and trailing spaces removed, inner runs of spaces made one.
    static func trimmedValue(_ value: String) -> String {
        var result = ""
        var pendingSpace = false
        for character in value {
            if character == " " || character == "\t" {
                pendingSpace = !result.isEmpty
            } else {
                if pendingSpace { result.append(" ") }
                pendingSpace = false
                result.append(character)
            }
        }
        return result
    }

    /// Percent-encodes every byte but the unreserved characters (and `/` when `keepSlash`), uppercase hex,
    /// as AWS requires.
    public static func encode(_ text: String, keepSlash: Bool) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                 UInt8(ascii: "~"):
                result.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: "/") where keepSlash:
                result.append("/")
            default:
                let digits = Array("0123456789ABCDEF".unicodeScalars)
                result.unicodeScalars.append("%")
                result.unicodeScalars.append(digits[Int(byte >> 4)])
                result.unicodeScalars.append(digits[Int(byte & 15)])
            }
        }
        return result
    }

    /// Percent-decodes; a malformed escape is kept as it is.
    static func decode(_ text: String) -> String {
        guard text.contains("%") else { return text }
        var bytes: [UInt8] = []
        let source = Array(text.utf8)
        var index = 0
        func hexValue(_ byte: UInt8) -> UInt8? {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        while index < source.count {
            if source[index] == UInt8(ascii: "%"), index + 2 < source.count,
               let high = hexValue(source[index + 1]), let low = hexValue(source[index + 2]) {
                bytes.append(high << 4 | low)
                index += 3
            } else {
                bytes.append(source[index])
                index += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Host (with a port that is not the scheme's default), path and query of an absolute URL.
    static func urlParts(_ url: String) -> (host: String, path: String, query: String) {
        var rest = Substring(url)
        var defaultPort = ""
        if let range = rest.firstRange(of: "://") {
            defaultPort = rest[..<range.lowerBound].lowercased() == "https" ? ":443" : ":80"
            rest = rest[range.upperBound...]
        }
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        var host = String(rest[..<authorityEnd])
        if let at = host.lastIndex(of: "@") { host = String(host[host.index(after: at)...]) }
        if host.hasSuffix(defaultPort) { host = String(host.dropLast(defaultPort.count)) }
        let pathAndQuery = rest[authorityEnd...]
        let mark = pathAndQuery.firstIndex(of: "?")
        let path = String(mark.map { pathAndQuery[..<$0] } ?? pathAndQuery)
        let query = mark.map { String(pathAndQuery[pathAndQuery.index(after: $0)...]) } ?? ""
        return (host.lowercased(), path.isEmpty ? "/" : path, query)
    }

    /// `YYYYMMDDTHHMMSSZ` in UTC.
    static func timestamp(_ time: Int) -> String {
        var seconds = time_t(time)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return pad(parts.tm_year + 1900, 4) + pad(parts.tm_mon + 1, 2) + pad(parts.tm_mday, 2) + "T"
            + pad(parts.tm_hour, 2) + pad(parts.tm_min, 2) + pad(parts.tm_sec, 2) + "Z"
    }

    /// Lowercase hex.
    public static func hex<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        let digits = Array("0123456789abcdef".unicodeScalars)
        var result = ""
        for byte in bytes {
            result.unicodeScalars.append(digits[Int(byte >> 4)])
            result.unicodeScalars.append(digits[Int(byte & 15)])
        }
        return result
    }

    /// Lowercase hex SHA-256 of `bytes`, the payload hash of a body held in memory.
    public static func payloadHash(_ bytes: [UInt8]) -> String { hex(SHA256.hash(data: bytes)) }
}

/// SHA-256 fed piece by piece, for the payload hash of a body streamed from a file.
public struct PayloadHasher: Sendable {
    private var hasher = SHA256()

    /// A hasher with nothing fed.
    public init() {}

    /// Feeds bytes.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) { hasher.update(bufferPointer: bytes) }

    /// The lowercase hex digest.
    public func finalize() -> String { SigV4Signer.hex(hasher.finalize()) }
}
