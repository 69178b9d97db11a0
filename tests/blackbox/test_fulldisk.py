#!/usr/bin/env python3
"""A full disk and a full LMDB map (issue 8, item 2).

Full disk: the data directory sits on a 4 MiB tmpfs that this test mounts
(as root; the cases skip where mounting is not allowed). A filler file
takes the rest of it, so LMDB cannot grow its data file. Hits on many
distinct long paths then run the store out of space:
  - counting requests answer 503 with a JSON error, and so does /healthz;
  - reading (/count, tallyctl) goes on, and what was committed before is
    intact, to the exact count;
  - once the filler is deleted, the daemon recovers by itself (no
    restart, no request needed): the hits that were answered 200 before
    the failure reach the disk, /healthz is 200, hits count again;
  - a hit that was answered 503 is not counted.

Map growth: a store started with a 128 KiB map (TALLY_INITIAL_MAP_SIZE)
takes 20,000 distinct pages, every one of them stored, while tallyctl
reads the store the whole time; `tallyctl check` is clean.
"""

import csv
import errno
import io
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (BROWSER_UA, Daemon, Failure, Skip, check, eq,  # noqa: E402
                     check_json_error, mkdtemp, parse_json, run_tallyctl)

SCALE = float(os.environ.get("TALLY_TIME_SCALE", "1"))
UA = {"User-Agent": BROWSER_UA}
LONG = "x" * 400            # long paths fill pages fast


# ---------------------------------------------------------------- helpers

class Tmpfs:
    """with Tmpfs("4m") as dir: a tmpfs mounted for the case, unmounted
    in the end (after the daemons on it are gone)."""

    def __init__(self, size):
        self.size = size
        self.dir = None

    def __enter__(self):
        if os.geteuid() != 0:
            raise Skip("mounting a tmpfs needs root (euid %d)" % os.geteuid())
        self.dir = mkdtemp(prefix="tally-tmpfs-")
        try:
            p = subprocess.run(["mount", "-t", "tmpfs", "-o",
                                "size=%s,mode=0700" % self.size, "tmpfs",
                                self.dir], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=30)
        except (OSError, subprocess.SubprocessError) as e:
            raise Skip("cannot run mount: %s" % e)
        if p.returncode != 0:
            raise Skip("mounting a tmpfs is not allowed here: %s"
                       % p.stderr.decode("utf-8", "replace").strip())
        return self.dir

    def __exit__(self, *exc):
        harness._kill_daemons(keep_shared=False)
        p = subprocess.run(["umount", self.dir], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
        if p.returncode != 0:
            subprocess.run(["umount", "-l", self.dir])
        return False


class AnyHealthDaemon(Daemon):
    """A Daemon that is ready once it answers /healthz at all: on a full
    disk that answer is 503."""
    READY = (200, 503)


def fill(dir):
    """Writes a filler file until the file system is full."""
    path = os.path.join(dir, "filler")
    block = b"\0" * 65536
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                n = os.write(fd, block)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                break
            if n < len(block):
                block = block[:max(1, len(block) - n)]
    finally:
        os.close(fd)
    st = os.statvfs(dir)
    check(st.f_bavail * st.f_frsize < 65536,
          "the tmpfs still has %d bytes free" % (st.f_bavail * st.f_frsize))
    return path


def ctl_page_views(data, path):
    rc, out, err = run_tallyctl("--data", data, "--json", "page", path)
    eq(rc, 0, "tallyctl page %s (stderr %r)" % (path, err[:300]))
    return parse_json(out.encode(), "tallyctl page")["page"]["views"]


def ctl_check(data, what):
    rc, out, err = run_tallyctl("--data", data, "check", timeout=120)
    check(rc == 0, "%s: tallyctl check exit %d: %s %s"
          % (what, rc, out[-600:], err[-600:]))


def export_pages(data):
    """{path: all-time views} of the default site, from tallyctl export."""
    rc, out, err = run_tallyctl("--data", data, "export", "--format", "csv",
                                timeout=120)
    eq(rc, 0, "tallyctl export (stderr %r)" % err[:300])
    views = {}
    for row in csv.DictReader(io.StringIO(out)):
        if row["site"] == "default" and row["path"].startswith("/"):
            views[row["path"]] = views.get(row["path"], 0) + \
                int(row["views"])
    return views


def wait_for(what, fn, timeout):
    deadline = time.monotonic() + timeout * SCALE
    while True:
        got = fn()
        if got:
            return got
        if time.monotonic() > deadline:
            raise Failure("%s: not within %.1f s" % (what, timeout * SCALE))
        time.sleep(0.05)


EARLY = {"/early/%d" % i: i + 1 for i in range(10)}


def count_early(d):
    for p, n in EARLY.items():
        for _ in range(n):
            d.hit(p)
    # Committed, as tallyctl reads it from the disk.
    wait_for("the early hits on disk",
             lambda: all(ctl_page_views(d.data, p) == n
                         for p, n in list(EARLY.items())[-2:]), 5)


def check_early(d, what):
    for p, n in EARLY.items():
        eq(d.count(p)["page"]["views"], n, "%s: /count %s" % (what, p))
    for p in ("/early/0", "/early/9"):
        eq(ctl_page_views(d.data, p), EARLY[p], "%s: tallyctl page %s"
           % (what, p))


def run_out_of_space(d, limit=20000):
    """Hits distinct long paths until one is refused; returns (paths
    answered 200, (path, status, body) of the first refusal)."""
    acked = []
    conn = d.connect()
    t0 = time.monotonic()
    try:
        for i in range(limit):
            path = "/long/%05d/%s" % (i, LONG)
            conn.request("GET", "/hit?" + harness.query(path=path),
                         headers=UA)
            r = conn.getresponse()
            body = r.read()
            if r.status != 200:
                return acked, (path, r.status, dict(
                    (k.lower(), v) for k, v in r.getheaders()), body)
            c = parse_json(body)
            eq(c["counted"], True, "counted (%r)" % (c,))
            acked.append(path)
            if (r.getheader("Connection") or "").lower() == "close":
                conn.close()
                conn = d.connect()
            check(time.monotonic() - t0 < 60 * SCALE,
                  "no refusal after %d hits and 60 s" % len(acked))
    finally:
        conn.close()
    raise Failure("still counting after %d distinct pages on a full disk"
                  % limit)


def full_disk_case(durability):
    with Tmpfs("4m") as mnt:
        data = os.path.join(mnt, "data")
        d = Daemon(["--durability", durability, "--commit-interval",
                    "100ms"], data=data)
        count_early(d)
        filler = fill(mnt)

        acked, (bad_path, st, hd, body) = run_out_of_space(d)
        check(len(acked) > 0, "the first hit on the full disk was refused;"
              " nothing to show for what was answered before")
        j = check_json_error(st, hd, body, 503, "the first refused hit")
        refused = [bad_path]

        # Every counting route says 503; /healthz says why.
        st, hd, body = d.request("GET", "/healthz")
        j = check_json_error(st, hd, body, 503, "/healthz on a full disk")
        reason = j["error"]
        for method, target, h, b, what in (
                ("GET", "/hit?" + harness.query(path="/refused/get"), UA,
                 None, "GET /hit"),
                ("POST", "/hit", dict(UA, **{"Content-Type":
                                             "application/json"}),
                 '{"path":"/refused/post"}', "POST /hit"),
                ("GET", "/pixel.gif?path=%2Frefused%2Fpixel", UA, None,
                 "GET /pixel.gif"),
                ("GET", "/counter.svg?path=%2Frefused%2Fsvg", UA, None,
                 "GET /counter.svg")):
            st, hd, body = d.request(method, target, h, b)
            check_json_error(st, hd, body, 503, what + " on a full disk")
        refused += ["/refused/get", "/refused/post", "/refused/pixel",
                    "/refused/svg"]
        # Reading goes on: committed counts are exact, and the answers
        # still show the hits that were acknowledged.
        check_early(d, "on the full disk")
        shown = d.count("/")["total"]["views"]
        st, hd, body = d.request("GET", "/count?path=%2Fearly%2F3", UA)
        eq(st, 200, "/count on the full disk")
        ctl_check(data, "on the full disk")
        check(d.alive(), "tallyd died on the full disk")

        # Space returns: the committer retries by itself.
        os.unlink(filler)
        wait_for("the acknowledged hits on disk after space returned "
                 "(no request sent meanwhile)",
                 lambda: ctl_page_views(data, acked[-1]) == 1, 5)
        st, hd, body = d.request("GET", "/healthz")
        eq((st, body.strip()), (200, b"ok"), "/healthz after space returned "
           "(it was %r)" % reason)
        c = d.hit("/after")
        eq((c["counted"], c["page"]["views"]), (True, 1), "a hit after "
           "space returned")
        eq(d.stop(), 0, "exit code after SIGTERM (stderr %r)"
           % d.stderr()[-800:])
        check("no space" in d.stderr().lower() or "commit failed"
              in d.stderr().lower(), "the failure is not logged: %r"
              % d.stderr()[-800:])

        views = export_pages(data)
        missing = [p for p in acked if views.get(p) != 1]
        check(not missing, "%d of %d hits answered 200 before the failure "
              "are not stored as 1 view (e.g. %s: %r)"
              % (len(missing), len(acked), missing[:1],
                 views.get(missing[0]) if missing else None))
        counted = [p for p in refused if views.get(p)]
        check(not counted, "hits answered 503 were counted after space "
              "returned: %s" % ", ".join("%s=%d" % (p[:40], views[p])
                                         for p in counted))
        for p, n in EARLY.items():
            eq(views.get(p), n, "stored views of %s" % p)
        eq(views.get("/after"), 1, "stored views of /after")
        ctl_check(data, "after the recovery")
        eq(shown, sum(EARLY.values()) + len(acked),
           "total views shown on the full disk (early + answered 200)")


def test_full_disk_batch():
    full_disk_case("batch")


def test_full_disk_strict():
    full_disk_case("strict")


def test_full_disk_at_startup_then_space_returns():
    """A daemon started on a disk with no room for a commit answers
    503 on counting routes and /healthz, and recovers without restart."""
    with Tmpfs("4m") as mnt:
        data = os.path.join(mnt, "data")
        d = Daemon(["--commit-interval", "100ms"], data=data)
        count_early(d)
        eq(d.stop(), 0, "exit code")
        d = None
        filler = fill(mnt)
        d = AnyHealthDaemon(["--commit-interval", "100ms"], data=data)
        st, hd, body = d.request("GET", "/healthz")
        print("# /healthz of a daemon started on the full disk: %d" % st)
        if st == 200:
            # The probe found a page to reuse: fill harder with hits.
            acked, (p, st, hd, body) = run_out_of_space(d)
        else:
            acked = []
        check_json_error(st, hd, body, 503, "on a full disk")
        st, hd, body = d.request("GET", "/hit?path=%2Fnope", UA)
        check_json_error(st, hd, body, 503, "GET /hit on a full disk")
        check_early(d, "restarted on the full disk")
        os.unlink(filler)
        wait_for("/healthz 200 after space returned",
                 lambda: d.request("GET", "/healthz")[0] == 200, 5)
        c = d.hit("/after")
        eq((c["counted"], c["page"]["views"]), (True, 1), "a hit after "
           "space returned")
        eq(d.stop(), 0, "exit code")
        views = export_pages(data)
        eq(views.get("/nope"), None, "views of the refused hit")
        eq(views.get("/after"), 1, "views of /after")
        for p in acked:
            eq(views.get(p), 1, "views of %s" % p[:40])
        ctl_check(data, "after the recovery")


# ---------------------------------------------------------------- map growth

def metric(d, name):
    st, hd, body = d.request("GET", "/metrics")
    eq(st, 200, "/metrics status")
    m = re.search(r"^%s (\d+(?:\.\d+)?(?:e\+?\d+)?)$" % re.escape(name),
                  body.decode(), re.M)
    check(m, "no %s in /metrics" % name)
    return int(float(m.group(1)))


def test_map_grows_by_itself():
    initial = 131072        # TALLY_INITIAL_MAP_SIZE must exceed 64 KiB
    n_pages, threads = 20000, 4
    d = Daemon(["--commit-interval", "100ms"],
               env={"TALLY_INITIAL_MAP_SIZE": str(initial)})
    eq(metric(d, "tally_store_map_bytes"), initial,
       "the initial map size (is TALLY_INITIAL_MAP_SIZE honoured?)")
    errors = []
    stop = threading.Event()

    def hitter(k):
        conn = None
        try:
            for i in range(k, n_pages, threads):
                if conn is None:
                    conn = d.connect(timeout=20 * SCALE)
                conn.request("GET", "/hit?path=%%2Fgrow%%2F%05d" % i,
                              headers=UA)
                r = conn.getresponse()
                body = r.read()
                if r.status != 200:
                    errors.append("page %d: %d %r" % (i, r.status,
                                                      body[:200]))
                    return
                if (r.getheader("Connection") or "").lower() == "close":
                    conn.close()
                    conn = None
        except Exception as e:
            errors.append("thread %d: %r" % (k, e))
        finally:
            if conn is not None:
                conn.close()

    ctl_runs = []

    def reader():
        # tallyctl opens the store with a map of its own size while
        # tallyd grows it.
        while not stop.is_set():
            rc, out, err = run_tallyctl("--data", d.data, "--json", "stats")
            ctl_runs.append(rc)
            if rc != 0:
                errors.append("tallyctl stats during growth: exit %d: %s"
                              % (rc, err[:300]))
                return
            time.sleep(0.05)

    t0 = time.monotonic()
    ts = [threading.Thread(target=hitter, args=(k,)) for k in
          range(threads)]
    rt = threading.Thread(target=reader)
    rt.start()
    for t in ts:
        t.start()
    for t in ts:
        t.join(300 * SCALE)
    stop.set()
    rt.join(60)
    check(not errors, "; ".join(errors[:3]))
    check(len(ctl_runs) > 0, "tallyctl never ran during the growth")
    grown = metric(d, "tally_store_map_bytes")
    check(grown > initial, "map size %d after %d pages, still the initial "
          "%d" % (grown, n_pages, initial))
    eq(d.count("/")["total"]["views"], n_pages, "total views")
    eq(d.stop(), 0, "exit code after SIGTERM (stderr %r)"
       % d.stderr()[-800:])
    views = export_pages(d.data)
    got = {p: v for p, v in views.items() if p.startswith("/grow/")}
    eq(len(got), n_pages, "distinct pages stored")
    bad = [p for p, v in got.items() if v != 1]
    check(not bad, "pages not stored with 1 view: %s" % bad[:5])
    ctl_check(d.data, "after the growth")
    # Reopens with the grown file.
    d.start()
    eq(d.count("/grow/00000")["page"]["views"], 1, "a page after restart")
    print("# %d pages, map %d -> %d bytes, %d tallyctl runs, %.1f s"
          % (n_pages, initial, grown, len(ctl_runs), time.monotonic() - t0))


if __name__ == "__main__":
    harness.main(globals())
