#!/usr/bin/env python3
"""What a site owner sees when a page shows numbers but counts nothing:
with debug logging, every declined hit is logged with its reason, and
never with the client's address or User-Agent."""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import BROWSER_UA2, Daemon, check, eq, mkdtemp, write_file  # noqa: E402

CURL_UA = "curl/7.88.1"
HEADLESS_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
               "(KHTML, like Gecko) HeadlessChrome/126.0.0.0 Safari/537.36")
CONFIG = """[site blog]
origins = https://blog.example
"""
LINE = re.compile(r"site (\S+): hit on (\S+) not counted, reason: (\w+)")


def declined_lines(d):
    # The log is written as it happens; give the last line a moment.
    time.sleep(0.2)
    return [m.groups() for m in LINE.finditer(d.stderr())]


def start(*flags):
    cfg = write_file(os.path.join(mkdtemp(), "tally.ini"), CONFIG)
    return Daemon(["--config", cfg, "--rate-limit", "2"] + list(flags),
                  rate_limit=False)


def declined_hits(d):
    """One hit declined for each reason, and one counted."""
    c = d.hit("/news/1", ua=CURL_UA)
    harness.check_counts_shape(c, counted=False, reason="bot")
    c = d.hit("/news/2", ua=HEADLESS_UA)
    harness.check_counts_shape(c, counted=False, reason="bot")
    c = d.hit("/post", site="blog",
              headers={"Origin": "https://elsewhere.example"})
    harness.check_counts_shape(c, counted=False, reason="origin")
    for n in range(3):
        c = d.hit("/often")
    harness.check_counts_shape(c, counted=False, reason="rate")
    harness.check_counts_shape(d.hit("/fine", ua=BROWSER_UA2), counted=True)


def test_debug_log_names_the_reason():
    for flags in (["--log-level", "debug"], ["-v"]):
        d = start(*flags)
        declined_hits(d)
        eq(declined_lines(d),
           [("default", "/news/1", "bot"), ("default", "/news/2", "bot"),
            ("blog", "/post", "origin"), ("default", "/often", "rate")],
           "declined hits logged with %s" % " ".join(flags))
        log = d.stderr()
        for secret in (CURL_UA, "curl", "HeadlessChrome", "elsewhere.example"):
            check(secret not in log, "the log holds %r: %s"
                  % (secret, log[-1500:]))
        # The daemon's own address is logged at start; the client's
        # (the same host here) is not in the lines about hits.
        for line in log.splitlines():
            check("not counted" not in line or "127.0.0.1" not in line,
                  "a declined hit logged with the address: %r" % line)
        check("/fine" not in log, "a counted hit was logged: %s" % log[-1500:])
        d.check_alive()


def test_quiet_without_debug():
    d = start()
    declined_hits(d)
    eq(declined_lines(d), [], "declined hits logged at the default level")


if __name__ == "__main__":
    harness.main(globals())
