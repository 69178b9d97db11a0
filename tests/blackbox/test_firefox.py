#!/usr/bin/env python3
"""tally.js in Firefox too: the footer snippet on a page of another
origin, loaded by headless Firefox ESR driven through Marionette
(tests/blackbox/firefox.py). The numbers appear, each load counts one
view, and neither the page nor the browser's console reports an error.

One Firefox serves every case of this file. Skipped (77) without
firefox-esr; set FIREFOX to use another binary."""

import atexit
import html
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import firefox  # noqa: E402
import harness  # noqa: E402
from harness import Daemon, Skip, check, eq, free_port, mkdtemp, views  # noqa: E402
from test_browser import PageServer, counts, fixture, number  # noqa: E402

BROWSER = None

# First in the page: every error and unhandled rejection, for the test.
CATCH_ERRORS = """<script>
window.tallyTestErrors = [];
addEventListener('error', function (e) {
  tallyTestErrors.push(String(e.message || e.type));
}, true);
addEventListener('unhandledrejection', function (e) {
  tallyTestErrors.push('unhandled: ' + e.reason);
});
</script>"""

def setup():
    global BROWSER
    binary = firefox.find()
    if binary is None:
        raise Skip("firefox-esr is not installed (apt install firefox-esr, "
                   "or set FIREFOX)")
    BROWSER = firefox.Firefox(binary, mkdtemp(prefix="tally-firefox-"),
                              free_port())
    atexit.register(BROWSER.quit)


def with_error_catcher(page):
    return page.replace("<head>", "<head>\n" + CATCH_ERRORS, 1)


def tally_texts(timeout=10.0):
    """The [data-tally] texts, once the script has filled them (total
    holds a digit), or as they are after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        t = BROWSER.script(
            "var o = {}, els = document.querySelectorAll('[data-tally]');"
            "for (var i = 0; i < els.length; i++)"
            "  o[els[i].getAttribute('data-tally')] = els[i].textContent;"
            "return o;")
        if re.search(r"\d", t.get("total", "")) or \
                time.monotonic() > deadline:
            return t
        time.sleep(0.1)


def page_errors():
    return BROWSER.script("return window.tallyTestErrors || ['no catcher'];")


def test_firefox_is_counted_as_a_browser():
    ua = BROWSER.script("return navigator.userAgent;")
    check("Firefox/" in ua and "headless" not in ua.lower(),
          "headless Firefox says %r" % ua)
    d = Daemon()
    c = d.hit("/ua", ua=ua)
    harness.check_counts_shape(c, counted=True)


def test_footer_counts_in_firefox():
    d = Daemon()
    site = PageServer()
    try:
        base = "http://127.0.0.1:%d" % d.port
        site.html("/news/123", with_error_catcher(
            fixture("news.html", TALLY=base)))
        for n in (1, 2):
            BROWSER.console_errors()  # forget what came before
            BROWSER.navigate(site.url("/news/123"))
            t = tally_texts()
            got = {k: number(t.get(k, ""), k)
                   for k in ("page", "today", "total", "page-today")}
            eq(got, {"page": n, "today": n, "total": n, "page-today": n},
               "footer numbers on load %d (%r)" % (n, t))
            eq(t.get("bogus"), "\u2013", "an unknown data-tally keeps its text")
            eq(page_errors(), [], "errors in the page on load %d" % n)
            eq(BROWSER.console_errors(), [], "console errors on load %d" % n)
            c = counts(d, "/news/123")
            eq((c["path"], views(c, "page"), views(c, "total")),
               ("/news/123", n, n), "counts after load %d" % n)
        check(all(not p.startswith(("/hit", "/count"))
                  for _, p in site.requests),
              "requests went to the page's origin: %r" % site.requests)
    finally:
        site.close()


def test_front_page_snippet_in_firefox():
    d = Daemon()
    st, hd, body = d.request("GET", "/", {"User-Agent": harness.BROWSER_UA2})
    eq(st, 200, "front page status")
    code = [html.unescape(c) for c in
            re.findall(r"<code>(.*?)</code>", body.decode("utf-8"), re.S)]
    snippet = [c for c in code if "tally.js" in c and "<footer>" in c]
    check(snippet, "no footer snippet on the front page")
    site = PageServer()
    try:
        site.html("/blog/hello", with_error_catcher(
            "<!doctype html>\n<html lang=\"de\"><head><meta charset=\"utf-8\">"
            "<title>Hallo</title></head><body><h1>Hallo</h1>\n%s\n"
            "</body></html>\n" % snippet[0]))
        BROWSER.console_errors()  # forget what came before
        BROWSER.navigate(site.url("/blog/hello"))
        t = tally_texts()
        eq((t.get("today"), t.get("total")), ("1", "1"), "Today and Total")
        eq(page_errors(), [], "errors in the page")
        eq(BROWSER.console_errors(), [], "console errors")
        eq(views(counts(d, "/blog/hello"), "page"), 1, "views of /blog/hello")
    finally:
        site.close()


def test_origin_not_listed_shows_blank_and_a_cors_error():
    """What the README's troubleshooting describes: a page on an origin
    that its site does not list gets no numbers, the browser reports a
    CORS error, and the daemon counts nothing."""
    site = PageServer()
    conf = harness.write_file(os.path.join(mkdtemp(), "tally.ini"),
                              "[site default]\norigins = https://a.example\n")
    d = Daemon(["--config", conf, "-v"])
    try:
        base = "http://127.0.0.1:%d" % d.port
        site.html("/news/1", with_error_catcher(
            fixture("news.html", TALLY=base)))
        BROWSER.console_errors()  # forget what came before
        BROWSER.navigate(site.url("/news/1"))
        t = tally_texts(timeout=3.0)
        eq(t.get("total"), "\u2013", "total on a page of another origin")
        errs = BROWSER.console_errors()
        check(any("Cross-Origin Request Blocked" in e for e in errs),
              "no CORS error in the console: %r" % errs)
        eq(views(counts(d, "/news/1"), "total"), 0, "counted")
        check("reason: origin" in d.stderr(),
              "no debug line with the reason: %s" % d.stderr()[-1000:])
    finally:
        site.close()


if __name__ == "__main__":
    harness.main(globals(), setup=setup)
