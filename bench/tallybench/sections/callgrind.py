"""Instructions per request under valgrind --tool=callgrind, for tallyd's
GET /hit and for nginx answering the same bytes from a static file.

Each server runs twice under callgrind: start, warm-up requests, stop;
and start, warm-up plus the measured requests, stop. The difference of
the two runs is the measured requests alone: start-up, shutdown, the
first hit that makes the series and the warm-up cancel out. tallyd also
runs once with no request at all (start and stop), as a check.
"""

import os
import shutil
import time

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


def valgrind(out):
    return ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out]


def send(port, label, counts):
    """Each of counts in turn as GET /hit?path=/bench, one at a time on
    each of 4 keep-alive connections; every answer must be a 200 that
    says "counted":true (nginx's file is such an answer)."""
    client = HitClient(port, conns=4, depth=1)
    for n in counts:
        if n:
            res = client.run(["/hit?path=/bench"] * n)
            if res["counted"] != n:
                raise BenchError("callgrind run %s: %d of %d hits counted "
                                 "(%s)" % (label, res["counted"], n,
                                           "; ".join(res["errors"][:2])))
    time.sleep(0.3)


def one(label, warm, hits):
    """One tallyd under callgrind: returns its instruction count."""
    tmp = procs.tmpdir()
    data = os.path.join(tmp, "cg-data-" + label)
    out = os.path.join(tmp, "callgrind-%s.out" % label)
    td = Tallyd(data, "batch", name="tallyd-cg-" + label,
                wrapper=valgrind(out), ready_timeout=120)
    try:
        send(td.port, label, (warm, hits))
    finally:
        rc = td.stop(timeout=120)
    if rc:
        raise BenchError("tallyd under valgrind exited %d:\n%s" % (
            rc, td.log_tail()))
    shutil.rmtree(data, ignore_errors=True)
    return callgrind_total(out)


def one_nginx(args, answer, headers, label, warm, hits):
    """nginx (one process) under callgrind: its instruction count."""
    out = os.path.join(procs.tmpdir(), "callgrind-%s.out" % label)
    ng = Nginx(args.nginx, answer, headers, None, wrapper=valgrind(out),
               ready_timeout=120)
    try:
        send(ng.port, label, (warm, hits))
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


def run(args, exes, R):
    w, n = args.cg_warmup, args.hits
    log("callgrind: tallyd start/stop")
    idle = one("idle", 0, 0)
    log("callgrind: tallyd start, %s warm-up hits, stop" % fmt_int(w))
    warm = one("warm", w, 0)
    log("callgrind: tallyd start, %s warm-up + %s hits, stop" % (
        fmt_int(w), fmt_int(n)))
    full = one("full", w, n)
    R["cg"] = {"idle": idle, "warm": warm, "full": full, "warmup": w,
               "hits": n, "per_hit": (full - warm) / n,
               "per_hit_idle": (full - idle) / (w + n)}
    log("  tallyd Ir idle %s, warm %s, full %s: %.0f Ir per hit" % (
        fmt_int(idle), fmt_int(warm), fmt_int(full), R["cg"]["per_hit"]))
    if not os.access(args.nginx, os.X_OK):
        R["cg_nginx_error"] = "nginx not installed"
        return
    answer, headers = nginx_answer(R)
    log("callgrind: nginx start, %s warm-up requests, stop" % fmt_int(w))
    nwarm = one_nginx(args, answer, headers, "nginx-warm", w, 0)
    log("callgrind: nginx start, %s warm-up + %s requests, stop" % (
        fmt_int(w), fmt_int(n)))
    nfull = one_nginx(args, answer, headers, "nginx-full", w, n)
    R["cg"]["nginx_per_hit"] = (nfull - nwarm) / n
    log("  nginx Ir warm %s, full %s: %.0f Ir per request; tallyd/nginx "
        "%.2f" % (fmt_int(nwarm), fmt_int(nfull), R["cg"]["nginx_per_hit"],
                  R["cg"]["per_hit"] / R["cg"]["nginx_per_hit"]))
