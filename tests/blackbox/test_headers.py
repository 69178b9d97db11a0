#!/usr/bin/env python3
"""Every answer carries all of its headers, even the longest set: a CORS
answer to the longest origin a site may list, with the cache and
embedding headers of the route."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Daemon, check, eq, mkdtemp, write_file  # noqa: E402

# A host name of 253 characters, the most DNS allows, and a port: the
# longest origin a site can list.
HOST = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])
ORIGIN = "https://%s:65535" % HOST

# Headers every answer of a route must carry, beside the CORS ones.
ROUTES = {
    "/hit": {"cache-control": "no-store"},
    "/count": {"cache-control": "max-age="},
    "/counter.svg": {"cache-control": "no-store",
                     "cross-origin-resource-policy": "cross-origin",
                     "x-content-type-options": "nosniff",
                     "content-security-policy": "default-src 'none'"},
    "/pixel.gif": {"cache-control": "no-store",
                   "cross-origin-resource-policy": "cross-origin",
                   "x-content-type-options": "nosniff"},
}


def long_origin_daemon():
    eq(len(HOST), 253, "host length")
    cfg = write_file(os.path.join(mkdtemp(), "tally.ini"),
                     "[site long]\norigins = %s\n" % ORIGIN)
    return Daemon(["--config", cfg])


def test_longest_origin_every_header():
    d = long_origin_daemon()
    for route, want in ROUTES.items():
        st, hd, body = d.request("GET", route + "?site=long&path=/a",
                                 {"Origin": ORIGIN,
                                  "User-Agent": harness.BROWSER_UA})
        eq(st, 200, "%s status" % route)
        eq(hd.get("access-control-allow-origin"), ORIGIN,
           "%s Access-Control-Allow-Origin" % route)
        check("Origin" in hd.get("vary", ""), "%s Vary: %r"
              % (route, hd.get("vary")))
        for name, value in want.items():
            check(value in hd.get(name, ""), "%s %s: %r, want %r"
                  % (route, name, hd.get(name), value))
    d.check_alive()


def test_preflight_and_405_headers():
    d = long_origin_daemon()
    st, hd, _ = d.request("OPTIONS", "/hit", {
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Content-Type"})
    eq(st, 204, "preflight status")
    eq(hd.get("access-control-allow-origin"), "*", "preflight origin")
    eq(hd.get("access-control-allow-methods"), "GET, HEAD, POST, OPTIONS",
       "preflight methods")
    eq(hd.get("access-control-max-age"), "86400", "preflight max age")
    st, hd, _ = d.request("DELETE", "/hit", {"Origin": ORIGIN})
    eq(st, 405, "DELETE status")
    eq(hd.get("allow"), "GET, HEAD, POST, OPTIONS", "Allow")
    d.check_alive()


if __name__ == "__main__":
    harness.main(globals())
