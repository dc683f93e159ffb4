#!/usr/bin/env python3
"""The console (`GET /`, SPEC §3d) in a real browser: headless Chromium driven by Selenium.

Starts `tally serve` on free loopback ports with the bundled sample (data/sample), waits for
/readyz, opens the page and drives it as a user would; `tally serve` is always stopped (also on a
failure or Ctrl-C).

Checks (each printed as it passes):
  * `/` is served without a token, as HTML, with the console's Content-Security-Policy; its HTML
    names no other host (no http:// or https:// at all) and loads nothing by src/href but data:;
  * connecting with the token `YOUR_API_TOKEN` shows the service figures of GET /v2/status
    (version, data source, clients, usage rows, uptime, bytes, last reload) and the request
    table with per-endpoint rates and latency percentiles;
  * the seeds' client (Acme Corp), February 2026 against January 2026: the summary cards equal
    E and G; the per-app table (A) shows ChatGPT with 52 users, ↑ 13.0% and `heavy`, and every
    row of the first page equals the API's; the trend (J) is an SVG with one point per bucket
    of both series, at the API's values; with `unapproved only` (is_approved=false, the seed's
    own example), departments (B) show Engineering with 34 users (↑ 9.7%), every row as the API;
  * page size 2: next through every page of A to the end (each page ≤ 2 rows; the rows across
    pages equal the API's full list fetched with page_size=200, same names in the same order),
    then previous back to the first page, each page as it was;
  * a bad period (end before start) shows the API's own error message;
  * the token is in no localStorage, sessionStorage, cookie, URL or page markup; every request
    the page made went to the page's own origin (resource timing and Chromium's network log);
  * a screenshot of the dashboard is written to --screenshot.

Usage: python3 tools/console_check.py --tally .build/debug/tally [--screenshot docs/img/console.png]
Needs: python3 selenium (pip install --break-system-packages selenium), Debian's chromium and
chromium-driver (apt-get install chromium chromium-driver); nothing is downloaded.
Exit 0 only when every check passed; on a failure the expected and found values are printed and
a screenshot is saved to /tmp/console_check_failure.png.
"""
import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKEN = "YOUR_API_TOKEN"
ACME = "aa7cf840-9ca9-46a3-9778-9015d6580d50"
FEB = ("2026-02-01", "2026-02-28")
JAN = ("2026-01-01", "2026-01-31")
CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
FAILURE_SHOT = "/tmp/console_check_failure.png"

try:
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
except ImportError:
    sys.exit("console_check: needs selenium (pip install --break-system-packages selenium)")


class CheckFailed(Exception):
    pass


def ok(what):
    print(f"ok   {what}", flush=True)


def expect(cond, what, expected=None, found=None):
    if not cond:
        detail = "" if expected is None and found is None else f"\n     expected: {expected!r}\n     found:    {found!r}"
        raise CheckFailed(f"{what}{detail}")
    ok(what)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`tally serve` on loopback with the bundled sample; stopped by stop() whatever happened."""

    def __init__(self, tally):
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="console_check-", suffix=".log", delete=False)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
        self.proc = subprocess.Popen([tally, "serve", "--host", "127.0.0.1", "--port", str(self.port), "--binary-port", "0",
                                      "--dump", os.path.join(ROOT, "data", "sample")],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        self.base = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise CheckFailed(f"tally serve exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.base + "/readyz", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, socket.timeout):
                pass
            time.sleep(0.1)
        raise CheckFailed(f"tally serve was not ready within {timeout} s:\n{self.log_tail()}")

    def log_tail(self):
        try:
            with open(self.log.name, errors="replace") as f:
                return "".join(f.readlines()[-20:])
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        try:
            os.unlink(self.log.name)
        except OSError:
            pass


def http_get(url, token=TOKEN):
    """(status, headers, body bytes) of a GET, errors included."""
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def api(base, path, **params):
    status, _, body = http_get(f"{base}{path}?{urllib.parse.urlencode(params)}" if params else f"{base}{path}")
    return status, json.loads(body)


def apps_path(rest):
    return f"/v2/clients/{ACME}/analytics/apps/{rest}"


def period_params(approval="", granularity="weekly"):
    p = {"start_date": FEB[0], "end_date": FEB[1], "compare_start_date": JAN[0], "compare_end_date": JAN[1],
         "granularity": granularity}
    if approval:
        p["is_approved"] = approval
    return p


def pct(x):
    return f"{'↑' if x > 0 else '↓' if x < 0 else '→'} {abs(x):.1f}%"


class Page:
    def __init__(self, driver):
        self.d = driver

    def js(self, script, *args):
        return self.d.execute_script(script, *args)

    def wait(self, what, fn, timeout=15):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            try:
                last = fn()
                if last:
                    return last
            except WebDriverException as e:
                last = e
            time.sleep(0.05)
        raise CheckFailed(f"timed out after {timeout} s waiting for {what} (last seen: {last!r})")

    def text(self, css):
        return self.js("const e = document.querySelector(arguments[0]); return e ? e.textContent.trim() : null;", css)

    def attr(self, css, name):
        return self.js("const e = document.querySelector(arguments[0]); return e ? e.getAttribute(arguments[1]) : null;", css, name)

    def set_input(self, id_, value):
        """Sets a date/month input as the date picker would, with the events it sends."""
        got = self.js("""const e = document.getElementById(arguments[0]); e.focus(); e.value = arguments[1];
                         e.dispatchEvent(new Event('input', {bubbles: true})); e.dispatchEvent(new Event('change', {bubbles: true}));
                         e.blur(); return e.value;""", id_, value)
        if got != value:
            raise CheckFailed(f"#{id_} did not take the value {value!r} (it holds {got!r})")

    def apply(self):
        """Clicks Apply and waits until that load of the dashboard has finished (ready or error)."""
        gen = int(self.attr("#dashboard", "data-gen") or 0)
        self.d.find_element(By.ID, "apply").click()
        self.wait("the dashboard to load", lambda: int(self.attr("#dashboard", "data-gen")) > gen
                  and self.attr("#dashboard", "data-state") in ("ready", "error"))
        return self.attr("#dashboard", "data-state")

    def table_rows(self, table_id, key_attr):
        return self.js("""return [...document.querySelectorAll('#' + arguments[0] + ' tbody tr')]
            .filter(tr => tr.hasAttribute(arguments[1]))
            .map(tr => { const o = {key: tr.getAttribute(arguments[1])};
                         tr.querySelectorAll('[data-col]').forEach(td => o[td.dataset.col] = td.textContent.trim());
                         o.level = (tr.querySelector('[data-level]') || {}).dataset?.level; return o; });""", table_id, key_attr)

    def wait_pager(self, box, page):
        self.wait(f"#{box} page {page}", lambda: self.attr(f"#{box}", "data-state") == "ready"
                  and self.attr(f"#{box}", "data-page") == str(page))


def run(server, driver, screenshot):
    base = server.base
    p = Page(driver)

    # ---- the page as served
    status, headers, body = http_get(base + "/", token=None)
    expect(status == 200, "GET / answers 200 without a token", 200, status)
    expect(headers.get("Content-Type", "").startswith("text/html"), "GET / is HTML", "text/html", headers.get("Content-Type"))
    expect(headers.get("Content-Security-Policy") == CSP, "GET / carries the console's Content-Security-Policy", CSP,
           headers.get("Content-Security-Policy"))
    html = body.decode("utf-8")
    urls = re.findall(r"https?://[^\s\"'<>)]*", html)
    expect(not urls, "the page's HTML names no other host (no http:// or https:// in it)", [], urls)
    loads = [m for m in re.findall(r"""\b(?:src|href)\s*=\s*["']?([^"'\s>]*)""", html) if not m.startswith("data:")]
    expect(not loads, "the page loads nothing by src/href but data: URLs", [], loads)
    expect(not re.search(r"<form\b", html, re.I), "the page has no <form> (the CSP allows no submission)")

    # ---- connect
    driver.get(base + "/")
    p.wait("the token input", lambda: driver.find_elements(By.ID, "token"))
    expect(driver.find_element(By.ID, "token").get_attribute("type") == "password", "the token input is a password field")
    status, _, body = http_get(base + "/v2/status", token="not-a-token")
    message = json.loads(body)["error"]["message"]
    driver.find_element(By.ID, "token").send_keys("not-a-token")
    driver.find_element(By.ID, "connect").click()
    shown = p.wait("the refusal of a wrong token", lambda: p.text("#connect-error"))
    expect(status == 401 and message in shown and driver.find_element(By.ID, "service").get_attribute("hidden") is not None,
           "a wrong token: the page shows the API's 401 message and stays disconnected", message, shown)
    logged = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]  # drains the log
    expect(all("/v2/status" in m and "status of 401" in m for m in logged), "… and nothing else failed in the browser", "the 401", logged)
    driver.find_element(By.ID, "token").clear()
    driver.find_element(By.ID, "token").send_keys(TOKEN)
    driver.find_element(By.ID, "connect").click()
    p.wait("the service figures", lambda: p.text("#svc-version") not in (None, "", "–") and not driver.find_element(By.ID, "service").get_attribute("hidden"))
    _, st = api(base, "/v2/status")
    expect(p.text("#svc-version") == st["version"], "the service panel shows the version of /v2/status", st["version"], p.text("#svc-version"))
    expect(p.text("#svc-source") == st["data_source"], "… the data source", st["data_source"], p.text("#svc-source"))
    expect(p.text("#svc-clients") == f"{st['clients']:,}", "… the number of clients", f"{st['clients']:,}", p.text("#svc-clients"))
    expect(p.text("#svc-rows") == f"{st['usage_rows']:,}", "… the usage rows", f"{st['usage_rows']:,}", p.text("#svc-rows"))
    up = p.text("#svc-uptime")
    expect(re.fullmatch(r"(\d+ d )?(\d+ h )?(\d+ m )?\d+ s|\d+ d \d+ h \d+ m", up or "") is not None, "… the uptime", "e.g. '12 s'", up)
    for id_ in ("svc-store-bytes", "svc-resident-bytes"):
        expect(re.fullmatch(r"[\d.]+ (B|KiB|MiB|GiB|TiB)", p.text("#" + id_) or "") is not None, f"… {id_[4:].replace('-', ' ')}",
               "a size such as '1.96 MiB'", p.text("#" + id_))
    expect("ok" in (p.text("#svc-reload") or "") and st["last_reload"]["source"] in p.text("#svc-reload"), "… the last reload (ok, source)",
           st["last_reload"]["source"], p.text("#svc-reload"))
    expect(re.fullmatch(r"\d+ / \d+", p.text("#svc-inflight") or "") is not None, "… requests in flight (HTTP / binary)", "n / n", p.text("#svc-inflight"))
    expect(re.fullmatch(r"\d+ / \d+", p.text("#svc-connections") or "") is not None, "… connections open (HTTP / binary)", "n / n",
           p.text("#svc-connections"))
    row = p.wait("the request table's row for /v2/status", lambda: p.js(
        "const r = document.querySelector('#req-table tr[data-endpoint=\"status\"]'); return r && [...r.cells].map(c => c.textContent.trim());"))
    expect(re.fullmatch(r"\d+(\.\d+)? (µs|ms|s)\*?", row[3]) is not None and re.fullmatch(r"\d+(\.\d+)? (µs|ms|s)\*?", row[4]) is not None,
           "the request table shows p50 and p99 latency per endpoint", "e.g. '1.25 ms'", row)
    rate = p.wait("a live request rate (two polls)", lambda: (lambda t: t if re.fullmatch(r"\d+\.\d+|\d+", t or "") else None)(
        p.text("#req-table tr[data-endpoint='*'] td:nth-of-type(2)")), timeout=12)
    expect(float(rate) > 0, "the request table shows a live total rate in requests/s", "> 0", rate)

    # ---- the seeds' client, February 2026 against January 2026, all apps
    options = p.js("return [...document.getElementById('client').options].map(o => o.value);")
    expected_ids = [c["id"] for c in st["client_list"]]
    expect(options == expected_ids, "the client picker lists /v2/status's client_list", expected_ids, options)
    Select(driver.find_element(By.ID, "client")).select_by_value(ACME)
    p.set_input("start", FEB[0])
    p.set_input("end", FEB[1])
    if not driver.find_element(By.ID, "compare").is_selected():
        driver.find_element(By.ID, "compare").click()
    p.set_input("compare-start", JAN[0])
    p.set_input("compare-end", JAN[1])
    Select(driver.find_element(By.ID, "approval")).select_by_value("")
    Select(driver.find_element(By.ID, "granularity")).select_by_value("weekly")
    state = p.apply()
    expect(state == "ready", "Acme Corp, February 2026 against January 2026: the dashboard loads", "ready",
           (state, p.text("#dash-error")))
    period = p.attr("#dashboard", "data-period")
    expect(period == f"{FEB[0]}..{FEB[1]}/{JAN[0]}..{JAN[1]}", "… for the period asked", f"{FEB[0]}..{FEB[1]}/{JAN[0]}..{JAN[1]}", period)

    _, e = api(base, apps_path("utilization/summary"), **period_params())
    _, g = api(base, apps_path("ai/users/summary"), **period_params())
    cards = p.js("return Object.fromEntries([...document.querySelectorAll('#cards [data-card]')].map(c => [c.dataset.card, c.querySelector('.value').textContent.trim()]));")
    want = {k: f"{e[k]['value']:,}" for k in ("unique_users", "app_count", "approved_app_count", "unapproved_app_count", "unapproved_user_count")}
    want.update({k: f"{g[k]['value']:,}" for k in ("ai_app_count", "ai_user_count", "unapproved_ai_app_count", "unapproved_ai_user_count")})
    want["ai_user_share_pct"] = f"{g['ai_user_share_pct']:.1f}%"
    expect(cards == want, "the summary cards show E's and G's values", want, cards)
    delta = p.text("#cards [data-card='unique_users'] .delta")
    want_delta = f"{pct(e['unique_users']['change_pct'])} vs {e['unique_users']['compare_value']}"
    expect(delta == want_delta, "… with the change against the comparison period", want_delta, delta)

    rows = {r["key"]: r for r in p.table_rows("apps-table", "data-app")}
    chat = rows.get("ChatGPT")
    expect(chat is not None, "the per-app table (A) has a row for ChatGPT", "ChatGPT", sorted(rows))
    expect(chat["users"] == "52", "ChatGPT: 52 users", "52", chat["users"])
    expect(chat["change"] == "↑ 13.0%", "ChatGPT: ↑ 13.0% against January (46)", "↑ 13.0%", chat["change"])
    expect(chat["level"] == "heavy", "ChatGPT: usage level heavy", "heavy", chat["level"])
    expect(chat["previous"] == "46", "ChatGPT: 46 users in January", "46", chat["previous"])
    expect(chat["share"] == f"{52 / e['unique_users']['value'] * 100:.1f}%", "ChatGPT: share of the period's users",
           f"{52 / e['unique_users']['value'] * 100:.1f}%", chat["share"])
    _, full = api(base, apps_path("utilization"), page_size=200, **period_params())
    page1 = p.table_rows("apps-table", "data-app")
    size = int(Select(driver.find_element(By.ID, "page-size")).first_selected_option.text)
    want_rows = [{"key": r["app"]["canonical_name"], "users": f"{r['unique_users']['value']:,}", "level": r["usage_level"],
                  "change": "new" if r["unique_users"]["compare_value"] is None else "–" if r["unique_users"]["change_pct"] is None
                  else pct(r["unique_users"]["change_pct"])} for r in full["data"][:size]]
    got_rows = [{k: r[k] for k in ("key", "users", "level", "change")} for r in page1]
    expect(got_rows == want_rows, f"every row of A's first page ({size}) shows the API's name, users, level and change", want_rows, got_rows)
    claude = rows.get("Claude")
    expect(claude is not None and claude["change"] == "new", "Claude (no activity in January) is marked new, not ↑/↓", "new",
           claude and claude["change"])

    _, j = api(base, apps_path("utilization/trend"), **period_params())
    dots = p.js("return [...document.querySelectorAll('#trend svg circle')].map(c => Number(c.getAttribute('data-value') ?? NaN));")
    paths = p.js("return document.querySelectorAll('#trend svg path').length;")
    n_points = len(j["series"]) + len(j["compare_series"] or [])
    expect(paths >= 2 and len(dots) == n_points, "the trend (J) is drawn as SVG: lines and one point per bucket of both series",
           f">= 2 paths, {n_points} points", f"{paths} paths, {len(dots)} points")
    main_vals = p.js("return [...document.querySelectorAll('#trend svg circle[data-bucket]')].map(c => [c.dataset.bucket, Number(c.dataset.value)]);")
    want_vals = [[b["bucket_start"], b["unique_users"]] for b in j["series"]]
    expect(main_vals == want_vals, "… at J's values", want_vals, main_vals)

    # ---- paging through A with page size 2
    Select(driver.find_element(By.ID, "page-size")).select_by_visible_text("2")
    p.wait_pager("apps", 1)
    pages = []
    while True:
        names = [r["key"] for r in p.table_rows("apps-table", "data-app")]
        if len(names) > 2 or not names:
            raise CheckFailed(f"page {len(pages) + 1} of A has {len(names)} rows (expected 1 or 2): {names}")
        pages.append(names)
        if not driver.find_element(By.ID, "apps-next").is_enabled():
            break
        if len(pages) > 200:
            raise CheckFailed("more than 200 pages of A: the next button never stops")
        driver.find_element(By.ID, "apps-next").click()
        p.wait_pager("apps", len(pages) + 1)
    ok(f"page size 2: next through {len(pages)} pages of A, each with at most 2 rows, to the end (next disabled)")
    flat = [n for pg in pages for n in pg]
    want_names = [r["app"]["canonical_name"] for r in full["data"]]
    expect(flat == want_names, f"the rows across the pages equal the API's full list (page_size=200, {len(want_names)} apps, same order)",
           want_names, flat)
    info = p.text("#apps-info")
    expect(info.endswith(f"of {full['total_count']}"), "the pager shows the total count", f"… of {full['total_count']}", info)
    for k in range(len(pages) - 1, 0, -1):
        driver.find_element(By.ID, "apps-prev").click()
        p.wait_pager("apps", k)
        names = [r["key"] for r in p.table_rows("apps-table", "data-app")]
        if names != pages[k - 1]:
            raise CheckFailed(f"previous to page {k} of A\n     expected: {pages[k - 1]!r}\n     found:    {names!r}")
    expect(not driver.find_element(By.ID, "apps-prev").is_enabled(),
           f"previous back through every page returns the earlier pages, to page 1 (previous disabled there)")

    # ---- departments with unapproved apps only (seed 001's example)
    Select(driver.find_element(By.ID, "approval")).select_by_value("false")
    state = p.apply()
    expect(state == "ready", "unapproved apps only (is_approved=false): the dashboard loads", "ready", (state, p.text("#dash-error")))
    deps = {r["key"]: r for r in p.table_rows("departments-table", "data-department")}
    eng = deps.get("Engineering")
    expect(eng is not None and eng["users"] == "34", "departments (B): Engineering with 34 users", "34", eng and eng["users"])
    expect(eng["users-change"] == "↑ 9.7%" and eng["apps"] == "6", "… ↑ 9.7% against January (31) and 6 apps", ("↑ 9.7%", "6"),
           (eng["users-change"], eng["apps"]))
    _, b = api(base, apps_path("utilization/departments"), page_size=200, **period_params("false"))
    want_b = [(r["department"]["name"], f"{r['user_count']['value']:,}", f"{r['app_count']['value']:,}") for r in b["data"]]
    got_b = [(r["key"], r["users"], r["apps"]) for r in p.table_rows("departments-table", "data-department")]
    expect(got_b == want_b, "every department row equals the API's (name, users, apps)", want_b, got_b)
    a_unapproved = [r["key"] for r in p.table_rows("apps-table", "data-app")]
    expect("ChatGPT" not in a_unapproved and "Jasper" in a_unapproved, "… and A lists unapproved apps only (Jasper, no ChatGPT)",
           "Jasper, no ChatGPT", a_unapproved)

    # ---- a bad period: the API's error, shown
    p.set_input("end", "2026-01-15")
    _, err = api(base, apps_path("utilization/summary"), **{**period_params("false"), "end_date": "2026-01-15"})
    message = err["error"]["message"]
    state = p.apply()
    shown = p.text("#dash-error") or ""
    expect(state == "error" and message in shown, "end before start: the page shows the API's error message", message, (state, shown))

    # ---- the token stays in the page's memory only
    where = p.js("""return {local: JSON.stringify(Object.assign({}, localStorage)), session: JSON.stringify(Object.assign({}, sessionStorage)),
                           cookie: document.cookie, url: location.href, name: window.name, history: JSON.stringify(history.state),
                           input: document.getElementById('token').value, markup: document.documentElement.outerHTML};""")
    leaks = [k for k, v in where.items() if TOKEN in (v or "")]
    expect(not leaks, "the token is in no localStorage, sessionStorage, cookie, URL, history or markup", [], leaks)

    # ---- dark and light: the theme button overrides the system's scheme
    bg = "return getComputedStyle(document.body).backgroundColor;"
    system = p.js(bg)
    seen = {}
    for _ in range(3):
        driver.find_element(By.ID, "theme").click()
        seen[driver.find_element(By.ID, "theme").text] = p.js(bg)
    expect(seen.get("Theme: light") != seen.get("Theme: dark") and seen.get("Theme: system") == system,
           "the theme button switches between light and dark colours and back to the system's", "two colours",
           seen)

    # ---- the screenshot: the dashboard of the seeds' example, all apps
    p.set_input("end", FEB[1])
    Select(driver.find_element(By.ID, "approval")).select_by_value("")
    Select(driver.find_element(By.ID, "page-size")).select_by_visible_text("10")
    state = p.apply()
    expect(state == "ready", "back to February against January, all apps", "ready", (state, p.text("#dash-error")))
    p.wait("a second status poll", lambda: p.js("return document.querySelectorAll('#rate-spark path').length") >= 2, timeout=8)

    # ---- nothing from anywhere else
    origin = base
    resources = p.js("return performance.getEntriesByType('resource').map(e => e.name);")
    foreign = [u for u in resources if not (u.startswith(origin + "/") or u.startswith("data:"))]
    expect(resources and not foreign, f"every resource the page fetched ({len(resources)}) is from its own origin", [], foreign)
    sent = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            sent.append(msg["params"]["request"]["url"])
    foreign = [u for u in sent if not (u.startswith(origin + "/") or u.startswith("data:"))]
    expect(sent and not foreign, f"Chromium's network log: all {len(sent)} requests went to the page's origin", [], foreign)
    expect(not [u for u in sent if TOKEN in u], "… and none carried the token in its URL")
    # The one expected failure since the wrong token is the bad period's 400 (logged as a failed load).
    violations = [e["message"] for e in driver.get_log("browser")
                  if (e["level"] == "SEVERE" or "Content Security Policy" in e["message"])
                  and not ("end_date=2026-01-15" in e["message"] and "status of 400" in e["message"])]
    expect(not violations, "no script error or Content-Security-Policy violation in the browser console", [], violations)

    if screenshot:
        os.makedirs(os.path.dirname(os.path.abspath(screenshot)), exist_ok=True)
        save_screenshot(driver, screenshot)
        ok(f"screenshot written to {screenshot} ({os.path.getsize(screenshot):,} bytes)")


def save_screenshot(driver, path):
    """The page at the window's width, down to the end of the dashboard (at most 2,600 px)."""
    height = driver.execute_script("return Math.min(2600, Math.ceil(document.getElementById('dashboard').getBoundingClientRect().bottom + window.scrollY + 16));")
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": 1400, "height": int(height), "deviceScaleFactor": 1, "mobile": False})
    try:
        driver.execute_script("window.scrollTo(0, 0)")
        time.sleep(0.2)
        driver.save_screenshot(path)
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    try:  # a palette PNG is a third of the size and looks the same for a flat UI
        from PIL import Image
        img = Image.open(path).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        img.save(path, optimize=True)
    except ImportError:
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tally", required=True, help="the tally binary to test")
    ap.add_argument("--screenshot", help="write a PNG of the dashboard here")
    args = ap.parse_args()
    if not os.access(args.tally, os.X_OK):
        sys.exit(f"console_check: {args.tally} is not an executable")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    started = time.time()
    server = Server(os.path.abspath(args.tally))
    driver = None
    try:
        server.wait_ready()
        ok(f"tally serve is ready on {server.base} (bundled sample, {time.time() - started:.1f} s)")
        options = webdriver.ChromeOptions()
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1800", "--hide-scrollbars",
                  "--disable-extensions", "--no-first-run", "--disable-background-networking", "--disable-component-update",
                  "--disable-default-apps", "--disable-sync", "--metrics-recording-only", "--disable-domain-reliability"):
            options.add_argument(a)
        options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
        driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path="/usr/bin/chromedriver"), options=options)
        driver.set_page_load_timeout(20)
        run(server, driver, args.screenshot)
    except CheckFailed as e:
        print(f"FAIL {e}", flush=True)
        if driver is not None:
            try:
                driver.save_screenshot(FAILURE_SHOT)
                print(f"     screenshot of the page: {FAILURE_SHOT}")
            except WebDriverException:
                pass
        return 1
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        return 130
    except WebDriverException as e:
        print(f"FAIL the browser: {e.msg if hasattr(e, 'msg') else e}", flush=True)
        if driver is not None:
            try:
                driver.save_screenshot(FAILURE_SHOT)
                print(f"     screenshot of the page: {FAILURE_SHOT}")
            except WebDriverException:
                pass
        return 1
    finally:
        if driver is not None:
            try:
                driver.quit()
            except Exception:
                pass
        server.stop()
    print(f"all console checks passed in {time.time() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
