import CLISupport

tuneMemoryAllocator()
unblockInterruptSignals()
// `slicesync push …` publishes; anything else is a URL to download.
if CommandLine.arguments.count > 1 && CommandLine.arguments[1] == "push" {
    await runAsyncCommand(PushCommand.self, arguments: Array(CommandLine.arguments.dropFirst(2)))
}
await runAsyncCommand(SliceSyncCommand.self)
