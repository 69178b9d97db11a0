/* Unit tests for the configuration: defaults, every key, sites, errors. */

#include <sys/socket.h>

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tally/config.h"
#include "tally/log.h"
#include "check.h"

#define nitems(a)	(sizeof(a) / sizeof((a)[0]))

static char tmpdir[256];

/* Writes text to a new temporary file and puts its name in path. */
static void
write_ini(const char *text, char *path, size_t pathsz)
{
	int	 fd;
	size_t	 len = strlen(text);

	snprintf(path, pathsz, "%s/tally-config-XXXXXX", tmpdir);
	if ((fd = mkstemp(path)) == -1) {
		perror("mkstemp");
		exit(1);
	}
	if (write(fd, text, len) != (ssize_t)len) {
		perror("write");
		exit(1);
	}
	close(fd);
}

/* Loads text into cfg, which is initialized here. */
static int
load_text(struct config *cfg, const char *text, char *err, size_t errlen)
{
	char	 path[512];
	int	 rc;

	write_ini(text, path, sizeof(path));
	config_init(cfg);
	err[0] = '\0';
	rc = config_load(cfg, path, err, errlen);
	unlink(path);
	return rc;
}

static void
test_defaults(void)
{
	struct config			 cfg;
	const struct site_config	*s;
	char				 err[512] = "";

	config_init(&cfg);
	CHECK(cfg.file == NULL);
	CHECK_INT(cfg.nlisten, 1);
	CHECK_INT(cfg.threads, 0);
	CHECK_INT(cfg.ntrusted_proxies, 0);
	CHECK_STR(cfg.client_ip_header, "X-Forwarded-For");
	CHECK_INT(cfg.nadmin_allow, 2);
	if (cfg.nadmin_allow == 2) {
		CHECK_INT(cfg.admin_allow[0].family, AF_INET);
		CHECK_INT(cfg.admin_allow[0].bits, 8);
		CHECK_INT(cfg.admin_allow[0].addr[0], 127);
		CHECK_INT(cfg.admin_allow[1].family, AF_INET6);
		CHECK_INT(cfg.admin_allow[1].bits, 128);
		CHECK_INT(cfg.admin_allow[1].addr[15], 1);
		CHECK_INT(cfg.admin_allow[1].addr[0], 0);
	}
	CHECK_INT(cfg.idle_timeout_ms, 30000);
	CHECK_INT(cfg.max_connections, 4096);
	CHECK_INT(cfg.max_connections_per_address, 128);
	CHECK(!cfg.access_log);
	CHECK_INT(cfg.log_level, LOG_LEVEL_INFO);
	CHECK_STR(cfg.data, "./tally-data");
	CHECK_INT(cfg.durability, DURABILITY_BATCH);
	CHECK_INT(cfg.commit_interval_ms, 100);
	CHECK(cfg.timezone == NULL);
	CHECK_INT(cfg.rate_limit, 30);
	CHECK_INT(cfg.rate_limit_address, 120);
	CHECK_INT(cfg.new_visitors_per_address, 500);
	CHECK_INT(cfg.max_pages, 100000);
	CHECK_INT(cfg.nbots, 0);
	CHECK_INT(cfg.dnt, DNT_VIEWS_ONLY);
	CHECK_INT(cfg.count_max_age, 5);
	CHECK_INT(cfg.nsites, 0);

	CHECK_INT(config_finish(&cfg, err, sizeof(err)), 0);
	CHECK_INT(cfg.nlisten, 1);
	if (cfg.nlisten == 1)
		CHECK_STR(cfg.listen[0], "127.0.0.1:8080");
	CHECK_INT(cfg.nsites, 1);
	s = config_site(&cfg, "default");
	CHECK(s != NULL);
	if (s != NULL) {
		CHECK_STR(s->name, DEFAULT_SITE);
		CHECK_INT(s->norigins, 0);
		CHECK_STR(s->label_today, "Today");
		CHECK_STR(s->label_total, "Total");
		CHECK_STR(s->label_page, "Views");
		CHECK_INT(s->max_pages, 0);
		CHECK_INT(config_site_max_pages(&cfg, s), 100000);
	}
	CHECK(config_site(&cfg, "blog") == NULL);
	CHECK(config_site_by_origin(&cfg, "https://a.example") == NULL);

	/* Twice is harmless: nothing is added again. */
	CHECK_INT(config_finish(&cfg, err, sizeof(err)), 0);
	CHECK_INT(cfg.nlisten, 1);
	CHECK_INT(cfg.nsites, 1);
	config_free(&cfg);
	CHECK_INT(cfg.nsites, 0);
	CHECK(cfg.data == NULL);
}

static void
test_every_key(void)
{
	static const char ini[] =
	    "; every key, none at its default\n"
	    "[server]\n"
	    "listen = 0.0.0.0:80\n"
	    "threads = 8\n"
	    "trusted_proxies = 10.0.0.0/8, 2001:db8::/32\n"
	    "client_ip_header = x-real-ip\n"
	    "admin_allow = 192.0.2.7\n"
	    "idle_timeout = 2m\n"
	    "max_connections = 100\n"
	    "access_log = yes\n"
	    "log_level = debug\n"
	    "\n"
	    "[store]\n"
	    "data = /var/lib/tally\n"
	    "durability = strict\n"
	    "commit_interval = 250ms\n"
	    "\n"
	    "[count]\n"
	    "timezone = Asia/Baku\n"
	    "rate_limit = 0\n"
	    "max_pages = 500\n"
	    "bots = MyCrawler, uptime-robot\n"
	    "bots = Other\n"
	    "dnt = ignore\n"
	    "count_max_age = 1m\n";
	struct config	 cfg;
	char		 err[512];

	CHECK_INT(load_text(&cfg, ini, err, sizeof(err)), 0);
	CHECK_STR(err, "");
	CHECK(cfg.file != NULL && strstr(cfg.file, "tally-config-") != NULL);
	CHECK_INT(cfg.nlisten, 1);
	if (cfg.nlisten == 1)
		CHECK_STR(cfg.listen[0], "0.0.0.0:80");
	CHECK_INT(cfg.threads, 8);
	CHECK_INT(cfg.ntrusted_proxies, 2);
	if (cfg.ntrusted_proxies == 2) {
		CHECK_INT(cfg.trusted_proxies[0].family, AF_INET);
		CHECK_INT(cfg.trusted_proxies[0].bits, 8);
		CHECK_INT(cfg.trusted_proxies[0].addr[0], 10);
		CHECK_INT(cfg.trusted_proxies[1].family, AF_INET6);
		CHECK_INT(cfg.trusted_proxies[1].bits, 32);
		CHECK_INT(cfg.trusted_proxies[1].addr[0], 0x20);
		CHECK_INT(cfg.trusted_proxies[1].addr[1], 0x01);
		CHECK_INT(cfg.trusted_proxies[1].addr[2], 0x0d);
		CHECK_INT(cfg.trusted_proxies[1].addr[3], 0xb8);
	}
	CHECK_STR(cfg.client_ip_header, "X-Real-IP");
	/* The file's admin_allow replaces the default, not adds to it. */
	CHECK_INT(cfg.nadmin_allow, 1);
	if (cfg.nadmin_allow == 1) {
		CHECK_INT(cfg.admin_allow[0].family, AF_INET);
		CHECK_INT(cfg.admin_allow[0].bits, 32);
		CHECK_INT(cfg.admin_allow[0].addr[0], 192);
		CHECK_INT(cfg.admin_allow[0].addr[3], 7);
	}
	CHECK_INT(cfg.idle_timeout_ms, 120000);
	CHECK_INT(cfg.max_connections, 100);
	CHECK(cfg.access_log);
	CHECK_INT(cfg.log_level, LOG_LEVEL_DEBUG);
	CHECK_STR(cfg.data, "/var/lib/tally");
	CHECK_INT(cfg.durability, DURABILITY_STRICT);
	CHECK_INT(cfg.commit_interval_ms, 250);
	CHECK_STR(cfg.timezone, "Asia/Baku");
	CHECK_INT(cfg.rate_limit, 0);
	CHECK_INT(cfg.max_pages, 500);
	CHECK_INT(cfg.nbots, 3);
	if (cfg.nbots == 3) {
		CHECK_STR(cfg.bots[0], "MyCrawler");
		CHECK_STR(cfg.bots[1], "uptime-robot");
		CHECK_STR(cfg.bots[2], "Other");
	}
	CHECK_INT(cfg.dnt, DNT_IGNORE);
	CHECK_INT(cfg.count_max_age, 60);
	config_free(&cfg);
}

/* The other spellings of the enumerated and boolean values. */
static void
test_value_spellings(void)
{
	static const struct {
		const char	*value;
		bool		 want;
	} bools[] = {
		{ "yes", true }, { "true", true }, { "on", true }, { "1", true },
		{ "YES", true }, { "no", false }, { "false", false },
		{ "off", false }, { "0", false }, { "Off", false },
	};
	static const struct {
		const char	*value;
		const char	*want;
	} headers[] = {
		{ "X-Forwarded-For", "X-Forwarded-For" },
		{ "forwarded", "Forwarded" },
		{ "X-REAL-IP", "X-Real-IP" },
		{ "cf-connecting-ip", "CF-Connecting-IP" },
	};
	static const struct {
		const char	*value;
		int		 want;
	} levels[] = {
		{ "error", LOG_LEVEL_ERR }, { "warn", LOG_LEVEL_WARN },
		{ "info", LOG_LEVEL_INFO }, { "debug", LOG_LEVEL_DEBUG },
	};
	struct config	 cfg;
	char		 err[512];
	size_t		 i;

	config_init(&cfg);
	for (i = 0; i < nitems(bools); i++) {
		cfg.access_log = !bools[i].want;
		CHECK_INT(config_set(&cfg, "server", "access_log",
		    bools[i].value, err, sizeof(err)), 0);
		CHECK_INT(cfg.access_log, bools[i].want);
	}
	for (i = 0; i < nitems(headers); i++) {
		CHECK_INT(config_set(&cfg, "server", "client_ip_header",
		    headers[i].value, err, sizeof(err)), 0);
		CHECK_STR(cfg.client_ip_header, headers[i].want);
	}
	for (i = 0; i < nitems(levels); i++) {
		CHECK_INT(config_set(&cfg, "server", "log_level",
		    levels[i].value, err, sizeof(err)), 0);
		CHECK_INT(cfg.log_level, levels[i].want);
	}
	CHECK_INT(config_set(&cfg, "store", "durability", "strict", err,
	    sizeof(err)), 0);
	CHECK_INT(config_set(&cfg, "store", "durability", "batch", err,
	    sizeof(err)), 0);
	CHECK_INT(cfg.durability, DURABILITY_BATCH);
	CHECK_INT(config_set(&cfg, "count", "dnt", "ignore", err,
	    sizeof(err)), 0);
	CHECK_INT(config_set(&cfg, "count", "dnt", "views-only", err,
	    sizeof(err)), 0);
	CHECK_INT(cfg.dnt, DNT_VIEWS_ONLY);
	/* An empty timezone is the host's zone again. */
	CHECK_INT(config_set(&cfg, "count", "timezone", "UTC", err,
	    sizeof(err)), 0);
	CHECK_STR(cfg.timezone, "UTC");
	CHECK_INT(config_set(&cfg, "count", "timezone", "", err,
	    sizeof(err)), 0);
	CHECK(cfg.timezone == NULL);
	/* Flags come untrimmed. */
	CHECK_INT(config_set(&cfg, "server", "threads", " 256\t", err,
	    sizeof(err)), 0);
	CHECK_INT(cfg.threads, 256);
	CHECK_INT(config_set(&cfg, "server", "threads", "0", err,
	    sizeof(err)), 0);
	CHECK_INT(cfg.threads, 0);
	/* Duplicate bot patterns are kept once. */
	CHECK_INT(config_set(&cfg, "count", "bots", "a,b", err,
	    sizeof(err)), 0);
	CHECK_INT(config_set(&cfg, "count", "bots", "b, c", err,
	    sizeof(err)), 0);
	CHECK_INT(cfg.nbots, 3);
	config_free(&cfg);
}

static void
test_listen(void)
{
	static const char ini[] =
	    "[server]\n"
	    "listen = 127.0.0.1:8080\n"
	    "listen = [::1]:8080, :9090\n"
	    "listen = *:9091 ,\n"
	    "\t[2001:db8::1]:80\n";	/* a continued value */
	struct config	 cfg;
	char		 err[512];

	CHECK_INT(load_text(&cfg, ini, err, sizeof(err)), 0);
	CHECK_STR(err, "");
	CHECK_INT(config_finish(&cfg, err, sizeof(err)), 0);
	CHECK_INT(cfg.nlisten, 5);
	if (cfg.nlisten == 5) {
		CHECK_STR(cfg.listen[0], "127.0.0.1:8080");
		CHECK_STR(cfg.listen[1], "[::1]:8080");
		CHECK_STR(cfg.listen[2], ":9090");
		CHECK_STR(cfg.listen[3], "*:9091");
		CHECK_STR(cfg.listen[4], "[2001:db8::1]:80");
	}
	config_free(&cfg);

	/* The same address twice is caught when the configuration ends. */
	config_init(&cfg);
	CHECK_INT(config_set(&cfg, "server", "listen", ":80, :81", err,
	    sizeof(err)), 0);
	CHECK_INT(config_set(&cfg, "server", "listen", ":80", err,
	    sizeof(err)), 0);
	CHECK_INT(config_finish(&cfg, err, sizeof(err)), -1);
	CHECK_STR(err, "listen: :80 is given twice");
	config_free(&cfg);
}

static void
test_sites(void)
{
	static const char ini[] =
	    "[site blog]\n"
	    "origins = HTTPS://Blog.Example:443/, http://blog.example:8080\n"
	    "labels = today:Bu gün, total:Ümumi, page:Giriş\n"
	    "max_pages = 50\n"
	    "\n"
	    "[site shop.example]\n"
	    "origins = https://shop.example\n"
	    "labels = page : Просмотры\n"
	    "\n"
	    "[site blog]\n"
	    "origins = https://www.blog.example, https://blog.example\n"
	    "labels = total:Cəmi\n"
	    "[site 0-empty]\n"
	    "[site v6]\n"
	    "origins = http://[2001:DB8:0::1]:80, https://[::1]:8443\n";
	struct config			 cfg;
	const struct site_config	*blog, *shop, *empty, *v6, *def;
	char				 err[512];

	CHECK_INT(load_text(&cfg, ini, err, sizeof(err)), 0);
	CHECK_STR(err, "");
	CHECK_INT(cfg.nsites, 4);
	CHECK_INT(config_finish(&cfg, err, sizeof(err)), 0);
	CHECK_INT(cfg.nsites, 5);

	blog = config_site(&cfg, "blog");
	CHECK(blog != NULL);
	if (blog != NULL) {
		/* Merged: both sections' origins, the duplicate once. */
		CHECK_INT(blog->norigins, 3);
		if (blog->norigins == 3) {
			CHECK_STR(blog->origins[0], "https://blog.example");
			CHECK_STR(blog->origins[1],
			    "http://blog.example:8080");
			CHECK_STR(blog->origins[2],
			    "https://www.blog.example");
		}
		CHECK_STR(blog->label_today, "Bu gün");
		CHECK_STR(blog->label_total, "Cəmi");
		CHECK_STR(blog->label_page, "Giriş");
		CHECK_INT(blog->max_pages, 50);
		CHECK_INT(config_site_max_pages(&cfg, blog), 50);
	}
	shop = config_site(&cfg, "shop.example");
	CHECK(shop != NULL);
	if (shop != NULL) {
		CHECK_INT(shop->norigins, 1);
		CHECK_STR(shop->label_today, "Today");
		CHECK_STR(shop->label_total, "Total");
		CHECK_STR(shop->label_page, "Просмотры");
		CHECK_INT(config_site_max_pages(&cfg, shop), 100000);
	}
	/* A section without keys still makes its site. */
	empty = config_site(&cfg, "0-empty");
	CHECK(empty != NULL);
	if (empty != NULL)
		CHECK_INT(empty->norigins, 0);
	v6 = config_site(&cfg, "v6");
	CHECK(v6 != NULL);
	if (v6 != NULL && v6->norigins == 2) {
		CHECK_STR(v6->origins[0], "http://[2001:db8::1]");
		CHECK_STR(v6->origins[1], "https://[::1]:8443");
	} else
		CHECK(0);
	def = config_site(&cfg, "default");
	CHECK(def != NULL);
	if (def != NULL)
		CHECK_INT(def->norigins, 0);

	CHECK(config_site_by_origin(&cfg, "https://blog.example") == blog);
	CHECK(config_site_by_origin(&cfg, "http://blog.example:8080") == blog);
	CHECK(config_site_by_origin(&cfg, "https://www.blog.example") ==
	    blog);
	CHECK(config_site_by_origin(&cfg, "https://shop.example") == shop);
	CHECK(config_site_by_origin(&cfg, "https://[::1]:8443") == v6);
	/* Origins are exact: no other port, scheme or subdomain. */
	CHECK(config_site_by_origin(&cfg, "http://blog.example") == NULL);
	CHECK(config_site_by_origin(&cfg, "https://blog.example:8443") ==
	    NULL);
	CHECK(config_site_by_origin(&cfg, "https://x.blog.example") == NULL);
	CHECK(config_site_by_origin(&cfg, "null") == NULL);
	CHECK(config_site_by_origin(&cfg, "") == NULL);
	config_free(&cfg);
}

/* An explicit [site default] is kept as configured. */
static void
test_default_site_explicit(void)
{
	static const char ini[] =
	    "[site default]\n"
	    "origins = https://example.org\n"
	    "labels = today:Heute\n";
	struct config			 cfg;
	const struct site_config	*def;
	char				 err[512];

	CHECK_INT(load_text(&cfg, ini, err, sizeof(err)), 0);
	CHECK_INT(config_finish(&cfg, err, sizeof(err)), 0);
	CHECK_INT(cfg.nsites, 1);
	def = config_site(&cfg, "default");
	CHECK(def != NULL);
	if (def != NULL) {
		CHECK_INT(def->norigins, 1);
		CHECK_STR(def->label_today, "Heute");
		CHECK_STR(def->label_total, "Total");
	}
	CHECK(config_site_by_origin(&cfg, "https://example.org") == def);
	config_free(&cfg);
}

static void
test_labels_length(void)
{
	/* 64 characters of two bytes each: the limit counts characters. */
	char		 label[256], value[300];
	struct config	 cfg;
	const struct site_config *s;
	size_t		 i;
	char		 err[512];

	label[0] = '\0';
	for (i = 0; i < 64; i++)
		strcat(label, "ə");
	snprintf(value, sizeof(value), "today: %s ", label);
	config_init(&cfg);
	CHECK_INT(config_set(&cfg, "site x", "labels", value, err,
	    sizeof(err)), 0);
	s = config_site(&cfg, "x");
	CHECK(s != NULL);
	if (s != NULL) {
		CHECK_STR(s->label_today, label);
		CHECK_INT(strlen(s->label_today), 128);
	}
	snprintf(value, sizeof(value), "today:%sa", label);
	CHECK_INT(config_set(&cfg, "site x", "labels", value, err,
	    sizeof(err)), -1);
	CHECK_STR(err, "labels: the today label is longer than 64 characters");
	/* A failed key changes nothing. */
	if (s != NULL)
		CHECK_STR(s->label_today, label);
	CHECK_INT(config_set(&cfg, "site x", "labels", "page:\xc3\x28", err,
	    sizeof(err)), -1);
	CHECK_STR(err, "labels: the page label is not valid UTF-8");
	CHECK_INT(config_set(&cfg, "site x", "labels", "page:\xc0\xaf", err,
	    sizeof(err)), -1);
	CHECK_STR(err, "labels: the page label is not valid UTF-8");
	CHECK_INT(config_set(&cfg, "site x", "labels", "page:a\tb", err,
	    sizeof(err)), -1);
	CHECK_STR(err, "labels: the page label holds a control character");
	CHECK_INT(config_set(&cfg, "site x", "labels", "views:x", err,
	    sizeof(err)), -1);
	CHECK_STR(err, "labels: unknown label \"views\" (today, total or page)");
	CHECK_INT(config_set(&cfg, "site x", "labels", "today", err,
	    sizeof(err)), -1);
	CHECK_STR(err, "labels: \"today\" lacks a \":\" (like today:Today)");
	/* A colon in the text is the text's. */
	CHECK_INT(config_set(&cfg, "site x", "labels", "total: a:b", err,
	    sizeof(err)), 0);
	if (s != NULL)
		CHECK_STR(s->label_total, "a:b");
	config_free(&cfg);
}

/*
 * Every error names the file and the line, counted as an editor does
 * (comments, blank lines and section headers included).
 */
static void
test_errors(void)
{
	static const struct {
		const char	*ini;
		int		 line;
		const char	*msg;
	} tests[] = {
		{ "[server]\nthreads = 2\nthread = 4\n", 3,
		    "unknown key \"thread\" in [server]" },
		{ "[server]\n[servers]\nthreads = 4\n", 2,
		    "unknown section [servers]" },
		{ "; c\n\n[store]\n[cache]\n", 4, "unknown section [cache]" },
		{ "[count]\nmax_pages = 1\ndata = /x\n", 3,
		    "unknown key \"data\" in [count]" },
		{ "[site a]\nmax_pages = 1\nbots = x\n", 3,
		    "unknown key \"bots\" in [site a]" },
		{ "threads = 4\n", 1, "key \"threads\" outside of any section" },
		{ "[server]\n\nidle_timeout = 30x\n", 3,
		    "idle_timeout: \"30x\" is not a duration "
		    "(like 100ms, 30s, 5m, 1h, 2d)" },
		{ "[server]\nidle_timeout = 0\n", 2,
		    "idle_timeout: 0 is out of range (at least 1ms)" },
		{ "[store]\ncommit_interval = 2h\n", 2,
		    "commit_interval: 2h is out of range (1ms to 1h)" },
		{ "[store]\ncommit_interval = 0ms\n", 2,
		    "commit_interval: 0ms is out of range (1ms to 1h)" },
		{ "[store]\ncommit_interval = 1h\ncommit_interval = 3601s\n", 3,
		    "commit_interval: 3601s is out of range (1ms to 1h)" },
		{ "[server]\nmax_connections = 12abc\n", 2,
		    "max_connections: \"12abc\" is not a number" },
		{ "[server]\nthreads = 257\n", 2,
		    "threads: 257 is out of range (0 to 256)" },
		{ "[count]\nrate_limit = -1\n", 2,
		    "rate_limit: -1 is out of range (at least 0)" },
		{ "[count]\nmax_pages = 0\n", 2,
		    "max_pages: 0 is out of range (at least 1)" },
		{ "[count]\nrate_limit = 99999999999999999999999\n", 2,
		    "rate_limit: 99999999999999999999999 is out of range "
		    "(at least 0)" },
		{ "[count]\nrate_limit = +5\n", 2,
		    "rate_limit: \"+5\" is not a number" },
		{ "[count]\nrate_limit =\n", 2,
		    "rate_limit: \"\" is not a number" },
		{ "[count]\ncount_max_age = 1500ms\n", 2,
		    "count_max_age: 1500ms is not a whole number of seconds" },
		{ "[count]\n# zone\ntimezone = Mars/Olympus_Mons\n", 3,
		    "timezone: unknown time zone \"Mars/Olympus_Mons\"" },
		{ "[count]\ntimezone = ../../etc/passwd\n", 2,
		    "timezone: unknown time zone \"../../etc/passwd\"" },
		{ "[count]\ndnt = maybe\n", 2,
		    "dnt: \"maybe\" is not views-only or ignore" },
		{ "[store]\ndurability = fast\n", 2,
		    "durability: \"fast\" is not batch or strict" },
		{ "[store]\ndata =\n", 2, "data: empty value" },
		{ "[server]\naccess_log = maybe\n", 2,
		    "access_log: \"maybe\" is not yes or no" },
		{ "[server]\nlog_level = loud\n", 2,
		    "log_level: \"loud\" is not one of error, warn, info, debug" },
		{ "[server]\nclient_ip_header = X-Client\n", 2,
		    "client_ip_header: \"X-Client\" is not one of "
		    "X-Forwarded-For, Forwarded, X-Real-IP, CF-Connecting-IP" },
		{ "[server]\nlisten = 127.0.0.1\n", 2,
		    "listen: \"127.0.0.1\" is not an address and port "
		    "(like 127.0.0.1:8080, [::1]:8080 or :8080)" },
		{ "[server]\ntrusted_proxies = 10.0.0.0/8, 10.0.0.0/33\n", 2,
		    "trusted_proxies: \"10.0.0.0/33\" is not an address or "
		    "network (like 192.0.2.0/24 or 2001:db8::/32)" },
		{ "[server]\nadmin_allow = localhost\n", 2,
		    "admin_allow: \"localhost\" is not an address or "
		    "network (like 192.0.2.0/24 or 2001:db8::/32)" },
		{ "[site Blog]\norigins = https://a.example\n", 1,
		    "invalid site name \"Blog\" (a-z, 0-9, '.' and '-', at "
		    "most 63, starting with a letter or digit)" },
		{ "\n[site -x]\n", 2,
		    "invalid site name \"-x\" (a-z, 0-9, '.' and '-', at "
		    "most 63, starting with a letter or digit)" },
		{ "[site]\n", 1,
		    "section [site] needs a site name, like [site blog]" },
		{ "[site a]\norigins = https://a.example/blog\n", 2,
		    "origins: \"https://a.example/blog\" is not an origin "
		    "(like https://www.example.org): an origin has no path" },
		{ "[site a]\norigins = ftp://a.example\n", 2,
		    "origins: \"ftp://a.example\" is not an origin "
		    "(like https://www.example.org): it must start with "
		    "http:// or https://" },
		{ "[site a]\norigins = a.example\n", 2,
		    "origins: \"a.example\" is not an origin "
		    "(like https://www.example.org): it must start with "
		    "http:// or https://" },
		{ "[site a]\norigins = https://a.example:99999\n", 2,
		    "origins: \"https://a.example:99999\" is not an origin "
		    "(like https://www.example.org): bad port" },
		{ "[site a]\norigins = https://a..example\n", 2,
		    "origins: \"https://a..example\" is not an origin "
		    "(like https://www.example.org): empty label in the host "
		    "name" },
		{ "[site a]\norigins = https://a.example?x=1\n", 2,
		    "origins: \"https://a.example?x=1\" is not an origin "
		    "(like https://www.example.org): an origin has no query" },
		{ "[site a]\norigins = https://u@a.example\n", 2,
		    "origins: \"https://u@a.example\" is not an origin "
		    "(like https://www.example.org): an origin has no user "
		    "name" },
		{ "[site a]\norigins = https://u:pw@a.example\n", 2,
		    "origins: \"https://u:pw@a.example\" is not an origin "
		    "(like https://www.example.org): an origin has no user "
		    "name" },
		{ "[site a]\norigins = https://a.example#top\n", 2,
		    "origins: \"https://a.example#top\" is not an origin "
		    "(like https://www.example.org): an origin has no "
		    "fragment" },
		{ "[site a]\norigins = https://a.example:80x\n", 2,
		    "origins: \"https://a.example:80x\" is not an origin "
		    "(like https://www.example.org): bad port" },
		{ "[site a]\norigins = http://[::1\n", 2,
		    "origins: \"http://[::1\" is not an origin "
		    "(like https://www.example.org): the IPv6 address lacks "
		    "its \"]\"" },
		{ "[site a]\norigins = https://bü.example\n", 2,
		    "origins: \"https://bü.example\" is not an origin "
		    "(like https://www.example.org): write an international "
		    "host name in its xn-- form" },
		{ "[site a]\norigins = https://a.example\n[site b]\n"
		    "origins = https://A.example:443\n", 4,
		    "origins: https://a.example is already an origin of "
		    "[site a]" },
		{ "[site a]\nlabels = today:"
		    "12345678901234567890123456789012345678901234567890"
		    "123456789012345\n", 2,
		    "labels: the today label is longer than 64 characters" },
		{ "[server]\nthreads = 2\njust some words\n", 3,
		    "syntax error: expected \"key = value\" or \"[section]\"" },
		{ "[server\nthreads = 2\n", 1,
		    "syntax error: the section header lacks its \"]\"" },
		{ "[server] x\n", 1,
		    "syntax error: text after the section header" },
		/* A continued value is checked on its own line. */
		{ "[server]\nlisten = :80,\n  :81,\n  nope\n", 4,
		    "listen: \"nope\" is not an address and port "
		    "(like 127.0.0.1:8080, [::1]:8080 or :8080)" },
	};
	struct config	 cfg;
	char		 path[512], err[2048], want[2048];
	size_t		 i;

	for (i = 0; i < nitems(tests); i++) {
		write_ini(tests[i].ini, path, sizeof(path));
		config_init(&cfg);
		err[0] = '\0';
		CHECK_INT(config_load(&cfg, path, err, sizeof(err)), -1);
		snprintf(want, sizeof(want), "%s:%d: %s", path, tests[i].line,
		    tests[i].msg);
		CHECK_STR(err, want);
		config_free(&cfg);
		unlink(path);
	}
}

/* A bad file is read to its end: every error, each on its own line. */
static void
test_many_errors(void)
{
	static const char ini[] =
	    "[server]\n"
	    "oops\n"				/* 2 */
	    "threads = x\n"			/* 3 */
	    "threads = 2\n"
	    "[nowhere]\n"			/* 5 */
	    "key = 1\n"			/* under a bad header: skipped */
	    "  continued\n"
	    "[count]\n"
	    "rate_limit = lots\n"		/* 9 */
	    "rate_limit_address = -1\n"		/* 10 */
	    "new_visitors_per_address = 0\n"
	    "[site a]\n"
	    "labels = oops\n";		/* 13 */
	struct config	 cfg;
	char		 path[512], err[4096], want[4096], small[80];
	int		 n;

	write_ini(ini, path, sizeof(path));
	config_init(&cfg);
	CHECK_INT(config_load(&cfg, path, err, sizeof(err)), -1);
	n = snprintf(want, sizeof(want),
	    "%s:2: syntax error: expected \"key = value\" or \"[section]\"\n"
	    "%s:3: threads: \"x\" is not a number\n"
	    "%s:5: unknown section [nowhere]\n"
	    "%s:9: rate_limit: \"lots\" is not a number\n"
	    "%s:10: rate_limit_address: -1 is out of range (at least 0)\n"
	    "%s:13: labels: \"oops\" lacks a \":\" (like today:Today)",
	    path, path, path, path, path, path);
	CHECK(n > 0 && (size_t)n < sizeof(want));
	CHECK_STR(err, want);
	/* The good keys around the bad ones were read. */
	CHECK_INT(cfg.threads, 2);
	CHECK_INT(cfg.new_visitors_per_address, 0);
	config_free(&cfg);

	/* A short buffer holds the lines that fit whole. */
	config_init(&cfg);
	CHECK_INT(config_load(&cfg, path, small, sizeof(small)), -1);
	CHECK(strchr(small, '\n') == NULL);
	CHECK(strncmp(small, path, strlen(path)) == 0);
	config_free(&cfg);
	unlink(path);
}

/* The keys added for the per-address limits, and the table's lookups. */
static void
test_address_limits(void)
{
	const struct config_key	*k;
	struct config		 a, b;
	char			 err[512];

	CHECK_INT(load_text(&a, "[server]\nmax_connections_per_address = 0\n"
	    "[count]\nrate_limit_address = 7\n"
	    "new_visitors_per_address = 9\n", err, sizeof(err)), 0);
	CHECK_INT(a.max_connections_per_address, 0);
	CHECK_INT(a.rate_limit_address, 7);
	CHECK_INT(a.new_visitors_per_address, 9);

	config_init(&b);
	k = config_key_find("server", "max_connections_per_address");
	CHECK(k != NULL);
	if (k != NULL) {
		CHECK(config_key_changed(k, &a, &b));
		/* Its accounting is made for the listeners at start. */
		CHECK(k->flags & CONFIG_RESTART);
		CHECK_INT(config_set_key(&b, k, " 0 ", err, sizeof(err)), 0);
		CHECK(!config_key_changed(k, &a, &b));
		/* A flag's message names no key: the flag is named. */
		CHECK_INT(config_set_key(&b, k, "lots", err, sizeof(err)), -1);
		CHECK_STR(err, "\"lots\" is not a number");
	}
	CHECK(config_key_find("count", "max_connections_per_address") ==
	    NULL);
	k = config_key_find("server", "listen");
	CHECK(k != NULL && (k->flags & CONFIG_RESTART) &&
	    (k->flags & CONFIG_LIST));
	if (k != NULL) {
		CHECK(config_key_changed(k, &a, &b) == false);
		CHECK_INT(config_set_key(&b, k, "[::1]:80", err,
		    sizeof(err)), 0);
		CHECK(config_key_changed(k, &a, &b));
	}
	config_free(&a);
	config_free(&b);
}

static void
test_long_lines(void)
{
	char		 ini[2048], err[2048];
	struct config	 cfg;
	size_t		 len;

	/* Long lines are read whole, comments and values alike. */
	strcpy(ini, "[server]\n;");
	len = strlen(ini);
	memset(ini + len, 'x', 1000);
	strcpy(ini + len + 1000, "\nthreads = 3\nlisten = ");
	len = strlen(ini);
	memset(ini + len, ' ', 600);
	strcpy(ini + len + 600, ":80\n");
	CHECK_INT(load_text(&cfg, ini, err, sizeof(err)), 0);
	CHECK_STR(err, "");
	CHECK_INT(cfg.threads, 3);
	CHECK_INT(cfg.nlisten, 1);
	if (cfg.nlisten == 1)
		CHECK_STR(cfg.listen[0], ":80");
	config_free(&cfg);

	/* A long section header is read whole: the site name is 63
	 * characters, more than some INI readers keep of a section name. */
	strcpy(ini, "[site "
	    "abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefgh"
	    "]\nmax_pages = 7\n");
	CHECK_INT(load_text(&cfg, ini, err, sizeof(err)), 0);
	CHECK_INT(cfg.nsites, 1);
	if (cfg.nsites == 1) {
		CHECK_INT(strlen(cfg.sites[0].name), 63);
		CHECK_INT(cfg.sites[0].max_pages, 7);
	}
	config_free(&cfg);
}

/* What the reader understands besides key = value. */
static void
test_syntax(void)
{
	static const char ini[] =
	    "\xef\xbb\xbf# a byte order mark, then comments\n"
	    "; another comment\n"
	    "  [ server ]  ; section comment\n"
	    "threads: 5\n"
	    "max_connections = 7 ; inline comment\n"
	    "Idle_Timeout = 1h\n"
	    "[SITE a]\n"
	    "origins = https://a.example,\n"
	    "          https://b.example\n";
	struct config			 cfg;
	const struct site_config	*a;
	char				 err[512];

	CHECK_INT(load_text(&cfg, ini, err, sizeof(err)), 0);
	CHECK_STR(err, "");
	CHECK_INT(cfg.threads, 5);
	CHECK_INT(cfg.max_connections, 7);
	CHECK_INT(cfg.idle_timeout_ms, 3600000);
	a = config_site(&cfg, "a");
	CHECK(a != NULL);
	if (a != NULL && a->norigins == 2) {
		CHECK_STR(a->origins[0], "https://a.example");
		CHECK_STR(a->origins[1], "https://b.example");
	} else
		CHECK(0);
	config_free(&cfg);

	/* An empty file is the defaults. */
	CHECK_INT(load_text(&cfg, "", err, sizeof(err)), 0);
	CHECK_INT(cfg.nadmin_allow, 2);
	CHECK_INT(cfg.nsites, 0);
	config_free(&cfg);
}

static void
test_durations(void)
{
	static const struct {
		const char	*s;
		int		 ok;
		long		 ms;
	} tests[] = {
		{ "100ms", 1, 100 },
		{ "0ms", 1, 0 },
		{ "30s", 1, 30000 },
		{ "5m", 1, 300000 },
		{ "1h", 1, 3600000 },
		{ "2d", 1, 172800000 },
		{ "30", 1, 30000 },
		{ "0", 1, 0 },
		{ "007s", 1, 7000 },
		{ "", 0, 0 },
		{ "s", 0, 0 },
		{ "ms", 0, 0 },
		{ "-5s", 0, 0 },
		{ "+5s", 0, 0 },
		{ " 5s", 0, 0 },
		{ "5s ", 0, 0 },
		{ "5 s", 0, 0 },
		{ "1.5s", 0, 0 },
		{ "5S", 0, 0 },
		{ "5sec", 0, 0 },
		{ "1h30m", 0, 0 },
		{ "5x", 0, 0 },
		{ "abc", 0, 0 },
		{ "99999999999999999999", 0, 0 },
		{ "99999999999999999999ms", 0, 0 },
	};
	char	 buf[64];
	size_t	 i;
	long	 ms;
	int	 rc;

	/* The edge of overflow, whatever the size of long. */
	snprintf(buf, sizeof(buf), "%ldms", LONG_MAX);
	CHECK_INT(parse_duration_ms(buf, &ms), 0);
	CHECK(ms == LONG_MAX);
	snprintf(buf, sizeof(buf), "%lds", LONG_MAX / 1000);
	CHECK_INT(parse_duration_ms(buf, &ms), 0);
	CHECK(ms == LONG_MAX / 1000 * 1000);
	snprintf(buf, sizeof(buf), "%lds", LONG_MAX / 1000 + 1);
	CHECK_INT(parse_duration_ms(buf, &ms), -1);
	snprintf(buf, sizeof(buf), "%ldd", LONG_MAX / 86400000 + 1);
	CHECK_INT(parse_duration_ms(buf, &ms), -1);

	for (i = 0; i < nitems(tests); i++) {
		ms = -42;
		rc = parse_duration_ms(tests[i].s, &ms);
		if (tests[i].ok) {
			CHECK_INT(rc, 0);
			CHECK_INT(ms, tests[i].ms);
		} else {
			if (rc != -1)
				fprintf(stderr, "accepted \"%s\"\n",
				    tests[i].s);
			CHECK_INT(rc, -1);
			CHECK_INT(ms, -42);
		}
	}
}

static void
test_site_names(void)
{
	static const struct {
		const char	*name;
		bool		 ok;
	} tests[] = {
		{ "default", true },
		{ "a", true },
		{ "0", true },
		{ "blog.example.org", true },
		{ "my-site", true },
		{ "abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefgh",
		    true },
		{ "abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefghi",
		    false },
		{ "", false },
		{ "-a", false },
		{ ".a", false },
		{ "Blog", false },
		{ "a_b", false },
		{ "a b", false },
		{ "a/b", false },
		{ "bü", false },
	};
	size_t	 i;

	for (i = 0; i < nitems(tests); i++) {
		if (site_name_valid(tests[i].name) != tests[i].ok)
			fprintf(stderr, "site name \"%s\"\n", tests[i].name);
		CHECK_INT(site_name_valid(tests[i].name), tests[i].ok);
	}
	CHECK(!site_name_valid(NULL));
}

/* Flags replace what the file said through config_clear. */
static void
test_clear(void)
{
	static const char ini[] =
	    "[server]\n"
	    "listen = :80, :81\n"
	    "trusted_proxies = 10.0.0.1\n"
	    "admin_allow = 10.0.0.2\n"
	    "admin_allow = 10.0.0.3\n"
	    "[count]\n"
	    "bots = x, y\n";
	struct config	 cfg;
	char		 err[512];

	CHECK_INT(load_text(&cfg, ini, err, sizeof(err)), 0);
	CHECK_INT(cfg.nlisten, 2);
	CHECK_INT(cfg.ntrusted_proxies, 1);
	CHECK_INT(cfg.nadmin_allow, 2);
	CHECK_INT(cfg.nbots, 2);

	config_clear(&cfg, "listen");
	config_clear(&cfg, "trusted_proxies");
	config_clear(&cfg, "admin_allow");
	config_clear(&cfg, "bots");
	config_clear(&cfg, "no_such_key");
	CHECK_INT(cfg.nlisten, 0);
	CHECK(cfg.listen == NULL);
	CHECK_INT(cfg.ntrusted_proxies, 0);
	CHECK_INT(cfg.nadmin_allow, 0);
	CHECK_INT(cfg.nbots, 0);
	CHECK_INT(cfg.threads, 0);

	CHECK_INT(config_set(&cfg, "server", "listen", "[::]:8080", err,
	    sizeof(err)), 0);
	CHECK_INT(config_set(&cfg, "server", "admin_allow", "::1", err,
	    sizeof(err)), 0);
	CHECK_INT(config_finish(&cfg, err, sizeof(err)), 0);
	CHECK_INT(cfg.nlisten, 1);
	if (cfg.nlisten == 1)
		CHECK_STR(cfg.listen[0], "[::]:8080");
	CHECK_INT(cfg.nadmin_allow, 1);
	if (cfg.nadmin_allow == 1)
		CHECK_INT(cfg.admin_allow[0].family, AF_INET6);
	config_free(&cfg);

	/* An empty admin_allow in the file lets nobody in. */
	CHECK_INT(load_text(&cfg, "[server]\nadmin_allow =\n", err,
	    sizeof(err)), 0);
	CHECK_INT(config_finish(&cfg, err, sizeof(err)), 0);
	CHECK_INT(cfg.nadmin_allow, 0);
	config_free(&cfg);
}

/* config_set alone, as the flags use it: the message has no place. */
static void
test_set(void)
{
	struct config	 cfg;
	char		 err[512];

	config_init(&cfg);
	CHECK_INT(config_set(&cfg, "server", "threads", "x", err,
	    sizeof(err)), -1);
	CHECK_STR(err, "threads: \"x\" is not a number");
	CHECK_INT(config_set(&cfg, "nope", "threads", "1", err,
	    sizeof(err)), -1);
	CHECK_STR(err, "unknown section [nope]");
	CHECK_INT(config_set(&cfg, "store", "data", " ./d ", err,
	    sizeof(err)), 0);
	CHECK_STR(cfg.data, "./d");
	CHECK_INT(config_set(&cfg, "site b", "origins", "https://b.example",
	    err, sizeof(err)), 0);
	CHECK(config_site(&cfg, "b") != NULL);
	/* A short err buffer is cut, not overrun. */
	CHECK_INT(config_set(&cfg, "server", "threads", "x", err, 8), -1);
	CHECK_STR(err, "threads");
	config_free(&cfg);
}

/* share: a token of 16 to 128 URL-safe letters, or empty for none, never
 * quoted back in an error; public: a boolean. */
static void
test_share_and_public(void)
{
	static const char *const bad[] = {
		"fifteen-letters", "has a space in the middle", "a+b/c=d0123456789",
		"ünicode-0123456789",
	};
	struct config	 cfg;
	const struct site_config *s;
	char		 err[512], tok[TOKEN_MAX + 2];
	size_t		 i;

	CHECK_INT(load_text(&cfg, "[site a]\nshare = abcdefghijklmnop\n"
	    "public = yes\n[site b]\nshare =\n", err, sizeof(err)), 0);
	CHECK((s = config_site(&cfg, "a")) != NULL);
	CHECK_STR(s->share, "abcdefghijklmnop");
	CHECK(s->public);
	CHECK((s = config_site(&cfg, "b")) != NULL);
	CHECK(s->share == NULL);
	CHECK(!s->public);
	config_free(&cfg);
	memset(tok, 'x', TOKEN_MAX);
	tok[TOKEN_MAX] = '\0';
	config_init(&cfg);
	CHECK_INT(config_set(&cfg, "site c", "share", tok, err, sizeof(err)), 0);
	tok[TOKEN_MAX] = 'x';
	tok[TOKEN_MAX + 1] = '\0';
	CHECK_INT(config_set(&cfg, "site c", "share", tok, err, sizeof(err)),
	    -1);
	for (i = 0; i < nitems(bad); i++) {
		CHECK_INT(config_set(&cfg, "site c", "share", bad[i], err,
		    sizeof(err)), -1);
		CHECK(strstr(err, bad[i]) == NULL);
	}
	config_free(&cfg);
}

static void
test_cannot_open(void)
{
	struct config	 cfg;
	char		 path[512], err[2048], want[2048];

	snprintf(path, sizeof(path), "%s/tally-no-such-dir/x.ini", tmpdir);
	config_init(&cfg);
	CHECK_INT(config_load(&cfg, path, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: cannot open: %s", path,
	    strerror(ENOENT));
	CHECK_STR(err, want);

	/* A directory opens but does not read. */
	CHECK_INT(config_load(&cfg, tmpdir, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: cannot read: %s", tmpdir,
	    strerror(EISDIR));
	CHECK_STR(err, want);
	config_free(&cfg);
}

int
main(void)
{
	const char	*t;

	if ((t = getenv("TMPDIR")) == NULL || *t == '\0')
		t = "/tmp";
	snprintf(tmpdir, sizeof(tmpdir), "%s", t);

	test_defaults();
	test_every_key();
	test_value_spellings();
	test_listen();
	test_sites();
	test_default_site_explicit();
	test_labels_length();
	test_errors();
	test_many_errors();
	test_address_limits();
	test_long_lines();
	test_syntax();
	test_durations();
	test_site_names();
	test_clear();
	test_set();
	test_share_and_public();
	test_cannot_open();
	return check_done();
}
