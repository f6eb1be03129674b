import Foundation
import SliceSync
import Testing

/// A signed tree served by `syncserver` over HTTPS with test certificates (see Servers/certs.py).
struct TLSScenario {
    let scratch: Scratch
    let new: Data
    var certificates: String { scratch.file("certs") }

    init() throws {
        scratch = try Scratch()
        let old = pseudoRandomData(1_500_000, seed: 130)
        var bytes = [UInt8](old)
        bytes[700_000] ^= 0x42
        new = Data(bytes)
        try scratch.write("pub/file.bin", new)
        try scratch.write("client/old.bin", old)
        try FileManager.default.createDirectory(atPath: certificates, withIntermediateDirectories: true)
        let made = try ProgramRunner.run("/usr/bin/python3", [
            TestServer.serversDirectory.appendingPathComponent("certs.py").path, certificates,
        ])
        precondition(made.status == 0, "certs.py: \(made.stderr) (pip install cryptography)")
        let signed = try ProgramRunner.run("shash", ["-q", scratch.file("pub")])
        precondition(signed.status == 0, signed.stderr)
    }

    func server(_ name: String) throws -> TestServer {
        try TestServer.syncserver(root: scratch.file("pub"), extra: [
            "--tls-cert", "\(certificates)/\(name).pem", "--tls-key", "\(certificates)/\(name).key", "--access-log",
        ])
    }

    func sync(_ server: TestServer, _ extra: [String] = [], environment: [String: String] = [:],
              output: String = "client/file.bin") throws -> ProgramRunner.Result {
        try ProgramRunner.run("slicesync", ["\(server.base)/file.bin", "--alike", scratch.file("client/old.bin"),
                                            "-o", scratch.file(output)] + extra, environment: environment)
    }
}

@Suite("HTTPS and HTTP/2 between syncserver and slicesync", .serialized)
struct TLSEndToEndTests {
    /// An untrusted certificate is refused in words and nothing is written; trusting it with --cacert or
    /// SSL_CERT_FILE, or --insecure, rebuilds the file over HTTP/2.
    @Test func aSelfSignedCertificateIsRefusedUntilTrusted() throws {
        let scenario = try TLSScenario()
        let server = try scenario.server("good")
        let refused = try scenario.sync(server, environment: ["SSL_CERT_FILE": ""])
        #expect(refused.status == 4, "\(refused.stderr)")
        #expect(refused.stderr.contains("is not trusted") && refused.stderr.contains("--cacert"), "\(refused.stderr)")
        #expect(!refused.stderr.contains(".swift"), "a source path leaked: \(refused.stderr)")
        #expect(!scenario.scratch.exists("client/file.bin"))
        let trustOptions: [([String], [String: String])] = [
            (["--cacert", "\(scenario.certificates)/good.pem"], [:]),
            ([], ["SSL_CERT_FILE": "\(scenario.certificates)/good.pem"]),
            (["--insecure"], [:]),
        ]
        _ = server.printed()
        for (index, (extra, environment)) in trustOptions.enumerated() {
            let output = "client/trusted-\(index).bin"
            let result = try scenario.sync(server, extra, environment: environment, output: output)
            #expect(result.status == 0, "\(extra) \(environment): \(result.stderr)")
            #expect(try scenario.scratch.read(output) == scenario.new)
        }
        // The client asked for HTTP/2, and got it, for the signature and the data alike.
        let log = server.printed()
        #expect(log.contains("HTTP/2.0\" 206"), "\(log)")
        #expect(!log.contains("HTTP/1.1"), "\(log)")
    }

    /// A certificate for another name and an expired one are explained as such.
    @Test func wrongNamesAndExpiredCertificatesAreExplained() throws {
        let scenario = try TLSScenario()
        for (name, words) in [("other", "is for example.org, not 127.0.0.1"), ("expired", "expired on")] {
            let server = try scenario.server(name)
            let result = try scenario.sync(server, ["--cacert", "\(scenario.certificates)/\(name).pem"])
            #expect(result.status == 4, "\(name): \(result.stderr)")
            #expect(result.stderr.contains(words), "\(name): \(result.stderr)")
            #expect(!scenario.scratch.exists("client/file.bin"))
        }
        let missing = try scenario.sync(try scenario.server("good"), ["--cacert", scenario.scratch.file("nothing.pem")])
        #expect(missing.status == 4 && missing.stderr.contains("nothing.pem"), "\(missing.stderr)")
    }

    /// SIGHUP makes the server read its certificate files again (after a renewal), for new connections.
    @Test func sighupReloadsTheCertificate() throws {
        let scenario = try TLSScenario()
        let certificate = scenario.scratch.file("live.pem")
        let key = scenario.scratch.file("live.key")
        let fm = FileManager.default
        try fm.copyItem(atPath: "\(scenario.certificates)/other.pem", toPath: certificate)
        try fm.copyItem(atPath: "\(scenario.certificates)/other.key", toPath: key)
        let server = try TestServer.syncserver(root: scenario.scratch.file("pub"),
                                               extra: ["--tls-cert", certificate, "--tls-key", key])
        let trust = ["--cacert", "\(scenario.certificates)/good.pem"]
        #expect(try scenario.sync(server, trust).status == 4)
        try fm.removeItem(atPath: certificate)
        try fm.removeItem(atPath: key)
        try fm.copyItem(atPath: "\(scenario.certificates)/good.pem", toPath: certificate)
        try fm.copyItem(atPath: "\(scenario.certificates)/good.key", toPath: key)
        kill(server.process.processIdentifier, SIGHUP)
        let deadline = Date().addingTimeInterval(10)
        var result = try scenario.sync(server, trust)
        while result.status != 0 && Date() < deadline {
            usleep(200_000)
            result = try scenario.sync(server, trust)
        }
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try scenario.scratch.read("client/file.bin") == scenario.new)
        #expect(server.process.isRunning)
    }
}
