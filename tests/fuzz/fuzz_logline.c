/* libFuzzer: access log lines, as tallyctl import-log reads them, in
 * both formats. Every field must lie inside its line; the time must be
 * the one written, at the line's own offset; a parser that remembers
 * the lines before must read a line as a fresh one does; a line made
 * again from the fields must read the same; unescaping never grows. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tally/buf.h"
#include "tally/logline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* s[0..n) lies inside line[0..len), or is the empty "" of a field not
 * there. */
static void
inside(const char *s, size_t n, const char *line, size_t len)
{
	if (s == NULL) {
		if (n != 0)
			abort();
		return;
	}
	if (n == 0 && *s == '\0')
		return;
	if (s < line || s > line + len || n > (size_t)(line + len - s))
		abort();
}

static void
same_text(const char *a, size_t an, const char *b, size_t bn)
{
	if (an != bn || (an > 0 && memcmp(a, b, an) != 0) ||
	    (a == NULL) != (b == NULL))
		abort();
}

static void
same(const struct logline *a, const struct logline *b)
{
	same_text(a->host, a->hostlen, b->host, b->hostlen);
	same_text(a->request, a->requestlen, b->request, b->requestlen);
	same_text(a->method, a->methodlen, b->method, b->methodlen);
	same_text(a->target, a->targetlen, b->target, b->targetlen);
	same_text(a->referer, a->refererlen, b->referer, b->refererlen);
	same_text(a->ua, a->ualen, b->ua, b->ualen);
	if (a->when != b->when || a->utcoff != b->utcoff ||
	    a->status != b->status)
		abort();
}

static int
num(const char *s, int n)
{
	int v = 0;

	while (n-- > 0)
		v = v * 10 + (*s++ - '0');
	return v;
}

/* The time is what the line says, "10/Oct/2000:13:55:36 -0700", at
 * its offset. */
static void
check_time(const struct logline *ll, const char *ts)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	struct tm tm;
	time_t local;
	int sec = num(ts + 18, 2);

	if (ll->utcoff != (ts[21] == '-' ? -1 : 1) *
	    (num(ts + 22, 2) * 3600 + num(ts + 24, 2) * 60))
		abort();
	local = ll->when + ll->utcoff;
	if (sec == 60) {	/* a leap second: the next minute's first */
		local--;
		sec = 59;
	}
	if (gmtime_r(&local, &tm) == NULL)
		abort();
	if (tm.tm_mday != num(ts, 2) ||
	    memcmp(months + 3 * tm.tm_mon, ts + 3, 3) != 0 ||
	    tm.tm_year + 1900 != num(ts + 7, 4) ||
	    tm.tm_hour != num(ts + 12, 2) || tm.tm_min != num(ts + 15, 2) ||
	    tm.tm_sec != sec)
		abort();
}

static void
put_field(struct buf *b, const char *s, size_t n)
{
	buf_puts(b, " \"");
	if (n == 0)
		buf_putc(b, '-');
	else
		buf_append(b, s, n);
	buf_putc(b, '"');
}

/* The line made again from its fields (the ident and user fields, and
 * the byte count, as "-"), read again. */
static void
rebuild(const struct logline *ll, const char *ts, enum logline_format fmt)
{
	struct logline_parser lp;
	struct logline again;
	struct buf b;
	char *copy;

	buf_init(&b);
	buf_append(&b, ll->host, ll->hostlen);
	buf_puts(&b, " - - [");
	buf_append(&b, ts, 26);
	buf_puts(&b, "] \"");
	buf_append(&b, ll->request, ll->requestlen);
	buf_printf(&b, "\" %03d -", ll->status);
	if (fmt == LOGLINE_COMBINED) {
		put_field(&b, ll->referer, ll->refererlen);
		put_field(&b, ll->ua, ll->ualen);
	}
	/* An exact copy: reading past the line is caught. */
	if ((copy = malloc(b.len ? b.len : 1)) == NULL)
		abort();
	memcpy(copy, b.data, b.len);
	logline_init(&lp, fmt);
	if (!logline_parse(&lp, copy, b.len, &again))
		abort();
	same(ll, &again);
	free(copy);
	buf_free(&b);
}

static void
unescape(const char *s, size_t n)
{
	char *out;

	if (s == NULL)
		return;
	if ((out = malloc(n ? n : 1)) == NULL)
		abort();
	if (logline_unescape(s, n, out) > n)
		abort();
	free(out);
}

static void
one_line(struct logline_parser *warm, const char *line, size_t len)
{
	struct logline_parser fresh;
	struct logline a, b;
	const char *ts;
	bool ok;

	logline_init(&fresh, warm->format);
	ok = logline_parse(&fresh, line, len, &a);
	if (logline_parse(warm, line, len, &b) != ok)
		abort();
	if (!ok)
		return;
	same(&a, &b);
	if (a.host != line || a.hostlen == 0 ||
	    memchr(a.host, ' ', a.hostlen) != NULL)
		abort();
	inside(a.request, a.requestlen, line, len);
	inside(a.method, a.methodlen, a.request, a.requestlen);
	inside(a.target, a.targetlen, a.request, a.requestlen);
	inside(a.referer, a.refererlen, line, len);
	inside(a.ua, a.ualen, line, len);
	if (a.status < 0 || a.status > 999 || a.method != a.request)
		abort();
	if (warm->format == LOGLINE_COMMON && (a.ualen || a.refererlen))
		abort();
	/* The time: at the first '[' after the host. */
	ts = memchr(line + a.hostlen, '[', len - a.hostlen);
	if (ts == NULL || (size_t)(line + len - ts) < 28)
		abort();
	check_time(&a, ts + 1);
	rebuild(&a, ts + 1, warm->format);
	unescape(a.target, a.targetlen);
	unescape(a.request, a.requestlen);
	unescape(a.ua, a.ualen);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct logline_parser warm[2];
	const char *p = (const char *)data, *end = p + size, *nl, *e;
	char *line;
	size_t len;
	int f;

	logline_init(&warm[0], LOGLINE_COMBINED);
	logline_init(&warm[1], LOGLINE_COMMON);
	/* Lines as import-log cuts them: at LF, a CR before it dropped. */
	while (p < end) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		e = nl;
		if (e > p && e[-1] == '\r')
			e--;
		len = (size_t)(e - p);
		/* Each line in a buffer of its own size: a read past it is
		 * caught. */
		if ((line = malloc(len ? len : 1)) == NULL)
			abort();
		memcpy(line, p, len);
		for (f = 0; f < 2; f++)
			one_line(&warm[f], line, len);
		free(line);
		if (nl == end)
			break;
		p = nl + 1;
	}
	return 0;
}
