#!/usr/bin/env python3
"""Python client of Tally's binary protocol, version 1 (docs/PROTOCOL.md). Standard library only.

    from tally_client import Connection, TallyError
    with Connection.connect("127.0.0.1", 8081, "YOUR_API_TOKEN", "me") as conn:
        doc = conn.query("utilization/departments", "aa7cf840-9ca9-46a3-9778-9015d6580d50",
                         {"start_date": "2026-02-01", "end_date": "2026-02-28",
                          "granularity": "monthly"}, format="compact")

`query` returns the decoded document: a Python object equal to `json.loads` of the HTTP body
(compact bodies are decoded per §4: uuid → lower-case text, date → "YYYY-MM-DD", decimal →
float value/10). It raises `TallyError` for an ERROR frame. For pipelining, `send_query` returns
the request id at once and `receive` returns `(request_id, document or TallyError)` for the next
answer, in whatever order the server finishes them.

Malformed frames from the server raise `ProtocolError` (and close the connection: the byte
stream can no longer be trusted). A closed connection raises `ConnectionClosed`.

CLI:
    python3 tools/tally_client.py --port 8081 --client UUID utilization/departments \\
        start_date=2026-02-01 end_date=2026-02-28 granularity=monthly
"""
from __future__ import annotations

import argparse
import collections
import datetime
import json
import os
import re
import socket
import struct
import sys
from dataclasses import dataclass, field
from typing import Any, Iterable, Union

__all__ = [
    "Connection", "TallyError", "ProtocolError", "ConnectionClosed", "GoAway", "Reply",
    "ENDPOINTS", "endpoint_number", "decode_compact", "decode_frame_header",
    "encode_frame", "encode_varint", "decode_varint", "zigzag_encode", "zigzag_decode",
    "FORMAT_JSON", "FORMAT_COMPACT",
]

# --- constants (§2, §3) ---------------------------------------------------------------------

VERSION = 1
HELLO, WELCOME, QUERY, RESULT, ERROR, PING, PONG, GOAWAY = range(1, 9)
TYPE_NAMES = {HELLO: "HELLO", WELCOME: "WELCOME", QUERY: "QUERY", RESULT: "RESULT",
              ERROR: "ERROR", PING: "PING", PONG: "PONG", GOAWAY: "GOAWAY"}
SERVER_TYPES = {WELCOME, RESULT, ERROR, PONG, GOAWAY}
FLAG_DEPRECATED = 0x0001   # RESULT
FLAG_FATAL = 0x0001        # ERROR
KNOWN_FLAGS = {RESULT: FLAG_DEPRECATED, ERROR: FLAG_FATAL}
FORMAT_JSON, FORMAT_COMPACT = 0, 1
FORMATS = {"json": FORMAT_JSON, "compact": FORMAT_COMPACT, 0: FORMAT_JSON, 1: FORMAT_COMPACT}
HEADER = struct.Struct(">IBBHI")   # length, version, type, flags, request_id
MAX_STR16 = 0xFFFE                 # §1: a str16 is at most 65,534 bytes
ABSENT = 0xFFFF                    # §1: optstr16 count meaning absent
MAX_PING = 64
DEFAULT_MAX_SERVER_FRAME = 64 * 1024 * 1024   # §2: "a client should accept frames up to 64 MiB"
DEFAULT_PORT = 8081
DEMO_TOKEN = "YOUR_API_TOKEN"

# endpoint number → HTTP path (§3): 1–10 under /v2/clients/{client_id}/analytics/apps/, 11–20
# under /v2/clients/{client_id}/, 21–25 under /v2/ (admin reports; the client id is ignored).
# A path parameter ({user_id}, {department_id}, {chart_type}) is sent as a parameter of that name.
ENDPOINTS = {
    1: "utilization",
    2: "utilization/departments",
    3: "utilization/categories",
    4: "utilization/users",
    5: "utilization/summary",
    6: "ai/users",
    7: "ai/users/summary",
    8: "ai/departments",
    9: "ai/new",
    10: "utilization/trend",
    11: "users",
    12: "users/{user_id}",
    13: "departments",
    14: "departments/{department_id}",
    15: "usage-statistics/active-users",
    16: "analytics/users/champions",
    17: "analytics/users/churn",
    18: "analytics/users/reengagement",
    19: "license",
    20: "license/utilization",
    21: "analytics/clients/churn",
    22: "analytics/clients/reengagement",
    23: "analytics/clients/growth",
    24: "analytics/clients/attrition",
    25: "analytics/charts/{chart_type}",
}
_BY_NAME = {path: number for number, path in ENDPOINTS.items()}
_BY_LETTER = {chr(ord("A") + number - 1): number for number in range(1, 11)}
_BY_LETTER.update({"K": 11, "L": 12, "M1": 13, "M2": 14, "N": 15, "O": 16, "P": 17, "Q": 18, "R1": 19, "R2": 20})


def endpoint_number(endpoint: Union[int, str]) -> int:
    """1–25, a path name ('utilization/departments', leading/trailing '/' allowed) or a letter
    A–J, K, L, M1, M2, N, O, P, Q, R1, R2 of API.md. Any other integer 0–255 is passed through as is (the server answers 404)."""
    if isinstance(endpoint, bool):
        raise ValueError(f"not an endpoint: {endpoint!r}")
    if isinstance(endpoint, int):
        if not 0 <= endpoint <= 255:
            raise ValueError(f"endpoint number {endpoint} does not fit in a u8")
        return endpoint
    text = str(endpoint).strip().strip("/")
    if text.isdigit():
        return endpoint_number(int(text))
    if text in _BY_NAME:
        return _BY_NAME[text]
    if text.upper() in _BY_LETTER:
        return _BY_LETTER[text.upper()]
    raise ValueError(f"unknown endpoint {endpoint!r}: one of 1-25, A-J, K-R or "
                     + ", ".join(ENDPOINTS.values()))


# --- errors ---------------------------------------------------------------------------------

class TallyError(Exception):
    """An ERROR frame: the same status, code, parameter and message as the HTTP error body."""

    def __init__(self, status: int, code: str, parameter: str | None, message: str,
                 fatal: bool = False, request_id: int | None = None):
        super().__init__(f"{status} {code}" + (f" [{parameter}]" if parameter is not None else "")
                         + f": {message}" + (" (fatal)" if fatal else ""))
        self.status = status
        self.code = code
        self.parameter = parameter
        self.message = message
        self.fatal = fatal
        self.request_id = request_id

    def as_http_body(self) -> dict:
        """The HTTP error body this error stands for: {"error": {status, code, parameter, message}}."""
        return {"error": {"status": self.status, "code": self.code,
                          "parameter": self.parameter, "message": self.message}}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TallyError):
            return NotImplemented
        return (self.status, self.code, self.parameter, self.message) == \
            (other.status, other.code, other.parameter, other.message)

    def __hash__(self) -> int:
        return hash((self.status, self.code, self.parameter, self.message))


class ProtocolError(Exception):
    """The server sent bytes that do not follow PROTOCOL.md."""


class ConnectionClosed(Exception):
    """The connection is closed (by the server, by a fatal error, or by close())."""


class GoAway(ConnectionClosed):
    """The server sent GOAWAY: it takes no more queries on this connection."""

    def __init__(self, reason: str):
        super().__init__(f"server is going away: {reason}")
        self.reason = reason


# --- primitive encoders and decoders (§1) ---------------------------------------------------

def encode_varint(value: int) -> bytes:
    if value < 0 or value >= 1 << 64:
        raise ValueError(f"varint out of range: {value}")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_varint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """(value, next position). At most 10 bytes, and the value must fit in 64 bits."""
    result = 0
    shift = 0
    for i in range(10):
        if pos >= len(data):
            raise ProtocolError(f"varint runs past the end of the body at byte {pos}")
        byte = data[pos]
        pos += 1
        if i == 9 and byte > 0x01:
            raise ProtocolError(f"varint does not fit in 64 bits (10th byte 0x{byte:02x})")
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
    raise ProtocolError("varint longer than 10 bytes")


def zigzag_encode(n: int) -> int:
    if not -(1 << 63) <= n < (1 << 63):
        raise ValueError(f"zigzag out of range: {n}")
    return ((n << 1) ^ (n >> 63)) & 0xFFFFFFFFFFFFFFFF


def zigzag_decode(z: int) -> int:
    return (z >> 1) ^ -(z & 1)


def encode_str16(text: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > MAX_STR16:
        raise ValueError(f"string of {len(raw)} bytes is longer than a str16 allows ({MAX_STR16})")
    return struct.pack(">H", len(raw)) + raw


_UUID_TEXT = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def uuid_bytes(text: str) -> bytes:
    """A UUID's 16 bytes in the order its text form writes them (§1)."""
    text = str(text)
    if not _UUID_TEXT.fullmatch(text):
        raise ValueError(f"not a UUID: {text!r}")
    return bytes.fromhex(text.replace("-", ""))


def uuid_text(raw: bytes | memoryview) -> str:
    h = bytes(raw).hex()
    return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def encode_frame(frame_type: int, request_id: int, payload: bytes = b"", flags: int = 0,
                 version: int = VERSION) -> bytes:
    """A whole frame: u32 length (8 + payload), u8 version, u8 type, u16 flags, u32 id, payload."""
    return HEADER.pack(8 + len(payload), version, frame_type, flags, request_id) + payload


def decode_frame_header(header: bytes) -> tuple[int, int, int, int, int]:
    """(length, version, type, flags, request_id) of the first 12 bytes of a frame."""
    return HEADER.unpack(header)


class _Reader:
    """Reads a frame payload field by field; every read is bounds-checked."""

    def __init__(self, data: bytes, what: str):
        self.data = data
        self.pos = 0
        self.what = what

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ProtocolError(f"{self.what}: payload too short (needs {self.pos + n} bytes, "
                                f"has {len(self.data)})")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def u16(self) -> int:
        return struct.unpack(">H", self.take(2))[0]

    def u32(self) -> int:
        return struct.unpack(">I", self.take(4))[0]

    def _text(self, n: int) -> str:
        raw = self.take(n)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ProtocolError(f"{self.what}: invalid UTF-8 in a string: {e}") from None

    def str16(self) -> str:
        n = self.u16()
        if n == ABSENT:
            raise ProtocolError(f"{self.what}: str16 with count 0xFFFF (only optstr16 may be absent)")
        return self._text(n)

    def optstr16(self) -> str | None:
        n = self.u16()
        if n == ABSENT:
            return None
        return self._text(n)

    def end(self) -> None:
        if self.pos != len(self.data):
            raise ProtocolError(f"{self.what}: {len(self.data) - self.pos} trailing bytes")


# --- the compact encoding (§4) --------------------------------------------------------------

_EPOCH_ORDINAL = datetime.date(1970, 1, 1).toordinal()
_MAX_DEPTH = 256
ARRAY_END = 0x0A


def decode_compact(body: bytes | memoryview) -> Any:
    """Decode a format-1 body into the Python object `json.loads` gives for the JSON body.
    Raises ProtocolError on anything malformed (unknown tag, bad key index, truncation,
    invalid UTF-8, trailing bytes, a date outside years 1–9999, a key twice in one object)."""
    data = bytes(body)
    count, pos = decode_varint(data, 0)
    if count > len(data):   # each key takes at least one byte
        raise ProtocolError(f"compact body: key count {count} exceeds the body size")
    keys = []
    for _ in range(count):
        n, pos = decode_varint(data, pos)
        if pos + n > len(data):
            raise ProtocolError(f"compact body: key runs past the end of the body at byte {pos}")
        try:
            keys.append(data[pos:pos + n].decode("utf-8"))
        except UnicodeDecodeError as e:
            raise ProtocolError(f"compact body: invalid UTF-8 in a key: {e}") from None
        pos += n

    def value(pos: int, depth: int) -> tuple[Any, int]:
        if depth > _MAX_DEPTH:
            raise ProtocolError("compact body: nested deeper than 256 levels")
        if pos >= len(data):
            raise ProtocolError(f"compact body: value expected at byte {pos}, body ends")
        tag = data[pos]
        pos += 1
        if tag == 0x00:
            return None, pos
        if tag == 0x01:
            return False, pos
        if tag == 0x02:
            return True, pos
        if tag == 0x03:
            z, pos = decode_varint(data, pos)
            return zigzag_decode(z), pos
        if tag == 0x04:
            z, pos = decode_varint(data, pos)
            return zigzag_decode(z) / 10, pos
        if tag == 0x05:
            n, pos = decode_varint(data, pos)
            if pos + n > len(data):
                raise ProtocolError(f"compact body: string runs past the end at byte {pos}")
            try:
                return data[pos:pos + n].decode("utf-8"), pos + n
            except UnicodeDecodeError as e:
                raise ProtocolError(f"compact body: invalid UTF-8 in a string: {e}") from None
        if tag == 0x06:
            if pos + 16 > len(data):
                raise ProtocolError(f"compact body: uuid runs past the end at byte {pos}")
            return uuid_text(data[pos:pos + 16]), pos + 16
        if tag == 0x07:
            z, pos = decode_varint(data, pos)
            days = zigzag_decode(z)
            try:
                return datetime.date.fromordinal(_EPOCH_ORDINAL + days).isoformat(), pos
            except (ValueError, OverflowError):
                raise ProtocolError(f"compact body: date {days} days from 1970-01-01 is out "
                                    "of range") from None
        if tag == 0x08:
            items = []
            while True:
                if pos >= len(data):
                    raise ProtocolError("compact body: array not terminated")
                if data[pos] == ARRAY_END:
                    return items, pos + 1
                item, pos = value(pos, depth + 1)
                items.append(item)
        if tag == 0x09:
            obj: dict[str, Any] = {}
            while True:
                index, pos = decode_varint(data, pos)
                if index == 0:
                    return obj, pos
                if index > len(keys):
                    raise ProtocolError(f"compact body: key index {index - 1} outside the key "
                                        f"table of {len(keys)}")
                key = keys[index - 1]
                if key in obj:
                    raise ProtocolError(f"compact body: key {key!r} twice in one object")
                obj[key], pos = value(pos, depth + 1)
        raise ProtocolError(f"compact body: unknown tag 0x{tag:02x} at byte {pos - 1}")

    result, pos = value(pos, 0)
    if pos != len(data):
        raise ProtocolError(f"compact body: {len(data) - pos} trailing bytes after the value")
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-JSON number {name}")


def decode_json(body: bytes | memoryview) -> Any:
    try:
        return json.loads(bytes(body).decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as e:
        raise ProtocolError(f"JSON body does not parse: {e}") from None


# --- messages -------------------------------------------------------------------------------

def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(_param_text(v) for v in value)
    return str(value)


def normalize_params(params: Union[dict, Iterable, None]) -> list[tuple[str, str]]:
    """A dict or a list of (name, value) pairs → list of (str, str). A list may name a parameter
    twice (the server answers 400, as HTTP does); a list or tuple value becomes comma-separated."""
    if params is None:
        return []
    items = params.items() if isinstance(params, dict) else params
    out = []
    for item in items:
        name, value = item
        out.append((str(name), _param_text(value)))
    return out


def encode_hello(token: str, client_name: str) -> bytes:
    return encode_str16(token) + encode_str16(client_name)


def encode_query(endpoint: Union[int, str], fmt: Union[int, str], client_id: str,
                 params: Union[dict, Iterable, None]) -> bytes:
    pairs = normalize_params(params)
    if len(pairs) > 0xFFFF:
        raise ValueError("more than 65,535 parameters")
    fmt_byte = FORMATS.get(fmt, fmt) if not isinstance(fmt, bool) else None
    if not isinstance(fmt_byte, int) or not 0 <= fmt_byte <= 255:
        raise ValueError(f"unknown format {fmt!r}: 'json' or 'compact'")
    out = bytearray(struct.pack(">BB", endpoint_number(endpoint), fmt_byte))
    out += uuid_bytes(client_id)
    out += struct.pack(">H", len(pairs))
    for name, value in pairs:
        out += encode_str16(name)
        out += encode_str16(value)
    return bytes(out)


@dataclass
class Welcome:
    max_frame: int
    max_in_flight: int
    server: str


def decode_welcome(payload: bytes) -> Welcome:
    r = _Reader(payload, "WELCOME")
    w = Welcome(r.u32(), r.u32(), r.str16())
    r.end()
    return w


def decode_error(payload: bytes, flags: int, request_id: int) -> TallyError:
    r = _Reader(payload, "ERROR")
    status = r.u16()
    code = r.str16()
    parameter = r.optstr16()
    message = r.str16()
    r.end()
    return TallyError(status, code, parameter, message, bool(flags & FLAG_FATAL), request_id)


@dataclass
class Reply:
    """One answer from the server: a RESULT (document set), an ERROR (error set) or a PONG
    (payload set)."""
    request_id: int
    kind: str                      # "result" | "error" | "pong"
    document: Any = None
    error: TallyError | None = None
    format: int | None = None
    deprecated: bool = False
    body: bytes = b""              # the RESULT body or the PONG payload, as received
    flags: int = 0

    @property
    def value(self) -> Any:
        return self.error if self.kind == "error" else (
            self.body if self.kind == "pong" else self.document)


@dataclass
class _Pending:
    kind: str                      # "query" | "ping" | "hello"
    format: int | None = None
    payload: bytes = b""
    decode: bool = True


# --- the connection -------------------------------------------------------------------------

class Connection:
    """One authenticated connection. Not thread-safe: use one per thread, or lock around it."""

    def __init__(self, sock: socket.socket, *, max_server_frame: int = DEFAULT_MAX_SERVER_FRAME,
                 strict: bool = True):
        self.sock = sock
        self.max_server_frame = max_server_frame
        self.strict = strict
        self.max_frame: int | None = None
        self.max_in_flight: int | None = None
        self.server: str | None = None
        self.goaway_reason: str | None = None
        self.closed = False
        self.close_reason: str | None = None
        self._buf = bytearray()
        self._pending: dict[int, _Pending] = {}
        self._ready: collections.deque[Reply] = collections.deque()
        self._next_id = 1

    # -- set-up ------------------------------------------------------------------------------

    @classmethod
    def connect(cls, host: str = "127.0.0.1", port: int = DEFAULT_PORT, token: str = DEMO_TOKEN,
                client_name: str = "tally_client.py", timeout: float | None = 30.0,
                **kwargs: Any) -> "Connection":
        """Open a TCP connection and authenticate (HELLO → WELCOME). Raises TallyError when the
        server refuses (401 unauthorized), ProtocolError on a malformed answer."""
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(timeout)
        conn = cls(sock, **kwargs)
        try:
            conn.hello(token, client_name)
        except BaseException:
            conn.close()
            raise
        return conn

    def hello(self, token: str, client_name: str = "") -> Welcome:
        rid = self._allocate_id()
        self._send(HELLO, rid, encode_hello(token, client_name))
        self._pending[rid] = _Pending("hello")
        try:
            return self._hello_answer(rid)
        except ProtocolError as e:
            self._mark_closed(f"protocol error: {e}")
            try:
                self.sock.close()
            except OSError:
                pass
            raise

    def _hello_answer(self, rid: int) -> Welcome:
        frame_type, flags, got_id, payload = self._read_frame()
        if got_id != rid and not (frame_type == ERROR and got_id == 0):
            self._fail(f"answer to HELLO carries request id {got_id}, expected {rid}")
        if frame_type == ERROR:
            err = decode_error(payload, flags, got_id)
            self._pending.pop(rid, None)
            if err.fatal:
                self._mark_closed(f"HELLO refused: {err}")
            raise err
        if frame_type != WELCOME:
            self._fail(f"answer to HELLO is {TYPE_NAMES.get(frame_type, frame_type)}, "
                       "expected WELCOME or ERROR")
        self._check_flags(frame_type, flags)
        welcome = decode_welcome(payload)
        self._pending.pop(rid, None)
        self.max_frame, self.max_in_flight, self.server = (
            welcome.max_frame, welcome.max_in_flight, welcome.server)
        return welcome

    def close(self) -> None:
        if not self.closed:
            self._mark_closed("closed by the client")
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def in_flight(self) -> int:
        """Requests sent and not answered yet (answers already read but not yet returned by
        receive() are not counted)."""
        return len(self._pending)

    # -- requests ----------------------------------------------------------------------------

    def send_query(self, endpoint: Union[int, str], client_id: str,
                   params: Union[dict, Iterable, None] = None, format: Union[str, int] = "json",
                   *, request_id: int | None = None, decode: bool = True) -> int:
        """Send a QUERY without waiting; returns its request id. The caller keeps at most
        `max_in_flight` unanswered (the server answers 429 too_many_in_flight beyond)."""
        payload = encode_query(endpoint, format, client_id, params)
        fmt = payload[1]
        rid = self._allocate_id() if request_id is None else request_id
        if rid in self._pending:
            raise ValueError(f"request id {rid} is already in flight")
        self._check_open()
        self._send(QUERY, rid, payload)
        self._pending[rid] = _Pending("query", fmt, decode=decode)
        return rid

    def receive(self) -> tuple[int, Any]:
        """The next answer: (request_id, document) for a RESULT, (request_id, TallyError) for an
        ERROR, (request_id, payload bytes) for a PONG. Blocks until one arrives."""
        reply = self.receive_reply()
        return reply.request_id, reply.value

    def receive_reply(self) -> Reply:
        """Like receive(), with the frame's details (format, deprecated flag, raw body)."""
        if self._ready:
            return self._ready.popleft()
        return self._read_reply()

    def query(self, endpoint: Union[int, str], client_id: str,
              params: Union[dict, Iterable, None] = None, format: Union[str, int] = "json") -> Any:
        """Ask one endpoint and wait for its answer: the decoded document, or TallyError raised.
        Answers to other requests in flight that arrive meanwhile are kept for receive()."""
        rid = self.send_query(endpoint, client_id, params, format)
        reply = self._wait_for(rid)
        if reply.kind == "error":
            raise reply.error
        return reply.document

    def query_reply(self, endpoint: Union[int, str], client_id: str,
                    params: Union[dict, Iterable, None] = None,
                    format: Union[str, int] = "json") -> Reply:
        """Like query(), but returns the Reply (errors included, not raised)."""
        rid = self.send_query(endpoint, client_id, params, format)
        return self._wait_for(rid)

    def send_ping(self, payload: bytes = b"", *, request_id: int | None = None) -> int:
        payload = bytes(payload)
        if len(payload) > MAX_PING:
            raise ValueError(f"a PING carries at most {MAX_PING} bytes")
        rid = self._allocate_id() if request_id is None else request_id
        if rid in self._pending:
            raise ValueError(f"request id {rid} is already in flight")
        self._check_open(allow_draining=True)
        self._send(PING, rid, payload)
        self._pending[rid] = _Pending("ping", payload=payload)
        return rid

    def ping(self, payload: bytes = b"") -> bytes:
        """PING and wait for its PONG; returns the echoed payload."""
        rid = self.send_ping(payload)
        reply = self._wait_for(rid)
        if reply.kind == "error":
            raise reply.error
        return reply.body

    def send_raw(self, data: bytes, *, expect: Iterable[int] = ()) -> None:
        """Write bytes as they are (for protocol tests); `expect` lists request ids that the
        caller expects answers for, so that strict id checking accepts them."""
        self._check_open(allow_draining=True)
        for rid in expect:
            self._pending[rid] = _Pending("raw")
        try:
            self.sock.sendall(data)
        except OSError as e:
            self._mark_closed(f"send failed: {e}")
            raise ConnectionClosed(self.close_reason) from e

    # -- internals ---------------------------------------------------------------------------

    def _allocate_id(self) -> int:
        # 0 is skipped: connection-level errors (§5) carry id 0, so a request with id 0 could
        # not be told apart from them.
        for _ in range(1 << 32):
            rid = self._next_id
            self._next_id = (self._next_id + 1) & 0xFFFFFFFF or 1
            if rid not in self._pending:
                return rid
        raise RuntimeError("no free request id")

    def _check_open(self, allow_draining: bool = False) -> None:
        if self.closed:
            raise ConnectionClosed(self.close_reason or "connection closed")
        if self.goaway_reason is not None and not allow_draining:
            raise GoAway(self.goaway_reason)

    def _send(self, frame_type: int, rid: int, payload: bytes) -> None:
        frame = encode_frame(frame_type, rid, payload)
        if self.max_frame is not None and len(frame) - 4 > self.max_frame:
            raise ValueError(f"frame of length {len(frame) - 4} exceeds the server's max_frame "
                             f"{self.max_frame}")
        try:
            self.sock.sendall(frame)
        except OSError as e:
            self._mark_closed(f"send failed: {e}")
            raise ConnectionClosed(self.close_reason) from e

    def _mark_closed(self, reason: str) -> None:
        self.closed = True
        if self.close_reason is None:
            self.close_reason = reason

    def _fail(self, message: str) -> None:
        self._mark_closed(f"protocol error: {message}")
        try:
            self.sock.close()
        except OSError:
            pass
        raise ProtocolError(message)

    def _fill(self, n: int) -> None:
        while len(self._buf) < n:
            try:
                chunk = self.sock.recv(max(65536, n - len(self._buf)))
            except socket.timeout:
                raise
            except OSError as e:
                self._mark_closed(f"receive failed: {e}")
                raise ConnectionClosed(self.close_reason) from e
            if not chunk:
                if self._buf:
                    self._fail(f"server closed the connection in the middle of a frame "
                               f"({len(self._buf)} of {n} bytes)")
                self._mark_closed("closed by the server"
                                  + (f" after GOAWAY ({self.goaway_reason})"
                                     if self.goaway_reason is not None else ""))
                raise ConnectionClosed(self.close_reason)
            self._buf += chunk

    def _read_frame(self) -> tuple[int, int, int, bytes]:
        """(type, flags, request_id, payload) of the next frame, header checked."""
        if self.closed:
            raise ConnectionClosed(self.close_reason or "connection closed")
        self._fill(12)
        length, version, frame_type, flags, rid = HEADER.unpack_from(self._buf, 0)
        if length < 8:
            self._fail(f"frame length {length} < 8 (header {bytes(self._buf[:12]).hex(' ')})")
        if length > self.max_server_frame:
            self._fail(f"frame length {length} exceeds the client's limit {self.max_server_frame}")
        if version != VERSION:
            self._fail(f"frame version {version}, expected {VERSION}")
        if frame_type not in SERVER_TYPES:
            self._fail(f"frame type 0x{frame_type:02x} is not a server → client message")
        self._fill(4 + length)
        payload = bytes(self._buf[12:4 + length])
        del self._buf[:4 + length]
        return frame_type, flags, rid, payload

    def _check_flags(self, frame_type: int, flags: int) -> None:
        unknown = flags & ~KNOWN_FLAGS.get(frame_type, 0)
        if unknown and self.strict:
            self._fail(f"{TYPE_NAMES[frame_type]} frame with undefined flag bits 0x{unknown:04x}")

    def _read_reply(self) -> Reply:
        try:
            return self._read_reply_inner()
        except ProtocolError as e:   # the byte stream can no longer be trusted
            self._mark_closed(f"protocol error: {e}")
            try:
                self.sock.close()
            except OSError:
                pass
            raise

    def _read_reply_inner(self) -> Reply:
        while True:
            frame_type, flags, rid, payload = self._read_frame()
            self._check_flags(frame_type, flags)
            if frame_type == GOAWAY:
                r = _Reader(payload, "GOAWAY")
                reason = r.str16()
                r.end()
                if rid != 0 and self.strict:
                    self._fail(f"GOAWAY with request id {rid}, expected 0")
                self.goaway_reason = reason
                continue
            if frame_type == WELCOME:
                self._fail("WELCOME after the handshake")
            if frame_type == ERROR:
                err = decode_error(payload, flags, rid)
                if err.fatal:
                    self._mark_closed(f"fatal error from the server: {err}")
                if rid == 0 and 0 not in self._pending:
                    # a connection-level error (§5 framing errors carry id 0)
                    return Reply(0, "error", error=err, flags=flags)
                pending = self._pending.pop(rid, None)
                if pending is None and self.strict:
                    self._fail(f"ERROR for request id {rid}, which is not in flight ({err})")
                return Reply(rid, "error", error=err, flags=flags)
            pending = self._pending.get(rid)
            if pending is None:
                self._fail(f"{TYPE_NAMES[frame_type]} for request id {rid}, which is not in flight")
            if frame_type == PONG:
                if pending.kind == "ping":
                    if payload != pending.payload:
                        self._fail(f"PONG {rid} payload {payload.hex()} differs from the PING's "
                                   f"{pending.payload.hex()}")
                elif pending.kind != "raw":
                    self._fail(f"PONG for request id {rid}, which is a {pending.kind}")
                del self._pending[rid]
                return Reply(rid, "pong", body=payload, flags=flags)
            # RESULT
            if pending.kind not in ("query", "raw"):
                self._fail(f"RESULT for request id {rid}, which is a {pending.kind}")
            if not payload:
                self._fail(f"RESULT {rid} without a format byte")
            fmt = payload[0]
            body = payload[1:]
            if pending.kind == "query" and fmt != pending.format:
                self._fail(f"RESULT {rid} has format {fmt}, the QUERY asked for {pending.format}")
            del self._pending[rid]
            document = None
            if pending.decode:
                try:
                    if fmt == FORMAT_JSON:
                        document = decode_json(body)
                    elif fmt == FORMAT_COMPACT:
                        document = decode_compact(body)
                    else:
                        raise ProtocolError(f"RESULT {rid} has unknown format {fmt}")
                except ProtocolError as e:
                    self._fail(f"RESULT {rid}: {e}")
            return Reply(rid, "result", document=document, format=fmt,
                         deprecated=bool(flags & FLAG_DEPRECATED), body=body, flags=flags)

    def _wait_for(self, rid: int) -> Reply:
        for i, reply in enumerate(self._ready):
            if reply.request_id == rid:
                del self._ready[i]
                return reply
        while True:
            reply = self._read_reply()
            if reply.request_id == rid:
                return reply
            if reply.request_id == 0 and reply.kind == "error" and reply.error.fatal:
                raise reply.error
            self._ready.append(reply)


# --- CLI ------------------------------------------------------------------------------------

def _main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Ask Tally over its binary protocol (docs/PROTOCOL.md) and print the JSON.",
        epilog="endpoints: " + ", ".join(f"{n}={p}" for n, p in ENDPOINTS.items()))
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=DEFAULT_PORT)
    ap.add_argument("--token", default=os.environ.get("TALLY_TOKEN", DEMO_TOKEN),
                    help="bearer token (default $TALLY_TOKEN or the demo token)")
    ap.add_argument("--client", help="client id (UUID)")
    ap.add_argument("--format", choices=["json", "compact"], default="json",
                    help="ask for JSON or the compact encoding (the output is JSON either way)")
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--name", default="tally_client.py", help="client name sent in HELLO")
    ap.add_argument("--raw", action="store_true",
                    help="print the RESULT body bytes as received (JSON format only)")
    ap.add_argument("--ping", action="store_true", help="just PING and print the round trip")
    ap.add_argument("endpoint", nargs="?", help="1-10, A-J or a path such as utilization/users")
    ap.add_argument("params", nargs="*", metavar="name=value")
    args = ap.parse_args(argv)

    try:
        with Connection.connect(args.host, args.port, args.token, args.name,
                                args.timeout) as conn:
            if args.ping:
                import time
                t0 = time.perf_counter()
                conn.ping(b"tally_client.py")
                print(f"PONG from {conn.server} in {(time.perf_counter() - t0) * 1e3:.3f} ms "
                      f"(max_frame {conn.max_frame}, max_in_flight {conn.max_in_flight})")
                return 0
            if not args.endpoint or not args.client:
                ap.error("an endpoint and --client are required (or --ping)")
            pairs = []
            for p in args.params:
                if "=" not in p:
                    ap.error(f"parameter {p!r} is not name=value")
                pairs.append(tuple(p.split("=", 1)))
            reply = conn.query_reply(args.endpoint, args.client, pairs, args.format)
    except TallyError as e:   # HELLO refused
        print(json.dumps(e.as_http_body(), ensure_ascii=False), file=sys.stdout)
        return 1
    except (ProtocolError, ConnectionClosed, OSError, ValueError) as e:
        print(f"tally_client: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    if reply.kind == "error":
        print(json.dumps(reply.error.as_http_body(), ensure_ascii=False))
        return 1
    if reply.deprecated:
        print("tally_client: note: this endpoint is deprecated", file=sys.stderr)
    if args.raw and reply.format == FORMAT_JSON:
        sys.stdout.buffer.write(reply.body + b"\n")
    else:
        print(json.dumps(reply.document, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
