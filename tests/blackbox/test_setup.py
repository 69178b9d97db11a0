#!/usr/bin/env python3
"""scripts/setup-debian installs what one job needs and nothing that starts
by itself. The script runs for real, with apt-get, dpkg-query and
systemctl replaced by stand-ins on PATH that keep a package list in a
scratch directory: nothing is installed. The stand-in apt-get asks
/usr/sbin/policy-rc.d, as invoke-rc.d would, whether nginx may start.

Root only: the script makes /usr/sbin/policy-rc.d when there is none."""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Skip, check, eq, mkdtemp  # noqa: E402

POLICY = "/usr/sbin/policy-rc.d"
BUILD = ["build-essential", "meson", "ninja-build", "pkg-config", "python3",
         "libevent-dev", "liblmdb-dev", "libsodium-dev",
         "libsystemd-dev", "libhttp-parser-dev", "zlib1g-dev", "scdoc",
         "libpq-dev"]
NOT_FOR_BUILDING = ["chromium", "firefox-esr", "prometheus", "clang", "valgrind", "goaccess",
                    "wrk", "nginx-light", "faketime", "lintian"]

# Stand-ins. $STATE/installed: one package a line; $STATE/enabled: enabled
# units; $STATE/log: what was asked. nginx-light brings nginx-common, whose
# postinst enables nginx.service, as on Debian.
APT_GET = r'''#!/bin/sh
echo "apt-get $*" >>"$STATE/log"
[ "$1" = install ] || exit 0
/usr/sbin/policy-rc.d nginx start
echo "policy-rc.d $?" >>"$STATE/log"
for a; do
	case $a in -*|install) ;; *) echo "$a" >>"$STATE/installed" ;; esac
	if [ "$a" = nginx-light ]; then
		echo nginx-common >>"$STATE/installed"
		echo nginx.service >>"$STATE/enabled"
	fi
done
'''
DPKG_QUERY = r'''#!/bin/sh
# -W -f=FORMAT [PKG] and -L PKG, from $STATE/installed.
if [ "$1" = -L ]; then
	[ "$2" = nginx-common ] && echo /lib/systemd/system/nginx.service
	exit 0
fi
if [ $# -eq 3 ]; then
	grep -qx "$3" "$STATE/installed" || exit 1
	echo "install ok installed"
else
	sed 's/^/ii  /' "$STATE/installed"
fi
'''
SYSTEMCTL = r'''#!/bin/sh
echo "systemctl $*" >>"$STATE/log"
case $1 in
is-enabled)
	grep -qx "$2" "$STATE/enabled" && { echo enabled; exit 0; }
	echo disabled; exit 1 ;;
disable)
	for u; do
		grep -vx "$u" "$STATE/enabled" >"$STATE/e" || :
		mv "$STATE/e" "$STATE/enabled"
	done ;;
is-active) exit 3 ;;
esac
'''


def script():
    return os.path.join(os.environ.get("MESON_SOURCE_ROOT") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", ".."),
        "scripts", "setup-debian")


def setup_debian(groups, installed=()):
    """Runs setup-debian GROUPS with the stand-ins; returns (exit code,
    stderr, the log lines, the packages installed after)."""
    d = mkdtemp(prefix="tally-setup-")
    stubs = os.path.join(d, "bin")
    os.mkdir(stubs)
    for name, text in (("apt-get", APT_GET), ("dpkg-query", DPKG_QUERY),
                       ("systemctl", SYSTEMCTL)):
        harness.write_file(os.path.join(stubs, name), text)
        os.chmod(os.path.join(stubs, name), 0o755)
    harness.write_file(os.path.join(d, "installed"),
                       "".join(p + "\n" for p in installed))
    for f in ("enabled", "log"):
        harness.write_file(os.path.join(d, f), "")
    env = dict(os.environ, STATE=d,
               PATH=stubs + os.pathsep + os.environ.get("PATH", ""))
    p = subprocess.run([script()] + groups, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env, timeout=60)
    with open(os.path.join(d, "log")) as f:
        log = f.read().splitlines()
    with open(os.path.join(d, "installed")) as f:
        after = f.read().split()
    with open(os.path.join(d, "enabled")) as f:
        enabled = f.read().split()
    return (p.returncode, p.stderr.decode("utf-8", "replace"), log, after,
            enabled)


def policy_state():
    try:
        with open(POLICY, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def setup():
    if os.geteuid() != 0:
        raise Skip("not root: setup-debian makes %s" % POLICY)


def test_build_installs_only_what_building_needs():
    before = policy_state()
    rc, err, log, after, _ = setup_debian(["build"])
    eq(rc, 0, "exit status (stderr: %s)" % err)
    installs = [l for l in log if l.startswith("apt-get install")]
    eq(len(installs), 1, "apt-get install calls: %s" % log)
    check("--no-install-recommends" in installs[0].split(),
          "apt-get install without --no-install-recommends: %s" % installs[0])
    eq(sorted(after), sorted(BUILD), "packages installed for building")
    for p in NOT_FOR_BUILDING:
        check(p not in after, "%s installed for building" % p)
    lines = [l for l in err.splitlines() if l.startswith("setup-debian: build:")]
    eq(len(lines), 1, "one line saying what the build group installs and "
       "why (stderr: %s)" % err)
    check("policy-rc.d 101" in log, "a service could start during apt-get: "
          "%s" % log)
    eq(policy_state(), before, "%s after setup-debian" % POLICY)


def test_nothing_installed_stays_enabled():
    before = policy_state()
    rc, err, log, after, enabled = setup_debian(["build", "bench"],
                                                installed=BUILD)
    eq(rc, 0, "exit status (stderr: %s)" % err)
    check("nginx-light" in after and "wrk" in after,
          "bench tools not installed: %s" % after)
    check(not any(l.startswith("setup-debian: build:")
                  for l in err.splitlines()),
          "a line for a group with nothing missing: %s" % err)
    check("policy-rc.d 101" in log, "nginx could start during apt-get: %s"
          % log)
    eq(enabled, [], "units left enabled")
    check("disabled nginx.service" in err, "no line saying nginx.service "
          "was disabled: %s" % err)
    eq(policy_state(), before, "%s after setup-debian" % POLICY)


def test_nothing_missing_does_nothing():
    rc, err, log, _, _ = setup_debian(["build"], installed=BUILD)
    eq((rc, err, log), (0, "", []), "exit, stderr and calls with nothing "
       "missing")


def test_unknown_group_is_a_usage_error():
    for args in ([], ["everything"]):
        rc, err, log, _, _ = setup_debian(args)
        eq(rc, 2, "exit status of setup-debian %s" % " ".join(args))
        check("usage" in err, "no usage line: %r" % err)
        eq(log, [], "calls made on a usage error")


if __name__ == "__main__":
    harness.main(globals(), setup=setup)
