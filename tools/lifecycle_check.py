#!/usr/bin/env python3
"""Signals under load (issue 13): `tally serve` on the bundled sample with a write-ahead log,
driven by concurrent HTTP keep-alive clients, a binary-protocol client and append clients.

  * SIGHUP three times during the load: every request is answered 200 (zero failed requests),
    and the server counts the three reloads (tally_reloads_total).
  * SIGTERM during the load: every response the clients received is whole (a status line, every
    byte of its Content-Length, a JSON body that parses) — requests the server never answered
    may only fail to connect or see the connection closed before any byte of an answer; every
    append acknowledged is in the write-ahead log (its sequence number found in the file, read
    record by record here); the process exits 0.

Usage: python3 tools/lifecycle_check.py [--tally .build/debug/tally]
"""
import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
TOKEN = "YOUR_API_TOKEN"
ACME = "aa7cf840-9ca9-46a3-9778-9015d6580d50"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
QUERIES = [
    f"/v2/clients/{ACME}/analytics/apps/utilization?granularity=monthly&start_date=2026-02-01&end_date=2026-02-28"
    "&compare_start_date=2026-01-01&compare_end_date=2026-01-31",
    f"/v2/clients/{ACME}/analytics/apps/utilization/summary?granularity=weekly&start_date=2025-09-01&end_date=2026-02-28",
    f"/v2/clients/{ACME}/users?sort_by=last_active_date&page_size=20",
    f"/v2/clients/{ACME}/analytics/users/champions?report_interval=90",
    "/healthz",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, tally, wal):
        self.port, self.bport = free_port(), free_port()
        self.proc = subprocess.Popen([tally, "serve", "--port", str(self.port), "--binary-port", str(self.bport),
                                      "--wal", wal, "--log-level", "notice"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(900):
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/readyz")
                if c.getresponse().status == 200:
                    c.close()
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise SystemExit("tally serve did not become ready")

    def get(self, path):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        c.request("GET", path, headers=AUTH)
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, body


class Load:
    """Client threads until `stop` is set: HTTP readers (keep-alive), appenders, a binary client."""

    def __init__(self, server, readers=3, appenders=2):
        self.server = server
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.answered = 0
        self.failures = []         # whole answers that were not 200, or broken answers
        self.unanswered = 0        # refused or closed before any byte of an answer
        self.acknowledged = []     # append sequences
        self.threads = [threading.Thread(target=self.reader, args=(i,)) for i in range(readers)]
        self.threads += [threading.Thread(target=self.appender, args=(i,)) for i in range(appenders)]
        self.threads.append(threading.Thread(target=self.binary))
        status, body = server.get(f"/v2/clients/{ACME}/users?page_size=4")
        self.users = [u["id"] for u in json.loads(body)["data"]]
        status, body = server.get(QUERIES[0] + "&page_size=3")
        self.apps = [r["app"]["id"] for r in json.loads(body)["data"]]

    def start(self):
        for t in self.threads:
            t.start()

    def join(self):
        self.stop.set()
        for t in self.threads:
            t.join(60)

    def record(self, ok, what=None):
        with self.lock:
            if ok:
                self.answered += 1
            elif what is None:
                self.unanswered += 1
            else:
                self.failures.append(what)

    def exchange(self, conn, method, path, body=None):
        """One request; returns (status, parsed body) or None when nothing of an answer came."""
        headers = dict(AUTH)
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=body, headers=headers)
        except OSError:
            return None
        try:
            r = conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionRefusedError):
            return None
        try:
            data = r.read()  # raises IncompleteRead on a cut body
        except http.client.IncompleteRead as e:
            self.record(False, f"{path}: incomplete body ({len(e.partial)} bytes of {r.getheader('Content-Length')})")
            return "broken"
        try:
            return r.status, json.loads(data)
        except ValueError:
            self.record(False, f"{path}: body is not JSON: {data[:80]!r}")
            return "broken"

    def reader(self, k):
        conn, i = None, k
        while not self.stop.is_set():
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
            path = QUERIES[i % len(QUERIES)]
            i += 1
            got = self.exchange(conn, "GET", path)
            if got is None:
                self.record(False)
                conn.close()
                conn = None
                time.sleep(0.005)
            elif got != "broken":
                status, _ = got
                self.record(status == 200, None if status == 200 else f"{path}: status {status}")

    def appender(self, k):
        conn, n = None, 0
        while not self.stop.is_set():
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
            n += 1
            day = 1 + (n * 7 + k) % 28
            events = [{"user_id": self.users[(n + j) % len(self.users)], "application_id": self.apps[j % len(self.apps)],
                       "activity_date": f"2026-02-{day:02d}"} for j in range(5)]
            got = self.exchange(conn, "POST", f"/v2/clients/{ACME}/usage-events", json.dumps({"events": events}))
            if got is None:
                self.record(False)
                conn.close()
                conn = None
                time.sleep(0.005)
            elif got != "broken":
                status, doc = got
                if status == 200:
                    with self.lock:
                        self.acknowledged.append(doc["sequence"])
                # 503 not_durable / shutting_down are whole answers too: the batch is not acknowledged.
                self.record(status in (200, 503), None if status in (200, 503) else f"append: status {status} {doc}")

    def binary(self):
        from tally_client import Connection, ConnectionClosed, TallyError
        conn = None
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = Connection.connect(port=self.server.bport, token=TOKEN, timeout=30)
                conn.query("E", ACME, {"granularity": "monthly", "start_date": "2026-01-01", "end_date": "2026-02-28"})
                self.record(True)
            except (ConnectionClosed, OSError):
                self.record(False)
                conn = None
                time.sleep(0.005)
            except TallyError as e:
                if e.status == 503:  # shutting_down: a whole answer
                    self.record(True)
                else:
                    self.record(False, f"binary: {e}")


def log_sequences(path):
    """Sequence numbers of the records in a write-ahead log (docs/OPERATIONS.md's format)."""
    data = open(path, "rb").read()
    seqs, pos = set(), 24
    while pos + 8 <= len(data):
        length, _crc = struct.unpack_from("<II", data, pos)
        if pos + 8 + 8 + length > len(data):
            break
        seqs.add(struct.unpack_from("<Q", data, pos + 8)[0])
        pos += 8 + 8 + length
    return seqs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tally", default=os.path.join(ROOT, ".build/debug/tally"))
    ap.add_argument("--seconds", type=float, default=3.0, help="load before each signal")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="tally-lifecycle-")
    failures = []

    def check(ok, what):
        print(("ok   " if ok else "FAIL ") + what)
        if not ok:
            failures.append(what)

    try:
        # SIGHUP ×3 under load: nothing fails.
        server = Server(args.tally, os.path.join(work, "hup.wal"))
        load = Load(server)
        load.start()
        def reloads_done():
            _, body = server.get("/metrics")
            for line in body.decode().splitlines():
                if line.startswith('tally_reloads_total{result="ok"}'):
                    return float(line.split()[-1])
            return 0

        # One signal at a time, each after the reload before has finished (signals sent while a
        # handler runs coalesce, as Unix signals do).
        for k in range(3):
            time.sleep(args.seconds)
            server.proc.send_signal(signal.SIGHUP)
            deadline = time.time() + 120
            while reloads_done() < k + 2 and time.time() < deadline:
                time.sleep(0.05)
        time.sleep(args.seconds)
        load.join()
        check(load.answered > 100, f"{load.answered} requests answered during three SIGHUP reloads")
        check(not load.failures and load.unanswered == 0,
              f"zero failed requests during the reloads ({len(load.failures)} failed, {load.unanswered} unanswered: "
              f"{load.failures[:3]})")
        status, body = server.get("/metrics")
        reloads = [line for line in body.decode().splitlines() if line.startswith('tally_reloads_total{result="ok"}')]
        check(reloads and float(reloads[0].split()[-1]) == 4, f"the first load and three reloads counted ({reloads})")
        server.proc.terminate()
        check(server.proc.wait(60) == 0, "exit 0 after SIGTERM with no load")

        # SIGTERM under load: whole answers only, acknowledged appends in the log, exit 0.
        wal = os.path.join(work, "term.wal")
        server = Server(args.tally, wal)
        load = Load(server)
        load.start()
        time.sleep(args.seconds)
        server.proc.send_signal(signal.SIGTERM)
        rc = server.proc.wait(60)
        err = server.proc.stderr.read().decode(errors="replace")
        load.join()
        check(rc == 0, f"exit code 0 after SIGTERM under load (got {rc})")
        check(load.answered > 50, f"{load.answered} requests answered before the listeners closed "
                                  f"({load.unanswered} refused or closed before an answer)")
        check(not load.failures, f"every answer received was whole ({load.failures[:3]})")
        in_log = log_sequences(wal)
        missing = sorted(set(load.acknowledged) - in_log)
        check(load.acknowledged and not missing,
              f"all {len(load.acknowledged)} acknowledged appends are in the log ({len(in_log)} records; missing {missing[:5]})")
        check("write-ahead log closed" in err, "the log was closed at shutdown")
        order = [err.find(s) for s in ['listener=http [TallyServer] listener closed', 'listener=binary [TallyServer] listener closed',
                                       'write-ahead log closed', '[tally] stopped']]
        check(all(o >= 0 for o in order) and order == sorted(order),
              "shutdown order: HTTP closed, binary closed, log closed, stopped")
        if failures:
            fatal = max(err.find("Fatal error"), err.find("Crashed"))
            start = max(0, fatal - 500) if fatal >= 0 else max(0, len(err) - 4000)
            print("--- the server's stderr (from the crash, or its end) ---", file=sys.stderr)
            print(err[start:start + 9000], file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        print(f"lifecycle_check: {len(failures)} failed", file=sys.stderr)
        sys.exit(1)
    print("lifecycle_check: all checks passed")


if __name__ == "__main__":
    main()
