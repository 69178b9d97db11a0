#!/usr/bin/env python3
"""The embeddable counter over HTTP: the SVG badge, the pixel, tally.js,
CORS and the front page."""

import gzip
import html.parser
import os
import re
import struct
import sys
import time
import urllib.parse
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (BROWSER_UA, Daemon, check, eq, check_json_error,  # noqa: E402
                     mkdtemp, views, write_file)

COMMIT_WAIT = 0.35  # > the default 100 ms commit interval
SVG_NS = "{http://www.w3.org/2000/svg}"
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'"


def ctype(headers):
    return headers.get("content-type", "").split(";")[0].strip().lower()


def get(d, target, headers=None, method="GET"):
    h = {"User-Agent": BROWSER_UA}
    h.update(headers or {})
    return d.request(method, target, h)


def svg_target(**params):
    return "/counter.svg?" + urllib.parse.urlencode(
        [(k.replace("_", "."), v) for k, v in params.items()],
        quote_via=urllib.parse.quote)


class Badge:
    """A parsed badge: its width and its texts in document order."""

    def __init__(self, body):
        try:
            self.root = ET.fromstring(body)
        except ET.ParseError as e:
            raise harness.Failure("the SVG is not XML (%s): %r"
                                  % (e, body[:300]))
        eq(self.root.tag, SVG_NS + "svg", "root element")
        self.width = int(self.root.get("width"))
        eq(self.root.get("height"), "20", "badge height")
        texts = [t for t in self.root.iter(SVG_NS + "text")
                 if t.get("aria-hidden") != "true"]  # not the shadows
        self.texts = [t.text or "" for t in texts]
        self.text_lengths = [float(t.get("textLength")) for t in texts]
        self.title = self.root.find(SVG_NS + "title").text

    def pairs(self):
        """[(label, number)] from texts label, number, label, number..."""
        return list(zip(self.texts[0::2], self.texts[1::2]))


def fetch_badge(d, want=200, **params):
    st, hd, body = get(d, svg_target(**params))
    eq(st, want, "status of %s (body %r)" % (svg_target(**params), body[:200]))
    return hd, body


def check_svg_headers(hd):
    eq(ctype(hd), "image/svg+xml", "Content-Type")
    check("charset=utf-8" in hd.get("content-type", "").lower(),
          "Content-Type %r lacks charset=utf-8" % hd.get("content-type"))
    eq(hd.get("content-security-policy"), SVG_CSP, "Content-Security-Policy")
    eq(hd.get("x-content-type-options"), "nosniff", "X-Content-Type-Options")
    check("no-store" in hd.get("cache-control", ""),
          "Cache-Control %r lacks no-store" % hd.get("cache-control"))


def page_views(d, path):
    time.sleep(COMMIT_WAIT)
    return views(d.count(path), "page")


# ------------------------------------------------------------------ SVG

def test_svg_default_shows_today_and_total():
    d = Daemon()
    d.hit("/b")
    d.hit("/other")
    hd, body = fetch_badge(d, path="/b")
    check_svg_headers(hd)
    eq(hd.get("access-control-allow-origin"), "*", "ACAO")
    b = Badge(body)
    # This request counted too: a visitor sees their own visit.
    eq(b.pairs(), [("Today", "3"), ("Total", "3")], "default badge")
    eq(b.title, "Today: 3, Total: 3", "title")
    eq(b.root.get("aria-label"), "Today: 3, Total: 3", "aria-label")


def test_svg_show_any_subset_any_order():
    d = Daemon()
    for _ in range(3):
        d.hit("/p")
    d.hit("/q")
    cases = [
        ("page", [("Views", "3")]),
        ("total", [("Total", "4")]),
        ("page,today", [("Views", "3"), ("Today", "4")]),
        ("total,page,today", [("Total", "4"), ("Views", "3"),
                              ("Today", "4")]),
        ("today, total ,today", [("Today", "4"), ("Total", "4")]),
    ]
    for show, want in cases:
        hd, body = fetch_badge(d, path="/p", show=show, count="0")
        eq(Badge(body).pairs(), want, "badge with show=%r" % show)
    for show in ("", "views", "today,bogus", ",,"):
        st, hd, body = get(d, svg_target(path="/p", show=show))
        check_json_error(st, hd, body, 400, "show=%r" % show)


def test_svg_labels_override_and_escape():
    d = Daemon()
    hostile = [
        "<script>alert(1)</script>",
        "\"quoted\" & 'single'",
        "a]]><b>&amp;</b>",
        "Bu g\u00fcn",
        "\u00dcmumi",
        "\u4eca\u65e5",  # CJK
        "e\u0301\u0301",  # combining marks
    ]
    for label in hostile:
        hd, body = fetch_badge(d, path="/l", show="today,total,page",
                               label_today=label, label_total="T&T",
                               label_page="<p>", count="0")
        check_svg_headers(hd)
        check(b"<script" not in body and b"<p>" not in body,
              "unescaped markup in %r" % body[:400])
        b = Badge(body)
        eq(b.pairs(), [(label, "0"), ("T&T", "0"), ("<p>", "0")],
           "texts with label %r" % label)
        eq(b.title, "%s: 0, T&T: 0, <p>: 0" % label, "title")
    # An empty label leaves the number alone.
    hd, body = fetch_badge(d, path="/l", show="today,total", label_today="",
                           count="0")
    eq(Badge(body).texts, ["0", "Total", "0"], "texts with an empty label")


def test_svg_labels_from_site_config():
    conf = write_file(os.path.join(mkdtemp(), "tally.ini"),
                      "[site az]\nlabels = today:Bu g\u00fcn, "
                      "total:\u00dcmumi, page:Giri\u015f\n")
    d = Daemon(["--config", conf])
    d.hit("/x", site="az")
    hd, body = fetch_badge(d, site="az", path="/x", show="page,today,total")
    eq(Badge(body).pairs(), [("Giri\u015f", "2"), ("Bu g\u00fcn", "2"),
                             ("\u00dcmumi", "2")], "site labels")
    hd, body = fetch_badge(d, site="az", path="/x", label_total="All",
                           count="0")
    eq(Badge(body).pairs(), [("Bu g\u00fcn", "2"), ("All", "2")],
       "a query label over a site label")


def test_svg_label_limits():
    d = Daemon()
    d.hit("/lim")
    # 64 characters are fine, also when they are 128 bytes.
    for label in ("x" * 64, "\u00fc" * 64, "\u4e00" * 64):
        hd, body = fetch_badge(d, path="/lim", label_today=label, count="0")
        eq(Badge(body).texts[0], label, "a 64-character label")
    for key in ("label.today", "label.total", "label.page"):
        for label in ("x" * 65, "\u00fc" * 65):
            st, hd, body = get(d, "/counter.svg?path=/lim&%s=%s"
                               % (key, urllib.parse.quote(label)))
            check_json_error(st, hd, body, 400, "%s of 65 characters" % key)
        # Invalid UTF-8: a bad continuation, an overlong, a lone byte, a
        # surrogate.
        for raw in ("%C3%28", "%C0%AF", "%FF", "%ED%A0%80", "ab%E2%82"):
            st, hd, body = get(d, "/counter.svg?path=/lim&%s=%s" % (key, raw))
            check_json_error(st, hd, body, 400, "%s=%s" % (key, raw))
    eq(page_views(d, "/lim"), 1, "rejected badges counted nothing")


def test_svg_width_fits_text():
    d = Daemon()
    widths = {}
    for label in ("A", "AAAAAAAAAA", "iiiiiiiiii", "WWWWWWWWWW",
                  "\u4e00" * 10, "a\u0301" * 10, "a" * 10):
        hd, body = fetch_badge(d, path="/w", show="today", label_today=label,
                               count="0")
        b = Badge(body)
        widths[label] = (b.width, b.text_lengths[0])
    check(widths["A"][0] < widths["AAAAAAAAAA"][0], "width does not grow: %r"
          % widths)
    check(widths["iiiiiiiiii"][0] < widths["a" * 10][0] <
          widths["WWWWWWWWWW"][0], "narrow and wide letters alike: %r" % widths)
    check(widths["\u4e00" * 10][0] > widths["a" * 10][0],
          "CJK not wider than Latin: %r" % widths)
    # Combining marks take no room.
    eq(widths["a\u0301" * 10], widths["a" * 10], "combining marks")
    # A digit is about 7px wide at 11px.
    hd, body = fetch_badge(d, path="/w", show="total", count="0")
    b = Badge(body)
    eq(b.texts[1], "0", "the number")
    check(6 <= b.text_lengths[1] <= 8, "text length of one digit: %r"
          % b.text_lengths[1])


def test_svg_thousands_separators():
    d = Daemon()
    conn = d.connect()
    for _ in range(1000):
        conn.request("GET", "/hit?path=/k", headers={"User-Agent": BROWSER_UA})
        r = conn.getresponse()
        r.read()
        eq(r.status, 200, "hit status")
    conn.close()
    hd, body = fetch_badge(d, path="/k", show="total,page")
    eq(Badge(body).pairs(), [("Total", "1,001"), ("Views", "1,001")],
       "separators")


def test_svg_count_zero_reads_only():
    d = Daemon()
    for _ in range(2):
        hd, body = fetch_badge(d, path="/c", show="page")
    eq(Badge(body).pairs(), [("Views", "2")], "counted badge")
    for v in ("0", "false"):
        hd, body = fetch_badge(d, path="/c", show="page", count=v)
        eq(Badge(body).pairs(), [("Views", "2")], "badge with count=%s" % v)
    st, hd, body = get(d, svg_target(path="/c"), method="HEAD")
    eq((st, body), (200, b""), "HEAD answer")
    check_svg_headers(hd)
    eq(page_views(d, "/c"), 2, "page.views after count=0 and HEAD")
    # A bot sees the badge but is not counted.
    st, hd, body = d.request("GET", svg_target(path="/c", show="page"),
                             {"User-Agent": "Googlebot/2.1"})
    eq(st, 200, "status for a bot")
    eq(Badge(body).pairs(), [("Views", "2")], "badge for a bot")


def test_svg_bad_site_and_path():
    d = Daemon()
    st, hd, body = get(d, "/counter.svg?site=Bad_Id")
    check_json_error(st, hd, body, 400, "invalid site id")
    st, hd, body = get(d, "/counter.svg?site=nosuch")
    check_json_error(st, hd, body, 404, "unknown site")
    st, hd, body = get(d, "/counter.svg?path=%ZZ")
    check_json_error(st, hd, body, 400, "malformed percent-encoding")


# ------------------------------------------------------------------ pixel

def test_pixel_is_a_transparent_1x1_gif_and_counts():
    d = Daemon()
    st, hd, body = get(d, "/pixel.gif?path=%2Fpx")
    eq(st, 200, "status")
    eq(ctype(hd), "image/gif", "Content-Type")
    check("no-store" in hd.get("cache-control", ""),
          "Cache-Control %r" % hd.get("cache-control"))
    eq(len(body), 43, "GIF size")
    eq(body[:6], b"GIF89a", "signature")
    w, h, flags = struct.unpack("<HHB", body[6:11])
    eq((w, h), (1, 1), "logical screen size")
    check(flags & 0x80, "no global colour table")
    ncolors = 2 << (flags & 7)
    i = 13 + 3 * ncolors
    # Graphic control extension with the transparency flag.
    eq(body[i:i + 3], b"\x21\xf9\x04", "graphic control extension")
    check(body[i + 3] & 1, "transparency flag not set")
    transparent = body[i + 6]
    i += 8
    eq(body[i], 0x2c, "image descriptor")
    eq(struct.unpack("<HHHH", body[i + 1:i + 9]), (0, 0, 1, 1), "image frame")
    eq(body[-1], 0x3b, "trailer")
    check(transparent < ncolors, "transparent index %d" % transparent)
    eq(page_views(d, "/px"), 1, "page.views after pixel.gif")
    get(d, "/pixel.gif?path=%2Fpx")
    st, hd, body = get(d, "/pixel.gif?path=%2Fpx", method="HEAD")
    eq((st, body), (200, b""), "HEAD")
    eq(page_views(d, "/px"), 2, "page.views after a second pixel and HEAD")


# ------------------------------------------------------------------ tally.js

def test_tally_js_etag_and_cache():
    d = Daemon()
    st, hd, body = get(d, "/tally.js")
    eq(st, 200, "status")
    eq(hd.get("content-type"), "text/javascript; charset=utf-8",
       "Content-Type")
    eq(hd.get("access-control-allow-origin"), "*", "ACAO")
    cc = hd.get("cache-control", "")
    check(re.search(r"max-age=\d+", cc), "Cache-Control %r" % cc)
    etag = hd.get("etag", "")
    check(re.fullmatch(r'"[^"]+"', etag), "ETag %r is not a strong tag" % etag)
    gz = len(gzip.compress(body, 9))
    check(gz < 1536, "tally.js is %d bytes gzipped, limit 1536" % gz)
    check(b"currentScript" in body and b"keepalive" in body,
          "not the expected script: %r" % body[:200])
    for inm in (etag, "W/" + etag, "*", '"nope", ' + etag,
                '"a,b",%s , "c"' % etag):
        st, hd2, body2 = get(d, "/tally.js", {"If-None-Match": inm})
        eq(st, 304, "status with If-None-Match %r" % inm)
        eq(body2, b"", "304 body")
        eq(hd2.get("etag"), etag, "ETag of the 304")
        check("max-age" in hd2.get("cache-control", ""), "304 Cache-Control")
    for inm in ('"nope"', etag[:-2] + '"', "W/\"x\""):
        st, hd2, body2 = get(d, "/tally.js", {"If-None-Match": inm})
        eq(st, 200, "status with a stale If-None-Match %r" % inm)
        eq(body2, body, "body")
    st, hd2, body2 = get(d, "/tally.js", method="HEAD")
    eq((st, body2, hd2.get("etag")), (200, b"", etag), "HEAD")
    eq(int(hd2.get("content-length")), len(body), "HEAD Content-Length")
    time.sleep(COMMIT_WAIT)
    eq(views(d.count("/"), "total"), 0, "tally.js counted something")


# ------------------------------------------------------------------ CORS

def test_cors_open_site():
    d = Daemon()
    o = {"Origin": "https://any.example"}
    for target in ("/count?path=/", "/hit?path=/", "/counter.svg?path=/",
                   "/pixel.gif?path=/", "/tally.js"):
        st, hd, body = get(d, target, o)
        eq(st, 200, "status of %s" % target)
        eq(hd.get("access-control-allow-origin"), "*", "ACAO of " + target)
        check("origin" in hd.get("vary", "").lower(),
              "Vary %r of %s lacks Origin" % (hd.get("vary"), target))
        check("access-control-allow-credentials" not in hd,
              "credentials header on " + target)


def test_cors_preflight():
    d = Daemon()
    for target in ("/hit", "/count", "/counter.svg", "/tally.js"):
        st, hd, body = d.request("OPTIONS", target, {
            "Origin": "https://any.example",
            "Access-Control-Request-Method": "POST" if target == "/hit"
            else "GET",
            "Access-Control-Request-Headers": "content-type",
            "User-Agent": BROWSER_UA})
        eq(st, 204, "preflight status of " + target)
        eq(body, b"", "preflight body")
        methods = {m.strip().upper() for m in
                   hd.get("access-control-allow-methods", "").split(",")}
        check("GET" in methods, "Allow-Methods %r of %s"
              % (hd.get("access-control-allow-methods"), target))
        if target == "/hit":
            check("POST" in methods, "POST not allowed on /hit: %r" % methods)
        allowed = [h.strip().lower() for h in
                   hd.get("access-control-allow-headers", "").split(",")]
        check("content-type" in allowed, "Allow-Headers %r"
              % hd.get("access-control-allow-headers"))
        check(hd.get("access-control-allow-origin") in
              ("*", "https://any.example"), "ACAO %r"
              % hd.get("access-control-allow-origin"))
        check("access-control-allow-credentials" not in hd,
              "credentials allowed on " + target)
        check("origin" in hd.get("vary", "").lower(), "Vary %r"
              % hd.get("vary"))
    time.sleep(COMMIT_WAIT)
    eq(views(d.count("/"), "total"), 0, "a preflight counted")


def test_cors_listed_origins_only():
    conf = write_file(os.path.join(mkdtemp(), "tally.ini"),
                      "[site shop]\norigins = https://shop.example\n")
    d = Daemon(["--config", conf])
    st, hd, body = get(d, "/counter.svg?site=shop&path=/a",
                       {"Origin": "https://shop.example"})
    eq(hd.get("access-control-allow-origin"), "https://shop.example",
       "ACAO for a listed origin")
    st, hd, body = get(d, "/counter.svg?site=shop&path=/a",
                       {"Origin": "https://evil.example"})
    eq(st, 200, "the badge is still shown")
    check(hd.get("access-control-allow-origin") is None,
          "ACAO %r for a foreign origin" % hd.get("access-control-allow-origin"))
    time.sleep(COMMIT_WAIT)
    eq(views(d.count("/a", site="shop",
                     headers={"Origin": "https://shop.example"}), "page"), 1,
       "only the listed origin counted")


# ------------------------------------------------------------------ front page

class PageChecker(html.parser.HTMLParser):
    """Checks that elements nest and collects what the tests look at."""

    VOID = {"meta", "link", "img", "br", "hr", "input", "source", "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack = []
        self.errors = []
        self.scripts = []
        self.images = []
        self.text = []
        self.code = []
        self.in_code = 0
        self.tally = {}  # data-tally key -> text
        self._tally_key = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script":
            self.scripts.append(a)
        if tag == "img":
            self.images.append(a)
        if tag == "code":
            self.in_code += 1
            self.code.append("")
        if "data-tally" in a:
            self._tally_key = a["data-tally"]
            self.tally[self._tally_key] = ""
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append("</%s> closes <%s>" % (
                tag, self.stack[-1] if self.stack else "nothing"))
            return
        self.stack.pop()
        self._tally_key = None
        if tag == "code":
            self.in_code -= 1

    def handle_data(self, data):
        self.text.append(data)
        if self.in_code:
            self.code[-1] += data
        if self._tally_key:
            self.tally[self._tally_key] += data


def front_page(d, headers=None):
    st, hd, body = get(d, "/", headers)
    eq(st, 200, "status of /")
    p = PageChecker()
    p.feed(body.decode("utf-8"))
    p.close()
    eq(p.errors, [], "HTML nesting")
    eq(p.stack, [], "unclosed elements")
    return hd, body, p


def test_front_page():
    d = Daemon()
    for _ in range(3):
        d.hit("/fp")
    hd, body, p = front_page(d, {"Host": "stats.example.org:8080"})
    eq(hd.get("content-type"), "text/html; charset=utf-8", "Content-Type")
    check("no-store" in hd.get("cache-control", ""), "Cache-Control")
    csp = hd.get("content-security-policy", "")
    for part in ("default-src 'none'", "script-src 'self'", "img-src 'self'"):
        check(part in csp, "CSP %r lacks %s" % (csp, part))
    check(body.lower().startswith(b"<!doctype html>"), "no doctype")
    snippet = [c for c in p.code if "tally.js" in c]
    check(snippet, "no snippet in %r" % p.code)
    check('<script async src="http://stats.example.org:8080/tally.js">'
          '</script>' in snippet[0], "snippet %r lacks this daemon's address"
          % snippet[0])
    check('data-tally="today"' in snippet[0] and
          'data-tally="total"' in snippet[0], "snippet lacks the elements")
    eq((p.tally.get("today"), p.tally.get("total")), ("3", "3"),
       "live counts")
    # The page's own badge and script are this daemon's, not outside.
    check(any(i.get("src", "").startswith("/counter.svg") for i in p.images),
          "no badge: %r" % p.images)
    for a in p.scripts + p.images:
        check(not re.match(r"(https?:)?//", a.get("src", "")),
              "outside asset %r" % a)
    for img in p.images:
        st, h2, b2 = get(d, img["src"])
        eq(st, 200, "status of the page's badge")
        Badge(b2)
    eq(page_views(d, "/fp"), 3, "the front page counted something")
    eq(views(d.count("/"), "page"), 0, "the front page counted itself")


def test_front_page_path_placeholder():
    """The <noscript> image and the pixel need the page's path, which
    only the site owner knows: the page says so, and its snippets hold a
    placeholder nobody takes for a real path."""
    d = Daemon()
    hd, body, p = front_page(d, {"Host": "stats.example.org"})
    text = body.decode("utf-8")
    paths = re.findall(r"(?:counter\.svg|pixel\.gif)\?path=([^\s\"&<]*)",
                       text)
    check(len(paths) >= 2, "no image snippets on the front page")
    eq(sorted(set(paths)), ["/PAGE-PATH"], "paths in the snippets")
    noscript = [c for c in p.code if "&lt;noscript" in c or "<noscript" in c]
    check(any("counter.svg?path=/PAGE-PATH" in c for c in noscript),
          "no <noscript> snippet with /PAGE-PATH: %r" % p.code)
    check(re.search(r"Replace\s+<code>/PAGE-PATH</code>\s+with\s+the\s+path",
                    text), "the page does not say to replace /PAGE-PATH")


def test_front_page_counts_and_host():
    d = Daemon()
    rc, out, err = harness.run_tallyctl("--data", d.data, "set", "--site",
                                        "default", "--views", "254014")
    big = rc == 0
    d.hit("/n")
    hd, body, p = front_page(d)
    if big:
        eq(p.tally.get("total"), "254,015", "total on the page")
    eq(p.tally.get("today"), "1", "today on the page")
    # A hostile Host is not echoed as markup.
    for host in ('evil.example"><script>alert(1)</script>',
                 "a b", "x" * 300):
        hd, body, p = front_page(d, {"Host": host})
        check(b"<script>alert" not in body, "Host echoed: %r" % host)
        check("http://127.0.0.1/tally.js" in "".join(p.code),
              "fallback address missing for Host %r" % host)
    # HTTP/1.0 without Host.
    raw = d.raw(b"GET / HTTP/1.0\r\nUser-Agent: x\r\n\r\n", wait_close=True)
    check(b"http://127.0.0.1/tally.js" in raw, "no fallback address without "
          "Host: %r" % raw[:300])
    # HEAD: headers only.
    st, hd, body = get(d, "/", method="HEAD")
    eq((st, body), (200, b""), "HEAD /")


if __name__ == "__main__":
    harness.main(globals())
