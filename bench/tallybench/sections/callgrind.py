"""Instructions per /hit under valgrind --tool=callgrind.

tallyd runs three times: start and stop; start, warm-up hits, stop;
start, warm-up hits plus the measured hits, stop. The difference of the
last two is the hits alone: start-up, shutdown, the first hit that makes
the series and the warm-up cancel out.
"""

import os
import shutil
import time

from .. import procs
from ..common import BenchError, fmt_int, log
from ..hits import HitClient
from ..servers import Tallyd


def callgrind_total(path):
    total = None
    with open(path) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                total = int(line.split()[1])
    if total is None:
        raise BenchError("no totals in %s" % path)
    return total


def one(label, warm, hits):
    """One tallyd under callgrind: warm, then hits hits, one at a time on
    each of 4 keep-alive connections. Returns its instruction count."""
    tmp = procs.tmpdir()
    data = os.path.join(tmp, "cg-data-" + label)
    out = os.path.join(tmp, "callgrind-%s.out" % label)
    td = Tallyd(data, "batch", name="tallyd-cg-" + label,
                wrapper=["valgrind", "--tool=callgrind",
                         "--callgrind-out-file=" + out],
                ready_timeout=120)
    try:
        client = HitClient(td.port, conns=4, depth=1)
        for n in (warm, hits):
            if n:
                res = client.run(["/hit?path=/bench"] * n)
                if res["counted"] != n:
                    raise BenchError(
                        "callgrind run %s: %d of %d hits counted (%s)" % (
                            label, res["counted"], n,
                            "; ".join(res["errors"][:2])))
        time.sleep(0.3)
    finally:
        rc = td.stop(timeout=120)
    if rc:
        raise BenchError("tallyd under valgrind exited %d:\n%s" % (
            rc, td.log_tail()))
    shutil.rmtree(data, ignore_errors=True)
    return callgrind_total(out)


def run(args, exes, R):
    w, n = args.cg_warmup, args.hits
    log("callgrind: idle start/stop")
    idle = one("idle", 0, 0)
    log("callgrind: start, %s warm-up hits, stop" % fmt_int(w))
    warm = one("warm", w, 0)
    log("callgrind: start, %s warm-up + %s hits, stop" % (
        fmt_int(w), fmt_int(n)))
    full = one("full", w, n)
    R["cg"] = {"idle": idle, "warm": warm, "full": full, "warmup": w,
               "hits": n, "per_hit": (full - warm) / n,
               "per_hit_idle": (full - idle) / (w + n)}
    log("  Ir idle %s, warm %s, full %s: %.0f Ir per hit" % (
        fmt_int(idle), fmt_int(warm), fmt_int(full), R["cg"]["per_hit"]))
