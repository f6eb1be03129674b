import ArgumentParser
import CLISupport

/// `slicesync`: rebuilds a file from local alike files plus HTTP Range requests (being built).
struct SliceSyncCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slicesync",
        abstract: "Download only what changed in a big file, reusing local alike files (not yet available).",
        discussion: "The client is being built. Signatures for it can already be published with 'shash'."
    )

    @Argument(help: "The file's URL.")
    var url: String?

    func run() throws {
        throw CommandFailure(.failure, "slicesync is not yet available in this build: the download client is still being written. Publish signatures with 'shash' in the meantime.")
    }
}

runCommand(SliceSyncCommand.self)
