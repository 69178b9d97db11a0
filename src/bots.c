/*
 * The User-Agent is lowercased once and searched for every pattern.
 * Patterns are chosen to be specific enough not to hit real browsers.
 */
#include <stdlib.h>
#include <string.h>

#include "tally/bots.h"

static const char *const builtin[] = {
	/* generic words crawlers put in their names */
	"bot", "crawl", "spider", "slurp", "archiver", "scraper",
	/* search and SEO crawlers */
	"googlebot", "bingpreview", "yandex", "baiduspider", "duckduckgo",
	"sogou", "exabot", "ahrefs", "semrush", "mj12", "dotbot", "petalbot",
	"bytespider", "seznam", "applebot", "gptbot", "ccbot", "claudebot",
	"perplexity", "amazonbot",
	/* link previewers */
	"facebookexternalhit", "facebookcatalog", "twitterbot", "slackbot",
	"discordbot", "telegrambot", "whatsapp", "linkedinbot", "skypeuripreview",
	"embedly", "redditbot", "mastodon", "vkshare", "iframely",
	/* uptime monitors */
	"uptimerobot", "pingdom", "statuscake", "site24x7", "newrelicpinger",
	"betteruptime", "monitor", "check_http", "nagios", "zabbix",
	/* HTTP libraries and command-line clients */
	"curl", "wget", "python-requests", "python-urllib", "python-httpx",
	"aiohttp", "go-http-client", "java/", "okhttp", "apache-httpclient",
	"libwww-perl", "lwp::", "node-fetch", "axios", "undici", "got (",
	"ruby", "php/", "guzzle", "httpie", "powershell", "wrk", "apachebench",
	"hey/", "k6/", "insomnia", "postman", "restsharp", "httpclient",
	/* headless and automated browsers */
	"headless", "phantomjs", "selenium", "webdriver", "puppeteer",
	"playwright", "lighthouse", "chrome-lighthouse", "pagespeed", "gtmetrix",
	"prerender",
};

struct botlist {
	char	**patterns;
	size_t	  n;
};

struct botlist *
botlist_new(char *const *extra, size_t nextra)
{
	struct botlist *b;
	size_t nb = sizeof(builtin) / sizeof(builtin[0]), i;
	char *p;

	if ((b = calloc(1, sizeof(*b))) == NULL)
		return NULL;
	if ((b->patterns = calloc(nb + nextra, sizeof(char *))) == NULL) {
		free(b);
		return NULL;
	}
	for (i = 0; i < nb + nextra; i++) {
		p = strdup(i < nb ? builtin[i] : extra[i - nb]);
		if (p == NULL) {
			botlist_free(b);
			return NULL;
		}
		for (char *q = p; *q; q++)
			if (*q >= 'A' && *q <= 'Z')
				*q = (char)(*q + 32);
		if (*p == '\0') {
			free(p);
			continue;
		}
		b->patterns[b->n++] = p;
	}
	return b;
}

void
botlist_free(struct botlist *b)
{
	size_t i;

	if (b == NULL)
		return;
	for (i = 0; i < b->n; i++)
		free(b->patterns[i]);
	free(b->patterns);
	free(b);
}

bool
botlist_match(const struct botlist *b, const char *ua)
{
	char low[1024];
	size_t i, len;

	if (ua == NULL || *ua == '\0')
		return true;
	len = strlen(ua);
	if (len >= sizeof(low))
		len = sizeof(low) - 1;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)ua[i];
		low[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : (char)c;
	}
	low[len] = '\0';
	for (i = 0; i < b->n; i++)
		if (strstr(low, b->patterns[i]) != NULL)
			return true;
	return false;
}
