"""The two servers measured: tallyd, started by the tests' harness, and
nginx serving a static file of the same size, as the practical limit of
this machine."""

import http.client
import os
import re
import signal
import subprocess
import time

import harness

from . import procs
from .common import BenchError, tail, tail_file

# All load comes from 127.0.0.1, as one visitor at one address: every
# limit per visitor or per address is turned off, or it would measure the
# limit. The per-address flags are passed only to a tallyd that has them,
# so that the benchmarks run on versions before and after them.
LIMITS_OFF = ["--rate-limit", "0"]
ADDRESS_LIMITS = ["--rate-limit-address", "--new-visitors-per-address",
                  "--max-connections-per-address"]
_known = {}


def address_limits_off():
    """The flags that turn off tallyd's per-address limits, those of them
    that `tallyd --help` names."""
    if "flags" not in _known:
        try:
            rc, out, err = harness.run_tallyd("--help")
            text = out + err
        except (OSError, subprocess.TimeoutExpired):
            text = ""
        _known["flags"] = []
        for flag in ADDRESS_LIMITS:
            # The whole flag, not the start of a longer one.
            if re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(flag), text):
                _known["flags"] += [flag, "0"]
    return list(_known["flags"])


def tallyd_flags():
    """tallyd's limit flags as the benchmarks give them, for the table."""
    return LIMITS_OFF + address_limits_off()


class Tallyd(harness.Daemon):
    """tallyd as measured: one thread, limits off, warnings only, on an
    empty or given store; pinned to a core or under a wrapper such as
    valgrind. The harness waits for /healthz before returning, and kills
    the daemon at exit if it is still running."""

    def __init__(self, datadir, durability="batch", cpu=None, extra=(),
                 wrapper=(), name="tallyd", ready_timeout=20, env=None):
        self.wrapper = procs.pinned(cpu, wrapper)
        logdir = os.path.join(procs.tmpdir(), name)
        os.makedirs(logdir, exist_ok=True)
        args = ["--threads", "1", "--log-level", "warn",
                "--durability", durability] + list(extra)
        super().__init__(args, data=datadir, cwd=logdir, env=env,
                         timeout=ready_timeout, start=False)
        try:
            self.start()
        except harness.Failure as e:
            raise BenchError(str(e))

    def command(self):
        """The harness's command (which turns --rate-limit off) under the
        wrapper, with the per-address limits off too where the harness
        does not already say so."""
        cmd = super().command()
        flags = address_limits_off()
        for i in range(0, len(flags), 2):
            if flags[i] not in cmd:
                cmd += flags[i:i + 2]
        return self.wrapper + cmd

    @property
    def pid(self):
        return self.proc.pid

    def log_tail(self):
        return tail(self.stderr())

    def counts(self, path):
        """GET /count for path: the counts JSON."""
        try:
            return self.count(path)
        except harness.Failure as e:
            raise BenchError("GET /count: %s" % e)

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """SIGTERM, then wait: returns the exit status."""
        try:
            return super().stop(sig, timeout)
        except harness.Failure as e:
            raise BenchError(str(e))


def wait_http(port, target, proc, logfile, timeout):
    """Waits until GET target answers 200, or proc exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError("%s exited with status %d:\n%s" % (
                proc.args[0], proc.returncode, tail_file(logfile)))
        try:
            st, _, _ = harness.request(port, "GET", target, timeout=2)
            if st == 200:
                return
        except (OSError, ValueError, http.client.HTTPException):
            pass
        time.sleep(0.05)
    raise BenchError("no answer on port %d after %.0f s:\n%s" % (
        port, timeout, tail_file(logfile)))


NGINX_CONF = """\
daemon off;
master_process {master};
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
worker_rlimit_nofile {nofile};
events {{ worker_connections {connections}; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    types {{ }}
    default_type application/json;
{temp_paths}
    server {{
        listen 127.0.0.1:{port};
        root {www};
        location = /hit {{
            try_files /counts.json =404;
{add_headers}
        }}
    }}
}}
"""


class Nginx:
    """nginx with a private configuration in the temporary directory:
    one worker, no access log, GET /hit answered with tallyd's own answer
    and its Cache-Control, Vary and CORS headers. Under a wrapper such
    as valgrind it runs as one process (master_process off), so that the
    wrapper sees the process that answers."""

    def __init__(self, exe, answer, headers, cpu, wrapper=(),
                 ready_timeout=10, connections=4096):
        top = procs.tmpdir()
        tmp = os.path.join(top, "nginx")
        www = os.path.join(top, "www")
        os.makedirs(tmp, exist_ok=True)
        os.makedirs(www, exist_ok=True)
        with open(os.path.join(www, "counts.json"), "wb") as f:
            f.write(answer)
        # The worker may run as nobody: let it read the file.
        for d in (top, www):
            os.chmod(d, 0o755)
        os.chmod(os.path.join(www, "counts.json"), 0o644)
        self.port = harness.free_port()
        conf = os.path.join(tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(
                tmp=tmp, www=www, port=self.port,
                master="off" if wrapper else "on",
                connections=connections, nofile=connections + 256,
                temp_paths=self._temp_paths(exe, tmp),
                add_headers="\n".join(
                    "            add_header %s \"%s\";" % (k, v)
                    for k, v in headers.items())))
        self.logfile = os.path.join(tmp, "stdout.log")
        argv = procs.pinned(cpu, list(wrapper) + [exe, "-e", os.path.join(tmp, "error.log"),
                                  "-p", tmp + "/", "-c", conf])
        self.proc = procs.spawn(argv, self.logfile)
        try:
            wait_http(self.port, "/hit?path=/bench", self.proc, self.logfile,
                      ready_timeout)
        except BenchError as e:
            raise BenchError("%s\n%s" % (
                e, tail_file(os.path.join(tmp, "error.log"))))

    @staticmethod
    def _temp_paths(exe, tmp):
        """Every temporary directory nginx was built with, moved into tmp:
        the defaults are not writable for a user that is not root."""
        v = subprocess.run([exe, "-V"], capture_output=True, text=True).stderr
        lines = ["    client_body_temp_path %s/body;" % tmp]
        for kind in ("proxy", "fastcgi", "uwsgi", "scgi"):
            if "--http-%s-temp-path" % kind in v:
                lines.append("    %s_temp_path %s/%s;" % (kind, tmp, kind))
        return "\n".join(lines)

    def stop(self, timeout=10):
        """SIGQUIT (graceful), then wait: returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        procs.forget(self.proc)
        return self.proc.returncode
