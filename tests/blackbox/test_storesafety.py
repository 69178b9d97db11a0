#!/usr/bin/env python3
"""Store safety (issue 8, item 3).

  - a second tallyd on the same data directory refuses to start (non-zero
    exit, a clear message) and the first keeps serving;
  - a data.mdb that is random bytes, has its meta pages wiped, or is
    truncated is refused by tallyd and tallyctl with a clear message and
    left byte for byte as it was, also by the commands that write;
  - a store of a newer schema version is refused the same way (made with
    mdb_dump / mdb_load from lmdb-utils);
  - an LMDB environment that is not a tally store is not adopted;
  - reader slots left by a tallyctl killed in the middle of a read are
    cleared by the next tallyd or tallyctl that opens the store
    (mdb_stat -r shows the table).
"""

import hashlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (BROWSER_UA, Daemon, Failure, check,  # noqa: E402
                     eq, free_port, mdb_dump, mdb_load, mkdtemp,
                     need_lmdb_tools, parse_json, run_tallyctl)

SCALE = float(os.environ.get("TALLY_TIME_SCALE", "1"))


# ---------------------------------------------------------------- helpers

def digest(data_dir):
    """sha256 of data.mdb (and its size), to prove it was not written."""
    p = os.path.join(data_dir, "data.mdb")
    with open(p, "rb") as f:
        b = f.read()
    return len(b), hashlib.sha256(b).hexdigest()


def made_store(pages=300, hits_per_page=1):
    """A real store with `pages` pages counted, closed cleanly; returns
    its data directory."""
    d = Daemon(["--commit-interval", "50ms"])
    conn = d.connect()
    try:
        for i in range(pages):
            for _ in range(hits_per_page):
                conn.request("GET", "/hit?path=%%2Fs%%2F%04d" % i,
                             headers={"User-Agent": BROWSER_UA})
                r = conn.getresponse()
                r.read()
                eq(r.status, 200, "status of a hit")
    finally:
        conn.close()
    eq(d.stop(), 0, "exit code of the daemon that made the store")
    rc, out, err = run_tallyctl("--data", d.data, "check")
    eq(rc, 0, "check of the made store: %s %s" % (out, err))
    return d.data


def copy_store(src):
    dst = os.path.join(mkdtemp(), "data")
    os.makedirs(dst)
    shutil.copy2(os.path.join(src, "data.mdb"), os.path.join(dst, "data.mdb"))
    return dst


def start_refused(what, *args, wait=8):
    """Runs tallyd, which must exit by itself; returns (exit code,
    stderr). A tallyd still running after `wait` seconds accepted the
    store: it is killed and the case fails."""
    errpath = os.path.join(mkdtemp(), "stderr")
    with open(errpath, "wb") as errf:
        p = subprocess.Popen([harness.tallyd_path()] + [str(a) for a in args],
                             stdin=subprocess.DEVNULL, stdout=errf,
                             stderr=errf, cwd=mkdtemp(),
                             preexec_fn=harness._pdeathsig)
        deadline = time.monotonic() + wait * SCALE
        rc = None
        while rc is None and time.monotonic() < deadline:
            rc = p.poll()
            if rc is None:
                with open(errpath, "rb") as f:
                    if b" ready" in f.read():
                        break       # it took the store
                time.sleep(0.05)
        if rc is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            rc = None
    with open(errpath, "rb") as f:
        err = f.read().decode("utf-8", "replace")
    if rc is None:
        raise Failure("%s: tallyd did not refuse, it started serving; "
                      "stderr %r" % (what, err[-600:]))
    return rc, err


def refused_everywhere(data, words, what):
    """tallyd and tallyctl (reading and writing commands) refuse the store
    in data with a message holding one of `words`, and data.mdb is left
    byte for byte as it was."""
    before = digest(data)
    rc, err = start_refused(what, "--listen", "127.0.0.1:%d" % free_port(),
                            "--data", data, "--rate-limit", "0")
    check(rc > 0, "%s: tallyd exit code %d, want a refusal (> 0); stderr %r"
          % (what, rc, err[-600:]) + ("" if rc >= 0 else
                                      " -- killed by signal %d" % -rc))
    for mark in ("Sanitizer", "runtime error:"):
        check(mark not in err, "%s: tallyd crashed instead of refusing: %s"
              % (what, err[:1200]))
    check(any(w in err.lower() for w in words),
          "%s: tallyd's message %r names none of %r" % (what, err[-600:],
                                                       words))
    eq(digest(data), before, "%s: data.mdb after tallyd" % what)

    for args in (["check"], ["--json", "page", "/s/0001"], ["stats"],
                 ["export"], ["set", "--site", "default", "--path",
                              "/s/0001", "--views", "7"],
                 ["reset", "--site", "default", "--yes"]):
        rc, out, err = run_tallyctl("--data", data, *args,
                                    timeout=30 * SCALE)
        check(rc == 1, "%s: tallyctl %s exit code %d, want 1; stderr %r"
              % (what, args[0] if args[0] != "--json" else args[1], rc,
                 err[-400:]))
        check(err.strip(), "%s: tallyctl %s says nothing on stderr"
              % (what, args[0]))
        eq(digest(data), before, "%s: data.mdb after tallyctl %s"
           % (what, " ".join(args)))
    return err


_made = None


def store():
    """One made store per run (copied before each use)."""
    global _made
    if _made is None:
        _made = made_store()
    return _made


# ---------------------------------------------------------------- cases

def test_second_daemon_refused_first_keeps_serving():
    d = Daemon(["--commit-interval", "50ms"], keep=False)
    for _ in range(3):
        d.hit("/one")
    for port in (free_port(), d.port):     # its own port, and the same one
        t0 = time.monotonic()
        rc, err = start_refused("a second tallyd", "--listen",
                                "127.0.0.1:%d" % port, "--data", d.data,
                                "--rate-limit", "0")
        check(rc > 0, "a second tallyd on %s (port %s): exit code %d, "
              "want > 0; stderr %r" % (d.data, "same" if port == d.port
                                       else "other", rc, err[-500:]))
        check("another tallyd" in err or d.data in err,
              "the second tallyd's message does not say why: %r"
              % err[-500:])
        check(time.monotonic() - t0 < 10 * SCALE, "the refusal took %.1f s"
              % (time.monotonic() - t0))
        d.check_alive()
        c = d.hit("/one")
        eq((c["counted"], c["page"]["views"]), (True, 4 if port != d.port
                                               else 5),
           "the first daemon counts on")
    # And only one process serves the port: every answer comes from it.
    for _ in range(20):
        c = d.hit("/one")
    eq(c["page"]["views"], 25, "page.views after 20 more hits")
    eq(d.stop(), 0, "exit code of the first daemon")
    d.start()
    eq(d.count("/one")["page"]["views"], 25, "views after restart")


def test_second_daemon_refused_while_first_in_strict_load():
    # The refused one must not disturb commits of the running one.
    d = Daemon(["--durability", "strict"])
    conn = d.connect()
    try:
        for i in range(50):
            conn.request("GET", "/hit?path=%2Fstrict",
                         headers={"User-Agent": BROWSER_UA})
            r = conn.getresponse()
            r.read()
            eq(r.status, 200, "status")
            if i == 25:
                rc, err = start_refused(
                    "a second tallyd", "--listen",
                    "127.0.0.1:%d" % free_port(), "--data", d.data,
                    "--durability", "strict")
                check(rc > 0, "second tallyd exit code %d" % rc)
    finally:
        conn.close()
    d.kill9()
    rc, out, err = run_tallyctl("--data", d.data, "--json", "page",
                                "/strict")
    eq(parse_json(out.encode())["page"]["views"], 50, "views after kill -9")


def test_random_bytes_refused_unchanged():
    rng = random.Random(8)
    data = os.path.join(mkdtemp(), "data")
    os.makedirs(data)
    with open(os.path.join(data, "data.mdb"), "wb") as f:
        f.write(bytes(rng.getrandbits(8) for _ in range(262144)))
    refused_everywhere(data, ("not a valid store", "refus", "invalid",
                              "corrupt"), "random data.mdb")


def test_random_bytes_over_a_real_store_refused_unchanged():
    # Random bytes over the first pages, the meta pages among them.
    data = copy_store(store())
    rng = random.Random(9)
    with open(os.path.join(data, "data.mdb"), "r+b") as f:
        f.write(bytes(rng.getrandbits(8) for _ in range(3 * 4096)))
    refused_everywhere(data, ("not a valid store", "refus", "invalid",
                              "corrupt"), "meta pages overwritten")


def test_zeroed_meta_pages_refused_unchanged():
    data = copy_store(store())
    with open(os.path.join(data, "data.mdb"), "r+b") as f:
        f.write(b"\0" * 8192)
    refused_everywhere(data, ("not a valid store", "refus", "invalid",
                              "corrupt"), "zeroed meta pages")


def test_truncated_in_half_refused_unchanged():
    data = copy_store(store())
    size = os.path.getsize(os.path.join(data, "data.mdb"))
    check(size >= 16 * 4096, "the made store is only %d bytes" % size)
    os.truncate(os.path.join(data, "data.mdb"), size // 2)
    refused_everywhere(data, ("truncated", "not a valid store", "refus",
                              "corrupt", "short"), "data.mdb cut in half")


def test_truncated_to_a_page_refused_unchanged():
    data = copy_store(store())
    os.truncate(os.path.join(data, "data.mdb"), 5000)
    refused_everywhere(data, ("truncated", "not a valid store", "refus",
                              "corrupt", "short", "invalid"),
                       "data.mdb cut to 5000 bytes")


# ------------------------------------------------- schema, via lmdb-utils

def with_schema(text, version):
    """The dump with meta "schema" set to version (u32 little-endian)."""
    out, db, done, lines = [], None, False, text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("database="):
            db = line[len("database="):]
        out.append(line)
        if db == "meta" and line == " " + b"schema".hex():
            out.append(" " + version.to_bytes(4, "little").hex())
            i += 2
            done = True
            continue
        i += 1
    check(done, "no meta/schema record in the dump")
    return "\n".join(out)


def schema_of(text):
    m = re.search(r"^database=meta$.*?^ %s\n ([0-9a-f]+)$"
                  % b"schema".hex(), text, re.M | re.S)
    check(m, "no schema in the dump")
    return int.from_bytes(bytes.fromhex(m.group(1)), "little")


def test_newer_schema_refused_unchanged():
    need_lmdb_tools("mdb_dump", "mdb_load", "mdb_stat")
    src = store()
    text = mdb_dump(src)
    current = schema_of(text)
    # The dump/load round trip itself gives a store tally accepts.
    same = mdb_load(text)
    rc, out, err = run_tallyctl("--data", same, "--json", "page", "/s/0001")
    eq(rc, 0, "tallyctl page on a reloaded store (stderr %r)" % err[:300])
    eq(parse_json(out.encode())["page"]["views"], 1, "views after reload")
    for newer in (current + 1, 99):
        data = mdb_load(with_schema(text, newer))
        err = refused_everywhere(data, ("newer", "schema"),
                                 "schema version %d" % newer)
        check("newer" in err.lower() or str(newer) in err,
              "tallyctl does not say the store is newer: %r" % err)


def test_foreign_lmdb_environment_not_adopted():
    """An LMDB environment of some other program is not a tally store:
    tallyd must not add its databases to it."""
    need_lmdb_tools("mdb_dump", "mdb_load", "mdb_stat")
    data = mdb_load("VERSION=3\nformat=bytevalue\ndatabase=other\ntype=btree\n"
                "HEADER=END\n %s\n %s\nDATA=END\n"
                % (b"key".hex(), b"value".hex()))
    refused_everywhere(data, ("not a tally store", "refus", "schema"),
                       "a foreign LMDB environment")


# ---------------------------------------------------------------- readers

def readers(data, starting=False):
    """pids in the reader table (mdb_stat -r never clears it). starting:
    the lock file may not be set up yet."""
    p = subprocess.run(["mdb_stat", "-r", data], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    # Its exit code says nothing (1 also when it listed the table).
    ok = b"Reader Table Status" in p.stdout
    if starting and not ok:
        return set()
    check(ok, "mdb_stat -r %s: %r %r" % (data, p.stdout[-300:],
                                         p.stderr[-300:]))
    pids = set()
    for line in p.stdout.decode().splitlines():
        f = line.split()
        if len(f) == 3 and f[0].isdigit():
            pids.add(int(f[0]))
    return pids


def stale_cleared_by_check(data):
    """What mdb_stat -rr (which clears) still finds to clear."""
    p = subprocess.run(["mdb_stat", "-rr", data], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    m = re.search(r"(\d+) stale readers cleared", p.stdout.decode())
    check(m, "mdb_stat -rr: %r" % p.stdout[-300:])
    return int(m.group(1))


_big = None


def big_store():
    """A store whose export is far longer than a pipe holds."""
    global _big
    if _big is None:
        data = os.path.join(mkdtemp(), "data")
        csv = os.path.join(mkdtemp(), "big.csv")
        days = {}
        with open(csv, "w") as f:
            f.write("site,day,path,views,visitors\n")
            for i in range(30000):
                day = "2026-10-%02d" % (1 + i % 28)
                days[day] = days.get(day, 0) + 1 + i % 7
                f.write("default,%s,/big/%06d,%d,1\n" % (day, i, 1 + i % 7))
            for day, n in sorted(days.items()):
                f.write("default,%s,*,%d,5\n" % (day, n))
        rc, out, err = run_tallyctl("--data", data, "import", csv,
                                    timeout=120)
        eq(rc, 0, "tallyctl import (stderr %r)" % err[:300])
        _big = data
    return _big


def blocked_export(data):
    """Starts `tallyctl export` without reading its output, so that it
    blocks holding its read transaction; returns the Popen once its
    reader slot is in the table."""
    p = subprocess.Popen([harness.tallyctl_path(), "--data", data, "export"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         preexec_fn=harness._pdeathsig)
    deadline = time.monotonic() + 10 * SCALE
    while p.pid not in readers(data, starting=True):
        if p.poll() is not None or time.monotonic() > deadline:
            p.kill()
            p.wait()
            raise Failure("tallyctl export (exit %r) never showed up in the "
                          "reader table" % p.returncode)
        time.sleep(0.02)
    time.sleep(0.1)
    check(p.poll() is None, "tallyctl export is not blocked")
    return p


def end(p):
    if p.poll() is None:
        p.kill()
    p.wait()
    p.stdout.close()
    p.stderr.close()


def killed_reader(data):
    """A tallyctl export killed with SIGKILL in the middle of its read.
    While another process keeps the store open (else LMDB resets the
    table on the next open anyway) its slot stays: returns its pid."""
    p = blocked_export(data)
    end(p)
    eq(p.returncode, -signal.SIGKILL, "how tallyctl export ended")
    check(p.pid in readers(data), "the killed tallyctl (pid %d) left no "
          "reader slot: nothing to test" % p.pid)
    return p.pid


def wait_on_disk(d, path, views):
    deadline = time.monotonic() + 5 * SCALE
    while True:
        rc, out, err = run_tallyctl("--data", d.data, "--json", "page", path)
        eq(rc, 0, "tallyctl page (stderr %r)" % err[:300])
        got = parse_json(out.encode())["page"]["views"]
        if got == views:
            return
        check(time.monotonic() < deadline, "%s: %d views on disk, want %d"
              % (path, got, views))
        time.sleep(0.05)


def test_stale_reader_cleared_by_next_tallyctl():
    """tallyctl killed while tallyd runs: its slot stays (tallyd keeps the
    store open); tallyd commits on regardless; the next tallyctl clears
    it."""
    need_lmdb_tools("mdb_dump", "mdb_load", "mdb_stat")
    data = copy_store(big_store())
    d = Daemon(["--commit-interval", "50ms"], data=data)
    pids = []
    for _ in range(3):
        pids.append(killed_reader(data))
        # The tallyctl that made this slot cleared the one before.
        check(not set(pids[:-1]) & readers(data), "a new tallyctl left the "
              "stale slots %s: %s" % (pids[:-1], sorted(readers(data))))
    for i in range(200):
        d.hit("/live/%d" % (i % 20))
    # wait_on_disk runs tallyctl, which clears the slots as it opens.
    wait_on_disk(d, "/live/0", 10)
    left = readers(data) & set(pids)
    check(not left, "stale reader slots of killed tallyctl processes left "
          "after another tallyctl ran: %s" % sorted(left))
    eq(stale_cleared_by_check(data), 0, "stale readers mdb_stat -rr found")
    rc, out, err = run_tallyctl("--data", data, "check", timeout=120)
    eq(rc, 0, "tallyctl check: %s %s" % (out[-300:], err[-300:]))
    d.check_alive()
    eq(d.stop(), 0, "exit code")


def test_stale_reader_cleared_by_tallyd_start():
    """A restarted tallyd clears the slot of a killed tallyctl, even while
    a live tallyctl keeps the store open (so LMDB does not reset the
    table) -- and leaves the live one's slot alone."""
    need_lmdb_tools("mdb_dump", "mdb_load", "mdb_stat")
    data = copy_store(big_store())
    d = Daemon(["--commit-interval", "50ms"], data=data)
    holder = blocked_export(data)
    try:
        pid = killed_reader(data)
        eq(d.stop(), 0, "exit code")
        check(pid in readers(data), "the stale slot went with tallyd's "
              "stop")
        d.start()
        table = readers(data)
        check(pid not in table, "tallyd started, but the slot of the killed "
              "tallyctl (pid %d) is still there: %s" % (pid, sorted(table)))
        check(holder.pid in table, "tallyd took the slot of a live reader "
              "(pid %d): %s" % (holder.pid, sorted(table)))
        c = d.hit("/big/000001")
        check(c["counted"], "a hit after the clean-up")
        wait_on_disk(d, "/big/000001", 2 + 1)
    finally:
        end(holder)
    eq(d.stop(), 0, "exit code")
    rc, out, err = run_tallyctl("--data", data, "check", timeout=120)
    eq(rc, 0, "tallyctl check: %s %s" % (out[-300:], err[-300:]))


if __name__ == "__main__":
    harness.main(globals())
