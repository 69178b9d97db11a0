/* The compiled bot matcher against the patterns it was built from. */
#include <stdlib.h>

#include "check.h"
#include "tally/bots.h"

static const char *const bots[] = {
	"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
	"Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
	"Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
	"facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
	"Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
	"WhatsApp/2.23.20.0",
	"Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
	"curl/8.5.0",
	"Wget/1.21.3",
	"python-requests/2.31.0",
	"Go-http-client/1.1",
	"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/126.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse",
	"",
};

static const char *const browsers[] = {
	"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
	"Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
};

int
main(void)
{
	char *extra[] = { "AcmeProbe", "internal-CHECK" };
	struct botlist *b = botlist_new(extra, 2);
	size_t i;

	CHECK(b != NULL);
	if (b == NULL)
		return check_done();
	for (i = 0; i < sizeof(bots) / sizeof(bots[0]); i++)
		CHECK(botlist_match(b, bots[i]));
	for (i = 0; i < sizeof(browsers) / sizeof(browsers[0]); i++)
		CHECK(!botlist_match(b, browsers[i]));
	CHECK(botlist_match(b, NULL));
	/* extra patterns, case-insensitively, anywhere in the string */
	CHECK(botlist_match(b, "acmeprobe/1.0"));
	CHECK(botlist_match(b, "Mozilla/5.0 ACMEPROBE"));
	CHECK(botlist_match(b, "x Internal-Check y"));
	CHECK(!botlist_match(b, "Mozilla/5.0 AcmeProb"));
	/* overlapping prefixes: failure links must find "bot" in "robot" */
	CHECK(botlist_match(b, "Mozilla/5.0 (compatible; robot)"));
	CHECK(botlist_match(b, "CURL"));
	/* bytes outside every pattern do not derail the automaton */
	CHECK(botlist_match(b, "\xff\xfe\x01 spider"));
	CHECK(!botlist_match(b, "\xff\xfe\x01 Firefox/127.0"));
	botlist_free(b);

	b = botlist_new(NULL, 0);
	CHECK(b != NULL);
	CHECK(!botlist_match(b, "acmeprobe/1.0"));
	botlist_free(b);
	return check_done();
}
