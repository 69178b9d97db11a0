"""What the table says about the machine: cores, CPU, memory, kernel, its
load and CPU pressure, and the versions of the programs measured."""

import os
import platform
import re
import subprocess

from .common import MIB


def _first_field(path, prefix):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def machine():
    model = _first_field("/proc/cpuinfo", "model name") or "?"
    mem = _first_field("/proc/meminfo", "MemTotal:")
    mem = "%.1f GiB" % (int(mem.split()[0]) / MIB) if mem else "?"
    return {"nproc": os.cpu_count(), "cpu": model,
            "kernel": platform.release(), "mem": mem}


def loadavg():
    """The load average, and how much of the last minute some runnable
    task waited for a CPU (PSI), when the kernel tells."""
    try:
        with open("/proc/loadavg") as f:
            s = " ".join(f.read().split()[:3])
    except OSError:
        return "?"
    try:
        with open("/proc/pressure/cpu") as f:
            m = re.search(r"some avg10=\S+ avg60=(\S+)", f.read())
            if m:
                s += " (CPU pressure %s%%)" % m.group(1)
    except OSError:
        pass
    return s


def psi(load):
    """The CPU pressure in a loadavg() string, or None."""
    m = re.search(r"CPU pressure ([\d.]+)%", load)
    return float(m.group(1)) if m else None


def tool_version(argv):
    """The first line a program prints about its version."""
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        out = (p.stdout + p.stderr).strip().splitlines()
        return out[0] if out else "?"
    except (OSError, subprocess.TimeoutExpired):
        return "?"
