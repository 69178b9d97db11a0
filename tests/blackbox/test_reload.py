#!/usr/bin/env python3
"""SIGHUP: tallyd re-reads its configuration file. A good file takes effect
(new sites, origins, labels, limits), a bad one is reported as FILE:LINE:
message and the running configuration is kept, settings that need a
restart are logged as such, and flags still win over the file."""

import os
import re
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (BROWSER_UA, BROWSER_UA2, Daemon, check, eq,  # noqa: E402
                     check_json_error, mkdtemp, write_file)


class FileDaemon(Daemon):
    """A tallyd whose listen address comes from its configuration file
    (the harness passes --listen, which would win over the file)."""

    def __init__(self, conf_text, args=(), **kw):
        self.conf = os.path.join(mkdtemp(), "tallyd.conf")
        self.conf_text = conf_text
        Daemon.__init__(self, args=args, **kw)

    def command(self):
        write_file(self.conf, self.conf_text.format(port=self.port))
        cmd = [harness.tallyd_path(), "--config", self.conf,
               "--data", self.data]
        if self.rate_limit:
            cmd += ["--rate-limit", "0"]
        return cmd + self.args


def reload_with(d, conf, text, expect=None, timeout=5.0, settle=0.1):
    """Writes text to conf, sends SIGHUP and waits until stderr shows the
    outcome: "configuration reloaded", or expect (a regex)."""
    before = len(d.stderr())
    write_file(conf, text)
    d.proc.send_signal(signal.SIGHUP)
    want = re.compile(expect or r"configuration reloaded")
    deadline = time.monotonic() + timeout
    while True:
        new = d.stderr()[before:]
        if want.search(new):
            # What else it logs comes in the same breath.
            time.sleep(settle)
            return d.stderr()[before:]
        check(d.alive(), "tallyd died on SIGHUP: %s" % d.stderr()[-2000:])
        if time.monotonic() > deadline:
            raise harness.Failure("after SIGHUP, no %r in stderr within "
                                  "%.0f s; new stderr: %r"
                                  % (want.pattern, timeout, new[-2000:]))
        time.sleep(0.02)


def status_of(d, target, headers=None):
    h = {"User-Agent": BROWSER_UA}
    h.update(headers or {})
    st, _, body = d.request("GET", target, h)
    return st, body


def svg_text(d, site):
    st, hd, body = d.request(
        "GET", "/counter.svg?site=%s&path=/&count=0&show=today,total,page"
        % site, {"User-Agent": BROWSER_UA})
    eq(st, 200, "counter.svg of %s" % site)
    return body.decode("utf-8")


CONF1 = """\
[count]
rate_limit = 0

[site blog]
origins = https://blog.example
labels = today:Today, total:Total, page:Views
"""

CONF2 = """\
[count]
rate_limit = 2

[site blog]
origins = https://blog.example
labels = today:Bu gün, total:Ümumi, page:Giriş

[site x]
origins = https://x.example
labels = today:Heute, total:Gesamt, page:Aufrufe
"""


def test_good_file_adds_a_site():
    d = Daemon(["--config", write_file(os.path.join(mkdtemp(), "c"), CONF1)],
               rate_limit=False)
    conf = d.args[1]
    st, hd, body = d.request("GET", "/count?site=x",
                             {"User-Agent": BROWSER_UA})
    check_json_error(st, hd, body, 404, "site x before the reload")
    out = reload_with(d, conf, CONF2)
    check("restart" not in out, "a reload without listen/data/threads "
          "changes asks for a restart: %r" % out)
    st, body = status_of(d, "/count?site=x")
    eq(st, 200, "GET /count?site=x after the reload (body %r)" % body[:200])
    # Its origins: counted from https://x.example, not from elsewhere.
    c = d.hit("/a", site="x", headers={"Origin": "https://x.example"})
    eq(c["counted"], True, "a hit on x from its origin")
    c = d.hit("/a", site="x", headers={"Origin": "https://evil.example"})
    eq((c["counted"], c.get("reason")), (False, "origin"),
       "a hit on x from another origin")
    # Without site=, the Origin picks x.
    c = d.hit("/b", headers={"Origin": "https://x.example"})
    eq(c["site"], "x", "the site picked by Origin")
    # The new labels, on x and the changed ones of blog.
    check("Heute" in svg_text(d, "x"), "x's labels are not in its badge")
    svg = svg_text(d, "blog")
    check("Ümumi" in svg and "Giriş" in svg, "blog's new labels are not "
          "in its badge: %r" % svg[:500])
    d.check_alive()


def test_good_file_changes_limits():
    d = Daemon(["--config", write_file(os.path.join(mkdtemp(), "c"), CONF1)],
               rate_limit=False)
    for _ in range(4):
        eq(d.hit("/r", site="blog",
                 headers={"Origin": "https://blog.example"})["counted"],
           True, "counted with rate_limit = 0")
    reload_with(d, d.args[1], CONF2)
    got = [d.hit("/r", site="blog", ua=BROWSER_UA2,
                 headers={"Origin": "https://blog.example"})
           for _ in range(3)]
    eq([(c["counted"], c.get("reason")) for c in got],
       [(True, None), (True, None), (False, "rate")],
       "hits of a new visitor with rate_limit = 2")


def test_bad_file_keeps_the_old_configuration():
    d = Daemon(["--config", write_file(os.path.join(mkdtemp(), "c"), CONF2)],
               rate_limit=False)
    conf = d.args[1]
    d.hit("/k", site="x", headers={"Origin": "https://x.example"})
    bad = CONF1 + "[site y]\norigins = https://y.example\nlabels = oops\n"
    line = bad.split("\n").index("labels = oops") + 1
    out = reload_with(d, conf, bad, expect=re.escape(conf) + r":\d+: ")
    m = re.search(re.escape(conf) + r":(\d+): (.+)", out)
    eq(int(m.group(1)), line, "the line named in %r" % m.group(0))
    check(m.group(2).strip(), "no message after FILE:LINE:")
    check("configuration reloaded" not in out,
          "a bad file was reported as reloaded: %r" % out)
    check(d.alive(), "tallyd died on a bad file")
    # Still the old configuration: x is there, y is not, rate_limit 2.
    st, body = status_of(d, "/count?site=x")
    eq(st, 200, "site x after a bad reload (body %r)" % body[:200])
    st, _ = status_of(d, "/count?site=y")
    eq(st, 404, "site y of the bad file")
    check("Heute" in svg_text(d, "x"), "x lost its labels")
    got = [d.hit("/q", site="blog", ua=BROWSER_UA2,
                 headers={"Origin": "https://blog.example"})["counted"]
           for _ in range(3)]
    eq(got, [True, True, False], "rate_limit 2 still applies")
    d.check_alive()


def test_unreadable_file_keeps_the_old_configuration():
    d = Daemon(["--config", write_file(os.path.join(mkdtemp(), "c"), CONF2)],
               rate_limit=False)
    conf = d.args[1]
    os.rename(conf, conf + ".gone")
    before = len(d.stderr())
    d.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while conf not in d.stderr()[before:]:
        check(time.monotonic() < deadline, "no message naming %s after "
              "SIGHUP with the file gone: %r" % (conf, d.stderr()[before:]))
        time.sleep(0.02)
    check(d.alive(), "tallyd died when its file was gone")
    st, _ = status_of(d, "/count?site=x")
    eq(st, 200, "site x with the file gone")


def test_several_errors_are_all_reported():
    d = Daemon(["--config", write_file(os.path.join(mkdtemp(), "c"), CONF1)])
    conf = d.args[1]
    bad = "[count]\nrate_limit = many\n[nowhere]\nkey = 1\n"
    out = reload_with(d, conf, bad, expect=re.escape(conf) + r":\d+: ")
    check(re.search(re.escape(conf) + r":2: .*rate_limit", out),
          "want %s:2: ... rate_limit ..., got %r" % (conf, out))
    check(re.search(re.escape(conf) + r":3: unknown section", out),
          "want %s:3: unknown section ..., got %r" % (conf, out))
    d.check_alive()


def test_listen_change_needs_a_restart():
    text = "[server]\nlisten = 127.0.0.1:{port}\n"
    d = FileDaemon(text)
    other = harness.free_port()
    out = reload_with(d, d.conf, "[server]\nlisten = 127.0.0.1:%d\n" % other,
                      expect=r"listen")
    check(re.search(r"listen.*restart", out),
          "a listen change is not logged as needing a restart: %r" % out)
    # It keeps serving where it listened; the new address is not bound.
    d.check_alive()
    try:
        import socket
        s = socket.create_connection(("127.0.0.1", other), timeout=1)
        s.close()
        raise harness.Failure("tallyd bound the new listen address on "
                              "SIGHUP")
    except OSError:
        pass


def test_threads_change_needs_a_restart():
    d = FileDaemon("[server]\nlisten = 127.0.0.1:{port}\nthreads = 1\n")
    out = reload_with(
        d, d.conf, "[server]\nlisten = 127.0.0.1:%d\nthreads = 2\n" % d.port,
        expect=r"threads")
    check(re.search(r"threads.*restart", out),
          "a threads change is not logged as needing a restart: %r" % out)
    check(not re.search(r"listen", out),
          "an unchanged listen is logged as changed: %r" % out)
    d.check_alive()


def test_same_file_reloads_quietly():
    d = FileDaemon("[server]\nlisten = 127.0.0.1:{port}\n" + CONF1)
    out = reload_with(d, d.conf, "[server]\nlisten = 127.0.0.1:%d\n%s"
                      % (d.port, CONF1))
    check("restart" not in out, "an unchanged file asks for a restart: %r"
          % out)


def test_flags_still_win_after_a_reload():
    # The harness passes --rate-limit 0; the file's rate_limit = 1 must
    # not take over on SIGHUP.
    d = Daemon(["--config", write_file(os.path.join(mkdtemp(), "c"),
                                       "[count]\nrate_limit = 0\n")])
    reload_with(d, d.args[1], "[count]\nrate_limit = 1\n")
    got = [d.hit("/f")["counted"] for _ in range(3)]
    eq(got, [True, True, True], "counted with --rate-limit 0 after reload")


def test_many_reloads_keep_working():
    # Config management may reload every few minutes for months: the
    # 400th reload must take effect like the first.
    d = Daemon(["--config", write_file(os.path.join(mkdtemp(), "c"), CONF1)])
    conf = d.args[1]
    for i in range(399):
        reload_with(d, conf, CONF1 + "\n# reload %d\n" % i, settle=0)
    out = reload_with(d, conf, CONF2)
    st, body = status_of(d, "/count?site=x")
    eq(st, 200, "site x after 400 reloads (body %r; stderr %r)"
       % (body[:200], out[-300:]))
    d.check_alive()


def test_counts_survive_reloads_under_load():
    d = Daemon(["--config", write_file(os.path.join(mkdtemp(), "c"), CONF1)])
    conf = d.args[1]
    stop = threading.Event()
    results = []

    def hammer(ua):
        while not stop.is_set():
            try:
                c = d.hit("/load", ua=ua)
                results.append(c["counted"])
            except Exception as e:  # recorded, judged below
                results.append(repr(e))

    threads = [threading.Thread(target=hammer, args=(ua,))
               for ua in (BROWSER_UA, BROWSER_UA2)]
    for t in threads:
        t.start()
    try:
        for i in range(20):
            write_file(conf, CONF1 if i % 2 else CONF2.replace(
                "rate_limit = 2", "rate_limit = 0"))
            d.proc.send_signal(signal.SIGHUP)
            time.sleep(0.03)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    bad = [r for r in results if r is not True]
    check(not bad, "%d of %d hits failed or were not counted during "
          "reloads, e.g. %r" % (len(bad), len(results), bad[:3]))
    check(len(results) > 20, "only %d hits during the reloads"
          % len(results))
    time.sleep(0.3)
    c = d.count("/load")
    eq(c["page"]["views"], len(results), "views of /load")
    d.check_alive()


if __name__ == "__main__":
    harness.main(globals())
