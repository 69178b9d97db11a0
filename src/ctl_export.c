/*
 * tallyctl export and import: every count of the store as daily rows
 * "site,day,path,views,visitors", in CSV or JSON.
 *
 * Path "*" is a site's own series, day "-" a series' all-time
 * adjustment (what "set" made). Rows come by site, then by path in the
 * store's order (the site's own series first), the adjustment before
 * the days, days ascending: the order is the store's, so that exporting
 * what an import wrote gives the same bytes back.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tally/buf.h"
#include "tally/ctl.h"
#include "tally/day.h"
#include "tally/escape.h"
#include "tally/path.h"

#define SITE_PATH	"*"
#define ADJUST_DAY	"-"
#define CSV_HEADER	"site,day,path,views,visitors"
#define FLUSH_AT	(1 << 16)
#define MAX_GROWS	16

enum format { FMT_GUESS, FMT_CSV, FMT_JSON };

static int
parse_format(struct ctl *ctl, const char *given, enum format *fmt)
{
	if (given == NULL)
		*fmt = FMT_GUESS;
	else if (strcmp(given, "csv") == 0)
		*fmt = FMT_CSV;
	else if (strcmp(given, "json") == 0)
		*fmt = FMT_JSON;
	else
		return ctl_usage(ctl, "--format: csv or json, not \"%s\"",
		    given);
	return 0;
}

/*
 * export
 */

struct export_state {
	struct ctl	*ctl;
	struct store_view *v;
	enum format	 fmt;
	struct buf	 out;
	uint64_t	 rows;
};

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

static int
export_row(void *arg, const char *site, const char *path, int day,
    const struct counts *c)
{
	struct export_state *es = arg;
	char d[DAY_STRLEN], num[64];

	if (day == DAY_ADJUST) {
		/* An adjustment may be negative: it is a signed delta. */
		snprintf(d, sizeof(d), "%s", ADJUST_DAY);
		snprintf(num, sizeof(num), "%" PRId64 "%c%" PRId64,
		    (int64_t)c->views, es->fmt == FMT_JSON ? ':' : ',',
		    (int64_t)c->visitors);
	} else {
		day_format(day, d);
		snprintf(num, sizeof(num), "%" PRIu64 "%c%" PRIu64, c->views,
		    es->fmt == FMT_JSON ? ':' : ',', c->visitors);
	}
	if (path[0] == '\0')
		path = SITE_PATH;

	if (es->fmt == FMT_JSON) {
		buf_puts(&es->out, es->rows ? ",\n{\"site\":" : "\n{\"site\":");
		json_string(&es->out, site);
		buf_printf(&es->out, ",\"day\":\"%s\",\"path\":", d);
		json_string(&es->out, path);
		/* num is "V:W": split it back for the two keys. */
		*strchr(num, ':') = '\0';
		buf_printf(&es->out, ",\"views\":%s,\"visitors\":%s}", num,
		    num + strlen(num) + 1);
	} else {
		buf_puts(&es->out, site);
		buf_printf(&es->out, ",%s,", d);
		csv_field(&es->out, path);
		buf_printf(&es->out, ",%s\n", num);
	}
	es->rows++;
	if (es->out.len >= FLUSH_AT) {
		if (fwrite(es->out.data, 1, es->out.len, stdout) !=
		    es->out.len)
			return STORE_ERROR;
		buf_reset(&es->out);
	}
	return STORE_OK;
}

static int
export_series(void *arg, const char *site, const char *path,
    const struct series_counts *sc)
{
	struct export_state *es = arg;

	return store_each_day(es->v, site, path, 0, INT_MAX, true, export_row,
	    es);
}

int
cmd_export(struct ctl *ctl, int argc, char **argv)
{
	const char *site_opt = NULL, *format_opt = NULL, *site = NULL;
	struct ctl_opt opts[] = {
		{ "site", &site_opt, NULL },
		{ "format", &format_opt, NULL },
		{ NULL, NULL, NULL },
	};
	struct export_state es;
	int rc, nargs;

	memset(&es, 0, sizeof(es));
	buf_init(&es.out);
	if ((rc = ctl_parse(ctl, argc, argv, opts, NULL, &nargs, 0, 0)) != 0 ||
	    (rc = parse_format(ctl, format_opt, &es.fmt)) != 0 ||
	    (site_opt && (rc = ctl_site(ctl, site_opt, &site)) != 0))
		return rc;
	/* --json asks for JSON too, unless a format was named. */
	if (es.fmt == FMT_GUESS)
		es.fmt = ctl->json ? FMT_JSON : FMT_CSV;
	if ((rc = ctl_open(ctl, STORE_READONLY)) != 0)
		return rc;
	es.ctl = ctl;
	if ((es.v = store_view_new(ctl->store)) == NULL)
		return ctl_fail(ctl, "store_view_new: out of memory");
	/* One snapshot: the export is consistent while tallyd writes. */
	if (store_view_begin(es.v) != STORE_OK) {
		rc = ctl_fail(ctl, "starting a read: %s",
		    store_error(ctl->store));
		goto done;
	}
	buf_puts(&es.out, es.fmt == FMT_JSON ? "[" : CSV_HEADER "\n");
	if (store_each_series(es.v, site, export_series, &es) != STORE_OK) {
		if (ferror(stdout))
			rc = ctl_fail(ctl, "writing the output: %s",
			    strerror(errno));
		else
			rc = ctl_fail(ctl, "reading the store: %s",
			    store_error(ctl->store));
		goto done;
	}
	if (es.fmt == FMT_JSON)
		buf_puts(&es.out, es.rows ? "\n]\n" : "]\n");
	if (fwrite(es.out.data, 1, es.out.len, stdout) != es.out.len)
		rc = ctl_fail(ctl, "writing the output: %s", strerror(errno));
done:
	store_view_free(es.v);
	buf_free(&es.out);
	return rc;
}

/*
 * import
 *
 * The whole input is read and checked before the store is touched;
 * then every row goes in one write transaction. So a bad line imports
 * nothing, and tallyd never sees half an import.
 */

struct row {
	const char	*site;
	const char	*path;		/* "": the site's own series */
	int		 day;		/* DAY_ADJUST for "-" */
	uint64_t	 views;		/* an adjustment's are int64_t */
	uint64_t	 visitors;
};

/* Strings live in big blocks freed at once: an import may have
 * millions of rows, mostly repeating the site and path before. */
struct arena {
	char		**blocks;
	size_t		 nblocks;
	char		*cur;
	size_t		 left;
};

static const char *
arena_strdup(struct arena *a, const char *s, size_t len)
{
	size_t need = len + 1, sz;
	char *p;

	if (need > a->left) {
		sz = need > (1 << 20) ? need : (1 << 20);
		if ((a->blocks = reallocarray(a->blocks, a->nblocks + 1,
		    sizeof(*a->blocks))) == NULL ||
		    (a->cur = malloc(sz)) == NULL)
			fatal("import");
		a->blocks[a->nblocks++] = a->cur;
		a->left = sz;
	}
	p = a->cur;
	memcpy(p, s, len);
	p[len] = '\0';
	a->cur += need;
	a->left -= need;
	return p;
}

static void
arena_free(struct arena *a)
{
	size_t i;

	for (i = 0; i < a->nblocks; i++)
		free(a->blocks[i]);
	free(a->blocks);
	memset(a, 0, sizeof(*a));
}

struct import {
	struct ctl	*ctl;
	const char	*file;
	struct row	*rows;
	size_t		 n, cap;
	struct arena	 strings;
	const char	*last_site, *last_path;
	char		 err[512];
	unsigned long	 errline;
};

static int
import_error(struct import *im, unsigned long line, const char *fmt, ...)
    TALLY_PRINTF(3, 4);

static int
import_error(struct import *im, unsigned long line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(im->err, sizeof(im->err), fmt, ap);
	va_end(ap);
	im->errline = line;
	return -1;
}

static int
parse_signed(const char *s, int64_t *out)
{
	uint64_t u;

	if (*s == '-') {
		if (ctl_number(s + 1, (uint64_t)INT64_MAX + 1, &u) == -1)
			return -1;
		*out = (int64_t)(0 - u);
		return 0;
	}
	if (ctl_number(s, INT64_MAX, &u) == -1)
		return -1;
	*out = (int64_t)u;
	return 0;
}

/* Checks the five fields of a row (NUL-terminated, path of plen bytes)
 * and adds it. */
static int
add_row(struct import *im, unsigned long line, const char *site,
    const char *day, const char *path, size_t plen, const char *views,
    const char *visitors)
{
	struct row r;
	int64_t sv, svis;
	size_t i;

	memset(&r, 0, sizeof(r));
	if (!site_name_valid(site))
		return import_error(im, line, "invalid site id \"%.80s\"",
		    site);
	if (strcmp(day, ADJUST_DAY) == 0)
		r.day = DAY_ADJUST;
	else if (day_parse(day, &r.day) == -1)
		return import_error(im, line, "invalid day \"%.40s\" "
		    "(YYYY-MM-DD, or - for an adjustment)", day);
	else if (r.day < 0)
		return import_error(im, line, "day %s is before 1970-01-01",
		    day);

	if (plen == 1 && path[0] == '*')
		path = SITE_SERIES, plen = 0;
	else if (plen == 0 || path[0] != '/')
		return import_error(im, line, "invalid path \"%.80s\" (a "
		    "path starts with /; * is the whole site)", path);
	else if (plen > PATH_MAX_LEN || strlen(path) != plen)
		return import_error(im, line, "invalid path: longer than %d "
		    "bytes or holding NUL", PATH_MAX_LEN);
	else if (!utf8_valid(path, plen))
		return import_error(im, line, "invalid path: not UTF-8");
	for (i = 0; i < plen; i++)
		if ((unsigned char)path[i] < 0x20 || path[i] == 0x7f)
			return import_error(im, line, "invalid path: control "
			    "character");

	if (r.day == DAY_ADJUST) {
		if (parse_signed(views, &sv) == -1)
			return import_error(im, line, "invalid views \"%.40s\"",
			    views);
		if (parse_signed(visitors, &svis) == -1)
			return import_error(im, line, "invalid visitors "
			    "\"%.40s\"", visitors);
		r.views = (uint64_t)sv;
		r.visitors = (uint64_t)svis;
	} else {
		if (ctl_number(views, UINT64_MAX, &r.views) == -1)
			return import_error(im, line, "invalid views \"%.40s\"",
			    views);
		if (ctl_number(visitors, UINT64_MAX, &r.visitors) == -1)
			return import_error(im, line, "invalid visitors "
			    "\"%.40s\"", visitors);
	}

	if (im->last_site == NULL || strcmp(im->last_site, site) != 0)
		im->last_site = arena_strdup(&im->strings, site, strlen(site));
	if (im->last_path == NULL || strcmp(im->last_path, path) != 0)
		im->last_path = arena_strdup(&im->strings, path, plen);
	r.site = im->last_site;
	r.path = im->last_path;
	if (im->n == im->cap) {
		im->cap = im->cap ? im->cap * 2 : 1024;
		if ((im->rows = reallocarray(im->rows, im->cap,
		    sizeof(*im->rows))) == NULL)
			fatal("import");
	}
	im->rows[im->n++] = r;
	return 0;
}

/* Reads the inside of a quoted field at *pp (past its opening quote)
 * into f (NULL: dropped), counting its line ends. Returns -1 when the
 * closing quote is missing. */
static int
csv_quoted(const char **pp, const char *end, struct buf *f,
    unsigned long *line)
{
	const char *p = *pp;

	for (; p < end; p++) {
		if (*p == '"') {
			if (p + 1 == end || p[1] != '"') {
				*pp = p + 1;
				return 0;
			}
			p++;	/* "" is one quote */
		} else if (*p == '\n')
			(*line)++;
		if (f)
			buf_putc(f, *p);
	}
	return -1;
}

static bool
csv_is_header(struct buf field[5])
{
	static const char *const names[5] = {
		"site", "day", "path", "views", "visitors"
	};
	int i;

	for (i = 0; i < 5; i++)
		if (strcmp(field[i].data, names[i]) != 0)
			return false;
	return true;
}

/*
 * CSV (RFC 4180): fields separated by commas, records by CRLF or LF,
 * fields in double quotes may hold commas, quotes (doubled) and line
 * ends. The header line is optional. Empty lines are skipped.
 */
static int
parse_csv(struct import *im, const char *p, size_t len)
{
	const char *end = p + len;
	struct buf field[5], *f;
	size_t nf, i;
	unsigned long line = 1, start;
	bool first = true;
	int rc = 0;

	for (i = 0; i < 5; i++)
		buf_init(&field[i]);
	while (p < end && rc == 0) {
		start = line;
		if (*p == '\n' || (*p == '\r' && p + 1 < end && p[1] == '\n')) {
			p += *p == '\r' ? 2 : 1;
			line++;
			continue;
		}
		for (i = 0; i < 5; i++)
			buf_reset(&field[i]);
		for (nf = 0; ; nf++) {
			/* Fields past the fifth are counted, not kept. */
			f = nf < 5 ? &field[nf] : NULL;
			if (p < end && *p == '"') {
				p++;
				if (csv_quoted(&p, end, f, &line) == -1) {
					rc = import_error(im, start,
					    "unterminated quoted field");
					goto out;
				}
			} else
				for (; p < end && !strchr(",\n\r\"", *p); p++)
					if (f)
						buf_putc(f, *p);
			if (p < end && *p == ',') {
				p++;
				continue;
			}
			if (p >= end || *p == '\n') {
				p++;
				break;
			}
			if (*p == '\r' && p + 1 < end && p[1] == '\n') {
				p += 2;
				break;
			}
			rc = import_error(im, line, "%s", *p == '"' ?
			    "quote inside an unquoted field" :
			    "unexpected character after a field");
			goto out;
		}
		nf++;
		line++;
		if (first) {
			first = false;
			if (nf == 5 && csv_is_header(field))
				continue;
		}
		if (nf != 5) {
			rc = import_error(im, start, "%zu field%s, want 5 ("
			    CSV_HEADER ")", nf, nf == 1 ? "" : "s");
			break;
		}
		rc = add_row(im, start, field[0].data, field[1].data,
		    field[2].data, field[2].len, field[3].data, field[4].data);
	}
out:
	for (i = 0; i < 5; i++)
		buf_free(&field[i]);
	return rc;
}

/*
 * JSON: a list of flat objects with the five keys, strings for site,
 * day and path, integers for the counts. Just enough of a parser for
 * that, which names the line of what it cannot take.
 */
struct jp {
	struct import	*im;
	const char	*p, *end;
	unsigned long	 line;
};

static void
jp_space(struct jp *j)
{
	for (; j->p < j->end; j->p++) {
		if (*j->p == '\n')
			j->line++;
		else if (*j->p != ' ' && *j->p != '\t' && *j->p != '\r')
			break;
	}
}

static int
jp_expect(struct jp *j, char c, const char *what)
{
	jp_space(j);
	if (j->p >= j->end || *j->p != c)
		return import_error(j->im, j->line, "expected %s", what);
	j->p++;
	return 0;
}

static int
hex4(const char *p, uint32_t *out)
{
	uint32_t v = 0;
	int i;

	for (i = 0; i < 4; i++) {
		v <<= 4;
		if (p[i] >= '0' && p[i] <= '9')
			v |= (uint32_t)(p[i] - '0');
		else if (p[i] >= 'a' && p[i] <= 'f')
			v |= (uint32_t)(p[i] - 'a' + 10);
		else if (p[i] >= 'A' && p[i] <= 'F')
			v |= (uint32_t)(p[i] - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

static void
put_utf8(struct buf *b, uint32_t cp)
{
	char u[4];

	if (cp < 0x80) {
		buf_putc(b, (char)cp);
		return;
	}
	if (cp < 0x800) {
		u[0] = (char)(0xc0 | cp >> 6);
		u[1] = (char)(0x80 | (cp & 0x3f));
		buf_append(b, u, 2);
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | cp >> 12);
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		buf_append(b, u, 3);
	} else {
		u[0] = (char)(0xf0 | cp >> 18);
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		buf_append(b, u, 4);
	}
}

static int
jp_string(struct jp *j, struct buf *out)
{
	uint32_t cp, lo;

	buf_reset(out);
	if (jp_expect(j, '"', "a string") == -1)
		return -1;
	for (;;) {
		if (j->p >= j->end)
			return import_error(j->im, j->line,
			    "unterminated string");
		if (*j->p == '"') {
			j->p++;
			return 0;
		}
		if ((unsigned char)*j->p < 0x20)
			return import_error(j->im, j->line,
			    "control character in a string");
		if (*j->p != '\\') {
			buf_putc(out, *j->p++);
			continue;
		}
		if (++j->p >= j->end)
			return import_error(j->im, j->line,
			    "unterminated string");
		switch (*j->p++) {
		case '"': buf_putc(out, '"'); break;
		case '\\': buf_putc(out, '\\'); break;
		case '/': buf_putc(out, '/'); break;
		case 'b': buf_putc(out, '\b'); break;
		case 'f': buf_putc(out, '\f'); break;
		case 'n': buf_putc(out, '\n'); break;
		case 'r': buf_putc(out, '\r'); break;
		case 't': buf_putc(out, '\t'); break;
		case 'u':
			if (j->end - j->p < 4 || hex4(j->p, &cp) == -1)
				return import_error(j->im, j->line,
				    "bad \\u escape");
			j->p += 4;
			if (cp >= 0xd800 && cp < 0xdc00) {
				if (j->end - j->p < 6 || j->p[0] != '\\' ||
				    j->p[1] != 'u' ||
				    hex4(j->p + 2, &lo) == -1 ||
				    lo < 0xdc00 || lo > 0xdfff)
					return import_error(j->im, j->line,
					    "lone surrogate in \\u escape");
				j->p += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) +
				    (lo - 0xdc00);
			} else if (cp >= 0xdc00 && cp < 0xe000)
				return import_error(j->im, j->line,
				    "lone surrogate in \\u escape");
			put_utf8(out, cp);
			break;
		default:
			return import_error(j->im, j->line, "bad escape in a "
			    "string");
		}
	}
}

/* An integer, kept as its text for add_row to check. */
static int
jp_integer(struct jp *j, struct buf *out)
{
	const char *s;

	buf_reset(out);
	jp_space(j);
	s = j->p;
	if (j->p < j->end && *j->p == '-')
		j->p++;
	while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
		j->p++;
	if (j->p == s || (j->p - s == 1 && *s == '-') ||
	    (j->p < j->end && strchr(".eE", *j->p)))
		return import_error(j->im, j->line, "expected an integer");
	buf_append(out, s, (size_t)(j->p - s));
	return 0;
}

static int
parse_json(struct import *im, const char *p, size_t len)
{
	static const char *const keys[5] = {
		"site", "day", "path", "views", "visitors"
	};
	struct jp j = { im, p, p + len, 1 };
	struct buf key, val[5];
	unsigned long start;
	bool seen[5];
	int i, k, rc = -1;

	buf_init(&key);
	for (i = 0; i < 5; i++)
		buf_init(&val[i]);
	if (jp_expect(&j, '[', "[ (a JSON list of rows)") == -1)
		goto out;
	jp_space(&j);
	if (j.p < j.end && *j.p == ']') {
		j.p++;
		goto tail;
	}
	for (;;) {
		jp_space(&j);
		start = j.line;
		if (jp_expect(&j, '{', "{ (a row object)") == -1)
			goto out;
		memset(seen, 0, sizeof(seen));
		for (;;) {
			if (jp_string(&j, &key) == -1)
				goto out;
			for (k = 0; k < 5; k++)
				if (strcmp(key.data, keys[k]) == 0)
					break;
			if (k == 5) {
				import_error(im, j.line, "unknown key "
				    "\"%.40s\"", key.data);
				goto out;
			}
			if (seen[k]) {
				import_error(im, j.line, "key \"%s\" given "
				    "twice", keys[k]);
				goto out;
			}
			seen[k] = true;
			if (jp_expect(&j, ':', ":") == -1)
				goto out;
			if ((k < 3 ? jp_string(&j, &val[k]) :
			    jp_integer(&j, &val[k])) == -1)
				goto out;
			jp_space(&j);
			if (j.p < j.end && *j.p == ',') {
				j.p++;
				continue;
			}
			if (jp_expect(&j, '}', ", or }") == -1)
				goto out;
			break;
		}
		for (k = 0; k < 5; k++)
			if (!seen[k]) {
				import_error(im, start, "row without \"%s\"",
				    keys[k]);
				goto out;
			}
		if (add_row(im, start, val[0].data, val[1].data, val[2].data,
		    val[2].len, val[3].data, val[4].data) == -1)
			goto out;
		jp_space(&j);
		if (j.p < j.end && *j.p == ',') {
			j.p++;
			continue;
		}
		if (jp_expect(&j, ']', ", or ]") == -1)
			goto out;
		break;
	}
tail:
	jp_space(&j);
	if (j.p < j.end) {
		import_error(im, j.line, "text after the list");
		goto out;
	}
	rc = 0;
out:
	buf_free(&key);
	for (i = 0; i < 5; i++)
		buf_free(&val[i]);
	return rc;
}

static int
read_all(FILE *f, struct buf *b)
{
	char chunk[65536];
	size_t n;

	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(b, chunk, n);
	return ferror(f) ? -1 : 0;
}

/* Writes every row in one transaction; a full map is grown and the
 * whole transaction tried again. */
static int
import_write(struct import *im)
{
	struct store *st = im->ctl->store;
	struct store_txn *txn;
	const struct row *r;
	size_t i;
	int rc, grows;

	store_reader_check(st);
	for (grows = 0; grows < MAX_GROWS; grows++) {
		if ((rc = store_write_begin(st, &txn)) != STORE_OK)
			return ctl_fail(im->ctl, "starting the write: %s",
			    store_error(st));
		for (i = 0, rc = STORE_OK; i < im->n && rc == STORE_OK; i++) {
			r = &im->rows[i];
			if (r->day == DAY_ADJUST)
				rc = store_add_adjust(txn, r->site, r->path,
				    (int64_t)r->views, (int64_t)r->visitors);
			else
				rc = store_add(txn, r->site, r->path, r->day,
				    r->views, r->visitors);
		}
		if (rc == STORE_OK)
			rc = store_commit(txn);
		else
			store_abort(txn);
		if (rc == STORE_OK)
			return 0;
		if (rc != STORE_MAPFULL)
			return ctl_fail(im->ctl, "writing: %s; nothing was "
			    "imported", store_error(st));
		if (store_grow(st) != STORE_OK)
			return ctl_fail(im->ctl, "growing the store: %s; "
			    "nothing was imported", store_error(st));
	}
	return ctl_fail(im->ctl, "the store is still full after growing it "
	    "%d times; nothing was imported", MAX_GROWS);
}

int
cmd_import(struct ctl *ctl, int argc, char **argv)
{
	const char *format_opt = NULL;
	struct ctl_opt opts[] = {
		{ "format", &format_opt, NULL },
		{ NULL, NULL, NULL },
	};
	struct import im;
	enum format fmt;
	struct buf in;
	char *args[1], n1[NUM_STRLEN];
	const char *p, *start;
	size_t len;
	FILE *f;
	int rc, nargs;

	memset(&im, 0, sizeof(im));
	buf_init(&in);
	if ((rc = ctl_parse(ctl, argc, argv, opts, args, &nargs, 1, 1)) != 0 ||
	    (rc = parse_format(ctl, format_opt, &fmt)) != 0)
		return rc;
	/* The configuration is checked before the file is read. */
	if ((rc = ctl_setup(ctl)) != 0)
		return rc;
	im.ctl = ctl;
	im.file = strcmp(args[0], "-") == 0 ? "(stdin)" : args[0];

	if (strcmp(args[0], "-") == 0)
		f = stdin;
	else if ((f = fopen(args[0], "r")) == NULL)
		return ctl_fail(ctl, "%s: %s", args[0], strerror(errno));
	if (read_all(f, &in) == -1) {
		rc = ctl_fail(ctl, "reading %s: %s", im.file, strerror(errno));
		if (f != stdin)
			fclose(f);
		goto done;
	}
	if (f != stdin)
		fclose(f);

	/* Spreadsheets save CSV with a byte order mark. */
	start = in.data;
	len = in.len;
	if (len >= 3 && memcmp(start, "\xef\xbb\xbf", 3) == 0) {
		start += 3;
		len -= 3;
	}
	if (fmt == FMT_GUESS) {
		for (p = start; *p == ' ' || *p == '\t' || *p == '\r' ||
		    *p == '\n'; p++)
			;
		fmt = *p == '[' ? FMT_JSON : FMT_CSV;
	}
	if ((fmt == FMT_JSON ? parse_json(&im, start, len) :
	    parse_csv(&im, start, len)) == -1) {
		/* The FILE:LINE: form that editors jump to. */
		fprintf(stderr, "%s:%lu: %s\n", im.file, im.errline, im.err);
		fprintf(stderr, "tallyctl: import: nothing imported\n");
		rc = 1;
		goto done;
	}
	buf_free(&in);

	if ((rc = ctl_open(ctl, 0)) != 0)
		goto done;
	if ((rc = import_write(&im)) != 0)
		goto done;
	if (ctl->json)
		printf("{\"rows\":%zu}\n", im.n);
	else
		printf("imported %s row%s into %s\n", ctl_thousands(n1, im.n),
		    im.n == 1 ? "" : "s", ctl->data);
done:
	buf_free(&in);
	free(im.rows);
	arena_free(&im.strings);
	return rc;
}
