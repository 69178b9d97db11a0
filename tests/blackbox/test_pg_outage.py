#!/usr/bin/env python3
"""Nodes on a PostgreSQL store without it, and what they keep of it
(doc/scale-out.md), on the throwaway cluster of pgcluster.py:
  - nodes started while the database is down: 503 for hits and /healthz
    in both durabilities, reads from an empty copy, READY=1 with a status
    saying so; once it is up, exact counts without a restart; a newer
    schema found then stops the node;
  - a batch node past a midnight without its database refuses hits until
    it has read the new day's salt;
  - tallyctl reset: a visitor of the reset page counts again on every
    node;
  - the privacy scan of test_privacy.py over the server's files (WAL
    included) and its log, with every statement logged.
"""

import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import pgcluster  # noqa: E402
from harness import (Daemon, Failure, Skip, check, eq,  # noqa: E402
                     check_json_error, faketime_env, run_tallyctl)
from test_pg import (PATHS, SCALE, AnyHealthDaemon, Truth,  # noqa: E402
                     check_exact, ctl_json, fresh, healthz, metric, nodes,
                     ua, wait_day, wait_flushed)
from test_systemd import NotifySocket, built_with_systemd  # noqa: E402


def wait_healthy(d, timeout=15):
    deadline = time.monotonic() + timeout * SCALE
    while True:
        st, body = healthz(d)
        if st == 200:
            return
        check(d.alive(), "tallyd died: %s" % d.stderr()[-1500:])
        check(time.monotonic() < deadline, "node %d stays unhealthy: %d %r"
              % (d.port, st, body[:300]))
        time.sleep(0.1)


def wait_exit(d, timeout=15):
    """The node's exit status, once it has stopped by itself."""
    try:
        return d.proc.wait(timeout * SCALE)
    except subprocess.TimeoutExpired:
        raise Failure("tallyd still runs: %s" % d.stderr()[-1500:])


def test_a_node_starts_while_the_database_is_down():
    c = fresh()
    # The schema is made by the first node to reach the database: none
    # has yet.
    c.stop("fast")
    try:
        ns = NotifySocket()
        ds = [AnyHealthDaemon(["--store", c.url(), "--durability", dur,
                               "--count-max-age", "1s"],
                              env={"NOTIFY_SOCKET": ns.path})
              for dur in ("batch", "strict")]
        time.sleep(0.5)
        for d in ds:
            st, hd, body = d.request("GET", "/healthz")
            check_json_error(st, hd, body, 503,
                             "/healthz, the database never reached")
            check(b"not counting" in body, "/healthz says why: %r" % body)
            # Refused in both modes: without the day's shared salt, a
            # visitor's id would differ from other nodes'.
            st, hd, body = d.request("GET", "/hit?path=/early",
                                     {"User-Agent": ua(1)})
            check_json_error(st, hd, body, 503, "a hit, database never "
                             "reached (port %d)" % d.port)
            # Reads answer, from the empty copy.
            j = d.count("/early")
            eq((j["page"]["views"], j["today"]["views"]), (0, 0),
               "/count, database never reached")
            check("could not connect" in d.stderr() or
                  "Connection refused" in d.stderr(),
                  "the log says the database is away: %s"
                  % d.stderr()[-800:])
        # systemd: serving (READY=1), the status says it does not count.
        if built_with_systemd():
            check(ns.wait_for("READY", "1", timeout=5) is not None,
                  "no READY=1 while the database is down")
            check(ns.wait_for("STATUS", None, timeout=5) is not None and
                  any("not counting" in f.get("STATUS", "")
                      for _, f, _ in ns.messages),
                  "status while waiting: %r" % ns.messages)
    finally:
        c.start()
    # No restart: each node connects, makes or checks the schema, reads
    # the salt and its copy, and counts.
    for d in ds:
        wait_healthy(d)
    if built_with_systemd():
        check(ns.wait_for("STATUS", None, timeout=5) is not None and
              any(f.get("STATUS", "").startswith("counting")
                  for _, f, _ in ns.messages[-4:]),
              "status once counting: %r" % ns.messages[-4:])
    ns.close()
    eq(metric(ds[0], "tally_store_reconnects_total"), 0,
       "a first connection counted as a reconnection")
    # Exactly: visitors reaching both nodes are one visitor each (one
    # salt), every answered hit is there once.
    truth = Truth()
    for i in range(40):
        d = ds[i % 2]
        path = PATHS[i % 3]
        j = d.hit(path, ua=ua(i % 5))
        check(j["counted"], "hit %d not counted: %r" % (i, j))
        truth.add(path, i % 5, i % 2)
    wait_flushed(ds)
    check_exact(c, truth, ds)
    salts = c.psql("SELECT count(*) FROM tally_salts")
    eq(salts, "1", "salts in the database")
    for d in ds:
        eq(d.stop(), 0, "exit status")


def test_a_newer_schema_found_late_stops_the_node():
    c = fresh()
    d = nodes(c, 1)[0]
    d.hit("/v")
    eq(d.stop(), 0, "exit status")
    c.psql("UPDATE tally_meta SET val = convert_to('99', 'UTF8') "
           "WHERE key = 'schema'")
    c.stop("fast")
    try:
        d = AnyHealthDaemon(["--store", c.url(), "--count-max-age", "1s"])
        eq(healthz(d)[0], 503, "/healthz before the database answers")
    finally:
        c.start()
    # Found once the database answers: the node stops as at start.
    rc = wait_exit(d)
    eq(rc, 1, "exit status: %s" % d.stderr()[-800:])
    check(re.search(r"schema version 99 is newer.*stopping", d.stderr()),
          "the log says why: %s" % d.stderr()[-800:])
    # And at start, as before.
    rc, out, err = harness.run_tallyd("--listen", "127.0.0.1:%d"
                                      % harness.free_port(), "--store",
                                      c.url())
    check(rc != 0 and "newer" in err, "start on a newer schema: %d %r"
          % (rc, err[-500:]))


def test_a_reset_visitor_counts_again():
    c = fresh()
    ds = nodes(c, 2)
    # Visitor 1 on /r and /keep through both nodes, visitor 2 on /keep.
    for d in ds:
        d.hit("/r", ua=ua(1))
        d.hit("/keep", ua=ua(1))
    ds[0].hit("/keep", ua=ua(2))
    wait_flushed(ds)

    def page(d, path):
        deadline = time.monotonic() + 10 * SCALE
        while True:
            j = d.count(path)
            if j["page"]["views"] == 0 or path != "/r" or \
                    time.monotonic() > deadline:
                return j
            time.sleep(0.1)

    rc, out, err = run_tallyctl("--store", c.url(), "reset", "--site",
                                "default", "--path", "/r", "--yes")
    eq(rc, 0, "reset (stderr %r)" % err)
    # Each node finds the reset at its next refresh (count_max_age 1 s).
    for d in ds:
        eq(page(d, "/r")["page"], {"views": 0, "visitors": 0},
           "/r on node %d after the reset" % d.port)
    # The same visitor, the same day: a visitor of the reset page again,
    # on either node, once.
    for d in ds:
        d.hit("/r", ua=ua(1))
        d.hit("/keep", ua=ua(1))
    wait_flushed(ds)
    eq(ctl_json(c, "page", "/r")["page"], {"views": 2, "visitors": 1},
       "/r after the reset")
    eq(ctl_json(c, "page", "/keep")["page"], {"views": 5, "visitors": 2},
       "/keep, not reset")
    st = ctl_json(c, "stats")
    eq((st["today"]["views"], st["today"]["visitors"]), (9, 2),
       "the site, not reset")
    # A whole site reset: every visitor is new again.
    rc, out, err = run_tallyctl("--store", c.url(), "reset", "--site",
                                "default", "--yes")
    eq(rc, 0, "reset --site (stderr %r)" % err)
    for d in ds:
        deadline = time.monotonic() + 10 * SCALE
        while d.count("/keep")["today"]["views"] != 0:
            check(time.monotonic() < deadline, "node %d still shows the "
                  "site" % d.port)
            time.sleep(0.1)
    for d in ds:
        d.hit("/keep", ua=ua(2))
    wait_flushed(ds)
    eq(ctl_json(c, "page", "/keep")["page"], {"views": 2, "visitors": 1},
       "/keep after the site's reset")
    st = ctl_json(c, "stats")
    eq((st["today"]["views"], st["today"]["visitors"]), (2, 1),
       "the site after its reset")
    for d in ds:
        eq(d.stop(), 0, "exit status")


def test_midnight_without_the_database_refuses_hits():
    """A batch node goes on counting through an outage, but not past a
    midnight it cannot read the new salt at: then it refuses hits and
    says so, and counts again once the database answers."""
    if not os.path.exists(harness.FAKETIME_LIB):
        raise Skip("libfaketime not found at %s" % harness.FAKETIME_LIB)
    c = fresh()
    d = Daemon(["--store", c.url(), "--timezone", "UTC",
                "--count-max-age", "1s"],
               env=faketime_env("2026-11-26 23:59:45"))
    eq(d.hit("/n", ua=ua(1))["day"], "2026-11-26", "day before midnight")
    wait_flushed([d])
    c.stop("fast")
    try:
        eq(d.hit("/n", ua=ua(2))["day"], "2026-11-26", "a hit kept")
        eq(healthz(d)[0], 200, "/healthz, database down, same day")
        wait_day(d, "2026-11-27")
        # The committer's next look finds no salt for the new day.
        time.sleep(0.5)
        st, hd, body = d.request("GET", "/hit?path=/n",
                                 {"User-Agent": ua(3)})
        check_json_error(st, hd, body, 503, "a hit past midnight, no salt")
        st, hd, body = d.request("GET", "/healthz")
        check_json_error(st, hd, body, 503, "/healthz past midnight")
        check(b"not counting" in body, "/healthz says why: %r" % body)
    finally:
        c.start()
    wait_healthy(d)
    eq(d.hit("/n", ua=ua(3))["day"], "2026-11-27", "day after midnight")
    wait_flushed([d])
    eq(d.stop(), 0, "exit status")
    rc, out, err = run_tallyctl("--store", c.url(), "export")
    rows = sorted(l for l in out.splitlines()[1:] if ",*," in l)
    eq(rows, ["default,2026-11-26,*,2,2", "default,2026-11-27,*,1,1"],
       "site rows: the buffered hit counted, the refused one not")


def test_privacy_scan_of_the_database():
    """test_privacy.py's scan, over the PostgreSQL server: its data
    directory (tables, WAL) and its log, with every statement the nodes
    send logged with its parameters, after every kind of request with a
    recognisable address, User-Agent and referrer, through two nodes:
    no address, no User-Agent, of the referrer its host alone; in the
    nodes' logs and working directories, none of them."""
    import test_privacy as tp
    c = fresh()
    c.psql("ALTER DATABASE tally SET log_statement = 'all'", db="postgres")
    log_start = os.path.getsize(c.logfile)
    ds = nodes(c, 2, "--trusted-proxies", "127.0.0.1/32,::1")
    for d in ds:
        tp.exercise(d, shared=True)
    wait_flushed(ds)
    # Another run of the nodes on the same database: a reopened store
    # (salts read back, the copy read again) is searched too.
    for d in ds:
        eq(d.stop(), 0, "exit status")
        d.start()
        tp.exercise(d, shared=True)
    wait_flushed(ds)
    for d in ds:
        eq(d.stop(), 0, "exit status")
    # What the database decided: one IPv4 and one IPv6 client.
    eq(ctl_json(c, "stats")["today"]["visitors"], 2, "visitors")
    rc, out, err = run_tallyctl("--store", c.url(), "--json", "referrers")
    eq(rc, 0, "tallyctl referrers (stderr %r)" % err)
    eq([r["host"] for r in json.loads(out)], [tp.REF_HOST],
       "the referrers kept: the host alone")
    # Every page the server holds on disk.
    c.psql("CHECKPOINT", db="postgres")
    files = list(tp.files_under(c.datadir))
    check(any(tp.PATH.encode() in open(f, "rb").read() for f in files),
          "the page path %r is in no file of the data directory: the "
          "search would not see the tables" % tp.PATH)
    check(tp.search(files, c.datadir, {"host": tp.REF_HOST.encode()}),
          "the referrer's host is in no file of the data directory: the "
          "search would not see referrers")
    found = tp.search(files, c.datadir, tp.store_needles())
    check(not found, "found in the database's files: %s"
          % ", ".join("%s in %s" % (n, f) for f, n in found))
    # The server's log: what the nodes sent, statement by statement.
    with open(c.logfile, "rb") as f:
        f.seek(log_start)
        log = f.read()
    check(b"FLUSH" in log.upper() or b"tally_visitors" in log,
          "the server log holds no statement of the nodes: %r"
          % log[-500:])
    found = [n for n, v in tp.store_needles().items()
             if v in log or (v.isascii() and v.lower() in log.lower())]
    check(not found, "found in the server's log: %s" % ", ".join(found))
    for d in ds:
        found = tp.search(list(tp.files_under(d.cwd)), d.cwd)
        check(not found, "found in a node's working directory or log: %s"
              % ", ".join("%s in %s" % (n, f) for f, n in found))


if __name__ == "__main__":
    harness.main(globals(), setup=pgcluster.need_postgres)
