import Foundation
import Synchronization

/// How far a load has got: bytes read from storage (of the dump's total) and usage rows parsed,
/// updated by the parsing threads and read by whoever shows progress (SPEC §6).
public final class LoadProgress: Sendable {
    /// Bytes of all the dump's files, as stored.
    public let totalBytes: Int
    let bytes = Atomic<Int>(0)
    let rows = Atomic<Int>(0)
    let started = ContinuousClock.now

    public init(totalBytes: Int) { self.totalBytes = totalBytes }

    /// The stored size of every file of a dump.
    public convenience init(layout: DumpLayout) {
        let sizes = layout.files.values.joined().map {
            $0.size ?? ((try? FileManager.default.attributesOfItem(atPath: $0.absolutePath)[.size]) as? Int) ?? 0
        }
        self.init(totalBytes: sizes.reduce(0, +))
    }

    func add(bytes n: Int) { bytes.add(n, ordering: .relaxed) }
    func add(rows n: Int) { rows.add(n, ordering: .relaxed) }

    public struct Snapshot: Sendable {
        public var bytes: Int
        public var totalBytes: Int
        public var rows: Int
        public var seconds: Double

        public var fraction: Double { totalBytes > 0 ? min(1, Double(bytes) / Double(totalBytes)) : 0 }
        public var rowsPerSecond: Double { seconds > 0 ? Double(rows) / seconds : 0 }
        /// Seconds left at the current byte rate, once there is one.
        public var eta: Double? {
            guard seconds > 0.2, bytes > 0, totalBytes > bytes else { return totalBytes > 0 && bytes >= totalBytes ? 0 : nil }
            return Double(totalBytes - bytes) / (Double(bytes) / seconds)
        }
    }

    public var now: Snapshot {
        let d = ContinuousClock.now - started
        return Snapshot(bytes: bytes.load(ordering: .relaxed), totalBytes: totalBytes, rows: rows.load(ordering: .relaxed),
                        seconds: Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)
    }
}
