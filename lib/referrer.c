/*
 * The names referrers are kept under.
 *
 * The groups are the search engines and social sites that send most
 * sites most of their visitors from elsewhere, going by the public
 * referrer statistics of StatCounter and Cloudflare Radar, each under
 * the one name people know it by, whatever country domain or short-link
 * host it sends from. Mastodon and other federated sites cannot be
 * listed: each instance is a host of its own, and is kept as one.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "tally/referrer.h"

/*
 * A pattern is a domain, which its subdomains match too ("reddit.com":
 * old.reddit.com), or a brand, "NAME.*", which matches NAME followed by
 * a country's domain ("google.*": www.google.co.uk, google.de).
 */
static const struct group {
	const char	*pattern;
	const char	*name;
} groups[] = {
	{ "google.*",			"Google" },
	{ "bing.com",			"Bing" },
	{ "duckduckgo.com",		"DuckDuckGo" },
	{ "yandex.*",			"Yandex" },
	{ "ya.ru",			"Yandex" },
	{ "baidu.com",			"Baidu" },
	{ "ecosia.org",			"Ecosia" },
	{ "qwant.com",			"Qwant" },
	{ "startpage.com",		"Startpage" },
	{ "yahoo.*",			"Yahoo" },
	{ "facebook.com",		"Facebook" },
	{ "fb.com",			"Facebook" },
	{ "fb.me",			"Facebook" },
	{ "x.com",			"X (Twitter)" },
	{ "twitter.com",		"X (Twitter)" },
	{ "t.co",			"X (Twitter)" },
	{ "reddit.com",			"Reddit" },
	{ "redd.it",			"Reddit" },
	{ "linkedin.com",		"LinkedIn" },
	{ "lnkd.in",			"LinkedIn" },
	{ "news.ycombinator.com",	"Hacker News" },
	{ "youtube.com",		"YouTube" },
	{ "youtu.be",			"YouTube" },
	{ "instagram.com",		"Instagram" },
	{ "pinterest.*",		"Pinterest" },
	{ "pin.it",			"Pinterest" },
	{ "wikipedia.org",		"Wikipedia" },
};

/* The second-level names that countries put before their own domain
 * (co.uk, com.au): a brand's country domain is one of these and a
 * country code, or a top-level domain alone. */
static const char *const second_levels[] = {
	"co", "com", "net", "org", "ne", "or", "ac", "gov", "edu",
};

/* Whether host is domain or ends in "." domain. */
static bool
in_domain(const char *host, const char *domain)
{
	size_t hl = strlen(host), dl = strlen(domain);

	if (hl == dl)
		return memcmp(host, domain, hl) == 0;
	return hl > dl && host[hl - dl - 1] == '.' &&
	    memcmp(host + hl - dl, domain, dl) == 0;
}

static bool
tld(const char *s, size_t len)
{
	size_t i;

	if (len < 2 || len > 3)
		return false;
	for (i = 0; i < len; i++)
		if (s[i] < 'a' || s[i] > 'z')
			return false;
	return true;
}

/* Whether s is a country's domain: "de", "com", "co.uk", "com.au". */
static bool
country_domain(const char *s)
{
	const char *dot = strchr(s, '.');
	size_t i, n;

	if (dot == NULL)
		return tld(s, strlen(s));
	if (strchr(dot + 1, '.') != NULL || !tld(dot + 1, strlen(dot + 1)))
		return false;
	n = (size_t)(dot - s);
	for (i = 0; i < sizeof(second_levels) / sizeof(second_levels[0]); i++)
		if (strlen(second_levels[i]) == n &&
		    memcmp(second_levels[i], s, n) == 0)
			return true;
	return false;
}

/* Whether a label of host is brand, followed by a country's domain. */
static bool
brand_match(const char *host, const char *brand, size_t blen)
{
	const char *p = host;

	for (;;) {
		if (strncmp(p, brand, blen) == 0 && p[blen] == '.' &&
		    country_domain(p + blen + 1))
			return true;
		if ((p = strchr(p, '.')) == NULL)
			return false;
		p++;
	}
}

static const char *
group_of(const char *host)
{
	const struct group *g;
	size_t i, len;

	for (i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
		g = &groups[i];
		len = strlen(g->pattern);
		if (len > 2 && strcmp(g->pattern + len - 2, ".*") == 0) {
			if (brand_match(host, g->pattern, len - 2))
				return g->name;
		} else if (in_domain(host, g->pattern))
			return g->name;
	}
	return NULL;
}

static const char *
drop_www(const char *host)
{
	/* "www.com" stays: "com" is no site's name. */
	if (strncmp(host, "www.", 4) == 0 && strchr(host + 4, '.') != NULL)
		return host + 4;
	return host;
}

/* An IPv4 address in any spelling ends in digits: no top-level domain
 * does. */
static bool
is_address(const char *host)
{
	const char *last = strrchr(host, '.');

	if (host[0] == '[')
		return true;
	last = last ? last + 1 : host;
	return last[0] != '\0' && strspn(last, "0123456789") == strlen(last);
}

const char *
referrer_name(const struct origin *o, char *out)
{
	const char *host = o->host, *g;

	if (is_address(host) || strchr(host, '.') == NULL)
		return NULL;
	if ((g = group_of(host)) != NULL)
		host = g;
	else
		host = drop_www(host);
	if (strlen(host) > REFERRER_NAME_MAX)
		return NULL;
	snprintf(out, REFERRER_NAME_MAX + 1, "%s", host);
	return out;
}

bool
referrer_same_site(const char *a, const char *b)
{
	return strcmp(drop_www(a), drop_www(b)) == 0;
}

bool
referrer_name_valid(const char *name)
{
	char url[16 + REFERRER_NAME_MAX], buf[REFERRER_NAME_MAX + 1];
	struct origin o;
	const char *kept;
	size_t i;

	if (strcmp(name, STORE_REFERRER_OTHER) == 0)
		return true;
	for (i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
		if (strcmp(name, groups[i].name) == 0)
			return true;
	/* A host: what referrer_name keeps of a URL with this host. */
	if (strlen(name) > REFERRER_NAME_MAX ||
	    strpbrk(name, ":/?#@[]") != NULL)
		return false;
	snprintf(url, sizeof(url), "http://%s/", name);
	if (origin_parse(url, &o) != NULL || o.port != 0 || o.userinfo ||
	    (kept = referrer_name(&o, buf)) == NULL)
		return false;
	return strcmp(kept, name) == 0;
}
