"""bench/run's options, the check for the tools it needs, and the order
in which the sections run. A section that fails leaves its row saying
why; the others still run, and the exit status is 1."""

import argparse
import os
import shutil
import subprocess
import sys

from . import ROOT, procs
from .build import build
from .common import BenchError, log
from .machine import loadavg, machine, tool_version
from .report import report
from .sections import callgrind, clients, ctl, growth, pg, rss, throughput
from .servers import tallyd_flags

SECTIONS = ("throughput", "clients", "rss", "ctl", "growth", "callgrind",
            "pg")

# --dry-run: every section at its smallest, to check that it works.
DRY_RUN = {"duration": 1, "warmup": 0, "rounds": 1, "paths": 1000,
           "pages": 1000, "days": 30, "growth_pages": 10000,
           "growth_days": 30, "hits": 1000, "cg_warmup": 100,
           "export_runs": 1}


def parse_args():
    ap = argparse.ArgumentParser(
        description="tally's benchmarks: nginx vs tallyd, RSS, store size, "
                    "tallyctl timings, instructions per hit.")
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build-bench"))
    ap.add_argument("--duration", type=int, default=10,
                    help="seconds of each wrk run (10)")
    ap.add_argument("--warmup", type=int, default=2,
                    help="seconds of wrk warm-up before each run (2; 0: none)")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=1,
                    help="rounds of nginx/batch/nginx/strict runs; medians "
                         "are reported (1; more on a noisy machine)")
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--client-cpu", type=int, default=1)
    ap.add_argument("--paths", type=int, default=1000000,
                    help="distinct paths for the RSS run (1000000)")
    ap.add_argument("--pages", type=int, default=100000,
                    help="pages of the generated store (100000)")
    ap.add_argument("--days", type=int, default=365,
                    help="days of the generated store (365)")
    ap.add_argument("--growth-pages", type=int, default=1000000,
                    help="pages of the growth section's large store "
                         "(1000000)")
    ap.add_argument("--growth-days", type=int, default=1095,
                    help="days of the growth section's large store (1095)")
    ap.add_argument("--reuse-store", action="store_true",
                    help="reuse a generated store made on an earlier day")
    ap.add_argument("--export-runs", type=int, default=3)
    ap.add_argument("--hits", type=int, default=20000,
                    help="hits under callgrind (20000)")
    ap.add_argument("--cg-warmup", type=int, default=2000)
    ap.add_argument("--clients-cases", default="1k,10k,close",
                    help="clients: comma-separated, of 1k and 10k "
                         "(keep-alive connections) and close (a connection "
                         "per request)")
    ap.add_argument("--cg-modes", default="batch,strict,close",
                    help="callgrind: comma-separated, of batch (keep-alive, "
                         "against nginx), strict (64 connections) and "
                         "close (a connection per request, against nginx)")
    ap.add_argument("--skip", default="",
                    help="comma-separated: throughput,clients,rss,ctl,growth,"
                         "callgrind,pg")
    ap.add_argument("--only",
                    help="comma-separated: run these sections only")
    ap.add_argument("--dry-run", action="store_true",
                    help="every section at its smallest (1 s wrk runs, "
                         "small stores, two steps of pg), to check that it "
                         "works: the figures mean nothing")
    ap.add_argument("--pg-explain", action="store_true",
                    help="pg: log the plans of one statement in ten with "
                         "EXPLAIN ANALYZE (auto_explain) in the server's "
                         "log, kept with --keep; slows PostgreSQL down")
    ap.add_argument("--nginx",
                    default=shutil.which("nginx") or "/usr/sbin/nginx")
    ap.add_argument("--keep", action="store_true",
                    help="keep the temporary directory")
    ap.add_argument("--markdown",
                    help="also write the results table to this file")
    args = ap.parse_args()
    args.skip = set(s for s in args.skip.split(",") if s)
    if args.only:
        only = set(s for s in args.only.split(",") if s)
        bad = only - set(SECTIONS)
        if bad:
            ap.error("unknown section: " + ", ".join(sorted(bad)))
        args.skip |= set(SECTIONS) - only
    if args.dry_run:
        for k, v in DRY_RUN.items():
            setattr(args, k, v)
    bad = args.skip - set(SECTIONS)
    if bad:
        ap.error("unknown section: " + ", ".join(sorted(bad)))
    args.clients_cases = set(s for s in args.clients_cases.split(",") if s)
    bad = args.clients_cases - {"1k", "10k", "close"}
    if bad:
        ap.error("unknown clients case: " + ", ".join(sorted(bad)))
    args.cg_modes = set(s for s in args.cg_modes.split(",") if s)
    bad = args.cg_modes - {"batch", "strict", "close"}
    if bad:
        ap.error("unknown callgrind mode: " + ", ".join(sorted(bad)))
    args.build_dir = os.path.abspath(args.build_dir)
    return args


def missing_tools(args):
    """What must be there, said once and clearly."""
    missing = []
    if not shutil.which("taskset"):
        missing.append("taskset (apt-get install util-linux)")
    against_nginx = "throughput" not in args.skip or \
        "clients" not in args.skip
    if against_nginx and not os.access(args.nginx, os.X_OK):
        missing.append("nginx (apt-get install nginx-light)")
    if (against_nginx or "growth" not in args.skip or
            "pg" not in args.skip) and not shutil.which("wrk"):
        missing.append("wrk (apt-get install wrk)")
    if "callgrind" not in args.skip and not shutil.which("valgrind"):
        missing.append("valgrind (apt-get install valgrind), "
                       "or --skip callgrind")
    return missing


def check_machine(args):
    """An error message, or None; warns of what only weakens figures."""
    # scripts/setup-debian installs what is missing (it says what and
    # why); then what must be there is said once and clearly.
    subprocess.run([os.path.join(ROOT, "scripts", "setup-debian"),
                    "build", "bench"])
    missing = missing_tools(args)
    if missing:
        return "missing: " + "; ".join(missing)
    ncpu = os.cpu_count() or 1
    if max(args.server_cpu, args.client_cpu) >= ncpu:
        return ("this machine has %d core(s); pick --server-cpu and "
                "--client-cpu below %d" % (ncpu, ncpu))
    if args.server_cpu == args.client_cpu:
        log("warning: server and wrk share core %d" % args.server_cpu)
    for tool, pkg in (("hyperfine", "hyperfine"), ("mdb_stat", "lmdb-utils")):
        if not shutil.which(tool):
            log("note: %s not found (apt-get install %s); using a fallback" %
                (tool, pkg))
    return None


def versions(args, exes):
    ran = set(SECTIONS) - args.skip
    nginx = bool(ran & {"throughput", "clients"})
    load = bool(ran & {"throughput", "clients", "growth", "pg"})
    return "; ".join(filter(None, [
        tool_version([exes["tallyd"], "--version"]),
        tool_version([args.nginx, "-v"]) if nginx else "",
        tool_version(["wrk", "-v"]).split(" [")[0] if load else "",
    ]))


def run_section(name, R, errkey, fn, *a):
    """Runs one section: (True, its result), or (False, None) when it
    failed; the error then goes in R[errkey] for the table."""
    try:
        return True, fn(*a)
    except (BenchError, subprocess.TimeoutExpired) as e:
        R[errkey] = str(e).splitlines()[0]
        log("%s section failed: %s" % (name, e))
        return False, None


def run_sections(args, exes, R):
    """Runs what --skip leaves; returns the number that failed. The RSS
    run also makes the answer nginx serves, so throughput needs it."""
    failures = 0
    answer = None
    if "rss" not in args.skip or "throughput" not in args.skip or \
            "clients" not in args.skip:
        ok, answer = run_section("RSS", R, "rss_error", rss.run, args, exes, R)
        failures += not ok
    if "throughput" not in args.skip:
        ok, _ = run_section("throughput", R, "throughput_error",
                            throughput.run, args, exes, R, answer)
        if not ok:
            for k in ("nginx_a", "batch", "nginx_b", "strict", "rounds"):
                R.pop(k, None)
        failures += not ok
    if "clients" not in args.skip:
        ok, _ = run_section("clients", R, "clients_error", clients.run,
                            args, exes, R, answer)
        failures += not ok
    if "ctl" not in args.skip:
        ok, _ = run_section("tallyctl", R, "ctl_error", ctl.run, args, exes, R)
        failures += not ok
    if "growth" not in args.skip:
        ok, _ = run_section("growth", R, "growth_error", growth.run,
                            args, exes, R)
        failures += not ok
    if "callgrind" not in args.skip:
        ok, _ = run_section("callgrind", R, "cg_error", callgrind.run,
                            args, exes, R)
        failures += not ok
    if "pg" not in args.skip:
        ok, _ = run_section("pg", R, "pg_error", pg.run, args, exes, R)
        failures += not ok
    return failures


def write_table(args, table):
    print()
    print(table)
    # A dry run's figures mean nothing: they do not replace the last
    # results.
    for path in filter(None, [args.markdown,
                              None if args.dry_run else
                              os.path.join(args.build_dir,
                                           "bench-results.md")]):
        with open(path, "w") as f:
            f.write(table + "\n")


def main():
    args = parse_args()
    error = check_machine(args)
    if error:
        print("bench/run: " + error, file=sys.stderr)
        return 1
    procs.setup(args.keep)
    M = machine()
    R = {"load_start": loadavg()}
    log("machine: %d cores, %s, Linux %s; load %s" % (
        M["nproc"], M["cpu"], M["kernel"], R["load_start"]))
    exes = build(args.build_dir)
    R["versions"] = versions(args, exes)
    R["tallyd_flags"] = tallyd_flags()
    failures = run_sections(args, exes, R)
    R["load_end"] = loadavg()
    write_table(args, report(args, R, M))
    return 1 if failures else 0


def entry():
    try:
        sys.exit(main())
    except BenchError as e:
        print("bench/run: %s" % e, file=sys.stderr)
        sys.exit(1)
