/* UTF-8 checks, JSON and XML escaping, percent-decoding, and buf. */

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "tally/buf.h"
#include "tally/escape.h"
#include "check.h"

/* A string with its length, for cases with a NUL inside. */
struct bytes {
	const char	*s;
	size_t		 len;
};
#define B(lit)	{ lit, sizeof(lit) - 1 }

struct utf8_case {
	struct bytes	 in;
	bool		 valid;
	size_t		 length;	/* code points, when valid */
};

static const struct utf8_case utf8_cases[] = {
	{ B(""), true, 0 },
	{ B("abc"), true, 3 },
	{ B("a\0b"), true, 3 },
	{ B("\xc3\x9cmumi"), true, 5 },			/* Ümumi */
	{ B("Bu g\xc3\xbcn"), true, 6 },		/* Bu gün */
	{ B("\xe2\x82\xac"), true, 1 },			/* € */
	{ B("\xf0\x9f\x98\x80" "a"), true, 2 },		/* 😀a */
	{ B("\xc2\x80"), true, 1 },			/* smallest 2 */
	{ B("\xe0\xa0\x80"), true, 1 },			/* smallest 3 */
	{ B("\xf0\x90\x80\x80"), true, 1 },		/* smallest 4 */
	{ B("\xed\x9f\xbf"), true, 1 },			/* U+D7FF */
	{ B("\xee\x80\x80"), true, 1 },			/* U+E000 */
	{ B("\xef\xbf\xbf"), true, 1 },			/* U+FFFF */
	{ B("\xf4\x8f\xbf\xbf"), true, 1 },		/* U+10FFFF */
	{ B("\xc3\x28"), false, 0 },
	{ B("\xc3"), false, 0 },
	{ B("a\xe2\x82"), false, 0 },
	{ B("\x80"), false, 0 },
	{ B("\xbf"), false, 0 },
	{ B("\xc0\xaf"), false, 0 },			/* overlong '/' */
	{ B("\xc1\xbf"), false, 0 },
	{ B("\xe0\x80\xaf"), false, 0 },
	{ B("\xe0\x9f\xbf"), false, 0 },
	{ B("\xf0\x8f\xbf\xbf"), false, 0 },
	{ B("\xed\xa0\x80"), false, 0 },		/* U+D800 */
	{ B("\xed\xbf\xbf"), false, 0 },		/* U+DFFF */
	{ B("\xf4\x90\x80\x80"), false, 0 },		/* U+110000 */
	{ B("\xf5\x80\x80\x80"), false, 0 },
	{ B("\xf8\x88\x80\x80\x80"), false, 0 },
	{ B("\xfe"), false, 0 },
	{ B("\xff"), false, 0 },
	{ B("\xe2\x28\xa1"), false, 0 },
};

static void
test_utf8(void)
{
	size_t	 i;

	for (i = 0; i < sizeof(utf8_cases) / sizeof(utf8_cases[0]); i++) {
		const struct utf8_case	*c = &utf8_cases[i];

		if (utf8_valid(c->in.s, c->in.len) != c->valid)
			fprintf(stderr, "utf8 case %zu\n", i);
		CHECK(utf8_valid(c->in.s, c->in.len) == c->valid);
		if (c->valid)
			CHECK_INT(utf8_length(c->in.s, c->in.len), c->length);
	}
	/* The length given is what is looked at. */
	CHECK(utf8_valid("\xc3\xbc", 1) == false);
	CHECK(utf8_valid("ab\xff", 2) == true);
}

struct escape_case {
	struct bytes	 in;
	const char	*json;
	const char	*xml;
};

static const struct escape_case escape_cases[] = {
	{ B(""), "", "" },
	{ B("abc 123"), "abc 123", "abc 123" },
	{ B("a\"b"), "a\\\"b", "a&quot;b" },
	{ B("a\\b"), "a\\\\b", "a\\b" },
	{ B("it's"), "it's", "it&#39;s" },
	{ B("a&b"), "a\\u0026b", "a&amp;b" },
	{ B("</script>"), "\\u003c/script\\u003e", "&lt;/script&gt;" },
	{ B("<script>alert('x')</script>"),
	    "\\u003cscript\\u003ealert('x')\\u003c/script\\u003e",
	    "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" },
	{ B("a\nb\tc"), "a\\nb\\tc", "a\nb\tc" },
	{ B("\r\b\f"), "\\r\\b\\f", "" },
	{ B("\x01"), "\\u0001", "" },
	{ B("a\x1f" "b"), "a\\u001fb", "ab" },
	{ B("a\x7f" "b"), "a\\u007fb", "ab" },
	{ B("a\0b"), "a\\u0000b", "ab" },
	{ B("/path"), "/path", "/path" },
	{ B("\xc3\xbcmumi"), "\xc3\xbcmumi", "\xc3\xbcmumi" },
	{ B("Bu g\xc3\xbcn"), "Bu g\xc3\xbcn", "Bu g\xc3\xbcn" },
	{ B("\xf0\x9f\x98\x80"), "\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80" },
	{ B("a\xe2\x80\xa8" "b"), "a\\u2028b", "a\xe2\x80\xa8" "b" },
	{ B("\xe2\x80\xa9"), "\\u2029", "\xe2\x80\xa9" },
	{ B("\xc2\x85"), "\\u0085", "" },		/* C1 control */
	{ B("a\xe2\x80\xae" "b"), "a\\u202eb", "a\xe2\x80\xae" "b" },	/* RLO */
	{ B("\xef\xbb\xbf"), "\\ufeff", "\xef\xbb\xbf" },	/* BOM */
	{ B("\xef\xbf\xbe"), "\\ufffe", "" },	/* U+FFFE, a noncharacter */
	/* Invalid input: U+FFFD for each bad byte. */
	{ B("\xff"), "\\ufffd", "\xef\xbf\xbd" },
	{ B("a\xc3"), "a\\ufffd", "a\xef\xbf\xbd" },
	{ B("\xc3\x28"), "\\ufffd(", "\xef\xbf\xbd(" },
	{ B("\xed\xa0\x80"), "\\ufffd\\ufffd\\ufffd",
	    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
};

static void
test_escape(void)
{
	struct buf	 b;
	size_t		 i;

	buf_init(&b);
	for (i = 0; i < sizeof(escape_cases) / sizeof(escape_cases[0]); i++) {
		const struct escape_case	*c = &escape_cases[i];

		buf_reset(&b);
		json_escape(&b, c->in.s, c->in.len);
		CHECK_STR(b.data, c->json);
		CHECK_INT(b.len, strlen(c->json));
		CHECK(utf8_valid(b.data, b.len));

		buf_reset(&b);
		xml_escape(&b, c->in.s, c->in.len);
		CHECK_STR(b.data, c->xml);
		CHECK_INT(b.len, strlen(c->xml));
		CHECK(utf8_valid(b.data, b.len));
	}

	/* Escaping appends. */
	buf_reset(&b);
	buf_puts(&b, "x=");
	json_escape(&b, "<", 1);
	CHECK_STR(b.data, "x=\\u003c");

	buf_reset(&b);
	json_string(&b, "say \"hi\"");
	CHECK_STR(b.data, "\"say \\\"hi\\\"\"");
	buf_reset(&b);
	json_string(&b, "");
	CHECK_STR(b.data, "\"\"");
	buf_reset(&b);
	json_string(&b, NULL);
	CHECK_STR(b.data, "\"\"");
	buf_free(&b);
}

struct decode_case {
	const char	*in;
	bool		 plus;
	long		 want_len;	/* -1: malformed */
	struct bytes	 want;
};

static const struct decode_case decode_cases[] = {
	{ "", false, 0, B("") },
	{ "abc", false, 3, B("abc") },
	{ "a%20b", false, 3, B("a b") },
	{ "%41%42", false, 2, B("AB") },
	{ "%c3%BC", false, 2, B("\xc3\xbc") },
	{ "a+b", false, 3, B("a+b") },
	{ "a+b", true, 3, B("a b") },
	{ "%2B", true, 1, B("+") },
	{ "%252F", false, 3, B("%2F") },
	{ "%00", false, 1, B("\0") },
	{ "%zz", false, -1, B("") },
	{ "%", false, -1, B("") },
	{ "%4", false, -1, B("") },
	{ "abc%", false, -1, B("") },
	{ "%4g", false, -1, B("") },
	{ "%%41", false, -1, B("") },
	{ "% 41", false, -1, B("") },
};

/* What a terminal or a log gets. */
struct text_case {
	struct bytes	 in;
	const char	*want;
};

static const struct text_case text_cases[] = {
	{ B(""), "" },
	{ B("/news/123"), "/news/123" },
	{ B("/a b\\c"), "/a b\\c" },			/* copied as is */
	{ B("\xc3\x9cmumi \xf0\x9f\x98\x80"), "\xc3\x9cmumi \xf0\x9f\x98\x80" },
	{ B("\x1b]0;owned\x07"), "\\x1b]0;owned\\x07" },	/* OSC title */
	{ B("\x1b[31mred"), "\\x1b[31mred" },
	{ B("a\nb\tc\rd\x7f"), "a\\x0ab\\x09c\\x0dd\\x7f" },
	{ B("a\0b"), "a\\x00b" },
	{ B("\xc2\x9b" "31m"), "\\u009b31m" },		/* C1 CSI */
	{ B("\xc2\x85"), "\\u0085" },
	{ B("\xc2\xa0"), "\xc2\xa0" },			/* NBSP is seen */
	{ B("/admin\xe2\x80\xaetxt.exe"), "/admin\\u202etxt.exe" },
	{ B("\xe2\x81\xa6x\xe2\x81\xa9"), "\\u2066x\\u2069" },
	{ B("a\xe2\x80\x8b" "b"), "a\\u200bb" },		/* ZWSP */
	{ B("\xe2\x80\x8e\xe2\x80\x8f\xd8\x9c"), "\\u200e\\u200f\\u061c" },
	{ B("\xe2\x81\xa0\xef\xbb\xbf"), "\\u2060\\ufeff" },
	{ B("\xff\xc3("), "\\xff\\xc3(" },		/* not UTF-8 */
	{ B("\xed\xa0\x80"), "\\xed\\xa0\\x80" },	/* surrogate */
};

static void
test_text(void)
{
	char	 out[256];
	size_t	 i, n;
	uint32_t cp;

	for (i = 0; i < sizeof(text_cases) / sizeof(text_cases[0]); i++) {
		const struct text_case	*c = &text_cases[i];

		n = text_escape(out, sizeof(out), c->in.s, c->in.len);
		if (strcmp(out, c->want) != 0)
			fprintf(stderr, "text case %zu: got \"%s\"\n", i, out);
		CHECK(strcmp(out, c->want) == 0);
		CHECK_INT(n, strlen(c->want));
	}

	/* Never half an escape or half a character when out is short. */
	CHECK_INT(text_escape(out, 4, "ab\x1b", 3), 2);
	CHECK(strcmp(out, "ab") == 0);
	CHECK_INT(text_escape(out, 3, "a\xc3\xbc", 3), 1);
	CHECK(strcmp(out, "a") == 0);
	CHECK_INT(text_escape(out, 4, "a\xc3\xbc", 3), 3);
	CHECK(strcmp(out, "a\xc3\xbc") == 0);
	CHECK_INT(text_escape(out, 1, "abc", 3), 0);
	CHECK_INT(out[0], '\0');
	CHECK_INT(text_escape(out, 0, "abc", 3), 0);

	/* Every hidden code point, and its neighbours that are not. */
	for (cp = 0; cp < 0x20; cp++)
		CHECK(utf8_hidden(cp));
	CHECK(!utf8_hidden(' ') && !utf8_hidden('~'));
	for (cp = 0x7f; cp <= 0x9f; cp++)
		CHECK(utf8_hidden(cp));
	CHECK(!utf8_hidden(0xa0) && !utf8_hidden(0xe9));
	/* Invisible letters and fillers that would pass for nothing. */
	CHECK(!utf8_hidden(0xac) && utf8_hidden(0xad) && !utf8_hidden(0xae));
	CHECK(utf8_hidden(0x34f) && !utf8_hidden(0x34e));
	CHECK(utf8_hidden(0x115f) && utf8_hidden(0x1160) &&
	    !utf8_hidden(0x1161));
	CHECK(utf8_hidden(0x3164) && utf8_hidden(0xffa0) &&
	    !utf8_hidden(0xffa1));
	for (cp = 0xfff9; cp <= 0xfffb; cp++)
		CHECK(utf8_hidden(cp));
	CHECK(!utf8_hidden(0xfffc) && !utf8_hidden(0xfffd));
	CHECK(utf8_hidden(0xfffe) && utf8_hidden(0xffff));
	CHECK(!utf8_hidden(0xdffff) && utf8_hidden(0xe0000) &&
	    utf8_hidden(0xe0001) && utf8_hidden(0xe007f) &&
	    !utf8_hidden(0xe0080));
	CHECK(!utf8_hidden(0x61b) && utf8_hidden(0x61c) && !utf8_hidden(0x61d));
	CHECK(!utf8_hidden(0x200a));
	for (cp = 0x200b; cp <= 0x200f; cp++)
		CHECK(utf8_hidden(cp));
	CHECK(!utf8_hidden(0x2010) && !utf8_hidden(0x2028) &&
	    !utf8_hidden(0x2029));
	for (cp = 0x202a; cp <= 0x202e; cp++)
		CHECK(utf8_hidden(cp));
	CHECK(!utf8_hidden(0x202f) && !utf8_hidden(0x205f));
	for (cp = 0x2060; cp <= 0x2064; cp++)
		CHECK(utf8_hidden(cp));
	CHECK(!utf8_hidden(0x2065));
	for (cp = 0x2066; cp <= 0x2069; cp++)
		CHECK(utf8_hidden(cp));
	CHECK(!utf8_hidden(0x206a) && !utf8_hidden(0xfefe) &&
	    utf8_hidden(0xfeff) && !utf8_hidden(0xff00));
	CHECK(!utf8_hidden(0x1f600));
}

static void
test_decode(void)
{
	char	 out[64];
	size_t	 i;
	long	 n;

	for (i = 0; i < sizeof(decode_cases) / sizeof(decode_cases[0]); i++) {
		const struct decode_case	*c = &decode_cases[i];

		n = percent_decode(c->in, strlen(c->in), out, c->plus);
		CHECK_INT(n, c->want_len);
		if (c->want_len >= 0) {
			CHECK(memcmp(out, c->want.s, c->want.len) == 0);
			CHECK_INT(out[n], '\0');
		}
	}
	/* Only len bytes are read. */
	CHECK_INT(percent_decode("a%41", 2, out, false), -1);
	CHECK_INT(percent_decode("a%41", 1, out, false), 1);
	CHECK_STR(out, "a");
}

static void
test_buf(void)
{
	struct buf	 b, z;
	char		 big[1000];
	size_t		 i;

	buf_init(&b);
	CHECK_STR(b.data, "");
	CHECK_INT(b.len, 0);
	buf_reset(&b);
	CHECK_STR(b.data, "");

	buf_putc(&b, 'x');
	buf_puts(&b, "yz");
	buf_append(&b, "0123", 2);
	buf_append(&b, NULL, 0);
	CHECK_STR(b.data, "xyz01");
	CHECK_INT(b.len, 5);

	buf_printf(&b, "-%d-%s", 42, "end");
	CHECK_STR(b.data, "xyz01-42-end");

	/* Longer than any first guess: grows and formats again. */
	memset(big, 'q', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	buf_printf(&b, "[%s]", big);
	CHECK_INT(b.len, 12 + 2 + 999);
	CHECK(b.data[12] == '[' && b.data[12 + 1000] == ']');
	CHECK_INT(b.data[b.len], '\0');
	CHECK(b.cap > b.len);

	buf_reset(&b);
	CHECK_INT(b.len, 0);
	CHECK_STR(b.data, "");
	for (i = 0; i < 10000; i++)
		buf_putc(&b, (char)('a' + i % 26));
	CHECK_INT(b.len, 10000);
	CHECK_INT(strlen(b.data), 10000);
	CHECK(b.data[9999] == 'a' + 9999 % 26);

	buf_reserve(&b, 100000);
	CHECK(b.cap >= b.len + 100001);
	CHECK_INT(b.len, 10000);

	buf_free(&b);
	CHECK_INT(b.len, 0);
	CHECK_STR(b.data, "");
	buf_free(&b);	/* twice is harmless */

	/* A zeroed struct buf works without buf_init. */
	memset(&z, 0, sizeof(z));
	buf_printf(&z, "%s", "");
	CHECK_STR(z.data, "");
	buf_puts(&z, "ok");
	CHECK_STR(z.data, "ok");
	buf_free(&z);
}

/* One decoder of JSON escapes, for the body parser and import rows. */
static void
test_json_unescape(void)
{
	static const struct {
		const char *in;		/* after the backslash */
		int	 used;
		uint32_t cp;
	} cases[] = {
		{ "n", 1, '\n' }, { "\"x", 1, '"' }, { "\\", 1, '\\' },
		{ "/", 1, '/' }, { "t", 1, '\t' }, { "u00e9", 5, 0xe9 },
		{ "uD83D\\uDE00", 11, 0x1f600 }, { "u20AC", 5, 0x20ac },
		{ "x", JSON_ESCAPE_BAD, 0 }, { "u12", JSON_ESCAPE_BAD_U, 0 },
		{ "u12g4", JSON_ESCAPE_BAD_U, 0 },
		{ "udc00", JSON_ESCAPE_SURROGATE, 0 },
		{ "ud800x", JSON_ESCAPE_SURROGATE, 0 },
		{ "ud800\\u0041", JSON_ESCAPE_SURROGATE, 0 },
	};
	char u[4];
	uint32_t cp;
	size_t i;
	int n;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cp = 0;
		n = json_unescape(cases[i].in, strlen(cases[i].in), &cp);
		CHECK_INT(n, cases[i].used);
		if (n > 0)
			CHECK_INT(cp, cases[i].cp);
	}
	CHECK_INT(json_unescape("u00e9", 4, &cp), JSON_ESCAPE_BAD_U);
	CHECK_INT(utf8_encode(0x41, u), 1);
	CHECK_INT(utf8_encode(0xe9, u), 2);
	CHECK(memcmp(u, "\xc3\xa9", 2) == 0);
	CHECK_INT(utf8_encode(0x20ac, u), 3);
	CHECK(memcmp(u, "\xe2\x82\xac", 3) == 0);
	CHECK_INT(utf8_encode(0x1f600, u), 4);
	CHECK(memcmp(u, "\xf0\x9f\x98\x80", 4) == 0);
}

/* One JSON string lexer, for the body parser and import rows. */
static void
test_json_string_read(void)
{
	static const struct {
		const char *in;
		long	 used;
		const char *text;
	} cases[] = {
		{ "\"\"", 2, "" },
		{ "\"a/b\" rest", 5, "a/b" },
		{ "\"caf\\u00e9\\n\"", 13, "caf\xc3\xa9\n" },
		{ "\"\\uD83D\\uDE00\"", 14, "\xf0\x9f\x98\x80" },
		{ "x\"", JSON_NOT_STRING, NULL },
		{ "\"abc", JSON_UNTERMINATED, NULL },
		{ "\"ab\\", JSON_UNTERMINATED, NULL },
		{ "\"a\nb\"", JSON_CONTROL, NULL },
		{ "\"\\q\"", JSON_ESCAPE_BAD, NULL },
		{ "\"\\u12\"", JSON_ESCAPE_BAD_U, NULL },
		{ "\"\\udc00\"", JSON_ESCAPE_SURROGATE, NULL },
	};
	char out[32];
	size_t i, len;
	long n;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *in = cases[i].in;

		memset(out, 0, sizeof(out));
		n = json_string_read(in, in + strlen(in), out, sizeof(out) - 1,
		    &len);
		CHECK_INT(n, cases[i].used);
		if (n > 0) {
			CHECK_INT(len, strlen(cases[i].text));
			CHECK_STR(out, cases[i].text);
		}
	}
	/* Past cap the text is counted, not stored. */
	memset(out, 'x', sizeof(out));
	CHECK_INT(json_string_read("\"abcdef\"", "\"abcdef\"" + 8, out, 3,
	    &len), 8);
	CHECK_INT(len, 6);
	CHECK(memcmp(out, "abcx", 4) == 0);
	/* The end bounds the string, not a NUL. */
	CHECK_INT(json_string_read("\"ab\"", "\"ab\"" + 3, out, 3, &len),
	    JSON_UNTERMINATED);
}

int
main(void)
{
	test_json_unescape();
	test_json_string_read();
	test_utf8();
	test_escape();
	test_text();
	test_decode();
	test_buf();
	return check_done();
}
