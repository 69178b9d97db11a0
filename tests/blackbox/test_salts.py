#!/usr/bin/env python3
"""Visitor salts on disk (doc/http.md, "Privacy"): a salt is made for each day at
local midnight, even without visits, and a salt older than the previous
day is erased. The store is read with mdb_dump (lmdb-utils), because what
matters is what is on disk."""

import datetime
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import FAKETIME_LIB, Daemon, Skip, eq, faketime_env  # noqa: E402

SALT_RECORD = 4 + 16    # int32 day, 16-byte SipHash key


def day_number(iso):
    return (datetime.date.fromisoformat(iso) - datetime.date(1970, 1, 1)).days


def stored_salt_days(data):
    """The days whose salts the store holds, from the meta database."""
    out = subprocess.run(["mdb_dump", "-s", "meta", data],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         check=True, timeout=30).stdout.decode()
    lines = [l.strip() for l in out.splitlines()]
    body = lines[lines.index("HEADER=END") + 1:]
    want_key = b"salts".hex()
    for k, v in zip(body[0::2], body[1::2]):
        if k == want_key:
            raw = bytes.fromhex(v)
            eq(len(raw) % SALT_RECORD, 0, "salt records size")
            return sorted(int.from_bytes(raw[i:i + 4], "little", signed=True)
                          for i in range(0, len(raw), SALT_RECORD))
    return []


def setup():
    if not os.path.exists(FAKETIME_LIB):
        raise Skip("libfaketime not found at %s" % FAKETIME_LIB)
    if shutil.which("mdb_dump") is None:
        raise Skip("mdb_dump (lmdb-utils) not installed")


def wait_past(seconds):
    time.sleep(seconds)


def test_midnight_makes_a_salt_and_erases_the_old_one():
    setup()
    # Day one: a visit makes the salt of 2026-11-26.
    d = Daemon(["--timezone", "UTC"], env=faketime_env("2026-11-26 23:59:58"))
    d.hit("/a")
    # Past midnight with no visit at all: the new day's salt is made.
    wait_past(3.5)
    eq(d.stop(), 0, "exit status")
    eq(stored_salt_days(d.data),
       [day_number("2026-11-26"), day_number("2026-11-27")],
       "salts after the first midnight")
    # A day later, again without a visit: 2026-11-26 is now older than
    # the previous day and must be gone.
    d.env = faketime_env("2026-11-27 23:59:58")
    d.start()
    wait_past(3.5)
    eq(d.stop(), 0, "exit status")
    days = stored_salt_days(d.data)
    eq(days, [day_number("2026-11-27"), day_number("2026-11-28")],
       "salts after the second midnight")


if __name__ == "__main__":
    harness.main(globals())
