#!/usr/bin/env python3
"""Unique visitors (issue 4): one visitor a day per site + address +
User-Agent, per page too; ids survive a restart; DNT/GPC; the daily salt
rotates at midnight (under libfaketime)."""

import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (BROWSER_UA, BROWSER_UA2, Daemon, Failure, Skip,  # noqa: E402
                     FAKETIME_LIB, eq, check_counts_shape, faketime_env)

BROWSER_UA3 = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/"
               "605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15")


def vv(c):
    """The four (views, visitors) pairs of a counts JSON."""
    return {k: (c[k]["views"], c[k]["visitors"])
            for k in ("page", "page_today", "today", "total")}


def want(page, page_today, today, total):
    return {"page": page, "page_today": page_today, "today": today,
            "total": total}


def counted(d, path, ua=BROWSER_UA, headers=None, site=None):
    c = check_counts_shape(d.hit(path, site=site, ua=ua, headers=headers),
                           counted=True)
    eq(c["path"], path, "path")
    return c


# ------------------------------------------------------------ same visitor

def test_same_visitor_twice_is_one_visitor():
    d = Daemon()
    c = counted(d, "/a")
    eq(vv(c), want((1, 1), (1, 1), (1, 1), (1, 1)), "after the first hit")
    c = counted(d, "/a")
    eq(vv(c), want((2, 1), (2, 1), (2, 1), (2, 1)), "after the second hit")
    c = counted(d, "/a")
    eq(vv(c), want((3, 1), (3, 1), (3, 1), (3, 1)), "after the third hit")
    # POST counts the same visitor the same way.
    c = check_counts_shape(d.hit("/a", method="POST"), counted=True)
    eq(vv(c), want((4, 1), (4, 1), (4, 1), (4, 1)), "after a POST hit")
    # and /count (read only) agrees
    c = check_counts_shape(d.count("/a"), counted=False, reason="readonly")
    eq(vv(c), want((4, 1), (4, 1), (4, 1), (4, 1)), "/count")


def test_other_user_agent_is_another_visitor():
    d = Daemon()
    counted(d, "/a")
    c = counted(d, "/a", ua=BROWSER_UA2)
    eq(vv(c), want((2, 2), (2, 2), (2, 2), (2, 2)), "after a second UA")
    c = counted(d, "/a", ua=BROWSER_UA)
    eq(vv(c), want((3, 2), (3, 2), (3, 2), (3, 2)), "first UA again")
    c = counted(d, "/a", ua=BROWSER_UA2)
    eq(vv(c), want((4, 2), (4, 2), (4, 2), (4, 2)), "second UA again")
    c = counted(d, "/a", ua=BROWSER_UA3)
    eq(vv(c), want((5, 3), (5, 3), (5, 3), (5, 3)), "a third UA")


def test_second_page_adds_page_visitor_not_site_visitor():
    d = Daemon()
    counted(d, "/a")
    c = counted(d, "/b")
    eq(vv(c), want((1, 1), (1, 1), (2, 1), (2, 1)), "/b by the same visitor")
    c = counted(d, "/b")
    eq(vv(c), want((2, 1), (2, 1), (3, 1), (3, 1)), "/b again")
    c = check_counts_shape(d.count("/a"), counted=False)
    eq(vv(c), want((1, 1), (1, 1), (3, 1), (3, 1)), "/count of /a")
    # Another visitor on /b only: a page visitor of /b and a site visitor.
    c = counted(d, "/b", ua=BROWSER_UA2)
    eq(vv(c), want((3, 2), (3, 2), (4, 2), (4, 2)), "/b by a second visitor")
    c = check_counts_shape(d.count("/a"), counted=False)
    eq(vv(c), want((1, 1), (1, 1), (4, 2), (4, 2)), "/count of /a after")


def test_same_visitor_after_restart_is_not_new():
    d = Daemon()
    counted(d, "/a")
    c = counted(d, "/a", ua=BROWSER_UA2)
    eq(vv(c), want((2, 2), (2, 2), (2, 2), (2, 2)), "before the restart")
    eq(d.stop(signal.SIGTERM), 0, "exit code after SIGTERM")
    d.start()
    c = check_counts_shape(d.count("/a"), counted=False)
    eq(vv(c), want((2, 2), (2, 2), (2, 2), (2, 2)), "/count after restart")
    c = counted(d, "/a")
    eq(vv(c), want((3, 2), (3, 2), (3, 2), (3, 2)),
       "the same visitor on the same page after the restart")
    c = counted(d, "/b", ua=BROWSER_UA2)
    eq(vv(c), want((1, 1), (1, 1), (4, 2), (4, 2)),
       "the same visitor on a new page after the restart")
    c = counted(d, "/a", ua=BROWSER_UA3)
    eq(vv(c), want((4, 3), (4, 3), (5, 3), (5, 3)),
       "a new visitor after the restart")
    # Once more, now with ids made in the second run.
    eq(d.stop(signal.SIGTERM), 0, "exit code after the second SIGTERM")
    d.start()
    c = counted(d, "/a", ua=BROWSER_UA3)
    eq(vv(c), want((5, 3), (5, 3), (6, 3), (6, 3)),
       "the third visitor after a second restart")
    c = counted(d, "/b")
    eq(vv(c), want((2, 2), (2, 2), (7, 3), (7, 3)),
       "the first visitor on /b after a second restart")


# ------------------------------------------------------------ DNT / GPC

def test_dnt_and_gpc_views_only_by_default():
    d = Daemon()
    c = counted(d, "/a", headers={"DNT": "1"})
    eq(vv(c), want((1, 0), (1, 0), (1, 0), (1, 0)), "after a DNT: 1 hit")
    c = counted(d, "/a", headers={"Sec-GPC": "1"})
    eq(vv(c), want((2, 0), (2, 0), (2, 0), (2, 0)), "after a Sec-GPC: 1 hit")
    c = counted(d, "/a", ua=BROWSER_UA2,
                headers={"DNT": "1", "Sec-GPC": "1"})
    eq(vv(c), want((3, 0), (3, 0), (3, 0), (3, 0)), "after DNT + GPC")
    # The same browser without the signal is a visitor: no id was made
    # before, so it is new now.
    c = counted(d, "/a")
    eq(vv(c), want((4, 1), (4, 1), (4, 1), (4, 1)), "without DNT")
    # and with the signal again it is not taken away nor added.
    c = counted(d, "/a", headers={"DNT": "1"})
    eq(vv(c), want((5, 1), (5, 1), (5, 1), (5, 1)), "DNT again")
    # DNT: 0 is consent, not a refusal.
    c = counted(d, "/a", ua=BROWSER_UA3, headers={"DNT": "0"})
    eq(vv(c), want((6, 2), (6, 2), (6, 2), (6, 2)), "DNT: 0")


def test_dnt_views_only_explicit_flag():
    d = Daemon(["--dnt", "views-only"])
    c = counted(d, "/a", headers={"DNT": "1"})
    eq(vv(c), want((1, 0), (1, 0), (1, 0), (1, 0)), "DNT: 1")
    c = counted(d, "/a", ua=BROWSER_UA2, headers={"Sec-GPC": "1"})
    eq(vv(c), want((2, 0), (2, 0), (2, 0), (2, 0)), "Sec-GPC: 1")


def test_dnt_ignore_counts_visitors():
    d = Daemon(["--dnt", "ignore"])
    c = counted(d, "/a", headers={"DNT": "1"})
    eq(vv(c), want((1, 1), (1, 1), (1, 1), (1, 1)), "DNT: 1 with ignore")
    c = counted(d, "/a", headers={"Sec-GPC": "1"})
    eq(vv(c), want((2, 1), (2, 1), (2, 1), (2, 1)),
       "Sec-GPC: 1, same browser, with ignore")
    c = counted(d, "/a", ua=BROWSER_UA2, headers={"Sec-GPC": "1"})
    eq(vv(c), want((3, 2), (3, 2), (3, 2), (3, 2)),
       "Sec-GPC: 1, another browser, with ignore")
    c = counted(d, "/a", ua=BROWSER_UA2)
    eq(vv(c), want((4, 2), (4, 2), (4, 2), (4, 2)),
       "the second browser without GPC")


# ------------------------------------------------------------ salt rotation


def check_faketime():
    if not os.path.exists(FAKETIME_LIB):
        raise Skip("libfaketime not found at %s" % FAKETIME_LIB)
    env = dict(os.environ)
    env.update(faketime_env("2026-11-27 12:00:00"))
    try:
        p = subprocess.run(["date", "-u", "+%Y-%m-%d"], env=env,
                           stdout=subprocess.PIPE, timeout=10)
    except (OSError, subprocess.SubprocessError) as e:
        raise Skip("libfaketime does not run here: %r" % (e,))
    if p.stdout.strip() != b"2026-11-27":
        raise Skip("libfaketime does not fake the clock (date says %r)"
                   % p.stdout.strip())


def wait_for_day(d, path, day, seconds):
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        c = d.count(path)
        last = c["day"]
        if last == day:
            return c
        time.sleep(0.1)
    raise Failure("/count still answers day %r, want %r" % (last, day))


def test_salt_rotates_at_midnight():
    check_faketime()
    # The fake clock starts 3 s before midnight; a daemon too slow to
    # answer before it (a loaded machine) is tried again with a new store.
    for attempt in range(3):
        t0 = time.monotonic()
        d = Daemon(["--timezone", "UTC", "--commit-interval", "100ms"],
                   env=faketime_env("2026-11-27 23:59:57"))
        c = counted(d, "/a")
        c2 = counted(d, "/a")
        elapsed = time.monotonic() - t0
        if c2["day"] == "2026-11-27":
            break
        d.kill9()
    else:
        raise Failure("the daemon took %.1f s to start and answer, past the "
                      "fake midnight (day %r)" % (elapsed, c2["day"]))
    eq(c["day"], "2026-11-27", "day before midnight")
    eq(vv(c2), want((2, 1), (2, 1), (2, 1), (2, 1)), "before midnight")

    c = wait_for_day(d, "/a", "2026-11-28", 8)
    eq(vv(c), want((2, 1), (0, 0), (0, 0), (2, 1)),
       "/count just after midnight")
    c = counted(d, "/a")
    eq(c["day"], "2026-11-28", "day after midnight")
    eq(vv(c), want((3, 2), (1, 1), (1, 1), (3, 2)),
       "the same visitor is new again tomorrow")
    c = counted(d, "/a")
    eq(vv(c), want((4, 2), (2, 1), (2, 1), (4, 2)),
       "and once only tomorrow")
    c = counted(d, "/b")
    eq(vv(c), want((1, 1), (1, 1), (3, 1), (5, 2)),
       "a new page tomorrow, same visitor")

    # Tomorrow's salt is kept across a restart on that day.
    eq(d.stop(), 0, "exit code after SIGTERM")
    d.env = faketime_env("2026-11-28 00:10:00")
    d.start()
    c = counted(d, "/a")
    eq(c["day"], "2026-11-28", "day after the restart")
    eq(vv(c), want((5, 2), (3, 1), (4, 1), (6, 2)),
       "the same visitor after a restart on the new day")
    c = counted(d, "/a", ua=BROWSER_UA2)
    eq(vv(c), want((6, 3), (4, 2), (5, 2), (7, 3)),
       "another visitor after the restart")


if __name__ == "__main__":
    harness.main(globals())
