#!/usr/bin/env python3
"""The tree's boundaries, checked: the library (lib/, include/tally/)
includes nothing of either program, and its private headers (lib/*.h,
such as the store backends' table) stay in lib/; tallyd/ and tallyctl/ include the
library's headers and their own, never each other's; each program header
is included only beside it. Prints what crosses a boundary and exits 1."""

import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
GENERATED = {"build-config.h", "embedded.h"}


def sources(folder, exts=(".c", ".h")):
    d = os.path.join(ROOT, folder)
    return sorted(os.path.join(folder, f) for f in os.listdir(d)
                  if f.endswith(exts))


def includes(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return INCLUDE.findall(f.read())


def main():
    library = set(os.listdir(os.path.join(ROOT, "include", "tally")))
    private = set(f for f in os.listdir(os.path.join(ROOT, "lib"))
                  if f.endswith(".h"))
    own = {p: set(f for f in os.listdir(os.path.join(ROOT, p))
                  if f.endswith(".h"))
           for p in ("tallyd", "tallyctl")}
    problems = []
    for path in sources("lib") + sources("include/tally"):
        for inc in includes(path):
            ok = (inc.startswith("tally/") and inc[6:] in library) or \
                inc in GENERATED or \
                (path.startswith("lib/") and inc in private)
            if not ok:
                problems.append("%s includes \"%s\": the library includes "
                                "only include/tally/" % (path, inc))
    for prog, headers in own.items():
        other = own["tallyctl" if prog == "tallyd" else "tallyd"]
        for path in sources(prog):
            for inc in includes(path):
                if inc.startswith("tally/"):
                    ok = inc[6:] in library
                else:
                    ok = inc in headers or inc in GENERATED
                if not ok:
                    where = " (a header of the other program)" \
                        if inc in other else \
                        " (private to the library)" if inc in private else ""
                    problems.append("%s includes \"%s\"%s"
                                    % (path, inc, where))
    for p in problems:
        print(p)
    print("%d file(s) cross a boundary" % len(problems) if problems else
          "layout ok: lib/, tallyd/ and tallyctl/ keep to their own")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
