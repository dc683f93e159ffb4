#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// How a thread doing background work (merges, rebuilds) gives way to the threads that serve:
/// the commit thread, the parse, the event loops.
public enum BackgroundPriority: Sendable, Equatable {
    /// A nice value, 0–19: the thread keeps a share of a busy CPU in proportion to its weight.
    case nice(Int32)
    /// Linux's `SCHED_IDLE`: the thread runs only when nothing else wants the CPU, a waking
    /// thread of another policy takes the CPU from it at once, and a CPU running only such
    /// threads counts as idle where a woken thread is placed.
    case idle

    /// Gives the calling thread this priority (on Linux a thread's own; elsewhere nothing).
    /// It cannot be raised again without privilege.
    public func apply() {
        #if canImport(Glibc)
        switch self {
        case .nice(let n):
            // On Linux, PRIO_PROCESS with id 0 is the calling thread, not the whole process.
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, n)
        case .idle:
            var p = sched_param()
            p.sched_priority = 0
            _ = pthread_setschedparam(pthread_self(), 5 /* SCHED_IDLE */, &p)
        }
        #endif
    }

    /// Whether the calling thread runs lowered: under `SCHED_IDLE` or a nice value above 0.
    public static var callerIsLowered: Bool {
        #if canImport(Glibc)
        var policy: Int32 = 0
        var p = sched_param()
        if pthread_getschedparam(pthread_self(), &policy, &p) == 0, policy == 5 /* SCHED_IDLE */ { return true }
        errno = 0
        let nice = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
        return errno == 0 && nice > 0
        #else
        return false
        #endif
    }
}

/// One thread of its own that runs the closures given to ``async(_:)`` one at a time, in order,
/// at a ``BackgroundPriority`` set once when it starts (or the process's, given none). It ends after a few idle seconds and
/// starts again for the next closure, so an idle writer holds no thread.
///
/// Why not a `DispatchQueue`: its work runs on libdispatch's shared pool, and lowering one of
/// those threads for a merge leaves it lowered (raising it back needs privilege) for whatever
/// the pool runs next; and threads the work starts itself (``concurrentPerformInheriting(iterations:_:)``)
/// inherit a thread's own priority, not a queue's.
public final class BackgroundThread: @unchecked Sendable {
    private let name: String
    private let priority: BackgroundPriority?
    private let idleSeconds: Double
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []  // a handful at most: merges run one at a time
    private var running = false
    private var started = 0

    /// How many threads it has started (a new one after each idle end), and whether one runs.
    var threads: (started: Int, running: Bool) {
        condition.lock()
        defer { condition.unlock() }
        return (started, running)
    }

    public init(name: String, priority: BackgroundPriority?, idleSeconds: Double = 5) {
        self.name = name
        self.priority = priority
        self.idleSeconds = idleSeconds
    }

    /// Runs `job` on the thread after the closures given before it.
    public func async(_ job: @escaping @Sendable () -> Void) {
        condition.lock()
        defer { condition.unlock() }
        jobs.append(job)
        if running {
            condition.signal()
            return
        }
        running = true
        started += 1
        let thread = Thread { [self] in run() }
        thread.name = name
        thread.start()
    }

    private func run() {
        priority?.apply()
        condition.lock()
        while true {
            while jobs.isEmpty {
                if !condition.wait(until: Date(timeIntervalSinceNow: idleSeconds)), jobs.isEmpty {
                    running = false
                    condition.unlock()
                    return
                }
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job()
            condition.lock()
        }
    }
}

/// Runs `body(i)` for each `i` in `0..<iterations` in parallel, returning when all have run: on
/// libdispatch's pool (`DispatchQueue.concurrentPerform`) — unless the calling thread runs
/// lowered (a merge's or a rebuild's, ``BackgroundPriority``), when iteration 0 runs on it and
/// each other on a thread started for it and joined, which inherits its scheduling. Else a
/// merge's parallel phase (the range tables) runs at the pool's normal priority, beside the
/// commit thread.
public func concurrentPerformInheriting(iterations: Int, _ body: @Sendable (Int) -> Void) {
    #if canImport(Glibc)
    guard iterations > 1, BackgroundPriority.callerIsLowered else {
        DispatchQueue.concurrentPerform(iterations: iterations, execute: body)
        return
    }
    final class Job {
        let body: @Sendable (Int) -> Void, index: Int
        init(_ body: @escaping @Sendable (Int) -> Void, _ index: Int) { self.body = body; self.index = index }
    }
    withoutActuallyEscaping(body) { body in
        var threads: [pthread_t] = []
        for i in 1..<iterations {
            // Linux threads are made with the creator's policy and nice value (pthread_create's
            // default `PTHREAD_INHERIT_SCHED`; the nice value is the thread's own and copied).
            let job = Unmanaged.passRetained(Job(body, i)).toOpaque()
            var thread = pthread_t()
            let made = pthread_create(&thread, nil, { raw in
                let job = Unmanaged<Job>.fromOpaque(raw!).takeRetainedValue()
                job.body(job.index)
                return nil
            }, job)
            if made == 0 {
                threads.append(thread)
            } else {
                Unmanaged<Job>.fromOpaque(job).release()
                body(i)
            }
        }
        body(0)
        // Joined, so every reference to `body` is gone before `withoutActuallyEscaping` ends.
        for t in threads { pthread_join(t, nil) }
    }
    #else
    DispatchQueue.concurrentPerform(iterations: iterations, execute: body)
    #endif
}
