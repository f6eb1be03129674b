import AWSSigning
import Logging
@testable import SliceSync
import Synchronization
import Testing

/// Answers each request with the next scripted reply, and keeps what was sent.
final class ScriptedRequester: HTTPRequester {
    struct Sent: Sendable {
        var method: String
        var url: String
        var headers: [(String, String)]
    }
    private let replies: Mutex<[HTTPReply]>
    let sent = Mutex<[Sent]>([])

    init(_ replies: [(Int, [(String, String)], String)]) {
        self.replies = Mutex(replies.map { HTTPReply(head: HTTPResponseHead(status: $0.0, headers: $0.1),
                                                     body: Array($0.2.utf8)) })
    }

    func send(method: String, url: String, headers: [(String, String)], body: RequestBody,
              limit: Int) async throws -> HTTPReply {
        sent.withLock { $0.append(Sent(method: method, url: url, headers: headers)) }
        guard let reply = replies.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else {
            throw TransportError(.connection, "no more scripted replies")
        }
        return reply
    }
}

@Suite struct S3ClientTests {
    static func client(_ requester: ScriptedRequester, credentials: Bool = true) -> S3Client {
        S3Client(configuration: AWSConfiguration(credentials: credentials ? AWSCredentials(accessKeyID: "AKID",
            secretAccessKey: "secret") : nil, endpoint: "http://127.0.0.1:9"), requester: requester,
            logger: Logger(label: "test"), clock: { 1_700_000_000 })
    }

    @Test func signsAndParsesAnUpload() async throws {
        let requester = ScriptedRequester([
            (200, [], "<InitiateMultipartUploadResult><UploadId>a/b+c</UploadId></InitiateMultipartUploadResult>"),
            (200, [], "<CopyPartResult><ETag>&quot;e1&quot;</ETag></CopyPartResult>"),
        ])
        let client = Self.client(requester)
        let id = try await client.createUpload("bkt", "dir/a b.iso")
        #expect(id == "a/b+c")
        let etag = try await client.uploadPartCopy("bkt", "dir/a b.iso", uploadID: id, number: 2,
            source: S3Location(bucket: "bkt", key: "dir/a b.iso"), range: 0..<10, ifMatch: "\"old\"")
        #expect(etag == "\"e1\"")
        let sent = requester.sent.withLock { $0 }
        #expect(sent[0].url == "http://127.0.0.1:9/bkt/dir/a%20b.iso?uploads")
        #expect(sent[1].url == "http://127.0.0.1:9/bkt/dir/a%20b.iso?partNumber=2&uploadId=a%2Fb%2Bc")
        let headers = Dictionary(sent[1].headers, uniquingKeysWith: { first, _ in first })
        #expect(headers["x-amz-copy-source"] == "bkt/dir/a%20b.iso")
        #expect(headers["x-amz-copy-source-range"] == "bytes=0-9")
        #expect(headers["x-amz-copy-source-if-match"] == "\"old\"")
        #expect(headers["Authorization"]?.contains("x-amz-copy-source-if-match") == true)
    }

    @Test func errorRepliesSayWhatFailed() async throws {
        let changed = ScriptedRequester([(412, [], "<Error><Code>PreconditionFailed</Code></Error>")])
        await #expect { try await Self.client(changed).put("bkt", "k", body: .empty) } throws: {
            ($0 as? PublishError)?.code == .remoteChanged
        }
        let denied = ScriptedRequester([(403, [], "<Error><Code>AccessDenied</Code><Message>no</Message></Error>")])
        await #expect { try await Self.client(denied, credentials: false).put("bkt", "k", body: .empty) } throws: {
            guard let error = $0 as? PublishError else { return false }
            return error.code == .accessDenied && error.message.contains("no credentials")
        }
        // A completion can fail after a 200, with an error in its body.
        let late = ScriptedRequester([(200, [], "<Error><Code>InvalidPart</Code><Message>gone</Message></Error>")])
        await #expect { try await Self.client(late).complete("bkt", "k", uploadID: "u", parts: [(1, "\"e\"")],
                                                            condition: nil) } throws: {
            ($0 as? PublishError)?.s3Code == "InvalidPart"
        }
        let region = ScriptedRequester([(301, [("x-amz-bucket-region", "eu-central-1")], "")])
        await #expect { try await Self.client(region).put("bkt", "k", body: .empty) } throws: {
            ($0 as? PublishError)?.message.contains("--region eu-central-1") == true
        }
    }

    @Test func transientFailuresAreRetried() async throws {
        let requester = ScriptedRequester([
            (503, [], "<Error><Code>SlowDown</Code></Error>"),
            (200, [], "<Error><Code>InternalError</Code></Error>"),
            (200, [("ETag", "\"ok\"")], ""),
        ])
        let etag = try await Self.client(requester).put("bkt", "k", body: .bytes([1, 2, 3]))
        #expect(etag == "\"ok\"")
        #expect(requester.sent.withLock { $0.count } == 3)
    }

    @Test func listingFollowsContinuationTokens() async throws {
        let requester = ScriptedRequester([
            (200, [], "<ListBucketResult><Contents><Key>p/a</Key><Size>1</Size><ETag>\"x\"</ETag></Contents>"
                + "<IsTruncated>true</IsTruncated><NextContinuationToken>t+1/</NextContinuationToken>"
                + "</ListBucketResult>"),
            (200, [], "<ListBucketResult><Contents><Key>p/b &amp; c</Key><Size>22</Size><ETag>\"y\"</ETag></Contents>"
                + "<IsTruncated>false</IsTruncated></ListBucketResult>"),
        ])
        let listed = try await Self.client(requester).list("bkt", prefix: "p/")
        #expect(listed == [S3ListedObject(key: "p/a", size: 1, etag: "\"x\""),
                           S3ListedObject(key: "p/b & c", size: 22, etag: "\"y\"")])
        #expect(requester.sent.withLock { $0[1].url }.hasSuffix("continuation-token=t%2B1%2F"))
    }
}
