#!/usr/bin/env python3
"""tallyd's routes, driven over HTTP: counting, reading, normalization."""

import gzip
import json
import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (BROWSER_UA, BROWSER_UA2, Daemon, check, eq,  # noqa: E402
                     check_counts_shape, parse_json, parse_raw, views,
                     visitors, utc_today, mkdtemp, write_file)

COMMIT_WAIT = 0.35  # > the default 100 ms commit interval


def ctype(headers):
    return headers.get("content-type", "").split(";")[0].strip().lower()


def get_json(d, target, headers=None, want=200):
    h = {"User-Agent": BROWSER_UA}
    h.update(headers or {})
    st, hd, body = d.request("GET", target, h)
    eq(st, want, "status of GET %s (body %r)" % (target, body[:200]))
    return hd, parse_json(body, "GET " + target)


def counts_of(c):
    return {k: (c[k]["views"], c[k]["visitors"])
            for k in ("page", "page_today", "today", "total")}


# ------------------------------------------------------------------ health

def test_healthz():
    d = Daemon()
    st, hd, body = d.request("GET", "/healthz")
    eq(st, 200, "status")
    eq(body.strip(), b"ok", "body")


# ------------------------------------------------------------------ GET /hit

def test_get_hit_counts_one_two_three():
    d = Daemon(["--timezone", "UTC"])
    for n in (1, 2, 3):
        before = utc_today()
        st, hd, body = d.request(
            "GET", "/hit?path=%2Fa", {"User-Agent": BROWSER_UA})
        after = utc_today()
        eq(st, 200, "status")
        eq(ctype(hd), "application/json", "Content-Type")
        check("no-store" in hd.get("cache-control", ""),
              "Cache-Control %r lacks no-store" % hd.get("cache-control"))
        c = check_counts_shape(parse_json(body), counted=True)
        eq(c["site"], "default", "site")
        eq(c["path"], "/a", "path")
        check(c["day"] in (before, after),
              "day %r, want UTC today %r" % (c["day"], before))
        eq(counts_of(c), {"page": (n, 1), "page_today": (n, 1),
                          "today": (n, 1), "total": (n, 1)},
           "counts after hit %d" % n)


def test_hit_site_default_explicit():
    d = Daemon()
    a = d.hit("/s")
    b = d.hit("/s", site="default")
    eq(b["site"], "default", "site")
    eq(views(a, "page"), 1, "first page.views")
    eq(views(b, "page"), 2, "page.views with site=default")
    eq(views(b, "total"), 2, "total.views")


def test_pages_are_separate():
    d = Daemon()
    d.hit("/a")
    d.hit("/a")
    c = d.hit("/b")
    eq(c["path"], "/b", "path")
    eq(counts_of(c), {"page": (1, 1), "page_today": (1, 1),
                      "today": (3, 1), "total": (3, 1)}, "counts of /b")
    c = d.hit("/a")
    eq(counts_of(c), {"page": (3, 1), "page_today": (3, 1),
                      "today": (4, 1), "total": (4, 1)}, "counts of /a")


def test_visitors_distinct_user_agents():
    d = Daemon()
    d.hit("/v")
    d.hit("/v")
    c = d.hit("/v", ua=BROWSER_UA2)
    eq(counts_of(c), {"page": (3, 2), "page_today": (3, 2),
                      "today": (3, 2), "total": (3, 2)}, "counts")
    c = d.hit("/w", ua=BROWSER_UA2)
    eq(counts_of(c), {"page": (1, 1), "page_today": (1, 1),
                      "today": (4, 2), "total": (4, 2)}, "counts of /w")


def test_dnt_counts_view_but_no_visitor():
    d = Daemon()
    d.hit("/d")
    ua3 = BROWSER_UA.replace("126.0.0.0", "125.0.0.0")
    c = d.hit("/d", ua=ua3, headers={"DNT": "1"})
    check_counts_shape(c, counted=True)
    eq(counts_of(c)["today"], (2, 1), "today with DNT: 1")
    c = d.hit("/d", ua=BROWSER_UA2, headers={"Sec-GPC": "1"})
    eq(counts_of(c)["today"], (3, 1), "today with Sec-GPC: 1")


# ------------------------------------------------------------------ POST /hit

def test_post_hit_json():
    d = Daemon()
    c = d.hit("/p", method="POST")
    check_counts_shape(c, counted=True)
    eq(c["path"], "/p", "path")
    eq(views(c, "page"), 1, "page.views")
    st, hd, body = d.request(
        "POST", "/hit",
        {"User-Agent": BROWSER_UA, "Content-Type": "application/json"},
        json.dumps({"site": "default", "path": "/p",
                    "referrer": "https://www.google.com/"}))
    eq(st, 200, "status")
    check("no-store" in hd.get("cache-control", ""),
          "Cache-Control %r lacks no-store" % hd.get("cache-control"))
    c = check_counts_shape(parse_json(body), counted=True)
    eq((c["site"], c["path"]), ("default", "/p"), "site, path")
    eq(counts_of(c), {"page": (2, 1), "page_today": (2, 1),
                      "today": (2, 1), "total": (2, 1)}, "counts")


def test_post_hit_text_plain_json():
    # navigator.sendBeacon(url, string) / no-preflight fetch send text/plain.
    d = Daemon()
    for n, ct in enumerate(("text/plain;charset=UTF-8", "text/plain"), 1):
        st, hd, body = d.request(
            "POST", "/hit", {"User-Agent": BROWSER_UA, "Content-Type": ct},
            json.dumps({"path": "/beacon"}))
        eq(st, 200, "status with %s (body %r)" % (ct, body[:200]))
        c = check_counts_shape(parse_json(body), counted=True)
        eq(c["path"], "/beacon", "path")
        eq(views(c, "page"), n, "page.views")


def test_post_hit_form():
    d = Daemon()
    c = d.hit("/form/x", method="POST", form=True)
    check_counts_shape(c, counted=True)
    eq(c["path"], "/form/x", "path")
    eq(views(c, "page"), 1, "page.views")
    st, hd, body = d.request(
        "POST", "/hit",
        {"User-Agent": BROWSER_UA,
         "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"},
        "site=default&path=%2Fform%2Fx")
    eq(st, 200, "status (body %r)" % body[:200])
    c = check_counts_shape(parse_json(body), counted=True)
    eq(views(c, "page"), 2, "page.views")
    eq(views(c, "total"), 2, "total.views")


def test_post_hit_json_unicode():
    d = Daemon()
    # Raw UTF-8 in the JSON text, \u escapes, a surrogate pair.
    for body, want in (
            (json.dumps({"path": "/\u00fcmumi"}, ensure_ascii=False),
             "/\u00fcmumi"),
            (json.dumps({"path": "/\u00fcmumi"}), "/\u00fcmumi"),
            ('{"path":"/\\ud83d\\ude00"}', "/\U0001F600"),
            ('{"path":"\\/esc\\/aped"}', "/esc/aped")):
        st, hd, data = d.request(
            "POST", "/hit",
            {"User-Agent": BROWSER_UA, "Content-Type": "application/json"},
            body.encode("utf-8"))
        eq(st, 200, "status for %r (%r)" % (body, data[:200]))
        eq(parse_json(data)["path"], want, "path for %r" % body)
    c = d.hit("/\u00fcmumi")
    eq(views(c, "page"), 3, "page.views of /ümumi")


def test_post_hit_form_plus_is_space():
    d = Daemon()
    st, hd, body = d.request(
        "POST", "/hit",
        {"User-Agent": BROWSER_UA,
         "Content-Type": "application/x-www-form-urlencoded"},
        "path=%2Fa+b")
    eq(st, 200, "status (%r)" % body[:200])
    eq(parse_json(body)["path"], "/a b", "path of path=%2Fa+b")


def test_post_hit_content_type_variants():
    d = Daemon()
    for n, ct in enumerate(("application/json; charset=utf-8",
                            "Application/JSON", "TEXT/PLAIN; charset=UTF-8"),
                           1):
        st, hd, body = d.request(
            "POST", "/hit", {"User-Agent": BROWSER_UA, "Content-Type": ct},
            json.dumps({"path": "/ct"}))
        eq(st, 200, "status with Content-Type %r (%r)" % (ct, body[:200]))
        eq(views(parse_json(body), "page"), n, "page.views")


def test_post_hit_chunked():
    d = Daemon()
    body = json.dumps({"path": "/chunked"}).encode()
    raw = (b"POST /hit HTTP/1.1\r\nHost: x\r\nUser-Agent: "
           + BROWSER_UA.encode() + b"\r\nContent-Type: application/json\r\n"
           b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
           b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n"
           % (5, body[:5], len(body) - 5, body[5:]))
    st, hd, data = parse_raw(d.raw(raw))
    eq(st, 200, "status of a chunked POST (%r)" % data[:200])
    c = check_counts_shape(parse_json(data), counted=True)
    eq((c["path"], views(c, "page")), ("/chunked", 1), "path, page.views")


def test_get_and_post_share_counts():
    d = Daemon()
    d.hit("/mix")
    d.hit("/mix", method="POST")
    d.hit("/mix", method="POST", form=True)
    c = d.hit("/mix")
    eq(views(c, "page"), 4, "page.views")


# ------------------------------------------------------------------ /count

def test_count_does_not_count():
    d = Daemon()
    d.hit("/c")
    d.hit("/c")
    time.sleep(COMMIT_WAIT)
    for _ in range(3):
        st, hd, body = d.request("GET", "/count?path=%2Fc",
                                 {"User-Agent": BROWSER_UA})
        eq(st, 200, "status")
        eq(ctype(hd), "application/json", "Content-Type")
        cc = hd.get("cache-control", "")
        check("max-age=5" in cc.replace(" ", ""),
              "Cache-Control %r lacks max-age=5" % cc)
        check("no-store" not in cc, "Cache-Control %r has no-store" % cc)
        c = check_counts_shape(parse_json(body), counted=False,
                               reason="readonly")
        eq((c["site"], c["path"]), ("default", "/c"), "site, path")
        eq(counts_of(c), {"page": (2, 1), "page_today": (2, 1),
                          "today": (2, 1), "total": (2, 1)}, "counts")
    c = d.hit("/c")
    eq(views(c, "page"), 3, "page.views of the next hit")
    eq(views(c, "total"), 3, "total.views of the next hit")


def test_count_unknown_page_is_zero():
    d = Daemon()
    d.hit("/x")
    time.sleep(COMMIT_WAIT)
    c = check_counts_shape(d.count("/never"), counted=False, reason="readonly")
    eq(c["path"], "/never", "path")
    eq(counts_of(c), {"page": (0, 0), "page_today": (0, 0),
                      "today": (1, 1), "total": (1, 1)}, "counts")


def test_count_max_age_configurable():
    cfg = write_file(os.path.join(mkdtemp(), "tally.ini"),
                     "[count]\ncount_max_age = 60\n")
    d = Daemon(["--config", cfg])
    st, hd, body = d.request("GET", "/count?path=%2F",
                             {"User-Agent": BROWSER_UA})
    eq(st, 200, "status")
    cc = hd.get("cache-control", "").replace(" ", "")
    check("max-age=60" in cc, "Cache-Control %r lacks max-age=60" % cc)


# ------------------------------------------------------------------ HEAD

def test_head_never_counts():
    d = Daemon()
    d.hit("/h")
    for target in ("/hit?path=%2Fh", "/count?path=%2Fh",
                   "/counter.svg?path=%2Fh", "/pixel.gif?path=%2Fh"):
        st, hd, body = d.request("HEAD", target, {"User-Agent": BROWSER_UA})
        eq(st, 200, "HEAD %s status" % target)
        raw = d.raw(("HEAD %s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: %s"
                     "\r\nConnection: close\r\n\r\n" % (target, BROWSER_UA))
                    .encode(), wait_close=True, timeout=3)
        rst, rhd, rbody = parse_raw(raw)
        eq(rst, 200, "raw HEAD %s status (%r)" % (target, raw[:200]))
        eq(rbody, b"", "bytes after the headers of HEAD %s" % target)
    time.sleep(COMMIT_WAIT)
    c = d.count("/h")
    eq(counts_of(c), {"page": (1, 1), "page_today": (1, 1),
                      "today": (1, 1), "total": (1, 1)}, "counts after HEADs")


def test_head_has_get_headers():
    d = Daemon()
    st, hd, _ = d.request("HEAD", "/count?path=%2F", {"User-Agent": BROWSER_UA})
    eq(st, 200, "status")
    eq(ctype(hd), "application/json", "Content-Type of HEAD /count")


# ------------------------------------------------------------------ paths

def test_referer_fallback():
    d = Daemon()
    ref = {"Referer": "https://example.org/blog/post/?utm=1#top"}
    c = d.hit(None, headers=ref)
    eq(c["path"], "/blog/post", "path from Referer (GET)")
    eq(views(c, "page"), 1, "page.views")
    c = d.hit(None, headers=ref, method="POST")
    eq(c["path"], "/blog/post", "path from Referer (POST JSON)")
    eq(views(c, "page"), 2, "page.views")
    c = d.hit(None, headers={"Referer": "https://example.org/%C3%BCmumi/"})
    eq(c["path"], "/\u00fcmumi", "path from a percent-encoded Referer")
    c = d.hit(None)
    eq(c["path"], "/", "path without path and Referer")
    eq(views(c, "page"), 1, "page.views of /")
    # An explicit path wins over the Referer.
    c = d.hit("/explicit", headers=ref)
    eq(c["path"], "/explicit", "explicit path with a Referer")
    time.sleep(COMMIT_WAIT)
    st, hd, body = d.request("GET", "/count",
                             {"User-Agent": BROWSER_UA,
                              "Referer": "https://example.org/blog/post"})
    eq(st, 200, "status")
    c = parse_json(body)
    eq((c["path"], views(c, "page")), ("/blog/post", 2), "/count via Referer")


NORMALIZATION = [
    ("/a/./b/../c/", "/a/c"),
    ("//x//y", "/x/y"),
    ("/trail/", "/trail"),
    ("/", "/"),
    ("/Case/Kept", "/Case/Kept"),
    ("/a/b/..", "/a"),
    ("/../..", "/"),
    ("https://example.org/full/url?x=1#frag", "/full/url"),
    ("/%C3%BCmumi", "/\u00fcmumi"),
    ("/a%20b", "/a b"),
    ("/%61bc", "/abc"),
    ("/a/%2E%2E/b", "/b"),
    ("/a%2F%2Fb", "/a/b"),
    ("http://example.org:8080/port/x", "/port/x"),
    ("https://example.org", "/"),
    ("/" + "a" * 600 + "/..", "/"),
]


def test_path_normalization_post_json():
    # JSON carries the path exactly as location.pathname gives it.
    d = Daemon()
    for given, want in NORMALIZATION:
        c = d.hit(given, method="POST")
        eq(c["path"], want, "normalized %r" % given)


def test_path_normalization_get_encoded():
    # What a script sends: encodeURIComponent(location.pathname).
    d = Daemon()
    for given, want in NORMALIZATION:
        c = d.hit(given)
        eq(c["path"], want, "normalized %r via GET" % given)


def test_path_normalization_get_raw_query():
    d = Daemon()
    for target, want in (("/hit?path=/a/./b/../c/", "/a/c"),
                         ("/hit?path=/%C3%BCmumi", "/\u00fcmumi"),
                         ("/hit?path=//x//y/", "/x/y")):
        st, hd, body = d.request("GET", target, {"User-Agent": BROWSER_UA})
        eq(st, 200, "status of %s (%r)" % (target, body[:200]))
        eq(parse_json(body)["path"], want, "path of %s" % target)


def test_normalized_spellings_share_a_page():
    d = Daemon()
    d.hit("/a/c")
    d.hit("/a/./b/../c/", method="POST")
    d.hit("//a//c//")
    d.hit("https://example.org/a/c?x=1")
    c = d.hit("/a/%63")
    eq(c["path"], "/a/c", "path")
    eq(views(c, "page"), 5, "page.views of /a/c")
    c = d.hit("/%C3%BCmumi")
    c = d.hit("/\u00fcmumi", method="POST")
    eq(c["path"], "/\u00fcmumi", "path")
    eq(views(c, "page"), 2, "page.views of /ümumi")
    # Case is kept: a different page.
    c = d.hit("/A/C")
    eq(views(c, "page"), 1, "page.views of /A/C")


def test_json_escapes_path():
    d = Daemon()
    c = d.hit('/q"uote\\back<tag>', method="POST")
    eq(c["path"], '/q"uote\\back<tag>', "path round trip through JSON")


# ------------------------------------------------------------------ day

def test_day_is_utc_date_with_timezone_utc():
    d = Daemon(["--timezone", "UTC"])
    before = utc_today()
    c = d.hit("/day")
    c2 = d.count("/day")
    after = utc_today()
    check(c["day"] in (before, after), "hit day %r, want %r" % (c["day"], before))
    check(c2["day"] in (before, after),
          "count day %r, want %r" % (c2["day"], before))


def test_day_in_timezone_far_from_utc():
    # In a zone 14 hours ahead (Pacific/Kiritimati, no DST) or 11 behind
    # (Pacific/Pago_Pago) the date differs from UTC's for part of the day;
    # the daemon must answer with the date in its zone.
    import datetime
    for zone, hours in (("Pacific/Kiritimati", 14), ("Pacific/Pago_Pago", -11)):
        if not os.path.exists("/usr/share/zoneinfo/" + zone):
            continue
        d = Daemon(["--timezone", zone])
        tz = datetime.timezone(datetime.timedelta(hours=hours))
        before = datetime.datetime.now(tz).date().isoformat()
        c = d.hit("/tz")
        after = datetime.datetime.now(tz).date().isoformat()
        check(c["day"] in (before, after),
              "%s: day %r, want %r" % (zone, c["day"], before))
        d.stop()


# ------------------------------------------------------------------ sites

def _sites_config():
    return write_file(os.path.join(mkdtemp(), "tally.ini"), (
        "[site blog]\n"
        "max_pages = 1000\n"
        "\n"
        "[site shop]\n"
        "origins = https://shop.example, https://www.shop.example\n"))


def test_configured_site_is_separate():
    d = Daemon(["--config", _sites_config()])
    d.hit("/a")
    d.hit("/a", site="blog")
    c = d.hit("/a", site="blog")
    eq(c["site"], "blog", "site")
    eq(counts_of(c), {"page": (2, 1), "page_today": (2, 1),
                      "today": (2, 1), "total": (2, 1)}, "blog counts")
    c = d.hit("/a")
    eq(c["site"], "default", "site")
    eq(counts_of(c), {"page": (2, 1), "page_today": (2, 1),
                      "today": (2, 1), "total": (2, 1)}, "default counts")


def test_site_from_origin_and_cors():
    d = Daemon(["--config", _sites_config()])
    st, hd, body = d.request("GET", "/hit?path=%2Fcart",
                             {"User-Agent": BROWSER_UA,
                              "Origin": "https://shop.example"})
    eq(st, 200, "status")
    c = check_counts_shape(parse_json(body), counted=True)
    eq(c["site"], "shop", "site chosen by Origin")
    eq(hd.get("access-control-allow-origin"), "https://shop.example",
       "Access-Control-Allow-Origin")
    check("origin" in hd.get("vary", "").lower(),
          "Vary %r lacks Origin" % hd.get("vary"))
    check(hd.get("access-control-allow-credentials", "").lower() != "true",
          "credentials allowed")
    # Site by Referer origin.
    c = d.hit("/cart", headers={"Referer": "https://www.shop.example/cart"})
    eq((c["site"], c["counted"], views(c, "page")), ("shop", True, 2),
       "site by Referer origin")
    # Another origin: answered, not counted, no ACAO for it.
    st, hd, body = d.request("GET", "/hit?site=shop&path=%2Fcart",
                             {"User-Agent": BROWSER_UA,
                              "Origin": "https://evil.example"})
    eq(st, 200, "status from a foreign origin")
    c = check_counts_shape(parse_json(body), counted=False, reason="origin")
    eq(views(c, "page"), 2, "page.views after the foreign hit")
    check(hd.get("access-control-allow-origin") not in
          ("*", "https://evil.example"),
          "ACAO %r for a foreign origin" % hd.get("access-control-allow-origin"))
    # Neither Origin nor Referer for a site with origins: not counted.
    c = d.hit("/cart", site="shop")
    check_counts_shape(c, counted=False, reason="origin")
    eq(views(c, "page"), 2, "page.views after a hit without origin")


def test_default_site_cors_star():
    d = Daemon()
    st, hd, body = d.request("GET", "/hit?path=%2Fany",
                             {"User-Agent": BROWSER_UA,
                              "Origin": "https://any.example"})
    eq(st, 200, "status")
    eq(hd.get("access-control-allow-origin"), "*", "Access-Control-Allow-Origin")
    check(hd.get("access-control-allow-credentials", "").lower() != "true",
          "credentials allowed")
    c = check_counts_shape(parse_json(body), counted=True)
    eq(c["site"], "default", "site")


def test_options_preflight():
    d = Daemon()
    d.hit("/pre")
    st, hd, body = d.request("OPTIONS", "/hit", {
        "User-Agent": BROWSER_UA,
        "Origin": "https://any.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    check(st in (200, 204), "OPTIONS status %d" % st)
    check(hd.get("access-control-allow-origin") in ("*", "https://any.example"),
          "ACAO %r" % hd.get("access-control-allow-origin"))
    check("POST" in hd.get("access-control-allow-methods", "").upper(),
          "Access-Control-Allow-Methods %r"
          % hd.get("access-control-allow-methods"))
    time.sleep(COMMIT_WAIT)
    eq(views(d.count("/pre"), "total"), 1, "total.views after OPTIONS")


def test_options_on_every_route():
    # doc/http.md: OPTIONS on any route is a CORS preflight; POST only on /hit.
    d = Daemon()
    for target in ("/hit", "/count", "/counter.svg", "/pixel.gif",
                   "/tally.js", "/healthz", "/metrics", "/"):
        st, hd, body = d.request("OPTIONS", target, {
            "Origin": "https://any.example",
            "Access-Control-Request-Method": "GET"})
        eq((st, body), (204, b""), "OPTIONS " + target)
        methods = {m.strip() for m in
                   hd.get("access-control-allow-methods", "").split(",")}
        check({"GET", "HEAD"} <= methods, "Allow-Methods of %s: %r"
              % (target, methods))
        eq("POST" in methods, target == "/hit", "POST allowed on " + target)
    st, hd, body = d.request("POST", "/count", {"Content-Type":
                                                "application/json"}, "{}")
    eq(st, 405, "POST /count")
    eq(hd.get("allow"), "GET, HEAD, OPTIONS", "Allow of /count")


# ------------------------------------------------------------------ filters

def test_bots_answered_not_counted():
    d = Daemon()
    d.hit("/bot")
    cases = [
        ("empty UA", {"User-Agent": ""}),
        ("curl", {"User-Agent": "curl/8.5.0"}),
        ("python", {"User-Agent": "python-requests/2.31.0"}),
        ("Googlebot", {"User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1;"
                                     " +http://www.google.com/bot.html)"}),
        ("headless", {"User-Agent": BROWSER_UA.replace("Chrome/",
                                                       "HeadlessChrome/")}),
        ("prefetch", {"User-Agent": BROWSER_UA, "Sec-Purpose": "prefetch"}),
        ("Purpose", {"User-Agent": BROWSER_UA, "Purpose": "prefetch"}),
    ]
    for what, h in cases:
        st, hd, body = d.request("GET", "/hit?path=%2Fbot", h)
        eq(st, 200, "status for %s" % what)
        c = check_counts_shape(parse_json(body), counted=False, reason="bot")
        eq(views(c, "page"), 1, "page.views for %s" % what)
    # No User-Agent header at all.
    raw = d.raw(b"GET /hit?path=%2Fbot HTTP/1.1\r\nHost: x\r\n"
                b"Connection: close\r\n\r\n")
    st, hd, body = parse_raw(raw)
    eq(st, 200, "status without User-Agent (%r)" % raw[:200])
    c = check_counts_shape(parse_json(body), counted=False, reason="bot")
    time.sleep(COMMIT_WAIT)
    eq(counts_of(d.count("/bot"))["total"], (1, 1), "total after bots")


def test_rate_limit():
    d = Daemon(["--rate-limit", "3"], rate_limit=False)
    for n in (1, 2, 3):
        c = d.hit("/r")
        check_counts_shape(c, counted=True)
        eq(views(c, "page"), n, "page.views")
    c = d.hit("/r")
    check_counts_shape(c, counted=False, reason="rate")
    eq(views(c, "page"), 3, "page.views after the limit")
    # Another visitor is not limited.
    c = d.hit("/r", ua=BROWSER_UA2)
    check_counts_shape(c, counted=True)
    eq(views(c, "page"), 4, "page.views of another visitor")


def test_max_pages_other():
    d = Daemon(["--max-pages", "2"])
    d.hit("/p1")
    d.hit("/p2")
    c = d.hit("/p3")
    eq(views(c, "total"), 3, "total.views with the page cap")
    c = d.hit("/p4")
    eq(views(c, "total"), 4, "total.views with the page cap")
    c = d.hit("/p1")
    eq((c["path"], views(c, "page")), ("/p1", 2), "existing page still counts")
    time.sleep(COMMIT_WAIT)
    c = d.count("/(other)")
    eq(views(c, "page"), 2, "page.views of /(other)")
    eq(views(c, "total"), 5, "total.views")


# ------------------------------------------------------------------ badge etc.

def test_counter_svg():
    d = Daemon()
    d.hit("/svg")
    d.hit("/svg")
    st, hd, body = d.request(
        "GET", "/counter.svg?path=%2Fsvg&show=page&label.page=Giri%C5%9F",
        {"User-Agent": BROWSER_UA})
    eq(st, 200, "status")
    eq(ctype(hd), "image/svg+xml", "Content-Type")
    csp = hd.get("content-security-policy", "")
    check("default-src 'none'" in csp and "style-src 'unsafe-inline'" in csp,
          "Content-Security-Policy %r" % csp)
    eq(hd.get("x-content-type-options", "").lower(), "nosniff",
       "X-Content-Type-Options")
    check("no-store" in hd.get("cache-control", ""),
          "Cache-Control %r lacks no-store" % hd.get("cache-control"))
    text = body.decode("utf-8")
    check("<svg" in text, "no <svg> in %r" % text[:200])
    check("Giri\u015f" in text, "label Giriş not in the SVG")
    check(">3<" in text, "the page count 3 is not in the SVG: %r" % text[:600])
    time.sleep(COMMIT_WAIT)
    eq(views(d.count("/svg"), "page"), 3, "page.views after counter.svg")
    st, hd, body = d.request("GET", "/counter.svg?path=%2Fsvg&count=0",
                             {"User-Agent": BROWSER_UA})
    eq(st, 200, "status with count=0")
    time.sleep(COMMIT_WAIT)
    eq(views(d.count("/svg"), "page"), 3, "page.views after count=0")


def test_counter_svg_escapes_labels():
    d = Daemon()
    st, hd, body = d.request(
        "GET", "/counter.svg?path=%2Fe&show=today&label.today="
        + urllib.parse.quote("<script>alert(1)</script>&\""),
        {"User-Agent": BROWSER_UA})
    eq(st, 200, "status")
    text = body.decode("utf-8")
    check("<script" not in text, "unescaped label in the SVG: %r" % text[:600])
    check("&lt;script&gt;" in text, "escaped label missing: %r" % text[:600])


def test_pixel_gif():
    d = Daemon()
    d.hit("/px")
    st, hd, body = d.request("GET", "/pixel.gif?path=%2Fpx",
                             {"User-Agent": BROWSER_UA})
    eq(st, 200, "status")
    eq(ctype(hd), "image/gif", "Content-Type")
    check(body[:6] in (b"GIF89a", b"GIF87a"), "not a GIF: %r" % body[:20])
    eq(body[6:10], b"\x01\x00\x01\x00", "GIF size bytes")
    check("no-store" in hd.get("cache-control", ""),
          "Cache-Control %r lacks no-store" % hd.get("cache-control"))
    time.sleep(COMMIT_WAIT)
    eq(views(d.count("/px"), "page"), 2, "page.views after pixel.gif")


def test_tally_js():
    d = Daemon()
    st, hd, body = d.request("GET", "/tally.js", {"User-Agent": BROWSER_UA})
    eq(st, 200, "status")
    check("javascript" in ctype(hd), "Content-Type %r" % hd.get("content-type"))
    etag = hd.get("etag")
    check(etag, "no ETag")
    check("max-age" in hd.get("cache-control", ""),
          "Cache-Control %r lacks max-age" % hd.get("cache-control"))
    check(len(body) > 100, "script too small: %d bytes" % len(body))
    gz = len(gzip.compress(body, 9))
    check(gz < 1536, "tally.js is %d bytes gzipped, limit 1536" % gz)
    st, hd2, body2 = d.request("GET", "/tally.js", {"User-Agent": BROWSER_UA,
                                                    "If-None-Match": etag})
    eq(st, 304, "status with If-None-Match")
    eq(body2, b"", "304 body")
    time.sleep(COMMIT_WAIT)
    eq(views(d.count("/"), "total"), 0, "total.views after tally.js")


def test_index_page():
    d = Daemon()
    st, hd, body = d.request("GET", "/", {"User-Agent": BROWSER_UA})
    eq(st, 200, "status")
    eq(ctype(hd), "text/html", "Content-Type")
    check(b"tally.js" in body, "the page does not show the snippet")
    time.sleep(COMMIT_WAIT)
    eq(views(d.count("/"), "total"), 0, "total.views after GET /")


def test_metrics():
    d = Daemon()
    d.hit("/m")
    d.hit("/m")
    d.hit("/m", ua="curl/8.5.0")
    time.sleep(COMMIT_WAIT)
    st, hd, body = d.request("GET", "/metrics", {"User-Agent": BROWSER_UA})
    eq(st, 200, "status")
    eq(ctype(hd), "text/plain", "Content-Type")
    text = body.decode("utf-8")
    vals = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            vals[k.strip()] = v
    eq(vals.get('tally_views_total{site="default"}'), "2",
       "tally_views_total{site=\"default\"}")
    eq(vals.get('tally_views_today{site="default"}'), "2",
       "tally_views_today{site=\"default\"}")
    eq(vals.get('tally_visitors_today{site="default"}'), "1",
       "tally_visitors_today{site=\"default\"}")
    eq(vals.get('tally_hits_declined_total{reason="bot"}'), "1",
       "tally_hits_declined_total{reason=\"bot\"}")
    for name in ("tally_store_commits_total", "tally_store_pending_hits",
                 "tally_store_map_bytes", "tally_store_used_bytes",
                 "process_start_time_seconds",
                 "process_resident_memory_bytes"):
        check(name in vals, "metric %s missing" % name)
    check(any(k.startswith("tally_build_info{") for k in vals),
          "tally_build_info missing")
    check(any(k.startswith("tally_store_commit_seconds_bucket{") for k in vals),
          "tally_store_commit_seconds histogram missing")


def test_keep_alive():
    d = Daemon()
    conn = d.connect()
    try:
        for n in (1, 2, 3):
            conn.request("GET", "/hit?path=%2Fka", headers={
                "User-Agent": BROWSER_UA})
            r = conn.getresponse()
            body = r.read()
            eq(r.status, 200, "status of request %d" % n)
            eq(views(parse_json(body), "page"), n, "page.views on one conn")
    finally:
        conn.close()


def test_pipelined_requests():
    d = Daemon()
    one = ("GET /hit?path=%%2Fpipe HTTP/1.1\r\nHost: x\r\nUser-Agent: %s"
           "\r\n\r\n" % BROWSER_UA).encode()
    last = ("GET /count?path=%%2Fpipe HTTP/1.1\r\nHost: x\r\nUser-Agent: %s"
            "\r\nConnection: close\r\n\r\n" % BROWSER_UA).encode()
    out = d.raw(one + one + last, wait_close=True)
    got = []
    while out:
        st, hd, rest = parse_raw(out)
        check(st == 200, "pipelined answer %d: %r" % (len(got) + 1, out[:200]))
        n = int(hd.get("content-length", "-1"))
        check(n >= 0, "pipelined answer without Content-Length: %r" % hd)
        got.append(parse_json(rest[:n]))
        out = rest[n:]
    eq([(c["counted"], views(c, "page")) for c in got],
       [(True, 1), (True, 2), (False, 2)], "three pipelined answers")


def test_http10_without_host():
    d = Daemon()
    raw = ("GET /hit?path=%%2Fold HTTP/1.0\r\nUser-Agent: %s\r\n\r\n"
           % BROWSER_UA).encode()
    out = d.raw(raw, wait_close=True)
    st, hd, body = parse_raw(out)
    eq(st, 200, "status of an HTTP/1.0 request (%r)" % out[:200])
    eq(views(parse_json(body), "page"), 1, "page.views")


def test_metrics_admin_only():
    cfg = write_file(os.path.join(mkdtemp(), "tally.ini"),
                     "[server]\nadmin_allow = 192.0.2.0/24\n")
    d = Daemon(["--config", cfg])
    st, hd, body = d.request("GET", "/metrics", {"User-Agent": BROWSER_UA})
    harness.check_json_error(st, hd, body, 403, "/metrics from loopback "
                             "outside admin_allow")
    d.check_alive()


if __name__ == "__main__":
    harness.main(globals())
