#!/usr/bin/env python3
"""Referrers: of a counted view that came from another site, tallyd keeps
the referring host alone, per site and day, search engines and social
sites under one name each, at most max_referrers hosts a day (the rest
under "(other)"); tallyctl lists, exports, imports, resets and checks
them; a store of the schema before them is migrated, never refused."""

import json
import os
import re
import struct
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (BROWSER_UA, Daemon, check,  # noqa: E402
                     check_counts_shape, eq, mdb_dump, mdb_load,
                     mkdtemp, need_lmdb_tools, parse_json,
                     run_tallyctl, utc_today, write_file)

BLOG = "https://blog.example"
SITES_INI = """\
[site blog]
origins = https://blog.example, https://www.blog.example
"""


def daemon(extra=(), ini=SITES_INI, data=None):
    """A tallyd whose answered hits are on disk (durability strict), so
    that tallyctl sees them at once."""
    args = ["--durability", "strict"]
    if ini is not None:
        args += ["--config", write_file(os.path.join(mkdtemp(), "t.ini"),
                                        ini)]
    return Daemon(args + list(extra), data=data)


def post(d, referrer, path="/p", site=None, origin=BLOG, headers=None):
    """A hit as tally.js sends it: text/plain JSON, with the page's
    Origin. Returns the counts JSON."""
    body = {"path": path, "referrer": referrer}
    if site is not None:
        body["site"] = site
    h = {"User-Agent": BROWSER_UA, "Content-Type": "text/plain"}
    if origin is not None:
        h["Origin"] = origin
    h.update(headers or {})
    st, _, data = d.request("POST", "/hit", h, json.dumps(body))
    eq(st, 200, "POST /hit referrer %r: body %r" % (referrer, data[:200]))
    return check_counts_shape(parse_json(data), counted=True)


def ctl(*args, want=0):
    rc, out, err = run_tallyctl(*args)
    eq(rc, want, "tallyctl %s: exit (stdout %r, stderr %r)"
       % (" ".join(map(str, args)), out[-500:], err[-500:]))
    return out, err


def referrers(data, site="blog", *extra):
    """tallyctl --json referrers, as [(host, views)] in its order."""
    out, _ = ctl("--data", data, "--json", "referrers", "--site", site,
                 *extra)
    rows = parse_json(out.encode())
    for r in rows:
        eq(sorted(r), ["host", "views"], "keys of a referrers row")
    return [(r["host"], r["views"]) for r in rows]


def site_today(d, site="blog"):
    c = d.count("/p", site=site)
    return c["today"]["views"]


def export(data, *extra):
    out, _ = ctl("--data", data, "export", *extra)
    return out


# ------------------------------------------------------------ what is kept

def test_external_referrer_keeps_the_host_only():
    d = daemon()
    post(d, "https://www.google.co.uk/search?q=secret-query")
    post(d, "https://user:pw@news.example.net:8443/a/secret-path?c=d#e")
    post(d, "https://www.other.example/x")
    post(d, "https://other.example/y")
    # the site's own pages, under any of its hosts, schemes or ports
    post(d, "https://blog.example/previous-page")
    post(d, "https://www.blog.example/")
    post(d, "http://blog.example:8080/old")
    eq(site_today(d), 7, "every view counts, from wherever it came")
    eq(referrers(d.data), [("other.example", 2), ("Google", 1),
                           ("news.example.net", 1)], "referrers")
    text = export(d.data)
    for secret in ("secret", "user", "pw@", "8443", "/a/", "q=", "www."):
        check(secret not in text, "%r in the export: %r" % (secret, text))
    d.check_alive()


def test_site_of_any_origin_uses_the_page_that_sent_the_hit():
    d = daemon(ini=None)    # the default site takes any origin
    mine = "https://mine.example"
    post(d, mine + "/before", origin=mine, site="default")
    post(d, "https://www.mine.example/x", origin=mine, site="default")
    post(d, "https://elsewhere.example/", origin=mine, site="default")
    # no Origin: the Referer's origin is the page's
    post(d, mine + "/before", origin=None, site="default",
         headers={"Referer": mine + "/page"})
    post(d, "https://second.example/", origin=None, site="default",
         headers={"Referer": mine + "/page"})
    eq(referrers(d.data, "default"),
       [("elsewhere.example", 1), ("second.example", 1)], "referrers")
    # also from a GET with the parameter, and from the pixel
    st, _, _ = d.request("GET", "/hit?site=default&path=/g&referrer=" +
                         urllib.parse.quote("https://third.example/q?x=1"),
                         {"User-Agent": BROWSER_UA, "Referer": mine + "/g"})
    eq(st, 200, "GET /hit status")
    st, _, _ = d.request("GET", "/pixel.gif?site=default&path=/g&referrer=" +
                         urllib.parse.quote("https://third.example/"),
                         {"User-Agent": BROWSER_UA, "Referer": mine + "/g"})
    eq(st, 200, "GET /pixel.gif status")
    eq(dict(referrers(d.data, "default")).get("third.example"), 2,
       "views from third.example")


def test_search_engines_and_social_sites_are_grouped():
    d = daemon()
    groups = {
        "Google": ["https://www.google.com/", "https://www.google.de/url?q=x",
                   "https://google.co.jp/", "https://news.google.com/"],
        "X (Twitter)": ["https://t.co/abc", "https://x.com/someone",
                        "https://mobile.twitter.com/x"],
        "Facebook": ["https://m.facebook.com/", "https://l.facebook.com/l"],
        "LinkedIn": ["https://lnkd.in/x", "https://www.linkedin.com/feed/"],
        "Hacker News": ["https://news.ycombinator.com/item?id=1"],
        "DuckDuckGo": ["https://duckduckgo.com/"],
        "Bing": ["https://www.bing.com/search?q=x"],
        "Reddit": ["https://old.reddit.com/r/c/"],
    }
    for urls in groups.values():
        for u in urls:
            post(d, u)
    # a Mastodon instance, and a look-alike, stay hosts
    post(d, "https://mastodon.social/@someone")
    post(d, "https://google.example.com/")
    got = dict(referrers(d.data))
    for name, urls in groups.items():
        eq(got.get(name), len(urls), "views under %s" % name)
    eq(got.get("mastodon.social"), 1, "a Mastodon instance")
    eq(got.get("google.example.com"), 1, "a look-alike of Google")
    eq(len(got), len(groups) + 2, "names: %r" % sorted(got))


def test_cap_and_other():
    d = daemon(["--max-referrers", "3"])
    for h in ("a", "b", "c", "d", "e"):
        post(d, "https://%s.example/" % h)
    post(d, "https://f.example/")
    post(d, "https://a.example/again")    # a kept host counts on
    eq(referrers(d.data), [("(other)", 3), ("a.example", 2), ("b.example", 1),
                           ("c.example", 1)], "referrers past the cap")
    ctl("--data", d.data, "check")
    d.stop()
    # 0 keeps no host: every view from elsewhere is "(other)"
    d = daemon(["--max-referrers", "0"])
    post(d, "https://a.example/")
    post(d, "https://b.example/")
    eq(referrers(d.data), [("(other)", 2)], "referrers with a cap of 0")
    # the key is checked
    rc, _, err = run_tallyctl("--data", d.data, "--config", write_file(
        os.path.join(mkdtemp(), "bad.ini"), "[count]\nmax_referrers = -1\n"),
        "referrers", "--site", "default")
    eq(rc, 78, "a bad max_referrers (stderr %r)" % err)
    check("max_referrers" in err, "the error names the key: %r" % err)


def test_tallyctl_referrers_text_and_json():
    data = os.path.join(mkdtemp(), "data")
    today = utc_today()
    old = "2000-01-01"
    csv = ("site,day,path,views,visitors\n"
           "blog,{t},*,1300000,9\nblog,{o},*,5,1\n"
           "blog,{t},referrer:Google,1234567,0\n"
           "blog,{t},referrer:news.example,2000,0\n"
           "blog,{t},referrer:b.example,2000,0\n"
           "blog,{t},referrer:(other),12,0\n"
           "blog,{o},referrer:old.example,5,0\n").format(t=today, o=old)
    ctl("--data", data, "import", "--create",
        write_file(os.path.join(mkdtemp(), "r.csv"), csv))
    # most first, a tie by name; a day outside the window is not there
    eq(referrers(data), [("Google", 1234567), ("b.example", 2000),
                         ("news.example", 2000), ("(other)", 12)], "JSON")
    eq(referrers(data, "blog", "--days", "36600")[-1], ("old.example", 5),
       "a long window reaches the old day")
    out, _ = ctl("--data", data, "referrers", "--site", "blog")
    lines = out.splitlines()
    check(lines[0].startswith("blog  referrers, 30 days ("), "title %r"
          % lines[0])
    rows = [ln for ln in lines[2:] if ln.strip()]
    eq([r.split()[:2] for r in rows[1:]],
       [["1", "1,234,567"], ["2", "2,000"], ["3", "2,000"], ["4", "12"]],
       "ranks and views with thousands separators")
    check(rows[1].endswith("Google") and rows[4].endswith("(other)"),
          "hosts: %r" % rows)
    # right-aligned numbers: each ends where the header's "views" does
    end = rows[0].index("views") + len("views")
    for r in rows[1:]:
        m = re.match(r"\s*\d+\s+(\S+)", r)
        eq(m and m.end(1), end, "alignment of %r" % r)
    eq(referrers(data, "blog", "--days", "1"), referrers(data),
       "--days 1: today")
    # no referrers, an unknown site, a bad --days
    ctl("--data", data, "import", "--create", write_file(
        os.path.join(mkdtemp(), "s.csv"),
        "site,day,path,views,visitors\nshop,%s,*,1,1\n" % today))
    out, _ = ctl("--data", data, "referrers", "--site", "shop")
    check("no views from other sites" in out, "empty: %r" % out)
    eq(referrers(data, "shop"), [], "empty JSON")
    ctl("--data", data, "referrers", "--site", "nosuch", want=1)
    ctl("--data", data, "referrers", "--days", "0", want=2)
    out, _ = ctl("help", "referrers")
    check("--days" in out and "referrers" in out, "help: %r" % out)


# ------------------------------------------------- export, import, reset

def test_export_import_round_trip():
    d = daemon()
    for u in ("https://www.google.com/", "https://a.example/x",
              "https://b.example/", "https://a.example/y"):
        post(d, u)
    post(d, "https://b.example/", path="/other-page")
    d.stop()
    for fmt in ("csv", "json"):
        first = export(d.data, "--format", fmt)
        if fmt == "csv":
            check("blog,%s,referrer:a.example,2,0\n" % utc_today() in first,
                  "a referrer row in the export: %r" % first)
            # a site's referrer rows follow its pages' rows
            lines = first.splitlines()
            kinds = ["r" if ",referrer:" in ln else "s" for ln in lines[1:]]
            eq("".join(kinds), "s" * kinds.count("s") + "r" * 3,
               "order of the rows")
        f = write_file(os.path.join(mkdtemp(), "e." + fmt), first)
        data = os.path.join(mkdtemp(), "data")
        ctl("--data", data, "import", "--create", f)
        eq(export(data, "--format", fmt), first, "export after import "
           "(%s)" % fmt)
        ctl("--data", data, "check")
        # twice: refused, nothing imported; with --add, added
        _, err = ctl("--data", data, "import", f, want=1)
        check("--add" in err, "import twice: %r" % err)
        eq(export(data, "--format", fmt), first, "after a refused import")
        ctl("--data", data, "import", "--add", f)
        eq(dict(referrers(data)).get("a.example"), 4, "after --add")
    # an export from before referrers imports as it is
    old = "\n".join(ln for ln in export(d.data).splitlines()
                    if "referrer:" not in ln) + "\n"
    data = os.path.join(mkdtemp(), "data")
    ctl("--data", data, "import", "--create",
        write_file(os.path.join(mkdtemp(), "old.csv"), old))
    eq(export(data), old, "an old export round trip")
    eq(referrers(data), [], "no referrers from an old export")


def test_reset():
    d = daemon()
    post(d, "https://a.example/", path="/one")
    post(d, "https://b.example/", path="/two")
    d.stop()
    ctl("--data", d.data, "reset", "--site", "blog", "--path", "/one", "--yes")
    eq(referrers(d.data), [("a.example", 1), ("b.example", 1)],
       "referrers after the reset of a page")
    ctl("--data", d.data, "check")
    d.start()
    post(d, "https://c.example/", site="blog")
    d.stop()
    out, _ = ctl("--data", d.data, "reset", "--site", "blog", "--yes")
    check("referrers" in out, "reset says it: %r" % out)
    # a site the store no longer knows, unless the configuration does
    ctl("--data", d.data, "referrers", "--site", "blog", want=1)
    ini = write_file(os.path.join(mkdtemp(), "t.ini"), SITES_INI)
    out, _ = ctl("--data", d.data, "--config", ini, "--json", "referrers",
                 "--site", "blog")
    eq(parse_json(out.encode()), [], "referrers after the reset of the site")
    check("referrer:" not in export(d.data), "no referrer row left")
    ctl("--data", d.data, "check")


# ------------------------------------------------------- check and import

def test_import_refuses_bad_referrer_rows():
    today = utc_today()
    head = "site,day,path,views,visitors\nblog,%s,*,10,2\n" % today
    bad = {
        "referrer:https://a.example/x": "invalid referrer",
        "referrer:a.example/path": "invalid referrer",
        "referrer:www.a.example": "invalid referrer",
        "referrer:A.example": "invalid referrer",
        "referrer:google.com": "invalid referrer",
        "referrer:10.0.0.1": "invalid referrer",
        "referrer:": "invalid referrer",
    }
    data = os.path.join(mkdtemp(), "data")
    for path, msg in bad.items():
        f = write_file(os.path.join(mkdtemp(), "b.csv"),
                       head + "blog,%s,%s,1,0\n" % (today, path))
        _, err = ctl("--data", data, "import", "--create", f, want=1)
        check("%s:3: " % f in err and msg in err,
              "%r: want %r at line 3: %r" % (path, msg, err))
    for row, msg in (("blog,-,referrer:a.example,1,0", "no day"),
                     ("blog,%s,referrer:a.example,0,0" % today, "1 to"),
                     ("blog,%s,referrer:a.example,1,1" % today, "visitors")):
        f = write_file(os.path.join(mkdtemp(), "b.csv"), head + row + "\n")
        _, err = ctl("--data", data, "import", "--create", f, want=1)
        check(":3: " in err and msg in err, "%r: %r" % (row, err))
    check(not os.path.exists(os.path.join(data, "data.mdb")) or
          export(data) == "site,day,path,views,visitors\n",
          "nothing imported")


def test_import_refuses_what_check_would():
    today = utc_today()
    data = os.path.join(mkdtemp(), "data")
    # more views from referrers than the site had that day
    f = write_file(os.path.join(mkdtemp(), "v.csv"),
                   "site,day,path,views,visitors\nblog,%s,*,3,1\n"
                   "blog,%s,referrer:a.example,2,0\n"
                   "blog,%s,referrer:b.example,2,0\n" % (today, today, today))
    _, err = ctl("--data", data, "import", "--create", f, want=1)
    check("more than the site's 3" in err and ":4:" in err, "views: %r" % err)
    # referrers of a site without counts
    f = write_file(os.path.join(mkdtemp(), "s.csv"),
                   "site,day,path,views,visitors\n"
                   "ghost,%s,referrer:a.example,2,0\n" % today)
    _, err = ctl("--data", data, "import", "--create", f, want=1)
    check("without counts" in err, "ghost: %r" % err)
    # more hosts a day than max_referrers
    ini = write_file(os.path.join(mkdtemp(), "c.ini"),
                     "[count]\nmax_referrers = 2\n")
    rows = "".join("blog,%s,referrer:%s.example,1,0\n" % (today, h)
                   for h in "abc")
    f = write_file(os.path.join(mkdtemp(), "h.csv"),
                   "site,day,path,views,visitors\nblog,%s,*,9,1\n" % today +
                   rows + "blog,%s,referrer:(other),4,0\n" % today)
    _, err = ctl("--data", data, "--config", ini, "import", "--create", f,
                 want=1)
    check("3 referring hosts, more than max_referrers (2)" in err,
          "hosts: %r" % err)
    # with the default max_referrers, the same file is fine; check agrees
    # with it, and not with a configuration of a smaller cap
    ctl("--data", data, "import", "--create", f)
    ctl("--data", data, "check")
    out, err = ctl("--data", data, "--config", ini, "check", want=1)
    check("3 referring hosts" in out, "check with a smaller cap: %r" % out)


def databases(text):
    """The dump as {name: (header lines, [(key hex, value hex)])}."""
    out, name, lines = {}, None, text.split("\n")
    i = 0
    while i < len(lines):
        ln = lines[i]
        if ln.startswith("VERSION="):
            head = []
            while not lines[i].startswith("HEADER=END"):
                head.append(lines[i])
                if lines[i].startswith("database="):
                    name = lines[i][len("database="):]
                i += 1
            pairs = []
            i += 1
            while lines[i] != "DATA=END":
                pairs.append((lines[i][1:], lines[i + 1][1:]))
                i += 2
            out[name] = (head, pairs)
        i += 1
    return out


def undump(dbs):
    text = ""
    for name, (head, pairs) in dbs.items():
        text += "\n".join(head) + "\nHEADER=END\n"
        for k, v in pairs:
            text += " %s\n %s\n" % (k, v)
        text += "DATA=END\n"
    return text


def schema_of(dbs):
    for k, v in dbs["meta"][1]:
        if bytes.fromhex(k) == b"schema":
            return int.from_bytes(bytes.fromhex(v), "little")
    return None


def day_number(iso):
    import datetime
    return (datetime.date.fromisoformat(iso) - datetime.date(1970, 1, 1)).days


def test_check_reports_referrers_that_cannot_be_right():
    need_lmdb_tools()
    today = utc_today()
    data = os.path.join(mkdtemp(), "data")
    ctl("--data", data, "import", "--create", write_file(
        os.path.join(mkdtemp(), "a.csv"),
        "site,day,path,views,visitors\nblog,%s,*,3,1\n"
        "blog,%s,referrer:a.example,2,0\n" % (today, today)))
    out, _ = ctl("--data", data, "check")
    check("1 referrer rows" in out, "check counts the rows: %r" % out)
    dbs = databases(mdb_dump(data))
    check("referrers" in dbs, "no referrers database: %r" % list(dbs))
    day = struct.pack(">I", day_number(today))
    rows = dbs["referrers"][1]
    # a site without counts, a bad name, a row of no views, and more views
    # than the site had
    rows.append(((b"ghost\0" + day).hex(),
                 (b"a.example\0" + struct.pack("<Q", 1)).hex()))
    rows.append(((b"blog\0" + day).hex(),
                 (b"Evil/Path?q\0" + struct.pack("<Q", 0)).hex()))
    rows.append(((b"blog\0" + day).hex(),
                 (b"z.example\0" + struct.pack("<Q", 5)).hex()))
    rows.sort()
    bad = mdb_load(undump(dbs))
    out, err = ctl("--data", bad, "check", want=1)
    for want in ('"ghost", a site without counts', 'invalid referrer '
                 '"Evil/Path?q"', "0 views from Evil/Path?q",
                 "views from referrers, more than the site's 3"):
        check(want in out, "check lacks %r: %r" % (want, out))
    out, _ = ctl("--data", bad, "--json", "check", want=1)
    eq(parse_json(out.encode())["ok"], False, "check --json")


def test_schema1_store_is_migrated():
    """A store written before referrers (schema 1, no "referrers"
    database) is read as it is, and tallyd migrates it."""
    need_lmdb_tools()
    today = utc_today()
    src = os.path.join(mkdtemp(), "data")
    ctl("--data", src, "import", "--create", write_file(
        os.path.join(mkdtemp(), "a.csv"),
        "site,day,path,views,visitors\nblog,%s,*,3,2\nblog,%s,/p,3,2\n"
        % (today, today)))
    dbs = databases(mdb_dump(src))
    del dbs["referrers"]
    dbs["meta"] = (dbs["meta"][0], [
        (k, (1).to_bytes(4, "little").hex() if bytes.fromhex(k) == b"schema"
         else v) for k, v in dbs["meta"][1]])
    data = mdb_load(undump(dbs))
    eq(schema_of(databases(mdb_dump(data))), 1, "schema of the old store")
    # read-only: as it is
    before = export(data)
    eq(referrers(data), [], "referrers of an old store")
    out, _ = ctl("--data", data, "check")
    check(out.startswith("ok: schema 1,"), "check of an old store: %r" % out)
    eq(schema_of(databases(mdb_dump(data))), 1, "a reader changes nothing")
    # tallyd: migrated, counts kept, referrers counted
    d = daemon(data=data)
    c = post(d, "https://a.example/")
    eq((c["page"]["views"], c["today"]["views"]), (4, 4), "counts kept")
    d.stop()
    eq(schema_of(databases(mdb_dump(data))), 3, "schema after tallyd")
    eq(referrers(data), [("a.example", 1)], "referrers after migration")
    ctl("--data", data, "check")
    check(export(data).startswith(before.replace("*,3,2", "*,4,3")
                                  .replace("/p,3,2", "/p,4,3")),
          "the old rows are kept: %r" % export(data))


# ---------------------------------------------------------- bad referrers

def test_bad_referrer_values():
    d = daemon()
    post(d, "https://kept.example/")
    views = site_today(d)
    # Not kept, but the view counts: what a browser may send, and junk.
    for r in ("", "not a url", "android-app://com.google.android.gm/",
              "javascript:alert(1)", "about:blank", "https://", "https:///x",
              "https://exa mple.org/", "https://10.0.0.1/", "https://[::1]/",
              "http://localhost:3000/", "https://bücher.example/",
              "https://%s.example/" % ("a" * 64),
              "https://%s/" % ".".join(["abcdefghij"] * 30),
              "https://a.example:99999/", "https://a..example/",
              "https://<script>.example/", "h" * 4000):
        c = post(d, r)
        views += 1
        eq(c["today"]["views"], views, "views after referrer %r" % r[:60])
    st, _, body = d.request("POST", "/hit", {"User-Agent": BROWSER_UA,
                            "Content-Type": "application/json",
                            "Origin": BLOG},
                            json.dumps({"path": "/p", "referrer": None}))
    eq(st, 200, "a null referrer")
    views += 1
    # Not a parameter: 400, nothing counted.
    for body, ct in (('{"path":"/p","referrer":5}', "application/json"),
                     ('{"path":"/p","referrer":["https://a.example/"]}',
                      "application/json"),
                     ('{"path":"/p","referrer":"https://a\\u0000.example/"}',
                      "application/json"),
                     (b'{"path":"/p","referrer":"https://\xff.example/"}',
                      "application/json"),
                     ("path=%2Fp&referrer=%ZZ",
                      "application/x-www-form-urlencoded"),
                     ("path=%2Fp&referrer=https%3A%2F%2Fa%00.example%2F",
                      "application/x-www-form-urlencoded")):
        st, _, data = d.request("POST", "/hit", {
            "User-Agent": BROWSER_UA, "Content-Type": ct, "Origin": BLOG},
            body)
        eq(st, 400, "status for %r" % body)
        check(b'"error"' in data, "a JSON error for %r: %r" % (body, data))
    eq(site_today(d), views, "views after bad referrers")
    eq(referrers(d.data), [("kept.example", 1)], "referrers unchanged")
    d.check_alive()
    ctl("--data", d.data, "check")


def test_the_referrer_is_not_the_page():
    """With no path, the page counted is the Referer's, never the
    referrer parameter's (the page the visitor came from)."""
    d = daemon(ini=None)
    c = post(d, "https://www.google.com/search?q=x", path=None,
             site="default", origin=None,
             headers={"Referer": "https://mine.example/landing"})
    eq(c["path"], "/landing", "the page counted")
    c = post(d, "https://www.google.com/search?q=x", path=None,
             site="default", origin=None)
    eq(c["path"], "/", "the page counted without a Referer")
    eq(referrers(d.data, "default"), [("Google", 2)], "referrers")


if __name__ == "__main__":
    harness.main(globals())
