import CLISupport

tuneMemoryAllocator()
runCommand(Shash.self)
