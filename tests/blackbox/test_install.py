#!/usr/bin/env python3
"""`meson install` into a DESTDIR: the binaries, the units (with the
installed paths), the sysusers file, the example configuration and the man
pages land where they belong, and they work: the installed tallyd checks
the installed configuration, the man pages render, `man tallyctl` finds
its page, and the pages describe every flag and command that --help lists.

Environment: MESON_BUILD_ROOT (else the directory of $TALLYD) is the build
directory to install from; MESON, the meson to run (else meson on PATH)."""

import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Skip, check, eq, mkdtemp, tallyd_path  # noqa: E402

MAN_PAGES = {"tallyd.8": "man8", "tallyctl.1": "man1",
             "tallyd.conf.5": "man5"}

_install = {}


def build_root():
    b = os.environ.get("MESON_BUILD_ROOT") or os.path.dirname(tallyd_path())
    if not os.path.isdir(os.path.join(b, "meson-private")):
        raise Skip("%s is not a meson build directory (set "
                   "MESON_BUILD_ROOT)" % b)
    return b


def meson():
    m = os.environ.get("MESON") or shutil.which("meson")
    if not m:
        raise Skip("meson not found (set MESON)")
    return m


def options():
    with open(os.path.join(build_root(), "meson-info",
                           "intro-buildoptions.json")) as f:
        return {o["name"]: o["value"] for o in json.load(f)}


def under_prefix(opts, key):
    v = opts[key]
    return v if os.path.isabs(v) else os.path.join(opts["prefix"], v)


def pkg_var(var):
    pc = shutil.which("pkg-config")
    if not pc:
        return ""
    p = subprocess.run([pc, "--variable=" + var, "systemd"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return p.stdout.decode().strip() if p.returncode == 0 else ""


def install(destdir=None):
    """Runs meson install into a DESTDIR (the same one on every call
    within a case that passes it); returns (destdir, output)."""
    destdir = destdir or mkdtemp(prefix="tally-destdir-")
    p = subprocess.run([meson(), "install", "-C", build_root(),
                        "--no-rebuild", "--destdir", destdir],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=300)
    out = p.stdout.decode("utf-8", "replace")
    check(p.returncode == 0, "meson install exited %d:\n%s"
          % (p.returncode, out[-3000:]))
    return destdir, out


def tree():
    """One install shared by the cases that only look."""
    if "dest" not in _install:
        _install["dest"], _install["out"] = install()
    return _install["dest"]


def dpath(dest, path):
    return os.path.join(dest, path.lstrip("/"))


def man_file(dest, opts, page):
    base = dpath(dest, os.path.join(under_prefix(opts, "mandir"),
                                    MAN_PAGES[page], page))
    for p in (base, base + ".gz"):
        if os.path.exists(p):
            return p
    return None


def unit_dir(opts):
    return (opts.get("systemdunitdir") or pkg_var("systemdsystemunitdir")
            or os.path.join(opts["prefix"], "lib", "systemd", "system"))


def sysusers_dir(opts):
    return (opts.get("sysusersdir") or pkg_var("sysusersdir")
            or os.path.join(opts["prefix"], "lib", "sysusers.d"))


def conf_path(opts):
    return os.path.join(under_prefix(opts, "sysconfdir"), "tally",
                        "tallyd.conf")


def run(args, env=None, timeout=60, input=None):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=e, timeout=timeout, input=input)
    return (p.returncode, p.stdout.decode("utf-8", "replace"),
            p.stderr.decode("utf-8", "replace"))


def man_available():
    if not shutil.which("man"):
        return False
    rc, out, err = run(["man", "--version"])
    return rc == 0


def render(page_file):
    """The page as text, through man -l (or nothing when man is absent)."""
    rc, out, err = run(["man", "-l", "-P", "cat", page_file],
                       env={"MANWIDTH": "100", "LC_ALL": "C.UTF-8"})
    check(rc == 0, "man -l %s exited %d: %s" % (page_file, rc, err[-500:]))
    return re.sub(r".\x08", "", out)


# ------------------------------------------------------------------ cases

def test_tree():
    dest = tree()
    opts = options()
    sbin = dpath(dest, os.path.join(under_prefix(opts, "sbindir"), "tallyd"))
    bin_ = dpath(dest, os.path.join(under_prefix(opts, "bindir"), "tallyctl"))
    check(os.access(sbin, os.X_OK), "no executable tallyd in sbindir (%s)"
          % sbin)
    check(os.access(bin_, os.X_OK), "no executable tallyctl in bindir (%s)"
          % bin_)
    for name in ("tallyd.service", "tallyd.socket"):
        p = dpath(dest, os.path.join(unit_dir(opts), name))
        check(os.path.isfile(p), "no %s in %s" % (name, unit_dir(opts)))
    check(os.path.isfile(dpath(dest, os.path.join(sysusers_dir(opts),
                                                  "tally.conf"))),
          "no tally.conf in %s" % sysusers_dir(opts))
    check(os.path.isfile(dpath(dest, conf_path(opts))),
          "no %s" % conf_path(opts))
    example = dpath(dest, os.path.join(under_prefix(opts, "datadir"), "doc",
                                       "tally", "tallyd.conf.example"))
    check(os.path.isfile(example), "no %s" % example)
    found = [p for p in MAN_PAGES if man_file(dest, opts, p)]
    if opts.get("man-pages") == "disabled" or not shutil.which("scdoc"):
        eq(found, [], "man pages installed with man-pages disabled or no "
           "scdoc")
        print("# no man pages: -Dman-pages=disabled or no scdoc")
    else:
        eq(sorted(found), sorted(MAN_PAGES), "man pages installed")
    # Nothing lands outside the prefix but the systemd files and the
    # configuration.
    allowed = [opts["prefix"], unit_dir(opts), sysusers_dir(opts),
               os.path.dirname(conf_path(opts))]
    for root, _, files in os.walk(dest):
        for f in files:
            real = "/" + os.path.relpath(os.path.join(root, f), dest)
            check(any(real.startswith(a.rstrip("/") + "/") for a in allowed),
                  "%s is installed outside %r" % (real, allowed))


def test_installed_unit_names_installed_paths():
    dest = tree()
    opts = options()
    with open(dpath(dest, os.path.join(unit_dir(opts),
                                       "tallyd.service"))) as f:
        unit = f.read()
    check(not re.search(r"@[a-z_]+@", unit),
          "an unsubstituted @variable@ in the installed unit")
    m = re.search(r"^ExecStart=(\S+) (.*)$", unit, re.M)
    check(m is not None, "no ExecStart= in the installed unit")
    eq(m.group(1), os.path.join(under_prefix(opts, "sbindir"), "tallyd"),
       "ExecStart= program")
    args = m.group(2).split()
    check("--config" in args, "ExecStart= has no --config")
    eq(args[args.index("--config") + 1], conf_path(opts), "--config path")
    check("${STATE_DIRECTORY}" in args, "ExecStart= has no "
          "--data ${STATE_DIRECTORY}")


def test_installed_tallyd_runs_on_installed_config():
    dest = tree()
    opts = options()
    sbin = dpath(dest, os.path.join(under_prefix(opts, "sbindir"), "tallyd"))
    conf = dpath(dest, conf_path(opts))
    rc, out, err = run([sbin, "--version"])
    eq(rc, 0, "installed tallyd --version (stderr %r)" % err)
    rc, out, err = run([sbin, "-n", "--config", conf])
    eq((rc, out.strip()), (0, "configuration OK"),
       "tallyd -n on the installed configuration (stderr %r)" % err)
    bin_ = dpath(dest, os.path.join(under_prefix(opts, "bindir"), "tallyctl"))
    rc, out, err = run([bin_, "--version"])
    eq(rc, 0, "installed tallyctl --version (stderr %r)" % err)


def test_example_config_has_every_key_commented():
    dest = tree()
    opts = options()
    with open(dpath(dest, conf_path(opts)), encoding="utf-8") as f:
        text = f.read()
    active = [l for l in text.split("\n")
              if l.strip() and not l.lstrip().startswith(("#", ";", "["))]
    eq(active, [], "keys that are not commented out")
    keys = set(re.findall(r"^#([a-z_]+) =(?: |$)", text, re.M))
    want = {"listen", "threads", "trusted_proxies", "client_ip_header",
            "admin_allow", "idle_timeout", "max_connections", "access_log",
            "log_level", "data", "durability", "commit_interval", "timezone",
            "rate_limit", "max_pages", "bots", "dnt", "count_max_age",
            "origins", "labels", "locale", "max_connections_per_address",
            "rate_limit_address", "new_visitors_per_address", "url",
            "buffer_max"}
    eq(sorted(want - keys), [], "keys missing from the example")
    # Uncommented, every example value is valid.
    sbin = dpath(dest, os.path.join(under_prefix(opts, "sbindir"), "tallyd"))
    live = re.sub(r"^#(\[|[a-z_]+ =)", r"\1", text, flags=re.M)
    p = harness.write_file(os.path.join(mkdtemp(), "all.conf"), live)
    rc, out, err = run([sbin, "-n", "--config", p])
    eq(rc, 0, "tallyd -n on the example with every key uncommented "
       "(stderr %r)" % err)


def test_reinstall_keeps_an_edited_config():
    dest, _ = install()
    opts = options()
    conf = dpath(dest, conf_path(opts))
    with open(conf, "a") as f:
        f.write("\n[site mine]\n")
    install(dest)
    with open(conf) as f:
        check("[site mine]" in f.read(),
              "meson install overwrote an edited %s" % conf_path(opts))


def test_man_pages_render():
    dest = tree()
    opts = options()
    if not any(man_file(dest, opts, p) for p in MAN_PAGES):
        raise Skip("no man pages installed (scdoc missing)")
    if not man_available():
        raise Skip("man is not installed")
    for page in MAN_PAGES:
        f = man_file(dest, opts, page)
        text = render(f)
        name = page.rsplit(".", 1)[0]
        for sec in ("NAME", "SYNOPSIS", "DESCRIPTION", "SEE ALSO"):
            check(re.search(r"^%s$" % sec, text, re.M),
                  "%s has no %s section" % (page, sec))
        check(name in text.split("\n")[0], "%s: header %r"
              % (page, text.split("\n")[0]))
        # No roff warnings (a stray macro, an unknown escape).
        rc, out, err = run(["man", "--warnings", "-l", "-P", "cat", f],
                           env={"MANWIDTH": "100", "LC_ALL": "C.UTF-8"})
        eq(err.strip(), "", "warnings rendering %s" % page)


def test_man_tallyctl_after_install():
    # What a user types once the tree is in place: `man tallyctl`, here
    # with MANPATH pointing into the DESTDIR.
    dest = tree()
    opts = options()
    if not man_file(dest, opts, "tallyctl.1"):
        raise Skip("no man pages installed (scdoc missing)")
    if not man_available():
        raise Skip("man is not installed")
    mp = dpath(dest, under_prefix(opts, "mandir"))
    for page in ("tallyctl", "tallyd", "tallyd.conf"):
        rc, out, err = run(["man", "-P", "cat", page],
                           env={"MANPATH": mp, "MANWIDTH": "100",
                                "LC_ALL": "C.UTF-8"})
        eq(rc, 0, "man %s with MANPATH=%s (stderr %r)" % (page, mp, err))
        check(page in out, "man %s shows something else" % page)


def flat(text):
    return re.sub(r"\s+", " ", re.sub(r"‐\n\s*|-\n\s*(?=[a-z])", "-",
                                       text))


def test_man_pages_match_help():
    dest = tree()
    opts = options()
    if not man_file(dest, opts, "tallyd.8"):
        raise Skip("no man pages installed (scdoc missing)")
    if not man_available():
        raise Skip("man is not installed")
    # tallyd: every option of --help, and the synopsis as --help has it.
    rc, help_, _ = run([tallyd_path(), "--help"])
    eq(rc, 0, "tallyd --help")
    page = render(man_file(dest, opts, "tallyd.8"))
    usage = help_.split("\n\n")[0]
    synopsis = page.split("SYNOPSIS", 1)[1].split("DESCRIPTION", 1)[0]
    eq(flat(synopsis).strip(), flat(usage.replace("usage: ", "", 1)).strip(),
       "tallyd(8) SYNOPSIS vs tallyd --help")
    for opt in sorted(set(re.findall(r"--[a-z][a-z-]+", help_))):
        check(re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(opt),
                        flat(page.split("DESCRIPTION", 1)[1])),
              "tallyd(8) does not describe %s" % opt)
    # tallyctl: the synopsis and every command line of --help.
    rc, help_, _ = run([harness.tallyctl_path(), "--help"])
    eq(rc, 0, "tallyctl --help")
    page = flat(render(man_file(dest, opts, "tallyctl.1")))
    first = help_.split("\n")[0].replace("usage: ", "")
    check(flat(first) in page, "tallyctl(1) lacks the synopsis %r" % first)
    cmds = re.findall(r"^  ([a-z][a-z-]*)( .*)?$",
                      help_.split("commands:", 1)[1].split("\n\n")[0], re.M)
    check(len(cmds) >= 10, "commands in tallyctl --help: %r" % cmds)
    for name, args in cmds:
        line = flat((name + (args or "")).strip())
        check(line in page, "tallyctl(1) lacks the command line %r" % line)
    for opt in re.findall(r"--[a-z][a-z-]+", help_):
        check(opt in page, "tallyctl(1) does not mention %s" % opt)
    # tallyd.conf(5): every key of the example.
    page = flat(render(man_file(dest, opts, "tallyd.conf.5")))
    with open(dpath(dest, conf_path(opts)), encoding="utf-8") as f:
        keys = set(re.findall(r"^#([a-z_]+) = ", f.read(), re.M))
    for k in sorted(keys):
        check(re.search(r"(?<![\w-])%s =" % k, page),
              "tallyd.conf(5) does not describe %s" % k)


def test_sysusers_makes_the_user():
    dest = tree()
    opts = options()
    su = shutil.which("systemd-sysusers")
    if su is None:
        raise Skip("systemd-sysusers not installed")
    root = mkdtemp(prefix="tally-root-")
    os.makedirs(os.path.join(root, "etc"))
    f = dpath(dest, os.path.join(sysusers_dir(opts), "tally.conf"))
    rc, out, err = run([su, "--root", root, f])
    if rc != 0 and "ermission" in err:
        raise Skip("systemd-sysusers cannot run here: %s" % err.strip())
    eq(rc, 0, "systemd-sysusers (stderr %r)" % err)
    with open(os.path.join(root, "etc", "passwd")) as fp:
        users = {l.split(":")[0]: l.strip().split(":")
                 for l in fp if l.strip()}
    with open(os.path.join(root, "etc", "group")) as fp:
        groups = {l.split(":")[0]: l.strip().split(":")
                  for l in fp if l.strip()}
    check("tally" in users, "no user tally: %r" % users)
    check("tally" in groups, "no group tally: %r" % groups)
    u = users["tally"]
    eq(u[3], groups["tally"][2], "the primary group of tally")
    eq(u[5], "/var/lib/tally", "home of tally")
    check(u[6].endswith("nologin") or u[6].endswith("false"),
          "tally has a login shell: %r" % u[6])
    check(int(u[2]) < 1000, "tally is not a system user: uid %s" % u[2])


if __name__ == "__main__":
    harness.main(globals())
