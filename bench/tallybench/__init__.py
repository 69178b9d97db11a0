"""tally's benchmarks, the modules behind bench/run.

The black-box tests' harness (tests/blackbox/harness.py) already finds
free ports, starts tallyd and waits until it answers, sends HTTP requests
and runs tallyctl. The benchmarks use it rather than a second copy, so a
change in how tallyd starts is made once; it is put on the import path
here, before any module of the package needs it.
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

sys.path.insert(0, os.path.join(ROOT, "tests", "blackbox"))
