"""The shared PostgreSQL store (doc/scale-out.md), measured in one run:

  rate    one tallyd node's GET /hit rate on PostgreSQL against the same
          node on LMDB, back to back, the node pinned to the server core,
          wrk on the client core; PostgreSQL on the client core (as a
          database on another machine leaves tallyd's core alone), then
          on tallyd's core (where LMDB's work is done);
  steps   two nodes on one database under a paced load stepped up from
          2,000 hits/s: the flush latency (tally_store_flush_seconds) and
          the backlog (tally_store_backlog_hits) of both nodes at each
          step, and the highest rate whose flushes stay within
          2 x commit_interval; a last step is unpaced (the machine's top);
  cost    at each step and in the rate run, PostgreSQL's CPU (utime +
          stime of the postmaster and its children, and of its children
          that ended) and WAL bytes (pg_current_wal_lsn) per hit counted,
          and visitor id rows inserted per hit; the WAL by record type
          (pg_waldump --stats) and the statements that cost
          (pg_stat_statements) of the busiest step that was sustained.

The load is wrk with VISITORS_LUA (wrk.py): new visitors, returning
visitors shared by both nodes, 1,000 pages. The cluster is a throwaway
one made by the tests' tests/blackbox/pgcluster.py; without PostgreSQL 15
the section is skipped, saying why.
"""

import os
import re
import shutil
import statistics
import time

import harness

from .. import procs
from ..common import BenchError, fmt_int, log
from ..servers import Tallyd
from ..wrk import visitors_script, wrk

try:
    import pgcluster
except ImportError:         # pragma: no cover - the tests' own module
    pgcluster = None

COMMIT_INTERVAL = 0.1       # tallyd's default commit_interval, in seconds
PACE_MS = 20                # a paced connection's wait after each answer
# Offered hits/s of both nodes together: connections x 1000 / PACE_MS.
# Each connection also waits for its answers, so a step achieves a little
# less than it offers, and much less once the machine is saturated. The
# steps stop after the first one that is not sustained or that achieves
# no more than the one before; an unpaced step ends them.
STEPS = (2000, 4000, 8000, 12000, 16000, 24000, 32000)
CLK_TCK = os.sysconf("SC_CLK_TCK")


def skip_reason():
    """Why the section cannot run here, or None."""
    if pgcluster is None:
        return "tests/blackbox/pgcluster.py not found"
    try:
        pgcluster.need_postgres()
    except harness.Skip as e:
        return str(e)
    return None


# -- the cluster

def start_cluster(explain=False):
    """A throwaway cluster with the database "tally" and
    pg_stat_statements; PostgreSQL's default shared_buffers (128MB).
    explain: auto_explain logs the plan of one statement in ten, with
    the time and buffers of each node (EXPLAIN ANALYZE), in the server's
    log; that costs time, so the figures of such a run are not kept."""
    conf = {"shared_buffers": "128MB",
            "shared_preload_libraries": "'pg_stat_statements'",
            "pg_stat_statements.track": "all"}
    if explain:
        conf.update({
            "shared_preload_libraries":
                "'pg_stat_statements,auto_explain'",
            "auto_explain.log_min_duration": "0",
            "auto_explain.log_analyze": "on",
            "auto_explain.log_buffers": "on",
            "auto_explain.log_wal": "on",
            "auto_explain.sample_rate": "0.1",
            "log_min_messages": "log"})
    c = pgcluster.Cluster(name="bench")
    c.init(conf)
    c.start()
    fresh_db(c)
    return c


def fresh_db(c):
    """An empty database "tally" (after the nodes on it are gone), with
    pg_stat_statements."""
    c.drop_db()
    c.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")


def _children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(k) for k in f.read().split()]
    except (OSError, ValueError):
        return []


def pin_cluster(c, cpu):
    """The postmaster and every process it has on core cpu (None: on
    every core); the backends it forks later inherit it."""
    cpus = set(range(os.cpu_count() or 1)) if cpu is None else {cpu}
    for pid in [c.pid()] + harness._descendants(c.pid()):
        try:
            os.sched_setaffinity(pid, cpus)
        except OSError:
            pass


def _stat_ticks(pid, ended=False):
    """utime + stime of pid (with ended: and of its children that ended
    and were waited for), in clock ticks."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0
    # fields[0] is field 3 (state): utime is 14, stime 15, cutime 16,
    # cstime 17.
    n = int(fields[11]) + int(fields[12])
    if ended:
        n += int(fields[13]) + int(fields[14])
    return n


def cluster_cpu(c):
    """CPU seconds the cluster has used: the postmaster, the processes
    it runs, and (through the postmaster's cutime) those that ended."""
    pm = c.pid()
    if pm is None:
        raise BenchError("PostgreSQL is not running")
    ticks = _stat_ticks(pm, ended=True)
    ticks += sum(_stat_ticks(k, ended=True) for k in _children(pm))
    return ticks / CLK_TCK


def process_cpu(pid):
    return _stat_ticks(pid) / CLK_TCK


def _lsn(text):
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) + int(lo, 16)


def db_snapshot(c):
    """What the database holds: site views (every site series), visitor
    id rows, and the WAL position."""
    views, rows, lsn = c.psql(
        "SELECT (SELECT coalesce(sum(c.views), 0) FROM tally_counts c "
        "JOIN tally_series s ON s.id = c.series_id AND s.path = ''), "
        "(SELECT count(*) FROM tally_visitors), pg_current_wal_lsn()"
    ).split("|")
    return {"views": int(views), "rows": int(rows), "lsn": lsn,
            "wal": _lsn(lsn)}


def reset_statements(c):
    c.psql("SELECT pg_stat_statements_reset()")


def top_statements(c, n=6):
    """The statements that cost most since the last reset: text (cut),
    calls, total ms, WAL bytes, rows."""
    out = c.psql(
        "SELECT calls, round(total_exec_time::numeric, 1), wal_bytes, "
        "wal_fpi, rows, regexp_replace(left(query, 90), '\\s+', ' ', 'g') "
        "FROM pg_stat_statements WHERE dbid = (SELECT oid FROM "
        "pg_database WHERE datname = current_database()) "
        "ORDER BY total_exec_time DESC LIMIT %d" % n)
    stmts = []
    for line in out.splitlines():
        calls, ms, wal, fpi, rows, q = line.split("|", 5)
        stmts.append({"calls": int(calls), "ms": float(ms),
                      "wal": int(wal), "fpi": int(fpi), "rows": int(rows),
                      "query": q})
    return stmts


def flushes_sent_again(c):
    """Flushes sent in the form with ON CONFLICT since the last reset:
    those whose first form met a visitor id that the other node inserted
    at the same moment, and the few a node sends so right after one
    (lib/store_pg.c, FLUSH_FAST)."""
    return int(c.psql(
        "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE "
        "query LIKE 'WITH ledger AS%' AND "
        "query LIKE '%ON CONFLICT DO NOTHING RETURNING day%'"))


def waldump_stats(c, start, end, label):
    """WAL between two LSNs by record type (pg_waldump --stats=record):
    the largest types, and the output kept in the temporary directory."""
    rc, out, err = c.run([pgcluster.binary("pg_waldump"), "-p",
                          os.path.join(c.datadir, "pg_wal"), "-s", start,
                          "-e", end, "--stats=record"], check=False)
    with open(os.path.join(procs.tmpdir(), "waldump-%s.txt" % label),
              "w") as f:
        f.write(out + err)
    types = []
    for line in out.splitlines():
        m = re.match(r"^(\S+/\S+)\s+(\d+)\s+\(\s*[\d.]+\)\s+(\d+)\s+"
                     r"\(\s*[\d.]+\)\s+(\d+)\s+\(\s*[\d.]+\)\s+(\d+)", line)
        if m:
            types.append({"type": m.group(1), "n": int(m.group(2)),
                          "rec": int(m.group(3)), "fpi": int(m.group(4)),
                          "bytes": int(m.group(5))})
    types.sort(key=lambda t: -t["bytes"])
    return types


# -- tallyd's metrics

def metrics(td):
    """The shared store's figures in /metrics: the flush histogram
    ({le: cumulative count}), its count and sum, and the backlog."""
    st, _, body = harness.request(td.port, "GET", "/metrics", timeout=10)
    if st != 200:
        raise BenchError("GET /metrics answered %d" % st)
    text = body.decode()
    m = {"buckets": {}, "count": 0, "sum": 0.0, "backlog": 0}
    for le, n in re.findall(
            r'^tally_store_flush_seconds_bucket\{le="([^"]+)"\} (\d+)$',
            text, re.M):
        m["buckets"][float(le)] = int(n)
    for key, name in (("count", "tally_store_flush_seconds_count"),
                      ("sum", "tally_store_flush_seconds_sum"),
                      ("backlog", "tally_store_backlog_hits")):
        f = re.search(r"^%s (\S+)$" % name, text, re.M)
        if f is None:
            raise BenchError("no %s in /metrics" % name)
        m[key] = float(f.group(1))
    return m


def hist_delta(before, after):
    """The flushes between two readings of one or more nodes' metrics
    (lists, one reading per node): summed buckets, count, sum."""
    d = {"buckets": {}, "count": 0, "sum": 0.0}
    for b, a in zip(before, after):
        for le, n in a["buckets"].items():
            d["buckets"][le] = d["buckets"].get(le, 0) + n - \
                b["buckets"].get(le, 0)
        d["count"] += a["count"] - b["count"]
        d["sum"] += a["sum"] - b["sum"]
    return d


def quantile(h, q):
    """Prometheus' histogram_quantile: linear within the bucket that holds
    rank q; the highest finite bound when it falls in +Inf."""
    if h["count"] <= 0:
        return None
    rank = q * h["count"]
    lo, prev = 0.0, 0
    finite = sorted(le for le in h["buckets"] if le != float("inf"))
    for le in finite:
        n = h["buckets"][le]
        if n >= rank:
            width = n - prev
            return lo + (le - lo) * ((rank - prev) / width if width else 1)
        lo, prev = le, n
    return finite[-1] if finite else None


def over(h, limit):
    """Flushes that took longer than limit (a bucket bound)."""
    return h["count"] - h["buckets"].get(limit, 0)


def wait_flushed(nodes, timeout=60):
    deadline = time.monotonic() + timeout
    for td in nodes:
        while metrics(td)["backlog"] != 0:
            if time.monotonic() > deadline:
                raise BenchError("node %d keeps a backlog after the load "
                                 "stopped:\n%s" % (td.port, td.log_tail()))
            time.sleep(0.05)
    # One more interval: the answer of the last flush is in the copy.
    time.sleep(2 * COMMIT_INTERVAL)


# -- one measured load

class Window:
    """PostgreSQL's CPU, WAL and counts around a load, and tallyd's CPU."""

    def __init__(self, c, nodes):
        self.c, self.nodes = c, nodes
        wait_flushed(nodes)
        self.db = db_snapshot(c)
        self.m = [metrics(td) for td in nodes]
        self.cpu = cluster_cpu(c)
        self.tcpu = sum(process_cpu(td.pid) for td in nodes)
        self.t = time.monotonic()

    def close(self):
        wait_flushed(self.nodes)
        r = {"pg_cpu_s": cluster_cpu(self.c) - self.cpu,
             "tallyd_cpu_s": sum(process_cpu(td.pid) for td in self.nodes) -
             self.tcpu,
             "seconds": time.monotonic() - self.t}
        m = [metrics(td) for td in self.nodes]
        db = db_snapshot(self.c)
        r["hits"] = db["views"] - self.db["views"]
        r["rows"] = db["rows"] - self.db["rows"]
        r["wal"] = db["wal"] - self.db["wal"]
        r["lsn"] = (self.db["lsn"], db["lsn"])
        h = hist_delta(self.m, m)
        r["flushes"] = h["count"]
        r["flush_mean"] = h["sum"] / h["count"] if h["count"] else None
        r["flush_p50"] = quantile(h, 0.5)
        r["flush_p99"] = quantile(h, 0.99)
        r["flush_over"] = over(h, 2 * COMMIT_INTERVAL)
        if r["hits"] > 0:
            n = r["hits"]
            r["pg_us_hit"] = r["pg_cpu_s"] * 1e6 / n
            r["tallyd_us_hit"] = r["tallyd_cpu_s"] * 1e6 / n
            r["wal_hit"] = r["wal"] / n
            r["rows_hit"] = r["rows"] / n
        return r


def sample_backlog(nodes, finish, seconds):
    """Waits for the background wrk runs while reading the nodes'
    backlog every 0.25 s: their results and the largest backlog seen."""
    peak = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            peak = max(peak, sum(metrics(td)["backlog"] for td in nodes))
        except (OSError, BenchError):
            pass
        time.sleep(0.25)
    return [f() for f in finish], peak


# -- rate: one node, PostgreSQL against LMDB

def _one_node(args, c, store, seed, label, pg_cpu=None):
    data = os.path.join(procs.tmpdir(), "data-" + label)
    extra = ["--store", c.url()] if store == "pg" else []
    if store == "pg":
        fresh_db(c)
        reset_statements(c)
    td = Tallyd(data, "batch", cpu=args.server_cpu, extra=extra,
                name="tallyd-" + label)
    if store == "pg":
        pin_cluster(c, pg_cpu)
    script = visitors_script(label, seed)
    try:
        if args.warmup:
            wrk(args, td.port, "/", args.warmup, label + "-warmup",
                script=visitors_script(label + "-w", seed + 1000))
        site0 = td.counts("/")["today"]["views"]
        win = Window(c, [td]) if store == "pg" else None
        t0 = process_cpu(td.pid)
        log("wrk -> one tallyd on %s, %d s" % (
            "LMDB" if store == "lmdb" else "PostgreSQL on core %d" % pg_cpu,
            args.duration))
        r = wrk(args, td.port, "/", args.duration, label, script=script)
        if win:
            r["cost"] = win.close()
        else:
            time.sleep(0.5)     # > commit_interval
        r["tallyd_us_hit"] = (process_cpu(td.pid) - t0) * 1e6 / max(1,
                                                                     r["ok"])
        r["counted"] = td.counts("/")["today"]["views"] - site0
    finally:
        rc = td.stop()
        pin_cluster(c, None)
    if rc:
        raise BenchError("tallyd (%s) exited %d:\n%s" % (store, rc,
                                                        td.log_tail()))
    log("  %.0f req/s, p99 %.2f ms; %s answered 200, %s counted" % (
        r["rps"], r["p99_us"] / 1000, fmt_int(r["ok"]),
        fmt_int(r["counted"])))
    return r


def rate(args, c):
    """LMDB, then PostgreSQL on the client's core (where a database on
    another machine would leave tallyd's core to tallyd), then
    PostgreSQL on tallyd's own core (where LMDB's work is)."""
    rounds = []
    for i in range(1, args.rounds + 1):
        sfx = "-%d" % i if args.rounds > 1 else ""
        lm = _one_node(args, c, "lmdb", 10 * i, "pg-rate-lmdb" + sfx)
        pg = _one_node(args, c, "pg", 10 * i, "pg-rate-pg" + sfx,
                       pg_cpu=args.client_cpu)
        pgs = _one_node(args, c, "pg", 10 * i, "pg-rate-pg-shared" + sfx,
                        pg_cpu=args.server_cpu)
        rounds.append({"lmdb": lm, "pg": pg, "pg_shared": pgs,
                       "ratio": pg["rps"] / lm["rps"],
                       "ratio_shared": pgs["rps"] / lm["rps"]})
        log("  PostgreSQL / LMDB: %.2f (database on tallyd's core: %.2f)" %
            (rounds[-1]["ratio"], rounds[-1]["ratio_shared"]))
    return {"rounds": rounds,
            "ratio": statistics.median(r["ratio"] for r in rounds),
            "ratio_shared": statistics.median(r["ratio_shared"]
                                              for r in rounds)}


# -- steps: two nodes, paced

def _step(args, c, nodes, offered, label):
    """One step: each node gets offered / 2 hits/s from its own wrk
    (paced: PACE_MS after each answer; offered None: unpaced, the
    bench's connections each)."""
    finish = []
    per_node = None if offered is None else offered / 2.0
    conns = args.connections if offered is None else \
        max(1, int(round(per_node * PACE_MS / 1000.0)))
    win = Window(c, nodes)
    reset_statements(c)
    for i, td in enumerate(nodes):
        script = visitors_script("%s-n%d" % (label, i), 7 + 31 * i +
                                 (offered or 0),
                                 delay_ms=0 if offered is None else PACE_MS)
        finish.append(wrk(args, td.port, "/", args.duration,
                          "%s-n%d" % (label, i), connections=conns,
                          script=script, background=True))
    runs, peak = sample_backlog(nodes, finish, args.duration)
    s = win.close()
    s["offered"] = offered
    s["conns"] = conns
    s["achieved"] = sum(r["rps"] for r in runs)
    s["ok"] = sum(r["ok"] for r in runs)
    s["other"] = sum(r["other"] for r in runs)
    s["errors"] = sum(r["connect"] + r["read"] + r["write"] + r["timeout"]
                      for r in runs)
    s["p99_us"] = max(r["p99_us"] for r in runs)
    s["backlog_peak"] = peak
    s["resent"] = flushes_sent_again(c)
    # Sustained: 99% of the flushes within 2 x commit_interval, every
    # answer a 200, and every answered hit in the database.
    s["sustained"] = (s["flush_p99"] is not None and
                      s["flush_p99"] <= 2 * COMMIT_INTERVAL and
                      s["other"] == 0 and s["hits"] >= s["ok"])
    if offered is not None and s["sustained"]:
        s["statements"] = top_statements(c)
    log("  %s hits/s offered: %.0f achieved (%s answered, %s counted), "
        "flush p50 %s p99 %s, %d of %d flushes over %.0f ms, %d with "
        "ON CONFLICT, backlog peak %d; PostgreSQL %.1f us and "
        "%.0f B of WAL per hit, %.2f visitor rows per hit" % (
            "unpaced" if offered is None else fmt_int(offered),
            s["achieved"], fmt_int(s["ok"]), fmt_int(s["hits"]),
            _ms(s["flush_p50"]), _ms(s["flush_p99"]),
            s["flush_over"], s["flushes"], 2000 * COMMIT_INTERVAL,
            s["resent"], s["backlog_peak"], s.get("pg_us_hit", 0),
            s.get("wal_hit", 0), s.get("rows_hit", 0)))
    return s


def _ms(s):
    return "?" if s is None else "%.1f ms" % (s * 1000)


def _idle(args, c, nodes):
    """PostgreSQL's CPU and WAL per second with both nodes up and no
    hits: their refreshes, and the cluster's own background work."""
    win = Window(c, nodes)
    time.sleep(args.duration)
    r = win.close()
    log("  idle: PostgreSQL %.1f ms CPU and %.0f B of WAL per second" % (
        r["pg_cpu_s"] * 1e3 / r["seconds"], r["wal"] / r["seconds"]))
    return r


def steps(args, c, R):
    fresh_db(c)
    nodes = []
    try:
        for i in range(2):
            nodes.append(Tallyd(os.path.join(procs.tmpdir(), "data-pg-n%d" %
                                             i), "batch",
                                cpu=args.server_cpu,
                                extra=["--store", c.url()],
                                name="tallyd-pg-n%d" % i))
        if args.warmup:
            _step_warmup(args, nodes)
        R["pg_idle"] = _idle(args, c, nodes)
        out = []
        for offered in STEPS[:2] if args.dry_run else STEPS:
            s = _step(args, c, nodes, offered, "pg-step-%d" % offered)
            out.append(s)
            if not s["sustained"] or (len(out) > 1 and s["achieved"] <
                                      1.05 * out[-2]["achieved"]):
                break
        out.append(_step(args, c, nodes, None, "pg-step-unpaced"))
    finally:
        for td in nodes:
            rc = td.stop()
            if rc:
                raise BenchError("a node exited %d:\n%s" % (rc,
                                                            td.log_tail()))
    return out


def _step_warmup(args, nodes):
    """Both nodes' series made and their connections warm."""
    fin = [wrk(args, td.port, "/", args.warmup, "pg-steps-warmup-n%d" % i,
               script=visitors_script("w%d" % i, 3 + i), connections=8,
               background=True) for i, td in enumerate(nodes)]
    for f in fin:
        f()


def run(args, exes, R):
    why = skip_reason()
    if why:
        R["pg_skipped"] = why
        log("pg section skipped: " + why)
        return
    try:
        _run(args, R)
    except harness.Skip as e:
        R["pg_skipped"] = str(e)
        log("pg section skipped: %s" % e)
    except harness.Failure as e:
        raise BenchError(str(e))


def _run(args, R):
    log("making a PostgreSQL cluster")
    c = start_cluster(args.pg_explain)
    try:
        R["pg_version"] = c.psql("SHOW server_version")
        R["pg_rate"] = rate(args, c)
        R["pg_steps"] = steps(args, c, R)
        best = [s for s in R["pg_steps"] if s["sustained"] and
                s["offered"] is not None]
        if best:
            b = best[-1]
            R["pg_wal_types"] = waldump_stats(c, b["lsn"][0], b["lsn"][1],
                                              "step-%d" % b["offered"])
    finally:
        kept = os.path.join(procs.tmpdir(), "postgres.log")
        shutil.copy(c.logfile, kept)
        if args.pg_explain:
            R["pg_explain"] = kept
            log("plans (auto_explain) in %s%s" % (
                kept, "" if args.keep else "; --keep keeps it"))
        c.destroy()
