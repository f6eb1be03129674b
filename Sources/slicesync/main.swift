import CLISupport

unblockInterruptSignals()
await runAsyncCommand(SliceSyncCommand.self)
