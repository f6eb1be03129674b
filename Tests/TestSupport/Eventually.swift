import Foundation

/// Polls `condition` every 50 ms for at most `seconds`; true once it holds. For effects of background
/// work (a server signing, a service reacting to a change) that have no event a test could wait on.
public func eventually(within seconds: Double = 20, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(50_000)
    }
    return condition()
}
