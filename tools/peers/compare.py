#!/usr/bin/env python3
"""Tally against DuckDB, chDB (ClickHouse) and PostgreSQL 15 on one dump: load, size, answers, latency.

    tools/peers/compare.sh DUMP_DIR [--runs 5] [--engines duckdb,chdb,postgres] [--out DIR] ...
    tools/peers/compare.sh --scale S|M|L [--seed 1] ...     (generates the dump with `tally generate`)

End to end, on loopback only, and everything it starts it stops (also on Ctrl-C / SIGTERM):
 0. with --scale: `tally generate --scale X --seed N` into the scratch folder (timed);
 1. decompresses the dump once to plain CSV in a temporary folder (peerlib/dump.py);
 2. `tally load` on that folder (load rows/s, bytes per row);
 3. loads the same plain CSV into each peer (peerlib/engines.py) and measures its size;
 4. starts `tally serve` on the plain folder;
 5. picks the largest client and a median client (by usage rows), builds the query set
    (peerlib/spec.py: A B C D E H J × 30/366 days × without/with comparison × filters), and for
    every query: Tally's full answer over HTTP (all pages, page_size 200), each engine's answer to
    the SQL of SPEC §2 (peerlib/sql.py); all must be equal; a disagreement is decided by a brute-force
    answer on the raw rows (peerlib/brute.py);
 6. times each query warm, median of --runs, per engine and for Tally over one keep-alive HTTP
    connection (the full list, and the first page alone);
 7. after all that, `tally bench` times the same queries in process (no sockets, the API core the
    listener uses; one call for the whole set, same --runs): full list and first page;
 8. prints the ratio table, writes results JSON and the charts (charts.py).
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
import sys
import tempfile
import time
from collections import Counter, defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from peerlib import dump as dumplib          # noqa: E402
from peerlib import engines as englib        # noqa: E402
from peerlib import spec, sql, tally         # noqa: E402
from peerlib.brute import Reference          # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def timed(fn, runs: int, budget: float):
    """Median seconds of up to `runs` calls (stopping early once `budget` seconds were spent)."""
    samples = []
    t_start = time.perf_counter()
    while len(samples) < runs:
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
        if time.perf_counter() - t_start > budget:
            break
    return statistics.median(samples), samples


def pick_clients(eng, dims, explicit_clients=None):
    """[{id, label, rows, newest, top_department, ai_category}] for the largest and a median client."""
    rows = eng.query(f"SELECT {sql.Dialect(eng.sqldialect).text('client_id')}, count(*), "
                     f"{sql.Dialect(eng.sqldialect).text('max(activity_date)')} FROM app_usage_reports GROUP BY client_id")
    stats = sorted(((int(n), cid, spec.d(str(mx)[:10])) for cid, n, mx in rows), key=lambda x: (-x[0], x[1]))
    chosen = [("largest", stats[0])]
    by_size = sorted(stats, key=lambda x: (x[0], x[1]))
    med = by_size[(len(by_size) - 1) // 2]
    if med[1] != stats[0][1]:
        chosen.append(("median", med))
    dept_client = {r[0]: r[1] for r in dims["departments"]}
    members = Counter(dpt for _, dpt in dims["user_departments"])
    cats = {r[0]: r for r in dims["catalog_categories"]}
    catalog = {r[0]: r for r in dims["catalog_applications"]}
    out = []
    for label, (n, cid, newest) in chosen:
        depts = sorted((-members[dd], dd) for dd, c in dept_client.items() if c == cid)
        ai = Counter(catalog[a[2]][4] for a in dims["apps"] if a[1] == cid and catalog[a[2]][4]
                     and cats.get(catalog[a[2]][4], (0, 0, False))[2])
        out.append({"id": cid, "label": label, "rows": n, "newest": newest,
                    "top_department": depts[0][1] if depts else None,
                    "ai_category": sorted(ai, key=lambda k: (-ai[k], k))[0] if ai else None})
    return out, stats


def fmt_ms(s):
    if s is None:
        return "-"
    ms = s * 1000
    return f"{ms:.2f}" if ms < 10 else f"{ms:.1f}" if ms < 1000 else f"{ms:.0f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dump", nargs="?", help="dump folder (or use --scale)")
    ap.add_argument("--scale", choices=["S", "M", "L"],
                    help="generate the dump with `tally generate --scale X` into the scratch folder first")
    ap.add_argument("--seed", type=int, default=1, help="--seed for `tally generate` (with --scale)")
    ap.add_argument("--engines", default="duckdb,chdb,postgres")
    ap.add_argument("--runs", type=int, default=5, help="timed runs per query per engine (median)")
    ap.add_argument("--budget", type=float, default=5.0,
                    help="seconds of timing per query per engine before stopping early (at least 1 run)")
    ap.add_argument("--max-minutes", type=float, default=18.0,
                    help="after this many minutes the remaining queries are only checked, not timed;"
                         " after 1.5 times as long they are skipped")
    ap.add_argument("--endpoints", default="ABCDEHJ")
    ap.add_argument("--lengths", default="30,366")
    ap.add_argument("--clients", default="largest,median", help="which of the two clients to query")
    ap.add_argument("--tally", help="tally binary (default: $TALLY_BIN, /tmp/tally-peer/tally, .build/release/tally)")
    ap.add_argument("--workdir", help="scratch folder (default: a new one under $TMPDIR, removed at the end)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    ap.add_argument("--out", default=os.path.join(HERE, "results"), help="results folder (JSON)")
    ap.add_argument("--charts", default=os.path.join(HERE, "out"), help="PNG folder ('' for none)")
    ap.add_argument("--brute", action="store_true", help="also check every answer against brute force")
    ap.add_argument("--brute-max", type=int, default=12,
                    help="at most this many brute-force arbitrations of disagreements (they are slow)")
    ap.add_argument("--no-duckdb-sort", action="store_true", help="keep DuckDB's table in file order")
    ap.add_argument("--sql-form", choices=["join", "filter"], default="join",
                    help="comparison period as its own aggregation LEFT JOINed by id (default), or as"
                         " FILTER/uniqExactIf conditional aggregates over one scan")
    ap.add_argument("--check-only", action="store_true", help="answers only, no timing")
    args = ap.parse_args()
    if (args.dump is None) == (args.scale is None):
        ap.error("give either DUMP_DIR or --scale S|M|L")

    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_term)

    binary = tally.find_binary(args.tally)
    t_begin = time.perf_counter()
    work = args.workdir or tempfile.mkdtemp(prefix="tally-peers-")
    os.makedirs(work, exist_ok=True)
    os.chmod(work, 0o755)
    engines = []
    server = None
    results = {"dump": os.path.abspath(args.dump) if args.dump else f"tally generate --scale {args.scale} --seed {args.seed}",
               "scale": args.scale, "seed": args.seed if args.scale else None, "started": dt.datetime.now().isoformat(timespec="seconds"),
               "machine": machine(), "args": vars(args), "versions": {}, "load": {}, "size": {}, "cases": [],
               "disagreements": []}
    try:
        dump = args.dump
        if args.scale:
            dump = os.path.join(work, "generated")
            log(f"== tally generate --scale {args.scale} --seed {args.seed} --out {dump}")
            g = tally.generate(binary, args.scale, args.seed, dump)
            results["generate"] = g
            log(f"   {g['output']}")
            log(f"   generated in {g['generate_s']:.1f} s")
        log(f"== preparing plain CSV in {work}")
        t0 = time.perf_counter()
        prep = dumplib.prepare(dump, os.path.join(work, "plain"), log=log)
        results["prepare_s"] = time.perf_counter() - t0
        results["usage_rows"] = prep.usage_rows
        results["usage_csv_bytes"] = prep.usage_bytes
        results["rewritten_parts"] = prep.rewritten

        log("== tally load")
        tl = tally.load(binary, prep.plain)
        log(tl["output"].rstrip())
        results["load"]["tally"] = {k: v for k, v in tl.items() if k != "output"}
        results["size"]["tally"] = {"bytes_per_row": tl.get("bytes_per_row_store"),
                                    "bytes_per_row_rss": tl.get("bytes_per_row_rss"),
                                    "what": "tally load: store accounting (RSS growth alongside)"}
        results["versions"]["tally"] = tally.describe(binary)

        for name in [e for e in args.engines.split(",") if e]:
            log(f"== {name}: load")
            if name == "duckdb":
                e = englib.DuckDB(work, sort=not args.no_duckdb_sort)
                e.sqldialect = "duckdb"
            elif name == "chdb":
                e = englib.ChDB(work)
                e.sqldialect = "ch"
            elif name == "postgres":
                e = englib.Postgres(work, log=log)
                e.sqldialect = "pg"
            else:
                raise SystemExit(f"unknown engine {name}")
            engines.append(e)
            ld = e.load(prep)
            sz = e.size()
            sz["bytes_per_row"] = sz["bytes"] / max(prep.usage_rows, 1)
            results["load"][name], results["size"][name] = ld, sz
            results["versions"][name] = e.version()
            log(f"   {ld['rows_per_s'] / 1e6:.2f} M rows/s ({ld['load_s']:.2f} s); "
                f"{sz['bytes'] / 1e6:.1f} MB = {sz['bytes_per_row']:.1f} bytes/row; {results['versions'][name]}")

        log("== tally serve")
        server = tally.Server(binary, prep.plain, work)
        log(f"   ready in {server.ready_s:.2f} s: {server.ready}")

        if engines:
            clients, stats = pick_clients(engines[0], prep.dims)
        else:
            raise SystemExit("at least one peer engine is needed (to pick the clients)")
        results["clients"] = [{**c, "newest": c["newest"].isoformat()} for c in clients]
        log("== clients: " + "; ".join(f"{c['label']} {c['id']} ({c['rows']:,} rows, newest {c['newest']})"
                                       for c in clients))
        clients = [c for c in clients if c["label"] in args.clients.split(",")]
        cases = spec.build_cases(clients, args.endpoints, tuple(int(x) for x in args.lengths.split(",")))
        log(f"== {len(cases)} queries × ({len(engines)} peers + tally)")
        ref = Reference(prep) if args.brute else None
        deadline = t_begin + args.max_minutes * 60
        hard_deadline = t_begin + args.max_minutes * 90
        check_only = args.check_only
        sqldir = os.path.join(work, "sql")
        os.makedirs(sqldir, exist_ok=True)

        for k, case in enumerate(cases):
            now = time.perf_counter()
            if now > hard_deadline:
                log(f"!! 1.5 × --max-minutes reached: {len(cases) - k} queries not run")
                results["skipped"] = [c.name for c in cases[k:]]
                break
            if now > deadline and not check_only:
                log(f"!! --max-minutes reached: the {len(cases) - k} remaining queries are checked, not timed")
                results["untimed"] = [c.name for c in cases[k:]]
                check_only = True
            rec = {**case.to_json(), "ms": {}, "samples_ms": {}, "agree": {}, "notes": []}
            data, first = server.answer(case)
            want = spec.canon_tally(case, data)
            rec["rows"] = len(data) if case.endpoint in spec.LISTS else (
                len(data["series"]) if case.endpoint == "J" else 1)
            probs = spec.check_tally_change_pct(case, data if case.endpoint in spec.LISTS or case.endpoint == "E"
                                                else [])
            if probs:
                rec["notes"] += [f"tally: {p}" for p in probs[:5]]
                results["disagreements"].append({"query": case.name, "params": case.params(), "engine": "tally",
                                                 "wrong": "tally", "detail": probs[:5]})
            brute_answer = []   # computed at most once per query

            def brute():
                nonlocal ref
                if not brute_answer:
                    if ref is None:
                        ref = Reference(prep)
                    brute_answer.append(ref.answer(case))
                    results["brute_runs"] = results.get("brute_runs", 0) + 1
                return brute_answer[0]

            if args.brute:
                bw = brute()
                diff = spec.first_difference(bw, want)
                if diff:
                    rec["notes"].append(f"tally vs brute force: {diff}")
                    results["disagreements"].append({"query": case.name, "params": case.params(),
                                                     "engine": "tally", "wrong": "tally",
                                                     "kind": order_only(bw, want),
                                                     "detail": f"brute force (expected) vs tally (got): {diff}"})
            for e in engines:
                q = sql.build(e.sqldialect, case, args.sql_form)
                with open(os.path.join(sqldir, f"{k:03d}-{e.name}.sql"), "w") as f:
                    f.write(f"-- {case.name}\n{q};\n")
                got = spec.canon_sql(case, e.query(q))
                diff = spec.first_difference(want, got)
                rec["agree"][e.name] = diff is None
                if diff:
                    can_arbitrate = brute_answer or results.get("brute_runs", 0) < args.brute_max
                    bw = brute() if can_arbitrate else None
                    wrong = ([n for n, a in (("tally", want), (e.name, got)) if a != bw] if can_arbitrate
                             else ["not arbitrated (--brute-max reached)"])
                    detail = {"kind": order_only(want, got),
                              "tally_vs_engine": f"tally (expected) vs {e.name} (got): {diff}",
                              "wrong": wrong or ["both agree with brute force?"],
                              "brute_vs_wrong": [f"{n}: " + (spec.first_difference(bw, a) or "")
                                                 for n, a in (("tally", want), (e.name, got))
                                                 if bw is not None and a != bw]}
                    rec["notes"].append(f"{e.name}: {diff}; wrong: {','.join(detail['wrong'])}")
                    results["disagreements"].append({"query": case.name, "params": case.params(),
                                                     "engine": e.name, **detail})
                    log(f"!! {case.name}: {e.name} disagrees: {diff} -> wrong: {detail['wrong']}")
                if not check_only:
                    med, samples = timed(lambda: e.query(q), args.runs, args.budget)
                    rec["ms"][e.name] = med * 1000
                    rec["samples_ms"][e.name] = [round(s * 1000, 3) for s in samples]
            if not check_only:
                med, samples = timed(lambda: server.fetch(case), args.runs, args.budget)
                rec["ms"]["tally"] = med * 1000
                rec["samples_ms"]["tally"] = [round(s * 1000, 3) for s in samples]
                if case.endpoint in spec.LISTS:
                    med, _ = timed(lambda: server.fetch(case, page_size=50, first_page_only=True), args.runs,
                                   args.budget)
                    rec["ms"]["tally_page1"] = med * 1000
            results["cases"].append(rec)
            status = "ok" if all(rec["agree"].values()) and not rec["notes"] else "DIFF"
            log(f"[{k + 1}/{len(cases)}] {case.name:<34} rows {rec['rows']:>6}  "
                + "  ".join(f"{n} {fmt_ms(v / 1000)}" for n, v in rec["ms"].items()) + f"  {status}")

        timed_cases = [(rec, case) for rec, case in zip(results["cases"], cases) if rec["ms"]]
        if timed_cases and tally.has_bench(binary):
            server.close()   # the in-process timing runs alone
            server = None
            log(f"== tally bench: {len(timed_cases)} queries in process (--runs {args.runs})")
            b = tally.bench(binary, prep.plain, [c for _, c in timed_cases], args.runs, work)
            results["bench_wall_s"] = b["wall_s"]
            log(f"   done in {b['wall_s']:.1f} s (its own load included)")
            for rec, case in timed_cases:
                x = b["by_name"].get(case.name)
                if x is None:
                    rec["notes"].append("tally bench: no result")
                    continue
                rec["bench"] = {k: v for k, v in x.items() if k != "id"}
                if x.get("status") != 200:
                    rec["notes"].append(f"tally bench: status {x.get('status')}")
                    results["disagreements"].append({"query": case.name, "params": case.params(),
                                                     "engine": "tally", "wrong": "tally bench",
                                                     "detail": f"tally bench status {x.get('status')}"})
                    continue
                if case.endpoint in spec.LISTS and x.get("rows") != rec["rows"]:
                    rec["notes"].append(f"tally bench: {x.get('rows')} rows, HTTP {rec['rows']}")
                    results["disagreements"].append({"query": case.name, "params": case.params(),
                                                     "engine": "tally", "wrong": "tally bench",
                                                     "detail": f"tally bench {x.get('rows')} rows, "
                                                               f"HTTP {rec['rows']}"})
                rec["ms"]["tally_inproc"] = x["median_ms"]
                if case.endpoint in spec.LISTS:
                    rec["ms"]["tally_inproc_page1"] = x["first_page_median_ms"]
        elif timed_cases:
            log("!! this tally binary has no `bench` command: no in-process timings")
    except KeyboardInterrupt as e:
        log(f"!! interrupted ({e}); stopping everything")
        results["interrupted"] = True
    except Exception as e:   # report what was measured so far, then fail
        import traceback
        log(traceback.format_exc())
        results["error"] = f"{type(e).__name__}: {e}"
        log(f"!! stopped by an error: {results['error']}")
    finally:
        for e in engines:
            try:
                e.close()
            except Exception as x:
                log(f"closing {e.name}: {x}")
        if server:
            server.close()
        if not args.keep and not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
        elif args.keep:
            log(f"kept {work}")

    results["elapsed_s"] = time.perf_counter() - t_begin
    os.makedirs(args.out, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = os.path.join(args.out, f"peers-{stamp}.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=1, default=str)
    shutil.copyfile(path, os.path.join(args.out, "latest.json"))
    print_report(results, [e.name for e in engines])
    print(f"\nresults: {path}")
    if args.charts and results["cases"] and not args.check_only:
        import charts
        for p in charts.make(results, args.charts):
            print(f"chart: {p}")
    if results.get("error"):
        print(f"\nERROR: {results['error']}")
        return 2
    return 1 if results["disagreements"] else 0


def machine():
    info = {"cpus": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            info["mem_kb"] = int(f.readline().split()[1])
    except OSError:
        pass
    return info


def print_report(r, names):
    print(f"\nTally vs peers on {r['dump']} ({r.get('usage_rows', 0):,} usage rows), {r['started']}")
    print(f"versions: " + "; ".join(f"{k} {v}" for k, v in r["versions"].items()))
    if r.get("generate"):
        g = r["generate"]
        print(f"dump generated: tally generate --scale {g['scale']} --seed {g['seed']} in {g['generate_s']:.1f} s"
              f" ({g['output'].splitlines()[-1] if g['output'] else ''})")
    if r.get("prepare_s") is not None:
        print(f"plain CSV prepared in {r['prepare_s']:.1f} s; whole run {r.get('elapsed_s', 0) / 60:.1f} min")
    print("\nload (usage rows from the same plain CSV files) and resident size")
    print(f"{'engine':<10} {'M rows/s':>9} {'load s':>8}  {'MB':>8} {'bytes/row':>9} {'x tally':>8}  notes")
    tb = r["size"].get("tally", {}).get("bytes_per_row")
    for n in ["tally"] + names:
        ld, sz = r["load"].get(n, {}), r["size"].get(n, {})
        if not ld:
            continue
        extra = ", ".join(f"{k} {v:.2f}" for k, v in ld.items() if k.endswith("_s") and k not in ("load_s", "rows_per_s"))
        bpr = sz.get("bytes_per_row")
        ratio = f"{bpr / tb:.1f}" if bpr and tb else "-"
        mb = (bpr or 0) * r.get("usage_rows", 0) / 1e6
        print(f"{n:<10} {ld.get('rows_per_s', 0) / 1e6:>9.2f} {ld.get('load_s', 0):>8.2f}  "
              f"{mb:>8.1f} {bpr or 0:>9.1f} {ratio:>8}  {extra}")
    cases = r["cases"]
    if not cases:
        return
    timing = any(c["ms"] for c in cases)
    inproc = any("tally_inproc" in c["ms"] for c in cases)
    print("\nlatency, warm median ms. http = Tally over HTTP on one keep-alive connection, full list over all"
          " pages of 200 (Python client); inproc = `tally bench`, the same requests in process through the API"
          " core, all pages of 200; p1 = the first page of 50 alone.")
    print("peer cells: ms ×(peer / Tally http) ×(peer / Tally inproc)")
    hdr = (f"{'query':<36} {'rows':>6} {'http':>8} {'p1':>7} {'inproc':>8} {'p1':>7}"
           + "".join(f" {n:>24}" for n in names) + "  answers")
    print(hdr)
    print("-" * len(hdr))

    def cell(key, c):
        v = c["ms"].get(key)
        return fmt_ms(v / 1000) if v is not None else ""

    for c in cases:
        t, ti = c["ms"].get("tally"), c["ms"].get("tally_inproc")
        line = (f"{c['name']:<36} {c['rows']:>6} {cell('tally', c) or '-':>8} {cell('tally_page1', c):>7}"
                f" {cell('tally_inproc', c) or ('-' if inproc else ''):>8} {cell('tally_inproc_page1', c):>7}")
        for n in names:
            v = c["ms"].get(n)
            if v:
                txt = f"{fmt_ms(v / 1000)} {fmt_x(v / t) if t else '-'} {fmt_x(v / ti) if ti else '-'}"
            else:
                txt = "-" if timing else ""
            line += f" {txt:>24}"
        bad = [n for n, ok in c["agree"].items() if not ok]
        line += "  " + ("equal" if not bad and not c["notes"] else "DIFF " + ",".join(bad or ["tally"]))
        print(line)
    if timing:
        groups = defaultdict(lambda: defaultdict(list))

        def group_of(c):
            return f"{c['days']}d{' cmp' if c['compare'] else ''}"

        for c in cases:
            t, ti = c["ms"].get("tally"), c["ms"].get("tally_inproc")
            for g in (group_of(c), "all"):
                if t and ti:
                    groups[g]["http/inproc"].append(t / ti)
                for n in names:
                    if c["ms"].get(n) and t:
                        groups[g][n + " http"].append(c["ms"][n] / t)
                    if c["ms"].get(n) and ti:
                        groups[g][n + " inproc"].append(c["ms"][n] / ti)
        print("\ngeometric mean of peer / Tally ratios per period class (vs Tally over HTTP | vs Tally in process);"
              " http/inproc = Tally's HTTP time over its in-process time")
        print(f"{'group':<10} {'queries':>7}" + "".join(f" {n + ' http':>14} {n + ' inproc':>16}" for n in names)
              + f" {'http/inproc':>12}")
        for g in sorted(groups, key=lambda x: (x == "all", x)):
            nq = max((len(v) for v in groups[g].values()), default=0)
            print(f"{g:<10} {nq:>7}" + "".join(f" {geo(groups[g][n + ' http']):>14} {geo(groups[g][n + ' inproc']):>16}"
                                               for n in names) + f" {geo(groups[g]['http/inproc']):>12}")
        print_aims(r, names)
    print(f"\n{len(cases)} queries; {sum(all(c['agree'].values()) and not c['notes'] for c in cases)} with every "
          f"answer equal; {len(r['disagreements'])} disagreements"
          + (f"; {len(r['untimed'])} checked but not timed (--max-minutes)" if r.get("untimed") else "")
          + (f"; {len(r['skipped'])} skipped" if r.get("skipped") else ""))
    grouped = {}
    for dd in r["disagreements"]:
        key = (dd["query"], dd.get("kind", "value"), str(dd.get("wrong")))
        g = grouped.setdefault(key, {"engines": [], "dd": dd})
        g["engines"].append(dd["engine"])
    for (q, kind, wrong), g in list(grouped.items())[:30]:
        dd = g["dd"]
        detail = dd.get("tally_vs_engine") or dd.get("detail")
        if dd["engine"] != "tally":
            detail = detail.replace(f"vs {dd['engine']} (got)", "vs peer (got)")
        print(f"  {q} [{kind}; {', '.join(g['engines'])}]: {detail} -> wrong: {wrong}")
    if len(grouped) > 30:
        print(f"  … {len(grouped) - 30} more in the results JSON")


AIMS = {"duckdb": 100, "chdb": 30, "postgres": 1000}   # issue 5: 366-day queries with comparison


def print_aims(r, names):
    """Issue 5's aims against the measured figures."""
    cases = [c for c in r["cases"] if c["days"] == 366 and c["compare"]]
    print("\naims (issue 5): 366-day queries with comparison, peer / Tally ratio:"
          " geometric mean, min (the query), share of queries meeting the aim")
    for n in names:
        if n not in AIMS:
            continue
        for key, label in (("tally_inproc", "in process"), ("tally", "HTTP")):
            xs = [(c["ms"][n] / c["ms"][key], c["name"]) for c in cases if c["ms"].get(n) and c["ms"].get(key)]
            if not xs:
                continue
            lo = min(xs)
            met = sum(x >= AIMS[n] for x, _ in xs)
            g = math.exp(sum(math.log(x) for x, _ in xs) / len(xs))
            print(f"  {n:<9} aim ≥ ×{AIMS[n]:<5} Tally {label:<10}: gmean {fmt_x(g):>7}, min {fmt_x(lo[0]):>7}"
                  f" ({lo[1]}), {met}/{len(xs)} met -> {'MET' if met == len(xs) else 'gmean met' if g >= AIMS[n] else 'SHORT'}")
    tb = r["size"].get("tally", {}).get("bytes_per_row")
    peers = [(r["size"][n]["bytes_per_row"], n) for n in names if r["size"].get(n, {}).get("bytes_per_row")]
    if tb and peers:
        b, n = min(peers)
        print(f"  size      aim ≥ ×5 smaller than the smallest peer ({n}, {b:.1f} bytes/row): Tally {tb:.1f} bytes/row"
              f" = ×{b / tb:.1f} smaller -> {'MET' if b / tb >= 5 else 'SHORT'}")
    tl, dl = r["load"].get("tally", {}).get("rows_per_s"), r["load"].get("duckdb", {}).get("rows_per_s")
    if tl and dl:
        print(f"  load      aim ≥ DuckDB read_csv ({dl / 1e6:.2f} M rows/s): Tally {tl / 1e6:.2f} M rows/s"
              f" = ×{tl / dl:.2f} -> {'MET' if tl >= dl else 'SHORT'}")


def fmt_x(x: float) -> str:
    return f"×{x:.2f}" if x < 1 else f"×{x:.1f}" if x < 10 else f"×{x:.0f}"


def order_only(a, b) -> str:
    """'order' when two list answers hold the same rows in another order, else 'value'."""
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        if sorted(map(repr, a)) == sorted(map(repr, b)):
            return "order"
    return "value"


def geo(xs):
    if not xs:
        return "-"
    return f"×{math.exp(sum(math.log(x) for x in xs) / len(xs)):.1f}"


if __name__ == "__main__":
    sys.exit(main())
