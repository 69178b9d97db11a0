/* Access log lines: nginx and Apache, combined and common, the times at
 * the lines' own offsets, the server's escapes, and what is no line. */

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "tally/logline.h"
#include "check.h"

#define UA	"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 " \
		"Firefox/128.0"

/* A string literal and its length, NULs inside counted. */
#define T(s)	(s), sizeof(s) - 1

static bool
text_is(const char *s, size_t n, const char *want)
{
	if (s == NULL)
		return want == NULL;
	return want != NULL && n == strlen(want) && memcmp(s, want, n) == 0;
}

#define CHECK_TEXT(s, n, want) do {					\
	CHECK(text_is((s), (n), (want)));				\
	if (!text_is((s), (n), (want)))					\
		fprintf(stderr, "  got \"%.*s\"\n", (int)(n),		\
		    (s) ? (s) : "(null)");				\
} while (0)

static void
test_combined(void)
{
	static const char apache[] = "127.0.0.1 - frank "
	    "[10/Oct/2000:13:55:36 -0700] \"GET /apache_pb.gif HTTP/1.0\" "
	    "200 2326 \"http://www.example.com/start.html\" "
	    "\"Mozilla/4.08 [en] (Win98; I ;Nav)\"";
	static const char nginx[] = "2001:db8::1 - - "
	    "[27/Nov/2026:10:16:01 +0100] \"GET /caf\\xC3\\xA9/men\\xC3\\xBC"
	    "?q=1 HTTP/2.0\" 304 - \"-\" \"" UA "\" \"extra\" 0.004";
	struct logline_parser lp;
	struct logline ll;

	logline_init(&lp, LOGLINE_COMBINED);
	CHECK(logline_parse(&lp, T(apache), &ll));
	CHECK_TEXT(ll.host, ll.hostlen, "127.0.0.1");
	CHECK_INT(ll.when, 971211336);	/* 2000-10-10 20:55:36 UTC */
	CHECK_INT(ll.utcoff, -7 * 3600);
	CHECK_TEXT(ll.request, ll.requestlen, "GET /apache_pb.gif HTTP/1.0");
	CHECK_TEXT(ll.method, ll.methodlen, "GET");
	CHECK_TEXT(ll.target, ll.targetlen, "/apache_pb.gif");
	CHECK_INT(ll.status, 200);
	CHECK_TEXT(ll.referer, ll.refererlen,
	    "http://www.example.com/start.html");
	CHECK_TEXT(ll.ua, ll.ualen, "Mozilla/4.08 [en] (Win98; I ;Nav)");

	/* nginx: \xHH escapes, no byte count, no referer, extra fields. */
	CHECK(logline_parse(&lp, T(nginx), &ll));
	CHECK_TEXT(ll.host, ll.hostlen, "2001:db8::1");
	CHECK_INT(ll.when, 1795770961);	/* 2026-11-27 09:16:01 UTC */
	CHECK_INT(ll.utcoff, 3600);
	CHECK_TEXT(ll.target, ll.targetlen,
	    "/caf\\xC3\\xA9/men\\xC3\\xBC?q=1");
	CHECK_INT(ll.status, 304);
	CHECK_TEXT(ll.referer, ll.refererlen, "");
	CHECK_TEXT(ll.ua, ll.ualen, UA);

	/* The same lines in the common format: the combined one is read
	 * as far as common goes; common lines are no combined ones. */
	logline_init(&lp, LOGLINE_COMMON);
	CHECK(logline_parse(&lp, T(apache), &ll));
	CHECK_TEXT(ll.target, ll.targetlen, "/apache_pb.gif");
	CHECK_TEXT(ll.ua, ll.ualen, "");
	CHECK_TEXT(ll.referer, ll.refererlen, "");
	CHECK(logline_parse(&lp, T("10.0.0.1 - - [01/Jan/2025:00:00:00 "
	    "+0000] \"GET / HTTP/1.1\" 200 17"), &ll));
	CHECK_INT(ll.when, 1735689600);
	CHECK(logline_parse(&lp, T("10.0.0.1 - - [01/Jan/2025:00:00:00 "
	    "+0000] \"GET / HTTP/1.1\" 200 -"), &ll));
	logline_init(&lp, LOGLINE_COMBINED);
	CHECK(!logline_parse(&lp, T("10.0.0.1 - - [01/Jan/2025:00:00:00 "
	    "+0000] \"GET / HTTP/1.1\" 200 17"), &ll));
}

static void
test_requests(void)
{
	static const struct {
		const char	*request;
		const char	*method, *target;
	} cases[] = {
		{ "GET /a?b=c HTTP/1.1", "GET", "/a?b=c" },
		{ "GET /nine", "GET", "/nine" },		/* HTTP/0.9 */
		{ "GET ", "GET", "" },
		{ "GET", "GET", NULL },
		{ "-", "-", NULL },			/* nginx: none */
		{ "\\x16\\x03\\x01", "\\x16\\x03\\x01", NULL },	/* TLS */
		{ "POST /api HTTP/1.1", "POST", "/api" },
		{ "GET /say?q=\\\"hi\\\" HTTP/1.1", "GET",
		    "/say?q=\\\"hi\\\"" },
		{ "", "", NULL },
	};
	struct logline_parser lp;
	struct logline ll;
	char line[256];
	size_t i;
	int n;

	logline_init(&lp, LOGLINE_COMBINED);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		n = snprintf(line, sizeof(line), "192.0.2.4 - - "
		    "[27/Nov/2026:10:19:10 +0100] \"%s\" 400 0 \"-\" \"-\"",
		    cases[i].request);
		CHECK(logline_parse(&lp, line, (size_t)n, &ll));
		CHECK_TEXT(ll.request, ll.requestlen, cases[i].request);
		CHECK_TEXT(ll.method, ll.methodlen, cases[i].method);
		CHECK_TEXT(ll.target, ll.targetlen, cases[i].target);
		CHECK_INT(ll.status, 400);
		CHECK_TEXT(ll.ua, ll.ualen, "");	/* "-": none sent */
	}
}

static void
test_times(void)
{
	static const struct {
		const char	*ts;
		long long	 when;
		int		 utcoff;
	} cases[] = {
		{ "01/Jan/1970:00:00:00 +0000", 0, 0 },
		{ "01/Jan/1970:00:59:59 +0100", -1, 3600 },
		{ "31/Dec/2024:23:59:59 +0000", 1735689599, 0 },
		/* A leap second is the next minute's first. */
		{ "31/Dec/2024:23:59:60 +0000", 1735689600, 0 },
		{ "01/Jan/2025:05:29:59 +0530", 1735689599, 19800 },
		{ "29/Feb/2024:12:00:00 -1200", 1709251200, -43200 },
		{ "28/Feb/2024:23:59:59 -0000", 1709164799, 0 },
		{ "01/Jan/0000:00:00:00 +0000", -62167219200LL, 0 },
		{ "31/Dec/9999:23:59:59 +2359", 253402300799LL - 86340, 86340 },
	};
	static const char *const bad[] = {
		"29/Feb/2023:12:00:00 +0000",	/* no such day */
		"31/Apr/2024:12:00:00 +0000",
		"00/Jan/2024:12:00:00 +0000",
		"01/Foo/2024:12:00:00 +0000",
		"01/jan/2024:12:00:00 +0000",
		"01/Jan/2024:24:00:00 +0000",
		"01/Jan/2024:23:60:00 +0000",
		"01/Jan/2024:23:59:61 +0000",
		"01/Jan/2024:23:59:59 +2400",
		"01/Jan/2024:23:59:59 +0060",
		"01/Jan/2024:23:59:59 0000 ",
		"01/Jan/2024 23:59:59 +0000",
		"1/Jan/2024:23:59:59 +0000 ",
		"01/Jan/24:23:59:59 +0000  ",
		"01/Jan/2024:23:59:5x +0000",
		"01/Jan/2024:23:59:59 +00x0",
	};
	struct logline_parser lp;
	struct logline ll;
	char line[256];
	size_t i;
	int n;

	logline_init(&lp, LOGLINE_COMMON);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		n = snprintf(line, sizeof(line), "h - - [%s] \"GET / "
		    "HTTP/1.1\" 200 1", cases[i].ts);
		CHECK(logline_parse(&lp, line, (size_t)n, &ll));
		CHECK_INT(ll.when, cases[i].when);
		CHECK_INT(ll.utcoff, cases[i].utcoff);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = snprintf(line, sizeof(line), "h - - [%s] \"GET / "
		    "HTTP/1.1\" 200 1", bad[i]);
		CHECK(!logline_parse(&lp, line, (size_t)n, &ll));
		if (logline_parse(&lp, line, (size_t)n, &ll))
			fprintf(stderr, "  taken: %s\n", line);
	}

	/* The date remembered from the line before is that line's: a new
	 * date, or a bad one, after it is read as itself. */
	CHECK(logline_parse(&lp, T("h - - [10/Oct/2000:13:55:36 -0700] "
	    "\"GET / HTTP/1.1\" 200 1"), &ll));
	CHECK(logline_parse(&lp, T("h - - [10/Oct/2000:23:59:59 +0000] "
	    "\"GET / HTTP/1.1\" 200 1"), &ll));
	CHECK_INT(ll.when, 971222399);
	CHECK(!logline_parse(&lp, T("h - - [10/Oct/2000:23:59:59 +0000 "
	    "\"GET / HTTP/1.1\" 200 1"), &ll));
	CHECK(logline_parse(&lp, T("h - - [11/Oct/2000:00:00:00 +0000] "
	    "\"GET / HTTP/1.1\" 200 1"), &ll));
	CHECK_INT(ll.when, 971222400);
	CHECK(!logline_parse(&lp, T("h - - [32/Oct/2000:00:00:00 +0000] "
	    "\"GET / HTTP/1.1\" 200 1"), &ll));
}

static void
test_malformed(void)
{
	static const struct {
		const char	*line;
		size_t		 len;
	} bad[] = {
		{ T("") },
		{ T("not a log line at all") },
		{ T("127.0.0.1") },
		{ T(" 127.0.0.1 - - [01/Jan/2025:00:00:00 +0000] \"GET / "
		    "HTTP/1.1\" 200 1 \"-\" \"" UA "\"") },
		{ T("127.0.0.1 - - [01/Jan/2025:00:00:00 +0000]") },
		{ T("127.0.0.1 - - [01/Jan/2025:00:00:00 +0000] \"GET / "
		    "HTTP/1.1 200 1 \"-\" \"" UA) },
		{ T("127.0.0.1 - - [01/Jan/2025:00:00:00 +0000] \"GET / "
		    "HTTP/1.1\" 20x 1 \"-\" \"" UA "\"") },
		{ T("127.0.0.1 - - [01/Jan/2025:00:00:00 +0000] \"GET / "
		    "HTTP/1.1\" 2000 1 \"-\" \"" UA "\"") },
		{ T("127.0.0.1 - - [01/Jan/2025:00:00:00 +0000] \"GET / "
		    "HTTP/1.1\" 200 x \"-\" \"" UA "\"") },
		{ T("127.0.0.1 - - [01/Jan/2025:00:00:00 +0000] \"GET / "
		    "HTTP/1.1\" 200") },
		{ T("127.0.0.1 - - [01/Jan/2025:00:00:00 +0000] \"GET / "
		    "HTTP/1.1\" 200 1") },
		{ T("127.0.0.1 - - [01/Jan/2025:00:00:00 +0000] \"GET / "
		    "HTTP/1.1\" 200 1 \"-\"") },
		{ T("127.0.0.1 - - [01/Jan/2025:00:00:00 +0000] \"GET / "
		    "HTTP/1.1\" 200 1 \"-\" \"" UA) },
		{ T("127.0.0.1 - - [01/Jan/2025:00:00:00 +0000] \"GET / "
		    "HTTP/1.1\" 200 1 \"-\" \"ends in an escape\\\"") },
		/* The time must follow the first '[' after the address. */
		{ T("127.0.0.1 - [x] [01/Jan/2025:00:00:00 +0000] \"GET / "
		    "HTTP/1.1\" 200 1 \"-\" \"" UA "\"") },
		/* NUL bytes are bytes: this one is in the time. */
		{ T("127.0.0.1 - - [01/Jan/2025:00:00\0:00 +0000] \"GET / "
		    "HTTP/1.1\" 200 1 \"-\" \"" UA "\"") },
	};
	struct logline_parser lp;
	struct logline ll;
	size_t i;

	logline_init(&lp, LOGLINE_COMBINED);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(!logline_parse(&lp, bad[i].line, bad[i].len, &ll));
		if (logline_parse(&lp, bad[i].line, bad[i].len, &ll))
			fprintf(stderr, "  taken: case %zu\n", i);
	}

	/* Quotes escaped inside fields, NULs inside: still lines. */
	CHECK(logline_parse(&lp, T("::1 - - [01/Jan/2025:00:00:00 +0000] "
	    "\"GET /q\\\"x HTTP/1.0\" 200 1 \"-\" \"a \\\"b\\\" \\\\\""), &ll));
	CHECK_TEXT(ll.target, ll.targetlen, "/q\\\"x");
	CHECK_TEXT(ll.ua, ll.ualen, "a \\\"b\\\" \\\\");
	CHECK(logline_parse(&lp, T("::1 - - [01/Jan/2025:00:00:00 +0000] "
	    "\"GET /nul\0byte HTTP/1.0\" 200 1 \"-\" \"a\0b\""), &ll));
	CHECK_INT(ll.targetlen, 9);
	CHECK_INT(ll.ualen, 3);
}

static void
test_unescape(void)
{
	static const struct {
		const char	*in;
		size_t		 len;
		const char	*out;
	} cases[] = {
		{ T("/caf\\xC3\\xA9/men\\xc3\\xbc"), "/café/menü" },
		{ T("/q\\\"x\\\\y"), "/q\"x\\y" },
		{ T("/say?q=\\x22hi\\x22"), "/say?q=\"hi\"" },
		{ T("\\n\\r\\t\\b\\v"), "\n\r\t\b\v" },
		{ T("/no\\xZZ\\x4"), "/no\\xZZ\\x4" },
		{ T("/unknown\\q\\"), "/unknown\\q\\" },
		{ T("/nul\\x00end"), "/nul" },	/* as strcmp sees it */
		{ T(""), "" },
	};
	char out[64];
	size_t i, n;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		n = logline_unescape(cases[i].in, cases[i].len, out);
		CHECK(n <= cases[i].len);
		out[n] = '\0';
		CHECK_STR(out, cases[i].out);
	}
	CHECK_INT(logline_unescape(T("/nul\\x00end"), out), 8);
}

int
main(void)
{
	test_combined();
	test_requests();
	test_times();
	test_malformed();
	test_unescape();
	return check_done();
}
