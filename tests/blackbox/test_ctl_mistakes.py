#!/usr/bin/env python3
"""tallyctl says no to mistakes: an unknown site, a set below today, a
reset of nothing, a mistyped option or command, an export imported
twice; and help for every command. Each gets a clear message and a
non-zero exit; nothing in the store changes."""

import os
import pty
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (Daemon, check, eq, mkdtemp, run_tallyctl,  # noqa: E402
                     utc_today, write_file)

HEADER = "site,day,path,views,visitors"


def ctl(*args, **kw):
    return run_tallyctl(*args, **kw)


def ok(*args):
    rc, out, err = ctl(*args)
    eq(rc, 0, "tallyctl %s (stderr %r)" % (" ".join(args), err))
    return out


def store_with_counts():
    data = os.path.join(mkdtemp(), "data")
    f = write_file(os.path.join(mkdtemp(), "a.csv"),
                   "%s\ndefault,2026-01-01,*,5,2\ndefault,2026-01-01,/a,3,1\n"
                   % HEADER)
    ok("--data", data, "import", f)
    return data


def test_unknown_site_is_an_error_for_every_reading_command():
    data = store_with_counts()
    before = ok("--data", data, "export")
    for cmd in (["stats"], ["top"], ["page", "/a"], ["history"],
                ["export"]):
        rc, out, err = ctl("--data", data, *cmd, "--site", "nosuch")
        eq(rc, 1, "%s --site nosuch (stderr %r)" % (cmd[0], err))
        check('unknown site "nosuch"' in err and "known sites: default" in
              err, "%s: message %r" % (cmd[0], err))
        eq(out, "", "%s printed counts of an unknown site" % cmd[0])
    # A site the configuration names is known before it has counts.
    conf = write_file(os.path.join(mkdtemp(), "t.conf"),
                      "[store]\ndata = %s\n[site blog]\n" % data)
    rc, out, err = ctl("--config", conf, "stats", "--site", "blog")
    eq(rc, 0, "stats of a configured site without counts (stderr %r)" % err)
    rc, out, err = ctl("--config", conf, "stats", "--site", "shop")
    eq(rc, 1, "stats of a site the configuration does not name")
    check("known sites: blog, default" in err, "message %r" % err)
    eq(ok("--data", data, "export"), before, "the store after the mistakes")


def test_set_makes_no_phantom_site():
    data = store_with_counts()
    rc, out, err = ctl("--data", data, "set", "--site", "nosuch",
                       "--views", "10")
    eq(rc, 1, "set of an unknown site (stderr %r)" % err)
    check("--create" in err and "known sites: default" in err,
          "message %r" % err)
    check("nosuch" not in ok("--data", data, "sites"), "a phantom site")
    ok("--data", data, "set", "--site", "nosuch", "--views", "10",
       "--create")
    check("nosuch" in ok("--data", data, "sites"), "--create made no site")


def test_set_below_today_needs_force():
    d = Daemon()
    for i in range(4):
        d.hit("/p%d" % i)
    time.sleep(0.4)
    rc, out, err = ctl("--data", d.data, "set", "--site", "default",
                       "--views", "2")
    eq(rc, 1, "set below today (stderr %r)" % err)
    check("today already has 4 views" in err and "--force" in err,
          "message %r" % err)
    eq(d.count("/p0")["total"]["views"], 4, "total after the refused set")
    rc, out, err = ctl("--data", d.data, "set", "--site", "default",
                       "--views", "100", "--visitors", "0")
    eq(rc, 1, "set of visitors below today (stderr %r)" % err)
    ok("--data", d.data, "set", "--site", "default", "--views", "2",
       "--force")
    eq(d.count("/p0")["total"]["views"], 2, "total after set --force")


def test_reset_of_nothing_fails():
    data = store_with_counts()
    rc, out, err = ctl("--data", data, "reset", "--site", "ghost", "--yes")
    eq(rc, 1, "reset of a site without counts (stderr %r)" % err)
    check("nothing to reset" in err, "message %r" % err)
    check("deleted" not in out, "reset claims to have deleted: %r" % out)
    rc, out, err = ctl("--data", data, "reset", "--site", "default",
                       "--path", "/nope", "--yes")
    eq(rc, 1, "reset of a path without counts (stderr %r)" % err)
    check("nothing to reset" in err, "message %r" % err)
    ok("--data", data, "reset", "--site", "default", "--path", "/a", "--yes")


def test_reset_asks_about_what_it_would_delete():
    data = store_with_counts()
    before = ok("--data", data, "export")
    master, slave = pty.openpty()
    p = subprocess.Popen([harness.tallyctl_path(), "--data", data, "reset",
                          "--site", "default", "--path", "/a"],
                         stdin=slave, stderr=slave, stdout=subprocess.PIPE)
    os.close(slave)
    asked = b""
    while b"[y/N]" not in asked:
        chunk = os.read(master, 1024)
        check(chunk, "no question asked: %r" % asked)
        asked += chunk
    os.write(master, b"n\n")
    eq(p.wait(timeout=10), 1, "exit code when not confirmed")
    os.close(master)
    check(b"Delete the counts of default /a (3 views)?" in asked,
          "question %r" % asked)
    eq(ok("--data", data, "export"), before, "the store after no")


def test_mistyped_options_and_commands_are_named():
    data = store_with_counts()
    cases = [
        (["--dta", data, "stats"], "unknown option --dta (did you mean "
         "--data?)"),
        (["--data", data, "top", "--limt", "3"], "unknown option --limt "
         "(did you mean --limit?)"),
        (["--data", data, "stat"], "unknown command stat (did you mean "
         "stats?)"),
        (["--data", data, "frobnicate"], "unknown command frobnicate"),
    ]
    for args, want in cases:
        rc, out, err = ctl(*args)
        eq(rc, 2, "exit code of %r (stderr %r)" % (args, err))
        check(want in err, "%r: %r does not say %r" % (args, err, want))


def test_help_for_every_command():
    rc, out, err = ctl("help")
    eq(rc, 0, "tallyctl help")
    check("commands:" in out and "import-log" in out, "help: %r" % out)
    for cmd in ("stats", "top", "page", "history", "sites", "export",
                "import", "import-log", "set", "reset", "backup", "check"):
        rc, a, _ = ctl("help", cmd)
        eq(rc, 0, "help %s" % cmd)
        check(("] %s" % cmd) in a.splitlines()[0],
              "help %s: first line %r" % (cmd, a.splitlines()[0]))
        for form in ([cmd, "--help"], [cmd, "-h"]):
            rc, b, _ = ctl(*form)
            eq(rc, 0, "%r" % form)
            eq(b, a, "%r prints what help %s does" % (form, cmd))
    rc, out, err = ctl("help", "nosuch")
    eq(rc, 2, "help of an unknown command")


def test_importing_twice_needs_add():
    data = store_with_counts()
    exp = ok("--data", data, "export")
    f = write_file(os.path.join(mkdtemp(), "e.csv"), exp)
    rc, out, err = ctl("--data", data, "import", f)
    eq(rc, 1, "the same export again (stderr %r)" % err)
    check(("%s:2: " % f) in err and "--add" in err, "message %r" % err)
    eq(ok("--data", data, "export"), exp, "the store after the refusal")
    ok("--data", data, "import", "--add", f)
    check(",10,4" in ok("--data", data, "export"),
          "--add did not add the rows")


def test_import_of_an_unknown_site_needs_create():
    data = store_with_counts()
    f = write_file(os.path.join(mkdtemp(), "b.csv"),
                   "%s\nblog,%s,*,2,1\n" % (HEADER, utc_today()))
    rc, out, err = ctl("--data", data, "import", f)
    eq(rc, 1, "import of an unknown site (stderr %r)" % err)
    check(("%s:2: " % f) in err and "--create" in err, "message %r" % err)
    ok("--data", data, "import", "--create", f)


def test_import_log_of_an_unknown_site_needs_create():
    data = store_with_counts()
    log = write_file(os.path.join(mkdtemp(), "access.log"),
                     '10.0.0.1 - - [10/Mar/2026:12:00:00 +0000] "GET /a '
                     'HTTP/1.1" 200 512 "-" "Mozilla/5.0 (X11; Linux x86_64)'
                     ' Firefox/128.0"\n')
    before = ok("--data", data, "export")
    rc, out, err = ctl("--data", data, "import-log", log, "--site", "blgo")
    eq(rc, 1, "import-log into an unknown site (stderr %r)" % err)
    check('unknown site "blgo"' in err, "message %r" % err)
    eq(ok("--data", data, "export"), before, "the store after the refusal")
    ok("--data", data, "import-log", log, "--site", "blgo", "--create")
    check("blgo" in ok("--data", data, "sites"), "--create made no site")


def test_every_configuration_error_is_prefixed():
    conf = write_file(os.path.join(mkdtemp(), "bad.conf"),
                      "[count]\nrate_limit = lots\nmax_pages = none\n")
    rc, out, err = ctl("--config", conf, "stats")
    eq(rc, 78, "a bad configuration (stderr %r)" % err)
    lines = err.splitlines()
    check(len(lines) >= 2, "one line per error: %r" % err)
    for ln in lines:
        check(ln.startswith("tallyctl: "), "line without prefix: %r" % ln)
    check(any("bad.conf:2:" in ln for ln in lines) and
          any("bad.conf:3:" in ln for ln in lines), "lines %r" % lines)


if __name__ == "__main__":
    harness.main(globals())
