#!/usr/bin/env python3
"""`GET /metrics` from outside (issue 13, SPEC §3d): starts `tally serve` on the bundled sample
with a write-ahead log, sends a known set of requests over both listeners, scrapes `/metrics`
and reads it with the Prometheus project's own text parser (prometheus_client from PyPI).

Checks:
  * every metric SPEC §3d lists is present, with the types Prometheus expects;
  * request counters equal the requests sent, per endpoint and listener; responses by status too;
  * a known fast request (/healthz) is in every latency bucket at or above the time the client
    measured for it, and a known slow one (a reload, whose own duration the server reports) is in
    no bucket below that duration;
  * appends: rows, batches and the fsync histogram follow the appends sent; the log's bytes equal
    the file's size;
  * no label value is a client id (or any UUID);
  * /metrics answers 403 to a peer that is neither loopback nor configured (checked through the
    server's --metrics-peer handling: a request from 127.0.0.1 is allowed; the 403 path is unit
    tested in Swift), and needs no token.

Usage: python3 tools/metrics_check.py [--tally .build/debug/tally]
"""
import argparse
import json
from datetime import datetime
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
TOKEN = "YOUR_API_TOKEN"
ACME = "aa7cf840-9ca9-46a3-9778-9015d6580d50"
UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

# SPEC §3d, as named here: name → Prometheus type.
REQUIRED = {
    "tally_requests": "counter",
    "tally_request_duration_seconds": "histogram",
    "tally_responses": "counter",
    "tally_requests_in_flight": "gauge",
    "tally_connections_open": "gauge",
    "tally_clients": "gauge",
    "tally_usage_rows": "gauge",
    "tally_resident_bytes": "gauge",
    "tally_heap_allocated_bytes": "gauge",
    "tally_heap_free_bytes": "gauge",
    "tally_store_bytes": "gauge",
    "tally_last_reload_timestamp_seconds": "gauge",
    "tally_last_reload_success": "gauge",
    "tally_last_reload_duration_seconds": "gauge",
    "tally_reloads": "counter",
    "tally_append_rows": "counter",
    "tally_append_batches": "counter",
    "tally_wal_fsync_duration_seconds": "histogram",
    "tally_wal_bytes": "gauge",
    "tally_acked_sequence": "gauge",
    "tally_acked_timestamp_seconds": "gauge",
    "tally_cursor_pins": "gauge",
    "tally_cursor_pinned_bytes": "gauge",
    "tally_cursor_fallbacks": "counter",
    "tally_merges": "counter",
    "tally_merge_duration_seconds": "histogram",
    "tally_delta_rows": "gauge",
    "tally_delta_rows_max": "gauge",
    "tally_delta_clients": "gauge",
    "tally_delta_oldest_age_seconds": "gauge",
    "tally_build_info": "gauge",
}


def ensure_packages():
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--break-system-packages", "prometheus_client"],
                       check=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(port, method, path, token=TOKEN, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode())
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        req.add_header("Content-Type", "application/json")
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            data = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        data = e.read()
        status = e.code
    return status, data, time.perf_counter() - start


def scrape(port):
    from prometheus_client.parser import text_string_to_metric_families
    status, data, _ = http(port, "GET", "/metrics", token=None)
    assert status == 200, f"/metrics answered {status}"
    families = {f.name: f for f in text_string_to_metric_families(data.decode())}
    return families


def value(families, family, sample, **labels):
    f = families.get(family)
    if f is None:
        return None
    for s in f.samples:
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tally", default=os.path.join(ROOT, ".build/debug/tally"))
    args = ap.parse_args()
    ensure_packages()
    from tally_client import Connection

    port, bport = free_port(), free_port()
    work = tempfile.mkdtemp(prefix="tally-metrics-")
    wal = os.path.join(work, "append.wal")
    # Settings from TALLY_* variables (swift-configuration); a flag given on the command line wins
    # (TALLY_PORT names a port nothing listens on here).
    env = dict(os.environ, TALLY_PORT="1", TALLY_BINARY_PORT=str(bport), TALLY_WAL=wal, TALLY_LOG_LEVEL="warning",
               TALLY_ACCESS_LOG="errors")
    proc = subprocess.Popen([args.tally, "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    failures = []

    def check(ok, what):
        print(("ok   " if ok else "FAIL ") + what)
        if not ok:
            failures.append(what)

    try:
        for _ in range(600):
            try:
                if http(port, "GET", "/readyz", token=None)[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            raise SystemExit("tally serve did not become ready")

        before = scrape(port)
        # Every required metric is there before any traffic, with its type.
        for name, kind in REQUIRED.items():
            f = before.get(name)
            check(f is not None and f.type == kind, f"{name} present as a {kind}" + ("" if f else " (missing)"))

        # Known traffic: HTTP A ×7, K ×3, healthz ×5 (timed), one 404 path, one 401; binary E ×4, O ×2.
        a = f"/v2/clients/{ACME}/analytics/apps/utilization?granularity=monthly&start_date=2026-02-01&end_date=2026-02-28"
        for _ in range(7):
            assert http(port, "GET", a)[0] == 200
        for _ in range(3):
            assert http(port, "GET", f"/v2/clients/{ACME}/users?page_size=5")[0] == 200
        fast = []
        for _ in range(5):
            status, _, seconds = http(port, "GET", "/healthz", token=None)
            assert status == 200
            fast.append(seconds)
        check(http(port, "GET", "/v2/nowhere")[0] == 404, "an unknown path is a 404")
        check(http(port, "GET", a, token="wrong")[0] == 401, "a bad token is a 401")
        conn = Connection.connect(port=bport, token=TOKEN)
        for _ in range(4):
            conn.query("E", ACME, {"granularity": "monthly", "start_date": "2026-02-01", "end_date": "2026-02-28"})
        for _ in range(2):
            conn.query(16, ACME, {"report_interval": "30"})
        conn.close()
        # Appends: 3 rows then 2 rows.
        users = json.loads(http(port, "GET", f"/v2/clients/{ACME}/users?page_size=2")[1])["data"]
        app = json.loads(http(port, "GET", a + "&page_size=1")[1])["data"][0]["app"]["id"]
        sent_rows = 0
        for n in (3, 2):
            events = [{"user_id": users[i % 2]["id"], "application_id": app, "activity_date": f"2026-03-0{i + 1}"}
                      for i in range(n)]
            status, body, _ = http(port, "POST", f"/v2/clients/{ACME}/usage-events", body={"events": events})
            check(status == 200, f"append of {n} rows acknowledged ({status} {body[:120]!r})")
            sent_rows += n
        # A reload: slow, and it reports its own duration.
        status, body, _ = http(port, "POST", "/v2/admin/reload", body={})
        check(status == 200, "reload answered 200")
        reload_seconds = json.loads(body)["seconds"]

        after = scrape(port)

        def delta(family, sample, **labels):
            return (value(after, family, sample, **labels) or 0) - (value(before, family, sample, **labels) or 0)

        expected = {("A", "http"): 7 + 2, ("K", "http"): 3 + 1, ("healthz", "http"): 5, ("none", "http"): 1,
                    ("E", "binary"): 4, ("O", "binary"): 2, ("append", "http"): 2, ("reload", "http"): 1}
        # A ×7 + the 401 + the page_size=1 lookup; K ×3 + the users lookup.
        for (endpoint, listener), n in expected.items():
            got = delta("tally_requests", "tally_requests_total", endpoint=endpoint, listener=listener)
            check(got == n, f"tally_requests_total{{endpoint={endpoint},listener={listener}}} grew by {n} (got {got})")
            hist = delta("tally_request_duration_seconds", "tally_request_duration_seconds_count",
                         endpoint=endpoint, listener=listener)
            check(hist == n, f"latency histogram count of {endpoint}/{listener} grew by {n} (got {hist})")
        # The scrapes between: the second scrape counts the first.
        check(delta("tally_requests", "tally_requests_total", endpoint="metrics", listener="http") == 1,
              "the /metrics scrape is counted")
        check(delta("tally_responses", "tally_responses_total", listener="http", status="401") == 1, "one 401 response")
        check(delta("tally_responses", "tally_responses_total", listener="http", status="404") == 1, "one 404 response")
        # Every HTTP request above but the 404 and the 401, plus the first scrape.
        ok_http = sum(n for (e, l), n in expected.items() if l == "http" and e != "none") - 1 + 1
        check(delta("tally_responses", "tally_responses_total", listener="http", status="200") == ok_http,
              f"200 responses over HTTP grew by {ok_http} "
              f"(got {delta('tally_responses', 'tally_responses_total', listener='http', status='200')})")
        check(delta("tally_responses", "tally_responses_total", listener="binary", status="200") == 6,
              "6 binary answers with status 200")

        # Buckets: the fast requests are in every bucket at or above the slowest time the client saw.
        bounds = sorted({float(s.labels["le"]) for s in after["tally_request_duration_seconds"].samples
                         if s.name.endswith("_bucket")})
        check(bounds[0] == 0.000025 and 1.0 in bounds, f"latency buckets run from 25 µs to 1 s ({bounds[0]} … {bounds[-2]})")
        slowest_fast = max(fast)
        for le in bounds:
            if le >= slowest_fast:
                got = delta("tally_request_duration_seconds", "tally_request_duration_seconds_bucket",
                            endpoint="healthz", listener="http", le=str(le) if le != float("inf") else "+Inf")
                if got is None or got != 5:
                    # The parser formats le as a float string; match loosely.
                    got = sum(s.value for s in after["tally_request_duration_seconds"].samples
                              if s.name.endswith("_bucket") and s.labels.get("endpoint") == "healthz"
                              and s.labels.get("listener") == "http" and float(s.labels["le"]) == le)
                check(got == 5, f"healthz: all 5 in the le={le} bucket (client saw ≤ {slowest_fast * 1e3:.2f} ms)")
        below = [le for le in bounds if le < reload_seconds]
        for le in below:
            got = sum(s.value for s in after["tally_request_duration_seconds"].samples
                      if s.name.endswith("_bucket") and s.labels.get("endpoint") == "reload"
                      and s.labels.get("listener") == "http" and float(s.labels["le"]) == le)
            check(got == 0, f"reload ({reload_seconds} s by its own clock) not in the le={le} bucket")
        check(len(below) > 0, "the reload is slower than at least one bucket bound")

        # Appends, fsync, log bytes, reloads.
        check(delta("tally_append_rows", "tally_append_rows_total") == sent_rows, f"{sent_rows} appended rows counted")
        check(delta("tally_append_batches", "tally_append_batches_total") == 2, "2 append batches counted")
        fsyncs = delta("tally_wal_fsync_duration_seconds", "tally_wal_fsync_duration_seconds_count")
        check(1 <= fsyncs <= 2, f"1 or 2 log writes timed (group commit), got {fsyncs}")
        check(value(after, "tally_wal_bytes", "tally_wal_bytes") == os.path.getsize(wal),
              f"tally_wal_bytes equals the log's size ({os.path.getsize(wal)})")
        check(delta("tally_reloads", "tally_reloads_total", result="ok") == 1, "one successful reload counted")
        check(value(after, "tally_last_reload_success", "tally_last_reload_success") == 1, "last reload succeeded")
        check(abs(value(after, "tally_last_reload_duration_seconds", "tally_last_reload_duration_seconds") - reload_seconds) < 0.06,
              "last reload duration is the one the reload answered")
        status, body, _ = http(port, "GET", "/readyz", token=None)
        ready = json.loads(body)
        check(value(after, "tally_clients", "tally_clients") == ready["clients"], "tally_clients equals /readyz")
        check(value(after, "tally_usage_rows", "tally_usage_rows") == ready["usage_rows"], "tally_usage_rows equals /readyz")
        check(ready["acked_sequence"] >= 2 and value(after, "tally_acked_sequence", "tally_acked_sequence") == ready["acked_sequence"],
              f"tally_acked_sequence equals /readyz's acked_sequence ({ready['acked_sequence']}), at least the 2 batches sent")
        acked = value(after, "tally_acked_timestamp_seconds", "tally_acked_timestamp_seconds")
        check(ready["acked_at"] is not None and abs(acked - datetime.fromisoformat(ready["acked_at"].replace("Z", "+00:00")).timestamp()) < 1.01,
              f"tally_acked_timestamp_seconds ({acked}) is /readyz's acked_at ({ready['acked_at']})")
        check(value(after, "tally_resident_bytes", "tally_resident_bytes") > 10_000_000, "resident bytes reported")
        check(0 < value(after, "tally_heap_allocated_bytes", "tally_heap_allocated_bytes")
              < value(after, "tally_resident_bytes", "tally_resident_bytes") * 2, "heap bytes in use reported, of the resident size's order")
        check(value(after, "tally_store_bytes", "tally_store_bytes") > 0, "store bytes reported")
        check(value(after, "tally_build_info", "tally_build_info") == 1, "build info")
        check(value(after, "tally_connections_open", "tally_connections_open", listener="http") >= 1,
              "the scraping connection is open")
        check(value(after, "tally_requests_in_flight", "tally_requests_in_flight", listener="http") == 1,
              "in flight: the scrape itself")

        # No client id (nor any UUID) as a label value.
        uuids = [(f.name, s.labels) for f in after.values() for s in f.samples
                 if any(UUID_RE.search(v) for v in s.labels.values())]
        check(not uuids, f"no UUID in any label value ({uuids[:2]})")
        # The console's status route reads the same counters.
        status, body, _ = http(port, "GET", "/v2/status")
        series = {(s["endpoint"], s["listener"]): s for s in json.loads(body)["requests"]["series"]}
        check(series.get(("A", "http"), {}).get("count") == value(after, "tally_requests", "tally_requests_total",
                                                                   endpoint="A", listener="http"),
              "/v2/status shows the same request count as /metrics")
        check(http(port, "GET", "/v2/status", token=None)[0] == 401, "/v2/status needs a token")
    finally:
        proc.terminate()
        try:
            rc = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = -9
        err = proc.stderr.read().decode(errors="replace")
        if rc != 0:
            failures.append(f"tally serve exited {rc} after SIGTERM: {err[-2000:]}")
        import shutil
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        print(f"metrics_check: {len(failures)} failed", file=sys.stderr)
        sys.exit(1)
    print("metrics_check: all checks passed")


if __name__ == "__main__":
    main()
