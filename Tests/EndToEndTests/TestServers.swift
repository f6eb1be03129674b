import Foundation
import TestSupport

/// A server process on 127.0.0.1 for one test, stopped by PID when the value goes away.
final class TestServer {
    let process: Process
    let port: Int
    /// `https` for a server started with TLS.
    var scheme = "http"
    var base: String { "\(scheme)://127.0.0.1:\(port)" }
    /// The server's standard output after the line that gave its port, when it was kept.
    private let output: Pipe?

    private init(process: Process, port: Int, output: Pipe? = nil) {
        self.process = process
        self.port = port
        self.output = output
    }

    /// What the server printed since the last call (its access log, say); waits briefly for it.
    func printed() -> String {
        guard let handle = output?.fileHandleForReading else { return "" }
        var flags = fcntl(handle.fileDescriptor, F_GETFL)
        flags |= O_NONBLOCK
        _ = fcntl(handle.fileDescriptor, F_SETFL, flags)
        usleep(200_000)
        var text = ""
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(handle.fileDescriptor, &buffer, buffer.count)
            guard count > 0 else { break }
            text += String(decoding: buffer[0..<count], as: UTF8.self)
        }
        return text
    }

    deinit { Self.stop(process) }

    /// Stops a server: SIGTERM (nginx then stops its workers), SIGKILL after two seconds (a child of
    /// Foundation's Process may have SIGTERM blocked), and reaps it with waitpid, because
    /// Process.waitUntilExit can wait forever when SIGCHLD is blocked too.
    static func stop(_ process: Process) {
        let pid = process.processIdentifier
        guard pid > 0 else { return }
        kill(pid, SIGTERM)
        var status: Int32 = 0
        for _ in 0..<40 {
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid || reaped < 0 { return }
            usleep(50_000)
        }
        kill(pid, SIGKILL)
        _ = waitpid(pid, &status, 0)
    }

    static var serversDirectory: URL { URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().appendingPathComponent("Servers") }

    /// Starts the fault-injection server serving `root` in `mode`.
    static func fault(root: String, mode: String) throws -> TestServer {
        try reportingPort(["python3", serversDirectory.appendingPathComponent("faultserver.py").path, root, mode],
            name: "the fault server", pattern: #"^(\d+)"#)
    }

    /// Starts Python's `http.server`, which ignores Range headers and always sends the whole file.
    static func pythonHTTPServer(root: String) throws -> TestServer {
        try reportingPort(["python3", "-u", "-m", "http.server", "--bind", "127.0.0.1", "--directory", root, "0"],
            name: "python3 -m http.server", pattern: #"port (\d+)"#)
    }

    /// Starts an S3-compatible endpoint (moto) holding `root` uploaded to s3://`bucket`/`prefix`/.
    static func s3(root: String, bucket: String, prefix: String) throws -> TestServer {
        try reportingPort(["python3", serversDirectory.appendingPathComponent("s3server.py").path, root, bucket,
            prefix], name: "the S3 endpoint (pip install 'moto[server]')", pattern: #"^(\d+)"#)
    }

    /// Starts an empty S3-compatible endpoint, moto or localbucket (which stores in `data`), with `bucket`.
    static func s3Endpoint(kind: String, data: String, bucket: String) throws -> TestServer {
        try reportingPort(["python3", serversDirectory.appendingPathComponent("s3endpoint.py").path, kind, data,
                           bucket],
            name: "the S3 endpoint (pip install 'moto[server]' localbucket)", pattern: #"^(\d+)"#)
    }

    /// Runs a command that prints its port on standard output; waits for that line (60 s at most).
    private static func reportingPort(_ command: [String], name: String, pattern: String) throws -> TestServer {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = command
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let expression = try NSRegularExpression(pattern: pattern, options: [.anchorsMatchLines])
        var text = ""
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline && process.isRunning {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
            if let match = expression.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)),
               let range = Range(match.range(at: 1), in: text), let port = Int(text[range]) {
                return TestServer(process: process, port: port, output: out)
            }
        }
        stop(process)
        throw NSError(domain: "TestServer", code: 4,
            userInfo: [NSLocalizedDescriptionKey: "\(name) did not start: \(text)"])
    }

    /// Starts the built syncserver on `root` and a free port; waits until it prints its URL.
    static func syncserver(root: String, extra: [String] = []) throws -> TestServer {
        let program = ProgramRunner.buildDirectory.appendingPathComponent("syncserver").path
        let server = try reportingPort([program, "--root", root, "--port", "0"] + extra, name: "syncserver",
                                       pattern: #"https?://127\.0\.0\.1:(\d+)/"#)
        if extra.contains("--tls-cert") { server.scheme = "https" }
        return server
    }

    /// Starts nginx (Debian's package) serving `root` on a free port, with `extra` http-level directives.
    static func nginx(root: String, scratch: String, extra: String = "") throws -> TestServer {
        for attempt in 0..<20 {
            let port = 20000 + Int.random(in: 0..<20000) + attempt
            let conf = scratch + "/nginx.conf"
            let user = getuid() == 0 ? "user root;" : ""
            let config = """
                \(user)
                daemon off;
                worker_processes 1;
                pid \(scratch)/nginx.pid;
                error_log \(scratch)/error.log;
                events { worker_connections 256; }
                http {
                  access_log \(scratch)/access.log;
                  client_body_temp_path \(scratch)/tmp; proxy_temp_path \(scratch)/tmp;
                  fastcgi_temp_path \(scratch)/tmp;
                  uwsgi_temp_path \(scratch)/tmp; scgi_temp_path \(scratch)/tmp;
                  \(extra)
                  server { listen 127.0.0.1:\(port); root \(root); }
                }
                """
            try FileManager.default.createDirectory(atPath: scratch + "/tmp", withIntermediateDirectories: true)
            try config.write(toFile: conf, atomically: true, encoding: .utf8)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/sbin/nginx")
            process.arguments = ["-c", conf]
            try process.run()
            // Ready when it accepts connections; a port in use makes nginx exit at once.
            for _ in 0..<50 {
                if !process.isRunning { break }
                if canConnect(port) { return TestServer(process: process, port: port) }
                usleep(100_000)
            }
            stop(process)
        }
        throw NSError(domain: "TestServer", code: 2,
            userInfo: [NSLocalizedDescriptionKey: "nginx did not start (apt-get install nginx-light)"])
    }

    private static func canConnect(_ port: Int) -> Bool {
        (try? RawConnection(port: port)) != nil
    }
}
