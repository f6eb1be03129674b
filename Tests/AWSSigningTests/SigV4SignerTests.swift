@testable import AWSSigning
import Foundation
import Testing

/// The worked examples of AWS's S3 documentation ("Signature Calculations for the Authorization Header:
/// Transferring Payload in a Single Chunk"), then the same requests and more signed by botocore.
@Suite struct SigV4SignerTests {
    static let example = SigV4Signer(
        credentials: AWSCredentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE",
                                    secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        region: "us-east-1")
    /// 2013-05-24T00:00:00Z, the examples' date.
    static let time = 1_369_353_600

    static func authorization(_ headers: [(String, String)]) -> String? {
        headers.first { $0.0 == "Authorization" }?.1
    }

    @Test func getObjectWithRange() {
        let headers = Self.example.signedHeaders(method: "GET", url: "https://examplebucket.s3.amazonaws.com/test.txt",
            headers: [("Range", "bytes=0-9")], payloadHash: SigV4Signer.emptyPayloadHash, time: Self.time)
        #expect(Self.authorization(headers) == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/"
            + "s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            + "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
        #expect(headers.first { $0.0 == "x-amz-date" }?.1 == "20130524T000000Z")
    }

    @Test func putObject() {
        let body = Array("Welcome to Amazon S3.".utf8)
        let hash = SigV4Signer.payloadHash(body)
        #expect(hash == "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072")
        let headers = Self.example.signedHeaders(method: "PUT",
            url: "https://examplebucket.s3.amazonaws.com/test$file.text",
            headers: [("Date", "Fri, 24 May 2013 00:00:00 GMT"), ("x-amz-storage-class", "REDUCED_REDUNDANCY")],
            payloadHash: hash, time: Self.time)
        #expect(Self.authorization(headers)?.hasSuffix("SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;"
            + "x-amz-storage-class, Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd")
            == true)
    }

    @Test func getBucketLifecycle() {
        let headers = Self.example.signedHeaders(method: "GET",
            url: "https://examplebucket.s3.amazonaws.com/?lifecycle",
            headers: [], payloadHash: SigV4Signer.emptyPayloadHash, time: Self.time)
        #expect(Self.authorization(headers)?.hasSuffix(
            "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543") == true)
    }

    @Test func listObjects() {
        let headers = Self.example.signedHeaders(method: "GET",
            url: "https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J",
            headers: [], payloadHash: SigV4Signer.emptyPayloadHash, time: Self.time)
        #expect(Self.authorization(headers)?.hasSuffix(
            "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7") == true)
    }

    @Test func canonicalPiecesFollowTheRules() {
        #expect(SigV4Signer.canonicalQuery("uploadId=a%2Fb&partNumber=3") == "partNumber=3&uploadId=a%2Fb")
        #expect(SigV4Signer.canonicalQuery("uploads") == "uploads=")
        #expect(SigV4Signer.canonicalPath("/b/a%20b/c~d") == "/b/a%20b/c~d")
        #expect(SigV4Signer.canonicalPath("/b/a+b") == "/b/a%2Bb")
        #expect(SigV4Signer.trimmedValue("  a   b  ") == "a b")
        #expect(SigV4Signer.urlParts("http://127.0.0.1:80/x?y").host == "127.0.0.1")
        #expect(SigV4Signer.urlParts("http://127.0.0.1:9000/x?y") == ("127.0.0.1:9000", "/x", "y"))
    }

    @Test func sessionTokenIsSentAndSigned() {
        var signer = Self.example
        signer.credentials.sessionToken = "token/with+chars"
        let headers = signer.signedHeaders(method: "GET", url: "https://b.s3.amazonaws.com/k", headers: [],
            payloadHash: SigV4Signer.unsignedPayload, time: Self.time)
        #expect(headers.contains { $0.0 == "x-amz-security-token" && $0.1 == "token/with+chars" })
        #expect(Self.authorization(headers)?.contains("x-amz-security-token") == true)
    }

    /// The requests the push and the client send, signed by botocore's own S3 signer at the same time:
    /// both must produce the same Authorization header.
    @Test func agreesWithBotocore() throws {
        struct Case { var method: String; var url: String; var headers: [(String, String)]; var body: String
            var token: String? }
        let cases = [
            Case(method: "GET", url: "http://127.0.0.1:9000/bucket/dir/file%20name.iso",
                 headers: [("Range", "bytes=0-1023")],
                 body: "", token: nil),
            Case(method: "PUT",
                 url: "http://127.0.0.1:9000/bucket/k%C3%A9y/%2B%26%3D.bin?partNumber=7&uploadId=abc%2Fdef",
                 headers: [("x-amz-copy-source", "bucket/old%20key.iso"),
                           ("x-amz-copy-source-range", "bytes=0-5242879"),
                           ("x-amz-copy-source-if-match", "\"d41d8cd98f00b204e9800998ecf8427e-3\"")],
                 body: "", token: "FQoGZXIvYXdzE///session"),
            Case(method: "POST", url: "https://bucket.s3.eu-west-1.amazonaws.com/a/b.iso?uploads", headers: [
                ("Content-Type", "application/octet-stream")], body: "", token: nil),
            Case(method: "POST", url: "http://localhost:4566/bucket/a/b.iso?uploadId=xyz",
                 headers: [("If-Match", "\"abc\""), ("Content-Type", "application/xml")],
                 body: "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>",
                 token: nil),
            Case(method: "GET",
                 url: "http://127.0.0.1:9000/bucket?list-type=2&prefix=tree%2F&continuation-token=a%2Bb%3D",
                 headers: [], body: "", token: nil),
            Case(method: "DELETE", url: "http://127.0.0.1:9000/bucket/tree/.slicesync/x.slicesync", headers: [],
                 body: "",
                 token: nil),
        ]
        let script = """
            import json, sys, datetime
            from unittest import mock
            import botocore.auth
            from botocore.auth import S3SigV4Auth
            from botocore.awsrequest import AWSRequest
            from botocore.credentials import Credentials
            out = []
            when = datetime.datetime(2024, 2, 29, 23, 59, 58, tzinfo=datetime.timezone.utc)
            for case in json.load(sys.stdin):
                region = case["region"]
                credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", case["token"])
                request = AWSRequest(method=case["method"], url=case["url"], headers=dict(case["headers"]),
                                     data=case["body"].encode())
                with mock.patch.object(botocore.auth, "get_current_datetime", return_value=when):
                    S3SigV4Auth(credentials, "s3", region).add_auth(request)
                out.append(request.headers["Authorization"])
            print(json.dumps(out))
            """
        let input = try JSONSerialization.data(withJSONObject: cases.map { item -> [String: Any] in
            ["method": item.method, "url": item.url, "headers": item.headers.map { [$0.0, $0.1] }, "body": item.body,
             "token": item.token as Any, "region": item.url.contains("eu-west-1") ? "eu-west-1" : "us-east-1"]
        })
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script]
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        stdin.fileHandleForWriting.write(input)
        try stdin.fileHandleForWriting.close()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "botocore is needed: pip install botocore")
        let expected = try #require(try JSONSerialization.jsonObject(with: output) as? [String])
        try #require(expected.count == cases.count)
        // 2024-02-29T23:59:58Z: a leap day, a second before midnight.
        let time = 1_709_251_198
        for (item, botocore) in zip(cases, expected) {
            let signer = SigV4Signer(credentials: AWSCredentials(accessKeyID: "AKIDEXAMPLE",
                secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", sessionToken: item.token),
                region: item.url.contains("eu-west-1") ? "eu-west-1" : "us-east-1")
            let payload = item.url.hasPrefix("https") && item.body.isEmpty ? SigV4Signer.emptyPayloadHash
                : SigV4Signer.payloadHash(Array(item.body.utf8))
            let ours = signer.signedHeaders(method: item.method, url: item.url, headers: item.headers,
                                            payloadHash: payload, time: time)
            #expect(Self.authorization(ours) == botocore, "\(item.method) \(item.url)")
        }
    }
}
