import Foundation
import Testing
import TallyQuery
@testable import TallyStorage
import TallyTestSupport

/// Snapshots whose checksums are right but whose structure is not (issue 15): a bug in another
/// build, or a crafted file. Each is refused, naming its section, before anything reads it —
/// and a few thousand random changes under correct checksums never crash the reader, nor the
/// queries over what it accepts.
@Suite struct SnapshotStructureTests {
    /// Arenas with headers (what clients past 65,536 users get) for the container checks.
    static let store = try! Fixtures.randomStore(seed: 47, clients: 2, rows: 4000, headerless: false).1
    /// The same data headerless (every smaller client's arenas): bitmaps are payload ranges.
    static let headerlessStore = try! Fixtures.randomStore(seed: 47, clients: 2, rows: 4000).1

    /// The file for `sections`, checksums and all.
    static func file(_ sections: [(kind: UInt32, bytes: [UInt8])]) -> [UInt8] {
        Snapshot.assemble(sections, usageRows: store.usageRowCount, walSequence: 0)
    }

    /// Where `needle` starts in `hay` (the first time).
    static func find(_ needle: [UInt8], in hay: [UInt8]) -> Int? {
        guard !needle.isEmpty, needle.count <= hay.count else { return nil }
        outer: for i in 0...(hay.count - needle.count) {
            for k in needle.indices where hay[i + k] != needle[k] { continue outer }
            return i
        }
        return nil
    }

    static func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

    /// The client section, and the offsets of level 0's arena (headers, pools) and starts in it.
    struct Located {
        var sections: [(kind: UInt32, bytes: [UInt8])]
        var section: Int
        var arena: BitmapArena
        var headersAt: Int, pool16At: Int, pool64At: Int
    }

    static func locate(_ store: Store = store) throws -> Located {
        let sections = Snapshot.encodeSections(store)
        let (i, client) = try #require(store.clients.enumerated().first { $0.element.usage != nil })
        let arena = client.usage!.levels[0]
        var e = SnapshotEncoder()
        arena.encode(&e)
        let bytes = sections[i + 1].bytes
        let at = try #require(find(e.bytes, in: bytes), "level 0's arena in its section")
        let headerSize = MemoryLayout<ContainerHeader>.stride
        let headersAt = at + 1 + 16, pool16At = headersAt + arena.headers.count * headerSize + 8
        let pool64At = pool16At + arena.pool16.count * 2 + 8
        return Located(sections: sections, section: i + 1, arena: arena, headersAt: headersAt, pool16At: pool16At, pool64At: pool64At)
    }

    static func refused(_ bytes: [UInt8], _ what: String) {
        do {
            _ = try Snapshot.read(bytes: bytes, name: what)
            Issue.record("\(what): accepted")
        } catch let e as SnapshotError {
            #expect("\(e)".contains("does not decode"), "\(what): \(e)")
        } catch {
            Issue.record("\(what): \(error)")
        }
    }

    @Test func theUnchangedFileReads() throws {
        let back = try Snapshot.read(bytes: Self.file(Snapshot.encodeSections(Self.store)), name: "unchanged")
        #expect(back.usageRowCount == Self.store.usageRowCount && back.byteCount == Self.store.byteCount)
    }

    @Test func anUnsortedArrayContainerIsRefused() throws {
        var l = try Self.locate()
        let h = try #require((0..<l.arena.headers.count).first { l.arena.headers[$0].kind == .array && l.arena.headers[$0].cardinality >= 2 })
        let off = Int(l.arena.headers[h].offset)
        let a = l.pool16At + 2 * off
        l.sections[l.section].bytes.swapAt(a, a + 2)
        l.sections[l.section].bytes.swapAt(a + 1, a + 3)
        Self.refused(Self.file(l.sections), "unsorted array container")
    }

    @Test func aWrongContainerCountIsRefused() throws {
        let l = try Self.locate()
        let headerSize = MemoryLayout<ContainerHeader>.stride
        let cardinalityAt = MemoryLayout<ContainerHeader>.offset(of: \ContainerHeader.cardinality)!
        for kind in [ContainerKind.array, .bitset, .run] {
            guard let h = (0..<l.arena.headers.count).first(where: { l.arena.headers[$0].kind == kind }) else { continue }
            var m = l.sections
            let at = l.headersAt + h * headerSize + cardinalityAt
            let wrong = l.arena.headers[h].cardinality + (kind == .array ? 0 : 1) - (kind == .array ? 1 : 0)
            m[l.section].bytes.replaceSubrange(at..<(at + 4), with: Self.le(wrong))
            if kind == .array && wrong == 0 { continue }
            // An array container one shorter is still a valid container (its last value dropped):
            // refused only where the count is checked against something; bitsets and runs are.
            if kind != .array { Self.refused(Self.file(m), "\(kind) container with a wrong count") }
        }
    }

    @Test func aBitBeyondTheDomainIsRefused() throws {
        let l = try Self.locate()
        guard let h = (0..<l.arena.headers.count).first(where: { l.arena.headers[$0].kind == .bitset }) else { return }
        var m = l.sections
        let words = min(1024, (l.arena.domain + 63) / 64 - Int(l.arena.headers[h].key) * 1024)
        let last = l.pool64At + 8 * (Int(l.arena.headers[h].offset) + words - 1)
        guard l.arena.domain % 64 != 0 else { return }
        m[l.section].bytes[last + 7] |= 0x80  // bit 63 of the last word: past the domain
        Self.refused(Self.file(m), "a bitset bit beyond the users")
    }

    /// FuzzSnapshot (2026-12-01): a level's user domain far beyond the client's users was only
    /// refused once the client's parts were compared, after the range tables had been built with
    /// scratch for that many users (2.9 GB for a 16 KB file). Now the usage index refuses it first.
    @Test func aUserDomainBeyondTheClientsUsersIsRefusedBeforeTheTablesAreBuilt() throws {
        // An arena without bitset containers (a bitset's word count follows the domain, so a
        // changed domain would be refused by the arena's own checks first): a sparse store's.
        let store = try Fixtures.randomStore(seed: 49, clients: 3, rows: 60, headerless: false).1
        var sections = Snapshot.encodeSections(store)
        var found: (section: Int, at: Int)?
        for (i, c) in store.clients.enumerated() {
            for arena in c.usage?.levels ?? [] where !arena.headers.contains(where: { $0.kind == .bitset }) && found == nil {
                var e = SnapshotEncoder()
                arena.encode(&e)
                if let at = Self.find(e.bytes, in: sections[i + 1].bytes) { found = (i + 1, at) }
            }
        }
        let (section, domainAt) = try #require(found, "an arena of array and run containers")
        sections[section].bytes.replaceSubrange((domainAt + 1)..<(domainAt + 9), with: Self.le(Int64(700_000_000)))
        do {
            _ = try Snapshot.read(bytes: Snapshot.assemble(sections, usageRows: store.usageRowCount, walSequence: 0), name: "domain")
            Issue.record("a domain of 700 M users was accepted")
        } catch let e as SnapshotError {
            #expect("\(e)".contains("the usage index's users or apps are not the client's"), "\(e)")
        }
    }

    @Test func anOutOfRangeReferenceIsRefused() throws {
        let l = try Self.locate()
        let client = Self.store.clients[l.section - 1]
        // The first membership entry naming a department that does not exist.
        if !client.userDepartments.isEmpty {
            var e = SnapshotEncoder()
            e.pod(client.userDepartments)
            var m = l.sections
            let at = try #require(Self.find(e.bytes, in: m[l.section].bytes)) + 8
            m[l.section].bytes.replaceSubrange(at..<(at + 4), with: Self.le(UInt32(client.departments.count + 3)))
            Self.refused(Self.file(m), "membership of a department that does not exist")
        }
        // A pair naming an app the client does not have.
        let pairs = client.usage!.pairs.base
        var e = SnapshotEncoder()
        e.pod(UnsafeBufferPointer(pairs.pairApp))
        var m = l.sections
        let at = try #require(Self.find(e.bytes, in: m[l.section].bytes)) + 8
        m[l.section].bytes.replaceSubrange(at..<(at + 4), with: Self.le(UInt32(client.apps.count + 1)))
        Self.refused(Self.file(m), "pair of an app that does not exist")
        // A level's bitmap starting past its arena's containers.
        var s = SnapshotEncoder()
        s.pod(client.usage!.levelStarts[0].values)
        var m2 = l.sections
        let at2 = try #require(Self.find(s.bytes, in: m2[l.section].bytes)) + 8 + 4 * 3
        m2[l.section].bytes.replaceSubrange(at2..<(at2 + 4), with: Self.le(UInt32(l.arena.headers.count + 9)))
        Self.refused(Self.file(m2), "level start past the arena")
    }

    /// A department mask (a user's, or a stored bitmap's, of two words and more) naming a
    /// department past the client's: the department counters are indexed by bit.
    @Test func aDepartmentMaskBitPastTheDepartmentsIsRefused() throws {
        let store = try Fixtures.randomStore(seed: 3, allClasses: true).1
        let sections = Snapshot.encodeSections(store)
        // The dump's client 1 has 130 departments: three words a mask, bits 130…191 unused.
        let c = try #require(store.clients.firstIndex { $0.departments.count == 130 })
        let client = store.clients[c], index = try #require(client.usage)
        #expect(client.departments.count == 130 && index.departmentMaskWords == 3)
        // Unchanged, it reads back with the masks (range tables, which every extra also builds, are not stored).
        let back = try Snapshot.read(bytes: Snapshot.assemble(sections, usageRows: store.usageRowCount, walSequence: 0), name: "unchanged")
        #expect(back.client(client.info.id)?.usage?.levelDepartmentMasks == index.levelDepartmentMasks
                && back.client(client.info.id)?.userDepartmentMasks == client.userDepartmentMasks)
        func refusedWithBit(in masks: [UInt64], _ what: String) throws {
            var e = SnapshotEncoder()
            e.pod(masks)
            var m = sections
            let at = try #require(Self.find(e.bytes, in: m[c + 1].bytes), "\(what)") + 8
            m[c + 1].bytes[at + 8 * 2 + 7] |= 0x80  // bit 63 of the first mask's last word: department 191
            Self.refused(Snapshot.assemble(m, usageRows: store.usageRowCount, walSequence: 0), what)
        }
        try refusedWithBit(in: try #require(client.userDepartmentMasks), "a user's mask past the departments")
        try refusedWithBit(in: try #require(index.levelDepartmentMasks?[1]), "a bitmap's mask past the departments")
    }

    /// A large client's spare app slots (``UsageIndex/appSlots``) are stored and read back; a
    /// file claiming more slots than the spare ones past the client's apps, or a slot past them
    /// with a first day (a row), is refused.
    @Test func spareAppSlotsReadBackAndSlotsHoldingUsageAreRefused() throws {
        let store = try Fixtures.randomStore(seed: 48, clients: 2, rows: 3000, allClasses: true, spareApps: true).1
        let sections = Snapshot.encodeSections(store)
        let (c, client) = try #require(store.clients.enumerated().first { $0.element.usage != nil })
        let index = try #require(client.usage)
        #expect(index.appSlots == client.apps.count + ClientStore.spareApps)
        let back = try Snapshot.read(bytes: Snapshot.assemble(sections, usageRows: store.usageRowCount, walSequence: 0), name: "unchanged").client(client.info.id)?.usage
        #expect(back?.appSlots == index.appSlots && back?.appCount == index.appCount && back?.entityCount == index.entityCount)
        // The slot count after the day count and the rows.
        var e = SnapshotEncoder()
        e.int(index.dayCount); e.int(index.rowCount); e.int(index.appSlots)
        var m = sections
        let at = try #require(Self.find(e.bytes, in: m[c + 1].bytes), "the slot count") + 16
        m[c + 1].bytes.replaceSubrange(at..<(at + 8), with: Self.le(Int64(index.appSlots + 1)))
        Self.refused(Snapshot.assemble(m, usageRows: store.usageRowCount, walSequence: 0), "more spare slots than a client gets")
        // A spare slot's first day.
        var f = SnapshotEncoder()
        f.pod(index.firstSeenOffset)
        m = sections
        let first = try #require(Self.find(f.bytes, in: m[c + 1].bytes), "the first days") + 8 + 4 * (index.appSlots - 1)
        m[c + 1].bytes.replaceSubrange(first..<(first + 4), with: Self.le(Int32(0)))
        Self.refused(Snapshot.assemble(m, usageRows: store.usageRowCount, walSequence: 0), "a spare slot with a first day")
    }

    /// Each bitmap of a headerless level 0: its range in the pool, and its kind.
    static func headerlessBitmaps(_ l: Located) -> [(start: Int, end: Int, kind: ContainerKind)] {
        let index = headerlessStore.clients[l.section - 1].usage!
        let (starts, blocks) = index.starts(level: 0)
        let view = l.arena.view
        return (0..<(index.entityCount * blocks)).compactMap { i in
            let ref = BitmapRef(start: starts[i], end: starts[i + 1])
            return ref.isEmpty ? nil : (Int(ref.start), Int(ref.end), view.slot(ref, 0).kind)
        }
    }

    @Test func headerlessBitmapsOutOfOrderMiscountedOrPastTheDomainAreRefused() throws {
        let l = try Self.locate(Self.headerlessStore)
        #expect(l.arena.headerless && l.arena.headers.isEmpty)
        let bitmaps = Self.headerlessBitmaps(l)
        // An array's first two values swapped.
        let array = try #require(bitmaps.first { $0.kind == .array && $0.end - $0.start >= 2 })
        var m = l.sections
        let a = l.pool16At + 2 * array.start
        m[l.section].bytes.swapAt(a, a + 2)
        m[l.section].bytes.swapAt(a + 1, a + 3)
        Self.refused(Self.file(m), "unsorted headerless array")
        // An array's last value past the users.
        m = l.sections
        let last = l.pool16At + 2 * (array.end - 1)
        m[l.section].bytes.replaceSubrange(last..<(last + 2), with: Self.le(UInt16(0xFFFF)))
        Self.refused(Self.file(m), "headerless array past the domain")
        // A bitset's count one more than its words hold; a bit past the users.
        let bitset = try #require(bitmaps.first { $0.kind == .bitset }, "a dense bitmap in level 0")
        m = l.sections
        let count = l.pool16At + 2 * bitset.start
        m[l.section].bytes[count] &+= 1
        Self.refused(Self.file(m), "headerless bitset with a wrong count")
        if l.arena.domain % 64 != 0 {
            m = l.sections
            m[l.section].bytes[l.pool16At + 2 * bitset.end - 1] |= 0x80  // bit 63 of the last word
            Self.refused(Self.file(m), "headerless bitset with a bit past the domain")
        }
        // A level start past the pool, and one that cuts a bitset short.
        let index = Self.headerlessStore.clients[l.section - 1].usage!
        var e = SnapshotEncoder()
        e.pod(index.levelStarts[0].values)
        let startsAt = try #require(Self.find(e.bytes, in: l.sections[l.section].bytes)) + 8
        m = l.sections
        m[l.section].bytes.replaceSubrange((startsAt + 4 * 3)..<(startsAt + 4 * 4), with: Self.le(UInt32(l.arena.pool16.count + 9)))
        Self.refused(Self.file(m), "headerless level start past the pool")
        let (starts, blocks) = index.starts(level: 0)
        let i = try #require((0..<(index.entityCount * blocks)).first { Int(starts[$0]) == bitset.start })
        m = l.sections
        m[l.section].bytes.replaceSubrange((startsAt + 4 * (i + 1))..<(startsAt + 4 * (i + 2)), with: Self.le(UInt32(bitset.end - 1)))
        Self.refused(Self.file(m), "headerless bitset cut short")
    }

    /// A file of format 4 or before holds the rows again in month segments: one whose stated
    /// rows are not what it holds is refused with the file, as when segments were read.
    @Test func aSegmentThatDoesNotHoldItsRowsIsRefused() throws {
        let sections = Snapshot.encodeSections(Self.store, version: 4)
        let (i, client) = try #require(Self.store.clients.enumerated().first { $0.element.usage != nil })
        let segment = try #require(client.usage!.monthSegments().first)
        var e = SnapshotEncoder()
        e.day(segment.month); e.int(segment.rowCount); e.int(segment.encodedByteCount)
        let at = try #require(Self.find(e.bytes, in: sections[i + 1].bytes), "the first segment's header") + 4
        var m = sections
        m[i + 1].bytes.replaceSubrange(at..<(at + 8), with: Self.le(Int64(segment.rowCount + 1)))
        for (bytes, name) in [(sections, "unchanged"), (m, "segment")] {
            let file = Snapshot.assemble(bytes, usageRows: Self.store.usageRowCount, walSequence: 0, version: 4)
            do {
                let back = try Snapshot.read(bytes: file, name: name)
                #expect(name == "unchanged" && back.byteCount == Self.store.byteCount, "a segment stating one row more than it holds was accepted")
            } catch let e as SnapshotError {
                #expect(name == "segment" && "\(e)".contains("segment"), "\(e)")
            }
        }
    }

    /// The pair index is the only copy of the rows a client keeps (a rebuild and the next
    /// snapshot read them from it): a pair index that does not hold the index's rows — a bitset
    /// counting a day more than it holds, a day past the index's, an app twice for one user — is
    /// refused with the file.
    @Test func aPairIndexThatDoesNotHoldItsRowsIsRefused() throws {
        let (i, client) = try #require(Self.store.clients.enumerated().first { c in
            c.element.usage.map { u in (0..<u.pairs.base.pairCount).contains { u.pairs.base.pairInfo[$0] >> 63 != 0 } } ?? false
        })
        let pairs = client.usage!.pairs.base
        let sections = Snapshot.encodeSections(Self.store)
        var e = SnapshotEncoder()
        e.pod(UnsafeBufferPointer(pairs.pairInfo))
        let infoAt = try #require(Self.find(e.bytes, in: sections[i + 1].bytes), "the pair index's pair information") + 8
        let bitset = try #require((0..<pairs.pairCount).first { pairs.pairInfo[$0] >> 63 != 0 })
        var m = sections
        m[i + 1].bytes.replaceSubrange((infoAt + 8 * bitset)..<(infoAt + 8 * bitset + 8), with: Self.le(pairs.pairInfo[bitset] + (1 << 32)))
        Self.refused(Self.file(m), "a bitset counting a day more")
        // A day past the index's, in the last word of a bitset (when its days leave room).
        let dayCount = client.usage!.dayCount
        if dayCount & 63 != 0 {
            e = SnapshotEncoder()
            e.pod(UnsafeBufferPointer(pairs.words))
            let wordsAt = try #require(Self.find(e.bytes, in: sections[i + 1].bytes)) + 8
            let off = Int(pairs.pairInfo[bitset] & 0xFFFF_FFFF), last = off + pairs.wordsPerPair - 1
            m = sections
            m[i + 1].bytes.replaceSubrange((wordsAt + 8 * last)..<(wordsAt + 8 * last + 8), with: Self.le(pairs.words[last] | 1 << 63))
            m[i + 1].bytes.replaceSubrange((infoAt + 8 * bitset)..<(infoAt + 8 * bitset + 8), with: Self.le(pairs.pairInfo[bitset] + (1 << 32)))
            Self.refused(Self.file(m), "a day past the index's")
        }
        // One user's second app made their first.
        let u = try #require((0..<(pairs.userStart.count - 1)).first { pairs.pairCount(user: $0) >= 2 })
        e = SnapshotEncoder()
        e.pod(UnsafeBufferPointer(pairs.pairApp))
        let appsAt = try #require(Self.find(e.bytes, in: sections[i + 1].bytes)) + 8
        let p = Int(pairs.userStart[u])
        m = sections
        m[i + 1].bytes.replaceSubrange((appsAt + 4 * (p + 1))..<(appsAt + 4 * (p + 2)), with: Self.le(pairs.pairApp[p]))
        Self.refused(Self.file(m), "an app twice for one user")
    }

    /// Packed arrays (``BitmapArena``) that claim one value more or fewer than their range
    /// holds, with a difference of zero, or a last value past the users, are refused.
    @Test func packedArraysMiscountedOutOfOrderOrPastTheDomainAreRefused() throws {
        let l = try Self.locate(Self.headerlessStore)
        #expect(l.arena.packable)
        let all = Self.headerlessBitmaps(l).filter { $0.kind == .packed }
        // One with padding (an even count) and one without, so that a count one off is refused
        // by the range's length on one and by the padding on the other.
        let even = try #require(all.first { l.arena.pool16[$0.start] & 1 == 0 }, "a packed bitmap of an even count")
        let odd = try #require(all.first { l.arena.pool16[$0.start] & 1 == 1 }, "a packed bitmap of an odd count")
        for packed in [even, odd] {
            let count = l.pool16At + 2 * packed.start
            var m = l.sections
            m[l.section].bytes[count] &+= 1
            Self.refused(Self.file(m), "packed array counting one value more")
            m = l.sections
            m[l.section].bytes[count] &-= 1
            Self.refused(Self.file(m), "packed array counting one value fewer")
            m = l.sections
            m[l.section].bytes.replaceSubrange((count + 2)..<(count + 4), with: Self.le(UInt16(0x7FFF)))
            Self.refused(Self.file(m), "packed array past the domain")
            m = l.sections
            m[l.section].bytes[count + 5] = 0  // the second difference
            Self.refused(Self.file(m), "packed array not ascending")
        }
    }

    /// Files of format 2 (headerless arenas, no packed arrays) are still read, and answer as the
    /// store they were written from, and as the same data packed.
    @Test func aVersionTwoFileIsRead() throws {
        let unpacked = try Fixtures.randomStore(seed: 47, clients: 2, rows: 4000, packed: false).1
        let v2 = Snapshot.assemble(Snapshot.encodeSections(unpacked, version: 2), usageRows: unpacked.usageRowCount,
                                   walSequence: 0, version: 2)
        #expect(v2[8] == 2)
        let back = try Snapshot.read(bytes: v2, name: "version 2")
        let kinds = back.clients.compactMap(\.usage).flatMap { u in
            u.levels.indices.flatMap { l in
                let (starts, blocks) = u.starts(level: l)
                return (0..<(u.entityCount * blocks)).map { u.levels[l].containerKinds(starts.bitmap($0)) }.joined()
            }
        }
        #expect(Set(kinds) == [.array, .bitset])
        // Its segments are set aside; everything else is as it was written.
        #expect(back.byteCount == unpacked.byteCount && back.byteCount > Self.headerlessStore.byteCount)
        let range = DayRange(RandomDump.firstDay, RandomDump.lastDay)
        for c in unpacked.clients {
            for e in [Endpoint.utilization, .users, .summary, .trend, .departments, .categories] {
                let r = EndpointRequest(client: c.info.id, period: range, comparison: nil, granularity: .weekly)
                let a = try e.respond(r, executor: Executor(store: back))
                #expect(a == (try e.respond(r, executor: Executor(store: unpacked))), "\(e)")
                #expect(a == (try e.respond(r, executor: Executor(store: Self.headerlessStore))), "\(e) packed")
            }
        }
    }

    /// Files of format 3 hold LZ4 segments: read, their rows are the pair index's, a client
    /// rebuilt from them (an append's, a merge's) holds the rows the store was written with, and
    /// the snapshot written again is of this build's format, with no segments.
    @Test func aVersionThreeFileIsReadAndRebuilt() throws {
        let v3 = Snapshot.assemble(Snapshot.encodeSections(Self.headerlessStore, version: 3), usageRows: Self.headerlessStore.usageRowCount,
                                   walSequence: 0, version: 3)
        #expect(v3[8] == 3)
        let back = try Snapshot.read(bytes: v3, name: "version 3")
        #expect(back.byteCount == Self.headerlessStore.byteCount)
        for (a, b) in zip(back.clients, Self.headerlessStore.clients) {
            let (ra, rb) = (a.storedRows(), b.storedRows())
            #expect(ra.users == rb.users && ra.apps == rb.apps && ra.days == rb.days, "client \(a.info.id)")
            let rebuilt = a.rebuilt(users: [], apps: [], days: [])
            let rr = rebuilt.storedRows()
            #expect(rr.users == rb.users && rr.apps == rb.apps && rr.days == rb.days, "client \(a.info.id) rebuilt")
        }
        let v5 = Snapshot.assemble(Snapshot.encodeSections(back), usageRows: back.usageRowCount, walSequence: 0)
        #expect(v5[8] == 5 && v5.count < v3.count)
        #expect(try Snapshot.read(bytes: v5, name: "version 5").byteCount == back.byteCount)
    }

    /// Files of format 1 (every arena with headers, no layout byte) are still read, and answer
    /// as the store they were written from — and as the same data headerless.
    @Test func aVersionOneFileIsRead() throws {
        let v1 = Snapshot.assemble(Snapshot.encodeSections(Self.store, version: 1), usageRows: Self.store.usageRowCount,
                                   walSequence: 0, version: 1)
        #expect(v1[8] == 1)
        let back = try Snapshot.read(bytes: v1, name: "version 1")
        #expect(back.clients.compactMap(\.usage).allSatisfy { $0.levels.allSatisfy { !$0.headerless } })
        #expect(back.byteCount == Self.store.byteCount && back.usageRowCount == Self.store.usageRowCount)
        let range = DayRange(RandomDump.firstDay, RandomDump.lastDay)
        for c in Self.store.clients {
            for e in [Endpoint.utilization, .users, .summary, .trend, .departments, .categories] {
                let r = EndpointRequest(client: c.info.id, period: range, comparison: nil, granularity: .weekly)
                let a = try e.respond(r, executor: Executor(store: back))
                #expect(a == (try e.respond(r, executor: Executor(store: Self.store))), "\(e)")
                #expect(a == (try e.respond(r, executor: Executor(store: Self.headerlessStore))), "\(e) headerless")
            }
        }
        // A headerless store is smaller by the headers it no longer has.
        #expect(Self.headerlessStore.byteCount < Self.store.byteCount)
    }

    /// Random changes of one to four bytes in a client's section or the catalog's (3,000 here;
    /// 30,000 client-section changes ran clean once), with correct checksums:
    /// refused or read, never a crash — and every query over what was read answers.
    @Test(arguments: [false, true])
    func randomChangesNeverCrash(headerless: Bool) throws {
        let l = try Self.locate(headerless ? Self.headerlessStore : Self.store)
        var r = SeededRandom(seed: 4747)
        var refused = 0, read = 0
        let acme = (headerless ? Self.headerlessStore : Self.store).clients[l.section - 1].info.id
        for _ in 0..<3000 {
            var m = l.sections
            let section = r.chance(0.2) ? 0 : l.section  // the catalog now and then
            let n = Int.random(in: 1...4, using: &r)
            let at = Int.random(in: 0..<(m[section].bytes.count - n), using: &r)
            for k in 0..<n { m[section].bytes[at + k] = UInt8.random(in: 0...255, using: &r) }
            do {
                let back = try Snapshot.read(bytes: Self.file(m), name: "random")
                read += 1
                let ex = Executor(store: back)
                let range = DayRange(RandomDump.firstDay, RandomDump.lastDay)
                for e in [Endpoint.utilization, .users, .summary, .trend, .departments] {
                    _ = try? e.respond(EndpointRequest(client: acme, period: range, comparison: nil, granularity: .monthly), executor: ex)
                }
            } catch {
                refused += 1
            }
        }
        #expect(refused + read == 3000 && refused > 0)
    }
}
