import CLISupport

runCommand(Shash.self)
