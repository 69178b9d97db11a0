"""Many clients: tallyd (batch) against nginx with 1,000 and 10,000
keep-alive connections, and with a new connection for each request.

Each case runs nginx, then tallyd, back to back, so that each ratio
compares two runs taken next to each other; with --rounds, every case
once per round, and the median ratio is reported. tallyd's max_connections
(4096 per thread by default) is raised with --max-connections as
tallyd.conf(5) documents, and nginx's worker_connections with it. Both
servers, and wrk, need a descriptor per connection: the soft limit of
open files is raised to the hard limit first.
"""

import os
import resource
import shutil
import statistics

from .. import procs
from ..common import BenchError, fmt_ms, log
from ..servers import Nginx, Tallyd
from ..wrk import wrk

# (label, connections, a new connection per request)
CASES = (("1k", 1000, False), ("10k", 10000, False), ("close", 64, True))


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard == resource.RLIM_INFINITY else max(soft, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want != resource.RLIM_INFINITY and want < need:
        raise BenchError("%d open files needed; the limit is %d" % (
            need, want))


def one(args, port, label, conns, close):
    target = "/hit?path=/bench"
    if args.warmup:
        wrk(args, port, target, args.warmup, label + "-warmup",
            connections=conns, close=close)
    r = wrk(args, port, target, args.duration, label, connections=conns,
            close=close)
    log("  %s: %.0f req/s, p50 %s, p99 %s; %d answered 200, %d errors" % (
        label, r["rps"], fmt_ms(r["p50_us"]), fmt_ms(r["p99_us"]), r["ok"],
        r["connect"] + r["read"] + r["write"] + r["timeout"]))
    return r


def one_case(args, answer, headers, label, conns, close, sfx):
    """nginx, then tallyd right after: one ratio of two runs taken next
    to each other."""
    room = conns + 100
    log("clients %s%s: nginx, then tallyd batch" % (label, sfx))
    ng = Nginx(args.nginx, answer, headers, args.server_cpu,
               connections=room)
    try:
        rn = one(args, ng.port, "clients-%s-nginx%s" % (label, sfx), conns,
                 close)
    finally:
        ng.stop()
    data = os.path.join(procs.tmpdir(), "data-clients-" + label)
    td = Tallyd(data, "batch", cpu=args.server_cpu,
                extra=["--max-connections", str(room)],
                name="tallyd-clients-%s%s" % (label, sfx))
    try:
        rt = one(args, td.port, "clients-%s-tallyd%s" % (label, sfx), conns,
                 close)
    finally:
        rc = td.stop()
    shutil.rmtree(data, ignore_errors=True)
    if rc:
        raise BenchError("tallyd exited %d:\n%s" % (rc, td.log_tail()))
    if rn["rps"] > 0:
        log("  tallyd / nginx %.2f" % (rt["rps"] / rn["rps"]))
    return rn, rt


def median_run(runs):
    """The run of median req/s (its own p99 and errors with it)."""
    return sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]


def run(args, exes, R, answer):
    if answer is None:
        raise BenchError("no tallyd answer to serve with nginx")
    headers = R.get("answer_headers", {})
    cases = [c for c in CASES if c[0] in args.clients_cases]
    if not cases:
        return
    # Each process (server, wrk) needs a descriptor per connection.
    raise_nofile(max(conns for _, conns, _ in cases) + 512)
    runs = {label: [] for label, _, _ in cases}
    # --rounds: every case once per round, so that a busy moment of the
    # machine falls on all of them rather than on one.
    for i in range(1, args.rounds + 1):
        sfx = "-%d" % i if args.rounds > 1 else ""
        for label, conns, close in cases:
            runs[label].append(one_case(args, answer, headers, label, conns,
                                        close, sfx))
    R["clients"] = {}
    for label, conns, close in cases:
        # A run with no answers (wrk still connecting when it ended)
        # has no ratio.
        ratios = [rt["rps"] / rn["rps"] for rn, rt in runs[label]
                  if rn["rps"] > 0]
        if not ratios:
            R["clients_error"] = ("%s: nginx answered nothing in %d s; try "
                                  "a longer --duration" % (label,
                                                           args.duration))
            continue
        R["clients"][label] = {
            "conns": conns, "close": close,
            "nginx": median_run([rn for rn, _ in runs[label]]),
            "tallyd": median_run([rt for _, rt in runs[label]]),
            "ratio": statistics.median(ratios), "ratios": ratios}
