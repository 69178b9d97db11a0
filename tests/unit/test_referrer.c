/* The names referrers are kept under. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "tally/referrer.h"

/* The name a referrer URL is kept under, or "-" for none. */
static const char *
name_of(const char *url, char *out)
{
	struct origin o;
	const char *n;

	if (origin_parse(url, &o) != NULL)
		return "-";
	n = referrer_name(&o, out);
	return n ? n : "-";
}

static void
test_names(void)
{
	static const struct {
		const char *url, *name;
	} cases[] = {
		/* the host alone: no scheme, user, port, path or query */
		{ "https://blog.example.net/a/b?q=secret#x", "blog.example.net" },
		{ "http://user:pw@Blog.Example.NET:8443/p", "blog.example.net" },
		{ "https://www.example.org/", "example.org" },
		{ "https://www.com/", "www.com" },
		{ "https://wwwx.example.org/", "wwwx.example.org" },
		/* groups */
		{ "https://www.google.com/", "Google" },
		{ "https://www.google.co.uk/search?q=x", "Google" },
		{ "https://google.de/", "Google" },
		{ "https://news.google.com/", "Google" },
		{ "https://www.google.com.au/", "Google" },
		{ "https://mygoogle.com/", "mygoogle.com" },
		{ "https://google.example.com/", "google.example.com" },
		{ "https://google.com.evil.io/", "google.com.evil.io" },
		{ "https://google.xyz.io/", "google.xyz.io" },
		{ "https://www.bing.com/search?q=x", "Bing" },
		{ "https://duckduckgo.com/", "DuckDuckGo" },
		{ "https://yandex.ru/", "Yandex" },
		{ "https://ya.ru/", "Yandex" },
		{ "https://www.baidu.com/", "Baidu" },
		{ "https://www.ecosia.org/", "Ecosia" },
		{ "https://www.qwant.com/", "Qwant" },
		{ "https://www.startpage.com/", "Startpage" },
		{ "https://search.yahoo.co.jp/", "Yahoo" },
		{ "https://m.facebook.com/", "Facebook" },
		{ "https://l.facebook.com/l.php?u=x", "Facebook" },
		{ "https://fb.com/", "Facebook" },
		{ "https://t.co/abc", "X (Twitter)" },
		{ "https://x.com/someone", "X (Twitter)" },
		{ "https://mobile.twitter.com/", "X (Twitter)" },
		{ "https://box.com/", "box.com" },
		{ "https://old.reddit.com/r/x", "Reddit" },
		{ "https://www.linkedin.com/", "LinkedIn" },
		{ "https://lnkd.in/x", "LinkedIn" },
		{ "https://news.ycombinator.com/item?id=1", "Hacker News" },
		{ "https://ycombinator.com/", "ycombinator.com" },
		{ "https://m.youtube.com/", "YouTube" },
		{ "https://youtu.be/x", "YouTube" },
		{ "https://l.instagram.com/", "Instagram" },
		{ "https://www.pinterest.co.uk/", "Pinterest" },
		{ "https://de.m.wikipedia.org/wiki/X", "Wikipedia" },
		{ "https://mastodon.social/@x", "mastodon.social" },
		/* not kept */
		{ "https://10.0.0.1/x", "-" },
		{ "http://192.168.1.10:8080/", "-" },
		{ "http://[2001:db8::1]/", "-" },
		{ "http://localhost:3000/", "-" },
		{ "http://intranet/", "-" },
		{ "android-app://com.google.android.gm/", "-" },
		{ "about:blank", "-" },
		{ "not a url", "-" },
		{ "https://", "-" },
		{ "https://exa mple.org/", "-" },
		{ "https://bücher.example/", "-" },
	};
	char out[REFERRER_NAME_MAX + 1];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK_STR(name_of(cases[i].url, out), cases[i].name);
		/* every name kept is one check and import take */
		if (strcmp(cases[i].name, "-") != 0)
			CHECK(referrer_name_valid(cases[i].name));
	}
}

static void
test_valid(void)
{
	static const char *const good[] = {
		"example.org", "a.b.c.example", "xn--bcher-kva.example",
		"Google", "X (Twitter)", "Hacker News", "(other)",
	};
	static const char *const bad[] = {
		"", "www.example.org", "Example.org", "example", "10.0.0.1",
		"[::1]", "example.org:8080", "example.org/", "a@example.org",
		"https://example.org", "google.com", "news.ycombinator.com",
		"Other", "(Other)", "example.org ", "ex ample.org",
		"example..org",
	};
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		CHECK(referrer_name_valid(good[i]));
		if (!referrer_name_valid(good[i]))
			fprintf(stderr, "  want valid: %s\n", good[i]);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(!referrer_name_valid(bad[i]));
		if (referrer_name_valid(bad[i]))
			fprintf(stderr, "  want invalid: %s\n", bad[i]);
	}
}

static void
test_same_site(void)
{
	CHECK(referrer_same_site("example.org", "example.org"));
	CHECK(referrer_same_site("www.example.org", "example.org"));
	CHECK(referrer_same_site("example.org", "www.example.org"));
	CHECK(!referrer_same_site("blog.example.org", "example.org"));
	CHECK(!referrer_same_site("example.org.evil", "example.org"));
}

int
main(void)
{
	test_names();
	test_valid();
	test_same_site();
	return check_done();
}
