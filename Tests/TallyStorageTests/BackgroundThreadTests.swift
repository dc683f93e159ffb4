import Foundation
import Synchronization
import Testing
@testable import TallyStorage

/// The merge thread (``BackgroundThread``): its closures run one at a time in the order given, on
/// a thread lowered to its priority, which ends when idle and starts again, lowered again, for the
/// next closure; and ``concurrentPerformInheriting(iterations:_:)`` runs every iteration once, on
/// threads at the caller's priority when the caller runs lowered.
@Suite struct BackgroundThreadTests {
    /// What each closure saw: its index, whether its thread ran lowered, its nice value.
    final class Seen: Sendable {
        let items = Mutex<[(index: Int, lowered: Bool, nice: Int32)]>([])
        func add(_ i: Int) {
            errno = 0
            let nice = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
            let lowered = BackgroundPriority.callerIsLowered
            items.withLock { $0.append((i, lowered, nice)) }
        }
    }

    /// Runs `job` on `thread` and waits for it.
    static func run(on thread: BackgroundThread, _ job: @escaping @Sendable () -> Void) {
        let done = DispatchSemaphore(value: 0)
        thread.async {
            job()
            done.signal()
        }
        done.wait()
    }

    @Test func closuresRunInOrderLoweredAndTheThreadStartsAgainAfterIdling() throws {
        let thread = BackgroundThread(name: "test-idle", priority: .idle, idleSeconds: 0.05)
        let seen = Seen()
        for i in 0..<200 { thread.async { seen.add(i) } }
        Self.run(on: thread) {}
        let items = seen.items.withLock { $0 }
        #expect(items.map(\.index) == Array(0..<200))
        #expect(items.allSatisfy { $0.lowered }, "every closure ran under SCHED_IDLE")
        #expect(thread.threads.started == 1)
        // Idle past its time, the thread ends (waited for: under `SCHED_IDLE` on a busy host it
        // may take a while to run its ending); the next closure starts another, lowered again.
        let deadline = Date().addingTimeInterval(60)
        while thread.threads.running && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        Self.run(on: thread) { seen.add(200) }
        #expect(thread.threads.started == 2)
        #expect(seen.items.withLock { $0.last!.lowered })

        let nice = BackgroundThread(name: "test-nice", priority: .nice(19))
        Self.run(on: nice) { seen.add(300) }
        #expect(seen.items.withLock { $0.last! }.nice == 19)
        // Without a priority the thread keeps the process's.
        if !BackgroundPriority.callerIsLowered {
            Self.run(on: BackgroundThread(name: "test-none", priority: nil)) { seen.add(400) }
            #expect(!seen.items.withLock { $0.last! }.lowered)
        }
    }

    @Test func concurrentPerformInheritingRunsEveryIterationAtTheCallersPriority() throws {
        for lowered in [true, false] {
            if !lowered && BackgroundPriority.callerIsLowered { continue }  // a test run under nice
            let seen = Seen()
            let work: @Sendable () -> Void = { concurrentPerformInheriting(iterations: 5) { seen.add($0) } }
            if lowered {
                Self.run(on: BackgroundThread(name: "test-inherit", priority: .idle), work)
            } else {
                work()
            }
            let items = seen.items.withLock { $0 }
            #expect(items.map(\.index).sorted() == Array(0..<5), "each iteration once")
            #expect(items.allSatisfy { $0.lowered == lowered }, "lowered: \(lowered), \(items)")
        }
    }
}
