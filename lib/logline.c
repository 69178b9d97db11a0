/*
 * Access log lines, as nginx and Apache write them. The parser takes
 * any bytes: a log is whatever the server was sent, and a line that is
 * not in the format is reported, never trusted.
 */
#include <stdio.h>
#include <string.h>

#include "tally/day.h"
#include "tally/escape.h"
#include "tally/logline.h"

#define TIME_LEN	26	/* "10/Oct/2000:13:55:36 -0700" */

static int
month_of(const char *m)
{
	static const char names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	int i;

	for (i = 0; i < 12; i++)
		if (memcmp(names + 3 * i, m, 3) == 0)
			return i + 1;
	return 0;
}

static bool
digits(const char *s, int n, int *out)
{
	int v = 0, i;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

/* "10/Oct/2000:13:55:36 -0700" (TIME_LEN bytes at s) to a time and the
 * line's offset from UTC. */
static bool
parse_time(struct logline_parser *lp, const char *s, time_t *t, int *utcoff)
{
	char date[32];
	int d, mon, y, h, mi, sec, oh, om, day;

	if (s[2] != '/' || s[6] != '/' || s[11] != ':' || s[14] != ':' ||
	    s[17] != ':' || s[20] != ' ' || (s[21] != '+' && s[21] != '-'))
		return false;
	if (!digits(s + 12, 2, &h) || !digits(s + 15, 2, &mi) ||
	    !digits(s + 18, 2, &sec) || !digits(s + 22, 2, &oh) ||
	    !digits(s + 24, 2, &om))
		return false;
	/* A leap second, :60, is taken: it is the next minute's first. */
	if (h > 23 || mi > 59 || sec > 60 || oh > 23 || om > 59)
		return false;
	if (memcmp(s, lp->last_date, sizeof(lp->last_date)) == 0)
		day = lp->last_day;
	else {
		if (!digits(s, 2, &d) || (mon = month_of(s + 3)) == 0 ||
		    !digits(s + 7, 4, &y))
			return false;
		snprintf(date, sizeof(date), "%04d-%02d-%02d", y, mon, d);
		if (day_parse(date, &day) == -1)
			return false;
		memcpy(lp->last_date, s, sizeof(lp->last_date));
		lp->last_day = day;
	}
	*utcoff = (s[21] == '-' ? -1 : 1) * (oh * 3600 + om * 60);
	*t = (time_t)day * 86400 + h * 3600 + mi * 60 + sec - *utcoff;
	return true;
}

/* Skips a quoted field at p (just after its opening quote); returns
 * the closing quote, or NULL. nginx writes a quote inside as \x22,
 * Apache as \": a backslash always takes the next byte along. */
static const char *
quoted_end(const char *p, const char *end)
{
	for (; p < end; p++) {
		if (*p == '\\' && p + 1 < end)
			p++;
		else if (*p == '"')
			return p;
	}
	return NULL;
}

/* A quoted field at p (its opening quote at p + 1, after a space):
 * its text to *s and *len; returns what follows it, or NULL. A lone
 * "-" is what servers log for a header not sent. */
static const char *
quoted(const char *p, const char *end, const char **s, size_t *len)
{
	const char *q;

	if (end - p < 2 || p[0] != ' ' || p[1] != '"' ||
	    (q = quoted_end(p + 2, end)) == NULL)
		return NULL;
	*s = p + 2;
	*len = (size_t)(q - *s);
	if (*len == 1 && **s == '-')
		*s = "", *len = 0;
	return q + 1;
}

void
logline_init(struct logline_parser *lp, enum logline_format format)
{
	memset(lp, 0, sizeof(*lp));
	lp->format = format;
}

/*
 * host ident user [time] "request" status bytes ["referer" "user-agent"]
 */
bool
logline_parse(struct logline_parser *lp, const char *line, size_t len,
    struct logline *ll)
{
	const char *end = line + len, *p, *q;

	memset(ll, 0, sizeof(*ll));
	ll->referer = ll->ua = "";
	if ((p = memchr(line, ' ', len)) == NULL || p == line)
		return false;
	ll->host = line;
	ll->hostlen = (size_t)(p - line);
	/* The user field may hold anything; the time is the first '['. */
	if ((p = memchr(p, '[', (size_t)(end - p))) == NULL ||
	    end - p < TIME_LEN + 2 || p[TIME_LEN + 1] != ']' ||
	    !parse_time(lp, p + 1, &ll->when, &ll->utcoff))
		return false;
	p += TIME_LEN + 2;
	if (end - p < 2 || p[0] != ' ' || p[1] != '"')
		return false;
	ll->request = p + 2;
	if ((q = quoted_end(ll->request, end)) == NULL)
		return false;
	ll->requestlen = (size_t)(q - ll->request);
	p = q + 1;
	if (end - p < 5 || p[0] != ' ' || !digits(p + 1, 3, &ll->status) ||
	    p[4] != ' ')
		return false;
	p += 5;
	/* bytes: digits or "-" */
	if (p < end && *p == '-')
		p++;
	else {
		q = p;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
		if (p == q)
			return false;
	}
	if (lp->format == LOGLINE_COMBINED) {
		if ((p = quoted(p, end, &ll->referer, &ll->refererlen)) ==
		    NULL ||
		    quoted(p, end, &ll->ua, &ll->ualen) == NULL)
			return false;
		/* What follows (nginx's extra fields) is not read. */
	} else if (p < end && *p != ' ')
		return false;

	/* "METHOD TARGET PROTOCOL"; HTTP/0.9 had no protocol. */
	ll->method = ll->request;
	if ((q = memchr(ll->request, ' ', ll->requestlen)) == NULL)
		ll->methodlen = ll->requestlen;
	else {
		ll->methodlen = (size_t)(q - ll->request);
		ll->target = q + 1;
		end = ll->request + ll->requestlen;
		if ((q = memchr(ll->target, ' ',
		    (size_t)(end - ll->target))) == NULL)
			q = end;
		ll->targetlen = (size_t)(q - ll->target);
	}
	return true;
}


size_t
logline_unescape(const char *in, size_t len, char *out)
{
	static const char ctrl[] = "b\bn\nr\rt\tv\v";
	const char *c;
	size_t i, o = 0;
	int hi, lo;

	for (i = 0; i < len; i++) {
		if (in[i] != '\\' || i + 1 == len) {
			out[o++] = in[i];
			continue;
		}
		hi = i + 3 < len ? hex_value((unsigned char)in[i + 2]) : -1;
		lo = i + 3 < len ? hex_value((unsigned char)in[i + 3]) : -1;

		if (in[i + 1] == 'x' && hi >= 0 && lo >= 0) {
			out[o++] = (char)(hi << 4 | lo);
			i += 3;
		} else if (in[i + 1] == '"' || in[i + 1] == '\\') {
			out[o++] = in[++i];
		} else if (in[i + 1] != '\0' &&
		    (c = strchr(ctrl, in[i + 1])) != NULL &&
		    (c - ctrl) % 2 == 0) {
			out[o++] = c[1];
			i++;
		} else
			out[o++] = in[i];
	}
	return o;
}
