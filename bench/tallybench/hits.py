"""A Python client that sends many hits fast: several keep-alive
connections, each in its own thread, pipelining. wrk measures; this one
checks every answer, which wrk cannot do cheaply."""

import re
import socket
import threading
import time

import harness

from .common import BenchError


def _tally():
    return {"sent": 0, "ok": 0, "counted": 0, "bad": 0, "errors": []}


class HitClient:
    """Sends GET requests over `conns` keep-alive connections, pipelining
    up to `depth` requests per connection; or, with close, each request
    on a new connection of its own ("Connection: close"). Checks that
    every answer is a 200 with "counted":true."""

    def __init__(self, port, conns=4, depth=32, timeout=120, close=False):
        self.port, self.conns, self.depth = port, conns, depth
        self.timeout, self.close = timeout, close
        if close:
            self.depth = 1

    def request(self, target):
        return ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: %s\r\n"
                "Accept: application/json\r\n%s\r\n" % (
                    target, self.port, harness.BROWSER_UA,
                    "Connection: close\r\n" if self.close else "")).encode()

    def run(self, targets):
        """Sends every target once; returns the sums of all connections
        and the seconds it took."""
        chunks = [targets[i::self.conns] for i in range(self.conns)]
        results = [None] * self.conns
        threads = [threading.Thread(target=self._worker,
                                    args=(chunks[i], results, i))
                   for i in range(self.conns)]
        t = time.monotonic()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        tot = _tally()
        for r in results:
            for k in ("sent", "ok", "counted", "bad"):
                tot[k] += r[k]
            tot["errors"] += r["errors"]
        tot["seconds"] = time.monotonic() - t
        return tot

    def _connect(self):
        sock = socket.create_connection(("127.0.0.1", self.port),
                                        timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    @staticmethod
    def _answer(buf):
        """The first whole answer in buf: (status, body, rest of buf), or
        None while it is incomplete."""
        head_end = buf.find(b"\r\n\r\n")
        if head_end < 0:
            return None
        head = buf[:head_end].decode("latin-1")
        m = re.search(r"(?im)^content-length:\s*(\d+)", head)
        end = head_end + 4 + (int(m.group(1)) if m else 0)
        if len(buf) < end:
            return None
        return int(head.split(" ", 2)[1]), buf[head_end + 4:end], buf[end:]

    @staticmethod
    def _note(r, status, body):
        if status == 200:
            r["ok"] += 1
            if b'"counted":true' in body:
                r["counted"] += 1
        else:
            r["bad"] += 1
            if len(r["errors"]) < 3:
                r["errors"].append("%d %s" % (status, body[:200]))

    def _batch(self, sock, buf, batch, r):
        """Sends batch, reads its answers: (answers read, rest of buf).
        Fewer answers than requests: the server closed the connection."""
        sock.sendall(b"".join(self.request(t) for t in batch))
        got = 0
        while got < len(batch):
            a = self._answer(buf)
            if a is not None:
                status, body, buf = a
                self._note(r, status, body)
                got += 1
                continue
            chunk = sock.recv(262144)
            if not chunk:
                break
            buf += chunk
        return got, buf

    def _worker(self, targets, results, idx):
        r = results[idx] = _tally()
        sock, buf = None, b""
        i = reconnects = 0
        try:
            while i < len(targets):
                if sock is None:
                    sock, buf = self._connect(), b""
                batch = targets[i:i + self.depth]
                got, buf = self._batch(sock, buf, batch, r)
                r["sent"] += got
                i += got
                if self.close and got == len(batch):
                    sock.close()
                    sock = None
                elif got < len(batch):
                    # The server closed the connection: resend the rest.
                    sock.close()
                    sock = None
                    reconnects += 1
                    if reconnects > 100:
                        raise BenchError("connection closed over and over")
        except (OSError, BenchError) as e:
            r["errors"].append(str(e))
        finally:
            if sock is not None:
                sock.close()
