import TallyIngest
import TallyRemote
import TallyStorage

/// What a reload asks for instead of the configured source.
public enum ReloadSource: Sendable, Equatable {
    /// A dump: a folder, `s3://bucket/prefix/` or `https://host/path/`.
    case dump(String)
    /// A native snapshot: a file, `s3://bucket/key` or an `https://` address.
    case snapshot(String)
}

/// Where the served data comes from: the source the server was started with (loaded first and
/// on every plain reload), or a dump or snapshot a reload names. Loads dumps and snapshots from
/// folders and files, S3 and HTTPS.
public struct DataSource: Sendable {
    public enum Origin: Sendable {
        case dump(String)
        case snapshot(String)
        /// Data made in the process (`--synthetic`, tests): a name and how to make it.
        case made(String, @Sendable () throws -> Store)
    }

    public var origin: Origin
    /// Strict loads refuse a dump's first bad row; lenient ones skip and count bad rows.
    public var mode: LoadMode
    /// The activity dates a dump may hold (`--date-range`).
    public var dates: DateWindow
    /// Called as a dump load starts, with where from and its progress; returns what to call
    /// when the load ends (a progress display).
    public var showProgress: (@Sendable (_ location: String, _ progress: LoadProgress) -> (@Sendable () -> Void))?
    /// Clients of a dump with at least this many usage rows get spare app slots
    /// (``ClientStoreBuilder/spareAppsMinRows``): the writer lowers it to its tail threshold.
    public var spareAppsMinRows = ClientStore.spareAppsMinRows

    public init(_ origin: Origin, mode: LoadMode = .strict, dates: DateWindow = .standard(),
                showProgress: (@Sendable (String, LoadProgress) -> (@Sendable () -> Void))? = nil) {
        self.origin = origin
        self.mode = mode
        self.dates = dates
        self.showProgress = showProgress
    }

    /// Loads `request`, or the configured origin for `nil`: the store and what it was loaded from.
    /// Throws the load's error (naming file, line and column, or the snapshot's section).
    public func load(_ request: ReloadSource?) throws -> (store: Store, source: String) {
        switch request {
        case .dump(let location)?: return (try loadDump(location), location)
        case .snapshot(let location)?: return (try Self.readSnapshot(location), location)
        case nil:
            switch origin {
            case .dump(let location): return (try loadDump(location), location)
            case .snapshot(let location): return (try Self.readSnapshot(location), location)
            case .made(let name, let make): return (try make(), name)
            }
        }
    }

    func loadDump(_ location: String) throws -> Store {
        var finish: (@Sendable () -> Void)?
        defer { finish?() }
        let progress: ((LoadProgress) -> Void)? = showProgress.map { show in { finish = show(location, $0) } }
        let (store, _) = Remote.isRemote(location)
            ? try Remote.loadDump(location, mode: mode, dates: dates, spareAppsMinRows: spareAppsMinRows, progress: progress)
            : try DumpLoader.load(folder: location, mode: mode, dates: dates, spareAppsMinRows: spareAppsMinRows, progress: progress)
        // What the loader's buffers held goes back to the system before the store is served.
        MemoryReclaimer.trim()
        return store
    }

    static func readSnapshot(_ location: String) throws -> Store {
        Remote.isRemote(location) ? try Remote.readSnapshot(location) : try Snapshot.read(path: location)
    }
}
