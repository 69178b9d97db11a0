"""The markdown table of bench/run: one function per part of it, each
returning its lines. R holds the figures (see sections/), M the machine.

TARGETS are tally's performance goals; bench/README.md lists them with
what each one means.
"""

import statistics
import time

from . import common
from .common import fmt_int, fmt_ms
from .machine import psi

TARGETS = {
    "batch": 0.8,            # x nginx req/s
    "strict": 0.8,           # x nginx req/s
    "strict_batch": 0.8,     # x batch req/s, the same round
    "p99_ms": 5.0,
    "rss_idle_mib": 8.0,
    "rss_paths_mib": 32.0,   # VmRSS, 100,000 paths
    "anon_paths_mib": 16.0,  # anonymous memory, 1,000,000 paths
    "stats_ms": 20.0,
    "top_ms": 300.0,
    "row_bytes": 64.0,
    "clients": 0.95,         # x nginx req/s, 1k and 10k keep-alive
    "close": 1.0,            # x nginx req/s, a connection per request
    "growth_rate": 0.9,      # large store's /hit and /count x small's
    "growth_stats_ms": 20.0,
    "growth_top_ms": 100.0,
    "pg_rate": 0.8,          # one node's /hit on PostgreSQL x on LMDB
    "pg_cpu_us": 20.0,       # PostgreSQL CPU per hit: half the study's 40
    "pg_wal_bytes": 295.0,   # WAL per hit: half the study's 590 B
}


def verdict(ok):
    return "yes" if ok else "**no**"


def _rounds_note(R, text):
    """text with the number of rounds, when there were several."""
    n = len(R["rounds"])
    return text % n if n > 1 else ""


def header(args, R, M):
    out = [
        "## tally benchmarks",
        "",
        "Machine: %s cores, %s, %s RAM, Linux %s. Load average %s at the "
        "start, %s at the end." % (
            M["nproc"], M["cpu"], M["mem"], M["kernel"],
            R.get("load_start", "?"), R.get("load_end", "?")),
        "Server pinned to core %d, wrk to core %d; wrk -t1 -c%d -d%ds "
        "--latency; tallyd --threads 1 %s, release build. %s." % (
            args.server_cpu, args.client_cpu, args.connections,
            args.duration, " ".join(R.get("tallyd_flags", [])),
            R.get("versions", "")),
    ]
    if args.dry_run:
        out += ["", "**Dry run** (--dry-run): every section at its smallest, "
                "to check that it works. These figures mean nothing."]
    busy = [x for x in (psi(R.get("load_start", "")),
                        psi(R.get("load_end", "")))
            if x is not None and x > 10]
    if busy:
        out += ["", "**The machine was busy**: other processes waited for a "
                "CPU up to %.0f%% of the time (PSI). Pinning keeps tallyd, "
                "nginx and wrk apart from each other, not from them: req/s, "
                "ratios and above all p99 latencies are noisy; the "
                "instruction count is not affected. Rerun on a quiet "
                "machine, or with --rounds 3 for medians." % max(busy)]
    return out + [""]


def throughput_table(R):
    """req/s and latencies of each run, and per round when several."""
    if "batch" not in R:
        return []
    several = len(R["rounds"]) > 1
    first = "round | " if several else ""
    out = ["### Throughput: GET /hit?path=/bench (answer %d bytes)" %
           R.get("answer_bytes", 0), "",
           "| %sserver | req/s | p50 | p99 | tallyd / nginx |" % first,
           "|%s---|---:|---:|---:|---:|" % ("---|" if several else "")]
    names = (("nginx_a", "nginx, static file"),
             ("batch", "tallyd, durability batch"),
             ("nginx_b", "nginx, static file (again)"),
             ("strict", "tallyd, durability strict"))
    rows = [(str(i + 1), rd) for i, rd in enumerate(R["rounds"])]
    if several:
        rows.append(("median", R))
    for label, rd in rows:
        for key, name in names:
            r = rd[key]
            out.append("| %s%s | %s | %s | %s | %s |" % (
                label + " | " if several else "", name,
                fmt_int(round(r["rps"])), fmt_ms(r["p50_us"]),
                fmt_ms(r["p99_us"]),
                "%.2f" % r["ratio"] if "ratio" in r else ""))
    return out + [""]


def throughput_rows(R):
    med = _rounds_note(R, " (medians of %d rounds)")
    out = []
    for mode, ref in (("batch", "nginx_a"), ("strict", "nginx_b")):
        r, n = R[mode], R[ref]
        out.append("| `%s` throughput%s | %s req/s = %.2f × nginx (%s req/s) "
                   "| ≥ %.1f × nginx | %s |" % (
                       mode, med, fmt_int(round(r["rps"])), r["ratio"],
                       fmt_int(round(n["rps"])), TARGETS[mode],
                       verdict(r["ratio"] >= TARGETS[mode])))
    # strict against batch: each round's two tallyd runs, then the median.
    ratios = [rd["strict"]["rps"] / rd["batch"]["rps"]
              for rd in R["rounds"] if rd["batch"]["rps"] > 0]
    if ratios:
        ratio = statistics.median(ratios)
        out.append("| `strict` / `batch`%s | %.2f%s | ≥ %.1f × batch | %s |" % (
            med, ratio, " (rounds: %s)" % ", ".join("%.2f" % x
                                                   for x in ratios)
            if len(ratios) > 1 else "", TARGETS["strict_batch"],
            verdict(ratio >= TARGETS["strict_batch"])))
    return out


def latency_rows(args, R):
    med = _rounds_note(R, " (medians of %d rounds)")
    out = []
    for key, name in (("batch", "tallyd batch"), ("strict", "tallyd strict"),
                      ("nginx_a", "nginx")):
        r = R[key]
        out.append("| p99 latency at %d connections, %s%s | %s (p50 %s) "
                   "| < %g ms | %s |" % (
                       args.connections, name, med, fmt_ms(r["p99_us"]),
                       fmt_ms(r["p50_us"]), TARGETS["p99_ms"],
                       verdict(r["p99_us"] / 1000 < TARGETS["p99_ms"])))
    return out


def counted_row(R, mode):
    """Every hit wrk saw answered is in the store: as GET /count tells
    while tallyd runs, and as tallyctl reads it after SIGTERM."""
    r = R[mode]
    answered = r["ok"]
    bits = ["wrk answered %s (200s; %d other, %d socket errors)" % (
        fmt_int(answered), r["other"],
        r["connect"] + r["read"] + r["write"] + r["timeout"])]
    good = True
    if "stored_live" in r:
        bits.append("GET /count %s" % fmt_int(r["stored_live"]))
        good &= r["stored_live_all_ok"]
    else:
        bits.append("GET /count failed: %s" % r.get("stored_live_err"))
        good = False
    if "stored_ctl" in r:
        bits.append("tallyctl page after SIGTERM %s (+%d in flight)" % (
            fmt_int(r["stored_ctl"]), r["stored_ctl"] - answered))
        good &= r["stored_ctl_all_ok"]
    else:
        bits.append(r.get("stored_ctl_err", "tallyctl page: ?"))
        good = False
    if r.get("exit"):
        bits.append("tallyd exit status %d" % r["exit"])
        good = False
    return "| answered hits counted, `%s`%s | %s | every one (stored ≥ " \
        "answered) | %s |" % (mode, _rounds_note(R, " (sums of %d runs)"),
                              "; ".join(bits), verdict(good))


def fsync_row(args, R):
    if "fsync_s" not in R:
        return []
    return ["| fdatasync of the store's disk (4 KiB, median of 50) | %.2f ms: "
            "a strict hit waits for two syncs (its commit's pages, then its "
            "meta page, synced alone or by the next commit), so %d "
            "connections allow at most ~%s req/s | — | |" % (
                R["fsync_s"] * 1e3, args.connections,
                fmt_int(int(round(args.connections / (2 * R["fsync_s"]),
                                  -2))))]


def throughput_target_rows(args, R):
    if "batch" in R:
        return (throughput_rows(R) + latency_rows(args, R) +
                [counted_row(R, "batch"), counted_row(R, "strict")] +
                fsync_row(args, R))
    if "throughput_error" in R:
        return ["| throughput, latency, counting | not measured: %s | | |" %
                R["throughput_error"]]
    return []


def _rss_split(R, kind):
    anon = R.get("rss_%s_anon_kib" % kind)
    if anon is None:
        return ""
    return " (%.1f MiB anonymous, %.1f MiB file-backed: LMDB map, binary)" % (
        anon / 1024, R["rss_%s_file_kib" % kind] / 1024)


def rss_rows(R):
    out = []
    if "rss_idle_kib" in R:
        out.append("| RSS idle | %.1f MiB%s | < %g MiB | %s |" % (
            R["rss_idle_kib"] / 1024, _rss_split(R, "idle"),
            TARGETS["rss_idle_mib"],
            verdict(R["rss_idle_kib"] / 1024 < TARGETS["rss_idle_mib"])))
    if "rss_paths_kib" in R:
        allc = (R["paths_counted"] == R["paths_sent"] and
                R["paths_site_views"] == R["paths_sent"])
        # The VmRSS target is for 100,000 paths; the anonymous one
        # holds at any number, and is stated for 1,000,000.
        vm_target = R["paths_sent"] == 100000
        out.append(
            "| RSS with %s paths | %.1f MiB%s, peak %.1f MiB; %s of %s "
            "distinct paths counted%s | %s | %s |" % (
                fmt_int(R["paths_sent"]), R["rss_paths_kib"] / 1024,
                _rss_split(R, "paths"), R["rss_paths_hwm_kib"] / 1024,
                fmt_int(R["paths_counted"]), fmt_int(R["paths_sent"]),
                "" if allc else
                " (site views %s)" % fmt_int(R["paths_site_views"]),
                "< %g MiB" % TARGETS["rss_paths_mib"] if vm_target else "—",
                verdict(R["rss_paths_kib"] / 1024 < TARGETS["rss_paths_mib"]
                        and allc) if vm_target else ""))
        anon = R.get("rss_paths_anon_kib")
        if anon is not None:
            out.append(
                "| anonymous memory with %s paths, once all are committed "
                "(%.1f s after the last) | %.1f MiB | < %g MiB | %s |" % (
                    fmt_int(R["paths_sent"]), R.get("rss_drain_s", 0),
                    anon / 1024, TARGETS["anon_paths_mib"],
                    verdict(anon / 1024 < TARGETS["anon_paths_mib"]
                            and allc)))
    elif "rss_error" in R:
        out.append("| RSS, store size | not measured: %s | | |" %
                   R["rss_error"])
    return out


def row_bytes_rows(R):
    """Bytes per daily row of the store the RSS run left."""
    if "rows_100k" not in R:
        if "rows_100k_note" in R:
            return ["| store bytes per daily row | not measured: %s | ≤ %g "
                    "| |" % (R["rows_100k_note"], TARGETS["row_bytes"])]
        return []
    s = R["rows_100k"]
    per = s["days_bytes"] / s["rows"]
    out = ["| store bytes per daily row, `days` database (%s rows of %s "
           "paths of 41 bytes, one day; mdb_stat) | %.1f | ≤ %g | %s |" % (
               fmt_int(s["rows"]), fmt_int(R["paths_sent"]), per,
               TARGETS["row_bytes"], verdict(per <= TARGETS["row_bytes"]))]
    if "backup_bytes" in R:
        out.append("| store bytes per daily row, whole store (tallyctl "
                   "backup: %s bytes) | %.1f | — | |" % (
                       fmt_int(R["backup_bytes"]),
                       R["backup_bytes"] / s["rows"]))
    else:
        out.append("| store bytes per daily row, whole store | %s; from "
                   "mdb_stat: %.1f | — | |" % (
                       R.get("backup_note", "?"),
                       s["compact_bytes"] / s["rows"]))
    return out


def gen_row_bytes_rows(R):
    """Bytes per daily row of the generated store."""
    if "rows_gen" not in R:
        return []
    s = R["rows_gen"]
    per = s["days_bytes"] / s["rows"]
    return [
        "| store bytes per daily row, `days` database, generated store "
        "(%s rows) | %.1f | ≤ %g | %s |" % (
            fmt_int(s["rows"]), per, TARGETS["row_bytes"],
            verdict(per <= TARGETS["row_bytes"])),
        "| store bytes per daily row, whole generated store compacted "
        "(%.2f GiB; data.mdb %.2f GiB) | %.1f | — | |" % (
            s["compact_bytes"] / 2**30, R["gen_file_bytes"] / 2**30,
            s["compact_bytes"] / s["rows"]),
    ]


def ctl_rows(R):
    if "ctl" not in R:
        if "ctl_error" in R:
            return ["| tallyctl timings | not measured: %s | | |" %
                    R["ctl_error"]]
        return []
    scale = "%s pages × %d days" % (fmt_int(R["gen_pages"]), R["gen_days"])
    if (R["gen_pages"], R["gen_days"]) != (100000, 365):
        scale += " (scaled down from 100,000 × 365)"
    out = []
    for name, label, target in (
            ("stats", "`tallyctl stats`", "stats_ms"),
            ("top", "`tallyctl top --days 30`", "top_ms"),
            ("export", "`tallyctl export > /dev/null`", None)):
        c = R["ctl"].get(name, {"error": "not run"})
        tgt = "< %g ms" % TARGETS[target] if target else "—"
        if "error" in c:
            out.append("| %s, %s | failed: %s | %s | **no** |" % (
                label, scale, c["error"], tgt))
            continue
        ms = c["median_s"] * 1000
        res = "%.1f ms" % ms if ms < 1000 else "%.2f s" % (ms / 1000)
        res += " median of %d (%s)" % (c["runs"], R["timer"])
        out.append("| %s, %s | %s | %s | %s |" % (
            label, scale, res, tgt,
            verdict(ms < TARGETS[target]) if target else ""))
    return out


def callgrind_rows(R):
    out = []
    if "cg" in R:
        c = R["cg"]
        out.append("| instructions per /hit, tallyd (callgrind, batch, 4 "
                   "keep-alive connections) | %s Ir ((full − warm-up run) / "
                   "%s hits; (full − idle run) / all %s hits: %s) | — | |" % (
                       fmt_int(round(c["per_hit"])), fmt_int(c["hits"]),
                       fmt_int(c["hits"] + c["warmup"]),
                       fmt_int(round(c["per_hit_idle"]))))
        if "per_commit" in c:
            out.append("| instructions per commit of one page's hits "
                       "(callgrind; not in the figure above: a commit "
                       "serves every hit of its commit_interval) | %s Ir "
                       "(%d commits among %s hits) | — | |" % (
                           fmt_int(round(c["per_commit"])), c["commits"],
                           fmt_int(c["hits"])))
        if "nginx_per_hit" in c:
            ratio = c["per_hit"] / c["nginx_per_hit"]
            out.append("| instructions per request, tallyd / nginx (static "
                       "file, same client, same run) | %.2f (nginx %s Ir per "
                       "request) | ≤ 1.0 | %s |" % (
                           ratio, fmt_int(round(c["nginx_per_hit"])),
                           verdict(ratio <= 1.0)))
    if "cg_strict" in R:
        c = R["cg_strict"]
        per_commit = ""
        if c.get("commits"):
            per_commit = "; %s commits, %.1f hits each" % (
                fmt_int(c["commits"]), c["hits"] / c["commits"])
        out.append("| instructions per strict /hit (callgrind, 64 keep-alive "
                   "connections, commits included) | %s Ir ((full − warm-up "
                   "run) / %s hits%s) | — | |" % (
                       fmt_int(round(c["per_hit"])), fmt_int(c["hits"]),
                       per_commit))
        if "per_commit" in c:
            out.append("| the same without its commits, and one commit "
                       "(callgrind) | %s Ir per hit; %s Ir per commit | — "
                       "| |" % (fmt_int(round(c["per_hit_no_commit"])),
                                fmt_int(round(c["per_commit"]))))
        if "cg" in R and R["cg"].get("per_hit"):
            out.append("| instructions per hit, strict / batch (callgrind) "
                       "| %.2f%s | — | |" % (
                           c["per_hit"] / R["cg"]["per_hit"],
                           "; without the commits %.2f" % (
                               c["per_hit_no_commit"] / R["cg"]["per_hit"])
                           if "per_commit" in c else ""))
    if "cg_close" in R:
        c = R["cg_close"]
        if "nginx_per_req" in c:
            ratio = c["per_req"] / c["nginx_per_req"]
            out.append("| instructions per request on a new connection, "
                       "tallyd / nginx (callgrind, user space only) | %.2f "
                       "(%s Ir against %s) | ≤ 1.0 | %s |" % (
                           ratio, fmt_int(round(c["per_req"])),
                           fmt_int(round(c["nginx_per_req"])),
                           verdict(ratio <= 1.0)))
        else:
            out.append("| instructions per request on a new connection, "
                       "tallyd (callgrind) | %s Ir | — | |" %
                       fmt_int(round(c["per_req"])))
    if "cg_error" in R:
        out.append("| instructions per /hit | not measured: %s | — | |" %
                   R["cg_error"])
    if "cg_nginx_error" in R:
        out.append("| instructions per request, nginx | not measured: %s "
                   "| — | |" % R["cg_nginx_error"])
    return out


def clients_rows(R):
    out = []
    for label, c in R.get("clients", {}).items():
        what = ("a new connection per request, 64 at a time" if c["close"]
                else "%s keep-alive connections" % fmt_int(c["conns"]))
        tgt = TARGETS["close" if c["close"] else "clients"]
        spread = ""
        if len(c.get("ratios", ())) > 1:
            spread = "median of %s; " % ", ".join(
                "%.2f" % r for r in c["ratios"])
        out.append("| many clients, tallyd batch / nginx: %s | %.2f "
                   "(%s%s / %s req/s; p99 %s / %s; errors %d / %d) | ≥ %.2g × "
                   "nginx | %s |" % (
                       what, c["ratio"], spread,
                       fmt_int(round(c["tallyd"]["rps"])),
                       fmt_int(round(c["nginx"]["rps"])),
                       fmt_ms(c["tallyd"]["p99_us"]),
                       fmt_ms(c["nginx"]["p99_us"]), errors(c["tallyd"]),
                       errors(c["nginx"]), tgt, verdict(c["ratio"] >= tgt)))
    if "clients_error" in R:
        out.append("| many clients | not measured: %s | — | |" %
                   R["clients_error"])
    return out


def _dur(s):
    return "%.1f ms" % (s * 1000) if s < 1 else "%.2f s" % s


def _ms(c):
    """A tallyctl timing: its median, and the CPU time a run took, which
    a busy machine inflates less."""
    if "error" in c:
        return "failed: %s" % c["error"]
    return "%s (CPU %s)" % (_dur(c["median_s"]), _dur(c["cpu_s"]))


def _growth_scale(g):
    return "%s pages × %s days" % (fmt_int(g["pages"]), fmt_int(g["days"]))


def _growth_bytes(g):
    sz = g.get("size")
    b = g["file_bytes"]
    text = "%.2f GiB" % (b / 2**30) if b >= 2**30 else \
        "%.1f MiB" % (b / 2**20)
    if sz:
        text += " (%s daily rows; %.1f bytes a row in `days`)" % (
            fmt_int(sz["rows"]), sz["days_bytes"] / max(sz["rows"], 1))
    return text


def growth_table(R):
    """The growth section: the large store beside the small one."""
    G = R.get("growth", {})
    if "growth_error" in R:
        return ["", "### Cost as the store grows", "",
                "Not measured: %s" % R["growth_error"]]
    if "small" not in G or "large" not in G:
        return []
    s, L = G["small"], G["large"]
    out = ["", "### Cost as the store grows", "",
           "| figure | %s (sparse) | %s | target | met |" % (
               _growth_scale(L), _growth_scale(s)),
           "|---|---:|---:|---|---|",
           "| store (data.mdb) | %s | %s | — | |" % (
               _growth_bytes(L), _growth_bytes(s))]
    if L.get("gen_seconds") is not None:
        out.append("| generating it (bench/gen_store) | %.0f s | | — | |" %
                   L["gen_seconds"])
    for kind in ("hit", "count"):
        rl, rs = L["rates"][kind], s["rates"][kind]
        ratio = rl["rps"] / rs["rps"]
        out.append("| `GET /%s`, 1,000 pages in turn, batch | %s req/s "
                   "(p99 %s) = **%.2f ×** the small store | %s req/s (p99 "
                   "%s) | ≥ %.1f × | %s |" % (
                       kind, fmt_int(round(rl["rps"])), fmt_ms(rl["p99_us"]),
                       ratio, fmt_int(round(rs["rps"])),
                       fmt_ms(rs["p99_us"]), TARGETS["growth_rate"],
                       verdict(ratio >= TARGETS["growth_rate"])))
    for name, label, target in (
            ("stats", "`tallyctl stats`", "growth_stats_ms"),
            ("top30", "`tallyctl top --days 30`", "growth_top_ms"),
            ("top29", "`tallyctl top --days 29` (from the recent rows)",
             None),
            ("topall", "`tallyctl top --all`", None),
            ("history", "`tallyctl history --days 1095` (the site)", None),
            ("history_page", "`tallyctl history --path P --days 1095` (the "
             "most viewed page)", None)):
        if name not in L["ctl"] or name not in s["ctl"]:
            continue
        cl, cs = L["ctl"][name], s["ctl"][name]
        met = ""
        if target:
            met = verdict("error" not in cl and
                          cl["median_s"] * 1000 < TARGETS[target])
        out.append("| %s | %s | %s | %s | %s |" % (
            label, _ms(cl), _ms(cs),
            "< %g ms" % TARGETS[target] if target else "—", met))
    out.append("| tallyd start to READY=1 | %.0f ms | %.0f ms | — | |" % (
        L["ready_s"] * 1000, s["ready_s"] * 1000))
    return out


def _pg_cost(c):
    if "pg_us_hit" not in c:
        return "no hits counted"
    return ("%.1f µs CPU, %.0f B WAL, %.2f visitor rows per hit (%s hits)" %
            (c["pg_us_hit"], c["wal_hit"], c["rows_hit"], fmt_int(c["hits"])))


def _flush_ms(s):
    return "—" if s is None else "%.1f ms" % (s * 1000)


def pg_rate_rows(R):
    if "pg_rate" not in R:
        return []
    P = R["pg_rate"]
    rd = P["rounds"]
    several = len(rd) > 1
    lm = statistics.median(r["lmdb"]["rps"] for r in rd)
    med = " (medians of %d rounds)" % len(rd) if several else ""
    out = []
    for key, ratio, where in (
            ("pg", "ratio", "the database on the client's core"),
            ("pg_shared", "ratio_shared", "the database on tallyd's core")):
        pg = statistics.median(r[key]["rps"] for r in rd)
        out.append("| `/hit`, one node, PostgreSQL / LMDB, %s%s | %s / %s "
                   "req/s = %.2f (p99 %s / %s) | ≥ %.1f | %s |" % (
                       where, med, fmt_int(round(pg)), fmt_int(round(lm)),
                       P[ratio], fmt_ms(rd[-1][key]["p99_us"]),
                       fmt_ms(rd[-1]["lmdb"]["p99_us"]), TARGETS["pg_rate"],
                       verdict(P[ratio] >= TARGETS["pg_rate"])))
    for store, name in (("lmdb", "LMDB"), ("pg", "PostgreSQL"),
                        ("pg_shared", "PostgreSQL, database on its core")):
        ok = all(r[store]["counted"] >= r[store]["ok"] for r in rd)
        out.append("| answered hits counted, one node on %s | wrk answered "
                   "%s, the node counted %s; tallyd CPU %.1f µs per hit | "
                   "every one | %s |" % (
                       name, fmt_int(sum(r[store]["ok"] for r in rd)),
                       fmt_int(sum(r[store]["counted"] for r in rd)),
                       statistics.median(r[store]["tallyd_us_hit"]
                                         for r in rd), verdict(ok)))
    c = rd[-1]["pg"]["cost"]
    out.append("| PostgreSQL's cost in that run (one node, %s hits per "
               "flush; flush p50 %s, p99 %s) | %s | — | |" % (
                   fmt_int(round(c["hits"] / max(1, c["flushes"]))),
                   _flush_ms(c["flush_p50"]), _flush_ms(c["flush_p99"]),
                   _pg_cost(c)))
    return out


def pg_step_rows(R):
    steps = R.get("pg_steps")
    if not steps:
        return []
    paced = [s for s in steps if s["offered"] is not None]
    ok = [s for s in steps if s["sustained"]]
    out = []
    if ok:
        best = max(ok, key=lambda s: s["achieved"])
        limit = ("the machine's top (unpaced), flushes still in time"
                 if best["offered"] is None else
                 "offered %s hits/s" % fmt_int(best["offered"]))
        out.append("| highest rate of 2 nodes on one database with flush "
                   "p99 ≤ 2 × commit_interval (%.0f ms) | %s hits/s (%s; "
                   "flush p50 %s, p99 %s) | — | |" % (
                       2000 * 0.1, fmt_int(round(best["achieved"])), limit,
                       _flush_ms(best["flush_p50"]),
                       _flush_ms(best["flush_p99"])))
    else:
        out.append("| highest rate of 2 nodes on one database with flush "
                   "p99 ≤ 200 ms | none of the steps | — | **no** |")
    # The cost at the busiest paced step that kept its flushes in time.
    cost = [s for s in paced if s["sustained"] and "pg_us_hit" in s]
    if cost:
        s = cost[-1]
        what = "2 nodes, %s hits/s" % fmt_int(round(s["achieved"]))
        out.append("| PostgreSQL CPU per hit (%s) | %.1f µs | < %g µs (half "
                   "of 16–40) | %s |" % (
                       what, s["pg_us_hit"], TARGETS["pg_cpu_us"],
                       verdict(s["pg_us_hit"] < TARGETS["pg_cpu_us"])))
        out.append("| WAL bytes per hit (%s; %.2f visitor id rows per hit) "
                   "| %.0f B | < %g B (half of 590) | %s |" % (
                       what, s["rows_hit"], s["wal_hit"],
                       TARGETS["pg_wal_bytes"],
                       verdict(s["wal_hit"] < TARGETS["pg_wal_bytes"])))
    return out


def pg_table(R):
    """The steps of two nodes on one database, the WAL by record type
    and the statements that cost."""
    if "pg_skipped" in R:
        return ["", "### PostgreSQL store", "",
                "Not measured: %s." % R["pg_skipped"]]
    steps = R.get("pg_steps")
    if not steps:
        return []
    note = []
    if R.get("pg_explain"):
        note = ["**--pg-explain**: auto_explain timed every node of one "
                "statement in ten, which slows PostgreSQL down: the rates, "
                "latencies and CPU figures are not the store's.", ""]
    out = ["", "### Two nodes on one PostgreSQL database (%s)" %
           R.get("pg_version", "?"), "",
           "| offered hits/s | achieved | flushes | flush p50 | flush p99 "
           "| over 200 ms | backlog peak | PG CPU µs/hit | WAL B/hit | "
           "visitor rows/hit | tallyd CPU µs/hit | sustained |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    out[3:3] = note
    for s in steps:
        out.append("| %s | %s | %s | %s | %s | %d | %s | %s | %s | %s | %s "
                   "| %s |" % (
                       "unpaced, %d conns each" % s["conns"]
                       if s["offered"] is None else fmt_int(s["offered"]),
                       fmt_int(round(s["achieved"])),
                       "%d (%d with ON CONFLICT)" % (s["flushes"],
                                                     s["resent"])
                       if s.get("resent") else str(s["flushes"]),
                       _flush_ms(s["flush_p50"]), _flush_ms(s["flush_p99"]),
                       s["flush_over"], fmt_int(int(s["backlog_peak"])),
                       "%.1f" % s["pg_us_hit"] if "pg_us_hit" in s else "—",
                       "%.0f" % s["wal_hit"] if "wal_hit" in s else "—",
                       "%.2f" % s["rows_hit"] if "rows_hit" in s else "—",
                       "%.1f" % s["tallyd_us_hit"]
                       if "tallyd_us_hit" in s else "—",
                       verdict(s["sustained"])))
    idle = R.get("pg_idle")
    if idle:
        out += ["", "Both nodes up and no hits (%.0f s): PostgreSQL used %.1f "
                "ms of CPU and wrote %s B of WAL per second (the nodes' "
                "refreshes and the cluster's own work)." % (
                    idle["seconds"], idle["pg_cpu_s"] * 1e3 / idle["seconds"],
                    fmt_int(round(idle["wal"] / idle["seconds"])))]
    wal = R.get("pg_wal_types")
    best = [s for s in steps if s["sustained"] and s["offered"] is not None]
    if wal and best:
        b = best[-1]
        total = sum(t["bytes"] for t in wal) or 1
        out += ["", "WAL by record type at %s hits/s offered (pg_waldump "
                "--stats=record), bytes per hit:" % fmt_int(b["offered"]), "",
                "| record type | records | bytes per hit | of which full "
                "pages | share |", "|---|---:|---:|---:|---:|"]
        for t in wal[:8]:
            out.append("| %s | %s | %.1f | %.1f | %.0f%% |" % (
                t["type"], fmt_int(t["n"]), t["bytes"] / b["hits"],
                t["fpi"] / b["hits"], 100.0 * t["bytes"] / total))
    if best and best[-1].get("statements"):
        b = best[-1]
        out += ["", "Statements by execution time at %s hits/s offered "
                "(pg_stat_statements; time in the statement, not only "
                "CPU):" % fmt_int(b["offered"]), "",
                "| statement | calls | ms per call | WAL B per call | rows "
                "| µs per hit |", "|---|---:|---:|---:|---:|---:|"]
        for st in b["statements"]:
            out.append("| `%s` | %s | %.2f | %s | %s | %.1f |" % (
                st["query"].replace("|", "\\|")[:80], fmt_int(st["calls"]),
                st["ms"] / max(1, st["calls"]),
                fmt_int(st["wal"] // max(1, st["calls"])),
                fmt_int(st["rows"]), st["ms"] * 1000 / max(1, b["hits"])))
    return out


def pg_rows(R):
    rows = pg_rate_rows(R) + pg_step_rows(R)
    if "pg_error" in R:
        rows.append("| PostgreSQL store | not measured: %s | | |" %
                    R["pg_error"])
    return rows


def errors(r):
    return r["connect"] + r["read"] + r["write"] + r["timeout"]


def targets_table(args, R):
    rows = (throughput_target_rows(args, R) + clients_rows(R) + rss_rows(R) +
            row_bytes_rows(R) + gen_row_bytes_rows(R) + ctl_rows(R) +
            callgrind_rows(R) + pg_rows(R))
    if not rows:
        return []
    return (["### Results and targets", "",
             "| figure | result | target | met |", "|---|---|---|---|"] +
            rows)


def footer(R):
    return ["", "Whole run: %.0f s%s." % (
        time.monotonic() - common.T0,
        "" if R.get("gen_seconds") is None
        else ", of which %.0f s generating the store" % R["gen_seconds"])]


def report(args, R, M):
    return "\n".join(header(args, R, M) + throughput_table(R) +
                     targets_table(args, R) + growth_table(R) + pg_table(R) +
                     footer(R))
