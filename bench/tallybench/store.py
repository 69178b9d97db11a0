"""The store on disk: tallyctl runs on it, and its size per daily row."""

import re
import shutil
import subprocess

import harness


def tallyctl(datadir, args, json_out=False, timeout=600):
    """Runs tallyctl through the harness: (ok, stdout, message)."""
    argv = ["--data", datadir] + (["--json"] if json_out else []) + list(args)
    try:
        rc, out, err = harness.run_tallyctl(*argv, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, "", "timed out after %d s" % timeout
    except OSError as e:
        return False, "", str(e)
    if rc:
        msg = (err.strip().splitlines() or ["no message"])[0]
        return False, out, "exit %d: %s" % (rc, msg[:120])
    return True, out, ""


def mdb_pages(datadir):
    """Per-database page counts from mdb_stat -a: ({db: (pages, entries)},
    page size), or None without mdb_stat."""
    if not shutil.which("mdb_stat"):
        return None
    p = subprocess.run(["mdb_stat", "-e", "-a", datadir], capture_output=True,
                       text=True)
    if p.returncode:
        return None
    psize = int(re.search(r"Page size: (\d+)", p.stdout).group(1))
    dbs = {}
    for block in re.split(r"^Status of ", p.stdout, flags=re.M)[1:]:
        name = block.splitlines()[0].strip()
        nums = dict(re.findall(
            r"^\s+(Branch pages|Leaf pages|Overflow pages|Entries): (\d+)",
            block, flags=re.M))
        pages = sum(int(nums.get(k, 0)) for k in
                    ("Branch pages", "Leaf pages", "Overflow pages"))
        dbs[name] = (pages, int(nums.get("Entries", 0)))
    return dbs, psize


def store_size(datadir):
    """Bytes per daily row: of the days database, and of the whole store
    as a compacted copy would be (every database's pages + 2 meta pages)."""
    r = mdb_pages(datadir)
    if r is None:
        return None
    dbs, psize = r
    if "days" not in dbs or dbs["days"][1] == 0:
        return None
    pages, rows = dbs["days"]
    total_pages = sum(p for p, _ in dbs.values()) + 2
    return {"rows": rows, "days_bytes": pages * psize,
            "compact_bytes": total_pages * psize, "psize": psize}
