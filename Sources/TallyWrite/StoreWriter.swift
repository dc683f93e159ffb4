import Foundation
import Logging
import Synchronization
import TallyIngest
import TallyStorage

/// The one writer of the served data (SPEC §6). It owns the served store's versions — a query
/// takes the current ``store`` once and keeps it to the end, so it never sees half of two — and
/// every change to them goes through it, one way: request → validate → log → apply → publish.
///
/// - **Appends**: a batch is parsed and checked off the caller's thread, then written to the
///   write-ahead log by one commit thread — every batch waiting when a write starts goes into the
///   same write and the same `fdatasync` (group commit) — then applied (the clients it touches are
///   rebuilt with their new rows) and published, and only then acknowledged: an acknowledged row
///   is durable and visible to the next query.
/// - **Reloads**: the ``DataSource`` loads a new store beside the served one (one reload at a
///   time); the commit thread replays the log's records onto it and publishes it.
/// - **Snapshots**: written from the served version on a queue of their own, one at a time, while
///   appends go on; once one is durable, the commit thread drops the log records it holds.
///
/// Without a log there is no commit thread: reloads publish directly and appends are refused.
public final class StoreWriter: @unchecked Sendable {
    public typealias Completion = @Sendable (Result<AppendOutcome, WriteError>) -> Void

    public struct AppendOutcome: Sendable {
        /// Events accepted (duplicates of rows already held included).
        public var accepted: Int
        /// Directory rows accepted (upserts; repeats of what is held included).
        public var directoryRows: Int
        /// The log record that holds them.
        public var sequence: UInt64
    }

    public struct ReloadOutcome: Sendable {
        public var source: String
        public var clients: Int
        public var usageRows: Int
        public var seconds: Double
    }

    /// Why loaded data cannot be served with this log.
    public struct StaleData: Error, CustomStringConvertible {
        public var description: String
    }

    enum Job {
        case append(AppendBatch, Completion)
        case swap(Store, @Sendable (Result<Store, Error>) -> Void)
        case snapshot(String, @Sendable (Result<Snapshot.Report, Error>) -> Void)
        /// A snapshot holding every record through the sequence is durable: the log drops them.
        case truncate(UInt64, String, Snapshot.Report, @Sendable (Result<Snapshot.Report, Error>) -> Void)
        /// A client rebuilt with its tail's rows, to serve in place of the client with the tail.
        case merge(Merge)
        /// Merge every tail now, however small or young (tests).
        case mergeAll
        /// A large client rebuilt off the commit thread with batches parked for it.
        case rebuilt(Rebuilt)
    }

    /// A merge made off the commit thread: `client` rebuilt from `base` (the usage index the tail
    /// was beside) with the tail's first `rows` rows, and those after caught up as its own tail.
    struct Merge: @unchecked Sendable {
        let id: UUID128
        let base: UsageIndex
        /// The version merged, and the merged client.
        let from: ClientStore
        let client: ClientStore
        let rows: Int
        let started: ContinuousClock.Instant
    }

    /// A served store and its version number: one more at every publish (appends, reloads),
    /// carried by the cursors of list pages (``CursorPins``).
    public struct Served: Sendable {
        public var store: Store
        public var version: UInt64
        /// For each client of `store` (in its order), the version its data was first served in:
        /// a client no append or reload replaced since keeps its number while others change.
        public var clientVersions: [UInt64]

        /// The version a list of `client` reads (its data's), or the store's for lists over
        /// every client (`nil`).
        public func version(of client: UUID128?) -> UInt64 {
            guard let client else { return version }
            return store.clientIndex[client].map { clientVersions[$0] } ?? version
        }
    }

    private let current: Mutex<Served?>
    /// The versions list pages handed out cursors of.
    public let pins: CursorPins
    private let freshnessState: Mutex<Freshness>
    /// The write-ahead log, if appends are taken. Only the commit thread writes to it.
    let log: WriteAheadLog?
    /// Where reloads load from.
    public let source: DataSource?
    let observer: any WriteObserver
    let reloading = Mutex(false)

    // The commit thread's state, under `condition`.
    let condition = NSCondition()
    var jobs: [Job] = []
    var stopped = false
    /// The commit thread has exited: jobs are refused.
    var finished = false
    /// The last snapshot this process wrote and truncated the log after (named when stale data
    /// is refused).
    var lastSnapshot: String?
    /// Signalled when the commit thread has finished its last job and closed the log.
    let exited = DispatchSemaphore(value: 0)

    /// A writer serving `store` (or nothing until the first load), appending through `log` if
    /// given (its recovered records are replayed onto every store loaded), reloading from `source`.
    /// - Parameter tailMinRows: clients of at least this many usage rows take appended rows of
    ///   their newest day into a tail instead of a rebuild (``ClientStore/tailMinRows``).
    /// - Parameter tailMaxRows: the most rows a tail holds (``ClientStore/tailMaxRows(baseRows:)``
    ///   unless given; tests).
    /// - Parameter mergePriority: the merge and rebuild thread's (``mergeQueue``).
    public init(serving store: Store? = nil, log: WriteAheadLog? = nil, source: DataSource? = nil,
                observer: any WriteObserver = QuietWriteObserver(), tailMinRows: Int = ClientStore.tailMinRows,
                tailMaxRows: Int? = nil, mergeMinRows: Int? = nil, mergeAfterSeconds: Double = 300,
                cursorPinBytes: Int = CursorPins.defaultBudgetBytes, mergePriority: BackgroundPriority = StoreWriter.defaultMergePriority) {
        pins = CursorPins(budgetBytes: cursorPinBytes)
        mergeQueue = BackgroundThread(name: "tally-merge", priority: mergePriority)
        self.tailMinRows = tailMinRows
        self.tailMaxRows = tailMaxRows
        self.mergeAfterSeconds = max(0.05, mergeAfterSeconds)
        self.mergeMinRows = mergeMinRows
        current = Mutex(store.map { Served(store: $0, version: 1, clientVersions: Array(repeating: 1, count: $0.clients.count)) })
        self.log = log
        // Spare app slots from a million rows (``ClientStore/spareAppsMinRows``) when loaded from a
        // dump, or from a tail threshold lower than the default (tests), or a higher one.
        var source = source
        source?.spareAppsMinRows = tailMinRows < ClientStore.tailMinRows ? tailMinRows : max(tailMinRows, ClientStore.spareAppsMinRows)
        self.source = source
        self.observer = observer
        freshnessState = Mutex(Freshness(ackedSequence: log?.lastSequence ?? store?.walSequence ?? 0))
        if log != nil {
            let thread = Thread { [unowned self] in self.run() }
            thread.name = "tally-commit"
            thread.start()
        } else {
            finished = true
            exited.signal()
        }
    }

    let tailMinRows: Int
    let tailMaxRows: Int?
    /// A client's tail is merged into its index (off the commit thread) once it holds this many
    /// rows: ``mergeRows(baseRows:)`` unless given.
    let mergeMinRows: Int?
    /// A tail whose first row is this old is merged however few rows it has (checked after each
    /// group and every few seconds while idle).
    let mergeAfterSeconds: Double
    /// Called on the merge queue once a merge has rebuilt its client, before it catches up (tests
    /// hold a merge there while batches arrive).
    let mergeBuilt = Mutex<(@Sendable () -> Void)?>(nil)
    /// Clients with a merge under way (commit thread only).
    var merging: Set<UUID128> = []
    /// Batches logged but not yet applied, per client, oldest first: a large client's rebuilds
    /// run off the commit thread (``rebuildsLargeClient(_:in:nextDays:newApps:)``), and its later batches wait
    /// behind them. Commit thread only.
    var parked: [UUID128: [LoggedBatch]] = [:]
    /// The ids the parked batches' directory rows add, per client (a later batch may name them).
    var parkedIds: [UUID128: AppendBody.AddedIds] = [:]
    /// The newest day the parked batches' events name, per client (days since 1970).
    var parkedNewestDay: [UUID128: Int32] = [:]
    /// Clients whose rebuild could not take the events let past it (``passesRebuild(_:in:nextDays:newApps:)``)
    /// and runs again from what is served: every later batch of theirs waits behind it, until it
    /// is installed. Commit thread only.
    var rebuildingStrictly: Set<UUID128> = []
    /// Clients whose rebuild is under way (commit thread only).
    var rebuilding: Set<UUID128> = []
    /// Called on the merge queue as a rebuild of parked batches begins (tests hold one there).
    let rebuildStarted = Mutex<(@Sendable () -> Void)?>(nil)
    /// Merges and rebuilds run here, one at a time, on a thread of their own lowered to
    /// ``mergePriority`` (the range tables' threads it starts inherit it: ``concurrentPerformInheriting(iterations:_:)``).
    /// A merge of the 47.6 M-row client builds it for 4.3–5.7 s on one of this machine's two cores,
    /// beside the commit thread, the parse and the event loops (docs/BENCHMARKS.md, "A faster
    /// builder", "Merges under `SCHED_IDLE`, and the log written beside the apply").
    let mergeQueue: BackgroundThread

    /// Seconds without a job after a publish before the commit thread has the heap trimmed
    /// (``MemoryReclaimer/trimSoon(then:)``). While appends stream in, their parse and apply
    /// allocate and free buffers in the allocator's arenas and touch again the pages a merge's
    /// trim gave back; when the stream stops glibc keeps them resident (it returns by itself only
    /// a free top past its threshold). Measured on the 47.6 M-row client under
    /// `tools/load/merge_memory.py`'s load (2026-12-04, before this trim): the main arena's
    /// `[heap]` held 12–17 MiB resident from the last merge's trim to the measurement, against
    /// 0.1 MiB in a fresh process serving the same data; one more `malloc_trim(0)` then (through
    /// `gdb`) took the process from 282.4 to 274.0 MiB resident (fresh: 273.5), and in a build
    /// that also trimmed 3 s after each merge's trim, the `[heap]` from 17 to 9 MiB and the
    /// process from 284.6 to 275.2 (fresh: 275.3).
    static let idleTrimSeconds = 2.0

    /// Whether a version was published since the last idle trim (commit thread only).
    var publishedSinceTrim = false

    /// Idle trims run so far (tests).
    let idleTrims = Atomic<Int>(0)

    /// Writes and syncs the log beside the commit thread's apply (``commit(_:to:)``).
    let logWriter = LogWriter()

    /// The merge thread's priority unless told otherwise (`TALLY_MERGE_SCHED`).
    public static let defaultMergePriority = BackgroundPriority.idle

    /// Rows of a tail that start its merge: 1% of the base's rows, and at least 50,000.
    public static func mergeRows(baseRows: Int) -> Int { max(50_000, baseRows / 100) }

    /// The served data (nil until the first load).
    public var store: Store? { current.withLock { $0?.store } }

    /// The served data and its version (nil until the first load).
    public var served: Served? { current.withLock { $0 } }

    /// Keeps what a list page of `client` (`nil`: a report over every client) read from `store`,
    /// served as `version`, for the pages its cursor leads to (``CursorPins``). A version no
    /// longer served is not pinned anew (a page in flight across a reload or an append).
    public func pin(_ store: Store, version: UInt64, client: UUID128?) {
        pins.pin(store, version: version, client: client, served: served?.version(of: client) == version)
    }

    /// The newest acknowledged append and when it was acknowledged.
    public var freshness: Freshness { freshnessState.withLock { $0 } }

    /// Whether appends are taken (the writer has a log).
    public var acceptsAppends: Bool { log != nil }

    /// The log's size in bytes, if there is one (safe from any thread).
    public var logBytes: Int? { log?.byteCount }

    /// Serves `store` from now on; the one replaced is freed once its last request ends (and no
    /// cursor pins it), and its memory given back to the system then. `replacesData`: a reload,
    /// which also drops the cursors' pins.
    func publish(_ store: Store, acked: UInt64? = nil, replacesData: Bool) {
        // Clients the new store shares with the old keep their version. (Publishes come one at a
        // time: from the commit thread, or from the one reload running without a log.)
        let before = current.withLock { $0 }
        let version = (before?.version ?? 0) + 1
        let clientVersions = store.clients.enumerated().map { i, c -> UInt64 in
            guard let before else { return version }
            let b = before.store
            if i < b.clients.count && b.clients[i] === c { return before.clientVersions[i] }
            if let j = b.clientIndex[c.info.id], b.clients[j] === c { return before.clientVersions[j] }
            return version
        }
        let old = current.withLock { served -> Store? in
            defer { served = Served(store: store, version: version, clientVersions: clientVersions) }
            return served?.store
        }
        pins.published(store, replacesData: replacesData)
        publishedSinceTrim = true
        if let old {
            if old !== store && (replacesData || Self.freesIndexes(old, keptBy: store)) {
                MemoryReclaimer.shared.watch(old)
                Self.releaseLater(old)
            }
        } else {
            MemoryReclaimer.trim()  // the first data: what loading it left free goes back now
        }
        let f = freshnessState.withLock { f -> Freshness in
            if let acked { f = Freshness(ackedSequence: acked, ackedAt: Date()) }
            return f
        }
        observer.published(f)
    }

    /// Keeps a replaced store that lets an index go (a merge's, a rebuild's, a reload's) alive
    /// on a queue of its own for a moment, so that — unless a request still reads it — its
    /// memory is freed there, not on the commit thread when the install's last reference goes:
    /// unmapping a 47.6 M-row client's replaced index there made the batches acknowledged
    /// across a merge's install the slowest of their second.
    static func releaseLater(_ old: Store) {
        releaseQueue.asyncAfter(deadline: .now() + .milliseconds(200)) { withExtendedLifetime(old) {} }
    }

    private static let releaseQueue = DispatchQueue(label: "tally.release", qos: .utility)

    /// Whether replacing `old` by `new` lets a client's usage index go (a merge, a rebuild, a
    /// client dropped): only then is there memory for ``MemoryReclaimer`` to give back. An append
    /// into a tail or a directory change keeps every index (the versions share it), and a trim
    /// after each of them walked the allocator's free chunks once a second, each arena under its
    /// lock, which the commit thread and the event loops take to allocate: on the 47.6 M-row
    /// client, batches of 1,000 events on one connection, about 2,000 `madvise` calls a second
    /// (docs/BENCHMARKS.md, "Trims only after a merge").
    static func freesIndexes(_ old: Store, keptBy new: Store) -> Bool {
        func index(_ c: ClientStore) -> UsageIndex? { c.usage.map { $0.base ?? $0 } }
        for (i, c) in old.clients.enumerated() {
            let n = i < new.clients.count && new.clients[i].info.id == c.info.id ? new.clients[i] : new.client(c.info.id)
            guard let n else { return true }
            if n !== c && index(n) !== index(c) { return true }
        }
        return false
    }

    /// Stops taking jobs: the commit thread finishes what is queued (every batch submitted is
    /// answered), closes the log and exits.
    public func stop() {
        condition.lock()
        stopped = true
        condition.signal()
        condition.unlock()
    }

    /// ``stop()``, then waits until the last queued batch is durable and answered and the log closed.
    public func stopAndWait() {
        stop()
        exited.wait()
        exited.signal()  // a second caller does not wait forever
    }

    // MARK: Appends

    /// Parses and checks a batch for `client` (``AppendBody/parse(client:body:store:mayChangeCatalog:)``), then
    /// queues it; `completion` runs on the commit thread once the batch is durable and visible,
    /// or at once with the error that refused it (nothing of a refused batch is applied).
    ///
    /// The parse runs on a queue of its own, not the caller's thread: a batch of thousands of
    /// events takes milliseconds to parse, which on an event loop would hold up every other
    /// connection of that loop.
    public func submit(client: UUID128, body: [UInt8], mayChangeCatalog: Bool = false, completion: @escaping Completion) {
        Self.parsing.async { [self] in
            do throws(WriteError) {
                let batch = try AppendBody.parse(client: client, body: body, store: store, mayChangeCatalog: mayChangeCatalog)
                enqueue(.append(batch, completion))
            } catch {
                observer.appendRefused(rows: error.rows?.count ?? 0)
                observer.dataLog.notice("append refused", metadata: ["client": "\(client)", "kind": "\(error.kind)",
                                                                     "message": "\(error.message)"])
                completion(.failure(error))
            }
        }
    }

    /// Where batches are parsed and checked (concurrently; the commit thread then takes them in
    /// the order they are ready). `.default`: libdispatch runs `userInitiated` threads at nice −2,
    /// ahead of the query threads.
    static let parsing = DispatchQueue(label: "tally.append-parse", qos: .default, attributes: .concurrent)

    // MARK: Snapshots

    /// Writes the served data as a snapshot (serialized with appends), then drops the log
    /// records it holds.
    public func snapshot(to path: String) throws(WriteError) -> Snapshot.Report {
        guard let store else { throw .notReady }
        let result: Result<Snapshot.Report, Error>
        if log == nil {
            result = Result { try Snapshot.write(store, to: path) }
        } else {
            result = onCommitThread { done in .snapshot(path, done) }
        }
        switch result {
        case .success(let report): return report
        case .failure(let e as WriteError): throw e
        case .failure(let e): throw WriteError(.snapshotFailed, "\(e)")
        }
    }

    final class ResultBox<T>: @unchecked Sendable { var result: Result<T, Error>? }

    /// Queues the job `make` builds around its completion, and waits for that completion.
    func onCommitThread<T>(_ make: (@escaping @Sendable (Result<T, Error>) -> Void) -> Job) -> Result<T, Error> {
        let done = DispatchSemaphore(value: 0), box = ResultBox<T>()
        enqueue(make { r in
            box.result = r
            done.signal()
        })
        done.wait()
        return box.result!
    }

    func enqueue(_ job: Job) {
        condition.lock()
        guard !finished else {
            // The commit thread has closed the log (a batch whose parse ended after shutdown), or
            // there is no log.
            condition.unlock()
            let e = log == nil ? WriteError(.noLog, "appends need a write-ahead log: start the server with --wal FILE") : .shuttingDown
            switch job {
            case .append(_, let done): done(.failure(e))
            case .swap(_, let done): done(.failure(e))
            case .snapshot(_, let done): done(.failure(e))
            case .truncate(_, _, let report, let done):
                // The snapshot is durable; only the log keeps records it also holds (a start
                // replays just those after it).
                done(.success(report))
            case .merge, .mergeAll, .rebuilt: break  // the tails stay (and the log holds their rows)
            }
            return
        }
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    // MARK: The commit thread

    func run() {
        guard let log else { return }
        while true {
            condition.lock()
            // Idle: every few seconds, tails old enough are merged however small; once quiet for
            // `idleTrimSeconds` after a publish, the heap is trimmed.
            let idleSince = ContinuousClock.now
            while jobs.isEmpty && !stopped {
                let wait = publishedSinceTrim ? min(Self.idleTrimSeconds, mergeAfterSeconds) : min(5, mergeAfterSeconds)
                if !condition.wait(until: Date(timeIntervalSinceNow: wait)), jobs.isEmpty, !stopped, let store {
                    condition.unlock()
                    if publishedSinceTrim && (ContinuousClock.now - idleSince).seconds >= Self.idleTrimSeconds {
                        publishedSinceTrim = false
                        MemoryReclaimer.shared.trimSoon { self.idleTrims.add(1, ordering: .relaxed) }
                    }
                    startMerges(store)
                    condition.lock()
                }
            }
            if jobs.isEmpty && stopped {
                finished = true
                condition.unlock()
                refuseParked()
                log.closeFile()
                observer.dataLog.notice("write-ahead log closed", metadata: ["path": "\(log.path)", "sequence": "\(log.lastSequence)"])
                exited.signal()
                return
            }
            // Appends waiting now share one write; a swap or snapshot runs on its own.
            var group: [(AppendBatch, Completion)] = []
            var other: Job?
            while let first = jobs.first {
                if case .append(let b, let c) = first {
                    group.append((b, c))
                    jobs.removeFirst()
                } else {
                    if group.isEmpty { other = jobs.removeFirst() }
                    break
                }
            }
            condition.unlock()
            if !group.isEmpty { commit(group, to: log) }
            switch other {
            case .swap(let base, let done)?: swap(base, log: log, done: done)
            case .snapshot(let path, let done)?: snapshot(path, done: done)
            case .truncate(let sequence, let path, let report, let done)?:
                truncate(log, through: sequence, snapshot: path, report: report, done: done)
            case .merge(let m)?: install(m)
            case .mergeAll?: if let store { startMerges(store, all: true) }
            case .rebuilt(let r)?: installRebuilt(r)
            default: break
            }
        }
    }

    /// Hands the served version to the snapshot queue and goes on: appends are acknowledged
    /// while the file is written (docs/APPENDS.md §12.8). Once it is durable, the log's records it
    /// holds are dropped back on this thread (``truncate(_:through:snapshot:report:done:)``).
    func snapshot(_ path: String, done: @escaping @Sendable (Result<Snapshot.Report, Error>) -> Void) {
        guard let store else {
            done(.failure(WriteError.notReady))
            return
        }
        let sequence = snapshotSequence(store)
        Self.snapshots.async { [self] in
            snapshotHook.withLock { $0 }?()
            do {
                let report = try Snapshot.write(store.replacing([], walSequence: sequence), to: path)
                // The file's sections and chunks were heap buffers: after a snapshot of the 47.6 M-row
                // client the allocator kept 146 MB free, and the process 129 MB more resident.
                MemoryReclaimer.trim()
                enqueue(.truncate(sequence, path, report, done))
            } catch {
                observer.dataLog.error("snapshot failed", metadata: ["path": "\(path)", "error": "\(error)"])
                done(.failure(error))
            }
        }
    }

    /// Snapshots are written one at a time, off the commit thread.
    static let snapshots = DispatchQueue(label: "tally.snapshot", qos: .utility)

    /// Runs before each snapshot is written (tests: to hold a snapshot while appends go on).
    let snapshotHook = Mutex<(@Sendable () -> Void)?>(nil)

    func truncate(_ log: WriteAheadLog, through sequence: UInt64, snapshot path: String, report: Snapshot.Report,
                  done: @Sendable (Result<Snapshot.Report, Error>) -> Void) {
        do {
            try log.truncate(through: sequence)
            lastSnapshot = path
            observer.logSize(bytes: log.byteCount)
            observer.dataLog.notice("snapshot written; log truncated", metadata: ["path": "\(path)", "sequence": "\(sequence)"])
            done(.success(report))
        } catch {
            observer.dataLog.error("log truncation after a snapshot failed", metadata: ["path": "\(path)", "error": "\(error)"])
            done(.failure(error))
        }
    }

    func commit(_ group: [(AppendBatch, Completion)], to log: WriteAheadLog) {
        // Checked again against the data they will be applied to: a reload may have swapped it
        // since they were parsed, and a row naming what it no longer holds would be dropped.
        var group = group
        if let store {
            // Each rule in turn; a batch one refuses gets its error and is not logged.
            func refuse(_ rule: (AppendBatch) -> WriteError?) {
                group = group.filter { batch, done in
                    guard let e = rule(batch) else { return true }
                    observer.appendRefused(rows: 0)
                    done(.failure(e))
                    return false
                }
            }
            var added = parkedIds
            refuse { batch in
                AppendBody.missing(batch, in: store, added: &added).map { what in
                    WriteError(.conflict, "the served data changed since the batch was checked (a reload): it no longer holds \(what); "
                        + "nothing of the batch was applied — check it against the data served now and send it again")
                }
            }
            refuse { batch in
                guard parked[batch.client] != nil, !batch.directory.catalogApps.isEmpty else { return nil }
                return WriteError(.mergeBehind, "the client is being rebuilt with earlier batches, and this one changes the catalog: "
                    + "nothing of the batch was applied — send it again in a second")
            }
            var pending: [UUID128: Int] = [:]
            refuse { batch in
                tailCap(batch, in: store, pending: &pending).map { cap in
                    WriteError(.mergeBehind, "the client's rows of its newest day are ahead of its merge (\(cap) rows wait to be merged): "
                        + "nothing of the batch was applied — send it again in a second")
                }
            }
            var pendingApps: [UUID128: Set<UUID128>] = [:]
            refuse { batch in
                appRoomCap(batch, in: store, pending: &pendingApps).map { room in
                    WriteError(.mergeBehind, "the client's index has room for \(room) more new apps until its merge, which is running: "
                        + "nothing of the batch was applied — send it again in a second")
                }
            }
            if group.isEmpty { return }
        }
        var bytes: [UInt8] = []
        var sequences: [UInt64] = []
        for (batch, _) in group {
            let (s, b) = log.record(batch)
            sequences.append(s)
            bytes += b
        }
        // The log's write and `fdatasync` run on the log thread while this one applies the
        // batches; nothing is published or acknowledged until both are done, and if the write
        // fails the applied version is dropped unseen. (One after the other, the commit's start to
        // the apply — checks, record, write, `fdatasync` — took 1.2 ms and the apply 2.5 ms of a
        // 1,000-new-row batch's 5.0 ms on the 47.6 M-row client, p50: docs/BENCHMARKS.md, "Merges
        // under `SCHED_IDLE`, and the log written beside the apply".)
        let write = logWriter.write(bytes, to: log)
        // A large client's rebuild waits off the commit thread, with that client's later batches
        // but those of events its tail takes (StoreWriter+Rebuilds.swift); the others are
        // applied now. (Parked only once the write is durable: undone if it fails.)
        let parkedBefore = (parked, parkedIds, parkedNewestDay)
        var now: [LoggedBatch] = []
        var nextDays: [UUID128: Int32] = [:], newApps: [UUID128: Set<UUID128>] = [:]
        for (i, (batch, done)) in group.enumerated() {
            let logged = LoggedBatch(sequence: sequences[i], batch: batch, done: done)
            if let store, parked[batch.client] != nil ? !passesRebuild(batch, in: store, nextDays: &nextDays, newApps: &newApps)
                : rebuildsLargeClient(batch, in: store, nextDays: &nextDays, newApps: &newApps) {
                park(logged)
            } else {
                now.append(logged)
            }
        }
        let next = store.flatMap { store in
            now.isEmpty ? nil : AppendBody.apply(now.map { ($0.sequence, $0.batch) }, onto: store, tailMinRows: tailMinRows, tailMaxRows: tailMaxRows)
        }
        switch write.wait() {
        case .success(let d):
            observer.synced(nanoseconds: d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000)
            observer.logSize(bytes: log.byteCount)
        case .failure(let error):
            // Not durable: refuse the whole group. The log has cut its tail back and takes nothing
            // more (a later batch gets this answer too) until the server restarts.
            (parked, parkedIds, parkedNewestDay) = parkedBefore
            observer.dataLog.error("write-ahead log write failed; the batches are refused",
                                   metadata: ["path": "\(log.path)", "batches": "\(group.count)", "error": "\(error)"])
            let e = WriteError(.notDurable, "the batch could not be made durable: \(error)")
            for (_, done) in group { done(.failure(e)) }
            return
        }
        if let next {
            publish(next, acked: max(freshness.ackedSequence, now.last!.sequence), replacesData: false)
            startMerges(next)
        }
        startRebuilds()
        now.forEach(acknowledge)
    }
}
