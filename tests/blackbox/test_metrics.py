#!/usr/bin/env python3
"""GET /metrics on a live tallyd: Prometheus' own checker (promtool) accepts
it, every metric of doc/http.md ("Metrics") is there with HELP and TYPE, the numbers match the
hits sent, there is no per-path label, and only admin_allow may read it."""

import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (BROWSER_UA, BROWSER_UA2, Daemon, Skip, check,  # noqa: E402
                     check_json_error, eq, run_tallyd)

# Every metric doc/http.md names, with its type and its labels.
DOC_METRICS = {
    "tally_views_total": ("counter", {"site"}),
    "tally_views_all_time": ("gauge", {"site"}),
    "tally_views_today": ("gauge", {"site"}),
    "tally_visitors_today": ("gauge", {"site"}),
    "tally_hits_declined_total": ("counter", {"reason"}),
    "tally_http_requests_total": ("counter", {"code"}),
    "tally_store_commits_total": ("counter", set()),
    "tally_store_commit_seconds": ("histogram", set()),
    "tally_store_pending_hits": ("gauge", set()),
    "tally_store_map_bytes": ("gauge", set()),
    "tally_store_used_bytes": ("gauge", set()),
    "tally_build_info": ("gauge", {"version"}),
    "process_start_time_seconds": ("gauge", set()),
    "process_resident_memory_bytes": ("gauge", set()),
}
BOT_UA = "curl/8.5.0"
THIRD_UA = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.5 Safari/605.1.15")

SAMPLE_RE = re.compile(
    r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( -?\d+)?$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


class Exposition:
    """A parsed text exposition: HELP, TYPE and samples, in order."""

    def __init__(self, text):
        self.text = text
        self.help = {}
        self.type = {}
        self.samples = []   # (name, {labels}, float value)
        for n, line in enumerate(text.split("\n"), 1):
            if line == "":
                continue
            if line.startswith("# HELP "):
                name, _, doc = line[7:].partition(" ")
                check(name not in self.help, "line %d: second HELP for %s"
                      % (n, name))
                check(doc.strip() != "", "line %d: empty HELP for %s"
                      % (n, name))
                self.help[name] = doc
                continue
            if line.startswith("# TYPE "):
                name, _, typ = line[7:].partition(" ")
                check(name not in self.type, "line %d: second TYPE for %s"
                      % (n, name))
                self.type[name] = typ
                continue
            if line.startswith("#"):
                continue
            m = SAMPLE_RE.match(line)
            check(m is not None, "line %d is not a sample: %r" % (n, line))
            labels = {}
            if m.group(3):
                rest = m.group(3)
                for lm in LABEL_RE.finditer(rest):
                    labels[lm.group(1)] = lm.group(2)
                stripped = LABEL_RE.sub("", rest).replace(",", "").strip()
                check(stripped == "", "line %d: bad labels %r" % (n, rest))
            try:
                value = float(m.group(4))
            except ValueError:
                raise harness.Failure("line %d: bad value %r" % (n, line))
            self.samples.append((m.group(1), labels, value))
        check(text.endswith("\n"), "the exposition does not end in a newline")

    def family_of(self, sample_name):
        for suffix in ("_bucket", "_sum", "_count"):
            base = sample_name[:-len(suffix)]
            if sample_name.endswith(suffix) and \
                    self.type.get(base) == "histogram":
                return base
        return sample_name

    def get(self, name, **labels):
        """The value of the one sample name{labels}; fails when absent."""
        for n, lb, v in self.samples:
            if n == name and lb == labels:
                return v
        raise harness.Failure("no sample %s%r in /metrics:\n%s"
                              % (name, labels, self.text[:3000]))

    def series(self, name):
        return [(lb, v) for n, lb, v in self.samples if n == name]


def scrape(d, headers=None):
    st, hd, body = d.request("GET", "/metrics", headers)
    eq(st, 200, "GET /metrics status (body %r)" % body[:200])
    ct = hd.get("content-type", "")
    check(ct.startswith("text/plain") and "version=0.0.4" in ct,
          "Content-Type %r, want text/plain; version=0.0.4" % ct)
    return body, Exposition(body.decode("utf-8"))


def wait_for(d, pred, what, timeout=5.0):
    """Scrapes until pred(exposition) is true; returns the last scrape."""
    deadline = time.monotonic() + timeout
    while True:
        body, m = scrape(d)
        if pred(m):
            return body, m
        if time.monotonic() > deadline:
            raise harness.Failure("%s: not seen within %.0f s:\n%s"
                                  % (what, timeout, body.decode()[:3000]))
        time.sleep(0.05)


def promtool_check(body):
    promtool = shutil.which("promtool")
    if promtool is None:
        raise Skip("promtool not installed (Debian package prometheus)")
    p = subprocess.run([promtool, "check", "metrics"], input=body,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=60)
    out = p.stdout.decode("utf-8", "replace")
    check(p.returncode == 0, "promtool check metrics exited %d:\n%s\n"
          "--- the exposition:\n%s" % (p.returncode, out,
                                        body.decode()[:3000]))
    check(out.strip() == "", "promtool check metrics complains:\n%s" % out)


def send_traffic(d):
    """Counted, bot and rate-limited hits (rate_limit 3), and a 404.
    Returns (views counted, visitors, declined by reason)."""
    for i in range(5):          # 3 counted, 2 over the rate limit
        d.hit("/a/%d" % i, ua=BROWSER_UA)
    for i in range(4):          # 3 counted, 1 over
        d.hit("/b/%d" % i, ua=BROWSER_UA2)
    d.hit("/c", ua=THIRD_UA)     # 1 counted
    d.hit("/bot", ua=BOT_UA)     # bot
    d.hit("/bot", ua=None)       # no User-Agent: bot
    st, _, _ = d.request("GET", "/no-such-route")
    eq(st, 404, "status of an unknown route")
    return 7, 3, {"bot": 2, "rate": 3, "origin": 0}


# ------------------------------------------------------------------ cases

def test_promtool_accepts_live_metrics():
    d = Daemon(["--rate-limit", "3"], rate_limit=False)
    body, _ = scrape(d)
    promtool_check(body)            # a fresh daemon: nothing counted yet
    n, _, _ = send_traffic(d)
    body, _ = wait_for(d, lambda m: m.get(
        "tally_views_total", site="default") == n, "tally_views_total")
    promtool_check(body)


def test_every_spec_metric_has_help_and_type():
    d = Daemon()
    d.hit("/x")
    _, m = wait_for(d, lambda m: m.get("tally_store_commits_total") >= 1,
                    "a commit")
    for name, (typ, labels) in DOC_METRICS.items():
        check(name in m.help, "no HELP for %s" % name)
        eq(m.type.get(name), typ, "TYPE of %s" % name)
        if typ == "histogram":
            names = {name + "_bucket", name + "_sum", name + "_count"}
            got = {n for n, _, _ in m.samples if n in names}
            eq(got, names, "samples of the histogram %s" % name)
            continue
        ser = m.series(name)
        check(ser, "no sample of %s" % name)
        for lb, _ in ser:
            eq(set(lb), labels, "labels of %s" % name)
    # Each sample belongs to a family that has HELP and TYPE.
    for n, _, _ in m.samples:
        fam = m.family_of(n)
        check(fam in m.help and fam in m.type,
              "%s has no HELP or TYPE" % n)


def test_views_match_hits_sent():
    d = Daemon(["--rate-limit", "3"], rate_limit=False)
    n, nvisitors, declined = send_traffic(d)
    _, m = wait_for(d, lambda m: m.get(
        "tally_views_total", site="default") == n and
        m.get("tally_store_pending_hits") == 0, "all hits committed")
    eq(m.get("tally_views_total", site="default"), n,
       "tally_views_total{site=default}")
    eq(m.get("tally_views_today", site="default"), n,
       "tally_views_today{site=default}")
    eq(m.get("tally_visitors_today", site="default"), nvisitors,
       "tally_visitors_today{site=default}")
    for reason, want in declined.items():
        eq(m.get("tally_hits_declined_total", reason=reason), want,
           "tally_hits_declined_total{reason=%s}" % reason)
    # 12 answered hits, all 200; one 404; this scrape not yet counted.
    check(m.get("tally_http_requests_total", code="200") >= 12,
          "tally_http_requests_total{code=200} < 12")
    eq(m.get("tally_http_requests_total", code="404"), 1,
       "tally_http_requests_total{code=404}")
    # A later scrape counts the earlier one.
    _, m2 = scrape(d)
    check(m2.get("tally_http_requests_total", code="200") >
          m.get("tally_http_requests_total", code="200"),
          "scrapes are not counted in tally_http_requests_total")


def test_views_per_site():
    conf = harness.write_file(os.path.join(harness.mkdtemp(), "t.conf"),
                              "[site blog]\n[site shop]\n")
    d = Daemon(["--config", conf])
    for _ in range(3):
        d.hit("/p", site="blog")
    d.hit("/p", site="shop")
    _, m = wait_for(d, lambda m: m.get(
        "tally_views_total", site="blog") == 3, "views of blog")
    eq(m.get("tally_views_total", site="shop"), 1, "views of shop")
    eq(m.get("tally_views_total", site="default"), 0, "views of default")
    eq({lb["site"] for lb, _ in m.series("tally_views_total")},
       {"default", "blog", "shop"}, "sites in tally_views_total")


def test_set_and_import_move_the_gauge_not_the_counter():
    # increase(tally_views_total[...]) must mean traffic: tallyctl set
    # and import change the stored total (the gauge), never the counter.
    d = Daemon()
    for i in range(3):
        d.hit("/p%d" % i)
    # Committed first: set makes the stored total N, and hits still
    # pending would be added to it.
    _, m = wait_for(d, lambda m: m.get(
        "tally_views_all_time", site="default") == 3 and
        m.get("tally_store_pending_hits") == 0, "three views stored")
    eq(m.get("tally_views_total", site="default"), 3, "counted views")
    rc, _, err = harness.run_tallyctl("--data", d.data, "set", "--site",
                                      "default", "--views", "1000000")
    eq(rc, 0, "tallyctl set: %r" % err)
    _, m = wait_for(d, lambda m: m.get(
        "tally_views_all_time", site="default") == 1000000,
        "the set total in the gauge")
    eq(m.get("tally_views_total", site="default"), 3,
       "tally_views_total after set")
    d.hit("/p9")
    _, m = wait_for(d, lambda m: m.get(
        "tally_views_total", site="default") == 4 and
        m.get("tally_store_pending_hits") == 0, "one more counted view")
    # Lowering the stored total (still above today's 4) is no counter
    # reset either.
    rc, _, err = harness.run_tallyctl("--data", d.data, "set", "--site",
                                      "default", "--views", "10")
    eq(rc, 0, "tallyctl set lower: %r" % err)
    _, m = wait_for(d, lambda m: m.get(
        "tally_views_all_time", site="default") == 10, "the lower total")
    eq(m.get("tally_views_total", site="default"), 4,
       "tally_views_total after lowering")


def test_histogram_is_consistent():
    d = Daemon(["--commit-interval", "20ms"])
    for i in range(20):
        d.hit("/h/%d" % i)
        time.sleep(0.01)
    _, m = wait_for(d, lambda m: m.get("tally_store_commits_total") >= 2,
                    "two commits")
    buckets = []
    for lb, v in m.series("tally_store_commit_seconds_bucket"):
        eq(set(lb), {"le"}, "labels of a bucket")
        le = float("inf") if lb["le"] == "+Inf" else float(lb["le"])
        buckets.append((le, v))
    check(buckets and buckets[-1][0] == float("inf"),
          "the last bucket is not le=\"+Inf\": %r" % buckets)
    eq([b[0] for b in buckets], sorted(b[0] for b in buckets),
       "bucket bounds in order")
    for (_, a), (_, b) in zip(buckets, buckets[1:]):
        check(a <= b, "bucket counts decrease: %r" % buckets)
    count = m.get("tally_store_commit_seconds_count")
    eq(buckets[-1][1], count, "+Inf bucket vs _count")
    check(count >= 1, "no commit observed")
    s = m.get("tally_store_commit_seconds_sum")
    check(0 < s < count * 10, "implausible _sum %r for %r commits" % (s, count))


def test_process_and_build_metrics():
    t0 = time.time()
    d = Daemon()
    _, m = scrape(d)
    start = m.get("process_start_time_seconds")
    check(t0 - 5 <= start <= time.time() + 1,
          "process_start_time_seconds %r, the test started tallyd at %r"
          % (start, t0))
    rss = m.get("process_resident_memory_bytes")
    check(rss > 100 * 1024, "process_resident_memory_bytes %r" % rss)
    with open("/proc/%d/status" % d.proc.pid) as f:
        kb = [int(l.split()[1]) for l in f if l.startswith("VmRSS:")][0]
    check(abs(rss - kb * 1024) < max(kb * 1024, 8 << 20),
          "process_resident_memory_bytes %r far from VmRSS %d kB" % (rss, kb))
    rc, out, _ = run_tallyd("--version")
    eq(rc, 0, "tallyd --version")
    version = out.split()[-1]
    eq([(lb, v) for lb, v in m.series("tally_build_info")],
       [({"version": version}, 1.0)], "tally_build_info")
    used = m.get("tally_store_used_bytes")
    mapped = m.get("tally_store_map_bytes")
    check(0 < used <= mapped, "used %r, map %r bytes" % (used, mapped))


def test_no_per_path_labels():
    d = Daemon()
    _, before = scrape(d)
    paths = ["/secret-page-%d" % i for i in range(30)]
    for p in paths:
        d.hit(p)
    body, after = wait_for(d, lambda m: m.get(
        "tally_views_total", site="default") == len(paths), "30 views")
    for n, lb, _ in after.samples:
        check(not set(lb) & {"path", "page", "url", "uri"},
              "%s has a per-path label: %r" % (n, lb))
    text = body.decode()
    check("secret-page" not in text, "a path appears in /metrics")
    # The number of series does not grow with the number of pages (a
    # new status code or commit bucket may appear, nothing per page).
    check(len(after.samples) <= len(before.samples) + 3,
          "series grew from %d to %d with 30 pages"
          % (len(before.samples), len(after.samples)))


def test_admin_allow_default_loopback():
    d = Daemon()
    st, _, _ = d.request("GET", "/metrics")
    eq(st, 200, "GET /metrics from 127.0.0.1 with the default admin_allow")


def test_non_admin_gets_403_json():
    d = Daemon(["--admin-allow", "192.0.2.0/24"])
    st, hd, body = d.request("GET", "/metrics")
    check_json_error(st, hd, body, 403, "GET /metrics from 127.0.0.1, "
                     "admin_allow 192.0.2.0/24")
    check(b"tally_" not in body, "403 answer leaks metrics")
    st, hd, body = d.request("HEAD", "/metrics")
    eq(st, 403, "HEAD /metrics from a non-admin")
    # The rest of tallyd still serves that client.
    d.hit("/still-counting")
    d.check_alive()


def test_forwarding_header_not_believed_for_admin():
    # Without trusted_proxies, X-Forwarded-For is the client's own word.
    d = Daemon(["--admin-allow", "192.0.2.0/24"])
    for h in ({"X-Forwarded-For": "192.0.2.7"},
              {"X-Real-IP": "192.0.2.7"},
              {"Forwarded": "for=192.0.2.7"}):
        st, hd, body = d.request("GET", "/metrics", h)
        check_json_error(st, hd, body, 403, "GET /metrics with %r" % h)


def test_admin_is_the_client_behind_a_trusted_proxy():
    # Behind a reverse proxy on the same host every request comes from
    # 127.0.0.1; the client is the proxy's forwarded address (doc/http.md: the
    # client address), so an Internet client through the proxy is not
    # an admin under the default admin_allow (loopback).
    d = Daemon(["--trusted-proxies", "127.0.0.1"])
    st, hd, body = d.request("GET", "/metrics",
                             {"X-Forwarded-For": "203.0.113.9"})
    check_json_error(st, hd, body, 403, "GET /metrics through a trusted "
                     "proxy for 203.0.113.9")
    st, _, _ = d.request("GET", "/metrics",
                         {"X-Forwarded-For": "127.0.0.1"})
    eq(st, 200, "GET /metrics through a trusted proxy for 127.0.0.1")


if __name__ == "__main__":
    harness.main(globals())
