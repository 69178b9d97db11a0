/*
 * tallyd's configuration. Every key is one row of config_keys below:
 * its section, name, type, limits, default and whether a reload applies
 * it. The defaults, the INI file, tallyd's flags, the reload warnings and
 * the test that holds the documentation to the code all read that one
 * table, so that a key means the same thing wherever it is given and
 * cannot be documented as something it is not.
 *
 * The file is read here rather than with libinih: inih does not tell a
 * handler the line number, keeps section names too short for "site" and a
 * 63-byte name and splits long lines in two. Working around that meant
 * reading every line before inih did; splitting "key = value" is all
 * that reading the file ourselves adds to it.
 *
 * A bad file is read to its end: every error gets its own line, so that
 * one run of "tallyd -n" shows everything there is to fix.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tally/config.h"
#include "tally/day.h"
#include "tally/escape.h"
#include "tally/log.h"
#include "tally/net.h"
#include "tally/number.h"
#include "tally/path.h"
#include "tally/render.h"

#define nitems(a)	(sizeof(a) / sizeof((a)[0]))

#define THREADS_MAX		256
#define CONNECTIONS_MAX		1000000L
#define COMMIT_INTERVAL_MIN	1L			/* ms */
#define COMMIT_INTERVAL_MAX	(60L * 60 * 1000)	/* ms */
#define LABEL_MAX		64	/* characters, not bytes */

#define LISTEN_KEY		(&config_keys[0])

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
 * numbers. A leading '-' is let through so that "-1" gets the
 * range message, which says what is allowed.
 */
static int
parse_long(const char *s, long min, long max, long *out, char *err,
    size_t errlen)
{
	const char	*p = s + (*s == '-');
	uint64_t	 u = 0;
	long		 v = 0;
	bool		 huge;

	if (*p == '\0' || strspn(p, "0123456789") != strlen(p))
		goto bad;
	/* Past LONG_MAX, either way, is out of range too. */
	if (!(huge = number_parse(p, strlen(p), LONG_MAX, &u) == -1))
		v = p != s ? -(long)u : (long)u;
	if (huge || v < min || v > max) {
		if (max == LONG_MAX)
			snprintf(err, errlen, "%s is out of range (at least "
			    "%ld)", s, min);
		else
			snprintf(err, errlen, "%s is out of range (%ld to %ld)",
			    s, min, max);
		return -1;
	}
	*out = v;
	return 0;
bad:
	snprintf(err, errlen, "\"%s\" is not a number", s);
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

/* A duration in milliseconds as the documentation writes it: "1h". */
static void
format_ms(long ms, char *buf, size_t bufsz)
{
	static const struct {
		const char	*unit;
		long		 ms;
	} units[] = {
		{ "d", 24L * 60 * 60 * 1000 },
		{ "h", 60L * 60 * 1000 },
		{ "m", 60L * 1000 },
		{ "s", 1000 },
	};
	size_t	 i;

	for (i = 0; i < nitems(units); i++) {
		if (ms != 0 && ms % units[i].ms == 0) {
			snprintf(buf, bufsz, "%ld%s", ms / units[i].ms,
			    units[i].unit);
			return;
		}
	}
	snprintf(buf, bufsz, "%ldms", ms);
}

static int
parse_duration(const char *s, long min, long max, long *ms, char *err,
    size_t errlen)
{
	char	 lo[32], hi[32];
	long	 v;

	if (parse_duration_ms(s, &v) == -1) {
		snprintf(err, errlen, "\"%s\" is not a duration "
		    "(like 100ms, 30s, 5m, 1h, 2d)", s);
		return -1;
	}
	if (v < min || v > max) {
		format_ms(min, lo, sizeof(lo));
		format_ms(max, hi, sizeof(hi));
		if (max == LONG_MAX)
			snprintf(err, errlen, "%s is out of range (at least "
			    "%s)", s, lo);
		else
			snprintf(err, errlen, "%s is out of range (%s to %s)",
			    s, lo, hi);
		return -1;
	}
	*ms = v;
	return 0;
}

static int
parse_bool(const char *s, bool *out, char *err, size_t errlen)
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
	snprintf(err, errlen, "\"%s\" is not yes or no", s);
	return -1;
}

/* The index of s in a NULL-terminated list of names, or -1 with the
 * names in the message: "a or b", "one of a, b, c". */
static int
parse_name(const char *const *names, const char *s, char *err, size_t errlen)
{
	size_t	 i, n, len;

	for (n = 0; names[n] != NULL; n++)
		if (strcasecmp(s, names[n]) == 0)
			return (int)n;
	if (n == 2) {
		snprintf(err, errlen, "\"%s\" is not %s or %s", s, names[0],
		    names[1]);
		return -1;
	}
	snprintf(err, errlen, "\"%s\" is not one of", s);
	for (i = 0; i < n; i++) {
		len = strlen(err);
		if (len < errlen)
			snprintf(err + len, errlen - len, "%s %s",
			    i == 0 ? "" : ",", names[i]);
	}
	return -1;
}

/*
 * A label is valid UTF-8 (escape.c's check) without control characters,
 * C1 controls (U+0080 to U+009F, 0xc2 0x80 to 0xc2 0x9f) included.
 */
static const char *
label_invalid(const char *s)
{
	const unsigned char	*p;

	if (!utf8_valid(s, strlen(s)))
		return "is not valid UTF-8";
	for (p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f ||
		    (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f))
			return "holds a control character";
	return NULL;
}

/* ASCII only: isalnum() and islower() would follow the locale. */
static bool
is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
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
 * Writes origin the way browsers send it in the Origin header (see
 * origin_parse), refusing what an origin cannot have: a user name, a
 * path (a lone trailing "/" is forgiven: that is how addresses get
 * pasted), a query or a fragment. Returns NULL, or what is wrong.
 */
static const char *
origin_normalize(const char *in, char *out, size_t outsz)
{
	struct origin	 o;
	const char	*why;

	why = origin_parse(in, &o);
	if (o.userinfo)		/* whatever else is wrong with it */
		return "an origin has no user name";
	if (why != NULL)
		return why;
	switch (o.rest[0]) {
	case '\0':
		break;
	case '/':
		if (o.rest[1] == '\0')
			break;
		return "an origin has no path";
	case '?':
		return "an origin has no query";
	default:
		return "an origin has no fragment";
	}
	return origin_format(&o, out, outsz) == -1 ? "too long" : NULL;
}

static int
add_listen(char ***list, size_t *n, const char *value, char *err,
    size_t errlen)
{
	char	**items, host[256], port[16];
	size_t	  nitems, i;
	int	  rc = -1;

	split_list(value, &items, &nitems);
	for (i = 0; i < nitems; i++) {
		if (listen_parse(items[i], host, sizeof(host), port,
		    sizeof(port)) == -1) {
			snprintf(err, errlen, "\"%s\" is not an address and "
			    "port (like 127.0.0.1:8080, [::1]:8080 or :8080)",
			    items[i]);
			goto out;
		}
	}
	for (i = 0; i < nitems; i++)
		strv_add(list, n, items[i]);
	rc = 0;
out:
	strv_free(&items, &nitems);
	return rc;
}

static int
add_cidrs(struct cidr **list, size_t *n, const char *value, char *err,
    size_t errlen)
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
			snprintf(err, errlen, "\"%s\" is not an address or "
			    "network (like 192.0.2.0/24 or 2001:db8::/32)",
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

static void
add_words(char ***list, size_t *n, const char *value)
{
	char	**items;
	size_t	  nitems, i;

	split_list(value, &items, &nitems);
	for (i = 0; i < nitems; i++)
		if (!strv_has(*list, *n, items[i]))
			strv_add(list, n, items[i]);
	strv_free(&items, &nitems);
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
			snprintf(err, errlen, "\"%s\" is not an "
			    "origin (like https://www.example.org): %s",
			    items[i], why);
			goto out;
		}
		/* One origin, one site: else which counter would it feed? */
		if ((owner = origin_owner(cfg, buf)) != NULL && owner != site) {
			snprintf(err, errlen, "%s is already an origin "
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
	char		**items, *colon, *name, *text, *newv[nitems(names)];
	const char	 *why;
	size_t		  nitems, i, j;
	int		  rc = -1;

	memset(newv, 0, sizeof(newv));
	split_list(value, &items, &nitems);
	for (i = 0; i < nitems; i++) {
		if ((colon = strchr(items[i], ':')) == NULL) {
			snprintf(err, errlen, "\"%s\" lacks a \":\" (like "
			    "today:Today)", items[i]);
			goto out;
		}
		*colon = '\0';
		name = trim(items[i]);
		text = trim(colon + 1);
		for (j = 0; j < nitems(names); j++)
			if (strcasecmp(name, names[j]) == 0)
				break;
		if (j == nitems(names)) {
			snprintf(err, errlen, "unknown label \"%s\" (today, "
			    "total or page)", name);
			goto out;
		}
		if ((why = label_invalid(text)) != NULL) {
			snprintf(err, errlen, "the %s label %s", names[j], why);
			goto out;
		}
		if (utf8_length(text, strlen(text)) > LABEL_MAX) {
			snprintf(err, errlen, "the %s label is longer than %d "
			    "characters", names[j], LABEL_MAX);
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

/*
 * The keys. The order is the documentation's; listen comes first
 * (LISTEN_KEY). def is what tallyd.conf(5) and etc/tallyd.conf show,
 * and config_init applies exactly that text.
 */
static const char *const durabilities[] = { "batch", "strict", NULL };
static const char *const dnt_modes[] = { "views-only", "ignore", NULL };
/* In the order of enum log_level. */
static const char *const log_levels[] = {
	"error", "warn", "info", "debug", NULL,
};
/* Spelled as the header is usually written; matched case-insensitively. */
static const char *const ip_headers[] = {
	"X-Forwarded-For", "Forwarded", "X-Real-IP", "CF-Connecting-IP", NULL,
};

#define CFG(f)		offsetof(struct config, f)
#define SITE(f)		offsetof(struct site_config, f)

const struct config_key config_keys[] = {
	{ "server", "listen", CONFIG_LISTEN, CONFIG_LIST | CONFIG_RESTART,
	    "127.0.0.1:8080", CFG(listen), CFG(nlisten), 0, 0, NULL },
	{ "server", "threads", CONFIG_INT, CONFIG_RESTART,
	    "0", CFG(threads), 0, 0, THREADS_MAX, NULL },
	{ "server", "trusted_proxies", CONFIG_CIDRS, CONFIG_LIST,
	    "", CFG(trusted_proxies), CFG(ntrusted_proxies), 0, 0, NULL },
	{ "server", "client_ip_header", CONFIG_NAME, 0,
	    "X-Forwarded-For", CFG(client_ip_header), 0, 0, 0, ip_headers },
	{ "server", "admin_allow", CONFIG_CIDRS, CONFIG_LIST,
	    "127.0.0.0/8, ::1", CFG(admin_allow), CFG(nadmin_allow), 0, 0,
	    NULL },
	{ "server", "idle_timeout", CONFIG_DURATION, CONFIG_RESTART,
	    "30s", CFG(idle_timeout_ms), 0, 1, LONG_MAX, NULL },
	{ "server", "max_connections", CONFIG_LONG, CONFIG_RESTART,
	    "4096", CFG(max_connections), 0, 1, CONNECTIONS_MAX, NULL },
	{ "server", "max_connections_per_address", CONFIG_LONG, CONFIG_RESTART,
	    "128", CFG(max_connections_per_address), 0, 0, CONNECTIONS_MAX,
	    NULL },
	{ "server", "access_log", CONFIG_BOOL, CONFIG_RESTART,
	    "no", CFG(access_log), 0, 0, 0, NULL },
	{ "server", "log_level", CONFIG_ENUM, 0,
	    "info", CFG(log_level), 0, 0, 0, log_levels },

	{ "store", "data", CONFIG_STRING, CONFIG_RESTART,
	    "./tally-data", CFG(data), 0, 0, 0, NULL },
	{ "store", "durability", CONFIG_ENUM, CONFIG_RESTART,
	    "batch", CFG(durability), 0, 0, 0, durabilities },
	{ "store", "commit_interval", CONFIG_DURATION, CONFIG_RESTART,
	    "100ms", CFG(commit_interval_ms), 0, COMMIT_INTERVAL_MIN,
	    COMMIT_INTERVAL_MAX, NULL },

	{ "count", "timezone", CONFIG_ZONE, CONFIG_RESTART,
	    "", CFG(timezone), 0, 0, 0, NULL },
	{ "count", "rate_limit", CONFIG_LONG, 0,
	    "30", CFG(rate_limit), 0, 0, LONG_MAX, NULL },
	{ "count", "rate_limit_address", CONFIG_LONG, 0,
	    "120", CFG(rate_limit_address), 0, 0, LONG_MAX, NULL },
	{ "count", "new_visitors_per_address", CONFIG_LONG, 0,
	    "500", CFG(new_visitors_per_address), 0, 0, LONG_MAX, NULL },
	{ "count", "max_pages", CONFIG_LONG, 0,
	    "100000", CFG(max_pages), 0, 1, LONG_MAX, NULL },
	{ "count", "bots", CONFIG_WORDS, CONFIG_LIST,
	    "", CFG(bots), CFG(nbots), 0, 0, NULL },
	{ "count", "dnt", CONFIG_ENUM, 0,
	    "views-only", CFG(dnt), 0, 0, 0, dnt_modes },
	/* It becomes Cache-Control: max-age, which counts seconds. */
	{ "count", "count_max_age", CONFIG_SECONDS, 0,
	    "5s", CFG(count_max_age), 0, 0, LONG_MAX, NULL },
	{ "count", "max_referrers", CONFIG_LONG, 0,
	    "1000", CFG(max_referrers), 0, 0, MAX_REFERRERS_MAX, NULL },

	{ "site", "origins", CONFIG_ORIGINS, CONFIG_LIST,
	    "", SITE(origins), SITE(norigins), 0, 0, NULL },
	{ "site", "labels", CONFIG_LABELS, 0,
	    "today:Today, total:Total, page:Views", 0, 0, 0, 0, NULL },
	{ "site", "max_pages", CONFIG_LONG, 0,
	    NULL, SITE(max_pages), 0, 1, LONG_MAX, NULL },
	{ "site", "locale", CONFIG_LOCALE, 0,
	    "en", SITE(locale), 0, 0, 0, NULL },
	{ "site", "share", CONFIG_TOKEN, 0,
	    "", SITE(share), 0, TOKEN_MIN, TOKEN_MAX, NULL },
	{ "site", "public", CONFIG_BOOL, 0,
	    "no", SITE(public), 0, 0, 0, NULL },
};
const size_t config_nkeys = nitems(config_keys);

static bool
is_site_key(const struct config_key *k)
{
	return strcmp(k->section, "site") == 0;
}

const struct config_key *
config_key_find(const char *section, const char *name)
{
	size_t	 i;

	for (i = 0; i < config_nkeys; i++)
		if (strcasecmp(config_keys[i].section, section) == 0 &&
		    strcasecmp(config_keys[i].name, name) == 0)
			return &config_keys[i];
	return NULL;
}

/* The field of k in cfg, or in site for site keys. */
static void *
field(const struct config_key *k, const struct config *cfg,
    const struct site_config *site, size_t offset)
{
	const char	*base;

	base = is_site_key(k) ? (const char *)site : (const char *)cfg;
	return (void *)(uintptr_t)(base + offset);
}

/* Sets k from value, which is trimmed. The message says what is wrong
 * with the value; the caller names the key. A bad value changes
 * nothing. */
static int
key_set(struct config *cfg, struct site_config *site,
    const struct config_key *k, const char *value, char *err, size_t errlen)
{
	void	*f = field(k, cfg, site, k->offset);
	size_t	*n = field(k, cfg, site, k->count);
	long	 v;
	bool	 b;
	int	 i;

	switch (k->type) {
	case CONFIG_STRING:
		if (value[0] == '\0') {
			snprintf(err, errlen, "empty value");
			return -1;
		}
		replace_str(f, value);
		return 0;
	case CONFIG_NAME:
		if ((i = parse_name(k->names, value, err, errlen)) == -1)
			return -1;
		replace_str(f, k->names[i]);
		return 0;
	case CONFIG_ZONE:
		if (!day_timezone_valid(value)) {
			snprintf(err, errlen, "unknown time zone \"%s\"", value);
			return -1;
		}
		/* Empty is the host's zone, as if the key were not given. */
		replace_str(f, value[0] != '\0' ? value : NULL);
		return 0;
	case CONFIG_LOCALE:
		if (!locale_valid(value)) {
			snprintf(err, errlen, "\"%s\" is not a language tag "
			    "(like en, de or pt-BR)", value);
			return -1;
		}
		replace_str(f, value);
		return 0;
	case CONFIG_TOKEN:
		/* Empty: no token, as when the key is not given. */
		if (value[0] != '\0' && ((long)strlen(value) < k->min ||
		    (long)strlen(value) > k->max || strspn(value,
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		    "0123456789-_") != strlen(value))) {
			snprintf(err, errlen, "a token is %ld to %ld letters, "
			    "digits, - and _", k->min, k->max);
			return -1;
		}
		replace_str(f, value[0] != '\0' ? value : NULL);
		return 0;
	case CONFIG_BOOL:
		if (parse_bool(value, &b, err, errlen) == -1)
			return -1;
		*(bool *)f = b;
		return 0;
	case CONFIG_INT:
	case CONFIG_LONG:
		if (parse_long(value, k->min, k->max, &v, err, errlen) == -1)
			return -1;
		if (k->type == CONFIG_INT)
			*(int *)f = (int)v;
		else
			*(long *)f = v;
		return 0;
	case CONFIG_DURATION:
	case CONFIG_SECONDS:
		if (parse_duration(value, k->min, k->max, &v, err,
		    errlen) == -1)
			return -1;
		if (k->type == CONFIG_SECONDS && v % 1000 != 0) {
			snprintf(err, errlen, "%s is not a whole number of "
			    "seconds", value);
			return -1;
		}
		*(long *)f = k->type == CONFIG_SECONDS ? v / 1000 : v;
		return 0;
	case CONFIG_ENUM:
		if ((i = parse_name(k->names, value, err, errlen)) == -1)
			return -1;
		*(int *)f = i;
		return 0;
	case CONFIG_LISTEN:
		return add_listen(f, n, value, err, errlen);
	case CONFIG_CIDRS:
		return add_cidrs(f, n, value, err, errlen);
	case CONFIG_WORDS:
		add_words(f, n, value);
		return 0;
	case CONFIG_ORIGINS:
		return add_origins(cfg, site, value, err, errlen);
	case CONFIG_LABELS:
		return set_labels(site, value, err, errlen);
	}
	snprintf(err, errlen, "unknown type");
	return -1;
}

/* Frees what k holds; list keys become empty lists. */
static void
key_clear(const struct config_key *k, struct config *cfg,
    struct site_config *site)
{
	void	*f = field(k, cfg, site, k->offset);
	size_t	*n = field(k, cfg, site, k->count);

	switch (k->type) {
	case CONFIG_STRING:
	case CONFIG_NAME:
	case CONFIG_ZONE:
	case CONFIG_LOCALE:
	case CONFIG_TOKEN:
	case CONFIG_CIDRS:
		free(*(void **)f);
		*(void **)f = NULL;
		if (k->type == CONFIG_CIDRS)
			*n = 0;
		break;
	case CONFIG_LISTEN:
	case CONFIG_WORDS:
	case CONFIG_ORIGINS:
		strv_free(f, n);
		break;
	case CONFIG_LABELS:
		free(site->label_today);
		free(site->label_total);
		free(site->label_page);
		site->label_today = site->label_total = NULL;
		site->label_page = NULL;
		break;
	default:
		break;
	}
}

static void
key_default(const struct config_key *k, struct config *cfg,
    struct site_config *site)
{
	char	 err[256];

	if (k->def == NULL || k->def[0] == '\0')
		return;
	if (key_set(cfg, site, k, k->def, err, sizeof(err)) == -1)
		fatalx("%s: the default of %s: %s", __func__, k->name, err);
}

static bool
str_differs(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a != b;
	return strcmp(a, b) != 0;
}

bool
config_key_changed(const struct config_key *k, const struct config *a,
    const struct config *b)
{
	const void	*fa, *fb;
	size_t		 na, nb, i;

	if (is_site_key(k))
		return false;
	fa = field(k, a, NULL, k->offset);
	fb = field(k, b, NULL, k->offset);
	if (k->flags & CONFIG_LIST) {
		na = *(const size_t *)field(k, a, NULL, k->count);
		nb = *(const size_t *)field(k, b, NULL, k->count);
		if (na != nb)
			return true;
		if (k->type == CONFIG_CIDRS)
			return na != 0 && memcmp(*(struct cidr *const *)fa,
			    *(struct cidr *const *)fb,
			    na * sizeof(struct cidr)) != 0;
		for (i = 0; i < na; i++)
			if (strcmp((*(char **const *)fa)[i],
			    (*(char **const *)fb)[i]) != 0)
				return true;
		return false;
	}
	switch (k->type) {
	case CONFIG_STRING:
	case CONFIG_NAME:
	case CONFIG_ZONE:
		return str_differs(*(char *const *)fa, *(char *const *)fb);
	case CONFIG_BOOL:
		return *(const bool *)fa != *(const bool *)fb;
	case CONFIG_INT:
	case CONFIG_ENUM:
		return *(const int *)fa != *(const int *)fb;
	default:
		return *(const long *)fa != *(const long *)fb;
	}
}

static void
site_free(struct config *cfg, struct site_config *s)
{
	size_t	 i;

	for (i = 0; i < config_nkeys; i++)
		if (is_site_key(&config_keys[i]))
			key_clear(&config_keys[i], cfg, s);
}

/* name must be valid: it is copied into the fixed-size field. */
static struct site_config *
site_add(struct config *cfg, const char *name)
{
	struct site_config	*s;
	size_t			 i;

	cfg->sites = xreallocarray(cfg->sites, cfg->nsites + 1,
	    sizeof(*cfg->sites));
	s = &cfg->sites[cfg->nsites++];
	memset(s, 0, sizeof(*s));
	memcpy(s->name, name, strlen(name) + 1);
	for (i = 0; i < config_nkeys; i++)
		if (is_site_key(&config_keys[i]))
			key_default(&config_keys[i], cfg, s);
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
 * twice is one site). Returns the section of the table's keys, or NULL.
 */
static const char *
section_lookup(struct config *cfg, const char *section,
    struct site_config **site, char *err, size_t errlen)
{
	static const char *const plain[] = { "server", "store", "count" };
	const char	*name;
	size_t		 i;

	*site = NULL;
	for (i = 0; i < nitems(plain); i++)
		if (strcasecmp(section, plain[i]) == 0)
			return plain[i];
	if (strncasecmp(section, "site", 4) == 0 &&
	    (section[4] == '\0' || isblank((unsigned char)section[4]))) {
		name = section + 4;
		while (isblank((unsigned char)*name))
			name++;
		if (*name == '\0') {
			snprintf(err, errlen, "section [%s] needs a site name, "
			    "like [site blog]", section);
			return NULL;
		}
		if (!site_name_valid(name)) {
			snprintf(err, errlen, "invalid site name \"%s\" "
			    "(a-z, 0-9, '.' and '-', at most %d, starting "
			    "with a letter or digit)", name, SITE_NAME_MAX);
			return NULL;
		}
		if ((*site = site_find(cfg, name)) == NULL)
			*site = site_add(cfg, name);
		return "site";
	}
	snprintf(err, errlen, "unknown section [%s]", section);
	return NULL;
}

/* Sets key of a section already looked up; err gets "key: message". */
static int
section_set(struct config *cfg, const char *kind, struct site_config *site,
    const char *key, const char *value, char *err, size_t errlen)
{
	const struct config_key	*k;
	char			 msg[512];

	if ((k = config_key_find(kind, key)) == NULL) {
		if (site != NULL)
			snprintf(err, errlen, "unknown key \"%s\" in [site %s]",
			    key, site->name);
		else
			snprintf(err, errlen, "unknown key \"%s\" in [%s]", key,
			    kind);
		return -1;
	}
	if (key_set(cfg, site, k, value, msg, sizeof(msg)) == -1) {
		snprintf(err, errlen, "%s: %s", k->name, msg);
		return -1;
	}
	return 0;
}

int
config_set(struct config *cfg, const char *section, const char *key,
    const char *value, char *err, size_t errlen)
{
	struct site_config	*site;
	const char		*kind;
	char			*v;
	int			 rc = -1;

	if (section == NULL || section[0] == '\0') {
		snprintf(err, errlen, "key outside of any section");
		return -1;
	}
	/* Flags come here untrimmed; the file's values are trimmed already. */
	v = xstrdup(value != NULL ? value : "");
	if ((kind = section_lookup(cfg, section, &site, err, errlen)) != NULL)
		rc = section_set(cfg, kind, site, key, trim(v), err, errlen);
	free(v);
	return rc;
}

int
config_set_key(struct config *cfg, const struct config_key *k,
    const char *value, char *err, size_t errlen)
{
	char	*v;
	int	 rc;

	if (is_site_key(k)) {
		snprintf(err, errlen, "a key of [site NAME]");
		return -1;
	}
	v = xstrdup(value != NULL ? value : "");
	rc = key_set(cfg, NULL, k, trim(v), err, errlen);
	free(v);
	return rc;
}

void
config_clear(struct config *cfg, const char *key)
{
	size_t	 i;

	for (i = 0; i < config_nkeys; i++)
		if ((config_keys[i].flags & CONFIG_LIST) &&
		    !is_site_key(&config_keys[i]) &&
		    strcasecmp(config_keys[i].name, key) == 0)
			key_clear(&config_keys[i], cfg, NULL);
}

void
config_init(struct config *cfg)
{
	size_t	 i;

	memset(cfg, 0, sizeof(*cfg));
	for (i = 0; i < config_nkeys; i++)
		if (!is_site_key(&config_keys[i]))
			key_default(&config_keys[i], cfg, NULL);
}

void
config_free(struct config *cfg)
{
	size_t	 i;

	free(cfg->file);
	for (i = 0; i < cfg->nsites; i++)
		site_free(cfg, &cfg->sites[i]);
	free(cfg->sites);
	for (i = 0; i < config_nkeys; i++)
		if (!is_site_key(&config_keys[i]))
			key_clear(&config_keys[i], cfg, NULL);
	memset(cfg, 0, sizeof(*cfg));
}

int
config_finish(struct config *cfg, char *err, size_t errlen)
{
	size_t	 i, j;

	/* Emptied by the file or a flag: a daemon reachable nowhere would
	 * be of no use, so the default comes back. */
	if (cfg->nlisten == 0)
		key_default(LISTEN_KEY, cfg, NULL);
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
 * Reading the file: "[section]" lines, "key = value" (or "key: value")
 * lines, comment lines starting with '#' or ';', and ";" after a blank
 * inside a line. An indented line goes on with the value above and is
 * set as that key again, so that a list may span several lines.
 */

struct load {
	struct config	*cfg;
	const char	*file;
	int		 lineno;
	const char	*kind;		/* the section's, or NULL */
	bool		 skip;		/* under a bad section header */
	char		 site[SITE_NAME_MAX + 1];
	char		*key;		/* what an indented line continues */
	bool		 seen[nitems(config_keys)];	/* list keys met */
	char		*err;
	size_t		 errlen;
	int		 nerrs;
};

/* Adds "FILE:LINE: message" to the errors, as long as it fits whole
 * (the first one always, cut if need be). */
static void TALLY_PRINTF(2, 3)
load_error(struct load *ld, const char *fmt, ...)
{
	char	 msg[1024];
	size_t	 used;
	va_list	 ap;
	int	 w;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	used = ld->nerrs == 0 ? 0 : strlen(ld->err);
	if (used < ld->errlen) {
		w = snprintf(ld->err + used, ld->errlen - used, "%s%s:%d: %s",
		    ld->nerrs == 0 ? "" : "\n", ld->file, ld->lineno, msg);
		if (ld->nerrs > 0 && w >= 0 && (size_t)w >= ld->errlen - used)
			ld->err[used] = '\0';
	}
	ld->nerrs++;
}

/* The end of s, or where a ';' after a blank starts a comment. */
static char *
strip_comment(char *s)
{
	char	*p;

	for (p = s; *p != '\0'; p++)
		if (*p == ';' && p > s && isspace((unsigned char)p[-1]))
			break;
	*p = '\0';
	return trim(s);
}

/* A "[section]" line: p points at the '['. */
static void
load_section(struct load *ld, char *p)
{
	struct site_config	*site;
	char			*end, msg[512];

	free(ld->key);
	ld->key = NULL;
	ld->kind = NULL;
	ld->skip = true;	/* until the header proves good */
	if ((end = strchr(p, ']')) == NULL) {
		load_error(ld, "syntax error: the section header lacks its "
		    "\"]\"");
		return;
	}
	*end++ = '\0';
	if (*strip_comment(end) != '\0') {
		load_error(ld, "syntax error: text after the section header");
		return;
	}
	/* Checked here rather than at its first key, so that the error
	 * names this line and so that an empty [site NAME] makes the site. */
	if ((ld->kind = section_lookup(ld->cfg, trim(p + 1), &site, msg,
	    sizeof(msg))) == NULL) {
		load_error(ld, "%s", msg);
		return;
	}
	ld->skip = false;
	snprintf(ld->site, sizeof(ld->site), "%s", site ? site->name : "");
}

static void
load_key(struct load *ld, const char *key, const char *value)
{
	const struct config_key	*k;
	struct site_config	*site = NULL;
	char			 msg[1024];

	if (ld->skip)
		return;		/* the bad header is the error */
	if (ld->kind == NULL) {
		load_error(ld, "key \"%s\" outside of any section", key);
		return;
	}
	if (strcmp(ld->kind, "site") == 0)
		site = site_find(ld->cfg, ld->site);
	/* A list key's first appearance in the file replaces what was held
	 * so far (admin_allow's default, say) rather than adding to it. */
	k = config_key_find(ld->kind, key);
	if (k != NULL && site == NULL && (k->flags & CONFIG_LIST) &&
	    !ld->seen[k - config_keys]) {
		key_clear(k, ld->cfg, NULL);
		ld->seen[k - config_keys] = true;
	}
	if (section_set(ld->cfg, ld->kind, site, key, value, msg,
	    sizeof(msg)) == -1)
		load_error(ld, "%s", msg);
}

static void
load_line(struct load *ld, char *line)
{
	char	*p, *sep;

	p = line + strspn(line, " \t\r\n\v\f");
	if (*p == '\0' || *p == ';' || *p == '#')
		return;		/* blank lines do not end a value */
	if (p > line && ld->key != NULL) {
		load_key(ld, ld->key, strip_comment(p));
		return;
	}
	if (*p == '[') {
		load_section(ld, p);
		return;
	}
	free(ld->key);
	ld->key = NULL;
	p = strip_comment(p);
	if ((sep = strpbrk(p, "=:")) == NULL) {
		load_error(ld, "syntax error: expected \"key = value\" or "
		    "\"[section]\"");
		return;
	}
	*sep = '\0';
	ld->key = xstrdup(trim(p));
	load_key(ld, ld->key, trim(sep + 1));
}

int
config_load(struct config *cfg, const char *file, char *err, size_t errlen)
{
	struct load	 ld;
	FILE		*fp;
	char		*line = NULL;
	size_t		 linecap = 0;
	ssize_t		 len;
	int		 readerr = 0;

	if ((fp = fopen(file, "re")) == NULL) {
		snprintf(err, errlen, "%s: cannot open: %s", file,
		    strerror(errno));
		return -1;
	}
	replace_str(&cfg->file, file);
	memset(&ld, 0, sizeof(ld));
	ld.cfg = cfg;
	ld.file = file;
	ld.err = err;
	ld.errlen = errlen;
	if (errlen > 0)
		err[0] = '\0';

	errno = 0;
	while ((len = getline(&line, &linecap, fp)) != -1) {
		ld.lineno++;
		if ((size_t)len != strlen(line)) {
			load_error(&ld, "NUL byte in the line");
			continue;
		}
		if (ld.lineno == 1 && strncmp(line, "\xef\xbb\xbf", 3) == 0)
			load_line(&ld, line + 3);	/* byte order mark */
		else
			load_line(&ld, line);
		errno = 0;
	}
	if (ferror(fp))
		readerr = errno != 0 ? errno : EIO;
	fclose(fp);
	free(line);
	free(ld.key);
	if (ld.nerrs > 0)
		return -1;
	if (readerr != 0) {
		snprintf(err, errlen, "%s: cannot read: %s", file,
		    strerror(readerr));
		return -1;
	}
	return 0;
}
