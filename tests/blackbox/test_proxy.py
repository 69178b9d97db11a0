#!/usr/bin/env python3
"""The client behind proxies (forwarding headers), tallyd's listening
sockets, and connection slots: the real tallyd over HTTP."""

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (BROWSER_UA, Daemon, check, check_counts_shape,  # noqa: E402
                     check_json_error, eq, parse_json, parse_raw)

PUBLIC = "203.0.113.9"


def raw_get(d, target, header_lines):
    """GET with header lines given as (name, value) pairs, repeats kept
    (http.client cannot send a header twice)."""
    req = "GET %s HTTP/1.1\r\nHost: t\r\nUser-Agent: %s\r\n" % (
        target, BROWSER_UA)
    for k, v in header_lines:
        req += "%s: %s\r\n" % (k, v)
    req += "Connection: close\r\n\r\n"
    st, hd, body = parse_raw(d.raw(req.encode("latin-1"), wait_close=True))
    check(st is not None, "no answer to %r" % req[:200])
    return st, hd, body


def metrics_status(d, header_lines):
    return raw_get(d, "/metrics", header_lines)[0]


def proxied(extra=()):
    return Daemon(["--trusted-proxies", "127.0.0.1"] + list(extra))


# ------------------------------------------------------------ the chain

def test_long_chain_is_walked_from_the_right():
    # The client forges 64 loopback hops; the proxy appends the real
    # address. The client is the rightmost hop, not any of the forged.
    d = proxied()
    for forged in (64, 100, 126):
        chain = ", ".join(["127.0.0.1"] * forged + [PUBLIC])
        st, hd, body = raw_get(d, "/metrics", [("X-Forwarded-For", chain)])
        check_json_error(st, hd, body, 403,
                         "/metrics for a %d-hop chain ending in a public "
                         "address" % (forged + 1))
    # All of them trusted up to the left end: the leftmost is the client.
    chain = ", ".join(["127.0.0.1"] * 128)
    eq(metrics_status(d, [("X-Forwarded-For", chain)]), 200,
       "/metrics for 128 loopback hops")


def test_chain_over_the_limit_is_refused():
    d = proxied()
    before = d.count("/long")
    for n in (129, 500):
        chain = ", ".join(["127.0.0.1"] * (n - 1) + [PUBLIC])
        st, hd, body = raw_get(d, "/metrics", [("X-Forwarded-For", chain)])
        check_json_error(st, hd, body, 400, "/metrics with %d hops" % n)
        st, hd, body = raw_get(d, "/hit?path=/long",
                               [("X-Forwarded-For", chain)])
        check_json_error(st, hd, body, 400, "/hit with %d hops" % n)
    # Over two header lines: the joined list is what counts.
    half = ", ".join(["127.0.0.1"] * 70)
    st, hd, body = raw_get(d, "/metrics", [("X-Forwarded-For", half),
                                           ("X-Forwarded-For", half)])
    check_json_error(st, hd, body, 400, "/metrics with 2 x 70 hops")
    eq(d.count("/long")["page"], before["page"], "counts after refusals")
    d.check_alive()


def test_every_header_line_is_read():
    # HAProxy adds a line, nginx appends to the last: the rightmost
    # element of the last line is the nearest hop.
    d = proxied(["--admin-allow", "127.0.0.0/8"])
    st, hd, body = raw_get(d, "/metrics", [("X-Forwarded-For", "127.0.0.1"),
                                           ("X-Forwarded-For", PUBLIC)])
    check_json_error(st, hd, body, 403, "/metrics, public address on the "
                     "second line")
    # 127.0.0.2 is an admin but not a trusted proxy: the client.
    eq(metrics_status(d, [("X-Forwarded-For", PUBLIC),
                          ("X-Forwarded-For", "127.0.0.2")]), 200,
       "/metrics, admin address on the second line")
    eq(metrics_status(d, [("X-Forwarded-For", "%s, 127.0.0.1" % PUBLIC),
                          ("X-Forwarded-For", "127.0.0.2")]), 200,
       "/metrics, admin address ends the second line")
    # Visitors: the second line's address is the visitor.
    d2 = proxied()
    seen = []
    for lines in ([("X-Forwarded-For", "198.51.100.1")],
                  [("X-Forwarded-For", "198.51.100.1"),
                   ("X-Forwarded-For", "198.51.100.2")],
                  [("X-Forwarded-For", "198.51.100.2")]):
        st, hd, body = raw_get(d2, "/hit?path=/lines", lines)
        eq(st, 200, "hit status")
        c = check_counts_shape(parse_json(body), counted=True)
        seen.append(c["today"]["visitors"])
    eq(seen, [1, 2, 2], "visitors after each hit")


UNNAMED_FORWARDED = ["for=unknown", "for=_hidden", 'for="_x"',
                     "proto=https", "for=garbage!", "for=127.0.0.2, for=unknown",
                     'for="[::1', "for="]
UNNAMED_XFF = ["unknown", "garbage", "127.0.0.2, _hidden", "1.2.3.4.5", "", ","]


def test_unnamed_client_is_never_admin():
    d = proxied(["--client-ip-header", "Forwarded"])
    for v in UNNAMED_FORWARDED:
        st, hd, body = raw_get(d, "/metrics", [("Forwarded", v)])
        check_json_error(st, hd, body, 403, "/metrics with Forwarded: %s" % v)
    # A named loopback client behind the proxy still is.
    eq(metrics_status(d, [("Forwarded", "for=127.0.0.2")]), 200,
       "/metrics for 127.0.0.2")
    d2 = proxied()
    for v in UNNAMED_XFF:
        st, hd, body = raw_get(d2, "/metrics", [("X-Forwarded-For", v)])
        check_json_error(st, hd, body, 403,
                         "/metrics with X-Forwarded-For: %s" % v)
    # The proxy's own request (no header) is the proxy's.
    eq(metrics_status(d2, []), 200, "/metrics from the proxy itself")


def test_unnamed_clients_are_one_client():
    d = Daemon(["--trusted-proxies", "127.0.0.1", "--client-ip-header",
                "Forwarded", "--rate-limit", "3"], rate_limit=False)
    got = []
    for v in UNNAMED_FORWARDED:
        c = check_counts_shape(d.hit("/u", headers={"Forwarded": v}))
        got.append((c["counted"], c.get("reason"), c["today"]["visitors"]))
    want = [(True, None, 1)] * 3 + [(False, "rate", 1)] * (
        len(UNNAMED_FORWARDED) - 3)
    eq(got, want, "unnamed clients share one visitor and one allowance")
    # ... and are not the proxy: its own request is another client.
    c = check_counts_shape(d.hit("/u"), counted=True)
    eq(c["today"]["visitors"], 2, "visitors after the proxy's own hit")
    c = check_counts_shape(d.hit("/u", headers={"Forwarded": "for=" + PUBLIC}),
                           counted=True)
    eq(c["today"]["visitors"], 3, "visitors after a named client")


def test_untrusted_forwarding_headers_warn_once():
    d = Daemon()
    for h in ({"X-Forwarded-For": PUBLIC}, {"Forwarded": "for=" + PUBLIC},
              {"X-Real-IP": PUBLIC}, {"X-Forwarded-For": PUBLIC}):
        check_counts_shape(d.hit("/w", headers=h))
    d.check_alive()
    log = d.stderr()
    eq(log.count("trusted_proxies"), 1,
       "warnings naming trusted_proxies in %r" % log[-2000:])
    check(PUBLIC not in log, "the log names the client's address")
    # Headers from a trusted proxy: no warning.
    d2 = proxied()
    d2.hit("/w", headers={"X-Forwarded-For": PUBLIC})
    d2.check_alive()
    eq(d2.stderr().count("trusted_proxies"), 0, "warnings, trusted proxy")


# ------------------------------------------------------------ own address

def snippet_base(body):
    text = body.decode("utf-8")
    i = text.find('/tally.js"&gt;')
    check(i > 0, "no snippet")
    j = text.rfind('src="', 0, i)
    return text[j + 5:i]


def test_front_page_uses_forwarded_host_and_proto():
    d = proxied()
    st, _, body = d.request("GET", "/", {
        "Host": "127.0.0.1:8080",
        "X-Forwarded-For": PUBLIC,
        "X-Forwarded-Host": "stats.example.org:8443",
        "X-Forwarded-Proto": "https"})
    eq(st, 200, "status of /")
    eq(snippet_base(body), "https://stats.example.org:8443",
       "address in the snippet")
    # Two proxies: the nearest one's word, the last element.
    st, _, body = raw_get(d, "/", [("X-Forwarded-Host", "evil.example"),
                                   ("X-Forwarded-Host", "stats.example.org"),
                                   ("X-Forwarded-Proto", "http, https")])
    eq(snippet_base(body), "https://stats.example.org", "two lines")
    d2 = proxied(["--client-ip-header", "Forwarded"])
    st, _, body = d2.request("GET", "/", {
        "Host": "127.0.0.1:8080",
        "Forwarded": 'for=%s;host="stats.example.org:8443";proto=https'
                     % PUBLIC})
    eq(snippet_base(body), "https://stats.example.org:8443",
       "address from Forwarded")
    # From a peer that is not trusted, only Host counts.
    d3 = Daemon()
    st, _, body = d3.request("GET", "/", {
        "Host": "direct.example:8080",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Proto": "https"})
    eq(snippet_base(body), "http://direct.example:8080",
       "address from an untrusted peer")


# ------------------------------------------------------------ listening

def test_second_daemon_on_a_used_port_fails():
    d = Daemon(["--threads", "2"])
    before = check_counts_shape(d.hit("/first"), counted=True)
    try:
        rc, out, err = harness.run_tallyd(
            "--listen", "127.0.0.1:%d" % d.port, "--threads", "2",
            "--data", os.path.join(harness.mkdtemp(), "data"), timeout=15)
    except subprocess.TimeoutExpired:
        raise harness.Failure("a second tallyd on port %d kept running"
                              % d.port)
    check(rc != 0, "second tallyd exited %d" % rc)
    check("address in use" in err.lower(),
          "no 'address in use' in %r" % err[-1000:])
    check("127.0.0.1:%d" % d.port in err, "address not named in %r"
          % err[-1000:])
    # The first one has every hit.
    for _ in range(10):
        d.hit("/first")
    eq(d.count("/first")["page"]["views"], before["page"]["views"] + 10,
       "views of the first daemon")


def test_port_zero_is_one_port_for_all_threads():
    data = os.path.join(harness.mkdtemp(), "data")
    errpath = os.path.join(harness.mkdtemp(), "stderr")
    with open(errpath, "wb") as errf:
        p = subprocess.Popen([harness.tallyd_path(), "--listen",
                              "127.0.0.1:0", "--threads", "2", "--data", data],
                             stdin=subprocess.DEVNULL, stdout=errf,
                             stderr=errf, preexec_fn=harness._pdeathsig)
    try:
        port = None
        deadline = time.monotonic() + 10
        while port is None and time.monotonic() < deadline:
            check(p.poll() is None, "tallyd exited: %r"
                  % open(errpath).read()[-1000:])
            log = open(errpath, encoding="utf-8", errors="replace").read()
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", log)
            if m and "ready" in log:
                port = int(m.group(1))
            time.sleep(0.05)
        check(port is not None and port != 0,
              "no bound port in the log: %r" % log[-1000:])
        eq(len(re.findall(r"listening on", log)), 1, "listening lines")
        served = 0
        for _ in range(40):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            try:
                c.request("GET", "/healthz")
                r = c.getresponse()
                served += r.status == 200 and r.read() == b"ok\n"
            finally:
                c.close()
        eq(served, 40, "requests served on port %d" % port)
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            eq(p.wait(10), 0, "exit code")
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


# ------------------------------------------------------------ connection slots

KEEPALIVE_REQ = b"GET /healthz HTTP/1.1\r\nHost: t\r\nUser-Agent: x\r\n\r\n"


def keepalive_conn(d, timeout=5):
    """A connection that has had one answer and stays open."""
    s = socket.create_connection(("127.0.0.1", d.port), timeout=timeout)
    eq(ask(s), 200, "status on a new keep-alive connection")
    return s


def ask(s):
    """One request on an open connection: the status, or None when the
    connection was closed instead."""
    try:
        s.sendall(KEEPALIVE_REQ)
        buf = b""
        while not harness._response_complete(buf):
            chunk = s.recv(4096)
            if not chunk:
                return None
            buf += chunk
    except (ConnectionResetError, BrokenPipeError):
        return None
    return parse_raw(buf)[0]


def closed_by_peer(s, timeout=2.0):
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_idle_keepalive_connections_make_room():
    d = Daemon(["--threads", "1", "--max-connections", "8",
                "--idle-timeout", "30s"])
    time.sleep(0.2)  # the start-up probe's connection is gone
    conns = [keepalive_conn(d) for _ in range(8)]
    try:
        t0 = time.monotonic()
        st, _, body = d.request("GET", "/healthz", timeout=5)
        took = time.monotonic() - t0
        eq((st, body), (200, b"ok\n"), "a new client at max_connections")
        check(took < 1.0, "the new client waited %.1f s" % took)
        # The one that waited longest made room; the newest still works.
        check(closed_by_peer(conns[0]), "the oldest idle one is still open")
        eq(ask(conns[-1]), 200, "status on the newest idle connection")
        # Again, with all eight slots held.
        st, _, _ = d.request("GET", "/healthz", timeout=5)
        eq(st, 200, "a second new client")
    finally:
        for s in conns:
            s.close()
    d.check_alive()


def test_connections_per_address():
    d = Daemon(["--max-connections-per-address", "3"])
    time.sleep(0.2)
    conns = [keepalive_conn(d) for _ in range(3)]
    try:
        extra = socket.create_connection(("127.0.0.1", d.port), timeout=5)
        try:
            eq(ask(extra), None, "a 4th connection from one address")
        finally:
            extra.close()
        for i, s in enumerate(conns):
            eq(ask(s), 200, "status on connection %d of 3" % (i + 1))
        # A slot given back is free again.
        conns.pop().close()
        deadline = time.monotonic() + 5
        while True:
            s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
            st = ask(s)
            s.close()
            if st == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        eq(st, 200, "a new connection once one was closed")
    finally:
        for s in conns:
            s.close()
    # 0: no limit.
    d2 = Daemon(["--max-connections-per-address", "0"])
    many = [keepalive_conn(d2) for _ in range(10)]
    for s in many:
        s.close()


if __name__ == "__main__":
    harness.main(globals())
