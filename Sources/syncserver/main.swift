import CLISupport

unblockInterruptSignals()
await runAsyncCommand(SyncServerCommand.self)
