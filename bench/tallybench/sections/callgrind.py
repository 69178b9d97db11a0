"""Instructions per request under valgrind --tool=callgrind, for tallyd's
GET /hit and for nginx answering the same bytes from a static file; for
strict hits (64 connections, the commits they ask for included); and for
a new connection per request, tallyd against nginx (--cg-modes).

Each server runs twice under callgrind: start, warm-up requests, stop;
and start, warm-up plus the measured requests, stop. The difference of
the two runs is the measured requests alone: start-up, shutdown, the
first hit that makes the series and the warm-up cancel out. tallyd also
runs once with no request at all (start and stop), as a check.

tallyd's committer commits on a timer (commit_interval, 100 ms), so the
number of commits in a run follows how long the run took, not how many
hits it had: under callgrind, on a busy machine, from dozens to hundreds
of commits of about 50,000 instructions each, which the difference of two
runs does not cancel. Here the timer is an hour: each run commits once,
at exit, and the hits' own work (into the pending batch, the answer's
store reads) is all that the difference holds. The warm-up is committed
(through /healthz) before the measured hits, so that they read the page,
the site and the visitor from the store, as hits do a moment after a
page's first one. A commit's own cost is
measured apart: a run that asks for five commits among its hits (the
full run makes one, at exit), the instructions of the function commit()
in it against those in the full run, per commit more. At real rates one commit serves thousands of hits.
"""

import os
import re
import shutil
import subprocess
import time

import harness

from .. import procs
from ..common import BenchError, fmt_int, log
from ..hits import HitClient
from ..servers import Nginx, Tallyd
from . import rss


def callgrind_total(path):
    total = None
    with open(path) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                total = int(line.split()[1])
    if total is None:
        raise BenchError("no totals in %s" % path)
    return total


def function_total(path, name):
    """The instructions of one of tallyd's functions, with all it calls
    (callgrind_annotate --inclusive), or None when it is not there."""
    p = subprocess.run(["callgrind_annotate", "--inclusive=yes",
                        "--threshold=100", path],
                       capture_output=True, text=True)
    pat = re.compile(r"^\s*([\d,]+)\s.*:%s \[.*tallyd\]$" %
                     re.escape(name))
    for line in p.stdout.splitlines():
        m = pat.match(line)
        if m:
            return int(m.group(1).replace(",", ""))
    return None


def valgrind(out):
    return ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out]


# How each mode's hits are sent: (durability, connections, a new
# connection per request). "batch" is the figure set against nginx's;
# "strict" has as many connections as wrk has in the throughput section,
# so that a commit carries what a commit there carries, about; "close" is
# what a client costs that opens a connection for each request.
MODES = {
    "batch": ("batch", 4, False),
    "strict": ("strict", 64, False),
    "close": ("batch", 4, True),
}


def send(port, label, counts, conns=4, close=False):
    """Each of counts in turn as GET /hit?path=/bench, one at a time on
    each of conns keep-alive connections (with close, a new connection
    for each); every answer must be a 200 that says "counted":true
    (nginx's file is such an answer)."""
    client = HitClient(port, conns=conns, depth=1, close=close)
    for n in counts:
        if n:
            res = client.run(["/hit?path=/bench"] * n)
            if res["counted"] != n:
                raise BenchError("callgrind run %s: %d of %d hits counted "
                                 "(%s)" % (label, res["counted"], n,
                                           "; ".join(res["errors"][:2])))
    time.sleep(0.3)


def commits_so_far(port, label):
    """tally_store_commits_total from /metrics."""
    st, _, body = harness.request(port, "GET", "/metrics", timeout=60)
    if st != 200:
        raise BenchError("callgrind run %s: /metrics %d" % (label, st))
    m = re.search(rb"^tally_store_commits_total (\d+)$", body, re.M)
    if m is None:
        raise BenchError("callgrind run %s: no commit count in /metrics" %
                         label)
    return int(m.group(1))


# Commits in the "commit" run: one after each equal share of its hits.
COMMITS = 5


def commit_now(port, label):
    """Has tallyd commit what is pending: /healthz writes it when the last
    commit is over a second old."""
    time.sleep(1.1)
    st, _, body = harness.request(port, "GET", "/healthz", timeout=60)
    if st != 200:
        raise BenchError("callgrind run %s: /healthz %d %s" % (
            label, st, body))


def send_commits(td, hits):
    """hits in COMMITS shares, each followed by a commit."""
    for i in range(COMMITS):
        send(td.port, "commit", (hits // COMMITS,))
        commit_now(td.port, "commit")


# Longer than any run: the only commit is the one at exit.
COMMIT_INTERVAL = ["--commit-interval", "1h"]


def one(label, warm, hits, extra=COMMIT_INTERVAL, mode="batch"):
    """One tallyd under callgrind: returns its instruction count, that
    of its commits, and how many commits the measured hits made."""
    durability, conns, close = MODES[mode]
    tmp = procs.tmpdir()
    data = os.path.join(tmp, "cg-data-" + label)
    out = os.path.join(tmp, "callgrind-%s.out" % label)
    td = Tallyd(data, durability, name="tallyd-cg-" + label, extra=extra,
                wrapper=valgrind(out), ready_timeout=120)
    commits = None
    try:
        # The warm-up's page, site and visitor are in the store before
        # the measured hits, as they are a moment after a page's first
        # hit: the hits read them from there.
        if warm:
            send(td.port, label, (warm,), conns, close)
            commit_now(td.port, label)
        if label == "commit":
            send_commits(td, hits)
        elif hits:
            before = commits_so_far(td.port, label)
            send(td.port, label, (hits,), conns, close)
            commits = commits_so_far(td.port, label) - before
    finally:
        rc = td.stop(timeout=120)
    if rc:
        raise BenchError("tallyd under valgrind exited %d:\n%s" % (
            rc, td.log_tail()))
    shutil.rmtree(data, ignore_errors=True)
    return callgrind_total(out), function_total(out, "commit"), commits


def one_nginx(args, answer, headers, label, warm, hits, close=False):
    """nginx (one process) under callgrind: its instruction count."""
    out = os.path.join(procs.tmpdir(), "callgrind-%s.out" % label)
    ng = Nginx(args.nginx, answer, headers, None, wrapper=valgrind(out),
               ready_timeout=120)
    try:
        send(ng.port, label, (warm, hits), close=close)
    finally:
        rc = ng.stop(timeout=120)
    if rc:
        raise BenchError("nginx under valgrind exited %d" % rc)
    return callgrind_total(out)


def nginx_answer(R):
    """The answer nginx serves: the RSS run's, or one from a fresh
    tallyd when that run was skipped."""
    if R.get("answer_body"):
        return R["answer_body"], R.get("answer_headers", {})
    td = Tallyd(os.path.join(procs.tmpdir(), "cg-answer"), "batch",
                name="tallyd-cg-answer")
    try:
        body = rss.answer(td, R)
    finally:
        td.stop()
    return body, R.get("answer_headers", {})


def run_batch(args, R):
    w, n = args.cg_warmup, args.hits
    log("callgrind: tallyd start/stop")
    idle, _, _ = one("idle", 0, 0)
    log("callgrind: tallyd start, %s warm-up hits, stop" % fmt_int(w))
    warm, _, _ = one("warm", w, 0)
    log("callgrind: tallyd start, %s warm-up + %s hits, stop" % (
        fmt_int(w), fmt_int(n)))
    full, full_commits, _ = one("full", w, n)
    log("callgrind: tallyd start, %s warm-up + %s hits with %d commits "
        "among them, stop" % (fmt_int(w), fmt_int(n), COMMITS))
    _, commits, _ = one("commit", w, n)
    R["cg"] = {"idle": idle, "warm": warm, "full": full, "warmup": w,
               "hits": n, "per_hit": (full - warm) / n,
               "per_hit_idle": (full - idle) / (w + n),
               "commits": COMMITS}
    if commits is not None and full_commits is not None:
        # The full run commits its hits once, at exit: four more here.
        R["cg"]["per_commit"] = (commits - full_commits) / (COMMITS - 1)
    log("  tallyd Ir idle %s, warm %s, full %s: %.0f Ir per hit; %s Ir "
        "per commit" % (
            fmt_int(idle), fmt_int(warm), fmt_int(full), R["cg"]["per_hit"],
            fmt_int(round(R["cg"].get("per_commit", 0)))))


def run_strict(args, R):
    """Strict hits on 64 connections: each hit's work, its share of the
    commits that its wait asks for, and the hand-back of its answer."""
    w, n = args.cg_warmup, args.hits
    log("callgrind: tallyd strict, 64 connections, %s warm-up hits, stop" %
        fmt_int(w))
    warm, warm_commit, _ = one("strict-warm", w, 0, mode="strict")
    log("callgrind: tallyd strict, %s warm-up + %s hits, stop" % (
        fmt_int(w), fmt_int(n)))
    full, full_commit, commits = one("strict-full", w, n, mode="strict")
    c = R["cg_strict"] = {"per_hit": (full - warm) / n, "hits": n,
                          "commits": commits}
    # How many hits share a commit follows the timing of the run (a
    # commit starts as soon as the committer is free): the commits'
    # instructions are also given apart.
    if commits and full_commit is not None and warm_commit is not None:
        ir = full_commit - warm_commit
        c["per_commit"] = ir / commits
        c["per_hit_no_commit"] = (full - warm - ir) / n
    log("  strict: %.0f Ir per hit, %s commits (%.1f hits each); %.0f Ir "
        "per hit without the commits, %.0f per commit" % (
            c["per_hit"], fmt_int(commits or 0),
            n / commits if commits else 0, c.get("per_hit_no_commit", 0),
            c.get("per_commit", 0)))


def run_close(args, R, answer, headers):
    """A new connection for each request: what accepting, setting up and
    freeing a connection costs, tallyd against nginx."""
    w, n = args.cg_warmup, args.hits
    log("callgrind: tallyd, a connection per request, %s warm-up hits" %
        fmt_int(w))
    warm, _, _ = one("close-warm", w, 0, mode="close")
    log("callgrind: tallyd, a connection per request, %s + %s hits" % (
        fmt_int(w), fmt_int(n)))
    full, _, _ = one("close-full", w, n, mode="close")
    R["cg_close"] = {"per_req": (full - warm) / n, "hits": n}
    log("  tallyd: %.0f Ir per request on its own connection" %
        R["cg_close"]["per_req"])
    if answer is None:
        return
    nwarm = one_nginx(args, answer, headers, "nginx-close-warm", w, 0,
                      close=True)
    nfull = one_nginx(args, answer, headers, "nginx-close-full", w, n,
                      close=True)
    R["cg_close"]["nginx_per_req"] = (nfull - nwarm) / n
    log("  nginx: %.0f Ir per request on its own connection; tallyd/nginx "
        "%.2f" % (R["cg_close"]["nginx_per_req"],
                  R["cg_close"]["per_req"] / R["cg_close"]["nginx_per_req"]))


def run(args, exes, R):
    w, n = args.cg_warmup, args.hits
    modes = args.cg_modes
    if "batch" in modes:
        run_batch(args, R)
    if "strict" in modes:
        run_strict(args, R)
    if not os.access(args.nginx, os.X_OK):
        R["cg_nginx_error"] = "nginx not installed"
        if "close" in modes:
            run_close(args, R, None, None)
        return
    answer, headers = nginx_answer(R)
    if "close" in modes:
        run_close(args, R, answer, headers)
    if "batch" not in modes:
        return
    log("callgrind: nginx start, %s warm-up requests, stop" % fmt_int(w))
    nwarm = one_nginx(args, answer, headers, "nginx-warm", w, 0)
    log("callgrind: nginx start, %s warm-up + %s requests, stop" % (
        fmt_int(w), fmt_int(n)))
    nfull = one_nginx(args, answer, headers, "nginx-full", w, n)
    R["cg"]["nginx_per_hit"] = (nfull - nwarm) / n
    log("  nginx Ir warm %s, full %s: %.0f Ir per request; tallyd/nginx "
        "%.2f" % (fmt_int(nwarm), fmt_int(nfull), R["cg"]["nginx_per_hit"],
                  R["cg"]["per_hit"] / R["cg"]["nginx_per_hit"]))
