#!/usr/bin/env python3
"""tallyd nodes on PostgreSQL through a failover (doc/scale-out.md).

Two cases, each with servers of its own (started once for the file's
case, as a failover uses them up):
  - a streaming standby (pg_basebackup -R, synchronous) promoted by hand
    while two strict nodes count through a multi-host URL with
    target_session_attrs=read-write: the nodes reconnect by themselves
    and go on counting on the promoted server, and no answered hit is
    lost;
  - automatic failover with pg_auto_failover (a monitor and two keepers
    on loopback): the primary's keeper and postgres are stopped, the
    monitor promotes the other, and batch nodes go on counting without
    anyone touching them: every answered hit is counted once.
"""

import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import pgcluster  # noqa: E402
from harness import Daemon, Failure, Skip, check, eq  # noqa: E402
from test_pg import (SCALE, finish, run_load, stored,  # noqa: E402
                     wait_flushed)

PG_AUTOCTL = "/usr/bin/pg_autoctl"


def url(hosts, user, db=pgcluster.DB):
    """A multi-host URL: libpq tries the hosts in turn and keeps the one
    that takes writes."""
    return "postgresql://%s@%s/%s?target_session_attrs=read-write" % (
        user, ",".join("127.0.0.1:%d" % p for p in hosts), db)


def stored_on(u):
    """stored() of test_pg, read through the URL u."""
    class At:
        def url(self):
            return u
    return stored(At())


def check_answered_kept(views, truth, refused):
    """Every answered hit is in the store; only hits answered 503 (whose
    flush may have counted before its answer was lost) may add to it."""
    for p, v in truth.views.items():
        check(views.get(p, 0) >= v, "%s: %d views stored, %d answered"
              % (p, views.get(p, 0), v))
    extra = sum(views.values()) - truth.total()
    check(0 <= extra <= refused, "%d views stored past the %d answered "
          "(%d refused)" % (extra, truth.total(), refused))


def answered_after(truth, t):
    return sum(1 for at, _ in truth.answers if at > t)


# ------------------------------------------------------------ a standby

def test_standby_promoted_strict_nodes_go_on():
    primary = pgcluster.Cluster("primary").init().start().make_db()
    standby = pgcluster.Cluster("standby", base=primary.base)
    os.makedirs(standby.datadir, mode=0o700)
    open(standby.logfile, "a").close()
    for path in (standby.datadir, standby.logfile):
        standby._own(path)
    standby.run([pgcluster.binary("pg_basebackup"), "-h", primary.sockdir,
                 "-p", str(primary.port), "-U", pgcluster.ADMIN, "-D",
                 standby.datadir, "-R", "-X", "stream", "--checkpoint=fast"])
    standby.configure()
    standby.start()
    # Synchronous from now on: a commit returns once the standby has it.
    primary.psql("ALTER SYSTEM SET synchronous_standby_names = '*'",
                 db="postgres")
    primary.psql("SELECT pg_reload_conf()", db="postgres")
    u = url([primary.port, standby.port], pgcluster.USER)
    ds = [Daemon(["--store", u, "--durability", "strict",
                  "--count-max-age", "1s"]) for _ in range(2)]
    truth, stop, ts, errors = run_load(ds, threads=4, visitors=40)
    time.sleep(2 * SCALE)
    primary.stop("immediate")
    standby.promote()
    promoted_at = time.monotonic()
    time.sleep(6 * SCALE)
    finish(stop, ts, errors)
    check(answered_after(truth, promoted_at + 1) > 20,
          "the nodes answered %d hits after the promotion: %s"
          % (answered_after(truth, promoted_at + 1), ds[0].stderr()[-800:]))
    wait_flushed(ds)
    views, _, _ = stored_on(url([standby.port], pgcluster.USER))
    check_answered_kept(views, truth, truth.refused)
    for d in ds:
        check(d.alive(), "node died: %s" % d.stderr()[-1000:])
        eq(d.stop(), 0, "exit status")


# ---------------------------------------------------- pg_auto_failover

class AutoFailover:
    """A pg_auto_failover formation on loopback: a monitor and two
    keepers, each under its own `pg_autoctl run`."""

    def __init__(self):
        if not os.access(PG_AUTOCTL, os.X_OK):
            raise Skip("pg_auto_failover is not installed (Debian: "
                       "postgresql-15-auto-failover)")
        self.monitor = pgcluster.Cluster("monitor")
        self.base = self.monitor.base
        self.nodes = [pgcluster.Cluster("node%d" % i, base=self.base)
                      for i in (1, 2)]
        self.procs = {}
        # pg_autoctl makes each data directory itself.
        self.monitor._own(self.base)
        for d in ("config", "share"):
            os.makedirs(os.path.join(self.base, d), exist_ok=True)
            self.monitor._own(os.path.join(self.base, d))

    def autoctl(self, *args, check=True, timeout=120):
        return self.monitor.run(self.env() + [PG_AUTOCTL] + list(args),
                                check=check, timeout=timeout)

    def env(self):
        # pg_autoctl keeps its state under XDG directories: ours.
        return ["env", "PATH=%s:/usr/bin:/bin" % pgcluster.BINDIR,
                "XDG_CONFIG_HOME=" + os.path.join(self.base, "config"),
                "XDG_DATA_HOME=" + os.path.join(self.base, "share")]

    def run(self, c):
        log = open(os.path.join(self.base, c.name + "-autoctl.log"), "ab")
        self.procs[c.name] = subprocess.Popen(
            self.monitor._as_server(self.env() + [
                PG_AUTOCTL, "run", "--pgdata", c.datadir]),
            stdout=log, stderr=log, cwd=self.base,
            preexec_fn=harness._pdeathsig)

    def monitor_uri(self):
        return "postgres://autoctl_node@127.0.0.1:%d/pg_auto_failover" \
            "?sslmode=disable" % self.monitor.port

    def start(self):
        m = self.monitor
        self.autoctl("create", "monitor", "--pgdata", m.datadir,
                     "--pgport", str(m.port), "--hostname", "127.0.0.1",
                     "--auth", "trust", "--no-ssl")
        self.autoctl("config", "set", "--pgdata", m.datadir,
                     "postgresql.listen_addresses", "127.0.0.1")
        self.run(m)
        self.wait(lambda: self.psql_monitor("SELECT 1") == "1",
                  "the monitor to answer")
        # Fail over in seconds, not the default half minute.
        for k, v in (("health_check_period", "1000"),
                     ("health_check_timeout", "1000"),
                     ("health_check_max_retries", "1"),
                     ("health_check_retry_delay", "500"),
                     ("node_considered_unhealthy_timeout", "3000")):
            self.psql_monitor("ALTER SYSTEM SET pgautofailover.%s = %s"
                              % (k, v))
        self.psql_monitor("SELECT pg_reload_conf()")
        for c in self.nodes:
            self.autoctl("create", "postgres", "--pgdata", c.datadir,
                         "--pgport", str(c.port), "--hostname", "127.0.0.1",
                         "--listen", "127.0.0.1", "--auth", "trust",
                         "--no-ssl", "--monitor", self.monitor_uri(),
                         "--dbname", pgcluster.DB, timeout=300)
            self.run(c)
            self.wait_states()
        return self

    def psql_monitor(self, sql):
        return self.psql(self.monitor.port, "pg_auto_failover", sql)

    def psql(self, port, db, sql, check=True):
        psql = pgcluster.binary("psql")
        p = subprocess.run([psql, "-X", "-q", "-A", "-t", "-h", "127.0.0.1",
                            "-p", str(port), "-U", pgcluster.ADMIN, "-d", db,
                            "-c", sql], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        if check and p.returncode != 0:
            return None
        return p.stdout.decode().strip()

    def states(self):
        """node name -> (reported state, assigned state, port), as the
        monitor holds them."""
        out = self.psql_monitor("SELECT nodename, reportedstate, goalstate, "
                                "nodeport FROM pgautofailover.node")
        states = {}
        for line in (out or "").splitlines():
            name, reported, goal, port = line.split("|")
            states[name] = (reported, goal, int(port))
        return states

    def wait_states(self, timeout=240):
        """Waits until every node that is up reports what it was
        assigned, one primary among them; a base backup waits for a
        checkpoint, so one is asked for on the way."""
        def settled():
            s = self.states()
            for c in self.nodes:
                if c.running():
                    self.psql(c.port, "postgres", "CHECKPOINT", check=False)
            return len(s) == sum(c.running() for c in self.nodes) and \
                s and all(r == a for r, a, _ in s.values()) and \
                any(r in ("primary", "single") for r, _, _ in s.values())
        self.wait(settled, "the formation to settle: %r" % (self.states(),),
                  timeout)

    def primary(self):
        for name, (r, _, port) in self.states().items():
            if r in ("primary", "wait_primary", "single"):
                return next(c for c in self.nodes if c.port == port)
        raise Failure("no primary: %r" % (self.states(),))

    def wait(self, cond, what, timeout=120):
        deadline = time.monotonic() + timeout * SCALE
        while not cond():
            if time.monotonic() > deadline:
                raise Failure("waited %d s for %s; logs: %s" % (
                    timeout, what, self.logs()))
            time.sleep(0.5)

    def logs(self):
        out = []
        for name in self.procs:
            try:
                with open(os.path.join(self.base, name + "-autoctl.log"),
                          "rb") as f:
                    out.append("--- %s\n%s" % (name, f.read().decode(
                        "utf-8", "replace")[-800:]))
            except OSError:
                pass
        return "\n".join(out)

    def stop_node(self, c):
        """The keeper and its postgres go down, as with a lost machine."""
        self.autoctl("stop", "--pgdata", c.datadir, "--immediate",
                     check=False)
        p = self.procs.pop(c.name, None)
        if p is not None:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
        c.stop("immediate")

    def destroy(self):
        for c in self.nodes + [self.monitor]:
            self.autoctl("stop", "--pgdata", c.datadir, "--immediate",
                         check=False)
        for p in self.procs.values():
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        for c in self.nodes + [self.monitor]:
            c.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)


def test_pg_auto_failover_nodes_go_on_counting():
    f = AutoFailover()
    try:
        f.start()
        old = f.primary()
        # The nodes' role: owner of the database, no superuser.
        f.psql(old.port, "postgres", "CREATE ROLE %s LOGIN"
               % pgcluster.USER)
        f.psql(old.port, "postgres", "ALTER DATABASE %s OWNER TO %s"
               % (pgcluster.DB, pgcluster.USER))
        u = url([c.port for c in f.nodes], pgcluster.USER)
        ds = [Daemon(["--store", u, "--count-max-age", "1s",
                      "--commit-interval", "100ms"]) for _ in range(2)]
        truth, stop, ts, errors = run_load(ds, threads=4, visitors=40)
        time.sleep(2 * SCALE)
        f.stop_node(old)
        stopped_at = time.monotonic()
        new = next(c for c in f.nodes if c is not old)
        f.wait(lambda: f.states().get(
            next(n for n, (_, _, p) in f.states().items()
                 if p == new.port), ("",))[0] in
            ("primary", "wait_primary", "single"),
            "the monitor to promote %s" % new.name)
        promoted = time.monotonic()
        time.sleep(4 * SCALE)
        finish(stop, ts, errors)
        eq(truth.refused, 0, "batch hits refused during the failover")
        check(answered_after(truth, promoted + 1) > 20,
              "hits answered after the promotion: %d"
              % answered_after(truth, promoted + 1))
        wait_flushed(ds, timeout=60)
        views, _, site = stored_on(url([new.port], pgcluster.USER))
        eq(views, truth.views, "views per page after the failover "
           "(%.1f s from stop to promotion)" % (promoted - stopped_at))
        eq(site[0], truth.total(), "site views")
        for d in ds:
            eq(d.stop(), 0, "exit status")
    finally:
        f.destroy()


if __name__ == "__main__":
    harness.main(globals(), setup=pgcluster.need_postgres)
