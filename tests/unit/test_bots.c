/* The compiled bot matcher against the patterns it was built from. */
#include <stdio.h>
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
	/* One User-Agent a family, as the crawlers announce themselves. */
	/* Google */
	"Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.6422.175 Mobile Safari/537.36 (compatible; Google-InspectionTool/1.0;)",
	"Mozilla/5.0 (compatible; Google-InspectionTool/1.0;)",
	"GoogleOther",
	"Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Mobile Safari/537.36 (compatible; GoogleOther)",
	"Google-Extended",
	"Mozilla/5.0 (X11; Linux x86_64; Storebot-Google/1.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/79.0.3945.88 Safari/537.36",
	"AdsBot-Google (+http://www.google.com/adsbot.html)",
	"Mediapartners-Google",
	"APIs-Google (+https://developers.google.com/webmasters/APIs-Google.html)",
	"FeedFetcher-Google; (+http://www.google.com/feedfetcher.html)",
	"AppEngine-Google; (+http://code.google.com/appengine; appid: s~example)",
	"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Mobile Safari/537.36 (compatible; Google-Read-Aloud; +https://support.google.com/webmasters/answer/1061943)",
	"Mozilla/5.0 (compatible; Google-Site-Verification/1.0)",
	"Google-Safety",
	"Mozilla/5.0 (compatible; Google-Structured-Data-Testing-Tool +https://search.google.com/structured-data/testing-tool)",
	"Mozilla/5.0 (Linux; U; Android 2.3.4; generic) AppleWebKit/537.36 (KHTML, like Gecko; Google Web Preview) Version/4.0 Mobile Safari/537.36",
	"Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
	"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/49.0.2623.75 Safari/537.36 Google Favicon",
	"Mozilla/5.0 (compatible; Google-Apps-Script; beanserver; +https://script.google.com; id: UAEmdDd)",
	"Mozilla/5.0 (compatible; GoogleDocs; apps-spreadsheets; +http://docs.google.com)",
	"Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36 (compatible; Google-PageRenderer; +https://developers.google.com/)",
	/* search engines */
	"Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 BingPreview/1.0b",
	"MicrosoftPreview/2.0; +https://aka.ms/MicrosoftPreview",
	"DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)",
	"Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
	"Mozilla/5.0 (compatible; YandexImages/3.0; +http://yandex.com/bots)",
	"Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
	"Sogou web spider/4.0(+http://www.sogou.com/docs/help/webmasters.htm#07)",
	"Mozilla/5.0 (compatible; Exabot/3.0; +http://www.exabot.com/go/robot)",
	"Mozilla/5.0 (compatible; SeznamBot/4.0; +https://o-seznam.cz/napoveda/vyhledavani/en/seznambot-crawler/)",
	"Mozilla/5.0 (compatible; Qwantify/2.4w; +https://www.qwant.com/)/2.4w",
	"Mozilla/5.0 (compatible; Yeti/1.1; +https://naver.me/spd)",
	"Mozilla/5.0 (compatible; Yahoo! Slurp; http://help.yahoo.com/help/us/ysearch/slurp)",
	"Mozilla/2.0 (compatible; Ask Jeeves/Teoma; +http://sp.ask.com/docs/about/tech_crawling.html)",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
	"Mozilla/5.0 (compatible; PetalBot;+https://webmaster.petalsearch.com/site/petalbot)",
	"Mozilla/5.0 (compatible; MojeekBot/0.11; +https://www.mojeek.com/bot.html)",
	/* SEO tools and site checkers */
	"Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
	"Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
	"Mozilla/5.0 (compatible; MJ12bot/v1.4.8; http://mj12bot.com/)",
	"Mozilla/5.0 (compatible; DotBot/1.2; +https://opensiteexplorer.org/dotbot; help@moz.com)",
	"Mozilla/5.0 (compatible; DataForSeoBot/1.0; +https://dataforseo.com/dataforseo-bot)",
	"Screaming Frog SEO Spider/20.0",
	"Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.1; Trident/6.0) LinkCheck by Siteimprove.com",
	"Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Mobile Safari/537.36 (compatible; Sitebulb/6.6)",
	"Xenu Link Sleuth/1.3.8",
	"LinkChecker/10.2.1 (+https://linkchecker.github.io/linkchecker/)",
	"W3C_Validator/1.3 http://validator.w3.org/services",
	"Validator.nu/LV http://validator.w3.org/services",
	"FeedValidator/1.3",
	"W3C-checklink/5.0.0",
	/* archives and research crawlers */
	"ia_archiver (+http://www.alexa.com/site/help/webmasters; crawler@alexa.com)",
	"Mozilla/5.0 (compatible; archive.org_bot +http://archive.org/details/archive.org_bot)",
	"Mozilla/5.0 (compatible; heritrix/3.4.0 +https://www.webarchiv.cz)",
	"CCBot/2.0 (https://commoncrawl.org/faq/)",
	"NutchCVS/0.7.1 (Nutch; http://lucene.apache.org/nutch/bot.html; nutch-agent@lucene.apache.org)",
	"findlinks/2.6 (+http://wortschatz.uni-leipzig.de/findlinks/)",
	/* AI crawlers and assistants */
	"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
	"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ChatGPT-User/1.0; +https://openai.com/bot",
	"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; OAI-SearchBot/1.0; +https://openai.com/searchbot",
	"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; +claudebot@anthropic.com)",
	"Claude-Web/1.0 (web crawler; +https://www.anthropic.com/; bots@anthropic.com)",
	"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Claude-User/1.0; +Claude-User@anthropic.com)",
	"anthropic-ai",
	"cohere-ai",
	"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; PerplexityBot/1.0; +https://perplexity.ai/perplexitybot)",
	"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Perplexity-User/1.0; +https://perplexity.ai/perplexity-user)",
	"Mozilla/5.0 (compatible; Amazonbot/0.1; +https://developer.amazon.com/support/amazonbot)",
	"Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 (compatible; Bytespider; spider-feedback@bytedance.com)",
	"meta-externalagent/1.1 (+https://developers.facebook.com/docs/sharing/webmasters/crawler)",
	"meta-externalfetcher/1.1 (+https://developers.facebook.com/docs/sharing/webmasters/crawler)",
	"meta-externalads/1.1",
	"Mozilla/5.0 (compatible; Meta-ExternalHit/1.1; +http://www.facebook.com/externalhit_uatext.php)",
	"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Gemini-Deep-Research; +https://gemini.google/overview/deep-research/) Chrome/135.0.0.0 Safari/537.36",
	"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; MistralAI-User/1.0; +https://docs.mistral.ai/robots)",
	"Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:72.0) Gecko/20100101 Firefox/72.0 (compatible; img2dataset; +https://github.com/rom1504/img2dataset)",
	"Spawning-AI",
	/* link previewers */
	"facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
	"Twitterbot/1.0",
	"LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
	"Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
	"TelegramBot (like TwitterBot)",
	"Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5",
	"Mozilla/5.0 (compatible; FlipboardProxy/1.1; +http://flipboard.com/browserproxy)",
	"Mozilla/5.0 (compatible; SnapURLPreview/1.0; +https://www.snapchat.com)",
	"Mozilla/5.0 (compatible; Yahoo Link Preview; https://help.yahoo.com/kb/mail/yahoo-link-preview-SLN23615.html)",
	"Mozilla/5.0 (Java) outbrain",
	"Slack-ImgProxy (+https://api.slack.com/robots)",
	"facebookexternalhit/1.1; kakaotalk-scrap/1.0; +https://devtalk.kakao.com/",
	"http.rb/5.1.1 (Mastodon/4.2.8; +https://mastodon.social/)",
	/* feed readers */
	"Feedly/1.0 (+http://www.feedly.com/fetcher.html; 16 subscribers; like FeedFetcher-Google)",
	"Mozilla/5.0 (compatible; inoreader.com; 1 subscribers)",
	"NewsBlur Feed Fetcher - 1 subscriber - http://www.newsblur.com/site/0000000/webpage",
	"Mozilla/5.0 (compatible; Miniflux/2.1.0; +https://miniflux.app)",
	"Feedbin feed-id:2005098 - 2 subscribers",
	"Tiny Tiny RSS/23.04 (https://tt-rss.org/)",
	"SimplePie/1.3-dev (Feed Parser; http://simplepie.org; Allow like Gecko)",
	"FeedBurner/1.0 (http://www.FeedBurner.com)",
	"FreshRSS/1.23.1 (Linux; https://freshrss.org)",
	/* monitors and synthetic checks */
	"Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/100.0.4896.127 Safari/537.36 (StatusCake)",
	"Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/63.0.3239.132 Safari/537.36 Site24x7",
	"Uptime-Kuma/1.23.16",
	"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36 DatadogSynthetics",
	"Datadog Synthetic",
	"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/134.0.0.0 Safari/537.36 Checkly/8a4e5e4e",
	"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/107.0 Safari/537.36 Ghost Inspector",
	"Mozilla/5.0 (compatible; OhDear/1.1; +https://ohdear.app/checker)",
	"Mozilla/5.0 (compatible;HostTracker/2.0;+http://www.host-tracker.com/)",
	"updown.io daemon 2.11",
	"Mozilla/5.0 (compatible; Uptimia; www.uptimia.com)",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 uptrends",
	"Mozilla/5.0 (compatible; Freshping/1.0; +https://www.freshworks.com/website-monitoring/)",
	"Mozilla/5.0 (compatible; HetrixTools Uptime Monitoring Bot. https://hetrix.tools/)",
	"Blackbox Exporter/0.25.0",
	"NodePing",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Catchpoint",
	"RuxitSynthetic/1.0 v1234 t5678",
	"Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 6.1; Trident/5.0; AppInsights)",
	"Mozilla/5.0 (compatible; AlertSite; +https://www.alertsite.com/)",
	"Mozilla/4.0 (compatible; cron-job.org; http://cron-job.org/abuse/)",
	"sentry/23.7.0 (https://sentry.io)",
	/* security scanners */
	"Mozilla/5.0 zgrab/0.x",
	"masscan/1.3 (https://github.com/robertdavidgraham/masscan)",
	"Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
	"Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:Port Check)",
	"sqlmap/1.7.8#stable (https://sqlmap.org)",
	"WPScan v3.8.22 (https://wpscan.com/wordpress-security-scanner)",
	"Mozilla/5.0 (compatible; Nessus; http://www.nessus.org)",
	"Mozilla/5.0 (Windows NT 6.1; WOW64) acunetix-product/wvs (Acunetix Web Vulnerability Scanner)",
	"Mozilla/5.0 (compatible; CensysInspect/1.1; +https://about.censys.io/)",
	"Mozilla/5.0 (compatible; NetcraftSurveyAgent/1.0; +info@netcraft.com)",
	"Mozilla/5.0 (compatible; InternetMeasurement/1.0; +https://internet-measurement.com/)",
	"Mozilla/5.0 [en] (X11, U; OpenVAS-VT 22.4.1)",
	/* HTTP libraries, site copiers, command-line clients */
	"Scrapy/2.11.2 (+https://scrapy.org)",
	"Mozilla/4.5 (compatible; HTTrack 3.0x; Windows 98)",
	"colly - https://github.com/gocolly/colly",
	"Mozilla/5.0 (compatible; WWW-Mechanize/2.18)",
	"httpunit/1.x",
	"Mozilla/5.0 (Windows NT 10.0) HtmlUnit/2.70.0",
	"Jakarta Commons-HttpClient/3.1",
	"Python-urllib/3.11",
	"python-httpx/0.27.0",
	"Python/3.11 aiohttp/3.9.5",
	"okhttp/4.12.0",
	"Java/17.0.11",
	"Apache-HttpClient/4.5.14 (Java/17.0.11)",
	"libwww-perl/6.72",
	"node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
	"axios/1.7.2",
	"undici",
	"Go-http-client/2.0",
	"reqwest/0.12.4",
	"hackney/1.20.1",
	"Faraday v2.9.0",
	"Dart/3.4 (dart:io)",
	"Ruby",
	"GuzzleHttp/7",
	"HTTPie/3.2.2",
	"Mozilla/5.0 (Windows NT 10.0; Microsoft Windows 10.0.22631; en-US) PowerShell/7.4.2",
	"PostmanRuntime/7.39.0",
	"Mozilla/3.0 (compatible; Indy Library)",
	"Mozilla/5.0 (compatible; U; AnyEvent-HTTP/2.24; +http://software.schmorp.de/pkg/AnyEvent)",
	"WinHTTP-Client/1.0",
	/* headless and automated browsers */
	"Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 Safari/538.1",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Cypress/13.11.0 Chrome/118.0.5993.159 Electron/27.3.10 Safari/537.36",
	"Mozilla/5.0 (linux) AppleWebKit/537.36 (KHTML, like Gecko) jsdom/24.1.0",
	"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/602.1 (KHTML, like Gecko) splash Version/10.0 Safari/602.1",
	"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/96.0.4664.45 Safari/537.36 PTST/211125.181133",
	"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/62.0.3202.75 Safari/537.36 DareBoost",
	"Mozilla/5.0 (Windows NT 6.1; rv:24.0) Gecko/20100101 Firefox/24.0 SlimerJS/0.9.0",
	"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 GTmetrix",
};

static const char *const browsers[] = {
	"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
	"Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
	/* Chrome and Firefox on Android, Chrome on iOS */
	"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36",
	"Mozilla/5.0 (Android 14; Mobile; rv:127.0) Gecko/127.0 Firefox/127.0",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
	/* Edge, Opera, Yandex Browser, Firefox on Windows and macOS */
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 OPR/111.0.0.0",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 YaBrowser/24.6.0.0 Safari/537.36",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:127.0) Gecko/20100101 Firefox/127.0",
	"Mozilla/5.0 (Linux; Android 14; SM-S928B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.71 Mobile Safari/537.36 EdgA/126.0.2592.80",
	/* in-app browsers carry people too */
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/470.0.0.38.107;FBBV/612398765;FBDV/iPhone14,5;FBMD/iPhone;FBSN/iOS;FBSV/17.5;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5]",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 334.0.0.42.95 (iPhone14,5; iOS 17_5; en_US; en; scale=3.00; 1170x2532; 612398765)",
	"Mozilla/5.0 (Linux; Android 13; Pixel 7 Build/TQ3A.230805.001; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/126.0.6478.71 Mobile Safari/537.36 Line/14.9.1",
	"Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/AP2A.240605.024; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/126.0.6478.71 Mobile Safari/537.36 GSA/15.25.36.29.arm64",
	/* a phone whose name holds a bot word */
	"Mozilla/5.0 (Linux; Android 11; CUBOT_X50 Build/RP1A.200720.011) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.71 Mobile Safari/537.36",
	"Mozilla/5.0 (Linux; Android 10; Cubot Note 20 Pro) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36",
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
	for (i = 0; i < sizeof(bots) / sizeof(bots[0]); i++) {
		if (!botlist_match(b, bots[i]))
			fprintf(stderr, "not a bot: %s\n", bots[i]);
		CHECK(botlist_match(b, bots[i]));
	}
	for (i = 0; i < sizeof(browsers) / sizeof(browsers[0]); i++) {
		if (botlist_match(b, browsers[i]))
			fprintf(stderr, "a bot: %s\n", browsers[i]);
		CHECK(!botlist_match(b, browsers[i]));
	}
	CHECK(botlist_match(b, NULL));
	/* extra patterns, case-insensitively, anywhere in the string */
	CHECK(botlist_match(b, "acmeprobe/1.0"));
	CHECK(botlist_match(b, "Mozilla/5.0 ACMEPROBE"));
	CHECK(botlist_match(b, "x Internal-Check y"));
	CHECK(!botlist_match(b, "Mozilla/5.0 AcmeProb"));
	/* overlapping prefixes: failure links must find "bot" in "robot" */
	CHECK(botlist_match(b, "Mozilla/5.0 (compatible; robot)"));
	CHECK(botlist_match(b, "CURL"));
	/* a bot word outside the phone's name still counts */
	CHECK(botlist_match(b, "Mozilla/5.0 (Linux; Android 11; CUBOT_X50) Googlebot/2.1"));
	CHECK(botlist_match(b, "CubotCrawler/1.0 (+bot)"));
	/* bytes outside every pattern do not derail the automaton */
	CHECK(botlist_match(b, "\xff\xfe\x01 spider"));
	CHECK(!botlist_match(b, "\xff\xfe\x01 Firefox/127.0"));
	botlist_free(b);

	b = botlist_new(NULL, 0);
	CHECK(b != NULL);
	CHECK(!botlist_match(b, "acmeprobe/1.0"));
	botlist_free(b);

	/* Verdicts are remembered per User-Agent: never across lists, and
	 * by the bytes, not by where they are. */
	{
		struct botlist *with = botlist_new(extra, 2);
		struct botlist *without = botlist_new(NULL, 0);
		char ua[] = "Mozilla/5.0 AcmeProbe";

		CHECK(with != NULL && without != NULL);
		for (i = 0; i < 3 && with && without; i++) {
			CHECK(botlist_match(with, ua));
			CHECK(!botlist_match(without, ua));
		}
		/* the same buffer, the same length, another User-Agent */
		memcpy(ua, "Mozilla/5.0 Xcurl/7.9", sizeof(ua));
		if (with && without) {
			CHECK(botlist_match(without, ua));
			memcpy(ua, "Mozilla/5.0 Xcurv/7.9", sizeof(ua));
			CHECK(!botlist_match(without, ua));
		}
		botlist_free(with);
		botlist_free(without);
	}
	return check_done();
}
