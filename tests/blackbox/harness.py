"""Black-box harness for tally: starts the real tallyd, talks HTTP to it,
runs tallyctl. Python 3 standard library only.

Environment: TALLYD and TALLYCTL hold the absolute paths of the binaries.

A test file defines functions named test_* and ends with
    if __name__ == "__main__":
        harness.main(globals())
Each case prints "ok NAME", "skip NAME: why" or "FAIL NAME: why"; the
process exits 0 when no case failed, 1 otherwise, 77 when every case was
skipped (meson's "skipped").
"""

import atexit
import datetime
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse

BROWSER_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
              "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36")
BROWSER_UA2 = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) "
               "Gecko/20100101 Firefox/128.0")

SKIP_EXIT = 77
COUNTS_KEYS = {"site", "path", "day", "page", "page_today", "today", "total",
               "counted"}

_daemons = []
_tempdirs = []


def tallyd_path():
    p = os.environ.get("TALLYD")
    if not p:
        here = os.path.dirname(os.path.abspath(__file__))
        p = os.path.join(here, "..", "..", "build", "tallyd")
    return os.path.abspath(p)


def tallyctl_path():
    p = os.environ.get("TALLYCTL")
    if not p:
        here = os.path.dirname(os.path.abspath(__file__))
        p = os.path.join(here, "..", "..", "build", "tallyctl")
    return os.path.abspath(p)


class Skip(Exception):
    """Raised by a case that cannot run here."""


class Failure(AssertionError):
    pass


# ---------------------------------------------------------------- asserts

def check(cond, msg):
    if not cond:
        raise Failure(msg)


def eq(got, want, what="value"):
    if got != want:
        raise Failure("%s: got %r, want %r" % (what, got, want))


def views(c, key):
    """c[key]["views"], asserting it is an int."""
    v = c[key]["views"]
    check(type(v) is int, "%s.views is not an integer: %r" % (key, v))
    return v


def visitors(c, key):
    v = c[key]["visitors"]
    check(type(v) is int, "%s.visitors is not an integer: %r" % (key, v))
    return v


def check_counts_shape(c, counted=None, reason=None):
    """Asserts c is a counts JSON object (doc/http.md, "Counts JSON")."""
    check(isinstance(c, dict), "counts JSON is not an object: %r" % (c,))
    keys = set(c)
    want = set(COUNTS_KEYS)
    if c.get("counted") is False:
        want.add("reason")
    eq(keys, want, "counts JSON keys")
    check(isinstance(c["site"], str), "site not a string: %r" % (c,))
    check(isinstance(c["path"], str), "path not a string: %r" % (c,))
    check(isinstance(c["day"], str) and len(c["day"]) == 10,
          "day not YYYY-MM-DD: %r" % (c["day"],))
    try:
        datetime.date.fromisoformat(c["day"])
    except ValueError:
        raise Failure("day not a date: %r" % (c["day"],))
    for k in ("page", "page_today", "today", "total"):
        check(isinstance(c[k], dict), "%s not an object: %r" % (k, c))
        eq(set(c[k]), {"views", "visitors"}, "keys of %s" % k)
        for n in ("views", "visitors"):
            v = c[k][n]
            check(type(v) is int and v >= 0,
                  "%s.%s not a non-negative integer: %r" % (k, n, v))
    check(type(c["counted"]) is bool, "counted not a bool: %r" % (c,))
    if counted is not None:
        eq(c["counted"], counted, "counted (%r)" % (c,))
    if reason is not None:
        eq(c.get("reason"), reason, "reason")
    return c


def check_json_error(status, headers, body, want_status, what=""):
    """Asserts an error answer: the status, JSON {"error": "..."}."""
    pre = (what + ": ") if what else ""
    if isinstance(want_status, (tuple, list, set)):
        check(status in want_status, "%sstatus %r, want one of %r; body %r"
              % (pre, status, sorted(want_status), body[:200]))
    else:
        check(status == want_status, "%sstatus %r, want %r; body %r"
              % (pre, status, want_status, body[:200]))
    ct = headers.get("content-type", "")
    check(ct.split(";")[0].strip().lower() == "application/json",
          "%sContent-Type %r, want application/json" % (pre, ct))
    try:
        j = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise Failure("%serror body is not JSON (%s): %r" % (pre, e, body[:200]))
    check(isinstance(j, dict), "%serror body not an object: %r" % (pre, j))
    eq(set(j), {"error"}, pre + "error body keys")
    check(isinstance(j["error"], str) and j["error"],
          "%serror message empty: %r" % (pre, j))
    return j


# ---------------------------------------------------------------- helpers

def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def mkdtemp(prefix="tally-test-"):
    d = tempfile.mkdtemp(prefix=prefix)
    _tempdirs.append(d)
    return d


def write_file(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def need_lmdb_tools(*tools):
    """Skips the test unless lmdb-utils' tools are there."""
    for t in tools or ("mdb_dump", "mdb_load"):
        if shutil.which(t) is None:
            raise Skip("%s not installed (Debian: lmdb-utils)" % t)


def mdb_dump(data):
    """mdb_dump -a of a store: every database, as text."""
    p = subprocess.run(["mdb_dump", "-a", data], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    eq(p.returncode, 0, "mdb_dump -a: %r" % p.stderr[:300])
    return p.stdout.decode("ascii")


def mdb_load(text):
    """mdb_load of a dump into a fresh data directory."""
    data = os.path.join(mkdtemp(), "data")
    os.makedirs(data)
    path = write_file(os.path.join(mkdtemp(), "dump.txt"), text)
    p = subprocess.run(["mdb_load", "-f", path, data],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    eq(p.returncode, 0, "mdb_load: %r" % p.stderr[:300])
    return data


def query(**params):
    """Builds a query string from keyword arguments, values None left out."""
    return urllib.parse.urlencode(
        [(k, v) for k, v in params.items() if v is not None],
        quote_via=urllib.parse.quote)


def utc_today():
    return datetime.datetime.now(datetime.timezone.utc).date().isoformat()


def _pdeathsig():
    # Kill the daemon if this test process dies without cleaning up.
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def faketime_env(when):
    """Environment that starts the clock at when ("YYYY-MM-DD hh:mm:ss",
    UTC) and lets it run. Monotonic clocks stay real, so that event-loop
    timers keep their pace."""
    return {
        "LD_PRELOAD": FAKETIME_LIB,
        "FAKETIME": "@" + when,
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "FAKETIME_DONT_RESET": "1",
        "ASAN_OPTIONS": "verify_asan_link_order=0",
        "TZ": "UTC",
    }


def run_tallyctl(*args, env=None, timeout=30, input=None):
    """Runs tallyctl; returns (exit code, stdout str, stderr str)."""
    e = dict(os.environ)
    if env:
        e.update(env)
    p = subprocess.run([tallyctl_path()] + [str(a) for a in args],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=e, timeout=timeout, input=input)
    return (p.returncode, p.stdout.decode("utf-8", "replace"),
            p.stderr.decode("utf-8", "replace"))


def run_tallyd(*args, env=None, timeout=15, cwd=None):
    """Runs tallyd to completion (for -n, --help, bad flags...)."""
    e = dict(os.environ)
    if env:
        e.update(env)
    p = subprocess.run([tallyd_path()] + [str(a) for a in args],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=e, timeout=timeout, cwd=cwd or mkdtemp(),
                       preexec_fn=_pdeathsig)
    return (p.returncode, p.stdout.decode("utf-8", "replace"),
            p.stderr.decode("utf-8", "replace"))


# ---------------------------------------------------------------- daemon

class Daemon:
    """One running tallyd on a free loopback port with its own data dir."""

    # /healthz answers that mean "up"; a subclass may accept 503 too.
    READY = (200,)

    # rate_limit=True turns every per-visitor and per-address limit off.
    def __init__(self, args=(), env=None, data=None, start=True,
                 rate_limit=True, timeout=10.0, keep=False, cwd=None):
        self.args = [str(a) for a in args]
        self.env = dict(env or {})
        self.data = data or os.path.join(mkdtemp(), "data")
        # Its working directory, which also holds its stderr.PORT.
        self.cwd = cwd or mkdtemp(prefix="tally-cwd-")
        self.rate_limit = rate_limit
        self.timeout = timeout
        self.proc = None
        self.port = None
        self.started_at = None
        self._errf = None
        self._errpath = None
        self.keep = keep  # True: outlives the case (killed at exit)
        _daemons.append(self)
        if start:
            self.start()

    # -- life cycle
    def command(self):
        cmd = [tallyd_path(), "--listen", "127.0.0.1:%d" % self.port,
               "--data", self.data]
        if self.rate_limit:
            cmd += ["--rate-limit", "0", "--rate-limit-address", "0",
                    "--new-visitors-per-address", "0"]
        return cmd + self.args

    def start(self):
        check(self.proc is None or self.proc.poll() is not None,
              "daemon already running")
        self.port = free_port()
        env = dict(os.environ)
        env.update(self.env)
        if "LD_PRELOAD" in env:
            # An AddressSanitizer build insists on coming first; a preloaded
            # libfaketime comes before it and is harmless.
            opts = env.get("ASAN_OPTIONS", "")
            if "verify_asan_link_order" not in opts:
                env["ASAN_OPTIONS"] = (opts + ":" if opts else "") + \
                    "verify_asan_link_order=0"
        self._errpath = os.path.join(self.cwd, "stderr.%d" % self.port)
        self._errf = open(self._errpath, "wb")
        self.started_at = time.time()
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                     stdout=self._errf, stderr=self._errf,
                                     env=env, cwd=self.cwd,
                                     preexec_fn=_pdeathsig)
        deadline = time.monotonic() + self.timeout
        last = None
        while True:
            rc = self.proc.poll()
            if rc is not None:
                raise Failure("tallyd exited with %d during startup: %s"
                              % (rc, self.stderr()[-2000:]))
            try:
                st, _, body = self.request("GET", "/healthz", timeout=2)
                if st in self.READY:
                    return self
                last = "healthz answered %d %r" % (st, body[:200])
            except OSError as e:
                last = repr(e)
            except http.client.HTTPException as e:
                last = repr(e)
            if time.monotonic() > deadline:
                self.kill9()
                raise Failure("tallyd not ready after %.0f s (%s); stderr: %s"
                              % (self.timeout, last, self.stderr()[-2000:]))
            time.sleep(0.02)

    def stderr(self):
        try:
            if self._errf:
                self._errf.flush()
            with open(self._errpath, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except (OSError, TypeError):
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Sends sig, waits for the exit, returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise Failure("tallyd did not exit within %.0f s of signal %d"
                              % (timeout, sig))
        rc = self.proc.returncode
        if self._errf:
            self._errf.close()
            self._errf = None
        return rc

    def kill9(self):
        return self.stop(signal.SIGKILL)

    def restart(self, sig=signal.SIGTERM):
        rc = self.stop(sig)
        self.start()
        return rc

    def check_alive(self):
        check(self.alive(), "tallyd died: %s" % self.stderr()[-2000:])
        st, _, body = self.request("GET", "/healthz")
        eq((st, body.strip()), (200, b"ok"), "healthz")

    # -- HTTP
    def connect(self, timeout=10):
        return http.client.HTTPConnection("127.0.0.1", self.port,
                                          timeout=timeout)

    def request(self, method, target, headers=None, body=None, timeout=10):
        """One request on a fresh connection: (status, headers, body)."""
        return request(self.port, method, target, headers, body, timeout)

    def hit(self, path=None, site=None, ua=BROWSER_UA, method="GET",
            headers=None, form=False, expect=200, route="/hit"):
        """Counts a page view, returns the parsed counts JSON.

        path is given as a URL path (as location.pathname gives it); GET
        puts it in the query string, POST in a JSON (or form) body."""
        h = {}
        if ua is not None:
            h["User-Agent"] = ua
        if headers:
            h.update(headers)
        body = None
        target = route
        if method in ("GET", "HEAD"):
            q = query(site=site, path=path)
            if q:
                target += "?" + q
        else:
            fields = {}
            if site is not None:
                fields["site"] = site
            if path is not None:
                fields["path"] = path
            if form:
                body = urllib.parse.urlencode(fields)
                h.setdefault("Content-Type",
                             "application/x-www-form-urlencoded")
            else:
                body = json.dumps(fields)
                h.setdefault("Content-Type", "application/json")
        st, hd, data = self.request(method, target, h, body)
        if expect is not None:
            check(st == expect, "%s %s: status %d, want %d; body %r"
                  % (method, target, st, expect, data[:300]))
        return parse_json(data, "%s %s" % (method, target))

    def count(self, path=None, site=None, ua=BROWSER_UA, headers=None):
        return self.hit(path, site, ua=ua, headers=headers, route="/count")

    def raw(self, data, timeout=5.0, wait_close=False):
        """Sends raw bytes on a fresh socket; returns what came back (until
        one complete answer, the peer closes, or timeout)."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        out = b""
        try:
            try:
                s.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                s.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    break
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                out += chunk
                if not wait_close and _response_complete(out):
                    break
        finally:
            s.close()
        return out


def request(port, method, target, headers=None, body=None, timeout=10):
    """One request to 127.0.0.1:port on a fresh connection: (status,
    headers with lower-case names, body). Any HTTP server will do: the
    benchmarks ask nginx with it too."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        h = {}
        if headers:
            h.update(headers)
        if isinstance(body, str):
            body = body.encode("utf-8")
        conn.request(method, target, body=body, headers=h)
        r = conn.getresponse()
        data = r.read()
        hd = {}
        for k, v in r.getheaders():
            k = k.lower()
            hd[k] = (hd[k] + ", " + v) if k in hd else v
        return r.status, hd, data
    finally:
        conn.close()


def _response_complete(buf):
    i = buf.find(b"\r\n\r\n")
    if i < 0:
        return False
    head = buf[:i].decode("latin-1").lower()
    for line in head.split("\r\n")[1:]:
        k, _, v = line.partition(":")
        if k.strip() == "content-length":
            try:
                return len(buf) - i - 4 >= int(v.strip())
            except ValueError:
                return True
    return True  # no length: headers are all we wait for


def parse_raw(buf):
    """Splits a raw HTTP answer: (status or None, headers dict, body)."""
    i = buf.find(b"\r\n\r\n")
    if not buf.startswith(b"HTTP/") or i < 0:
        return None, {}, buf
    lines = buf[:i].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    try:
        status = int(parts[1])
    except (IndexError, ValueError):
        return None, {}, buf
    hd = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        k = k.strip().lower()
        v = v.strip()
        hd[k] = (hd[k] + ", " + v) if k in hd else v
    return status, hd, buf[i + 4:]


def parse_json(data, what="answer"):
    try:
        return json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise Failure("%s: not JSON (%s): %r" % (what, e, data[:300]))


# ---------------------------------------------------------------- cleanup

def _descendants(pid):
    """Pids of pid's children, grandchildren... (TALLYD may be a wrapper
    script that does not exec; its tallyd must not outlive the test)."""
    out = []
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir("/proc/%d/task" % p)
        except OSError:
            continue
        for t in tasks:
            try:
                with open("/proc/%d/task/%s/children" % (p, t)) as f:
                    kids = [int(k) for k in f.read().split()]
            except (OSError, ValueError):
                continue
            out += kids
            todo += kids
    return out


def _kill_daemons(keep_shared=False):
    kept = []
    for d in _daemons:
        if keep_shared and d.keep:
            kept.append(d)
            continue
        try:
            if d.proc is not None and d.proc.poll() is None:
                kids = _descendants(d.proc.pid)
                d.proc.kill()
                for k in kids:
                    try:
                        os.kill(k, signal.SIGKILL)
                    except OSError:
                        pass
                d.proc.wait(5)
        except Exception:
            pass
        try:
            if d._errf:
                d._errf.close()
        except Exception:
            pass
    _daemons[:] = kept


def cleanup():
    _kill_daemons()
    for t in _tempdirs:
        shutil.rmtree(t, ignore_errors=True)
    del _tempdirs[:]


atexit.register(cleanup)


def _on_signal(signum, frame):
    cleanup()
    sys.exit(128 + signum)


for _s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    try:
        signal.signal(_s, _on_signal)
    except (ValueError, OSError):
        pass


# ---------------------------------------------------------------- runner

def main(ns, setup=None):
    """Runs every test_* function in ns, in definition order."""
    for tool in (tallyd_path(), tallyctl_path()):
        if not os.access(tool, os.X_OK):
            print("FAIL setup: %s is not an executable (set TALLYD/TALLYCTL)"
                  % tool)
            sys.exit(1)
    if setup is not None:
        try:
            setup()
        except Skip as e:
            print("skip all: %s" % e)
            sys.exit(SKIP_EXIT)
    cases = [(n, f) for n, f in ns.items()
             if n.startswith("test_") and callable(f)]
    only = sys.argv[1:]
    if only:
        cases = [(n, f) for n, f in cases if any(o in n for o in only)]
    failed = skipped = 0
    t_all = time.monotonic()
    for name, fn in cases:
        t0 = time.monotonic()
        try:
            fn()
        except Skip as e:
            skipped += 1
            print("skip %s: %s" % (name, e), flush=True)
        except Failure as e:
            failed += 1
            print("FAIL %s: %s" % (name, e), flush=True)
        except Exception as e:
            failed += 1
            tb = traceback.extract_tb(e.__traceback__)
            where = ""
            if tb:
                fr = tb[-1]
                where = " (%s:%d)" % (os.path.basename(fr.filename), fr.lineno)
            print("FAIL %s: %s: %s%s" % (name, type(e).__name__, e, where),
                  flush=True)
        else:
            print("ok %s (%.2fs)" % (name, time.monotonic() - t0), flush=True)
        finally:
            # Daemons of one case do not leak into the next.
            _kill_daemons(keep_shared=True)
    print("# %d cases, %d failed, %d skipped, %.1f s"
          % (len(cases), failed, skipped, time.monotonic() - t_all),
          flush=True)
    cleanup()
    if failed:
        sys.exit(1)
    if cases and skipped == len(cases):
        sys.exit(SKIP_EXIT)
    sys.exit(0)
