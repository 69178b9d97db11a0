"""tallyctl stats, top --days 30 and export on a generated store of
100,000 pages x 365 days (bench/gen_store), cached in the build tree."""

import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

from .. import procs
from ..common import BenchError, fmt_int, log
from ..store import store_size


def _store_dir(args, pages, days):
    return os.path.join(args.build_dir, "bench-store-%dx%d" % (pages, days))


def cached_store(args, pages, days):
    """The store made earlier for this scale, if it is complete and from
    today (its windows end today), or --reuse-store: (dir, day made)."""
    store = _store_dir(args, pages, days)
    try:
        with open(os.path.join(store, "complete")) as f:
            made = f.read().strip()
    except OSError:
        return store, None
    if made == datetime.date.today().isoformat() or args.reuse_store:
        return store, made
    log("the generated store %s is from %s, not today: making it again" % (
        store, made))
    return store, None


def _fit_to_disk(bdir, pages, days):
    """The page count that fits the free disk space, scaled down if need
    be: ~36 bytes a row in the days database, ~200 per page in series,
    and room for the pages LMDB copies while writing."""
    need = pages * days * 48 + pages * 200 + (256 << 20)
    free = shutil.disk_usage(bdir).free
    if need <= free * 0.8:
        return pages
    scaled = max(1000, int(pages * free * 0.8 / need))
    log("not enough disk for %s pages x %d days (%.1f GiB needed, %.1f GiB "
        "free): scaling down to %s pages" % (
            fmt_int(pages), days, need / 2**30, free / 2**30, fmt_int(scaled)))
    return scaled


def generate(args, exes, R, pages, days):
    """Makes the store, replacing those of other scales or days:
    (dir, pages, day made)."""
    bdir = args.build_dir
    for old in os.listdir(bdir):
        if old.startswith("bench-store-"):
            shutil.rmtree(os.path.join(bdir, old), ignore_errors=True)
    pages = _fit_to_disk(bdir, pages, days)
    store = _store_dir(args, pages, days)
    log("generating %s pages x %d days = %s daily rows in %s "
        "(a minute or more)" % (fmt_int(pages), days, fmt_int(pages * days),
                                store))
    t = time.monotonic()
    p = subprocess.run([exes["gen_store"], store, str(pages), str(days)],
                       stderr=sys.stderr)
    if p.returncode:
        shutil.rmtree(store, ignore_errors=True)
        raise BenchError("gen_store failed (%d)" % p.returncode)
    R["gen_seconds"] = time.monotonic() - t
    made = datetime.date.today().isoformat()
    with open(os.path.join(store, "complete"), "w") as f:
        f.write(made + "\n")
    return store, pages, made


def first_run(argv):
    """One plain run: a missing or failing command is reported, not
    timed. It also brings the store into the page cache. Returns
    (seconds, error or None)."""
    try:
        t = time.perf_counter()
        p = subprocess.run(argv, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True, timeout=1800)
        first = time.perf_counter() - t
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, str(e)
    if p.returncode:
        msg = (p.stderr.strip().splitlines() or ["no message"])[0]
        return first, "exit %d: %s" % (p.returncode, msg[:100])
    return first, None


def time_hyperfine(hf, argv, name, warm, runs):
    out = os.path.join(procs.tmpdir(), "hyperfine-%s.json" % name)
    p = subprocess.run([hf, "-N", "--style", "none", "--warmup", str(warm),
                        "--runs", str(runs), "--export-json", out,
                        " ".join(argv)], capture_output=True, text=True)
    if p.returncode:
        return {"error": "hyperfine failed: " + p.stderr.strip()[:100]}
    with open(out) as f:
        res = json.load(f)["results"][0]
    return {"median_s": res["median"], "min_s": res["min"],
            "max_s": res["max"], "runs": len(res["times"]),
            "cpu_s": res["user"] + res["system"]}


def time_python(argv, warm, runs):
    """hyperfine's stand-in: the median of runs timed here."""
    for _ in range(warm):
        subprocess.run(argv, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    times = []
    c0 = os.times()
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    c1 = os.times()
    cpu = (c1.children_user - c0.children_user +
           c1.children_system - c0.children_system) / runs
    return {"median_s": statistics.median(times), "min_s": min(times),
            "max_s": max(times), "runs": runs, "cpu_s": cpu}


def time_command(hf, argv, name, cargs, runs):
    """Times one tallyctl command: as many runs as fit in about 15 s,
    3 at least."""
    first, error = first_run(argv)
    if error:
        if first is not None:
            log("tallyctl %s: %s" % (" ".join(cargs), error))
        return {"error": error}
    runs = max(3, min(runs, int(15 / max(first, 1e-3))))
    warm = 3 if first < 0.5 else 0
    log("timing tallyctl %s (%d runs)" % (" ".join(cargs), runs))
    if hf:
        c = time_hyperfine(hf, argv, name, warm, runs)
    else:
        c = time_python(argv, warm, runs)
    if "median_s" in c:
        log("  median %.1f ms (min %.1f, max %.1f; CPU %.1f ms a run)" % (
            c["median_s"] * 1e3, c["min_s"] * 1e3, c["max_s"] * 1e3,
            c["cpu_s"] * 1e3))
    return c


def run(args, exes, R):
    pages, days = args.pages, args.days
    store, made = cached_store(args, pages, days)
    R["gen_seconds"] = None
    if made:
        log("reusing the generated store %s (made %s)" % (store, made))
    else:
        store, pages, made = generate(args, exes, R, pages, days)
    R["gen_pages"], R["gen_days"], R["gen_made"] = pages, days, made
    R["gen_file_bytes"] = os.path.getsize(os.path.join(store, "data.mdb"))
    sz = store_size(store)
    if sz:
        R["rows_gen"] = sz

    hf = shutil.which("hyperfine")
    R["timer"] = "hyperfine" if hf else "python (median)"
    R["ctl"] = {}
    for name, cargs, runs in (("stats", ["stats"], 20),
                              ("top", ["top", "--days", "30"], 20),
                              ("export", ["export"], args.export_runs)):
        argv = [exes["tallyctl"], "--data", store] + cargs
        R["ctl"][name] = time_command(hf, argv, name, cargs, runs)
