import Logging

extension Duration {
    /// The duration in seconds, as a floating-point number.
    var inSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}

/// Logs how long each phase of a run took (`-v`), from the end of the one before.
struct PhaseTimer {
    private var lap = ContinuousClock.now
    let logger: Logger

    init(logger: Logger) { self.logger = logger }

    /// The phase `what` just ended.
    mutating func done(_ what: String) {
        let now = ContinuousClock.now
        logger.info("\(what) in \(formatFixed((now - lap).inSeconds, places: 3)) s")
        lap = now
    }
}
