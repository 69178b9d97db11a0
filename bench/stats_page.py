#!/usr/bin/env python3
"""bench/stats_page.py: how fast the stats page is on a large store, and
whether loading it slows counting.

    bench/stats_page.py --build DIR [--store DIR] [--pages N] [--days N]
                        [--runs N] [--seconds S] [--server-cpu N]
                        [--client-cpu N]

DIR is a release build tree (meson setup DIR --buildtype=release). The
store is made with DIR/bench/gen_store (PAGES pages of the site "default"
with a row for each of the last DAYS days; default 100,000 x 365) unless
--store names one already made today.

1. Page time: tallyd answers each page with "Server-Timing: render;dur=",
   the time its render thread took, store reads included and the network
   and queue excluded (each load with "Cache-Control: no-cache", so that
   it is made anew, not given again). Each period is loaded once (the first load after
   start maps the store's pages from the page cache, and sums the ended
   days of a recent window: reported as "first"), then RUNS times; the
   median and the worst are reported.
2. /hit while the page is loaded: wrk drives GET /hit for S seconds,
   alone and with a client loading the 30-day (then the 12-month) page in
   a loop, alternating three times; the ratio of the medians is reported
   (target >= 0.9). The 30-day page is loaded as a browser reloads it,
   and again with "Cache-Control: no-cache", which has each load made
   anew rather than given again while the store is unchanged. As in bench/run, tallyd (one event loop, and its
   render thread) is pinned to one core (--server-cpu, 0) and the clients,
   wrk and the page loader, to another (--client-cpu, 1): what is measured
   is what the page costs the core that counts, not what the looping
   client costs a machine of two cores. The same client loading
   /favicon.ico in a loop is the control.

3. Instructions (--callgrind): tallyd runs under valgrind's callgrind,
   a thread a file, on the same store. Hits go to GET /hit over 4
   keep-alive connections, one request at a time on each; the counters
   are zeroed, HITS hits are sent alone, and the counters of each thread
   dumped; zeroed again, the same HITS hits are sent while a fifth
   connection loads the 30-day page once every EVERY hits, and dumped.
   Reported: the instructions of the thread that counts (the worker) per
   /hit, alone and with the pages, what one page costs the worker and
   what it costs the render thread. Instruction counts do not depend on
   the machine's load: this is the figure to compare across changes.
   Pages are loaded with "Cache-Control: no-cache", so that each is made
   anew, as when the data changes between loads.

Python 3 standard library only; wrk for part 2, valgrind for part 3.
"""

import argparse
import glob
import http.client
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
      "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36")
PERIODS = ["today", "7d", "30d", "12m", "all"]
TARGETS = {"30d": 50.0, "12m": 200.0}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def make_store(build, store, pages, days):
    if os.path.isdir(store) and os.listdir(store):
        log("store: %s (kept)" % store)
        return
    log("store: generating %d pages x %d days in %s" % (pages, days, store))
    subprocess.run([os.path.join(build, "bench", "gen_store"), store,
                    str(pages), str(days)], check=True)


class Tallyd:
    def __init__(self, build, store, cpu, wrapper=(), timeout=10):
        self.port = free_port()
        self.cwd = tempfile.mkdtemp(prefix="stats-bench-")
        self.err = open(os.path.join(self.cwd, "stderr"), "wb")
        self.proc = subprocess.Popen(
            ["taskset", "-c", str(cpu)] + list(wrapper) +
            [os.path.join(build, "tallyd", "tallyd"), "--threads", "1",
             "--listen",
             "127.0.0.1:%d" % self.port, "--data", store,
             "--rate-limit", "0", "--rate-limit-address", "0",
             "--new-visitors-per-address", "0"],
            cwd=self.cwd, stdout=subprocess.DEVNULL, stderr=self.err)
        for _ in range(timeout * 10):
            try:
                if self.get("/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise SystemExit("tallyd did not start; see %s/stderr" % self.cwd)

    def get(self, target, conn=None, fresh=False):
        c = conn or http.client.HTTPConnection("127.0.0.1", self.port,
                                               timeout=600)
        h = {"User-Agent": UA}
        if fresh:
            h["Cache-Control"] = "no-cache"
        c.request("GET", target, headers=h)
        r = c.getresponse()
        body = r.read()
        if conn is None:
            c.close()
        return r.status, r.getheader("Server-Timing") or "", body

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)
        shutil.rmtree(self.cwd, ignore_errors=True)


def render_ms(timing):
    m = re.search(r"render;dur=([0-9.]+)", timing)
    if not m:
        raise SystemExit("no Server-Timing in the answer: %r" % timing)
    return float(m.group(1))


def page_times(t, runs):
    conn = http.client.HTTPConnection("127.0.0.1", t.port, timeout=60)
    rows = []
    for p in PERIODS:
        target = "/stats/default?period=" + p
        st, timing, body = t.get(target, conn, fresh=True)
        if st != 200:
            raise SystemExit("%s: status %d" % (target, st))
        first = render_ms(timing)
        ms = []
        for _ in range(runs):
            st, timing, body = t.get(target, conn, fresh=True)
            ms.append(render_ms(timing))
        rows.append((p, first, statistics.median(ms), max(ms), len(body)))
    conn.close()
    return rows


def wrk_rps(port, seconds, cpu):
    script = os.path.join(tempfile.mkdtemp(), "ua.lua")
    with open(script, "w") as f:
        f.write('wrk.headers["User-Agent"] = "%s"\n' % UA)
    out = subprocess.run(
        ["taskset", "-c", str(cpu), "wrk", "-t1", "-c64",
         "-d%ds" % seconds, "-s", script,
         "http://127.0.0.1:%d/hit?path=/bench" % port],
        check=True, capture_output=True, text=True).stdout
    m = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    if not m:
        raise SystemExit("wrk said: %s" % out)
    return float(m.group(1))


def hits_while_loading(t, seconds, target, cpu, fresh=False):
    alone, loaded, pages = [], [], []
    for _ in range(3):
        alone.append(wrk_rps(t.port, seconds, cpu))
        stop = threading.Event()
        count = [0]

        def load():
            conn = http.client.HTTPConnection("127.0.0.1", t.port,
                                              timeout=60)
            while not stop.is_set():
                t.get(target, conn, fresh)
                count[0] += 1
            conn.close()
        th = threading.Thread(target=load)
        th.start()
        loaded.append(wrk_rps(t.port, seconds, cpu))
        stop.set()
        th.join()
        pages.append(count[0] / seconds)
    return statistics.median(alone), statistics.median(loaded), \
        statistics.median(pages)


def cg_threads(prefix):
    """Instructions of each thread in the dump files of prefix, by the
    thread's role, known from a function only it runs."""
    roles = (("stats_page_render", "render"), ("route_resolve", "worker"),
             ("commit", "committer"))
    fn = re.compile(r"^c?fn=\(\d+\)(?: (\S+))?$")
    out = {}
    for f in glob.glob(prefix + "*"):
        total, names = None, set()
        with open(f) as fh:
            for line in fh:
                if line.startswith(("summary:", "totals:")):
                    total = int(line.split()[1])
                m = fn.match(line.rstrip("\n"))
                if m and m.group(1):
                    names.add(m.group(1))
        if total is None:
            continue
        role = next((r for n, r in roles if n in names),
                    os.path.basename(f))
        out[role] = out.get(role, 0) + total
    return out


def cg_hits(t, hits, every, page):
    """hits GETs of /hit over 4 connections, one request at a time on
    each; with page, a fifth loads it after each every hits."""
    done = [0]
    lock = threading.Lock()
    pages = [0]

    def sender(n):
        conn = http.client.HTTPConnection("127.0.0.1", t.port, timeout=600)
        for _ in range(n):
            st, _, _ = t.get("/hit?path=/bench", conn)
            if st != 200:
                raise SystemExit("/hit: status %d" % st)
            with lock:
                done[0] += 1
        conn.close()

    def loader():
        conn = http.client.HTTPConnection("127.0.0.1", t.port, timeout=600)
        while pages[0] < hits // every:
            while done[0] < (pages[0] + 1) * every and done[0] < hits:
                time.sleep(0.001)
            st, _, _ = t.get(page, conn, fresh=True)
            if st != 200:
                raise SystemExit("%s: status %d" % (page, st))
            pages[0] += 1
        conn.close()
    ths = [threading.Thread(target=sender, args=(hits // 4,))
           for _ in range(4)]
    if page:
        ths.append(threading.Thread(target=loader))
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    return pages[0]


def callgrind(build, store, hits, every, page, keep=None):
    tmp = keep or tempfile.mkdtemp(prefix="stats-cg-")
    out = os.path.join(tmp, "cg.out")
    t = Tallyd(build, store, "0-%d" % (os.cpu_count() - 1), wrapper=[
        "valgrind", "--tool=callgrind", "--separate-threads=yes",
        "--callgrind-out-file=" + out], timeout=600)
    try:
        pid = t.proc.pid
        # valgrind runs one thread at a time: the render thread holding
        # its lock under SCHED_IDLE, on a machine whose cores are busy,
        # would stall them all. The policy changes no instruction.
        for task in glob.glob("/proc/%d/task/*" % pid):
            with open(os.path.join(task, "comm")) as f:
                if f.read().strip() == "tallyd-stats":
                    os.sched_setscheduler(int(os.path.basename(task)),
                                          os.SCHED_OTHER,
                                          os.sched_param(0))
        # Warm-up: the series, the first load of the page (which maps
        # the store and may sum a window), a commit.
        cg_hits(t, 400, 100, page)
        time.sleep(1.5)
        t.get("/healthz")
        res = {}
        for label, pg in (("alone", None), ("pages", page)):
            subprocess.run(["callgrind_control", "-z", str(pid)],
                           check=True, capture_output=True)
            n = cg_hits(t, hits, every, pg)
            subprocess.run(["callgrind_control", "-d", label, str(pid)],
                           check=True, capture_output=True)
            # Dump files: out.N-TT, N the dump's number.
            files = sorted(glob.glob(out + ".*"))
            last = max(int(re.match(r".*\.(\d+)-\d+$", f).group(1))
                       for f in files if re.match(r".*\.(\d+)-\d+$", f))
            res[label] = (cg_threads("%s.%d-" % (out, last)), n)
    finally:
        t.stop()
    if keep is None:
        shutil.rmtree(tmp, ignore_errors=True)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True)
    ap.add_argument("--store")
    ap.add_argument("--pages", type=int, default=100000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--skip-hits", action="store_true")
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--client-cpu", type=int, default=1)
    ap.add_argument("--callgrind", action="store_true",
                    help="only part 3: instructions under callgrind")
    ap.add_argument("--hits", type=int, default=10000)
    ap.add_argument("--every", type=int, default=50)
    ap.add_argument("--callgrind-dir",
                    help="keep the callgrind files there")
    args = ap.parse_args()
    # The page loader is a thread of this process: on the clients' core.
    os.sched_setaffinity(0, {args.client_cpu})
    store = args.store or os.path.join(
        args.build, "bench-store-%dx%d" % (args.pages, args.days))
    make_store(args.build, store, args.pages, args.days)
    if args.callgrind:
        page = "/stats/default?period=30d"
        res = callgrind(args.build, store, args.hits, args.every, page,
                        args.callgrind_dir)
        a, _ = res["alone"]
        p, n = res["pages"]
        print("| instructions (callgrind), %d hits | worker per /hit | "
              "worker per page | render thread per page |" % args.hits)
        print("|---|---|---|---|")
        print("| /hit alone | %.0f | — | — |" % (a["worker"] / args.hits))
        print("| /hit and `%s` every %d hits (%d pages) | %.0f | %.0f | "
              "%.0f |" % (page, args.every, n, p["worker"] / args.hits,
                          (p["worker"] - a["worker"]) / max(n, 1),
                          p.get("render", 0) / max(n, 1)))
        log("threads: %r" % res)
        return
    t = Tallyd(args.build, store, args.server_cpu)
    try:
        rows = page_times(t, args.runs)
        print("| page (%d pages x %d days) | first load | render, median "
              "of %d | worst | target | HTML |" % (args.pages, args.days,
                                                   args.runs))
        print("|---|---|---|---|---|---|")
        for p, first, med, worst, size in rows:
            target = TARGETS.get(p)
            print("| `/stats/default?period=%s` | %.2f ms | %.2f ms | "
                  "%.2f ms | %s | %d KB |" % (
                      p, first, med, worst, "< %.0f ms %s" % (
                          target, "✓" if med < target else "**missed**")
                      if target else "—", size // 1024))
        if not args.skip_hits and shutil.which("wrk"):
            print()
            print("| /hit (wrk -t1 -c64, %d s, median of 3 alternating runs)"
                  " | alone | while a client loads the page in a loop | "
                  "ratio (target >= 0.9) |" % args.seconds)
            print("|---|---|---|---|")
            # The last row is the control: the same client loading the
            # smallest answer tallyd has, which costs the page nothing.
            # A page is kept while the store has committed nothing
            # (doc/stats.md); with no-cache each load is made anew.
            for target, fresh in (("/stats/default?period=30d", False),
                                  ("/stats/default?period=30d", True),
                                  ("/stats/default?period=12m", False),
                                  ("/favicon.ico", False)):
                alone, loaded, pages = hits_while_loading(
                    t, args.seconds, target, args.client_cpu, fresh)
                print("| `%s`%s, %.1f loads/s | %.0f req/s | %.0f req/s"
                      " | %.2f %s |" % (target, " (no-cache)" if fresh
                                        else "", pages, alone, loaded,
                                        loaded / alone,
                                        "" if target[1] == "f" else
                                        "✓" if loaded / alone >= 0.9 else
                                        "**missed**"))
    finally:
        t.stop()


if __name__ == "__main__":
    main()
