"""wrk, the load generator, with a Lua script that counts the 200 answers
exactly and prints its figures as JSON."""

import json
import os
import re
import subprocess

import harness

from . import procs
from .common import BenchError

WRK_LUA = """\
-- Written by bench/run. A browser's User-Agent (tallyd does not count
-- bots), and an exact count of the 200 answers wrk received.
wrk.headers["User-Agent"] = "%s"
wrk.headers["Accept"] = "application/json"

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  ok = 0
  other = 0
end

function response(status, headers, body)
  if status == 200 then ok = ok + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local n_ok, n_other = 0, 0
  for _, t in ipairs(threads) do
    n_ok = n_ok + t:get("ok")
    n_other = n_other + t:get("other")
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH_JSON {\\"requests\\":%%d,\\"duration_us\\":%%d,\\"ok\\":%%d,\\"other\\":%%d," ..
    "\\"connect\\":%%d,\\"read\\":%%d,\\"write\\":%%d,\\"status\\":%%d,\\"timeout\\":%%d," ..
    "\\"p50_us\\":%%d,\\"p90_us\\":%%d,\\"p99_us\\":%%d,\\"max_us\\":%%d,\\"mean_us\\":%%.1f}\\n",
    summary.requests, summary.duration, n_ok, n_other,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
""" % harness.BROWSER_UA


# With a list of paths: each request names the next path, in turn.
PATHS_LUA = """\
local targets = {%s}
local next_target = 0

function request()
  next_target = next_target %% #targets + 1
  return wrk.format("GET", targets[next_target])
end
"""


def _script(route=None, paths=None):
    """The Lua script: bench.lua, or with paths, one that sends GET
    /ROUTE?path=P for each path in turn."""
    name = "bench.lua" if paths is None else "bench-%s-%d-%x.lua" % (
        route, len(paths), hash(tuple(paths)) & 0xffffffff)
    lua = os.path.join(procs.tmpdir(), name)
    if not os.path.exists(lua):
        text = WRK_LUA
        if paths is not None:
            text += PATHS_LUA % ",\n".join(
                '"/%s?path=%s"' % (route, p) for p in paths)
        with open(lua, "w") as f:
            f.write(text)
    return lua


def wrk(args, port, target, seconds, label, connections=None, close=False,
        paths=None, route=None):
    """One wrk run from the client core; its output is kept as
    wrk-LABEL.txt. Returns the JSON figures plus req/s. close: a new
    connection for each request (Connection: close). paths: GET
    /ROUTE?path=P for each in turn instead of target."""
    argv = procs.pinned(args.client_cpu, [
        "wrk", "-t1", "-c%d" % (connections or args.connections),
        "-d%ds" % seconds, "--latency", "-s", _script(route, paths)] +
        (["-H", "Connection: close"] if close else []) + [
        "http://127.0.0.1:%d%s" % (port, target)])
    p = subprocess.run(argv, capture_output=True, text=True,
                       timeout=seconds + 60)
    with open(os.path.join(procs.tmpdir(), "wrk-%s.txt" % label), "w") as f:
        f.write(p.stdout + p.stderr)
    m = re.search(r"^BENCH_JSON (.*)$", p.stdout, flags=re.M)
    if p.returncode or not m:
        raise BenchError("wrk failed (%d):\n%s%s" % (
            p.returncode, p.stdout[-2000:], p.stderr[-2000:]))
    r = json.loads(m.group(1))
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    return r
