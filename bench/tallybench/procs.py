"""The processes bench/run starts besides tallyd (nginx), its temporary
directory, and pinning to a core.

tallyd itself is started by the harness, which kills what is left of it
at exit. Everything else goes in PROCS, so that nothing outlives bench/run,
not even on Ctrl-C: the signals become SystemExit, which runs the atexit
cleanup.
"""

import atexit
import os
import shutil
import signal
import subprocess
import tempfile

import harness

from .common import log

PROCS = []
_tmp = {"dir": None, "keep": False}


def tmpdir():
    return _tmp["dir"]


def setup(keep):
    """Makes the temporary directory and arranges for the cleanup."""
    _tmp["keep"] = keep
    atexit.register(cleanup)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    _tmp["dir"] = tempfile.mkdtemp(prefix="tally-bench-")
    return _tmp["dir"]


def _on_signal(signum, frame):
    raise SystemExit(128 + signum)


def cleanup():
    # tallyd first (the harness's own cleanup, which also runs later at
    # exit): no daemon may still write into the directory removed below.
    harness.cleanup()
    for p in PROCS:
        if p.poll() is None:
            try:
                p.terminate()
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            except OSError:
                pass
    PROCS.clear()
    d = _tmp["dir"]
    if d and os.path.isdir(d):
        if _tmp["keep"]:
            log("kept %s" % d)
        else:
            shutil.rmtree(d, ignore_errors=True)


def pinned(cpu, argv):
    """argv run on core cpu (None: anywhere). taskset execs the command,
    so the pid stays the server's own, for /proc/PID/status."""
    argv = list(argv)
    if cpu is None:
        return argv
    return ["taskset", "-c", str(cpu)] + argv


def spawn(argv, logfile):
    """Starts argv with stdout and stderr appended to logfile."""
    out = open(logfile, "ab")
    try:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                             stderr=subprocess.STDOUT)
    finally:
        out.close()
    PROCS.append(p)
    return p


def forget(p):
    if p in PROCS:
        PROCS.remove(p)
