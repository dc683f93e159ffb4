#!/usr/bin/env python3
"""A batch sent again (issue 14): rows of older days a client holds already, as an at-least-once
pipeline re-sends them after a timeout, posted to a running `tally serve --wal` (loopback only).
Reads rows from the dump's usage files (the first part's rows, older days than the client's
newest), posts --batches batches of --batch of them one after another on one connection, then
as many batches of new rows of the client's newest day, and prints each kind's acknowledgement
times (median and largest). Before such rows were checked against what the client holds, each
re-sent batch of a large client rebuilt it (seconds).

With --with-directory each re-sent batch also carries the directory rows of the users and apps
it names (users, apps, the users' memberships) as the dump holds them: rows that change nothing.

With --renames the script then posts --batches more batches of new rows of the newest day, each
with the rows of 5 users renamed (display name, email, one deactivated): an HR system's sync.
Before such rows kept the usage index, each batch rebuilt a large client.

With --new-users N the script then posts --batches more batches of new rows of the newest day,
each with N new users (new employees: each in one or two of the client's departments, with 20 of
the batch's events). Before such rows kept the usage index, each batch rebuilt a large client.

With --moves N the script then posts --batches more batches of new rows of the newest day, each
with N held users joining a department they were not in. Before such rows kept the usage index,
each batch rebuilt a large client.

With --new-apps N the script then posts --batches more batches of new rows of the newest day,
each with N new apps (an `apps` row naming a random application of the dump's catalog, approved
or not, with 20 of the batch's events by held users). Before such rows kept the usage index,
each batch rebuilt a large client; a client takes 16 new apps between merges without a rebuild
(docs/APPENDS.md, "New apps in the tail").

Usage: python3 tools/load/append_again.py --port P --dump DIR [--batch 1000] [--batches 10] [--with-directory] [--renames]
       [--new-users N] [--moves N] [--new-apps N]"""
import argparse
import csv
import http.client
import io
import json
import statistics
import subprocess
import time
import os
import random

from append_bench import largest_client, read_table

TOKEN = {"Authorization": "Bearer YOUR_API_TOKEN"}


def held_rows(folder, client, newest, n):
    """Up to n usage rows of `client` dated before `newest`, from the dump's first usage file."""
    parts = sorted(os.listdir(os.path.join(folder, "app_usage_reports")))
    path = os.path.join(folder, "app_usage_reports", parts[0])
    data = subprocess.run(["lz4", "-dc", path], capture_output=True, check=True).stdout if path.endswith(".lz4") else open(path, "rb").read()
    rows = []
    for r in csv.DictReader(io.StringIO(data.decode())):
        if r["client_id"] == client and r["activity_date"] < newest:
            rows.append({"user_id": r["user_id"], "application_id": r["application_id"], "activity_date": r["activity_date"]})
            if len(rows) >= n:
                break
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dump", required=True)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--batches", type=int, default=10)
    ap.add_argument("--with-directory", action="store_true", help="re-send the named users' and apps' directory rows too")
    ap.add_argument("--renames", action="store_true", help="then batches of new rows with 5 users renamed each")
    ap.add_argument("--new-users", type=int, default=0, help="then batches of new rows with this many new users each")
    ap.add_argument("--moves", type=int, default=0, help="then batches of new rows with this many held users joining a department")
    ap.add_argument("--new-apps", type=int, default=0, help="then batches of new rows with this many new apps each")
    ap.add_argument("--skip-again", action="store_true", help="leave out the re-sent and plain batches")
    a = ap.parse_args()
    client, users, apps = largest_client(a.dump)
    conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=600)

    def get(path):
        conn.request("GET", path, headers=TOKEN)
        r = conn.getresponse()
        body = r.read()
        assert r.status == 200, (path, r.status, body[:200])
        return json.loads(body)

    newest = get(f"/v2/clients/{client}/users?page_size=1")["as_of"]
    rows = held_rows(a.dump, client, newest, a.batch * a.batches)
    assert len(rows) == a.batch * a.batches, f"only {len(rows)} older rows of {client} in the first usage file"
    rnd = random.Random(7)
    fresh = [{"user_id": rnd.choice(users), "application_id": rnd.choice(apps), "activity_date": newest}
             for _ in range(a.batch * a.batches)]

    truth = ("t", "true", "1")
    null = lambda v: v if v != "" else None  # noqa: E731
    user_rows = {u["id"]: {"id": u["id"], "email": u["email"], "display_name": null(u["display_name"]),
                           "is_active": u["is_active"].lower() in truth, "role": null(u["role"]), "created_at": null(u["created_at"])}
                 for u in read_table(a.dump, "users") if u["client_id"] == client} if a.with_directory or a.renames else {}
    app_rows = {x["id"]: {"id": x["id"], "catalog_application_id": x["catalog_application_id"],
                          "is_approved": x["is_approved"].lower() in truth, "is_favorite": x["is_favorite"].lower() in truth}
                for x in read_table(a.dump, "apps") if x["client_id"] == client} if a.with_directory else {}
    memberships = {}
    for m in (read_table(a.dump, "user_departments") if a.with_directory else []):
        if m["user_id"] in user_rows:
            memberships.setdefault(m["user_id"], []).append({"user_id": m["user_id"], "department_id": m["department_id"]})

    def directory(batch):
        users = sorted({e["user_id"] for e in batch})
        apps = sorted({e["application_id"] for e in batch})
        return {"users": [user_rows[u] for u in users], "apps": [app_rows[x] for x in apps],
                "user_departments": [m for u in users for m in memberships.get(u, [])], "events": batch}

    refusals = [0]

    def ack(payload):
        """Posts `payload` (a batch or a body of tables) and returns its acknowledgement time (ms): from
        the first attempt, sent again after Retry-After while refused with 503 merge_behind."""
        body = json.dumps(payload).encode()
        t = time.perf_counter()
        while True:
            conn.request("POST", f"/v2/clients/{client}/usage-events", body=body,
                         headers={**TOKEN, "Content-Type": "application/json"})
            r = conn.getresponse()
            text = r.read()
            if r.status == 503 and b"merge_behind" in text:
                refusals[0] += 1
                time.sleep(float(r.getheader("Retry-After", "1")))
                continue
            assert r.status == 200, (r.status, text[:200])
            return (time.perf_counter() - t) * 1000

    def report(label, times):
        print(f"{label}: {a.batches} batches of {a.batch}, acknowledged in median {statistics.median(times):.1f} ms, "
              f"largest {max(times):.1f} ms (first {times[0]:.1f} ms)"
              + (f"; {refusals[0]} refusals (503 merge_behind) waited out" if refusals[0] else ""), flush=True)
        refusals[0] = 0

    def today(n):
        return [{"user_id": rnd.choice(users), "application_id": rnd.choice(apps), "activity_date": newest} for _ in range(n)]

    again = "sent again (older days, held" + (", with their directory rows)" if a.with_directory else ")")
    for label, source in ((again, rows), (f"new rows of the newest day ({newest})", fresh)) if not a.skip_again else ():
        batches = (source[i * a.batch:(i + 1) * a.batch] for i in range(a.batches))
        report(label, [ack(directory(b) if a.with_directory else b) for b in batches])
    if a.renames:
        ids = sorted(user_rows)

        def renames(k):
            renamed = []
            for j, uid in enumerate(rnd.sample(ids, 5)):
                u = dict(user_rows[uid])
                u["display_name"] = f"Renamed {k}-{j}"
                u["email"] = f"renamed-{k}-{j}-" + u["email"]
                if j == 0:
                    u["is_active"] = not u["is_active"]
                user_rows[uid] = u
                renamed.append(u)
            return {"users": renamed, "events": today(a.batch)}
        report("new rows of the newest day with 5 users renamed", [ack(renames(k)) for k in range(a.batches)])
    departments = [d["id"] for d in read_table(a.dump, "departments") if d["client_id"] == client] if a.new_users or a.moves else []
    if a.new_users:
        def hires(k):
            added, joined, batch = [], [], []
            for j in range(a.new_users):
                uid = "%08x-%04x-%04x-%04x-%012x" % (0x7a11e000 + k, j, 0x4000, 0x8000, rnd.getrandbits(48))
                added.append({"id": uid, "email": f"hire-{k}-{j}@example.com", "display_name": f"New hire {k}-{j}", "is_active": True})
                for d in rnd.sample(departments, rnd.choice((1, 2))):
                    joined.append({"user_id": uid, "department_id": d})
                batch += [{"user_id": uid, "application_id": rnd.choice(apps), "activity_date": newest} for _ in range(20)]
            return {"users": added, "user_departments": joined, "events": batch + today(a.batch - len(batch))}
        report(f"new rows of the newest day with {a.new_users} new users each", [ack(hires(k)) for k in range(a.batches)])
    if a.moves:
        held = {}
        for m in read_table(a.dump, "user_departments"):
            held.setdefault(m["user_id"], set()).add(m["department_id"])

        def moves():
            joined = []
            for uid in rnd.sample(users, a.moves):
                d = rnd.choice([x for x in departments if x not in held.get(uid, set())])
                held.setdefault(uid, set()).add(d)
                joined.append({"user_id": uid, "department_id": d})
            return {"user_departments": joined, "events": today(a.batch)}
        report(f"new rows of the newest day with {a.moves} held users joining a department each", [ack(moves()) for _ in range(a.batches)])
    if a.new_apps:
        catalog = [x["id"] for x in read_table(a.dump, "catalog_applications")]

        def discoveries(k):
            added, batch = [], []
            for j in range(a.new_apps):
                aid = "%08x-%04x-%04x-%04x-%012x" % (0x5a9e000 + k, j, 0x4000, 0x8000, rnd.getrandbits(48))
                added.append({"id": aid, "catalog_application_id": rnd.choice(catalog), "is_approved": rnd.random() < 0.5,
                              "is_favorite": False})
                batch += [{"user_id": rnd.choice(users), "application_id": aid, "activity_date": newest} for _ in range(20)]
            return {"apps": added, "events": batch + today(a.batch - len(batch))}
        report(f"new rows of the newest day with {a.new_apps} new apps each", [ack(discoveries(k)) for k in range(a.batches)])

if __name__ == "__main__":
    main()
