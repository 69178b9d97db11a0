#!/usr/bin/env python3
"""The shared store's flush, refresh and upkeep, on a real cluster:

  - a flush is one statement, also when it brings new series;
  - a node's refresh reads what changed, not the whole database, and
    still shows tallyctl's set, import and reset;
  - a visitor id that two nodes insert at once counts once, and
    neither flush fails;
  - a flush updates the running totals in place (HOT);
  - a database of schema version 1 or 2 is migrated at open;
  - the ledger entries of nodes gone for good are pruned;
  - the day's cap of referring hosts holds across nodes.
"""

import http.client
import json
import os
import random
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import pgcluster  # noqa: E402
from harness import (BROWSER_UA, Daemon, Failure, check, eq,  # noqa: E402
                     run_tallyctl)

SCALE = float(os.environ.get("TALLY_TIME_SCALE", "1"))


def fresh():
    c = pgcluster.cluster()
    c.drop_db()
    return c


def ua(i):
    return BROWSER_UA + " v%d" % i


def ctl(c, *args, want=0, input=None):
    rc, out, err = run_tallyctl("--store", c.url(), *args,
                                input=input.encode() if input else None)
    eq(rc, want, "tallyctl %s (stdout %r, stderr %r)" % (
        " ".join(args), out[-500:], err[-500:]))
    return out


def export_rows(c):
    return ctl(c, "export").splitlines()[1:]


def wait_for(what, cond, timeout=15):
    deadline = time.monotonic() + timeout * SCALE
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise Failure("waited in vain for %s" % what)
        time.sleep(0.1)


def q(c, sql):
    return c.psql(sql, user=pgcluster.USER)


def today():
    return int(time.time() // 86400)


# ------------------------------------------------- one statement per flush

def log_statements(c, on):
    """Every statement of the cluster into its log, each line prefixed
    with the application name of its client (the node's name)."""
    if on:
        c.psql("ALTER SYSTEM SET log_statement = 'all'", db="postgres")
        c.psql("ALTER SYSTEM SET log_line_prefix = '%a|'", db="postgres")
    else:
        c.psql("ALTER SYSTEM RESET log_statement", db="postgres")
        c.psql("ALTER SYSTEM RESET log_line_prefix", db="postgres")
    c.psql("SELECT pg_reload_conf()", db="postgres")
    time.sleep(0.5)


def test_a_flush_with_new_series_is_one_statement():
    c = fresh()
    url = c.url(application_name="flushnode")
    d = Daemon(["--store", url, "--commit-interval", "200ms",
                "--count-max-age", "1h"])
    d.hit("/warm", ua=ua(0))
    wait_for("the first flush", lambda: any(
        ",/warm," in r for r in export_rows(c)))
    log_statements(c, True)
    try:
        with open(c.logfile, "rb") as f:
            f.seek(0, 2)
            start = f.tell()
        # New pages (new series), new visitors, a new referrer.
        for i, p in enumerate(("/new/1", "/new/2", "/new/3")):
            d.hit(p, ua=ua(10 + i), headers=None)
        d.request("GET", "/hit?" + harness.query(
            path="/new/4", referrer="https://ref.example/x"),
            {"User-Agent": ua(20)})
        wait_for("the flush of the new pages", lambda: sum(
            ",/new/" in r for r in export_rows(c)) == 4)
        time.sleep(0.5)
        with open(c.logfile, "rb") as f:
            f.seek(start)
            log = f.read().decode("utf-8", "replace")
    finally:
        log_statements(c, False)
    mine = [ln for ln in log.splitlines() if ln.startswith("flushnode|")
            and ("statement: " in ln or "execute " in ln)]
    flushes = [ln for ln in mine if "tally_ledger AS l" in ln]
    check(len(flushes) >= 1, "no flush in the log: %r" % log[-2000:])
    eq(len(mine), len(flushes), "statements of the node (%r)"
       % [ln[:120] for ln in mine])
    # The node learned the new series' ids from the flush's answer.
    for i, p in enumerate(("/new/1", "/new/2", "/new/3")):
        eq(d.count(p)["page"]["views"], 1, "views of %s on the node" % p)
    eq(d.stop(), 0, "exit status")
    ctl(c, "check")


# ------------------------------------- one visitor id from two nodes at once

class Session:
    """A psql session of its own, kept open: statements sent one by one
    (a transaction held while the nodes flush)."""

    def __init__(self, c):
        psql = pgcluster.binary("psql")
        self.p = subprocess.Popen(
            [psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h",
             c.sockdir, "-p", str(c.port), "-U", pgcluster.USER, "-d",
             pgcluster.DB], stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def send(self, sql):
        self.p.stdin.write((sql + "\n").encode())
        self.p.stdin.flush()

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=30)


def waiting(c, node, event):
    """Whether node's statement waits for a lock of the kind event."""
    return q(c, "SELECT count(*) FROM pg_stat_activity WHERE "
             "application_name = '%s' AND wait_event = '%s'"
             % (node, event)) == "1"


def test_a_visitor_that_two_nodes_insert_at_once_counts_once():
    """A node inserts the visitor ids its statement's snapshot lacks with
    a plain INSERT. When another node has inserted the same id and not
    committed yet, the unique index makes the statement wait, then fail;
    the node sends the batch again at once in the form with ON CONFLICT,
    and counts the visitor once, without a failed flush."""
    c = fresh()
    ds = [Daemon(["--store", c.url(application_name="node%d" % i),
                  "--commit-interval", "50ms", "--count-max-age", "1h"])
          for i in range(2)]
    for i, d in enumerate(ds):
        d.hit("/both", ua=ua(100 + i))
    wait_for("the nodes' first flushes", lambda: q(
        c, "SELECT count(*) FROM tally_counts WHERE node LIKE 'node%'")
        in ("4",))
    log_statements(c, True)
    s = Session(c)
    try:
        # node0 inserts the visitor's ids, then waits for its count
        # rows, which the session holds.
        s.send("BEGIN;")
        s.send("SELECT 1 FROM tally_counts WHERE node = 'node0' "
               "FOR UPDATE;")
        wait_for("the session's lock", lambda: q(
            c, "SELECT count(*) FROM pg_stat_activity WHERE "
            "application_name = 'psql' AND state = 'idle in transaction'")
            == "1")
        ds[0].hit("/both", ua=ua(7))
        wait_for("node0's flush waiting for its rows",
                 lambda: waiting(c, "node0", "tuple") or
                 waiting(c, "node0", "transactionid"))
        # node1 inserts the same ids: it waits for node0's transaction.
        ds[1].hit("/both", ua=ua(7))
        wait_for("node1's flush waiting for node0's",
                 lambda: waiting(c, "node1", "transactionid"))
        s.send("COMMIT;")
        wait_for("both flushes", lambda: q(
            c, "SELECT sum(views) FROM tally_counts c JOIN tally_series s "
            "ON s.id = c.series_id WHERE s.path = '/both'") == "4")
        time.sleep(0.5)
    finally:
        s.close()
        log_statements(c, False)
    with open(c.logfile, "rb") as f:
        log = f.read().decode("utf-8", "replace")
    check("duplicate key value" in log, "node1's first statement did "
          "not meet node0's id: %r" % log[-3000:])
    for d in ds:
        eq(d.stop(), 0, "exit status")
        check("flushing" not in d.stderr(), "a flush failed: %r"
              % d.stderr()[-2000:])
    s = json.loads(ctl(c, "--json", "stats"))
    eq(s["today"]["views"], 4, "today's views")
    eq(s["today"]["visitors"], 3, "today's visitors (ids 100, 101, 7)")
    ctl(c, "check")


def test_running_totals_are_updated_in_place():
    """A flush rewrites the node's running totals without touching an
    indexed column (the refresh finds them by their block of ledger
    numbers, not the number), so PostgreSQL updates them in place (HOT:
    no new index entries)."""
    c = fresh()
    d = Daemon(["--store", c.url(), "--commit-interval", "50ms",
                "--count-max-age", "1h"])
    for i in range(12):
        d.hit("/hot", ua=ua(i))
        wait_for("flush %d" % i, lambda: q(
            c, "SELECT sum(views) FROM tally_totals t JOIN tally_series s "
            "ON s.id = t.series_id WHERE s.path = '/hot'") == str(i + 1))
    eq(d.stop(), 0, "exit status")

    def stats():
        upd, hot = [int(x) for x in q(
            c, "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables "
            "WHERE relname = 'tally_totals'").split("|")]
        return (upd, hot) if upd >= 22 else None
    upd, hot = wait_for("the table's statistics", stats)
    eq(hot, upd, "updates of the running totals in place, of %d" % upd)
    ctl(c, "check")


# ------------------------------------------------ a refresh of the changes

PLANT_SERIES = 4000
PLANT_DAYS = 5


def plant(c):
    """PLANT_SERIES pages /big/N with PLANT_DAYS days each, as node
    "old" would have left them (running totals included)."""
    t = today()
    big = "site = 'default' AND path LIKE '/big/%%'"
    q(c, "INSERT INTO tally_series (site, path) SELECT 'default', "
      "'/big/' || g FROM generate_series(1, %d) g" % PLANT_SERIES)
    q(c, "INSERT INTO tally_counts (series_id, day, node, views, visitors) "
      "SELECT s.id, %d - d, 'old', 3, 2 FROM tally_series s, "
      "generate_series(1, %d) d WHERE %s" % (t, PLANT_DAYS, big))
    q(c, "INSERT INTO tally_totals (series_id, node, views, visitors, seq) "
      "SELECT id, 'old', %d, %d, 1 FROM tally_series WHERE %s"
      % (3 * PLANT_DAYS, 2 * PLANT_DAYS, big))
    q(c, "INSERT INTO tally_ledger (node, seq, day) VALUES ('old', 1, %d)"
      % (t - 1))
    q(c, "ANALYZE")


def rows_read(c):
    """Rows the server has read from the count and total tables."""
    out = q(c, "SELECT coalesce(sum(coalesce(seq_tup_read, 0) + "
            "coalesce(idx_tup_fetch, 0)), 0) FROM pg_stat_user_tables "
            "WHERE relname IN ('tally_counts', 'tally_totals')")
    return int(out)


def test_a_refresh_reads_what_changed():
    c = fresh()
    d = Daemon(["--store", c.url(), "--count-max-age", "1s"])
    d.hit("/", ua=ua(1))
    eq(d.stop(), 0, "exit status")
    plant(c)
    d = Daemon(["--store", c.url(), "--count-max-age", "1s"])
    eq(d.count("/big/7")["page"]["views"], 3 * PLANT_DAYS,
       "a planted page on the node")
    # The statistics of the node's session reach the server within
    # about a second of its statements, the opening read's included.
    time.sleep(12)
    before = rows_read(c)
    time.sleep(10)     # about ten refreshes, nothing written
    time.sleep(12)
    after = rows_read(c)
    planted = PLANT_SERIES * PLANT_DAYS
    check(after - before < planted // 4,
          "rows read by the refreshes of an idle node: %d (the database "
          "holds %d count rows)" % (after - before, planted))
    # What changes still shows: another writer's hits.
    q(c, "UPDATE tally_counts SET views = views + 5 WHERE node = 'old' "
      "AND series_id = (SELECT id FROM tally_series WHERE site = "
      "'default' AND path = '/big/9') AND day = %d" % (today() - 1))
    q(c, "UPDATE tally_totals SET views = views + 5, seq = 2 WHERE "
      "node = 'old' AND series_id = (SELECT id FROM tally_series WHERE "
      "site = 'default' AND path = '/big/9')")
    q(c, "UPDATE tally_ledger SET seq = 2 WHERE node = 'old'")
    wait_for("the other writer's views on the node", lambda: d.count(
        "/big/9")["page"]["views"] == 3 * PLANT_DAYS + 5)
    eq(d.stop(), 0, "exit status")


def test_max_pages_counts_the_pages_of_every_node():
    """A site's pages are counted once at open; then each node counts
    the new ones its flushes and refreshes bring, its own and others'."""
    c = fresh()
    ds = [Daemon(["--store", c.url(), "--count-max-age", "1s",
                  "--commit-interval", "200ms", "--max-pages", "3"])
          for _ in range(2)]
    for i, p in enumerate(("/p1", "/p2", "/p3")):
        ds[0].hit(p, ua=ua(i))
    wait_for("the other node's pages", lambda: ds[1].count("/p3")[
        "page"]["views"] == 1)
    ds[0].hit("/p4", ua=ua(5))
    ds[1].hit("/p5", ua=ua(6))
    for d in ds:
        eq(d.stop(), 0, "exit status")
    paths = sorted(r.split(",")[2] for r in export_rows(c))
    eq(paths, ["*", "/(other)", "/p1", "/p2", "/p3"], "paths stored")


def test_tallyctl_writes_show_on_a_running_node():
    c = fresh()
    d = Daemon(["--store", c.url(), "--count-max-age", "1s",
                "--commit-interval", "200ms"])
    for i in range(3):
        d.hit("/a", ua=ua(i))
    wait_for("the hits in the database", lambda: any(
        ",/a," in r for r in export_rows(c)))
    # set (the site first: a page may not outgrow it)
    ctl(c, "set", "--site", "default", "--views", "5000",
        "--visitors", "2000")
    ctl(c, "set", "--site", "default", "--path", "/a", "--views", "1000",
        "--visitors", "500")
    wait_for("set on the node", lambda: d.count("/a")["page"] == {
        "views": 1000, "visitors": 500} or None)
    # import (a day of another page)
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86400 * 3))
    ctl(c, "import", "-", input="site,day,path,views,visitors\n"
        "default,%s,*,40,30\ndefault,%s,/imp,40,30\n" % (day, day))
    wait_for("import on the node", lambda: d.count("/imp")["page"][
        "views"] == 40)
    # reset
    ctl(c, "reset", "--site", "default", "--path", "/a", "--yes")
    wait_for("reset on the node", lambda: d.count("/a")["page"][
        "views"] == 0)
    eq(d.count("/imp")["page"]["views"], 40, "the other page kept")
    d.hit("/a", ua=ua(50))
    wait_for("a hit after the reset", lambda: d.count("/a")["page"][
        "views"] == 1)
    eq(d.stop(), 0, "exit status")
    ctl(c, "check")


def test_check_finds_totals_that_disagree():
    c = fresh()
    d = Daemon(["--store", c.url(), "--commit-interval", "200ms"])
    d.request("GET", "/hit?" + harness.query(
        path="/c", referrer="https://ref.example/"), {"User-Agent": ua(1)})
    eq(d.stop(), 0, "exit status")
    ctl(c, "check")
    q(c, "UPDATE tally_totals SET views = views + 1 WHERE series_id = "
      "(SELECT id FROM tally_series WHERE path = '/c')")
    out = ctl(c, "check", want=1)
    check("disagree" in out, "check's report: %r" % out)
    q(c, "UPDATE tally_totals SET views = views - 1 WHERE series_id = "
      "(SELECT id FROM tally_series WHERE path = '/c')")
    ctl(c, "check")
    q(c, "UPDATE tally_referrer_days SET hosts = hosts || "
      "ARRAY['x.example']")
    out = ctl(c, "check", want=1)
    check("disagree" in out, "check's report: %r" % out)


# ------------------------------------------------------------ migration

# The tables of schema version 1, as the first PostgreSQL store made them.
SCHEMA_V1 = [
    "CREATE TABLE tally_meta (key text PRIMARY KEY, val bytea NOT NULL)",
    "CREATE TABLE tally_series (id bigint GENERATED BY DEFAULT AS "
    "IDENTITY PRIMARY KEY, site text COLLATE \"C\" NOT NULL, path text "
    "COLLATE \"C\" NOT NULL, adj_views bigint NOT NULL DEFAULT 0, "
    "adj_visitors bigint NOT NULL DEFAULT 0, UNIQUE (site, path))",
    "CREATE TABLE tally_counts (series_id bigint NOT NULL, day integer "
    "NOT NULL, node text NOT NULL, views bigint NOT NULL, visitors bigint "
    "NOT NULL, PRIMARY KEY (series_id, day, node))",
    "CREATE INDEX tally_counts_day ON tally_counts (day)",
    "CREATE TABLE tally_visitors (day integer NOT NULL, series_hash "
    "bigint NOT NULL, visitor bigint NOT NULL, PRIMARY KEY (day, "
    "series_hash, visitor))",
    "CREATE TABLE tally_referrers (site text COLLATE \"C\" NOT NULL, day "
    "integer NOT NULL, host text COLLATE \"C\" NOT NULL, node text NOT "
    "NULL, views bigint NOT NULL, PRIMARY KEY (site, day, host, node))",
    "CREATE TABLE tally_ledger (node text PRIMARY KEY, seq bigint NOT "
    "NULL, day integer NOT NULL)",
    "CREATE UNLOGGED TABLE tally_salts (day integer PRIMARY KEY, salt "
    "bytea NOT NULL)",
    "INSERT INTO tally_meta VALUES ('schema', convert_to('1', 'UTF8'))",
]


def test_schema_1_is_migrated_at_open():
    c = fresh()
    t = today()
    for sql in SCHEMA_V1:
        q(c, sql)
    q(c, "INSERT INTO tally_series (site, path, adj_views) VALUES "
      "('default', '', 7), ('default', '/m', 0)")
    # Two nodes and tallyctl wrote days.
    q(c, "INSERT INTO tally_counts SELECT s.id, %d - d, n, 10, 4 FROM "
      "tally_series s, generate_series(0, 2) d, "
      "unnest(ARRAY['n1', 'n2', '']) n" % t)
    q(c, "INSERT INTO tally_ledger VALUES ('n1', 17, %d), ('n2', 9, %d)"
      % (t, t))
    q(c, "INSERT INTO tally_referrers VALUES ('default', %d, 'a.example', "
      "'n1', 3), ('default', %d, 'a.example', 'n2', 2), ('default', %d, "
      "'b.example', 'n2', 1), ('default', %d, '(other)', 'n1', 5)"
      % (t, t, t, t))
    # A read-only look leaves it alone and says what to do.
    rc, out, err = run_tallyctl("--store", c.url(), "stats")
    check(rc != 0 and "older" in err, "tallyctl stats on version 1: rc %d "
          "%r" % (rc, err))
    d = Daemon(["--store", c.url(), "--count-max-age", "1s"])
    eq(q(c, "SELECT convert_from(val, 'UTF8') FROM tally_meta WHERE "
         "key = 'schema'"), "3", "schema version after the open")
    eq(q(c, "SELECT node, views, visitors, seq FROM tally_totals ORDER BY "
         "series_id, node").split(), ["|30|12|0", "n1|30|12|17",
                                      "n2|30|12|9"] * 2,
       "running totals")
    eq(q(c, "SELECT site, day, array_to_string(hosts, ' ') FROM "
         "tally_referrer_days"), "default|%d|a.example b.example" % t,
       "the day's hosts")
    j = d.count("/m")
    eq(j["page"]["views"], 90, "all-time views of the page")
    eq(j["page_today"]["views"], 30, "today's views of the page")
    eq(j["total"]["views"], 97, "all-time views of the site")
    d.hit("/m", ua=ua(1))
    eq(d.stop(), 0, "exit status")
    ctl(c, "check")
    s = json.loads(ctl(c, "--json", "stats"))
    eq(s["today"]["views"], 31, "today's views after a hit")


SCHEMA_V2 = SCHEMA_V1[:-1] + [
    "CREATE TABLE tally_totals (series_id bigint NOT NULL, node text NOT "
    "NULL, views bigint NOT NULL, visitors bigint NOT NULL, seq bigint NOT "
    "NULL, PRIMARY KEY (series_id, node))",
    "CREATE INDEX tally_totals_seq ON tally_totals (node, seq)",
    "CREATE TABLE tally_referrer_days (site text COLLATE \"C\" NOT NULL, "
    "day integer NOT NULL, hosts text[] NOT NULL, PRIMARY KEY (site, day))",
    "INSERT INTO tally_meta VALUES ('schema', convert_to('2', 'UTF8'))",
]


def indexes(c):
    return q(c, "SELECT indexname FROM pg_indexes WHERE tablename = "
             "'tally_totals' ORDER BY 1").split()


def test_schema_2_is_migrated_at_open():
    """Version 3 finds a node's changed totals by their block of ledger
    numbers (mark) instead of an index on the number itself."""
    c = fresh()
    t = today()
    for sql in SCHEMA_V2:
        q(c, sql)
    q(c, "INSERT INTO tally_series (site, path) VALUES ('default', ''), "
      "('default', '/m')")
    q(c, "INSERT INTO tally_counts SELECT s.id, %d, n, 10, 4 FROM "
      "tally_series s, unnest(ARRAY['n1', 'n2']) n" % t)
    q(c, "INSERT INTO tally_totals SELECT s.id, n.node, 10, 4, n.seq FROM "
      "tally_series s, (VALUES ('n1', 17), ('n2', 70)) n(node, seq)")
    q(c, "INSERT INTO tally_ledger VALUES ('n1', 17, %d), ('n2', 70, %d)"
      % (t, t))
    eq(indexes(c), ["tally_totals_pkey", "tally_totals_seq"], "indexes")
    rc, out, err = run_tallyctl("--store", c.url(), "stats")
    check(rc != 0 and "older" in err, "tallyctl stats on version 2: rc %d "
          "%r" % (rc, err))
    d = Daemon(["--store", c.url(application_name="n3"), "--count-max-age",
                "1s"])
    eq(q(c, "SELECT convert_from(val, 'UTF8') FROM tally_meta WHERE "
         "key = 'schema'"), "3", "schema version after the open")
    eq(indexes(c), ["tally_totals_mark", "tally_totals_pkey"], "indexes")
    eq(q(c, "SELECT DISTINCT node, seq, mark FROM tally_totals ORDER BY "
         "node").split(), ["n1|17|0", "n2|70|64"], "the totals' marks")
    eq(d.count("/m")["page"]["views"], 20, "views of the page")
    # Node n2's next flush, as it makes them: its refresh finds it.
    q(c, "UPDATE tally_counts SET views = views + 5 WHERE node = 'n2'")
    q(c, "UPDATE tally_totals SET views = views + 5, seq = 71 WHERE "
      "node = 'n2'")
    q(c, "UPDATE tally_ledger SET seq = 71 WHERE node = 'n2'")
    wait_for("n2's views on the node", lambda: d.count(
        "/m")["page"]["views"] == 25)
    d.hit("/m", ua=ua(1))
    eq(d.stop(), 0, "exit status")
    eq(q(c, "SELECT seq = 1 AND mark = 0 FROM tally_totals WHERE node = "
         "'n3' AND series_id = (SELECT id FROM tally_series WHERE path = "
         "'/m')"), "t", "the node's own total and its mark")
    ctl(c, "check")
    s = json.loads(ctl(c, "--json", "stats"))
    eq(s["today"]["views"], 26, "today's views after a hit")


# ------------------------------------------------------------ the ledger

def test_ledger_entries_of_gone_nodes_are_pruned():
    c = fresh()
    d = Daemon(["--store", c.url()])
    d.hit("/", ua=ua(1))
    eq(d.stop(), 0, "exit status")
    t = today()
    q(c, "INSERT INTO tally_ledger VALUES ('gone', 50, %d), "
      "('recent', 3, %d), ('', 4, %d) ON CONFLICT (node) DO UPDATE "
      "SET day = excluded.day" % (t - 30, t - 2, t - 400))
    q(c, "INSERT INTO tally_totals SELECT id, 'gone', 0, 0, 50 FROM "
      "tally_series")
    # The salts gone, the next node to start makes them and rolls over.
    q(c, "DELETE FROM tally_salts")
    d = Daemon(["--store", c.url()])
    d.hit("/", ua=ua(2))
    # Each name quoted: tallyctl's is the empty one.
    def nodes():
        return sorted(q(c, "SELECT quote_literal(node) FROM "
                        "tally_ledger").split())
    wait_for("the prune", lambda: "'gone'" not in nodes())
    kept = nodes()
    check("'recent'" in kept and "''" in kept, "entries kept: %r" % kept)
    eq(d.stop(), 0, "exit status")
    # A node of that name again goes on after its rows' numbers.
    d = Daemon(["--store", c.url(application_name="gone")])
    d.hit("/", ua=ua(3))
    eq(d.stop(), 0, "exit status")
    seq = int(q(c, "SELECT seq FROM tally_ledger WHERE node = 'gone'"))
    check(seq > 50, "the returning node's number: %d" % seq)
    ctl(c, "check")


# ----------------------------------------------------- the referrer cap

CAP = 5


def referred_load(daemons, hosts, per_thread, seed, sent):
    rnd = random.Random(seed)
    conns = {}
    for n in range(per_thread):
        i = rnd.randrange(len(daemons))
        h = hosts[rnd.randrange(len(hosts))]
        conn = conns.get(i)
        if conn is None:
            conn = conns[i] = http.client.HTTPConnection(
                "127.0.0.1", daemons[i].port, timeout=30)
        conn.request("GET", "/hit?" + harness.query(
            path="/r", referrer="https://%s/page" % h),
            headers={"User-Agent": ua(rnd.randrange(30))})
        r = conn.getresponse()
        r.read()
        eq(r.status, 200, "hit")
        sent[seed] += 1
    for conn in conns.values():
        conn.close()


def test_referrer_cap_holds_across_nodes():
    c = fresh()
    ds = [Daemon(["--store", c.url(), "--commit-interval", "100ms",
                  "--max-referrers", str(CAP)]) for _ in range(3)]
    hosts = ["h%02d.example" % i for i in range(60)]
    threads = 6
    sent = [0] * threads
    errors = []

    def run(n):
        try:
            referred_load(ds, hosts, 150, n, sent)
        except Exception as e:      # noqa: BLE001
            errors.append(e)

    ts = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(300)
    if errors:
        raise errors[0]
    for d in ds:
        eq(d.stop(), 0, "exit status")
    rows = q(c, "SELECT host, sum(views) FROM tally_referrers GROUP BY "
             "host ORDER BY host").split("\n")
    got = dict(r.split("|") for r in rows if r)
    named = sorted(h for h in got if h != "(other)")
    eq(len(named), CAP, "hosts kept for the day (%r)" % named)
    eq(sum(int(v) for v in got.values()), sum(sent), "referred views")
    eq(q(c, "SELECT array_to_string(ARRAY(SELECT unnest(hosts) ORDER BY "
         "1), ',') FROM tally_referrer_days"), ",".join(named),
       "the day's row of hosts")
    ctl(c, "check")


if __name__ == "__main__":
    harness.main(globals(), setup=pgcluster.need_postgres)
