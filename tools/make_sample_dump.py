#!/usr/bin/env python3
"""Generate Tally's bundled sample dump in data/sample/ (SPEC §1, §6).

Deterministic: one random.Random(20260221), sets sorted before use, gzip with mtime=0, and the
`lz4` command for the LZ4 part, so two runs give byte-identical files. Standard library only.

Four clients share one catalog:
  * Acme Corp (aa7cf840-…, the seeds' client): a year of history (2025-03-01..2026-03-15) made of
    personal app portfolios, then January and February 2026 rebuilt for the AI apps and for all
    unapproved apps so that seeds 000 and 001 hold exactly (DEPT_PLAN, AI_USERS below);
  * Globex: 2023-11-01..2024-12-31 (a leap day and a year boundary), no timezone or seats;
  * Initech: a dozen users, no departments, rows until 2026-03-04; Hooli: users and apps but no
    usage at all.
Then, from a second generator (STORY_SEED) so that none of the rows above move, the insight stories
of SPEC §3b/§3c: thirteen Acme users who churn, come back, join or leave on known dates (approved
non-AI apps only), and a fifth client, Vandelay Industries, that goes quiet over the new year and
comes back (ACME_STORIES, VANDELAY below). Their created_at values carry non-UTC offsets.

Usage rows go to three parts (gzip, LZ4 frame, plain CSV) with different column orders and row
orders, about 20 exact duplicates, and upper-case user ids in the plain part.
Run: python3 tools/make_sample_dump.py   (check with tools/check_sample_dump.py)
"""
import datetime as dt
import gzip
import hashlib
import json
import re
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
import random

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "data" / "sample"
rng = random.Random(20260221)
D = dt.date.fromisoformat


def new_id():
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def days(a, b):
    return [a + dt.timedelta(n) for n in range((b - a).days + 1)]


# ---------------------------------------------------------------- catalog (shared by all clients)
CATEGORIES = [("AI Assistants", True), ("AI Writing", True), ("Productivity", False),
              ("Communication", False), ("Design Tools", False), ("Developer Tools", False),
              ("Sales & CRM", False)]
VENDORS = ["OpenAI", "Google", "Anthropic", "Microsoft", "Atlassian", "Salesforce", "Adobe"]
# canonical_name/vendor/type per category; a trailing "*" means no logo (logo is NULL)
CATALOG_TEXT = """
AI Assistants: ChatGPT/OpenAI/browser, Bard/Google/browser, Claude/Anthropic/browser,
  Perplexity//browser, Microsoft Copilot/Microsoft/desktop, Midjourney//browser
AI Writing: Jasper//browser, Copy.ai//browser*
Productivity: Notion//desktop, Google Docs/Google/browser, Microsoft Excel/Microsoft/desktop,
  Trello/Atlassian/browser, Asana//browser, Airtable//browser*, Dropbox//desktop
Communication: Slack//desktop, Zoom//desktop, Microsoft Teams/Microsoft/desktop,
  Gmail/Google/browser, Loom//browser, WhatsApp//mobile
Design Tools: Figma//browser, Canva//browser, Adobe Photoshop/Adobe/desktop, Sketch//desktop*,
  Miro//browser
Developer Tools: GitHub/Microsoft/browser, Jira/Atlassian/browser, Postman//desktop,
  Visual Studio Code/Microsoft/desktop, Docker Desktop//desktop*
Sales & CRM: Salesforce/Salesforce/browser, HubSpot//browser, Pipedrive//browser
: Calendly//browser, TikTok//mobile*, Spotify//desktop, Internal Wiki/Atlassian/browser*
"""
CATALOG = []  # (canonical_name, category or None, vendor or None, type, has_logo)
for _line in re.sub(r",\n\s+", ", ", CATALOG_TEXT).strip().splitlines():
    _cat, _apps = _line.split(":", 1)
    for _app in _apps.split(","):
        _name, _vendor, _kind = _app.strip().split("/")
        CATALOG.append((_name, _cat or None, _vendor or None, _kind.rstrip("*"), not _kind.endswith("*")))
AI_NAMES = {name for name, cat, *_ in CATALOG if cat in ("AI Assistants", "AI Writing")}
# Share of a client's users who adopt an app (default 0.12); department affinities raise it.
POPULARITY = {"Slack": 0.9, "Gmail": 0.85, "Zoom": 0.6, "Google Docs": 0.55, "Microsoft Teams": 0.5,
              "ChatGPT": 0.45, "Jira": 0.3, "Bard": 0.3, "Jasper": 0.38, "Notion": 0.25,
              "Claude": 0.25, "Microsoft Excel": 0.35, "Spotify": 0.2, "Perplexity": 0.12}
AFFINITY = {"Engineering": ["GitHub", "Jira", "Visual Studio Code", "Docker Desktop", "Postman"],
            "Platform": ["GitHub", "Jira", "Visual Studio Code", "Postman"],
            "Data Science": ["GitHub", "Microsoft Excel", "Microsoft Copilot"],
            "Design": ["Figma", "Sketch", "Canva", "Miro"], "Product": ["Figma", "Miro", "Jira"],
            "Marketing": ["Canva", "Loom", "HubSpot"], "Sales": ["Salesforce", "Pipedrive"],
            "Field Sales": ["Salesforce", "HubSpot", "WhatsApp"], "Finance": ["Microsoft Excel"]}

FIRST = ("Alice Ben Carla David Elena Farid Grace Hiro Ines Jamal Kate Liam Maya Noah Olga Pedro "
         "Quinn Rosa Sam Tara Umar Vera Wei Ximena Yusuf Zara Aaron Bianca Chen Dana").split()
LAST = ("Smith Johnson Garcia Miller Davis Lopez Wilson Anderson Thomas Moore Martin Lee Perez White "
        "Harris Clark Lewis Young King Wright Scott Green Baker Adams Nelson Hill Campbell Mitchell").split()
# Acme users whose display_name tests CSV quoting, NULL vs "" and non-ASCII text (index -> name).
ACME_SPECIAL_NAMES = {3: ("Nguyen, Thi", "thi.nguyen"), 7: ('Robert "Bob" Jones', "bob.jones"),
                      11: ("", "anonymous"), 15: ("José Álvarez", "jose.alvarez"),
                      19: ("Zoë Ødegaard", "zoe.odegaard"), 23: (None, "svc.backup")}

# ---------------------------------------------------------------- Acme: the seeds' exact targets
ACME_ID = "aa7cf840-9ca9-46a3-9778-9015d6580d50"
SEED_APPS = {  # name: (apps.id, is_approved, is_favorite)  -- seed 000
    "ChatGPT": ("a1b2c3d4-0001-4000-8000-000000000001", True, False),
    "Jasper": ("a1b2c3d4-0002-4000-8000-000000000002", False, False),
    "Bard": ("a1b2c3d4-0003-4000-8000-000000000003", True, True),
    "Claude": ("a1b2c3d4-0004-4000-8000-000000000004", False, False)}
ACME_APPROVED = ["Slack", "Zoom", "Google Docs", "Gmail", "GitHub", "Jira", "Figma", "Salesforce",
                 "Microsoft Teams", "Miro", "Trello", "Spotify"]
ACME_UNAPPROVED = ["Notion", "Postman", "Airtable", "Docker Desktop", "Canva", "Loom", "Sketch",
                   "Pipedrive", "TikTok", "Calendly", "Perplexity", "Copy.ai"]
ACME_DEPTS = [  # seed 001, plus Finance (no unapproved usage in February 2026)
    ("e2b3c4d5-f6a7-8901-bcde-f12345678901", "Engineering", "Software development and infrastructure teams"),
    ("d1a2b3c4-e5f6-7890-abcd-ef1234567890", "Product", "Product management and design"),
    ("f3c4d5e6-a7b8-9012-cdef-123456789012", "Design", "Visual and product design"),
    ("a4d5e6f7-b8c9-0123-defa-234567890123", "Marketing", None),
    ("b5e6f7a8-c9d0-1234-efab-345678901234", "Sales", "Revenue and business development"),
    ("c6f7a8b9-d0e1-4234-8fab-456789012345", "Finance", 'Accounting, payroll and "FP&A"')]
ACME_GROUPS = ([("Engineering",)] * 34 + [("Product",)] * 18 + [("Design",)] * 17
               + [("Marketing",)] * 15 + [("Sales",)] * 12 + [("Finance",)] * 6
               + [("Engineering", "Product")] * 3 + [("Product", "Design")] * 3
               + [("Engineering", "Finance")] + [("Marketing", "Sales")] * 2 + [()] * 10)
JAN, FEB = (D("2026-01-01"), D("2026-01-31")), (D("2026-02-01"), D("2026-02-28"))
# Per department: distinct users with unapproved-app rows (seed 001's user_count) and the
# unapproved apps they use (app_count); "" is the users in no department (not counted by B).
DEPT_PLAN = {
    FEB: {"Engineering": (34, ["Jasper", "Claude", "Notion", "Postman", "Airtable", "Docker Desktop"]),
          "Product": (22, ["Jasper", "Claude", "Notion", "Canva", "Loom"]),
          "Design": (18, ["Jasper", "Claude", "Canva", "Sketch"]),
          "Marketing": (15, ["Jasper", "Claude", "Loom"]), "Sales": (12, ["Jasper", "Pipedrive"]),
          "Finance": (0, []), "": (6, ["Jasper", "Claude", "TikTok", "Notion"])},
    JAN: {"Engineering": (31, ["Jasper", "Notion", "Postman", "Airtable", "Docker Desktop"]),
          "Product": (20, ["Jasper", "Notion", "Postman", "Canva", "Loom"]),
          "Design": (19, ["Jasper", "Canva", "Sketch"]), "Marketing": (14, ["Jasper", "Loom"]),
          "Sales": (10, ["Jasper", "Pipedrive"]), "Finance": (4, ["Jasper", "Airtable"]),
          "": (5, ["Jasper", "TikTok", "Notion"])}}
# AI apps, all users: distinct users and the range of active days each user gets.
AI_USERS = {FEB: {"ChatGPT": (52, 13, 19), "Jasper": (40, 12, 17), "Bard": (35, 4, 10), "Claude": (28, 1, 3)},
            JAN: {"ChatGPT": (46, 10, 17), "Jasper": (37, 9, 16), "Bard": (36, 4, 10)}}
# Acme apps whose rows are limited to a window (Claude is first seen in Feb 2026, Perplexity in March).
ACME_WINDOWS = {"Claude": (D("2026-03-01"), None), "Perplexity": (D("2026-03-02"), None),
                "Copy.ai": (D("2025-04-01"), D("2025-09-30")), "Calendly": (None, D("2025-12-31"))}

# ---------------------------------------------------------------- insight stories (SPEC §3b, §3c)
# Hand-written users whose activity makes every directory and insight endpoint show something on
# the sample. They are drawn from their own generator (STORY_SEED), after everything above, so the
# rows above (and with them the seeds' answers) are the same as without them. Acme's story users
# use approved non-AI apps only, so endpoints B and F for January/February 2026 are untouched.
STORY_SEED = 20260222
# Acme, as of its newest activity date 2026-03-15. Windows: churn 7/14/30 = no activity since
# 03-09 / 03-02 / 02-14; weekly re-engagement W1 = 03-09..03-15, W0 = 03-02..03-08; monthly
# W1 = 02-14..03-15, W0 = 01-15..02-13; growth 30/60/90 = first activity since 02-14 / 01-15 /
# 2025-12-16, removed = last activity in 01-15..02-13 / 2025-11-16..01-14 / 2025-09-17..12-15.
# (display name, local part, departments, role, is_active, created_at as written, activity spans,
#  apps); every span's first and last day has a row, other weekdays at a rate of 0.7.
ACME_STORIES = [
    ("Hana Okafor", "hana.okafor", ("Engineering",), "member", True, "2025-10-03T23:30:00-08:00",
     [("2025-10-06", "2026-03-05")], ["Slack", "GitHub", "Jira"]),               # churn 7 (10 days)
    ("Mateo Rossi", "mateo.rossi", ("Sales",), None, True, "2025-08-01 09:12:45.25-05",
     [("2025-08-04", "2026-02-24")], ["Slack", "Salesforce", "Zoom"]),          # churn 7, 14 (19 days)
    ("Ingrid Holm", "ingrid.holm", ("Marketing",), "admin", True, "2025-05-09T17:05:00.5+02:00",
     [("2025-05-12", "2026-02-06")], ["Gmail", "Google Docs"]),                 # churn 7, 14, 30 (37); removed 30
    ("Tomas Novak", "tomas.novak", ("Finance",), "member", False, "2025-04-04 08:00:00+01",
     [("2025-04-07", "2026-01-12")], ["Gmail", "Microsoft Teams"]),             # left; removed 60
    ("Leila Haddad", "leila.haddad", ("Design",), "member", False, "2025-02-28T10:30:00+03:00",
     [("2025-03-03", "2025-12-05")], ["Figma", "Miro", "Slack"]),               # left; removed 60, 90
    ("Oskar Lind", "oskar.lind", ("Engineering", "Product"), "member", True, "2025-10-31T15:00:00.75Z",
     [("2025-11-03", "2026-02-26"), ("2026-03-10", "2026-03-13")], ["Slack", "Jira"]),  # weekly, 11 days
    ("Priya Raman", "priya.raman", ("Product",), "viewer", True, "2025-06-30 21:40:05.123+05:30",
     [("2025-07-01", "2026-01-20"), ("2026-03-12", "2026-03-13")], ["Slack", "Trello"]),  # weekly, 50 days
    ("Kwame Mensah", "kwame.mensah", (), None, True, "2025-05-30T11:00:00+00:00",
     [("2025-06-02", "2026-01-09"), ("2026-02-20", "2026-03-13")], ["Gmail", "Zoom"]),  # monthly, 41 days
    ("Sofia Brandt", "sofia.brandt", ("Engineering",), "member", True, "2026-03-02T18:45:10.120+09:00",
     [("2026-03-03", "2026-03-13")], ["Slack", "GitHub"]),                      # new: growth 30, 60, 90
    ("Yuki Tanaka", "yuki.tanaka", (), "member", True, "2026-01-26 09:15:00",
     [("2026-01-26", "2026-03-13")], ["Slack", "Google Docs"]),                 # new: growth 60, 90
    ("Ana Costa", "ana.costa", ("Design",), "member", True, "2025-12-19T16:20:00.1234567-03:00",
     [("2025-12-22", "2026-03-13")], ["Figma", "Slack"]),                       # new: growth 90
    ("Grace Whitfield", "grace.whitfield", ("Finance", "Sales"), "owner", True, "2025-03-04 16:09:26.5+05:30",
     [("2025-03-03", "2026-03-13")], ["Slack", "Gmail", "Zoom", "Salesforce"]),  # the owner, a steady user
    ("Ravi Shah", "ravi.shah", (), "member", True, "2026-03-14T08:00:00.000000Z", [], []),  # invited, never active
]
# A fifth client that went quiet over the new year and came back twice: it is the row of the
# admin reports clients/reengagement (weekly and monthly) as of 2026-03-15, and of growth 90 /
# attrition 90 (one user added in March, one removed in October). Its own newest date is 03-13.
VANDELAY = dict(id="5f0c1a2e-7d3b-4c8e-9a61-0b2d4e6f8a10", name="Vandelay Industries", timezone="Asia/Kolkata",
                seats=12, spans=[("2025-06-02", "2025-12-19"), ("2026-02-23", "2026-02-27"), ("2026-03-09", "2026-03-13")],
                apps=[("Slack", True), ("Gmail", True), ("Zoom", True), ("Notion", False), ("ChatGPT", True)],
                depts=[("Imports", "Latex, chips and \"fine\" goods"), ("Exports", None), ("Logistics", "No members yet")])
VANDELAY_USERS = [  # (display, local, departments, role, is_active, created_at, spans or None for the client's)
    ("Art Vandelay", "art", ("Imports", "Exports"), "owner", True, "2025-05-28 10:00:00+05:30", None),
    ("Meera Iyer", "meera.iyer", ("Imports",), "admin", True, "2025-05-29 14:22:03.5+05:30", None),
    ("Arjun Mehta", "arjun.mehta", ("Imports",), "member", True, "2025-05-30 09:41:17.004+05:30", None),
    ("Kavya Nair", "kavya.nair", ("Exports",), "member", True, "2025-05-30T16:00:00+05:30", None),
    ("Rohan Das", "rohan.das", ("Exports",), None, True, "2025-06-01T01:15:00+05:30", None),
    ("Divya Pillai", "divya.pillai", (), "member", True, "2025-06-02 00:00:00.999999+05:30", None),
    ("Sanjay Rao", "sanjay.rao", (), None, True, None, None),
    ("Nikhil Bose", "nikhil.bose", ("Imports",), "member", False, "2025-05-31T23:59:59+05:30",
     [("2025-06-02", "2025-10-31")]),                                               # left in October
    ("Lakshmi Menon", "lakshmi.menon", ("Exports",), "member", True, "2026-03-09T23:30:00-08:00",
     [("2026-03-10", "2026-03-13")]),                                               # joined in March
]
INITECH_LAST_DAY = D("2026-03-04")  # Initech's rows stop here: clients/churn 7 as of 2026-03-15


# ---------------------------------------------------------------- entities
def make_catalog():
    cats = {name: (new_id(), ai) for name, ai in CATEGORIES}
    vendors = {name: new_id() for name in VENDORS}
    apps = {}
    for name, cat, vendor, kind, has_logo in CATALOG:
        logo = "https://cdn.example.com/logos/%s.png" % re.sub(r"[^a-z0-9]", "", name.lower())
        apps[name] = dict(id=new_id(), name=name, logo=logo if has_logo else None, type=kind,
                          category=cats[cat][0] if cat else None, vendor=vendors.get(vendor))
    return cats, vendors, apps


def make_client(name, timezone, seats, start, end, cid=None):
    return dict(id=cid or new_id(), name=name, timezone=timezone, seats=seats, start=start, end=end,
                apps={}, depts={}, users=[])


def add_app(client, name, approved, favorite=None, app_id=None):
    fav = rng.random() < 0.2 if favorite is None else favorite
    client["apps"][name] = dict(id=app_id or new_id(), name=name, approved=approved, favorite=fav)


def created_text(day):
    """users.created_at: PostgreSQL text form for some, ISO 8601 for others, NULL for a few."""
    t = dt.datetime.combine(day, dt.time(rng.randrange(7, 20), rng.randrange(60), rng.randrange(60)))
    style = rng.random()
    if style < 0.08:
        return None
    if style < 0.55:
        frac = rng.choice(["", ".5", ".25", ".123456", ".9"])
        return t.strftime("%Y-%m-%d %H:%M:%S") + frac + "+00"
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def add_users(client, groups, domain, late=0.15, inactive=(), special=None):
    """One user per entry of `groups` (a tuple of department names); returns the new users."""
    users = []
    for i, group in enumerate(groups):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        display, local = f"{first} {last}", f"{first}.{last}".lower()
        if special and i in special:
            display, local = special[i]
        start = client["start"]
        if rng.random() < late:  # joined after the history began
            start += dt.timedelta(rng.randrange((client["end"] - start).days * 2 // 3))
        created = created_text(start - dt.timedelta(rng.randrange(0, 400) if start == client["start"] else 0))
        role = rng.choices(["member", "viewer", "admin", None], [70, 15, 5, 10])[0]
        users.append(dict(id=new_id(), email=f"{local}{len(client['users']) + i + 1}@{domain}",
                          display=display, active=True, role=role, created=created,
                          start=start, end=client["end"], depts=group))
    for i in inactive:  # left the company: no usage after `end`
        users[i]["active"] = False
        span = (client["end"] - client["start"]).days
        end = client["start"] + dt.timedelta(rng.randrange(span // 5, span * 3 // 4))
        users[i]["end"] = max(end, min(users[i]["start"] + dt.timedelta(30), client["end"]))
    client["users"] += users
    return users


# ---------------------------------------------------------------- usage
def weighted_days(a, b, k):
    """k distinct days in [a, b], weekdays about seven times as likely as weekend days."""
    keyed = [(rng.random() ** (1.0 if d.weekday() < 5 else 7.0), d) for d in days(a, b)]
    return [d for _, d in sorted(keyed, reverse=True)[:k]]


def adopt_portfolios(client, popularity=lambda user, name: None):
    """Each user adopts some of the client's apps, each with a personal daily rate and window."""
    for u in client["users"]:
        u["portfolio"] = {}
        for name in sorted(client["apps"]):
            pop = popularity(u, name)
            if pop is None:
                pop = POPULARITY.get(name, 0.12)
                if any(name in AFFINITY.get(d, []) for d in u["depts"]):
                    pop = max(pop, 0.7)
            if rng.random() >= pop:
                continue
            rate, first, last = rng.uniform(0.1, 0.6), u["start"], u["end"]
            if rng.random() < 0.2:  # tried it for a while only
                first = first + dt.timedelta(rng.randrange(max(1, (last - first).days)))
                last = min(last, first + dt.timedelta(rng.randrange(20, 160)))
            u["portfolio"][name] = (rate, first, last)


def background(client, rows, keep=lambda name, day: True):
    """Rows from the portfolios: weekdays at the personal rate, weekends and holidays far less."""
    for u in client["users"]:
        for name, (rate, first, last) in sorted(u["portfolio"].items()):
            for day in days(first, last):
                p = rate if day.weekday() < 5 else rate * 0.08
                if day.month == 12 and day.day >= 23 or day.month == 1 and day.day <= 2:
                    p *= 0.3  # holidays
                if rng.random() < p and keep(name, day):
                    rows.add((client["id"], u["id"], client["apps"][name]["id"], day))


def acme_popularity(user, name):
    """Acme's unapproved apps spread by department, as the January/February plans assume."""
    if name in AI_NAMES or name not in ACME_UNAPPROVED or name == "Calendly":
        return None
    plans = [DEPT_PLAN[p][d][1] for p in (JAN, FEB) for d in user["depts"] or [""]]
    return 0.6 if any(name in plan for plan in plans) else 0.0


def acme_keep(acme):
    rebuilt = {n for n, a in acme["apps"].items() if not a["approved"] or n in AI_NAMES}

    def keep(name, day):
        if name in rebuilt and JAN[0] <= day <= FEB[1]:
            return False  # rebuilt exactly by build_acme_targets
        lo, hi = ACME_WINDOWS.get(name, (None, None))
        return not (lo and day < lo or hi and day > hi)
    return keep


def prefer(users, name, k):
    """k of `users`, those who have app `name` in their portfolio first."""
    users = users[:]
    rng.shuffle(users)
    users.sort(key=lambda u: name not in u["portfolio"])
    return users[:k]


def build_acme_targets(acme, rows):
    """January and February 2026 for AI and unapproved apps, constructed to hit the seeds' numbers."""
    app_id = {n: a["id"] for n, a in acme["apps"].items()}
    eligible = [u for u in acme["users"] if u["active"] and u["start"] <= D("2025-12-31")]
    for period in (JAN, FEB):
        plan = {d: apps for d, (_, apps) in DEPT_PLAN[period].items()}
        uses = {}  # user id -> set of app names
        # 1. who is active: every multi-department user whose departments share an app, then
        #    enough single-department (or department-less) users to reach each user count.
        allowed = {}
        for u in eligible:
            sets = [set(plan[d]) for d in u["depts"]] or [set(plan[""])]
            allowed[u["id"]] = set.intersection(*sets)
        active = [u for u in eligible if len(u["depts"]) > 1 and allowed[u["id"]]]
        for dept, (target, _) in DEPT_PLAN[period].items():
            need = target - sum(1 for u in active if dept in u["depts"])
            singles = [u for u in eligible if u["depts"] == ((dept,) if dept else ())]
            assert 0 <= need <= len(singles), (dept, need, len(singles))
            active += prefer(singles, "Jasper", need)
        for u in active:  # their usual unapproved apps, as far as the plan allows
            rest = allowed[u["id"]] - {"Jasper", "Claude"}
            uses[u["id"]] = {n for n in rest if n in u["portfolio"]} or set(rng.sample(sorted(rest), min(1, len(rest))))
        # 2. every app of a department's plan is used by at least one of its members
        for dept in sorted(d for d in plan if d):
            members = [u for u in active if u["depts"] == (dept,)]
            for name in plan[dept]:
                if not any(name in uses[u["id"]] for u in active if dept in u["depts"]):
                    uses[prefer(members, name, 1)[0]["id"]].add(name)
        # 3. exact Jasper and Claude user counts (those left without any app get Jasper first)
        for name in ("Jasper", "Claude"):
            if name in AI_USERS[period]:
                pool = [u for u in active if name in allowed[u["id"]] and name not in uses[u["id"]]]
                pool.sort(key=lambda u: bool(uses[u["id"]]))
                need = AI_USERS[period][name][0] - sum(1 for u in active if name in uses[u["id"]])
                bare = [u for u in pool if not uses[u["id"]]]
                for u in bare + prefer(pool[len(bare):], name, need - len(bare)):
                    uses[u["id"]].add(name)
        assert all(uses[u["id"]] for u in active)
        # 4. approved AI apps: any eligible user, preferably their usual ones
        for name in ("ChatGPT", "Bard"):
            for u in prefer(eligible, name, AI_USERS[period][name][0]):
                uses.setdefault(u["id"], set()).add(name)
        # 5. days: AI apps by their planned range (usage level), others by the personal rate
        users = {u["id"]: u for u in eligible}
        for uid in sorted(uses):
            for name in sorted(uses[uid]):
                rate = users[uid]["portfolio"].get(name, (rng.uniform(0.1, 0.4),))[0]
                lo, hi = AI_USERS[period].get(name, (0, max(1, int(rate * 12)), max(2, int(rate * 24))))[1:]
                for day in weighted_days(*period, rng.randint(lo, hi)):
                    rows.add((acme["id"], uid, app_id[name], day))


# ---------------------------------------------------------------- insight stories
xr = random.Random(STORY_SEED)  # the stories' own stream: the rows drawn with `rng` do not move


def story_id():
    return str(uuid.UUID(int=xr.getrandbits(128), version=4))


def story_rows(client, uid, apps, spans, rows, rate=0.7):
    """Rows on every span's first and last day, and on other days at `rate` (weekends far less)."""
    for a, b in spans:
        for day in days(D(a), D(b)):
            p = rate if day.weekday() < 5 else 0.03
            if not (xr.random() < p or day in (D(a), D(b))):
                continue
            used = [n for k, n in enumerate(apps) if xr.random() < (0.9 if k == 0 else 0.5)] or apps[:1]
            for name in used:
                rows.add((client["id"], uid, client["apps"][name]["id"], day))


def story_user(client, display, local, domain, depts, role, active, created):
    u = dict(id=story_id(), email=f"{local}@{domain}", display=display, active=active, role=role,
             created=created, depts=depts)
    client["users"].append(u)
    return u


def add_stories(acme, rows):
    """Acme's story users (approved non-AI apps only) and the Vandelay client; returns Vandelay."""
    for display, local, depts, role, active, created, spans, apps in ACME_STORIES:
        assert all(acme["apps"][n]["approved"] and n not in AI_NAMES for n in apps), local
        u = story_user(acme, display, f"{local}{len(acme['users']) + 1}", "acme.example", depts, role, active, created)
        story_rows(acme, u["id"], apps, spans, rows)
    v = make_client(VANDELAY["name"], VANDELAY["timezone"], VANDELAY["seats"], D(VANDELAY["spans"][0][0]),
                    D(VANDELAY["spans"][-1][1]), VANDELAY["id"])
    for name, approved in VANDELAY["apps"]:
        v["apps"][name] = dict(id=story_id(), name=name, approved=approved, favorite=name == "Slack")
    for name, desc in VANDELAY["depts"]:
        v["depts"][name] = (story_id(), desc)
    for display, local, depts, role, active, created, spans in VANDELAY_USERS:
        u = story_user(v, display, local, "vandelay.example", depts, role, active, created)
        apps = [name for name, _ in VANDELAY["apps"] if name == "Slack" or xr.random() < 0.5]
        story_rows(v, u["id"], apps, spans or VANDELAY["spans"], rows, rate=0.6)
    return v


# ---------------------------------------------------------------- files
def field(v):
    if v is None:
        return ""  # NULL
    s = "true" if v is True else "false" if v is False else str(v)
    return '"%s"' % s.replace('"', '""') if s == "" or re.search(r'[,"\r\n]', s) else s


def write_csv(rel, header, rows, eol="\n", compress=None):
    text = "".join(",".join(map(field, r)) + eol for r in [header] + rows).encode()
    path = OUT / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress == "gz":
        path.write_bytes(gzip.compress(text, compresslevel=9, mtime=0))
    elif compress == "lz4":
        with tempfile.TemporaryDirectory() as tmp:
            plain = Path(tmp) / "part.csv"
            plain.write_bytes(text)
            subprocess.run(["lz4", "-q", "-9", "-f", "-z", "--content-size", str(plain), str(path)], check=True)
    else:
        path.write_bytes(text)
    return rel, len(rows)


def tf(b):
    return "t" if b else "f"


def main():
    cats, vendors, catalog = make_catalog()
    acme = make_client("Acme Corp", "America/New_York", 150, D("2025-03-01"), D("2026-03-15"), ACME_ID)
    globex = make_client("Globex", None, None, D("2023-11-01"), D("2024-12-31"))
    initech = make_client("Initech", "Asia/Tokyo", 15, D("2026-01-05"), D("2026-03-10"))
    hooli = make_client("Hooli", "Europe/Berlin", 40, D("2025-06-01"), D("2026-03-15"))
    clients = [acme, globex, initech, hooli]

    for name in sorted(SEED_APPS):
        add_app(acme, name, SEED_APPS[name][1], SEED_APPS[name][2], SEED_APPS[name][0])
    for name in ACME_APPROVED:
        add_app(acme, name, True)
    for name in ACME_UNAPPROVED:
        add_app(acme, name, False)
    for dept_id, name, desc in ACME_DEPTS:
        acme["depts"][name] = (dept_id, desc)
    groups = ACME_GROUPS[:]
    rng.shuffle(groups)
    eng = [i for i, g in enumerate(groups) if g == ("Engineering",)]
    nodept = [i for i, g in enumerate(groups) if g == ()]
    fin = [i for i, g in enumerate(groups) if g == ("Finance",)]
    regular = sorted(set(range(len(groups))) - set(eng[:2] + nodept[:3] + fin[:1]))
    add_users(acme, groups, "acme.example", inactive=eng[:2] + nodept[:2] + fin[:1],
              special={regular[k]: v for k, v in ACME_SPECIAL_NAMES.items()})
    late = acme["users"][nodept[2]]
    late["start"], late["created"] = D("2026-02-16"), "2026-02-16T09:00:00Z"  # joins mid-February
    local, domain = acme["users"][eng[5]]["email"].split("@")
    acme["users"][eng[5]]["email"] = f"{local.title()}@{domain}"  # mixed-case email

    globex_apps = ["ChatGPT", "Claude", "Microsoft Copilot", "Midjourney", "Jasper", "Slack", "Zoom",
                   "Microsoft Teams", "Gmail", "Google Docs", "Microsoft Excel", "Asana", "Dropbox",
                   "Figma", "Adobe Photoshop", "Miro", "GitHub", "Jira", "Visual Studio Code",
                   "Postman", "Salesforce", "HubSpot", "Calendly", "WhatsApp", "Spotify", "Notion"]
    for name in globex_apps:
        add_app(globex, name, name in ("ChatGPT", "Claude", "Microsoft Copilot") or
                (name not in AI_NAMES and rng.random() < 0.7))
    for name, desc in [("Platform", "Core services, infrastructure and SRE"), ("Data Science", "Analytics & ML"),
                       ("Customer Support", "Tier 1 and tier 2, follow-the-sun"),
                       ("Field Sales", "Field sales\nEMEA and APAC"), ("People Ops", None)]:
        globex["depts"][name] = (new_id(), desc)
    names = sorted(globex["depts"])
    ggroups = [(rng.choice(names),) if r < 0.85 else tuple(sorted(rng.sample(names, 2))) if r < 0.93 else ()
               for r in (rng.random() for _ in range(150))]
    add_users(globex, ggroups, "globex.example", late=0.25, inactive=rng.sample(range(150), 15))

    for name in ["Slack", "Gmail", "ChatGPT", "Perplexity", "Figma", "Jira"]:
        add_app(initech, name, name != "Perplexity")
    add_users(initech, [()] * 12, "initech.example", late=0.1, inactive=[11])
    for name in ["Slack", "Zoom", "ChatGPT", "Notion"]:
        add_app(hooli, name, name != "Notion")
    hooli["depts"]["Research"] = (new_id(), "Long-term research")
    add_users(hooli, [("Research",)] * 3 + [()] * 5, "hooli.example", inactive=[7])

    rows = set()
    adopt_portfolios(acme, acme_popularity)
    adopt_portfolios(globex)
    adopt_portfolios(initech)
    adopt_portfolios(hooli)
    background(acme, rows, acme_keep(acme))
    build_acme_targets(acme, rows)
    background(globex, rows)
    background(initech, rows, lambda name, day: day <= INITECH_LAST_DAY)
    clients.append(add_stories(acme, rows))
    next(u for u in globex["users"] if u["role"] == "admin")["role"] = "owner"  # Acme's owner is a story user
    write_dump(clients, cats, vendors, catalog, sorted(rows, key=lambda r: (r[3], r[0], r[1], r[2])))


def write_dump(clients, cats, vendors, catalog, usage):
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    files = {}

    def put(table, *args, **kw):
        rel, n = write_csv(*args, **kw)
        files.setdefault(table, []).append((rel, n))

    put("clients", "clients.csv", ["id", "name", "timezone", "licensed_seats"],
        [[c["id"], c["name"], c["timezone"], c["seats"]] for c in clients])
    put("catalog_categories", "catalog_categories.csv", ["id", "name", "is_ai"],
        [[cid, name, ai] for name, (cid, ai) in cats.items()])
    put("catalog_vendors", "catalog_vendors.csv", ["id", "name"], [[v, n] for n, v in vendors.items()])
    put("catalog_applications", "catalog_applications.csv",
        ["id", "canonical_name", "logo", "type", "category_id", "vendor_id"],
        [[a["id"], a["name"], a["logo"], a["type"], a["category"], a["vendor"]] for a in catalog.values()])
    put("apps", "apps.csv", ["id", "client_id", "catalog_application_id", "is_approved", "is_favorite"],
        [[a["id"], c["id"], catalog[a["name"]]["id"], tf(a["approved"]), tf(a["favorite"])]
         for c in clients for a in c["apps"].values()])
    put("departments", "departments.csv", ["id", "client_id", "name", "description"],
        [[did, c["id"], name, desc] for c in clients for name, (did, desc) in c["depts"].items()], eol="\r\n")
    put("users", "users.csv", ["id", "client_id", "email", "display_name", "is_active", "role", "created_at"],
        [[u["id"], c["id"], u["email"], u["display"], tf(u["active"]) if c["name"] == "Globex" else u["active"],
          u["role"], u["created"]] for c in clients for u in c["users"]])
    put("user_departments", "user_departments.csv", ["user_id", "department_id"],
        [[u["id"], c["depts"][d][0]] for c in clients for u in c["users"] for d in u["depts"]])

    # usage: ids in date order with the odd sequence gap, ~20 duplicates, three parts
    records, next_id, stamp = [], 1, {}
    for cid, uid, aid, day in usage:
        if (cid, day) not in stamp:  # ingestion batch time, the night after
            t = dt.datetime.combine(day + dt.timedelta(1), dt.time(rng.randrange(1, 5), rng.randrange(60), rng.randrange(60)))
            stamp[cid, day] = t.strftime("%Y-%m-%d %H:%M:%S.") + "%06d+00" % rng.randrange(10**6)
        records.append([next_id, cid, uid, aid, day.isoformat(), stamp[cid, day]])
        next_id += 1 + (rng.randrange(1, 40) if rng.random() < 0.01 else 0)
    acme_feb = [r for r in records if r[1] == ACME_ID and r[4].startswith("2026-02")]
    for r in rng.sample(acme_feb, 6) + rng.sample(records, 14):
        records.append([next_id] + r[1:])
        next_id += 1
    parts = [[], [], []]
    for r in records:
        x = rng.random()
        parts[0 if x < 0.46 else 1 if x < 0.94 else 2].append(r)
    cols = ["id", "client_id", "user_id", "application_id", "activity_date", "created_at"]
    layouts = [  # file, column order, row order, compression
        ("part-0000.csv.gz", cols, lambda r: (r[1], r[2], r[4], r[0]), "gz"),
        ("part-0001.csv.lz4", ["activity_date", "application_id", "user_id", "client_id", "id", "created_at"],
         lambda r: (r[4], r[1], r[3], r[2], r[0]), "lz4"),
        ("part-0002.csv", ["client_id", "user_id", "application_id", "activity_date", "id", "created_at"],
         None, None)]
    for part, (name, order, key, comp) in zip(parts, layouts):
        if key:
            part.sort(key=key)
        else:
            rng.shuffle(part)
        idx = [cols.index(c) for c in order]
        out = [[r[i] for i in idx] for r in part]
        if name.endswith(".csv"):  # user ids in upper case here: the loader must accept any case
            for r in out:
                r[order.index("user_id")] = r[order.index("user_id")].upper()
        put("app_usage_reports", f"app_usage_reports/{name}", order, out, compress=comp)

    manifest = {"version": 1, "tables": {t: [rel for rel, _ in fs] for t, fs in files.items()}, "files": {}}
    for t, fs in files.items():
        for rel, n in fs:
            manifest["files"][rel] = {"rows": n, "sha256": hashlib.sha256((OUT / rel).read_bytes()).hexdigest()}
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}: {len(records)} usage rows ({len(records) - len(usage)} duplicates)")


if __name__ == "__main__":
    main()
