/* The counts JSON. Every number is an integer; strings are escaped. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "tally/day.h"
#include "tally/escape.h"
#include "tally/render.h"

/* Built by hand: printf was a fifth of the cost of a hit. */
static void
counts_object(struct buf *b, const char *name, size_t nlen,
    const struct counts *c)
{
	char *p;

	/* Written in place: eight of these make every answer. */
	buf_reserve(b, nlen + 2 + 11 + 20 + 12 + 20 + 1);
	p = b->data + b->len;
	*p++ = '"';
	memcpy(p, name, nlen);
	p += nlen;
	memcpy(p, "\":{\"views\":", 11);
	p += 11;
	p += u64_text(p, c->views);
	memcpy(p, ",\"visitors\":", 12);
	p += 12;
	p += u64_text(p, c->visitors);
	*p++ = '}';
	*p = '\0';
	b->len = (size_t)(p - b->data);
}

#define COUNTS_OBJECT(b, name, c) \
	counts_object((b), (name), sizeof(name) - 1, (c))

void
render_counts_json(struct buf *b, const char *site, const char *path, int day,
    const struct page_counts *pc, bool counted, const char *reason)
{
	char d[DAY_STRLEN];

	day_format(day, d);
	buf_puts(b, "{\"site\":");
	json_string(b, site);
	buf_puts(b, ",\"path\":");
	json_string(b, path);
	buf_puts(b, ",\"day\":\"");
	buf_puts(b, d);
	buf_puts(b, "\",");
	COUNTS_OBJECT(b, "page", &pc->page);
	buf_putc(b, ',');
	COUNTS_OBJECT(b, "page_today", &pc->page_today);
	buf_putc(b, ',');
	COUNTS_OBJECT(b, "today", &pc->today);
	buf_putc(b, ',');
	COUNTS_OBJECT(b, "total", &pc->total);
	buf_puts(b, counted ? ",\"counted\":true" : ",\"counted\":false");
	if (!counted && reason) {
		buf_puts(b, ",\"reason\":\"");
		buf_puts(b, reason);
		buf_putc(b, '"');
	}
	buf_puts(b, "}\n");
}

/*
 * How the common locales group the digits of a whole number, as
 * Intl.NumberFormat writes them in browsers (CLDR data), so that a badge
 * and tally.js on the same page agree. min_grouping is CLDR's
 * minimumGroupingDigits: with 2, "1234" stays ungrouped and "12 345" is
 * not. lakh: after the first three digits, groups of two (12,34,567).
 * A tag not listed falls back to its language, then to en.
 */
struct number_style {
	const char	*tag;
	const char	*group;		/* UTF-8 */
	unsigned char	 min_grouping;
	bool		 lakh;
};

#define NBSP	"\xc2\xa0"		/* U+00A0 NO-BREAK SPACE */
#define NNBSP	"\xe2\x80\xaf"		/* U+202F NARROW NO-BREAK SPACE */

static const struct number_style number_styles[] = {
	{ "en", ",", 1, false },	/* first: the fallback */
	{ "en-IN", ",", 1, true },
	{ "en-ZA", NBSP, 1, false },
	{ "hi", ",", 1, true },
	{ "es-MX", ",", 1, false },
	{ "es-419", ",", 1, false },
	{ "af", NBSP, 1, false },
	{ "az", ".", 1, false },
	{ "ca", ".", 1, false },
	{ "da", ".", 1, false },
	{ "de", ".", 1, false },
	{ "de-AT", NBSP, 1, false },
	{ "de-CH", "'", 1, false },
	{ "el", ".", 1, false },
	{ "hr", ".", 1, false },
	{ "id", ".", 1, false },
	{ "nl", ".", 1, false },
	{ "pt", ".", 1, false },
	{ "ro", ".", 1, false },
	{ "sr", ".", 1, false },
	{ "tr", ".", 1, false },
	{ "vi", ".", 1, false },
	{ "es", ".", 2, false },
	{ "it", ".", 2, false },
	{ "it-CH", "'", 2, false },
	{ "sl", ".", 2, false },
	{ "fr", NNBSP, 1, false },
	{ "fr-CA", NBSP, 1, false },
	{ "cs", NBSP, 1, false },
	{ "fi", NBSP, 1, false },
	{ "lt", NBSP, 1, false },
	{ "nb", NBSP, 1, false },
	{ "no", NBSP, 1, false },
	{ "ru", NBSP, 1, false },
	{ "sk", NBSP, 1, false },
	{ "sv", NBSP, 1, false },
	{ "uk", NBSP, 1, false },
	{ "bg", NBSP, 2, false },
	{ "et", NBSP, 2, false },
	{ "hu", NBSP, 2, false },
	{ "lv", NBSP, 2, false },
	{ "pl", NBSP, 2, false },
	{ "pt-PT", NBSP, 2, false },
};

static const struct number_style *
number_style(const char *tag)
{
	size_t	 len = tag ? strlen(tag) : 0, i;

	/* "de-CH-1996", then "de-CH", then "de". */
	while (len > 0) {
		for (i = 0; i < sizeof(number_styles) /
		    sizeof(number_styles[0]); i++)
			if (strlen(number_styles[i].tag) == len &&
			    strncasecmp(number_styles[i].tag, tag, len) == 0)
				return &number_styles[i];
		while (len > 0 && tag[len - 1] != '-')
			len--;
		if (len > 0)
			len--;
	}
	return &number_styles[0];
}

/* Whether a separator goes before the digit that has r digits to its
 * right, itself included, in a number of n digits. */
static bool
group_starts(const struct number_style *ns, size_t n, size_t r)
{
	if (n < 3 + (size_t)ns->min_grouping || r == n || r < 3)
		return false;
	if (ns->lakh)
		return (r - 3) % 2 == 0;
	return r % 3 == 0;
}

static void
group_digits(char *out, size_t outsz, uint64_t v,
    const struct number_style *ns)
{
	char	 digits[24];
	size_t	 n, i, o = 0, glen = strlen(ns->group);

	if (outsz == 0)
		return;
	n = (size_t)snprintf(digits, sizeof(digits), "%llu",
	    (unsigned long long)v);
	for (i = 0; i < n && o + 1 < outsz; i++) {
		if (group_starts(ns, n, n - i)) {
			if (o + glen + 1 >= outsz)
				break;
			memcpy(out + o, ns->group, glen);
			o += glen;
		}
		out[o++] = digits[i];
	}
	out[o] = '\0';
}

void
format_thousands(char *out, size_t outsz, uint64_t v)
{
	group_digits(out, outsz, v, &number_styles[0]);
}

void
format_number(char *out, size_t outsz, uint64_t v, const char *locale)
{
	group_digits(out, outsz, v, number_style(locale));
}

/* ASCII only, whatever the C library's own locale says. */
static bool
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool
locale_valid(const char *tag)
{
	size_t	 n;

	for (n = 0; is_alpha(tag[n]); n++)
		;
	if (n < 2 || n > 3)
		return false;
	tag += n;
	while (*tag == '-') {
		tag++;
		for (n = 0; is_alpha(tag[n]) ||
		    (tag[n] >= '0' && tag[n] <= '9'); n++)
			;
		if (n < 2 || n > 8)
			return false;
		tag += n;
	}
	return *tag == '\0';
}
