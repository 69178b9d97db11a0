#!/usr/bin/env python3
"""Several sites, origins and CORS, trusted proxies and the client
address, max_pages (issue 4)."""

import json
import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (BROWSER_UA, BROWSER_UA2, Daemon, check, eq,  # noqa: E402
                     check_counts_shape, check_json_error, mkdtemp,
                     parse_json, write_file)

BLOG = "https://blog.example"
BLOG_WWW = "https://www.blog.example"
EVIL = "https://evil.example"

SITES_INI = """\
[site blog]
origins = https://blog.example, https://www.blog.example
labels = today:Bu gün, total:Ümumi, page:Giriş

[site shop]
origins = https://shop.example
"""


def vv(c):
    return {k: (c[k]["views"], c[k]["visitors"])
            for k in ("page", "page_today", "today", "total")}


def sites_daemon(extra=()):
    cfg = write_file(os.path.join(mkdtemp(), "tally.ini"), SITES_INI)
    return Daemon(["--config", cfg] + list(extra))


def get(d, target, headers=None, ua=BROWSER_UA):
    h = {}
    if ua is not None:
        h["User-Agent"] = ua
    h.update(headers or {})
    st, hd, body = d.request("GET", target, h)
    return st, hd, body


def hit_json(d, params, headers=None, ua=BROWSER_UA, route="/hit"):
    target = route
    q = urllib.parse.urlencode(params)
    if q:
        target += "?" + q
    st, hd, body = get(d, target, headers, ua)
    eq(st, 200, "status of GET %s %r (body %r)" % (target, headers, body[:200]))
    return hd, check_counts_shape(parse_json(body, "GET " + target))


def vary_has_origin(hd):
    return "origin" in [v.strip().lower()
                        for v in hd.get("vary", "").split(",")]


# ------------------------------------------------------------ sites, origins

def test_site_chosen_by_origin_counts_separately():
    d = sites_daemon()
    hd, c = hit_json(d, {"path": "/post"}, {"Origin": BLOG})
    check_counts_shape(c, counted=True)
    eq(c["site"], "blog", "site chosen by Origin")
    eq(vv(c), {"page": (1, 1), "page_today": (1, 1), "today": (1, 1),
               "total": (1, 1)}, "blog counts")
    eq(hd.get("access-control-allow-origin"), BLOG, "ACAO for the blog")
    hd, c = hit_json(d, {"path": "/post"}, {"Origin": BLOG_WWW})
    check_counts_shape(c, counted=True)
    eq(c["site"], "blog", "site chosen by the second origin")
    eq(vv(c)["today"], (2, 1), "blog today after its second hit")
    eq(hd.get("access-control-allow-origin"), BLOG_WWW,
       "ACAO for the second origin")
    # The same browser on the default site: a site of its own.
    hd, c = hit_json(d, {"path": "/post"})
    check_counts_shape(c, counted=True)
    eq(c["site"], "default", "site without Origin")
    eq(vv(c), {"page": (1, 1), "page_today": (1, 1), "today": (1, 1),
               "total": (1, 1)}, "default counts")
    # An unlisted origin without a site parameter: the default site.
    hd, c = hit_json(d, {"path": "/post"}, {"Origin": EVIL})
    check_counts_shape(c, counted=True)
    eq(c["site"], "default", "site for an unlisted Origin")
    eq(vv(c)["today"], (2, 1), "default today")
    eq(hd.get("access-control-allow-origin"), "*", "ACAO of default")
    # Another configured site.
    hd, c = hit_json(d, {"path": "/post"}, {"Origin": "https://shop.example"})
    check_counts_shape(c, counted=True)
    eq(c["site"], "shop", "site shop by Origin")
    eq(vv(c)["today"], (1, 1), "shop today")
    time.sleep(0.3)
    _, c = hit_json(d, {"site": "blog", "path": "/post"}, route="/count")
    eq(vv(c), {"page": (2, 1), "page_today": (2, 1), "today": (2, 1),
               "total": (2, 1)}, "/count of blog")
    _, c = hit_json(d, {"site": "default", "path": "/post"}, route="/count")
    eq(vv(c), {"page": (2, 1), "page_today": (2, 1), "today": (2, 1),
               "total": (2, 1)}, "/count of default")


def test_site_chosen_by_referer():
    d = sites_daemon()
    hd, c = hit_json(d, {}, {"Referer": BLOG + "/x"})
    check_counts_shape(c, counted=True)
    eq(c["site"], "blog", "site chosen by Referer")
    eq(c["path"], "/x", "path taken from the Referer")
    eq(vv(c)["today"], (1, 1), "blog today")
    hd, c = hit_json(d, {"path": "/y"},
                     {"Referer": BLOG_WWW + "/a/b?q=1#f"})
    check_counts_shape(c, counted=True)
    eq(c["site"], "blog", "site chosen by the second origin's Referer")
    eq(c["path"], "/y", "path parameter wins over the Referer")
    eq(vv(c)["today"], (2, 1), "blog today after the second hit")
    # With site=blog, an allowed Referer alone is enough.
    hd, c = hit_json(d, {"site": "blog", "path": "/z"},
                     {"Referer": BLOG + "/z"})
    check_counts_shape(c, counted=True)
    eq(vv(c)["today"], (3, 1), "blog today with site=blog and Referer")


def test_origin_not_allowed():
    d = sites_daemon()
    hd, c = hit_json(d, {"site": "blog", "path": "/p"}, {"Origin": EVIL})
    check_counts_shape(c, counted=False, reason="origin")
    eq(c["site"], "blog", "site")
    eq(vv(c), {"page": (0, 0), "page_today": (0, 0), "today": (0, 0),
               "total": (0, 0)}, "counts answered to evil")
    check("access-control-allow-origin" not in hd,
          "Access-Control-Allow-Origin %r sent to an unlisted origin"
          % hd.get("access-control-allow-origin"))
    # Same host, other scheme or port: other origins.
    for o in ("http://blog.example", "https://blog.example:8443",
              "https://sub.blog.example", "null"):
        hd, c = hit_json(d, {"site": "blog", "path": "/p"}, {"Origin": o})
        check_counts_shape(c, counted=False, reason="origin")
        check("access-control-allow-origin" not in hd,
              "Access-Control-Allow-Origin %r sent to %s"
              % (hd.get("access-control-allow-origin"), o))
    # A Referer from another origin.
    hd, c = hit_json(d, {"site": "blog", "path": "/p"},
                     {"Referer": EVIL + "/p"})
    check_counts_shape(c, counted=False, reason="origin")
    # Neither Origin nor Referer.
    hd, c = hit_json(d, {"site": "blog", "path": "/p"})
    check_counts_shape(c, counted=False, reason="origin")
    eq(vv(c)["today"], (0, 0), "counts without Origin or Referer")
    # POST too.
    st, hd, body = d.request("POST", "/hit",
                             {"User-Agent": BROWSER_UA, "Origin": EVIL,
                              "Content-Type": "application/json"},
                             json.dumps({"site": "blog", "path": "/p"}))
    eq(st, 200, "POST status")
    check_counts_shape(parse_json(body), counted=False, reason="origin")
    # and the allowed origin is counted, from zero.
    time.sleep(0.3)
    hd, c = hit_json(d, {"site": "blog", "path": "/p"}, {"Origin": BLOG})
    check_counts_shape(c, counted=True)
    eq(vv(c), {"page": (1, 1), "page_today": (1, 1), "today": (1, 1),
               "total": (1, 1)}, "counts of the allowed origin")


def test_cors_headers():
    d = sites_daemon()
    hd, c = hit_json(d, {"site": "blog", "path": "/p"}, {"Origin": BLOG})
    check_counts_shape(c, counted=True)
    eq(hd.get("access-control-allow-origin"), BLOG, "ACAO echo")
    check(vary_has_origin(hd), "Vary %r lacks Origin" % hd.get("vary"))
    check(hd.get("access-control-allow-credentials", "").lower() != "true",
          "credentials allowed")
    hd, c = hit_json(d, {"site": "blog", "path": "/p"}, {"Origin": EVIL})
    check("access-control-allow-origin" not in hd,
          "ACAO %r for an unlisted origin"
          % hd.get("access-control-allow-origin"))
    # The default site (no origins) answers * whatever the origin.
    for h in ({"Origin": "https://anything.example"}, {}):
        hd, c = hit_json(d, {"path": "/p"}, h)
        check_counts_shape(c, counted=True)
        eq(c["site"], "default", "site")
        eq(hd.get("access-control-allow-origin"), "*",
           "ACAO of the default site with %r" % h)
        check(hd.get("access-control-allow-credentials", "").lower()
              != "true", "credentials allowed on the default site")
    # A daemon without a config: * as well, on /count too.
    d2 = Daemon()
    hd, c = hit_json(d2, {"path": "/p"}, {"Origin": "https://x.example"},
                     route="/count")
    eq(hd.get("access-control-allow-origin"), "*", "ACAO of /count")


def test_labels_of_a_site():
    d = sites_daemon()
    st, hd, body = get(d, "/counter.svg?site=blog&path=%2Fp&count=0"
                       "&show=today,total,page",
                       {"Origin": BLOG})
    eq(st, 200, "counter.svg status")
    text = body.decode("utf-8")
    for label in ("Bu gün", "Ümumi", "Giriş"):
        check(label in text, "label %r not in the blog's badge: %r"
              % (label, text[:400]))
    st, hd, body = get(d, "/counter.svg?path=%2Fp&count=0"
                             "&show=today,total,page")
    eq(st, 200, "counter.svg status of default")
    check("Ümumi" not in body.decode("utf-8"),
          "the blog's label in the default site's badge")


def test_invalid_and_unknown_site():
    d = sites_daemon()
    for s in ("Blog", "-blog", ".blog", "bl og", "blog_1", "blög", "a" * 64,
              "blog/x", "BLOG"):
        for route in ("/hit", "/count"):
            st, hd, body = get(d, route + "?" + urllib.parse.urlencode(
                {"site": s, "path": "/p"}), {"Origin": BLOG})
            check_json_error(st, hd, body, 400, "site %r on %s" % (s, route))
    for s in ("nosuch", "a" * 63, "x-1.y", "0"):
        for route in ("/hit", "/count"):
            st, hd, body = get(d, route + "?" + urllib.parse.urlencode(
                {"site": s, "path": "/p"}))
            check_json_error(st, hd, body, 404, "site %r on %s" % (s, route))
    st, hd, body = d.request("POST", "/hit",
                             {"User-Agent": BROWSER_UA,
                              "Content-Type": "application/json"},
                             json.dumps({"site": "Nope!", "path": "/p"}))
    check_json_error(st, hd, body, 400, "POST invalid site")
    st, hd, body = d.request("POST", "/hit",
                             {"User-Agent": BROWSER_UA,
                              "Content-Type": "application/json"},
                             json.dumps({"site": "nope", "path": "/p"}))
    check_json_error(st, hd, body, 404, "POST unknown site")
    # Nothing was counted anywhere.
    time.sleep(0.3)
    for s in ("default", "blog"):
        _, c = hit_json(d, {"site": s, "path": "/p"}, route="/count")
        eq(vv(c)["total"], (0, 0), "total of %s" % s)


# ------------------------------------------------------------ trusted proxies

def xff_visitors(d, header, values, ua=BROWSER_UA, path="/t"):
    """Hits once for each header value; returns today's visitors after
    each hit."""
    out = []
    for v in values:
        h = {header: v} if v is not None else {}
        c = check_counts_shape(d.hit(path, ua=ua, headers=h), counted=True)
        out.append(c["today"]["visitors"])
    return out


def test_forwarded_for_ignored_from_untrusted_peer():
    d = Daemon()
    eq(xff_visitors(d, "X-Forwarded-For",
                    ["203.0.113.5", "198.51.100.7", "192.0.2.1, 192.0.2.2",
                     None]),
       [1, 1, 1, 1], "visitors with XFF from an untrusted peer")
    eq(xff_visitors(d, "X-Forwarded-For", ["203.0.113.5"], ua=BROWSER_UA2),
       [2], "another UA")
    # A trusted list without the peer: still ignored.
    d2 = Daemon(["--trusted-proxies", "10.0.0.0/8,::1"])
    eq(xff_visitors(d2, "X-Forwarded-For",
                    ["203.0.113.5", "198.51.100.7", None]),
       [1, 1, 1], "visitors when 127.0.0.1 is not a trusted proxy")
    for hdr in ("X-Real-IP", "Forwarded", "CF-Connecting-IP"):
        d3 = Daemon(["--client-ip-header", hdr])
        vals = ["for=203.0.113.5", "for=198.51.100.7"] \
            if hdr == "Forwarded" else ["203.0.113.5", "198.51.100.7"]
        eq(xff_visitors(d3, hdr, vals), [1, 1],
           "visitors with %s from an untrusted peer" % hdr)


def test_forwarded_for_used_from_trusted_proxy():
    d = Daemon(["--trusted-proxies", "127.0.0.1/32"])
    eq(xff_visitors(d, "X-Forwarded-For",
                    ["203.0.113.5", "198.51.100.7", "203.0.113.5",
                     "198.51.100.7", None, None]),
       [1, 2, 2, 2, 3, 3], "visitors with XFF from a trusted proxy")


def test_rightmost_untrusted_address_is_the_client():
    d = Daemon(["--trusted-proxies", "127.0.0.1/32,10.0.0.0/8"])
    eq(xff_visitors(d, "X-Forwarded-For", [
        "203.0.113.5",
        "203.0.113.5, 10.1.1.1",
        "203.0.113.5,10.1.1.1, 10.2.2.2",
        "198.51.100.7, 203.0.113.5",
        "192.0.2.99, 198.51.100.7, 203.0.113.5, 10.9.9.9",
    ]), [1, 1, 1, 1, 1], "all of these are client 203.0.113.5")
    eq(xff_visitors(d, "X-Forwarded-For", [
        "203.0.113.5, 198.51.100.7",
        "198.51.100.7",
        "198.51.100.7, 10.1.1.1",
    ]), [2, 2, 2], "client 198.51.100.7")


def test_trusted_ipv6_proxies_and_ipv6_clients():
    d = Daemon(["--trusted-proxies", "127.0.0.1/32,2001:db8:ffff::/48"])
    eq(xff_visitors(d, "X-Forwarded-For", [
        "2001:db8::5",
        "2001:db8:0:0::5",
        "2001:db8::5, 2001:db8:ffff::1",
        "2001:DB8::5",
        "2001:db8::6",
        "2001:db8::6, 2001:db8:ffff:1::2",
        "203.0.113.5, 2001:db8::6",
    ]), [1, 1, 1, 1, 2, 2, 2], "IPv6 clients")


def test_x_real_ip():
    d = Daemon(["--trusted-proxies", "127.0.0.1/32",
                "--client-ip-header", "X-Real-IP"])
    eq(xff_visitors(d, "X-Real-IP",
                    ["203.0.113.5", "203.0.113.6", "203.0.113.5",
                     "2001:db8::1"]),
       [1, 2, 2, 3], "visitors with X-Real-IP")
    # Only the configured header is believed.
    c = d.hit("/t", headers={"X-Real-IP": "203.0.113.5",
                             "X-Forwarded-For": "198.51.100.200"})
    eq(c["today"]["visitors"], 3, "X-Forwarded-For beside X-Real-IP")


def test_cf_connecting_ip():
    d = Daemon(["--trusted-proxies", "127.0.0.1/32",
                "--client-ip-header", "CF-Connecting-IP"])
    eq(xff_visitors(d, "CF-Connecting-IP",
                    ["203.0.113.5", "203.0.113.6", "203.0.113.6"]),
       [1, 2, 2], "visitors with CF-Connecting-IP")


def test_forwarded_header():
    d = Daemon(["--trusted-proxies", "127.0.0.1/32",
                "--client-ip-header", "Forwarded"])
    eq(xff_visitors(d, "Forwarded", [
        'for="[2001:db8::1]:4711"',
        'for=192.0.2.60;proto=http',
        'for=192.0.2.60;proto=https;by=203.0.113.43',
        'For="[2001:db8::1]"',
        'for=192.0.2.43, for=198.51.100.17',
        'for=198.51.100.17;proto=https',
        'proto=https;for=192.0.2.60',
    ]), [1, 2, 2, 2, 3, 3, 3], "visitors with Forwarded")


# ------------------------------------------------------------ max_pages

def test_max_pages():
    d = Daemon(["--max-pages", "3"])
    for i, p in enumerate(("/p1", "/p2", "/p3"), 1):
        c = check_counts_shape(d.hit(p), counted=True)
        eq(c["path"], p, "path of a page under the cap")
        eq(vv(c)["page"], (1, 1), "page counts of %s" % p)
        eq(vv(c)["today"], (i, 1), "today after %s" % p)
    c = check_counts_shape(d.hit("/p4"), counted=True)
    eq(c["path"], "/(other)", "path of the 4th page")
    eq(vv(c)["page"], (1, 1), "page counts of /(other) after /p4")
    eq(vv(c)["today"], (4, 1), "today after /p4")
    c = check_counts_shape(d.hit("/p5"), counted=True)
    eq(c["path"], "/(other)", "path of the 5th page")
    eq(vv(c)["page"], (2, 1), "page counts of /(other) after /p5")
    eq(vv(c)["page_today"], (2, 1), "page_today of /(other) after /p5")
    c = check_counts_shape(d.hit("/p4", ua=BROWSER_UA2), counted=True)
    eq(c["path"], "/(other)", "path of /p4 again")
    eq(vv(c)["page"], (3, 2), "page counts of /(other), second visitor")
    c = check_counts_shape(d.hit("/p1"), counted=True)
    eq(c["path"], "/p1", "a known page keeps its own path")
    eq(vv(c)["page"], (2, 1), "page counts of /p1")
    eq(vv(c)["today"], (7, 2), "today")
    eq(vv(c)["total"], (7, 2), "total")
    # After a restart (everything committed) the cap still holds.
    eq(d.stop(), 0, "exit code")
    d.start()
    c = check_counts_shape(d.hit("/p6"), counted=True)
    eq(c["path"], "/(other)", "a new page after the restart")
    eq(vv(c)["page"], (4, 2), "page counts of /(other) after the restart")
    c = check_counts_shape(d.hit("/p2"), counted=True)
    eq(c["path"], "/p2", "a known page after the restart")
    eq(vv(c)["page"], (2, 1), "page counts of /p2 after the restart")
    eq(vv(c)["total"], (9, 2), "total after the restart")


def test_max_pages_per_site():
    cfg = write_file(os.path.join(mkdtemp(), "tally.ini"),
                     "[count]\nmax_pages = 3\n\n"
                     "[site small]\nmax_pages = 2\n\n"
                     "[site big]\nmax_pages = 5\n")
    d = Daemon(["--config", cfg])

    def paths(site, n):
        out = []
        for i in range(1, n + 1):
            c = check_counts_shape(d.hit("/q%d" % i, site=site),
                                   counted=True)
            eq(c["site"], site, "site")
            out.append(c["path"])
        return out, c

    got, c = paths("small", 4)
    eq(got, ["/q1", "/q2", "/(other)", "/(other)"], "paths of site small")
    eq(vv(c)["total"], (4, 1), "total of site small")
    got, c = paths("default", 5)
    eq(got, ["/q1", "/q2", "/q3", "/(other)", "/(other)"],
       "paths of the default site (max_pages 3 from [count])")
    eq(vv(c)["total"], (5, 1), "total of default")
    got, c = paths("big", 7)
    eq(got, ["/q1", "/q2", "/q3", "/q4", "/q5", "/(other)", "/(other)"],
       "paths of site big")
    eq(vv(c)["total"], (7, 1), "total of site big")
    eq(vv(c)["page"], (2, 1), "/(other) of site big")


if __name__ == "__main__":
    harness.main(globals())
