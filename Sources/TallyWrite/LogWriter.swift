import Dispatch
import TallyStorage

/// Runs the write-ahead log's write and `fdatasync` of a commit group on a thread of its own, so
/// that the commit thread applies the group meanwhile (``StoreWriter/commit(_:to:)``): the two
/// take two cores' time at once instead of one after the other. One write at a time: the commit
/// thread waits for each before it goes on.
final class LogWriter: Sendable {
    private let thread = BackgroundThread(name: "tally-wal", priority: nil)

    /// A write under way.
    final class Pending: @unchecked Sendable {
        fileprivate var result: Result<Duration, any Error>?
        fileprivate let done = DispatchSemaphore(value: 0)

        /// Waits for the write; then its time, or why it failed.
        func wait() -> Result<Duration, any Error> {
            done.wait()
            return result!
        }
    }

    /// The commit thread's log, handed to the log thread for one write and back: the commit
    /// thread does not touch it until ``Pending/wait()`` returns.
    private struct Handed: @unchecked Sendable { let log: WriteAheadLog }

    /// Starts writing `bytes` to `log` and syncing it (``WriteAheadLog/write(_:)``).
    func write(_ bytes: [UInt8], to log: WriteAheadLog) -> Pending {
        let pending = Pending(), handed = Handed(log: log)
        thread.async {
            let clock = ContinuousClock(), start = clock.now
            pending.result = Result { try handed.log.write(bytes) }.map { clock.now - start }
            pending.done.signal()
        }
        return pending
    }
}
