import ArgumentParser
import CLISupport

/// `syncserver`: serves a tree over HTTP with Range support and fresh signatures (being built).
struct SyncServerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "syncserver",
        abstract: "Serve a directory tree over HTTP with Range support and fresh signatures (not yet available).",
        discussion: "The server is being built. Meanwhile serve the tree with nginx and sign it with 'shash'."
    )

    @Argument(help: "Ignored until the server exists.")
    var arguments: [String] = []

    func run() throws {
        throw CommandFailure(.failure, "syncserver is not yet available in this build: serve the tree with any Range-capable server (nginx, S3) and run 'shash' on it.")
    }
}

runCommand(SyncServerCommand.self)
