"""What every part of bench/run shares: its progress lines on stderr, the
error that ends one section, and the number formats of the table."""

import sys
import time

T0 = time.monotonic()
MIB = 1024 * 1024


def log(msg):
    print("bench: [%4.0fs] %s" % (time.monotonic() - T0, msg),
          file=sys.stderr, flush=True)


class BenchError(Exception):
    """One measurement failed: its row says why, the others still run."""


def fmt_int(n):
    return "{:,}".format(n)


def fmt_ms(us):
    return "%.2f ms" % (us / 1000.0)


def tail(text, n=15):
    return "\n".join(text.splitlines()[-n:])


def tail_file(path, n=15):
    try:
        with open(path, "rb") as f:
            return tail(f.read().decode("utf-8", "replace"), n)
    except OSError:
        return ""
