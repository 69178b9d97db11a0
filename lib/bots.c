/*
 * Bots by User-Agent. Patterns are chosen to be specific enough not to
 * hit real browsers: no browser, in-app browser (Facebook, Instagram,
 * LINE) or WebView puts any of these in its User-Agent.
 *
 * The families follow the crawler-user-agents list
 * (github.com/monperrus/crawler-user-agents, crawler-user-agents.json)
 * and the crawlers' own documentation (Google's, OpenAI's, Anthropic's,
 * Meta's). The generic words catch most of that list by themselves: a
 * name is listed below only when none of them is in it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tally/bots.h"

static const char *const builtin[] = {
	/* generic words crawlers put in their names (Googlebot, bingbot,
	 * AhrefsBot, GPTBot, Baiduspider, ...) */
	"bot", "crawl", "spider", "slurp", "archiver", "scraper",
	/* search and SEO crawlers */
	"googlebot", "bingpreview", "yandex", "baiduspider", "duckduckgo",
	"sogou", "exabot", "ahrefs", "semrush", "mj12", "dotbot", "petalbot",
	"bytespider", "seznam", "applebot", "gptbot", "ccbot", "claudebot",
	"perplexity", "amazonbot", "qwantify", "teoma", "heritrix", "nutch",
	"findlinks", "naver.me/spd", "microsoftpreview", "sitebulb",
	"siteimprove", "screaming frog", "xenu link sleuth", "linkchecker",
	"w3c_validator", "validator.nu", "feedvalidator", "w3c-checklink",
	/* Google's fetchers that are not Googlebot */
	"google-inspectiontool", "googleother", "google-extended",
	"mediapartners-google", "apis-google", "feedfetcher-google",
	"appengine-google", "google-read-aloud", "google-site-verification",
	"google-safety", "google-structured-data", "google web preview",
	"googleimageproxy", "google favicon", "google-apps-script",
	"googledocs", "google-pagerenderer",
	/* AI assistants and their fetchers */
	"chatgpt-user", "claude-web", "claude-user", "anthropic-ai",
	"cohere-ai", "meta-externalagent", "meta-externalfetcher",
	"meta-externalads", "meta-externalhit", "gemini-deep-research",
	"mistralai-user", "img2dataset", "spawning-ai",
	/* link previewers */
	"facebookexternalhit", "facebookcatalog", "twitterbot", "slackbot",
	"discordbot", "telegrambot", "whatsapp", "linkedinbot", "skypeuripreview",
	"embedly", "redditbot", "mastodon", "vkshare", "iframely",
	"flipboardproxy", "snapurlpreview", "yahoo link preview", "outbrain",
	"slack-imgproxy", "kakaotalk-scrap",
	/* feed readers */
	"feedly", "inoreader", "newsblur", "miniflux", "feedbin",
	"tiny tiny rss", "simplepie", "feedburner", "freshrss",
	/* uptime monitors and synthetic checks */
	"uptimerobot", "pingdom", "statuscake", "site24x7", "newrelicpinger",
	"betteruptime", "monitor", "check_http", "nagios", "zabbix",
	"uptime-kuma", "datadogsynthetics", "datadog synthetic", "checkly",
	"ghost inspector", "ohdear", "hosttracker", "updown.io", "uptimia",
	"uptrends", "freshping", "hetrixtools", "blackbox exporter",
	"nodeping", "catchpoint", "ruxitsynthetic", "appinsights",
	"alertsite", "cron-job.org", "sentry/",
	/* security scanners */
	"zgrab", "masscan", "nmap scripting engine", "nikto", "sqlmap",
	"wpscan", "nessus", "acunetix", "censysinspect",
	"netcraftsurveyagent", "internetmeasurement", "openvas",
	/* HTTP libraries, site copiers and command-line clients */
	"curl", "wget", "python-requests", "python-urllib", "python-httpx",
	"aiohttp", "go-http-client", "java/", "okhttp", "apache-httpclient",
	"libwww-perl", "lwp::", "node-fetch", "axios", "undici", "got (",
	"ruby", "php/", "guzzle", "httpie", "powershell", "wrk", "apachebench",
	"hey/", "k6/", "insomnia", "postman", "restsharp", "httpclient",
	"scrapy", "httrack", "colly", "mechanize", "httpunit", "htmlunit",
	"jakarta commons", "winhttp", "reqwest", "hackney", "faraday v",
	"dart:io", "anyevent", "indy library",
	/* headless and automated browsers */
	"headless", "phantomjs", "selenium", "webdriver", "puppeteer",
	"playwright", "lighthouse", "chrome-lighthouse", "pagespeed", "gtmetrix",
	"prerender", "slimerjs", "cypress", "zombie.js", "jsdom/",
	"splash version/", "ptst/", "dareboost",
};

/*
 * Browsers whose User-Agent holds a bot word: devices named so. Inside
 * one of these the word does not count; anywhere else in the same
 * User-Agent it still does.
 */
static const char *const not_bots[] = {
	"cubot",	/* Cubot phones: "Android 11; CUBOT_X50 Build/..." */
};

/* Numbers each list: a list freed and another made at the same address
 * must not find the first one's verdicts. */
static uint64_t next_id;

#define NBUILTIN	(sizeof(builtin) / sizeof(builtin[0]))
#define NNOT_BOTS	(sizeof(not_bots) / sizeof(not_bots[0]))

/*
 * The patterns are compiled into one Aho-Corasick automaton with every
 * transition precomputed, over an alphabet of the bytes that occur in
 * some pattern (letters folded to lower case; every other byte is one
 * class). A User-Agent is then read once, one table lookup a byte,
 * whatever the number of patterns.
 */
struct botlist {
	uint64_t	 id;		/* tells lists apart in the cache */
	unsigned char	 class_of[256];
	size_t		 nclasses;
	size_t		 nstates;
	uint16_t	*next;		/* nstates * nclasses */
	bool		*accept;
	bool		*exempt;	/* the end of a not_bots name */
};

static unsigned char
fold(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* The i-th pattern: the built-in ones, the configured ones, the
 * exempt names. */
static const unsigned char *
pattern(char *const *extra, size_t nextra, size_t i)
{
	if (i < NBUILTIN)
		return (const unsigned char *)builtin[i];
	if (i < NBUILTIN + nextra)
		return (const unsigned char *)extra[i - NBUILTIN];
	return (const unsigned char *)not_bots[i - NBUILTIN - nextra];
}

struct botlist *
botlist_new(char *const *extra, size_t nextra)
{
	struct botlist *b;
	size_t nb = NBUILTIN, np = nb + nextra + NNOT_BOTS;
	size_t i, k, maxstates = 1, head, tail;
	uint16_t *fail = NULL, *queue = NULL;
	int32_t *trie = NULL;
	const unsigned char *p;

	if ((b = calloc(1, sizeof(*b))) == NULL)
		return NULL;
	b->id = __atomic_add_fetch(&next_id, 1, __ATOMIC_RELAXED);
	/* The alphabet: class 0 is every byte no pattern has. */
	b->nclasses = 1;
	for (i = 0; i < np; i++) {
		p = pattern(extra, nextra, i);
		for (; *p; p++, maxstates++) {
			unsigned char c = fold(*p);
			if (b->class_of[c] == 0) {
				b->class_of[c] = (unsigned char)b->nclasses++;
				if (c >= 'a' && c <= 'z')
					b->class_of[c - 32] = b->class_of[c];
			}
		}
	}
	if (maxstates > UINT16_MAX || b->nclasses > 255)
		goto bad;

	/* The trie, -1 for no edge. */
	trie = malloc(maxstates * b->nclasses * sizeof(*trie));
	b->accept = calloc(maxstates, sizeof(*b->accept));
	b->exempt = calloc(maxstates, sizeof(*b->exempt));
	if (trie == NULL || b->accept == NULL || b->exempt == NULL)
		goto bad;
	memset(trie, 0xff, maxstates * b->nclasses * sizeof(*trie));
	b->nstates = 1;
	for (i = 0; i < np; i++) {
		size_t s = 0;

		p = pattern(extra, nextra, i);
		if (*p == '\0')
			continue;
		for (; *p; p++) {
			int32_t *e = &trie[s * b->nclasses + b->class_of[fold(*p)]];
			if (*e < 0)
				*e = (int32_t)b->nstates++;
			s = (size_t)*e;
		}
		if (i >= nb + nextra)
			b->exempt[s] = true;
		else
			b->accept[s] = true;
	}

	/* Breadth first: failure links, then every missing edge follows
	 * the failure link's edge. */
	b->next = calloc(b->nstates * b->nclasses, sizeof(*b->next));
	fail = calloc(b->nstates, sizeof(*fail));
	queue = calloc(b->nstates, sizeof(*queue));
	if (b->next == NULL || fail == NULL || queue == NULL)
		goto bad;
	head = tail = 0;
	for (k = 0; k < b->nclasses; k++) {
		int32_t t = trie[k];
		if (t > 0) {
			b->next[k] = (uint16_t)t;
			fail[t] = 0;
			queue[tail++] = (uint16_t)t;
		}
	}
	while (head < tail) {
		size_t s = queue[head++];

		if (b->accept[fail[s]] && !b->exempt[s])
			b->accept[s] = true;
		for (k = 0; k < b->nclasses; k++) {
			int32_t t = trie[s * b->nclasses + k];
			if (t > 0) {
				b->next[s * b->nclasses + k] = (uint16_t)t;
				fail[t] = b->next[fail[s] * b->nclasses + k];
				queue[tail++] = (uint16_t)t;
			} else {
				b->next[s * b->nclasses + k] =
				    b->next[fail[s] * b->nclasses + k];
			}
		}
	}
	free(trie);
	free(fail);
	free(queue);
	return b;
bad:
	free(trie);
	free(fail);
	free(queue);
	botlist_free(b);
	return NULL;
}

void
botlist_free(struct botlist *b)
{
	if (b == NULL)
		return;
	free(b->next);
	free(b->accept);
	free(b->exempt);
	free(b);
}

static bool
run(const struct botlist *b, const unsigned char *p)
{
	size_t s = 0;

	for (; *p; p++) {
		s = b->next[s * b->nclasses + b->class_of[*p]];
		if (b->accept[s])
			return true;
	}
	return false;
}

/*
 * The last verdicts of this thread, by the User-Agent's length. A
 * keep-alive connection sends the same User-Agent with every request,
 * and comparing its bytes costs a tenth of reading it through the
 * automaton. The verdict is a function of the list and the bytes, both
 * compared whole, so the cache can only repeat an answer.
 */
#define CACHE_SLOTS	8
#define CACHE_UA_MAX	512

struct verdict {
	uint64_t id;		/* the list's; 0: empty */
	size_t	 len;
	bool	 bot;
	char	 ua[CACHE_UA_MAX];
};

static __thread struct verdict cache[CACHE_SLOTS];

bool
botlist_match(const struct botlist *b, const char *ua)
{
	size_t len;
	bool bot;

	if (ua == NULL || *ua == '\0')
		return true;
	len = strlen(ua);
	if (len < CACHE_UA_MAX) {
		struct verdict *e = &cache[len % CACHE_SLOTS];

		if (e->id == b->id && e->len == len &&
		    memcmp(e->ua, ua, len) == 0)
			return e->bot;
		bot = run(b, (const unsigned char *)ua);
		e->id = b->id;
		e->len = len;
		e->bot = bot;
		memcpy(e->ua, ua, len);
		return bot;
	}
	return run(b, (const unsigned char *)ua);
}
