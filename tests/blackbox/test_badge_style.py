#!/usr/bin/env python3
"""The badge's looks: style=flat|flat-square|plastic|for-the-badge,
color= and labelColor= (names and hex), as shields.io takes them; a bad
value is 400 and counts nothing."""

import os
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Daemon, check, check_json_error, eq  # noqa: E402
from test_embed import (SVG_NS, check_svg_headers, fetch_badge, get,  # noqa: E402
                        page_views, svg_target)

# The whole badge is one clip path; its rect carries the corners.
STYLES = {
    # style: (height, corner radius, has a sheen, has text shadows)
    "flat": ("20", "3", True, True),
    "flat-square": ("20", "0", False, False),
    "plastic": ("18", "4", True, True),
    "for-the-badge": ("28", "0", False, False),
}


def parse(body):
    try:
        return ET.fromstring(body)
    except ET.ParseError as e:
        raise harness.Failure("the SVG is not XML (%s): %r" % (e, body[:300]))


def box_fills(root):
    """The fills of the label and number boxes, left to right."""
    g = root.find(SVG_NS + "g")
    return [r.get("fill") for r in g.findall(SVG_NS + "rect")
            if r.get("x") is not None and r.get("width") != "1"]


def texts(root):
    return [(t.text, t.get("fill")) for t in root.iter(SVG_NS + "text")
            if t.get("aria-hidden") != "true"]


def test_each_style_has_its_shape():
    d = Daemon()
    d.hit("/s")
    for style, (height, radius, sheen, shadow) in STYLES.items():
        hd, body = fetch_badge(d, path="/s", count="0", style=style)
        check_svg_headers(hd)
        root = parse(body)
        eq(root.get("height"), height, "height of style=%s" % style)
        clip = root.find(SVG_NS + "clipPath/" + SVG_NS + "rect")
        eq(clip.get("rx"), radius, "corners of style=%s" % style)
        eq(root.find(SVG_NS + "linearGradient") is not None, sheen,
           "sheen of style=%s" % style)
        shadows = [t for t in root.iter(SVG_NS + "text")
                   if t.get("aria-hidden") == "true"]
        eq(bool(shadows), shadow, "text shadows of style=%s" % style)
        # Whatever the style, the accessible text stays as written.
        eq(root.get("aria-label"), "Today: 1, Total: 1",
           "aria-label of style=%s" % style)
    # No style= is flat.
    hd, body = fetch_badge(d, path="/s", count="0")
    eq(parse(body).get("height"), "20", "default height")


def test_for_the_badge_writes_capitals_wider():
    d = Daemon()
    d.hit("/c")
    _, flat = fetch_badge(d, path="/c", count="0", label_today="Bu gün",
                          show="today")
    _, big = fetch_badge(d, path="/c", count="0", label_today="Bu gün",
                         show="today", style="for-the-badge")
    eq([t for t, _ in texts(parse(big))], ["BU GüN", "1"],
       "for-the-badge texts (ASCII letters in capitals)")
    check(int(parse(big).get("width")) > int(parse(flat).get("width")),
          "for-the-badge is not wider than flat")
    eq(parse(big).get("aria-label"), "Bu gün: 1", "aria-label keeps the case")


def test_colors_by_name_and_hex():
    d = Daemon()
    d.hit("/k")
    cases = [
        ({"color": "green"}, ["#555555", "#97ca00"]),
        ({"color": "brightgreen", "labelColor": "blue"},
         ["#007ec6", "#44cc11"]),
        ({"color": "4c1"}, ["#555555", "#44cc11"]),
        ({"color": "#4C1"}, ["#555555", "#44cc11"]),
        ({"color": "ABCDEF", "labelColor": "#123456"},
         ["#123456", "#abcdef"]),
        ({"color": "Red"}, ["#555555", "#e05d44"]),
        ({}, ["#555555", "#007ec6"]),
    ]
    for params, want in cases:
        target = svg_target(path="/k", count="0", show="total") + "".join(
            "&%s=%s" % (k, v.replace("#", "%23")) for k, v in params.items())
        st, hd, body = get(d, target)
        eq(st, 200, "status of %s" % target)
        eq(box_fills(parse(body)), want, "box colours of %s" % target)


def test_light_colors_take_dark_text():
    d = Daemon()
    d.hit("/l")
    _, body = fetch_badge(d, path="/l", count="0", show="total",
                          color="yellow")
    eq([f for _, f in texts(parse(body))], ["#fff", "#333"],
       "text colours on grey and on yellow")
    _, body = fetch_badge(d, path="/l", count="0", show="total",
                          color="white", labelColor="black")
    eq([f for _, f in texts(parse(body))], ["#fff", "#333"],
       "text colours on black and on white")


def test_bad_looks_are_400_and_count_nothing():
    d = Daemon()
    d.hit("/b")
    before = page_views(d, "/b")
    for k, v in [("style", "social"), ("style", "FLAT"), ("color", "grn"),
                 ("color", "#12345"), ("color", "12345g"),
                 ("color", "red;stroke:blue"), ("labelColor", "url(#x)"),
                 ("labelColor", "#1234567"),
                 ("color", "\"><script>alert(1)</script>")]:
        target = svg_target(path="/b") + "&%s=%s" % (
            k, harness.urllib.parse.quote(v, safe=""))
        st, hd, body = get(d, target)
        check_json_error(st, hd, body, 400, "%s=%r" % (k, v))
        check(b"<script" not in body, "%s=%r echoed" % (k, v))
    eq(page_views(d, "/b"), before, "a badge with a bad look counted")


if __name__ == "__main__":
    harness.main(globals())
