#!/usr/bin/env python3
"""Text that is not what it looks like, and the bot list.

One rule decides which paths tally takes, on every way in: a hit over
HTTP, `tallyctl import` and `tallyctl import-log`. A path holding a C0 or
C1 control, DEL, a bidi mark, override or isolate, or a zero-width
character is refused there (400 with a JSON error; FILE:LINE: and
nothing imported; the line skipped as a bad path) and counts nothing.

What tallyctl and tallyd write for a person to read (error messages,
tables, CSV on a terminal) shows such characters escaped ("\\x1b",
"\\u202e"), whether they come from an argument, a file or a store written
before the rule: a terminal never gets a raw ESC, C1 or bidi control.

Bots: crawlers, previewers, monitors, HTTP libraries and headless
browsers are answered but not counted; real browsers are counted.
"""

import json
import os
import pty
import select
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (BROWSER_UA, Daemon, check, eq,  # noqa: E402
                     check_json_error, mkdtemp, parse_json, tallyctl_path,
                     tallyd_path, utc_today, views, write_file)

# Percent-encoded, as a page's URL would carry them.
HIDDEN = {
    "C1 NEL": "%C2%85",
    "C1 CSI": "%C2%9B",
    "DEL": "%7F",
    "ESC": "%1B",
    "RLO": "%E2%80%AE",
    "LRE": "%E2%80%AA",
    "LRI": "%E2%81%A6",
    "PDI": "%E2%81%A9",
    "RLM": "%E2%80%8F",
    "ALM": "%D8%9C",
    "ZWSP": "%E2%80%8B",
    "ZWJ": "%E2%80%8D",
    "word joiner": "%E2%81%A0",
    "BOM": "%EF%BB%BF",
    "soft hyphen": "%C2%AD",
    "grapheme joiner": "%CD%8F",
    "Hangul filler": "%E3%85%A4",
    "annotation": "%EF%BF%B9",
    "tag": "%F3%A0%80%81",
}

# What must never reach a terminal raw.
RAW = [b"\x1b", b"\x07", b"\x7f", b"\xc2\x85", b"\xc2\x9b", b"\xe2\x80\xae",
       b"\xe2\x80\x8b"]

HEADER = "site,day,path,views,visitors"


def ctl_bytes(*args, input=None):
    """Runs tallyctl with byte arguments; (exit code, stdout, stderr) as
    bytes, so that nothing is decoded away."""
    p = subprocess.run([tallyctl_path().encode()] + [
        a if isinstance(a, bytes) else str(a).encode() for a in args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, input=input,
        timeout=30)
    return p.returncode, p.stdout, p.stderr


def no_raw(data, what):
    for r in RAW:
        check(r not in data, "%s holds the raw bytes %r: %r"
              % (what, r, data[:400]))


def total_views(d):
    return views(d.count(path="/"), "total")


# ---------------------------------------------------------------- HTTP

def test_http_refuses_hidden_characters():
    d = Daemon()
    d.hit("/before")
    before = total_views(d)
    for name, enc in HIDDEN.items():
        target = "/hit?path=/a%sb" % enc
        st, hd, body = d.request("GET", target, {"User-Agent": BROWSER_UA})
        j = check_json_error(st, hd, body, 400, "%s (%s)" % (target, name))
        check("path" in j["error"], "%s: error %r names no path"
              % (name, j["error"]))
        # The same character raw in a JSON body, and in a full URL.
        raw = bytes.fromhex(enc.replace("%", "")).decode("utf-8")
        st, hd, body = d.request("POST", "/hit", {
            "User-Agent": BROWSER_UA, "Content-Type": "application/json"},
            json.dumps({"path": "https://x.example/a%sb?q" % raw}))
        check_json_error(st, hd, body, 400, "POST %s" % name)
        st, hd, body = d.request("GET", "/counter.svg?path=/a%sb" % enc,
                                 {"User-Agent": BROWSER_UA})
        check_json_error(st, hd, body, 400, "counter.svg %s" % name)
    eq(total_views(d), before, "views after refused hits")
    # What is seen for what it is stays a path: NBSP, Arabic, emoji.
    for p in ("/a%C2%A0b", "/%D8%B3%D9%84%D8%A7%D9%85", "/%F0%9F%98%80"):
        c = d.hit(p)
        eq(c["counted"], True, "counted %s" % p)
    eq(total_views(d), before + 3, "views after good hits")
    d.check_alive()
    d.stop()
    no_raw(d.stderr().encode("utf-8", "replace"), "tallyd's log")


# ---------------------------------------------------------------- import

def test_import_refuses_hidden_paths():
    today = utc_today()
    cases = [
        ("C1", "/a\u0085b"),
        ("CSI", "/a\u009b31m"),
        ("RLO", "/invoice\u202efdp.exe"),
        ("ZWSP", "/a\u200bb"),
        ("LRI", "/a\u2066b\u2069"),
    ]
    for name, path in cases:
        data = os.path.join(mkdtemp(), "data")
        f = write_file(os.path.join(mkdtemp(), "in.csv"),
                       "%s\ndefault,%s,/good,5,2\ndefault,%s,%s,7,3\n"
                       % (HEADER, today, today, path))
        rc, out, err = ctl_bytes("--data", data, "import", f)
        eq(rc, 1, "import of a %s path: exit code (stderr %r)" % (name, err))
        check(("%s:3: invalid path" % f).encode() in err,
              "%s: stderr %r names no FILE:LINE" % (name, err))
        no_raw(err, "import's error for a %s path" % name)
        # All or nothing: not even /good.
        rc, out, err = ctl_bytes("--data", data, "export")
        check(rc in (0, 1), "export after a refused import: %d" % rc)
        eq(out.decode().splitlines()[1:] if rc == 0 else [], [],
           "rows after a refused import of a %s path" % name)
    # The JSON form decodes \u escapes first: the same rule.
    data = os.path.join(mkdtemp(), "data")
    f = write_file(os.path.join(mkdtemp(), "in.json"), json.dumps(
        [{"site": "default", "day": today, "path": "/a\u0085",
          "views": 1, "visitors": 1}]))
    rc, out, err = ctl_bytes("--data", data, "import", f)
    eq(rc, 1, "import of JSON with a C1 path (stderr %r)" % err)
    check(("%s:" % f).encode() in err and b"invalid path" in err,
          "JSON import error %r" % err)


def test_import_log_skips_hidden_paths():
    data = os.path.join(mkdtemp(), "data")
    line = ('10.0.0.1 - - [10/Mar/2026:12:00:00 +0000] "GET %s HTTP/1.1" '
            '200 512 "-" "%s"\n')
    log = "".join(line % (t, BROWSER_UA) for t in (
        "/ok", "/a%C2%85b", "/a%E2%80%AEb", "/a%E2%80%8Bb", "/a%1B]0;x%07",
        "/a\xc2\x9bb"))
    f = os.path.join(mkdtemp(), "access.log")
    with open(f, "w", encoding="utf-8") as fh:
        fh.write(log)
    rc, out, err = ctl_bytes("--data", data, "--json", "import-log", f)
    eq(rc, 0, "import-log exit code (stderr %r)" % err)
    j = json.loads(out)
    eq(j["views"], 1, "views counted")
    eq(j["skipped"]["path"], 5, "lines skipped for their path")
    no_raw(err, "import-log's report")
    rc, out, err = ctl_bytes("--data", data, "export")
    eq(rc, 0, "export (stderr %r)" % err)
    paths = {r.split(",")[2] for r in out.decode().splitlines()[1:]}
    eq(paths, {"*", "/ok"}, "paths in the store")


# ---------------------------------------------------------------- messages

def test_error_messages_escape_what_they_quote():
    data = os.path.join(mkdtemp(), "data")
    ctl_bytes("--data", data, "set", "--site", "default", "--views", "1")
    cases = [
        ("an unknown command", [b"\x1b]0;owned\x07"], 2,
         b"\\x1b]0;owned\\x07"),
        ("an unknown option", [b"top", b"--\x1b[2Jx"], 2, b"\\x1b[2Jx"),
        ("a bad site", [b"top", b"--site", b"a\x1b[31m"], 2,
         b"a\\x1b[31m"),
        ("a C1 site", [b"top", b"--site", b"a\xc2\x9b31m"], 2,
         b"a\\u009b31m"),
        ("a bad number", [b"top", b"--limit", b"9\x1bc"], 2, b"9\\x1bc"),
        ("a C1 path", [b"page", b"/a\xc2\x9b31m"], 2, b"/a\\u009b31m"),
        ("a bidi path", [b"page", b"/a\xe2\x80\xaeb"], 2, b"/a\\u202eb"),
        ("an ESC path", [b"history", b"--path", b"/\x1b[5m"], 2,
         b"/\\x1b[5m"),
        ("a missing file", [b"import", b"/nonexistent/\x1b]0;x\x07.csv"],
         1, b"/nonexistent/\\x1b]0;x\\x07.csv"),
        ("a missing log", [b"import-log", b"/nonexistent/\x1b]0;x\x07.log"],
         1, b"/nonexistent/\\x1b]0;x\\x07.log"),
    ]
    for what, args, want_rc, shown in cases:
        rc, out, err = ctl_bytes("--data", data, *args)
        eq(rc, want_rc, "exit code for %s (stderr %r)" % (what, err))
        no_raw(err, "the error for %s" % what)
        no_raw(out, "the output for %s" % what)
        check(shown in err, "the error for %s does not show %r: %r"
              % (what, shown, err))

    # A line of an import quotes a bad site id.
    f = write_file(os.path.join(mkdtemp(), "in.csv"), "%s\n" % HEADER)
    with open(f, "ab") as fh:
        fh.write(b"\x1b]0;t\x07,2026-01-01,/a,1,1\n")
    rc, out, err = ctl_bytes("--data", data, "import", f)
    eq(rc, 1, "import of a bad site id (stderr %r)" % err)
    no_raw(err, "import's error for a site id")
    check(b"\\x1b]0;t\\x07" in err, "import error %r" % err)

    # A configuration value quoted by tallyctl and by tallyd.
    cfg = os.path.join(mkdtemp(), "tally.ini")
    with open(cfg, "wb") as fh:
        fh.write(b"[count]\ndnt = \x1b]0;cfg\x07\n")
    rc, out, err = ctl_bytes("--config", cfg, "stats")
    eq(rc, 78, "tallyctl with a bad config (stderr %r)" % err)
    no_raw(err, "tallyctl's config error")
    check(b"\\x1b]0;cfg\\x07" in err and (cfg + ":2:").encode() in err,
          "tallyctl's config error %r" % err)
    p = subprocess.run([tallyd_path(), "-n", "--config", cfg],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=15, cwd=mkdtemp())
    eq(p.returncode, 78, "tallyd -n with a bad config (%r)" % p.stderr)
    no_raw(p.stderr, "tallyd's config error")
    check(b"\\x1b]0;cfg\\x07" in p.stderr and
          (cfg + ":2:").encode() in p.stderr,
          "tallyd's config error %r" % p.stderr)


# ---------------------------------------------------------------- old stores

HOSTILE = b"/\x1b]0;pwned\x07\xc2\x9b31m\xe2\x80\xae"
SHOWN = b"/\\x1b]0;pwned\\x07\\u009b31m\\u202e"


def hostile_store():
    """A store holding HOSTILE as a path, as a version without the path
    rule could write it: a placeholder of the same length is imported,
    then its bytes are replaced in the data file (LMDB keeps no
    checksums, and the site has no other page, so key order holds)."""
    data = os.path.join(mkdtemp(), "data")
    placeholder = b"/" + b"Q" * (len(HOSTILE) - 1)
    f = write_file(os.path.join(mkdtemp(), "in.csv"),
                   "%s\ndefault,%s,*,42,7\ndefault,%s,%s,42,7\n"
                   % (HEADER, utc_today(), utc_today(), placeholder.decode()))
    rc, out, err = ctl_bytes("--data", data, "import", f)
    eq(rc, 0, "import of the placeholder (stderr %r)" % err)
    mdb = os.path.join(data, "data.mdb")
    with open(mdb, "rb") as fh:
        blob = fh.read()
    check(placeholder in blob, "placeholder not in data.mdb")
    with open(mdb, "wb") as fh:
        fh.write(blob.replace(placeholder, HOSTILE))
    return data


def on_terminal(*args):
    """Runs tallyctl with stdout on a pseudo-terminal; returns (exit code,
    what the terminal got)."""
    master, slave = pty.openpty()
    p = subprocess.Popen([tallyctl_path().encode()] + list(args),
                         stdout=slave, stderr=subprocess.PIPE,
                         env=dict(os.environ, NO_COLOR="1"))
    os.close(slave)
    got = b""
    while True:
        r, _, _ = select.select([master], [], [], 20)
        if not r:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:     # EIO: the other end is closed
            break
        if not chunk:
            break
        got += chunk
    os.close(master)
    p.wait(10)
    return p.returncode, got


def test_old_store_paths_are_shown_escaped():
    data = hostile_store()
    for args in ([b"top"], [b"top", b"--all"]):
        rc, out, err = ctl_bytes("--data", data, *args)
        eq(rc, 0, "%r (stderr %r)" % (args, err))
        no_raw(out, "%r" % args)
        check(SHOWN in out, "%r does not show %r: %r" % (args, SHOWN, out))
        check(b"42" in out, "%r lost the count: %r" % (args, out))
    # JSON escapes them as \u escapes, and still says the same path.
    rc, out, err = ctl_bytes("--data", data, "--json", "top")
    eq(rc, 0, "top --json (stderr %r)" % err)
    no_raw(out, "top --json")
    eq(json.loads(out)[0]["path"], HOSTILE.decode(), "top --json's path")
    rc, out, err = ctl_bytes("--data", data, "--json", "export")
    eq(rc, 0, "export --json (stderr %r)" % err)
    no_raw(out, "export --json")
    # CSV on a terminal is escaped; into a file it is the stored bytes,
    # which import then names instead of taking another path.
    rc, got = on_terminal(b"--data", data.encode(), b"export")
    eq(rc, 0, "export on a terminal")
    no_raw(got, "export on a terminal")
    check(SHOWN in got, "export on a terminal: %r" % got)
    rc, out, err = ctl_bytes("--data", data, "export")
    eq(rc, 0, "export into a pipe (stderr %r)" % err)
    check(HOSTILE in out, "export into a pipe changed the path: %r" % out)
    f = os.path.join(mkdtemp(), "old.csv")
    with open(f, "wb") as fh:
        fh.write(out)
    rc, _, err = ctl_bytes("--data", os.path.join(mkdtemp(), "d"),
                           "import", f)
    eq(rc, 1, "import of the old export (stderr %r)" % err)
    check(b"invalid path" in err, "import error %r" % err)
    no_raw(err, "import error for the old export")
    rc, got = on_terminal(b"--data", data.encode(), b"top")
    eq(rc, 0, "top on a terminal")
    no_raw(got, "top on a terminal")


# ---------------------------------------------------------------- bots

BOT_UAS = [
    "Scrapy/2.11.2 (+https://scrapy.org)",
    "Mozilla/4.5 (compatible; HTTrack 3.0x; Windows 98)",
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) "
    "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.6422.175 Mobile "
    "Safari/537.36 (compatible; Google-InspectionTool/1.0;)",
    "Mozilla/5.0 (compatible; GoogleOther)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; "
    "ChatGPT-User/1.0; +https://openai.com/bot",
    "anthropic-ai",
    "ia_archiver (+http://www.alexa.com/site/help/webmasters; "
    "crawler@alexa.com)",
    "Mozilla/5.0 (compatible; Qwantify/2.4w; +https://www.qwant.com/)/2.4w",
    "FeedFetcher-Google; (+http://www.google.com/feedfetcher.html)",
    "Mediapartners-Google",
]

BROWSER_UAS = [
    BROWSER_UA,
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 "
    "Firefox/128.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.87",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) "
    "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 "
    "Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S928B) AppleWebKit/537.36 "
    "(KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile "
    "Safari/537.36",
]


def test_bots_are_not_counted_browsers_are():
    d = Daemon()
    before = total_views(d)
    for ua in BOT_UAS:
        c = d.hit("/botpage", ua=ua)
        eq(c["counted"], False, "counted for %r" % ua)
        eq(c.get("reason"), "bot", "reason for %r" % ua)
    eq(total_views(d), before, "views after bots")
    for ua in BROWSER_UAS:
        c = d.hit("/browserpage", ua=ua)
        eq(c["counted"], True, "counted for %r" % ua)
    eq(total_views(d), before + len(BROWSER_UAS), "views after browsers")
    d.stop()


if __name__ == "__main__":
    harness.main(globals())
