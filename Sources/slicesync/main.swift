import CLISupport

tuneMemoryAllocator()
unblockInterruptSignals()
await runAsyncCommand(SliceSyncCommand.self)
