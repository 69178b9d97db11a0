#!/usr/bin/env python3
"""The badge writes its numbers as the page's language does: locale= on
/counter.svg, else the site's configured locale, else en. Two numbers
shown without labels are parted by a line."""

import os
import re
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (Daemon, check, eq, check_json_error, mkdtemp,  # noqa: E402
                     run_tallyctl, run_tallyd, write_file)
from test_embed import SVG_NS, Badge, fetch_badge, get, page_views  # noqa: E402

NBSP, NNBSP = "\u00a0", "\u202f"


def daemon_with_counts(args=()):
    """A daemon whose default site has 254026 views in all and whose
    page /small has 1234."""
    d = Daemon(list(args))
    # The site first: a page may not hold more than its site.
    for path, n in ((None, 254026), ("/small", 1234)):
        cmd = ["--data", d.data, "set", "--site", "default", "--views", n]
        if path:
            cmd += ["--path", path]
        rc, out, err = run_tallyctl(*cmd)
        eq(rc, 0, "tallyctl set: %s" % err)
    return d


def numbers(d, **params):
    hd, body = fetch_badge(d, count="0", show="total,page", path="/small",
                           **params)
    return [n for _, n in Badge(body).pairs()]


def test_numbers_follow_locale():
    d = daemon_with_counts()
    want = {
        None: ["254,026", "1,234"],
        "en": ["254,026", "1,234"],
        "az": ["254.026", "1.234"],
        "de": ["254.026", "1.234"],
        "tr": ["254.026", "1.234"],
        "es": ["254.026", "1234"],      # no separator in four digits
        "it": ["254.026", "1234"],
        "fr": ["254" + NNBSP + "026", "1" + NNBSP + "234"],
        "ru": ["254" + NBSP + "026", "1" + NBSP + "234"],
        "pl": ["254" + NBSP + "026", "1234"],
        "de-CH": ["254'026", "1'234"],
        "de-AT": ["254" + NBSP + "026", "1" + NBSP + "234"],
        "hi": ["2,54,026", "1,234"],
        "en-IN": ["2,54,026", "1,234"],
        # Not listed: the language's, else en's; case does not matter.
        "de-DE": ["254.026", "1.234"],
        "DE-ch": ["254'026", "1'234"],
        "sr-Latn-RS": ["254.026", "1.234"],
        "ja": ["254,026", "1,234"],
        "xx": ["254,026", "1,234"],
        "": ["254,026", "1,234"],
    }
    got = {}
    for loc in want:
        got[loc] = numbers(d) if loc is None else numbers(d, locale=loc)
    eq(got, want, "numbers per locale")
    # The tooltip and the screen reader's text say the same.
    hd, body = fetch_badge(d, count="0", show="total", locale="fr")
    b = Badge(body)
    check("254" + NNBSP + "026" in b.title, "title %r" % b.title)
    check("254" + NNBSP + "026" in b.root.get("aria-label"),
          "aria-label %r" % b.root.get("aria-label"))
    # A wider separator makes a wider box, a narrower one a narrower.
    w = {loc: Badge(fetch_badge(d, count="0", show="total", locale=loc)[1])
         .text_lengths[1] for loc in ("en", "fr", "ru")}
    check(w["fr"] < w["ru"], "fr's narrow space is not narrower: %r" % w)


def test_site_locale_from_config():
    conf = write_file(os.path.join(mkdtemp(), "tally.ini"),
                      "[site default]\nlocale = az\n\n[site shop]\n")
    d = daemon_with_counts(["--config", conf])
    eq(numbers(d), ["254.026", "1.234"], "the site's locale")
    eq(numbers(d, locale="en"), ["254,026", "1,234"], "locale= over the site's")
    hd, body = fetch_badge(d, site="shop", count="0", show="total")
    eq(Badge(body).pairs(), [("Total", "0")], "another site keeps en")


def test_invalid_locale_is_400():
    d = daemon_with_counts()
    before = page_views(d, "/small")
    for bad in ("d", "german", "de_DE", "de-", "de--CH", "de-x", "-de",
                "de-ABCDEFGHI", "d3", "\u00fc\u00fc", "<b>", "de CH",
                "en-US;q=1", "x" * 300):
        st, hd, body = get(d, "/counter.svg?path=/small&locale="
                           + urllib.parse.quote(bad, safe=""))
        check_json_error(st, hd, body, 400, "locale=%r" % bad)
    eq(page_views(d, "/small"), before, "a badge with a bad locale counted")
    d.check_alive()


def test_bad_site_locale_stops_startup():
    conf = write_file(os.path.join(mkdtemp(), "tally.ini"),
                      "[site blog]\nlocale = de-CH\n")
    rc, out, err = run_tallyd("-n", "--config", conf)
    eq(rc, 0, "tallyd -n with locale = de-CH (stderr %r)" % err)
    for bad in ("de_DE", "x", "de-"):
        conf = write_file(os.path.join(mkdtemp(), "tally.ini"),
                          "[site blog]\norigins = https://b.example\n"
                          "locale = %s\n" % bad)
        rc, out, err = run_tallyd("-n", "--config", conf)
        eq(rc, 78, "tallyd -n with locale = %s (stderr %r)" % (bad, err))
        check(re.search(re.escape(conf) + r":3: locale: .*language tag", err),
              "the error does not name %s:3 and locale: %r" % (conf, err))


def dividers(body):
    """x of each 1-pixel-wide rectangle: the lines between numbers."""
    b = Badge(body)
    return b, [int(r.get("x")) for r in b.root.iter(SVG_NS + "rect")
               if r.get("width") == "1"]


def boxes(b):
    """The rectangles behind the texts, left to right: (x, width)."""
    return [(int(r.get("x")), int(r.get("width")))
            for r in b.root.iter(SVG_NS + "rect")
            if r.get("x") is not None and r.get("width") != "1"]


def test_numbers_without_labels_are_parted():
    d = daemon_with_counts()
    hd, body = fetch_badge(d, count="0", path="/small",
                           show="today,total,page", label_today="",
                           label_total="", label_page="")
    b, lines = dividers(body)
    eq(b.texts, ["0", "254,026", "1,234"], "texts")
    bx = boxes(b)
    eq(len(bx), 3, "one box per number: %r" % bx)
    eq(lines, [bx[1][0], bx[2][0]], "a line where each number box starts")
    # A label between them parts them already: no line.
    hd, body = fetch_badge(d, count="0", show="today,total", label_today="")
    b, lines = dividers(body)
    eq((b.texts, lines), (["0", "Total", "254,026"], []), "label between")
    # A number, then an empty-labelled one: parted.
    hd, body = fetch_badge(d, count="0", show="today,total", label_total="")
    b, lines = dividers(body)
    eq(b.texts, ["Today", "0", "254,026"], "texts")
    eq(len(lines), 1, "lines between Today's number and the total")


if __name__ == "__main__":
    harness.main(globals())
