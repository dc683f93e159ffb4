#!/usr/bin/env python3
"""Tally's insight reports O, P, Q (SPEC §3b) and admin client reports (SPEC §3c) against DuckDB.

    python3 tools/peers/reports.py --scale S|M [--seed 1] [--tally PATH] [--check-only] [--keep]
    python3 tools/peers/reports.py DUMP_DIR [...]

End to end, on loopback only, and everything it starts it stops (also on Ctrl-C / SIGTERM):
 0. with --scale: `tally generate --scale X --seed N` into the scratch folder;
 1. decompresses the dump once to plain CSV (peerlib/dump.py), loads it into DuckDB (2 threads;
    peerlib/engines.py, then `users` with `created_at` and two macros, peerlib/reports_sql.py);
 2. starts `tally serve` on the plain folder;
 3. picks the largest and the median client by usage rows and builds the query set: O 30/60/90,
    O 30 with `is_approved=true` and with `category_ids=` the client's biggest category, O 30 sorted
    ascending; P 7/14/30, P 30 by `days_inactive`, P 30 with `is_approved=false`; Q weekly/monthly,
    Q monthly by `reengaged_on`, Q weekly/monthly with `app_ids=` the client's busiest app, and
    weekly by `reengaged_on`; and O 30, P 14, Q monthly, Q weekly with the app with `as_of` 45 days
    before the client's newest date; the admin reports growth and attrition 30/60/90, churn
    7/14/30, reengagement weekly/monthly, and growth 30, churn 14, reengagement monthly with `as_of`
    45 days before the store's newest date;
 4. checks each query: every page of Tally's answer over HTTP (page_size 200, following
    `next_cursor`; `total_count` = rows received, `as_of` and `report_interval` in the envelope)
    must equal DuckDB's full result row for row, in order, every field (peerlib/reports_sql.py);
 5. times each query: DuckDB, the SQL returning the full answer, median of --runs after the
    answer run (the warm-up); Tally in process with `tally bench` (median_ms: every page of 200,
    following cursors, after its own warm-up), once `tally serve` is stopped;
 6. prints the table (query, rows, Tally ms, DuckDB ms, DuckDB / Tally) and the geometric mean of
    the ratios per report; writes results/reports-DATE.json and results/reports-latest.json.
Exit status 1 on any disagreement, 2 on an error.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from peerlib import dump as dumplib          # noqa: E402
from peerlib import engines as englib        # noqa: E402
from peerlib import reports_sql as rsql      # noqa: E402
from peerlib import tally                    # noqa: E402
from peerlib.reports_sql import Report       # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
KIND_ORDER = ["O", "P", "Q", "growth", "attrition", "churn", "reengagement"]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def pick_clients(con, explicit=()):
    """[{id, label, rows, newest, category}] for the largest client and the median one by usage rows
    (and any client ids given, labelled by their first 8 characters)."""
    stats = con.execute("SELECT CAST(client_id AS VARCHAR), count(*), max(activity_date)"
                        " FROM app_usage_reports GROUP BY client_id").fetchall()
    stats = sorted(((int(n), cid, newest) for cid, n, newest in stats), key=lambda x: (-x[0], x[1]))
    chosen = [("largest", stats[0])]
    by_size = sorted(stats, key=lambda x: (x[0], x[1]))
    med = by_size[(len(by_size) - 1) // 2]
    if med[1] != stats[0][1]:
        chosen.append(("median", med))
    for cid in explicit:
        hit = [x for x in stats if x[1] == cid.lower()]
        if not hit:
            raise SystemExit(f"--clients: {cid} has no usage rows in this dump")
        chosen.append((cid[:8].lower(), hit[0]))
    out = []
    for label, (n, cid, newest) in chosen:
        # the category with the most usage rows of the client (for a `category_ids=` filter)
        cat = con.execute(
            "SELECT CAST(ca.category_id AS VARCHAR) FROM app_usage_reports u JOIN apps a ON a.id = u.application_id"
            " JOIN catalog_applications ca ON ca.id = a.catalog_application_id"
            f" WHERE u.client_id = '{cid}' AND ca.category_id IS NOT NULL"
            " GROUP BY ca.category_id ORDER BY count(*) DESC, 1 LIMIT 1").fetchone()
        # and the app with the most usage rows (for `app_ids=`: one app's days have gaps, so Q has rows)
        app = con.execute(f"SELECT CAST(application_id AS VARCHAR) FROM app_usage_reports WHERE client_id = '{cid}'"
                          " GROUP BY application_id ORDER BY count(*) DESC, 1 LIMIT 1").fetchone()
        out.append({"id": cid, "label": label, "rows": n, "newest": newest, "category": cat[0] if cat else None,
                    "app": app[0]})
    return out


def build_reports(clients, store_newest: dt.date, kinds: str) -> list[Report]:
    want = set(kinds.split(","))
    out: list[Report] = []
    for c in clients:
        base = dict(client=c["id"], client_label=c["label"])
        earlier = c["newest"] - dt.timedelta(days=45)
        cat = (("category_ids", c["category"]),) if c["category"] else None
        if "O" in want:
            out += [Report("O", i, **base) for i in rsql.INTERVALS["O"]]
            out.append(Report("O", "30", filters=(("is_approved", "true"),), tag="approved", **base))
            if cat:
                out.append(Report("O", "30", filters=cat, tag="category", **base))
            out.append(Report("O", "30", sort_order="asc", **base))
            out.append(Report("O", "30", as_of=earlier, **base))
        if "P" in want:
            out += [Report("P", i, **base) for i in rsql.INTERVALS["P"]]
            out.append(Report("P", "30", sort_by="days_inactive", **base))
            out.append(Report("P", "30", filters=(("is_approved", "false"),), tag="unapproved", **base))
            out.append(Report("P", "14", as_of=earlier, **base))
        if "Q" in want:
            app = (("app_ids", c["app"]),)
            out += [Report("Q", i, **base) for i in rsql.INTERVALS["Q"]]
            out.append(Report("Q", "monthly", sort_by="reengaged_on", **base))
            out += [Report("Q", i, filters=app, tag="app", **base) for i in rsql.INTERVALS["Q"]]
            out.append(Report("Q", "weekly", filters=app, tag="app", sort_by="reengaged_on", **base))
            out.append(Report("Q", "monthly", as_of=earlier, **base))
            out.append(Report("Q", "weekly", filters=app, tag="app", as_of=earlier, **base))
    earlier = store_newest - dt.timedelta(days=45)
    for kind in rsql.ADMIN_REPORTS:
        if kind not in want:
            continue
        out += [Report(kind, i) for i in rsql.INTERVALS[kind]]
        if kind != "attrition":
            out.append(Report(kind, {"growth": "30", "churn": "14", "reengagement": "monthly"}[kind], as_of=earlier))
    return out


def fetch_all(server: tally.Server, r: Report, page_size=200):
    """Every page of Tally's answer: (rows, envelope problems, pages)."""
    params = {**r.params(), "page_size": str(page_size)}
    first = server.get(r.path, params)
    data, b, pages = list(first["data"]), first, 1
    while b.get("next_cursor"):
        params["cursor"] = b["next_cursor"]
        b = server.get(r.path, params)
        data += b["data"]
        pages += 1
        if pages > 100000:
            raise RuntimeError(f"{r.name}: paging does not end")
    problems = []
    if first.get("total_count") != len(data):
        problems.append(f"total_count {first.get('total_count')} but {len(data)} rows over {pages} pages")
    if first.get("report_interval") != r.interval:
        problems.append(f"report_interval {first.get('report_interval')!r}, sent {r.interval!r}")
    return data, first.get("as_of"), problems, pages


def bench(binary: str, plain: str, reports: list[Report], any_client: str, runs: int, workdir: str,
          timeout=3600) -> dict:
    """`tally bench`: the queries in process (no sockets) through the API core the listener uses."""
    qfile = os.path.join(workdir, "bench-reports.json")
    with open(qfile, "w") as f:
        # admin reports need some client uuid for `client`; their path is used as is
        json.dump([{"id": r.name, "client": r.client or any_client,
                    "path": r.path, "params": r.params()} for r in reports], f, indent=1)
    t0 = time.perf_counter()
    p = subprocess.run([binary, "bench", "--dump", plain, "--queries", qfile, "--runs", str(runs)],
                       capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"tally bench failed ({p.returncode}): {p.stderr[-2000:]}{p.stdout[-2000:]}")
    return {"wall_s": wall, "by_name": {x["id"]: x for x in json.loads(p.stdout)}}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dump", nargs="?", help="dump folder (or use --scale)")
    ap.add_argument("--scale", choices=["S", "M", "L"], help="generate the dump with `tally generate` first")
    ap.add_argument("--seed", type=int, default=1, help="--seed for `tally generate` (with --scale)")
    ap.add_argument("--runs", type=int, default=5, help="timed runs per query (median), after one warm-up")
    ap.add_argument("--reports", default=",".join(KIND_ORDER), help="which reports (O,P,Q,growth,attrition,churn,reengagement)")
    ap.add_argument("--clients", default="largest,median", help="which clients to query: largest, median and/or client ids")
    ap.add_argument("--tally", help="tally binary (default: $TALLY_BIN, /tmp/tally-peer/tally, .build/release/tally)")
    ap.add_argument("--workdir", help="scratch folder (default: a new one under $TMPDIR, removed at the end)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder (SQL of every query in WORKDIR/sql)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"), help="results folder (JSON)")
    ap.add_argument("--check-only", action="store_true", help="answers only, no timing")
    args = ap.parse_args()
    if (args.dump is None) == (args.scale is None):
        ap.error("give either DUMP_DIR or --scale S|M|L")

    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_term)

    binary = tally.find_binary(args.tally)
    t_begin = time.perf_counter()
    work = args.workdir or tempfile.mkdtemp(prefix="tally-reports-")
    os.makedirs(work, exist_ok=True)
    db = None
    server = None
    results = {"dump": os.path.abspath(args.dump) if args.dump else f"tally generate --scale {args.scale} --seed {args.seed}",
               "scale": args.scale, "seed": args.seed if args.scale else None,
               "started": dt.datetime.now().isoformat(timespec="seconds"), "args": vars(args), "versions": {},
               "cases": [], "disagreements": []}
    try:
        dump = args.dump
        if args.scale:
            dump = os.path.join(work, "generated")
            log(f"== tally generate --scale {args.scale} --seed {args.seed} --out {dump}")
            g = tally.generate(binary, args.scale, args.seed, dump)
            results["generate"] = g
            log(f"   {g['output']}")
        log(f"== preparing plain CSV in {work}")
        prep = dumplib.prepare(dump, os.path.join(work, "plain"), log=log)
        results["usage_rows"] = prep.usage_rows
        results["versions"]["tally"] = tally.describe(binary)

        log("== duckdb: load")
        db = englib.DuckDB(work)
        ld = db.load(prep)
        ld.update(rsql.prepare_duckdb(db.con, prep.plain))
        results["load"] = ld
        results["versions"]["duckdb"] = db.version()
        log(f"   {ld['rows_per_s'] / 1e6:.2f} M rows/s ({ld['load_s']:.2f} s, sorted in {ld.get('sort_s', 0):.2f} s);"
            f" {ld['users']:,} users; {results['versions']['duckdb']}")

        log("== tally serve")
        server = tally.Server(binary, prep.plain, work)
        log(f"   ready in {server.ready_s:.2f} s")

        wanted = [x for x in args.clients.split(",") if x]
        clients = pick_clients(db.con, [x for x in wanted if x not in ("largest", "median")])
        store_newest = db.con.execute("SELECT max(activity_date) FROM app_usage_reports").fetchone()[0]
        results["clients"] = [{**c, "newest": c["newest"].isoformat()} for c in clients]
        results["store_newest"] = store_newest.isoformat()
        log("== clients: " + "; ".join(f"{c['label']} {c['id']} ({c['rows']:,} rows, newest {c['newest']},"
                                       f" top category {c['category']}, top app {c['app']})" for c in clients))
        clients = [c for c in clients if c["label"] in wanted or c["id"] in [x.lower() for x in wanted]]
        reports = build_reports(clients, store_newest, args.reports)
        log(f"== {len(reports)} queries")
        sqldir = os.path.join(work, "sql")
        os.makedirs(sqldir, exist_ok=True)

        for k, r in enumerate(reports):
            q = rsql.build(r)
            with open(os.path.join(sqldir, f"{k:03d}-{r.name}.sql"), "w") as f:
                f.write(f"-- {r.name}: {r.path}?{'&'.join(f'{a}={b}' for a, b in r.params().items())}\n{q};\n")
            rec = {**r.to_json(), "ms": {}, "samples_ms": {}, "notes": []}
            got, as_of, problems, pages = fetch_all(server, r)
            cur = db.con.execute(q)
            cols = [d[0] for d in cur.description]
            want = rsql.rows(r, cols, cur.fetchall())
            want_as_of = db.con.execute(rsql.as_of_query(r)).fetchone()[0]
            if as_of != want_as_of:
                problems.append(f"as_of {as_of!r}, duckdb {want_as_of!r}")
            diff = rsql.first_difference(want, got)
            if diff:
                problems.append(diff)
            rec.update(rows=len(got), duckdb_rows=len(want), pages=pages, as_of=as_of, agree=not problems)
            if problems:
                rec["notes"] += problems
                results["disagreements"].append({"query": r.name, "path": r.path, "params": r.params(),
                                                 "detail": problems})
                for p in problems:
                    log(f"!! {r.name}: {p}")
            if not args.check_only:
                samples = []
                for _ in range(args.runs):
                    t0 = time.perf_counter()
                    db.con.execute(q).fetchall()
                    samples.append(time.perf_counter() - t0)
                rec["ms"]["duckdb"] = statistics.median(samples) * 1000
                rec["samples_ms"]["duckdb"] = [round(s * 1000, 3) for s in samples]
            results["cases"].append(rec)
            log(f"[{k + 1}/{len(reports)}] {r.name:<44} rows {len(got):>6}  as_of {as_of}"
                + (f"  duckdb {fmt_ms(rec['ms']['duckdb'])} ms" if rec["ms"] else "")
                + ("  ok" if not problems else "  DIFF"))

        if not args.check_only:
            server.close()   # the in-process timing runs alone
            server = None
            db.close()       # and DuckDB's memory is given back first
            db = None
            log(f"== tally bench: {len(reports)} queries in process (--runs {args.runs})")
            b = bench(binary, prep.plain, reports, clients[0]["id"], args.runs, work)
            results["bench_wall_s"] = b["wall_s"]
            log(f"   done in {b['wall_s']:.1f} s (its own load included)")
            for rec, r in zip(results["cases"], reports):
                x = b["by_name"].get(r.name)
                if x is None:
                    rec["notes"].append("tally bench: no result")
                    continue
                rec["bench"] = {k: v for k, v in x.items() if k != "id"}
                bad = (f"status {x.get('status')}" if x.get("status") != 200 else
                       f"{x.get('rows')} rows, HTTP {rec['rows']}" if x.get("rows") != rec["rows"] else None)
                if bad:
                    rec["notes"].append(f"tally bench: {bad}")
                    rec["agree"] = False
                    results["disagreements"].append({"query": r.name, "path": r.path, "params": r.params(),
                                                     "detail": [f"tally bench: {bad}"]})
                    continue
                rec["ms"]["tally_inproc"] = x["median_ms"]
                rec["ms"]["tally_inproc_page1"] = x.get("first_page_median_ms")
    except KeyboardInterrupt as e:
        log(f"!! interrupted ({e}); stopping everything")
        results["interrupted"] = True
    except Exception as e:   # report what was measured so far, then fail
        import traceback
        log(traceback.format_exc())
        results["error"] = f"{type(e).__name__}: {e}"
        log(f"!! stopped by an error: {results['error']}")
    finally:
        if db:
            try:
                db.close()
            except Exception as x:
                log(f"closing duckdb: {x}")
        if server:
            server.close()
        if not args.keep and not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
        elif args.keep:
            log(f"kept {work}")

    results["elapsed_s"] = time.perf_counter() - t_begin
    os.makedirs(args.out, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = os.path.join(args.out, f"reports-{stamp}.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=1, default=str)
    shutil.copyfile(path, os.path.join(args.out, "reports-latest.json"))
    print_report(results)
    print(f"\nresults: {path}")
    if results.get("error") or results.get("interrupted"):
        print(f"\nERROR: {results.get('error', 'interrupted')}")
        return 2
    return 1 if results["disagreements"] else 0


def fmt_ms(ms):
    if ms is None:
        return "-"
    return f"{ms:.3f}" if ms < 1 else f"{ms:.2f}" if ms < 10 else f"{ms:.1f}" if ms < 1000 else f"{ms:.0f}"


def fmt_x(x: float) -> str:
    return f"×{x:.2f}" if x < 1 else f"×{x:.1f}" if x < 10 else f"×{x:.0f}"


def geo(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def print_report(r):
    print(f"\nTally reports vs DuckDB on {r['dump']} ({r.get('usage_rows', 0):,} usage rows), {r['started']};"
          f" whole run {r.get('elapsed_s', 0) / 60:.1f} min")
    print("versions: " + "; ".join(f"{k} {v}" for k, v in r["versions"].items()))
    for c in r.get("clients", []):
        print(f"client {c['label']}: {c['id']} ({c['rows']:,} usage rows, newest {c['newest']})")
    cases = r["cases"]
    if not cases:
        return
    print("\nTally = `tally bench` in process, every page of 200 following cursors, median of the runs;"
          " DuckDB = the SQL returning the full answer, median of the runs after a warm-up;"
          " ratio = DuckDB / Tally")
    hdr = f"{'query':<46} {'rows':>6} {'Tally ms':>9} {'DuckDB ms':>10} {'ratio':>8}  answers"
    print(hdr)
    print("-" * len(hdr))
    ratios = defaultdict(list)
    for c in cases:
        t, d = c["ms"].get("tally_inproc"), c["ms"].get("duckdb")
        ratio = d / t if t and d else None
        if ratio:
            ratios[c["kind"]].append(ratio)
            ratios["all"].append(ratio)
        print(f"{c['name']:<46} {c['rows']:>6} {fmt_ms(t):>9} {fmt_ms(d):>10} {fmt_x(ratio) if ratio else '-':>8}"
              f"  {'equal' if c.get('agree') else 'DIFF'}")
    if ratios:
        print("\ngeometric mean of DuckDB / Tally per report")
        for k in KIND_ORDER + ["all"]:
            if ratios.get(k):
                print(f"  {k:<14} {len(ratios[k]):>3} queries  {fmt_x(geo(ratios[k])):>8}"
                      f"  (min {fmt_x(min(ratios[k]))}, max {fmt_x(max(ratios[k]))})")
    rows = sum(c.get("rows", 0) for c in cases)
    print(f"\n{len(cases)} queries, {rows:,} rows compared; {sum(bool(c.get('agree')) for c in cases)} equal;"
          f" {len(r['disagreements'])} disagreements")
    for dd in r["disagreements"][:30]:
        print(f"  {dd['query']}: " + "\n    ".join(dd["detail"]))


if __name__ == "__main__":
    sys.exit(main())
