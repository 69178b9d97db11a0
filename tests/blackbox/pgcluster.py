"""A throwaway PostgreSQL 15 cluster for the shared-store tests.

The cluster lives in a temporary directory: initdb, then postgres on a
free loopback port with its unix socket in that directory too, trust
authentication on loopback only. A test file starts it once
(cluster()), every case of the file uses it, and it is stopped and its
directory removed when the file's process exits.

PostgreSQL refuses to run as root, as the tests do in CI: then every
server program runs as an unprivileged user (postgres when the package
made one, else nobody), through runuser, and the directory is theirs.

Cases are skipped, with a message that says so, only when the server
programs are not installed (Debian: postgresql-15).
"""

import atexit
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import harness
from harness import Failure, Skip

BINDIR = os.environ.get("TALLY_PG_BINDIR", "/usr/lib/postgresql/15/bin")
DB = "tally"
USER = "tally"          # the role the nodes connect as
ADMIN = "postgres"      # the superuser initdb makes

_clusters = []


def binary(name):
    return os.path.join(BINDIR, name)


def need_postgres():
    """Raises Skip unless the PostgreSQL 15 server programs are here."""
    for prog in ("initdb", "pg_ctl", "postgres", "psql"):
        if not os.access(binary(prog), os.X_OK) and \
                not (prog == "psql" and shutil.which("psql")):
            raise Skip("PostgreSQL 15 is not installed (%s missing; "
                       "Debian: postgresql-15)" % binary(prog))


def _server_user():
    """The user the server runs as: None (this one) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise Skip("running as root and no unprivileged user to run "
               "PostgreSQL as (postgres or nobody)")


def _free_port():
    """A loopback port free for TCP; also not taken by a socket file."""
    while True:
        p = harness.free_port()
        if p != 5432:
            return p


class Cluster:
    """One PostgreSQL server, its data directory and its socket."""

    def __init__(self, name="primary", port=None, datadir=None, base=None):
        need_postgres()
        self.user = _server_user()
        self.base = base or tempfile.mkdtemp(prefix="tally-pg-")
        os.chmod(self.base, 0o755)
        self.name = name
        self.datadir = datadir or os.path.join(self.base, name)
        self.sockdir = os.path.join(self.base, "sock-" + name)
        self.logfile = os.path.join(self.base, name + ".log")
        self.port = port or _free_port()
        self.owned_base = base is None
        for d in (self.sockdir,):
            os.makedirs(d, exist_ok=True)
            self._own(d)
        _clusters.append(self)

    # -- running server programs as the server's user
    def _own(self, path):
        if self.user is not None:
            os.chown(path, self.user.pw_uid, self.user.pw_gid)

    def _as_server(self, argv):
        if self.user is None:
            return argv
        return ["runuser", "-u", self.user.pw_name, "--"] + argv

    def run(self, argv, timeout=120, check=True, input=None):
        """Runs a server program as the server's user: (rc, out, err)."""
        p = subprocess.run(self._as_server(argv), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout,
                           input=input, cwd=self.base)
        out = p.stdout.decode("utf-8", "replace")
        err = p.stderr.decode("utf-8", "replace")
        if check and p.returncode != 0:
            raise Failure("%s exited %d: %s%s" % (
                os.path.basename(argv[0]), p.returncode, err[-1500:],
                self.log_tail()))
        return p.returncode, out, err

    def log_tail(self, n=1500):
        try:
            with open(self.logfile, "rb") as f:
                t = f.read().decode("utf-8", "replace")
            return "\n--- %s log ---\n%s" % (self.name, t[-n:])
        except OSError:
            return ""

    # -- making one
    def init(self, conf=None):
        """initdb, with trust on loopback and the socket in our dir."""
        os.makedirs(self.datadir, exist_ok=True)
        os.chmod(self.datadir, 0o700)
        self._own(self.datadir)
        with open(self.logfile, "a"):
            pass
        self._own(self.logfile)
        self.run([binary("initdb"), "-D", self.datadir, "-U", ADMIN,
                  "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8",
                  "--no-instructions"])
        self.configure(conf)
        return self

    def configure(self, conf=None):
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": "'%s'" % self.sockdir,
            "fsync": "on",
            "max_connections": "100",
            "shared_buffers": "32MB",
            "wal_level": "replica",
            "max_wal_senders": "5",
            "logging_collector": "off",
            "log_min_messages": "warning",
        }
        settings.update(conf or {})
        path = os.path.join(self.datadir, "postgresql.auto.conf")
        lines = ["%s = %s" % kv for kv in settings.items()]
        rc, out, _ = self.run(["cat", path], check=False)
        self.run(["tee", path], input=(out + "\n".join(lines) +
                                        "\n").encode())
        hba = ("local all all trust\n"
               "host all all 127.0.0.1/32 trust\n"
               "local replication all trust\n"
               "host replication all 127.0.0.1/32 trust\n")
        self.run(["tee", os.path.join(self.datadir, "pg_hba.conf")],
                 input=hba.encode())

    # -- life cycle
    def start(self, timeout=60):
        self.run([binary("pg_ctl"), "-D", self.datadir, "-l", self.logfile,
                  "-w", "-t", str(timeout), "start"], timeout=timeout + 10)
        return self

    def stop(self, mode="fast"):
        """Stops the server (mode fast, immediate or smart)."""
        if not self.running():
            return
        self.run([binary("pg_ctl"), "-D", self.datadir, "-m", mode, "-w",
                  "stop"], check=False)

    def running(self):
        rc, _, _ = self.run([binary("pg_ctl"), "-D", self.datadir,
                             "status"], check=False)
        return rc == 0

    def promote(self):
        self.run([binary("pg_ctl"), "-D", self.datadir, "-w", "promote"])

    def pid(self):
        try:
            with open(os.path.join(self.datadir, "postmaster.pid")) as f:
                return int(f.readline())
        except (OSError, ValueError):
            return None

    def destroy(self):
        self.stop("immediate")
        if self.owned_base:
            shutil.rmtree(self.base, ignore_errors=True)

    # -- talking to it
    def psql(self, sql, db=DB, user=ADMIN, check=True):
        """Runs sql through psql on the socket; the rows as text, one
        line each, columns separated by '|'."""
        psql = binary("psql") if os.access(binary("psql"), os.X_OK) \
            else shutil.which("psql")
        p = subprocess.run([psql, "-X", "-q", "-A", "-t", "-v",
                            "ON_ERROR_STOP=1", "-h", self.sockdir, "-p",
                            str(self.port), "-U", user, "-d", db, "-c", sql],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=120)
        if check and p.returncode != 0:
            raise Failure("psql %r: %s" % (sql[:200], p.stderr.decode(
                "utf-8", "replace")[-800:]))
        return p.stdout.decode("utf-8", "replace").strip()

    def url(self, db=DB, user=USER, **params):
        """The URL the nodes are given: TCP on loopback."""
        u = "postgresql://%s@127.0.0.1:%d/%s" % (user, self.port, db)
        if params:
            u += "?" + "&".join("%s=%s" % kv for kv in params.items())
        return u

    def make_db(self, db=DB, user=USER):
        """The role and the database the nodes use: the role owns it and
        is no superuser, as in a real setup."""
        if self.psql("SELECT 1 FROM pg_roles WHERE rolname = '%s'" % user,
                     db="postgres") != "1":
            self.psql("CREATE ROLE %s LOGIN" % user, db="postgres")
        if self.psql("SELECT 1 FROM pg_database WHERE datname = '%s'" % db,
                     db="postgres") != "1":
            self.psql("CREATE DATABASE %s OWNER %s" % (db, user),
                      db="postgres")
        return self

    def drop_db(self, db=DB):
        """Drops the database (after the nodes on it are gone) and makes
        it again, empty: a fresh store for the next case."""
        self.psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % db,
                  db="postgres")
        self.make_db(db)


_shared = None


def cluster():
    """The file's one cluster, made and started at the first call,
    with an empty database "tally" owned by the role "tally"."""
    global _shared
    if _shared is None:
        c = Cluster()
        c.init()
        c.start()
        c.make_db()
        _shared = c
    return _shared


def wait_port_closed(port, timeout=30):
    """Waits until nothing accepts on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = socket.socket()
        try:
            s.settimeout(0.2)
            s.connect(("127.0.0.1", port))
        except OSError:
            return
        finally:
            s.close()
        time.sleep(0.05)
    raise Failure("port %d still open" % port)


def _teardown():
    for c in reversed(_clusters):
        try:
            c.destroy()
        except Exception:
            pass
    del _clusters[:]


# Registered after harness's own cleanup, so it runs before it: the
# servers stop before anything of theirs is removed.
atexit.register(_teardown)


def _on_signal(signum, frame):
    _teardown()
    harness.cleanup()
    os._exit(128 + signum)


for _s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    try:
        signal.signal(_s, _on_signal)
    except (ValueError, OSError):
        pass
