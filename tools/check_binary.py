#!/usr/bin/env python3
"""Equivalence check of Tally's two listeners: every analytics query asked over HTTP/JSON and over
the binary protocol (docs/PROTOCOL.md) in both formats must give the same answer.

    python3 tools/check_binary.py --http-port 8080 --binary-port 8081 [--seed N] [--queries N]

Against a running `tally serve` (demo token on loopback unless --token). Reads the dump the
server serves (--dump, default data/sample) for client, department, category, vendor and app
ids and each client's activity dates, then:

1. seeded random queries on every endpoint 1–10 (periods within the data's dates and across a
   year boundary, with and without comparison, every granularity, sorts, page sizes, filters
   with known, other clients' and unknown ids, and invalid parameters): HTTP's body parsed ==
   binary JSON parsed (and byte for byte) == compact decoded, member order and JSON types
   included; errors: the same status, code, parameter and message; the deprecation flag on F;
   then endpoints 11–25 (directory, insight and admin reports) on every client, a path
   parameter sent as the parameter of its name;
2. next_cursor followed through full listings over HTTP, over binary (both formats) and mixing
   the two; the concatenations must be equal;
3. many queries pipelined on one connection (--in-flight, default 100) with PINGs among them;
   each answer must be the one expected for its request id;
4. the protocol's own rules (§5): bad token, frames before HELLO, framing errors, unknown types
   and formats and endpoints, malformed payloads, PING limits, request id 0, max_in_flight.

Prints one summary line; exit status 1 on any mismatch. Standard library only.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import gzip
import io
import json
import random
import shutil
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tally_client as tc  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DAY = datetime.timedelta(days=1)

SORTS = {1: ["unique_users", "canonical_name"],
         2: ["user_count", "app_count", "name"],
         3: ["user_count", "app_count", "name"],
         4: ["app_count", "active_days", "email"],
         5: [], 6: ["user_count", "canonical_name"], 7: [],
         8: ["user_count", "approved_user_count", "unapproved_user_count", "name"],
         9: ["first_seen_date", "unique_users", "canonical_name"],
         10: []}
FILTERS = {1: {"is_approved", "category_ids", "vendor_ids", "department_ids"},
           2: {"is_approved", "category_ids", "vendor_ids"},
           3: {"is_approved", "vendor_ids", "department_ids"},
           4: {"is_approved", "category_ids", "vendor_ids", "department_ids"},
           5: {"is_approved", "category_ids", "vendor_ids", "department_ids"},
           6: set(), 7: {"department_ids"}, 8: set(), 9: {"is_approved"},
           10: {"is_approved", "category_ids", "vendor_ids", "department_ids", "app_ids"}}
LISTS = {1, 2, 3, 4, 6, 8, 9}
GRANULARITIES = ["daily", "weekly", "monthly", "quarterly"]


# --- the dump -------------------------------------------------------------------------------

def _open_text(path: Path):
    name = path.name
    if name.endswith(".csv.gz"):
        return io.TextIOWrapper(gzip.open(path), encoding="utf-8", newline="")
    if name.endswith(".csv.lz4"):
        if not shutil.which("lz4"):
            return None
        out = subprocess.run(["lz4", "-dc", str(path)], check=True, capture_output=True).stdout
        return io.StringIO(out.decode("utf-8"), newline="")
    return open(path, encoding="utf-8", newline="")


def table_files(dump: Path, table: str) -> list[Path]:
    manifest = dump / "manifest.json"
    if manifest.exists():
        files = json.loads(manifest.read_text()).get("tables", {}).get(table)
        if files is not None:
            return [dump / f for f in files]
    for suffix in (".csv", ".csv.gz", ".csv.lz4"):
        if (dump / (table + suffix)).exists():
            return [dump / (table + suffix)]
    folder = dump / table
    if folder.is_dir():
        return sorted(p for p in folder.iterdir() if p.name.endswith((".csv", ".csv.gz", ".csv.lz4")))
    return []


def read_table(dump: Path, table: str):
    for path in table_files(dump, table):
        f = _open_text(path)
        if f is None:
            print(f"check_binary: note: no lz4 command, {path.name} skipped", file=sys.stderr)
            continue
        with f:
            yield from csv.DictReader(f)


class Dump:
    def __init__(self, folder: Path):
        self.clients = [r["id"].lower() for r in read_table(folder, "clients")]
        self.departments: dict[str, list[str]] = {c: [] for c in self.clients}
        for r in read_table(folder, "departments"):
            self.departments.setdefault(r["client_id"].lower(), []).append(r["id"].lower())
        self.categories = [r["id"].lower() for r in read_table(folder, "catalog_categories")]
        self.vendors = [r["id"].lower() for r in read_table(folder, "catalog_vendors")]
        self.catalog_apps = [r["id"].lower() for r in read_table(folder, "catalog_applications")]
        self.users: dict[str, list[str]] = {c: [] for c in self.clients}
        for r in read_table(folder, "users"):
            self.users.setdefault(r["client_id"].lower(), []).append(r["id"].lower())
        self.apps: dict[str, list[str]] = {c: [] for c in self.clients}
        for r in read_table(folder, "apps"):
            self.apps.setdefault(r["client_id"].lower(), []).append(r["id"].lower())
        lo: dict[str, str] = {}
        hi: dict[str, str] = {}
        for r in read_table(folder, "app_usage_reports"):
            c, d = r["client_id"].lower(), r["activity_date"]
            if c not in lo or d < lo[c]:
                lo[c] = d
            if c not in hi or d > hi[c]:
                hi[c] = d
        self.dates = {c: (datetime.date.fromisoformat(lo[c]), datetime.date.fromisoformat(hi[c]))
                      for c in lo}
        if not self.clients:
            raise SystemExit(f"check_binary: no clients in the dump {folder}")


# --- the three ways of asking ---------------------------------------------------------------

class Answer:
    """One answer reduced to what must be equal: ("ok", document) or ("error", fields)."""

    def __init__(self, kind, value, raw=b"", deprecated=None, fmt=None):
        self.kind, self.value, self.raw, self.deprecated, self.fmt = kind, value, raw, deprecated, fmt

    def __repr__(self):
        text = json.dumps(self.value, ensure_ascii=False)
        return f"{self.kind}: {text[:600]}{'…' if len(text) > 600 else ''}"


def parse_json_strict(raw: bytes):
    return json.loads(raw.decode("utf-8"), parse_constant=lambda c: (_ for _ in ()).throw(
        ValueError(f"non-JSON number {c}")))


class Http:
    def __init__(self, host, port, token, timeout):
        self.base = f"http://{host}:{port}"
        self.token = token
        self.timeout = timeout
        self.count = 0

    def get(self, path: str, auth: bool = True):
        req = urllib.request.Request(self.base + path)
        if auth:
            req.add_header("Authorization", f"Bearer {self.token}")
        self.count += 1
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    @staticmethod
    def query_string(pairs, rng):
        parts = []
        for name, value in pairs:
            safe = "," if rng.random() < 0.5 else ""
            parts.append(urllib.parse.quote(name, safe="") + "=" + urllib.parse.quote(value, safe=safe))
        return "&".join(parts)

    @staticmethod
    def path(endpoint: int, client: str, pairs) -> str:
        """The HTTP path of an endpoint number (PROTOCOL.md §3): a path parameter is the value
        of the parameter of that name."""
        tail = tc.ENDPOINTS[endpoint]
        for name, value in pairs:
            tail = tail.replace("{" + name + "}", urllib.parse.quote(value, safe=""))
        if endpoint <= 10:
            return f"/v2/clients/{client}/analytics/apps/{tail}"
        return f"/v2/clients/{client}/{tail}" if endpoint <= 20 else f"/v2/{tail}"

    def analytics(self, endpoint: int, client: str, pairs, rng) -> Answer:
        path = self.path(endpoint, client, pairs)
        qs = self.query_string(pairs, rng)
        status, headers, body = self.get(path + ("?" + qs if qs else ""))
        try:
            doc = parse_json_strict(body)
        except ValueError as e:
            return Answer("bad", f"HTTP {status} body is not JSON ({e}): {body[:200]!r}")
        deprecated = headers.get("Deprecation") is not None
        if status == 200:
            return Answer("ok", doc, body, deprecated)
        err = doc.get("error", {}) if isinstance(doc, dict) else {}
        return Answer("error", [err.get("status"), err.get("code"), err.get("parameter"),
                                err.get("message")], body, deprecated)


def from_reply(reply: tc.Reply) -> Answer:
    if reply.kind == "error":
        e = reply.error
        return Answer("error", [e.status, e.code, e.parameter, e.message],
                      deprecated=False, fmt=None)
    if reply.kind == "result":
        return Answer("ok", reply.document, reply.body, reply.deprecated, reply.format)
    return Answer("bad", f"unexpected {reply.kind} reply")


def strict_diff(a, b, path="$"):
    """None when a and b are the same JSON document (types and member order included), else
    where they first differ."""
    if type(a) is not type(b):
        return f"{path}: {type(a).__name__} {json.dumps(a)[:80]} vs {type(b).__name__} {json.dumps(b)[:80]}"
    if isinstance(a, dict):
        if list(a) != list(b):
            return f"{path}: keys {list(a)} vs {list(b)}"
        for k in a:
            d = strict_diff(a[k], b[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            d = strict_diff(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    if a != b:
        return f"{path}: {json.dumps(a)[:80]} vs {json.dumps(b)[:80]}"
    return None


# --- the check ------------------------------------------------------------------------------

class Check:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.http = Http(args.host, args.http_port, args.token, args.timeout)
        self.mismatches: list[str] = []
        self.notes: list[str] = []
        self.checked = 0
        self.pipelined = 0
        self.chains = 0
        self.protocol_checks = 0
        self.stats = {"ok": 0, "error": 0}
        self.by_endpoint: dict[int, int] = {}
        self.by_error: dict[str, int] = {}
        self.year_boundary = 0
        self.empty = 0

    # -- bookkeeping ---------------------------------------------------------------------

    def mismatch(self, what: str):
        self.mismatches.append(what)
        if len(self.mismatches) <= self.args.show:
            print("MISMATCH " + what, file=sys.stderr)

    def connect(self, name="check_binary.py") -> tc.Connection:
        return tc.Connection.connect(self.args.host, self.args.binary_port, self.args.token,
                                     name, self.args.timeout)

    def compare(self, label: str, endpoint: int, http: Answer, binary: Answer, fmt_name: str,
                bytes_too: bool = False) -> bool:
        if http.kind == "bad":
            self.mismatch(f"{label}: {http.value}")
            return False
        if binary.kind != http.kind:
            self.mismatch(f"{label}: HTTP gives {http!r}; binary {fmt_name} gives {binary!r}")
            return False
        diff = strict_diff(http.value, binary.value)
        if diff:
            self.mismatch(f"{label}: HTTP vs binary {fmt_name} differ at {diff}")
            return False
        if http.kind == "ok":
            if bytes_too and binary.raw != http.raw:
                self.mismatch(f"{label}: binary JSON body is not byte-for-byte HTTP's "
                              f"({len(binary.raw)} vs {len(http.raw)} bytes)")
                return False
            if binary.deprecated != (endpoint == 6) or http.deprecated != (endpoint == 6):
                self.mismatch(f"{label}: deprecation: binary flag {binary.deprecated}, HTTP header "
                              f"{http.deprecated}, endpoint {endpoint}")
                return False
        return True

    # -- random queries -------------------------------------------------------------------

    def pick_client(self) -> str:
        r = self.rng.random()
        with_data = [c for c in self.dump.clients if c in self.dump.dates]
        if r < 0.04:
            return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))   # unknown → 404
        if r < 0.10:
            return self.rng.choice(self.dump.clients)                         # incl. no usage
        if r < 0.55 and with_data:
            # the client with the most history (Acme in the sample) most often
            return max(with_data, key=lambda c: self.dump.dates[c][1] - self.dump.dates[c][0])
        return self.rng.choice(with_data or self.dump.clients)

    def pick_period(self, client: str) -> tuple[datetime.date, datetime.date]:
        lo, hi = self.dump.dates.get(client) or (datetime.date(2026, 1, 1), datetime.date(2026, 3, 31))
        length = self.rng.choice([1, 7, 14, 28, 30, 31, 60, 90, 92, 180, 365, 366,
                                  self.rng.randint(1, 366)])
        if self.rng.random() < 0.25:
            years = list(range(lo.year, hi.year + 1))
            newyear = datetime.date(self.rng.choice(years), 12, 31)       # spans Dec 31 → Jan 1
            # length ≥ 2 covers both Dec 31 and Jan 1; a single day is one or the other
            start = newyear - DAY * self.rng.randint(0, length - 2) if length > 1 else \
                newyear + DAY * self.rng.randint(0, 1)
        else:
            span = max((hi - lo).days, 0)
            start = lo - DAY * 20 + DAY * self.rng.randint(0, span + 20)
        return start, start + DAY * (length - 1)

    def ids_value(self, known: list[str], other: list[str]) -> str:
        ids = self.rng.sample(known, min(len(known), self.rng.randint(1, 3))) if known else []
        r = self.rng.random()
        if r < 0.2 or not ids:
            ids.append(str(uuid.UUID(int=self.rng.getrandbits(128), version=4)))   # unknown
        elif r < 0.3 and other:
            ids.append(self.rng.choice(other))                                     # another client's
        if self.rng.random() < 0.1:
            ids = [i.upper() for i in ids]
        return ",".join(ids)

    def random_query(self):
        rng = self.rng
        endpoint = rng.randint(1, 10)
        client = self.pick_client()
        start, end = self.pick_period(client)
        pairs = [("start_date", start.isoformat()), ("end_date", end.isoformat())]
        if endpoint != 6 or rng.random() < 0.5:
            pairs.append(("granularity", rng.choice(GRANULARITIES)))
        if rng.random() < 0.5 and endpoint != 9 or rng.random() < 0.1:
            length = (end - start).days + 1
            kind = rng.random()
            if kind < 0.5:
                cend = start - DAY
                cstart = cend - DAY * (length - 1)
            elif kind < 0.8:
                cstart, cend = start - DAY * 365, end - DAY * 365
            else:
                cstart, cend = self.pick_period(client)
            pairs += [("compare_start_date", cstart.isoformat()),
                      ("compare_end_date", cend.isoformat())]
        if SORTS[endpoint] and rng.random() < 0.6:
            pairs.append(("sort_by", rng.choice(SORTS[endpoint])))
        if rng.random() < 0.4:
            pairs.append(("sort_order", rng.choice(["asc", "desc"])))
        if endpoint in LISTS and rng.random() < 0.7:
            pairs.append(("page_size", str(rng.choice([1, 2, 3, 5, 10, 50, 200, rng.randint(1, 200)]))))
        filters = set(FILTERS[endpoint])
        if rng.random() < 0.15:
            filters |= {rng.choice(["is_approved", "category_ids", "vendor_ids", "department_ids",
                                    "app_ids"])}      # a filter the endpoint does not take: ignored
        others = [c for c in self.dump.clients if c != client]
        for f in sorted(filters):
            if rng.random() > 0.3:
                continue
            if f == "is_approved":
                pairs.append((f, rng.choice(["true", "false"])))
            elif f == "category_ids":
                pairs.append((f, self.ids_value(self.dump.categories, [])))
            elif f == "vendor_ids":
                pairs.append((f, self.ids_value(self.dump.vendors, [])))
            elif f == "department_ids":
                other = [d for c in others for d in self.dump.departments.get(c, [])]
                pairs.append((f, self.ids_value(self.dump.departments.get(client, []), other)))
            elif f == "app_ids":
                other = [a for c in others for a in self.dump.apps.get(c, [])] + self.dump.catalog_apps
                pairs.append((f, self.ids_value(self.dump.apps.get(client, []), other)))
        if rng.random() < 0.05:
            pairs.append(("unknown_parameter", "ignored é"))
        rng.shuffle(pairs)
        if rng.random() < self.args.invalid:
            pairs = self.invalidate(endpoint, pairs, start, end)
        return endpoint, client, pairs

    def invalidate(self, endpoint, pairs, start, end):
        rng = self.rng

        def set_(name, value):
            out = [(n, v) for n, v in pairs if n != name]
            out.insert(rng.randint(0, len(out)), (name, value))
            return out

        def drop(name):
            return [(n, v) for n, v in pairs if n != name]

        choices = [
            lambda: set_("start_date", rng.choice(["2026-2-1", "2026-02-30", "", "02/01/2026",
                                                   "2026-02-01T00:00", "２０２６-02-01"])),
            lambda: set_("end_date", (start - DAY).isoformat()),
            lambda: set_("end_date", (start + DAY * 366).isoformat()),
            lambda: drop("start_date"),
            lambda: drop("end_date"),
            lambda: set_("compare_start_date", start.isoformat()) if not any(
                n == "compare_end_date" for n, _ in pairs) else drop("compare_end_date"),
            lambda: set_("compare_start_date", "2020-01-01") + [("compare_end_date", "2022-01-01")]
            if not any(n == "compare_end_date" for n, _ in pairs) else
            set_("compare_end_date", "2030-01-01"),
            lambda: drop("granularity") if endpoint != 6 else set_("granularity", "hourly"),
            lambda: set_("granularity", rng.choice(["hourly", "Monthly", "", "mönthly"])),
            lambda: set_("sort_by", rng.choice(["bogus", "", "user_count " if endpoint != 2 else "email"])),
            lambda: set_("sort_order", rng.choice(["up", "ASC", ""])),
            lambda: set_("page_size", rng.choice(["0", "201", "ten", "-1", " 5", "5.0", "", "1e2"])),
            lambda: set_("cursor", rng.choice(["garbage", "", "eyJ4IjoxfQ", "%%%"])),
            lambda: set_("department_ids", rng.choice(["not-a-uuid", ",", "", "e2b3c4d5-f6a7-8901-bcde-f1234567890"])),
            lambda: set_("category_ids", "x"),
            lambda: set_("vendor_ids", "585e9b9e-e25e-453e-b106-229297421d54,"),
            lambda: set_("app_ids", "zzz"),
            lambda: set_("is_approved", rng.choice(["yes", "TRUE", "", "1"])),
            lambda: pairs + [(rng.choice([n for n, _ in pairs]), pairs[0][1])],      # a name twice
        ]
        return rng.choice(choices)()

    def ask_all(self, endpoint, client, pairs, label, conn):
        http = self.http.analytics(endpoint, client, pairs, self.rng)
        bj = from_reply(conn.query_reply(endpoint, client, pairs, "json"))
        bc = from_reply(conn.query_reply(endpoint, client, pairs, "compact"))
        ok = self.compare(label, endpoint, http, bj, "json", bytes_too=True)
        ok = self.compare(label, endpoint, http, bc, "compact") and ok
        self.checked += 1
        self.stats["ok" if http.kind == "ok" else "error"] += 1
        self.by_endpoint[endpoint] = self.by_endpoint.get(endpoint, 0) + 1
        if http.kind == "error":
            key = f"{http.value[0]} {http.value[1]}" + (f" [{http.value[2]}]" if http.value[2] else "")
            self.by_error[key] = self.by_error.get(key, 0) + 1
        elif isinstance(http.value, dict) and http.value.get("data") == []:
            self.empty += 1
        dates = dict(pairs)
        try:
            if (datetime.date.fromisoformat(dates["start_date"]).year
                    != datetime.date.fromisoformat(dates["end_date"]).year):
                self.year_boundary += 1
        except (KeyError, ValueError):
            pass
        return http, ok

    def random_queries(self):
        self.expected = []       # (endpoint, client, pairs, http answer) for the pipelining part
        with self.connect() as conn:
            for i in range(self.args.queries):
                endpoint, client, pairs = self.random_query()
                label = f"q{i} {endpoint}:{tc.ENDPOINTS[endpoint]} client={client} {pairs}"
                http, _ = self.ask_all(endpoint, client, pairs, label, conn)
                if http.kind != "bad":
                    self.expected.append((endpoint, client, pairs, http))
            # the seeds' example (API.md B) explicitly, and each endpoint at least once
            acme = "aa7cf840-9ca9-46a3-9778-9015d6580d50"
            if acme in self.dump.clients:
                base = [("granularity", "monthly"), ("start_date", "2026-02-01"),
                        ("end_date", "2026-02-28"), ("compare_start_date", "2026-01-01"),
                        ("compare_end_date", "2026-01-31")]
                for endpoint in range(1, 11):
                    pairs = base + ([("is_approved", "false")] if endpoint == 2 else [])
                    self.ask_all(endpoint, acme, pairs, f"seed example {endpoint} {pairs}", conn)
                # an unknown client (404) and a client the demo token reads (all)
                self.ask_all(1, str(uuid.UUID(int=1)), base, "unknown client", conn)
            self.directory_queries(conn)

    def directory_queries(self, conn):
        """Endpoints 11–25 (SPEC §3b, §3c) on every client: a few parameter sets each, HTTP
        against both binary formats (their answers are checked against a brute-force reference by
        Tests/TallyAPITests/DirectoryTests; here only the listeners are compared)."""
        rng = self.rng
        for client in self.dump.clients:
            users, deps = self.dump.users.get(client, []), self.dump.departments.get(client, [])
            dates = self.dump.dates.get(client)
            as_of = [] if dates is None or rng.random() < 0.5 else [("as_of", (dates[1] - DAY * rng.randint(0, 60)).isoformat())]
            start, end = self.pick_period(client) if dates else (datetime.date(2026, 2, 1), datetime.date(2026, 2, 28))
            period = [("start_date", start.isoformat()), ("end_date", end.isoformat())]
            cases = [
                (11, [("sort_by", rng.choice(["email", "display_name", "created_at", "last_active_date"])), ("page_size", "3")]),
                (11, [("has_department", "false"), ("q", "a")]),
                (13, [("sort_by", "member_count")]),
                (15, [("window_days", str(rng.randint(1, 366)))]),
                (16, [("report_interval", "90"), ("page_size", "5")]),
                (17, [("report_interval", "30"), ("sort_by", "days_inactive")]),
                (18, [("report_interval", rng.choice(["weekly", "monthly"]))]),
                (19, []), (20, []),
                (17, [("report_interval", "45")]),                 # a 400 on both listeners
            ]
            if users:
                cases.append((12, [("user_id", rng.choice(users)), ("granularity", "weekly")] + period))
            cases.append((12, [("user_id", str(uuid.UUID(int=7)))]))  # not the client's: 404
            if deps:
                cases.append((14, [("department_id", rng.choice(deps)), ("granularity", "monthly")] + period))
            for endpoint, pairs in cases:
                pairs = pairs + as_of
                self.ask_all(endpoint, client, pairs, f"directory {endpoint}:{tc.ENDPOINTS[endpoint]} {client} {pairs}", conn)
        zero = str(uuid.UUID(int=0))
        for endpoint, pairs in [(21, [("report_interval", "30")]), (22, [("report_interval", "weekly")]),
                                (23, [("report_interval", "90")]), (24, [("report_interval", "60")]),
                                (25, [("chart_type", "active_users"), ("cadence", "monthly"),
                                      ("start_date", "2025-04-01"), ("end_date", "2026-03-31")]),
                                (25, [("chart_type", "bogus"), ("cadence", "monthly")])]:
            self.ask_all(endpoint, zero, pairs, f"admin {endpoint}:{tc.ENDPOINTS[endpoint]} {pairs}", conn)

    # -- cursors ------------------------------------------------------------------------------

    def follow(self, endpoint, client, pairs, via, conn, max_pages=400):
        """via: a function page_index → 'http' | 'json' | 'compact'. Returns (pages, error)."""
        pages = []
        cursor = None
        for page in range(max_pages):
            ps = pairs + ([("cursor", cursor)] if cursor is not None else [])
            how = via(page)
            if how == "http":
                ans = self.http.analytics(endpoint, client, ps, self.rng)
            else:
                ans = from_reply(conn.query_reply(endpoint, client, ps, how))
            if ans.kind != "ok":
                return pages, f"page {page} over {how}: {ans!r}"
            pages.append(ans.value)
            cursor = ans.value.get("next_cursor")
            if cursor is None:
                return pages, None
        return pages, f"more than {max_pages} pages"

    def cursor_chains(self):
        acme_like = max((c for c in self.dump.clients if c in self.dump.dates),
                        key=lambda c: self.dump.dates[c][1] - self.dump.dates[c][0])
        lo, hi = self.dump.dates[acme_like]
        end = hi
        start = max(lo, end - DAY * 89)
        year = max(lo, end - DAY * 365)
        chains = [
            (4, [("granularity", "monthly"), ("page_size", "7")]),
            (4, [("granularity", "weekly"), ("page_size", "13"), ("sort_by", "email"),
                 ("compare_start_date", (start - DAY * 90).isoformat()),
                 ("compare_end_date", (start - DAY).isoformat())]),
            (4, [("granularity", "daily"), ("page_size", "9"), ("sort_by", "active_days"),
                 ("sort_order", "asc")]),
            (1, [("granularity", "monthly"), ("page_size", "4"), ("sort_by", "canonical_name")]),
            (1, [("granularity", "monthly"), ("page_size", "3")]),
            (2, [("granularity", "quarterly"), ("page_size", "2"), ("sort_by", "name"),
                 ("sort_order", "desc")]),
            (3, [("granularity", "monthly"), ("page_size", "2")]),
            (6, [("page_size", "1")]),
            (8, [("granularity", "monthly"), ("page_size", "2"), ("sort_by", "unapproved_user_count")]),
            (9, [("granularity", "monthly"), ("page_size", "1"), ("sort_by", "canonical_name")]),
            (9, [("granularity", "monthly"), ("page_size", "2"), ("start_date", year.isoformat())]),
            (3, [("granularity", "monthly"), ("page_size", "1"), ("sort_by", "name"),
                 ("start_date", year.isoformat())]),
        ]
        with self.connect() as conn:
            for endpoint, extra in chains:
                pairs = [("start_date", start.isoformat()), ("end_date", end.isoformat())]
                pairs = [(n, v) for n, v in pairs if n not in dict(extra)] + extra
                label = f"cursor chain {endpoint}:{tc.ENDPOINTS[endpoint]} {pairs}"
                ways = {"http": lambda p: "http", "json": lambda p: "json",
                        "compact": lambda p: "compact",
                        "mixed": lambda p: ("http", "compact", "json")[p % 3]}
                results = {}
                for name, via in ways.items():
                    pages, err = self.follow(endpoint, acme_like, pairs, via, conn)
                    if err:
                        self.mismatch(f"{label} over {name}: {err}")
                    results[name] = pages
                ref = results["http"]
                ref_rows = [row for p in ref for row in p["data"]]
                for name in ("json", "compact", "mixed"):
                    rows = [row for p in results[name] for row in p["data"]]
                    diff = strict_diff(ref_rows, rows)
                    if diff:
                        self.mismatch(f"{label}: concatenation over {name} differs from HTTP's at {diff}")
                    totals = {p["total_count"] for p in results[name]}
                    if totals != {len(ref_rows)}:
                        self.mismatch(f"{label}: total_count over {name} {sorted(totals)} but "
                                      f"{len(ref_rows)} rows")
                # the same listing in one page, when it fits
                one = [(n, v) for n, v in pairs if n != "page_size"] + [("page_size", "200")]
                whole = self.http.analytics(endpoint, acme_like, one, self.rng)
                if whole.kind == "ok" and whole.value.get("next_cursor") is None:
                    diff = strict_diff(whole.value["data"], ref_rows)
                    if diff:
                        self.mismatch(f"{label}: pages differ from one page of 200 at {diff}")
                self.chains += 1
                if len(ref) < 2:
                    self.notes.append(f"{label}: only {len(ref)} page(s)")
            # a cursor with other parameters is a 400 on both listeners
            pairs = [("start_date", start.isoformat()), ("end_date", end.isoformat()),
                     ("granularity", "monthly"), ("page_size", "5")]
            first = self.http.analytics(4, acme_like, pairs, self.rng)
            if first.kind == "ok" and first.value.get("next_cursor"):
                changed = [("sort_by", "email")] + pairs + [("cursor", first.value["next_cursor"])]
                self.ask_all(4, acme_like, changed, "cursor reused with other parameters", conn)
                resized = [(n, v) for n, v in pairs if n != "page_size"] + [
                    ("page_size", "11"), ("cursor", first.value["next_cursor"])]
                self.ask_all(4, acme_like, resized, "cursor with another page size", conn)

    # -- pipelining ---------------------------------------------------------------------------

    def pipelining(self):
        if not self.expected:
            return
        n = self.args.in_flight
        with self.connect("check_binary.py pipeline") as conn:
            if conn.max_in_flight is not None and n > conn.max_in_flight:
                self.notes.append(f"--in-flight {n} lowered to the server's max_in_flight "
                                  f"{conn.max_in_flight}")
                n = conn.max_in_flight
            # heavy ones first so that cheap ones can overtake them
            work = [self.expected[i % len(self.expected)] for i in range(n)]
            self.rng.shuffle(work)
            sent = {}
            pings = {}
            for i, (endpoint, client, pairs, http) in enumerate(work):
                if i % 25 == 10 and len(sent) + len(pings) < n:
                    payload = bytes(self.rng.getrandbits(8) for _ in range(self.rng.randint(0, 64)))
                    pings[conn.send_ping(payload)] = payload
                    continue
                fmt = self.rng.choice(["json", "compact"])
                rid = conn.send_query(endpoint, client, pairs, fmt)
                sent[rid] = (endpoint, client, pairs, http, fmt)
            order = []
            while sent.keys() - set(order) or pings.keys() - set(order):
                reply = conn.receive_reply()
                order.append(reply.request_id)
                if reply.request_id in pings:
                    if reply.kind != "pong" or reply.body != pings[reply.request_id]:
                        self.mismatch(f"pipelined PING {reply.request_id}: got {reply.kind} {reply.body!r}")
                    continue
                if reply.request_id not in sent:
                    self.mismatch(f"pipelined answer for unknown id {reply.request_id}")
                    continue
                endpoint, client, pairs, http, fmt = sent[reply.request_id]
                label = f"pipelined id {reply.request_id} {endpoint}:{tc.ENDPOINTS[endpoint]} {fmt} {pairs}"
                self.compare(label, endpoint, http, from_reply(reply), fmt, bytes_too=(fmt == "json"))
                self.pipelined += 1
            if len(order) != len(set(order)):
                self.mismatch("pipelining: a request id answered twice")
            sent_order = sorted(list(sent) + list(pings))
            self.out_of_order = order != sent_order
            if conn.in_flight:
                self.mismatch(f"pipelining: {conn.in_flight} requests never answered")

    # -- the protocol's own rules (§5) ---------------------------------------------------------

    def raw(self):
        s = socket.create_connection((self.args.host, self.args.binary_port), timeout=self.args.timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return RawConn(s)

    def expect(self, label, frame, typ, rid=None, status=None, code=None, fatal=None, closed=None,
               raw=None):
        self.protocol_checks += 1
        problems = []
        if frame is None:
            problems.append("no frame (connection closed)")
        else:
            ftyp, flags, frid, payload = frame
            if ftyp != typ:
                problems.append(f"type {tc.TYPE_NAMES.get(ftyp, ftyp)}, expected {tc.TYPE_NAMES[typ]}")
            if rid is not None and frid != rid:
                problems.append(f"request id {frid}, expected {rid}")
            if ftyp == tc.ERROR:
                try:
                    err = tc.decode_error(payload, flags, frid)
                    if status is not None and err.status != status:
                        problems.append(f"status {err.status}, expected {status}")
                    if code is not None and err.code != code:
                        problems.append(f"code {err.code!r}, expected {code!r}")
                    if fatal is not None and err.fatal != fatal:
                        problems.append(f"fatal={err.fatal}, expected {fatal}")
                    if problems:
                        problems.append(f"(error: {err})")
                except tc.ProtocolError as e:
                    problems.append(f"malformed ERROR payload: {e}")
        if closed is not None and raw is not None:
            is_closed = raw.closed_soon()
            if is_closed != closed:
                problems.append("connection " + ("closed" if is_closed else "left open") + ", expected "
                                + ("closed" if closed else "open"))
        if problems:
            sent = getattr(raw, "last_sent", b"") if raw else b""
            got = frame_hex(frame)
            self.mismatch(f"protocol: {label}: " + "; ".join(problems)
                          + f" | sent {sent[:64].hex(' ')} | got {got}")

    def protocol(self):
        token = self.args.token
        hello = tc.encode_frame(tc.HELLO, 7, tc.encode_hello(token, "check_binary.py"))
        acme = self.dump.clients[0]
        q_ok = tc.encode_query(5, 0, acme, [("start_date", "2026-02-01"), ("end_date", "2026-02-28"),
                                           ("granularity", "monthly")])

        def authed():
            r = self.raw()
            r.send(hello)
            f = r.frame()
            if f is None or f[0] != tc.WELCOME or f[2] != 7:
                self.mismatch(f"protocol: HELLO did not get WELCOME id 7: {frame_hex(f)}")
            else:
                w = tc.decode_welcome(f[3])
                r.welcome = w
            return r

        # WELCOME
        r = authed()
        w = getattr(r, "welcome", None)
        self.protocol_checks += 1
        if w is not None:
            self.welcome = w
            if w.max_frame < 1024 or w.max_in_flight < 1:
                self.mismatch(f"protocol: WELCOME limits look wrong: {w}")
        # PING 0 and 64 bytes, request id 0 for a query
        r.send(tc.encode_frame(tc.PING, 11, b""))
        self.expect("PING empty", r.frame(), tc.PONG, 11, raw=r)
        r.send(tc.encode_frame(tc.PING, 12, bytes(range(64))))
        f = r.frame()
        self.expect("PING 64 bytes", f, tc.PONG, 12, raw=r)
        if f and f[3] != bytes(range(64)):
            self.mismatch(f"protocol: PONG payload differs: {f[3].hex()}")
        r.send(tc.encode_frame(tc.QUERY, 0, q_ok))
        self.expect("QUERY with request id 0", r.frame(), tc.RESULT, 0, raw=r)
        r.send(tc.encode_frame(tc.QUERY, 0xFFFFFFFF, q_ok))
        self.expect("QUERY with request id 0xFFFFFFFF", r.frame(), tc.RESULT, 0xFFFFFFFF, raw=r)
        # errors that leave the connection open, each followed by a PING to prove it
        open_cases = [
            ("HELLO again", tc.encode_frame(tc.HELLO, 20, tc.encode_hello(token, "again")),
             20, 400, "already_authenticated"),
            ("unknown type 0x42", tc.encode_frame(0x42, 21, b"abc"), 21, 400, "unknown_message_type"),
            ("server type RESULT from the client", tc.encode_frame(tc.RESULT, 22, b"\x00{}"), 22, 400,
             "unknown_message_type"),
            ("server type WELCOME from the client", tc.encode_frame(tc.WELCOME, 23, b""), 23, 400,
             "unknown_message_type"),
            ("type 0", tc.encode_frame(0, 24, b""), 24, 400, "unknown_message_type"),
            ("QUERY short", tc.encode_frame(tc.QUERY, 25, q_ok[:10]), 25, 400, "malformed_request"),
            ("QUERY empty", tc.encode_frame(tc.QUERY, 26, b""), 26, 400, "malformed_request"),
            ("QUERY trailing byte", tc.encode_frame(tc.QUERY, 27, q_ok + b"\x00"), 27, 400,
             "malformed_request"),
            ("QUERY count larger than the pairs", tc.encode_frame(
                tc.QUERY, 28, q_ok[:18] + b"\x00\x04" + q_ok[20:]), 28, 400, "malformed_request"),
            ("QUERY invalid UTF-8 value", tc.encode_frame(
                tc.QUERY, 29, q_ok[:18] + b"\x00\x01" + b"\x00\x0astart_date\x00\x02\xc3\x28"), 29, 400,
             "malformed_request"),
            ("QUERY name with count 0xFFFF", tc.encode_frame(
                tc.QUERY, 30, q_ok[:18] + b"\x00\x01\xff\xff"), 30, 400, "malformed_request"),
            ("PING 65 bytes", tc.encode_frame(tc.PING, 31, bytes(65)), 31, 400, "malformed_request"),
            ("QUERY endpoint 0", tc.encode_frame(tc.QUERY, 32, b"\x00" + q_ok[1:]), 32, 404, "not_found"),
            ("QUERY endpoint 26", tc.encode_frame(tc.QUERY, 33, b"\x1a" + q_ok[1:]), 33, 404, "not_found"),
            ("QUERY endpoint 255", tc.encode_frame(tc.QUERY, 34, b"\xff" + q_ok[1:]), 34, 404, "not_found"),
            ("QUERY format 2", tc.encode_frame(tc.QUERY, 35, q_ok[:1] + b"\x02" + q_ok[2:]), 35, 400,
             "unsupported_format"),
            ("QUERY format 255", tc.encode_frame(tc.QUERY, 36, q_ok[:1] + b"\xff" + q_ok[2:]), 36, 400,
             "unsupported_format"),
            ("QUERY a name twice", tc.encode_frame(tc.QUERY, 37, tc.encode_query(
                5, 0, acme, [("start_date", "2026-02-01"), ("end_date", "2026-02-28"),
                             ("granularity", "monthly"), ("end_date", "2026-02-27")])), 37, 400,
             "invalid_parameter"),
        ]
        for label, frame, rid, status, code in open_cases:
            r.send(frame)
            self.expect(label, r.frame(), tc.ERROR, rid, status, code, fatal=False, raw=r)
            r.send(tc.encode_frame(tc.PING, 1000 + rid, b"alive"))
            self.expect(label + ": then PING", r.frame(), tc.PONG, 1000 + rid, raw=r)
        # the unknown endpoint's message compared with HTTP's unknown path (informational)
        r.send(tc.encode_frame(tc.QUERY, 40, b"\x1a" + q_ok[1:]))
        f = r.frame()
        status, _, body = self.http.get(f"/v2/clients/{acme}/analytics/apps/no-such-endpoint")
        if f and f[0] == tc.ERROR:
            err = tc.decode_error(f[3], f[1], f[2])
            self.notes.append(f"endpoint 26 over binary: {err.status} {err.code} {err.message!r}; "
                              f"unknown path over HTTP: {status} {body[:160].decode(errors='replace')}")
        # undefined flag bits from the client: not specified; record what happens
        r.send(tc.encode_frame(tc.PING, 41, b"f", flags=0x8001))
        f = r.frame()
        self.notes.append(f"PING with flags 0x8001 → {frame_hex(f)}")
        r.close()

        # errors that close the connection
        fatal_cases = [
            ("bad token", None, tc.encode_frame(tc.HELLO, 3, tc.encode_hello("not-the-token", "x")),
             3, 401, "unauthorized"),
            ("empty token", None, tc.encode_frame(tc.HELLO, 4, tc.encode_hello("", "")), 4, 401,
             "unauthorized"),
            ("QUERY before HELLO", None, tc.encode_frame(tc.QUERY, 5, q_ok), 5, 401, "unauthorized"),
            ("PING before HELLO", None, tc.encode_frame(tc.PING, 6, b"x"), 6, 401, "unauthorized"),
            ("length < 8", hello, struct.pack(">IBBHI", 7, 1, tc.PING, 0, 9), 0, 400, "malformed_frame"),
            ("length 0", hello, struct.pack(">I", 0) + bytes(8), 0, 400, "malformed_frame"),
            ("version 2", hello, tc.encode_frame(tc.PING, 9, b"", version=2), 0, 400,
             "unsupported_version"),
            ("version 0 before HELLO", None, tc.encode_frame(tc.HELLO, 9, tc.encode_hello(token, ""),
                                                              version=0), 0, 400, "unsupported_version"),
        ]
        max_frame = getattr(getattr(self, "welcome", None), "max_frame", 1 << 20)
        fatal_cases.append(("length > max_frame (header only)", hello,
                            struct.pack(">IBBHI", max_frame + 1, 1, tc.QUERY, 0, 10), 0, 413,
                            "frame_too_large"))
        fatal_cases.append(("length 0xFFFFFFFF", hello,
                            struct.pack(">IBBHI", 0xFFFFFFFF, 1, tc.QUERY, 0, 10), 0, 413,
                            "frame_too_large"))
        for label, first, frame, rid, status, code in fatal_cases:
            r = self.raw()
            if first is not None:
                r.send(first)
                f = r.frame()
                if f is None or f[0] != tc.WELCOME:
                    self.mismatch(f"protocol: {label}: HELLO not welcomed: {frame_hex(f)}")
                    r.close()
                    continue
            r.send(frame)
            self.expect(label, r.frame(), tc.ERROR, rid, status, code, fatal=True, closed=True, raw=r)
            r.close()

        r = self.raw()
        r.send(tc.encode_frame(tc.HELLO, 2, tc.encode_hello(token, "")))
        self.expect("HELLO with an empty client name", r.frame(), tc.WELCOME, 2, raw=r)
        r.close()
        r = self.raw()
        r.send(tc.encode_frame(tc.HELLO, 2, b"\x00\x02\xc3\x28\x00\x00"))
        f = r.frame()
        self.notes.append(f"HELLO with a token of invalid UTF-8 → {frame_hex(f)}, then "
                          + ("closed" if r.closed_soon() else "open"))
        r.close()

        # HELLO whose payload does not parse (before WELCOME): 401 or 400? record it
        r = self.raw()
        r.send(tc.encode_frame(tc.HELLO, 8, b"\x00\x05ab"))
        f = r.frame()
        self.notes.append(f"HELLO with a short payload → {frame_hex(f)}, then "
                          + ("closed" if r.closed_soon() else "open"))
        r.close()

        # end of stream in the middle of a frame: closed, no answer
        r = self.raw()
        r.send(hello)
        r.frame()
        r.send(tc.encode_frame(tc.QUERY, 50, q_ok)[:20])
        r.sock.shutdown(socket.SHUT_WR)
        f = r.frame()
        self.protocol_checks += 1
        if f is not None:
            self.mismatch(f"protocol: end of stream mid-frame: got {frame_hex(f)}, expected the "
                          "connection closed without an answer")
        r.close()

        # an answer to everything after a frame split into single bytes
        r = self.raw()
        for b in hello + tc.encode_frame(tc.QUERY, 51, q_ok):
            r.sock.sendall(bytes([b]))
        self.expect("HELLO byte by byte", r.frame(), tc.WELCOME, 7, raw=r)
        self.expect("QUERY byte by byte", r.frame(), tc.RESULT, 51, raw=r)
        r.close()

        # more than max_in_flight at once: each answered once, a RESULT or 429
        if getattr(self, "welcome", None) is not None and self.welcome.max_in_flight <= 4096:
            m = self.welcome.max_in_flight + 50
            big = tc.encode_query(4, 1, acme, [("start_date", "2025-03-01"), ("end_date", "2026-02-28"),
                                                ("granularity", "daily"), ("page_size", "200")])
            r = self.raw()
            r.send(hello)
            r.frame()
            r.send(b"".join(tc.encode_frame(tc.QUERY, 100 + i, big) for i in range(m)))
            seen = {}
            for _ in range(m):
                f = r.frame()
                if f is None:
                    break
                seen[f[2]] = f
            self.protocol_checks += 1
            if set(seen) != set(range(100, 100 + m)):
                self.mismatch(f"protocol: {m} QUERYs in one write: {len(seen)} distinct ids answered")
            kinds = {}
            for f in seen.values():
                if f[0] == tc.RESULT:
                    kinds["RESULT"] = kinds.get("RESULT", 0) + 1
                elif f[0] == tc.ERROR:
                    e = tc.decode_error(f[3], f[1], f[2])
                    key = f"{e.status} {e.code}"
                    kinds[key] = kinds.get(key, 0) + 1
                    if (e.status, e.code) != (429, "too_many_in_flight") or e.fatal:
                        self.mismatch(f"protocol: over max_in_flight: unexpected error {e}")
            self.notes.append(f"{m} QUERYs in one write (max_in_flight {self.welcome.max_in_flight}): {kinds}")
            r.close()

    # -- run ------------------------------------------------------------------------------------

    def wait_ready(self):
        deadline = time.monotonic() + self.args.timeout
        while True:
            try:
                status, _, body = self.http.get("/readyz", auth=False)
            except OSError as e:
                status, body = None, str(e).encode()
            if status == 200:
                return body
            if time.monotonic() > deadline:
                raise SystemExit(f"check_binary: server not ready: {status} {body[:200]!r}")
            time.sleep(0.2)

    def run(self):
        t0 = time.monotonic()
        ready = self.wait_ready()
        self.dump = Dump(Path(self.args.dump))
        self.out_of_order = None
        self.random_queries()
        if not self.args.no_cursors:
            self.cursor_chains()
        self.pipelining()
        if not self.args.no_protocol:
            self.protocol()
        elapsed = time.monotonic() - t0
        if self.args.verbose:
            print(f"readyz: {ready.decode(errors='replace')[:300]}", file=sys.stderr)
            for n in self.notes:
                print("note: " + n, file=sys.stderr)
            print(f"queries per endpoint: {dict(sorted(self.by_endpoint.items()))}; "
                  f"{self.year_boundary} across a year boundary; {self.empty} with empty data",
                  file=sys.stderr)
            print("errors: " + ", ".join(f"{k} ×{v}" for k, v in sorted(self.by_error.items())),
                  file=sys.stderr)
        print(f"check_binary: {self.checked} queries checked over HTTP, binary JSON and compact "
              f"({self.stats['ok']} answers, {self.stats['error']} errors), {self.pipelined} pipelined "
              f"on one connection (out of order: {self.out_of_order}), {self.chains} cursor chains, "
              f"{self.protocol_checks} protocol checks, {self.http.count} HTTP requests in "
              f"{elapsed:.1f} s: {len(self.mismatches)} mismatches")
        return 1 if self.mismatches else 0


class RawConn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.last_sent = b""

    def send(self, data):
        self.last_sent = data
        try:
            self.sock.sendall(data)
        except OSError:
            pass

    def _fill(self, n):
        while len(self.buf) < n:
            try:
                chunk = self.sock.recv(65536)
            except (socket.timeout, OSError):
                return False
            if not chunk:
                return False
            self.buf += chunk
        return True

    def frame(self):
        """(type, flags, id, payload) or None when the connection closes first."""
        if not self._fill(12):
            return None
        length, version, typ, flags, rid = struct.unpack(">IBBHI", self.buf[:12])
        if not self._fill(4 + length):
            return None
        payload = self.buf[12:4 + length]
        self.buf = self.buf[4 + length:]
        return typ, flags, rid, payload

    def closed_soon(self, wait=2.0):
        """True when the server closes the connection (EOF) within `wait` seconds."""
        if self.buf:
            return False
        old = self.sock.gettimeout()
        self.sock.settimeout(wait)
        try:
            chunk = self.sock.recv(1)
            if chunk:
                self.buf += chunk
                return False
            return True
        except socket.timeout:
            return False
        except OSError:
            return True
        finally:
            self.sock.settimeout(old)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def frame_hex(frame):
    if frame is None:
        return "nothing (closed)"
    typ, flags, rid, payload = frame
    text = f"{tc.TYPE_NAMES.get(typ, hex(typ))} flags=0x{flags:04x} id={rid} payload {payload[:80].hex(' ')}"
    if typ == tc.ERROR:
        try:
            text += f" = {tc.decode_error(payload, flags, rid)}"
        except tc.ProtocolError:
            pass
    return text


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--http-port", type=int, required=True)
    ap.add_argument("--binary-port", type=int, required=True)
    ap.add_argument("--token", default="YOUR_API_TOKEN")
    ap.add_argument("--dump", default=str(ROOT / "data" / "sample"),
                    help="the dump the server serves (for ids and dates)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--queries", type=int, default=300, help="random queries (each asked 3 ways)")
    ap.add_argument("--in-flight", type=int, default=100, help="queries pipelined on one connection")
    ap.add_argument("--invalid", type=float, default=0.15, help="share of queries made invalid")
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--show", type=int, default=20, help="mismatches printed in full")
    ap.add_argument("--no-protocol", action="store_true", help="skip the §5 protocol checks")
    ap.add_argument("--no-cursors", action="store_true", help="skip the cursor chains")
    ap.add_argument("-v", "--verbose", action="store_true", help="print notes on what was seen")
    args = ap.parse_args(argv)
    try:
        return Check(args).run()
    except (tc.ProtocolError, tc.ConnectionClosed, ConnectionError, socket.timeout) as e:
        print(f"check_binary: FAILED: {type(e).__name__}: {e}", file=sys.stderr)
        print("check_binary: aborted: 1 mismatch (the connection failed)")
        return 1


if __name__ == "__main__":
    sys.exit(main())
