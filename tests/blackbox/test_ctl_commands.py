#!/usr/bin/env python3
"""tallyctl: every command and exit code, against a store that a running,
busy tallyd is writing. Export/import round trip, bad import lines, set
and reset seen by the daemon at once, backup under load then check, check
finding a broken store. Python 3 standard library only."""

import datetime
import http.client
import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (BROWSER_UA, BROWSER_UA2, Daemon, Skip, check, eq,  # noqa: E402
                     mkdtemp, write_file, run_tallyctl, tallyctl_path)

COMMIT_WAIT = 0.5   # > the 100 ms commit interval
COUNT_KEYS = {"site", "path", "day", "page", "page_today", "today", "total",
              "counted", "reason"}


# ------------------------------------------------------------------ helpers

class Load:
    """Sends hits with a browser User-Agent from a thread until stopped."""

    def __init__(self, d, paths=("/load/a", "/load/b", "/load/c"), site=None):
        self.d = d
        self.paths = paths
        self.site = site
        self.sent = 0
        self.errors = []
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)

    def run(self):
        conn = self.d.connect()
        i = 0
        while not self.stop_ev.is_set():
            p = self.paths[i % len(self.paths)]
            i += 1
            q = harness.query(site=self.site, path=p)
            try:
                conn.request("GET", "/hit?" + q,
                             headers={"User-Agent": BROWSER_UA})
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    self.errors.append(r.status)
                else:
                    self.sent += 1
                time.sleep(0.001)
            except (OSError, http.client.HTTPException) as e:
                self.errors.append(repr(e))
                conn.close()
                conn = self.d.connect()
        conn.close()

    def __enter__(self):
        self.t.start()
        # Some hits before the first look.
        deadline = time.monotonic() + 5
        while self.sent < 50 and time.monotonic() < deadline:
            time.sleep(0.01)
        check(self.sent >= 50, "load: only %d hits sent (%r)"
              % (self.sent, self.errors[:3]))
        return self

    def __exit__(self, *exc):
        self.stop_ev.set()
        self.t.join(10)
        check(not self.errors, "load errors: %r" % self.errors[:5])


def ctl(*args, **kw):
    return run_tallyctl(*args, **kw)


def ok(*args, **kw):
    rc, out, err = ctl(*args, **kw)
    eq(rc, 0, "exit code of tallyctl %s (stderr %r)"
       % (" ".join(map(str, args)), err[:400]))
    return out, err


def ctl_json(*args):
    out, err = ok(*args)
    try:
        return json.loads(out)
    except ValueError as e:
        raise harness.Failure("tallyctl %s: not JSON (%s): %r"
                              % (" ".join(args), e, out[:300]))


def vv(v, u):
    return {"views": v, "visitors": u}


def hits(d, path, n, ua=BROWSER_UA, site=None):
    conn = d.connect()
    last = None
    try:
        for _ in range(n):
            conn.request("GET", "/hit?" + harness.query(site=site, path=path),
                         headers={"User-Agent": ua})
            r = conn.getresponse()
            body = r.read()
            eq(r.status, 200, "hit status")
            last = json.loads(body)
    finally:
        conn.close()
    return last


def today_local():
    return datetime.date.today()


def day(offset=0):
    return (today_local() + datetime.timedelta(days=offset)).isoformat()


def export(data, *extra):
    out, _ = ok("--data", data, "export", *extra)
    return out


def run_pty(args, env=None, stdin_text=None, timeout=15):
    """Runs tallyctl with stdin, stdout and stderr on a pseudo-terminal;
    returns (exit code, everything it wrote)."""
    e = dict(os.environ)
    e.pop("NO_COLOR", None)
    e["TERM"] = "xterm"
    if env:
        e.update(env)
    master, slave = pty.openpty()
    p = subprocess.Popen([tallyctl_path()] + [str(a) for a in args],
                         stdin=slave, stdout=slave, stderr=slave, env=e,
                         close_fds=True)
    os.close(slave)
    out = b""
    sent = False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 0.1)
        if r:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
            if stdin_text is not None and not sent and b"[y/N]" in out:
                os.write(master, stdin_text.encode())
                sent = True
        elif p.poll() is not None:
            break
    try:
        rc = p.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        p.kill()
        rc = p.wait()
    os.close(master)
    return rc, out.decode("utf-8", "replace")


# ------------------------------------------------------------------ usage, exit codes

def test_usage_errors_exit_2():
    data = mkdtemp()
    cases = [[], ["frobnicate"], ["--frobnicate", "stats"],
             ["stats", "--frobnicate"], ["stats", "extra"], ["page"],
             ["page", "/a", "/b"], ["stats", "--site"],
             ["stats", "--site", "Bad_Site!"], ["top", "--days", "0"],
             ["top", "--days", "x"], ["top", "--days", "7", "--all"],
             ["top", "--limit", "-1"], ["history", "--days", "-3"],
             ["export", "--format", "xml"], ["import"],
             ["import", "a", "b"], ["import", "f", "--format", "yaml"],
             ["import-log"], ["import-log", "f", "--format", "json"],
             ["set", "--views", "5"], ["set", "--site", "default"],
             ["set", "--site", "default", "--views", "-5"],
             ["set", "--site", "default", "--views", "1e3"],
             ["reset"], ["backup"], ["backup", "a", "b"], ["check", "x"],
             ["sites", "x"], ["page", "/%zz"], ["--json=yes", "stats"]]
    for args in cases:
        rc, out, err = ctl("--data", data, *args)
        eq(rc, 2, "exit code of tallyctl %s" % " ".join(args))
        check(err.strip(), "%s: nothing on stderr" % args)
        check("usage" in err, "%s: no usage line in %r" % (args, err))
    eq(os.listdir(data), [], "files made by usage errors")


def test_help_exit_0():
    for args in (["--help"], ["-h"], ["help"]):
        rc, out, err = ctl(*args)
        eq(rc, 0, "exit code of %s" % args)
        for cmd in ("stats", "top", "page", "history", "sites", "export",
                    "import", "import-log", "set", "reset", "backup",
                    "check"):
            check(cmd in out, "%s not in the help of %s" % (cmd, args))
        check("[--data DIR | --store URL | --config FILE] [--json] "
              "COMMAND [ARGS]" in out,
              "synopsis missing from %r" % out[:200])


def test_config_errors_exit_78():
    tmp = mkdtemp()
    bad = write_file(os.path.join(tmp, "bad.ini"),
                     "[store]\ndata = %s\n[count]\ntimezone = Mars/Base\n"
                     % os.path.join(tmp, "data"))
    rc, out, err = ctl("--config", bad, "stats")
    eq(rc, 78, "exit code with a bad time zone (stderr %r)" % err)
    check("bad.ini:4" in err, "no FILE:LINE in %r" % err)
    bad2 = write_file(os.path.join(tmp, "bad2.ini"), "[nonsense\n")
    rc, out, err = ctl("--config", bad2, "--json", "stats")
    eq(rc, 78, "exit code with a broken file (stderr %r)" % err)
    rc, out, err = ctl("--config", os.path.join(tmp, "missing.ini"), "sites")
    eq(rc, 78, "exit code with a missing file (stderr %r)" % err)
    eq(sorted(os.listdir(tmp)), ["bad.ini", "bad2.ini"], "files made")


def test_missing_store_exit_1_not_created():
    parent = mkdtemp()
    missing = os.path.join(parent, "no", "such")
    for args in (["stats"], ["top"], ["page", "/a"], ["history"], ["sites"],
                 ["export"], ["check"], ["backup", os.path.join(parent, "b")],
                 ["reset", "--site", "default", "--yes"]):
        rc, out, err = ctl("--data", missing, *args)
        eq(rc, 1, "exit code of %s on a missing store" % args)
        check(err.strip(), "%s: nothing on stderr" % args)
        check(not os.path.exists(os.path.join(parent, "no")),
              "%s created %s" % (args, missing))
    empty = mkdtemp()
    for args in (["stats"], ["check"], ["export"]):
        rc, out, err = ctl("--data", empty, *args)
        eq(rc, 1, "exit code of %s on an empty dir" % args)
        eq(os.listdir(empty), [], "files made by %s" % args)


# ------------------------------------------------------------------ reading under load

def test_read_commands_under_load():
    d = Daemon(["--commit-interval", "50ms"])
    hits(d, "/big", 1234)
    hits(d, "/small", 2, ua=BROWSER_UA2)
    time.sleep(COMMIT_WAIT)
    with Load(d) as load:
        last = -1
        for _ in range(5):
            s = ctl_json("--data", d.data, "--json", "stats")
            eq(set(s), {"site", "day", "today", "yesterday", "last7",
                        "last30", "total"}, "stats --json keys")
            for k in ("today", "yesterday", "last7", "last30", "total"):
                eq(set(s[k]), {"views", "visitors"}, "keys of " + k)
                for n in ("views", "visitors"):
                    check(type(s[k][n]) is int, "%s.%s not int" % (k, n))
            eq((s["site"], s["day"]), ("default", day()), "site, day")
            check(s["today"]["views"] >= last, "views went down: %r" % s)
            last = s["today"]["views"]
            check(s["total"]["views"] >= s["last30"]["views"] >=
                  s["last7"]["views"] >= s["today"]["views"] >= 1236,
                  "stats out of order: %r" % s)

            top = ctl_json("--data", d.data, "top", "--json")
            check(isinstance(top, list) and 1 <= len(top) <= 10,
                  "top: %r" % top)
            for e in top:
                eq(set(e), {"path", "views", "visitors"}, "top entry keys")
            check({"path": "/big", "views": 1234, "visitors": 1} in top,
                  "/big missing from top: %r" % top)
            check(all(top[i]["views"] >= top[i + 1]["views"]
                      for i in range(len(top) - 1)), "top not sorted: %r" % top)

            p = ctl_json("--data", d.data, "--json", "page", "/big")
            eq(set(p), COUNT_KEYS, "page --json keys")
            eq((p["counted"], p["reason"]), (False, "readonly"), "counted")
            eq(p["page"], vv(1234, 1), "page /big")

            h = ctl_json("--data", d.data, "--json", "history", "--days", "3")
            eq(len(h), 3, "history rows")
            eq([r["day"] for r in h], [day(-2), day(-1), day()], "days")
            check(h[2]["views"] >= 1236, "history today %r" % h[2])

            sites = ctl_json("--data", d.data, "sites", "--json")
            eq([x["site"] for x in sites], ["default"], "sites")
            check(sites[0]["pages"] >= 2, "pages %r" % sites[0])
            check(sites[0]["total"]["views"] >= 1236, "sites %r" % sites[0])

            ok("--data", d.data, "check")
        check(load.sent > 100, "load sent only %d" % load.sent)
    time.sleep(COMMIT_WAIT)
    s = ctl_json("--data", d.data, "--json", "stats")
    eq(s["today"]["views"], 1236 + load.sent, "views after the load")
    eq(s["total"]["views"], 1236 + load.sent, "total after the load")
    top = ctl_json("--data", d.data, "--json", "top", "--limit", "2")
    eq(len(top), 2, "--limit 2")
    top = ctl_json("--data", d.data, "--json", "top", "--limit", "0")
    eq(len(top), 5, "--limit 0: all pages")
    eq(sum(t["views"] for t in top), s["today"]["views"], "sum of pages")
    d.check_alive()


def test_human_output():
    d = Daemon()
    hits(d, "/big", 1234)
    hits(d, "/b", 3, ua=BROWSER_UA2)
    time.sleep(COMMIT_WAIT)
    out, _ = ok("--data", d.data, "stats")
    check("1,237" in out, "no 1,237 in %r" % out)
    check(not re.search(r"\b1237\b", out), "number without separator")
    for word in ("today", "yesterday", "last 7", "last 30", "total"):
        check(word in out, "%r missing from stats: %r" % (word, out))
    spark = [ln for ln in out.splitlines()
             if re.fullmatch(r"[▁▂▃▄▅▆▇█]{30}", ln.strip())]
    eq(len(spark), 1, "one 30-day sparkline in %r" % out)
    check(spark[0].strip().endswith("█"), "today is the highest day")
    check("\033[" not in out, "colour codes although stdout is a pipe")

    out, _ = ok("--data", d.data, "top")
    rows = [ln.split() for ln in out.splitlines() if "/b" in ln]
    eq([r[-1] for r in rows], ["/big", "/b"], "top order")
    eq(rows[0][1], "1,234", "views column")
    # Aligned: the views end in the same column.
    ends = {re.match(r"\s*\d+\s+([\d,]+)", ln).end(1)
            for ln in out.splitlines() if ln.endswith(("/big", "/b"))}
    eq(len(ends), 1, "views right-aligned in %r" % out)

    out, _ = ok("--data", d.data, "history", "--days", "3")
    bars = [ln for ln in out.splitlines() if day() in ln]
    check(bars and "█" in bars[0], "no bar for today: %r" % out)
    eq([ln.rstrip() for ln in out.splitlines()], out.splitlines(),
       "trailing blanks")
    out, _ = ok("--data", d.data, "history", "--path", "/b", "--days", "2")
    check(re.search(r"%s\s+3\s+1" % day(), out), "history of /b: %r" % out)
    out, _ = ok("--data", d.data, "sites")
    check(re.search(r"default\s+2\s+1,237\s+2\s+1,237\s+2", out),
          "sites row: %r" % out)
    out, _ = ok("--data", d.data, "page", "/big")
    check("1,234" in out and "1,237" in out, "page: %r" % out)


def test_colour_only_on_a_terminal():
    d = Daemon()
    hits(d, "/c", 3)
    time.sleep(COMMIT_WAIT)
    rc, out = run_pty(["--data", d.data, "stats"])
    eq(rc, 0, "exit code on a terminal: %r" % out)
    check("\033[" in out, "no colour on a terminal: %r" % out[:300])
    rc, out = run_pty(["--data", d.data, "stats"], env={"NO_COLOR": "1"})
    eq(rc, 0, "exit code with NO_COLOR")
    check("\033[" not in out, "colour despite NO_COLOR: %r" % out[:300])
    check("▁" in out or "█" in out, "no sparkline: %r" % out[:300])


def test_global_flags_anywhere():
    d = Daemon()
    hits(d, "/g", 2)
    time.sleep(COMMIT_WAIT)
    a = ctl_json("--data", d.data, "--json", "stats")
    b = ctl_json("stats", "--json", "--data", d.data)
    c = ctl_json("--json", "stats", "--data=" + d.data, "--site=default")
    eq(a, b, "flags after the command")
    eq(a, c, "--flag=value forms")
    cfg = write_file(os.path.join(mkdtemp(), "t.ini"),
                     "[store]\ndata = %s\n" % d.data)
    eq(ctl_json("--config", cfg, "--json", "stats"), a, "--config")
    eq(ctl_json("stats", "--json", "--config", cfg), a, "--config after")


def test_top_and_history_windows():
    data = os.path.join(mkdtemp(), "data")
    rows = ["site,day,path,views,visitors",
            "default,%s,*,10,5" % day(-40),
            "default,%s,*,7,3" % day(-5),
            "default,%s,*,4,2" % day(),
            "default,%s,/old,10,5" % day(-40),
            "default,%s,/new,3,1" % day(-5),
            "default,%s,/new,1,1" % day(),
            "default,%s,/mid,4,2" % day(-5),
            "default,%s,/mid,3,1" % day()]
    f = write_file(os.path.join(mkdtemp(), "w.csv"), "\n".join(rows) + "\n")
    ok("--data", data, "import", f)
    t = ctl_json("--data", data, "--json", "top")
    eq(t, [{"path": "/mid", "views": 7, "visitors": 3},
           {"path": "/new", "views": 4, "visitors": 2}], "top, 30 days")
    t = ctl_json("--data", data, "--json", "top", "--days", "1")
    eq(t, [{"path": "/mid", "views": 3, "visitors": 1},
           {"path": "/new", "views": 1, "visitors": 1}], "top --days 1")
    t = ctl_json("--data", data, "--json", "top", "--all")
    eq([e["path"] for e in t], ["/old", "/mid", "/new"], "top --all")
    eq(t[0], {"path": "/old", "views": 10, "visitors": 5}, "top --all /old")
    t = ctl_json("--data", data, "--json", "top", "--days", "60", "--limit",
                 "1")
    eq(t, [{"path": "/old", "views": 10, "visitors": 5}], "top --days 60")
    h = ctl_json("--data", data, "--json", "history", "--path", "/mid",
                 "--days", "6")
    eq(h, [{"day": day(-5), "views": 4, "visitors": 2}] +
       [{"day": day(i), "views": 0, "visitors": 0} for i in range(-4, 0)] +
       [{"day": day(), "views": 3, "visitors": 1}], "history --path /mid")
    h = ctl_json("--data", data, "--json", "history")
    eq(len(h), 30, "history: 30 days by default")
    eq(sum(r["views"] for r in h), 11, "site views in 30 days")
    s = ctl_json("--data", data, "--json", "stats")
    eq((s["today"], s["yesterday"], s["last7"], s["last30"], s["total"]),
       (vv(4, 2), vv(0, 0), vv(11, 5), vv(11, 5), vv(21, 10)), "stats")
    ok("--data", data, "check")


def test_top_while_old_days_leave_the_window():
    """top --days 30 reads the sums of the last 30 days that the store
    keeps; when a new day begins, the rows of the days that left are taken
    out of them a few hundred per commit, and until then top subtracts
    them itself. Pages viewed only before the window do not show."""
    data = os.path.join(mkdtemp(), "data")
    pages = 400
    rows, site, want = ["site,day,path,views,visitors"], {}, {}
    for off in range(-45, -27):
        for p in range(pages):
            v = 1 + (p * 7 + off * 3) % 11
            rows.append("default,%s,/p%03d,%d,1" % (day(off), p, v))
            site[off] = site.get(off, 0) + v
            if off > -30:
                want["/p%03d" % p] = want.get("/p%03d" % p, 0) + v
    rows += ["default,%s,*,%d,1" % (day(o), v) for o, v in site.items()]
    ok("--data", data, "import", write_file(
        os.path.join(mkdtemp(), "a.csv"), "\n".join(rows) + "\n"))
    # A new day: its one commit takes out only a few of the 16 days x 400
    # rows that left the window.
    ok("--data", data, "import", write_file(
        os.path.join(mkdtemp(), "b.csv"),
        "site,day,path,views,visitors\ndefault,%s,*,5,1\n"
        "default,%s,/p399,5,1\n" % (day(), day())))
    want["/p399"] += 5
    order = sorted(want.items(), key=lambda e: (-e[1], e[0]))
    t = ctl_json("--data", data, "--json", "top", "--limit", "0")
    eq([(e["path"], e["views"]) for e in t], order, "top, every page")
    for limit in (1, 7):
        t = ctl_json("--data", data, "--json", "top", "--limit", str(limit))
        eq([(e["path"], e["views"]) for e in t], order[:limit],
           "top --limit %d" % limit)
    out, _ = ok("--data", data, "check")
    check(out.startswith("ok:"), "check: %r" % out)


# ------------------------------------------------------------------ export / import

def test_export_import_round_trip_under_load():
    d = Daemon(["--commit-interval", "50ms"])
    hits(d, "/a,b", 3)                       # a comma: quoted in CSV
    hits(d, '/q"uote', 2, ua=BROWSER_UA2)    # a quote: doubled in CSV
    hits(d, "/ünï<code>", 1)
    hits(d, "/x", 5, site=None)
    time.sleep(COMMIT_WAIT)     # the hits on disk before set reads them
    ok("--data", d.data, "set", "--site", "default", "--views", "254014")
    ok("--data", d.data, "set", "--site", "default", "--path", "/x",
       "--views", "2", "--visitors", "0",    # a negative adjustment
       "--force")
    time.sleep(COMMIT_WAIT)
    with Load(d):
        for fmt in ("csv", "json"):
            e1 = export(d.data, "--format", fmt)
            f = write_file(os.path.join(mkdtemp(), "e." + fmt), e1)
            empty = os.path.join(mkdtemp(), "data")
            out, _ = ok("--data", empty, "import", f)
            e2 = export(empty, "--format", fmt)
            eq(e2, e1, "%s export after import into an empty store" % fmt)
            ok("--data", empty, "check")
    time.sleep(COMMIT_WAIT)     # the load's last hits on disk
    csv = export(d.data)
    lines = csv.splitlines()
    eq(lines[0], "site,day,path,views,visitors", "CSV header")
    check('default,%s,"/a,b",3,1' % day() in lines, "comma path: %r" % csv)
    check('default,%s,"/q""uote",2,1' % day() in lines, "quote path")
    check("default,-,*," in csv, "site adjustment row missing: %r" % csv)
    check("default,-,/x,-3,-1" in lines, "negative adjustment: %r" % csv)
    # Order: site row first, adjustment before days, days ascending.
    eq(lines[1].split(",")[:3], ["default", "-", "*"], "first row")
    j = json.loads(export(d.data, "--format", "json"))
    check(isinstance(j, list) and all(set(r) == {"site", "day", "path",
          "views", "visitors"} for r in j), "JSON rows: %r" % j[:3])
    eq(json.loads(export(d.data, "--json")), j, "--json means JSON")
    check({"site": "default", "day": day(), "path": "/ünï<code>",
           "views": 1, "visitors": 1} in j, "unicode path row")
    # --site limits the export; a site nobody knows is a mistake.
    check(all(r.startswith("default,") for r in
              export(d.data, "--site", "default").splitlines()[1:]),
          "export --site default holds another site")
    rc, out, err = ctl("--data", d.data, "export", "--site", "nosuch")
    eq(rc, 1, "export of an unknown site (stderr %r)" % err)
    check("known sites: default" in err, "no known sites in %r" % err)


def test_import_bad_line_imports_nothing():
    d = Daemon()
    hits(d, "/keep", 4)
    time.sleep(COMMIT_WAIT)
    before = export(d.data)
    tmp = mkdtemp()
    bad = [
        ("site,day,path,views,visitors\ndefault,%s,/n,1,1\n"
         "default,2026-02-30,/n,1,1\n" % day(), 3, "day"),
        ("default,%s,/n,1,1\ndefault,%s,/n,1\n" % (day(), day()), 2, "field"),
        ("default,%s,/n,1,1\n\nBAD SITE,%s,/n,1,1\n" % (day(), day()), 3,
         "site"),
        ("default,%s,nopath,1,1\n" % day(), 1, "path"),
        ("default,%s,/n,x,1\n" % day(), 1, "views"),
        ("default,%s,/n,-1,1\n" % day(), 1, "views"),
        ("default,%s,\"/n,1,1\n" % day(), 1, "quote"),
        ('[{"site":"default","day":"%s","path":"/n","views":1,"visitors":1},'
         '\n{"site":"default","day":"%s","path":"/n","views":1}]'
         % (day(), day()), 2, "visitors"),
        ('[\n{"site":"default","day":"%s","path":"/n","views":1,"visitors":1}'
         ',\n\n{"site":"default","day":"-","path":"*","views":1.5,'
         '"visitors":1}]' % day(), 4, "integer"),
        ('[{"site":"default"', 1, "expected"),
    ]
    for i, (text, line, word) in enumerate(bad):
        f = write_file(os.path.join(tmp, "bad%d.txt" % i), text)
        rc, out, err = ctl("--data", d.data, "import", f)
        eq(rc, 1, "exit code for %r (stderr %r)" % (text, err))
        check(("%s:%d: " % (f, line)) in err,
              "no %s:%d: in %r" % (f, line, err))
        check(word in err.lower(), "%r not named in %r" % (word, err))
        eq(export(d.data), before, "store changed by bad import %d" % i)
    # A bad file never creates a store.
    fresh = os.path.join(mkdtemp(), "data")
    rc, out, err = ctl("--data", fresh, "import",
                       os.path.join(tmp, "bad0.txt"))
    eq(rc, 1, "exit code into a new store")
    check(not os.path.exists(fresh), "a bad import created a store")
    rc, out, err = ctl("--data", d.data, "import", os.path.join(tmp, "none"))
    eq(rc, 1, "exit code for a missing file")


def test_import_merges_and_is_seen_by_tallyd():
    d = Daemon()
    hits(d, "/m", 2)
    time.sleep(COMMIT_WAIT)
    rows = ("site,day,path,views,visitors\n"
            "default,%s,*,100,10\ndefault,%s,/m,100,10\n"
            "default,2020-01-01,*,5,1\ndefault,2020-01-01,/m,5,1\n"
            % (day(), day()))
    f = write_file(os.path.join(mkdtemp(), "m.csv"), rows)
    # Today's rows meet the hits tallyd counted: adding is asked for.
    ok("--data", d.data, "import", "--add", f)
    c = d.count("/m")
    eq((c["page"]["views"], c["page_today"]["views"], c["today"]["views"],
        c["total"]["views"]), (107, 102, 102, 107), "counts after import")
    ok("--data", d.data, "import", f, "--format", "csv", "--add")
    c = d.hit("/m")
    eq(c["page"]["views"], 213, "page after a second import and a hit")
    # stdin and JSON
    j = ('[{"site":"default","day":"%s","path":"*","views":1,"visitors":0},'
         '{"site":"default","day":"%s","path":"/m","views":1,"visitors":0}]')
    rc, out, err = ctl("--data", d.data, "import", "-",
                       input=(j % ("2020-01-02", "2020-01-02")).encode())
    eq(rc, 0, "import from stdin (stderr %r)" % err)
    eq(d.count("/m")["page"]["views"], 214, "page after stdin import")


# ------------------------------------------------------------------ set / reset

def test_set_shows_in_tallyd_at_once():
    d = Daemon()
    hits(d, "/", 3)
    time.sleep(COMMIT_WAIT)
    ok("--data", d.data, "set", "--site", "default", "--views", "254014")
    c = d.hit("/")
    eq(c["total"]["views"], 254015, "total.views after set and a hit")
    eq(c["today"]["views"], 4, "today is still the day's count")
    ok("--data", d.data, "set", "--site", "default", "--path", "/news/123",
       "--views", "302", "--visitors", "120")
    c = d.hit("/news/123")
    eq((c["page"]["views"], c["page"]["visitors"]), (303, 121),
       "page after set and a hit")
    s = ctl_json("--data", d.data, "--json", "stats")
    time.sleep(COMMIT_WAIT)
    s = ctl_json("--data", d.data, "--json", "stats")
    eq(s["total"]["views"], 254016, "stats total")
    # set again: absolute, not added
    out, _ = ok("--data", d.data, "set", "--site", "default", "--views",
                "1000")
    check("1,000" in out, "set prints the count: %r" % out)
    eq(d.count("/")["total"]["views"], 1000, "set is absolute")
    ok("--data", d.data, "check")


def test_reset():
    d = Daemon()
    hits(d, "/r1", 3)
    hits(d, "/r2", 2)
    hits(d, "/p", 1, site=None)
    time.sleep(COMMIT_WAIT)
    before = export(d.data)
    rc, out, err = ctl("--data", d.data, "reset", "--site", "default",
                       input=b"y\n")
    eq(rc, 2, "reset without --yes and without a terminal")
    check("--yes" in err, "does not mention --yes: %r" % err)
    eq(export(d.data), before, "reset without --yes deleted something")

    ok("--data", d.data, "reset", "--site", "default", "--path", "/r1",
       "--yes")
    c = d.count("/r1")
    eq((c["page"]["views"], c["total"]["views"]), (0, 6),
       "page reset; the site keeps its views")
    eq(d.count("/r2")["page"]["views"], 2, "other page untouched")
    ok("--data", d.data, "check")
    ok("--data", d.data, "reset", "--site", "default", "--yes")
    c = d.count("/r2")
    eq((c["page"]["views"], c["total"]["views"]), (0, 0), "site reset")
    eq(export(d.data), "site,day,path,views,visitors\n", "export after reset")
    eq(d.hit("/r2")["total"]["views"], 1, "counting goes on")


def test_reset_asks_on_a_terminal():
    d = Daemon()
    hits(d, "/t", 3)
    time.sleep(COMMIT_WAIT)
    rc, out = run_pty(["--data", d.data, "reset", "--site", "default"],
                      stdin_text="n\n")
    eq(rc, 1, "answering no: %r" % out)
    check("[y/N]" in out and "3 views" in out, "question: %r" % out)
    eq(d.count("/t")["page"]["views"], 3, "nothing deleted on no")
    rc, out = run_pty(["--data", d.data, "reset", "--site", "default",
                       "--path", "/t"], stdin_text="y\n")
    eq(rc, 0, "answering yes: %r" % out)
    eq(d.count("/t")["page"]["views"], 0, "deleted on yes")


# ------------------------------------------------------------------ backup / check

def test_backup_under_load_then_check():
    d = Daemon(["--commit-interval", "20ms"])
    hits(d, "/before", 10)
    dest_parent = mkdtemp()
    with Load(d, paths=["/l/%d" % i for i in range(200)]):
        for i in range(3):
            dest = os.path.join(dest_parent, "b%d" % i)
            out, _ = ok("--data", d.data, "backup", dest)
            check(os.path.exists(os.path.join(dest, "data.mdb")),
                  "no data.mdb in the backup")
            out, _ = ok("--data", dest, "check")
            check(out.startswith("ok"), "check output %r" % out)
            c = ctl_json("--data", dest, "--json", "page", "/before")
            eq(c["page"]["views"], 10, "page in the backup")
    # The daemon's store is bigger than its compacted copy.
    check(os.path.getsize(os.path.join(dest_parent, "b0", "data.mdb")) <=
          os.path.getsize(os.path.join(d.data, "data.mdb")), "not compacted")
    rc, out, err = ctl("--data", d.data, "backup",
                       os.path.join(dest_parent, "b0"))
    eq(rc, 1, "backup into a non-empty directory")
    j = ctl_json("--data", os.path.join(dest_parent, "b1"), "--json", "check")
    eq((j["ok"], j["problems"]), (True, []), "check --json")
    d.check_alive()


def test_check_finds_inconsistent_counts():
    # A page with more views on a day than its site: only a broken writer
    # makes that (import refuses such a file), here a patched day row.
    data = os.path.join(mkdtemp(), "data")
    f = write_file(os.path.join(mkdtemp(), "x.csv"),
                   "default,%s,*,5,2\ndefault,%s,/orphan,5,2\n"
                   % (day(), day()))
    ok("--data", data, "import", f)
    ok("--data", data, "check")
    # Day rows: id (u32 BE; the site took 1, the page 2), day (u32 BE)
    # -> views, visitors (u64).
    n = (datetime.date.fromisoformat(day()) - datetime.date(1970, 1, 1)).days
    if _patch(os.path.join(data, "data.mdb"),
              (2).to_bytes(4, "big") + n.to_bytes(4, "big"), 0,
              lambda v: 50 if v == 5 else None) == 0:
        raise Skip("day row layout not recognised")
    rc, out, err = ctl("--data", data, "check")
    eq(rc, 1, "check exit code (out %r)" % out)
    check("/orphan" in out and "problem" in out, "not named: %r" % out)
    j = json.loads(ctl("--data", data, "--json", "check")[1])
    eq(j["ok"], False, "check --json ok")
    check(j["problems"], "no problems listed")


def _patch(path, key, at, fn):
    """Rewrites the 8-byte little-endian number at offset at of the value
    after key (LMDB keeps a leaf's value right after its key). Returns how
    many places were patched."""
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        n = 0
        i = data.find(key)
        while i >= 0:
            j = i + len(key) + at
            old = int.from_bytes(data[j:j + 8], "little")
            new = fn(old)
            if new is not None:
                data[j:j + 8] = new.to_bytes(8, "little")
                n += 1
            i = data.find(key, i + 1)
        f.seek(0)
        f.write(data)
    return n


def test_check_finds_a_corrupt_store():
    d = Daemon()
    hits(d, "/corrupt-me", 7)
    eq(d.stop(), 0, "tallyd exit")
    dest = os.path.join(mkdtemp(), "copy")
    ok("--data", d.data, "backup", dest)   # one copy of every record
    ok("--data", dest, "check")
    mdb = os.path.join(dest, "data.mdb")
    # The series record: u32 id, u32 npages, u64 views, ... Only patched
    # where the views read 7, so that a changed layout skips, not fails.
    n = _patch(mdb, b"default\x00/corrupt-me", 8,
               lambda v: 1007 if v == 7 else None)
    if n == 0:
        raise Skip("series record layout not recognised")
    rc, out, err = ctl("--data", dest, "check")
    eq(rc, 1, "check of a patched total (out %r, err %r)" % (out, err))
    check("/corrupt-me" in out and "1007" in out, "not named: %r" % out)

    # A truncated data file: exit 1 with a message, never a crash.
    dest2 = os.path.join(mkdtemp(), "copy2")
    ok("--data", d.data, "backup", dest2)
    mdb = os.path.join(dest2, "data.mdb")
    size = os.path.getsize(mdb)
    for keep in (size // 2, 8192, 100):
        with open(mdb, "r+b") as f:
            f.truncate(keep)
        for args in (["check"], ["stats"], ["export"]):
            rc, out, err = ctl("--data", dest2, *args)
            eq(rc, 1, "%s on a store cut to %d bytes (err %r)"
               % (args, keep, err))
            check(err.strip(), "no message for %s" % args)
    # Not a store at all.
    dest3 = mkdtemp()
    write_file(os.path.join(dest3, "data.mdb"), "hello" * 2000)
    rc, out, err = ctl("--data", dest3, "check")
    eq(rc, 1, "check of a non-store (err %r)" % err)


if __name__ == "__main__":
    harness.main(globals())
