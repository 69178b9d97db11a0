/*
 * tallyctl's one header, as OpenBSD's programs have one: the types its
 * files share, then each file's prototypes under the file's name. Each
 * command parses its own arguments (the global flags are accepted among
 * them too), then asks for the configuration and the store, and returns
 * an exit code.
 */
#ifndef TALLYCTL_CTL_H
#define TALLYCTL_CTL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tally/config.h"
#include "tally/exitcodes.h"
#include "tally/log.h"
#include "tally/store.h"

#define NUM_STRLEN	32	/* "18,446,744,073,709,551,615" and NUL */

struct ctl {
	const char	*cmd;		/* the command's name */
	const char	*config_file;	/* --config */
	const char	*data_flag;	/* --data */
	const char	*store_flag;	/* --store */
	bool		 json;		/* --json */
	bool		 color;	/* stdout a terminal, no NO_COLOR */
	bool		 cfg_ready;
	struct config	 cfg;
	const char	*data;		/* the store in use: a directory or URL */
	char		 where[512];	/* data as it may be shown */
	struct store	*store;
};

/*
 * One option of a command. "--name VALUE" and "--name=VALUE" set *value
 * (the last one given wins); a flag (value NULL) sets *flag.
 */
struct ctl_opt {
	const char	 *name;
	const char	**value;
	bool		 *flag;
};

/* Aligned text columns. align holds one 'l' or 'r' per column. */
struct table {
	const char	*align;
	size_t		 ncols;
	char		**cells;
	size_t		 ncells, cap;
};

/* tallyctl.c */
/*
 * Parses argv (argv[0] is the command's name) against opts (ended by a
 * zeroed entry) and the global flags. The operands go to args, at least
 * minargs and at most maxargs of them (-1: any number). Returns 0, or
 * EXIT_USAGE after saying what is wrong.
 */
int ctl_parse(struct ctl *, int argc, char **argv, const struct ctl_opt *,
    char **args, int *nargs, int minargs, int maxargs);
/* Prints "tallyctl: CMD: message" and the command's synopsis; returns
 * EXIT_USAGE so that callers can "return ctl_usage(...)". */
int ctl_usage(struct ctl *, const char *fmt, ...) TALLY_PRINTF(2, 3);
/* Prints "tallyctl: CMD: message"; returns 1. */
int ctl_fail(struct ctl *, const char *fmt, ...) TALLY_PRINTF(2, 3);
/* Writes s to stderr, escaped where it could not be seen for what it is
 * (text_escape): for messages that quote a value from outside. */
void ctl_eputs(const char *s);

/* Reads --config, applies the time zone. Returns 0 or EXIT_CONFIG. */
int ctl_setup(struct ctl *);
/* ctl_setup, then opens the store (flags as for store_open). Returns 0
 * or an exit code. */
int ctl_open(struct ctl *, int flags);

/* Checks a --site value (NULL: the default site). 0 or EXIT_USAGE. */
int ctl_site(struct ctl *, const char *given, const char **site);
/* Normalizes a --path value into out (PATH_MAX_LEN + 1 bytes). 0 or
 * EXIT_USAGE. */
int ctl_path(struct ctl *, const char *opt, const char *given, char *out);
/* 0 when site is one tallyd counts for: it has counts in the store, or
 * the configuration names it (the default site when it names none).
 * Else says so, with the known sites, and returns 1. */
int ctl_site_known(struct ctl *, struct store_view *, const char *site);
/* --format of export and import; FMT_GUESS when not given. */
enum ctl_format { FMT_GUESS, FMT_CSV, FMT_JSON };
int ctl_format(struct ctl *, const char *given, enum ctl_format *);
/* Parses a decimal number no larger than max; -1 when it is not one. */
int ctl_number(const char *s, uint64_t max, uint64_t *out);

/* 254014 -> "254,014" */
char *ctl_thousands(char out[NUM_STRLEN], uint64_t v);
/* An SGR sequence ("1" bold, "2" dim, "36" cyan...) when colour is on,
 * else "". ctl_sgr(ctl, "0") resets. */
const char *ctl_sgr(const struct ctl *, const char *code);

void table_init(struct table *, const char *align);
/* Adds a row of ncols strings (copied). */
void table_row(struct table *, ...);
/* Prints the rows; with header, the first one in bold when colour is on.
 * Each line starts with indent spaces. */
void table_print(struct table *, const struct ctl *, FILE *, bool header,
    int indent);
void table_free(struct table *);

/* ctl_verify.c */
/*
 * The one definition of consistent counts (ctl_verify.c), checked by
 * "check" on the store and by "import" and "set" on what they write.
 * fn hears of each problem: the series (path "" for the site's own,
 * NULL for the site as a whole) and the day (VERIFY_ALL_TIME for the
 * all-time counts) it concerns; a non-zero answer stops the walk and is
 * returned. Else returns a store status. site NULL: every site.
 */
#define VERIFY_ALL_TIME	INT_MIN
struct verify_problem {
	const char	*site;
	const char	*path;
	int		 day;
	const char	*msg;
};
typedef int (*verify_fn)(void *arg, const struct verify_problem *);
struct verify_totals {
	uint64_t	 sites, series, rows, referrer_rows;
};
int ctl_verify(struct store_view *, const char *site, verify_fn, void *arg,
    struct verify_totals *);
/* The same of the referrer rows of site (NULL: every site), whose hosts
 * a day may be at most max (max_referrers) besides (other). */
int ctl_verify_referrers(struct store_view *, const char *site, long max,
    verify_fn, void *arg, struct verify_totals *);

/* ctl_show.c */
int cmd_stats(struct ctl *, int, char **);
int cmd_top(struct ctl *, int, char **);
int cmd_page(struct ctl *, int, char **);
int cmd_history(struct ctl *, int, char **);
int cmd_sites(struct ctl *, int, char **);
int cmd_referrers(struct ctl *, int, char **);

/* ctl_export.c */
int cmd_export(struct ctl *, int, char **);

/* ctl_import.c */
int cmd_import(struct ctl *, int, char **);

/* ctl_importlog.c */
int cmd_import_log(struct ctl *, int, char **);

/* ctl_admin.c */
int cmd_set(struct ctl *, int, char **);
int cmd_reset(struct ctl *, int, char **);
int cmd_backup(struct ctl *, int, char **);
int cmd_check(struct ctl *, int, char **);

#endif
