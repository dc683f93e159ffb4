#!/usr/bin/env python3
"""A multi-client test dump from `tally synth` clients of different sizes (until `tally generate`
exists): each client's ids (client, users, apps, departments) get a per-client prefix so that the
clients do not collide; the catalog (categories, vendors, applications) is shared, merged by id.

    python3 tools/peers/mkmulti.py OUT --clients 2000x300x366,800x200x366,300x100x200,100x50x120

Usage rows are written as one plain `.csv` part per client (no manifest; SPEC §1 makes it optional).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peerlib import dump as dumplib          # noqa: E402
from peerlib.tally import find_binary        # noqa: E402

CATALOG = ["catalog_categories", "catalog_vendors", "catalog_applications"]
# per table, the columns holding a per-client id
REMAP = {"clients": ["id"], "apps": ["id", "client_id"], "departments": ["id", "client_id"],
         "users": ["id", "client_id"], "user_departments": ["user_id", "department_id"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--clients", default="2000x300x366,800x200x366,300x100x200,100x50x120")
    ap.add_argument("--tally")
    a = ap.parse_args()
    binary = find_binary(a.tally)
    if os.path.exists(a.out):
        shutil.rmtree(a.out)
    os.makedirs(os.path.join(a.out, "app_usage_reports"))
    tmp = tempfile.mkdtemp(prefix="mkmulti-")
    headers, seen, outs = {}, {t: set() for t in CATALOG}, {}
    try:
        for k, shape in enumerate(a.clients.split(",")):
            u, n, d = shape.split("x")
            src = os.path.join(tmp, str(k))
            subprocess.run([binary, "synth", "--users", u, "--apps", n, "--days", d, "--write-dump", src],
                           check=True, stdout=subprocess.DEVNULL)
            pre = f"{k + 1:02x}"

            def fix(v):
                return pre + v[2:] if v else v
            files = dumplib.table_files(src)
            for t in CATALOG + list(REMAP):
                text = dumplib.read_text(os.path.join(src, files[t][0]))
                lines = text.split("\n")
                header = lines[0].rstrip("\r")
                cols = header.split(",")
                if t not in outs:
                    outs[t] = open(os.path.join(a.out, t + ".csv"), "w", encoding="utf-8")
                    outs[t].write(header + "\n")
                    headers[t] = header
                idx = [cols.index(c) for c in REMAP.get(t, [])]
                for line in lines[1:]:
                    if not line:
                        continue
                    if t in CATALOG:
                        key = line.split(",", 1)[0]
                        if key in seen[t]:
                            continue
                        seen[t].add(key)
                        outs[t].write(line + "\n")
                        continue
                    # synth's catalog tables hold no quoted commas; the per-client ones are plain too
                    f = line.split(",")
                    for i in idx:
                        f[i] = fix(f[i])
                    outs[t].write(",".join(f) + "\n")
            dst = os.path.join(a.out, "app_usage_reports", f"part-{k:04d}.csv")
            with open(dst, "w") as o:
                o.write("client_id,user_id,application_id,activity_date\n")
            for rel in files["app_usage_reports"]:
                plain = os.path.join(tmp, "part.csv")
                dumplib.decompress_to(os.path.join(src, rel), plain)
                # synth writes lower-case ids in this column order: prefix client, user and app ids
                subprocess.run(f"tail -n +2 {plain} | sed -E 's/^..(.{{35}})..(.{{35}})../{pre}\\1{pre}\\2{pre}/'"
                               f" >> {dst}", shell=True, check=True)
            rows = dumplib.count_records(dst)
            print(f"client {k + 1}: {shape}: {rows:,} usage rows", file=sys.stderr)
            shutil.rmtree(src)
    finally:
        for f in outs.values():
            f.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
