"""tallyd's RSS idle and after many distinct paths, and the store bytes
per daily row that those paths leave."""

import os
import re
import shutil
import time

import harness

from .. import procs
from ..common import BenchError, fmt_int, log
from ..hits import HitClient
from ..servers import Tallyd
from ..store import store_size, tallyctl


def rss_kib(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:", "RssAnon:", "RssFile:",
                                "RssShmem:")):
                out[line.split(":")[0]] = int(line.split()[1])
    return out


def _send_paths(td, n):
    """n distinct paths of about 40 bytes:
    /articles/2026/11/a-slug-of-a-post-000001 ..."""
    targets = ["/hit?path=/articles/2026/11/a-slug-of-a-post-%06d" % i
               for i in range(1, n + 1)]
    assert len(set(targets)) == n
    log("sending %s distinct paths" % fmt_int(n))
    res = HitClient(td.port, conns=4, depth=32).run(targets)
    log("  %s sent, %s answered 200, %s counted, %.1f s (%.0f/s)" % (
        fmt_int(res["sent"]), fmt_int(res["ok"]), fmt_int(res["counted"]),
        res["seconds"], res["sent"] / max(res["seconds"], 1e-9)))
    if res["errors"]:
        log("  errors: %s" % "; ".join(res["errors"][:3]))
    return res


def _pending_hits(td):
    """tally_store_pending_hits from GET /metrics, or None."""
    try:
        st, _, body = td.request("GET", "/metrics")
    except (OSError, harness.Failure):
        return None
    if st != 200:
        return None
    m = re.search(rb"^tally_store_pending_hits (\d+)", body, flags=re.M)
    return int(m.group(1)) if m else None


def _drained(td, timeout=120):
    """Waits until tallyd has committed every hit (and one commit
    interval more): memory is then what the work left behind, not the
    work still queued. Returns the seconds waited."""
    t = time.monotonic()
    while time.monotonic() - t < timeout:
        n = _pending_hits(td)
        if n is None or n == 0:
            break
        time.sleep(0.1)
    time.sleep(1.0)    # > commit_interval
    return time.monotonic() - t


def _file_backed(status):
    return status.get("RssFile", 0) + status.get("RssShmem", 0)


def _record_rss(R, idle, after):
    R["rss_paths_kib"] = after["VmRSS"]
    R["rss_paths_hwm_kib"] = after["VmHWM"]
    R["rss_paths_anon_kib"] = after.get("RssAnon")
    R["rss_paths_file_kib"] = _file_backed(after)
    R["rss_idle_anon_kib"] = idle.get("RssAnon")
    R["rss_idle_file_kib"] = _file_backed(idle)


def answer(td, R):
    """A real /hit answer and its caching headers, for nginx to serve the
    same bytes."""
    st, hdrs, body = td.request("GET", "/hit?path=/bench",
                                {"User-Agent": harness.BROWSER_UA})
    if st != 200:
        raise BenchError("GET /hit: %d %s" % (st, body[:200]))
    R["answer_bytes"] = len(body)
    R["answer_body"] = body
    R["answer_headers"] = {k: v for k, v in hdrs.items()
                           if k in ("cache-control", "vary",
                                    "access-control-allow-origin")}
    return body


def _store_figures(data, R):
    """Bytes per daily row from mdb_stat, and the size of a compacted copy
    made by tallyctl backup."""
    sz = store_size(data)
    if sz:
        R["rows_100k"] = sz
        log("store: %s daily rows, days db %s bytes, compacted %s bytes" % (
            fmt_int(sz["rows"]), fmt_int(sz["days_bytes"]),
            fmt_int(sz["compact_bytes"])))
    else:
        R["rows_100k_note"] = "mdb_stat (lmdb-utils) missing or failed"
    dest = os.path.join(procs.tmpdir(), "rss-backup")
    ok, out, msg = tallyctl(data, ["backup", dest])
    if ok and os.path.exists(os.path.join(dest, "data.mdb")):
        R["backup_bytes"] = os.path.getsize(os.path.join(dest, "data.mdb"))
        log("tallyctl backup: %s bytes" % fmt_int(R["backup_bytes"]))
    else:
        R["backup_note"] = "tallyctl backup failed: " + (msg or "no data.mdb")
        log(R["backup_note"])
    shutil.rmtree(dest, ignore_errors=True)


def run(args, exes, R):
    """Returns the /hit answer for the throughput section's nginx."""
    data = os.path.join(procs.tmpdir(), "rss-data")
    td = Tallyd(data, "batch", cpu=args.server_cpu,
                extra=["--max-pages", str(max(200000, 2 * args.paths))],
                name="tallyd-rss")
    time.sleep(0.5)
    idle = rss_kib(td.pid)
    R["rss_idle_kib"] = idle["VmRSS"]
    log("RSS idle: %d KiB" % idle["VmRSS"])

    res = _send_paths(td, args.paths)
    R["rss_drain_s"] = _drained(td)
    after = rss_kib(td.pid)
    _record_rss(R, idle, after)
    site = td.counts("/")
    R["paths_sent"] = args.paths
    R["paths_counted"] = res["counted"]
    R["paths_site_views"] = site["today"]["views"]
    log("RSS after %s paths: %d KiB (anon %s, file %s; peak %d KiB); "
        "site views today %s" % (
            fmt_int(args.paths), after["VmRSS"], after.get("RssAnon"),
            after.get("RssFile"), after["VmHWM"],
            fmt_int(site["today"]["views"])))

    body = answer(td, R)
    rc = td.stop()
    if rc:
        log("tallyd exited %d after SIGTERM:\n%s" % (rc, td.log_tail()))
    _store_figures(data, R)
    return body
