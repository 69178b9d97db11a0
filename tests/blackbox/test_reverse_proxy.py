#!/usr/bin/env python3
"""tallyd behind a real nginx, configured as doc/reverse-proxy.md says: the
nginx block of that page is taken from the page itself (only its listen
line and upstream port are changed), and the trusted_proxies line from the
page goes into tallyd's configuration. Then visitors behind the proxy are
told apart, /metrics is not open to them, the front page's snippet names
the proxy's address with its port, and without the line tallyd warns once.

Skipped (77) without nginx (Debian nginx-light)."""

import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (BROWSER_UA, Daemon, Skip, check, eq,  # noqa: E402
                     free_port, mkdtemp, write_file)

HERE = os.path.dirname(os.path.abspath(__file__))
DOC = os.path.join(HERE, "..", "..", "doc", "reverse-proxy.md")
NGINX = None


def setup():
    global NGINX
    NGINX = shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
    if NGINX is None:
        raise Skip("nginx is not installed (apt install nginx-light)")


def doc_block(lang):
    """The first ```lang block of doc/reverse-proxy.md."""
    with open(DOC, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"```%s\n(.*?)```" % re.escape(lang), text, re.S)
    check(m is not None, "doc/reverse-proxy.md has no %s block" % lang)
    return m.group(1)


def trusted_line():
    block = doc_block("ini")
    line = [ln for ln in block.splitlines()
            if ln.startswith("trusted_proxies")]
    eq(len(line), 1, "trusted_proxies lines in the doc's first ini block")
    return line[0]


class Nginx:
    """nginx in the foreground with the doc's server block."""

    def __init__(self, upstream_port):
        self.dir = mkdtemp("tally-nginx-")
        self.port = free_port()
        server = doc_block("nginx")
        server = re.sub(r"listen [^;]*;", "listen 127.0.0.1:%d;" % self.port,
                        server)
        server = server.replace("127.0.0.1:8080",
                                "127.0.0.1:%d" % upstream_port)
        d = self.dir
        conf = write_file(os.path.join(d, "nginx.conf"), """
daemon off;
master_process off;
worker_processes 1;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %(d)s/body;
    proxy_temp_path %(d)s/proxy;
    fastcgi_temp_path %(d)s/fastcgi;
    uwsgi_temp_path %(d)s/uwsgi;
    scgi_temp_path %(d)s/scgi;
%(server)s
}
""" % {"d": d, "server": server})
        self.proc = subprocess.Popen([NGINX, "-c", conf, "-p", d],
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while True:
            try:
                st, _, _ = self.request("GET", "/healthz")
                if st == 200:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise harness.Failure("nginx exited: %r" %
                                      self.proc.stderr.read())
            check(time.monotonic() < deadline, "nginx did not come up")
            time.sleep(0.05)

    def request(self, method, target, headers=None):
        h = {"User-Agent": BROWSER_UA}
        h.update(headers or {})
        return harness.request(self.port, method, target, h)

    def hit(self, path, client):
        st, _, body = self.request("GET", "/hit?path=" + path,
                                   {"X-Forwarded-For": client})
        eq(st, 200, "hit through nginx")
        return harness.parse_json(body)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def tallyd_with(conf_text):
    conf = write_file(os.path.join(mkdtemp(), "tallyd.conf"), conf_text)
    return Daemon(["--config", conf])


def test_the_documented_setup_tells_visitors_apart():
    d = tallyd_with("[server]\n%s\n" % trusted_line())
    n = Nginx(d.port)
    try:
        # Two visitors with one User-Agent, on two addresses: the
        # client's own X-Forwarded-For stands for the address nginx
        # would see, and nginx appends the peer it saw (loopback).
        a = n.hit("/proxied", "198.51.100.1")
        b = n.hit("/proxied", "198.51.100.2")
        eq(a["counted"], True, "first visitor counted")
        eq(b["counted"], True, "second visitor counted")
        eq(b["page"]["visitors"], 2, "visitors behind the proxy")
        # Neither of them is an admin.
        st, _, _ = n.request("GET", "/metrics",
                             {"X-Forwarded-For": "198.51.100.1"})
        eq(st, 403, "/metrics for a visitor behind the proxy")
        # The front page writes the proxy's address, port included.
        st, _, body = n.request("GET", "/")
        eq(st, 200, "front page through nginx")
        want = "http://127.0.0.1:%d/tally.js" % n.port
        check(want.encode() in body,
              "the snippet does not name %s" % want)
        check(b"ignoring forwarding headers" not in
              d.stderr().encode(), "a warning with the proxy trusted")
    finally:
        n.stop()


def test_without_the_line_tallyd_warns_once():
    d = tallyd_with("[server]\n")
    n = Nginx(d.port)
    try:
        a = n.hit("/proxied", "198.51.100.1")
        b = n.hit("/proxied", "198.51.100.2")
        eq(b["page"]["visitors"], 1,
           "visitors without trusted_proxies (all look like nginx)")
        eq(a["counted"], True, "first hit counted")
        deadline = time.monotonic() + 3
        while "trusted_proxies" not in d.stderr():
            check(time.monotonic() < deadline, "no warning naming "
                  "trusted_proxies: %r" % d.stderr())
            time.sleep(0.05)
        eq(d.stderr().count("ignoring forwarding headers"), 1,
           "warnings about forwarding headers")
    finally:
        n.stop()


if __name__ == "__main__":
    harness.main(globals(), setup)
