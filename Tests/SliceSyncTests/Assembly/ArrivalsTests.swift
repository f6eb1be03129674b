#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing
@testable import SliceSync

@Suite("Arrivals: an assembly waiting for downloaded ranges")
struct ArrivalsTests {
    /// What a waiter on another thread got: nil while it still waits.
    final class Waiter: Sendable {
        private let result = Mutex<Bool?>(nil)

        /// Runs `wait(for:)` on the blocking pool.
        init(_ arrivals: Arrivals, for range: Range<Int>) {
            BlockingPool.shared.run { [self] in
                let arrived = arrivals.wait(for: range)
                result.withLock { $0 = arrived }
            }
        }

        var now: Bool? { result.withLock { $0 } }

        /// The result, polled for up to 10 s.
        var outcome: Bool? {
            for _ in 0..<1000 {
                if let value = now { return value }
                usleep(10_000)
            }
            return nil
        }
    }

    @Test func rangesMergeInAnyOrder() {
        let arrivals = Arrivals()
        arrivals.add(30..<40)
        arrivals.add(10..<20)
        arrivals.abandon() // from here on, a range that has not arrived answers false instead of blocking
        #expect(arrivals.wait(for: 10..<20))
        #expect(arrivals.wait(for: 12..<18))
        #expect(!arrivals.wait(for: 10..<40))
        #expect(!arrivals.wait(for: 19..<21))
        #expect(!arrivals.wait(for: 0..<11))
        arrivals.add(20..<30)
        #expect(arrivals.wait(for: 10..<40))
        #expect(!arrivals.wait(for: 10..<41))
        // A range overlapping several merges them all.
        arrivals.add(50..<60)
        arrivals.add(70..<80)
        arrivals.add(45..<75)
        #expect(arrivals.wait(for: 45..<80))
        #expect(!arrivals.wait(for: 40..<46))
    }

    /// As a tarball's update brings them: thousands of small units, in no particular order.
    @Test func thousandsOfScatteredUnits() {
        let arrivals = Arrivals()
        var order = Array(0..<4000)
        var generator = SystemRandomNumberGenerator()
        order.shuffle(using: &generator)
        for unit in order where unit % 7 != 3 { arrivals.add((unit * 512)..<((unit + 1) * 512)) }
        arrivals.abandon()
        #expect(arrivals.wait(for: 0..<(3 * 512)))
        #expect(!arrivals.wait(for: 0..<(4 * 512)))
        #expect(arrivals.wait(for: (4 * 512)..<(10 * 512)))
        for unit in 0..<4000 where unit % 7 == 3 { arrivals.add((unit * 512)..<((unit + 1) * 512)) }
        #expect(arrivals.wait(for: 0..<(4000 * 512)))
    }

    @Test func aWaiterWakesOnlyWhenAllOfItsRangeArrived() {
        let arrivals = Arrivals()
        let waiter = Waiter(arrivals, for: 100..<300)
        arrivals.add(100..<200)
        arrivals.add(250..<300)
        usleep(50_000)
        #expect(waiter.now == nil)
        arrivals.add(200..<250)
        #expect(waiter.outcome == true)
    }

    @Test func abandoningWakesAWaiterWithNo() {
        let arrivals = Arrivals()
        let waiter = Waiter(arrivals, for: 0..<10)
        arrivals.add(0..<5)
        usleep(50_000)
        #expect(waiter.now == nil)
        arrivals.abandon()
        #expect(waiter.outcome == false)
    }
}
