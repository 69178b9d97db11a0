/* Path normalization and URL origins. */

#include <stdlib.h>
#include <string.h>

#include "tally/path.h"
#include "check.h"

struct path_case {
	const char	*in;
	enum path_error	 err;
	const char	*want;		/* when err is PATH_OK */
};

static const struct path_case path_cases[] = {
	/* Plain paths. */
	{ "/", PATH_OK, "/" },
	{ "", PATH_OK, "/" },
	{ "/news/123", PATH_OK, "/news/123" },
	{ "news/123", PATH_OK, "/news/123" },
	{ "/News/ABC", PATH_OK, "/News/ABC" },
	{ "/news/123/", PATH_OK, "/news/123" },
	{ "/news//123", PATH_OK, "/news/123" },
	{ "///a///b///", PATH_OK, "/a/b" },
	{ "//", PATH_OK, "/" },

	/* Dot segments, plain and encoded. */
	{ "/a/./b", PATH_OK, "/a/b" },
	{ "/./", PATH_OK, "/" },
	{ ".", PATH_OK, "/" },
	{ "..", PATH_OK, "/" },
	{ "/a/../b", PATH_OK, "/b" },
	{ "/a/b/..", PATH_OK, "/a" },
	{ "/a/b/../", PATH_OK, "/a" },
	{ "/..", PATH_OK, "/" },
	{ "/../../x", PATH_OK, "/x" },
	{ "/a/b/../../../../c", PATH_OK, "/c" },
	{ "/a/%2e%2e/b", PATH_OK, "/b" },
	{ "/a/%2E%2E/b", PATH_OK, "/b" },
	{ "/a/.%2e/b", PATH_OK, "/b" },
	{ "/a/%2e/b", PATH_OK, "/a/b" },
	{ "/%2e%2e%2fetc", PATH_OK, "/etc" },
	{ "/a/...", PATH_OK, "/a/..." },
	{ "/a/..b", PATH_OK, "/a/..b" },
	{ "/a/.b", PATH_OK, "/a/.b" },

	/* Decoding, once. */
	{ "/a%2Fb", PATH_OK, "/a/b" },
	{ "/a%252Fb", PATH_OK, "/a%2Fb" },
	{ "/%C3%BCmumi", PATH_OK, "/\xc3\xbcmumi" },
	{ "/%c3%bcmumi", PATH_OK, "/\xc3\xbcmumi" },
	{ "/\xc3\xbcmumi", PATH_OK, "/\xc3\xbcmumi" },
	{ "/%F0%9F%98%80", PATH_OK, "/\xf0\x9f\x98\x80" },
	{ "/a+b", PATH_OK, "/a+b" },
	{ "/a%20b", PATH_OK, "/a b" },
	{ "/a%3Fb", PATH_OK, "/a?b" },
	{ "/a%23b", PATH_OK, "/a#b" },
	{ "/a%C2%A0", PATH_OK, "/a\xc2\xa0" },		/* NBSP: no control */
	{ "/%E2%80%A8", PATH_OK, "/\xe2\x80\xa8" },

	/* Query and fragment. */
	{ "/a?b=c", PATH_OK, "/a" },
	{ "/a#frag", PATH_OK, "/a" },
	{ "/a/?x", PATH_OK, "/a" },
	{ "/?x", PATH_OK, "/" },
	{ "?x", PATH_OK, "/" },
	{ "/a?%zz", PATH_OK, "/a" },
	{ "/a#%00", PATH_OK, "/a" },
	{ "/a?b#c", PATH_OK, "/a" },

	/* Full URLs. */
	{ "https://example.org/news/123?x=1#y", PATH_OK, "/news/123" },
	{ "http://example.org/news/123", PATH_OK, "/news/123" },
	{ "HTTP://Example.org/News", PATH_OK, "/News" },
	{ "https://example.org", PATH_OK, "/" },
	{ "https://example.org/", PATH_OK, "/" },
	{ "https://example.org?x", PATH_OK, "/" },
	{ "https://example.org#x", PATH_OK, "/" },
	{ "https://user:pw@example.org:8443/a/b/", PATH_OK, "/a/b" },
	{ "https://[::1]:8080/x", PATH_OK, "/x" },
	/* "//" starts a path (location.pathname can), not a host */
	{ "//example.org/a", PATH_OK, "/example.org/a" },
	{ "https://example.org/%2e%2e/%2e%2e/etc", PATH_OK, "/etc" },
	{ "https://example.org/%C3%BCmumi/", PATH_OK, "/\xc3\xbcmumi" },
	/* Only http(s) is a URL; anything else is taken as a path. */
	{ "ftp://example.org/a", PATH_OK, "/ftp:/example.org/a" },

	/* Malformed escapes. */
	{ "/%zz", PATH_BAD_ESCAPE, NULL },
	{ "/%", PATH_BAD_ESCAPE, NULL },
	{ "%", PATH_BAD_ESCAPE, NULL },
	{ "/%4", PATH_BAD_ESCAPE, NULL },
	{ "/a%2", PATH_BAD_ESCAPE, NULL },
	{ "/a%g0", PATH_BAD_ESCAPE, NULL },
	{ "/100%", PATH_BAD_ESCAPE, NULL },
	{ "https://example.org/%zz?q", PATH_BAD_ESCAPE, NULL },

	/* Not UTF-8. */
	{ "/%C3%28", PATH_BAD_UTF8, NULL },
	{ "/%C3", PATH_BAD_UTF8, NULL },
	{ "/%FF", PATH_BAD_UTF8, NULL },
	{ "/%C0%AF", PATH_BAD_UTF8, NULL },		/* overlong '/' */
	{ "/%E0%80%AE", PATH_BAD_UTF8, NULL },		/* overlong '.' */
	{ "/%ED%A0%80", PATH_BAD_UTF8, NULL },		/* surrogate */
	{ "/%F4%90%80%80", PATH_BAD_UTF8, NULL },	/* above U+10FFFF */
	{ "/\xff", PATH_BAD_UTF8, NULL },

	/* Control characters. */
	{ "/%00", PATH_CONTROL, NULL },
	{ "/a%0Ab", PATH_CONTROL, NULL },
	{ "/a%0d%0aSet-Cookie:x", PATH_CONTROL, NULL },
	{ "/a%7F", PATH_CONTROL, NULL },
	{ "/a%C2%85", PATH_CONTROL, NULL },		/* NEL, U+0085 */
	{ "/a%C2%9F", PATH_CONTROL, NULL },
	{ "/a\tb", PATH_CONTROL, NULL },
	{ "/a/%00/..", PATH_CONTROL, NULL },
	{ "/a%C2%80", PATH_CONTROL, NULL },		/* C1, first */
	{ "/a\xc2\x9b" "31m", PATH_CONTROL, NULL },	/* C1 CSI, raw */
	{ "/a%C2%A0", PATH_OK, "/a\xc2\xa0" },		/* just past C1 */

	/* Bidi controls and zero-width characters: a path must look
	 * like itself. */
	{ "/a%E2%80%AEb", PATH_INVISIBLE, NULL },	/* RLO */
	{ "/a%E2%80%AAb", PATH_INVISIBLE, NULL },	/* LRE */
	{ "/a%E2%80%ACb", PATH_INVISIBLE, NULL },	/* PDF */
	{ "/a%E2%81%A6b", PATH_INVISIBLE, NULL },	/* LRI */
	{ "/a%E2%81%A9b", PATH_INVISIBLE, NULL },	/* PDI */
	{ "/a%E2%80%8Eb", PATH_INVISIBLE, NULL },	/* LRM */
	{ "/a%E2%80%8Fb", PATH_INVISIBLE, NULL },	/* RLM */
	{ "/a%D8%9Cb", PATH_INVISIBLE, NULL },		/* ALM */
	{ "/a%E2%80%8Bb", PATH_INVISIBLE, NULL },	/* ZWSP */
	{ "/a%E2%80%8Cb", PATH_INVISIBLE, NULL },	/* ZWNJ */
	{ "/a%E2%80%8Db", PATH_INVISIBLE, NULL },	/* ZWJ */
	{ "/a%E2%81%A0b", PATH_INVISIBLE, NULL },	/* word joiner */
	{ "/%EF%BB%BFa", PATH_INVISIBLE, NULL },	/* BOM */
	{ "/a\xe2\x80\xae", PATH_INVISIBLE, NULL },	/* raw, not encoded */
	{ "http://x/a%E2%80%8B?q", PATH_INVISIBLE, NULL },
	{ "/a%E2%80%90b", PATH_OK, "/a\xe2\x80\x90" "b" },	/* hyphen */
	{ "/%D8%B3%D9%84%D8%A7%D9%85", PATH_OK,		/* Arabic, RTL */
	    "/\xd8\xb3\xd9\x84\xd8\xa7\xd9\x85" },
};

static void
test_table(void)
{
	char	 out[PATH_MAX_LEN + 1];
	size_t	 i;

	for (i = 0; i < sizeof(path_cases) / sizeof(path_cases[0]); i++) {
		const struct path_case	*c = &path_cases[i];
		enum path_error		 e;

		strcpy(out, "(unset)");
		e = path_normalize(c->in, strlen(c->in), out);
		if (e != c->err)
			fprintf(stderr, "case \"%s\"\n", c->in);
		CHECK_INT(e, c->err);
		if (c->err == PATH_OK && e == PATH_OK)
			CHECK_STR(out, c->want);
	}
}

static void
test_special(void)
{
	char	 out[PATH_MAX_LEN + 1];

	CHECK_INT(path_normalize(NULL, 0, out), PATH_EMPTY);
	/* The length is what counts, not a NUL. */
	CHECK_INT(path_normalize("/a\0b", 4, out), PATH_CONTROL);
	CHECK_INT(path_normalize("/abc/def", 4, out), PATH_OK);
	CHECK_STR(out, "/abc");

	CHECK_STR(path_strerror(PATH_BAD_ESCAPE), "malformed percent-encoding");
	CHECK_STR(path_strerror(PATH_BAD_UTF8), "path is not valid UTF-8");
	CHECK_STR(path_strerror(PATH_CONTROL), "control character in path");
	CHECK_STR(path_strerror(PATH_INVISIBLE),
	    "invisible or bidi control character in path");

	/* path_check is the rule on its own, for text already decoded. */
	CHECK_INT(path_check("/a", 2), PATH_OK);
	CHECK_INT(path_check("/a%C2%85", 8), PATH_OK);	/* not decoded */
	CHECK_INT(path_check("/a\xc2\x85", 4), PATH_CONTROL);
	CHECK_INT(path_check("/a\xc2", 3), PATH_BAD_UTF8);
	CHECK_INT(path_check("/a\0", 3), PATH_CONTROL);
	CHECK_INT(path_check("/\xe2\x81\xa9", 4), PATH_INVISIBLE);
	CHECK_INT(path_check("/\xe2\x81\xa9", 3), PATH_BAD_UTF8);
	CHECK_STR(path_strerror(PATH_TOO_LONG), "path too long");
	CHECK_STR(path_strerror(PATH_EMPTY), "empty path");
	CHECK_STR(path_strerror((enum path_error)99), "invalid path");
}

static void
test_lengths(void)
{
	char	 out[PATH_MAX_LEN + 1], want[PATH_MAX_LEN + 2];
	char	*in;
	size_t	 n;

	in = malloc(20000);
	if (in == NULL)
		abort();

	/* 512 bytes is the most. */
	in[0] = '/';
	memset(in + 1, 'a', 511);
	in[512] = '\0';
	CHECK_INT(path_normalize(in, 512, out), PATH_OK);
	CHECK_INT(strlen(out), 512);
	CHECK_STR(out, in);

	in[512] = 'a';
	in[513] = '\0';
	CHECK_INT(path_normalize(in, 513, out), PATH_TOO_LONG);

	/* A trailing slash is dropped before the length is judged. */
	in[512] = '/';
	CHECK_INT(path_normalize(in, 513, out), PATH_OK);
	CHECK_INT(strlen(out), 512);

	/* Bytes after decoding count: 509 + "/" + 2 for "%C3%BC". */
	in[0] = '/';
	memset(in + 1, 'b', 509);
	memcpy(in + 510, "%C3%BC", 7);
	CHECK_INT(path_normalize(in, strlen(in), out), PATH_OK);
	CHECK_INT(strlen(out), 512);
	memcpy(in + 510, "b%C3%BC", 8);
	CHECK_INT(path_normalize(in, strlen(in), out), PATH_TOO_LONG);

	/* Long before normalization, short after. */
	in[0] = '/';
	memset(in + 1, 'c', 1000);
	memcpy(in + 1001, "/../d", 6);
	CHECK_INT(path_normalize(in, strlen(in), out), PATH_OK);
	CHECK_STR(out, "/d");

	/* 512 bytes spelled in %XX, three times as long. */
	memcpy(want, "/", 2);
	for (n = 0; n < 511; n++) {
		memcpy(in + 1 + 3 * n, "%41", 3);
		want[1 + n] = 'A';
	}
	want[512] = '\0';
	in[0] = '/';
	in[1 + 3 * 511] = '\0';
	CHECK_INT(path_normalize(in, strlen(in), out), PATH_OK);
	CHECK_STR(out, want);

	/* Absurd input is refused before any work. */
	in[0] = '/';
	memset(in + 1, 'e', 19998);
	in[19999] = '\0';
	CHECK_INT(path_normalize(in, strlen(in), out), PATH_TOO_LONG);
	memset(in + 1, '/', 19998);
	CHECK_INT(path_normalize(in, strlen(in), out), PATH_TOO_LONG);

	/* A long query does not matter: it is dropped. */
	memcpy(in, "https://example.org/x?", 22);
	memset(in + 22, 'q', 10000);
	in[10022] = '\0';
	CHECK_INT(path_normalize(in, strlen(in), out), PATH_OK);
	CHECK_STR(out, "/x");

	free(in);
}

struct origin_case {
	const char	*url;
	const char	*want;		/* NULL: -1 */
};

static const struct origin_case origin_cases[] = {
	{ "https://Example.org:8443/x?y", "https://example.org:8443" },
	{ "HTTPS://EXAMPLE.ORG/", "https://example.org" },
	{ "http://example.org", "http://example.org" },
	{ "https://example.org?x", "https://example.org" },
	{ "https://example.org#x", "https://example.org" },
	{ "https://www.a.example/path/page.html", "https://www.a.example" },
	/* Default ports are left out, as in an Origin header. */
	{ "https://example.org:443/", "https://example.org" },
	{ "http://example.org:80", "http://example.org" },
	{ "http://example.org:443", "http://example.org:443" },
	{ "https://example.org:80", "https://example.org:80" },
	{ "https://example.org:08443", "https://example.org:8443" },
	{ "https://example.org:/x", "https://example.org" },
	{ "https://user:pw@example.org/x", "https://example.org" },
	{ "https://a@b@example.org/x", "https://example.org" },
	{ "https://[2001:DB8::1]:8080/", "https://[2001:db8::1]:8080" },
	{ "http://[::1]/", "http://[::1]" },
	{ "http://127.0.0.1:8080/", "http://127.0.0.1:8080" },
	{ "null", NULL },
	{ "", NULL },
	{ "ftp://example.org/", NULL },
	{ "javascript:alert(1)", NULL },
	{ "//example.org/", NULL },
	{ "example.org", NULL },
	{ "/news/1", NULL },
	{ "https://", NULL },
	{ "https:///x", NULL },
	{ "https://:80/", NULL },
	{ "https://exa mple.org/", NULL },
	{ "https://exa\"mple.org/", NULL },
	{ "https://example.org:99999/", NULL },
	{ "https://example.org:8a/", NULL },
	{ "https://example.org:-1/", NULL },
	{ "https://[::1/", NULL },
	{ "https://[]/", NULL },
	{ "https://[::1]x/", NULL },
	{ "https://[g::1]/", NULL },
	/* The configuration's rules (one reader for both): */
	{ "https://[2001:db8:0:0::1]/", "https://[2001:db8::1]" },
	{ "https://a..example/", NULL },
	{ "https://a.example.:443/", NULL },
	{ "https://a.example:0/", NULL },
	{ "https://a.example:8443x/", NULL },
	{ "https://b\xc3\xbc" "cher.example/", NULL },
	{ "https://my_host.example/x", "https://my_host.example" },
};

static void
test_origin(void)
{
	char	 out[256];
	size_t	 i;
	int	 rc;

	for (i = 0; i < sizeof(origin_cases) / sizeof(origin_cases[0]); i++) {
		const struct origin_case	*c = &origin_cases[i];

		strcpy(out, "(unset)");
		rc = url_origin(c->url, out, sizeof(out));
		if (c->want == NULL) {
			if (rc != -1)
				fprintf(stderr, "url \"%s\" gave \"%s\"\n",
				    c->url, out);
			CHECK_INT(rc, -1);
		} else {
			CHECK_INT(rc, 0);
			CHECK_STR(out, c->want);
		}
	}

	CHECK_INT(url_origin(NULL, out, sizeof(out)), -1);
	/* Too small for the answer: an error, not a cut origin. */
	CHECK_INT(url_origin("https://example.org/", out, 19), -1);
	CHECK_INT(url_origin("https://example.org/", out, 20), 0);
	CHECK_STR(out, "https://example.org");
}

int
main(void)
{
	test_table();
	test_special();
	test_lengths();
	test_origin();
	return check_done();
}
