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

import datetime
import hashlib
import json
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


# ---------------------------------------------------------------- reset

def ua(i):
    return BROWSER_UA + " visitor/%d" % i


def ctl_ok(data, *args):
    rc, out, err = run_tallyctl("--data", data, *args)
    eq(rc, 0, "tallyctl %s: %s%s" % (" ".join(args), out, err))
    return out


def check_clean(data):
    rc, out, err = run_tallyctl("--data", data, "check")
    eq(rc, 0, "check exit status; %s%s" % (out, err))


def visits_after_reset(reset_args, path):
    n = 5
    d = Daemon(["--commit-interval", "20ms"])
    for i in range(n):
        d.hit(path, ua=ua(i))
    time.sleep(0.2)
    ctl_ok(d.data, "reset", "--site", "default", "--yes", *reset_args)
    for i in range(n):
        c = d.hit(path, ua=ua(i))
    return d, c, n


def test_site_reset_forgets_todays_visitors():
    d, c, n = visits_after_reset([], "/a")
    eq(c["today"]["visitors"], n, "site visitors today after the reset")
    eq(c["page"]["visitors"], n, "page visitors after the reset")
    eq(c["total"]["views"], n, "site views after the reset")
    c = d.hit("/b", ua=ua(0))
    eq(c["today"]["visitors"], n, "site visitors after a new page")
    eq(c["page"]["visitors"], 1, "visitors of the new page")
    eq(d.stop(), 0, "tallyd exit")
    check_clean(d.data)


def test_page_reset_forgets_todays_visitors():
    d, c, n = visits_after_reset(["--path", "/a"], "/a")
    eq(c["page"]["visitors"], n, "page visitors after the reset")
    eq(c["page"]["views"], n, "page views after the reset")
    eq(c["today"]["visitors"], n, "site visitors (kept, not counted again)")
    eq(d.stop(), 0, "tallyd exit")
    check_clean(d.data)


def test_reset_leaves_no_recent_rows_or_names():
    d, c, n = visits_after_reset([], "/a")
    eq(d.stop(), 0, "tallyd exit")
    ctl_ok(d.data, "reset", "--site", "default", "--yes")
    out = subprocess.run(["mdb_dump", "-a", d.data], stdout=subprocess.PIPE,
                         check=True).stdout.decode("latin-1")
    for db in ("recent", "names", "seen", "days", "series"):
        part = out.split("database=%s\n" % db, 1)
        check(len(part) == 2, "no database %s in the dump" % db)
        rows = part[1].split("HEADER=END\n", 1)[1].split("DATA=END", 1)[0]
        eq(rows.strip(), "", "rows left in %s after resetting the only site"
           % db)


def test_reset_under_load_keeps_check_clean():
    d = Daemon(["--commit-interval", "10ms"])
    stop = threading.Event()
    errors = []

    def load(k):
        i = 0
        while not stop.is_set():
            try:
                # New pages all the time: a visitor the site still
                # remembered after a reset would be a page's visitor
                # and not the site's.
                d.hit("/p%d" % i, ua=ua(k * 100 + i % 5))
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))
                return
            i += 1

    threads = [threading.Thread(target=load, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    try:
        for r in range(8):
            time.sleep(0.15)
            args = ["--path", "/p%d" % r] if r % 2 else []
            rc, out, err = run_tallyctl("--data", d.data, "reset", "--site",
                                        "default", "--yes", *args)
            # A page the load has not reached since the last site reset
            # has nothing to reset, and says so.
            check(rc == 0 or (rc == 1 and "nothing to reset" in err),
                  "reset %r: %d %r" % (args, rc, err))
            check_clean(d.data)
    finally:
        stop.set()
        for t in threads:
            t.join()
    eq(errors, [], "hit errors")
    eq(d.stop(), 0, "tallyd exit")
    check_clean(d.data)


# ---------------------------------------------------------------- backup

def dump(data, db=None):
    """mdb_dump of one database (or all, -a) as (key hex, value hex) pairs
    per database name."""
    args = ["mdb_dump"] + (["-s", db] if db else ["-a"]) + [data]
    out = subprocess.run(args, stdout=subprocess.PIPE, check=True)
    dbs, name, rows, inrows, key = {}, db or "", None, False, None
    for line in out.stdout.decode("ascii").splitlines():
        if line.startswith("database="):
            name = line.split("=", 1)[1]
        elif line == "HEADER=END":
            rows, inrows, key = [], True, None
        elif line == "DATA=END":
            dbs[name], inrows = rows, False
        elif inrows:
            if key is None:
                key = line.strip()
            else:
                rows.append((key, line.strip()))
                key = None
    return dbs


def salts_of(data):
    for k, v in dump(data, "meta")["meta"]:
        if bytes.fromhex(k) == b"salts":
            return bytes.fromhex(v)
    raise Failure("no salts in the store %s" % data)


def test_backup_holds_no_salt_and_no_visitor_id():
    d = Daemon()
    for i in range(4):
        d.hit("/a", ua=ua(i))
        d.hit("/b", ua=ua(i))
    eq(d.stop(), 0, "tallyd exit")
    live = dump(d.data)
    check(len(live["seen"]) >= 8, "the live store has no seen ids")
    salts = salts_of(d.data)
    dest = os.path.join(mkdtemp(), "backup")
    ctl_ok(d.data, "backup", dest)
    eq(sorted(os.listdir(dest)), ["data.mdb"], "the backup's files")
    b = dump(dest)
    eq(b["seen"], [], "seen rows in the backup")
    keys = [bytes.fromhex(k) for k, _ in b["meta"]]
    check(b"salts" not in keys, "salts in the backup's meta: %r" % keys)
    check(b"schema" in keys, "the backup's meta has no schema")
    raw = b""
    for f in sorted(os.listdir(dest)):
        with open(os.path.join(dest, f), "rb") as fh:
            raw += fh.read()
    # struct salt_rec: a 4-byte day, then the 16 bytes of the salt.
    check(len(salts) >= 20 and len(salts) % 20 == 0,
          "salts record of %d bytes" % len(salts))
    for i in range(0, len(salts), 20):
        salt = salts[i + 4:i + 20]
        check(salt != bytes(16), "an empty salt")
        check(salt not in raw, "a salt's bytes are in the backup's files")


def test_backup_has_the_stores_modes():
    data = made_store()
    os.chmod(data, 0o770)
    os.chmod(os.path.join(data, "data.mdb"), 0o660)
    parent = mkdtemp()
    dest = os.path.join(parent, "new")
    ctl_ok(data, "backup", dest)
    empty = os.path.join(parent, "empty")
    os.mkdir(empty, 0o700)
    ctl_ok(data, "backup", empty)
    for dst, dmode in ((dest, 0o770), (empty, 0o700)):
        eq(stat.S_IMODE(os.stat(os.path.join(dst, "data.mdb")).st_mode),
           0o660, "mode of %s/data.mdb" % dst)
        eq(stat.S_IMODE(os.stat(dst).st_mode), dmode, "mode of " + dst)


def test_backup_restores():
    d = Daemon()
    for i in range(3):
        d.hit("/a", ua=ua(i))
    d.hit("/b", ua=ua(0))
    time.sleep(0.5)  # a commit interval: the backup is taken hot
    dest = os.path.join(mkdtemp(), "backup")
    ctl_ok(d.data, "backup", dest)
    eq(d.stop(), 0, "tallyd exit")
    check_clean(dest)
    eq(ctl_ok(dest, "export"), ctl_ok(d.data, "export"), "the backup's export")
    r = Daemon(data=dest)
    c = r.count("/a")
    eq((c["page"]["views"], c["page"]["visitors"]), (3, 3), "/a restored")
    eq((c["total"]["views"], c["today"]["visitors"]), (4, 3), "site restored")
    eq(r.stop(), 0, "tallyd exit")


# ---------------------------------------------------------------- overflow

def new_data():
    return os.path.join(mkdtemp(), "data")


def import_refused(data, text, line, want=""):
    """import of text exits 1 naming FILE:line:, and changes nothing."""
    before = ctl_ok(data, "export") if os.path.exists(
        os.path.join(data, "data.mdb")) else None
    f = write_file(os.path.join(mkdtemp(), "in.csv"), text)
    # --add: rows the store already counts are merged, as these cases
    # mean; the refusal asked for is another.
    rc, out, err = run_tallyctl("--data", data, "import", "--add", f)
    eq(rc, 1, "import exit status (out %r, err %r)" % (out, err))
    check(("%s:%d: " % (f, line)) in err,
          "error %r does not name %s:%d:" % (err, f, line))
    check(want in err, "error %r does not say %r" % (err, want))
    check("nothing imported" in err, "error %r: nothing imported?" % err)
    if before is not None:
        eq(ctl_ok(data, "export"), before, "the store after a refused import")
    else:
        eq(ctl_ok(data, "export"), "site,day,path,views,visitors\n",
           "the store after a refused import")
    check_clean(data)
    return err


def test_import_that_would_wrap_is_refused():
    data = new_data()
    today = utc_today()
    ctl_ok(data, "import", write_file(
        os.path.join(mkdtemp(), "a.csv"),
        "default,%s,*,%d,1\n" % (today, I64_MAX)))
    import_refused(data, "default,%s,*,5,0\n" % today, 1, "largest count")
    import_refused(new_data(), "site,day,path,views,visitors\n"
                   "default,2026-01-01,*,%d,0\ndefault,2026-01-02,*,%d,0\n"
                   % (U64_MAX, 5), 2, "")
    import_refused(new_data(), "default,2026-01-01,*,%d,0\n"
                   "default,2026-01-02,*,%d,0\n" % (I64_MAX, I64_MAX), 2,
                   "largest count")


def test_sums_of_days_saturate_as_counts_do():
    # Two days at the largest count, the all-time count set back to 0 in
    # between so that import accepts the second: tallyctl's sums over
    # days showed 18,446,744,073,709,551,614, beyond the largest count.
    data = new_data()
    today = datetime.date.fromisoformat(utc_today())
    for back in (2, 1):
        day = (today - datetime.timedelta(days=back)).isoformat()
        ctl_ok(data, "import", write_file(
            os.path.join(mkdtemp(), "a.csv"),
            "default,%s,*,%d,1\ndefault,%s,/p,%d,1\n"
            % (day, I64_MAX, day, I64_MAX)))
        if back == 1:
            break
        for path in ("/p", None):
            ctl_ok(data, "set", "--site", "default",
                   *(("--path", path) if path else ()),
                   "--views", "0", "--visitors", "0", "--force")
    for days in ("30", "3"):
        top = json.loads(ctl_ok(data, "--json", "top", "--days", days))
        eq(top, [{"path": "/p", "views": I64_MAX, "visitors": 2}],
           "top --days " + days)
    stats = json.loads(ctl_ok(data, "--json", "stats"))
    for key in ("last7", "last30"):
        eq(stats[key], {"views": I64_MAX, "visitors": 2}, "stats " + key)
    out = ctl_ok(data, "history", "--site", "default", "--path", "/p",
                 "--days", "3")
    check("sum         9,223,372,036,854,775,807 views" in out,
          "history's sum: %r" % out)


def test_import_adjustments_never_overflow():
    # Two INT64_MAX adjustments overflowed a signed number (UBSan).
    import_refused(new_data(), "default,-,*,%d,0\ndefault,-,*,%d,0\n"
                   % (I64_MAX, I64_MAX), 2, "")
    # An adjustment below the count made it 18,446,744,073,709,551,611.
    data = new_data()
    ctl_ok(data, "import", write_file(os.path.join(mkdtemp(), "a.csv"),
                                      "default,2026-01-01,*,5,1\n"))
    import_refused(data, "default,-,*,-10,0\n", 1, "less than 0")
    rc, out, err = run_tallyctl("--data", data, "--json", "stats")
    eq(rc, 0, "stats: " + err)
    check("18446744073709551611" not in out, "a wrapped count: " + out)


def test_export_with_negative_adjustment_round_trips():
    data = made_store()
    ctl_ok(data, "set", "--site", "default", "--path", "/p0", "--views",
           "0", "--visitors", "0", "--force")
    exp = ctl_ok(data, "export")
    check(",-,/p0,-1,-1" in exp, "no negative adjustment in %r" % exp)
    other = new_data()
    ctl_ok(other, "import", write_file(os.path.join(mkdtemp(), "e.csv"), exp))
    eq(ctl_ok(other, "export"), exp, "export after import")
    check_clean(other)


def test_set_refuses_counts_that_do_not_fit():
    data = made_store()
    for n in (str(U64_MAX), str(I64_MAX + 1), "99999999999999999999999"):
        rc, out, err = run_tallyctl("--data", data, "set", "--site",
                                    "default", "--views", n)
        eq(rc, 2, "set --views %s (err %r)" % (n, err))
        check("--views" in err, "message %r" % err)
    rc, out, err = run_tallyctl("--data", data, "set", "--site", "default",
                                "--views", "5", "--visitors", "9")
    eq(rc, 1, "set with more visitors than views (err %r)" % err)
    rc, out, err = run_tallyctl("--data", data, "set", "--site", "default",
                                "--path", "/p0", "--views", "1000")
    eq(rc, 1, "set of a page above its site (err %r)" % err)
    check("more than the site" in err, "message %r" % err)
    check_clean(data)


def test_hits_on_the_largest_count_saturate():
    d = Daemon()
    d.hit("/a")
    time.sleep(0.5)
    ctl_ok(d.data, "set", "--site", "default", "--views", str(I64_MAX))
    ctl_ok(d.data, "set", "--site", "default", "--path", "/a", "--views",
           str(I64_MAX))
    for _ in range(3):
        c = d.hit("/a")
    eq(c["total"]["views"], I64_MAX, "site views at the largest count")
    eq(c["page"]["views"], I64_MAX, "page views at the largest count")
    eq(d.stop(), 0, "tallyd exit")
    check_clean(d.data)
    exp = ctl_ok(d.data, "export")
    other = new_data()
    ctl_ok(other, "import", write_file(os.path.join(mkdtemp(), "e.csv"), exp))
    eq(ctl_ok(other, "export"), exp, "export of a saturated store round-trips")


def test_hits_on_a_saturated_site_keep_the_store_consistent():
    # Only the site's all-time total at the largest count: its day must
    # still take every page's hit, or check finds pages larger than it.
    d = Daemon()
    d.hit("/a")
    time.sleep(0.5)
    ctl_ok(d.data, "set", "--site", "default", "--views", str(I64_MAX))
    uas = ["Mozilla/5.0 (X11; Linux x86_64) Firefox/12%d.0" % i
           for i in range(3)]
    for ua in uas:
        c = d.hit("/a", ua=ua)
    eq(c["total"]["views"], I64_MAX, "site views at the largest count")
    eq(c["today"]["views"], 4, "site views today")
    eq(d.stop(), 0, "tallyd exit")
    check_clean(d.data)
    rows = ctl_ok(d.data, "export").splitlines()
    today = utc_today()
    check("default,%s,*,4,4" % today in rows, "site day row: %r" % rows)
    check("default,%s,/a,4,4" % today in rows, "page day row: %r" % rows)


# ---------------------------------------------------------------- import = check

def test_import_refuses_more_visitors_than_views():
    import_refused(new_data(), "default,2026-01-01,*,5,1\n"
                   "default,2026-01-01,/a,2,3\n", 2, "visitors")
    data = new_data()
    ctl_ok(data, "import", write_file(os.path.join(mkdtemp(), "a.csv"),
                                      "default,2026-01-01,*,5,2\n"))
    # The merge, not the row, has more visitors than views.
    import_refused(data, "default,2026-01-01,*,0,4\n", 1, "visitors")


def test_import_refuses_pages_without_their_site():
    import_refused(new_data(), "site,day,path,views,visitors\n"
                   "default,2026-01-01,/a,2,1\n", 2, "")
    import_refused(new_data(), "default,2026-01-01,*,2,1\n"
                   "default,2026-01-02,/a,2,1\n", 2, "none")


def test_import_refuses_pages_larger_than_their_site():
    import_refused(new_data(), "default,2026-01-01,*,2,1\n"
                   "default,2026-01-01,/a,3,1\n"
                   "default,2026-01-01,/b,1,1\n", 2, "")
    import_refused(new_data(), "default,2026-01-01,*,5,2\n"
                   "default,2026-01-01,/a,3,1\n"
                   "default,-,/a,10,0\n", 3, "more than the site")


def patch_series(data, key, at, old, new):
    """Rewrites the u64 at offset at of the series record after key."""
    p = os.path.join(data, "data.mdb")
    with open(p, "r+b") as f:
        b = bytearray(f.read())
        i, done = b.find(key), 0
        # The key is also a value in "names": patch where old is.
        while i >= 0:
            j = i + len(key) + at
            if int.from_bytes(b[j:j + 8], "little") == old:
                b[j:j + 8] = new.to_bytes(8, "little")
                done += 1
            i = b.find(key, i + 1)
        if done != 1:
            raise Skip("series record layout not recognised")
        f.seek(0)
        f.write(b)


def test_check_reports_counts_that_cannot_be_right():
    data = new_data()
    ctl_ok(data, "import", write_file(
        os.path.join(mkdtemp(), "a.csv"),
        "default,2026-01-01,*,5,2\ndefault,2026-01-01,/a,3,1\n"))
    check_clean(data)
    # struct series_rec: u32 id, u32 npages, u64 views, u64 visitors.
    patch_series(data, b"default\x00/a", 8, 3, 50)
    patch_series(data, b"default\x00/a", 16, 1, 60)
    rc, out, err = run_tallyctl("--data", data, "check")
    eq(rc, 1, "check exit status (out %r)" % out)
    for want in ("50 views in all, more than the site's 5",
                 "60 visitors in all but only 50 views"):
        check(want in out, "check does not say %r: %r" % (want, out))


if __name__ == "__main__":
    harness.main(globals())
