/*
 * tallyd's configuration. The embedded defaults come from config_init;
 * the INI file and the command-line flags both go through config_set, so
 * that a key means the same thing wherever it is given.
 *
 * The file is read with libinih, fed through our own line reader: inih
 * tells the handler nothing about line numbers (the distributions build
 * it without INI_HANDLER_LINENO), keeps section names in a 50-byte
 * buffer (too short for "site" and a 63-byte name) and silently splits
 * lines longer than its buffer into two. The reader counts lines, reads
 * section headers itself and refuses lines that inih would split.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "tally/config.h"
#include "tally/day.h"
#include "tally/log.h"
#include "tally/net.h"
#include "tally/render.h"

#define nitems(a)	(sizeof(a) / sizeof((a)[0]))

#define THREADS_MAX		256
#define CONNECTIONS_MAX		1000000L
#define COMMIT_INTERVAL_MIN	1L			/* ms */
#define COMMIT_INTERVAL_MAX	(60L * 60 * 1000)	/* ms */
#define LABEL_MAX		64	/* characters, not bytes */
#define HOST_MAX		253
#define HOSTLABEL_MAX		63
/* "https://" + a host or "[v6]" + ":65535" + NUL */
#define ORIGIN_MAX		(8 + HOST_MAX + 6 + 1)

#define DEFAULT_LISTEN		"127.0.0.1:8080"
#define DEFAULT_DATA		"./tally-data"
#define DEFAULT_IP_HEADER	"X-Forwarded-For"
#define DEFAULT_LABEL_TODAY	"Today"
#define DEFAULT_LABEL_TOTAL	"Total"
#define DEFAULT_LABEL_PAGE	"Views"

static const char *const default_admin_allow[] = { "127.0.0.0/8", "::1" };

/* Spelled as the header is usually written; matched case-insensitively. */
static const char *const ip_headers[] = {
	"X-Forwarded-For", "Forwarded", "X-Real-IP", "CF-Connecting-IP",
};

enum section { SECTION_SERVER, SECTION_STORE, SECTION_COUNT, SECTION_SITE };

/*
 * Allocation failure is fatal, as everywhere in tally: a daemon that
 * cannot get a few bytes for its configuration cannot do anything else.
 */
static char *
xstrdup(const char *s)
{
	char	*p;

	if ((p = strdup(s)) == NULL)
		fatal("strdup");
	return p;
}

static void *
xreallocarray(void *p, size_t n, size_t size)
{
	if ((p = reallocarray(p, n, size)) == NULL)
		fatal("reallocarray");
	return p;
}

static void
replace_str(char **dst, const char *s)
{
	char	*p;

	p = s != NULL ? xstrdup(s) : NULL;
	free(*dst);
	*dst = p;
}

static void
strv_add(char ***v, size_t *n, const char *s)
{
	*v = xreallocarray(*v, *n + 1, sizeof(**v));
	(*v)[(*n)++] = xstrdup(s);
}

static bool
strv_has(char *const *v, size_t n, const char *s)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

static void
strv_free(char ***v, size_t *n)
{
	size_t	 i;

	for (i = 0; i < *n; i++)
		free((*v)[i]);
	free(*v);
	*v = NULL;
	*n = 0;
}

/* Trims s in place. */
static char *
trim(char *s)
{
	char	*e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		e--;
	*e = '\0';
	return s;
}

/*
 * Splits a comma-separated value into trimmed items. Empty items are
 * skipped, so that a list continued on the next line may end in a comma
 * and an empty value is an empty list.
 */
static void
split_list(const char *value, char ***items, size_t *nitems)
{
	char	*copy, *rest, *item;

	*items = NULL;
	*nitems = 0;
	rest = copy = xstrdup(value);
	while ((item = strsep(&rest, ",")) != NULL) {
		item = trim(item);
		if (*item != '\0')
			strv_add(items, nitems, item);
	}
	free(copy);
}

/*
 * Strict decimal: digits only, so "12abc", "+3", " 4" and "0x10" are not
 * numbers. A leading '-' is let through to strtol so that "-1" gets the
 * range message, which says what is allowed.
 */
static int
parse_long(const char *key, const char *s, long min, long max, long *out,
    char *err, size_t errlen)
{
	const char	*p = s;
	long		 v;

	if (*p == '-')
		p++;
	if (*p == '\0')
		goto bad;
	for (; *p != '\0'; p++)
		if (!isdigit((unsigned char)*p))
			goto bad;

	errno = 0;
	v = strtol(s, NULL, 10);
	if (errno == ERANGE || v < min || v > max) {
		if (max == LONG_MAX)
			snprintf(err, errlen, "%s: %s is out of range "
			    "(at least %ld)", key, s, min);
		else
			snprintf(err, errlen, "%s: %s is out of range "
			    "(%ld to %ld)", key, s, min, max);
		return -1;
	}
	*out = v;
	return 0;
bad:
	snprintf(err, errlen, "%s: \"%s\" is not an integer", key, s);
	return -1;
}

int
parse_duration_ms(const char *s, long *ms)
{
	/* Longest unit first: "ms" must not be read as "m" and junk. */
	static const struct {
		const char	*suffix;
		long		 ms;
	} units[] = {
		{ "ms", 1 },
		{ "s", 1000 },
		{ "m", 60L * 1000 },
		{ "h", 60L * 60 * 1000 },
		{ "d", 24L * 60 * 60 * 1000 },
		{ "", 1000 },		/* a bare number is seconds */
	};
	const char	*p;
	long		 n = 0;
	int		 d;
	size_t		 i;

	if (s == NULL || !isdigit((unsigned char)*s))
		return -1;
	for (p = s; isdigit((unsigned char)*p); p++) {
		d = *p - '0';
		if (n > (LONG_MAX - d) / 10)
			return -1;
		n = n * 10 + d;
	}
	for (i = 0; i < nitems(units); i++) {
		if (strcmp(p, units[i].suffix) != 0)
			continue;
		if (n > LONG_MAX / units[i].ms)
			return -1;
		*ms = n * units[i].ms;
		return 0;
	}
	return -1;
}

/* range says what is allowed, for the message. */
static int
parse_duration(const char *key, const char *s, long min, long max,
    const char *range, long *ms, char *err, size_t errlen)
{
	long	 v;

	if (parse_duration_ms(s, &v) == -1) {
		snprintf(err, errlen, "%s: \"%s\" is not a duration "
		    "(like 100ms, 30s, 5m, 1h, 2d)", key, s);
		return -1;
	}
	if (v < min || v > max) {
		snprintf(err, errlen, "%s: %s is out of range (%s)", key, s,
		    range);
		return -1;
	}
	*ms = v;
	return 0;
}

static int
parse_bool(const char *key, const char *s, bool *out, char *err,
    size_t errlen)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	size_t	 i;

	for (i = 0; i < nitems(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	snprintf(err, errlen, "%s: \"%s\" is not yes or no", key, s);
	return -1;
}

/*
 * Counts the characters of a UTF-8 string. Returns -1 when it is not
 * valid UTF-8 (overlong forms, surrogates and code points past U+10FFFF
 * included) and -2 when it holds a control character, which has no
 * business in a label.
 */
static long
utf8_chars(const char *s)
{
	const unsigned char	*p = (const unsigned char *)s;
	uint32_t		 c;
	long			 n = 0;
	int			 i, len;

	while (*p != '\0') {
		if (*p < 0x80) {
			c = *p;
			len = 1;
		} else if ((*p & 0xe0) == 0xc0) {
			c = *p & 0x1f;
			len = 2;
		} else if ((*p & 0xf0) == 0xe0) {
			c = *p & 0x0f;
			len = 3;
		} else if ((*p & 0xf8) == 0xf0) {
			c = *p & 0x07;
			len = 4;
		} else
			return -1;
		/* A NUL fails this test, so the loop never reads past it. */
		for (i = 1; i < len; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return -1;
			c = c << 6 | (p[i] & 0x3f);
		}
		if ((len == 2 && c < 0x80) || (len == 3 && c < 0x800) ||
		    (len == 4 && c < 0x10000) || c > 0x10ffff ||
		    (c >= 0xd800 && c <= 0xdfff))
			return -1;
		if (c < 0x20 || (c >= 0x7f && c < 0xa0))
			return -2;
		p += len;
		n++;
	}
	return n;
}

/* ASCII only: isalnum() and islower() would follow the locale. */
static bool
is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool
is_alnum(char c)
{
	return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

bool
site_name_valid(const char *name)
{
	size_t	 i;

	if (name == NULL)
		return false;
	for (i = 0; name[i] != '\0'; i++)
		if (!is_lower_alnum(name[i]) &&
		    (i == 0 || (name[i] != '.' && name[i] != '-')))
			return false;
	return i >= 1 && i <= SITE_NAME_MAX;
}

/*
 * Writes origin the way browsers send it in the Origin header: scheme
 * and host lowercased, IPv6 addresses in their canonical form, no
 * default port, no path (a lone trailing "/" is forgiven: that is how
 * addresses get pasted). Returns NULL, or what is wrong with it.
 */
static const char *
origin_normalize(const char *in, char *out, size_t outsz)
{
	char		 host[HOST_MAX + 1], v6[INET6_ADDRSTRLEN];
	struct in6_addr	 a6;
	const char	*p, *end, *scheme;
	size_t		 hlen, label;
	long		 port = 0, defport;
	int		 w;

	if (strncasecmp(in, "https://", 8) == 0) {
		scheme = "https";
		defport = 443;
		p = in + 8;
	} else if (strncasecmp(in, "http://", 7) == 0) {
		scheme = "http";
		defport = 80;
		p = in + 7;
	} else
		return "it must start with http:// or https://";
	/* Caught first: "user:pw@host" would look like a bad port. */
	if (memchr(p, '@', strcspn(p, "/?#")) != NULL)
		return "an origin has no user name";

	if (*p == '[') {
		if ((end = strchr(p, ']')) == NULL)
			return "the IPv6 address lacks its \"]\"";
		hlen = (size_t)(end - p - 1);
		if (hlen >= sizeof(v6))
			return "bad IPv6 address";
		memcpy(v6, p + 1, hlen);
		v6[hlen] = '\0';
		if (inet_pton(AF_INET6, v6, &a6) != 1 ||
		    inet_ntop(AF_INET6, &a6, v6, sizeof(v6)) == NULL)
			return "bad IPv6 address";
		snprintf(host, sizeof(host), "[%s]", v6);
		p = end + 1;
	} else {
		hlen = label = 0;
		for (; is_alnum(*p) || *p == '-' || *p == '.'; p++) {
			if (*p == '.') {
				if (label == 0)
					return "empty label in the host name";
				label = 0;
			} else if (++label > HOSTLABEL_MAX)
				return "the host name has a label over 63 "
				    "characters";
			if (hlen == HOST_MAX)
				return "the host name is too long";
			host[hlen++] = (char)tolower((unsigned char)*p);
		}
		host[hlen] = '\0';
		if (hlen == 0)
			return "it has no host";
		if (label == 0)
			return "empty label in the host name";
	}

	if (*p == ':') {
		for (p++; isdigit((unsigned char)*p); p++)
			if (port <= 65535)	/* no overflow, still too big */
				port = port * 10 + (*p - '0');
		if (port < 1 || port > 65535 || (*p != '\0' && *p != '/'))
			return "bad port";
		if (port == defport)
			port = 0;
	}
	if (p[0] == '/' && p[1] == '\0')
		p++;
	switch (*p) {
	case '\0':
		break;
	case '/':
		return "an origin has no path";
	case '?':
		return "an origin has no query";
	case '#':
		return "an origin has no fragment";
	default:
		if ((unsigned char)*p >= 0x80)
			return "write an international host name in its "
			    "xn-- form";
		return "bad character in the host name";
	}

	if (port != 0)
		w = snprintf(out, outsz, "%s://%s:%ld", scheme, host, port);
	else
		w = snprintf(out, outsz, "%s://%s", scheme, host);
	if (w < 0 || (size_t)w >= outsz)
		return "too long";
	return NULL;
}

static void
site_free(struct site_config *s)
{
	strv_free(&s->origins, &s->norigins);
	free(s->label_today);
	free(s->label_total);
	free(s->label_page);
	free(s->locale);
}

/* name must be valid: it is copied into the fixed-size field. */
static struct site_config *
site_add(struct config *cfg, const char *name)
{
	struct site_config	*s;

	cfg->sites = xreallocarray(cfg->sites, cfg->nsites + 1,
	    sizeof(*cfg->sites));
	s = &cfg->sites[cfg->nsites++];
	memset(s, 0, sizeof(*s));
	memcpy(s->name, name, strlen(name) + 1);
	s->label_today = xstrdup(DEFAULT_LABEL_TODAY);
	s->label_total = xstrdup(DEFAULT_LABEL_TOTAL);
	s->label_page = xstrdup(DEFAULT_LABEL_PAGE);
	return s;
}

static struct site_config *
site_find(const struct config *cfg, const char *name)
{
	size_t	 i;

	if (name == NULL)
		return NULL;
	for (i = 0; i < cfg->nsites; i++)
		if (strcmp(cfg->sites[i].name, name) == 0)
			return &cfg->sites[i];
	return NULL;
}

/*
 * Finds what section names: "server", "store", "count" or "site NAME",
 * whose site is made when it does not exist yet (the same site given
 * twice is one site).
 */
static int
section_lookup(struct config *cfg, const char *section,
    struct site_config **site, char *err, size_t errlen)
{
	const char	*name;

	*site = NULL;
	if (section == NULL || section[0] == '\0') {
		snprintf(err, errlen, "key outside of any section");
		return -1;
	}
	if (strcasecmp(section, "server") == 0)
		return SECTION_SERVER;
	if (strcasecmp(section, "store") == 0)
		return SECTION_STORE;
	if (strcasecmp(section, "count") == 0)
		return SECTION_COUNT;
	if (strncasecmp(section, "site", 4) == 0 &&
	    (section[4] == '\0' || isblank((unsigned char)section[4]))) {
		name = section + 4;
		while (isblank((unsigned char)*name))
			name++;
		if (*name == '\0') {
			snprintf(err, errlen, "section [%s] needs a site name, "
			    "like [site blog]", section);
			return -1;
		}
		if (!site_name_valid(name)) {
			snprintf(err, errlen, "invalid site name \"%s\" "
			    "(a-z, 0-9, '.' and '-', at most %d, starting "
			    "with a letter or digit)", name, SITE_NAME_MAX);
			return -1;
		}
		if ((*site = site_find(cfg, name)) == NULL)
			*site = site_add(cfg, name);
		return SECTION_SITE;
	}
	snprintf(err, errlen, "unknown section [%s]", section);
	return -1;
}

static int
add_listen(struct config *cfg, const char *value, char *err, size_t errlen)
{
	char	**items, host[256], port[16];
	size_t	  nitems, i;
	int	  rc = -1;

	split_list(value, &items, &nitems);
	for (i = 0; i < nitems; i++) {
		if (listen_parse(items[i], host, sizeof(host), port,
		    sizeof(port)) == -1) {
			snprintf(err, errlen, "listen: \"%s\" is not an address "
			    "and port (like 127.0.0.1:8080, [::1]:8080 or :8080)",
			    items[i]);
			goto out;
		}
	}
	for (i = 0; i < nitems; i++)
		strv_add(&cfg->listen, &cfg->nlisten, items[i]);
	rc = 0;
out:
	strv_free(&items, &nitems);
	return rc;
}

static int
add_cidrs(const char *key, struct cidr **list, size_t *n, const char *value,
    char *err, size_t errlen)
{
	char		**items;
	size_t		  nitems, i;
	struct cidr	 *c;
	int		  rc = -1;

	split_list(value, &items, &nitems);
	/* Parsed into new room first: a bad item leaves the list as it was. */
	c = xreallocarray(*list, *n + nitems + 1, sizeof(**list));
	*list = c;
	for (i = 0; i < nitems; i++) {
		if (cidr_parse(items[i], &c[*n + i]) == -1) {
			snprintf(err, errlen, "%s: \"%s\" is not an address or "
			    "network (like 192.0.2.0/24 or 2001:db8::/32)", key,
			    items[i]);
			goto out;
		}
	}
	*n += nitems;
	rc = 0;
out:
	strv_free(&items, &nitems);
	return rc;
}

static int
set_ip_header(struct config *cfg, const char *value, char *err, size_t errlen)
{
	size_t	 i;

	for (i = 0; i < nitems(ip_headers); i++) {
		if (strcasecmp(value, ip_headers[i]) == 0) {
			replace_str(&cfg->client_ip_header, ip_headers[i]);
			return 0;
		}
	}
	snprintf(err, errlen, "client_ip_header: \"%s\" is not one of "
	    "X-Forwarded-For, Forwarded, X-Real-IP, CF-Connecting-IP", value);
	return -1;
}

static int
set_log_level(struct config *cfg, const char *value, char *err, size_t errlen)
{
	static const struct {
		const char	*name;
		int		 level;
	} levels[] = {
		{ "error", LOG_LEVEL_ERR },
		{ "warn", LOG_LEVEL_WARN },
		{ "info", LOG_LEVEL_INFO },
		{ "debug", LOG_LEVEL_DEBUG },
	};
	size_t	 i;

	for (i = 0; i < nitems(levels); i++) {
		if (strcasecmp(value, levels[i].name) == 0) {
			cfg->log_level = levels[i].level;
			return 0;
		}
	}
	snprintf(err, errlen, "log_level: \"%s\" is not one of error, warn, "
	    "info, debug", value);
	return -1;
}

static int
set_server(struct config *cfg, const char *key, const char *value, char *err,
    size_t errlen)
{
	long	 v;

	if (strcasecmp(key, "listen") == 0)
		return add_listen(cfg, value, err, errlen);
	if (strcasecmp(key, "threads") == 0) {
		if (parse_long("threads", value, 0, THREADS_MAX, &v, err,
		    errlen) == -1)
			return -1;
		cfg->threads = (int)v;
		return 0;
	}
	if (strcasecmp(key, "trusted_proxies") == 0)
		return add_cidrs("trusted_proxies", &cfg->trusted_proxies,
		    &cfg->ntrusted_proxies, value, err, errlen);
	if (strcasecmp(key, "client_ip_header") == 0)
		return set_ip_header(cfg, value, err, errlen);
	if (strcasecmp(key, "admin_allow") == 0)
		return add_cidrs("admin_allow", &cfg->admin_allow,
		    &cfg->nadmin_allow, value, err, errlen);
	if (strcasecmp(key, "idle_timeout") == 0)
		return parse_duration("idle_timeout", value, 1, LONG_MAX,
		    "at least 1ms", &cfg->idle_timeout_ms, err, errlen);
	if (strcasecmp(key, "max_connections") == 0)
		return parse_long("max_connections", value, 1, CONNECTIONS_MAX,
		    &cfg->max_connections, err, errlen);
	if (strcasecmp(key, "max_connections_per_address") == 0)
		return parse_long("max_connections_per_address", value, 0,
		    CONNECTIONS_MAX, &cfg->max_connections_per_address, err,
		    errlen);
	if (strcasecmp(key, "access_log") == 0)
		return parse_bool("access_log", value, &cfg->access_log, err,
		    errlen);
	if (strcasecmp(key, "log_level") == 0)
		return set_log_level(cfg, value, err, errlen);
	snprintf(err, errlen, "unknown key \"%s\" in [server]", key);
	return -1;
}

static int
set_store(struct config *cfg, const char *key, const char *value, char *err,
    size_t errlen)
{
	if (strcasecmp(key, "data") == 0) {
		if (value[0] == '\0') {
			snprintf(err, errlen, "data: empty directory name");
			return -1;
		}
		replace_str(&cfg->data, value);
		return 0;
	}
	if (strcasecmp(key, "durability") == 0) {
		if (strcasecmp(value, "batch") == 0)
			cfg->durability = DURABILITY_BATCH;
		else if (strcasecmp(value, "strict") == 0)
			cfg->durability = DURABILITY_STRICT;
		else {
			snprintf(err, errlen, "durability: \"%s\" is not batch "
			    "or strict", value);
			return -1;
		}
		return 0;
	}
	if (strcasecmp(key, "commit_interval") == 0)
		return parse_duration("commit_interval", value,
		    COMMIT_INTERVAL_MIN, COMMIT_INTERVAL_MAX, "1ms to 1h",
		    &cfg->commit_interval_ms, err, errlen);
	snprintf(err, errlen, "unknown key \"%s\" in [store]", key);
	return -1;
}

static int
set_count(struct config *cfg, const char *key, const char *value, char *err,
    size_t errlen)
{
	char	**items;
	size_t	  nitems, i;
	long	  ms;

	if (strcasecmp(key, "timezone") == 0) {
		if (!day_timezone_valid(value)) {
			snprintf(err, errlen, "timezone: unknown time zone "
			    "\"%s\"", value);
			return -1;
		}
		/* Empty is the host's zone, as if the key were not given. */
		replace_str(&cfg->timezone, value[0] != '\0' ? value : NULL);
		return 0;
	}
	if (strcasecmp(key, "rate_limit") == 0)
		return parse_long("rate_limit", value, 0, LONG_MAX,
		    &cfg->rate_limit, err, errlen);
	if (strcasecmp(key, "rate_limit_address") == 0)
		return parse_long("rate_limit_address", value, 0, LONG_MAX,
		    &cfg->rate_limit_address, err, errlen);
	if (strcasecmp(key, "new_visitors_per_address") == 0)
		return parse_long("new_visitors_per_address", value, 0,
		    LONG_MAX, &cfg->new_visitors_per_address, err, errlen);
	if (strcasecmp(key, "max_pages") == 0)
		return parse_long("max_pages", value, 1, LONG_MAX,
		    &cfg->max_pages, err, errlen);
	if (strcasecmp(key, "bots") == 0) {
		split_list(value, &items, &nitems);
		for (i = 0; i < nitems; i++)
			if (!strv_has(cfg->bots, cfg->nbots, items[i]))
				strv_add(&cfg->bots, &cfg->nbots, items[i]);
		strv_free(&items, &nitems);
		return 0;
	}
	if (strcasecmp(key, "dnt") == 0) {
		if (strcasecmp(value, "views-only") == 0)
			cfg->dnt = DNT_VIEWS_ONLY;
		else if (strcasecmp(value, "ignore") == 0)
			cfg->dnt = DNT_IGNORE;
		else {
			snprintf(err, errlen, "dnt: \"%s\" is not views-only "
			    "or ignore", value);
			return -1;
		}
		return 0;
	}
	if (strcasecmp(key, "count_max_age") == 0) {
		if (parse_duration("count_max_age", value, 0, LONG_MAX, "",
		    &ms, err, errlen) == -1)
			return -1;
		/* It becomes Cache-Control: max-age, which counts seconds. */
		if (ms % 1000 != 0) {
			snprintf(err, errlen, "count_max_age: %s is not a whole "
			    "number of seconds", value);
			return -1;
		}
		cfg->count_max_age = ms / 1000;
		return 0;
	}
	snprintf(err, errlen, "unknown key \"%s\" in [count]", key);
	return -1;
}

static const struct site_config *
origin_owner(const struct config *cfg, const char *origin)
{
	size_t	 i;

	for (i = 0; i < cfg->nsites; i++)
		if (strv_has(cfg->sites[i].origins, cfg->sites[i].norigins,
		    origin))
			return &cfg->sites[i];
	return NULL;
}

static int
add_origins(struct config *cfg, struct site_config *site, const char *value,
    char *err, size_t errlen)
{
	const struct site_config	*owner;
	char				**items, **norm = NULL, buf[ORIGIN_MAX];
	const char			 *why;
	size_t				  nitems, nnorm = 0, i;
	int				  rc = -1;

	split_list(value, &items, &nitems);
	for (i = 0; i < nitems; i++) {
		if ((why = origin_normalize(items[i], buf, sizeof(buf))) !=
		    NULL) {
			snprintf(err, errlen, "origins: \"%s\" is not an "
			    "origin (like https://www.example.org): %s",
			    items[i], why);
			goto out;
		}
		/* One origin, one site: else which counter would it feed? */
		if ((owner = origin_owner(cfg, buf)) != NULL && owner != site) {
			snprintf(err, errlen, "origins: %s is already an origin "
			    "of [site %s]", buf, owner->name);
			goto out;
		}
		if (!strv_has(site->origins, site->norigins, buf) &&
		    !strv_has(norm, nnorm, buf))
			strv_add(&norm, &nnorm, buf);
	}
	for (i = 0; i < nnorm; i++)
		strv_add(&site->origins, &site->norigins, norm[i]);
	rc = 0;
out:
	strv_free(&norm, &nnorm);
	strv_free(&items, &nitems);
	return rc;
}

/* labels = today:Bu gün, total:Ümumi, page:Giriş */
static int
set_labels(struct site_config *site, const char *value, char *err,
    size_t errlen)
{
	static const char *const names[] = { "today", "total", "page" };
	char	**items, *colon, *name, *text, *newv[nitems(names)];
	size_t	  nitems, i, j;
	long	  n;
	int	  rc = -1;

	memset(newv, 0, sizeof(newv));
	split_list(value, &items, &nitems);
	for (i = 0; i < nitems; i++) {
		if ((colon = strchr(items[i], ':')) == NULL) {
			snprintf(err, errlen, "labels: \"%s\" lacks a \":\" "
			    "(like today:Today)", items[i]);
			goto out;
		}
		*colon = '\0';
		name = trim(items[i]);
		text = trim(colon + 1);
		for (j = 0; j < nitems(names); j++)
			if (strcasecmp(name, names[j]) == 0)
				break;
		if (j == nitems(names)) {
			snprintf(err, errlen, "labels: unknown label \"%s\" "
			    "(today, total or page)", name);
			goto out;
		}
		if ((n = utf8_chars(text)) < 0) {
			snprintf(err, errlen, "labels: the %s label %s",
			    names[j], n == -1 ? "is not valid UTF-8" :
			    "holds a control character");
			goto out;
		}
		if (n > LABEL_MAX) {
			snprintf(err, errlen, "labels: the %s label is longer "
			    "than %d characters", names[j], LABEL_MAX);
			goto out;
		}
		/* A label given twice: the later one, as with keys. */
		replace_str(&newv[j], text);
	}
	if (newv[0] != NULL)
		replace_str(&site->label_today, newv[0]);
	if (newv[1] != NULL)
		replace_str(&site->label_total, newv[1]);
	if (newv[2] != NULL)
		replace_str(&site->label_page, newv[2]);
	rc = 0;
out:
	for (j = 0; j < nitems(names); j++)
		free(newv[j]);
	strv_free(&items, &nitems);
	return rc;
}

static int
set_site(struct config *cfg, struct site_config *site, const char *key,
    const char *value, char *err, size_t errlen)
{
	if (strcasecmp(key, "origins") == 0)
		return add_origins(cfg, site, value, err, errlen);
	if (strcasecmp(key, "labels") == 0)
		return set_labels(site, value, err, errlen);
	if (strcasecmp(key, "max_pages") == 0)
		return parse_long("max_pages", value, 1, LONG_MAX,
		    &site->max_pages, err, errlen);
	if (strcasecmp(key, "locale") == 0) {
		if (!locale_valid(value)) {
			snprintf(err, errlen, "locale: \"%s\" is not a language "
			    "tag such as de or de-CH", value);
			return -1;
		}
		replace_str(&site->locale, value);
		return 0;
	}
	snprintf(err, errlen, "unknown key \"%s\" in [site %s]", key,
	    site->name);
	return -1;
}

int
config_set(struct config *cfg, const char *section, const char *key,
    const char *value, char *err, size_t errlen)
{
	struct site_config	*site;
	char			*v;
	int			 rc;

	/* Flags come here untrimmed; the file's values are trimmed already. */
	v = xstrdup(value != NULL ? value : "");
	switch (section_lookup(cfg, section, &site, err, errlen)) {
	case SECTION_SERVER:
		rc = set_server(cfg, key, trim(v), err, errlen);
		break;
	case SECTION_STORE:
		rc = set_store(cfg, key, trim(v), err, errlen);
		break;
	case SECTION_COUNT:
		rc = set_count(cfg, key, trim(v), err, errlen);
		break;
	case SECTION_SITE:
		rc = set_site(cfg, site, key, trim(v), err, errlen);
		break;
	default:
		rc = -1;
		break;
	}
	free(v);
	return rc;
}

void
config_clear(struct config *cfg, const char *key)
{
	if (strcasecmp(key, "listen") == 0)
		strv_free(&cfg->listen, &cfg->nlisten);
	else if (strcasecmp(key, "trusted_proxies") == 0) {
		free(cfg->trusted_proxies);
		cfg->trusted_proxies = NULL;
		cfg->ntrusted_proxies = 0;
	} else if (strcasecmp(key, "admin_allow") == 0) {
		free(cfg->admin_allow);
		cfg->admin_allow = NULL;
		cfg->nadmin_allow = 0;
	} else if (strcasecmp(key, "bots") == 0)
		strv_free(&cfg->bots, &cfg->nbots);
}

void
config_init(struct config *cfg)
{
	size_t	 i;

	memset(cfg, 0, sizeof(*cfg));
	cfg->threads = 0;
	cfg->client_ip_header = xstrdup(DEFAULT_IP_HEADER);
	cfg->admin_allow = xreallocarray(NULL, nitems(default_admin_allow),
	    sizeof(*cfg->admin_allow));
	for (i = 0; i < nitems(default_admin_allow); i++)
		if (cidr_parse(default_admin_allow[i],
		    &cfg->admin_allow[cfg->nadmin_allow++]) == -1)
			fatalx("%s: bad default %s", __func__,
			    default_admin_allow[i]);
	cfg->idle_timeout_ms = 30 * 1000;
	cfg->max_connections = 4096;
	cfg->max_connections_per_address = 128;
	cfg->access_log = false;
	cfg->log_level = LOG_LEVEL_INFO;

	cfg->data = xstrdup(DEFAULT_DATA);
	cfg->durability = DURABILITY_BATCH;
	cfg->commit_interval_ms = 100;

	cfg->timezone = NULL;
	cfg->rate_limit = 30;
	cfg->rate_limit_address = 120;
	cfg->new_visitors_per_address = 500;
	cfg->max_pages = 100000;
	cfg->dnt = DNT_VIEWS_ONLY;
	cfg->count_max_age = 5;
}

void
config_free(struct config *cfg)
{
	size_t	 i;

	free(cfg->file);
	strv_free(&cfg->listen, &cfg->nlisten);
	free(cfg->trusted_proxies);
	free(cfg->client_ip_header);
	free(cfg->admin_allow);
	free(cfg->data);
	free(cfg->timezone);
	strv_free(&cfg->bots, &cfg->nbots);
	for (i = 0; i < cfg->nsites; i++)
		site_free(&cfg->sites[i]);
	free(cfg->sites);
	memset(cfg, 0, sizeof(*cfg));
}

int
config_finish(struct config *cfg, char *err, size_t errlen)
{
	size_t	 i, j;

	if (cfg->nlisten == 0)
		strv_add(&cfg->listen, &cfg->nlisten, DEFAULT_LISTEN);
	/* Binding the same address twice would fail later, less clearly. */
	for (i = 0; i < cfg->nlisten; i++) {
		for (j = i + 1; j < cfg->nlisten; j++) {
			if (strcmp(cfg->listen[i], cfg->listen[j]) == 0) {
				snprintf(err, errlen, "listen: %s is given "
				    "twice", cfg->listen[i]);
				return -1;
			}
		}
	}
	/* Pages that name no site count for "default", open to any origin. */
	if (config_site(cfg, DEFAULT_SITE) == NULL)
		site_add(cfg, DEFAULT_SITE);
	return 0;
}

const struct site_config *
config_site(const struct config *cfg, const char *name)
{
	return site_find(cfg, name);
}

const struct site_config *
config_site_by_origin(const struct config *cfg, const char *origin)
{
	char	 buf[ORIGIN_MAX];

	/* Browsers send origins in the normal form already; this only
	 * makes "https://A.example:443/" find the site too. */
	if (origin == NULL || origin_normalize(origin, buf, sizeof(buf)) !=
	    NULL)
		return NULL;
	return origin_owner(cfg, buf);
}

long
config_site_max_pages(const struct config *cfg, const struct site_config *site)
{
	if (site != NULL && site->max_pages > 0)
		return site->max_pages;
	return cfg->max_pages;
}

/*
 * Reading the file.
 */

/* The list keys whose first appearance in a file replaces the value held
 * so far (admin_allow's default, say) rather than adding to it. */
static const struct {
	enum section	 section;
	const char	*key;
} file_lists[] = {
	{ SECTION_SERVER, "listen" },
	{ SECTION_SERVER, "trusted_proxies" },
	{ SECTION_SERVER, "admin_allow" },
	{ SECTION_COUNT, "bots" },
};

struct load {
	struct config	*cfg;
	FILE		*fp;
	char		*line;
	size_t		 linecap;
	int		 lineno;
	char		*section;	/* as written, trimmed */
	enum section	 kind;
	unsigned int	 lists_seen;	/* bits of file_lists */
	bool		 in_value;	/* an indented line continues it */
	int		 errline;	/* 0, or where err belongs */
	int		 readerr;	/* errno of a failed read */
	char		 err[512];
};

/* A "[section]" line: p points at the '['. */
static int
load_section(struct load *ld, char *p)
{
	struct site_config	*site;
	char			*end, *name;
	int			 kind;

	if ((end = strchr(p, ']')) == NULL) {
		snprintf(ld->err, sizeof(ld->err), "syntax error: the section "
		    "header lacks its \"]\"");
		return -1;
	}
	*end++ = '\0';
	end += strspn(end, " \t\r\n");
	if (*end != '\0' && *end != ';' && *end != '#') {
		snprintf(ld->err, sizeof(ld->err), "syntax error: text after "
		    "the section header");
		return -1;
	}
	name = trim(p + 1);
	/* Checked here rather than at its first key, so that the error
	 * names this line and so that an empty [site NAME] makes the site. */
	if ((kind = section_lookup(ld->cfg, name, &site, ld->err,
	    sizeof(ld->err))) == -1)
		return -1;
	replace_str(&ld->section, name);
	ld->kind = (enum section)kind;
	return 0;
}

/* inih's reader, an fgets() for inih: one line of the file per call. */
static char *
load_reader(char *buf, int size, void *arg)
{
	struct load	*ld = arg;
	const char	*out;
	char		*line, *p;
	ssize_t		 len;

	/* Stop at the first error: it is the one reported. */
	if (ld->errline != 0)
		return NULL;
	errno = 0;
	if ((len = getline(&ld->line, &ld->linecap, ld->fp)) == -1) {
		if (ferror(ld->fp))
			ld->readerr = errno != 0 ? errno : EIO;
		return NULL;
	}
	ld->lineno++;
	line = ld->line;
	if ((size_t)len != strlen(line)) {
		snprintf(ld->err, sizeof(ld->err), "NUL byte in the line");
		goto fail;
	}
	if (ld->lineno == 1 && strncmp(line, "\xef\xbb\xbf", 3) == 0)
		line += 3;	/* a UTF-8 byte order mark */

	/* The same reading of a line as inih's, which comes next. */
	p = line + strspn(line, " \t\r\n\v\f");
	if (*p == '\0' || *p == ';' || *p == '#')
		out = "\n";	/* comments and blank lines, however long */
	else if (p > line && ld->in_value)
		out = line;	/* goes on with the value above: "[::1]:80" */
	else if (*p == '[') {
		if (load_section(ld, p) == -1)
			goto fail;
		/* inih must still see a section line: it ends a multi-line
		 * value. The section it sees is "", ours is ld->section. */
		out = "[]\n";
		ld->in_value = false;
	} else {
		out = line;
		ld->in_value = true;
	}

	if (strlen(out) >= (size_t)size) {
		snprintf(ld->err, sizeof(ld->err), "line too long (at most %d "
		    "bytes; a list may go on over several lines)", size - 2);
		goto fail;
	}
	memcpy(buf, out, strlen(out) + 1);
	return buf;
fail:
	ld->errline = ld->lineno;
	return NULL;
}

static int
load_handler(void *arg, const char *inisection, const char *key,
    const char *value)
{
	struct load	*ld = arg;
	size_t		 i;

	if (ld->errline != 0)
		return 0;
	if (ld->section == NULL) {
		snprintf(ld->err, sizeof(ld->err), "key \"%s\" outside of any "
		    "section", key);
		ld->errline = ld->lineno;
		return 0;
	}
	for (i = 0; i < nitems(file_lists); i++) {
		if (ld->kind == file_lists[i].section &&
		    strcasecmp(key, file_lists[i].key) == 0 &&
		    (ld->lists_seen & 1U << i) == 0) {
			config_clear(ld->cfg, file_lists[i].key);
			ld->lists_seen |= 1U << i;
		}
	}
	if (config_set(ld->cfg, ld->section, key, value, ld->err,
	    sizeof(ld->err)) == -1) {
		ld->errline = ld->lineno;
		return 0;
	}
	return 1;
}

int
config_load(struct config *cfg, const char *file, char *err, size_t errlen)
{
	struct load	 ld;
	int		 rc, ret = -1;

	memset(&ld, 0, sizeof(ld));
	ld.cfg = cfg;
	if ((ld.fp = fopen(file, "re")) == NULL) {
		snprintf(err, errlen, "%s: cannot open: %s", file,
		    strerror(errno));
		return -1;
	}
	replace_str(&cfg->file, file);

	rc = ini_parse_stream(load_reader, &ld, load_handler, &ld);
	/* inih reports the first line it found wrong, the reader and
	 * handler theirs: the earlier of the two is the one to fix first. */
	if (rc > 0 && (ld.errline == 0 || rc < ld.errline))
		snprintf(err, errlen, "%s:%d: syntax error: expected "
		    "\"key = value\" or \"[section]\"", file, rc);
	else if (ld.errline != 0)
		snprintf(err, errlen, "%s:%d: %s", file, ld.errline, ld.err);
	else if (ld.readerr != 0)
		snprintf(err, errlen, "%s: cannot read: %s", file,
		    strerror(ld.readerr));
	else if (rc != 0)
		snprintf(err, errlen, "%s: cannot parse", file);
	else
		ret = 0;

	fclose(ld.fp);
	free(ld.line);
	free(ld.section);
	return ret;
}
