#!/usr/bin/env python3
"""Privacy (issue 4): after a run with a recognisable client address,
User-Agent and referrer, none of them is anywhere in the data directory,
in tallyd's working directory or in its log."""

import ipaddress
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (Daemon, check, eq, check_counts_shape,  # noqa: E402
                     parse_json)

ADDR4 = "198.51.100.77"
ADDR6 = "2001:db8:c0ff:ee::77"
UA = "Mozilla/5.0 PrivacyCanary-7f3a9c Chrome/126"
UA_BOT = "Mozilla/5.0 (compatible; PrivacyCanaryBot-7f3a9c/1.0)"
REF_HOST = "canary-referrer.example"
REFERRER = "https://%s/x" % REF_HOST
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
    }
    # Also as UTF-16, which some writers use.
    for k in ("the IPv4 address as text", "the User-Agent's unique word",
              "the referrer host"):
        out[k + " (UTF-16LE)"] = out[k].decode().encode("utf-16-le")
    return out


def files_under(top):
    for root, dirs, files in os.walk(top):
        for f in files:
            yield os.path.join(root, f)


def search(paths, what):
    """Returns [(file, needle name)] for every needle found (case-blind)."""
    found = []
    ns = needles()
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


def exercise(d):
    """Every kind of request, each carrying the canaries."""
    base = {"User-Agent": UA, "X-Forwarded-For": ADDR4,
            "Referer": REFERRER}
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
        "path=%2Fprivacy-canary-page&referrer=" + REFERRER)
    eq(st, 200, "POST form status")
    c = check_counts_shape(parse_json(body), counted=True)
    eq(c["today"]["visitors"], 2, "visitors: one IPv4, one IPv6 client")
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
    found = search(files, d.data)
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
