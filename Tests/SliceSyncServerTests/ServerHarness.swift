import Foundation
@_exported import TestSupport
import Logging
import SliceSync
@testable import SliceSyncServer

/// Threads of the in-process servers' own, apart from the pool the blocking test code runs on.
let serverExecutor = DedicatedExecutor(name: "syncserver-under-test")

/// A syncserver running inside the test process on 127.0.0.1 and a free port.
final class RunningServer: @unchecked Sendable {
    let port: Int
    private let task: Task<Void, Error>

    private init(port: Int, task: Task<Void, Error>) {
        self.port = port
        self.task = task
    }

    /// Starts a server on `root`; signing is off unless asked for, so tests control the tree.
    static func start(root: String, signatures: Bool = false,
        configure: (inout SyncServerConfiguration) -> Void = { _ in }) async throws -> RunningServer {
        var configuration = SyncServerConfiguration()
        configuration.port = 0
        configuration.root = root
        configuration.signatures = signatures
        configure(&configuration)
        var logger = Logger(label: "test-syncserver")
        logger.logLevel = .critical
        let server = SyncServer(configuration: configuration, logger: logger)
        let (stream, continuation) = AsyncStream.makeStream(of: String.self)
        let task = Task(executorPreference: serverExecutor) {
            try await server.run { url in continuation.yield(url) }
        }
        var iterator = stream.makeAsyncIterator()
        guard let url = await iterator.next(), let port = URL(string: url)?.port else {
            task.cancel()
            throw NSError(domain: "RunningServer", code: 1)
        }
        return RunningServer(port: port, task: task)
    }

    /// Stops the server and waits until it has.
    func stop() async {
        task.cancel()
        _ = try? await task.value
    }
}

func patterned(_ count: Int, seed: UInt64 = 1) -> [UInt8] {
    var state = seed &* 0x9E37_79B9_7F4A_7C15
    return (0..<count).map { _ in
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return UInt8(truncatingIfNeeded: state)
    }
}
