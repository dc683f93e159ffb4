import TallyStorage

/// Rows of D (the users list, SPEC §3) written as JSON in one piece: fixed text, the user's id,
/// email and name, their departments' refs copied from bytes made once per client version
/// (``DepartmentRefJSON``), and the two metrics — one capacity check and one comma decision a
/// row instead of some thirty tokens. The same bytes as the token-by-token path of
/// ``RowWriter/row(_:for:)`` (`DerivedTests.usersRowsWrittenInOnePieceEqualTheTokenPath`).
///
/// Hand-written because the peer comparison showed it must be: D's full list of the scale-M
/// seed-5 client over 30 days (830 rows in five pages of 200, about 360 bytes a row) took
/// 0.27 ms in process against DuckDB's 9.4–10.7 ms (×33–×39, under issue 16's ×50), and `perf`
/// put two thirds of it in writing the rows.
enum JSONRows {
    /// Whether D's rows take this path (tests turn it off to compare the bytes).
    nonisolated(unsafe) static var enabled = true
}

/// Each department's `DepartmentRef` object as JSON, made once per client version
/// (``ClientStore/derived``): D copies these bytes for every user's departments.
final class DepartmentRefJSON: Sendable {
    let bytes: [UInt8]
    /// Department `d`'s object: `bytes[start[d] ..< start[d + 1]]`.
    let start: [Int]

    static func of(_ client: ClientStore) -> DepartmentRefJSON { client.derived.get { DepartmentRefJSON(client) } }

    init(_ client: ClientStore) {
        var w = JSONWriter(capacity: 16 &+ 120 &* client.departments.count)
        var start = [0]
        start.reserveCapacity(client.departments.count &+ 1)
        // At the top level the writer separates nothing: the objects follow one another.
        for d in client.departments.indices {
            writeDepartmentRef(&w, UInt32(d), client: client)
            start.append(w.out.count)
        }
        bytes = w.take()
        self.start = start
    }
}

extension JSONWriter {
    /// Writes D's row of user `u` (an object value: its comma when one is needed).
    mutating func userRow(_ client: ClientStore, user u: Int, _ m: Metrics, _ c: Metrics?, departments refs: DepartmentRefJSON) {
        let first = Int(client.userDepartmentStart[u]), end = Int(client.userDepartmentStart[u &+ 1])
        var room = 0
        for k in first..<end {
            let d = Int(client.userDepartments[k])
            room &+= refs.start[d &+ 1] &- refs.start[d] &+ 1
        }
        let text = client.users[u].email.utf8.count &+ (client.users[u].displayName?.utf8.count ?? 0)
        // Fixed text and two metrics (about 200 bytes), strings at worst six bytes a byte.
        token(atMost: 320 &+ 6 &* text &+ room) { p in
            var i = Self.put("{\"user\":{\"id\":", at: p)
            i &+= Self.put(uuid: client.users[u].id, at: p + i)
            i &+= Self.put(",\"email\":", at: p + i)
            i &+= Self.put(string: client.users[u].email, at: p + i)
            i &+= Self.put(",\"display_name\":", at: p + i)
            if let name = client.users[u].displayName { i &+= Self.put(string: name, at: p + i) } else { i &+= Self.put("null", at: p + i) }
            i &+= Self.put(",\"departments\":[", at: p + i)
            refs.bytes.withUnsafeBufferPointer { b in
                for k in first..<end {
                    if k > first { p[i] = UInt8(ascii: ","); i &+= 1 }
                    let d = Int(client.userDepartments[k])
                    let from = refs.start[d], n = refs.start[d &+ 1] &- from
                    (p + i).update(from: b.baseAddress! + from, count: n)
                    i &+= n
                }
            }
            i &+= Self.put("]},\"app_count\":", at: p + i)
            i &+= Self.put(metric: m.apps, c?.apps, at: p + i)
            i &+= Self.put(",\"active_days\":", at: p + i)
            i &+= Self.put(metric: m.activeDays, c?.activeDays, at: p + i)
            p[i] = UInt8(ascii: "}")
            return i &+ 1
        }
    }

    /// A `MetricWithDelta` object (``writeMetric(_:_:_:_:)``'s) at `p` (at most 110 bytes).
    @inline(__always) static func put(metric value: Int, _ compare: Int?, at p: UnsafeMutablePointer<UInt8>) -> Int {
        var i = put("{\"value\":", at: p)
        i &+= put(int: value, at: p + i)
        i &+= put(",\"change_pct\":", at: p + i)
        if let t = Derived.changePctTenths(value: value, compare: compare) { i &+= put(tenths: t, at: p + i) } else { i &+= put("null", at: p + i) }
        i &+= put(",\"compare_value\":", at: p + i)
        if let compare { i &+= put(int: compare, at: p + i) } else { i &+= put("null", at: p + i) }
        p[i] = UInt8(ascii: "}")
        return i &+ 1
    }
}
