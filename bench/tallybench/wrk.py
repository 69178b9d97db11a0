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


# Visitors as a site has them, for the shared store's runs: each request
# comes from a visitor never seen before (share NEW) or from one of
# REGULARS returning visitors, whose ids are the same in every wrk (so a
# returning visitor reaches every node), and names one of PAGES pages
# chosen log-uniformly (page k about 1/k as often as page 1, Zipf-like).
# A visitor is told by its User-Agent, the address being 127.0.0.1 for
# all. DELAY > 0 paces each connection: it waits DELAY ms after each
# answer before its next request.
VISITORS_LUA = """\
local pages, regulars, new_share, delay_ms = %d, %d, %.4f, %d
local prefix, seed = "%s", %d
local hdrs, fresh = {}, 0

local base_init = init
function init(args)
  base_init(args)
  math.randomseed(seed)
  for k, v in pairs(wrk.headers) do hdrs[k] = v end
end

function request()
  local v
  if math.random() < new_share then
    fresh = fresh + 1
    v = prefix .. fresh
  else
    v = "r" .. math.random(regulars)
  end
  hdrs["User-Agent"] = wrk.headers["User-Agent"] .. " v" .. v
  local page = math.floor((pages + 1) ^ math.random())
  return wrk.format("GET", "/hit?path=/articles/" .. page, hdrs)
end

if delay_ms > 0 then
  function delay() return delay_ms end
end
"""


def visitors_script(label, seed, pages=1000, regulars=20000, new_share=0.25,
                    delay_ms=0):
    """A wrk script of visitors as VISITORS_LUA describes; label names
    this wrk's new visitors apart from another's. Returns its path."""
    lua = os.path.join(procs.tmpdir(), "visitors-%s.lua" % label)
    with open(lua, "w") as f:
        f.write(WRK_LUA + VISITORS_LUA % (pages, regulars, new_share,
                                          delay_ms, label, seed))
    return lua


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
        paths=None, route=None, script=None, background=False):
    """One wrk run from the client core; its output is kept as
    wrk-LABEL.txt. Returns the JSON figures plus req/s. close: a new
    connection for each request (Connection: close). paths: GET
    /ROUTE?path=P for each in turn instead of target. script: that wrk
    script instead (visitors_script). background: returns at once a
    function that waits for the run and returns its figures, so that
    several wrk run together."""
    argv = procs.pinned(args.client_cpu, [
        "wrk", "-t1", "-c%d" % (connections or args.connections),
        "-d%ds" % seconds, "--latency", "-s",
        script or _script(route, paths)] +
        (["-H", "Connection: close"] if close else []) + [
        "http://127.0.0.1:%d%s" % (port, target)])
    p = subprocess.Popen(argv, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    procs.PROCS.append(p)

    def finish():
        try:
            out, err = p.communicate(timeout=seconds + 60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise
        finally:
            procs.forget(p)
        return _figures(label, p.returncode, out, err)
    return finish if background else finish()


def _figures(label, returncode, out, err):
    """wrk's JSON line, plus req/s; its output is kept in the temporary
    directory."""
    with open(os.path.join(procs.tmpdir(), "wrk-%s.txt" % label), "w") as f:
        f.write(out + err)
    m = re.search(r"^BENCH_JSON (.*)$", out, flags=re.M)
    if returncode or not m:
        raise BenchError("wrk failed (%d):\n%s%s" % (
            returncode, out[-2000:], err[-2000:]))
    r = json.loads(m.group(1))
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    return r
