"""The release build that is measured: build-bench/, set up when missing."""

import os
import shutil
import subprocess

from . import ROOT
from .common import BenchError, log

TARGETS = ["tallyd", "tallyctl", "gen_store"]


def _setup(bdir):
    log("setting up %s (release, NDEBUG)" % bdir)
    p = subprocess.run(["meson", "setup", bdir, "--buildtype=release",
                        "-Db_ndebug=true"], cwd=ROOT,
                       capture_output=True, text=True)
    if p.returncode:
        raise BenchError("meson setup failed:\n" + p.stdout[-3000:] +
                         p.stderr[-3000:])


def _compile(bdir):
    log("compiling %s in %s" % (", ".join(TARGETS), bdir))
    cmd = ["meson", "compile", "-C", bdir] + TARGETS
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if p.returncode:
        # A new target (bench/) needs the build files regenerated first.
        subprocess.run(["meson", "setup", "--reconfigure", bdir], cwd=ROOT,
                       capture_output=True, text=True)
        p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if p.returncode:
            raise BenchError("compiling failed:\n" + p.stdout[-4000:] +
                             p.stderr[-3000:])


def build(bdir):
    """Builds tallyd, tallyctl and gen_store; returns their paths. The
    harness finds tallyd and tallyctl through TALLYD and TALLYCTL, as in
    the tests."""
    if not shutil.which("meson"):
        raise BenchError("meson is not installed "
                         "(apt-get install meson ninja-build)")
    if not os.path.exists(os.path.join(bdir, "build.ninja")):
        _setup(bdir)
    _compile(bdir)
    exes = {
        "tallyd": os.path.join(bdir, "tallyd", "tallyd"),
        "tallyctl": os.path.join(bdir, "tallyctl", "tallyctl"),
        "gen_store": os.path.join(bdir, "bench", "gen_store"),
    }
    for name, path in exes.items():
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise BenchError("%s was not built (%s)" % (name, path))
    os.environ["TALLYD"] = exes["tallyd"]
    os.environ["TALLYCTL"] = exes["tallyctl"]
    return exes
