#!/usr/bin/env python3
"""The files tallyd serves as they are: tally.js, plain and gzipped, and
the favicon."""

import gzip
import os
import re
import sys
import time
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import BROWSER_UA, Daemon, check, eq, views  # noqa: E402

COMMIT_WAIT = 0.35  # > the default 100 ms commit interval
GZIP_LIMIT = 1536   # the README's "under 1.5 KiB"


def get(d, target, headers=None, method="GET"):
    h = {"User-Agent": BROWSER_UA}
    h.update(headers or {})
    return d.request(method, target, h)


def vary(hd):
    return [v.strip().lower() for v in hd.get("vary", "").split(",")]


def test_tally_js_gzipped_for_clients_that_accept_it():
    d = Daemon()
    st, plain_hd, plain = get(d, "/tally.js", {"Accept-Encoding": "identity"})
    eq(st, 200, "identity status")
    eq(plain_hd.get("content-encoding"), None, "identity Content-Encoding")
    check("accept-encoding" in vary(plain_hd),
          "identity answer lacks Vary: Accept-Encoding: %r"
          % plain_hd.get("vary"))
    st, hd, body = get(d, "/tally.js",
                       {"Accept-Encoding": "gzip, deflate, br"})
    eq(st, 200, "gzip status")
    eq(hd.get("content-encoding"), "gzip", "Content-Encoding")
    eq(hd.get("content-type"), "text/javascript; charset=utf-8",
       "Content-Type")
    check("accept-encoding" in vary(hd) and "origin" in vary(hd),
          "Vary %r" % hd.get("vary"))
    eq(int(hd.get("content-length")), len(body), "Content-Length")
    check(len(body) < GZIP_LIMIT, "tally.js is %d bytes gzipped, limit %d"
          % (len(body), GZIP_LIMIT))
    eq(gzip.decompress(body), plain, "the gzipped body decompressed")
    eq(body[4:8], b"\0\0\0\0", "gzip mtime (reproducible builds)")
    etag, plain_etag = hd.get("etag", ""), plain_hd.get("etag", "")
    check(re.fullmatch(r'"[^"]+"', etag), "ETag %r is not a strong tag"
          % etag)
    check(etag != plain_etag, "gzip and identity share the ETag %r" % etag)
    # Revalidation of the gzipped copy.
    st, hd2, body2 = get(d, "/tally.js", {"Accept-Encoding": "gzip",
                                          "If-None-Match": etag})
    eq((st, body2), (304, b""), "If-None-Match with the gzip ETag")
    eq(hd2.get("etag"), etag, "ETag of the 304")
    check("accept-encoding" in vary(hd2), "304 lacks Vary: Accept-Encoding")
    st, _, _ = get(d, "/tally.js", {"Accept-Encoding": "identity",
                                    "If-None-Match": plain_etag})
    eq(st, 304, "If-None-Match with the identity ETag")
    # The identity tag does not validate the gzipped bytes.
    st, _, body3 = get(d, "/tally.js", {"Accept-Encoding": "gzip",
                                        "If-None-Match": plain_etag})
    eq((st, body3), (200, body), "gzip with only the identity ETag")
    # HEAD: the same headers, no body.
    st, hd4, body4 = get(d, "/tally.js", {"Accept-Encoding": "gzip"},
                         method="HEAD")
    eq((st, body4), (200, b""), "HEAD")
    for k in ("content-encoding", "etag", "vary", "content-type",
              "cache-control", "content-length"):
        eq(hd4.get(k), hd.get(k), "HEAD %s" % k)
    time.sleep(COMMIT_WAIT)
    eq(views(d.count("/"), "total"), 0, "tally.js counted something")


def test_accept_encoding_is_parsed():
    d = Daemon()
    cases = [
        ("gzip", True), ("GZIP", True), ("x-gzip", True),
        ("deflate, gzip;q=0.5", True), ("gzip;q=0.001", True),
        ("gzip ; q=1.0", True), ("*", True), ("br, *;q=0.1", True),
        ("deflate;q=0, gzip", True),
        ("gzip;q=0", False), ("gzip; q=0.000", False), ("gzip;Q=0.0", False),
        ("*;q=0", False), ("*, gzip;q=0", False), ("gzip;q=0, *", False),
        ("identity", False), ("br, deflate", False), ("gzipx", False),
        ("", False),
    ]
    got = {}
    for header, _ in cases:
        st, hd, body = get(d, "/tally.js", {"Accept-Encoding": header})
        eq(st, 200, "status with Accept-Encoding %r" % header)
        got[header] = hd.get("content-encoding") == "gzip"
        if got[header]:
            gzip.decompress(body)
    eq(got, dict(cases), "gzip chosen for each Accept-Encoding")


def test_favicon():
    d = Daemon()
    st, hd, body = get(d, "/favicon.ico")
    eq(st, 200, "status")
    eq(hd.get("content-type", "").split(";")[0], "image/svg+xml",
       "Content-Type")
    check(len(body) < 1024, "the icon is %d bytes" % len(body))
    try:
        root = ET.fromstring(body)
    except ET.ParseError as e:
        raise harness.Failure("the icon is not XML (%s): %r" % (e, body))
    eq(root.tag, "{http://www.w3.org/2000/svg}svg", "root element")
    cc = hd.get("cache-control", "")
    m = re.search(r"max-age=(\d+)", cc)
    check("public" in cc and m and int(m.group(1)) >= 86400,
          "Cache-Control %r: not cacheable for a day" % cc)
    eq(hd.get("x-content-type-options"), "nosniff", "X-Content-Type-Options")
    etag = hd.get("etag", "")
    check(re.fullmatch(r'"[^"]+"', etag), "ETag %r" % etag)
    st, _, b2 = get(d, "/favicon.ico", {"If-None-Match": etag})
    eq((st, b2), (304, b""), "If-None-Match")
    st, hd2, b2 = get(d, "/favicon.ico", method="HEAD")
    eq((st, b2), (200, b""), "HEAD")
    eq(int(hd2.get("content-length")), len(body), "HEAD Content-Length")
    eq(hd2.get("etag"), etag, "HEAD ETag")
    st, hd3, _ = get(d, "/favicon.ico", {
        "Origin": "https://a.example",
        "Access-Control-Request-Method": "GET"}, method="OPTIONS")
    eq(st, 204, "OPTIONS")
    eq(hd3.get("access-control-allow-methods"), "GET, HEAD, OPTIONS",
       "OPTIONS Allow-Methods")
    st, hd4, b4 = get(d, "/favicon.ico", method="POST")
    harness.check_json_error(st, hd4, b4, 405, "POST")
    eq(hd4.get("allow"), "GET, HEAD, OPTIONS", "Allow of the 405")
    time.sleep(COMMIT_WAIT)
    eq(views(d.count("/"), "total"), 0, "the icon counted something")
    d.check_alive()


if __name__ == "__main__":
    harness.main(globals())
