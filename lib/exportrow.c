/*
 * Export rows in CSV and JSON: what tallyctl export writes and import
 * reads back. Errors name the line a text editor shows them on, so
 * that a hand-edited export is easy to fix.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "tally/config.h"	/* site_name_valid */
#include "tally/exportrow.h"
#include "tally/day.h"
#include "tally/escape.h"
#include "tally/number.h"
#include "tally/path.h"
#include "tally/referrer.h"
#include "tally/store.h"

#define SITE_PATH	"*"
#define ADJUST_DAY	"-"
#define KEY_MAX		48	/* JSON key text kept; the longest is 8 */

enum state { R_FIRST, R_ROWS, R_DONE, R_FAILED };

static const char *const names[EXPORTROW_NFIELDS] = {
	"site", "day", "path", "views", "visitors"
};

static int fail(struct exportrow_reader *, unsigned long, const char *, ...)
    TALLY_PRINTF(3, 4);

static int
fail(struct exportrow_reader *r, unsigned long line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->err, sizeof(r->err), fmt, ap);
	va_end(ap);
	r->errline = line;
	r->state = R_FAILED;
	return -1;
}

/* Appends c to field f (-1: a field past the fifth, only counted).
 * Past EXPORTROW_TEXT_MAX bytes the text is cut but the length counts
 * on: the checks see that a field is too long. */
static void
put(struct exportrow_reader *r, int f, char c)
{
	if (f < 0)
		return;
	if (r->len[f] < EXPORTROW_TEXT_MAX)
		r->text[f][r->len[f]] = c;
	r->len[f]++;
}

static void
clear(struct exportrow_reader *r)
{
	int f;

	for (f = 0; f < EXPORTROW_NFIELDS; f++)
		r->len[f] = 0;
}

/* NUL-terminates field f where its kept text ends. */
static void
terminate(struct exportrow_reader *r, int f)
{
	r->text[f][r->len[f] < EXPORTROW_TEXT_MAX ? r->len[f] :
	    EXPORTROW_TEXT_MAX] = '\0';
}

/* A decimal number no larger than max: digits only, as tallyctl takes
 * numbers on its command line. */
/* STORE_COUNT_MAX as the messages write it. */
#define COUNT_MAX_TEXT	"9223372036854775807"
#define COUNT_MIN_TEXT	"9223372036854775808"	/* after a minus */

static int
number(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	if (len > EXPORTROW_TEXT_MAX)
		return -1;
	return number_parse(s, len, max, out);
}

/* An adjustment's count: a signed delta, kept as its two's complement. */
static int
signed_number(const char *s, size_t len, uint64_t *out)
{
	uint64_t u;

	if (len > 0 && *s == '-') {
		if (number(s + 1, len - 1, (uint64_t)INT64_MAX + 1, &u) == -1)
			return -1;
		*out = 0 - u;
		return 0;
	}
	return number(s, len, INT64_MAX, out);
}

/* True when field f holds a NUL: C string functions would see it cut
 * short there ("de\0fault" as site "de"), so it is refused. */
static bool
has_nul(const struct exportrow_reader *r, int f)
{
	return r->len[f] <= EXPORTROW_TEXT_MAX &&
	    strlen(r->text[f]) != r->len[f];
}

/* The rest of a referrer row, whose site and day are checked: a day's
 * views from one host, at least one (no row is kept of none). */
static int
check_referrer(struct exportrow_reader *r, unsigned long line,
    struct exportrow *row, const char *host)
{
	if (r->len[2] > EXPORTROW_TEXT_MAX ||
	    strlen(EXPORTROW_REFERRER) + strlen(host) != r->len[2] ||
	    !referrer_name_valid(host))
		return fail(r, line, "invalid referrer \"%.80s\" (a host name "
		    "without www., a group such as Google, or %s)", host,
		    STORE_REFERRER_OTHER);
	if (row->day == DAY_ADJUST)
		return fail(r, line, "a referrer row is a day's: - is no day "
		    "for it");
	if (number(r->text[3], r->len[3], UINT64_MAX, &row->views) == -1 ||
	    row->views == 0)
		return fail(r, line, "invalid views \"%.40s\" (a referrer "
		    "row's, 1 to %s)", r->text[3], COUNT_MAX_TEXT);
	if (number(r->text[4], r->len[4], UINT64_MAX, &row->visitors) == -1 ||
	    row->visitors != 0)
		return fail(r, line, "invalid visitors \"%.40s\" (a referrer "
		    "row has none: 0)", r->text[4]);
	row->path = NULL;
	row->referrer = host;
	return 0;
}

/* Checks the five fields (NUL-terminated) read for the row that starts
 * on line, and makes the row of them. */
static int
check(struct exportrow_reader *r, unsigned long line, struct exportrow *row)
{
	const char *site = r->text[0], *day = r->text[1], *path = r->text[2];
	size_t plen = r->len[2];
	enum path_error pe;
	int f;

	row->line = line;
	/* The path's own checks say it of a path. */
	for (f = 0; f < EXPORTROW_NFIELDS; f++)
		if (f != 2 && has_nul(r, f))
			return fail(r, line, "invalid %s: holding NUL",
			    names[f]);
	/* A field cut at EXPORTROW_TEXT_MAX is too long to be valid: the
	 * checks below refuse its text. */
	if (!site_name_valid(site))
		return fail(r, line, "invalid site id \"%.80s\"", site);
	row->site = site;
	if (r->len[1] == 1 && day[0] == '-')
		row->day = DAY_ADJUST;
	else if (day_parse(day, &row->day) == -1)
		return fail(r, line, "invalid day \"%.40s\" (YYYY-MM-DD, or - "
		    "for an adjustment)", day);
	else if (row->day < 0)
		return fail(r, line, "day %s is before 1970-01-01", day);

	row->referrer = NULL;
	if (strncmp(path, EXPORTROW_REFERRER, strlen(EXPORTROW_REFERRER)) ==
	    0)
		return check_referrer(r, line, row,
		    path + strlen(EXPORTROW_REFERRER));
	if (plen == 1 && path[0] == '*')
		path = SITE_SERIES, plen = 0;
	else if (plen == 0 || path[0] != '/')
		return fail(r, line, "invalid path \"%.80s\" (a path starts "
		    "with /; * is the whole site)", path);
	else if (plen > PATH_MAX_LEN || strlen(path) != plen)
		return fail(r, line, "invalid path: longer than %d bytes or "
		    "holding NUL", PATH_MAX_LEN);
	else if ((pe = path_check(path, plen)) != PATH_OK)
		return fail(r, line, "invalid path: %s", path_strerror(pe));
	row->path = path;

	/* The message says what would be right: a count of a day or an
	 * adjustment of all time, within the store's largest. */
	if (row->day == DAY_ADJUST) {
		if (signed_number(r->text[3], r->len[3], &row->views) == -1)
			return fail(r, line, "invalid views \"%.40s\" (an "
			    "adjustment, -%s to %s)", r->text[3], COUNT_MIN_TEXT,
			    COUNT_MAX_TEXT);
		if (signed_number(r->text[4], r->len[4], &row->visitors) == -1)
			return fail(r, line, "invalid visitors \"%.40s\" (an "
			    "adjustment, -%s to %s)", r->text[4], COUNT_MIN_TEXT,
			    COUNT_MAX_TEXT);
	} else {
		/* Past the largest count, the store refuses the row by its
		 * line, saying what the largest is. */
		if (number(r->text[3], r->len[3], UINT64_MAX,
		    &row->views) == -1)
			return fail(r, line, "invalid views \"%.40s\" (0 to "
			    "%s)", r->text[3], COUNT_MAX_TEXT);
		if (number(r->text[4], r->len[4], UINT64_MAX,
		    &row->visitors) == -1)
			return fail(r, line, "invalid visitors \"%.40s\" (0 "
			    "to %s)", r->text[4], COUNT_MAX_TEXT);
	}
	return 0;
}

/*
 * CSV (RFC 4180): fields separated by commas, records by CRLF or LF;
 * fields in double quotes may hold commas, quotes (doubled) and line
 * ends. The header line is optional. Empty lines are skipped.
 */

/* Reads the inside of a quoted field (past its opening quote) into
 * field f, counting its line ends. -1: the closing quote is missing. */
static int
csv_quoted(struct exportrow_reader *r, int f)
{
	const char *p;

	for (p = r->p; p < r->end; p++) {
		if (*p == '"') {
			if (p + 1 == r->end || p[1] != '"') {
				r->p = p + 1;
				return 0;
			}
			p++;	/* "" is one quote */
		} else if (*p == '\n')
			r->line++;
		put(r, f, *p);
	}
	r->p = p;
	return -1;
}

static bool
csv_is_header(const struct exportrow_reader *r)
{
	int f;

	for (f = 0; f < EXPORTROW_NFIELDS; f++)
		if (r->len[f] != strlen(names[f]) ||
		    memcmp(r->text[f], names[f], r->len[f]) != 0)
			return false;
	return true;
}

/* What ends an unquoted field. A NUL is no field text: it is reported
 * as what it is, an unexpected character. */
static bool
csv_special(char c)
{
	return c == ',' || c == '\n' || c == '\r' || c == '"' || c == '\0';
}

static int
csv_next(struct exportrow_reader *r, struct exportrow *row)
{
	unsigned long start;
	size_t nf;
	int f;

	for (;;) {
		if (r->p >= r->end) {
			r->state = R_DONE;
			return 0;
		}
		start = r->line;
		if (*r->p == '\n' || (*r->p == '\r' && r->p + 1 < r->end &&
		    r->p[1] == '\n')) {
			r->p += *r->p == '\r' ? 2 : 1;
			r->line++;
			continue;
		}
		clear(r);
		for (nf = 0; ; nf++) {
			/* Fields past the fifth are counted, not kept. */
			f = nf < EXPORTROW_NFIELDS ? (int)nf : -1;
			if (r->p < r->end && *r->p == '"') {
				r->p++;
				if (csv_quoted(r, f) == -1)
					return fail(r, start,
					    "unterminated quoted field");
			} else
				for (; r->p < r->end && !csv_special(*r->p);
				    r->p++)
					put(r, f, *r->p);
			if (r->p < r->end && *r->p == ',') {
				r->p++;
				continue;
			}
			if (r->p >= r->end || *r->p == '\n') {
				if (r->p < r->end)
					r->p++;
				break;
			}
			if (*r->p == '\r' && r->p + 1 < r->end &&
			    r->p[1] == '\n') {
				r->p += 2;
				break;
			}
			return fail(r, r->line, "%s", *r->p == '"' ?
			    "quote inside an unquoted field" :
			    "unexpected character after a field");
		}
		nf++;
		r->line++;
		for (f = 0; f < EXPORTROW_NFIELDS; f++)
			terminate(r, f);
		if (r->state == R_FIRST) {
			r->state = R_ROWS;
			if (nf == EXPORTROW_NFIELDS && csv_is_header(r))
				continue;
		}
		if (nf != EXPORTROW_NFIELDS)
			return fail(r, start, "%zu field%s, want 5 ("
			    EXPORTROW_HEADER ")", nf, nf == 1 ? "" : "s");
		return check(r, start, row) == -1 ? -1 : 1;
	}
}

/*
 * JSON: a list of flat objects with the five keys, strings for site,
 * day and path, integers for the counts. Just enough of a parser for
 * that, which names the line of what it cannot take.
 */

static void
jp_space(struct exportrow_reader *r)
{
	for (; r->p < r->end; r->p++) {
		if (*r->p == '\n')
			r->line++;
		else if (*r->p != ' ' && *r->p != '\t' && *r->p != '\r')
			break;
	}
}

static int
jp_expect(struct exportrow_reader *r, char c, const char *what)
{
	jp_space(r);
	if (r->p >= r->end || *r->p != c)
		return fail(r, r->line, "expected %s", what);
	r->p++;
	return 0;
}

/* Reads a string into s (cap bytes and a NUL); *len is its whole
 * decoded length, which the caller may find too long. */
static int
jp_string(struct exportrow_reader *r, char *s, size_t cap, size_t *len)
{
	long	 n;

	jp_space(r);
	n = json_string_read(r->p, r->end, s, cap, len);
	switch (n) {
	case JSON_NOT_STRING:
		return fail(r, r->line, "expected a string");
	case JSON_UNTERMINATED:
		return fail(r, r->line, "unterminated string");
	case JSON_CONTROL:
		return fail(r, r->line, "control character in a string");
	case JSON_ESCAPE_BAD_U:
		return fail(r, r->line, "bad \\u escape");
	case JSON_ESCAPE_SURROGATE:
		return fail(r, r->line, "lone surrogate in \\u escape");
	case JSON_ESCAPE_BAD:
		return fail(r, r->line, "bad escape in a string");
	}
	r->p += n;
	s[*len < cap ? *len : cap] = '\0';
	return 0;
}

/* An integer, kept as its text for check() to judge. */
static int
jp_integer(struct exportrow_reader *r, int f)
{
	const char *s;

	jp_space(r);
	s = r->p;
	if (r->p < r->end && *r->p == '-')
		r->p++;
	while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
		r->p++;
	if (r->p == s || (r->p - s == 1 && *s == '-') ||
	    (r->p < r->end && strchr(".eE", *r->p) != NULL))
		return fail(r, r->line, "expected an integer");
	for (r->len[f] = 0; s < r->p; s++)
		put(r, f, *s);
	terminate(r, f);
	return 0;
}

/* After the list: only white space. */
static int
jp_end(struct exportrow_reader *r)
{
	jp_space(r);
	if (r->p < r->end)
		return fail(r, r->line, "text after the list");
	r->state = R_DONE;
	return 0;
}

static int
jp_next(struct exportrow_reader *r, struct exportrow *row)
{
	char key[KEY_MAX + 1];
	size_t keylen;
	unsigned long start;
	bool seen[EXPORTROW_NFIELDS];
	int f;

	if (r->state == R_FIRST) {
		if (jp_expect(r, '[', "[ (a JSON list of rows)") == -1)
			return -1;
		r->state = R_ROWS;
		jp_space(r);
		if (r->p < r->end && *r->p == ']') {
			r->p++;
			return jp_end(r);
		}
	}
	jp_space(r);
	start = r->line;
	if (jp_expect(r, '{', "{ (a row object)") == -1)
		return -1;
	memset(seen, 0, sizeof(seen));
	clear(r);
	for (;;) {
		if (jp_string(r, key, KEY_MAX, &keylen) == -1)
			return -1;
		for (f = 0; f < EXPORTROW_NFIELDS; f++)
			if (keylen == strlen(names[f]) &&
			    memcmp(key, names[f], keylen) == 0)
				break;
		if (f == EXPORTROW_NFIELDS)
			return fail(r, r->line, "unknown key \"%.40s\"", key);
		if (seen[f])
			return fail(r, r->line, "key \"%s\" given twice",
			    names[f]);
		seen[f] = true;
		if (jp_expect(r, ':', ":") == -1)
			return -1;
		if (f < 3) {
			if (jp_string(r, r->text[f], EXPORTROW_TEXT_MAX,
			    &r->len[f]) == -1)
				return -1;
		} else if (jp_integer(r, f) == -1)
			return -1;
		jp_space(r);
		if (r->p < r->end && *r->p == ',') {
			r->p++;
			continue;
		}
		if (jp_expect(r, '}', ", or }") == -1)
			return -1;
		break;
	}
	for (f = 0; f < EXPORTROW_NFIELDS; f++)
		if (!seen[f])
			return fail(r, start, "row without \"%s\"", names[f]);
	if (check(r, start, row) == -1)
		return -1;
	/* What follows the row is checked before the row is handed out:
	 * the first error of the text is the one reported. */
	jp_space(r);
	if (r->p < r->end && *r->p == ',') {
		r->p++;
		return 1;
	}
	if (jp_expect(r, ']', ", or ]") == -1 || jp_end(r) == -1)
		return -1;
	return 1;
}

void
exportrow_reader_init(struct exportrow_reader *r, enum exportrow_format format,
    const char *text, size_t len)
{
	memset(r, 0, sizeof(*r));
	r->format = format;
	r->p = text;
	r->end = text + len;
	r->line = 1;
	r->state = R_FIRST;
}

int
exportrow_parse(struct exportrow_reader *r, struct exportrow *row)
{
	if (r->state == R_FAILED)
		return -1;
	if (r->state == R_DONE)
		return 0;
	return r->format == EXPORTROW_JSON ? jp_next(r, row) :
	    csv_next(r, row);
}

/*
 * Writing.
 */

static void
csv_field(struct buf *b, const char *s)
{
	/* RFC 4180: quote a field holding a separator, a quote or a line
	 * end, and double its quotes. */
	if (strpbrk(s, ",\"\r\n") == NULL) {
		buf_puts(b, s);
		return;
	}
	buf_putc(b, '"');
	for (; *s; s++) {
		if (*s == '"')
			buf_putc(b, '"');
		buf_putc(b, *s);
	}
	buf_putc(b, '"');
}

static void
put_count(struct buf *b, const struct exportrow *row, uint64_t n)
{
	/* An adjustment may be negative: it is a signed delta. */
	if (row->day == DAY_ADJUST)
		buf_printf(b, "%" PRId64, (int64_t)n);
	else
		buf_put_u64(b, n);
}

void
exportrow_format(struct buf *b, enum exportrow_format format,
    const struct exportrow *row)
{
	char day[DAY_STRLEN], ref[sizeof(EXPORTROW_REFERRER) +
	    STORE_REFERRER_MAX];
	const char *path;

	if (row->referrer != NULL) {
		snprintf(ref, sizeof(ref), "%s%s", EXPORTROW_REFERRER,
		    row->referrer);
		path = ref;
	} else
		path = row->path[0] == '\0' ? SITE_PATH : row->path;

	if (row->day == DAY_ADJUST)
		memcpy(day, ADJUST_DAY, sizeof(ADJUST_DAY));
	else
		day_format(row->day, day);
	if (format == EXPORTROW_JSON) {
		buf_puts(b, "{\"site\":");
		json_string(b, row->site);
		buf_printf(b, ",\"day\":\"%s\",\"path\":", day);
		json_string(b, path);
		buf_puts(b, ",\"views\":");
		put_count(b, row, row->views);
		buf_puts(b, ",\"visitors\":");
		put_count(b, row, row->visitors);
		buf_putc(b, '}');
	} else {
		csv_field(b, row->site);
		buf_printf(b, ",%s,", day);
		csv_field(b, path);
		buf_putc(b, ',');
		put_count(b, row, row->views);
		buf_putc(b, ',');
		put_count(b, row, row->visitors);
		buf_putc(b, '\n');
	}
}
