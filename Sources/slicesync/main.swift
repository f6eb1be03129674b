import CLISupport
import Foundation

// Unblock Ctrl-C and SIGTERM on the main thread before any other thread exists, so threads created
// later inherit an unblocked mask whatever our parent left us with.
var interruptSignals = sigset_t()
sigemptyset(&interruptSignals)
sigaddset(&interruptSignals, SIGINT)
sigaddset(&interruptSignals, SIGTERM)
pthread_sigmask(SIG_UNBLOCK, &interruptSignals, nil)

await runAsyncCommand(SliceSyncCommand.self)
