#!/usr/bin/env python3
"""Cheap inflation: one address that rotates its User-Agent gets at most
rate_limit_address views a minute and new_visitors_per_address new
visitors a day counted; an IPv6 /64 is one address; allowances refill
evenly, so no burst fits across a minute's edge; past max_pages, a path
with real visitors still gets its own series."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (BROWSER_UA, Daemon, check, eq,  # noqa: E402
                     check_counts_shape, mkdtemp, write_file)


def ua(i):
    """A browser User-Agent that differs per i: one fake visitor each."""
    return BROWSER_UA + " r/%d" % i


def vv(c, key):
    return (c[key]["views"], c[key]["visitors"])


def proxied(extra_args, extra_conf=""):
    """A tallyd that believes X-Forwarded-For from 127.0.0.1."""
    cfg = write_file(os.path.join(mkdtemp(), "tally.ini"),
                     "[server]\ntrusted_proxies = 127.0.0.1\n" + extra_conf)
    return Daemon(["--config", cfg] + extra_args, rate_limit=False)


def xff(addr):
    return {"X-Forwarded-For": addr}


def test_rotating_user_agents_hit_the_address_limits():
    d = Daemon(["--rate-limit", "30", "--rate-limit-address", "10",
                "--new-visitors-per-address", "4"], rate_limit=False)
    got = []
    for i in range(15):
        c = check_counts_shape(d.hit("/a", ua=ua(i)))
        got.append(c["counted"])
        if not c["counted"]:
            eq(c.get("reason"), "rate", "reason of hit %d" % (i + 1))
    # Fifteen quick hits take well under the 6 s that refill one view.
    eq(got, [True] * 10 + [False] * 5, "counted, per hit")
    c = check_counts_shape(d.count("/a"), counted=False)
    eq(vv(c, "today"), (10, 4), "today (views, visitors)")
    eq(vv(c, "page"), (10, 4), "page (views, visitors)")
    d.check_alive()


def test_new_visitors_per_address_only_stops_visitors():
    d = Daemon(["--rate-limit-address", "0",
                "--new-visitors-per-address", "3"], rate_limit=False)
    for i in range(8):
        check_counts_shape(d.hit("/v", ua=ua(i)), counted=True)
    # A visitor made before the cap is still known: no second visitor.
    c = check_counts_shape(d.hit("/v", ua=ua(0)), counted=True)
    eq(vv(c, "today"), (9, 3), "today after 9 views of 9 User-Agents' hits")
    eq(vv(c, "page"), (9, 3), "page")
    # Zero turns the cap off.
    d2 = Daemon(["--rate-limit-address", "0",
                 "--new-visitors-per-address", "0"], rate_limit=False)
    for i in range(8):
        c = check_counts_shape(d2.hit("/v", ua=ua(i)), counted=True)
    eq(vv(c, "today"), (8, 8), "today with new_visitors_per_address = 0")


def test_ipv6_64_is_one_address():
    d = proxied(["--rate-limit-address", "4",
                 "--new-visitors-per-address", "2"])
    net = "2001:db8:1:2:"
    got = [d.hit("/6", headers=xff(net + ":%x" % (i + 1)))["counted"]
           for i in range(4)]
    eq(got, [True] * 4, "four addresses of one /64")
    c = d.hit("/6", headers=xff(net + "ffff:ffff:ffff:ffff"))
    check_counts_shape(c, counted=False, reason="rate")
    eq(vv(c, "today"), (4, 2), "today after the /64's allowance")
    # The next /64 is another client.
    c = check_counts_shape(d.hit("/6", headers=xff("2001:db8:1:3::1")),
                           counted=True)
    eq(vv(c, "today"), (5, 3), "today after a hit from another /64")
    # IPv4: every address on its own.
    for i in range(1, 7):
        c = check_counts_shape(d.hit("/6", headers=xff("198.51.100.%d" % i)),
                               counted=True)
    eq(vv(c, "today"), (11, 9), "today after six IPv4 addresses")
    d.check_alive()


def test_no_burst_across_a_minute_edge():
    d = Daemon(["--rate-limit", "60", "--rate-limit-address", "0"],
               rate_limit=False)
    t0 = time.monotonic()
    n = 0
    while d.hit("/b")["counted"]:
        n += 1
        check(n <= 200, "no hit refused with --rate-limit 60")
    took = time.monotonic() - t0
    # A full bucket, and what refilled (one a second) meanwhile.
    check(60 <= n <= 60 + int(took) + 1,
          "%d hits counted in %.1f s before the first refusal" % (n, took))
    # A per-minute window would allow nothing now, or 60 at the next
    # minute; a bucket that refills at 60 a minute allows about 2.
    time.sleep(2.2)
    t1 = time.monotonic()
    more = sum(1 for _ in range(20) if d.hit("/b")["counted"])
    took = time.monotonic() - t1
    check(1 <= more <= 3 + int(took),
          "%d of 20 hits counted 2.2 s after the bucket ran dry" % more)
    c = check_counts_shape(d.count("/b"), counted=False)
    eq(vv(c, "today"), (n + more, 1), "today")


def fill_with_junk(d, n):
    """One client fills the site with n junk paths."""
    for i in range(n):
        c = check_counts_shape(d.hit("/junk%d" % i,
                                     headers=xff("192.0.2.66")),
                               counted=True)
        eq(c["path"], "/junk%d" % i, "path of junk hit %d" % i)


def test_real_page_gets_its_series_past_max_pages():
    d = proxied(["--max-pages", "5"])
    fill_with_junk(d, 5)
    # One client, however it rotates its User-Agent, adds no path.
    for i in range(6):
        c = check_counts_shape(d.hit("/junk-more", ua=ua(i),
                                     headers=xff("192.0.2.66")),
                               counted=True)
        eq(c["path"], "/(other)", "path of more junk, hit %d" % (i + 1))
    # A page that three addresses read gets its own series at the third.
    for i, a in enumerate(["198.51.100.1", "198.51.100.1", "2001:db8::1"]):
        c = check_counts_shape(d.hit("/real", headers=xff(a)), counted=True)
        eq(c["path"], "/(other)", "path of real hit %d" % (i + 1))
    # Another address of the same /64 is not a third reader.
    c = check_counts_shape(d.hit("/real", headers=xff("2001:db8::2")),
                           counted=True)
    eq(c["path"], "/(other)", "path of a hit from the same /64")
    c = check_counts_shape(d.hit("/real", headers=xff("203.0.113.5")),
                           counted=True)
    eq(c["path"], "/real", "path once three addresses read it")
    eq(vv(c, "page"), (1, 1), "/real's own counts")
    eq(vv(c, "today")[0], 5 + 6 + 5, "site views: every hit counted")
    # From now on, anyone's view counts under it.
    c = check_counts_shape(d.hit("/real", headers=xff("192.0.2.66")),
                           counted=True)
    eq((c["path"], vv(c, "page")), ("/real", (2, 2)), "next hit on /real")
    time.sleep(0.3)
    rc, out, err = harness.run_tallyctl("--data", d.data, "--json", "page",
                                        "/real")
    eq(rc, 0, "tallyctl page /real (stderr %r)" % err)
    eq(harness.parse_json(out.encode())["page"]["views"], 2,
       "tallyctl page /real views")
    d.check_alive()


def test_paths_past_max_pages_are_bounded_per_day():
    d = proxied(["--max-pages", "5"])
    fill_with_junk(d, 5)
    readers = ["198.51.100.1", "198.51.100.2", "198.51.100.3"]
    # At most 10 paths a day past a cap under 1000 (1% of it above).
    for p in range(11):
        for a in readers:
            c = check_counts_shape(d.hit("/new%d" % p, headers=xff(a)),
                                   counted=True)
        want = "/new%d" % p if p < 10 else "/(other)"
        eq(c["path"], want, "path of /new%d after three readers" % p)
    d.check_alive()


def log_line(ip, day, target, agent=BROWSER_UA):
    return ('%s - - [%02d/Mar/2026:12:00:00 +0000] "GET %s HTTP/1.1" 200 512'
            ' "-" "%s"\n' % (ip, day, target, agent))


def test_import_log_admits_pages_past_max_pages_alike():
    tmp = mkdtemp()
    data = os.path.join(tmp, "data")
    cfg = write_file(os.path.join(tmp, "tally.ini"),
                     "[store]\ndata = %s\n[count]\ntimezone = UTC\n"
                     "max_pages = 2\n" % data)
    log = (log_line("192.0.2.66", 10, "/j1") +
           log_line("192.0.2.66", 10, "/j2") +
           "".join(log_line("192.0.2.66", 10, "/j3", ua(i))
                   for i in range(5)) +
           log_line("198.51.100.1", 10, "/real") +
           log_line("198.51.100.1", 10, "/real", ua(1)) +
           log_line("2001:db8::1", 10, "/real") +
           log_line("2001:db8::2", 10, "/real") +
           log_line("203.0.113.5", 10, "/real") +
           log_line("192.0.2.66", 11, "/real"))
    f = write_file(os.path.join(tmp, "access.log"), log)
    rc, out, err = harness.run_tallyctl("--config", cfg, "import-log", f)
    eq(rc, 0, "import-log (stderr %r)" % err)
    rc, out, err = harness.run_tallyctl("--config", cfg, "export")
    eq(rc, 0, "export (stderr %r)" % err)
    # /j3 (one address) and the first four views of /real (two addresses
    # and a /64) count under /(other); the third address admits /real.
    eq(out.splitlines()[1:], [
        "default,2026-03-10,*,12,11",
        "default,2026-03-11,*,1,1",
        "default,2026-03-10,/(other),9,9",
        "default,2026-03-10,/j1,1,1",
        "default,2026-03-10,/j2,1,1",
        "default,2026-03-10,/real,1,1",
        "default,2026-03-11,/real,1,1"], "export")


if __name__ == "__main__":
    harness.main(globals())
