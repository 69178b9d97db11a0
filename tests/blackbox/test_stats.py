#!/usr/bin/env python3
"""The stats page over HTTP: /stats and /stats/SITE as HTML and as JSON,
its numbers against tallyctl's, its periods, top pages (paged, filtered by
prefix), referrers, its headers; who may see it (admin_allow behind
trusted proxies, a share token, public = yes; everyone else gets the 404
of a route that does not exist); and the /chart.svg sparkline."""

import datetime
import html.parser
import json
import os
import re
import sys
import urllib.parse
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (BROWSER_UA, Daemon, check, check_json_error, eq,  # noqa: E402
                     mkdtemp, parse_json, run_tallyctl, write_file)

TOKEN = "s3cr3t-Token_for-blog-0123456789"
OTHER_TOKEN = "another-token-of-the-shop-site"
INI = """\
[count]
timezone = UTC

[site blog]
origins = https://blog.example
share = %s

[site shop]
share = %s

[site open]
public = yes
""" % (TOKEN, OTHER_TOKEN)

JSON = {"Accept": "application/json", "User-Agent": BROWSER_UA}
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8",
        "User-Agent": BROWSER_UA}
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'"


def today():
    return datetime.datetime.now(datetime.timezone.utc).date()


def conf():
    return write_file(os.path.join(mkdtemp(), "t.ini"), INI)


def daemon(extra=(), data=None, config=None):
    """A tallyd whose answered hits are on disk (durability strict), so
    that the page and tallyctl see them at once."""
    return Daemon(["--config", config or conf(), "--durability", "strict"] +
                  list(extra), data=data)


def ctl_json(d, config, *args):
    rc, out, err = run_tallyctl("--data", d.data, "--config", config,
                                "--json", *args)
    eq(rc, 0, "tallyctl %s (stderr %r)" % (" ".join(args), err[-300:]))
    return json.loads(out)


def get(d, target, headers=None, method="GET"):
    return d.request(method, target, headers or HTML)


def page_json(d, target, headers=None):
    h = dict(JSON)
    h.update(headers or {})
    st, hd, body = d.request("GET", target, h)
    eq(st, 200, "GET %s as JSON (body %r)" % (target, body[:300]))
    eq(hd.get("content-type"), "application/json", "Content-Type of JSON")
    return parse_json(body, target)


def history(data, rows, config):
    """Imports daily rows [(site, day, path, views, visitors)]; the site's
    own rows (path *) are made from its pages' sums."""
    site_days = {}
    for site, day, path, v, u in rows:
        s = site_days.setdefault((site, day), [0, 0])
        s[0] += v
        s[1] += u
    lines = ["site,day,path,views,visitors"]
    for (site, day), (v, u) in sorted(site_days.items()):
        lines.append("%s,%s,*,%d,%d" % (site, day, v, u))
    for site, day, path, v, u in rows:
        lines.append("%s,%s,%s,%d,%d" % (site, day, path, v, u))
    f = write_file(os.path.join(mkdtemp(), "h.csv"), "\n".join(lines) + "\n")
    rc, out, err = run_tallyctl("--data", data, "--config", config,
                                "import", f, "--create")
    eq(rc, 0, "tallyctl import (stderr %r)" % err[-300:])


def ago(n):
    return (today() - datetime.timedelta(days=n)).isoformat()


class Page(html.parser.HTMLParser):
    """What a test reads of the HTML page: links, scripts, resources,
    tables by id (rows of cell texts) and elements by id."""

    def __init__(self, body):
        super().__init__(convert_charrefs=True)
        self.links, self.resources, self.scripts = [], [], 0
        self.tables, self.ids = {}, {}
        self._table = None
        self._row = None
        self._cell = None
        self._id_stack = []
        self.feed(body.decode("utf-8"))

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if tag == "a" and "href" in a:
            self.links.append(a["href"])
        for k in ("src", "srcset", "data"):
            if k in a:
                self.resources.append(a[k])
        if tag == "link" and "href" in a:
            self.resources.append(a["href"])
        if tag == "table" and "id" in a:
            self._table = self.tables.setdefault(a["id"], [])
        if tag == "tr" and self._table is not None:
            self._row = []
        if tag in ("td", "th") and self._row is not None:
            self._cell = ""
        if "id" in a and tag not in ("table",):
            self._id_stack.append((tag, a["id"], ""))

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(self._cell.strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self._table.append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None
        if self._id_stack and self._id_stack[-1][0] == tag:
            t, i, text = self._id_stack.pop()
            self.ids[i] = text.strip()

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data
        if self._id_stack:
            t, i, text = self._id_stack[-1]
            self._id_stack[-1] = (t, i, text + data)


def num(s):
    return int(s.replace(",", ""))


def check_page_headers(hd, what):
    eq(hd.get("referrer-policy"), "no-referrer", what + ": Referrer-Policy")
    check("private" in hd.get("cache-control", ""),
          "%s: Cache-Control %r is not private" % (what,
                                                   hd.get("cache-control")))
    eq(hd.get("x-content-type-options"), "nosniff", what + ": nosniff")
    csp = hd.get("content-security-policy", "")
    check("default-src 'none'" in csp and "script-src" not in csp and
          "frame-ancestors 'none'" in csp,
          "%s: Content-Security-Policy %r" % (what, csp))


def check_not_found(d, target, headers=None, what=""):
    """The answer is the one of a route that does not exist."""
    st, hd, body = d.request("GET", target, headers or HTML)
    st0, hd0, body0 = d.request("GET", "/no-such-route", headers or HTML)
    check_json_error(st, hd, body, 404, what or target)
    eq(body, body0, "%s: body against an unknown route" % (what or target))
    strip = lambda h: sorted((k, v) for k, v in h.items() if k != "date")
    eq(strip(hd), strip(hd0), "%s: headers against an unknown route"
       % (what or target))


# ------------------------------------------------------------ the page

def test_page_numbers_equal_tallyctl():
    config = conf()
    data = os.path.join(mkdtemp(), "data")
    rows = []
    for n in range(0, 45):
        rows.append(("blog", ago(n + 1), "/", 10 + n, 5 + n % 4))
        rows.append(("blog", ago(n + 1), "/posts/%d" % (n % 7), 3 + n % 5,
                     1 + n % 3))
    history(data, rows, config)
    d = daemon(data=data, config=config)
    origin = {"Origin": "https://blog.example", "User-Agent": BROWSER_UA}
    for p in ("/", "/posts/1", "/posts/1", "/about"):
        d.hit(p, site="blog", headers=origin)
    stats = ctl_json(d, config, "stats", "--site", "blog")
    for period, key in (("today", "today"), ("yesterday", "yesterday"),
                        ("7d", "last7"), ("30d", "last30"), ("all", "total")):
        j = page_json(d, "/stats/blog?period=" + period)
        eq(j["total"], stats[key], "totals of %s against tallyctl stats"
           % period)
        eq(j["period"], period, "period")
        if period != "all":
            eq(sum(x["views"] for x in j["days"]), j["total"]["views"],
               "days of %s add up" % period)
    top = ctl_json(d, config, "top", "--site", "blog", "--days", "30",
                   "--limit", "0")
    j = page_json(d, "/stats/blog")
    eq(j["period"], "30d", "default period")
    eq({p["path"]: (p["views"], p["visitors"]) for p in j["pages"]},
       {p["path"]: (p["views"], p["visitors"]) for p in top},
       "top pages against tallyctl top --days 30")
    eq([p["views"] for p in j["pages"]],
       sorted([p["views"] for p in j["pages"]], reverse=True),
       "top pages most viewed first")
    # The previous period: the 30 days before.
    prev = [r for r in rows if ago(59) <= r[1] <= ago(30)]
    eq(j["previous"]["views"], sum(r[3] for r in prev),
       "views of the previous 30 days")
    eq((j["previous"]["from"], j["previous"]["to"]), (ago(59), ago(30)),
       "the previous period")
    # 12 months sums each page's own days.
    top365 = ctl_json(d, config, "top", "--site", "blog", "--days", "365",
                      "--limit", "0")
    j = page_json(d, "/stats/blog?period=12m")
    eq({p["path"]: p["views"] for p in j["pages"]},
       {p["path"]: p["views"] for p in top365}, "top pages of 12 months")
    # The HTML shows the same numbers.
    st, hd, body = get(d, "/stats/blog")
    eq(st, 200, "GET /stats/blog")
    p = Page(body)
    last30 = stats["last30"]
    eq(num(p.ids["views"]), last30["views"], "views on the page")
    eq(num(p.ids["visitors"]), last30["visitors"], "visitors on the page")
    shown = {r[0]: (num(r[1]), num(r[2])) for r in p.tables["top"][1:]}
    eq(shown, {t["path"]: (t["views"], t["visitors"]) for t in top},
       "top pages in the HTML")
    days = {r[0]: num(r[1]) for r in p.tables["days"][1:]}
    eq(len(days), 30, "rows of the chart's table")
    eq(sum(days.values()), last30["views"], "the chart's table adds up")


def test_page_sees_what_changes_ended_days():
    """The ended days of a window are summed once and kept: an import
    into them, or a new page, shows at the next load all the same."""
    config = conf()
    data = os.path.join(mkdtemp(), "data")
    history(data, [("blog", ago(n), "/p%d" % (n % 3), 10 * n, 1)
                   for n in range(1, 20)], config)
    d = daemon(data=data, config=config)
    top = lambda: {p["path"]: p["views"] for p in
                   page_json(d, "/stats/blog")["pages"]}
    eq(top(), {"/p0": 10 * (3 + 6 + 9 + 12 + 15 + 18),
               "/p1": 10 * (1 + 4 + 7 + 10 + 13 + 16 + 19),
               "/p2": 10 * (2 + 5 + 8 + 11 + 14 + 17)}, "first load")
    eq(top(), top(), "a second load")
    # An import into an ended day, of a page that is there.
    f = write_file(os.path.join(mkdtemp(), "a.csv"),
                   "site,day,path,views,visitors\nblog,%s,*,5,1\n"
                   "blog,%s,/p1,5,1\n" % (ago(4), ago(4)))
    rc, out, err = run_tallyctl("--data", d.data, "--config", config,
                                "import", f, "--add")
    eq(rc, 0, "import --add (stderr %r)" % err)
    eq(top()["/p1"], 10 * (1 + 4 + 7 + 10 + 13 + 16 + 19) + 5,
       "after an import into an ended day")
    # A page counted today, new.
    d.hit("/new", site="blog", headers={"Origin": "https://blog.example",
                                        "User-Agent": BROWSER_UA})
    eq(top().get("/new"), 1, "a new page of today")
    eq(page_json(d, "/stats/blog?period=7d")["total"]["views"],
       10 * (1 + 2 + 3 + 4 + 5 + 6) + 5 + 1, "7 days")


def test_page_kept_while_the_store_is_unchanged():
    """A page made is given again for the same request while the store
    has committed nothing since, a second at most; a hit, another
    request (JSON, a share token, another period), a forced reload and
    the passing second each get a page made anew."""
    d = daemon()
    origin = {"Origin": "https://blog.example", "User-Agent": BROWSER_UA}
    d.hit("/a", site="blog", headers=origin)
    timing = lambda hd: hd.get("server-timing", "")
    strip = lambda h: sorted((k, v) for k, v in h.items()
                             if k not in ("date", "server-timing"))
    st, hd1, b1 = get(d, "/stats/blog")
    eq(st, 200, "GET /stats/blog")
    check(timing(hd1).startswith("render;dur="), "first load: %r"
          % timing(hd1))
    st, hd2, b2 = get(d, "/stats/blog")
    eq(timing(hd2), "kept", "the same request again")
    eq(b2, b1, "the kept page")
    eq(strip(hd2), strip(hd1), "the kept page's headers")
    forced = dict(HTML)
    forced["Cache-Control"] = "no-cache"
    st, hd, b = get(d, "/stats/blog", forced)
    check(timing(hd).startswith("render;dur="), "a forced reload: %r"
          % timing(hd))
    for target, hdrs in (("/stats/blog", JSON),
                         ("/stats/blog?share=" + TOKEN, HTML),
                         ("/stats/blog?period=7d", HTML)):
        st, hd, b = d.request("GET", target, hdrs)
        eq(st, 200, "GET %s" % target)
        check(timing(hd).startswith("render;dur="), "%s after /stats/blog:"
              " %r" % (target, timing(hd)))
        check(b != b1, "%s: the page of /stats/blog" % target)
    st, hd, b = get(d, "/stats/blog?share=" + TOKEN)
    eq(timing(hd), "kept", "the shared page again")
    check(b"share=" + TOKEN.encode() in b, "the shared page's links")
    # A hit is committed before it is answered (strict): the next load
    # is made anew, and shows it.
    d.hit("/b", site="blog", headers=origin)
    st, hd, b = get(d, "/stats/blog")
    check(timing(hd).startswith("render;dur="), "after a hit: %r"
          % timing(hd))
    eq(num(Page(b).ids["views"]), 2, "views after a hit")
    harness.time.sleep(1.1)
    st, hd, b3 = get(d, "/stats/blog")
    check(timing(hd).startswith("render;dur="), "a second later: %r"
          % timing(hd))
    eq(b3, b, "the page a second later")


def test_kept_list_is_not_given_to_another_client():
    """The list of sites an admin saw is not what someone else gets:
    who asks is part of the request a page is kept for."""
    d = daemon(["--trusted-proxies", "127.0.0.1",
                "--admin-allow", "10.0.0.0/8"])
    admin = dict(JSON)
    admin["X-Forwarded-For"] = "10.1.2.3"
    other = dict(JSON)
    other["X-Forwarded-For"] = "203.0.113.9"
    for _ in range(2):
        eq([s["site"] for s in page_json(d, "/stats", admin)["sites"]],
           ["blog", "shop", "open", "default"], "the list to an admin")
        eq([s["site"] for s in page_json(d, "/stats", other)["sites"]],
           ["open"], "the list to someone else")


def test_page_is_self_contained_and_safe():
    d = daemon()
    origin = {"Origin": "https://blog.example", "User-Agent": BROWSER_UA}
    evil = "/<script>alert(1)</script>&\"'"
    d.hit(urllib.parse.quote(evil), site="blog", headers=origin)
    for target in ("/stats", "/stats/blog", "/stats/blog?period=all",
                   "/stats/blog?path=" + urllib.parse.quote(evil, safe="")):
        st, hd, body = get(d, target)
        eq(st, 200, "GET %s" % target)
        eq(hd.get("content-type"), "text/html; charset=utf-8",
           "Content-Type of %s" % target)
        check_page_headers(hd, target)
        p = Page(body)
        eq(p.scripts, 0, "scripts on %s" % target)
        bad = [r for r in p.resources + p.links
               if re.match(r"^(https?:)?//", r)]
        eq(bad, [], "resources or links elsewhere on %s" % target)
        check(b"<script>alert" not in body, "path not escaped on %s"
              % target)
    # The page's history links carry the path, encoded.
    st, hd, body = get(d, "/stats/blog")
    p = Page(body)
    check(any("path=/%3Cscript%3E" in link for link in p.links),
          "no link to the page's own history: %r" % p.links)
    # HEAD: the headers alone.
    st, hd, body = get(d, "/stats/blog", method="HEAD")
    eq((st, body), (200, b""), "HEAD /stats/blog")
    # Loading the page counts nothing.
    before = page_json(d, "/stats/blog")["total"]
    for _ in range(3):
        get(d, "/stats/blog")
    eq(page_json(d, "/stats/blog")["total"], before, "the page counted")


def test_periods_and_ranges():
    config = conf()
    data = os.path.join(mkdtemp(), "data")
    history(data, [("blog", ago(n), "/p", n + 1, 1) for n in range(1, 400)],
            config)
    d = daemon(data=data, config=config)
    cases = {
        "today": (today().isoformat(), today().isoformat()),
        "yesterday": (ago(1), ago(1)),
        "7d": (ago(6), ago(0)),
        "30d": (ago(29), ago(0)),
        "12m": (ago(364), ago(0)),
        "all": (ago(399), ago(0)),
    }
    for period, (f, t) in cases.items():
        j = page_json(d, "/stats/blog?period=" + period)
        eq((j["from"], j["to"]), (f, t), "days of period %s" % period)
        eq(len(j["days"]), (datetime.date.fromisoformat(t) -
                            datetime.date.fromisoformat(f)).days + 1,
           "chart days of %s" % period)
    eq(page_json(d, "/stats/blog?period=all")["previous"], None,
       "all time has no previous period")
    j = page_json(d, "/stats/blog?from=%s&to=%s" % (ago(10), ago(8)))
    eq((j["period"], j["from"], j["to"]), ("custom", ago(10), ago(8)),
       "a custom range")
    eq(j["total"]["views"], 11 + 10 + 9, "views of the range")
    eq((j["previous"]["from"], j["previous"]["to"]), (ago(13), ago(11)),
       "the range before")
    eq(j["previous"]["views"], 14 + 13 + 12, "views of the range before")
    j = page_json(d, "/stats/blog?from=%s" % ago(2))
    eq((j["from"], j["to"]), (ago(2), ago(0)), "to= defaults to today")
    for q in ("period=week", "from=2026-13-01", "from=%s&to=%s"
              % (ago(1), ago(2)), "from=yesterday", "to=%s" % ago(1),
              "from=2000-01-01&to=2020-01-01", "page=0", "page=x",
              "prefix=blog", "path=%2F%00"):
        st, hd, body = d.request("GET", "/stats/blog?" + q, JSON)
        check_json_error(st, hd, body, 400, q)
    # One page's own history.
    j = page_json(d, "/stats/blog?path=/p&period=7d")
    eq(j["path"], "/p", "path of a page's history")
    eq(j["total"]["views"], sum(range(2, 8)), "views of /p in 7 days")
    check("pages" not in j, "a page's history lists top pages")


def test_top_pages_paged_and_filtered():
    config = conf()
    data = os.path.join(mkdtemp(), "data")
    rows = [("blog", ago(1), "/blog/%02d" % i, 100 + i, 1) for i in range(40)]
    rows += [("blog", ago(2), "/shop/%d" % i, 50 + i, 1) for i in range(5)]
    rows += [("shop", ago(1), "/blog/not-mine", 1000, 1)]
    history(data, rows, config)
    d = daemon(data=data, config=config)
    seen = []
    page = 1
    while True:
        j = page_json(d, "/stats/blog?page=%d" % page)
        eq(j["page"], page, "page number")
        check(len(j["pages"]) <= 25, "more than 25 on a page")
        seen += [(p["path"], p["views"]) for p in j["pages"]]
        if not j["more"]:
            break
        page += 1
    eq(page, 2, "pages of 45 paths")
    eq(seen, sorted(seen, key=lambda x: -x[1]), "order across pages")
    eq(sorted(p for p, _ in seen), sorted(r[2] for r in rows
                                          if r[0] == "blog"),
       "every page once, none of another site")
    j = page_json(d, "/stats/blog?prefix=/shop/")
    eq([p["path"] for p in j["pages"]], ["/shop/%d" % i
                                         for i in range(4, -1, -1)],
       "pages under /shop/")
    eq(j["prefix"], "/shop/", "prefix in the JSON")
    j = page_json(d, "/stats/blog?prefix=/blog/&page=2")
    eq(len(j["pages"]), 15, "second page under /blog/")
    eq(j["more"], False, "no third page")
    j = page_json(d, "/stats/blog?prefix=/nothing/")
    eq(j["pages"], [], "no page under /nothing/")
    # The HTML links to the next page and keeps the prefix in it.
    st, hd, body = get(d, "/stats/blog?prefix=/blog/")
    p = Page(body)
    check(any("page=2" in link and "prefix=/blog/" in link
              for link in p.links), "no link to page 2: %r" % p.links)


def test_top_pages_of_30_days_from_the_window_sums():
    """The 30-day list is read from the sums the store keeps of the last
    30 days, most views first: it must be the list that summing the
    days gives (a prefix of "/" takes that way), page by page, ties in
    the same order; a page big only on the day before the window, still
    in its sums, must not be in it; nor a page of another site."""
    config = conf()
    data = os.path.join(mkdtemp(), "data")
    rows = [("blog", ago(30), "/gone", 100000, 9)]
    rows += [("blog", ago(n % 29 + 1), "/p/%02d" % i, 10 + i % 7, 1 + i % 3)
             for i in range(60) for n in range(i % 4 + 1)]
    rows += [("blog", ago(30), "/p/%02d" % i, 50, 5) for i in range(0, 60, 9)]
    rows += [("shop", ago(2), "/p/99", 9999, 9)]
    history(data, rows, config)
    d = daemon(data=data, config=config)
    origin = {"Origin": "https://blog.example", "User-Agent": BROWSER_UA}

    def pages(prefix):
        got, page = [], 1
        while True:
            j = page_json(d, "/stats/blog?page=%d%s" % (page, prefix))
            got.append([(p["path"], p["views"], p["visitors"])
                        for p in j["pages"]])
            if not j["more"]:
                return got
            page += 1

    for when in ("no hit today", "a hit today"):
        by_window = pages("")
        eq(by_window, pages("&prefix=/"), "30 days, %s: the list of the "
           "window's sums against the days summed" % when)
        flat = [p for pg in by_window for p in pg]
        check(len(by_window) == 3 and len(flat) == 60 + (when != "no hit "
              "today"), "%s: %d pages of the list, %d entries" % (
                  when, len(by_window), len(flat)))
        check(all(p[0] not in ("/gone", "/p/99") for p in flat),
              "%s: a page outside the window or the site is listed" % when)
        top = ctl_json(d, config, "top", "--site", "blog", "--days", "30",
                       "--limit", "0")
        eq(sorted(flat), sorted((p["path"], p["views"], p["visitors"])
                                for p in top), "%s: against tallyctl top"
           % when)
        d.hit("/today", site="blog", headers=origin)


def test_top_pages_of_a_long_window():
    """Beyond the recent days, pages are ranked by their all-time counts
    and summed in that order: a page big long ago and quiet now must
    not stand in for the pages of the window."""
    config = conf()
    data = os.path.join(mkdtemp(), "data")
    rows = [("blog", ago(500), "/old/%d" % i, 10000 + i, 1)
            for i in range(30)]
    rows += [("blog", ago(100 + i), "/new/%d" % i, 5 + i, 1)
             for i in range(30)]
    rows += [("blog", ago(200), "/old/0", 1, 1)]
    history(data, rows, config)
    d = daemon(data=data, config=config)
    top = ctl_json(d, config, "top", "--site", "blog", "--days", "365",
                   "--limit", "0")
    got = []
    for page in (1, 2):
        j = page_json(d, "/stats/blog?period=12m&page=%d" % page)
        got += [(p["path"], p["views"]) for p in j["pages"]]
    eq(sorted(got), sorted((p["path"], p["views"]) for p in top),
       "top pages of 12 months against tallyctl top --days 365")
    eq(got[0], ("/new/29", 34), "the most viewed of 12 months")
    eq(got[-1], ("/old/0", 1), "the least viewed of 12 months")


def test_referrers_on_the_page():
    d = daemon()
    h = {"User-Agent": BROWSER_UA, "Content-Type": "text/plain",
         "Origin": "https://blog.example"}
    for ref in ("https://news.ycombinator.com/item?id=1",
                "https://www.google.com/search?q=x",
                "https://friend.example/a", "https://friend.example/b"):
        st, _, _ = d.request("POST", "/hit", h, json.dumps(
            {"site": "blog", "path": "/p", "referrer": ref}))
        eq(st, 200, "hit with referrer %s" % ref)
    j = page_json(d, "/stats/blog")
    eq(j["referrers"], [{"host": "friend.example", "views": 2},
                        {"host": "Google", "views": 1},
                        {"host": "Hacker News", "views": 1}],
       "referrers of the page")
    st, hd, body = get(d, "/stats/blog")
    p = Page(body)
    eq([(r[0], num(r[1])) for r in p.tables["referrers"][1:]],
       [("friend.example", 2), ("Google", 1), ("Hacker News", 1)],
       "referrers in the HTML")


def test_list_of_sites():
    d = daemon()
    d.hit("/x", site="open")
    j = page_json(d, "/stats")
    eq([s["site"] for s in j["sites"]], ["blog", "shop", "open", "default"],
       "sites listed for an admin")
    eq(j["sites"][2]["today"]["views"], 1, "today of open")
    st, hd, body = get(d, "/stats")
    eq(st, 200, "GET /stats")
    check_page_headers(hd, "/stats")
    p = Page(body)
    for s in ("blog", "shop", "open", "default"):
        check("/stats/" + s in p.links, "no link to %s" % s)
    # A trailing slash is the list too.
    eq(page_json(d, "/stats/")["sites"], j["sites"], "/stats/")


# ------------------------------------------------------------ who may see it

def test_non_admin_gets_the_404_of_no_route():
    # No site is public here: the list has nothing to show either.
    private = write_file(os.path.join(mkdtemp(), "p.ini"),
                         INI.replace("public = yes", ""))
    d = daemon(["--admin-allow", "192.0.2.0/24"], config=private)
    for target in ("/stats", "/stats/", "/stats/blog", "/stats/shop",
                   "/stats/default?period=all", "/stats/nosuch",
                   "/stats/Not-Valid", "/stats/blog/x",
                   "/stats/blog?share=", "/stats/blog?share=wrong",
                   "/stats/blog?share=" + TOKEN[:-1],
                   "/stats/blog?share=" + TOKEN + "x",
                   "/stats/blog?share=" + OTHER_TOKEN,
                   "/stats/nosuch?share=" + TOKEN):
        check_not_found(d, target)
        check_not_found(d, target, JSON, target + " as JSON")


def test_share_token_opens_its_site_read_only():
    d = daemon(["--admin-allow", "192.0.2.0/24"])
    d.hit("/p", site="shop")
    target = "/stats/shop?share=" + OTHER_TOKEN
    st, hd, body = get(d, target)
    eq(st, 200, "GET %s" % target)
    check_page_headers(hd, target)
    p = Page(body)
    # Every link of the page keeps the token, and none leads to the list
    # of sites, which the token does not open.
    own = [link for link in p.links if link.startswith("/stats")]
    check(own, "no links on the shared page")
    for link in own:
        check("share=" + OTHER_TOKEN in link, "link without the token: %r"
              % link)
    check("/stats" not in p.links, "the shared page links to the list")
    for link in own[:5]:
        st, _, _ = get(d, link)
        eq(st, 200, "GET %s from the shared page" % link)
    j = page_json(d, target)
    eq(j["total"]["views"], 1, "views through the share link")
    # Its forms keep it too.
    check(b'name="share" value="' + OTHER_TOKEN.encode() in body,
          "the forms lose the token")
    # A token opens its own site only.
    check_not_found(d, "/stats/blog?share=" + OTHER_TOKEN)
    eq([s["site"] for s in page_json(d, "/stats?share=" + OTHER_TOKEN)[
        "sites"]], ["open"], "the list to a token holder: public sites")


def test_public_site_is_open_to_all():
    d = daemon(["--admin-allow", "192.0.2.0/24"])
    d.hit("/o", site="open")
    st, hd, body = get(d, "/stats/open")
    eq(st, 200, "GET /stats/open of a public site")
    check_page_headers(hd, "/stats/open")
    j = page_json(d, "/stats")
    eq([s["site"] for s in j["sites"]], ["open"],
       "only public sites are listed to others")
    check_not_found(d, "/stats/blog")


def test_admin_is_the_client_behind_a_trusted_proxy():
    d = daemon(["--trusted-proxies", "127.0.0.1",
                "--admin-allow", "10.0.0.0/8"])
    h = dict(JSON)
    h["X-Forwarded-For"] = "10.1.2.3"
    eq(page_json(d, "/stats/blog", h)["site"], "blog",
       "an admin behind the proxy")
    for xff in ("203.0.113.9", "10.1.2.3, 203.0.113.9", "unknown"):
        h = dict(HTML)
        h["X-Forwarded-For"] = xff
        st, hd, body = d.request("GET", "/stats/blog", h)
        check_json_error(st, hd, body, 404, "X-Forwarded-For: %s" % xff)
    # The proxy itself is not admin_allow.
    check_not_found(d, "/stats/blog")
    # Without trusted_proxies, the header is the client's own word.
    d2 = daemon(["--admin-allow", "10.0.0.0/8"])
    h = dict(HTML)
    h["X-Forwarded-For"] = "10.1.2.3"
    st, hd, body = d2.request("GET", "/stats/blog", h)
    check_json_error(st, hd, body, 404, "a forged X-Forwarded-For")


def test_reload_changes_who_may_see():
    config = conf()
    d = daemon(["--admin-allow", "192.0.2.0/24"], config=config)
    check_not_found(d, "/stats/shop")
    write_file(config, INI.replace("[site shop]\n", "[site shop]\npublic = "
                                   "yes\n"))
    d.proc.send_signal(harness.signal.SIGHUP)
    for _ in range(50):
        st, _, _ = get(d, "/stats/shop")
        if st == 200:
            break
        harness.time.sleep(0.1)
    eq(st, 200, "GET /stats/shop once it is public")


def test_bad_tokens_stop_startup():
    for bad in ("short", "x" * 129, "has space in it here", "ünïcödé-token-1234",
                "a+b/c=d-0123456789abcd"):
        f = write_file(os.path.join(mkdtemp(), "b.ini"),
                       "[site blog]\nshare = %s\n" % bad)
        rc, out, err = harness.run_tallyd("-n", "--config", f)
        eq(rc, 78, "tallyd -n with share = %r (stderr %r)" % (bad, err))
        check("b.ini:2:" in err, "error without FILE:LINE: %r" % err)
        check(bad not in err, "the token is echoed: %r" % err)


# ------------------------------------------------------------ /chart.svg

def test_chart_svg():
    config = conf()
    data = os.path.join(mkdtemp(), "data")
    history(data, [("blog", ago(n), "/p", n + 1, 1) for n in range(1, 10)] +
            [("blog", ago(n), "/q", 100, 1) for n in range(1, 3)], config)
    d = daemon(data=data, config=config)
    h = {"User-Agent": BROWSER_UA}
    st, hd, body = d.request("GET", "/chart.svg?site=blog&path=/p&days=7", h)
    eq(st, 200, "GET /chart.svg (body %r)" % body[:200])
    eq(hd.get("content-type"), "image/svg+xml; charset=utf-8",
       "Content-Type")
    eq(hd.get("content-security-policy"), SVG_CSP, "CSP")
    eq(hd.get("x-content-type-options"), "nosniff", "nosniff")
    eq(hd.get("cache-control"), "no-store", "Cache-Control")
    eq(hd.get("access-control-allow-origin"), None,
       "ACAO for a site with origins and no Origin")
    root = ET.fromstring(body)
    ns = "{http://www.w3.org/2000/svg}"
    title = root.find(ns + "title").text
    eq(root.get("role"), "img", "role")
    eq(root.get("aria-label"), title, "aria-label")
    check(title.startswith("/p: views per day, last 7 days, %d in all"
                           % sum(range(2, 8))), "title %r" % title)
    points = root.find(ns + "polyline").get("points").split()
    eq(len(points), 7, "points of 7 days")
    eq(points[-1].split(",")[1], "20", "today has no views: the baseline")
    # The whole site, and the default of 30 days.
    st, hd, body = d.request("GET", "/chart.svg?site=blog&path=*", h)
    root = ET.fromstring(body)
    eq(len(root.find(ns + "polyline").get("points").split()), 30,
       "points of the default 30 days")
    check(root.find(ns + "title").text.startswith(
        "blog: views per day, last 30 days, %d in all"
        % (sum(range(2, 11)) + 200)), "site title")
    for q in ("days=1", "days=367", "days=x", "days=-5", "site=Bad!",
              "path=%2F%00"):
        st, hd, body = d.request("GET", "/chart.svg?site=blog&" + q, h)
        check_json_error(st, hd, body, 400, q)
    st, hd, body = d.request("GET", "/chart.svg?site=nosuch", h)
    check_json_error(st, hd, body, 404, "unknown site")
    # It counts nothing.
    before = page_json(d, "/stats/blog")["total"]
    d.request("GET", "/chart.svg?site=blog&path=/p", h)
    eq(page_json(d, "/stats/blog")["total"], before, "the chart counted")


def thread_policies(pid):
    """[(thread name, scheduling policy)] of a process, from /proc."""
    out = []
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
            stat = f.read()
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        # Fields after the name start at the third; policy is the 41st.
        out.append((name, int(stat[stat.rindex(")") + 2:].split()[38])))
    return out


def test_pages_are_made_below_the_threads_that_count():
    SCHED_OTHER, SCHED_IDLE = 0, 5
    d = daemon(["--threads", "2"])
    st, hd, body = get(d, "/stats/blog")
    eq(st, 200, "GET /stats/blog")
    policies = thread_policies(d.proc.pid)
    eq([p for n, p in policies if n == "tallyd-stats"], [SCHED_IDLE],
       "the render thread's policy (threads: %r)" % policies)
    # The two workers (the first on the main thread), the committer.
    others = [p for n, p in policies if n != "tallyd-stats"]
    check(len(others) >= 3 and set(others) == {SCHED_OTHER},
          "the other threads run at normal priority: %r" % policies)


if __name__ == "__main__":
    harness.main(globals())
