@testable import AWSSigning
import Foundation
import Testing
import TestSupport

@Suite struct AWSConfigurationTests {
    static func files(credentials: String, config: String) throws -> (TemporaryDirectory, [String: String]) {
        let directory = try TemporaryDirectory()
        try directory.write("credentials", Array(credentials.utf8))
        try directory.write("config", Array(config.utf8))
        return (directory, ["HOME": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": directory.file("credentials"),
                            "AWS_CONFIG_FILE": directory.file("config")])
    }

    static let credentials = """
        [default]
        aws_access_key_id = AKIADEFAULT
        aws_secret_access_key = secret/default
        # a comment
        [publisher]
        aws_access_key_id=AKIAPUBLISHER
        aws_secret_access_key=secret+publisher
        aws_session_token = token
        """
    static let config = """
        [default]
        region = eu-west-3
        [profile publisher]
        region = ap-south-1
        s3 =
          addressing_style = path
          endpoint_url = http://127.0.0.1:9000
        [profile sso]
        sso_session = corp
        """

    @Test func theEnvironmentComesFirst() throws {
        let (directory, environment) = try Self.files(credentials: Self.credentials, config: Self.config)
        let loaded = try AWSConfiguration.load(environment: environment.merging([
            "AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": "env", "AWS_REGION": "us-west-2",
            "AWS_ENDPOINT_URL": "http://localhost:4566"]) { $1 })
        #expect(loaded.credentials == AWSCredentials(accessKeyID: "AKIAENV", secretAccessKey: "env"))
        #expect(loaded.region == "us-west-2")
        #expect(loaded.endpoint == "http://localhost:4566")
        _ = directory
    }

    @Test func profilesComeFromTheFiles() throws {
        let (directory, environment) = try Self.files(credentials: Self.credentials, config: Self.config)
        let standard = try AWSConfiguration.load(environment: environment)
        #expect(standard.credentials?.accessKeyID == "AKIADEFAULT")
        #expect(standard.region == "eu-west-3")
        #expect(standard.addressingStyle == .auto)
        let publisher = try AWSConfiguration.load(environment: environment.merging(["AWS_PROFILE": "publisher"]) { $1 })
        #expect(publisher.credentials == AWSCredentials(accessKeyID: "AKIAPUBLISHER",
                                                        secretAccessKey: "secret+publisher", sessionToken: "token"))
        #expect(publisher.region == "ap-south-1")
        #expect(publisher.addressingStyle == .path)
        #expect(publisher.endpoint == "http://127.0.0.1:9000")
        _ = directory
    }

    @Test func unusableSettingsAreClearErrors() throws {
        let (directory, environment) = try Self.files(credentials: Self.credentials, config: Self.config)
        #expect(throws: AWSConfigurationError.self) {
            try AWSConfiguration.load(environment: environment.merging(["AWS_PROFILE": "missing"]) { $1 })
        }
        #expect(throws: AWSConfigurationError.self) {
            try AWSConfiguration.load(environment: environment.merging(["AWS_PROFILE": "sso"]) { $1 })
        }
        #expect(throws: AWSConfigurationError.self) {
            try AWSConfiguration.load(environment: environment.merging(["AWS_ACCESS_KEY_ID": "AKIA"]) { $1 })
        }
        let none = try AWSConfiguration.load(environment: ["HOME": "/nonexistent"])
        #expect(none.credentials == nil && none.region == "us-east-1")
        _ = directory
    }

    @Test func locationsAndAddressing() throws {
        let file = try S3Location(parsing: "s3://my-bucket/dir/file name+1.iso")
        #expect(file.bucket == "my-bucket" && file.key == "dir/file name+1.iso" && !file.isPrefix)
        #expect(try S3Location(parsing: "s3://my-bucket").isPrefix)
        #expect(try S3Location(parsing: "s3://my-bucket/tree/").isPrefix)
        #expect(throws: AWSConfigurationError.self) { try S3Location(parsing: "s3://a/key") }
        #expect(throws: AWSConfigurationError.self) { try S3Location(parsing: "s3://bucket/a\u{1}b") }

        let aws = S3Endpoint(configuration: AWSConfiguration(credentials: nil, region: "eu-west-1"))
        #expect(aws.url(bucket: "my-bucket", key: file.key)
            == "https://my-bucket.s3.eu-west-1.amazonaws.com/dir/file%20name%2B1.iso")
        #expect(aws.url(bucket: "dotted.bucket", key: "k") == "https://s3.eu-west-1.amazonaws.com/dotted.bucket/k")
        let local = S3Endpoint(configuration: AWSConfiguration(credentials: nil, endpoint: "http://127.0.0.1:9000/"))
        #expect(local.url(bucket: "b1b", key: "a/b", query: "uploads") == "http://127.0.0.1:9000/b1b/a/b?uploads")
        #expect(local.bucketURL("b1b", query: "list-type=2") == "http://127.0.0.1:9000/b1b?list-type=2")
        let virtual = S3Endpoint(configuration: AWSConfiguration(credentials: nil, endpoint: "https://minio.example",
                                                                 addressingStyle: .virtual))
        #expect(virtual.url(bucket: "b1b", key: "k") == "https://b1b.minio.example/k")
    }
}
