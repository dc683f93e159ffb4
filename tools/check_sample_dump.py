#!/usr/bin/env python3
"""Check Tally's bundled sample dump (data/sample/) against SPEC §1, §2 and §6.

Loads every table into an in-memory SQLite database with its own RFC 4180 reader (an empty
unquoted field is NULL, a quoted "" is an empty string), reading .csv.gz with gzip and .csv.lz4
through `lz4 -dc`, then computes with plain SQL (COUNT(DISTINCT ...)) the numbers the seeds'
examples show, and asserts them, together with the manifest (row counts, SHA-256) and the edge
cases the dump is meant to carry. Standard library only.

Run: python3 tools/check_sample_dump.py [dump-folder]     (exit status 1 on any failure)
"""
import gzip
import hashlib
import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DUMP = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "data" / "sample"
ACME = "aa7cf840-9ca9-46a3-9778-9015d6580d50"
FEB, JAN = ("2026-02-01", "2026-02-28"), ("2026-01-01", "2026-01-31")
# Seed 000 (endpoint F): app -> (apps.id, Feb users, Jan users or None, Feb usage level)
AI_EXPECTED = {
    "ChatGPT": ("a1b2c3d4-0001-4000-8000-000000000001", 52, 46, "heavy"),
    "Jasper": ("a1b2c3d4-0002-4000-8000-000000000002", 40, 37, "heavy"),
    "Bard": ("a1b2c3d4-0003-4000-8000-000000000003", 35, 36, "medium"),
    "Claude": ("a1b2c3d4-0004-4000-8000-000000000004", 28, None, "light")}
# Seed 001 (endpoint B, is_approved=false): department -> (id, (users Feb, Jan), (apps Feb, Jan))
DEPT_EXPECTED = {
    "Engineering": ("e2b3c4d5-f6a7-8901-bcde-f12345678901", (34, 31), (6, 5)),
    "Product": ("d1a2b3c4-e5f6-7890-abcd-ef1234567890", (22, 20), (5, 5)),
    "Design": ("f3c4d5e6-a7b8-9012-cdef-123456789012", (18, 19), (4, 3)),
    "Marketing": ("a4d5e6f7-b8c9-0123-defa-234567890123", (15, 14), (3, 2)),
    "Sales": ("b5e6f7a8-c9d0-1234-efab-345678901234", (12, 10), (2, 2))}
UUID_COLUMNS = {"id", "client_id", "user_id", "application_id", "catalog_application_id",
                "category_id", "vendor_id", "department_id"}
FIELD = re.compile(r'(?:"((?:[^"]|"")*)"|([^,"\r\n]*))(,|\r\n|\n|\Z)')
failures = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        failures.append(what)


def parse_csv(text):
    """RFC 4180 records; None for an empty unquoted field, '' for a quoted empty one."""
    records, row, pos = [], [], 0
    while pos < len(text):
        m = FIELD.match(text, pos)
        if not m or m.end() == pos:
            raise ValueError(f"bad CSV at offset {pos}")
        quoted, plain, sep = m.groups()
        row.append(quoted.replace('""', '"') if quoted is not None else plain or None)
        pos = m.end()
        if sep != ",":
            records.append(row)
            row = []
    return records


def read_bytes(rel):
    data = (DUMP / rel).read_bytes()
    if rel.endswith(".gz"):
        return gzip.decompress(data)
    if rel.endswith(".lz4"):
        return subprocess.run(["lz4", "-dc", str(DUMP / rel)], check=True, capture_output=True).stdout
    return data


def to_bool(v):
    return {"true": 1, "t": 1, "1": 1, "false": 0, "f": 0, "0": 0}[v.lower()]


def load(db, manifest):
    raw = {}
    for table, rels in manifest["tables"].items():
        for rel in rels:
            data = read_bytes(rel)
            raw[rel] = data
            header, *records = parse_csv(data.decode("utf-8"))
            meta = manifest["files"][rel]
            check(meta["rows"] == len(records), f"{rel}: {len(records)} records, manifest says {meta['rows']}")
            check(meta["sha256"] == hashlib.sha256((DUMP / rel).read_bytes()).hexdigest(), f"{rel}: sha256 matches")
            cols = ", ".join(f'"{c}"' for c in header)
            db.execute(f"CREATE TABLE IF NOT EXISTS {table} ({cols})")
            fixed = []
            for r in records:
                assert len(r) == len(header), (rel, r)
                fixed.append([v.lower() if c in UUID_COLUMNS and v else
                              to_bool(v) if c.startswith("is_") else v for c, v in zip(header, r)])
            marks = ", ".join("?" * len(header))
            db.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", fixed)
            if table == "app_usage_reports":
                raw[rel + ":header"] = header
    return raw


def q(db, sql, *args):
    return db.execute(sql, args).fetchall()


def level(user_days, users, days):  # SPEC §2, exact integer comparison
    return "heavy" if 7 * user_days >= 3 * users * days else "medium" if 7 * user_days >= users * days else "light"


AI_SQL = """SELECT a.id, ca.canonical_name, COUNT(DISTINCT u.user_id),
                   COUNT(DISTINCT u.user_id || '/' || u.activity_date)
            FROM app_usage_reports u JOIN apps a ON a.id = u.application_id
            JOIN catalog_applications ca ON ca.id = a.catalog_application_id
            JOIN catalog_categories cc ON cc.id = ca.category_id
            WHERE cc.is_ai = 1 AND u.client_id = ? AND u.activity_date BETWEEN ? AND ?
            GROUP BY a.id"""
DEPT_SQL = """SELECT d.id, d.name, COUNT(DISTINCT u.user_id), COUNT(DISTINCT u.application_id)
              FROM app_usage_reports u JOIN apps a ON a.id = u.application_id
              JOIN user_departments ud ON ud.user_id = u.user_id
              JOIN departments d ON d.id = ud.department_id
              WHERE a.is_approved = 0 AND u.client_id = ? AND u.activity_date BETWEEN ? AND ?
              GROUP BY d.id"""


def check_seed_targets(db):
    feb = {r[1]: r for r in q(db, AI_SQL, ACME, *FEB)}
    jan = {r[1]: r for r in q(db, AI_SQL, ACME, *JAN)}
    check(sorted(feb) == sorted(AI_EXPECTED), f"F: AI apps active in Feb 2026 are {sorted(feb)}")
    for name, (app_id, users_feb, users_jan, lvl) in AI_EXPECTED.items():
        got = feb.get(name, (None, name, 0, 0))
        got_jan = jan[name][2] if name in jan else None
        got_lvl = level(got[3], got[2], 28) if got[2] else None
        check(got[0] == app_id, f"F: {name} apps.id {got[0]}")
        check((got[2], got_jan, got_lvl) == (users_feb, users_jan, lvl),
              f"F: {name} users Feb {got[2]} / Jan {got_jan}, level {got_lvl} "
              f"(score {got[3] / max(got[2], 1) / 4:.2f} days/week)")
    feb = {r[1]: r for r in q(db, DEPT_SQL, ACME, *FEB)}
    jan = {r[1]: r for r in q(db, DEPT_SQL, ACME, *JAN)}
    check(sorted(feb) == sorted(DEPT_EXPECTED), f"B: departments with unapproved usage in Feb: {sorted(feb)}")
    fin = jan.get("Finance", (None, "Finance", 0, 0))[2:]
    check(fin == (4, 2), f"B: Finance absent in Feb; in Jan {fin[0]} users, {fin[1]} apps")
    for name, (dept_id, users, apps) in DEPT_EXPECTED.items():
        f, j = feb.get(name, (None, name, 0, 0)), jan.get(name, (None, name, 0, 0))
        check(f[0] == dept_id and (f[2], j[2]) == users and (f[3], j[3]) == apps,
              f"B: {name} users {f[2]}/{j[2]}, apps {f[3]}/{j[3]}")
    first = dict(q(db, """SELECT ca.canonical_name, MIN(u.activity_date) FROM app_usage_reports u
                          JOIN apps a ON a.id = u.application_id
                          JOIN catalog_applications ca ON ca.id = a.catalog_application_id
                          WHERE u.client_id = ? GROUP BY a.id""", ACME))
    check(first.get("Claude", "")[:7] == "2026-02", f"I: Claude first seen {first.get('Claude')}")
    check(first.get("Perplexity", "")[:7] == "2026-03", f"I: Perplexity first seen {first.get('Perplexity')}")
    in_none = q(db, """SELECT COUNT(*) FROM users WHERE client_id = ? AND id NOT IN
                       (SELECT user_id FROM user_departments)""", ACME)[0][0]
    in_two = q(db, """SELECT COUNT(*) FROM (SELECT ud.user_id FROM user_departments ud JOIN users us
                      ON us.id = ud.user_id WHERE us.client_id = ? GROUP BY ud.user_id
                      HAVING COUNT(*) > 1)""", ACME)[0][0]
    check(in_none >= 8 and in_two >= 5, f"Acme: {in_none} users in no department, {in_two} in two")
    unapproved = q(db, """SELECT COUNT(*) FROM apps a JOIN catalog_applications ca
                          ON ca.id = a.catalog_application_id LEFT JOIN catalog_categories cc
                          ON cc.id = ca.category_id WHERE a.client_id = ? AND a.is_approved = 0
                          AND COALESCE(cc.is_ai, 0) = 0""", ACME)[0][0]
    check(unapproved >= 8, f"Acme: {unapproved} unapproved non-AI apps")


# ---------------------------------------------------------------- SPEC §3b and §3c on the sample
# The story users and the Vandelay client of tools/make_sample_dump.py. Windows end on as_of:
# "the last N days" is [as_of - N + 1, as_of]. Acme's as_of (its newest date) is also the store's.
VANDELAY = "5f0c1a2e-7d3b-4c8e-9a61-0b2d4e6f8a10"
AS_OF = "2026-03-15"
# report -> {email local part (without Acme's number): expected row}, Acme as of 2026-03-15
STORIES = {"hana.okafor", "mateo.rossi", "ingrid.holm", "tomas.novak", "leila.haddad", "oskar.lind",
           "priya.raman", "kwame.mensah", "sofia.brandt", "yuki.tanaka", "ana.costa", "grace.whitfield",
           "ravi.shah"}
LEFT = {"tomas.novak": ("2026-01-12", 62), "leila.haddad": ("2025-12-05", 100)}  # is_active false
ACME_CHURN = {7: {"hana.okafor": ("2026-03-05", 10), "mateo.rossi": ("2026-02-24", 19),
                  "ingrid.holm": ("2026-02-06", 37), **LEFT},
              14: {"mateo.rossi": ("2026-02-24", 19), "ingrid.holm": ("2026-02-06", 37), **LEFT},
              30: {"ingrid.holm": ("2026-02-06", 37), **LEFT}}
ACME_CHURN_TOTAL = {7: 11, 14: 9, 30: 8}  # with five other users who left and one quiet one
ACME_REENGAGED = {7: {"oskar.lind": ("2026-03-10", "2026-02-26", 11), "priya.raman": ("2026-03-12", "2026-01-20", 50)},
                  30: {"kwame.mensah": ("2026-02-20", "2026-01-09", 41)}}
# growth: window -> (added, removed) and the story users among them
ACME_GROWTH = {30: (2, 1, {"sofia.brandt"}, {"ingrid.holm"}),
               60: (3, 4, {"sofia.brandt", "yuki.tanaka"}, {"tomas.novak", "leila.haddad"}),
               90: (4, 3, {"sofia.brandt", "yuki.tanaka", "ana.costa"}, {"leila.haddad"})}
# users.created_at as written -> RFC 3339 UTC (SPEC §3b UserRow), computed independently below
CREATED_UTC = {"hana.okafor": "2025-10-04T07:30:00Z", "mateo.rossi": "2025-08-01T14:12:45.25Z",
               "ingrid.holm": "2025-05-09T15:05:00.5Z", "tomas.novak": "2025-04-04T07:00:00Z",
               "oskar.lind": "2025-10-31T15:00:00.75Z", "priya.raman": "2025-06-30T16:10:05.123Z",
               "sofia.brandt": "2026-03-02T09:45:10.12Z", "yuki.tanaka": "2026-01-26T09:15:00Z",
               "ana.costa": "2025-12-19T19:20:00.123457Z", "grace.whitfield": "2025-03-04T10:39:26.5Z",
               "ravi.shah": "2026-03-14T08:00:00Z", "rohan.das": "2025-05-31T19:45:00Z",
               "divya.pillai": "2025-06-01T18:30:00.999999Z", "lakshmi.menon": "2026-03-10T07:30:00Z"}
TIMESTAMP = re.compile(r"(\d{4}-\d\d-\d\d)[T ](\d\d):(\d\d)(?::(\d\d)(?:[.,](\d+))?)?(Z|[+-]\d\d(?::?\d\d)?)?")


def utc_rfc3339(text):
    """A created_at value in UTC, RFC 3339 with Z, fraction rounded to the microsecond, zeros dropped."""
    import datetime as dt
    from decimal import Decimal, ROUND_HALF_EVEN
    m = TIMESTAMP.fullmatch(text)
    day, hh, mm, ss, frac, off = m.groups()
    micro = int((Decimal("0." + (frac or "0")) * 10**6).to_integral_value(ROUND_HALF_EVEN))
    t = dt.datetime.fromisoformat(f"{day}T{hh}:{mm}:{ss or '00'}") + dt.timedelta(microseconds=micro)
    if off and off != "Z":
        sign, digits = (1 if off[0] == "+" else -1), off[1:].replace(":", "")
        t -= sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
    out = t.strftime("%Y-%m-%dT%H:%M:%S")
    if t.microsecond:
        out += ("." + "%06d" % t.microsecond).rstrip("0")
    return out + "Z"


def local(email):
    """The e-mail's local part without Acme's trailing number (story users are named by it)."""
    return re.sub(r"\d+$", "", email.split("@")[0])


def insights(db):
    """Tables the §3b/§3c checks read: distinct active days per user, and per user first/last day."""
    db.execute("CREATE TEMP TABLE act AS SELECT DISTINCT client_id, user_id, activity_date AS d FROM app_usage_reports")
    db.execute("CREATE INDEX act_c ON act (client_id, user_id, d)")


def churn(db, client, as_of, n):
    """P: users with activity before the last n days and none in them -> {email: (last, days_inactive)}."""
    return {e: (last, gap) for e, last, gap in q(db, """
        SELECT us.email, MAX(a.d), CAST(julianday(?) - julianday(MAX(a.d)) AS INTEGER)
        FROM act a JOIN users us ON us.id = a.user_id WHERE a.client_id = ? AND a.d <= ?
        GROUP BY a.user_id HAVING MAX(a.d) < date(?, ?)""", as_of, client, as_of, as_of, f"-{n - 1} days")}


def reengaged(db, client, as_of, n):
    """Q: active in W1 (last n days), none in W0 (the n before), some before -> {email: row}."""
    w1, w0 = f"-{n - 1} days", f"-{2 * n - 1} days"
    return {e: (on, prev, int(gap)) for e, on, prev, gap in q(db, """
        SELECT email, mn, mx, julianday(mn) - julianday(mx) - 1 FROM (
          SELECT us.email, MIN(CASE WHEN a.d >= date(?1, ?2) THEN a.d END) mn,
                 MAX(CASE WHEN a.d < date(?1, ?3) THEN a.d END) mx,
                 SUM(a.d >= date(?1, ?3) AND a.d < date(?1, ?2)) w0
          FROM act a JOIN users us ON us.id = a.user_id WHERE a.client_id = ?4 AND a.d <= ?1
          GROUP BY a.user_id) WHERE mn IS NOT NULL AND mx IS NOT NULL AND w0 = 0""", as_of, w1, w0, client)}


def growth(db, client, as_of, n):
    """§3c growth: users first active in the last n days; users last active in the n days before."""
    rows = q(db, """SELECT us.email, MIN(a.d) >= date(?1, ?2),
                           MAX(a.d) >= date(?1, ?3) AND MAX(a.d) < date(?1, ?2)
                    FROM act a JOIN users us ON us.id = a.user_id WHERE a.client_id = ?4 AND a.d <= ?1
                    GROUP BY a.user_id""", as_of, f"-{n - 1} days", f"-{2 * n - 1} days", client)
    return {e for e, add, _ in rows if add}, {e for e, _, rem in rows if rem}


def client_reports(db, as_of, n_churn, n_reeng):
    """§3c over clients: churned clients {name: last}, re-engaged clients {name: (on, previous)}."""
    per = q(db, """SELECT c.name, MAX(a.d),
                          MIN(CASE WHEN a.d >= date(?1, ?3) THEN a.d END),
                          MAX(CASE WHEN a.d < date(?1, ?4) THEN a.d END),
                          SUM(a.d >= date(?1, ?4) AND a.d < date(?1, ?3))
                   FROM act a JOIN clients c ON c.id = a.client_id WHERE a.d <= ?1 GROUP BY c.id""",
            as_of, None, f"-{n_reeng - 1} days", f"-{2 * n_reeng - 1} days")
    churned = {name: last for name, last, *_ in per
               if last < q(db, "SELECT date(?, ?)", as_of, f"-{n_churn - 1} days")[0][0]}
    back = {name: (on, prev) for name, _, on, prev, w0 in per if on and prev and w0 == 0}
    return churned, back


def check_insights(db, ids):
    insights(db)
    acme_as_of = q(db, "SELECT MAX(d) FROM act WHERE client_id = ?", ACME)[0][0]
    check(acme_as_of == AS_OF == q(db, "SELECT MAX(d) FROM act")[0][0], f"Acme's and the store's newest date {acme_as_of}")
    # R1: licensed seats and utilization (Acme 150 seats, Globex NULL, Vandelay 12)
    for cid, name in ((ACME, "Acme"), (VANDELAY, "Vandelay")):
        seats, as_of = q(db, """SELECT CAST(licensed_seats AS INTEGER), (SELECT MAX(d) FROM act WHERE client_id = ?1)
                                FROM clients WHERE id = ?1""", cid)[0]
        active = q(db, "SELECT COUNT(DISTINCT user_id) FROM act WHERE client_id = ? AND d BETWEEN date(?, '-29 days') AND ?",
                   cid, as_of, as_of)[0][0]
        check(60 <= 100 * active / seats <= 90, f"R1: {name} as of {as_of}: {active} of {seats} seats active "
              f"in 30 days ({100 * active / seats:.1f} %)")
    # K: roles and departments
    roles = dict(q(db, "SELECT COALESCE(role, 'NULL'), COUNT(*) FROM users GROUP BY role"))
    check({"owner", "admin", "member", "viewer", "NULL"} <= set(roles), f"K: roles {roles}")
    owners = q(db, "SELECT c.name FROM users u JOIN clients c ON c.id = u.client_id WHERE role = 'owner' ORDER BY c.name")
    check([o for o, in owners] == ["Acme Corp", "Globex", "Vandelay Industries"], f"K: one owner at {[o for o, in owners]}")
    v_none, v_two = q(db, """SELECT SUM(n = 0), SUM(n > 1) FROM (SELECT u.id, COUNT(ud.user_id) n FROM users u
                             LEFT JOIN user_departments ud ON ud.user_id = u.id WHERE u.client_id = ? GROUP BY u.id)""",
                      VANDELAY)[0]
    check((v_none, v_two) == (2, 1), f"K: Vandelay has {v_none} users in no department, {v_two} in two")
    members = dict(q(db, """SELECT d.name, COUNT(ud.user_id) FROM departments d LEFT JOIN user_departments ud
                            ON ud.department_id = d.id WHERE d.client_id = ? GROUP BY d.id""", VANDELAY))
    check(members == {"Imports": 4, "Exports": 4, "Logistics": 0}, f"M1: Vandelay members {members}")
    never = q(db, "SELECT email FROM users WHERE client_id = ? AND id NOT IN (SELECT user_id FROM act)", ACME)
    check([local(e) for e, in never] == ["ravi.shah"], f"K: Acme users without activity {[e for e, in never]}")
    # P, Q and growth for Acme as of 2026-03-15
    for n, want in ACME_CHURN.items():
        got = churn(db, ACME, AS_OF, n)
        stories = {local(e): v for e, v in got.items() if local(e) in STORIES}
        check(stories == want and len(got) == ACME_CHURN_TOTAL[n],
              f"P: Acme churn {n} days: {len(got)} users, stories {stories}")
    for n, want in ACME_REENGAGED.items():
        got = {local(e): v for e, v in reengaged(db, ACME, AS_OF, n).items()}
        check(got == want, f"Q: Acme re-engaged ({n} days): {got}")
    for n, (added, removed, story_added, story_removed) in ACME_GROWTH.items():
        a, r = growth(db, ACME, AS_OF, n)
        la, lr = {local(e) for e in a}, {local(e) for e in r}
        check((len(a), len(r)) == (added, removed) and story_added <= la and story_removed <= lr,
              f"growth {n}: Acme added {len(a)} {sorted(la)}, removed {len(r)} {sorted(lr)}")
    # §3c over clients as of the store's newest date
    for n, want in ((7, {"Globex": "2024-12-31", "Initech": "2026-03-04"}), (14, {"Globex": "2024-12-31"}),
                    (30, {"Globex": "2024-12-31"})):
        got = client_reports(db, AS_OF, n, 7)[0]
        check(got == want, f"clients/churn {n}: {got}")
    for n, want in ((7, ("2026-03-09", "2026-02-27")), (30, ("2026-02-23", "2025-12-19"))):
        got = client_reports(db, AS_OF, 7, n)[1]
        check(got == {"Vandelay Industries": want}, f"clients/reengagement {n}: {got}")
    for n in (30, 60, 90):
        rows = {}
        for cid, name in q(db, "SELECT id, name FROM clients ORDER BY name"):
            a, r = growth(db, cid, AS_OF, n)
            if a or r:
                rows[name] = (len(a), len(r), len(a) - len(r))
        check(rows.get("Vandelay Industries") == {30: (1, 0, 1), 60: (1, 0, 1), 90: (1, 1, 0)}[n],
              f"clients/growth {n} (added, removed, net): {rows}")
    # UserRow.created_at: offsets other than UTC, fractions, no offset at all
    created = {local(e): t for e, t in q(db, "SELECT email, created_at FROM users WHERE created_at IS NOT NULL")}
    check(all(TIMESTAMP.fullmatch(t) for t in created.values()), "every users.created_at is a timestamp")
    got = {k: utc_rfc3339(created[k]) for k in CREATED_UTC}
    check(got == CREATED_UTC, f"created_at in UTC: {[(created[k], got[k]) for k in CREATED_UTC if got[k] != CREATED_UTC[k]]}")
    offsets = sum(1 for t in created.values() if re.search(r"[+-]\d\d(:?\d\d)?$", t) and not t.endswith(("+00", "+00:00")))
    check(offsets >= 15, f"{offsets} created_at values with an offset other than UTC")


def check_shape(db, raw, manifest):
    listed = {p for ps in manifest["tables"].values() for p in ps}
    on_disk = {str(p.relative_to(DUMP)) for p in DUMP.rglob("*") if p.is_file()} - {"manifest.json"}
    check(listed == on_disk == set(manifest["files"]), "manifest lists exactly the files on disk")
    size = sum(p.stat().st_size for p in DUMP.rglob("*") if p.is_file())
    check(size < 8 * 1024 * 1024, f"dump size {size / 1e6:.2f} MB < 8 MiB")
    crlf = sorted(rel for rel, data in raw.items() if not rel.endswith(":header") and b"\r\n" in data)
    check(crlf == ["departments.csv"], f"CRLF line ends only in {crlf}")
    headers = [tuple(raw[rel + ":header"]) for rel in manifest["tables"]["app_usage_reports"]]
    check(len(set(headers)) > 1, "usage parts have different column orders")
    plain = [rel for rel in manifest["tables"]["app_usage_reports"] if rel.endswith(".csv")][0]
    records = parse_csv(raw[plain].decode())
    col = records[0].index("user_id")
    check(all(r[col] == r[col].upper() for r in records[1:]), f"{plain}: user ids in upper case")
    check(q(db, "SELECT COUNT(*) FROM users WHERE display_name = ''")[0][0] == 1, "one display_name is \"\"")
    check(q(db, "SELECT COUNT(*) FROM users WHERE display_name LIKE '%,%'")[0][0] >= 1, "a display_name with a comma")
    check(q(db, """SELECT COUNT(*) FROM departments WHERE description LIKE '%,%'
                   AND description LIKE '%"%'""")[0][0] >= 1, "a description with a comma and a quote")
    check(q(db, "SELECT COUNT(*) FROM users WHERE created_at LIKE '%+00'")[0][0] > 0 and
          q(db, "SELECT COUNT(*) FROM users WHERE created_at LIKE '%T%Z'")[0][0] > 0,
          "users.created_at in both PostgreSQL and ISO 8601 form")
    bad = q(db, """SELECT COUNT(*) FROM app_usage_reports u LEFT JOIN users us ON us.id = u.user_id
                   LEFT JOIN apps a ON a.id = u.application_id
                   WHERE us.client_id IS NOT u.client_id OR a.client_id IS NOT u.client_id""")[0][0]
    check(bad == 0, f"every usage row names a user and an app of its own client ({bad} bad)")
    dup = q(db, """SELECT COUNT(*) - COUNT(DISTINCT client_id || user_id || application_id || activity_date),
                          COUNT(DISTINCT id) = COUNT(*) FROM app_usage_reports""")[0]
    check(10 <= dup[0] <= 30 and dup[1] == 1, f"{dup[0]} exact duplicate usage rows, ids unique")


def report(db):
    clients = q(db, "SELECT id, name FROM clients ORDER BY rowid")
    print("\nclient        users  apps depts usage rows  distinct     first       last")
    for cid, name in clients:
        n_users = q(db, "SELECT COUNT(*) FROM users WHERE client_id = ?", cid)[0][0]
        n_apps = q(db, "SELECT COUNT(*) FROM apps WHERE client_id = ?", cid)[0][0]
        n_depts = q(db, "SELECT COUNT(*) FROM departments WHERE client_id = ?", cid)[0][0]
        rows, distinct, lo, hi = q(db, """SELECT COUNT(*), COUNT(DISTINCT user_id || application_id ||
                                          activity_date), MIN(activity_date), MAX(activity_date)
                                          FROM app_usage_reports WHERE client_id = ?""", cid)[0]
        print(f"{name:12} {n_users:6} {n_apps:5} {n_depts:5} {rows:10} {distinct:9}  {lo or '-':10} {hi or '-':10}")
    total = q(db, "SELECT COUNT(*) FROM app_usage_reports")[0][0]
    print(f"{'total':12} {'':17} {total:10}\n")
    return dict(clients), total


def main():
    manifest = json.loads((DUMP / "manifest.json").read_text())
    check(manifest.get("version") == 1, "manifest version 1")
    db = sqlite3.connect(":memory:")
    raw = load(db, manifest)
    names, total = report(db)
    ids = {v: k for k, v in names.items()}
    check(120_000 <= total <= 200_000, f"{total} usage rows in 120k..200k")
    check_shape(db, raw, manifest)
    check_seed_targets(db)
    check_insights(db, ids)
    acme = q(db, "SELECT name, timezone, licensed_seats FROM clients WHERE id = ?", ACME)
    check(acme == [("Acme Corp", "America/New_York", "150")], f"Acme client row {acme}")
    globex, hooli = ids["Globex"], ids["Hooli"]
    check(q(db, "SELECT timezone, licensed_seats FROM clients WHERE id = ?", globex) == [(None, None)],
          "Globex has NULL timezone and licensed_seats")
    for day in ("2023-12-31", "2024-01-01", "2024-02-29"):
        n = q(db, "SELECT COUNT(*) FROM app_usage_reports WHERE client_id = ? AND activity_date = ?", globex, day)[0][0]
        check(n > 0, f"Globex has {n} rows on {day}")
    check(q(db, "SELECT COUNT(*) FROM departments WHERE client_id = ?", ids["Initech"])[0][0] == 0,
          "Initech has no departments")
    check(q(db, "SELECT COUNT(*) FROM app_usage_reports WHERE client_id = ?", hooli)[0][0] == 0 and
          q(db, "SELECT COUNT(*) FROM apps WHERE client_id = ?", hooli)[0][0] > 0, "Hooli has apps but no usage")
    print(f"\n{len(failures)} failure(s)" if failures else "\nall checks passed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
