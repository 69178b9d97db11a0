#!/usr/bin/env python3
"""Privacy: after a run with a recognisable client address, User-Agent
and referrer, none of them is anywhere in the data directory, in tallyd's
working directory or in its log; of the referrer, the store holds the
host alone (never its path, query or user), the log not even that."""

import ipaddress
import json
import os
import signal
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (Daemon, check, eq, check_counts_shape,  # noqa: E402
                     parse_json, run_tallyctl)

ADDR4 = "198.51.100.77"
ADDR6 = "2001:db8:c0ff:ee::77"
UA = "Mozilla/5.0 PrivacyCanary-7f3a9c Chrome/126"
UA_BOT = "Mozilla/5.0 (compatible; PrivacyCanaryBot-7f3a9c/1.0)"
REF_HOST = "canary-referrer.example"
REF_PATH = "secret-path-5d1e"
REF_QUERY = "secret-query-9b2c"
REF_USER = "canaryuser-3e8f"
REFERRER = "https://%s:pw@%s/%s?q=%s" % (REF_USER, REF_HOST, REF_PATH,
                                         REF_QUERY)
# The page that sends the hits (its Referer): its path is the page's when a
# hit names none; its query is dropped.
PAGE_QUERY = "page-query-4c1d"
PAGE_URL = "https://page-canary.example/x?pq=%s" % PAGE_QUERY
PATH = "/privacy-canary-page"


def needles():
    a4 = ipaddress.IPv4Address(ADDR4).packed
    a6 = ipaddress.IPv6Address(ADDR6)
    out = {
        "the IPv4 address as text": ADDR4.encode(),
        "the IPv4 address as 4 raw bytes": a4,
        "the IPv4 address as 16-byte IPv4-mapped IPv6":
            b"\0" * 10 + b"\xff\xff" + a4,
        "the IPv4 address in reverse byte order": a4[::-1],
        "the IPv6 address as text": ADDR6.encode(),
        "the IPv6 address as text (exploded)": a6.exploded.encode(),
        "the IPv6 address as 16 raw bytes": a6.packed,
        "the User-Agent": UA.encode(),
        "the User-Agent's unique word": b"privacycanary",
        "the User-Agent's unique number": b"7f3a9c",
        "the referrer host": REF_HOST.encode(),
        "the referrer URL": REFERRER.encode(),
        "the referrer's path": REF_PATH.encode(),
        "the referrer's query": REF_QUERY.encode(),
        "the referrer's user": REF_USER.encode(),
        "the page's query": PAGE_QUERY.encode(),
    }
    # Also as UTF-16, which some writers use.
    for k in ("the IPv4 address as text", "the User-Agent's unique word",
              "the referrer host", "the referrer's path"):
        out[k + " (UTF-16LE)"] = out[k].decode().encode("utf-16-le")
    return out


def store_needles():
    """What the store must not hold: everything but the referrer's host,
    which it keeps (as itself, and so in no other encoding)."""
    return {k: v for k, v in needles().items()
            if not k.startswith("the referrer host")}


def files_under(top):
    for root, dirs, files in os.walk(top):
        for f in files:
            yield os.path.join(root, f)


def search(paths, what, ns=None):
    """Returns [(file, needle name)] for every needle found (case-blind)."""
    found = []
    ns = ns if ns is not None else needles()
    for p in paths:
        try:
            with open(p, "rb") as f:
                data = f.read()
        except OSError:
            continue
        low = data.lower()
        for name, n in ns.items():
            if data.find(n) >= 0 or (n.isascii() and low.find(n.lower()) >= 0):
                found.append((os.path.relpath(p, what), name))
    return found


def exercise(d, shared=False):
    """Every kind of request, each carrying the canaries. shared: d is a
    node of a shared store, whose answers may count a visitor that the
    database then finds already seen (test_pg.py)."""
    base = {"User-Agent": UA, "X-Forwarded-For": ADDR4,
            "Referer": PAGE_URL}
    six = dict(base, **{"X-Forwarded-For": ADDR6})

    # counted hits: path given, path from the Referer, POST JSON with a
    # referrer field, POST form
    c = check_counts_shape(d.hit(PATH, ua=UA, headers=base), counted=True)
    c = check_counts_shape(d.hit(None, ua=UA, headers=base), counted=True)
    eq(c["path"], "/x", "path from the Referer")
    st, _, body = d.request(
        "POST", "/hit", dict(base, **{"Content-Type": "application/json"}),
        json.dumps({"path": PATH, "referrer": REFERRER}))
    eq(st, 200, "POST JSON status")
    check_counts_shape(parse_json(body), counted=True)
    st, _, body = d.request(
        "POST", "/hit",
        dict(six, **{"Content-Type": "application/x-www-form-urlencoded"}),
        "path=%2Fprivacy-canary-page&referrer=" +
        urllib.parse.quote(REFERRER, safe=""))
    eq(st, 200, "POST form status")
    c = check_counts_shape(parse_json(body), counted=True)
    if not shared:
        eq(c["today"]["visitors"], 2,
           "visitors: one IPv4, one IPv6 client")
    st, _, body = d.request(
        "GET", "/hit?path=%s&referrer=%s" % (
            PATH, urllib.parse.quote(REFERRER, safe="")), base)
    eq(st, 200, "GET /hit with a referrer")
    check_counts_shape(parse_json(body), counted=True)
    # the other counting routes
    for route in ("/pixel.gif", "/counter.svg"):
        st, _, _ = d.request("GET", route + "?path=" + PATH, base)
        eq(st, 200, route + " status")
    # read-only, DNT, declined and failing requests
    d.count(PATH, ua=UA, headers=base)
    check_counts_shape(d.hit(PATH, ua=UA, headers=dict(base, DNT="1")),
                       counted=True)
    bot = dict(base, **{"User-Agent": UA_BOT})
    check_counts_shape(d.hit(PATH, ua=UA_BOT, headers=bot),
                       counted=False, reason="bot")
    check_counts_shape(d.hit(PATH, ua=UA, headers=dict(
        base, **{"Sec-Purpose": "prefetch"})), counted=False, reason="bot")
    for target in ("/hit?site=Bad!&path=/p", "/hit?site=nosuch",
                   "/hit?path=%ZZ", "/nowhere", "/metrics", "/tally.js", "/"):
        d.request("GET", target, base)
    d.request("DELETE", "/hit", base)
    d.request("OPTIONS", "/hit", dict(base, Origin=REFERRER[:-2]))
    d.request("OPTIONS", "/hit", dict(base, Origin="https://" + REF_HOST))
    d.request("POST", "/hit", dict(base, **{"Content-Type": "text/html"}),
              "x")
    c = check_counts_shape(d.count(PATH, ua=UA, headers=base))
    check(c["total"]["views"] >= 6, "total views %r, want at least 6"
          % c["total"]["views"])
    time.sleep(0.3)


def run_and_search(extra):
    d = Daemon(["--trusted-proxies", "127.0.0.1/32,::1"] + list(extra))
    exercise(d)
    eq(d.stop(signal.SIGTERM), 0, "exit code after SIGTERM")
    # A second run on the same store, so that a reopened store is searched
    # too (salt rotation bookkeeping, replays).
    d.start()
    exercise(d)
    eq(d.stop(signal.SIGTERM), 0, "exit code after the second SIGTERM")
    rc, out, err = run_tallyctl("--data", d.data, "--json", "referrers")
    eq(rc, 0, "tallyctl referrers (stderr %r)" % err)
    eq([r["host"] for r in parse_json(out.encode())], [REF_HOST],
       "the referrers kept: the host alone")

    files = list(files_under(d.data))
    check(files, "no file in the data directory %s" % d.data)
    # The search sees what the store holds: the page path is there.
    seen_path = False
    for p in files:
        with open(p, "rb") as f:
            if PATH.encode() in f.read():
                seen_path = True
    check(seen_path, "the page path %r is in no file of the data directory:"
          " the search would not see the store's text" % PATH)
    # The referrer's host is kept: the store holds referrer text, and the
    # search looks for the rest of the referrer in it.
    check(search(files, d.data, {"host": REF_HOST.encode()}),
          "the referrer's host %r is in no file of the data directory: "
          "the search would not see referrers" % REF_HOST)
    found = search(files, d.data, store_needles())
    check(not found, "found in the data directory: %s"
          % ", ".join("%s in %s" % (n, f) for f, n in found))
    found = search(list(files_under(d.cwd)), d.cwd)
    check(not found, "found in tallyd's working directory or log: %s"
          % ", ".join("%s in %s" % (n, f) for f, n in found))
    log = d.stderr().lower()
    for name, n in needles().items():
        if n.isascii():
            check(n.decode().lower() not in log,
                  "%s is in tallyd's log" % name)


def test_no_address_user_agent_or_referrer_on_disk():
    run_and_search([])


def test_no_address_user_agent_or_referrer_with_debug_log():
    run_and_search(["--log-level", "debug"])


if __name__ == "__main__":
    harness.main(globals())
