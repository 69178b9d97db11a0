/* tallyd's configuration: defaults, the INI file and flags. */
#ifndef TALLY_CONFIG_H
#define TALLY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "tally/net.h"

#define SITE_NAME_MAX	63
#define DEFAULT_SITE	"default"
/* The most referring hosts a site may keep a day: each is a row. */
#define MAX_REFERRERS_MAX	100000

enum durability { DURABILITY_BATCH, DURABILITY_STRICT };
enum dnt_mode { DNT_VIEWS_ONLY, DNT_IGNORE };

struct site_config {
	char	 name[SITE_NAME_MAX + 1];
	char	**origins;	/* lowercased "scheme://host[:port]" */
	size_t	 norigins;
	char	*label_today;
	char	*label_total;
	char	*label_page;
	char	*locale;	/* numbers on the badge */
	long	 max_pages;	/* 0: the [count] value */
	char	*share;		/* the stats page's read-only link, or NULL */
	bool	 public;	/* the stats page is open to all */
};

struct config {
	char	*file;		/* the file read, or NULL */

	/* [server] */
	char	**listen;
	size_t	 nlisten;
	int	 threads;	/* 0: one per core */
	struct cidr *trusted_proxies;
	size_t	 ntrusted_proxies;
	char	*client_ip_header;
	struct cidr *admin_allow;
	size_t	 nadmin_allow;
	long	 idle_timeout_ms;
	long	 max_connections;
	long	 max_connections_per_address;	/* 0: off */
	bool	 access_log;
	int	 log_level;	/* enum log_level */

	/* [store] */
	char	*data;
	enum durability durability;
	long	 commit_interval_ms;

	/* [count] */
	char	*timezone;	/* NULL: the host's zone */
	long	 rate_limit;	/* views per visitor per minute; 0: off */
	long	 rate_limit_address;	/* views per address per minute; 0: off */
	long	 new_visitors_per_address;	/* per address per day; 0: off */
	long	 max_pages;
	long	 max_referrers;	/* referring hosts per site and day */
	char	**bots;		/* extra patterns */
	size_t	 nbots;
	enum dnt_mode dnt;
	long	 count_max_age;	/* seconds */

	struct site_config *sites;
	size_t	 nsites;
};

/*
 * The keys, each described once: the file reader, the flags of tallyd,
 * the defaults, the reload warnings and the documentation's test all
 * read this table.
 */
enum config_type {
	CONFIG_STRING,		/* not empty */
	CONFIG_NAME,		/* one of names, kept as names spells it */
	CONFIG_ZONE,		/* an IANA time zone; empty: the host's */
	CONFIG_LOCALE,		/* a language tag such as de or pt-BR */
	CONFIG_BOOL,
	CONFIG_INT,		/* an int field, min to max */
	CONFIG_LONG,		/* a long field, min to max */
	CONFIG_DURATION,	/* milliseconds, min to max */
	CONFIG_SECONDS,		/* a duration of whole seconds, min to max */
	CONFIG_ENUM,		/* an int field: the index of names */
	CONFIG_LISTEN,		/* list of addresses and ports */
	CONFIG_CIDRS,		/* list of addresses and networks */
	CONFIG_WORDS,		/* list of strings, each kept once */
	CONFIG_ORIGINS,		/* list of origins; site keys only */
	CONFIG_LABELS,		/* the badge's labels; site keys only */
	CONFIG_TOKEN,		/* a secret for URLs; empty: none */
};

/* A token's length and letters: URL-safe, long enough not to guess. */
#define TOKEN_MIN	16
#define TOKEN_MAX	128

#define CONFIG_LIST	0x1	/* given again, it adds */
#define CONFIG_RESTART	0x2	/* a reload does not apply it */

struct config_key {
	const char	*section;	/* "server", "store", "count", "site" */
	const char	*name;
	enum config_type type;
	unsigned int	 flags;
	/* The default as the documentation writes it; "" is none (an
	 * empty list, the host's zone); NULL: the [count] key's value. */
	const char	*def;
	/* In struct config, or in struct site_config for site keys. */
	size_t		 offset;
	size_t		 count;		/* lists: where their size_t is */
	long		 min, max;
	const char *const *names;	/* CONFIG_NAME, CONFIG_ENUM */
};

extern const struct config_key config_keys[];
extern const size_t config_nkeys;

/* The key of section ("server", "site", ...) named name, or NULL. */
const struct config_key *config_key_find(const char *section,
    const char *name);

/* Fills in the defaults. */
void config_init(struct config *);
void config_free(struct config *);

/* Reads an INI file on top of what cfg holds. On error, err gets one
 * "FILE:LINE: message" line for each error in the file (lines joined
 * by newlines; as many as fit) and -1 is returned. */
int config_load(struct config *, const char *file, char *err, size_t errlen);

/* Sets one key as the file would ("server", "listen", "[::1]:80").
 * section may be "site NAME". A list key given again appends. On error,
 * err gets "key: message". */
int config_set(struct config *, const char *section, const char *key,
    const char *value, char *err, size_t errlen);

/* Sets a key of the server, store or count sections, as a flag does. On
 * error, err gets the message alone: the caller names the key. */
int config_set_key(struct config *, const struct config_key *,
    const char *value, char *err, size_t errlen);

/* Empties a list key ("listen", "trusted_proxies", ...) so that flags can
 * replace what the file said. */
void config_clear(struct config *, const char *key);

/* Whether a key of the server, store or count sections differs. */
bool config_key_changed(const struct config_key *, const struct config *,
    const struct config *);

/* Completes the configuration after file and flags: the default listen
 * address, the default site, checks across keys. */
int config_finish(struct config *, char *err, size_t errlen);

const struct site_config *config_site(const struct config *, const char *name);
/* The site whose origins hold origin, or NULL. */
const struct site_config *config_site_by_origin(const struct config *,
    const char *origin);
long config_site_max_pages(const struct config *, const struct site_config *);

bool site_name_valid(const char *name);
/* "100ms", "30s", "5m", "1h", "2d"; a bare number is seconds. */
int parse_duration_ms(const char *s, long *ms);

#endif
