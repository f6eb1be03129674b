#if canImport(Glibc)
import Glibc
#endif

/// What AWS configuration says, read the way the AWS CLI and SDKs read it: credentials, region,
/// endpoint and addressing style from the environment first, then from `~/.aws/credentials` and
/// `~/.aws/config` for the profile `AWS_PROFILE` names (default `default`).
public struct AWSConfiguration: Sendable, Equatable {
    /// How bucket names go into URLs.
    public enum AddressingStyle: String, Sendable, CaseIterable {
        /// `https://endpoint/BUCKET/KEY`.
        case path
        /// `https://BUCKET.endpoint/KEY`.
        case virtual
        /// Virtual-hosted on AWS when the bucket name allows it, path style on other endpoints (S3-compatible
        /// services and test servers rarely have a DNS name per bucket).
        case auto
    }

    /// The credentials; nil: requests go unsigned (public buckets).
    public var credentials: AWSCredentials?
    /// Where they came from, for messages.
    public var credentialsSource: String?
    /// The region; default `us-east-1`.
    public var region: String
    /// The endpoint, such as `http://127.0.0.1:9000`; nil: AWS's own for the region.
    public var endpoint: String?
    /// How bucket names go into URLs.
    public var addressingStyle: AddressingStyle

    /// A configuration from its parts.
    public init(credentials: AWSCredentials?, credentialsSource: String? = nil, region: String = "us-east-1",
                endpoint: String? = nil, addressingStyle: AddressingStyle = .auto) {
        self.credentials = credentials
        self.credentialsSource = credentialsSource
        self.region = region
        self.endpoint = endpoint
        self.addressingStyle = addressingStyle
    }

    /// Reads the configuration from `environment` (the process's when nil) and the files it names.
    /// Throws when a profile is named that no file defines, or when the profile has half a key.
    public static func load(environment: [String: String]? = nil) throws(AWSConfigurationError) -> AWSConfiguration {
        let environment = environment ?? currentEnvironment()
        func value(_ name: String) -> String? {
            guard let value = environment[name], !value.isEmpty else { return nil }
            return value
        }
        let home = value("HOME") ?? "/"
        let profile = value("AWS_PROFILE") ?? value("AWS_DEFAULT_PROFILE") ?? "default"
        let credentialsFile = value("AWS_SHARED_CREDENTIALS_FILE") ?? home + "/.aws/credentials"
        let configFile = value("AWS_CONFIG_FILE") ?? home + "/.aws/config"
        let credentialSections = IniFile.read(credentialsFile).map(IniFile.parse) ?? [:]
        let configSections = IniFile.read(configFile).map(IniFile.parse) ?? [:]
        let fromCredentials = credentialSections[profile]
        let fromConfig = configSections[profile == "default" ? "default" : "profile " + profile]
            ?? configSections[profile]
        let explicitProfile = value("AWS_PROFILE") != nil || value("AWS_DEFAULT_PROFILE") != nil
        if explicitProfile && fromCredentials == nil && fromConfig == nil {
            throw AWSConfigurationError("the profile \(profile) (AWS_PROFILE) is not in \(credentialsFile) or "
                + "\(configFile); add it with 'aws configure --profile \(profile)' or unset AWS_PROFILE")
        }
        var configuration = AWSConfiguration(credentials: nil)
        if let key = value("AWS_ACCESS_KEY_ID") {
            guard let secret = value("AWS_SECRET_ACCESS_KEY") else {
                throw AWSConfigurationError("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not; set both")
            }
            configuration.credentials = AWSCredentials(accessKeyID: key, secretAccessKey: secret,
                                                       sessionToken: value("AWS_SESSION_TOKEN"))
            configuration.credentialsSource = "the environment (AWS_ACCESS_KEY_ID)"
        } else {
            for (section, file) in [(fromCredentials, credentialsFile), (fromConfig, configFile)] {
                guard let section, configuration.credentials == nil else { continue }
                let key = section["aws_access_key_id"], secret = section["aws_secret_access_key"]
                if let key, let secret, !key.isEmpty, !secret.isEmpty {
                    configuration.credentials = AWSCredentials(accessKeyID: key, secretAccessKey: secret,
                                                               sessionToken: section["aws_session_token"])
                    configuration.credentialsSource = "the profile \(profile) in \(file)"
                } else if key != nil || secret != nil {
                    throw AWSConfigurationError("the profile \(profile) in \(file) has only one of "
                        + "aws_access_key_id and aws_secret_access_key; give both")
                }
            }
            if configuration.credentials == nil, let section = fromConfig,
               section["credential_process"] != nil || section["sso_session"] != nil || section["sso_start_url"] != nil
                || section["role_arn"] != nil {
                throw AWSConfigurationError("the profile \(profile) gets its credentials from SSO, a role or a "
                    + "credential_process, which slicesync does not run; export them with "
                    + "'eval $(aws configure export-credentials --profile \(profile) --format env)'")
            }
        }
        configuration.region = value("AWS_REGION") ?? value("AWS_DEFAULT_REGION") ?? fromConfig?["region"]
            ?? "us-east-1"
        configuration.endpoint = value("AWS_ENDPOINT_URL_S3") ?? value("AWS_ENDPOINT_URL")
            ?? fromConfig?["s3.endpoint_url"] ?? fromConfig?["endpoint_url"]
        if let style = fromConfig?["s3.addressing_style"] {
            guard let parsed = AddressingStyle(rawValue: style) else {
                throw AWSConfigurationError("addressing_style = \(style) in \(configFile) must be path, virtual "
                    + "or auto")
            }
            configuration.addressingStyle = parsed
        }
        return configuration
    }

    private static func currentEnvironment() -> [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            pointer += 1
        }
        return result
    }
}

/// A configuration that cannot be used as it is.
public struct AWSConfigurationError: Error, Sendable, CustomStringConvertible {
    /// What is wrong and what to do.
    public var message: String
    init(_ message: String) { self.message = message }
    /// The message.
    public var description: String { message }
}

/// The INI dialect of AWS's files: `[section]`, `name = value`, comments from `#` or `;` at the start of
/// a line, and nested settings (`s3 =` followed by indented lines) flattened to `s3.name`.
enum IniFile {
    static func read(_ path: String) -> String? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while bytes.count < 1 << 20 {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            bytes += buffer[..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func parse(_ text: String) -> [String: [String: String]] {
        var sections: [String: [String: String]] = [:]
        var current: String?
        var nested: String?
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            let line = rawLine.trimmingCharacters()
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            let indented = rawLine.first == " " || rawLine.first == "\t"
            if line.hasPrefix("["), line.hasSuffix("]") {
                current = String(line.dropFirst().dropLast()).trimmingCharacters()
                nested = nil
                if let current, sections[current] == nil { sections[current] = [:] }
                continue
            }
            guard let section = current, let equals = line.firstIndex(of: "=") else { continue }
            let name = String(line[..<equals]).trimmingCharacters().lowercased()
            let value = String(line[line.index(after: equals)...]).trimmingCharacters()
            if indented, let nested {
                sections[section]?[nested + "." + name] = value
            } else if value.isEmpty {
                nested = name
            } else {
                nested = nil
                sections[section]?[name] = value
            }
        }
        return sections
    }
}

extension StringProtocol {
    func trimmingCharacters() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return String(self[first...last])
    }
}
