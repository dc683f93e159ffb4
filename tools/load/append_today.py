#!/usr/bin/env python3
"""Appends of "today's trickle" against a running `tally serve --wal` (loopback only): N
connections post batches of B events dated on the client's newest day (`as_of` of its users
report), random users × apps, for a bounded time. Bodies are encoded before the clock starts.
Prints events/s, batches/s and the acknowledgement time's p50/p99/p99.9/max (an acknowledgement
means: in the write-ahead log, fdatasync'ed, applied and visible to queries), and — with
`--probe` — the p50/p99 of a dashboard request sent on its own connection meanwhile.

With `--turn-at S`, the day changes S seconds in: later batches are dated the day after, a
share `--late F` of their events still on the day before (late rows of a stream across
midnight; `--gap 2`: the day after a day without rows), and the figures are printed for the
batches before and after the change too.

With `--flip-approval-at S`, S seconds in one `apps` row flips the approval of the client's
first app (no events; its classes change, so the client is rebuilt): the output adds that
batch's acknowledgement time and the p50/p99/max of the event batches sent while it waited.

Usage: python3 tools/load/append_today.py --port P --dump DIR [--client ID] [--batch 1000]
       [--connections 1] [--seconds 20] [--probe PATH?QUERY] [--turn-at S [--late 0.1]]
The dump folder (as `tally generate` or `tally synth --write-dump` writes it) gives the users
and apps; the client defaults to the one with the most users."""
import argparse
import http.client
import json
import random
import statistics
import threading
import time

from append_bench import read_table, users_and_apps

TOKEN = {"Authorization": "Bearer YOUR_API_TOKEN"}


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dump", required=True)
    ap.add_argument("--client")
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--connections", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--bodies", type=int, default=200, help="distinct pre-encoded bodies, reused in turn")
    ap.add_argument("--probe", help="a GET path (under /v2/clients/CLIENT/) timed meanwhile on its own connection")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--turn-at", type=float, help="seconds in: later batches are dated the next day")
    ap.add_argument("--late", type=float, default=0.1, help="after the turn, the share of events still on the day before")
    ap.add_argument("--gap", type=int, default=1, help="days from the newest day to the day after the turn (2: a day without rows between)")
    ap.add_argument("--timeline", help="write each acknowledged batch's (seconds in, ack ms) and, every 0.2 s, /readyz's"
                                       " delta_rows (a merge installed drops it) as JSON lines to this file")
    ap.add_argument("--flip-approval-at", type=float, help="seconds in: one apps row flips the approval of the client's first app")
    a = ap.parse_args()
    by_client = users_and_apps(a.dump)
    client = a.client or max(by_client, key=lambda c: len(by_client[c][0]))
    us, ps = by_client[client]
    conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=60)
    conn.request("GET", f"/v2/clients/{client}/users?page_size=1", headers=TOKEN)
    r = conn.getresponse()
    day = json.loads(r.read())["as_of"]
    rnd = random.Random(a.seed)
    bodies, next_bodies = [], []
    for _ in range(a.bodies):
        events = [{"user_id": rnd.choice(us), "application_id": rnd.choice(ps), "activity_date": day} for _ in range(a.batch)]
        bodies.append(json.dumps({"events": events}).encode())
    if a.turn_at is not None:
        from datetime import date, timedelta
        nxt = (date.fromisoformat(day) + timedelta(days=a.gap)).isoformat()
        for _ in range(a.bodies):
            events = [{"user_id": rnd.choice(us), "application_id": rnd.choice(ps),
                       "activity_date": day if rnd.random() < a.late else nxt} for _ in range(a.batch)]
            next_bodies.append(json.dumps({"events": events}).encode())
    latencies, probes, errors = [], [], []
    timeline = []  # (seconds in, ack ms) per acknowledged batch, and ("delta", seconds in, rows)
    phases = []  # per acknowledged batch: sent after the day's change
    accepted = [0]
    lock = threading.Lock()
    stop = time.time() + a.seconds

    turn = None if a.turn_at is None else time.time() + a.turn_at
    flip = {}  # "start" / "end": the flip's post and its acknowledgement (time.time())
    sent = []  # per acknowledged batch: when it was posted (time.time())

    def flipper():
        app = next(x for x in read_table(a.dump, "apps") if x["client_id"] == client)
        approved = str(app["is_approved"]).lower() in ("t", "true", "1")
        row = {"id": app["id"], "catalog_application_id": app["catalog_application_id"], "is_approved": not approved,
               "is_favorite": str(app["is_favorite"]).lower() in ("t", "true", "1")}
        body = json.dumps({"apps": [row]}).encode()
        c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=120)
        time.sleep(max(0.0, t_start + a.flip_approval_at - time.time()))
        flip["start"] = time.time()
        c.request("POST", f"/v2/clients/{client}/usage-events", body, dict(TOKEN, **{"Content-Type": "application/json"}))
        resp = c.getresponse()
        data = resp.read()
        flip["end"] = time.time()
        flip["status"] = resp.status
        if resp.status != 200:
            with lock:
                errors.append((resp.status, data[:200]))

    def worker(k):
        c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=120)
        i = k
        while time.time() < stop:
            after = turn is not None and time.time() >= turn
            body = (next_bodies if after else bodies)[i % len(bodies)]
            i += a.connections
            t0, at = time.perf_counter(), time.time()
            c.request("POST", f"/v2/clients/{client}/usage-events", body, dict(TOKEN, **{"Content-Type": "application/json"}))
            resp = c.getresponse()
            data = resp.read()
            dt = time.perf_counter() - t0
            with lock:
                if resp.status == 200:
                    latencies.append(dt)
                    timeline.append((round(time.time() - t_start, 4), round(dt * 1000, 3)))
                    phases.append(after)
                    sent.append(at)
                    accepted[0] += a.batch
                else:
                    errors.append((resp.status, data[:200]))

    def prober():
        c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=120)
        while time.time() < stop:
            t0 = time.perf_counter()
            c.request("GET", f"/v2/clients/{client}/{a.probe}", headers=TOKEN)
            resp = c.getresponse()
            resp.read()
            dt = time.perf_counter() - t0
            with lock:
                probes.append(dt) if resp.status == 200 else errors.append((resp.status, b"probe"))
            time.sleep(0.005)

    def sampler():
        c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=120)
        while time.time() < stop:
            c.request("GET", "/readyz")
            resp = c.getresponse()
            body = resp.read()
            if resp.status == 200:
                with lock:
                    timeline.append(("delta", round(time.time() - t_start, 3), json.loads(body).get("delta_rows")))
            time.sleep(0.2)

    t0 = t_start = time.time()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(a.connections)]
    if a.probe:
        threads.append(threading.Thread(target=prober))
    if a.timeline:
        threads.append(threading.Thread(target=sampler))
    if a.flip_approval_at is not None:
        threads.append(threading.Thread(target=flipper))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - t0
    ms = [x * 1000 for x in latencies]
    out = {"client": client, "day": day, "batch": a.batch, "connections": a.connections, "seconds": round(elapsed, 2),
           "batches": len(ms), "events_per_s": round(len(ms) * a.batch / elapsed), "errors": len(errors),
           "ack_ms": {"p50": round(pct(ms, 0.5), 2), "p99": round(pct(ms, 0.99), 2), "p999": round(pct(ms, 0.999), 2),
                      "max": round(max(ms), 2) if ms else None, "mean": round(statistics.mean(ms), 2) if ms else None}}
    if turn is not None:
        for name, want in (("before_turn", False), ("after_turn", True)):
            xs = [m for m, p in zip(ms, phases) if p == want]
            out[name] = {"batches": len(xs), "p50": round(pct(xs, 0.5), 2), "p99": round(pct(xs, 0.99), 2),
                         "p999": round(pct(xs, 0.999), 2), "max": round(max(xs), 2) if xs else None}
        out["late_share"] = a.late
        out["gap_days"] = a.gap
    if "end" in flip:
        xs = [m for m, at in zip(ms, sent) if flip["start"] <= at < flip["end"]]
        out["approval_flip"] = {"status": flip["status"], "ack_ms": round((flip["end"] - flip["start"]) * 1000, 1),
                                "at_s": round(flip["start"] - t_start, 2), "batches_meanwhile": len(xs),
                                "p50": round(pct(xs, 0.5), 2), "p99": round(pct(xs, 0.99), 2),
                                "max": round(max(xs), 2) if xs else None}
    if a.probe:
        pm = [x * 1000 for x in probes]
        out["probe_ms"] = {"n": len(pm), "p50": round(pct(pm, 0.5), 2), "p99": round(pct(pm, 0.99), 2), "max": round(max(pm), 2) if pm else None}
    if errors:
        out["first_error"] = str(errors[0])
    if a.timeline:
        out["timeline_start"] = t_start
        with open(a.timeline, "w") as f:
            for x in timeline:
                f.write(json.dumps(x) + "\n")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
