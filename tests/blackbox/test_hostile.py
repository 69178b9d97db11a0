#!/usr/bin/env python3
"""Hostile input (issue 8, item 4), beyond tests/blackbox/test_errors.py.

Every case sends what an attacker or a broken client would, and checks:
  - the answer is a 4xx with a JSON error, or the connection is closed
    (never a 2xx for the hostile request, never a request hidden inside
    another one answered);
  - no count changed (the default site's total and a victim page, read
    through /count, which includes hits not yet committed);
  - the daemon is alive and a normal client is served within a second.

The connection cases run daemons of their own: 300 half-open slow
connections (closed by the idle timeout, others served meanwhile), a
trickling slowloris, running out of file descriptors and hitting
max_connections (accept backs off: tallyd's CPU stays low; it serves again
once connections close). The listening socket's backlog is the system's
largest (net.core.somaxconn), so that a burst of new clients waits.

Decisions taken here where the RFCs leave a choice:
  - absolute-form targets (GET http://x/hit) are not proxied or counted: a
    4xx;
  - Transfer-Encoding must be exactly "chunked" once: unknown or repeated
    codings, and obs-folded framing headers, are refused (RFC 9112 6.1
    lets a server refuse what it does not implement, and these are the
    spellings smuggling attacks use);
  - unknown query/form parameters are ignored, so a hit with a thousand
    junk parameters that still fits the limits is one hit on the page it
    names: counted once, never more, never on another page.
"""

import json
import os
import random
import resource
import select
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (BROWSER_UA, Daemon, Failure, Skip, check, eq,  # noqa: E402
                     parse_json)

SCALE = float(os.environ.get("TALLY_TIME_SCALE", "1"))
UAH = b"User-Agent: " + BROWSER_UA.encode() + b"\r\n"
JSON_CT = b"Content-Type: application/json\r\n"
FORM_CT = b"Content-Type: application/x-www-form-urlencoded\r\n"
VICTIM = "/victim"
SMUGGLED = (b"GET /hit?path=%2Fsmuggled HTTP/1.1\r\nHost: x\r\n" + UAH +
            b"\r\n")
IDLE = 3            # the shared daemon's --idle-timeout, seconds


# ---------------------------------------------------------------- plumbing

_daemon = None


def daemon():
    """One daemon shared by the request cases."""
    global _daemon
    if _daemon is None or not _daemon.alive():
        _daemon = Daemon(["--idle-timeout", "%ds" % IDLE], keep=True)
        _daemon.hit(VICTIM)
    return _daemon


def sanitizer_clean(d, what="tallyd"):
    """No AddressSanitizer/UBSan/valgrind report in the daemon's stderr
    (UBSan goes on after a report unless told to halt)."""
    err = d.stderr()
    for mark in ("runtime error:", "Sanitizer", "Invalid read",
                 "Invalid write", "uninitialised"):
        i = err.find(mark)
        check(i < 0, "%s: a report in its stderr: %s"
              % (what, err[max(0, i - 200):i + 1500]))


def snapshot(d):
    c = d.count(VICTIM)
    s = d.count("/smuggled")
    return {"total": c["total"]["views"], "today": c["today"]["views"],
            "victim": c["page"]["views"], "smuggled": s["page"]["views"]}


def served_quickly(d, what="a normal client"):
    t0 = time.monotonic()
    st, hd, body = d.request("GET", "/count?path=%2Fvictim",
                             {"User-Agent": BROWSER_UA},
                             timeout=5 * SCALE)
    took = time.monotonic() - t0
    eq(st, 200, "%s: status" % what)
    check(took < 1.0 * SCALE, "%s: served in %.2f s" % (what, took))


class Guard:
    """with Guard(d[, delta]): the daemon lives, serves a normal client
    quickly, and the total views moved by exactly delta (the good hits a
    case sent on purpose)."""

    def __init__(self, d, delta=0):
        self.d = d
        self.delta = delta

    def __enter__(self):
        self.before = snapshot(self.d)
        return self

    def __exit__(self, typ, val, tb):
        if typ is not None:
            return False
        # A request parsed late (after our socket closed) counts too.
        time.sleep(0.15)
        check(self.d.alive(), "tallyd died: %s" % self.d.stderr()[-2000:])
        sanitizer_clean(self.d)
        served_quickly(self.d)
        after = snapshot(self.d)
        want = dict(self.before)
        want["total"] += self.delta
        want["today"] += self.delta
        eq(after, want, "counts after the case")
        return False


def parse_all(buf):
    """Splits a byte stream into complete answers [(status, headers,
    body)]; returns (answers, rest)."""
    out = []
    while True:
        i = buf.find(b"\r\n\r\n")
        if i < 0:
            return out, buf
        st, hd, _ = harness.parse_raw(buf[:i + 4])
        if st is None:
            return out, buf
        n = int(hd.get("content-length", "0") or 0)
        if len(buf) < i + 4 + n:
            return out, buf
        out.append((st, hd, buf[i + 4:i + 4 + n]))
        buf = buf[i + 4 + n:]


def talk(d, data, timeout=5.0, settle=0.1, pieces=None, pause=0.0):
    """Sends data (or the list pieces, pause s apart) on a fresh
    connection and reads until the daemon closes it, timeout passes, or
    nothing more came for `settle` s after a complete answer. Returns
    (answers, closed, rest)."""
    timeout *= SCALE
    settle *= SCALE
    s = socket.create_connection(("127.0.0.1", d.port), timeout=timeout)
    buf, closed = b"", False
    try:
        s.settimeout(timeout)
        try:
            for k, p in enumerate(pieces or [data]):
                if k and pause:
                    time.sleep(pause)
                s.sendall(p)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except socket.timeout:
            pass        # it stopped reading: see what it said
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            answers, rest = parse_all(buf)
            if answers and not rest:
                left = min(left, settle)
            s.settimeout(left)
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            buf += chunk
    finally:
        s.close()
    answers, rest = parse_all(buf)
    return answers, closed, rest


def refused(d, data, what, want=(400,), allow_close=True, **kw):
    kw.setdefault("settle", 0.3 if SMUGGLED in data else 0.1)
    """The daemon refuses data: only 4xx JSON errors in `want` answered
    (at most one, unless kw says pieces), or a plain close."""
    answers, closed, rest = talk(d, data, **kw)
    check(not rest, "%s: a partial or non-HTTP answer %r" % (what, rest[:200]))
    if not answers:
        check(closed and allow_close, "%s: no answer and the connection %s"
              % (what, "closed" if closed else "left open"))
        return None
    for st, hd, body in answers:
        check(st in want, "%s: status %d, want %s; body %r"
              % (what, st, "/".join(map(str, want)), body[:200]))
        harness.check_json_error(st, hd, body, st, what)
    eq(len(answers), 1, "%s: number of answers (a hidden request was "
       "answered?) %r" % (what, [a[0] for a in answers]))
    return answers[0]


def raw_post(headers, body, target=b"/hit"):
    return (b"POST " + target + b" HTTP/1.1\r\nHost: x\r\n" + UAH + headers +
            b"\r\n" + body)


def raw_get(target, headers=b""):
    return b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n" + UAH + headers + \
        b"\r\n"


def chunked(body):
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)


BODY = b'{"path":"/victim"}'


def collect(cases, fn):
    """Runs fn(case) for every case; fails naming all that failed."""
    bad = []
    for c in cases:
        try:
            fn(c)
        except Failure as e:
            bad.append(str(e))
    check(not bad, "%d of %d failed:\n    %s" % (len(bad), len(cases),
                                                "\n    ".join(bad)))


# ------------------------------------------------------ request smuggling

def test_smuggle_te_and_cl_with_hidden_request():
    d = daemon()
    with Guard(d):
        # CL claims the hidden request is body; TE says the body ends at
        # "0". Either reading would count something.
        body = b"0\r\n\r\n" + SMUGGLED
        for order in ((b"Content-Length: %d\r\n" % len(body),
                       b"Transfer-Encoding: chunked\r\n"),
                      (b"Transfer-Encoding: chunked\r\n",
                       b"Content-Length: 4\r\n")):
            refused(d, raw_post(JSON_CT + b"".join(order), body),
                    "CL + TE with a hidden request")


def test_smuggle_te_spellings_with_cl():
    d = daemon()
    spellings = [b"Transfer-Encoding : chunked", b"Transfer-Encoding: xchunked",
                 b"Transfer-Encoding: chunked, identity",
                 b"Transfer-Encoding: identity", b"Transfer-Encoding: CHUNKED",
                 b"Transfer-Encoding:\tchunked", b"Transfer-Encoding: chunked ",
                 b"Transfer-Encoding: \x0bchunked",
                 b"transfer-encoding: chunked", b"Transfer-encoding: chunked",
                 b"Transfer-Encoding:\r\n chunked"]
    with Guard(d):
        collect(spellings, lambda te: refused(
            d, raw_post(JSON_CT + te + b"\r\nContent-Length: %d\r\n"
                        % len(BODY), chunked(BODY) + SMUGGLED),
            "%r with Content-Length" % te))


def test_smuggle_te_alone_not_exactly_chunked():
    # Without Content-Length: a coding tally does not implement, a
    # repeated one, or an obs-folded one is refused, not half-decoded.
    d = daemon()
    spellings = [b"Transfer-Encoding: xchunked",
                 b"Transfer-Encoding: chunked\r\nTransfer-Encoding: x",
                 b"Transfer-Encoding: x\r\nTransfer-Encoding: chunked",
                 b"Transfer-Encoding: gzip, chunked",
                 b"Transfer-Encoding: chunked, chunked",
                 b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
                 b"Transfer-Encoding:\r\n chunked",
                 b"Transfer-Encoding: identity"]
    with Guard(d):
        collect(spellings, lambda te: refused(
            d, raw_post(JSON_CT + te + b"\r\n", chunked(BODY) + SMUGGLED),
            "%r" % te, want=(400, 501)))


def test_smuggle_two_content_lengths_with_hidden_request():
    d = daemon()
    with Guard(d):
        for a, b in ((len(BODY), len(BODY) + len(SMUGGLED)),
                     (len(BODY) + len(SMUGGLED), len(BODY)),
                     (0, len(BODY))):
            refused(d, raw_post(JSON_CT + b"Content-Length: %d\r\n"
                                b"Content-Length: %d\r\n" % (a, b),
                                BODY + SMUGGLED), "CL %d then CL %d" % (a, b))


def test_smuggle_content_length_with_sign_or_spaces():
    d = daemon()
    n = len(BODY)
    values = [b"+%d" % n, b"-0", b"-%d" % n, b"%d %d" % (n // 10, n % 10),
              b"0x%x" % n, b"%d;" % n, b"%d.0" % n, b"%de0" % n,
              b"0%d" % n + b"\x00", b"%d\x0b" % n, b"\xef\xbc\x91%d" % n]
    with Guard(d):
        collect(values, lambda v: refused(
            d, raw_post(JSON_CT + b"Content-Length: " + v + b"\r\n",
                        BODY + SMUGGLED), "Content-Length: %r" % v,
            want=(400, 413)))
        refused(d, raw_post(JSON_CT + b"Content-Length: %d\r\n 0\r\n" % n,
                            BODY + SMUGGLED), "obs-folded Content-Length")


def test_get_with_body_that_is_a_request():
    # A body on a GET is a body: the request inside is never parsed.
    d = daemon()
    with Guard(d):
        answers, closed, rest = talk(d, raw_get(
            b"/count?path=%2Fvictim", b"Content-Length: %d\r\n"
            % len(SMUGGLED)) + SMUGGLED)
        eq([a[0] for a in answers], [200], "answers")


# ------------------------------------------------------ NUL, CR, LF

def test_nul_cr_lf_raw_in_headers():
    d = daemon()
    cases = [
        raw_get(b"/hit?path=%2Fvictim", b"X-A: a\x00b\r\n"),
        b"GET /hit?path=%2Fvictim HTTP/1.1\r\nHost: x\r\nUser-Agent: "
        b"Mozilla/5.0 \x00(X11)\r\n\r\n",
        raw_get(b"/hit?path=%2Fvictim", b"X\x00Y: 1\r\n"),
        raw_get(b"/hit?path=%2Fvictim", b"X-A: a\rX-B: b\r\n"),
        raw_get(b"/hit?path=%2Fvictim", b"X-A: a\r\r\n"),
        raw_get(b"/hit?path=%2Fvictim", b"\rX-A: a\r\n"),
        raw_get(b"/hit?path=%2Fvictim", b"X A: 1\r\n"),
        raw_get(b"/hit?path=%2Fvictim", b": empty-name\r\n"),
        raw_get(b"/hit?path=%2Fvictim", b"\xc3\xa4: 1\r\n"),
    ]
    with Guard(d):
        collect(cases, lambda raw: refused(d, raw, repr(raw[-40:])))


def test_nul_cr_lf_raw_in_request_line():
    d = daemon()
    cases = [b"GET /hit?path=/vic\x00tim HTTP/1.1\r\nHost: x\r\n" + UAH + b"\r\n",
             b"GET /hit?path=/vic\rtim HTTP/1.1\r\nHost: x\r\n" + UAH + b"\r\n",
             b"GET /hit?path=/vic\ntim HTTP/1.1\r\nHost: x\r\n" + UAH + b"\r\n",
             b"GET /hit?site=default\x00&path=/victim HTTP/1.1\r\nHost: x\r\n"
             + UAH + b"\r\n",
             b"G\x00ET /hit?path=/victim HTTP/1.1\r\nHost: x\r\n" + UAH +
             b"\r\n",
             b"GET /hit?path=/victim HTTP/1.1\x00\r\nHost: x\r\n" + UAH +
             b"\r\n",
             b"GET\t/hit?path=/victim\tHTTP/1.1\r\nHost: x\r\n" + UAH +
             b"\r\n"]
    with Guard(d):
        collect(cases, lambda raw: refused(d, raw, repr(raw[:40])))


def test_percent_encoded_nul_cr_lf_in_parameters():
    d = daemon()
    targets = [b"/hit?path=/victim%00", b"/hit?path=/victim%00.html",
               b"/hit?path=%2Fvictim%0d%0aSet-Cookie:%20a=b",
               b"/hit?path=/victim%0a", b"/hit?path=/victim%0D",
               b"/hit?site=default%00&path=/victim",
               b"/hit?site=default%0d%0a&path=/victim",
               b"/hit?site=default%0d%0aX-Injected:%201&path=/victim",
               b"/counter.svg?path=/victim%00",
               b"/pixel.gif?path=/victim%0d%0a",
               b"/hit?path=/victim&referrer=%00"]

    def one(t):
        r = refused(d, raw_get(t), repr(t))
        if r:
            check("x-injected" not in r[1] and "set-cookie" not in r[1],
                  "%r: an injected header came back: %r" % (t, r[1]))
    with Guard(d):
        collect(targets, one)


def test_nul_cr_lf_in_json_and_form_bodies():
    d = daemon()
    bodies = [(JSON_CT, b'{"path":"/victim\\u0000"}'),
              (JSON_CT, b'{"path":"/victim\x00"}'),
              (JSON_CT, b'{"path":"/victim\\r\\nX: 1"}'),
              (JSON_CT, b'{"path":"/victim\r\n"}'),
              (JSON_CT, b'{"site":"default\\u0000","path":"/victim"}'),
              (JSON_CT, b'{"path":"/victim%00"}'),
              (FORM_CT, b"path=/victim%00"),
              (FORM_CT, b"path=/victim%0d%0a"),
              (FORM_CT, b"site=default%00&path=/victim"),
              (FORM_CT, b"path=/victim\x00")]
    with Guard(d):
        collect(bodies, lambda cb: refused(
            d, raw_post(cb[0] + b"Content-Length: %d\r\n" % len(cb[1]),
                        cb[1]), repr(cb[1])))


# ------------------------------------------------------ sizes

def test_huge_uri_one_megabyte():
    d = daemon()
    with Guard(d):
        t0 = time.monotonic()
        refused(d, raw_get(b"/hit?path=/" + b"a" * (1 << 20)), "1 MB URI",
                want=(414, 400))
        refused(d, raw_get(b"/" + b"%2F" * 300000), "0.9 MB route",
                want=(414, 400))
        check(time.monotonic() - t0 < 5 * SCALE, "refusing took %.1f s"
              % (time.monotonic() - t0))


def test_huge_single_header():
    d = daemon()
    with Guard(d):
        for name in (b"X-Pad", b"Cookie", b"User-Agent", b"Referer",
                     b"X-Forwarded-For"):
            refused(d, raw_get(b"/hit?path=%2Fvictim",
                               name + b": " + b"a" * (1 << 20) + b"\r\n"),
                    "1 MB %s" % name.decode(), want=(431, 400))
        refused(d, raw_get(b"/hit?path=%2Fvictim",
                           b"X-" + b"n" * 100000 + b": 1\r\n"),
                "100 KB header name", want=(431, 400))


def test_two_hundred_headers():
    d = daemon()
    with Guard(d):
        refused(d, raw_get(b"/hit?path=%2Fvictim",
                           b"".join(b"X-H%d: v\r\n" % i for i in range(200))),
                "200 small headers", want=(431, 400))
        refused(d, raw_get(b"/hit?path=%2Fvictim",
                           b"X-Same: v\r\n" * 5000), "5000 equal headers",
                want=(431, 400))


def test_huge_body_and_huge_declared_length():
    d = daemon()
    with Guard(d):
        big = b'{"path":"/victim","x":"' + b"a" * (10 << 20) + b'"}'
        refused(d, raw_post(JSON_CT + b"Content-Length: %d\r\n" % len(big),
                            big), "10 MB body", want=(413,))
        t0 = time.monotonic()
        for cl in (b"1000000000000", b"%d" % (2 ** 63 - 1),
                   b"%d" % (2 ** 64 - 1)):
            refused(d, raw_post(JSON_CT + b"Content-Length: " + cl + b"\r\n",
                                b""), "Content-Length %s and no body"
                    % cl.decode(), want=(413, 400))
        check(time.monotonic() - t0 < 3 * SCALE, "a declared length was "
              "waited for: %.1f s" % (time.monotonic() - t0))
        refused(d, raw_post(JSON_CT + b"Content-Length: 1000000000000\r\n"
                            b"Expect: 100-continue\r\n", b""),
                "10^12 bytes with Expect: 100-continue", want=(413, 417, 400))


def test_huge_chunks():
    d = daemon()
    te = JSON_CT + b"Transfer-Encoding: chunked\r\n"
    with Guard(d):
        # 10 MB in one chunk, and in many small ones.
        refused(d, raw_post(te, b"a00000\r\n" + b"a" * 0xa00000 +
                            b"\r\n0\r\n\r\n"), "one 10 MB chunk",
                want=(413,))
        refused(d, raw_post(te, b"".join(b"10\r\n" + b" " * 16 + b"\r\n"
                                         for _ in range(20000)) +
                            b"0\r\n\r\n"), "20,000 chunks of 16 bytes",
                want=(413,))
        refused(d, raw_post(te, b"d;" + b"e" * 100000 + b"\r\n" + BODY[:13] +
                            b"\r\n0\r\n\r\n"), "100 KB chunk extension",
                want=(400, 413, 431))
        refused(d, raw_post(te, chunked(BODY)[:-2] + b"X-T: a\r\n" * 3000 +
                            b"\r\n"), "3000 trailer lines",
                want=(400, 413, 431))
        # A declared size that never comes: refused at once or closed by
        # the idle timeout, never counted.
        refused(d, raw_post(te, b"ffffffff\r\n"), "a 4 GB chunk declared",
                want=(413,), timeout=IDLE + 3)


# ------------------------------------------------------ JSON

def post_json(d, body, what, want=(400,), ct=JSON_CT):
    if isinstance(body, str):
        body = body.encode("utf-8")
    return refused(d, raw_post(ct + b"Content-Length: %d\r\n" % len(body),
                               body), what, want=want)


def test_deep_json():
    d = daemon()
    with Guard(d):
        post_json(d, "[" * 10000 + "]" * 10000, "10,000 nested arrays",
                  want=(413, 400))
        # Deep, and within the 4 KiB limit: the parser's own depth limit.
        post_json(d, "[" * 4000, "4,000 open arrays")
        post_json(d, "[" * 2000 + "]" * 2000, "2,000 nested arrays")
        post_json(d, '{"a":' * 600 + "1" + "}" * 600, "600 nested objects")
        post_json(d, '{"path":"/victim","x":' + "[" * 1000 + "]" * 1000 +
                  "}", "a deep value beside a good path")
        post_json(d, '{"path":' + "[" * 2000 + '"/victim"' + "]" * 2000 +
                  "}", "the path deep inside arrays")


def test_wrong_json_types():
    d = daemon()
    bodies = ['{"path":5}', '{"path":true}', '{"path":false}',
              '{"path":{}}', '{"path":["/victim"]}', '{"path":1e999}',
              '{"path":-0.0}', '{"site":[]}', '{"site":{},"path":"/victim"}',
              '{"site":5,"path":"/victim"}', '{"referrer":5,"path":"/victim"}',
              '[{"path":"/victim"}]', '[]', '"/victim"', '5', 'true',
              'null', '{"path":"/victim"}{"path":"/victim"}',
              '{"path":"/victim",}', '{path:"/victim"}', "{'path':'/victim'}",
              '{"path":"/victim"', '{"path" "/victim"}', '{"path":"\\q"}',
              '{"path":"\\u12"}', '{"path":NaN}', '{"path":"/victim"}]']
    with Guard(d):
        collect(bodies, lambda b: post_json(d, b, "JSON %s" % b))


def test_invalid_utf8_in_json_bodies():
    d = daemon()
    bodies = [b'{"path":"/victim\xff"}', b'{"path":"/victim\xc0\xaf"}',
              b'{"path":"/victim\xe2\x82"}', b'{"path":"/victim\xed\xa0\x80"}',
              b'{"path":"/victim\xf4\x90\x80\x80"}',
              b'{"path":"/victim\xf8\x88\x80\x80\x80"}',
              b'{"path":"/victim\x80"}', b'{"path":"/victim\\udc00"}',
              b'{"path":"/victim\\ud800\\u0041"}',
              b'{"site":"defa\xffult","path":"/victim"}',
              b'{"path":"/victim","x":"\xc3"}', b'\xff{"path":"/victim"}',
              b'\xef\xbb\xbf{"path":"/victim"}',
              b'\xfe\xff\x00{\x00"\x00p\x00a\x00t\x00h\x00"\x00}']
    with Guard(d):
        collect(bodies, lambda b: post_json(d, b, "JSON %r" % b))


def test_invalid_utf8_in_path():
    d = daemon()
    raws = [b"/hit?path=/victim\xff", b"/hit?path=/victim\xc0\xaf",
            b"/hit?path=/victim\xe2\x82", b"/hit?path=/\xed\xa0\x80",
            b"/hit?path=/victim%c0%af", b"/hit?path=/victim%e2%82",
            b"/hit?path=/victim%ed%b0%80", b"/hit?path=/victim%f4%90%80%80",
            b"/hit?path=/victim%80", b"/hit?path=/victim%fe%ff",
            b"/hit?site=defa%ffult&path=/victim"]
    forms = [b"path=/victim%ff", b"path=/victim%c0%80", b"path=/victim\xff"]
    with Guard(d):
        collect(raws, lambda t: refused(d, raw_get(t), repr(t)))
        collect(forms, lambda b: post_json(d, b, "form %r" % b, ct=FORM_CT))


def test_bad_percent_encoding_everywhere():
    d = daemon()
    queries = [b"path=%", b"path=/victim%", b"path=/victim%g0",
               b"path=/victim%0", b"path=/victim%0g", b"path=%%2Fvictim",
               b"path=/victim%%", b"path=/victim%+0", b"path=/victim%-1",
               b"site=%&path=/victim", b"site=%g0&path=/victim",
               b"site=default%0&path=/victim", b"%=1&path=/victim",
               b"pa%th=/victim", b"x%g0=1&path=/victim", b"x=%0&path=/victim",
               b"path=/victim&%"]
    with Guard(d):
        collect(queries, lambda q: refused(d, raw_get(b"/hit?" + q),
                                           "query %r" % q))
        collect(queries, lambda q: post_json(d, q, "form %r" % q,
                                             ct=FORM_CT))
        collect([b"%", b"/victim%g0", b"/victim%0", b"%2Fvictim%"],
                lambda p: post_json(d, b'{"path":"' + p + b'"}',
                                    "JSON path %r" % p))


def test_bad_site_ids():
    d = daemon()
    sites = ["..", ".", "default/../x", "../default", "default/", "/default",
             " default", "default ", "d\u00e9fault", "DEFAULT", "-default",
             ".default", "a" * 64, "a" * 1000, "default\t", "default;x",
             "default%2F", "default,other", "*", "%", "\u0000",
             "\u202edefault", "default\u200b", "xn--dfault-bva"]

    def one(s):
        q = harness.query(site=s, path="/victim").encode()
        refused(d, raw_get(b"/hit?" + q), "site %r" % s, want=(400, 404))
        refused(d, raw_get(b"/counter.svg?" + q), "svg site %r" % s,
                want=(400, 404))
        post_json(d, json.dumps({"site": s, "path": "/victim"}),
                  "JSON site %r" % s, want=(400, 404))
    with Guard(d):
        collect(sites, one)
        refused(d, raw_get(b"/hit?site=default&site=Bad_Site&path=/victim"),
                "a valid site, then an invalid one", want=(400, 404))


def test_a_thousand_parameters():
    # Decision: unknown parameters are ignored; within the limits the hit
    # counts once, on the page named.
    d = daemon()
    with Guard(d, delta=2):
        t0 = time.monotonic()
        q = b"&".join(b"u%d" % i for i in range(1000))[:2000 - 40]
        target = b"/hit?" + q + b"&path=/thousand"
        check(len(target) <= 2048, "target length %d" % len(target))
        answers, closed, rest = talk(d, raw_get(target))
        eq([a[0] for a in answers], [200], "answers to ~1000 parameters")
        c = parse_json(answers[0][2])
        eq((c["path"], c["counted"]), ("/thousand", True), "the hit")
        body = b"&".join(b"k" for _ in range(1000)) + b"&path=/thousand"
        answers, closed, rest = talk(d, raw_post(
            FORM_CT + b"Content-Length: %d\r\n" % len(body), body))
        eq([a[0] for a in answers], [200], "answers to a form with 1001 "
           "parameters")
        eq(parse_json(answers[0][2])["page"]["views"], c["page"]["views"] + 1,
           "views of /thousand")
        check(time.monotonic() - t0 < 2 * SCALE, "took %.1f s"
              % (time.monotonic() - t0))
    with Guard(d):
        # A thousand of the known ones no longer fit.
        refused(d, raw_get(b"/hit?" + b"&".join(b"path=/p%d" % i
                                                 for i in range(1000))),
                "1000 path parameters", want=(414,))
        body = b"&".join(b"site=x%d" % i for i in range(1000))
        post_json(d, body, "form with 1000 site parameters", want=(413,),
                  ct=FORM_CT)


# ------------------------------------------------------ protocol

def test_http09_request():
    d = daemon()
    with Guard(d):
        for raw in (b"GET /hit?path=/victim\r\n", b"GET /hit\r\n",
                    b"GET /hit?path=/victim\n"):
            t0 = time.monotonic()
            refused(d, raw, "HTTP/0.9 %r" % raw, want=(400, 505),
                    timeout=IDLE + 3)
            check(time.monotonic() - t0 < IDLE + 2.5 * SCALE,
                  "%r: open for %.1f s" % (raw, time.monotonic() - t0))


def test_http2_preface_and_versions():
    d = daemon()
    raws = [b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04\x00\x00\x00"
            b"\x00\x00\x00\x03\x00\x00\x00\x64\x00\x04\x00\x01\x00\x00",
            b"GET /hit?path=/victim HTTP/2.0\r\nHost: x\r\n" + UAH + b"\r\n",
            b"GET /hit?path=/victim HTTP/9.9\r\nHost: x\r\n" + UAH + b"\r\n",
            b"GET /hit?path=/victim HTTP/1.10\r\nHost: x\r\n" + UAH + b"\r\n",
            b"GET /hit?path=/victim HTTP/0.9\r\nHost: x\r\n" + UAH + b"\r\n",
            b"GET /hit?path=/victim http/1.1\r\nHost: x\r\n" + UAH + b"\r\n",
            b"GET /hit?path=/victim HTTP/1.1 \r\nHost: x\r\n" + UAH + b"\r\n"]
    with Guard(d):
        collect(raws, lambda r: refused(d, r, repr(r[:30]),
                                        want=(400, 505)))


def test_garbage_bytes():
    d = daemon()
    rng = random.Random(8)
    raws = [bytes(rng.getrandbits(8) for _ in range(n))
            for n in (1, 16, 4096, 65536)]
    raws += [b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(160),
             b"SSH-2.0-OpenSSH_9.6\r\n", b"\r\n" * 10000,
             b"A" * 200000, b"GET " + b"A" * 200000,
             b"\x00" * 1000, b"\xff\xfe" * 1000,
             b"GET /hit?path=/victim HTTP/1.1\r\nHost: x\r\n" +
             b"\x00\xff" * 100]
    with Guard(d):
        collect(raws, lambda r: refused(d, r, "garbage %r" % r[:16],
                                        want=(400, 413, 414, 431),
                                        timeout=IDLE + 3))


def test_absolute_form_and_odd_targets():
    # Decision: tally is no proxy; an absolute-form target is a 4xx.
    d = daemon()
    raws = [b"GET http://x/hit?path=/victim HTTP/1.1\r\nHost: x\r\n" + UAH +
            b"\r\n",
            b"GET https://127.0.0.1/hit?path=/victim HTTP/1.1\r\nHost: x\r\n"
            + UAH + b"\r\n",
            b"POST http://x/hit HTTP/1.1\r\nHost: x\r\n" + UAH + JSON_CT +
            b"Content-Length: %d\r\n\r\n" % len(BODY) + BODY,
            b"GET * HTTP/1.1\r\nHost: x\r\n" + UAH + b"\r\n",
            b"OPTIONS * HTTP/1.1\r\nHost: x\r\n" + UAH + b"\r\n",
            b"CONNECT 127.0.0.1:80 HTTP/1.1\r\nHost: x\r\n" + UAH + b"\r\n",
            b"GET hit?path=/victim HTTP/1.1\r\nHost: x\r\n" + UAH + b"\r\n",
            b"GET ?path=/victim HTTP/1.1\r\nHost: x\r\n" + UAH + b"\r\n",
            b"GET /hit%00?path=/victim HTTP/1.1\r\nHost: x\r\n" + UAH +
            b"\r\n",
            b"GET /HIT?path=/victim HTTP/1.1\r\nHost: x\r\n" + UAH + b"\r\n"]
    with Guard(d):
        collect(raws, lambda r: refused(d, r, repr(r[:45]),
                                        want=(400, 404, 405)))


def test_odd_methods():
    d = daemon()
    with Guard(d):
        for m in (b"get", b"GETT", b"HIT", b"TRACE", b"TRACK", b"PROPFIND",
                  b"DELETE", b"M" * 10000):
            r = refused(d, b"%s /hit?path=%%2Fvictim HTTP/1.1\r\nHost: x\r\n"
                        b"Cookie: secret=s3cr3t\r\n" % m + UAH + b"\r\n",
                        "method %r" % m[:20], want=(400, 405, 501))
            if r:
                check(b"s3cr3t" not in r[2], "%r echoed the request: %r"
                      % (m[:20], r[2][:200]))


def test_pipelined_good_bad_good():
    # A bad parameter breaks no framing: the pipeline goes on and exactly
    # the good hits count.
    d = daemon()
    good = raw_get(b"/hit?path=%2Fgood")
    bad = raw_get(b"/hit?path=%2Fvictim%zz")
    with Guard(d, delta=3):
        answers, closed, rest = talk(d, good + bad + good + raw_get(
            b"/hit?site=Bad_Site") + good)
        eq([a[0] for a in answers], [200, 400, 200, 400, 200], "answers")
        for st, hd, body in answers:
            if st == 200:
                eq(parse_json(body)["counted"], True, "counted")


def test_pipelined_framing_error_stops_the_pipeline():
    # After a request whose framing is broken nothing more on the
    # connection may be read as a request.
    d = daemon()
    good = raw_get(b"/hit?path=%2Fgood")
    for bad in (b"GET /hit?path=/victim HTTP/1.1\r\nBad Name: v\r\n\r\n",
                raw_post(JSON_CT + b"Content-Length: 5\r\nContent-Length: 6"
                         b"\r\n", b"xxxxxx"),
                raw_post(JSON_CT + b"Transfer-Encoding: chunked\r\n",
                         b"zz\r\n"),
                b"GARBAGE\r\n\r\n",
                raw_get(b"/hit?path=%2Fvictim", b"X-A: a\x00\r\n")):
        with Guard(d, delta=1):
            answers, closed, rest = talk(d, good + bad + good + good)
            eq([a[0] for a in answers][:1], [200], "the first answer")
            check(len(answers) == 2 and 400 <= answers[1][0] < 500,
                  "after %r: answers %r" % (bad[:40], [a[0] for a in
                                                       answers]))
            check(closed, "the connection stays open after %r" % bad[:40])


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_pipelined_flood_never_read():
    """One client pipelines requests for 3 s and never reads an answer:
    tallyd must stop reading (back-pressure), not buffer answers without
    bound."""
    d = daemon()
    with Guard(d):
        rss0 = rss_kib(d.proc.pid)
        s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        req = raw_get(b"/count?path=%2Fvictim") * 100
        s.settimeout(0.5)
        sent = 0
        t0 = time.monotonic()
        try:
            while time.monotonic() - t0 < 3:
                s.sendall(req)
                sent += 100
        except (socket.timeout, BrokenPipeError, ConnectionResetError):
            pass
        grown = rss_kib(d.proc.pid) - rss0
        s.close()
        check(sent >= 100, "could not send a pipeline")
        check(grown < 32 * 1024, "tallyd grew by %d MiB while one client "
              "sent %d pipelined requests in %.1f s without reading the "
              "answers (no back-pressure)"
              % (grown // 1024, sent, time.monotonic() - t0))


def test_new_clients_get_nothing_of_an_unread_pipeline():
    """A client that pipelines requests, reads no answer and goes: the
    answers it left unsent must go with it. Connections once kept their
    buffers for the next clients, who then read the tail of its answers
    before their own status line."""
    d = daemon()
    with Guard(d):
        for _ in range(5):
            s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.settimeout(0.3)
            try:
                for _ in range(50):
                    s.sendall(raw_get(b"/count?path=%2Fvictim") * 100)
            except (socket.timeout, BrokenPipeError, ConnectionResetError):
                pass
            s.close()
            for _ in range(10):
                st, hd, body = d.request("GET", "/healthz")
                eq(st, 200, "/healthz after another client's pipeline")
                check(b"visitors" not in body,
                      "another client's answer in ours: %r" % body[:200])


def test_svg_and_json_escaping():
    d = daemon()
    evil = '<script>alert(1)</script>"\'&\u2028'
    with Guard(d):
        st, hd, body = d.request(
            "GET", "/counter.svg?" + harness.query(
                path="/victim", count="0", **{"label.today": evil,
                                              "label.total": evil,
                                              "label.page": evil}),
            {"User-Agent": BROWSER_UA})
        eq(st, 200, "svg status")
        check(b"<script" not in body and b"\"'&" not in body,
              "label not escaped in the SVG: %r" % body[:400])
        check("default-src 'none'" in hd.get("content-security-policy", ""),
              "no CSP on the SVG: %r" % hd)
        eq(hd.get("x-content-type-options"), "nosniff", "nosniff")
        # /count reads only; a path full of markup comes back as JSON.
        st, hd, body = d.request("GET", "/count?" + harness.query(
            path="/" + evil), {"User-Agent": BROWSER_UA})
        eq(st, 200, "/count status")
        c = parse_json(body)
        eq(c["path"], "/" + evil, "path round trip")
        check(b"<script" not in body, "markup unescaped in JSON: %r"
              % body[:300])


# ------------------------------------------------------ connections

def proc_cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_share(pid, seconds=2.0):
    c0, t0 = proc_cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (proc_cpu_seconds(pid) - c0) / (time.monotonic() - t0)


def closed_within(socks, limit):
    """Waits until every socket is closed by the peer (EOF or reset; a
    408 answer first is fine); returns the seconds it took, or fails."""
    t0 = time.monotonic()
    open_ = {s.fileno(): s for s in socks}
    junk = []
    while open_:
        left = limit - (time.monotonic() - t0)
        if left <= 0:
            raise Failure("%d of %d connections still open after %.1f s"
                          % (len(open_), len(socks), limit))
        r, _, _ = select.select(list(open_), [], [], min(left, 0.5))
        for fd in r:
            try:
                data = open_[fd].recv(4096)
            except (ConnectionResetError, OSError):
                data = b""
            if data:
                if not data.startswith(b"HTTP/1.1 408"):
                    junk.append(data[:60])
                continue
            del open_[fd]
    check(not junk, "answers other than 408 on half-sent requests: %r"
          % junk[:3])
    return time.monotonic() - t0


def test_300_half_open_slow_connections():
    # Here every client is 127.0.0.1: no per-address limit.
    d = Daemon(["--idle-timeout", "2s", "--max-connections-per-address", "0"])
    d.hit(VICTIM)
    socks = []
    try:
        for i in range(300):
            s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
            s.sendall(b"GET /hit?path=%2Fvictim HTTP/1.1\r\nHost: x\r\n"
                      b"User-Agent: Mozilla/5.0" if i % 2 else b"GET /hi")
            socks.append(s)
        t_open = time.monotonic()
        # A normal client is served at once, several times, meanwhile.
        for _ in range(5):
            served_quickly(d, "a client beside 300 slow ones")
            c = d.hit(VICTIM)
        closed_within(socks, 2 + 2.5 * SCALE - (time.monotonic() - t_open))
        served_quickly(d, "a client after the slow ones")
        eq(d.count(VICTIM)["page"]["views"], c["page"]["views"],
           "views after the slow connections closed")
        eq(c["page"]["views"], 6, "views of the good hits")
    finally:
        for s in socks:
            s.close()
    d.check_alive()


def test_slowloris_trickle():
    d = Daemon(["--idle-timeout", "2s"])
    d.hit(VICTIM)
    req = raw_get(b"/hit?path=%2Fvictim")
    socks = [socket.create_connection(("127.0.0.1", d.port), timeout=5)
             for _ in range(20)]
    closed = set()
    t0 = time.monotonic()
    try:
        # One byte each, every 0.4 s: never idle, never a whole request.
        for k in range(len(req) - 2):
            if time.monotonic() - t0 > 2 + 3 * SCALE:
                break
            for i, s in enumerate(socks):
                if i in closed:
                    continue
                try:
                    s.sendall(req[k:k + 1])
                except (BrokenPipeError, ConnectionResetError):
                    closed.add(i)
            if len(closed) == len(socks):
                break
            served_quickly(d, "a client beside 20 trickling ones")
            time.sleep(0.4)
        left = [s for i, s in enumerate(socks) if i not in closed]
        closed_within(left, 2.0 * SCALE)
        took = time.monotonic() - t0
        check(took < 2 + 3.5 * SCALE, "the trickling connections lasted "
              "%.1f s with --idle-timeout 2s" % took)
    finally:
        for s in socks:
            s.close()
    eq(d.count(VICTIM)["page"]["views"], 1, "views after the trickle")
    d.check_alive()


def backoff_case(d, limit_name, extra, idle_closed=False):
    """Opens `extra` more connections than the daemon can take; checks
    its CPU stays low at the limit, a kept-alive client is served
    meanwhile (or, idle_closed, was closed to make room), a waiting one
    is served once the extra ones close."""
    keep = d.connect()
    keep.request("GET", "/count?path=%2Fvictim",
                  headers={"User-Agent": BROWSER_UA})
    r = keep.getresponse()
    r.read()
    eq(r.status, 200, "kept-alive client")
    socks = []
    waiting = None
    try:
        for _ in range(extra):
            socks.append(socket.create_connection(("127.0.0.1", d.port),
                                                  timeout=5))
        time.sleep(0.5)
        share = cpu_share(d.proc.pid, 2.0)
        check(share < 0.5, "tallyd used %.0f%% of a core at the %s limit "
              "(a busy accept loop?)" % (share * 100, limit_name))
        check(d.alive(), "tallyd died at the %s limit: %s"
              % (limit_name, d.stderr()[-1000:]))
        if idle_closed:
            # The idle kept-alive connection made room for a new one.
            keep.sock.settimeout(1)
            check(keep.sock.recv(1) == b"", "the idle kept-alive "
                  "connection is open at the %s limit" % limit_name)
        else:
            # Already-accepted connections are served at the limit.
            t0 = time.monotonic()
            keep.request("GET", "/hit?path=%2Fvictim",
                         headers={"User-Agent": BROWSER_UA})
            r = keep.getresponse()
            eq(r.status, 200, "kept-alive hit at the %s limit" % limit_name)
            eq(parse_json(r.read())["page"]["views"], 2, "views")
            check(time.monotonic() - t0 < 1 * SCALE, "kept-alive client "
                  "waited %.1f s" % (time.monotonic() - t0))
        # A new one waits in the backlog until room is made.
        waiting = socket.create_connection(("127.0.0.1", d.port), timeout=5)
        waiting.sendall(raw_get(b"/hit?path=%2Fvictim"))
        time.sleep(0.3)
    finally:
        for s in socks:
            s.close()
    try:
        waiting.settimeout(3 * SCALE)
        t0 = time.monotonic()
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = waiting.recv(65536)
            if not chunk:
                break
            data += chunk
        check(data.startswith(b"HTTP/1.1 200"), "the client that waited at "
              "the %s limit got %r" % (limit_name, data[:100]))
        check(time.monotonic() - t0 < 2 * SCALE, "served %.1f s after room "
              "was made" % (time.monotonic() - t0))
    except socket.timeout:
        raise Failure("the client that waited at the %s limit was not served"
                      " within 3 s of the others closing" % limit_name)
    finally:
        waiting.close()
        keep.close()
    served_quickly(d, "a new client after the %s limit" % limit_name)
    eq(d.count(VICTIM)["page"]["views"], 2 if idle_closed else 3,
       "views after the %s limit" % limit_name)
    d.check_alive()


def test_out_of_file_descriptors_backs_off():
    if os.environ.get("TALLY_VALGRIND"):
        raise Skip("valgrind keeps descriptors of its own")
    d = Daemon(["--idle-timeout", "30s", "--threads", "2"])
    d.hit(VICTIM)
    try:
        resource.prlimit(d.proc.pid, resource.RLIMIT_NOFILE, (64, 64))
    except (OSError, AttributeError) as e:
        raise Skip("cannot lower tallyd's descriptor limit: %s" % e)
    in_use = len(os.listdir("/proc/%d/fd" % d.proc.pid))
    check(in_use < 60, "tallyd already has %d descriptors" % in_use)
    backoff_case(d, "file descriptor", 64 - in_use + 40)
    check("Too many open files" in d.stderr() or "accept" in d.stderr(),
          "running out of descriptors is not logged: %r"
          % d.stderr()[-500:])
    # Logged, but not once per attempt.
    n = d.stderr().count("accept")
    check(n < 20, "accept failures logged %d times in a few seconds" % n)


def test_max_connections_backs_off():
    d = Daemon(["--idle-timeout", "30s", "--max-connections", "20",
                "--threads", "1"])
    d.hit(VICTIM)
    backoff_case(d, "max_connections", 60, idle_closed=True)


def listen_backlog(port):
    """The backlog of the socket listening on 127.0.0.1:PORT: for a
    listening socket, ss's Send-Q is its backlog."""
    try:
        out = subprocess.run(["ss", "-ltnH", "sport = :%d" % port],
                             capture_output=True, text=True, timeout=10)
    except FileNotFoundError:
        raise Skip("ss (iproute2) is not installed")
    for line in out.stdout.splitlines():
        f = line.split()
        if len(f) >= 4 and f[3] == "127.0.0.1:%d" % port:
            return int(f[2])
    raise Failure("no listening socket on port %d in %r" % (port, out.stdout))


def test_listen_backlog_holds_a_burst():
    """A burst of new clients waits in the kernel's queue, as long as the
    system allows (net.core.somaxconn), not 128 of them."""
    with open("/proc/sys/net/core/somaxconn") as f:
        somaxconn = int(f.read())
    got = listen_backlog(daemon().port)
    eq(got, min(somaxconn, 65535), "backlog of the listening socket")


def test_zz_shared_daemon_exits_cleanly():
    """After all that input: SIGTERM, exit 0, no sanitizer report (leaks
    are reported at exit)."""
    d = daemon()
    rc = d.stop()
    sanitizer_clean(d)
    eq(rc, 0, "exit code after SIGTERM; stderr %r" % d.stderr()[-2000:])


if __name__ == "__main__":
    harness.main(globals())
