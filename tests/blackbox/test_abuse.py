#!/usr/bin/env python3
"""Abuse control (issue 4): bots and prefetches are answered but not
counted (reason "bot"); --bots adds patterns; the per-visitor rate limit
(reason "rate"); the declined counts in /metrics."""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (BROWSER_UA, BROWSER_UA2, Daemon, check, eq,  # noqa: E402
                     check_counts_shape, mkdtemp, write_file)

BOTS = {
    # search crawlers
    "Googlebot": "Mozilla/5.0 (compatible; Googlebot/2.1; "
                 "+http://www.google.com/bot.html)",
    "Googlebot smartphone":
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) "
        "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.126 "
        "Mobile Safari/537.36 (compatible; Googlebot/2.1; "
        "+http://www.google.com/bot.html)",
    "bingbot": "Mozilla/5.0 (compatible; bingbot/2.0; "
               "+http://www.bing.com/bingbot.htm)",
    "YandexBot": "Mozilla/5.0 (compatible; YandexBot/3.0; "
                 "+http://yandex.com/bots)",
    "Baiduspider": "Mozilla/5.0 (compatible; Baiduspider/2.0; "
                   "+http://www.baidu.com/search/spider.html)",
    "DuckDuckBot": "DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)",
    # SEO crawlers
    "AhrefsBot": "Mozilla/5.0 (compatible; AhrefsBot/7.0; "
                 "+http://ahrefs.com/robot/)",
    "SemrushBot": "Mozilla/5.0 (compatible; SemrushBot/7~bl; "
                  "+http://www.semrush.com/bot.html)",
    "MJ12bot": "Mozilla/5.0 (compatible; MJ12bot/v1.4.8; http://mj12bot.com/)",
    # link previewers
    "facebookexternalhit": "facebookexternalhit/1.1 "
                           "(+http://www.facebook.com/externalhit_uatext.php)",
    "Twitterbot": "Twitterbot/1.0",
    "Slackbot-LinkExpanding": "Slackbot-LinkExpanding 1.0 "
                              "(+https://api.slack.com/robots)",
    "Discordbot": "Mozilla/5.0 (compatible; Discordbot/2.0; "
                  "+https://discordapp.com)",
    "WhatsApp": "WhatsApp/2.23.20.0 A",
    "TelegramBot": "TelegramBot (like TwitterBot)",
    "LinkedInBot": "LinkedInBot/1.0 (compatible; Mozilla/5.0; "
                   "Apache-HttpClient +http://www.linkedin.com)",
    # uptime monitors
    "UptimeRobot": "Mozilla/5.0+(compatible; UptimeRobot/2.0; "
                   "http://www.uptimerobot.com/)",
    "Pingdom": "Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)",
    # HTTP libraries and command-line clients
    "curl": "curl/8.5.0",
    "Wget": "Wget/1.21.4",
    "python-requests": "python-requests/2.31.0",
    "Go-http-client": "Go-http-client/1.1",
    "okhttp": "okhttp/4.12.0",
    "axios": "axios/1.6.8",
    "node-fetch": "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
    # headless browsers
    "HeadlessChrome": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
                      "(KHTML, like Gecko) HeadlessChrome/126.0.0.0 "
                      "Safari/537.36",
    "PhantomJS": "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 "
                 "(KHTML, like Gecko) PhantomJS/2.1.1 Safari/538.1",
    "Lighthouse": "Mozilla/5.0 (Linux; Android 11; moto g power (2022)) "
                  "AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/126.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse",
    # matched case-insensitively
    "GOOGLEBOT upper case": "Mozilla/5.0 (compatible; GOOGLEBOT/2.1)",
    "CURL upper case": "CURL/8.5.0",
    # empty
    "empty User-Agent": "",
}

BROWSERS = {
    "Chrome": BROWSER_UA,
    "Firefox": BROWSER_UA2,
    "Safari": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) "
              "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 "
              "Safari/605.1.15",
    "Edge": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 "
            "Edg/126.0.2592.87",
    "mobile Safari": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) "
                     "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 "
                     "Mobile/15E148 Safari/604.1",
    "Samsung Internet": "Mozilla/5.0 (Linux; Android 14; SM-S921B) "
                        "AppleWebKit/537.36 (KHTML, like Gecko) "
                        "SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile "
                        "Safari/537.36",
    "Chrome on Android": "Mozilla/5.0 (Linux; Android 10; K) "
                         "AppleWebKit/537.36 (KHTML, like Gecko) "
                         "Chrome/126.0.0.0 Mobile Safari/537.36",
    "Firefox on Android": "Mozilla/5.0 (Android 14; Mobile; rv:128.0) "
                          "Gecko/128.0 Firefox/128.0",
    "Opera": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
             "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 "
             "OPR/111.0.0.0",
    "Safari on iPad": "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) "
                      "AppleWebKit/605.1.15 (KHTML, like Gecko) "
                      "Version/17.5 Mobile/15E148 Safari/604.1",
}


def vv(c):
    return {k: (c[k]["views"], c[k]["visitors"])
            for k in ("page", "page_today", "today", "total")}


ZERO = {"page": (0, 0), "page_today": (0, 0), "today": (0, 0),
        "total": (0, 0)}


def declined(d, path, ua, reason, headers=None, what=""):
    c = d.hit(path, ua=ua, headers=headers)
    check_counts_shape(c, counted=False, reason=reason)
    eq(c["path"], path, "path of %s" % what)
    return c


# ------------------------------------------------------------ bots

def test_bot_families_are_declined():
    d = Daemon()
    for name, ua in BOTS.items():
        c = declined(d, "/bots", ua, "bot", what=name)
        eq(vv(c), ZERO, "counts answered to %s (%r)" % (name, ua))
    c = declined(d, "/bots", None, "bot", what="no User-Agent")
    eq(vv(c), ZERO, "counts answered without a User-Agent")
    # Nothing was counted, also not later on commit.
    time.sleep(0.3)
    c = check_counts_shape(d.count("/bots"), counted=False, reason="readonly")
    eq(vv(c), ZERO, "/count after all the bots")
    # The control: a browser on the same page counts from zero.
    c = check_counts_shape(d.hit("/bots"), counted=True)
    eq(vv(c), {"page": (1, 1), "page_today": (1, 1), "today": (1, 1),
               "total": (1, 1)}, "a browser after the bots")


def test_bots_declined_on_every_counting_route():
    d = Daemon()
    for name in ("curl", "Googlebot", "HeadlessChrome", "empty User-Agent"):
        ua = BOTS[name]
        c = d.hit("/r", ua=ua, method="POST")
        check_counts_shape(c, counted=False, reason="bot")
        st, _, body = d.request("GET", "/pixel.gif?path=%2Fr",
                                {"User-Agent": ua})
        eq(st, 200, "pixel.gif status for %s" % name)
        st, _, body = d.request("GET", "/counter.svg?path=%2Fr",
                                {"User-Agent": ua})
        eq(st, 200, "counter.svg status for %s" % name)
    time.sleep(0.3)
    c = check_counts_shape(d.count("/r"), counted=False)
    eq(vv(c), ZERO, "/count after bots on POST /hit, pixel.gif, counter.svg")


def test_prefetch_is_declined():
    d = Daemon()
    cases = [
        ("Sec-Purpose: prefetch", {"Sec-Purpose": "prefetch"}),
        ("Sec-Purpose: prefetch;prerender",
         {"Sec-Purpose": "prefetch;prerender"}),
        ("Purpose: prefetch", {"Purpose": "prefetch"}),
    ]
    for what, h in cases:
        c = declined(d, "/p", BROWSER_UA, "bot", headers=h, what=what)
        eq(vv(c), ZERO, "counts answered to %s" % what)
    c = check_counts_shape(d.hit("/p"), counted=True)
    eq(vv(c), {"page": (1, 1), "page_today": (1, 1), "today": (1, 1),
               "total": (1, 1)}, "the same browser without prefetch")


def test_real_browsers_are_counted():
    d = Daemon()
    n = 0
    for name, ua in BROWSERS.items():
        n += 1
        c = d.hit("/b", ua=ua)
        check_counts_shape(c, counted=True)
        eq(vv(c), {"page": (n, n), "page_today": (n, n), "today": (n, n),
                   "total": (n, n)}, "counts after %s (%r)" % (name, ua))


def test_extra_bot_patterns():
    ua1 = "AcmeFetcher/1.0 (+https://acme.example/about)"
    ua2 = "Mozilla/5.0 (compatible; ZetaWatch 3.2)"
    # The control: without --bots these are counted.
    d = Daemon()
    check_counts_shape(d.hit("/x", ua=ua1), counted=True)
    check_counts_shape(d.hit("/x", ua=ua2), counted=True)
    d.stop()

    d = Daemon(["--bots", "AcmeFetcher, zetawatch"])
    for ua in (ua1, "acmefetcher/2", "ACMEFETCHER", ua2,
               "Mozilla/5.0 ZETAWATCH/1"):
        c = declined(d, "/x", ua, "bot", what=ua)
        eq(vv(c), ZERO, "counts answered to %r" % ua)
    # The built-in list still applies.
    declined(d, "/x", BOTS["curl"], "bot", what="curl with --bots")
    declined(d, "/x", BOTS["Googlebot"], "bot", what="Googlebot with --bots")
    c = check_counts_shape(d.hit("/x"), counted=True)
    eq(vv(c)["today"], (1, 1), "a browser with --bots")

    # The example of the issue: a pattern given by flag.
    d2 = Daemon(["--bots", "MyMonitor"])
    declined(d2, "/x", "MyMonitor/1.0", "bot", what="MyMonitor/1.0")
    declined(d2, "/x", "mymonitor/1.0", "bot", what="mymonitor/1.0")


def test_extra_bot_patterns_from_config():
    cfg = write_file(os.path.join(mkdtemp(), "tally.ini"),
                     "[count]\nbots = AcmeFetcher, ZetaWatch\n")
    d = Daemon(["--config", cfg])
    declined(d, "/x", "AcmeFetcher/1.0", "bot", what="AcmeFetcher (config)")
    declined(d, "/x", "zetawatch/9", "bot", what="zetawatch (config)")
    declined(d, "/x", BOTS["Wget"], "bot", what="Wget (config)")
    c = check_counts_shape(d.hit("/x"), counted=True)
    eq(vv(c)["today"], (1, 1), "a browser with bots in the config")


# ------------------------------------------------------------ rate limit
# The allowance refills one view every 60/limit seconds, far slower than
# these cases run (test_inflation.py tests the refill).

def test_rate_limit_boundary():
    d = Daemon(["--rate-limit", "5"], rate_limit=False)
    for i in range(1, 6):
        c = d.hit("/r")
        check_counts_shape(c, counted=True)
        eq(vv(c)["today"], (i, 1), "today after counted hit %d" % i)
        eq(vv(c)["page"], (i, 1), "page after counted hit %d" % i)
    for i in range(6, 9):
        c = declined(d, "/r", BROWSER_UA, "rate", what="hit %d" % i)
        eq(vv(c), {"page": (5, 1), "page_today": (5, 1), "today": (5, 1),
                   "total": (5, 1)}, "counts answered to hit %d" % i)
    # Per visitor and site, not per page.
    c = declined(d, "/other", BROWSER_UA, "rate", what="another page")
    eq(vv(c)["today"], (5, 1), "today after a limited hit on another page")
    # POST is limited too.
    c = d.hit("/r", method="POST")
    check_counts_shape(c, counted=False, reason="rate")
    # Another User-Agent has its own allowance.
    for i in range(1, 6):
        c = d.hit("/r", ua=BROWSER_UA2)
        check_counts_shape(c, counted=True)
        eq(vv(c)["today"], (5 + i, 2), "today after hit %d of UA 2" % i)
    c = declined(d, "/r", BROWSER_UA2, "rate", what="hit 6 of UA 2")
    eq(vv(c)["today"], (10, 2), "today after the limit of UA 2")
    time.sleep(0.3)
    c = check_counts_shape(d.count("/r"), counted=False)
    eq(vv(c), {"page": (10, 2), "page_today": (10, 2), "today": (10, 2),
               "total": (10, 2)}, "/count at the end")


def test_rate_limit_default_is_30():
    d = Daemon(rate_limit=False)
    for i in range(1, 31):
        c = d.hit("/r")
        check_counts_shape(c, counted=True)
        eq(vv(c)["today"], (i, 1), "today after hit %d" % i)
    c = declined(d, "/r", BROWSER_UA, "rate", what="hit 31")
    eq(vv(c)["today"], (30, 1), "today after hit 31")


def test_rate_limit_declined_bots_use_no_allowance():
    d = Daemon(["--rate-limit", "2"], rate_limit=False)
    # Prefetches by the same browser do not use up its allowance.
    for _ in range(3):
        declined(d, "/r", BROWSER_UA, "bot", headers={"Purpose": "prefetch"},
                 what="prefetch")
    for i in (1, 2):
        check_counts_shape(d.hit("/r"), counted=True)
    declined(d, "/r", BROWSER_UA, "rate", what="hit 3")


def test_rate_limit_zero_is_off():
    d = Daemon(["--rate-limit", "0"], rate_limit=False)
    for i in range(1, 101):
        c = d.hit("/r")
        check_counts_shape(c, counted=True)
    eq(vv(c), {"page": (100, 1), "page_today": (100, 1), "today": (100, 1),
               "total": (100, 1)}, "after 100 hits with --rate-limit 0")


def test_rate_limit_is_per_site():
    cfg = write_file(os.path.join(mkdtemp(), "tally.ini"),
                     "[site second]\nmax_pages = 1000\n")
    d = Daemon(["--config", cfg, "--rate-limit", "3"], rate_limit=False)
    for i in range(3):
        check_counts_shape(d.hit("/r"), counted=True)
    declined(d, "/r", BROWSER_UA, "rate", what="default site, hit 4")
    for i in range(1, 4):
        c = check_counts_shape(d.hit("/r", site="second"), counted=True)
        eq(c["site"], "second", "site")
        eq(vv(c)["today"], (i, 1), "site second after hit %d" % i)
    c = d.hit("/r", site="second")
    check_counts_shape(c, counted=False, reason="rate")
    eq(vv(c)["today"], (3, 1), "site second after its limit")


# ------------------------------------------------------------ metrics

def metric(text, name, labels):
    m = re.search(r"^%s\{%s\} (\S+)$" % (re.escape(name), re.escape(labels)),
                  text, re.M)
    check(m is not None, "no %s{%s} in /metrics" % (name, labels))
    return float(m.group(1))


def test_declined_counts_in_metrics():
    d = Daemon(["--rate-limit", "1"], rate_limit=False)
    declined(d, "/m", BOTS["curl"], "bot", what="curl")
    declined(d, "/m", BOTS["Googlebot"], "bot", what="Googlebot")
    declined(d, "/m", BROWSER_UA, "bot", headers={"Sec-Purpose": "prefetch"},
             what="prefetch")
    check_counts_shape(d.hit("/m"), counted=True)
    declined(d, "/m", BROWSER_UA, "rate", what="rate 1")
    declined(d, "/m", BROWSER_UA, "rate", what="rate 2")
    d.count("/m")  # read-only: not a declined hit
    st, _, body = d.request("GET", "/metrics")
    eq(st, 200, "/metrics status")
    text = body.decode("utf-8")
    eq(metric(text, "tally_hits_declined_total", 'reason="bot"'), 3,
       'tally_hits_declined_total{reason="bot"}')
    eq(metric(text, "tally_hits_declined_total", 'reason="rate"'), 2,
       'tally_hits_declined_total{reason="rate"}')
    eq(metric(text, "tally_hits_declined_total", 'reason="origin"'), 0,
       'tally_hits_declined_total{reason="origin"}')


if __name__ == "__main__":
    harness.main(globals())
