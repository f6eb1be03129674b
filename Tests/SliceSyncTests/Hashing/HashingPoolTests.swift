#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing
@testable import SliceSync

@Suite("Hashing pool, serial lane and completion flags")
struct HashingPoolTests {
    /// The whole-file digests depend on it: jobs submitted from one thread, some while earlier ones
    /// still run, run one at a time in the order submitted.
    @Test(arguments: [1, 2, 3])
    func aSerialLaneRunsJobsOneAtATimeInOrder(threads: Int) {
        let pool = HashingPool(threads: threads)
        defer { pool.shutdown() }
        let lane = SerialLane(pool: pool)
        let log = Mutex<(order: [Int], running: Int, overlapped: Bool)>(([], 0, false))
        let flags = CompletionFlags(count: 1)
        for index in 0..<500 {
            flags.add(0)
            lane.submit {
                log.withLock { log in
                    log.running += 1
                    if log.running > 1 { log.overlapped = true }
                }
                if index % 50 == 0 { usleep(2000) } // let submissions pile up behind a slow job
                log.withLock { log in
                    log.order.append(index)
                    log.running -= 1
                }
                flags.markDone(0)
            }
            if index % 100 == 99 { flags.wait(0) } // the lane goes idle and must start again
        }
        flags.wait(0)
        let result = log.withLock { $0 }
        #expect(result.order == Array(0..<500))
        #expect(!result.overlapped)
    }

    /// A slot is free only when every job counted on it ended: a piece's hashing and its share of the
    /// whole-file digest, on two different threads.
    @Test func aSlotWaitsForEveryJobCountedOnIt() {
        let pool = HashingPool(threads: 2)
        defer { pool.shutdown() }
        let flags = CompletionFlags(count: 2)
        let finished = Atomic<Int>(0)
        for round in 0..<50 {
            let slot = round % 2
            flags.add(slot)
            flags.add(slot)
            pool.submit {
                usleep(UInt32(200 * (round % 3)))
                finished.add(1, ordering: .relaxed)
                flags.markDone(slot)
            }
            pool.submit {
                usleep(UInt32(200 * ((round + 1) % 3)))
                finished.add(1, ordering: .relaxed)
                flags.markDone(slot)
            }
            flags.wait(slot)
            // Waking at the first job's end would count one job short.
            #expect(finished.load(ordering: .relaxed) == 2 * round + 2)
        }
        flags.wait(0)
        flags.wait(1)
        #expect(finished.load(ordering: .relaxed) == 100)
    }
}
