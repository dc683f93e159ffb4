#!/usr/bin/env python3
"""What idle and slow connections cost the server (issue 15).

Starts `tally serve` on the bundled sample on loopback, opens IDLE connections that send
nothing (half to the HTTP port, half to the binary one) and SLOW ones that trickle a request a
byte per second (slowloris: half HTTP heads, half binary frames), then measures

- the server's resident memory growth (VmRSS from /proc) with all of them open;
- /healthz latency (p50/p99 of sequential keep-alive requests) meanwhile;
- that every slow connection is cut off once its receive timeout has passed (HTTP 10 s, binary
  30 s: the binary ones get ERROR 408 `request_timeout` first), while the idle ones stay open
  (their idle timeouts are 60 s and 300 s).

  python3 tools/load/connections.py --tally .build-release/release/tally --idle 2000 --slow 200
  python3 tools/load/connections.py --check      # the test command's smaller run, with bounds

With --check the bounds are scaled to the connection count: 64 MiB per 2,200 connections (with
a 16 MiB floor for allocator noise), /healthz p99 <= 5 ms, every slow connection cut off on time.
Loopback only; every loop is bounded.
"""
import argparse
import os
import resource
import socket
import struct
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def healthz_latencies(port, n):
    """n sequential GET /healthz on one keep-alive connection; seconds each."""
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    req = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    out = []
    buf = b""
    for _ in range(n):
        t0 = time.perf_counter()
        s.sendall(req)
        while True:
            head_end = buf.find(b"\r\n\r\n")
            if head_end >= 0:
                head = buf[:head_end].decode()
                length = int([h.split(":")[1] for h in head.split("\r\n") if h.lower().startswith("content-length")][0])
                if len(buf) >= head_end + 4 + length:
                    assert head.startswith("HTTP/1.1 200"), head
                    buf = buf[head_end + 4 + length:]
                    break
            chunk = s.recv(65536)
            if not chunk:
                raise RuntimeError("healthz connection closed")
            buf += chunk
        out.append(time.perf_counter() - t0)
    s.close()
    return out


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


class Conn:
    def __init__(self, port, kind="idle", data=b""):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setblocking(False)
        self.kind, self.data, self.sent, self.cut, self.received = kind, data, 0, None, b""

    def closed(self):
        """Whether the peer closed (EOF or reset); keeps what arrived."""
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
                self.received += data
        except BlockingIOError:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tally", default=os.path.join(ROOT, ".build/debug/tally"))
    ap.add_argument("--idle", type=int, default=200)
    ap.add_argument("--slow", type=int, default=20)
    ap.add_argument("--healthz", type=int, default=3000, help="/healthz requests timed while the connections are open")
    ap.add_argument("--check", action="store_true", help="fail unless the bounds hold")
    a = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = a.idle + a.slow + 256
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(need, soft), hard), hard))
    port = free_port()
    binary = free_port()
    log = open("/tmp/tally-connections.log", "w")
    server = subprocess.Popen([a.tally, "serve", "--host", "127.0.0.1", "--port", str(port), "--binary-port", str(binary),
                               "--dump", os.path.join(ROOT, "data/sample"), "--threads", "2"],
                              stdout=log, stderr=log)
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1).read()
                break
            except Exception:
                if server.poll() is not None:
                    sys.exit("tally serve exited; see /tmp/tally-connections.log")
                time.sleep(0.1)
        healthz_latencies(port, 500)  # warm
        # An oversized head is refused (NIO's parser stops at 80 KiB) and the connection closed.
        big = socket.create_connection(("127.0.0.1", port))
        try:
            big.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n")
        except OSError:
            pass
        big.settimeout(5)
        oversized = big.recv(64)
        big.close()
        status_line = oversized.split(b"\r\n")[0].decode()
        print(f"a 200 KB header: {status_line}")
        if a.check and not oversized.startswith(b"HTTP/1.1 400"):
            sys.exit(f"FAIL: a 200 KB header got {oversized!r}")
        time.sleep(0.5)
        base = rss_kib(server.pid)
        before = healthz_latencies(port, a.healthz)

        idle, slow = [], []
        for i in range(a.idle):
            idle.append(Conn(port if i % 2 == 0 else binary))
        http_head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
        frame = struct.pack(">IBBHI", 8 + 64, 1, 1, 0, 1) + b"\x00" * 64
        for i in range(a.slow):
            kind = "http" if i % 2 == 0 else "binary"
            slow.append(Conn(port if kind == "http" else binary, kind, http_head if kind == "http" else frame))
        opened = time.monotonic()

        def trickle():
            now = time.monotonic()
            for s in slow:
                if s.cut is None:
                    if s.closed():
                        s.cut = now - opened
                    elif s.sent < len(s.data):
                        try:
                            s.sock.send(s.data[s.sent:s.sent + 1])
                            s.sent += 1
                        except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                            pass

        # Two seconds of trickling, then memory and /healthz with everything open.
        for _ in range(2):
            trickle()
            time.sleep(1)
        trickle()
        peak = rss_kib(server.pid)
        during = []
        chunk = max(1, a.healthz // 10)
        while len(during) < a.healthz:  # timed in chunks, trickling between them
            during += healthz_latencies(port, chunk)
            trickle()
        peak = max(peak, rss_kib(server.pid))

        # Keep trickling until every slow connection is cut (or 45 s).
        while time.monotonic() - opened < 45 and any(s.cut is None for s in slow):
            trickle()
            time.sleep(1)
        idle_open = sum(1 for s in idle if not s.closed())
        http_cuts = [s.cut for s in slow if s.kind == "http" and s.cut is not None]
        bin_cuts = [s.cut for s in slow if s.kind == "binary" and s.cut is not None]
        bin_408 = sum(1 for s in slow if s.kind == "binary" and b"request_timeout" in s.received)
        n_http = sum(1 for s in slow if s.kind == "http")
        n_bin = len(slow) - n_http
        after = rss_kib(server.pid)

        grown = (peak - base) / 1024
        per_conn = (peak - base) * 1024 / max(1, a.idle + a.slow)
        print(f"connections: {a.idle} idle (HTTP and binary) + {a.slow} slow (a byte per second)")
        print(f"resident: {base / 1024:.1f} MiB before, {peak / 1024:.1f} MiB with them open (+{grown:.1f} MiB, "
              f"{per_conn / 1024:.1f} KiB per connection), {after / 1024:.1f} MiB after the slow ones were cut")
        print(f"/healthz: p50 {pct(before, 0.5) * 1e3:.3f} ms, p99 {pct(before, 0.99) * 1e3:.3f} ms before; "
              f"p50 {pct(during, 0.5) * 1e3:.3f} ms, p99 {pct(during, 0.99) * 1e3:.3f} ms with them open "
              f"({len(during)} requests)")
        print(f"slow HTTP cut off: {len(http_cuts)}/{n_http}, after {min(http_cuts or [0]):.1f}–{max(http_cuts or [0]):.1f} s; "
              f"slow binary: {len(bin_cuts)}/{n_bin} after {min(bin_cuts or [0]):.1f}–{max(bin_cuts or [0]):.1f} s, "
              f"{bin_408} told request_timeout; idle still open: {idle_open}/{len(idle)}")
        if a.check:
            bound = max(16.0, 64.0 * (a.idle + a.slow) / 2200)
            problems = []
            if grown > bound:
                problems.append(f"memory grew {grown:.1f} MiB > {bound:.1f}")
            if pct(during, 0.99) > 0.005:
                problems.append(f"/healthz p99 {pct(during, 0.99) * 1e3:.2f} ms > 5 ms")
            if len(http_cuts) != n_http or any(c > 14 for c in http_cuts):
                problems.append(f"slow HTTP connections not cut off within 14 s: {http_cuts}")
            if len(bin_cuts) != n_bin or any(c > 34 for c in bin_cuts) or bin_408 != n_bin:
                problems.append(f"slow binary connections not cut off with request_timeout within 34 s: {bin_cuts}, {bin_408}")
            if idle_open != len(idle):
                problems.append(f"idle connections closed early: {len(idle) - idle_open}")
            if problems:
                sys.exit("FAIL: " + "; ".join(problems))
            print("ok")
        for s in idle + slow:
            s.sock.close()
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    main()
