#!/usr/bin/env python3
"""The stats page as people see it, in headless Chromium (driven over the
DevTools protocol, tests/blackbox/chromium.py) and Firefox ESR (through
Marionette, firefox.py): at a desktop width and on a 375 px phone, in light
and dark mode, nothing scrolls sideways, the console stays free of errors,
the numbers are tallyctl's, and with scripts turned off the page is the
same. The share link works in a browser that is not an admin; a badge in
style=for-the-badge&color=green and a sparkline load in a page of another
site. Each browser starts once for the file; a missing one is skipped.

TALLY_DOC_SCREENSHOTS=DIR writes doc/stats.png and doc/badge-styles.png
there (from Chromium)."""

import base64
import datetime
import json
import os
import re
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chromium  # noqa: E402
import firefox  # noqa: E402
import harness  # noqa: E402
from harness import (BROWSER_UA, Daemon, Skip, check, eq, free_port,  # noqa: E402
                     mkdtemp, run_tallyctl, write_file)
from test_browser import PageServer, find_chromium  # noqa: E402

TOKEN = "9sQfJ0c3-kq2ZrTnV_x8dLwE1mYp"
INI = """\
[count]
timezone = UTC

[site blog]
origins = https://blog.example
share = %s
""" % TOKEN
WIDTHS = [(1280, 900), (375, 800)]

CHROME = None
FOX = None
STATE = {}

# Every element wider than its box, and the page's own width.
MEASURE = """(function () {
  var wide = [], all = document.querySelectorAll('body *'), i, e;
  for (i = 0; i < all.length; i++) {
    e = all[i];
    if (e.scrollWidth > e.clientWidth + 1 && e.clientWidth > 0 &&
        getComputedStyle(e).overflowX !== 'hidden')
      wide.push(e.tagName.toLowerCase() + ' ' + e.scrollWidth + '>' +
          e.clientWidth);
  }
  var bg = getComputedStyle(document.body).backgroundColor;
  return JSON.stringify({inner: window.innerWidth,
      doc: document.documentElement.scrollWidth, wide: wide, bg: bg,
      views: document.getElementById('views').textContent,
      visitors: document.getElementById('visitors').textContent,
      top: Array.from(document.querySelectorAll('#top tbody tr')).map(
          function (r) { return [r.cells[0].textContent,
                                 r.cells[1].textContent]; })});
})()"""


def ago(n):
    d = datetime.datetime.now(datetime.timezone.utc).date()
    return (d - datetime.timedelta(days=n)).isoformat()


def setup():
    """One daemon with 60 days of history and referrers, and the two
    browsers, for every case of the file."""
    global CHROME, FOX
    binary = find_chromium()
    if binary:
        CHROME = chromium.Chromium(binary, mkdtemp(prefix="tally-cdp-"),
                                   BROWSER_UA)
    fx = firefox.find()
    if fx:
        try:
            FOX = firefox.Firefox(fx, mkdtemp(prefix="tally-ff-"),
                                  free_port())
        except firefox.MarionetteError as e:
            print("# firefox did not start: %s" % e)
    if CHROME is None and FOX is None:
        raise Skip("neither chromium nor firefox-esr is installed")
    config = write_file(os.path.join(mkdtemp(), "t.ini"), INI)
    lines = ["site,day,path,views,visitors"]
    pages = ["/", "/posts/a-long-path-name-that-does-not-fit-a-phone-"
             "screen-at-all-" + "x" * 60, "/about", "/posts/tally",
             "/posts/lmdb", "/posts/libevent", "/feed.xml"]
    for n in range(1, 61):
        total_v = total_u = 0
        for i, p in enumerate(pages):
            v = (40 + 25 * ((n * 7 + i * 3) % 5)) // (i + 1) + n % 9
            u = max(1, v * 2 // 3)
            lines.append("blog,%s,%s,%d,%d" % (ago(n), p, v, u))
            total_v += v
            total_u += u
        lines.append("blog,%s,*,%d,%d" % (ago(n), total_v, total_u))
    f = write_file(os.path.join(mkdtemp(), "h.csv"), "\n".join(lines) + "\n")
    # The admin's daemon, and one that sees every browser as a stranger
    # (admin_allow elsewhere): the browser that holds the share link.
    for name, admins in (("d", "127.0.0.1/32"), ("outside", "192.0.2.0/24")):
        data = os.path.join(mkdtemp(), "data")
        rc, out, err = run_tallyctl("--data", data, "--config", config,
                                    "import", f, "--create")
        check(rc == 0, "import: %r" % err)
        d = Daemon(["--config", config, "--durability", "strict",
                    "--admin-allow", admins], data=data, keep=True)
        h = {"User-Agent": BROWSER_UA, "Content-Type": "text/plain",
             "Origin": "https://blog.example"}
        for ref, n in (("https://news.ycombinator.com/item?id=1", 5),
                       ("https://www.google.com/", 3),
                       ("https://friend.example/links", 2)):
            for _ in range(n):
                d.request("POST", "/hit", h, json.dumps(
                    {"site": "blog", "path": "/posts/tally",
                     "referrer": ref}))
        STATE[name] = d
    STATE["config"] = config


def ctl(*args, d="d"):
    rc, out, err = run_tallyctl("--data", STATE[d].data, "--config",
                                STATE["config"], "--json", *args)
    eq(rc, 0, "tallyctl %s: %r" % (args, err))
    return json.loads(out)


def want_numbers(d="d"):
    s = ctl("stats", "--site", "blog", d=d)["last30"]
    top = ctl("top", "--site", "blog", "--days", "30", "--limit", "0", d=d)
    return s, {t["path"]: t["views"] for t in top}


def url(path, d="d"):
    return "http://127.0.0.1:%d%s" % (STATE[d].port, path)


def check_measure(m, width, what, d="d"):
    got = json.loads(m)
    eq(got["inner"], width, "%s: window width (the test needs it)" % what)
    check(got["doc"] <= width, "%s: the page is %d px wide" % (what,
                                                                got["doc"]))
    eq(got["wide"], [], "%s: elements wider than their box" % what)
    s, top = want_numbers(d)
    n = lambda t: int(re.sub(r"[^0-9]", "", t))
    eq((n(got["views"]), n(got["visitors"])), (s["views"], s["visitors"]),
       "%s: views and visitors against tallyctl stats" % what)
    eq({p: n(v) for p, v in got["top"]}, top,
       "%s: top pages against tallyctl top" % what)
    return got


def dark(bg):
    rgb = [int(x) for x in re.findall(r"\d+", bg)[:3]]
    return sum(rgb) < 150


def need(browser, name):
    if browser is None:
        raise Skip("%s is not installed" % name)


# ------------------------------------------------------------ Chromium

def test_chromium_page_fits_and_matches_tallyctl():
    need(CHROME, "chromium")
    for width, height in WIDTHS:
        for scheme in ("light", "dark"):
            what = "chromium %d px %s" % (width, scheme)
            CHROME.viewport(width, height, mobile=width < 500,
                            dark=scheme == "dark")
            CHROME.console_errors()
            CHROME.navigate(url("/stats/blog"))
            got = check_measure(CHROME.evaluate(MEASURE), width, what)
            eq(dark(got["bg"]), scheme == "dark", "%s: background %s"
               % (what, got["bg"]))
            eq(CHROME.console_errors(), [], what + ": console errors")
            shot = os.path.join(mkdtemp(prefix="tally-shot-"), "s.png")
            CHROME.screenshot(shot)
            with open(shot, "rb") as f:
                check(f.read(8) == b"\x89PNG\r\n\x1a\n", what +
                      ": the screenshot is not a PNG")


def test_chromium_page_works_without_javascript():
    need(CHROME, "chromium")
    CHROME.viewport(375, 800, mobile=True)
    CHROME.navigate(url("/stats/blog"))
    with_js = CHROME.html()
    CHROME.scripts(False)
    try:
        CHROME.navigate(url("/stats/blog"))
        without = CHROME.html()
        # The same document, read with DevTools, which still may.
        check_measure(CHROME.evaluate(MEASURE), 375, "chromium, scripts off")
        # Links work: the 7-day period, then a page's history.
        CHROME.navigate(url("/stats/blog?period=7d"))
        eq(CHROME.evaluate("document.querySelector('nav a[aria-current]')"
                           ".textContent"), "7 days", "the period picked")
    finally:
        CHROME.scripts(True)
    strip = lambda h: re.sub(r"render;dur=[0-9.]+", "", h)
    eq(strip(without), strip(with_js), "the page with and without scripts")
    eq(CHROME.console_errors(), [], "console errors with scripts off")


def test_chromium_share_link_from_elsewhere():
    """The share link in a browser that is no admin."""
    need(CHROME, "chromium")
    CHROME.viewport(1280, 900)
    CHROME.console_errors()
    CHROME.navigate(url("/stats/blog", "outside"))
    check("no such route" in CHROME.html(), "the page without the token")
    CHROME.console_errors()  # the 404 is logged: not the page's fault
    CHROME.navigate(url("/stats/blog?share=" + TOKEN, "outside"))
    check_measure(CHROME.evaluate(MEASURE), 1280, "chromium, share link",
                  "outside")
    eq(CHROME.console_errors(), [], "console errors on the share link")


def badge_page(site, d):
    base = "http://127.0.0.1:%d" % d.port
    imgs = "".join(
        '<p><img alt="b" src="%s/counter.svg?site=blog&amp;path=/posts/tally'
        '&amp;count=0&amp;%s"></p>' % (base, q) for q in (
            "style=for-the-badge&amp;color=green",
            "style=flat-square&amp;color=orange&amp;labelColor=black",
            "style=plastic&amp;color=%23e05d44",
            "style=flat&amp;color=yellow"))
    imgs += ('<p><img alt="s" src="%s/chart.svg?site=blog&amp;path=*&amp;'
             'days=30"> <img alt="s" src="%s/chart.svg?site=blog&amp;path='
             '/posts/tally&amp;days=30"></p>' % (base, base))
    # No icon: the embedding site's own /favicon.ico would be a 404 in
    # the console, whenever Chromium gets round to asking for it.
    site.html("/badges", "<!doctype html><html lang=\"en\"><head><meta "
              "charset=\"utf-8\"><link rel=\"icon\" href=\"data:,\">"
              "<title>badges</title><style>body{margin:8px;"
              "font:14px sans-serif}p{margin:6px 0}</style></head><body>%s"
              "</body></html>" % imgs)
    return site.url("/badges")


IMAGES = ("JSON.stringify(Array.from(document.images).map(function (i) {"
          " return [i.complete, i.naturalWidth, i.naturalHeight]; }))")


def check_images(got, what):
    imgs = json.loads(got)
    eq(len(imgs), 6, what + ": images")
    for i, (complete, w, h) in enumerate(imgs):
        check(complete and w > 0 and h > 0, "%s: image %d did not render "
              "(%r)" % (what, i, imgs[i]))
    eq(imgs[0][1:], [imgs[0][1], 28], what + ": for-the-badge height")


def test_chromium_badge_and_sparkline_in_another_site():
    need(CHROME, "chromium")
    site = PageServer()
    try:
        CHROME.viewport(800, 400)
        CHROME.console_errors()
        CHROME.navigate(badge_page(site, STATE["d"]))
        check_images(CHROME.evaluate(IMAGES), "chromium")
        eq(CHROME.console_errors(), [], "console errors of the badges")
        out = os.environ.get("TALLY_DOC_SCREENSHOTS")
        if out:
            CHROME.viewport(290, 172)
            CHROME.screenshot(os.path.join(out, "badge-styles.png"),
                              full=False)
    finally:
        site.close()


def test_chromium_doc_screenshot():
    """doc/stats.png: the page at a desktop width and on a phone, side by
    side (only when TALLY_DOC_SCREENSHOTS names a directory)."""
    out = os.environ.get("TALLY_DOC_SCREENSHOTS")
    if not out:
        raise Skip("TALLY_DOC_SCREENSHOTS is not set")
    need(CHROME, "chromium")
    shots = []
    for (w, h), scheme in (((1000, 900), "light"), ((375, 800), "dark")):
        CHROME.viewport(w, h, mobile=w < 500, dark=scheme == "dark")
        CHROME.navigate(url("/stats/blog"))
        p = os.path.join(mkdtemp(), "s.png")
        CHROME.screenshot(p, full=False)
        with open(p, "rb") as f:
            shots.append((w, base64.b64encode(f.read()).decode()))
    site = PageServer()
    try:
        site.html("/both", "<!doctype html><html><head><style>body{margin:0;"
                  "background:#888;display:flex;gap:16px;padding:16px;"
                  "align-items:flex-start}img{display:block;box-shadow:0 2px "
                  "8px #0006}</style></head><body>%s</body></html>" % "".join(
                      '<img width="%d" src="data:image/png;base64,%s">' % s
                      for s in shots))
        CHROME.viewport(1000 + 375 + 48, 932)
        CHROME.navigate(site.url("/both"))
        CHROME.screenshot(os.path.join(out, "stats.png"), full=False)
    finally:
        site.close()


# ------------------------------------------------------------ Firefox

def fox_scale(scale):
    """The page's zoom: a desktop Firefox window is at least 500 px wide,
    so a 375 px phone is a 500 px window zoomed to 4/3 (which lays the
    page out again at 375 CSS pixels)."""
    FOX.command("Marionette:SetContext", {"value": "chrome"})
    try:
        FOX.script("gBrowser.selectedBrowser.fullZoom = "
                   "parseFloat(arguments[0]);", [scale])
    finally:
        FOX.command("Marionette:SetContext", {"value": "content"})


def fox_window(width, height):
    if width < 500:
        fox_scale("%.6f" % (500 / width))
        width_px = 500
    else:
        fox_scale("1.0")
        width_px = width
    FOX.command("WebDriver:SetWindowRect", {"width": width_px,
                                            "height": height})
    # The window's frame takes some of it: widen until the page has it.
    for _ in range(3):
        inner = FOX.script("return window.innerWidth;")
        if inner == width:
            return
        r = FOX.command("WebDriver:GetWindowRect")
        FOX.command("WebDriver:SetWindowRect", {
            "width": r["width"] + round((width - inner) * width_px / width),
            "height": height})


def test_firefox_page_fits_and_matches_tallyctl():
    need(FOX, "firefox-esr")
    for width, height in WIDTHS:
        FOX.console_errors()
        FOX.navigate(url("/stats/blog"))
        # After loading: a navigation sets the zoom back.
        fox_window(width, height)
        what = "firefox %d px" % width
        check_measure(FOX.script("return " + MEASURE + ";"), width, what)
        eq(FOX.console_errors(), [], what + ": console errors")
        png = base64.b64decode(FOX.command("WebDriver:TakeScreenshot", {
            "full": True})["value"])
        check(png[:8] == b"\x89PNG\r\n\x1a\n", what + ": screenshot")


def test_firefox_share_link_and_badges():
    need(FOX, "firefox-esr")
    fox_window(1280, 900)
    FOX.navigate(url("/stats/blog", "outside"))
    check("no such route" in FOX.script(
        "return document.documentElement.textContent;"),
        "the page without the token")
    FOX.console_errors()
    FOX.navigate(url("/stats/blog?share=%s&period=30d" % TOKEN, "outside"))
    check_measure(FOX.script("return " + MEASURE + ";"), 1280,
                  "firefox, share link", "outside")
    eq(FOX.console_errors(), [], "firefox console errors, share link")
    site = PageServer()
    try:
        FOX.navigate(badge_page(site, STATE["d"]))
        check_images(FOX.script("return " + IMAGES + ";"), "firefox")
        eq(FOX.console_errors(), [], "firefox console errors of the badges")
    finally:
        site.close()


def teardown():
    if CHROME is not None:
        CHROME.quit()
    if FOX is not None:
        FOX.quit()


if __name__ == "__main__":
    try:
        harness.main(globals(), setup=setup)
    finally:
        teardown()
