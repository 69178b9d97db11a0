#!/usr/bin/env python3
"""libpq is loaded only for a postgresql:// store.

tallyd and tallyctl on an LMDB store never map libpq (nor, through it,
OpenSSL, Kerberos, LDAP...): the dynamic loader's work at every start.
On a PostgreSQL store they load it at the store's open. Checked:
  - a tallyd serving an LMDB store: no libpq in /proc/PID/maps;
  - tallyctl stats on an LMDB store: the dynamic loader (LD_DEBUG=files)
    opens no libpq, while it does open the libraries tallyctl needs;
  - tallyd and tallyctl on a PostgreSQL store: libpq is mapped, loaded
    by the program (dlopen) rather than at start (PostgreSQL cluster
    from pgcluster.py; skipped without PostgreSQL 15);
  - libpq made unreadable (a mount namespace where /dev/null is bound
    over it; root and unshare(1) only): tallyd and tallyctl on LMDB work
    as before, and a postgresql:// store is refused with a message that
    names libpq.so.5 and the package to install, and not the password.
"""

import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import pgcluster  # noqa: E402
from harness import Daemon, Skip, check, eq, run_tallyctl  # noqa: E402


def maps(pid):
    with open("/proc/%d/maps" % pid) as f:
        return f.read()


def mapped_libpq(pid):
    return [line.split()[-1] for line in maps(pid).splitlines()
            if re.search(r"/libpq\.so", line)]


def loader_files(*args, env=None):
    """tallyctl ARGS under LD_DEBUG=files: (exit code, stderr without the
    loader's lines, {library: how it came}), how being 'needed' (at
    start) or 'dlopen'."""
    e = {"LD_DEBUG": "files"}
    e.update(env or {})
    rc, out, err = run_tallyctl(*args, env=e)
    libs, rest = {}, []
    for line in err.splitlines():
        m = re.match(r"\s*\d+:\s+file=(\S+)\s+\[\d+\];\s+(needed|dynamically "
                     r"loaded) by", line)
        if m:
            libs.setdefault(os.path.basename(m.group(1)),
                            "needed" if m.group(2) == "needed" else "dlopen")
        elif not re.match(r"\s*\d+:", line):
            rest.append(line)
    return rc, "\n".join(rest), libs


def lmdb_store():
    """A data directory with counts in it, written by a tallyd."""
    d = Daemon()
    d.hit("/a")
    eq(d.stop(), 0, "tallyd exit on SIGTERM")
    return d.data


def test_lmdb_tallyd_maps_no_libpq():
    d = Daemon()
    m = maps(d.proc.pid)
    check("liblmdb" in m, "liblmdb is not in tallyd's maps: not the "
          "right process?")
    eq(mapped_libpq(d.proc.pid), [], "libpq in the maps of a tallyd on LMDB")
    eq(d.stop(), 0, "tallyd exit on SIGTERM")


def test_lmdb_tallyctl_loads_no_libpq():
    data = lmdb_store()
    rc, err, libs = loader_files("--data", data, "stats")
    eq(rc, 0, "tallyctl stats exit (%s)" % err[-500:])
    check("liblmdb.so.0" in libs, "LD_DEBUG=files shows no liblmdb: %r"
          % libs)
    eq([n for n in libs if n.startswith("libpq")], [],
       "libraries tallyctl stats on LMDB loads")


def test_pg_store_loads_libpq_at_open():
    c = pgcluster.cluster()
    c.drop_db()
    d = Daemon(["--store", c.url()])
    check(mapped_libpq(d.proc.pid) != [], "no libpq in the maps of a tallyd "
          "on PostgreSQL")
    eq(d.stop(), 0, "tallyd exit on SIGTERM")
    rc, err, libs = loader_files("--store", c.url(), "stats")
    eq(rc, 0, "tallyctl --store URL stats exit (%s)" % err[-500:])
    eq(libs.get("libpq.so.5"), "dlopen", "how tallyctl on PostgreSQL loads "
       "libpq (%r)" % libs)


def libpq_files():
    """The files the dynamic loader would open for libpq.so.5."""
    try:
        out = subprocess.run(["ldconfig", "-p"], stdout=subprocess.PIPE,
                             check=True).stdout.decode()
    except (OSError, subprocess.CalledProcessError):
        return []
    return sorted({os.path.realpath(m.group(1)) for m in re.finditer(
        r"^\s*libpq\.so\.5 \(.*\) => (\S+)$", out, re.M)})


def hidden_libpq():
    """A command prefix that runs its command where every libpq.so.5 the
    loader knows reads as empty."""
    if os.geteuid() != 0:
        raise Skip("not root: hiding libpq needs a mount namespace")
    if shutil.which("unshare") is None:
        raise Skip("unshare(1) is missing (util-linux)")
    files = libpq_files()
    if not files:
        raise Skip("ldconfig knows no libpq.so.5")
    script = "".join('mount --bind /dev/null "%s" || exit 99; ' % f
                     for f in files) + 'exec "$@"'
    wrap = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            script, "sh"]
    p = subprocess.run(wrap + ["true"], stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise Skip("cannot make a mount namespace here (%s)"
                   % p.stderr.decode("utf-8", "replace").strip())
    return wrap


class HiddenLibpqDaemon(Daemon):
    """A tallyd in a mount namespace without libpq: sh execs it, so its
    pid is the daemon's."""

    def __init__(self, wrap, *a, **kw):
        self.wrap = wrap
        Daemon.__init__(self, *a, **kw)

    def command(self):
        return self.wrap + Daemon.command(self)


def test_without_libpq():
    wrap = hidden_libpq()
    data = lmdb_store()
    env = dict(os.environ)

    def ctl(*args):
        p = subprocess.run(wrap + [harness.tallyctl_path()] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=env, timeout=60)
        return (p.returncode, p.stdout.decode("utf-8", "replace"),
                p.stderr.decode("utf-8", "replace"))

    rc, out, err = ctl("--data", data, "--json", "stats")
    eq(rc, 0, "tallyctl stats on LMDB without libpq: exit (%s)" % err)
    check('"views"' in out, "tallyctl stats printed no counts: %r" % out)

    d = HiddenLibpqDaemon(wrap, data=data)
    d.hit("/b")
    eq(mapped_libpq(d.proc.pid), [], "libpq in the maps")
    eq(d.stop(), 0, "tallyd exit on SIGTERM")

    url = "postgresql://tally:s3cr3t-pw@127.0.0.1:9/tally"
    rc, out, err = ctl("--store", url, "stats")
    eq(rc, 1, "tallyctl --store URL without libpq: exit (%s)" % err)
    check("cannot load libpq.so.5" in err and "install libpq5" in err,
          "the message names neither libpq.so.5 nor its package: %r" % err)
    check("s3cr3t-pw" not in err + out, "the password is shown: %r" % err)

    p = subprocess.run(wrap + [harness.tallyd_path(), "--listen",
                               "127.0.0.1:%d" % harness.free_port(),
                               "--store", url],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=env, timeout=60, cwd=harness.mkdtemp())
    err = p.stderr.decode("utf-8", "replace")
    check(p.returncode != 0, "tallyd on a postgresql:// store without "
          "libpq started")
    check("cannot load libpq.so.5" in err and "install libpq5" in err,
          "tallyd's message names neither libpq.so.5 nor its package: %r"
          % err)
    check("s3cr3t-pw" not in err, "tallyd shows the password: %r" % err)


if __name__ == "__main__":
    harness.main(globals())
