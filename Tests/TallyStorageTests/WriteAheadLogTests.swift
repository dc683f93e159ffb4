import Foundation
import Testing
@testable import TallyStorage

/// The log on its own: records come back in order after a reopen; a torn tail (a crash in the
/// middle of a write) is cut off and the next record follows the last whole one; truncation keeps
/// the sequence going, also past a sequence the log never had.
@Suite struct WriteAheadLogTests {
    static func path(_ name: String) -> String { NSTemporaryDirectory() + "tally-wal-\(name)-\(getpid())" }

    static func batch(_ n: Int) -> AppendBatch {
        AppendBatch(client: UUID128(high: 7, low: UInt64(n)), rows: (0..<n).map {
            .init(user: UUID128(high: UInt64($0), low: 1), app: UUID128(high: 2, low: UInt64($0)), day: Day(raw: Int32(20_000 + $0)))
        })
    }

    @Test func recordsSurviveAReopenAndATornTailIsCut() throws {
        let p = Self.path("torn")
        defer { try? FileManager.default.removeItem(atPath: p) }
        try? FileManager.default.removeItem(atPath: p)
        do {
            let log = try WriteAheadLog(path: p)
            for n in 1...5 { try log.write(log.record(Self.batch(n)).bytes) }
        }
        let whole = try Data(contentsOf: URL(fileURLWithPath: p))
        let reopened = try WriteAheadLog(path: p)
        #expect(try reopened.readRecords().map(\.sequence) == [1, 2, 3, 4, 5] && reopened.droppedBytes == 0)
        #expect(try reopened.readRecords().map(\.batch) == (1...5).map(Self.batch))
        // Read from the file, not kept: records written since the log was opened are read too,
        // and `after` skips what loaded data already holds.
        try reopened.write(reopened.record(Self.batch(6)).bytes)
        #expect(try reopened.readRecords(after: 3).map(\.sequence) == [4, 5, 6] && reopened.recoveredCount == 5)
        #expect(try reopened.readRecords(after: 6).isEmpty)
        // Every cut inside the last record: it is dropped, the other four kept, and the next write follows them.
        let lastLength = 16 + 8 + 20 + 36 * 5 - 8
        for cut in stride(from: 1, to: lastLength, by: 17) {
            try whole.prefix(whole.count - cut).write(to: URL(fileURLWithPath: p))
            let log = try WriteAheadLog(path: p)
            #expect(log.recoveredCount == 4 && log.droppedBytes == lastLength - cut, "cut \(cut)")
            #expect(try log.readRecords().count == 4 && log.droppedBytes == lastLength - cut, "cut \(cut)")
            try log.write(log.record(Self.batch(9)).bytes)
            let again = try WriteAheadLog(path: p)
            #expect(try again.readRecords().map(\.sequence) == [1, 2, 3, 4, 5] && again.readRecords().last?.batch == Self.batch(9))
        }
        // A flipped byte in a record's payload ends the log there.
        var bytes = [UInt8](whole)
        bytes[24 + 16 + 30] ^= 1
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        #expect(try WriteAheadLog(path: p).readRecords().isEmpty)
        try Data("not a log".utf8).write(to: URL(fileURLWithPath: p))
        #expect(throws: WriteAheadLog.Failure.self) { _ = try WriteAheadLog(path: p) }
    }

    /// A batch with rows in every directory table (strings with and without values, optional
    /// ids present and absent, non-ASCII text, an empty string).
    static func directoryBatch(_ n: Int) -> AppendBatch {
        var d = DirectoryRows()
        let id = { (k: Int) in UUID128(high: UInt64(n), low: UInt64(k)) }
        d.catalogApps = [.init(id: id(1), canonicalName: "Zoom \(n)", logo: nil, type: "saas", category: id(2), vendor: nil),
                         .init(id: id(3), canonicalName: "Ünïcode ✓", logo: "https://l/\(n)", type: "", category: nil, vendor: id(4))]
        d.departments = [DepartmentInfo(id: id(5), name: "R&D", description: nil), DepartmentInfo(id: id(6), name: "Ops", description: "on call")]
        d.users = [UserInfo(id: id(7), email: "a@b.c", displayName: nil, isActive: true, role: nil, createdAt: "2025-01-02 03:04:05+02"),
                   UserInfo(id: id(8), email: "d@e.f", displayName: "Dee", isActive: false, role: "admin", createdAt: nil)]
        d.apps = [.init(id: id(9), catalogApp: id(1), isApproved: true, isFavorite: false)]
        d.memberships = [.init(user: id(7), department: id(5)), .init(user: id(8), department: id(6))]
        var b = batch(n)
        b.directory = d
        return b
    }

    /// Version 2 records carry directory rows and come back equal; records of events only and
    /// of directory rows only mix in one log; a version-1 log (events only) is read as it is,
    /// its header raised to 2 on opening, and takes directory records after.
    @Test func directoryRowsSurviveAReopenAndVersionOneLogsAreRaised() throws {
        let p = Self.path("v2")
        defer { try? FileManager.default.removeItem(atPath: p) }
        try? FileManager.default.removeItem(atPath: p)
        var onlyDirectory = Self.directoryBatch(4)
        onlyDirectory.rows = []
        let batches = [Self.batch(1), Self.directoryBatch(2), Self.batch(3), onlyDirectory]
        do {
            let log = try WriteAheadLog(path: p)
            for b in batches { try log.write(log.record(b).bytes) }
        }
        let reopened = try WriteAheadLog(path: p)
        #expect(try reopened.readRecords().map(\.batch) == batches)
        #expect(try reopened.readRecords()[1].batch.directory.count == 9)
        // Every cut inside the last record (directory rows only) drops it alone.
        let whole = try Data(contentsOf: URL(fileURLWithPath: p))
        for cut in stride(from: 1, to: 120, by: 7) {
            try whole.prefix(whole.count - cut).write(to: URL(fileURLWithPath: p))
            #expect(try WriteAheadLog(path: p).readRecords().map(\.batch) == Array(batches.prefix(3)), "cut \(cut)")
        }
        // A version-1 log, as the previous release wrote it: header version 1, records of events.
        try? FileManager.default.removeItem(atPath: p)
        do {
            let log = try WriteAheadLog(path: p)
            for n in 1...2 { try log.write(log.record(Self.batch(n)).bytes) }
        }
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: p)))
        #expect(bytes[8] == 2)
        bytes[8] = 1
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        do {
            let log = try WriteAheadLog(path: p)
            #expect(try log.readRecords().map(\.batch) == [Self.batch(1), Self.batch(2)])
            #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: p)))[8] == 2, "the header is raised to version 2")
            try log.write(log.record(Self.directoryBatch(3)).bytes)
        }
        #expect(try WriteAheadLog(path: p).readRecords().map(\.batch) == [Self.batch(1), Self.batch(2), Self.directoryBatch(3)])
        // A version this build does not know is refused, not cut.
        bytes[8] = 3
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        #expect(throws: WriteAheadLog.Failure.self) { _ = try WriteAheadLog(path: p) }
        #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: p))).count == bytes.count)
    }

    @Test func truncationKeepsTheSequence() throws {
        let p = Self.path("truncate")
        defer { try? FileManager.default.removeItem(atPath: p) }
        try? FileManager.default.removeItem(atPath: p)
        let log = try WriteAheadLog(path: p)
        for n in 1...4 { try log.write(log.record(Self.batch(n)).bytes) }
        try log.truncate(through: 2)
        try log.write(log.record(Self.batch(5)).bytes)
        #expect(try WriteAheadLog(path: p).readRecords().map(\.sequence) == [3, 4, 5])
        try log.truncate(through: 5)
        #expect(try WriteAheadLog(path: p).readRecords().isEmpty)
        try log.write(log.record(Self.batch(6)).bytes)
        #expect(try WriteAheadLog(path: p).readRecords().map(\.sequence) == [6])
        // Past the end (data newer than the log): the next record comes after it.
        try log.truncate(through: 40)
        try log.write(log.record(Self.batch(7)).bytes)
        let reopened = try WriteAheadLog(path: p)
        #expect(try reopened.readRecords().map(\.sequence) == [41] && reopened.lastSequence == 41)
    }

    @Test func aFailedWriteIsCutBackAndTheLogStops() throws {
        let p = Self.path("failed")
        defer { try? FileManager.default.removeItem(atPath: p) }
        try? FileManager.default.removeItem(atPath: p)
        let log = try WriteAheadLog(path: p)
        for n in 1...2 { try log.write(log.record(Self.batch(n)).bytes) }
        let size = log.byteCount
        // A write that stops part-way (a full disk): refused, the part written is cut off, the
        // sequence rolled back, and every later write refused too.
        log.failWriteAfter = 30
        #expect(throws: WriteAheadLog.Failure.self) { try log.write(log.record(Self.batch(3)).bytes) }
        #expect(log.failure != nil && log.lastSequence == 2 && log.durableSequence == 2)
        #expect((try FileManager.default.attributesOfItem(atPath: p)[.size] as? Int) == size && log.byteCount == size)
        #expect(throws: WriteAheadLog.Failure.self) { try log.write(log.record(Self.batch(4)).bytes) }
        #expect((try FileManager.default.attributesOfItem(atPath: p)[.size] as? Int) == size)
        // At the next start: the two records before, whole; nothing dropped; the sequence goes on.
        let reopened = try WriteAheadLog(path: p)
        #expect(try reopened.readRecords().map(\.sequence) == [1, 2] && reopened.droppedBytes == 0 && reopened.failure == nil)
        try reopened.write(reopened.record(Self.batch(5)).bytes)
        #expect(try WriteAheadLog(path: p).readRecords().map(\.sequence) == [1, 2, 3])
    }

    @Test func theBaseIsWhatTheLastTruncationDropped() throws {
        let p = Self.path("base")
        defer { try? FileManager.default.removeItem(atPath: p) }
        try? FileManager.default.removeItem(atPath: p)
        let log = try WriteAheadLog(path: p)
        #expect(log.baseSequence == 0)
        for n in 1...3 { try log.write(log.record(Self.batch(n)).bytes) }
        try log.truncate(through: 2)
        let size = try FileManager.default.attributesOfItem(atPath: p)[.size] as? Int
        #expect(log.baseSequence == 2 && log.byteCount == size)
        #expect(try WriteAheadLog(path: p).baseSequence == 2)
    }
}
