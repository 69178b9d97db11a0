#!/usr/bin/env python3
"""Several tallyd nodes on one PostgreSQL store (doc/scale-out.md).

One throwaway PostgreSQL 15 cluster for the file (pgcluster.py); every
case starts on an empty database and runs two or three real tallyd on
it. What is checked against the truth that the test itself keeps:
  - concurrent load through every node, visitors reaching several
    nodes: views, page visitors and site visitors exact, through
    tallyctl --store and through /count on every node;
  - kill -9 of a node: strict loses no answered hit, batch at most the
    hits of about one commit interval;
  - the database stopped for 10 s under load and started again:
    nothing lost, nothing doubled; batch nodes go on answering and
    /healthz stays 200, a strict node answers 503 meanwhile; past
    buffer_max a batch node answers 503 too;
  - /metrics with the shared store's metrics passes promtool;
  - the URL's password is never printed;
  - tallyctl against the database: export and import round trip byte
    for byte, set, reset, check, backup naming pg_dump;
  - midnight (faketime), twice: the nodes share each new day's salt;
    salts and visitor ids older than yesterday are erased.
test_pg_outage.py has more: nodes started without their database, reset
and the nodes' seen sets, the privacy scan of the server.
"""

import datetime
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import http.client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import pgcluster  # noqa: E402
from harness import (BROWSER_UA, Daemon, Failure, Skip, check, eq,  # noqa: E402
                     check_json_error, faketime_env, mkdtemp, run_tallyctl,
                     write_file)

SCALE = float(os.environ.get("TALLY_TIME_SCALE", "1"))
PATHS = ["/", "/a", "/b", "/news/1", "/news/2", "/about"]


def fresh():
    """The file's cluster with an empty database."""
    c = pgcluster.cluster()
    c.drop_db()
    return c


class AnyHealthDaemon(Daemon):
    """Ready once /healthz answers at all (503 while the database is
    away, for a strict node)."""
    READY = (200, 503)


def nodes(c, n, *extra, durability="batch"):
    """n tallyd on the cluster's database, a count_max_age of 1 s, so
    that other nodes' hits show within a second."""
    return [Daemon(["--store", c.url(), "--durability", durability,
                    "--count-max-age", "1s"] + list(extra))
            for _ in range(n)]


def ua(i):
    """The User-Agent of visitor i: one client address for all, so the
    visitor is told by its User-Agent."""
    return BROWSER_UA + " v%d" % i


class Truth:
    """What the answered hits add up to."""

    def __init__(self):
        self.lock = threading.Lock()
        self.views = {}             # path -> views answered 200
        self.page_visitors = {}     # path -> set of visitors
        self.visitors = set()
        self.answers = []           # (monotonic time, node index)
        self.refused = 0

    def add(self, path, visitor, node):
        with self.lock:
            self.views[path] = self.views.get(path, 0) + 1
            self.page_visitors.setdefault(path, set()).add(visitor)
            self.visitors.add(visitor)
            self.answers.append((time.monotonic(), node))

    def total(self):
        return sum(self.views.values())


def load(daemons, truth, stop, seed, visitors=60, per_thread=None,
         pick=None, ok_statuses=(200,)):
    """Sends hits until stop is set (or per_thread hits are sent): each
    to a node picked at random, from one of visitors visitors, on one
    of PATHS. Every 200 goes into truth; a 503 is refused."""
    rnd = random.Random(seed)
    conns = {}
    sent = 0
    while not stop.is_set() and (per_thread is None or sent < per_thread):
        i = pick(rnd) if pick else rnd.randrange(len(daemons))
        d = daemons[i]
        v = rnd.randrange(visitors)
        path = rnd.choice(PATHS)
        try:
            conn = conns.get(i)
            if conn is None:
                conn = conns[i] = http.client.HTTPConnection(
                    "127.0.0.1", d.port, timeout=30)
            conn.request("GET", "/hit?" + harness.query(path=path),
                         headers={"User-Agent": ua(v)})
            r = conn.getresponse()
            body = r.read()
        except (OSError, http.client.HTTPException):
            conns.pop(i, None)
            if not d.alive():
                continue
            time.sleep(0.01)
            continue
        sent += 1
        if r.status == 200:
            j = json.loads(body)
            check(j["counted"], "hit not counted: %r" % j)
            truth.add(path, v, i)
        elif r.status == 503:
            check_json_error(r.status, {k.lower(): val for k, val in
                                        r.getheaders()}, body, 503, "refused")
            with truth.lock:
                truth.refused += 1
        else:
            raise Failure("hit: status %d %r" % (r.status, body[:200]))
    for conn in conns.values():
        conn.close()


def run_load(daemons, threads=4, seconds=None, per_thread=None, **kw):
    truth = kw.pop("truth", None) or Truth()
    stop = threading.Event()
    errors = []

    def worker(n):
        try:
            load(daemons, truth, stop, n, per_thread=per_thread, **kw)
        except Exception as e:          # noqa: BLE001
            errors.append(e)
            stop.set()

    ts = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in ts:
        t.start()
    return truth, stop, ts, errors


def finish(stop, ts, errors):
    stop.set()
    for t in ts:
        t.join(120)
    if errors:
        raise errors[0]


def ctl_json(c, *args):
    rc, out, err = run_tallyctl("--store", c.url(), "--json", *args)
    eq(rc, 0, "tallyctl %s (stderr %r)" % (" ".join(args), err))
    return json.loads(out)


def stored(c):
    """(views per path, visitors per path, site views, site visitors)
    of today, from tallyctl --store export."""
    rc, out, err = run_tallyctl("--store", c.url(), "export")
    eq(rc, 0, "tallyctl export (stderr %r)" % err)
    views, vis = {}, {}
    site = (0, 0)
    for line in out.splitlines()[1:]:
        s, day, path, v, u = line.split(",")
        if path == "*":
            site = (int(v), int(u))
        else:
            views[path] = views.get(path, 0) + int(v)
            vis[path] = vis.get(path, 0) + int(u)
    return views, vis, site


def check_exact(c, truth, daemons=()):
    want_views = dict(truth.views)
    want_vis = {p: len(s) for p, s in truth.page_visitors.items()}
    views, vis, site = stored(c)
    eq(views, want_views, "views per page in the database")
    eq(vis, want_vis, "visitors per page in the database")
    eq(site, (truth.total(), len(truth.visitors)), "site views, visitors")
    st = ctl_json(c, "stats")
    eq((st["today"]["views"], st["today"]["visitors"]),
       (truth.total(), len(truth.visitors)), "tallyctl stats today")
    # Every node shows the same, once its copy is refreshed.
    for d in daemons:
        deadline = time.monotonic() + 10 * SCALE
        while True:
            got = {p: d.count(p) for p in want_views}
            ok = all(g["page"]["views"] == want_views[p] and
                     g["page"]["visitors"] == want_vis[p] and
                     g["today"]["views"] == truth.total() and
                     g["today"]["visitors"] == len(truth.visitors)
                     for p, g in got.items())
            if ok:
                break
            if time.monotonic() > deadline:
                raise Failure("node %d's /count differs from the truth: "
                              "%r, want views %r visitors %r, site %d/%d"
                              % (d.port, {p: (g["page"], g["today"])
                                          for p, g in got.items()},
                                 want_views, want_vis, truth.total(),
                                 len(truth.visitors)))
            time.sleep(0.2)


def metric(d, name):
    st, _, body = d.request("GET", "/metrics")
    eq(st, 200, "metrics")
    m = re.search(r"^%s (\S+)$" % re.escape(name), body.decode(), re.M)
    check(m is not None, "no %s in /metrics" % name)
    return float(m.group(1))


def wait_flushed(daemons, timeout=30):
    deadline = time.monotonic() + timeout * SCALE
    for d in daemons:
        while metric(d, "tally_store_backlog_hits") != 0:
            if time.monotonic() > deadline:
                raise Failure("node %d keeps a backlog: %s" % (
                    d.port, d.stderr()[-1000:]))
            time.sleep(0.1)


def healthz(d):
    st, hd, body = d.request("GET", "/healthz")
    return st, body


# ---------------------------------------------------------------- cases

def test_three_nodes_count_exactly():
    c = fresh()
    ds = nodes(c, 3)
    truth, stop, ts, errors = run_load(ds, threads=6, per_thread=400,
                                       visitors=80)
    for t in ts:
        t.join(300)
    finish(stop, ts, errors)
    eq(truth.refused, 0, "hits refused")
    check(truth.total() == 2400, "hits answered: %d" % truth.total())
    # Visitors reached several nodes: the store, not one node, decided.
    wait_flushed(ds)
    check_exact(c, truth, ds)
    for d in ds:
        eq(d.stop(), 0, "exit status")


def test_a_node_stopped_flushes_what_it_answered():
    c = fresh()
    ds = nodes(c, 2, "--commit-interval", "1h")
    truth, stop, ts, errors = run_load(ds, threads=2, per_thread=100)
    for t in ts:
        t.join(120)
    finish(stop, ts, errors)
    # An hour's interval: nothing is flushed until SIGTERM.
    for d in ds:
        eq(d.stop(), 0, "exit status")
    check_exact(c, truth)


def test_kill9_strict_loses_no_answered_hit():
    c = fresh()
    ds = nodes(c, 2, durability="strict")
    truth, stop, ts, errors = run_load(ds, threads=4, visitors=40)
    time.sleep(3 * SCALE)
    ds[0].kill9()
    time.sleep(1 * SCALE)
    finish(stop, ts, errors)
    check(truth.total() > 100, "hits answered: %d" % truth.total())
    wait_flushed(ds[1:])
    # Every answered hit is there; a hit committed but not answered
    # (the node died first) may be too: at most one a client thread.
    views, vis, site = stored(c)
    for p, v in truth.views.items():
        check(views.get(p, 0) >= v, "%s: %d views stored, %d answered"
              % (p, views.get(p, 0), v))
    check(site[0] - truth.total() <= 4, "%d views stored, %d answered"
          % (site[0], truth.total()))
    check(len(truth.visitors) <= site[1] <= len(truth.visitors) + 4,
          "%d visitors stored, %d answered" % (site[1], len(truth.visitors)))


def test_kill9_batch_loses_at_most_an_interval():
    c = fresh()
    ds = nodes(c, 2, "--commit-interval", "200ms")
    truth, stop, ts, errors = run_load(ds, threads=4, visitors=40)
    time.sleep(3 * SCALE)
    killed_at = time.monotonic()
    ds[0].kill9()
    time.sleep(0.5 * SCALE)
    finish(stop, ts, errors)
    wait_flushed(ds[1:])
    views, _, site = stored(c)
    lost = truth.total() - site[0]
    last = sum(1 for t, n in truth.answers
               if n == 0 and t > killed_at - 0.2 - 0.1)
    check(0 <= lost <= last, "lost %d hits of the killed node; it answered "
          "%d in its last interval (+100 ms)" % (lost, last))
    check(all(views.get(p, 0) <= v for p, v in truth.views.items()),
          "a page has more views than were answered: %r vs %r"
          % (views, truth.views))


def test_database_outage_loses_nothing_and_doubles_nothing():
    c = fresh()
    ds = nodes(c, 2)
    strict = nodes(c, 1, durability="strict")[0]
    truth, stop, ts, errors = run_load(ds, threads=4, visitors=50)
    time.sleep(2 * SCALE)
    c.stop("fast")
    down_at = time.monotonic()
    # The batch nodes keep answering; their health stays good; the
    # strict one refuses hits and says so.
    time.sleep(1.5)
    for d in ds:
        eq(healthz(d)[0], 200, "a batch node's /healthz, database down")
    st, hd, body = strict.request("GET", "/hit?path=/s",
                                  {"User-Agent": ua(999)})
    check_json_error(st, hd, body, 503, "a strict hit, database down")
    eq(healthz(strict)[0], 503, "a strict node's /healthz, database down")
    during = truth.total()
    time.sleep(max(0, 10 - (time.monotonic() - down_at)))
    check(truth.total() > during, "batch nodes stopped answering")
    backlog = metric(ds[0], "tally_store_backlog_hits")
    check(backlog > 0, "no backlog while the database is down")
    c.start()
    time.sleep(3 * SCALE)
    finish(stop, ts, errors)
    eq(truth.refused, 0, "batch hits refused")
    wait_flushed(ds)
    check_exact(c, truth, ds)
    # The strict node found the database again by itself.
    deadline = time.monotonic() + 10 * SCALE
    while healthz(strict)[0] != 200:
        check(time.monotonic() < deadline, "the strict node stays 503")
        time.sleep(0.1)
    strict.hit("/s", ua=ua(999))
    check(metric(ds[0], "tally_store_reconnects_total") >= 1,
          "no reconnect counted")


def test_buffer_full_refuses_hits():
    c = fresh()
    d = nodes(c, 1, "--buffer-max", "20")[0]
    d.hit("/a")
    # The hit above is in the database: the buffer then holds only the
    # 20 below. The node finds the database gone by its next refresh
    # (count_max_age 1 s).
    wait_flushed([d])
    c.stop("fast")
    try:
        time.sleep(2.5)
        for i in range(20):
            d.hit("/a", ua=ua(i))
        st, hd, body = d.request("GET", "/hit?path=/a",
                                 {"User-Agent": ua(100)})
        check_json_error(st, hd, body, 503, "a hit past buffer_max")
        st, body = healthz(d)
        eq(st, 503, "/healthz with a full buffer")
        check(b"buffer_max" in body, "/healthz says why: %r" % body)
    finally:
        c.start()
    wait_flushed([d])
    eq(healthz(d)[0], 200, "/healthz once flushed")
    views, vis, site = stored(c)
    eq(views, {"/a": 21}, "views kept through the outage")
    eq(site[1], 21, "visitors kept through the outage")


def test_metrics_pass_promtool():
    promtool = shutil.which("promtool")
    if promtool is None:
        raise Skip("promtool not installed (Debian package prometheus)")
    c = fresh()
    d = nodes(c, 1)[0]
    for i in range(5):
        d.hit("/m", ua=ua(i))
    wait_flushed([d])
    st, _, body = d.request("GET", "/metrics")
    eq(st, 200, "/metrics")
    text = body.decode()
    for name in ("tally_store_backlog_hits", "tally_store_flush_seconds_count",
                 "tally_store_reconnects_total"):
        check(re.search(r"^%s " % name, text, re.M), "no %s" % name)
    check(metric(d, "tally_store_flush_seconds_count") >= 1, "no flush seen")
    p = subprocess.run([promtool, "check", "metrics"], input=body,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    out = (p.stdout + p.stderr).decode()
    eq((p.returncode, out.strip()), (0, ""), "promtool check metrics")
    # An LMDB node has none of them.
    lm = Daemon()
    st, _, body = lm.request("GET", "/metrics")
    check(b"tally_store_backlog_hits" not in body,
          "an LMDB store shows the shared store's metrics")


def test_the_password_is_never_shown():
    c = fresh()
    secret = "Pw-n0t-to-be-seen"
    url = "postgresql://tally:%s@127.0.0.1:%d/tally" % (secret, c.port)
    # Checked, started, failing: never the password.
    rc, out, err = harness.run_tallyd("-n", "--store", url)
    eq(rc, 0, "tallyd -n (stderr %r)" % err)
    check(secret not in out + err, "tallyd -n shows the password")
    conf = write_file(os.path.join(mkdtemp(), "t.conf"),
                      "[store]\nurl = %s\nbuffer_max = 5\n" % url)
    d = Daemon(["--config", conf, "--count-max-age", "1s"])
    d.hit("/p")
    c.stop("fast")
    try:
        for i in range(6):
            d.request("GET", "/hit?path=/p", {"User-Agent": ua(i)})
        st, body = healthz(d)
        eq(st, 503, "/healthz with a full buffer")
        check(secret.encode() not in body, "/healthz shows the password")
    finally:
        c.start()
    wait_flushed([d])
    d.stop()
    check(secret not in d.stderr(), "the log shows the password")
    check(re.search(r"store postgresql://tally:\*\*\*@", d.stderr()),
          "the log names the store: %s" % d.stderr()[-500:])
    bad = "postgresql://tally:%s@127.0.0.1:%d/tally" % (
        secret, harness.free_port())
    rc, out, err = run_tallyctl("--store", bad, "stats")
    eq(rc, 1, "tallyctl on a closed port (stderr %r)" % err)
    check(secret not in out + err, "tallyctl shows the password: %r" % err)
    rc, out, err = run_tallyctl("--config", conf, "backup", "/nonexistent")
    check(secret not in out + err, "tallyctl backup shows the password")
    # A bad URL in a file is named without its value.
    conf2 = write_file(os.path.join(mkdtemp(), "t.conf"),
                       "[store]\nurl = mysql://u:%s@h/db\n" % secret)
    rc, out, err = harness.run_tallyd("-n", "--config", conf2)
    eq(rc, 78, "tallyd -n, bad url")
    check(secret not in out + err and "url" in err,
          "bad url message: %r" % err)


def test_tallyctl_store_flags():
    c = fresh()
    rc, out, err = run_tallyctl("--store", c.url(), "--data", mkdtemp(),
                                "stats")
    eq(rc, 2, "--store with --data (stderr %r)" % err)
    rc, out, err = run_tallyctl("--store", "/var/lib/tally", "stats")
    eq(rc, 2, "--store with a directory (stderr %r)" % err)
    # The configuration's url is the store.
    conf = write_file(os.path.join(mkdtemp(), "t.conf"),
                      "[store]\nurl = %s\n" % c.url())
    d = nodes(c, 1)[0]
    d.hit("/x")
    d.stop()
    rc, out, err = run_tallyctl("--config", conf, "--json", "page", "/x")
    eq(rc, 0, "tallyctl --config page (stderr %r)" % err)
    eq(json.loads(out)["page"]["views"], 1, "views through the config")


def test_tallyctl_commands_on_the_database():
    c = fresh()
    ds = nodes(c, 2)
    for i in range(30):
        ds[i % 2].hit(PATHS[i % len(PATHS)], ua=ua(i % 7))
    for d in ds:
        d.stop()
    url = c.url()
    rc, out, err = run_tallyctl("--store", url, "set", "--site", "default",
                                "--path", "/old", "--views", "10",
                                "--visitors", "3", "--create")
    eq(rc, 0, "set (stderr %r)" % err)
    eq(ctl_json(c, "page", "/old")["page"], {"views": 10,
                                             "visitors": 3}, "set /old")
    rc, out, err = run_tallyctl("--store", url, "check")
    eq(rc, 0, "check (stdout %r, stderr %r)" % (out, err))
    rc, exp1, err = run_tallyctl("--store", url, "export")
    eq(rc, 0, "export (stderr %r)" % err)
    f = write_file(os.path.join(mkdtemp(), "e.csv"), exp1)
    # Into another database: the same export back, byte for byte.
    c.psql("DROP DATABASE IF EXISTS copy WITH (FORCE)", db="postgres")
    c.psql("CREATE DATABASE copy OWNER tally", db="postgres")
    url2 = c.url(db="copy")
    rc, out, err = run_tallyctl("--store", url2, "import", f)
    eq(rc, 0, "import (stderr %r)" % err)
    rc, exp2, err = run_tallyctl("--store", url2, "export")
    eq(rc, 0, "export of the copy (stderr %r)" % err)
    eq(exp2, exp1, "export after import")
    # And into LMDB the same again: the CSV is the store's, not PG's.
    data = os.path.join(mkdtemp(), "data")
    eq(run_tallyctl("--data", data, "import", f)[0], 0, "import to LMDB")
    eq(run_tallyctl("--data", data, "export")[1], exp1, "LMDB export")
    rc, out, err = run_tallyctl("--store", url, "reset", "--site",
                                "default", "--path", "/old", "--yes")
    eq(rc, 0, "reset (stderr %r)" % err)
    eq(ctl_json(c, "page", "/old")["page"], {"views": 0, "visitors": 0},
       "page of a reset path")
    eq(run_tallyctl("--store", url, "check")[0], 0, "check after reset")
    # backup writes nothing: it shows the pg_dump command.
    dest = os.path.join(mkdtemp(), "b")
    rc, out, err = run_tallyctl("--store", url, "backup", dest)
    check("pg_dump" in out + err, "backup names pg_dump: %r %r" % (out, err))
    check(not os.path.exists(dest), "backup wrote %s" % dest)


def day_number(iso):
    return (datetime.date.fromisoformat(iso) - datetime.date(1970, 1, 1)).days


def wait_day(d, day, timeout=30):
    """Waits until the node's clock has reached day (by /count, which
    counts nothing)."""
    deadline = time.monotonic() + timeout
    while d.count("/")["day"] != day:
        check(time.monotonic() < deadline, "node %d never reached %s"
              % (d.port, day))
        time.sleep(0.2)


def test_midnight_one_salt_for_all_nodes():
    """Two midnights under faketime: the nodes share each new day's salt,
    and salts and visitor ids older than yesterday are erased, as with
    LMDB (test_salts.py)."""
    if not os.path.exists(harness.FAKETIME_LIB):
        raise Skip("libfaketime not found at %s" % harness.FAKETIME_LIB)
    c = fresh()

    def run(day, before, after):
        # Ten seconds before midnight: a loaded machine may take a few
        # to start two nodes.
        env = faketime_env(day + " 23:59:50")
        ds = [Daemon(["--store", c.url(), "--timezone", "UTC",
                      "--count-max-age", "1s"], env=env) for _ in range(2)]
        # One visitor on both nodes before midnight: one visitor.
        for d in ds:
            j = d.hit("/m", ua=ua(1))
            eq(j["day"], before, "day before midnight")
        for d in ds:
            wait_day(d, after)
        # And after: one visitor of the new day, on both nodes again.
        for d in ds:
            j = d.hit("/m", ua=ua(1))
            eq(j["day"], after, "day after midnight")
        for d in ds:
            eq(d.stop(), 0, "exit status")

    def salt_days():
        rows = c.psql("SELECT day, count(*) FROM tally_salts GROUP BY day "
                      "ORDER BY day").split()
        check(all(r.endswith("|1") for r in rows),
              "one salt a day, whichever node made it first: %r" % rows)
        return [int(r.split("|")[0]) for r in rows]

    def visitor_days():
        return [int(r) for r in c.psql(
            "SELECT DISTINCT day FROM tally_visitors ORDER BY day").split()]

    run("2026-11-26", "2026-11-26", "2026-11-27")
    rc, out, err = run_tallyctl("--store", c.url(), "export")
    rows = sorted(l for l in out.splitlines()[1:] if ",*," in l)
    eq(rows, ["default,2026-11-26,*,2,1", "default,2026-11-27,*,2,1"],
       "site rows of both days")
    d26, d27, d28 = (day_number("2026-11-%d" % n) for n in (26, 27, 28))
    eq(salt_days(), [d26, d27], "salts after the first midnight")
    eq(visitor_days(), [d26, d27], "visitor ids after the first midnight")
    # A day later: 2026-11-26 is now older than yesterday, and its salt
    # and visitor ids go at midnight; yesterday's stay.
    run("2026-11-27", "2026-11-27", "2026-11-28")
    eq(salt_days(), [d27, d28], "salts after the second midnight")
    eq(visitor_days(), [d27, d28], "visitor ids after the second midnight")
    rc, out, err = run_tallyctl("--store", c.url(), "export")
    rows = sorted(l for l in out.splitlines()[1:] if ",*," in l)
    eq(rows, ["default,2026-11-26,*,2,1", "default,2026-11-27,*,4,1",
              "default,2026-11-28,*,2,1"], "site rows of the three days")


if __name__ == "__main__":
    harness.main(globals(), setup=pgcluster.need_postgres)
