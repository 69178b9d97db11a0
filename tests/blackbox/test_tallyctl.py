#!/usr/bin/env python3
"""tallyctl stats and page, human and --json, against a store written by a
running tallyd; exit codes; read-only commands never create a store."""

import http.client
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (BROWSER_UA, BROWSER_UA2, Daemon, check, eq,  # noqa: E402
                     check_counts_shape, mkdtemp, write_file, run_tallyctl,
                     parse_json)

COMMIT_WAIT = 0.4   # > the 100 ms commit interval

_store = None


def many_hits(d, n, path, ua=BROWSER_UA):
    conn = d.connect()
    last = None
    try:
        for _ in range(n):
            try:
                conn.request("GET", "/hit?path=" + path.replace("/", "%2F"),
                             headers={"User-Agent": ua})
                r = conn.getresponse()
            except (ConnectionResetError, BrokenPipeError,
                    http.client.RemoteDisconnected):
                conn.close()
                conn = d.connect()
                conn.request("GET", "/hit?path=" + path.replace("/", "%2F"),
                             headers={"User-Agent": ua})
                r = conn.getresponse()
            body = r.read()
            eq(r.status, 200, "hit status")
            last = parse_json(body)
            check(last["counted"], "hit not counted: %r" % last)
    finally:
        conn.close()
    return last


def store():
    """A running tallyd with: /a 3x + 1x by a second visitor, /b 2x,
    /big 1234x. Total 1240 views, 2 visitors today."""
    global _store
    if _store is None:
        d = Daemon(["--commit-interval", "100ms"], keep=True)
        many_hits(d, 3, "/a")
        many_hits(d, 2, "/b")
        many_hits(d, 1, "/a", ua=BROWSER_UA2)
        last = many_hits(d, 1234, "/big")
        eq(last["total"]["views"], 1240, "total.views after the setup hits")
        time.sleep(COMMIT_WAIT)
        _store = (d, last["day"])
    check(_store[0].alive(), "tallyd died")
    return _store


def ctl_json(*args):
    rc, out, err = run_tallyctl(*args)
    eq(rc, 0, "exit code of tallyctl %s (stderr %r)" % (" ".join(args), err[:300]))
    try:
        return json.loads(out)
    except ValueError as e:
        raise harness.Failure("tallyctl %s: stdout not JSON (%s): %r"
                              % (" ".join(args), e, out[:300]))


def vv(views, visitors):
    return {"views": views, "visitors": visitors}


def expected_stats(day):
    return {"site": "default", "day": day, "today": vv(1240, 2),
            "yesterday": vv(0, 0), "last7": vv(1240, 2),
            "last30": vv(1240, 2), "total": vv(1240, 2)}


# ------------------------------------------------------------------ stats

def test_stats_json():
    d, day = store()
    s = ctl_json("--data", d.data, "--json", "stats")
    eq(s, expected_stats(day), "stats --json")
    for k in ("today", "yesterday", "last7", "last30", "total"):
        for n in ("views", "visitors"):
            check(type(s[k][n]) is int, "%s.%s not an integer" % (k, n))


def test_stats_json_site_flag():
    d, day = store()
    s = ctl_json("--data", d.data, "--json", "stats", "--site", "default")
    eq(s, expected_stats(day), "stats --json --site default")


def test_stats_human():
    d, day = store()
    rc, out, err = run_tallyctl("--data", d.data, "stats")
    eq(rc, 0, "exit code (stderr %r)" % err[:300])
    check("1,240" in out, "no 1,240 in: %r" % out)
    check(not re.search(r"\b1240\b", out), "1240 without separator in %r" % out)
    low = out.lower()
    for word in ("today", "yesterday", "total"):
        check(word in low, "no %r in: %r" % (word, out))
    check(day in out or "default" in out, "neither site nor day in %r" % out)
    # The today row carries the views and the visitors.
    row = [ln for ln in out.splitlines() if "today" in ln.lower()]
    check(row and "1,240" in row[0] and re.search(r"\b2\b", row[0]),
          "today row %r lacks 1,240 views and 2 visitors" % row[:1])


# ------------------------------------------------------------------ page

def test_page_json():
    d, day = store()
    c = ctl_json("--data", d.data, "--json", "page", "/a")
    check_counts_shape(c, counted=False, reason="readonly")
    eq((c["site"], c["path"], c["day"]), ("default", "/a", day),
       "site, path, day")
    eq(c["page"], vv(4, 2), "page")
    eq(c["page_today"], vv(4, 2), "page_today")
    eq(c["today"], vv(1240, 2), "today")
    eq(c["total"], vv(1240, 2), "total")


def test_page_json_equals_http_count():
    d, day = store()
    c = ctl_json("--data", d.data, "--json", "page", "/big", "--site",
                 "default")
    h = d.count("/big")
    eq(c, h, "tallyctl page --json vs. GET /count")


def test_page_path_is_normalized():
    d, day = store()
    for given in ("/a/", "/x/../a", "//a"):
        c = ctl_json("--data", d.data, "--json", "page", given)
        eq((c["path"], c["page"]), ("/a", vv(4, 2)), "page %r" % given)


def test_page_human():
    d, day = store()
    rc, out, err = run_tallyctl("--data", d.data, "page", "/big")
    eq(rc, 0, "exit code (stderr %r)" % err[:300])
    check("/big" in out, "no path in %r" % out)
    check("1,234" in out, "no 1,234 in %r" % out)
    check("1,240" in out, "no site total 1,240 in %r" % out)
    check(not re.search(r"\b1234\b", out), "1234 without separator in %r" % out)


# ------------------------------------------------------------------ live

def test_sees_new_commits_while_tallyd_runs():
    d = Daemon(["--commit-interval", "100ms"])
    many_hits(d, 2, "/live")
    time.sleep(COMMIT_WAIT)
    c = ctl_json("--data", d.data, "--json", "page", "/live")
    eq(c["page"], vv(2, 1), "page after 2 hits")
    many_hits(d, 3, "/live")
    time.sleep(COMMIT_WAIT)
    c = ctl_json("--data", d.data, "--json", "page", "/live")
    eq(c["page"], vv(5, 1), "page after 5 hits")
    s = ctl_json("--data", d.data, "--json", "stats")
    eq(s["today"], vv(5, 1), "stats today after 5 hits")
    # tallyd still counts after tallyctl read the store.
    eq(many_hits(d, 1, "/live")["page"]["views"], 6, "page.views of a hit")
    d.check_alive()


def test_works_after_tallyd_stopped():
    d = Daemon()
    many_hits(d, 7, "/stopped")
    eq(d.stop(), 0, "exit code of tallyd")
    c = ctl_json("--data", d.data, "--json", "page", "/stopped")
    eq(c["page"], vv(7, 1), "page after tallyd stopped")
    rc, out, err = run_tallyctl("--data", d.data, "stats")
    eq(rc, 0, "stats exit code (stderr %r)" % err[:300])


def test_config_file_and_sites():
    data = os.path.join(mkdtemp(), "data")
    cfg = write_file(os.path.join(mkdtemp(), "tally.ini"),
                     "[store]\ndata = %s\n\n[site blog]\nmax_pages = 100\n"
                     % data)
    d = Daemon(["--config", cfg], data=data)
    many_hits(d, 2, "/a")
    for _ in range(3):
        d.hit("/post", site="blog")
    time.sleep(COMMIT_WAIT)
    s = ctl_json("--config", cfg, "--json", "stats", "--site", "blog")
    eq((s["site"], s["today"], s["total"]), ("blog", vv(3, 1), vv(3, 1)),
       "stats of blog")
    s = ctl_json("--config", cfg, "--json", "stats")
    eq((s["site"], s["total"]), ("default", vv(2, 1)), "stats of default")
    c = ctl_json("--config", cfg, "--json", "page", "/post", "--site", "blog")
    eq((c["site"], c["path"], c["page"], c["total"]),
       ("blog", "/post", vv(3, 1), vv(3, 1)), "page /post of blog")
    c = ctl_json("--config", cfg, "--json", "page", "/post")
    eq(c["page"], vv(0, 0), "page /post of default")


# ------------------------------------------------------------------ errors

def test_missing_data_dir_exit_1_not_created():
    parent = mkdtemp()
    missing = os.path.join(parent, "no", "such")
    for args in (["stats"], ["--json", "stats"], ["page", "/a"],
                 ["--json", "page", "/a"]):
        rc, out, err = run_tallyctl("--data", missing, *args)
        eq(rc, 1, "exit code of %s on a missing dir" % args)
        check(err.strip(), "%s: nothing on stderr" % args)
        check(not os.path.exists(os.path.join(parent, "no")),
              "%s created %s" % (args, missing))


def test_empty_dir_exit_1_left_empty():
    empty = mkdtemp()
    for args in (["stats"], ["page", "/a"]):
        rc, out, err = run_tallyctl("--data", empty, *args)
        eq(rc, 1, "exit code of %s on an empty dir" % args)
        eq(os.listdir(empty), [], "files created by %s" % args)


def test_usage_errors_exit_2():
    d, day = store()
    for args in (["frobnicate"], ["--frobnicate", "stats"],
                 ["stats", "--frobnicate"], ["page"], ["stats", "--site"],
                 [], ["page", "/a", "/b"]):
        rc, out, err = run_tallyctl("--data", d.data, *args)
        eq(rc, 2, "exit code of tallyctl %s" % " ".join(args))
        check(err.strip(), "%s: nothing on stderr" % args)


def test_bad_config_exit_78():
    d, day = store()
    cfg = write_file(os.path.join(mkdtemp(), "bad.ini"),
                     "[store]\ndata = %s\ndurability = sometimes\n" % d.data)
    rc, out, err = run_tallyctl("--config", cfg, "stats")
    eq(rc, 78, "exit code with a bad config (stderr %r)" % err[:300])
    check("%s:3:" % cfg in err, "stderr lacks %s:3: : %r" % (cfg, err[:300]))


def test_unknown_site_in_store():
    d, day = store()
    s = ctl_json("--data", d.data, "--json", "stats")
    rc, out, err = run_tallyctl("--data", d.data, "--json", "stats",
                                "--site", "Bad_Site!")
    check(rc in (1, 2), "exit code %d for an invalid site id" % rc)
    eq(s, expected_stats(day), "stats unchanged")


if __name__ == "__main__":
    harness.main(globals())
