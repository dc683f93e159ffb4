import Foundation
import Logging

/// Where the write path reports what it does: the service's metrics and its data log. The API's
/// `Observability` is one; ``QuietWriteObserver`` drops everything.
public protocol WriteObserver: Sendable {
    /// The log of data events (loads, appends refused, snapshots, the log's state).
    var dataLog: Logger { get }
    /// A batch of `rows` events was made durable and visible.
    func appended(rows: Int)
    /// A batch was refused (`rows` of its rows named).
    func appendRefused(rows: Int)
    /// One group commit's write and `fdatasync` took `nanoseconds`.
    func synced(nanoseconds: Int64)
    /// The write-ahead log now holds `bytes`.
    func logSize(bytes: Int)
    /// A load or reload finished (or failed).
    func reloaded(_ record: ReloadRecord)
    /// A new version is served; `freshness` says what it holds of the appends.
    func published(_ freshness: Freshness)
    /// A merge of a client's tail into its index ended: installed, or dropped (the client was
    /// rebuilt or reloaded meanwhile), after `seconds`.
    func merged(installed: Bool, rows: Int, seconds: Double)
}

extension WriteObserver {
    public func merged(installed: Bool, rows: Int, seconds: Double) {}
}

/// Reports nothing (tests, tools).
public struct QuietWriteObserver: WriteObserver {
    public let dataLog: Logger
    public init() {
        var l = Logger(label: "tally.data")
        l.logLevel = .critical
        dataLog = l
    }
    public func appended(rows: Int) {}
    public func appendRefused(rows: Int) {}
    public func synced(nanoseconds: Int64) {}
    public func logSize(bytes: Int) {}
    public func reloaded(_ record: ReloadRecord) {}
    public func published(_ freshness: Freshness) {}
}

/// The last load or reload: when, from where, how long, and the error if it failed.
public struct ReloadRecord: Sendable {
    public var finishedAt: Date
    public var source: String
    public var seconds: Double
    public var error: String?
    public init(finishedAt: Date, source: String, seconds: Double, error: String?) {
        self.finishedAt = finishedAt
        self.source = source
        self.seconds = seconds
        self.error = error
    }
}

/// How fresh the served data is: the newest acknowledged append and when it was acknowledged.
public struct Freshness: Sendable, Equatable {
    /// The newest write-ahead-log sequence acknowledged (0: none since the log began).
    public var ackedSequence: UInt64
    /// When it was acknowledged, if by this process (a sequence recovered from the log at start
    /// has no time).
    public var ackedAt: Date?
    public init(ackedSequence: UInt64 = 0, ackedAt: Date? = nil) {
        self.ackedSequence = ackedSequence
        self.ackedAt = ackedAt
    }
}
