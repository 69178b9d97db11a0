#!/usr/bin/env python3
"""tallyctl import-log: combined and common logs with bots, assets, 404s
and junk mixed in; gzip; stdin; days in the configured zone; max_pages;
exact views and visitors per page and per day; a running tallyd sees the
import at once; a cross-check against goaccess. Python 3 stdlib only."""

import collections
import datetime
import gzip
import json
import os
import pty
import random
import select
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (BROWSER_UA, BROWSER_UA2, Daemon, Skip, check, eq,  # noqa: E402
                     mkdtemp, write_file, run_tallyctl, tallyctl_path)

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
          "Oct", "Nov", "Dec"]
UA_SAFARI = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) "
             "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 "
             "Safari/605.1.15")
BOTS = ["Mozilla/5.0 (compatible; Googlebot/2.1; "
        "+http://www.google.com/bot.html)", "curl/8.5.0",
        "python-requests/2.31.0", "-"]
HEADER = "site,day,path,views,visitors"
UTC = datetime.timezone.utc


def ts(dt):
    """A log timestamp, "10/Oct/2000:13:55:36 -0700", in dt's own offset."""
    off = dt.utcoffset() or datetime.timedelta(0)
    mins = int(off.total_seconds()) // 60
    sign = "-" if mins < 0 else "+"
    mins = abs(mins)
    return "%02d/%s/%04d:%02d:%02d:%02d %s%02d%02d" % (
        dt.day, MONTHS[dt.month - 1], dt.year, dt.hour, dt.minute, dt.second,
        sign, mins // 60, mins % 60)


def combined(ip, dt, target, status=200, ua=BROWSER_UA, method="GET",
             ref="-", size=512):
    return '%s - - [%s] "%s %s HTTP/1.1" %d %d "%s" "%s"\n' % (
        ip, ts(dt), method, target, status, size, ref, ua)


def common(ip, dt, target, status=200, method="GET", size=512):
    return '%s - frank [%s] "%s %s HTTP/1.0" %d %d\n' % (
        ip, ts(dt), method, target, status, size)


def utc(y, m, d, h=12, mi=0, s=0):
    return datetime.datetime(y, m, d, h, mi, s, tzinfo=UTC)


def config(data, zone="UTC", extra=""):
    return write_file(os.path.join(mkdtemp(), "tally.ini"),
                      "[store]\ndata = %s\n\n[count]\ntimezone = %s\n%s"
                      % (data, zone, extra))


def new_store(zone="UTC", extra=""):
    data = os.path.join(mkdtemp(), "data")
    return data, config(data, zone, extra)


def ctl(*args, **kw):
    return run_tallyctl(*args, **kw)


def import_log(cfg, *args, input=None, want=0):
    rc, out, err = ctl("--config", cfg, "--json", "import-log", *args,
                       input=input)
    eq(rc, want, "exit code of import-log %s (stderr %r)" % (args, err[-600:]))
    return (json.loads(out) if rc == 0 else None), err


def export_rows(cfg):
    rc, out, err = ctl("--config", cfg, "export")
    eq(rc, 0, "export (stderr %r)" % err)
    lines = out.splitlines()
    eq(lines[0], HEADER, "export header")
    return lines[1:]


# ------------------------------------------------------------------ a mixed log

D1 = (2026, 3, 10)
D2 = (2026, 3, 11)


def mixed_log():
    L = []
    a, b = BROWSER_UA, BROWSER_UA2
    L.append(combined("10.0.0.1", utc(*D1, 8), "/home", ua=a))
    L.append(combined("10.0.0.1", utc(*D1, 9), "/home", ua=a))
    L.append(combined("10.0.0.2", utc(*D1, 9), "/home?x=1", ua=a))
    L.append(combined("10.0.0.1", utc(*D1, 10), "/home/", 304, ua=b))
    L.append(combined("10.0.0.1", utc(*D1, 10), "/docs/../about", ua=a))
    L.append(combined("10.0.0.3", utc(*D1, 10), "/about", 404, ua=a))
    L.append(combined("10.0.0.3", utc(*D1, 10), "/about", 500, ua=a))
    L.append(combined("10.0.0.3", utc(*D1, 10), "/about", ua=a,
                      method="POST"))
    L.append(combined("10.0.0.3", utc(*D1, 10), "/about", ua=a,
                      method="HEAD"))
    L.append(combined("10.0.0.4", utc(*D1, 11), "/home", ua=BOTS[0]))
    L.append(combined("10.0.0.4", utc(*D1, 11), "/about", ua=BOTS[1]))
    L.append(combined("10.0.0.4", utc(*D1, 11), "/about", ua=BOTS[3]))
    L.append(combined("10.0.0.5", utc(*D1, 11), "/static/app.css", ua=a))
    L.append(combined("10.0.0.5", utc(*D1, 11), "/img/Logo.PNG", ua=a))
    L.append(combined("10.0.0.5", utc(*D1, 11), "/favicon.ico", ua=a))
    L.append("\n")                                   # blank: not counted
    L.append("hello world\n")                        # junk
    L.append('10.0.0.9 - - [99/Foo/2026:25:00:00 +0000] "GET /x HTTP/1.1" '
             '200 1 "-" "%s"\n' % a)                 # bad time
    L.append('10.0.0.9 - - [10/Mar/2026:12:00:00 +0000] "GET /x HTTP/1.1" '
             '200 1\n')                              # common in a combined log
    L.append(combined("10.0.0.6", utc(*D1, 12), "/bad%zz", ua=a))
    L.append(combined("10.0.0.6", utc(*D1, 12), "/caf%C3%A9", ua=a))
    # An escaped quote inside the request and the User-Agent.
    L.append('10.0.0.6 - - [%s] "GET /q\\"x HTTP/1.1" 200 5 "-" '
             '"Mozilla/5.0 \\"quoted\\" Firefox/128.0"\n' % ts(utc(*D1, 12)))
    L.append(combined("10.0.0.1", utc(*D2, 0, 30), "/home", ua=a))
    # 01:00 at +02:00 is 23:00 UTC the day before.
    tz2 = datetime.timezone(datetime.timedelta(hours=2))
    L.append(combined("10.0.0.2", datetime.datetime(2026, 3, 11, 1, 0, 0,
                                                    tzinfo=tz2),
                      "/about", ua=a))
    return "".join(L)


MIXED_ROWS = [
    "default,2026-03-10,*,8,5",
    "default,2026-03-11,*,1,1",
    "default,2026-03-10,/about,2,2",
    "default,2026-03-10,/café,1,1",
    "default,2026-03-10,/home,4,3",
    "default,2026-03-11,/home,1,1",
    'default,2026-03-10,"/q""x",1,1',
]
MIXED_SUMMARY = {"views": 9, "malformed": 3,
                 "skipped": {"method": 2, "status": 2, "asset": 3, "bot": 3,
                             "path": 1}}


def check_mixed_summary(s, lines=23):
    eq(s["views"], MIXED_SUMMARY["views"], "views counted")
    eq(s["skipped"], MIXED_SUMMARY["skipped"], "skipped")
    eq(s["malformed"], MIXED_SUMMARY["malformed"], "malformed")
    eq(s["lines"], lines, "lines read")


def test_combined_mixed():
    data, cfg = new_store()
    f = write_file(os.path.join(mkdtemp(), "access.log"), mixed_log())
    s, err = import_log(cfg, f)
    check_mixed_summary(s)
    eq(export_rows(cfg), MIXED_ROWS, "rows")
    # Malformed lines are named FILE:LINE and counted on stderr.
    for n in (17, 18, 19):
        check("%s:%d:" % (f, n) in err, "line %d not reported: %r" % (n, err))
    check("malformed 3" in err, "malformed count not on stderr: %r" % err)
    check("3 bots" in err and "3 static assets" in err, "skips: %r" % err)
    rc, out, err = ctl("--config", cfg, "check")
    eq(rc, 0, "check after import-log: %r" % out)


def test_gzip_stdin_and_several_files():
    text = mixed_log().encode()
    tmp = mkdtemp()
    gz = os.path.join(tmp, "access.log.1.gz")
    with open(gz, "wb") as f:
        f.write(gzip.compress(text))
    data, cfg = new_store()
    s, _ = import_log(cfg, gz)
    check_mixed_summary(s)
    eq(export_rows(cfg), MIXED_ROWS, "rows from gzip")
    for payload in (text, gzip.compress(text)):
        data, cfg = new_store()
        s, _ = import_log(cfg, "-", input=payload)
        check_mixed_summary(s)
        eq(export_rows(cfg), MIXED_ROWS, "rows from stdin")
    # Several files add up; the same visitor on the same day is one.
    data, cfg = new_store()
    plain = write_file(os.path.join(tmp, "access.log"), text.decode())
    s, _ = import_log(cfg, plain, gz)
    eq(s["views"], 18, "views of two files")
    rows = export_rows(cfg)
    check("default,2026-03-10,*,16,5" in rows, "site day: %r" % rows)
    check("default,2026-03-10,/home,8,3" in rows, "/home: %r" % rows)
    # A gzip file cut short: what came before counts, the error is said.
    data, cfg = new_store()
    cut = os.path.join(tmp, "cut.gz")
    big = "".join(combined("10.1.%d.%d" % (i // 250, i % 250),
                           utc(2026, 1, 1, 12), "/p%d" % (i % 7))
                  for i in range(5000)).encode()
    z = gzip.compress(big)
    with open(cut, "wb") as f:
        f.write(z[:len(z) // 2])
    rc, out, err = ctl("--config", cfg, "--json", "import-log", cut)
    eq(rc, 0, "exit code on a truncated gzip (stderr %r)" % err)
    check("cut.gz" in err, "truncation not reported: %r" % err)
    s = json.loads(out)
    check(0 < s["views"] < 5000, "views of half a file: %r" % s)


def test_common_format():
    log = "".join([
        common("10.0.0.1", utc(*D1, 8), "/home"),
        common("10.0.0.1", utc(*D1, 9), "/home"),
        common("10.0.0.2", utc(*D1, 9), "/home/"),
        common("10.0.0.2", utc(*D1, 9), "/about", 404),
        common("10.0.0.2", utc(*D1, 9), "/style.css"),
        common("10.0.0.3", utc(*D2, 9), "/about", method="PUT"),
        common("10.0.0.3", utc(*D2, 9), "/about", size=0).replace(
            " 0\n", " -\n"),
        "not a log line\n",
    ])
    f = write_file(os.path.join(mkdtemp(), "common.log"), log)
    data, cfg = new_store()
    s, err = import_log(cfg, f, "--format", "common")
    eq((s["views"], s["malformed"], s["skipped"]["status"],
        s["skipped"]["asset"], s["skipped"]["method"]), (4, 1, 1, 1, 1),
       "common summary")
    eq(export_rows(cfg), [
        "default,2026-03-10,*,3,2",
        "default,2026-03-11,*,1,1",
        "default,2026-03-11,/about,1,1",
        "default,2026-03-10,/home,3,2"], "common rows")
    # Read as combined, common lines are malformed: nothing readable.
    data2, cfg2 = new_store()
    rc, out, err = ctl("--config", cfg2, "import-log", f)
    eq(rc, 1, "common log read as combined (stderr %r)" % err)
    check("--format common" in err, "no hint: %r" % err)
    check(not os.path.exists(os.path.join(data2, "data.mdb")) or
          export_rows(cfg2) == [], "something was imported")


def test_days_in_the_configured_zone():
    log = "".join([
        combined("10.0.0.1", utc(2026, 6, 1, 14, 59, 59), "/a"),  # 23:59 JST
        combined("10.0.0.1", utc(2026, 6, 1, 15, 0, 0), "/a"),    # 00:00 JST
        combined("10.0.0.2", utc(2026, 6, 1, 23, 0, 0), "/a"),    # 08:00 JST
    ])
    f = write_file(os.path.join(mkdtemp(), "tz.log"), log)
    data, cfg = new_store("Asia/Tokyo")
    import_log(cfg, f)
    eq(export_rows(cfg), ["default,2026-06-01,*,1,1",
                          "default,2026-06-02,*,2,2",
                          "default,2026-06-01,/a,1,1",
                          "default,2026-06-02,/a,2,2"], "Tokyo days")
    data, cfg = new_store("America/New_York")
    import_log(cfg, f)
    eq(export_rows(cfg), ["default,2026-06-01,*,3,2",
                          "default,2026-06-01,/a,3,2"], "New York days")


def test_site_and_max_pages():
    data, cfg = new_store(extra="max_pages = 2\n\n[site blog]\n")
    log = "".join(combined("10.0.0.%d" % i, utc(*D1, 10), p)
                  for i, p in enumerate(["/p1", "/p2", "/p3", "/p4", "/p1",
                                         "/p3"]))
    f = write_file(os.path.join(mkdtemp(), "a.log"), log)
    s, _ = import_log(cfg, f, "--site", "blog")
    eq(export_rows(cfg), ["blog,2026-03-10,*,6,6",
                          "blog,2026-03-10,/(other),3,3",
                          "blog,2026-03-10,/p1,2,2",
                          "blog,2026-03-10,/p2,1,1"], "max_pages rows")
    rc, out, err = ctl("--config", cfg, "import-log", f, "--site", "No!")
    eq(rc, 2, "invalid site")


def test_nothing_readable_exit_1():
    data, cfg = new_store()
    tmp = mkdtemp()
    junk = write_file(os.path.join(tmp, "junk.log"), "a\nb\nc\n")
    empty = write_file(os.path.join(tmp, "empty.log"), "")
    good = write_file(os.path.join(tmp, "good.log"),
                      combined("10.0.0.1", utc(*D1), "/g"))
    for files in ([junk], [empty], [os.path.join(tmp, "missing.log")],
                  [junk, os.path.join(tmp, "missing.log")]):
        rc, out, err = ctl("--config", cfg, "import-log", *files)
        eq(rc, 1, "exit code for %s (stderr %r)" % (files, err))
        check(err.strip(), "nothing said for %s" % files)
    # One file readable is enough; the missing one is named.
    rc, out, err = ctl("--config", cfg, "import-log",
                       os.path.join(tmp, "missing.log"), good)
    eq(rc, 0, "exit code with one good file (stderr %r)" % err)
    check("missing.log" in err, "missing file not named: %r" % err)
    eq(export_rows(cfg), ["default,2026-03-10,*,1,1",
                          "default,2026-03-10,/g,1,1"], "rows")
    # Importing the same log again counts again, with a warning.
    rc, out, err = ctl("--config", cfg, "import-log", good)
    eq(rc, 0, "second import")
    check("warning" in err, "no warning about days counted before: %r" % err)


def test_live_tallyd_sees_import():
    d = Daemon()
    d.hit("/live")
    time.sleep(0.4)
    now = datetime.datetime.now(UTC).replace(microsecond=0)
    log = "".join(combined("10.9.0.%d" % i, now - datetime.timedelta(
        seconds=10 + i), "/live", ua=UA_SAFARI) for i in range(5))
    f = write_file(os.path.join(mkdtemp(), "live.log"), log)
    # tallyd's zone: the host's, which is tallyctl's without --config.
    rc, out, err = ctl("--data", d.data, "import-log", f)
    eq(rc, 0, "import-log beside tallyd (stderr %r)" % err)
    c = d.count("/live")
    eq((c["page"]["views"], c["page"]["visitors"]), (6, 6),
       "tallyd's next answer")
    eq(d.hit("/live")["page"]["views"], 7, "and counting goes on")
    d.check_alive()


def _run_stderr_pty(args):
    master, slave = pty.openpty()
    p = subprocess.Popen([tallyctl_path()] + args, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    err = b""
    while True:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            err += chunk
        elif p.poll() is not None:
            break
    p.wait(30)
    os.close(master)
    return p.returncode, err.decode("utf-8", "replace")


def test_progress_only_on_a_terminal():
    # Enough lines for the bar to be drawn at least once.
    lines = []
    start = utc(2026, 1, 1, 0)
    for i in range(300000):
        lines.append(combined("10.%d.%d.1" % (i % 200, i % 97),
                              start + datetime.timedelta(seconds=i),
                              "/p/%d" % (i % 300)))
    f = write_file(os.path.join(mkdtemp(), "big.log"), "".join(lines))
    data, cfg = new_store()
    rc, err = _run_stderr_pty(["--config", cfg, "import-log", f])
    eq(rc, 0, "exit code with stderr on a terminal: %r" % err[-300:])
    check("\r" in err and "%" in err and "lines" in err,
          "no progress bar on a terminal: %r" % err[:300])
    data, cfg = new_store()
    rc, out, err = ctl("--config", cfg, "import-log", f)
    eq(rc, 0, "exit code with stderr a pipe")
    check("\r" not in err and "\033" not in err,
          "progress bar on a pipe: %r" % err[:300])
    check("300,000 lines" in err, "summary: %r" % err)


def test_random_log_against_a_model():
    rng = random.Random(5)
    uas = [BROWSER_UA, BROWSER_UA2, UA_SAFARI] + BOTS
    pages = ["/", "/a", "/b/c", "/d.html", "/e/f/g"]
    variants = {"/a": ["/a/", "/a?x=1", "//a", "/b/../a", "/%61"]}
    assets = ["/s.css", "/s.js", "/i.png", "/f.woff2", "/robots.txt"]
    ips = ["192.0.2.%d" % i for i in range(1, 40)]
    start = utc(2026, 2, 27, 0)
    views = collections.Counter()
    seen = collections.defaultdict(set)
    lines = []
    junk = 0
    for i in range(20000):
        dt = start + datetime.timedelta(seconds=i * 37)
        ip, ua = rng.choice(ips), rng.choice(uas)
        r = rng.random()
        status, method = 200, "GET"
        if r < 0.55:
            page = rng.choice(pages)
            target = rng.choice(variants.get(page, [page]) + [page])
        elif r < 0.75:
            page, target = None, rng.choice(assets)
        elif r < 0.85:
            page = rng.choice(pages)
            target = page
            status = rng.choice([301, 404, 500, 403])
        elif r < 0.95:
            page = rng.choice(pages)
            target = page
            method = rng.choice(["POST", "HEAD", "OPTIONS"])
        else:
            lines.append("junk %d\n" % i)
            junk += 1
            continue
        if rng.random() < 0.1:
            status = 304 if status == 200 else status
        lines.append(combined(ip, dt, target, status, ua, method))
        if (page and method == "GET" and (200 <= status < 300 or
                                          status == 304)
                and ua not in BOTS):
            d = dt.date().isoformat()
            views[(d, page)] += 1
            views[(d, "*")] += 1
            seen[(d, page)].add((ip, ua))
            seen[(d, "*")].add((ip, ua))
    f = write_file(os.path.join(mkdtemp(), "r.log"), "".join(lines))
    data, cfg = new_store()
    s, _ = import_log(cfg, f)
    eq(s["malformed"], junk, "junk lines")
    got = {}
    for row in export_rows(cfg):
        site, d, p, v, u = row.split(",")
        got[(d, p)] = (int(v), int(u))
    want = {k: (views[k], len(seen[k])) for k in views}
    eq(len(got), len(want), "number of rows")
    for k in sorted(want):
        eq(got.get(k), want[k], "views, visitors of %s" % (k,))


# ------------------------------------------------------------------ goaccess

def test_against_goaccess():
    goaccess = shutil.which("goaccess")
    if goaccess is None:
        raise Skip("goaccess not installed")
    # Where the two agree: GET page requests answered 200, browsers only,
    # paths already normal, times in UTC (goaccess takes the log's clock,
    # tallyctl converts to its zone: UTC here). Queries are dropped by
    # both (goaccess: --no-query-string).
    rng = random.Random(11)
    uas = [BROWSER_UA, BROWSER_UA2, UA_SAFARI]
    pages = ["/", "/news/%d" % 1, "/news/2", "/about", "/blog/post.html",
             "/ü"] + ["/p/%d" % i for i in range(40)]
    ips = ["198.51.100.%d" % i for i in range(1, 120)]
    lines = []
    start = utc(2026, 9, 1, 0)
    for i in range(30000):
        dt = start + datetime.timedelta(seconds=i * 41)
        target = rng.choice(pages)
        if rng.random() < 0.1:
            target += "?ref=%d" % rng.randint(1, 9)
        lines.append(combined(rng.choice(ips), dt, target, 200,
                              rng.choice(uas)))
    tmp = mkdtemp()
    f = write_file(os.path.join(tmp, "agree.log"), "".join(lines))
    report = os.path.join(tmp, "report.json")
    p = subprocess.run([goaccess, f, "--log-format=COMBINED",
                        "--no-query-string", "--no-global-config",
                        "--no-progress", "--max-items=1000",
                        "-o", report], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120)
    eq(p.returncode, 0, "goaccess exit code (stderr %r)" % p.stderr[-500:])
    with open(report, encoding="utf-8") as fh:
        r = json.load(fh)
    ga_days = {}
    for x in r["visitors"]["data"]:
        d = x["data"]
        ga_days["%s-%s-%s" % (d[:4], d[4:6], d[6:])] = x["visitors"]["count"]
    ga_pages = {x["data"]: x["hits"]["count"] for x in r["requests"]["data"]}
    check(len(ga_days) >= 10 and len(ga_pages) == len(pages),
          "goaccess saw %d days, %d pages" % (len(ga_days), len(ga_pages)))

    data, cfg = new_store()
    s, _ = import_log(cfg, f)
    eq(s["views"], 30000, "every line counted")
    days, page_views = {}, collections.Counter()
    for row in export_rows(cfg):
        site, d, path, v, u = row.rsplit(",", 4)
        if path == "*":
            days[d] = int(u)
        else:
            page_views[path] += int(v)
    eq(days, ga_days, "daily unique visitors: tallyctl vs goaccess")
    eq(dict(page_views), ga_pages, "views per page: tallyctl vs goaccess")


if __name__ == "__main__":
    harness.main(globals())
