#!/usr/bin/env python3
"""A bad configuration is reported whole: every bad line of the file as
FILE:LINE: message, on startup, with -n and on SIGHUP (where the running
configuration is kept); a bad flag is named as it was typed. Every key of
the file is a flag, the per-address limits included."""

import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (Daemon, check, eq, mkdtemp, run_tallyd,  # noqa: E402
                     write_file)

# Five errors, one per kind of mistake, with good lines between them.
BAD = ("[server]\n"
       "threads = 2\n"
       "oops\n"                                 # 3
       "max_connections_per_address = -1\n"     # 4
       "[nowhere]\n"                            # 5
       "key = 1\n"
       "[count]\n"
       "rate_limit = lots\n"                    # 8
       "new_visitors_per_address = 500\n"
       "[site a]\n"
       "labels = oops\n")                       # 11
BAD_LINES = [3, 4, 5, 8, 11]


def error_lines(err, path):
    """The FILE:LINE: lines of err, as (line, message)."""
    return [(int(m.group(1)), m.group(2)) for m in
            re.finditer(re.escape(path) + r":(\d+): (.*)", err)]


def test_every_error_of_a_file_is_reported():
    path = write_file(os.path.join(mkdtemp(), "bad.conf"), BAD)
    for pre in ([], ["-n"]):
        rc, out, err = run_tallyd(*(pre + ["--config", path, "--data",
                                           os.path.join(mkdtemp(), "d")]))
        eq(rc, 78, "%sexit code (stderr %r)" % (" ".join(pre + [""]), err))
        got = error_lines(err, path)
        eq([n for n, _ in got], BAD_LINES, "the lines reported in %r" % err)
        msgs = dict(got)
        eq(msgs[8], 'rate_limit: "lots" is not a number', "line 8")
        eq(msgs[4], "max_connections_per_address: -1 is out of range "
           "(0 to 1000000)", "line 4")
        eq(msgs[5], "unknown section [nowhere]", "line 5")
        # One error, one line: nothing else is said.
        eq(len([ln for ln in err.splitlines() if ln.strip()]),
           len(BAD_LINES), "lines on stderr: %r" % err)


def test_a_bad_flag_is_named_as_typed():
    for args, want in (
            (["--rate-limit", "lots"], '--rate-limit: "lots" is not a number'),
            (["--count-max-age", "1500ms"],
             "--count-max-age: 1500ms is not a whole number of seconds"),
            (["--rate-limit-address", "-2"],
             "--rate-limit-address: -2 is out of range (at least 0)")):
        rc, out, err = run_tallyd("-n", "--data",
                                  os.path.join(mkdtemp(), "d"), *args)
        eq(rc, 78, "exit code of %s (stderr %r)" % (args, err))
        eq(err.strip(), want, "stderr of %s" % args)


def test_address_limits_are_keys_and_flags():
    text = ("[server]\nmax_connections_per_address = 0\n"
            "[count]\nrate_limit_address = 0\nnew_visitors_per_address = 7\n")
    path = write_file(os.path.join(mkdtemp(), "good.conf"), text)
    rc, out, err = run_tallyd("-n", "--config", path, "--data",
                              os.path.join(mkdtemp(), "d"),
                              "--max-connections-per-address", "64",
                              "--rate-limit-address", "60",
                              "--new-visitors-per-address", "0")
    eq(rc, 0, "exit code (stderr %r)" % err)
    check("configuration OK" in out, "stdout %r" % out)


def test_reload_reports_every_error_and_keeps_the_configuration():
    conf = write_file(os.path.join(mkdtemp(), "c.conf"),
                      "[site x]\norigins = https://x.example\n")
    d = Daemon(["--config", conf])
    st, _, _ = d.request("GET", "/count?site=x")
    eq(st, 200, "site x before the reload")
    before = len(d.stderr())
    write_file(conf, BAD + "[site y]\n")
    d.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "keeping the running configuration" not in d.stderr()[before:]:
        check(time.monotonic() < deadline, "no reload failure logged: %r"
              % d.stderr()[before:])
        check(d.alive(), "tallyd died on a bad file")
        time.sleep(0.02)
    new = d.stderr()[before:]
    eq([n for n, _ in error_lines(new, conf)], BAD_LINES,
       "the lines reported on SIGHUP in %r" % new)
    check("configuration reloaded" not in new, "reloaded: %r" % new)
    st, _, _ = d.request("GET", "/count?site=x")
    eq(st, 200, "site x after the bad reload")
    st, _, _ = d.request("GET", "/count?site=y")
    eq(st, 404, "site y of the bad file")
    d.check_alive()


def test_restart_keys_are_named_on_reload():
    conf = write_file(os.path.join(mkdtemp(), "c.conf"),
                      "[store]\ndurability = batch\n")
    d = Daemon(["--config", conf])
    before = len(d.stderr())
    write_file(conf, "[store]\ndurability = strict\n"
               "[count]\nrate_limit_address = 3\n")
    d.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "configuration reloaded" not in d.stderr()[before:]:
        check(time.monotonic() < deadline, "no reload: %r"
              % d.stderr()[before:])
        time.sleep(0.02)
    new = d.stderr()[before:]
    check("durability changed; it takes effect after a restart" in new,
          "no restart warning for durability: %r" % new)
    check("rate_limit_address" not in new,
          "a key applied on reload is said to need a restart: %r" % new)
    d.check_alive()


if __name__ == "__main__":
    harness.main(globals())
