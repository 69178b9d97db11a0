#!/usr/bin/env python3
"""The store defends itself and its counts.

  - a data directory that is a symbolic link, that others may write, or
    whose data.mdb or lock.mdb is a symbolic link is refused by tallyd
    and tallyctl, naming the file and why, and the link's target is left
    byte for byte as it was; the documented layout (0770 directory, 0660
    files) works;
  - counts never wrap: imports and sets that would overflow are refused
    (FILE:LINE: for imports, nothing imported), hits on a counter at the
    largest count leave it there, and check reports counts that cannot
    be right;
  - a reset also forgets the visitors seen today, so returning visitors
    count again and check stays clean, also while tallyd counts;
  - a backup holds no salt and no visitor id, has the store's modes, and
    works as a store;
  - import refuses what check would reject, naming FILE:LINE:.
"""

import hashlib
import os
import stat
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (BROWSER_UA, Daemon, Failure, Skip, check, eq,  # noqa: E402
                     free_port, mkdtemp, run_tallyctl, run_tallyd,
                     utc_today, write_file)

U64_MAX = 2 ** 64 - 1
I64_MAX = 2 ** 63 - 1


# ---------------------------------------------------------------- helpers

def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def made_store(hits=3):
    """A store with a few counted hits, tallyd stopped; its directory."""
    d = Daemon()
    for i in range(hits):
        d.hit("/p%d" % i)
    eq(d.stop(), 0, "tallyd exit")
    return d.data


def tallyd_refuses(data, want):
    """tallyd on data exits non-zero with want in its message."""
    rc, out, err = run_tallyd("--listen", "127.0.0.1:%d" % free_port(),
                              "--data", data)
    check(rc != 0, "tallyd started on %s: %s" % (data, err[-500:]))
    check(want in err, "tallyd's message %r does not say %r"
          % (err[-500:], want))


def tallyctl_refuses(data, want):
    for cmd in (["stats"], ["check"], ["set", "--site", "default",
                                       "--views", "5"]):
        rc, out, err = run_tallyctl("--data", data, *cmd)
        check(rc != 0, "tallyctl %s on %s succeeded" % (cmd[0], data))
        check(want in err, "tallyctl %s: message %r does not say %r"
              % (cmd[0], err[-500:], want))


def victim():
    """A file that a planted link points to, and its digest."""
    p = os.path.join(mkdtemp(), "victim")
    write_file(p, "precious bytes that no store may overwrite\n" * 50)
    return p, sha(p)


# ---------------------------------------------------------------- symlinks

def check_link_refused(name):
    data = made_store()
    target, digest = victim()
    os.rename(os.path.join(data, name), os.path.join(data, name + ".real"))
    os.symlink(target, os.path.join(data, name))
    want = os.path.join(data, name) + " is a symbolic link"
    tallyd_refuses(data, want)
    tallyctl_refuses(data, want)
    eq(sha(target), digest, "the link's target")


def test_symlinked_lock_mdb_refused():
    check_link_refused("lock.mdb")


def test_symlinked_data_mdb_refused():
    check_link_refused("data.mdb")


def test_dangling_lock_link_not_created():
    data = made_store()
    os.unlink(os.path.join(data, "lock.mdb"))
    target = os.path.join(mkdtemp(), "made-by-tally")
    os.symlink(target, os.path.join(data, "lock.mdb"))
    tallyd_refuses(data, "lock.mdb is a symbolic link")
    check(not os.path.exists(target), "tallyd created the link's target")


def test_symlinked_data_directory_refused():
    data = made_store()
    link = os.path.join(mkdtemp(), "data-link")
    os.symlink(data, link)
    before = sha(os.path.join(data, "data.mdb"))
    for given in (link, link + "/"):
        tallyd_refuses(given, link + " is a symbolic link")
        tallyctl_refuses(given, link + " is a symbolic link")
    eq(sha(os.path.join(data, "data.mdb")), before, "data.mdb")


def test_other_writable_directory_refused():
    data = made_store()
    os.chmod(data, 0o777)
    tallyd_refuses(data, data + " is writable by others")
    tallyctl_refuses(data, data + " is writable by others")
    os.chmod(data, 0o1777)
    tallyd_refuses(data, "is writable by others")


def test_documented_layout_works():
    """StateDirectory= with UMask=0007: a 0770 directory, 0660 files."""
    data = made_store()
    os.chmod(data, 0o770)
    for f in ("data.mdb", "lock.mdb"):
        os.chmod(os.path.join(data, f), 0o660)
    rc, out, err = run_tallyctl("--data", data, "check")
    eq(rc, 0, "check of the documented layout: " + err)
    d = Daemon(data=data)
    eq(d.hit("/p0")["page"]["views"], 2, "views of /p0")
    eq(d.stop(), 0, "tallyd exit")


if __name__ == "__main__":
    harness.main(globals())
