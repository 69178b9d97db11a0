#!/usr/bin/env python3
"""tally.js in a real browser: a page on another origin embeds the
snippet, headless Chromium loads it, and the footer must show the numbers
while tallyd counts the visit under the page's path.

Chromium's rendered DOM is read with --dump-dom after a virtual time
budget, which waits for the script's request. Skipped (77) without
chromium; set CHROMIUM to use another binary."""

import html
import html.parser
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (BROWSER_UA, Daemon, Skip, check, eq, free_port,  # noqa: E402
                     mkdtemp, views)

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "browser_page")
COMMIT_WAIT = 0.35
CHROMIUM = None


def find_chromium():
    for c in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser",
              "google-chrome"):
        if c and shutil.which(c):
            return shutil.which(c)
    return None


def setup():
    global CHROMIUM
    CHROMIUM = find_chromium()
    if CHROMIUM is None:
        raise Skip("chromium is not installed (apt install chromium, or set "
                   "CHROMIUM)")


def fixture(name, **fields):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as f:
        text = f.read()
    for k, v in fields.items():
        text = text.replace("{{%s}}" % k, v)
    return re.sub(r"\{\{[A-Z]+\}\}", "", text)


# ------------------------------------------------------------------ pages

class PageServer:
    """The embedding site: another origin (another port) than tallyd.
    pages maps a path to (status, content type, body bytes) or to a
    callable that gets the handler."""

    def __init__(self):
        self.pages = {}
        self.requests = []
        srv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self):
                path = urllib.parse.urlsplit(self.path).path
                srv.requests.append((self.command, self.path))
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                page = srv.pages.get(path)
                if callable(page):
                    page(self)
                    return
                st, ctype, body = page or (404, "text/plain", b"not here\n")
                self.send_response(st)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Access-Control-Allow-Origin", "*")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_HEAD = _serve

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port),
                                                     Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def html(self, path, text):
        self.pages[path] = (200, "text/html; charset=utf-8",
                            text.encode("utf-8"))

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# ------------------------------------------------------------------ browser

def load(url, budget_ms=5000, timeout=90, window=None, screenshot=None):
    """Loads url in a fresh headless Chromium; returns (DOM, console lines).
    window: (width, height) of the window; screenshot: a PNG file to
    write instead of dumping the DOM (then the DOM is "")."""
    profile = mkdtemp(prefix="tally-chromium-")
    out_flags = ["--dump-dom"]
    if screenshot:
        out_flags = ["--screenshot=" + screenshot]
    if window:
        out_flags.append("--window-size=%d,%d" % window)
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-quic", "--no-first-run", "--no-default-browser-check",
           "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--disable-extensions", "--disable-breakpad",
           "--disable-crash-reporter",
           "--disable-features=Translate,MediaRouter,OptimizationHints",
           "--user-data-dir=" + profile,
           # Headless Chromium says so in its User-Agent, and tallyd
           # rightly counts that as a bot.
           "--user-agent=" + BROWSER_UA,
           "--enable-logging=stderr", "--v=0",
           "--virtual-time-budget=%d" % budget_ms] + out_flags + [url]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        raise harness.Failure("chromium did not finish loading %s in %d s"
                              % (url, timeout))
    finally:
        # The browser's helpers must not outlive it.
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    dom = out.decode("utf-8", "replace")
    console = [line for line in err.decode("utf-8", "replace").splitlines()
               if ":CONSOLE" in line]
    if screenshot:
        if not os.path.exists(screenshot):
            raise harness.Failure("chromium wrote no screenshot of %s: %s"
                                  % (url, err.decode("utf-8", "replace")
                                     [-1500:]))
        return "", console
    if "<html" not in dom:
        raise harness.Failure("chromium gave no DOM for %s (exit %s): %s"
                              % (url, p.returncode,
                                 err.decode("utf-8", "replace")[-1500:]))
    return dom, console


class Dom(html.parser.HTMLParser):
    """The texts of [data-tally] elements and of elements with an id."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.tally = {}
        self.ids = {}
        self.footer = ""
        self._open = []  # (tag, key or None, id or None)
        self._in_footer = 0
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "footer":
            self._in_footer += 1
        if tag in ("br", "img", "meta", "link", "input", "hr"):
            return
        self._open.append((tag, a.get("data-tally"), a.get("id")))
        if a.get("data-tally"):
            self.tally[a["data-tally"]] = ""
        if a.get("id"):
            self.ids[a["id"]] = ""

    def handle_endtag(self, tag):
        if tag == "footer":
            self._in_footer -= 1
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i][0] == tag:
                del self._open[i:]
                break

    def handle_data(self, data):
        if self._in_footer and not any(t == "script" for t, _, _ in self._open):
            self.footer += data
        for _, key, ident in self._open:
            if key:
                self.tally[key] += data
            if ident:
                self.ids[ident] += data


def number(text, what):
    """A number as Intl.NumberFormat wrote it, separators and all."""
    digits = re.sub(r"[\s.,'\u00a0\u202f\u2009]", "", text)
    check(digits.isdigit(), "%s shows %r, not a number" % (what, text))
    return int(digits)


def no_script_errors(console):
    bad = [c for c in console if "Uncaught" in c or "tally.js" in c]
    eq(bad, [], "console errors")


def counts(d, path, site=None):
    time.sleep(COMMIT_WAIT)
    return d.count(path, site=site)


# ------------------------------------------------------------------ cases

def test_footer_counts_under_the_page_path():
    d = Daemon()
    site = PageServer()
    try:
        base = "http://127.0.0.1:%d" % d.port
        site.html("/news/123", fixture("news.html", TALLY=base))
        for n in (1, 2):
            dom, console = load(site.url("/news/123"))
            t = Dom(dom).tally
            got = {k: number(t[k], k) for k in ("page", "today", "total",
                                                 "page-today")}
            eq(got, {"page": n, "today": n, "total": n, "page-today": n},
               "footer numbers on load %d (%r)" % (n, t))
            for k in ("today-visitors", "total-visitors", "page-visitors",
                      "page-today-visitors"):
                number(t[k], k)
            eq(t["bogus"], "\u2013", "an unknown data-tally keeps its text")
            no_script_errors(console)
            c = counts(d, "/news/123")
            eq((c["path"], views(c, "page"), views(c, "page_today")),
               ("/news/123", n, n), "counts of /news/123 after load %d" % n)
        # Nothing was counted anywhere else.
        eq(views(c, "total"), 2, "site total")
        # One request per load, to the daemon: the page server saw none.
        check(all(not p.startswith(("/hit", "/count")) for _, p in
                  site.requests), "requests went to the page's origin: %r"
              % site.requests)
    finally:
        site.close()


def test_front_page_snippet_pasted_elsewhere():
    """What a new user does: copy the snippet from tallyd's front page
    into a page on their own site."""
    d = Daemon()
    st, hd, body = d.request("GET", "/", {"User-Agent": BROWSER_UA})
    eq(st, 200, "front page status")
    code = re.findall(r"<code>(.*?)</code>", body.decode("utf-8"), re.S)
    snippet = [html.unescape(c) for c in code if "tally.js" in c
               and "<footer>" in html.unescape(c)]
    check(snippet, "no footer snippet on the front page: %r" % code)
    snippet = snippet[0]
    check("http://127.0.0.1:%d/tally.js" % d.port in snippet,
          "the snippet lacks this daemon's address: %r" % snippet)
    site = PageServer()
    try:
        site.html("/blog/hello", "<!doctype html>\n<html lang=\"en\"><head>"
                  "<meta charset=\"utf-8\"><title>Hello</title></head><body>"
                  "<main><h1>Hello</h1></main>\n%s\n</body></html>\n"
                  % snippet)
        for n in (1, 2):
            dom, console = load(site.url("/blog/hello"))
            dm = Dom(dom)
            footer = " ".join(dm.footer.split())
            m = re.search(r"Today (\S+) \u00b7 Total (\S+)", footer)
            check(m, "footer %r does not read Today N \u00b7 Total N" % footer)
            eq((number(m.group(1), "Today"), number(m.group(2), "Total")),
               (n, n), "Today and Total on load %d" % n)
            no_script_errors(console)
        eq(views(counts(d, "/blog/hello"), "page"), 2, "views of /blog/hello")
    finally:
        site.close()


def test_read_only_locale_and_path():
    d = Daemon()
    conn = d.connect()
    for _ in range(1234):
        conn.request("GET", "/hit?path=/elsewhere",
                     headers={"User-Agent": BROWSER_UA})
        r = conn.getresponse()
        r.read()
    conn.close()
    d.hit("/about")
    site = PageServer()
    try:
        base = "http://127.0.0.1:%d" % d.port
        site.html("/page", fixture(
            "news.html", TALLY=base,
            ATTRS=' data-count="false" data-path="/about" data-locale="en"'))
        dom, console = load(site.url("/page"))
        t = Dom(dom).tally
        eq((t["page"], t["total"]), ("1", "1,235"),
           "data-path, data-locale=en and data-count=false")
        no_script_errors(console)
        # The page's lang (az) when data-locale is absent.
        site.html("/page2", fixture("news.html", TALLY=base,
                                    ATTRS=' data-count="false"'))
        dom, console = load(site.url("/page2"))
        t = Dom(dom).tally
        eq(number(t["total"], "total"), 1235, "total with lang=az")
        c = counts(d, "/about")
        eq(views(c, "page"), 1, "data-count=false counted /about")
        eq(views(c, "total"), 1235, "data-count=false counted something")
    finally:
        site.close()


def test_spa_navigation_counts():
    d = Daemon()
    site = PageServer()
    try:
        base = "http://127.0.0.1:%d" % d.port
        nav = ("<script>\n"
               "setTimeout(function () {\n"
               "  history.pushState({}, '', '/spa/two');\n"
               "  history.pushState({}, '', '/spa/two?tab=2#x');\n"
               "}, 300);\n"
               "setTimeout(function () { history.back(); }, 900);\n"
               "setTimeout(function () { history.back(); }, 1500);\n"
               "</script>")
        site.html("/spa/one", fixture("news.html", TALLY=base,
                                      ATTRS=' data-spa="true"', EXTRA=nav))
        site.html("/spa/two", "<!doctype html><title>x</title>")
        dom, console = load(site.url("/spa/one"), budget_ms=4000)
        no_script_errors(console)
        time.sleep(COMMIT_WAIT)
        one = views(d.count("/spa/one"), "page")
        two = views(d.count("/spa/two"), "page")
        # Load /spa/one, push /spa/two (the query change is the same
        # page), back to /spa/two?tab (same), back to /spa/one.
        eq((one, two), (2, 1), "views of /spa/one and /spa/two")
        t = Dom(dom).tally
        eq(number(t["total"], "total"), 3, "total shown after navigation")
    finally:
        site.close()


PHONE = (375, 800)

# A desktop Chromium window is at least 500 px wide, so the phone is a
# 375 px frame. This page frames a copy of the front page and reports
# the frame's width and every element wider than its box (which a phone
# scrolls sideways).
PHONE_FRAME = """<!doctype html>
<html><head><meta charset="utf-8"><title>phone</title>
<style>body { margin: 0 } iframe { border: 0; display: block }</style>
</head><body>
<iframe id="phone" src="/front" width="%d" height="%d"></iframe>
<pre id="measure"></pre>
<script>
document.getElementById('phone').addEventListener('load', function () {
  var w = this.contentWindow, doc = this.contentDocument, wide = [];
  var all = doc.querySelectorAll('body *'), i, e;
  for (i = 0; i < all.length; i++) {
    e = all[i];
    if (e.scrollWidth > e.clientWidth + 1 && e.clientWidth > 0)
      wide.push(e.tagName.toLowerCase() + ' ' + e.scrollWidth + '>' +
          e.clientWidth);
  }
  document.getElementById('measure').textContent = JSON.stringify({
      inner: w.innerWidth, doc: doc.documentElement.scrollWidth,
      wide: wide });
});
</script></body></html>
""" % PHONE


def is_png(path):
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_front_page_fits_a_phone():
    """375 px wide, nothing scrolls sideways: not the page, not a
    snippet. The front page may not be framed and allows no inline
    script, so a copy of its HTML is served elsewhere with a <base>
    pointing back at tallyd (its style is all inline: the same layout)."""
    d = Daemon()
    base = "http://127.0.0.1:%d" % d.port
    st, hd, body = d.request("GET", "/", {"User-Agent": BROWSER_UA})
    eq(st, 200, "front page status")
    page = body.decode("utf-8")
    check("<head>" in page, "front page: %r" % page[:300])
    page = page.replace("<head>", '<head><base href="%s/">' % base, 1)
    site = PageServer()
    try:
        site.html("/front", page)
        site.html("/phone", PHONE_FRAME)
        dom, console = load(site.url("/phone"), budget_ms=3000)
        m = Dom(dom).ids.get("measure")
        check(m, "the measuring script gave nothing: %r" % dom[-500:])
        got = json.loads(m)
        eq(got["inner"], PHONE[0], "frame width (the test needs it)")
        check(got["doc"] <= PHONE[0], "the page is %d px wide" % got["doc"])
        eq(got["wide"], [], "elements wider than their box")
        no_script_errors(console)
        # A picture, to look at when this fails (the frame is on the left).
        shot = os.path.join(mkdtemp(prefix="tally-shot-"), "front-375.png")
        load(site.url("/phone"), budget_ms=3000, window=(500, PHONE[1]),
             screenshot=shot)
        check(is_png(shot), "the screenshot is not a PNG")
        if os.environ.get("TALLY_KEEP_SCREENSHOT"):
            shutil.copy(shot, os.environ["TALLY_KEEP_SCREENSHOT"])
    finally:
        site.close()


def test_unreachable_or_broken_daemon_fails_silently():
    d = Daemon()
    st, hd, script = d.request("GET", "/tally.js", {"User-Agent": BROWSER_UA})
    eq(st, 200, "tally.js")
    site = PageServer()
    try:
        def drop(h):
            # The connection dies without an answer.
            h.close_connection = True
            h.connection.shutdown(2)

        js = (200, "text/javascript", script)
        site.pages["/drop/tally.js"] = js
        site.pages["/drop/hit"] = drop
        site.pages["/e500/tally.js"] = js
        site.pages["/e500/hit"] = (500, "application/json", b'{"error":"x"}')
        site.pages["/junk/tally.js"] = js
        site.pages["/junk/hit"] = (200, "application/json", b"{not json")
        site.pages["/odd/tally.js"] = js
        site.pages["/odd/hit"] = (200, "application/json", json.dumps(
            {"today": {"views": "<b>9</b>"}, "total": None,
             "page": [1]}).encode())
        for name in ("drop", "e500", "junk", "odd"):
            site.html("/p/" + name, fixture(
                "news.html", TALLY=site.url("/" + name)))
            dom, console = load(site.url("/p/" + name), budget_ms=3000)
            t = Dom(dom).tally
            eq({k: t[k] for k in ("page", "today", "total")},
               {"page": "\u2013", "today": "\u2013", "total": "\u2013"},
               "elements keep their text (%s)" % name)
            no_script_errors(console)
            check(("POST", "/%s/hit" % name) in site.requests,
                  "the script did not try /%s/hit: %r" % (name, site.requests))
        # A daemon that is not there at all: the script from a closed port
        # does not load, and the page is unharmed.
        closed = "http://127.0.0.1:%d" % free_port()
        site.html("/p/closed", fixture("news.html", TALLY=closed))
        dom, console = load(site.url("/p/closed"), budget_ms=2000)
        eq(Dom(dom).tally["today"], "\u2013", "text with no daemon")
        no_script_errors(console)
    finally:
        site.close()


def test_badge_text_fits_the_browser_font():
    """The widths the daemon reserves match what Chromium draws."""
    d = Daemon()
    for _ in range(12):
        d.hit("/news/123")
    site = PageServer()
    try:
        q = urllib.parse.urlencode(
            [("path", "/news/123"), ("show", "page,today,total"),
             ("label.page", "Giri\u015f"), ("label.today", "Bu g\u00fcn"),
             ("label.total", "\u00dcmumi"), ("count", "0")],
            quote_via=urllib.parse.quote)
        site.html("/badge", fixture(
            "badge.html",
            BADGE="http://127.0.0.1:%d/counter.svg?%s" % (d.port, q)))
        dom, console = load(site.url("/badge"), budget_ms=3000)
        result = Dom(dom).ids.get("result", "")
        try:
            texts = json.loads(result)
        except ValueError:
            raise harness.Failure("badge page said %r" % result[:300])
        eq([t["text"] for t in texts],
           ["Giri\u015f", "12", "Bu g\u00fcn", "12", "\u00dcmumi", "12"],
           "badge texts")
        for t in texts:
            ratio = t["natural"] / t["reserved"]
            check(0.9 <= ratio <= 1.1, "%r needs %.1f px, %.1f reserved"
                  % (t["text"], t["natural"], t["reserved"]))
    finally:
        site.close()


if __name__ == "__main__":
    harness.main(globals(), setup=setup)
