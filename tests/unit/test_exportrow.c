/* Export rows: reading CSV and JSON, the errors and their lines, and
 * writing rows back. */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tally/exportrow.h"
#include "tally/store.h"
#include "check.h"

#define D20261127	20784
#define D20240229	19782
#define D20250102	20090

struct want {
	const char	*site;
	const char	*path;
	int		 day;
	uint64_t	 views, visitors;
};

/* Reads all of text; the rows must be want[0..n), then the end. */
static void
expect_rows(const char *what, enum exportrow_format fmt, const char *text,
    size_t len, const struct want *want, size_t n)
{
	struct exportrow_reader r;
	struct exportrow row;
	size_t i;
	int rc;

	exportrow_reader_init(&r, fmt, text, len);
	for (i = 0; i < n; i++) {
		rc = exportrow_parse(&r, &row);
		CHECK_INT(rc, 1);
		if (rc != 1) {
			fprintf(stderr, "  %s, row %zu: %s:%lu: %s\n", what, i,
			    "text", r.errline, r.err);
			return;
		}
		CHECK_STR(row.site, want[i].site);
		CHECK_STR(row.path, want[i].path);
		CHECK_INT(row.day, want[i].day);
		CHECK(row.views == want[i].views);
		CHECK(row.visitors == want[i].visitors);
	}
	CHECK_INT(exportrow_parse(&r, &row), 0);
	CHECK_INT(exportrow_parse(&r, &row), 0);
}

static void
test_csv(void)
{
	static const char export[] =
	    "site,day,path,views,visitors\n"
	    "default,-,*,254003,0\n"
	    "default,2026-11-27,*,152,2\n"
	    "default,2026-11-27,\"/a,b\",3,1\n"
	    "default,2026-11-27,\"/q\"\"uote\",2,1\n"
	    "default,-,/x,-3,-1\n"
	    "default,2026-11-27,/ünï<code>,1,1\n";
	static const struct want export_rows[] = {
		{ "default", "", DAY_ADJUST, 254003, 0 },
		{ "default", "", D20261127, 152, 2 },
		{ "default", "/a,b", D20261127, 3, 1 },
		{ "default", "/q\"uote", D20261127, 2, 1 },
		{ "default", "/x", DAY_ADJUST, (uint64_t)-3, (uint64_t)-1 },
		{ "default", "/ünï<code>", D20261127, 1, 1 },
	};
	/* CRLF, blank lines, no header, the limits of the counts, and no
	 * line end at the end. */
	static const char limits[] =
	    "\r\n\n"
	    "blog.example,2024-02-29,/leap,18446744073709551615,1\r\n"
	    "\r\n"
	    "blog.example,-,*,-9223372036854775808,9223372036854775807\r\n"
	    "b,1970-01-01,/,0,00000000000000000000000000000042";
	static const struct want limits_rows[] = {
		{ "blog.example", "/leap", D20240229, UINT64_MAX, 1 },
		{ "blog.example", "", DAY_ADJUST, (uint64_t)INT64_MIN,
		    INT64_MAX },
		{ "b", "/", 0, 0, 42 },
	};
	/* Every field may be quoted; quotes are doubled inside. */
	static const char quoted[] =
	    "\"default\",\"2025-01-02\",\"/日本語\",\"12\",\"4\"\n"
	    "default,2025-01-02,\"/a \"\"q\"\", p\",7,3\n";
	static const struct want quoted_rows[] = {
		{ "default", "/日本語", D20250102, 12, 4 },
		{ "default", "/a \"q\", p", D20250102, 7, 3 },
	};

	expect_rows("export", EXPORTROW_CSV, export, sizeof(export) - 1,
	    export_rows, 6);
	expect_rows("limits", EXPORTROW_CSV, limits, sizeof(limits) - 1,
	    limits_rows, 3);
	expect_rows("empty", EXPORTROW_CSV, "", 0, NULL, 0);
	expect_rows("header only", EXPORTROW_CSV, EXPORTROW_HEADER "\r\n",
	    strlen(EXPORTROW_HEADER) + 2, NULL, 0);
	expect_rows("quoted", EXPORTROW_CSV, quoted, sizeof(quoted) - 1,
	    quoted_rows, 2);
}

struct bad {
	enum exportrow_format fmt;
	const char	*text;
	size_t		 len;
	unsigned long	 line;
	const char	*err;
};

/* A string literal and its length, NULs inside counted. */
#define T(s)	(s), sizeof(s) - 1

static const struct bad bad[] = {
	{ EXPORTROW_CSV, T("site,day,path,views,visitors\ndefault,2025-01-02,/n,"
	    "1,1\ndefault,2026-02-30,/n,1,1\n"), 3, "invalid day "
	    "\"2026-02-30\" (YYYY-MM-DD, or - for an adjustment)" },
	{ EXPORTROW_CSV, T("default,2025-01-02,/n,1\n"), 1,
	    "4 fields, want 5 (site,day,path,views,visitors)" },
	{ EXPORTROW_CSV, T("\n\ndefault\n"), 3,
	    "1 field, want 5 (site,day,path,views,visitors)" },
	{ EXPORTROW_CSV, T("a,b,c,d,e,f,g\n"), 1,
	    "7 fields, want 5 (site,day,path,views,visitors)" },
	{ EXPORTROW_CSV, T("BAD SITE,2025-01-02,/n,1,1\n"), 1,
	    "invalid site id \"BAD SITE\"" },
	{ EXPORTROW_CSV, T("default,1969-12-31,/n,1,1\n"), 1,
	    "day 1969-12-31 is before 1970-01-01" },
	{ EXPORTROW_CSV, T("default,2025-01-02,nopath,1,1\n"), 1,
	    "invalid path \"nopath\" (a path starts with /; * is the whole "
	    "site)" },
	{ EXPORTROW_CSV, T("default,2025-01-02,/\xff,1,1\n"), 1,
	    "invalid path: path is not valid UTF-8" },
	{ EXPORTROW_CSV, T("default,2025-01-02,/a\tb,1,1\n"), 1,
	    "invalid path: control character in path" },
	/* The path rule of a hit: C1 controls and bidi overrides too. */
	{ EXPORTROW_CSV, T("default,2025-01-02,/a\xc2\x85" "b,1,1\n"), 1,
	    "invalid path: control character in path" },
	{ EXPORTROW_CSV, T("default,2025-01-02,/a\xe2\x80\xae" "b,1,1\n"), 1,
	    "invalid path: invisible or bidi control character in path" },
	{ EXPORTROW_CSV, T("default,2025-01-02,/n,x,1\n"), 1,
	    "invalid views \"x\" (0 to 9223372036854775807)" },
	{ EXPORTROW_CSV, T("default,2025-01-02,/n,-1,1\n"), 1,
	    "invalid views \"-1\" (0 to 9223372036854775807)" },
	{ EXPORTROW_CSV, T("default,2025-01-02,/n,1,18446744073709551616\n"), 1,
	    "invalid visitors \"18446744073709551616\" (0 to 9223372036854775807)" },
	{ EXPORTROW_CSV, T("default,-,/n,-9223372036854775809,1\n"), 1,
	    "invalid views \"-9223372036854775809\" (an adjustment, -9223372036854775808 to 9223372036854775807)" },
	{ EXPORTROW_CSV, T("default,-,/n,9223372036854775808,1\n"), 1,
	    "invalid views \"9223372036854775808\" (an adjustment, -9223372036854775808 to 9223372036854775807)" },
	{ EXPORTROW_CSV, T("default,-,/n,1,\n"), 1, "invalid visitors \"\" (an adjustment, -9223372036854775808 to 9223372036854775807)" },
	{ EXPORTROW_CSV, T("default,2025-01-02,\"/n,1,1\n\n"), 1,
	    "unterminated quoted field" },
	{ EXPORTROW_CSV, T("default,2025-01-02,/a\"b,1,1\n"), 1,
	    "quote inside an unquoted field" },
	{ EXPORTROW_CSV, T("default,2025-01-02,\"/a\nb\"c,1,1\n"), 2,
	    "unexpected character after a field" },
	/* A line end inside quotes is read, then refused by the path's
	 * check, on the line where the row starts. */
	{ EXPORTROW_CSV, T("\ndefault,2025-01-02,\"/multi\nline\",1,1\n"), 2,
	    "invalid path: control character in path" },
	{ EXPORTROW_CSV, T("default,2025-01-02,/a\rb,1,1\n"), 1,
	    "unexpected character after a field" },
	/* A NUL ends no field: refused, not read as the end of the text. */
	{ EXPORTROW_CSV, T("default,2025-01-02,/a\0b,1,1\n"), 1,
	    "unexpected character after a field" },
	{ EXPORTROW_CSV, T("default,2025-01-02,\"/a\0b\",1,1\n"), 1,
	    "invalid path: longer than 512 bytes or holding NUL" },
	/* Once imported as site "de", day 2025-01-02, 5 views. */
	{ EXPORTROW_CSV, T("\"de\0fault\",2025-01-02,/a,1,1\n"), 1,
	    "invalid site: holding NUL" },
	{ EXPORTROW_CSV, T("default,\"2025-01-02\0x\",/a,1,1\n"), 1,
	    "invalid day: holding NUL" },
	{ EXPORTROW_CSV, T("default,2025-01-02,/a,\"5\0z\",1\n"), 1,
	    "invalid views: holding NUL" },

	{ EXPORTROW_JSON, T(""), 1, "expected [ (a JSON list of rows)" },
	{ EXPORTROW_JSON, T("[]x"), 1, "text after the list" },
	{ EXPORTROW_JSON, T("[\n\n{}]"), 3, "expected a string" },
	{ EXPORTROW_JSON, T("[1]"), 1, "expected { (a row object)" },
	{ EXPORTROW_JSON, T("[{\"site\":\"default\""), 1, "expected , or }" },
	{ EXPORTROW_JSON, T("[{\"site\":\"default\",\"day\":\"2025-01-02\","
	    "\"path\":\"/n\",\"views\":1,\"visitors\":1},\n{\"site\":"
	    "\"default\",\"day\":\"2025-01-02\",\"path\":\"/n\",\"views\":"
	    "1}]"), 2, "row without \"visitors\"" },
	{ EXPORTROW_JSON, T("[\n{\"site\":\"default\",\"day\":\"-\",\"path\":"
	    "\"*\",\"views\":1.5,\"visitors\":1}]"), 2,
	    "expected an integer" },
	{ EXPORTROW_JSON, T("[{\"views\":1e3}]"), 1, "expected an integer" },
	{ EXPORTROW_JSON, T("[{\"views\":-}]"), 1, "expected an integer" },
	{ EXPORTROW_JSON, T("[{\"site\":\"a\",\"site\":\"b\"}]"), 1,
	    "key \"site\" given twice" },
	{ EXPORTROW_JSON, T("[{\"nope\":1}]"), 1, "unknown key \"nope\"" },
	{ EXPORTROW_JSON, T("[{\"site\\u0000\":1}]"), 1, "unknown key \"site\"" },
	{ EXPORTROW_JSON, T("[{\"path\":\"/\\ud83d\"}]"), 1,
	    "lone surrogate in \\u escape" },
	{ EXPORTROW_JSON, T("[{\"path\":\"/\\udc00\"}]"), 1,
	    "lone surrogate in \\u escape" },
	{ EXPORTROW_JSON, T("[{\"path\":\"/\\u12\"}]"), 1, "bad \\u escape" },
	{ EXPORTROW_JSON, T("[{\"path\":\"/\\x41\"}]"), 1,
	    "bad escape in a string" },
	{ EXPORTROW_JSON, T("[{\"path\":\"/a\tb\"}]"), 1,
	    "control character in a string" },
	{ EXPORTROW_JSON, T("[{\"path\":\"/a"), 1, "unterminated string" },
	{ EXPORTROW_JSON, T("[{\"site\":\"default\",\"day\":\"2025-01-02\","
	    "\"path\":\"/\\u0000\",\"views\":1,\"visitors\":1}]"), 1,
	    "invalid path: longer than 512 bytes or holding NUL" },
	{ EXPORTROW_CSV, T("blog,2025-01-02,referrer:https://a.example/x,1,0\n"),
	    1, "invalid referrer \"https://a.example/x\" (a host name without "
	    "www., a group such as Google, or (other))" },
	{ EXPORTROW_CSV, T("blog,2025-01-02,referrer:a.example/x,1,0\n"), 1,
	    "invalid referrer \"a.example/x\" (a host name without www., a "
	    "group such as Google, or (other))" },
	{ EXPORTROW_CSV, T("blog,2025-01-02,referrer:www.a.example,1,0\n"), 1,
	    "invalid referrer \"www.a.example\" (a host name without www., a "
	    "group such as Google, or (other))" },
	{ EXPORTROW_CSV, T("blog,2025-01-02,referrer:A.example,1,0\n"), 1,
	    "invalid referrer \"A.example\" (a host name without www., a "
	    "group such as Google, or (other))" },
	{ EXPORTROW_CSV, T("blog,2025-01-02,referrer:google.com,1,0\n"), 1,
	    "invalid referrer \"google.com\" (a host name without www., a "
	    "group such as Google, or (other))" },
	{ EXPORTROW_CSV, T("blog,2025-01-02,referrer:10.0.0.1,1,0\n"), 1,
	    "invalid referrer \"10.0.0.1\" (a host name without www., a "
	    "group such as Google, or (other))" },
	{ EXPORTROW_CSV, T("blog,2025-01-02,referrer:,1,0\n"), 1,
	    "invalid referrer \"\" (a host name without www., a group such as "
	    "Google, or (other))" },
	{ EXPORTROW_CSV, T("blog,-,referrer:a.example,1,0\n"), 1,
	    "a referrer row is a day's: - is no day for it" },
	{ EXPORTROW_CSV, T("blog,2025-01-02,referrer:a.example,0,0\n"), 1,
	    "invalid views \"0\" (a referrer row's, 1 to 9223372036854775807)" },
	{ EXPORTROW_CSV, T("blog,2025-01-02,referrer:a.example,1,1\n"), 1,
	    "invalid visitors \"1\" (a referrer row has none: 0)" },
	{ EXPORTROW_JSON, T("[{\"site\":\"blog\",\"day\":\"2025-01-02\","
	    "\"path\":\"referrer:a.example\\u0000x\",\"views\":1,"
	    "\"visitors\":0}]"), 1, "invalid referrer \"a.example\" (a host "
	    "name without www., a group such as Google, or (other))" },
	{ EXPORTROW_JSON, T("[{\"site\":\"default\",\"day\":\"2025-01-02\","
	    "\"path\":\"/n\",\"views\":1,\"visitors\":1},]"), 1,
	    "expected { (a row object)" },
	{ EXPORTROW_JSON, T("[{\"site\":\"default\",\"day\":\"2025-01-02\","
	    "\"path\":\"/n\",\"views\":1,\"visitors\":1}\n\n}"), 3,
	    "expected , or ]" },
};

static void
test_errors(void)
{
	struct exportrow_reader r;
	struct exportrow row;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		exportrow_reader_init(&r, bad[i].fmt, bad[i].text, bad[i].len);
		while ((rc = exportrow_parse(&r, &row)) == 1)
			;
		CHECK_INT(rc, -1);
		CHECK_INT(r.errline, bad[i].line);
		CHECK_STR(r.err, bad[i].err);
		if (rc != -1 || r.errline != bad[i].line ||
		    strcmp(r.err, bad[i].err) != 0)
			fprintf(stderr, "  in case %zu\n", i);
		/* An error is for good. */
		CHECK_INT(exportrow_parse(&r, &row), -1);
	}
}

static void
test_long_fields(void)
{
	struct exportrow_reader r;
	struct exportrow row;
	char text[2048], path[PATH_MAX_LEN + 2];

	/* The longest path is taken; a byte more is not. */
	memset(path, 'a', sizeof(path));
	path[0] = '/';
	snprintf(text, sizeof(text), "default,2025-01-02,%.*s,1,1\n",
	    PATH_MAX_LEN, path);
	exportrow_reader_init(&r, EXPORTROW_CSV, text, strlen(text));
	CHECK_INT(exportrow_parse(&r, &row), 1);
	CHECK_INT(strlen(row.path), PATH_MAX_LEN);
	snprintf(text, sizeof(text), "default,2025-01-02,%.*s,1,1\n",
	    PATH_MAX_LEN + 1, path);
	exportrow_reader_init(&r, EXPORTROW_CSV, text, strlen(text));
	CHECK_INT(exportrow_parse(&r, &row), -1);
	CHECK_STR(r.err, "invalid path: longer than 512 bytes or holding NUL");
	/* Far past what is kept: still the length that is judged. */
	snprintf(text, sizeof(text), "default,2025-01-02,/%01500d,1,1\n", 7);
	exportrow_reader_init(&r, EXPORTROW_CSV, text, strlen(text));
	CHECK_INT(exportrow_parse(&r, &row), -1);
	CHECK_STR(r.err, "invalid path: longer than 512 bytes or holding NUL");
	snprintf(text, sizeof(text), "%01000d,2025-01-02,/,1,1\n", 7);
	exportrow_reader_init(&r, EXPORTROW_CSV, text, strlen(text));
	CHECK_INT(exportrow_parse(&r, &row), -1);
	CHECK(strncmp(r.err, "invalid site id \"00000000", 25) == 0);
	CHECK_INT(strlen(r.err), strlen("invalid site id \"\"") + 80);
}

static void
test_json(void)
{
	static const char export[] =
	    "[\n"
	    "{\"site\":\"default\",\"day\":\"-\",\"path\":\"*\",\"views\":"
	    "254003,\"visitors\":0},\n"
	    "{\"site\":\"default\",\"day\":\"2026-11-27\",\"path\":\"/q\\\""
	    "uote\",\"views\":2,\"visitors\":1},\n"
	    "{\"site\":\"default\",\"day\":\"-\",\"path\":\"/x\",\"views\":-3,"
	    "\"visitors\":-1},\n"
	    "{\"site\":\"default\",\"day\":\"2026-11-27\",\"path\":\"/\\u00fc"
	    "n\\u00ef\\u003ccode\\u003e\",\"views\":1,\"visitors\":1}\n"
	    "]\n";
	static const struct want export_rows[] = {
		{ "default", "", DAY_ADJUST, 254003, 0 },
		{ "default", "/q\"uote", D20261127, 2, 1 },
		{ "default", "/x", DAY_ADJUST, (uint64_t)-3, (uint64_t)-1 },
		{ "default", "/ünï<code>", D20261127, 1, 1 },
	};
	/* Any key order, white space, escapes, a surrogate pair. */
	static const char escapes[] =
	    " [ {\"visitors\":1, \"views\" : 2, \"path\":\"\\/e\\/\\ud83d"
	    "\\ude00\\u00E9\", \"day\":\"2025-01-02\", \"site\":\"de\\u0066"
	    "ault\"}\t]\r\n";
	static const struct want escapes_rows[] = {
		{ "default", "/e/😀é", D20250102, 2, 1 },
	};

	expect_rows("json export", EXPORTROW_JSON, export, sizeof(export) - 1,
	    export_rows, 4);
	expect_rows("json escapes", EXPORTROW_JSON, escapes, sizeof(escapes) - 1,
	    escapes_rows, 1);
	expect_rows("json empty", EXPORTROW_JSON, " [ ]\n", 5, NULL, 0);
}

static void
test_format(void)
{
	static const struct {
		struct exportrow	 row;
		const char	*csv, *json;
	} cases[] = {
		{ { "default", "", DAY_ADJUST, 254003, 0, 0, NULL },
		  "default,-,*,254003,0\n",
		  "{\"site\":\"default\",\"day\":\"-\",\"path\":\"*\","
		  "\"views\":254003,\"visitors\":0}" },
		{ { "default", "/x", DAY_ADJUST, (uint64_t)-3, (uint64_t)-1,
		    0, NULL },
		  "default,-,/x,-3,-1\n",
		  "{\"site\":\"default\",\"day\":\"-\",\"path\":\"/x\","
		  "\"views\":-3,\"visitors\":-1}" },
		{ { "a.example", "/a,b", D20261127, UINT64_MAX, 1, 0, NULL },
		  "a.example,2026-11-27,\"/a,b\",18446744073709551615,1\n",
		  "{\"site\":\"a.example\",\"day\":\"2026-11-27\",\"path\":"
		  "\"/a,b\",\"views\":18446744073709551615,\"visitors\":1}" },
		{ { "default", "/q\"uote", 0, 2, 1, 0, NULL },
		  "default,1970-01-01,\"/q\"\"uote\",2,1\n",
		  "{\"site\":\"default\",\"day\":\"1970-01-01\",\"path\":"
		  "\"/q\\\"uote\",\"views\":2,\"visitors\":1}" },
		{ { "default", "/ünï<code>", D20250102, 1, 1, 0, NULL },
		  "default,2025-01-02,/ünï<code>,1,1\n",
		  "{\"site\":\"default\",\"day\":\"2025-01-02\",\"path\":"
		  "\"/ünï\\u003ccode\\u003e\",\"views\":1,\"visitors\":1}" },
		{ { "blog", NULL, D20250102, 12, 0, 0, "news.example" },
		  "blog,2025-01-02,referrer:news.example,12,0\n",
		  "{\"site\":\"blog\",\"day\":\"2025-01-02\",\"path\":"
		  "\"referrer:news.example\",\"views\":12,\"visitors\":0}" },
		{ { "blog", NULL, D20250102, 3, 0, 0, "X (Twitter)" },
		  "blog,2025-01-02,referrer:X (Twitter),3,0\n",
		  "{\"site\":\"blog\",\"day\":\"2025-01-02\",\"path\":"
		  "\"referrer:X (Twitter)\",\"views\":3,\"visitors\":0}" },
		{ { "blog", NULL, 0, 1, 0, 0, "(other)" },
		  "blog,1970-01-01,referrer:(other),1,0\n",
		  "{\"site\":\"blog\",\"day\":\"1970-01-01\",\"path\":"
		  "\"referrer:(other)\",\"views\":1,\"visitors\":0}" },
	};
	static const enum exportrow_format fmts[] = { EXPORTROW_CSV, EXPORTROW_JSON };
	struct exportrow_reader r;
	struct exportrow row;
	struct buf b;
	size_t i, f;

	buf_init(&b);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf_reset(&b);
		exportrow_format(&b, EXPORTROW_CSV, &cases[i].row);
		CHECK_STR(b.data, cases[i].csv);
		buf_reset(&b);
		exportrow_format(&b, EXPORTROW_JSON, &cases[i].row);
		CHECK_STR(b.data, cases[i].json);
		/* And back. */
		for (f = 0; f < 2; f++) {
			buf_reset(&b);
			if (fmts[f] == EXPORTROW_JSON)
				buf_putc(&b, '[');
			exportrow_format(&b, fmts[f], &cases[i].row);
			if (fmts[f] == EXPORTROW_JSON)
				buf_putc(&b, ']');
			exportrow_reader_init(&r, fmts[f], b.data, b.len);
			CHECK_INT(exportrow_parse(&r, &row), 1);
			CHECK_STR(row.site, cases[i].row.site);
			if (cases[i].row.referrer != NULL) {
				CHECK(row.path == NULL);
				CHECK(row.referrer != NULL);
				if (row.referrer != NULL)
					CHECK_STR(row.referrer,
					    cases[i].row.referrer);
			} else {
				CHECK(row.referrer == NULL);
				CHECK_STR(row.path, cases[i].row.path);
			}
			CHECK_INT(row.day, cases[i].row.day);
			CHECK(row.views == cases[i].row.views);
			CHECK(row.visitors == cases[i].row.visitors);
			CHECK_INT(exportrow_parse(&r, &row), 0);
		}
	}
	buf_free(&b);
}

int
main(void)
{
	test_csv();
	test_errors();
	test_long_fields();
	test_json();
	test_format();
	return check_done();
}
