#!/usr/bin/env python3
"""Midnight rollover under libfaketime: "today" starts again at local
midnight of the configured zone, all-time counts keep growing.

Needs the Debian package faketime (libfaketime); exits 77 (skip) without it.
"""

import datetime
import os
import subprocess
import sys
import time
import zoneinfo

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (BROWSER_UA2, Daemon, Failure, Skip, check, eq,  # noqa: E402
                     check_counts_shape, mkdtemp, write_file, run_tallyctl,
                     parse_json)

LIBDIR = "/usr/lib/x86_64-linux-gnu/faketime"
LEAD = 4.0      # the fake clock starts this many seconds before midnight
LIB = None


def find_lib():
    for name in ("libfaketimeMT.so.1", "libfaketime.so.1"):
        p = os.path.join(os.environ.get("FAKETIME_LIBDIR", LIBDIR), name)
        if os.path.exists(p):
            return p
    return None


def fake_env(epoch):
    """Environment that starts the clock at epoch (seconds) and lets it run.
    The time is given as epoch seconds (FAKETIME_FMT=%s) so that it means
    the same instant whatever zone the daemon switches to."""
    return {
        "LD_PRELOAD": LIB,
        "FAKETIME": "@%d" % epoch,
        "FAKETIME_FMT": "%s",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "FAKETIME_DONT_RESET": "1",
        "TZ": "UTC",
        # an AddressSanitizer build must not refuse the preloaded library
        "ASAN_OPTIONS": "verify_asan_link_order=0",
    }


def setup():
    global LIB
    LIB = find_lib()
    if LIB is None:
        raise Skip("libfaketime not found in %s (apt install faketime)"
                   % LIBDIR)
    want = 1795823990
    env = dict(os.environ)
    env.update(fake_env(want))
    try:
        p = subprocess.run([sys.executable, "-c",
                            "import time; print(int(time.time()))"],
                           env=env, stdout=subprocess.PIPE, timeout=10)
        got = int(p.stdout.strip())
    except (OSError, ValueError, subprocess.SubprocessError) as e:
        raise Skip("libfaketime does not work here: %r" % (e,))
    if abs(got - want) > 5:
        raise Skip("libfaketime does not fake the clock: got %d, want %d"
                   % (got, want))


def midnight(zone, date):
    """Epoch seconds of 00:00 of date in zone."""
    return int(datetime.datetime.combine(
        date, datetime.time(0, 0), tzinfo=zoneinfo.ZoneInfo(zone)).timestamp())


def views_visitors(c, key):
    return (c[key]["views"], c[key]["visitors"])


def wait_for_day(d, path, day, until):
    last = None
    while time.time() < until:
        c = d.count(path)
        last = c["day"]
        if last == day:
            return c
        time.sleep(0.1)
    raise Failure("/count still answers day %r, want %r" % (last, day))


def rollover(zone):
    """Hits just before and just after midnight in zone."""
    mid = midnight(zone, datetime.date(2026, 11, 28))
    data = os.path.join(mkdtemp(), "data")
    cfg = write_file(os.path.join(mkdtemp(), "tally.ini"),
                     "[store]\ndata = %s\n\n[count]\ntimezone = %s\n"
                     % (data, zone))
    d = Daemon(["--config", cfg, "--timezone", zone,
                "--commit-interval", "100ms"],
               env=fake_env(mid - LEAD), data=data)
    t0 = d.started_at

    c = d.hit("/r")
    c = d.hit("/r")
    c = check_counts_shape(d.hit("/x"), counted=True)
    elapsed = time.time() - t0
    check(elapsed < LEAD - 0.3, "the daemon took %.1f s to start and answer;"
          " too slow to hit before the fake midnight" % elapsed)
    eq(c["day"], "2026-11-27", "day before midnight")
    eq(views_visitors(c, "today"), (3, 1), "today before midnight")
    eq(views_visitors(c, "total"), (3, 1), "total before midnight")
    c = d.count("/r")
    eq(c["day"], "2026-11-27", "day of /count before midnight")
    eq(views_visitors(c, "page_today"), (2, 1), "page_today of /r")

    # Past midnight, without any hit: the daemon's "today" is empty.
    c = wait_for_day(d, "/r", "2026-11-28", t0 + LEAD + 5)
    check(time.time() >= t0 + LEAD - 0.5,
          "day changed %.1f s before the fake midnight"
          % (t0 + LEAD - time.time()))
    eq(views_visitors(c, "today"), (0, 0), "today just after midnight")
    eq(views_visitors(c, "page_today"), (0, 0), "page_today after midnight")
    eq(views_visitors(c, "page"), (2, 1), "page (all time) after midnight")
    eq(views_visitors(c, "total"), (3, 1), "total after midnight")

    c = check_counts_shape(d.hit("/r"), counted=True)
    eq(c["day"], "2026-11-28", "day after midnight")
    eq(views_visitors(c, "today"), (1, 1), "today after the first new hit")
    eq(views_visitors(c, "page_today"), (1, 1), "page_today of /r")
    eq(views_visitors(c, "page"), (3, 2), "page (all time) of /r")
    eq(views_visitors(c, "total"), (4, 2), "total after midnight")
    c = d.hit("/r", ua=BROWSER_UA2)
    eq(views_visitors(c, "today"), (2, 2), "today with a second visitor")
    eq(views_visitors(c, "total"), (5, 3), "total with a second visitor")
    c = d.hit("/x")
    eq(views_visitors(c, "page"), (2, 2), "page (all time) of /x")
    eq(views_visitors(c, "page_today"), (1, 1), "page_today of /x")
    eq(views_visitors(c, "today"), (3, 2), "today")
    eq(views_visitors(c, "total"), (6, 3), "total")

    # The store kept the old day: tallyctl, at 00:01 local the same night.
    time.sleep(0.3)
    env = fake_env(mid + 60)
    rc, out, err = run_tallyctl("--config", cfg, "--json", "stats", env=env)
    eq(rc, 0, "tallyctl stats exit code (stderr %r)" % err[:300])
    s = parse_json(out.encode(), "tallyctl --json stats")
    eq(s.get("day"), "2026-11-28", "tallyctl stats day")
    eq(s.get("today"), {"views": 3, "visitors": 2}, "tallyctl stats today")
    eq(s.get("yesterday"), {"views": 3, "visitors": 1},
       "tallyctl stats yesterday")
    eq(s.get("last7"), {"views": 6, "visitors": 3}, "tallyctl stats last7")
    eq(s.get("total"), {"views": 6, "visitors": 3}, "tallyctl stats total")

    eq(d.stop(), 0, "exit code after SIGTERM")
    # After a restart on the new day, yesterday's hits stay out of today.
    d.env = fake_env(mid + 30)
    d.start()
    c = d.count("/r")
    eq(c["day"], "2026-11-28", "day after restart")
    eq(views_visitors(c, "today"), (3, 2), "today after restart")
    eq(views_visitors(c, "total"), (6, 3), "total after restart")


def test_rollover_utc():
    rollover("UTC")


def test_rollover_asia_baku():
    rollover("Asia/Baku")


def test_no_rollover_at_another_zones_midnight():
    # 20:00 UTC is midnight in Baku but not in UTC: a UTC daemon keeps its day.
    mid = midnight("Asia/Baku", datetime.date(2026, 11, 28))
    d = Daemon(["--timezone", "UTC"], env=fake_env(mid - 2))
    t0 = d.started_at
    c = d.hit("/n")
    eq(c["day"], "2026-11-27", "day at 19:59:58 UTC")
    time.sleep(max(0.0, t0 + 3.0 - time.time()))
    c = d.hit("/n")
    eq(c["day"], "2026-11-27", "day at 20:00:01 UTC")
    eq(views_visitors(c, "today"), (2, 1), "today across 20:00 UTC")
    eq(views_visitors(c, "page_today"), (2, 1), "page_today across 20:00 UTC")


if __name__ == "__main__":
    harness.main(globals(), setup=setup)
