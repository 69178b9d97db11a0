/*
 * The SVG badge: label/value pairs, like the badges of shields.io, in
 * their four styles and in any colour.
 *
 * SVG has no text layout that fits a box to its text, so the width of
 * every text is estimated here from the advance widths of DejaVu Sans
 * (metrically close to Verdana, the first font asked for) at 11px. Each
 * <text> also carries textLength, so that whatever font the viewer has,
 * the text is stretched or squeezed to exactly the box computed here and
 * never overflows it.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "tally/buf.h"
#include "tally/escape.h"
#include "tally/render.h"
#include "badge.h"

#define WIDTH_DEFAULT	70	/* a letter of unknown width, like a digit */
#define WIDTH_WIDE	110	/* CJK and the like: one em */
#define WIDTH_EMOJI	125

#define BADGE_MAX_ITEMS	8
#define BADGE_NUMLEN	64	/* 2^64 with 3-byte separators */

#define COLOR_LABEL	"#555555"
#define COLOR_VALUE	"#007ec6"

/*
 * Advance widths in tenths of a pixel of DejaVu Sans at 11px, read from
 * DejaVuSans.ttf (hmtx through the Unicode cmap; 70 where it has no
 * glyph, 0 for the C1 controls that xml_escape drops).
 */
static const uint8_t width_latin[] = {	/* U+0020..U+02AF */
	/* 0020 */ 35, 44, 51, 92, 70, 105, 86, 30, 43, 43, 55, 92, 35, 40, 35, 37,
	/* 0030 */ 70, 70, 70, 70, 70, 70, 70, 70, 70, 70, 37, 37, 92, 92, 92, 58,
	/* 0040 */ 110, 75, 75, 77, 85, 70, 63, 85, 83, 32, 32, 72, 61, 95, 82, 87,
	/* 0050 */ 66, 87, 76, 70, 67, 81, 75, 109, 75, 67, 75, 43, 37, 43, 92, 55,
	/* 0060 */ 55, 67, 70, 60, 70, 68, 39, 70, 70, 31, 31, 64, 31, 107, 70, 67,
	/* 0070 */ 70, 70, 45, 57, 43, 70, 65, 90, 65, 65, 58, 70, 37, 70, 92, 0,
	/* 0080 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	/* 0090 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	/* 00A0 */ 35, 44, 70, 70, 70, 70, 37, 55, 55, 110, 52, 67, 92, 40, 110, 55,
	/* 00B0 */ 55, 92, 44, 44, 55, 70, 70, 35, 55, 44, 52, 67, 107, 107, 107, 58,
	/* 00C0 */ 75, 75, 75, 75, 75, 75, 107, 77, 70, 70, 70, 70, 32, 32, 32, 32,
	/* 00D0 */ 85, 82, 87, 87, 87, 87, 87, 92, 87, 81, 81, 81, 81, 67, 67, 69,
	/* 00E0 */ 67, 67, 67, 67, 67, 67, 108, 60, 68, 68, 68, 68, 31, 31, 31, 31,
	/* 00F0 */ 67, 70, 67, 67, 67, 67, 67, 92, 67, 70, 70, 70, 70, 65, 70, 65,
	/* 0100 */ 75, 67, 75, 67, 75, 67, 77, 60, 77, 60, 77, 60, 77, 60, 85, 70,
	/* 0110 */ 85, 70, 70, 68, 70, 68, 70, 68, 70, 68, 70, 68, 85, 70, 85, 70,
	/* 0120 */ 85, 70, 85, 70, 83, 70, 101, 76, 32, 31, 32, 31, 32, 31, 32, 31,
	/* 0130 */ 32, 31, 65, 61, 32, 31, 72, 64, 64, 61, 31, 61, 31, 61, 41, 61,
	/* 0140 */ 38, 62, 31, 82, 70, 82, 70, 82, 70, 89, 82, 70, 87, 67, 87, 67,
	/* 0150 */ 87, 67, 118, 113, 76, 45, 76, 45, 76, 45, 70, 57, 70, 57, 70, 57,
	/* 0160 */ 70, 57, 67, 43, 67, 43, 67, 43, 81, 70, 81, 70, 81, 70, 81, 70,
	/* 0170 */ 81, 70, 81, 70, 109, 90, 67, 65, 67, 75, 58, 75, 58, 75, 58, 39,
	/* 0180 */ 70, 81, 75, 70, 75, 70, 77, 77, 60, 85, 90, 75, 70, 67, 70, 87,
	/* 0190 */ 68, 63, 39, 85, 76, 108, 39, 32, 82, 64, 31, 65, 107, 82, 70, 87,
	/* 01A0 */ 100, 67, 104, 84, 72, 70, 76, 70, 57, 70, 37, 43, 67, 43, 67, 94,
	/* 01B0 */ 70, 84, 79, 82, 80, 75, 58, 73, 73, 64, 58, 70, 73, 64, 56, 70,
	/* 01C0 */ 32, 54, 50, 32, 156, 143, 127, 92, 87, 50, 102, 102, 88, 75, 67, 32,
	/* 01D0 */ 31, 87, 67, 81, 70, 81, 70, 81, 70, 81, 70, 81, 70, 68, 75, 67,
	/* 01E0 */ 75, 67, 107, 108, 85, 70, 85, 70, 72, 64, 87, 67, 87, 67, 73, 64,
	/* 01F0 */ 31, 156, 143, 127, 85, 70, 122, 75, 82, 70, 75, 67, 107, 108, 87, 67,
	/* 0200 */ 75, 67, 75, 67, 70, 68, 70, 68, 32, 31, 32, 31, 87, 67, 87, 67,
	/* 0210 */ 76, 45, 76, 45, 81, 70, 81, 70, 70, 57, 67, 43, 69, 57, 83, 70,
	/* 0220 */ 81, 92, 77, 67, 75, 58, 75, 67, 70, 68, 87, 67, 87, 67, 87, 67,
	/* 0230 */ 87, 67, 67, 65, 52, 93, 52, 31, 110, 110, 75, 77, 60, 61, 67, 57,
	/* 0240 */ 58, 66, 53, 75, 81, 75, 70, 68, 32, 31, 86, 70, 76, 45, 67, 65,
	/* 0250 */ 66, 70, 70, 70, 60, 60, 70, 77, 68, 68, 90, 59, 58, 85, 73, 31,
	/* 0260 */ 77, 70, 69, 66, 66, 70, 70, 70, 31, 37, 41, 44, 54, 31, 78, 107,
	/* 0270 */ 107, 107, 71, 71, 70, 67, 94, 80, 73, 46, 46, 45, 45, 45, 58, 58,
	/* 0280 */ 66, 66, 57, 37, 37, 51, 37, 43, 43, 70, 68, 66, 65, 90, 65, 67,
	/* 0290 */ 58, 58, 64, 64, 56, 56, 56, 56, 87, 64, 73, 78, 72, 32, 73, 56,
	/* 02A0 */ 80, 56, 56, 112, 116, 111, 91, 67, 86, 93, 78, 72, 57, 57, 73, 73,
};
static const uint8_t width_greek_cyrillic[] = {	/* U+0370..U+04FF */
	/* 0370 */ 72, 62, 95, 71, 31, 31, 82, 71, 70, 70, 55, 60, 60, 60, 37, 32,
	/* 0380 */ 70, 70, 70, 70, 55, 55, 76, 35, 82, 96, 45, 70, 89, 70, 91, 91,
	/* 0390 */ 37, 75, 75, 61, 75, 70, 75, 83, 87, 32, 72, 75, 95, 82, 70, 87,
	/* 03A0 */ 83, 66, 70, 70, 67, 67, 87, 75, 87, 84, 32, 67, 73, 59, 70, 37,
	/* 03B0 */ 64, 73, 70, 65, 67, 59, 60, 70, 67, 37, 65, 65, 70, 61, 61, 67,
	/* 03C0 */ 66, 70, 65, 70, 66, 64, 73, 64, 73, 92, 37, 64, 67, 64, 92, 72,
	/* 03D0 */ 68, 68, 77, 93, 77, 73, 92, 73, 87, 67, 71, 65, 63, 50, 73, 73,
	/* 03E0 */ 95, 69, 103, 92, 83, 73, 87, 68, 76, 67, 84, 69, 77, 67, 67, 59,
	/* 03F0 */ 73, 70, 60, 31, 87, 68, 68, 67, 70, 77, 95, 72, 70, 77, 77, 77,
	/* 0400 */ 70, 70, 86, 67, 77, 70, 32, 32, 32, 120, 115, 86, 78, 82, 67, 83,
	/* 0410 */ 75, 75, 75, 67, 86, 70, 118, 71, 82, 82, 78, 83, 95, 83, 87, 83,
	/* 0420 */ 66, 77, 67, 67, 95, 75, 85, 75, 118, 120, 92, 97, 75, 77, 119, 76,
	/* 0430 */ 67, 68, 65, 58, 76, 68, 99, 58, 71, 71, 66, 70, 83, 72, 67, 72,
	/* 0440 */ 70, 60, 64, 65, 94, 65, 75, 65, 101, 104, 78, 87, 65, 60, 93, 66,
	/* 0450 */ 68, 68, 69, 58, 60, 57, 31, 31, 31, 99, 99, 72, 66, 71, 65, 72,
	/* 0460 */ 103, 92, 85, 74, 104, 82, 97, 86, 128, 110, 87, 67, 113, 91, 70, 59,
	/* 0470 */ 94, 96, 87, 67, 86, 73, 86, 73, 109, 99, 105, 83, 130, 113, 103, 92,
	/* 0480 */ 77, 60, 55, 0, 0, 0, 0, 0, 46, 46, 85, 74, 75, 65, 66, 70,
	/* 0490 */ 67, 58, 74, 65, 69, 58, 118, 99, 71, 58, 78, 66, 78, 66, 78, 66,
	/* 04A0 */ 94, 91, 83, 73, 112, 96, 119, 101, 97, 76, 77, 60, 67, 64, 67, 65,
	/* 04B0 */ 67, 65, 75, 65, 103, 89, 75, 65, 75, 65, 75, 70, 104, 80, 104, 80,
	/* 04C0 */ 32, 118, 99, 72, 66, 85, 74, 83, 73, 85, 75, 75, 65, 98, 85, 31,
	/* 04D0 */ 75, 67, 75, 67, 107, 108, 70, 68, 87, 68, 87, 68, 118, 99, 71, 58,
	/* 04E0 */ 73, 64, 82, 71, 82, 71, 87, 67, 87, 67, 87, 67, 77, 60, 67, 65,
	/* 04F0 */ 67, 65, 67, 65, 75, 65, 67, 58, 97, 87, 74, 65, 75, 65, 75, 65,
};

struct range {
	uint32_t lo, hi;
};

/* Marks drawn over the previous letter and invisible format characters:
 * they take no room. */
static const struct range zero_width[] = {
	{ 0x0300, 0x036f }, { 0x0483, 0x0489 }, { 0x0591, 0x05bd },
	{ 0x0610, 0x061a }, { 0x064b, 0x065f }, { 0x0e31, 0x0e31 },
	{ 0x0e34, 0x0e3a }, { 0x0e47, 0x0e4e }, { 0x1ab0, 0x1aff },
	{ 0x1dc0, 0x1dff }, { 0x200b, 0x200f }, { 0x202a, 0x202e },
	{ 0x2060, 0x2064 }, { 0x20d0, 0x20ff }, { 0xfe00, 0xfe0f },
	{ 0xfe20, 0xfe2f }, { 0xfeff, 0xfeff }, { 0xe0100, 0xe01ef },
};

/* East Asian wide and fullwidth letters: one em each. */
static const struct range wide[] = {
	{ 0x1100, 0x115f }, { 0x2e80, 0x303e }, { 0x3041, 0x33ff },
	{ 0x3400, 0x4dbf }, { 0x4e00, 0x9fff }, { 0xa000, 0xa4cf },
	{ 0xa960, 0xa97f }, { 0xac00, 0xd7a3 }, { 0xf900, 0xfaff },
	{ 0xfe30, 0xfe4f }, { 0xff00, 0xff60 }, { 0xffe0, 0xffe6 },
	{ 0x20000, 0x3fffd },
};

static const struct range emoji[] = {
	{ 0x2600, 0x27bf }, { 0x1f000, 0x1faff },
};

static bool
in_ranges(uint32_t cp, const struct range *r, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (cp >= r[i].lo && cp <= r[i].hi)
			return true;
	return false;
}

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

static unsigned
char_width(uint32_t cp)
{
	if (cp < 0x20)
		return 0;	/* controls: xml_escape drops them */
	if (cp <= 0x2af)
		return width_latin[cp - 0x20];
	if (cp >= 0x370 && cp <= 0x4ff)
		return width_greek_cyrillic[cp - 0x370];
	if (cp == 0x202f)
		return 22;	/* narrow no-break space: French numbers */
	if (in_ranges(cp, zero_width, NELEM(zero_width)))
		return 0;
	if (in_ranges(cp, wide, NELEM(wide)))
		return WIDTH_WIDE;
	if (in_ranges(cp, emoji, NELEM(emoji)))
		return WIDTH_EMOJI;
	return WIDTH_DEFAULT;
}

/* The width of s in tenths of a pixel. */
static unsigned
text_width(const char *s)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 len = strlen(s), i, n;
	uint32_t		 cp;
	unsigned		 w = 0;

	/* A stray byte counts as one unknown letter, although the callers
	 * pass valid UTF-8. */
	for (i = 0; i < len; i += n) {
		if ((n = utf8_decode(p + i, len - i, &cp)) == 0) {
			n = 1;
			cp = 0xfffd;
		}
		w += char_width(cp);
	}
	return w;
}

/*
 * The styles of shields.io. Only the box differs between them: its
 * height, corners, sheen and the text's place and size. for-the-badge
 * writes its texts in capitals at 10px, spread a little apart.
 */
struct style_geometry {
	const char	*name;
	unsigned	 height;
	unsigned	 radius;
	unsigned	 pad;		/* tenths of a pixel each side of a text */
	unsigned	 baseline;	/* of the text; its shadow 1px lower */
	unsigned	 font_size;
	bool		 shadow;
	bool		 capitals;
	const char	*sheen;		/* the gradient's stops, or NULL */
};

static const struct style_geometry styles[] = {
	[BADGE_FLAT] = { "flat", 20, 3, 50, 14, 11, true, false,
	    "<stop offset=\"0\" stop-color=\"#bbb\" stop-opacity=\".1\"/>"
	    "<stop offset=\"1\" stop-opacity=\".1\"/>" },
	[BADGE_FLAT_SQUARE] = { "flat-square", 20, 0, 50, 14, 11, false,
	    false, NULL },
	[BADGE_PLASTIC] = { "plastic", 18, 4, 50, 13, 11, true, false,
	    "<stop offset=\"0\" stop-color=\"#fff\" stop-opacity=\".7\"/>"
	    "<stop offset=\".1\" stop-color=\"#aaa\" stop-opacity=\".1\"/>"
	    "<stop offset=\".9\" stop-color=\"#000\" stop-opacity=\".3\"/>"
	    "<stop offset=\"1\" stop-color=\"#000\" stop-opacity=\".5\"/>" },
	[BADGE_FOR_THE_BADGE] = { "for-the-badge", 28, 0, 100, 18, 10,
	    false, true, NULL },
};

/* Capitals spread this much apart, in tenths of a pixel per letter. */
#define CAPITALS_SPACING	12

/* The colours shields.io names, and a few of CSS's. */
static const struct {
	const char *name;
	const char *hex;
} color_names[] = {
	{ "brightgreen", "#44cc11" }, { "green", "#97ca00" },
	{ "yellowgreen", "#a4a61d" }, { "yellow", "#dfb317" },
	{ "orange", "#fe7d37" }, { "red", "#e05d44" },
	{ "blue", "#007ec6" }, { "grey", "#555555" }, { "gray", "#555555" },
	{ "lightgrey", "#9f9f9f" }, { "lightgray", "#9f9f9f" },
	{ "blueviolet", "#8a2be2" }, { "success", "#44cc11" },
	{ "important", "#fe7d37" }, { "critical", "#e05d44" },
	{ "informational", "#007ec6" }, { "inactive", "#9f9f9f" },
	{ "black", "#000000" }, { "white", "#ffffff" },
	{ "silver", "#c0c0c0" }, { "purple", "#800080" },
	{ "teal", "#008080" }, { "navy", "#000080" },
	{ "pink", "#ffc0cb" }, { "brown", "#a52a2a" },
	{ "gold", "#ffd700" },
};

void
badge_look_default(struct badge_look *look)
{
	look->style = BADGE_FLAT;
	memcpy(look->color, COLOR_VALUE, sizeof(COLOR_VALUE));
	memcpy(look->label_color, COLOR_LABEL, sizeof(COLOR_LABEL));
}

int
badge_style_parse(const char *s, enum badge_style *style)
{
	size_t i;

	for (i = 0; i < NELEM(styles); i++)
		if (strcmp(s, styles[i].name) == 0) {
			*style = (enum badge_style)i;
			return 0;
		}
	return -1;
}

static bool
all_hex(const char *s, size_t len)
{
	return strspn(s, "0123456789abcdefABCDEF") == len;
}

int
badge_color_parse(const char *s, char out[BADGE_COLOR_LEN])
{
	size_t i, len;

	for (i = 0; i < NELEM(color_names); i++)
		if (strcasecmp(s, color_names[i].name) == 0) {
			memcpy(out, color_names[i].hex, BADGE_COLOR_LEN);
			return 0;
		}
	if (*s == '#')
		s++;
	len = strlen(s);
	if ((len != 3 && len != 6) || !all_hex(s, len))
		return -1;
	out[0] = '#';
	for (i = 0; i < 6; i++)
		out[1 + i] = s[len == 3 ? i / 2 : i] | 0x20;	/* lower */
	out[7] = '\0';
	return 0;
}

/* Light colours take dark text, as on shields.io: white text on yellow
 * or white cannot be read. */
static bool
color_is_light(const char *hex)
{
	unsigned r, g, b;

	if (sscanf(hex, "#%2x%2x%2x", &r, &g, &b) != 3)
		return false;
	return (299 * r + 587 * g + 114 * b) / 1000 >= 170;
}

/* Writes tenths of a pixel as a decimal number. */
static void
put_tenths(struct buf *b, unsigned v)
{
	if (v % 10)
		buf_printf(b, "%u.%u", v / 10, v % 10);
	else
		buf_printf(b, "%u", v / 10);
}

#define TEXT_MAX	(4 * 64 + 1)	/* a label: 64 characters */

struct segment {
	char		 text[TEXT_MAX];	/* as drawn: capitals or not */
	unsigned	 text_w;	/* tenths of a pixel */
	unsigned	 x, w;		/* whole pixels, so edges stay crisp */
	const char	*color;
	bool		 number;	/* else a label */
};

static void
segment_set(struct segment *s, const char *text, const char *color,
    bool number, const struct style_geometry *g)
{
	size_t i, n = 0, len;
	unsigned w;

	len = strlen(text);
	if (len >= sizeof(s->text))
		len = sizeof(s->text) - 1;
	memcpy(s->text, text, len);
	s->text[len] = '\0';
	s->color = color;
	s->number = number;
	if (!g->capitals) {
		s->text_w = text_width(s->text);
		return;
	}
	/* Capitals of ASCII letters only: others keep their case, as a
	 * case mapping of all of Unicode is not worth its size here. */
	for (i = 0; i < len; i++) {
		if (s->text[i] >= 'a' && s->text[i] <= 'z')
			s->text[i] -= 'a' - 'A';
		if (((unsigned char)s->text[i] & 0xc0) != 0x80)
			n++;
	}
	w = text_width(s->text) * g->font_size / 11;
	s->text_w = w + (unsigned)n * CAPITALS_SPACING;
}

static void
put_text(struct buf *b, const struct segment *s, unsigned y, const char *extra)
{
	buf_puts(b, "<text x=\"");
	put_tenths(b, s->x * 10 + s->w * 5);
	buf_printf(b, "\" y=\"%u\"%s textLength=\"", y, extra);
	put_tenths(b, s->text_w);
	buf_puts(b, "\">");
	xml_escape(b, s->text, strlen(s->text));
	buf_puts(b, "</text>");
}

/* "Today: 33, Total: 254,014" */
static void
put_summary(struct buf *b, const struct badge_item *items,
    char num[][BADGE_NUMLEN], size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (i > 0)
			buf_puts(b, ", ");
		xml_escape(b, items[i].label, strlen(items[i].label));
		if (items[i].label[0] != '\0')
			buf_puts(b, ": ");
		buf_puts(b, num[i]);
	}
}

void
render_badge_svg(struct buf *b, const struct badge_item *items, size_t n,
    const char *locale, const struct badge_look *look)
{
	const struct style_geometry *g = &styles[look->style];
	struct segment	 seg[2 * BADGE_MAX_ITEMS];
	char		 num[BADGE_MAX_ITEMS][BADGE_NUMLEN], shadow[80];
	size_t		 i, nseg = 0;
	unsigned	 x = 0;
	bool		 light;

	/* The routes show at most today, total and page. */
	if (n > BADGE_MAX_ITEMS)
		n = BADGE_MAX_ITEMS;
	for (i = 0; i < n; i++) {
		format_number(num[i], sizeof(num[i]), items[i].value, locale);
		/* An empty label leaves the number alone. */
		if (items[i].label[0] != '\0')
			segment_set(&seg[nseg++], items[i].label,
			    look->label_color, false, g);
		segment_set(&seg[nseg++], num[i], look->color, true, g);
	}
	for (i = 0; i < nseg; i++) {
		seg[i].x = x;
		seg[i].w = (seg[i].text_w + 2 * g->pad + 9) / 10;
		x += seg[i].w;
	}

	buf_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%u\" "
	    "height=\"%u\" role=\"img\" aria-label=\"", x, g->height);
	/* The same words for screen readers and as a tooltip. */
	put_summary(b, items, num, n);
	buf_puts(b, "\"><title>");
	put_summary(b, items, num, n);
	buf_puts(b, "</title>");
	if (g->sheen)
		buf_printf(b, "<linearGradient id=\"s\" x2=\"0\" y2=\"100%%\">"
		    "%s</linearGradient>", g->sheen);
	buf_printf(b, "<clipPath id=\"r\"><rect width=\"%u\" height=\"%u\" "
	    "rx=\"%u\" fill=\"#fff\"/></clipPath><g clip-path=\"url(#r)\">",
	    x, g->height, g->radius);
	for (i = 0; i < nseg; i++)
		buf_printf(b, "<rect x=\"%u\" width=\"%u\" height=\"%u\" "
		    "fill=\"%s\"/>", seg[i].x, seg[i].w, g->height,
		    seg[i].color);
	/* Two numbers side by side (empty labels) would read as one: a
	 * thin light line parts them. */
	for (i = 1; i < nseg; i++)
		if (seg[i].number && seg[i - 1].number)
			buf_printf(b, "<rect x=\"%u\" width=\"1\" height=\"%u\" "
			    "fill=\"#fff\" fill-opacity=\".6\"/>", seg[i].x,
			    g->height);
	if (g->sheen)
		buf_printf(b, "<rect width=\"%u\" height=\"%u\" "
		    "fill=\"url(#s)\"/>", x, g->height);
	buf_puts(b, "</g>");
	buf_printf(b, "<g text-anchor=\"middle\" "
	    "font-family=\"Verdana,DejaVu Sans,Geneva,sans-serif\" "
	    "text-rendering=\"geometricPrecision\" font-size=\"%u\">",
	    g->font_size);
	for (i = 0; i < nseg; i++) {
		light = color_is_light(seg[i].color);
		/* A shadow one pixel below lifts the text off the colour. */
		if (g->shadow) {
			snprintf(shadow, sizeof(shadow), " fill=\"%s\" "
			    "fill-opacity=\".3\" aria-hidden=\"true\"",
			    light ? "#ccc" : "#010101");
			put_text(b, &seg[i], g->baseline + 1, shadow);
		}
		put_text(b, &seg[i], g->baseline, light ?
		    " fill=\"#333\"" : " fill=\"#fff\"");
	}
	buf_puts(b, "</g></svg>\n");
}
