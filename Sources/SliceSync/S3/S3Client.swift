import AWSSigning
#if canImport(Glibc)
import Glibc
#endif
import Logging
import Synchronization

/// A failure to publish, with a stable code.
public struct PublishError: Error, Sendable, CustomStringConvertible {
    /// What went wrong; stable across releases.
    public enum Code: String, Sendable {
        /// The credentials are refused, or missing for a bucket that is not public.
        case accessDenied = "access-denied"
        /// The object (or the tree's manifest) changed on the endpoint during the push.
        case remoteChanged = "remote-changed"
        /// The endpoint refused a request for another reason (its S3 error code is in the message).
        case rejected
        /// The local file changed while it was being pushed.
        case localChanged = "local-changed"
        /// `--delete` would remove more than allowed, or everything.
        case deleteRefused = "delete-refused"
        /// The source or the destination cannot be pushed (a directory to a key, a file to a prefix…).
        case badArguments = "bad-arguments"
    }

    /// The code.
    public var code: Code
    /// A sentence for people: what failed and what to do.
    public var message: String
    /// The HTTP status, when the endpoint answered.
    public var status: Int?
    /// S3's own error code (`NoSuchUpload`, `PreconditionFailed`…), when it sent one.
    public var s3Code: String?

    /// An error.
    public init(_ code: Code, _ message: String, status: Int? = nil, s3Code: String? = nil) {
        self.code = code
        self.message = message
        self.status = status
        self.s3Code = s3Code
    }

    /// The message.
    public var description: String { message }
}

/// What a HEAD of an object says.
public struct S3ObjectInfo: Sendable, Equatable {
    /// The ETag, with its quotes.
    public var etag: String
    /// The size in bytes.
    public var size: Int
    /// `x-amz-meta-*` headers by lowercased name, without the prefix.
    public var metadata: [String: String]
}

/// One object of a listing.
public struct S3ListedObject: Sendable, Equatable {
    /// Its key.
    public var key: String
    /// Its size.
    public var size: Int
    /// Its ETag, with its quotes.
    public var etag: String
}

/// The S3 operations publishing needs, signed with Signature Version 4 (or anonymous without
/// credentials), retried on the failures S3 asks clients to retry, and counted.
public final class S3Client: Sendable {
    /// Where requests go.
    public let endpoint: S3Endpoint
    /// Where the credentials came from, for messages.
    public let credentialsSource: String?
    let signer: SigV4Signer?
    let requester: HTTPRequester
    let logger: Logger
    private let counters = Mutex<(requests: Int, sent: Int, received: Int)>((0, 0, 0))
    /// Seconds since 1970, for signing; a test can pin it.
    let clock: @Sendable () -> Int

    /// A client for `configuration` sending through `requester`.
    public init(configuration: AWSConfiguration, requester: HTTPRequester, logger: Logger,
                clock: @escaping @Sendable () -> Int = { Int(time(nil)) }) {
        endpoint = S3Endpoint(configuration: configuration)
        credentialsSource = configuration.credentialsSource
        signer = configuration.credentials.map { SigV4Signer(credentials: $0, region: configuration.region) }
        self.requester = requester
        self.logger = logger
        self.clock = clock
    }

    /// Requests sent, request body bytes sent and reply body bytes received so far.
    public var traffic: (requests: Int, sent: Int, received: Int) { counters.withLock { $0 } }

    /// The headers that sign a GET of `url` (for the client's downloads through `HTTPExchange`).
    public func signingHeaders(get url: String, headers: [(String, String)]) -> [(String, String)] {
        guard let signer else { return [] }
        return signer.signedHeaders(method: "GET", url: url, headers: headers.filter { $0.0.lowercased() == "range" },
                                    payloadHash: SigV4Signer.emptyPayloadHash, time: clock())
    }

    // MARK: - Operations

    /// The object's ETag, size and metadata; nil when there is none.
    public func head(_ bucket: String, _ key: String) async throws -> S3ObjectInfo? {
        let reply = try await call("HEAD", endpoint.url(bucket: bucket, key: key), what: "HEAD s3://\(bucket)/\(key)",
                                   accept: [404])
        guard reply.head.status != 404 else { return nil }
        guard let etag = reply.head.value("etag"), let size = reply.head.value("content-length").flatMap({ Int($0) })
        else {
            throw PublishError(.rejected, "s3://\(bucket)/\(key): the endpoint's HEAD reply has no ETag or length")
        }
        var metadata: [String: String] = [:]
        for (name, value) in reply.head.headers where name.hasPrefix("x-amz-meta-") {
            metadata[String(name.dropFirst("x-amz-meta-".count))] = value
        }
        return S3ObjectInfo(etag: etag, size: size, metadata: metadata)
    }

    /// A small object whole, with its ETag; nil when there is none.
    public func get(_ bucket: String, _ key: String, limit: Int) async throws -> (bytes: [UInt8], etag: String?)? {
        let reply = try await call("GET", endpoint.url(bucket: bucket, key: key), limit: limit,
                                   what: "GET s3://\(bucket)/\(key)", accept: [404])
        guard reply.head.status != 404 else { return nil }
        return (reply.body, reply.head.value("etag"))
    }

    /// Stores an object in one request; returns its ETag.
    @discardableResult
    public func put(_ bucket: String, _ key: String, body: RequestBody, headers: [(String, String)] = [])
        async throws -> String {
        let reply = try await call("PUT", endpoint.url(bucket: bucket, key: key), headers: headers, body: body,
                                   what: "PUT s3://\(bucket)/\(key)")
        return reply.head.value("etag") ?? ""
    }

    /// Copies a whole object on the endpoint, if its ETag is still `ifMatch`; returns the copy's ETag.
    public func copy(from source: S3Location, ifMatch: String, to bucket: String, _ key: String,
                     headers: [(String, String)] = []) async throws -> String {
        let reply = try await call("PUT", endpoint.url(bucket: bucket, key: key),
            headers: headers + copySourceHeaders(source, ifMatch: ifMatch) + [("x-amz-metadata-directive", "REPLACE")],
            what: "copy \(source) to s3://\(bucket)/\(key)")
        return try Self.etag(in: reply, what: "the copy to s3://\(bucket)/\(key)")
    }

    /// Starts a multipart upload; returns its ID.
    public func createUpload(_ bucket: String, _ key: String, headers: [(String, String)] = []) async throws -> String {
        let reply = try await call("POST", endpoint.url(bucket: bucket, key: key, query: "uploads"), headers: headers,
                                   what: "starting an upload to s3://\(bucket)/\(key)", retriesBrokenConnections: false)
        guard let id = XMLFields.first("UploadId", in: Self.text(reply)), !id.isEmpty else {
            throw PublishError(.rejected,
                "the endpoint started an upload to s3://\(bucket)/\(key) without an upload ID")
        }
        return id
    }

    /// Uploads one part from a range of a local file; returns its ETag.
    public func uploadPart(_ bucket: String, _ key: String, uploadID: String, number: Int,
                           body: RequestBody) async throws -> String {
        let query = "partNumber=\(number)&" + Self.uploadQuery(uploadID)
        let reply = try await call("PUT", endpoint.url(bucket: bucket, key: key, query: query), body: body,
                                   what: "uploading part \(number) of s3://\(bucket)/\(key)")
        guard let etag = reply.head.value("etag") else {
            throw PublishError(.rejected, "the endpoint took part \(number) of s3://\(bucket)/\(key) without an ETag")
        }
        return etag
    }

    /// Makes one part out of a range of another object, if that object's ETag is still `ifMatch`.
    public func uploadPartCopy(_ bucket: String, _ key: String, uploadID: String, number: Int, source: S3Location,
                               range: Range<Int>, ifMatch: String) async throws -> String {
        let query = "partNumber=\(number)&" + Self.uploadQuery(uploadID)
        let headers = copySourceHeaders(source, ifMatch: ifMatch)
            + [("x-amz-copy-source-range", "bytes=\(range.lowerBound)-\(range.upperBound - 1)")]
        let reply = try await call("PUT", endpoint.url(bucket: bucket, key: key, query: query), headers: headers,
                                   what: "copying part \(number) of s3://\(bucket)/\(key) from \(source)")
        return try Self.etag(in: reply, what: "part \(number) of s3://\(bucket)/\(key)")
    }

    /// Completes an upload from its parts in order; `ifMatch` (the replaced object's ETag) or
    /// `ifNoneMatch` (no object may exist) guard it where the endpoint supports conditional writes.
    public func complete(_ bucket: String, _ key: String, uploadID: String, parts: [(number: Int, etag: String)],
                         condition: (name: String, value: String)?) async throws -> String {
        var xml = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        for part in parts {
            xml += "<Part><PartNumber>\(part.number)</PartNumber>"
                + "<ETag>\(DirectoryListing.escape(part.etag))</ETag></Part>"
        }
        xml += "</CompleteMultipartUpload>"
        let url = endpoint.url(bucket: bucket, key: key, query: Self.uploadQuery(uploadID))
        let headers = [("Content-Type", "application/xml")] + (condition.map { [($0.name, $0.value)] } ?? [])
        let reply = try await call("POST", url, headers: headers, body: .bytes(Array(xml.utf8)),
                                   what: "completing the upload of s3://\(bucket)/\(key)",
                                   retriesBrokenConnections: false)
        return try Self.etag(in: reply, what: "s3://\(bucket)/\(key)")
    }

    /// Abandons an upload and frees its parts; an upload already gone is fine.
    public func abort(_ bucket: String, _ key: String, uploadID: String) async throws {
        let url = endpoint.url(bucket: bucket, key: key, query: Self.uploadQuery(uploadID))
        _ = try await call("DELETE", url, what: "aborting the upload to s3://\(bucket)/\(key)", accept: [404])
    }

    /// Removes an object; one already gone is fine.
    public func delete(_ bucket: String, _ key: String) async throws {
        _ = try await call("DELETE", endpoint.url(bucket: bucket, key: key), what: "DELETE s3://\(bucket)/\(key)",
                           accept: [404])
    }

    /// Every object whose key starts with `prefix`, by ListObjectsV2, page by page.
    public func list(_ bucket: String, prefix: String) async throws -> [S3ListedObject] {
        var result: [S3ListedObject] = []
        var token: String?
        repeat {
            var query = "list-type=2&prefix=" + SigV4Signer.encode(prefix, keepSlash: false)
            if let token { query += "&continuation-token=" + SigV4Signer.encode(token, keepSlash: false) }
            let reply = try await call("GET", endpoint.bucketURL(bucket, query: query), limit: 16 << 20,
                                       what: "listing s3://\(bucket)/\(prefix)")
            let text = Self.text(reply)
            for entry in XMLFields.all("Contents", in: text) {
                guard let key = XMLFields.first("Key", in: entry), let size = XMLFields.first("Size", in: entry)
                    .flatMap({ Int($0) }) else { continue }
                result.append(S3ListedObject(key: key, size: size, etag: XMLFields.first("ETag", in: entry) ?? ""))
            }
            token = XMLFields.first("IsTruncated", in: text) == "true"
                ? XMLFields.first("NextContinuationToken", in: text) : nil
        } while token != nil
        return result
    }

    private static func uploadQuery(_ uploadID: String) -> String {
        "uploadId=" + SigV4Signer.encode(uploadID, keepSlash: false)
    }

    private func copySourceHeaders(_ source: S3Location, ifMatch: String) -> [(String, String)] {
        [("x-amz-copy-source", SigV4Signer.encode(source.bucket + "/" + source.key, keepSlash: true)),
         ("x-amz-copy-source-if-match", ifMatch)]
    }

    // MARK: - Sending

    /// Signs and sends one request; retries 5xx, 429 and broken connections (unless the request must not
    /// run twice) with growing pauses; turns error replies into `PublishError`s. Statuses in `accept` are
    /// returned as they are.
    func call(_ method: String, _ url: String, headers: [(String, String)] = [], body: RequestBody = .empty,
              limit: Int = 1 << 20, what: String, accept: Set<Int> = [],
              retriesBrokenConnections: Bool = true) async throws -> HTTPReply {
        let payloadHash = try await Self.payloadHash(of: body)
        var attempt = 0
        while true {
            attempt += 1
            var signed = headers
            if let signer {
                signed += signer.signedHeaders(method: method, url: url, headers: headers, payloadHash: payloadHash,
                                               time: clock())
            }
            do {
                let reply = try await requester.send(method: method, url: url, headers: signed, body: body,
                                                     limit: limit)
                counters.withLock {
                    $0.requests += 1
                    $0.sent += body.count
                    $0.received += reply.body.count
                }
                let status = reply.head.status
                let retryable = status >= 500 || status == 429
                    || ((200..<300).contains(status) && Self.text(reply).contains("<Error>")
                        && XMLFields.first("Code", in: Self.text(reply)).map(Self.retryableCodes.contains) == true)
                if retryable && attempt < 4 {
                    logger.info("\(what): \(Self.describe(reply)); trying again")
                    try await Task.sleep(nanoseconds: UInt64(200_000_000 << (2 * (attempt - 1))))
                    continue
                }
                if (200..<300).contains(status) || accept.contains(status) {
                    // UploadPartCopy and CompleteMultipartUpload can fail after a 200, with an error body.
                    if (200..<300).contains(status), method != "GET", Self.text(reply).contains("<Error>") {
                        throw failure(reply, what: what)
                    }
                    return reply
                }
                throw failure(reply, what: what)
            } catch let error as TransportError where error.code != .status && error.isTransient
                && retriesBrokenConnections && attempt < 4 {
                logger.info("\(what): \(error.message); trying again")
                try await Task.sleep(nanoseconds: UInt64(200_000_000 << (2 * (attempt - 1))))
            }
        }
    }

    /// S3 error codes that say "try again".
    static let retryableCodes: Set<String> = ["InternalError", "SlowDown", "ServiceUnavailable", "RequestTimeout"]

    /// An error reply in words.
    private func failure(_ reply: HTTPReply, what: String) -> PublishError {
        let text = Self.text(reply)
        let code = XMLFields.first("Code", in: text)
        let status = reply.head.status
        let detail = Self.describe(reply)
        if let region = reply.head.value("x-amz-bucket-region"),
           [301, 307, 400].contains(status) || code == "PermanentRedirect" || code == "AuthorizationHeaderMalformed" {
            return PublishError(.rejected, "\(what): \(detail); the bucket is in the region \(region): pass --region "
                + "\(region) (or set AWS_REGION)", status: status, s3Code: code)
        }
        switch (status, code) {
        case (412, _), (_, "PreconditionFailed"):
            return PublishError(.remoteChanged, "\(what): the object changed on the endpoint during the push "
                + "(\(detail)); nothing was published; run the push again", status: status, s3Code: code)
        case (403, _):
            let source = credentialsSource.map { "the credentials from \($0)" } ?? "no credentials (none were found)"
            return PublishError(.accessDenied, "\(what): access denied (\(detail)) with \(source); check the "
                + "credentials, the region and the bucket's policy", status: status, s3Code: code)
        default:
            return PublishError(.rejected, "\(what): \(detail)", status: status, s3Code: code)
        }
    }

    private static func describe(_ reply: HTTPReply) -> String {
        let text = Self.text(reply)
        let code = XMLFields.first("Code", in: text)
        let message = XMLFields.first("Message", in: text)
        return "HTTP \(reply.head.status)" + (code.map { " \($0)" } ?? "") + (message.map { ": \($0)" } ?? "")
    }

    private static func text(_ reply: HTTPReply) -> Substring {
        Substring(String(decoding: reply.body.prefix(1 << 20), as: UTF8.self))
    }

    private static func etag(in reply: HTTPReply, what: String) throws -> String {
        if let etag = XMLFields.first("ETag", in: text(reply)) ?? reply.head.value("etag") { return etag }
        throw PublishError(.rejected, "the endpoint answered for \(what) without an ETag")
    }

    /// The SHA-256 that signs the body: S3 then refuses a body that changed on the way.
    static func payloadHash(of body: RequestBody) async throws -> String {
        switch body {
        case .empty: return SigV4Signer.emptyPayloadHash
        case .bytes(let bytes): return SigV4Signer.payloadHash(bytes)
        case .file(let path, let range):
            var hasher = PayloadHasher()
            guard try SystemFile.openForReading(path).readChunks(range, { piece, _ in
                hasher.update(piece)
                return true
            }) else {
                throw PublishError(.localChanged, "\(path) became shorter while it was being uploaded; "
                    + "push it again once it is complete")
            }
            return hasher.finalize()
        }
    }
}

/// Equal ETags, quoted or not.
func sameETag(_ first: String, _ second: String) -> Bool {
    let trim: (String) -> Substring = { $0.drop { $0 == "\"" || $0 == "W" || $0 == "/" }.prefix { $0 != "\"" } }
    return trim(first) == trim(second)
}

extension S3Client {
    /// One range of an object.
    func getRange(_ bucket: String, _ key: String, _ range: Range<Int>) async throws -> [UInt8] {
        let reply = try await call("GET", endpoint.url(bucket: bucket, key: key),
            headers: [("Range", "bytes=\(range.lowerBound)-\(range.upperBound - 1)")], limit: range.count,
            what: "reading s3://\(bucket)/\(key)")
        guard reply.head.status == 206 || (reply.head.status == 200 && range.lowerBound == 0) else {
            throw PublishError(.rejected, "s3://\(bucket)/\(key): the endpoint answered a range request with HTTP "
                + "\(reply.head.status)")
        }
        return reply.body
    }
}
