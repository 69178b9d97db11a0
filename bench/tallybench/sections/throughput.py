"""Throughput and latency of tallyd against nginx, driven by wrk, and
the check that every hit wrk saw answered is in the store.

The runs go back to back: nginx, tallyd batch, nginx again, tallyd
strict, so that each ratio compares two runs taken next to each other.
"""

import json
import os
import shutil
import statistics
import time

from .. import procs
from ..common import BenchError, fmt_int, fmt_ms, log
from ..servers import Nginx, Tallyd
from ..store import tallyctl
from ..wrk import wrk


def fsync_latency(directory, n=50):
    """Median time of a 4 KiB write plus fdatasync in directory: what a
    strict hit waits for twice (its commit's pages, then its meta page)."""
    path = os.path.join(directory, "fsync-probe")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        times = []
        for i in range(n):
            os.pwrite(fd, b"x" * 4096, (i % 16) * 4096)
            t = time.perf_counter()
            os.fdatasync(fd)
            times.append(time.perf_counter() - t)
    finally:
        os.close(fd)
        os.unlink(path)
    return statistics.median(times)


def run_nginx(args, answer, headers, label):
    ng = Nginx(args.nginx, answer, headers, args.server_cpu)
    try:
        if args.warmup:
            wrk(args, ng.port, "/hit?path=/bench", args.warmup,
                label + "-warmup")
        log("wrk -> nginx (%s), %d s" % (label, args.duration))
        r = wrk(args, ng.port, "/hit?path=/bench", args.duration, label)
    finally:
        ng.stop()
    log("  %.0f req/s, p50 %s, p99 %s" % (r["rps"], fmt_ms(r["p50_us"]),
                                         fmt_ms(r["p99_us"])))
    return r


def _stored_ctl(data, r):
    """/bench's views read from the store by tallyctl, after SIGTERM."""
    ok, out, msg = tallyctl(data, ["page", "/bench"], json_out=True)
    if not ok:
        r["stored_ctl_err"] = "tallyctl page failed: " + msg
        return
    try:
        r["stored_ctl"] = json.loads(out)["page"]["views"]
    except (ValueError, KeyError) as e:
        r["stored_ctl_err"] = "bad JSON from tallyctl page: %s" % e


def run_tallyd(args, mode):
    """One wrk run on a tallyd with an empty store; the warm-up hits
    /warmup, so that /bench counts only the measured run."""
    data = os.path.join(procs.tmpdir(), "data-" + mode)
    td = Tallyd(data, mode, cpu=args.server_cpu, name="tallyd-" + mode)
    try:
        if args.warmup:
            wrk(args, td.port, "/hit?path=/warmup", args.warmup,
                mode + "-warmup")
        log("wrk -> tallyd %s, %d s" % (mode, args.duration))
        r = wrk(args, td.port, "/hit?path=/bench", args.duration, mode)
        log("  %.0f req/s, p50 %s, p99 %s; %s answered 200" % (
            r["rps"], fmt_ms(r["p50_us"]), fmt_ms(r["p99_us"]),
            fmt_int(r["ok"])))
        time.sleep(0.5)     # > commit_interval (100 ms)
        try:
            r["stored_live"] = td.counts("/bench")["page"]["views"]
        except (BenchError, OSError, ValueError, KeyError) as e:
            r["stored_live_err"] = str(e)
    finally:
        rc = td.stop()
    r["exit"] = rc
    if rc:
        log("tallyd %s exited %d after SIGTERM:\n%s" % (
            mode, rc, td.log_tail()))
    _stored_ctl(data, r)
    log("  stored: %s (GET /count), %s (tallyctl page after SIGTERM)" % (
        fmt_int(r["stored_live"]) if "stored_live" in r
        else r.get("stored_live_err"),
        fmt_int(r["stored_ctl"]) if "stored_ctl" in r
        else r.get("stored_ctl_err")))
    shutil.rmtree(data, ignore_errors=True)
    return r


def one_round(args, answer, headers, sfx):
    rd = {}
    rd["nginx_a"] = run_nginx(args, answer, headers, "nginx-a" + sfx)
    rd["batch"] = run_tallyd(args, "batch")
    rd["nginx_b"] = run_nginx(args, answer, headers, "nginx-b" + sfx)
    rd["strict"] = run_tallyd(args, "strict")
    rd["batch"]["ratio"] = rd["batch"]["rps"] / rd["nginx_a"]["rps"]
    rd["strict"]["ratio"] = rd["strict"]["rps"] / rd["nginx_b"]["rps"]
    return rd


def aggregate(runs, tallyd):
    """Several rounds: the median of each figure; counts are summed (each
    tallyd run starts from an empty store)."""
    agg = {k: statistics.median(r[k] for r in runs)
           for k in ("rps", "p50_us", "p99_us")}
    for k in ("ok", "other", "connect", "read", "write", "timeout"):
        agg[k] = sum(r[k] for r in runs)
    if not tallyd:
        return agg
    agg["ratio"] = statistics.median(r["ratio"] for r in runs)
    agg["exit"] = max(r["exit"] for r in runs)
    for src in ("stored_live", "stored_ctl"):
        if all(src in r for r in runs):
            agg[src] = sum(r[src] for r in runs)
            # Every run must hold all it answered, not just the sum.
            agg[src + "_all_ok"] = all(r[src] >= r["ok"] for r in runs)
        else:
            agg[src + "_err"] = next(r[src + "_err"] for r in runs
                                     if src not in r)
    return agg


def run(args, exes, R, answer):
    if answer is None:
        raise BenchError("no tallyd answer to serve with nginx")
    headers = R.get("answer_headers", {})
    rounds = []
    for i in range(1, args.rounds + 1):
        if args.rounds > 1:
            log("round %d of %d" % (i, args.rounds))
        sfx = "-%d" % i if args.rounds > 1 else ""
        rounds.append(one_round(args, answer, headers, sfx))
    R["rounds"] = rounds
    R["fsync_s"] = fsync_latency(procs.tmpdir())
    log("fdatasync of the store's disk: %.2f ms (median of 50)" % (
        R["fsync_s"] * 1e3))
    for key in ("nginx_a", "batch", "nginx_b", "strict"):
        R[key] = aggregate([rd[key] for rd in rounds],
                           key in ("batch", "strict"))
