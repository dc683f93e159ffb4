"""Tally itself: `tally load` for the load figures, `tally serve` + a keep-alive HTTP client."""
from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import time
import urllib.parse

from .engines import free_port
from .spec import ENDPOINTS, LISTS, Case

TOKEN = "YOUR_API_TOKEN"


def find_binary(explicit: str | None) -> str:
    for p in [explicit, os.environ.get("TALLY_BIN"), "/tmp/tally-peer/tally",
              os.path.join(os.path.dirname(__file__), "../../../.build/release/tally")]:
        if p and os.path.isfile(p) and os.access(p, os.X_OK):
            return os.path.abspath(p)
    raise SystemExit("no tally binary: pass --tally PATH or set TALLY_BIN")


def load(binary: str, plain: str, timeout=600) -> dict:
    r = subprocess.run([binary, "load", plain], capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"tally load failed: {r.stdout}{r.stderr}")
    out = {"output": r.stdout}
    m = re.search(r"load time\s+([\d.]+) s", r.stdout)
    if m:
        out["load_s"] = float(m.group(1))
    m = re.search(r"rate\s+([\d.]+) M usage rows/s", r.stdout)
    if m:
        out["rows_per_s"] = float(m.group(1)) * 1e6
    m = re.search(r"usage rows\s+(\d+) read, (\d+) distinct", r.stdout)
    if m:
        out["rows_read"], out["rows_distinct"] = int(m.group(1)), int(m.group(2))
    m = re.search(r"resident\s+([\d.]+) bytes/row \(RSS growth\), ([\d.]+) bytes/row \(store accounting\)", r.stdout)
    if m:
        out["bytes_per_row_rss"], out["bytes_per_row_store"] = float(m.group(1)), float(m.group(2))
    return out


def describe(binary: str) -> str:
    """The binary's path, mtime and hash prefix, and the HEAD of the repository this script is in."""
    import datetime as dt
    import hashlib
    h = hashlib.sha256()
    with open(binary, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    mtime = dt.datetime.fromtimestamp(os.path.getmtime(binary)).isoformat(timespec="seconds")
    head = subprocess.run(["git", "-C", os.path.dirname(os.path.abspath(__file__)), "log", "-1",
                           "--format=%h %cs"], capture_output=True, text=True).stdout.strip()
    return f"{binary} (built {mtime}, sha256 {h.hexdigest()[:12]}; repo HEAD {head or '?'})"


def generate(binary: str, scale: str, seed: int, out: str, timeout=3600) -> dict:
    """`tally generate --scale S|M|L --seed N --out OUT`: {seconds, output}."""
    t0 = time.perf_counter()
    r = subprocess.run([binary, "generate", "--scale", scale, "--seed", str(seed), "--out", out],
                       capture_output=True, text=True, timeout=timeout)
    s = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"tally generate failed: {r.stdout}{r.stderr}")
    return {"scale": scale, "seed": seed, "generate_s": s, "output": (r.stdout + r.stderr).strip()}


def bench_query(case: Case) -> dict:
    """One entry of `tally bench --queries`: the same request as over HTTP (page_size, cursor ignored)."""
    return {"id": case.name, "client": case.client, "path": ENDPOINTS[case.endpoint],
            "params": [[k, v] for k, v in case.params().items()]}


def has_bench(binary: str) -> bool:
    r = subprocess.run([binary, "help", "bench"], capture_output=True, text=True)
    return r.returncode == 0 and "--queries" in r.stdout


def bench(binary: str, dump: str, cases: list[Case], runs: int, workdir: str, timeout=3600) -> dict:
    """`tally bench`: the cases timed in process (no sockets) through the API core the listener uses.
    Returns {case name: {status, rows, pages, median_ms, first_page_median_ms}} and the wall time."""
    qfile = os.path.join(workdir, "bench-queries.json")
    with open(qfile, "w") as f:
        json.dump([bench_query(c) for c in cases], f, indent=1)
    t0 = time.perf_counter()
    r = subprocess.run([binary, "bench", "--dump", dump, "--queries", qfile, "--runs", str(runs)],
                       capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"tally bench failed ({r.returncode}): {r.stderr[-2000:]}{r.stdout[-2000:]}")
    out = json.loads(r.stdout)
    return {"wall_s": wall, "by_name": {x["id"]: x for x in out}}


class Server:
    def __init__(self, binary: str, dump: str, workdir: str, threads: int = 2, ready_timeout=600):
        self.port = free_port()
        self.logf = open(os.path.join(workdir, "tally-serve.log"), "w")
        cmd = [binary, "serve", "--dump", dump, "--host", "127.0.0.1", "--port", str(self.port),
               "--threads", str(threads)]
        helptext = subprocess.run([binary, "help", "serve"], capture_output=True, text=True).stdout
        if "--binary-port" in helptext:   # newer binaries also open the binary protocol, on 8081 by default
            cmd += ["--binary-port", "0"]
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd,
                                     stdout=self.logf, stderr=subprocess.STDOUT)
        deadline = time.time() + ready_timeout
        t0 = time.perf_counter()
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tally serve exited with {self.proc.returncode}; see {self.logf.name}")
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                c.request("GET", "/readyz")
                r = c.getresponse()
                body = r.read()
                c.close()
                if r.status == 200:
                    self.ready = json.loads(body)
                    break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError("tally serve not ready in time")
            time.sleep(0.05)
        self.ready_s = time.perf_counter() - t0
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)

    def died(self) -> str | None:
        """Why the server is gone, if it is: its exit status and the end of its log."""
        if self.proc is None or self.proc.poll() is None:
            return None
        rc = self.proc.returncode
        self.logf.flush()
        with open(self.logf.name, errors="replace") as f:
            tail = f.read()[-2000:]
        how = f"killed by signal {-rc}" if rc < 0 else f"exited with status {rc}"
        return f"tally serve {how}; its log ends:\n{tail}"

    def get(self, path: str, params: dict, raw=False):
        url = path + "?" + urllib.parse.urlencode(params)
        for attempt in (0, 1):
            try:
                self.conn.request("GET", url, headers={"Authorization": f"Bearer {TOKEN}"})
                r = self.conn.getresponse()
                body = r.read()
                break
            except (http.client.HTTPException, OSError) as e:
                why = self.died()
                if why:
                    raise RuntimeError(f"GET {url}: {e}; {why}") from None
                if attempt:
                    raise
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        if r.status != 200:
            raise RuntimeError(f"GET {url}: {r.status} {body[:300]!r}")
        return body if raw else json.loads(body)

    def answer(self, case: Case, page_size=200, first_page_only=False):
        """The full answer (every page for lists): (data or body, first page body)."""
        path = f"/v2/clients/{case.client}/analytics/apps/{ENDPOINTS[case.endpoint]}"
        params = case.params()
        if case.endpoint not in LISTS:
            b = self.get(path, params)
            return b, b
        params["page_size"] = str(page_size)
        first = self.get(path, params)
        if first_page_only:
            return first["data"], first
        data = list(first["data"])
        b = first
        pages = 1
        while b.get("next_cursor"):
            params["cursor"] = b["next_cursor"]
            b = self.get(path, params)
            data += b["data"]
            pages += 1
            if pages > 100000:
                raise RuntimeError("paging does not end")
        if first["total_count"] != len(data):
            raise RuntimeError(f"{case.name}: total_count {first['total_count']} but {len(data)} rows over {pages} pages")
        return data, first

    def fetch(self, case: Case, page_size=200, first_page_only=False) -> int:
        """What the timing measures: every page's bytes, without JSON parsing (the cursor is found
        in the bytes), so the Python client's JSON decoding is not counted as Tally's time."""
        path = f"/v2/clients/{case.client}/analytics/apps/{ENDPOINTS[case.endpoint]}"
        params = case.params()
        if case.endpoint not in LISTS:
            return len(self.get(path, params, raw=True))
        params["page_size"] = str(page_size)
        n = 0
        while True:
            b = self.get(path, params, raw=True)
            n += len(b)
            k = b.rfind(b'"next_cursor":')
            cur = b[k + 14:].split(b",", 1)[0].split(b"}", 1)[0].strip()
            if first_page_only or cur == b"null":
                return n
            params["cursor"] = json.loads(cur)

    def close(self):
        try:
            self.conn.close()
        except Exception:
            pass
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None
        self.logf.close()
