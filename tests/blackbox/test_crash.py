#!/usr/bin/env python3
"""Crash tests under concurrent load (issue 8, item 1).

Several client threads, each on its own keep-alive connection with a
browser User-Agent and its own page, count as fast as tallyd answers; each
records the moment every 200 "counted": true answer arrived. Then tallyd
is killed in the middle of the load and the store is read back:

  strict  + kill -9   stored >= every acknowledged hit (and >= the highest
                      page.views an answer showed);
  batch   + kill -9   every hit acknowledged more than one commit interval
                      (+ scheduling slack) before the kill is stored;
  any     + SIGTERM   exit 0 and stored >= acknowledged;
  always              stored <= sent, `tallyctl check` clean on the store
                      the crash left, the site's total = the sum of its
                      pages (pages and site are committed together), and
                      tallyctl and the restarted tallyd agree.

20 cycles (8 strict, 8 batch, 4 SIGTERM) on one data directory, each with
1-1.6 s of load. TALLY_CRASH_CYCLES=N changes the number of cycles,
TALLY_CRASH_SLACK=seconds the scheduling slack (default 0.2).
"""

import http.client
import json
import os
import random
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (BROWSER_UA, Daemon, Failure, check, eq,  # noqa: E402
                     run_tallyctl)

CLIENTS = 4
INTERVAL = 0.100            # --commit-interval
# What a batch-mode crash may lose: the hits of the interval being
# gathered plus the one being written; the slack covers a commit's fsync
# and the committer thread waiting for a core (2 cores, 4 clients, ASan).
SLACK = float(os.environ.get("TALLY_CRASH_SLACK", "0.200"))
WINDOW = INTERVAL + SLACK
SCALE = float(os.environ.get("TALLY_TIME_SCALE", "1"))
PROBLEMS = []


class Client(threading.Thread):
    """Counts one page over a keep-alive connection until stopped."""

    def __init__(self, d, path, ua, stop, killed):
        super().__init__(daemon=True)
        self.d = d
        self.path = path
        self.target = "/hit?" + harness.query(path=path)
        self.ua = ua
        self.stop = stop
        self.killed = killed
        self.sent = 0          # requests written (an upper bound)
        self.acks = []         # monotonic time of each counted 200
        self.max_views = 0     # highest page.views in an answer
        self.errors = []       # unexpected answers before the kill

    def run(self):
        conn = None
        while not self.stop.is_set():
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.d.port,
                                                  timeout=5 * SCALE)
            try:
                self.sent += 1
                conn.request("GET", self.target,
                             headers={"User-Agent": self.ua})
                r = conn.getresponse()
                body = r.read()
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                conn = None
                if self.killed.is_set():
                    break
                # Before any signal a dropped connection is a failure, but
                # the request may have been counted: it stays in sent.
                self.errors.append("connection error before the kill: %r"
                                   % (e,))
                time.sleep(0.01)
                continue
            t = time.monotonic()
            if r.status == 200:
                try:
                    c = json.loads(body.decode("utf-8"))
                except ValueError:
                    self.errors.append("200 with no JSON: %r" % body[:100])
                    continue
                if c.get("counted") is True:
                    self.acks.append(t)
                    self.max_views = max(self.max_views, c["page"]["views"])
                else:
                    self.errors.append("not counted: %r" % (c,))
            elif not self.killed.is_set():
                self.errors.append("status %d: %r" % (r.status, body[:200]))
            if (r.getheader("Connection") or "").lower() == "close":
                conn.close()
                conn = None
        if conn is not None:
            conn.close()


def ctl_views(data, path):
    rc, out, err = run_tallyctl("--data", data, "--json", "page", path)
    eq(rc, 0, "tallyctl page %s exit code (stderr %r)" % (path, err[:300]))
    try:
        c = json.loads(out)
    except ValueError:
        raise Failure("tallyctl page %s: not JSON: %r" % (path, out[:300]))
    return c["page"]["views"], c["total"]["views"]


def ctl_check(data, what):
    rc, out, err = run_tallyctl("--data", data, "check", timeout=60)
    check(rc == 0, "%s: tallyctl check exit %d: %s %s"
          % (what, rc, out[-600:], err[-600:]))


def mode_args(mode):
    durability = "strict" if mode == "strict" else "batch"
    return ["--durability", durability, "--commit-interval",
            "%dms" % (INTERVAL * 1000), "--threads", "2"]


def load_then_signal(d, cycle, mode, rng):
    """Runs the clients, signals tallyd mid-load; returns (clients,
    monotonic time of the signal, exit code)."""
    stop = threading.Event()
    killed = threading.Event()
    clients = []
    for k in range(CLIENTS):
        ua = BROWSER_UA.replace("126.0.0.0", "126.0.%d.%d" % (cycle, k))
        clients.append(Client(d, "/crash/%d/%s/%d" % (cycle, mode, k), ua,
                              stop, killed))
    for c in clients:
        c.start()
    time.sleep(rng.uniform(1.0, 1.6))
    killed.set()
    t_kill = time.monotonic()
    if mode == "sigterm":
        rc = d.stop(signal.SIGTERM, timeout=20 * SCALE)
    else:
        rc = d.kill9()
    stop.set()
    for c in clients:
        c.join(15 * SCALE)
        check(not c.is_alive(), "a client thread did not stop")
    for c in clients:
        check(not c.errors, "cycle %d (%s) %s: %s"
              % (cycle, mode, c.path, "; ".join(c.errors[:3])))
    return clients, t_kill, rc


def verify_cycle(d, cycle, mode, clients, t_kill, rc, stored_total):
    """Checks one cycle's pages on the store the crash left (tallyctl),
    then through the restarted daemon. Returns the new expected total."""
    acked_total = sum(len(c.acks) for c in clients)
    dur = max((c.acks[-1] for c in clients if c.acks), default=t_kill) - \
        min((c.acks[0] for c in clients if c.acks), default=t_kill)
    check(acked_total > 0, "cycle %d (%s): no hit was acknowledged"
          % (cycle, mode))
    if mode == "sigterm":
        # Reported at the end, so that one bad exit (say a sanitizer's
        # report) does not hide what the other cycles show.
        if rc != 0:
            PROBLEMS.append("cycle %d: exit code %r after SIGTERM under "
                            "load" % (cycle, rc))
    else:
        eq(rc, -signal.SIGKILL, "cycle %d: tallyd's end" % cycle)
    err = d.stderr()
    for mark in ("runtime error:", "Sanitizer"):
        i = err.find(mark)
        if i >= 0:
            PROBLEMS.append("cycle %d (%s): a report in tallyd's stderr: %s"
                            % (cycle, mode, err[max(0, i - 200):i + 1500]))
            break
    ctl_check(d.data, "cycle %d (%s), right after the %s"
              % (cycle, mode, "SIGTERM" if mode == "sigterm" else "kill -9"))

    lost, oldest = 0, 0.0
    cycle_stored = 0
    for c in clients:
        stored, _ = ctl_views(d.data, c.path)
        cycle_stored += stored
        acked = len(c.acks)
        what = "cycle %d (%s) %s" % (cycle, mode, c.path)
        check(stored <= c.sent, "%s: %d stored, but only %d requests were "
              "sent" % (what, stored, c.sent))
        if mode in ("strict", "sigterm"):
            check(stored >= acked, "%s: %d stored < %d acknowledged (lost %d)"
                  % (what, stored, acked, acked - stored))
            check(stored >= c.max_views, "%s: %d stored, but an answer "
                  "already showed page.views %d" % (what, stored,
                                                     c.max_views))
        else:
            old = sum(1 for t in c.acks if t < t_kill - WINDOW)
            recent = acked - old
            check(stored >= old, "%s: %d stored, but %d hits were "
                  "acknowledged more than %.0f ms before the kill (lost %d "
                  "of %d acknowledged; %d in the last %.0f ms)"
                  % (what, stored, old, WINDOW * 1000, acked - stored, acked,
                     recent, WINDOW * 1000))
            if stored < acked:
                # How far back the loss reached, for the log.
                lost += acked - stored
                oldest = max(oldest, t_kill - c.acks[stored])
    rate = acked_total / dur if dur > 0 else 0.0
    print("#   cycle %2d %-7s: %5d acknowledged (%4.0f/s), %5d stored%s"
          % (cycle, mode, acked_total, rate, cycle_stored,
             "; %d lost, the oldest acknowledged %.0f ms before the kill"
             % (lost, oldest * 1000) if lost else ""), flush=True)
    return stored_total + cycle_stored


def verify_after_restart(d, cycle, mode, clients, stored_total):
    """The restarted daemon shows what tallyctl read, and the site's
    total equals the sum of all pages ever stored."""
    for c in clients:
        stored, _ = ctl_views(d.data, c.path)
        got = d.count(c.path)
        eq(got["page"]["views"], stored, "cycle %d (%s) %s: /count after "
           "restart vs. tallyctl" % (cycle, mode, c.path))
    eq(d.count("/")["total"]["views"], stored_total,
       "cycle %d: the site's total views vs. the sum of its pages" % cycle)


def schedule():
    n = int(os.environ.get("TALLY_CRASH_CYCLES", "20"))
    base = ["strict", "batch", "strict", "batch", "sigterm"]
    return [base[i % len(base)] for i in range(n)]


def test_crash_cycles_under_load():
    rng = random.Random(os.environ.get("TALLY_CRASH_SEED", "8"))
    modes = schedule()
    d = Daemon(mode_args(modes[0]))
    stored_total = 0
    t0 = time.monotonic()
    for cycle, mode in enumerate(modes):
        if cycle > 0:
            # Restart in this cycle's mode; check the last cycle through
            # the new daemon.
            d.args = mode_args(mode)
            d.start()
            verify_after_restart(d, cycle - 1, prev_mode, prev_clients,
                                 stored_total)
        clients, t_kill, rc = load_then_signal(d, cycle, mode, rng)
        stored_total = verify_cycle(d, cycle, mode, clients, t_kill, rc,
                                    stored_total)
        prev_mode, prev_clients = mode, clients
    d.args = mode_args("batch")
    d.start()
    verify_after_restart(d, len(modes) - 1, prev_mode, prev_clients,
                         stored_total)
    # Counting goes on on top of all that.
    c = d.hit("/crash/after")
    eq(c["total"]["views"], stored_total + 1, "total after one more hit")
    rc = d.stop()
    ctl_check(d.data, "at the end")
    print("# %d cycles in %.1f s" % (len(modes), time.monotonic() - t0))
    if rc != 0:
        PROBLEMS.append("exit code %r of the last SIGTERM (idle); stderr: %s"
                        % (rc, d.stderr()[-1500:]))
    check(not PROBLEMS, "\n  ".join(PROBLEMS))


def test_strict_kill9_right_after_answers():
    """kill -9 the moment an answer arrives, many times in a row: in strict
    mode that answer's hit is on disk already."""
    d = Daemon(mode_args("strict"))
    total = 0
    for i in range(5):
        n = 20 + i * 7
        conn = d.connect()
        try:
            last = None
            for _ in range(n):
                conn.request("GET", "/hit?path=%2Fquick",
                             headers={"User-Agent": BROWSER_UA})
                r = conn.getresponse()
                eq(r.status, 200, "status")
                last = harness.parse_json(r.read())
            d.kill9()       # no pause: nothing but the disk has them
        finally:
            conn.close()
        total += n
        eq(last["page"]["views"], total, "page.views of the last answer")
        eq(ctl_views(d.data, "/quick")[0], total,
           "stored after kill -9 number %d" % (i + 1))
        ctl_check(d.data, "after kill -9 number %d" % (i + 1))
        d.start()


if __name__ == "__main__":
    harness.main(globals())
