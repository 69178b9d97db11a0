#!/usr/bin/env python3
"""The shared store's flush whose answer is lost: between tallyd and
PostgreSQL, a proxy lets a flush reach the database and cuts the
connection before its answer comes back. The flush counted, tallyd
cannot know it; the next one, with the batch put back, must count only
what had not counted (the ledger tells), and every visitor once."""

import os
import select
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import pgcluster  # noqa: E402
from harness import Daemon, check, eq  # noqa: E402


class CuttingProxy:
    """Forwards a loopback port to the cluster. Once armed, the next
    flush statement (the one that writes the ledger) goes through and
    its answer is dropped with the connection."""

    def __init__(self, target_port):
        self.target = target_port
        self.armed = threading.Event()
        self.cuts = 0
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._pipe, args=(c,),
                             daemon=True).start()

    def _pipe(self, client):
        server = socket.create_connection(("127.0.0.1", self.target))
        cut = False
        try:
            while True:
                r, _, _ = select.select([client, server], [], [])
                if client in r:
                    d = client.recv(65536)
                    if not d:
                        return
                    if self.armed.is_set() and b"tally_ledger AS l" in d:
                        self.armed.clear()
                        cut = True
                    server.sendall(d)
                if server in r:
                    d = server.recv(65536)
                    if not d:
                        return
                    if cut:
                        self.cuts += 1
                        return
                    client.sendall(d)
        finally:
            client.close()
            server.close()


UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like "
      "Gecko) Chrome/120.0 Safari/537.36 v%d")


def hit(d, n):
    d.hit("/x", ua=UA % n)


def ctl_stats(url):
    rc, out, err = harness.run_tallyctl("--store", url, "--json", "stats")
    eq(rc, 0, "tallyctl stats: %s" % err)
    import json
    return json.loads(out)


def test_lost_answer_counts_once():
    c = pgcluster.cluster()
    proxy = CuttingProxy(c.port)
    url = "postgresql://%s@127.0.0.1:%d/%s?application_name=cut" % (
        pgcluster.USER, proxy.port, pgcluster.DB)
    d = Daemon(["--store", url, "--commit-interval", "300ms"])
    for n in range(5):
        hit(d, n)
    time.sleep(1.0)
    proxy.armed.set()
    for n in (0, 1, 5, 6, 7):     # two returning visitors, three new
        hit(d, n)
    deadline = time.monotonic() + 10
    while proxy.cuts == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    eq(proxy.cuts, 1, "flushes cut")
    for n in (8, 9):
        hit(d, n)
    time.sleep(2.0)
    s = ctl_stats(c.url())
    # Without the ledger, the cut flush's 5 views would count twice.
    eq(s["today"], {"views": 12, "visitors": 10}, "counts in the database")
    check("commit failed" in d.stderr(), "the cut was noticed: %r"
          % d.stderr()[-500:])
    d.stop()


if __name__ == "__main__":
    harness.main(globals(), setup=pgcluster.need_postgres)
