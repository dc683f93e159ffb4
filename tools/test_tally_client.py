#!/usr/bin/env python3
"""Unit tests of tools/tally_client.py on hand-made byte strings built from docs/PROTOCOL.md
(no server needed). Run: python3 tools/test_tally_client.py"""
import json
import socket
import struct
import sys
import threading
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tally_client as tc  # noqa: E402

ACME = "aa7cf840-9ca9-46a3-9778-9015d6580d50"
HELLO_7 = bytes.fromhex("0000001d 01 01 0000 00000001"
                        "000e 594f55525f4150495f544f4b454e"
                        "0003 646f63".replace(" ", ""))
WELCOME_7 = bytes.fromhex("00000019 01 02 0000 00000001"
                          "00100000 00000100 0007 74616c6c792f31".replace(" ", ""))


def s16(text):
    raw = text.encode()
    return struct.pack(">H", len(raw)) + raw


def vi(n):
    return tc.encode_varint(n)


def zz(n):
    return vi(tc.zigzag_encode(n))


class CompactBuilder:
    """A tiny encoder for tests only (the client needs no encoder)."""

    def __init__(self):
        self.keys = []

    def key(self, k):
        if k not in self.keys:
            self.keys.append(k)
        return self.keys.index(k) + 1

    def value(self, v):
        if v is None:
            return b"\x00"
        if v is False:
            return b"\x01"
        if v is True:
            return b"\x02"
        if isinstance(v, int):
            return b"\x03" + zz(v)
        if isinstance(v, float):
            return b"\x04" + zz(round(v * 10))
        if isinstance(v, tuple) and v[0] == "uuid":
            return b"\x06" + tc.uuid_bytes(v[1])
        if isinstance(v, tuple) and v[0] == "date":
            import datetime
            d = datetime.date.fromisoformat(v[1]) - datetime.date(1970, 1, 1)
            return b"\x07" + zz(d.days)
        if isinstance(v, str):
            raw = v.encode()
            return b"\x05" + vi(len(raw)) + raw
        if isinstance(v, list):
            return b"\x08" + b"".join(self.value(x) for x in v) + b"\x0a"
        if isinstance(v, dict):
            out = b"\x09"
            for k, x in v.items():
                out += vi(self.key(k)) + self.value(x)
            return out + b"\x00"
        raise TypeError(v)

    def body(self, v):
        val = self.value(v)
        table = vi(len(self.keys)) + b"".join(vi(len(k.encode())) + k.encode() for k in self.keys)
        return table + val


def plain(v):
    """The JSON-side view of a CompactBuilder input."""
    if isinstance(v, tuple):
        return v[1].lower()
    if isinstance(v, list):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    return v


class Primitives(unittest.TestCase):
    def test_varint(self):
        self.assertEqual(tc.encode_varint(300), b"\xac\x02")
        self.assertEqual(tc.decode_varint(b"\xac\x02", 0), (300, 2))
        self.assertEqual(tc.decode_varint(b"\x00", 0), (0, 1))
        big = (1 << 64) - 1
        enc = tc.encode_varint(big)
        self.assertEqual(len(enc), 10)
        self.assertEqual(tc.decode_varint(enc, 0), (big, 10))
        with self.assertRaises(tc.ProtocolError):
            tc.decode_varint(b"\xff" * 9 + b"\x02", 0)     # 65 bits
        with self.assertRaises(tc.ProtocolError):
            tc.decode_varint(b"\xff" * 11, 0)
        with self.assertRaises(tc.ProtocolError):
            tc.decode_varint(b"\x80", 0)                   # truncated

    def test_zigzag(self):
        for n, z in [(0, 0), (-1, 1), (1, 2), (-2, 3), (2, 4)]:
            self.assertEqual(tc.zigzag_encode(n), z)
            self.assertEqual(tc.zigzag_decode(z), n)
        for n in [(1 << 63) - 1, -(1 << 63), 12345, -12345]:
            self.assertEqual(tc.zigzag_decode(tc.zigzag_encode(n)), n)

    def test_uuid(self):
        self.assertEqual(tc.uuid_bytes(ACME).hex(" "),
                         "aa 7c f8 40 9c a9 46 a3 97 78 90 15 d6 58 0d 50")
        self.assertEqual(tc.uuid_text(tc.uuid_bytes(ACME.upper())), ACME)
        with self.assertRaises(ValueError):
            tc.uuid_bytes("not-a-uuid")

    def test_hello_matches_section_7(self):
        self.assertEqual(tc.encode_frame(tc.HELLO, 1, tc.encode_hello("YOUR_API_TOKEN", "doc")),
                         HELLO_7)

    def test_welcome_from_section_7(self):
        length, version, typ, flags, rid = tc.decode_frame_header(WELCOME_7[:12])
        self.assertEqual((length, version, typ, flags, rid), (25, 1, tc.WELCOME, 0, 1))
        self.assertEqual(len(WELCOME_7), 4 + length)
        w = tc.decode_welcome(WELCOME_7[12:])
        self.assertEqual((w.max_frame, w.max_in_flight, w.server), (1048576, 256, "tally/1"))
        with self.assertRaises(tc.ProtocolError):
            tc.decode_welcome(WELCOME_7[12:] + b"\x00")
        with self.assertRaises(tc.ProtocolError):
            tc.decode_welcome(WELCOME_7[12:-1])

    def test_query_encoding(self):
        p = tc.encode_query("utilization/departments", "compact", ACME,
                            [("start_date", "2026-02-01"), ("department_ids", "a,b")])
        expect = (b"\x02\x01" + tc.uuid_bytes(ACME) + b"\x00\x02" + s16("start_date")
                  + s16("2026-02-01") + s16("department_ids") + s16("a,b"))
        self.assertEqual(p, expect)
        self.assertEqual(tc.encode_query(2, "json", ACME, {"x": True})[:2], b"\x02\x00")
        self.assertEqual(tc.encode_query("B", 0, ACME, {"ids": ["a", "b"]})[-3:], b"a,b")
        for name, number in [("utilization", 1), ("/ai/users/", 6), ("utilization/trend", 10),
                             ("J", 10), ("7", 7), (9, 9), ("K", 11), ("m2", 14), ("R2", 20),
                             ("users/{user_id}", 12), ("analytics/charts/{chart_type}", 25)]:
            self.assertEqual(tc.endpoint_number(name), number)
        with self.assertRaises(ValueError):
            tc.endpoint_number("nope")

    def test_error_decoding(self):
        payload = struct.pack(">H", 400) + s16("invalid_parameter") + s16("page_size") + s16("bad")
        e = tc.decode_error(payload, 0, 3)
        self.assertEqual((e.status, e.code, e.parameter, e.message, e.fatal),
                         (400, "invalid_parameter", "page_size", "bad", False))
        payload = struct.pack(">H", 401) + s16("unauthorized") + b"\xff\xff" + s16("no")
        e = tc.decode_error(payload, 1, 0)
        self.assertIsNone(e.parameter)
        self.assertTrue(e.fatal)
        with self.assertRaises(tc.ProtocolError):
            tc.decode_error(payload + b"x", 0, 0)
        with self.assertRaises(tc.ProtocolError):
            tc.decode_error(struct.pack(">H", 401) + b"\xff\xff" + b"\xff\xff" + s16("m"), 0, 0)
        with self.assertRaises(tc.ProtocolError):
            tc.decode_error(struct.pack(">H", 400) + s16("a") + b"\x00\x01\xff" + s16("m"), 0, 0)


class Compact(unittest.TestCase):
    DOC = {
        "period": {"start_date": ("date", "2026-02-01"), "end_date": ("date", "2026-02-28"),
                   "compare_start_date": None, "compare_end_date": None},
        "data": [
            {"department": {"id": ("uuid", "E2B3C4D5-F6A7-8901-BCDE-F12345678901"),
                            "name": "Engineering", "description": "ünïcødé, \"q\"\n"},
             "user_count": {"value": 34, "change_pct": 9.7, "compare_value": 31},
             "app_count": {"value": 6, "change_pct": -4.0, "compare_value": 5}},
            {"department": {"id": ("uuid", ACME), "name": "", "description": None},
             "user_count": {"value": 0, "change_pct": None, "compare_value": None},
             "app_count": {"value": -7, "change_pct": 13.5, "compare_value": 0}},
        ],
        "flags": [True, False, [], {}, ("date", "1969-12-31"), ("date", "2024-02-29")],
        "total_count": 2,
        "next_cursor": None,
    }

    def test_roundtrip(self):
        b = CompactBuilder()
        body = b.body(self.DOC)
        got = tc.decode_compact(body)
        self.assertEqual(got, plain(self.DOC))
        self.assertEqual(list(got), list(self.DOC))            # member order
        self.assertEqual(got["data"][0]["department"]["id"], "e2b3c4d5-f6a7-8901-bcde-f12345678901")
        self.assertEqual(got["data"][0]["user_count"]["change_pct"], json.loads("9.7"))
        self.assertIs(type(got["data"][0]["user_count"]["change_pct"]), float)
        self.assertEqual(json.dumps(got["data"][0]["app_count"]["change_pct"]), "-4.0")
        self.assertEqual(got["flags"][4], "1969-12-31")

    def test_decimal_equals_json(self):
        for z in list(range(-100000, 100001, 7)) + [-5, -1, 1, 5, 10 ** 15 + 3]:
            text = ("-" if z < 0 else "") + f"{abs(z) // 10}.{abs(z) % 10}"
            self.assertEqual(z / 10, json.loads(text))
            body = b"\x00\x04" + zz(z)
            self.assertEqual(tc.decode_compact(body), json.loads(text))

    def test_scalars(self):
        self.assertIsNone(tc.decode_compact(b"\x00\x00"))
        self.assertEqual(tc.decode_compact(b"\x00\x03\x03"), -2)
        self.assertEqual(tc.decode_compact(b"\x00\x07\x00"), "1970-01-01")
        self.assertEqual(tc.decode_compact(b"\x00\x08\x0a"), [])
        self.assertEqual(tc.decode_compact(b"\x01\x01a\x09\x01\x02\x00"), {"a": True})

    def test_malformed(self):
        bad = [
            b"",                                # no key count
            b"\x00",                            # no value
            b"\x00\x0b",                        # unknown tag
            b"\x00\x0a",                        # array end where a value is expected
            b"\x00\x02\x00",                    # trailing byte
            b"\x00\x08\x02",                    # unterminated array
            b"\x00\x09\x01\x02\x00",            # key index outside an empty table
            b"\x01\x01a\x09\x01\x02",           # unterminated object
            b"\x01\x01a\x09\x01\x02\x01\x02\x00",   # key twice
            b"\x00\x05\x03ab",                  # short string
            b"\x00\x05\x02\xff\xfe",            # invalid UTF-8
            b"\x00\x06" + b"\x00" * 15,         # short uuid
            b"\x02\x01a",                       # key table short
            b"\x01\x01\xff\x00",                # key invalid UTF-8
            b"\x00\x07" + tc.encode_varint(tc.zigzag_encode(10 ** 9)),   # date out of range
            b"\x00\x03" + b"\xff" * 10,         # varint too long
            b"\x00" + b"\x08" * 300 + b"\x0a" * 300,   # too deep
        ]
        for body in bad:
            with self.assertRaises(tc.ProtocolError, msg=body.hex()):
                tc.decode_compact(body)


class FakeServer:
    """A scripted server on one end of a socketpair."""

    def __init__(self, script):
        self.client_sock, self.server_sock = socket.socketpair()
        self.received = []
        self.error = None
        self.thread = threading.Thread(target=self._run, args=(script,), daemon=True)
        self.thread.start()

    def read_frame(self):
        def exact(n):
            out = b""
            while len(out) < n:
                chunk = self.server_sock.recv(n - len(out))
                if not chunk:
                    raise EOFError
                out += chunk
            return out
        header = exact(12)
        length, version, typ, flags, rid = struct.unpack(">IBBHI", header)
        payload = exact(length - 8)
        self.received.append((typ, rid, payload))
        return typ, rid, payload

    def send(self, typ, rid, payload=b"", flags=0):
        self.server_sock.sendall(tc.encode_frame(typ, rid, payload, flags))

    def _run(self, script):
        try:
            script(self)
        except Exception as e:  # noqa: BLE001
            self.error = e
        finally:
            self.server_sock.close()

    def connection(self, token="YOUR_API_TOKEN"):
        conn = tc.Connection(self.client_sock)
        self.client_sock.settimeout(5)
        self.conn = conn
        conn.hello(token, "test")
        return conn


def welcome(srv, max_in_flight=256):
    typ, rid, payload = srv.read_frame()
    assert typ == tc.HELLO, typ
    srv.send(tc.WELCOME, rid, struct.pack(">II", 1 << 20, max_in_flight) + s16("tally/1"))
    return rid


def result_json(doc):
    return b"\x00" + json.dumps(doc).encode()


class Sessions(unittest.TestCase):
    def test_handshake_and_out_of_order(self):
        cb = CompactBuilder()
        compact_body = b"\x01" + cb.body({"n": 1, "d": ("date", "2026-02-01")})

        def script(srv):
            welcome(srv)
            queries = [srv.read_frame() for _ in range(3)]
            assert all(q[0] == tc.QUERY for q in queries)
            ids = [q[1] for q in queries]
            srv.send(tc.RESULT, ids[2], compact_body)
            srv.send(tc.ERROR, ids[1], struct.pack(">H", 400) + s16("invalid_parameter")
                     + s16("page_size") + s16("page_size must be 1-200"))
            srv.send(tc.RESULT, ids[0], result_json({"a": [1, 2.5]}), flags=1)
            typ, rid, payload = srv.read_frame()
            assert typ == tc.PING
            srv.send(tc.PONG, rid, payload)
            typ, rid, payload = srv.read_frame()
            srv.send(tc.GOAWAY, 0, s16("shutting down"))
            srv.send(tc.RESULT, rid, result_json({"last": True}))

        srv = FakeServer(script)
        conn = srv.connection()
        self.addCleanup(conn.close)
        self.assertEqual((conn.max_frame, conn.max_in_flight, conn.server), (1 << 20, 256, "tally/1"))
        a = conn.send_query(6, ACME, {"start_date": "2026-02-01"})
        b = conn.send_query("utilization", ACME, {"page_size": 0})
        c = conn.send_query("J", ACME, [("granularity", "weekly")], format="compact")
        self.assertEqual(conn.in_flight, 3)
        got = {}
        for _ in range(3):
            rid, value = conn.receive()
            got[rid] = value
        self.assertEqual(got[c], {"n": 1, "d": "2026-02-01"})
        self.assertIsInstance(got[b], tc.TallyError)
        self.assertEqual((got[b].status, got[b].parameter), (400, "page_size"))
        self.assertEqual(got[a], {"a": [1, 2.5]})
        self.assertEqual(conn.ping(b"\x00hello\xff"), b"\x00hello\xff")
        self.assertEqual(conn.query(1, ACME, {}), {"last": True})
        self.assertEqual(conn.goaway_reason, "shutting down")
        with self.assertRaises(tc.GoAway):
            conn.send_query(1, ACME, {})
        with self.assertRaises(tc.ConnectionClosed):
            conn.receive()
        srv.thread.join(5)
        self.assertIsNone(srv.error)
        q = srv.received[1][2]
        self.assertEqual(q[:2], b"\x06\x00")
        self.assertEqual(q[2:18], tc.uuid_bytes(ACME))

    def test_query_raises_and_buffers(self):
        def script(srv):
            welcome(srv)
            (_, r1, _), (_, r2, _) = srv.read_frame(), srv.read_frame()
            srv.send(tc.RESULT, r1, result_json([1]))
            srv.send(tc.ERROR, r2, struct.pack(">H", 404) + s16("not_found") + b"\xff\xff"
                     + s16("no such client"))

        srv = FakeServer(script)
        conn = srv.connection()
        self.addCleanup(conn.close)
        first = conn.send_query(1, ACME, {})
        with self.assertRaises(tc.TallyError) as cm:
            conn.query(2, ACME, {})
        self.assertEqual((cm.exception.status, cm.exception.code, cm.exception.parameter),
                         (404, "not_found", None))
        self.assertEqual(conn.receive(), (first, [1]))

    def test_bad_token(self):
        def script(srv):
            typ, rid, _ = srv.read_frame()
            srv.send(tc.ERROR, rid, struct.pack(">H", 401) + s16("unauthorized") + b"\xff\xff"
                     + s16("unknown token"), flags=1)

        srv = FakeServer(script)
        self.addCleanup(srv.client_sock.close)
        with self.assertRaises(tc.TallyError) as cm:
            srv.connection("nope")
        self.assertTrue(cm.exception.fatal)
        self.assertEqual(cm.exception.status, 401)

    def _malformed(self, frames, expect=tc.ProtocolError, query=True):
        def script(srv):
            welcome(srv)
            rid = srv.read_frame()[1] if query else 0
            for f in frames:
                srv.server_sock.sendall(f(rid) if callable(f) else f)

        srv = FakeServer(script)
        conn = srv.connection()
        self.addCleanup(conn.close)
        if query:
            conn.send_query(1, ACME, {}, format="compact")
        with self.assertRaises(expect):
            conn.receive()
        return conn

    def test_malformed_frames(self):
        F = tc.encode_frame
        cases = [
            lambda rid: struct.pack(">IBBHI", 7, 1, tc.RESULT, 0, rid),          # length < 8
            lambda rid: F(tc.RESULT, rid, b"\x01\x00\x00", version=2),           # version
            lambda rid: F(tc.QUERY, rid, b""),                                  # client type
            lambda rid: F(0x42, rid, b""),                                      # unknown type
            lambda rid: F(tc.RESULT, rid + 1, b"\x01\x00\x00"),                  # unknown id
            lambda rid: F(tc.RESULT, rid, b"\x00{}"),                            # wrong format
            lambda rid: F(tc.RESULT, rid, b""),                                 # no format byte
            lambda rid: F(tc.RESULT, rid, b"\x01\x00\x0b"),                      # bad compact
            lambda rid: F(tc.RESULT, rid, b"\x01\x00\x00", flags=0x8000),        # undefined flag
            lambda rid: F(tc.ERROR, rid, b"\x01\x90"),                           # short ERROR
            lambda rid: F(tc.PONG, rid, b""),                                   # PONG for a query
            lambda rid: F(tc.WELCOME, rid, struct.pack(">II", 1, 1) + s16("x")),  # WELCOME again
            lambda rid: F(tc.GOAWAY, 5, s16("bye")),                             # GOAWAY id != 0
            lambda rid: F(tc.RESULT, rid, b"\x01\x00\x00")[:-1],                 # cut mid-frame
            lambda rid: struct.pack(">IBBHI", 100 * 1024 * 1024, 1, tc.RESULT, 0, rid),  # > 64 MiB
        ]
        for i, case in enumerate(cases):
            with self.subTest(i=i):
                conn = self._malformed([case])
                self.assertTrue(conn.closed)

    def test_json_result_must_parse(self):
        def script(srv):
            welcome(srv)
            rid = srv.read_frame()[1]
            srv.send(tc.RESULT, rid, b"\x00{not json")

        srv = FakeServer(script)
        conn = srv.connection()
        self.addCleanup(conn.close)
        conn.send_query(1, ACME, {})
        with self.assertRaises(tc.ProtocolError):
            conn.receive()

    def test_connection_level_error(self):
        def script(srv):
            welcome(srv)
            srv.read_frame()
            srv.send(tc.ERROR, 0, struct.pack(">H", 400) + s16("malformed_frame") + b"\xff\xff"
                     + s16("length < 8"), flags=1)

        srv = FakeServer(script)
        conn = srv.connection()
        self.addCleanup(conn.close)
        conn.send_query(1, ACME, {})
        rid, err = conn.receive()
        self.assertEqual(rid, 0)
        self.assertEqual(err.code, "malformed_frame")
        self.assertTrue(err.fatal and conn.closed)
        with self.assertRaises(tc.ConnectionClosed):
            conn.receive()


if __name__ == "__main__":
    unittest.main()
