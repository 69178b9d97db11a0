#!/usr/bin/env python3
"""The shared store's nodes, tallyctl and each other at the same moment,
on the throwaway cluster of pgcluster.py (doc/scale-out.md, "How the
counts stay exact"):

  - tallyctl import of referrer rows while the nodes flush new pages and
    new referring hosts of the same site and day: no deadlock, exact
    counts;
  - a node that starts costs the running nodes a read of what it wrote,
    not a read of the whole database (the server's table statistics),
    and they still show its hits exactly;
  - tallyctl reset of a page while a node flushes hits of it: no
    deadlock, no visitor id left without its count, so that every
    visitor of the page after the reset is counted exactly once.
"""

import http.client
import json
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import pgcluster  # noqa: E402
from harness import Daemon, Failure, check, eq, run_tallyctl  # noqa: E402
from test_pg import (SCALE, ctl_json, fresh, ua,  # noqa: E402
                     wait_flushed)
from test_pg_flush import (PLANT_DAYS, PLANT_SERIES, ctl, plant,  # noqa: E402
                           q, rows_read, today, wait_for)


def log_offset(c):
    with open(c.logfile, "rb") as f:
        f.seek(0, 2)
        return f.tell()


def log_since(c, offset):
    with open(c.logfile, "rb") as f:
        f.seek(offset)
        return f.read().decode("utf-8", "replace")


def no_deadlock(c, offset, what):
    log = log_since(c, offset)
    lines = [ln for ln in log.splitlines() if "deadlock" in ln]
    check(not lines, "%s: the server found deadlocks: %r" % (what, lines))


def day_text(day):
    return time.strftime("%Y-%m-%d", time.gmtime(day * 86400))


class Hitter:
    """Sends hits on one connection per node, in a thread, until
    stopped; counts what was answered 200."""

    def __init__(self, daemons, pick):
        self.daemons = daemons
        self.pick = pick            # n -> (node index, path, visitor,
        self.stop = threading.Event()   # referrer host or None)
        self.answered = []          # (monotonic time, path, visitor, host)
        self.errors = []
        self.thread = threading.Thread(target=self.run)
        self.thread.start()

    def run(self):
        conns = {}
        n = 0
        try:
            while not self.stop.is_set():
                i, path, v, host = self.pick(n)
                n += 1
                conn = conns.get(i)
                if conn is None:
                    conn = conns[i] = http.client.HTTPConnection(
                        "127.0.0.1", self.daemons[i].port, timeout=30)
                params = {"path": path}
                if host:
                    params["referrer"] = "https://%s/x" % host
                conn.request("GET", "/hit?" + harness.query(**params),
                             headers={"User-Agent": ua(v)})
                r = conn.getresponse()
                body = r.read()
                if r.status != 200:
                    raise Failure("hit %s: status %d %r" % (
                        path, r.status, body[:200]))
                check(json.loads(body)["counted"], "hit not counted")
                self.answered.append((time.monotonic(), path, v, host))
                time.sleep(0.005)
        except Exception as e:      # noqa: BLE001
            self.errors.append(e)
        finally:
            for conn in conns.values():
                conn.close()

    def finish(self):
        self.stop.set()
        self.thread.join(120)
        if self.errors:
            raise self.errors[0]
        return self.answered


# ------------------------------------- tallyctl import against flushes

IMPORT_PAGES = 2000
HIT_HOSTS = 400       # with the imported ones, fewer than max_referrers


def test_an_import_of_referrers_does_not_deadlock_with_flushes():
    """An export-style file whose referrer rows come before the pages
    (as in a file of several sites: a site's referrers, then the next
    site's pages). The nodes meanwhile flush hits of pages the import
    also makes, each with a referring host new to the day: a flush
    takes a new page, then the site's day of hosts."""
    c = fresh()
    ds = [Daemon(["--store", c.url(), "--commit-interval", "100ms",
                  "--count-max-age", "1s"]) for _ in range(2)]
    for d in ds:
        d.hit("/", ua=ua(0))
    wait_flushed(ds)
    t = today()
    day = day_text(t)
    rows = ["site,day,path,views,visitors"]
    rows += ["default,%s,referrer:imp%d.example,3,0" % (day, i)
             for i in range(3)]
    rows.append("default,%s,*,%d,%d" % (day, 2 * IMPORT_PAGES,
                                         IMPORT_PAGES))
    rows += ["default,%s,/imp/%04d,2,1" % (day, k)
             for k in range(IMPORT_PAGES)]
    offset = log_offset(c)
    result = {}

    def run_import():
        result["rc"], result["out"], result["err"] = run_tallyctl(
            "--store", c.url(), "import", "--add", "-",
            input=("\n".join(rows) + "\n").encode(), timeout=300)

    imp = threading.Thread(target=run_import)
    imp.start()
    # Pages from the end of the file, which the import makes last, at
    # first each with a host new to the day.
    hits = Hitter(ds, lambda n: (n % 2, "/imp/%04d" % (
        IMPORT_PAGES - 1 - n % IMPORT_PAGES), 1000 + n,
        "h%d.example" % (n % HIT_HOSTS)))
    imp.join(300)
    answered = hits.finish()
    check(not imp.is_alive(), "the import still runs")
    eq(result["rc"], 0, "tallyctl import (stderr %r)" % result["err"][-800:])
    wait_flushed(ds)
    no_deadlock(c, offset, "import and flushes")
    check(len(answered) > 20, "hits during the import: %d" % len(answered))
    # Every count exact: the import's and the hits'.
    want = {}
    for _, path, v, host in answered:
        want[path] = want.get(path, 0) + 1
    got = {}
    for r in ctl(c, "export").splitlines()[1:]:
        s, dd, path, v, u = r.split(",")
        if dd == day and path.startswith("/imp/"):
            got[path] = (int(v), int(u))
    eq(len(got), IMPORT_PAGES, "pages imported")
    bad = {p: g for p, g in got.items() if g != (
        2 + want.get(p, 0), 1 + want.get(p, 0))}
    eq(bad, {}, "pages whose views, visitors differ from the truth")
    refs = dict(ln.split("|") for ln in q(
        c, "SELECT host, sum(views) FROM tally_referrers WHERE day = %d "
        "GROUP BY host" % t).splitlines())
    eq(sorted(h for h in refs if h.startswith("imp")),
       ["imp0.example", "imp1.example", "imp2.example"], "imported hosts")
    check(all(refs[h] == "3" for h in refs if h.startswith("imp")),
          "imported referrer views: %r" % refs)
    want_hosts = {}
    for _, _, _, host in answered:
        want_hosts[host] = want_hosts.get(host, 0) + 1
    eq({h: int(v) for h, v in refs.items() if h.startswith("h")},
       want_hosts, "hosts of the hits")
    st = ctl_json(c, "stats")
    eq(st["today"]["views"], 2 + 2 * IMPORT_PAGES + len(answered),
       "the site's views today")
    for d in ds:
        eq(d.stop(), 0, "exit status")
    ctl(c, "check")


# -------------------------------------------------- a node that starts

def test_a_node_that_starts_costs_others_a_read_of_what_it_wrote():
    c = fresh()
    d = Daemon(["--store", c.url(), "--count-max-age", "1s"])
    d.hit("/", ua=ua(1))
    eq(d.stop(), 0, "exit status")
    plant(c)
    a = Daemon(["--store", c.url(), "--count-max-age", "1s",
                "--commit-interval", "100ms"])
    eq(a.count("/big/7")["page"]["views"], 3 * PLANT_DAYS,
       "a planted page on the node")

    def window(start):
        """Rows read while start() runs: the statistics of a session
        reach the server within about a second of its statements."""
        time.sleep(12)
        before = rows_read(c)
        out = start()
        time.sleep(12)
        return rows_read(c) - before, out

    def start_b():
        b = Daemon(["--store", c.url(), "--count-max-age", "1s",
                    "--commit-interval", "100ms"])
        b.hit("/big/3", ua=ua(2))
        b.hit("/big/3", ua=ua(3))
        b.hit("/nb", ua=ua(2))
        wait_flushed([b])
        return b

    # A node starts while a runs: b reads the whole copy; a must not.
    with_a, b = window(start_b)
    wait_for("b's hits on a", lambda: (
        a.count("/big/3")["page"] == {"views": 3 * PLANT_DAYS + 2,
                                      "visitors": 2 * PLANT_DAYS + 2} and
        a.count("/nb")["page"] == {"views": 1, "visitors": 1}) or None)
    j = a.count("/nb")
    eq((j["today"]["views"], j["today"]["visitors"]), (4, 3),
       "the site today on a, b's hits included")
    for n in (a, b):
        eq(n.stop(), 0, "exit status")
    # The same start alone: what a node's whole read costs.
    alone, b = window(start_b)
    eq(b.stop(), 0, "exit status")
    check(alone > PLANT_SERIES, "rows of a start alone: %d (the "
          "statistics count no whole read?)" % alone)
    check(with_a - alone < PLANT_SERIES // 4,
          "rows the running node read when another started: %d (%d with "
          "it, %d without; a whole read is %d)" % (
              with_a - alone, with_a, alone, alone))


# ----------------------------------------------- reset against flushes

def test_a_reset_racing_a_flush_keeps_visitors_exact():
    """The node keeps its copy an hour (count_max_age): what it learns
    of the reset, it learns from its flushes."""
    c = fresh()
    d = Daemon(["--store", c.url(), "--commit-interval", "100ms",
                "--count-max-age", "1h"])
    rnd = random.Random(7)
    pause = random.Random(8)
    # New visitors all along, each for a few hits: a flush after the
    # reset brings visitors the node never sent.
    hits = Hitter([d], lambda n: (0, rnd.choice(("/r", "/r", "/keep")),
                                  n // 3, None))
    try:
        time.sleep(1.5 * SCALE)
        offset = log_offset(c)
        # A few times, so that some reset meets a flush under way.
        for _ in range(3):
            rc, out, err = run_tallyctl("--store", c.url(), "reset",
                                        "--site", "default", "--path", "/r",
                                        "--yes")
            returned = time.monotonic()
            eq(rc, 0, "reset (stderr %r)" % err)
            time.sleep(pause.uniform(0.3, 0.8) * SCALE)
        time.sleep(1 * SCALE)
    finally:
        answered = hits.finish()
    wait_flushed([d])
    # Every visitor once more on the reset page: each must now be a
    # visitor of it, counted once since the last reset.
    visitors = sorted(set(v for _, _, v, _ in answered))
    for v in visitors:
        d.hit("/r", ua=ua(v))
    wait_flushed([d])
    no_deadlock(c, offset, "reset and flushes")
    page = ctl_json(c, "page", "/r")["page"]
    eq(page["visitors"], len(visitors), "visitors of /r since the reset")
    # The hits answered after the reset count, and none twice; those
    # answered before may count, whose flush came after it.
    after = sum(1 for tm, p, v, h in answered if p == "/r" and
                tm > returned)
    every = sum(1 for tm, p, v, h in answered if p == "/r")
    check(after + len(visitors) <= page["views"] <= every + len(visitors),
          "views of /r since the reset: %d, want %d to %d" % (
              page["views"], after + len(visitors), every + len(visitors)))
    # The site was not reset: every hit, every visitor.
    st = ctl_json(c, "stats")
    eq((st["today"]["views"], st["today"]["visitors"]),
       (len(answered) + len(visitors), len(visitors)), "the site today")
    # No visitor id is left without its count: each id of today is a
    # visitor counted on today's row of its page or site.
    eq(q(c, "SELECT count(*) FROM tally_visitors WHERE day = %d" % today()),
       q(c, "SELECT coalesce(sum(visitors), 0) FROM tally_counts WHERE "
         "day = %d" % today()), "visitor ids of today against visitors "
       "counted today")
    eq(d.stop(), 0, "exit status")
    ctl(c, "check")


if __name__ == "__main__":
    harness.main(globals(), setup=pgcluster.need_postgres)
