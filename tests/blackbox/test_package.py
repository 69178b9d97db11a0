#!/usr/bin/env python3
"""The Debian package, end to end: dpkg-buildpackage builds the source
package and tally_*.deb from a copy of the source tree, lintian finds no
error or warning in either, and on this machine apt-get installs it (the
tally user, the conffile, the units, the man pages; the installed tallyd
serves with /etc/tally/tallyd.conf), removes it (the counts in
/var/lib/tally stay) and purges it (they go).

It changes the machine it runs on, so it runs only as root, and only where
tally is not installed and /var/lib/tally does not exist; otherwise, or
without dpkg-buildpackage, it is skipped. Services are kept from starting
by a policy-rc.d that answers 101 (made for the install, removed after)."""

import fnmatch
import glob
import os
import pwd
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Skip, check, eq, mkdtemp  # noqa: E402

POLICY_RC_D = "/usr/sbin/policy-rc.d"
DATA = "/var/lib/tally"
CONF = "/etc/tally/tallyd.conf"
FILES = [
    "/usr/sbin/tallyd",
    "/usr/bin/tallyctl",
    CONF,
    "/usr/share/doc/tally/tallyd.conf.example",
    "/lib/systemd/system/tallyd.service",
    "/lib/systemd/system/tallyd.socket",
    "/usr/lib/sysusers.d/tally.conf",
    "/usr/share/man/man8/tallyd.8.gz",
    "/usr/share/man/man1/tallyctl.1.gz",
    "/usr/share/man/man5/tallyd.conf.5.gz",
]
WANTS = "/etc/systemd/system/multi-user.target.wants/tallyd.service"
SOCKET_WANTS = "/etc/systemd/system/sockets.target.wants/tallyd.socket"

_built = {}


def run(argv, timeout=600, **kw):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, timeout=timeout, **kw)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def source_root():
    r = os.environ.get("MESON_SOURCE_ROOT")
    if not r:
        r = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    return os.path.abspath(r)


def copy_source(dest):
    """The source tree as git sees it (tracked files and new ones not
    ignored, as they are on disk), or without git the tree minus build
    directories: never the builds, stores or caches lying around."""
    src = source_root()
    rc, out = (1, "")
    if shutil.which("git") and os.path.exists(os.path.join(src, ".git")):
        rc, out = run(["git", "-C", src, "ls-files", "-z", "--cached",
                       "--others", "--exclude-standard"])
    if rc == 0:
        for rel in filter(None, out.split("\0")):
            s = os.path.join(src, rel)
            if not os.path.isfile(s):
                continue  # deleted but not yet committed
            d = os.path.join(dest, rel)
            os.makedirs(os.path.dirname(d), exist_ok=True)
            shutil.copy2(s, d)
    else:
        shutil.copytree(src, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns(
            ".git", "build*", "obj-*", "tally-data", "__pycache__"))


def dpkg_excluded(path):
    """True when dpkg is told not to unpack path (path-exclude in
    dpkg.cfg, as slim container images do for man pages and docs)."""
    rules = []
    cfgs = ["/etc/dpkg/dpkg.cfg"] + sorted(glob.glob("/etc/dpkg/dpkg.cfg.d/*"))
    for cfg in cfgs:
        try:
            with open(cfg) as f:
                for line in f:
                    w = line.split()
                    if len(w) == 2 and w[0] in ("path-exclude", "path-include"):
                        rules.append((w[0], w[1]))
        except OSError:
            pass
    excluded = False
    for kind, pattern in rules:  # the last rule that matches wins
        if fnmatch.fnmatch(path, pattern):
            excluded = kind == "path-exclude"
    return excluded


def installed(pkg):
    rc, out = run(["dpkg-query", "-W", "-f=${Status}", pkg])
    return rc == 0 and "installed" in out and "not-installed" not in out


def apt_get(*args):
    """apt-get with services kept from starting: a policy-rc.d that exits
    101, unless the machine has one already (it is then left as it is)."""
    made = False
    if not os.path.exists(POLICY_RC_D):
        with open(POLICY_RC_D, "w") as f:
            f.write("#!/bin/sh\n# made by tally's test_package.py\nexit 101\n")
        os.chmod(POLICY_RC_D, 0o755)
        made = True
    try:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        return run(["apt-get", "-y", "-o", "DPkg::Lock::Timeout=600"] +
                   list(args), env=env)
    finally:
        if made:
            os.unlink(POLICY_RC_D)


def setup_failed(why):
    print("FAIL setup: %s" % why, flush=True)
    harness.cleanup()
    sys.exit(1)


def setup():
    if os.geteuid() != 0:
        raise Skip("not root: installing a package needs root")
    for tool in ("dpkg-buildpackage", "apt-get", "dpkg-query"):
        if not shutil.which(tool):
            raise Skip("%s is missing (apt-get install dpkg-dev debhelper)"
                       % tool)
    if installed("tally") or os.path.exists(DATA):
        raise Skip("tally is installed here or %s exists: this test would "
                   "replace or purge them" % DATA)
    top = mkdtemp(prefix="tally-package-")
    src = os.path.join(top, "tally")
    copy_source(src)
    # Source and binary, so that lintian checks debian/ as well.
    rc, out = run(["dpkg-buildpackage", "-us", "-uc"], cwd=src, timeout=900)
    if rc != 0:
        setup_failed("dpkg-buildpackage exited %d:\n%s" % (rc, out[-4000:]))
    debs = glob.glob(os.path.join(top, "tally_*.deb"))
    changes = glob.glob(os.path.join(top, "tally_*.changes"))
    if len(debs) != 1 or len(changes) != 1:
        setup_failed("expected one tally_*.deb and one .changes in %s, got "
                     "%s" % (top, os.listdir(top)))
    _built.update(top=top, src=src, deb=debs[0], changes=changes[0])


def test_version_is_the_projects():
    with open(os.path.join(_built["src"], "meson.build")) as f:
        want = re.search(r"version:\s*'([^']+)'", f.read()).group(1)
    rc, got = run(["dpkg-deb", "-f", _built["deb"], "Version"])
    eq(rc, 0, "dpkg-deb -f exit")
    eq(got.strip(), want, "package version (debian/changelog) vs meson.build")


def test_lintian_clean():
    if not shutil.which("lintian"):
        raise Skip("lintian is missing (apt-get install lintian)")
    rc, out = run(["lintian", "--color", "never", _built["changes"]])
    bad = [line for line in out.splitlines() if re.match(r"[EW]: ", line)]
    eq(bad, [], "lintian errors and warnings")
    eq(rc, 0, "lintian exit status (output: %s)" % out[-2000:])


def test_install():
    rc, out = apt_get("install", "--no-install-recommends", _built["deb"])
    check(rc == 0, "apt-get install exited %d:\n%s" % (rc, out[-3000:]))
    check(installed("tally"), "tally is not installed after apt-get install")
    rc, listing = run(["dpkg-deb", "-c", _built["deb"]])
    for f in FILES:
        check("." + f in listing, "%s is not in the package" % f)
        check(os.path.isfile(f) or dpkg_excluded(f), "%s is missing" % f)
    rc, conffiles = run(["dpkg-query", "-W", "-f=${Conffiles}", "tally"])
    check(CONF in conffiles, "%s is not a conffile: %r" % (CONF, conffiles))
    try:
        pw = pwd.getpwnam("tally")
    except KeyError:
        raise harness.Failure("no user tally after install")
    eq(pw.pw_dir, DATA, "home of the tally user")
    with open("/lib/systemd/system/tallyd.service") as f:
        unit = f.read()
    check("ExecStart=/usr/sbin/tallyd --config %s " % CONF in unit,
          "tallyd.service does not run /usr/sbin/tallyd --config %s" % CONF)
    # Enabled the Debian way (deb-systemd-helper), socket left alone.
    check(os.path.islink(WANTS), "tallyd.service is not enabled (%s)" % WANTS)
    check(not os.path.lexists(SOCKET_WANTS), "tallyd.socket is enabled")
    rc, out = run(["/usr/sbin/tallyd", "-n", "--config", CONF], timeout=30)
    eq(rc, 0, "tallyd -n --config %s exit (%s)" % (CONF, out.strip()))


def test_installed_tallyd_serves():
    """The installed tallyd on the installed configuration answers
    /healthz (on a free port and a scratch store, not the system's)."""
    if not installed("tally"):
        raise Skip("tally is not installed")
    saved = os.environ.get("TALLYD")
    os.environ["TALLYD"] = "/usr/sbin/tallyd"
    try:
        d = harness.Daemon(args=["--config", CONF])
        d.check_alive()
        eq(d.stop(), 0, "exit status on SIGTERM")
    finally:
        if saved is None:
            del os.environ["TALLYD"]
        else:
            os.environ["TALLYD"] = saved


def test_remove_keeps_data():
    if not installed("tally"):
        raise Skip("tally is not installed")
    os.makedirs(DATA, exist_ok=True)
    keep = os.path.join(DATA, "kept-by-remove")
    harness.write_file(keep, "counts\n")
    rc, out = apt_get("remove", "tally")
    check(rc == 0, "apt-get remove exited %d:\n%s" % (rc, out[-3000:]))
    check(not os.path.exists("/usr/sbin/tallyd"), "tallyd left by remove")
    check(os.path.isfile(keep), "remove deleted %s" % keep)
    check(os.path.isfile(CONF), "remove deleted the conffile %s" % CONF)


def test_purge_removes_data():
    rc, out = run(["dpkg-query", "-W", "-f=${Status}", "tally"])
    if rc != 0 or "config-files" not in out:
        raise Skip("tally is not in the removed state (%s)" % out.strip())
    rc, out = apt_get("purge", "tally")
    check(rc == 0, "apt-get purge exited %d:\n%s" % (rc, out[-3000:]))
    check(not os.path.exists(DATA), "%s left by purge" % DATA)
    check(not os.path.exists(CONF), "%s left by purge" % CONF)
    check(not os.path.lexists(WANTS), "%s left by purge" % WANTS)
    # Debian leaves system users in place: their files may remain
    # elsewhere, and a reused id would hand those to someone else.
    try:
        pwd.getpwnam("tally")
    except KeyError:
        raise harness.Failure("purge removed the tally user")


if __name__ == "__main__":
    harness.main(globals(), setup=setup)
