#!/usr/bin/env python3
"""Writes a synthetic nginx/Apache "combined" access log, for benchmarks.

    gen_log.py [--lines N] [--days D] [--seed S] [--end YYYY-MM-DD] [FILE]

The log is what a busy small site sees over D days (default 365), in
time order: page views from a few thousand visitors with browser
User-Agents, the static assets those pages load, crawlers and HTTP
libraries, 404s and other methods, a few junk lines. The same seed
gives the same file. Python 3 standard library only.
"""

import argparse
import datetime
import random
import sys

BROWSERS = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/125.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 "
    "Firefox/128.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/126.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
]
BOTS = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "curl/8.5.0",
    "python-requests/2.31.0",
    "Go-http-client/1.1",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
]
ASSETS = ["/static/app.css", "/static/app.js", "/favicon.ico",
          "/img/logo.png", "/img/header.jpg", "/fonts/inter.woff2",
          "/robots.txt", "/feed.xml"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
          "Oct", "Nov", "Dec"]


def pages(rng, n):
    sections = ["news", "blog", "docs", "shop", "about"]
    out = ["/"]
    while len(out) < n:
        s = rng.choice(sections)
        out.append("/%s/%d" % (s, len(out)))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1000000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--end", default="2026-11-26")
    ap.add_argument("file", nargs="?")
    a = ap.parse_args()

    rng = random.Random(a.seed)
    paths = pages(rng, 2000)
    # Popularity falls off like real sites: a few pages get most views.
    weights = [1.0 / (i + 1) ** 0.9 for i in range(len(paths))]
    visitors = ["%d.%d.%d.%d" % (rng.randint(1, 223), rng.randint(0, 255),
                                 rng.randint(0, 255), rng.randint(1, 254))
                for _ in range(20000)]
    vua = [rng.choice(BROWSERS) for _ in visitors]
    end = datetime.datetime.fromisoformat(a.end + "T23:59:59+00:00")
    start = end - datetime.timedelta(days=a.days) + datetime.timedelta(seconds=1)
    span = (end - start).total_seconds()
    step = span / max(a.lines, 1)

    out = open(a.file, "w") if a.file else sys.stdout
    w = out.write
    t = start.timestamp()
    page_choices = rng.choices(paths, weights, k=100000)
    for i in range(a.lines):
        t += step
        dt = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
        ts = "%02d/%s/%04d:%02d:%02d:%02d +0000" % (
            dt.day, MONTHS[dt.month - 1], dt.year, dt.hour, dt.minute,
            dt.second)
        r = rng.random()
        v = rng.randrange(len(visitors))
        ip, ua = visitors[v], vua[v]
        method, status, size = "GET", 200, rng.randint(500, 90000)
        ref = "https://example.org/"
        if r < 0.45:
            target = page_choices[i % len(page_choices)]
            if rng.random() < 0.05:
                target += "?utm_source=news&id=%d" % rng.randint(1, 50)
            if rng.random() < 0.08:
                status, size = 304, 0
        elif r < 0.80:
            target = rng.choice(ASSETS)
        elif r < 0.90:
            target = page_choices[(i * 7) % len(page_choices)]
            ua = rng.choice(BOTS)
            ref = "-"
        elif r < 0.95:
            target = "/missing/%d" % rng.randint(1, 5000)
            status = 404
        elif r < 0.98:
            method, target = "POST", "/api/comment"
            status = 201
        elif r < 0.999:
            method, target = "HEAD", rng.choice(paths)
        else:
            w("%s - - [%s] \"\\x16\\x03\\x01\" 400 150 \"-\" \"-\"\n" % (ip, ts)
              if rng.random() < 0.5 else "junk line %d\n" % i)
            continue
        w('%s - - [%s] "%s %s HTTP/1.1" %d %d "%s" "%s"\n'
          % (ip, ts, method, target, status, size, ref, ua))
    if out is not sys.stdout:
        out.close()


if __name__ == "__main__":
    main()
