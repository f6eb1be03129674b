import Foundation

/// Runs the programs this package builds, found next to the test executable.
enum ProgramRunner {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static var buildDirectory: URL {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0]
        var url = URL(fileURLWithPath: executable).deletingLastPathComponent()
        // On some layouts the test binary sits inside a bundle directory.
        if url.lastPathComponent.hasSuffix(".xctest") { url = url.deletingLastPathComponent() }
        return url
    }

    /// `environment` adds to (or overrides) the test's own environment.
    static func run(_ program: String, _ arguments: [String], timeout: TimeInterval = 120,
                    environment: [String: String] = [:]) throws -> Result {
        let process = Process()
        // A program of this package by name, or a system tool (zsync, zsyncmake) by absolute path.
        process.executableURL = program.hasPrefix("/") ? URL(fileURLWithPath: program)
            : buildDirectory.appendingPathComponent(program)
        process.arguments = arguments
        // The slice digest cache of the programs under test stays out of the user's own.
        let isolated = ["XDG_CACHE_HOME": NSTemporaryDirectory() + "/slicesync-test-cache"]
        process.environment = ProcessInfo.processInfo.environment.merging(isolated.merging(environment) { $1 }) { $1 }
        // Files rather than pipes: a chatty program can never block on a full pipe.
        let outURL = URL(fileURLWithPath: NSTemporaryDirectory() + "/slicesync-out-" + UUID().uuidString)
        let errURL = URL(fileURLWithPath: NSTemporaryDirectory() + "/slicesync-err-" + UUID().uuidString)
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: outURL)
            try? FileManager.default.removeItem(at: errURL)
        }
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        guard let exitStatus = reap(process, timeout: timeout) else {
            throw NSError(domain: "ProgramRunner", code: 1,
                userInfo: [NSLocalizedDescriptionKey: "\(program) did not finish within \(timeout) s"])
        }
        let outData = (try? Data(contentsOf: outURL)) ?? Data()
        let errData = (try? Data(contentsOf: errURL)) ?? Data()
        return Result(status: exitStatus, stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self))
    }
}

/// Waits for a child and returns its exit status (128+N for signal N); kills it after `timeout`
/// seconds and returns nil. Uses waitpid because Process.waitUntilExit can hang when the test
/// runner's threads block SIGCHLD; falls back to Foundation's record when it reaped the child first.
func reap(_ process: Process, timeout: TimeInterval) -> Int32? {
    let pid = process.processIdentifier
    let deadline = Date().addingTimeInterval(timeout)
    var status: Int32 = 0
    while true {
        let reaped = waitpid(pid, &status, WNOHANG)
        if reaped == pid { return (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F) }
        if reaped < 0 {
            process.waitUntilExit()
            return process.terminationStatus
        }
        if Date() > deadline {
            kill(pid, SIGKILL)
            _ = waitpid(pid, &status, 0)
            return nil
        }
        usleep(10_000)
    }
}

/// A scratch directory for one test.
final class Scratch {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "/slicesync-e2e-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ relative: String) -> String { path + "/" + relative }

    @discardableResult
    func write(_ relative: String, _ data: Data, old: Bool = true) throws -> String {
        let full = file(relative)
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent,
            withIntermediateDirectories: true)
        try data.write(to: URL(fileURLWithPath: full))
        if old { try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSince1970: 1_600_000_000)],
            ofItemAtPath: full) }
        return full
    }

    func exists(_ relative: String) -> Bool { FileManager.default.fileExists(atPath: file(relative)) }

    func read(_ relative: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: file(relative))) }
}

func pseudoRandomData(_ count: Int, seed: UInt64) -> Data {
    var state = seed &+ 0x9E37_79B9_7F4A_7C15
    var bytes = [UInt8](repeating: 0, count: count)
    var i = 0
    while i < count {
        state = state &+ 0x9E37_79B9_7F4A_7C15
        var z = (state ^ (state >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        for _ in 0..<8 where i < count {
            bytes[i] = UInt8(truncatingIfNeeded: z)
            z >>= 8
            i += 1
        }
    }
    return Data(bytes)
}
