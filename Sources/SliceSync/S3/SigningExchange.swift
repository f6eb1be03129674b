/// An `HTTPExchange` that signs each GET for S3 with the client's credentials: the sync and the mirror
/// read private buckets through it unchanged (each redirect hop is signed for its own URL).
public struct SigningExchange: HTTPExchange {
    let inner: HTTPExchange
    let client: S3Client

    /// Signs requests of `inner` with `client`'s credentials.
    public init(_ inner: HTTPExchange, client: S3Client) {
        self.inner = inner
        self.client = client
    }

    public func get(_ url: String, headers: [(String, String)], head: (HTTPResponseHead) throws -> Void,
                    body: (UnsafeRawBufferPointer) throws -> Void) async throws {
        try await inner.get(url, headers: headers + client.signingHeaders(get: url, headers: headers), head: head,
                            body: body)
    }
}
