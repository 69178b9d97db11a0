#!/usr/bin/env python3
"""Bad requests and bad invocations: every error status, JSON error bodies,
no count changed, the daemon keeps serving."""

import json
import os
import re
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (BROWSER_UA, Daemon, Failure, check, eq,  # noqa: E402
                     check_json_error, parse_json, parse_raw, mkdtemp,
                     write_file, run_tallyd)

COMMIT_WAIT = 0.35
UA = {"User-Agent": BROWSER_UA}

_daemon = None


def daemon():
    """One daemon shared by the request cases, with /e counted twice."""
    global _daemon
    if _daemon is None or not _daemon.alive():
        _daemon = Daemon(keep=True)
        _daemon.hit("/e")
        _daemon.hit("/e")
    return _daemon


def snapshot(d):
    time.sleep(COMMIT_WAIT)
    out = {}
    for p in ("/e", "/"):
        c = d.count(p)
        out[p] = {k: (c[k]["views"], c[k]["visitors"])
                  for k in ("page", "page_today", "today", "total")}
    return out


class Unchanged:
    """with Unchanged(d): ... asserts that no count changed inside and the
    daemon still answers afterwards."""

    def __init__(self, d):
        self.d = d

    def __enter__(self):
        self.before = snapshot(self.d)
        return self

    def __exit__(self, typ, val, tb):
        if typ is not None:
            return False
        check(self.d.alive(), "tallyd died: %s" % self.d.stderr()[-2000:])
        self.d.check_alive()
        after = snapshot(self.d)
        eq(after, self.before, "counts after the bad requests")
        return False


def expect_error(d, method, target, want, headers=None, body=None,
                 what=None):
    h = dict(UA)
    h.update(headers or {})
    st, hd, data = d.request(method, target, h, body)
    return st, hd, check_json_error(st, hd, data, want,
                                    what or "%s %s" % (method, target[:80]))


def expect_raw_error(d, raw, want, what, allow_close=False):
    out = d.raw(raw)
    if allow_close and out == b"":
        return None
    st, hd, body = parse_raw(out)
    check(st is not None, "%s: no HTTP answer: %r" % (what, out[:200]))
    check_json_error(st, hd, body, want, what)
    return st


# ------------------------------------------------------------------ 400

def test_invalid_site_id_400():
    d = daemon()
    with Unchanged(d):
        for site in ("Bad_Site%21", "UPPER", "-dash", "a%20b", "a" * 64,
                     "sp%C3%BCt"):
            expect_error(d, "GET", "/hit?site=%s&path=%%2Fe" % site, 400)
            expect_error(d, "GET", "/count?site=%s&path=%%2Fe" % site, 400)
        expect_error(d, "POST", "/hit", 400,
                     {"Content-Type": "application/json"},
                     json.dumps({"site": "Bad_Site!", "path": "/e"}))
        expect_error(d, "POST", "/hit", 400,
                     {"Content-Type": "application/x-www-form-urlencoded"},
                     "site=Bad_Site%21&path=%2Fe")


def test_malformed_percent_encoding_in_query_400():
    d = daemon()
    with Unchanged(d):
        for q in ("path=/e%zz", "path=/e%2", "path=/e%", "path=%G0e",
                  "site=de%ZZfault&path=/e"):
            expect_error(d, "GET", "/hit?" + q, 400)
            expect_error(d, "GET", "/count?" + q, 400)


def test_malformed_percent_encoding_in_path_param_400():
    # The path value is percent-encoded (as location.pathname); a bad
    # escape in it is a bad parameter even when the query itself is fine.
    d = daemon()
    with Unchanged(d):
        expect_error(d, "GET", "/hit?path=%2Fe%25zz", 400)
        for p in ("/e%zz", "/e%", "/e%4"):
            expect_error(d, "POST", "/hit", 400,
                         {"Content-Type": "application/json"},
                         json.dumps({"path": p}), "JSON path %r" % p)
        expect_error(d, "POST", "/hit", 400,
                     {"Content-Type": "application/x-www-form-urlencoded"},
                     "path=%2Fe%25zz")


def test_invalid_utf8_400():
    d = daemon()
    with Unchanged(d):
        for p in ("/%FF", "/e%C3", "/%C0%AF", "/%ED%A0%80x", "/%F8%88%80%80%80"):
            expect_error(d, "GET", "/hit?path=" + p, 400)
        expect_error(d, "POST", "/hit", 400,
                     {"Content-Type": "application/json"},
                     json.dumps({"path": "/%FF"}), "JSON path /%FF")
        expect_error(d, "POST", "/hit", 400,
                     {"Content-Type": "application/json"},
                     b'{"path":"/\xff"}', "raw 0xFF byte in a JSON body")
        expect_error(d, "POST", "/hit", 400,
                     {"Content-Type": "application/json"},
                     b'{"path":"/\\ud800x"}', "lone surrogate in a JSON body")


def test_control_characters_400():
    d = daemon()
    with Unchanged(d):
        for p in ("/e%00", "/e%0Ax", "/e%0D", "/%1B[31m", "/e%7F"):
            expect_error(d, "GET", "/hit?path=" + p, 400)
        expect_error(d, "POST", "/hit", 400,
                     {"Content-Type": "application/json"},
                     json.dumps({"path": "/e\u0001"}), "JSON path with \\u0001")


def test_path_length_limit():
    d = daemon()
    ok = "/" + "x" * 511         # 512 bytes: allowed
    with Unchanged(d):
        expect_error(d, "GET", "/hit?path=/" + "y" * 512, 400)      # 513
        expect_error(d, "GET", "/hit?path=/" + "%C3%BC" * 256, 400)  # 513
        expect_error(d, "POST", "/hit", 400,
                     {"Content-Type": "application/json"},
                     json.dumps({"path": "/" + "z" * 600}))
    c = d.hit(ok)
    eq((c["path"], c["page"]["views"]), (ok, 1), "a 512-byte path")


def test_content_length_and_transfer_encoding_400():
    d = daemon()
    body = b'{"path":"/e"}'
    with Unchanged(d):
        raw = (b"POST /hit HTTP/1.1\r\nHost: x\r\nUser-Agent: "
               + BROWSER_UA.encode() +
               b"\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n"
               b"Connection: close\r\n\r\n%x\r\n%s\r\n0\r\n\r\n"
               % (len(body), len(body), body))
        expect_raw_error(d, raw, 400, "Content-Length with Transfer-Encoding")
        raw = (b"POST /hit HTTP/1.1\r\nHost: x\r\nUser-Agent: "
               + BROWSER_UA.encode() +
               b"\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\nContent-Length: %d\r\n"
               b"Connection: close\r\n\r\n%s"
               % (len(body), body))
        expect_raw_error(d, raw, 400, "Transfer-Encoding, then Content-Length")


def test_duplicate_content_length_400():
    d = daemon()
    body = b'{"path":"/e"}'
    with Unchanged(d):
        for a, b in ((len(body), len(body) + 3), (len(body), len(body))):
            raw = (b"POST /hit HTTP/1.1\r\nHost: x\r\nUser-Agent: "
                   + BROWSER_UA.encode() +
                   b"\r\nContent-Type: application/json\r\n"
                   b"Content-Length: %d\r\nContent-Length: %d\r\n"
                   b"Connection: close\r\n\r\n%s   " % (a, b, body))
            expect_raw_error(d, raw, 400,
                             "Content-Length %d and %d" % (a, b))
        raw = (b"POST /hit HTTP/1.1\r\nHost: x\r\nUser-Agent: "
               + BROWSER_UA.encode() +
               b"\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d, %d\r\n"
               b"Connection: close\r\n\r\n%s" % (len(body), len(body), body))
        expect_raw_error(d, raw, 400, "Content-Length: N, N")


def test_bad_content_length_400():
    d = daemon()
    with Unchanged(d):
        for cl in (b"abc", b"-1", b"1e3", b"99999999999999999999999"):
            raw = (b"POST /hit HTTP/1.1\r\nHost: x\r\nUser-Agent: "
                   + BROWSER_UA.encode() +
                   b"\r\nContent-Type: application/json\r\n"
                   b"Content-Length: " + cl + b"\r\n"
                   b"Connection: close\r\n\r\n{\"path\":\"/e\"}")
            expect_raw_error(d, raw, (400, 413), "Content-Length: %s"
                             % cl.decode(), allow_close=True)


def test_malformed_json_400():
    d = daemon()
    with Unchanged(d):
        for body in ('{"path":', "not json", '{"path":"/e"} trailing',
                     '{"path": 5}', '{"site": ["default"], "path": "/e"}',
                     "[]", '"/e"', '{"path":"/e",}'):
            for ct in ("application/json", "text/plain;charset=UTF-8"):
                expect_error(d, "POST", "/hit", 400, {"Content-Type": ct},
                             body, "%s body %r" % (ct, body))


def test_malformed_form_400():
    d = daemon()
    with Unchanged(d):
        for body in ("path=%2Fe%zz", "site=%", "path=%G1"):
            expect_error(d, "POST", "/hit", 400,
                         {"Content-Type": "application/x-www-form-urlencoded"},
                         body, "form %r" % body)


# ------------------------------------------------------------------ 404

def test_unknown_route_404():
    d = daemon()
    with Unchanged(d):
        for target in ("/nope", "/hit/extra", "/count.json", "/hits",
                       "/metrics/x"):
            expect_error(d, "GET", target, 404)


def test_unknown_site_404():
    d = daemon()
    with Unchanged(d):
        expect_error(d, "GET", "/hit?site=nosuch&path=%2Fe", 404)
        expect_error(d, "GET", "/count?site=nosuch&path=%2Fe", 404)
        expect_error(d, "POST", "/hit", 404,
                     {"Content-Type": "application/json"},
                     json.dumps({"site": "nosuch", "path": "/e"}))
    time.sleep(COMMIT_WAIT)
    st, hd, body = d.request("GET", "/count?site=default&path=%2Fe", UA)
    eq(st, 200, "default site still answers")


# ------------------------------------------------------------------ 405

def test_wrong_method_405():
    d = daemon()
    with Unchanged(d):
        for method, target, allowed in (
                ("DELETE", "/hit?path=%2Fe", {"GET", "POST"}),
                ("PUT", "/hit?path=%2Fe", {"GET", "POST"}),
                ("PATCH", "/hit?path=%2Fe", {"GET", "POST"}),
                ("PUT", "/count?path=%2Fe", {"GET"}),
                ("POST", "/count?path=%2Fe", {"GET"}),
                ("DELETE", "/count?path=%2Fe", {"GET"}),
                ("POST", "/healthz", {"GET"})):
            st, hd, _ = expect_error(d, method, target, 405,
                                     body=b"" if method != "DELETE" else None)
            allow = {m.strip().upper()
                     for m in hd.get("allow", "").split(",") if m.strip()}
            check(allowed <= allow, "%s %s: Allow %r lacks %s"
                  % (method, target, hd.get("allow"), sorted(allowed)))
            check(method not in allow, "%s %s: Allow %r lists %s"
                  % (method, target, hd.get("allow"), method))


# ------------------------------------------------------------------ 413

def test_body_over_4k_413():
    d = daemon()
    base = json.dumps({"path": "/e2"})
    with Unchanged(d):
        big = base + " " * (4097 - len(base))
        eq(len(big), 4097, "body size")
        expect_error(d, "POST", "/hit", 413,
                     {"Content-Type": "application/json"}, big, "4097 bytes")
        expect_error(d, "POST", "/hit", 413,
                     {"Content-Type": "application/json"},
                     base + " " * 100000, "100 KB")
        expect_error(d, "POST", "/hit", 413,
                     {"Content-Type": "application/x-www-form-urlencoded"},
                     "path=%2Fe&x=" + "a" * 5000, "form 5 KB")
        # Chunked, over the limit in total.
        chunk = b" " * 3000
        raw = (b"POST /hit HTTP/1.1\r\nHost: x\r\nUser-Agent: "
               + BROWSER_UA.encode() +
               b"\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
               b"%x\r\n%s\r\n%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n"
               % (len(base), base.encode(), len(chunk), chunk,
                  len(chunk), chunk))
        expect_raw_error(d, raw, 413, "chunked 6 KB")
    # Exactly 4 KiB is allowed.
    ok = base + " " * (4096 - len(base))
    st, hd, body = d.request("POST", "/hit", dict(
        UA, **{"Content-Type": "application/json"}), ok)
    eq(st, 200, "status of a 4096-byte body (%r)" % body[:200])
    c = parse_json(body)
    eq((c["path"], c["page"]["views"]), ("/e2", 1), "4096-byte body counted")


# ------------------------------------------------------------------ 414

def _uri(n):
    """A /count target of exactly n bytes naming the path /a."""
    head = "/count?path=/"
    k, pad = divmod(n - len(head) - 1, 3)
    t = head + "%2F" * k + "/" * pad + "a"
    eq(len(t), n, "target length")
    return t


def test_uri_over_2048_414():
    d = daemon()
    with Unchanged(d):
        expect_error(d, "GET", _uri(2049), 414, what="2049-byte URI")
        expect_error(d, "GET", "/hit?path=/" + "a" * 5000, 414,
                     what="5 KB URI (hit)")
        expect_error(d, "GET", "/" + "a" * 3000, 414, what="3 KB route")
    st, hd, body = d.request("GET", _uri(2048), UA)
    eq(st, 200, "status of a 2048-byte URI (%r)" % body[:200])
    eq(parse_json(body)["path"], "/a", "path of the 2048-byte URI")


# ------------------------------------------------------------------ 431

def test_headers_over_8k_431():
    d = daemon()
    with Unchanged(d):
        expect_error(d, "GET", "/hit?path=%2Fe", (431, 400),
                     {"X-Pad": "a" * 9000}, what="one 9 KB header")
        many = {"X-Pad-%03d" % i: "b" * 100 for i in range(100)}
        expect_error(d, "GET", "/hit?path=%2Fe", (431, 400), many,
                     what="100 headers of 100 bytes")
        expect_error(d, "GET", "/hit?path=%2Fe", (431, 400),
                     {"Cookie": "c=" + "d" * 20000}, what="20 KB Cookie")
    # 6 KB of headers is fine.
    st, hd, body = d.request("GET", "/count?path=%2Fe",
                             dict(UA, **{"X-Pad": "a" * 6000}))
    eq(st, 200, "status with 6 KB of headers")


# ------------------------------------------------------------------ 415

def test_unsupported_content_type_415():
    d = daemon()
    body = json.dumps({"path": "/e"})
    with Unchanged(d):
        for ct in ("application/xml", "multipart/form-data; boundary=x",
                   "image/png", "application/octet-stream"):
            expect_error(d, "POST", "/hit", 415, {"Content-Type": ct}, body,
                         "Content-Type %s" % ct)


# ------------------------------------------------------------------ garbage

def test_malformed_request_line():
    d = daemon()
    with Unchanged(d):
        for raw in (b"GARBAGE\r\n\r\n",
                    b"GET\r\n\r\n",
                    b"GET /hit?path=/e\r\n\r\n",
                    b" GET /hit HTTP/1.1\r\n\r\n",
                    b"GET /hit?path=/e HTTP/1.1 extra\r\n\r\n",
                    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,
                    b"GET /hit?path=/e HTTP/1.1\r\nNoColonHere\r\n\r\n",
                    b"GET /hit?path=/e HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n",
                    b"GET /hit?path=/e HTTP/1.1\r\nHost: x\x00y\r\n\r\n"):
            out = d.raw(raw, timeout=3)
            if out == b"":
                continue  # closing is allowed
            st, hd, body = parse_raw(out)
            check(st in (400, 505), "%r: answered %r" % (raw[:40], out[:200]))
            if st == 400:
                check_json_error(st, hd, body, 400, repr(raw[:40]))


def test_truncated_and_abandoned_requests():
    d = daemon()
    with Unchanged(d):
        ua = b"User-Agent: " + BROWSER_UA.encode() + b"\r\n"
        for raw in (b"GET /hit?path=/e HTTP/1.1\r\nHost: x\r\nUser-Ag",
                    b"GET /hit?path=/e HTTP/1.1\r\nHost: x\r\n" + ua,
                    b"POST /hit HTTP/1.1\r\nHost: x\r\nUser-Agent: "
                    + BROWSER_UA.encode() + b"\r\nContent-Type: application/json"
                    b"\r\nContent-Length: 100\r\n\r\n{\"path\":\"/e\"",
                    b"POST /hit HTTP/1.1\r\nHost: x\r\nUser-Agent: "
                    + BROWSER_UA.encode() + b"\r\nContent-Type: application/json"
                    b"\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"pa"):
            s = socket.create_connection(("127.0.0.1", d.port), timeout=3)
            s.sendall(raw)
            time.sleep(0.05)
            s.close()
        # Many connections opened and dropped at once.
        socks = [socket.create_connection(("127.0.0.1", d.port), timeout=3)
                 for _ in range(50)]
        for s in socks:
            s.sendall(b"GET /hit?path=/e HTTP/1.1\r\n" + ua)
        for s in socks:
            s.close()


def test_bad_chunked_encoding_400():
    d = daemon()
    with Unchanged(d):
        for chunks in (b"zz\r\n{}\r\n0\r\n\r\n",
                       b"-1\r\n{}\r\n0\r\n\r\n",
                       b"ffffffffffffffffff\r\n{}\r\n0\r\n\r\n"):
            raw = (b"POST /hit HTTP/1.1\r\nHost: x\r\nUser-Agent: "
                   + BROWSER_UA.encode() +
                   b"\r\nContent-Type: application/json\r\n"
                   b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                   + chunks)
            out = d.raw(raw, timeout=3)
            if out == b"":
                continue
            st, hd, body = parse_raw(out)
            check(st in (400, 413), "%r: answered %r" % (chunks, out[:200]))
            check_json_error(st, hd, body, st, repr(chunks))


def test_errors_leave_exact_counts():
    d = daemon()
    time.sleep(COMMIT_WAIT)
    before = d.count("/e")["page"]["views"]
    c = d.hit("/e")
    eq(c["page"]["views"], before + 1, "page.views of the next good hit")
    d.check_alive()


def test_idle_connection_closed():
    d = Daemon(["--idle-timeout", "1s"])
    s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    s2 = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    try:
        s2.sendall(b"GET /hit?path=/idle HTTP/1.1\r\nHost: x\r\n")  # slow
        t0 = time.monotonic()
        try:
            data = s.recv(100)
        except ConnectionResetError:
            data = b""
        except socket.timeout:
            raise harness.Failure("an idle connection is still open after 5 s"
                                  " with --idle-timeout 1s")
        waited = time.monotonic() - t0
        eq(data, b"", "bytes on an idle connection")
        check(0.5 <= waited <= 4, "closed after %.1f s, want about 1 s"
              % waited)
        try:
            s2.settimeout(4)
            data = s2.recv(4096)
            while data and not data.endswith(b"\r\n\r\n") and b"\r\n\r\n" \
                    not in data:
                more = s2.recv(4096)
                if not more:
                    break
                data += more
        except (ConnectionResetError, socket.timeout):
            data = b"timeout"
        check(data == b"" or data.startswith(b"HTTP/1.1 408")
              or data.startswith(b"HTTP/1.0 408"),
              "a half-sent request: %r" % data[:100])
    finally:
        s.close()
        s2.close()
    d.check_alive()


# ------------------------------------------------------------------ tallyd CLI

def test_help_exits_0_with_usage_on_stdout():
    rc, out, err = run_tallyd("--help")
    eq(rc, 0, "exit code of --help")
    check("usage" in out.lower(), "no usage on stdout: %r" % out[:300])
    for flag in ("--listen", "--data", "--config"):
        check(flag in out, "--help does not mention %s" % flag)


def test_version_exits_0():
    rc, out, err = run_tallyd("--version")
    eq(rc, 0, "exit code of --version")
    check(re.search(r"\d+\.\d+", out), "no version number on stdout: %r" % out)


def test_unknown_flag_exits_2():
    for args in (["--no-such-flag"], ["-Z"], ["--listen"]):
        rc, out, err = run_tallyd(*args)
        eq(rc, 2, "exit code of %s" % args)
        check("usage" in err.lower(), "%s: no usage on stderr: %r"
              % (args, err[:300]))


def test_stray_argument_exits_2():
    rc, out, err = run_tallyd("--data", mkdtemp(), "extra")
    eq(rc, 2, "exit code with a stray argument")


BAD_CONFIGS = [
    # (text, line of the error: one int or a tuple of acceptable ones)
    ("[server]\nlisten = 127.0.0.1:0\nno_such_key = 1\n", 3),
    ("[store]\n\ndurability = sometimes\n", 3),
    ("[count]\ntimezone = Mars/Olympus_Mons\n", 2),
    ("[store]\ncommit_interval = 100parsecs\n", 2),
    ("# comment\n[server]\nthis line has no equals sign\n", 3),
    ("[count]\nrate_limit = -5\n", 2),
    ("[count]\nmax_pages = many\n", 2),
    ("[nosection]\nkey = 1\n", (1, 2)),
    ("[server]\nlisten = 127.0.0.1:0\n\n[site Bad_Name]\nmax_pages = 5\n",
     (4, 5)),
    ("[server]\nidle_timeout = soon\n", 2),
]


def test_bad_config_exits_78_with_file_line():
    for text, lines in BAD_CONFIGS:
        if isinstance(lines, int):
            lines = (lines,)
        path = write_file(os.path.join(mkdtemp(), "bad.ini"), text)
        data = os.path.join(mkdtemp(), "data")
        want = ["%s:%d:" % (path, n) for n in lines]
        for pre in ([], ["-n"]):
            rc, out, err = run_tallyd(*(pre + ["--config", path,
                                               "--data", data]))
            eq(rc, 78, "%sexit code for %r (stderr %r)"
               % (" ".join(pre + [""]), text, err[:300]))
            check(any(w in err for w in want), "%sstderr lacks %s for %r: %r"
                  % (" ".join(pre + [""]), " or ".join(want), text, err[:300]))


def test_missing_config_file_exits_78():
    path = os.path.join(mkdtemp(), "absent.ini")
    rc, out, err = run_tallyd("--config", path)
    eq(rc, 78, "exit code for a missing config file (stderr %r)" % err[:300])
    check("absent.ini" in err, "stderr does not name the file: %r" % err[:300])


def test_check_config_n():
    text = ("# tally\n[server]\nlisten = 127.0.0.1:0\nidle_timeout = 30s\n"
            "max_connections = 100\nthreads = 2\n\n[store]\n"
            "durability = strict\ncommit_interval = 100ms\n\n[count]\n"
            "timezone = Asia/Baku\nrate_limit = 30\nmax_pages = 1000\n"
            "dnt = views-only\ncount_max_age = 5\nbots = examplebot, otherbot\n"
            "\n[site blog]\norigins = https://blog.example, "
            "https://www.blog.example\nlabels = today:Bu g\u00fcn, "
            "total:\u00dcmumi, page:Giri\u015f\nmax_pages = 50\n")
    path = write_file(os.path.join(mkdtemp(), "good.ini"), text)
    data = os.path.join(mkdtemp(), "data")
    rc, out, err = run_tallyd("-n", "--config", path, "--data", data)
    eq(rc, 0, "exit code of -n on a good file (stderr %r)" % err[:300])
    rc, out, err = run_tallyd("-n", "--data", data)
    eq(rc, 0, "exit code of -n without a file (stderr %r)" % err[:300])


def test_flags_accepted():
    d = Daemon(["--timezone", "UTC", "--commit-interval", "100ms",
                "--durability", "strict", "--max-pages", "100",
                "--idle-timeout", "30s", "--max-connections", "100",
                "--threads", "2", "--log-level", "debug"])
    c = d.hit("/flags")
    eq(c["page"]["views"], 1, "page.views")
    eq(d.stop(), 0, "exit code after SIGTERM")


def test_bad_flag_value_fails():
    for args in (["--durability", "sometimes"], ["--timezone", "Mars/Base"],
                 ["--commit-interval", "soon"], ["--threads", "-3"]):
        rc, out, err = run_tallyd("--data", os.path.join(mkdtemp(), "d"),
                                  *args)
        check(rc in (2, 78), "%s: exit code %d, want 2 or 78" % (args, rc))
        check(err.strip(), "%s: nothing on stderr" % args)


def test_multiple_listen():
    p2 = harness.free_port()
    d = Daemon(["--listen", "127.0.0.1:%d" % p2])
    d.hit("/two")
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", p2, timeout=5)
    try:
        conn.request("GET", "/hit?path=%2Ftwo", headers=UA)
        r = conn.getresponse()
        eq(r.status, 200, "status on the second address")
        eq(parse_json(r.read())["page"]["views"], 2, "page.views on it")
    finally:
        conn.close()


def test_sighup_reload_keeps_old_on_bad_file():
    cfg = write_file(os.path.join(mkdtemp(), "tally.ini"),
                     "[count]\ncount_max_age = 7\n")
    d = Daemon(["--config", cfg])

    def max_age():
        st, hd, _ = d.request("GET", "/count?path=%2F", UA)
        eq(st, 200, "status")
        m = re.search(r"max-age=(\d+)", hd.get("cache-control", ""))
        check(m, "no max-age in %r" % hd.get("cache-control"))
        return int(m.group(1))

    def wait_max_age(want):
        deadline = time.monotonic() + 3
        while True:
            got = max_age()
            if got == want or time.monotonic() > deadline:
                return got
            time.sleep(0.05)

    eq(max_age(), 7, "max-age from the file")
    d.hit("/hup")
    write_file(cfg, "[count]\ncount_max_age = 9\n")
    d.proc.send_signal(signal.SIGHUP)
    eq(wait_max_age(9), 9, "max-age after SIGHUP")
    write_file(cfg, "[count]\ncount_max_age = 11\nthis is not ini\n")
    d.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    check(d.alive(), "tallyd died on a bad file at SIGHUP: %s"
          % d.stderr()[-500:])
    eq(max_age(), 9, "max-age after SIGHUP with a bad file")
    check("%s:3:" % cfg in d.stderr(), "the bad line is not reported: %r"
          % d.stderr()[-500:])
    c = d.hit("/hup")
    eq(c["page"]["views"], 2, "page.views across reloads")


if __name__ == "__main__":
    harness.main(globals())
