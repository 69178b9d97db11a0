/*
 * tallyctl set, reset, backup and check.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tally/buf.h"
#include "tally/day.h"
#include "tally/escape.h"
#include "tally/location.h"
#include "tally/path.h"

#include "ctl.h"

#define MAX_PROBLEMS	100	/* printed; the rest are counted */

/* Writing commands other than import must not create a store that is
 * not there: "reset" of a mistyped --data would otherwise succeed. */
static int
need_store(struct ctl *ctl)
{
	char file[PATH_MAX];
	struct stat sb;
	int rc;

	if ((rc = ctl_setup(ctl)) != 0)
		return rc;
	/* A database is there or not: connecting tells. */
	if (location_is_url(ctl->data))
		return 0;
	snprintf(file, sizeof(file), "%s/data.mdb", ctl->data);
	if (stat(file, &sb) == -1)
		return ctl_fail(ctl, "no store in %s: %s", ctl->data,
		    strerror(errno));
	return 0;
}

/*
 * set
 */

struct set_write {
	const char	*site;
	const char	*path;
	uint64_t	 views;
	uint64_t	 visitors;
	bool		 keep_visitors;
	char		 bad[1024];	/* why the site would be inconsistent */
};

/* A verify_fn: the first problem refuses the set. */
static int
set_problem(void *arg, const struct verify_problem *p)
{
	struct set_write *w = arg;

	snprintf(w->bad, sizeof(w->bad), "%s", p->msg);
	return 1;
}

/* A store_write_fn. Without --visitors the visitors stay what they are:
 * read in the same transaction, so no commit slips in between. The site
 * must then pass check's rules: a page may not outgrow its site. */
static int
set_total(struct store_txn *txn, void *arg)
{
	struct set_write *w = arg;
	struct series_counts sc;
	int rc;

	w->bad[0] = '\0';
	if (w->keep_visitors) {
		if ((rc = store_txn_get(txn, w->site, w->path, DAY_ADJUST,
		    &sc)) != STORE_OK)
			return rc;
		w->visitors = sc.total.visitors;
	}
	if ((rc = store_set_total(txn, w->site, w->path, w->views,
	    w->visitors)) != STORE_OK)
		return rc;
	rc = ctl_verify(store_txn_view(txn), w->site, set_problem, w, NULL);
	return w->bad[0] ? STORE_ERROR : rc;
}

/*
 * What set refuses unless told: a site nobody knows (a typo would make
 * a phantom site), and an all-time count below what today already has
 * (a total smaller than today is no count anyone can read).
 */
static int
set_allowed(struct ctl *ctl, const char *site, const char *path,
    uint64_t views, const uint64_t *visitors, bool force, bool create)
{
	struct store_view *v;
	struct series_counts sc;
	char n1[NUM_STRLEN], n2[NUM_STRLEN];
	int rc = 0;

	if ((v = store_view_new(ctl->store)) == NULL)
		fatal("store_view_new");
	if (store_view_begin(v) != STORE_OK ||
	    store_get(v, site, path, day_today(), &sc) != STORE_OK) {
		rc = ctl_fail(ctl, "reading %s: %s", site,
		    store_error(ctl->store));
		goto done;
	}
	if (!create && (rc = ctl_site_known(ctl, v, site)) != 0) {
		fputs("tallyctl: set: give --create to make a new site\n",
		    stderr);
		goto done;
	}
	if (force)
		goto done;
	if (views < sc.day.views)
		rc = ctl_fail(ctl, "today already has %s views, more than %s; "
		    "give --force to set it lower", ctl_thousands(n1,
		    sc.day.views), ctl_thousands(n2, views));
	else if (visitors && *visitors < sc.day.visitors)
		rc = ctl_fail(ctl, "today already has %s visitors, more than "
		    "%s; give --force to set it lower", ctl_thousands(n1,
		    sc.day.visitors), ctl_thousands(n2, *visitors));
done:
	store_view_free(v);
	return rc;
}

int
cmd_set(struct ctl *ctl, int argc, char **argv)
{
	const char *site_opt = NULL, *path_opt = NULL, *views_opt = NULL,
	    *visitors_opt = NULL, *site;
	bool force = false, create = false;
	struct ctl_opt opts[] = {
		{ "site", &site_opt, NULL },
		{ "path", &path_opt, NULL },
		{ "views", &views_opt, NULL },
		{ "visitors", &visitors_opt, NULL },
		{ "force", NULL, &force },
		{ "create", NULL, &create },
		{ NULL, NULL, NULL },
	};
	struct set_write w;
	char path[PATH_MAX_LEN + 1], n1[NUM_STRLEN], n2[NUM_STRLEN];
	uint64_t views, visitors = 0;
	int rc, nargs;

	path[0] = '\0';
	if ((rc = ctl_parse(ctl, argc, argv, opts, NULL, &nargs, 0, 0)) != 0)
		return rc;
	if (site_opt == NULL)
		return ctl_usage(ctl, "--site is required");
	if (views_opt == NULL)
		return ctl_usage(ctl, "--views is required");
	if ((rc = ctl_site(ctl, site_opt, &site)) != 0 ||
	    (path_opt && (rc = ctl_path(ctl, "--path", path_opt, path)) != 0))
		return rc;
	if (ctl_number(views_opt, STORE_COUNT_MAX, &views) == -1)
		return ctl_usage(ctl, "--views: not a number from 0 to %"
		    PRId64 ": %s", (int64_t)STORE_COUNT_MAX, views_opt);
	if (visitors_opt && ctl_number(visitors_opt, STORE_COUNT_MAX,
	    &visitors) == -1)
		return ctl_usage(ctl, "--visitors: not a number from 0 to %"
		    PRId64 ": %s", (int64_t)STORE_COUNT_MAX, visitors_opt);
	/* Carrying an old counter over into a new install is what set is
	 * for: it may create the store. */
	if ((rc = ctl_open(ctl, 0)) != 0 ||
	    (rc = set_allowed(ctl, site, path, views,
	    visitors_opt ? &visitors : NULL, force, create)) != 0)
		return rc;
	store_reader_check(ctl->store);
	w.site = site;
	w.path = path;
	w.views = views;
	w.visitors = visitors;
	w.keep_visitors = visitors_opt == NULL;
	if (store_write(ctl->store, set_total, &w) != STORE_OK)
		return ctl_fail(ctl, "setting %s %s: %s", site,
		    path[0] ? path : "(site)", w.bad[0] ? w.bad :
		    store_error(ctl->store));
	visitors = w.visitors;
	if (ctl->json) {
		struct buf b;

		buf_init(&b);
		buf_puts(&b, "{\"site\":");
		json_string(&b, site);
		buf_puts(&b, ",\"path\":");
		json_string(&b, path[0] ? path : "*");
		buf_printf(&b, ",\"total\":{\"views\":%" PRIu64
		    ",\"visitors\":%" PRIu64 "}}\n", views, visitors);
		fputs(b.data, stdout);
		buf_free(&b);
	} else
		printf("%s %s: all-time views %s, visitors %s\n", site,
		    path[0] ? path : "(whole site)", ctl_thousands(n1, views),
		    ctl_thousands(n2, visitors));
	return 0;
}

/*
 * reset
 */

struct reset_write {
	const char	*site;
	const char	*path;		/* NULL: the whole site */
};

static int
reset_series(struct store_txn *txn, void *arg)
{
	struct reset_write *w = arg;

	return store_reset(txn, w->site, w->path);
}

/* Reads what a reset would delete into sc. Reset of what has no counts
 * is a mistake (a typo in the site or path), not a success. */
static int
reset_something(struct ctl *ctl, const char *site, const char *path,
    struct series_counts *sc)
{
	struct store_view *v;
	int rc = 0;

	if ((v = store_view_new(ctl->store)) == NULL)
		fatal("store_view_new");
	if (store_view_begin(v) != STORE_OK ||
	    store_get(v, site, path ? path : SITE_SERIES, 0, sc) !=
	    STORE_OK)
		rc = ctl_fail(ctl, "reading %s: %s", site,
		    store_error(ctl->store));
	else if (!sc->exists && path == NULL)
		rc = ctl_fail(ctl, "nothing to reset: site \"%s\" has no "
		    "counts", site);
	else if (!sc->exists)
		rc = ctl_fail(ctl, "nothing to reset: %s has no counts for %s",
		    site, path);
	store_view_free(v);
	return rc;
}

/* Asks on the terminal; true for "y" or "yes". */
static bool
confirm(const char *question)
{
	char line[64];
	size_t n;

	fprintf(stderr, "%s [y/N] ", question);
	fflush(stderr);
	if (fgets(line, sizeof(line), stdin) == NULL)
		return false;
	n = strcspn(line, "\r\n");
	line[n] = '\0';
	return strcasecmp(line, "y") == 0 || strcasecmp(line, "yes") == 0;
}

int
cmd_reset(struct ctl *ctl, int argc, char **argv)
{
	const char *site_opt = NULL, *path_opt = NULL, *site;
	bool yes = false;
	struct ctl_opt opts[] = {
		{ "site", &site_opt, NULL },
		{ "path", &path_opt, NULL },
		{ "yes", NULL, &yes },
		{ NULL, NULL, NULL },
	};
	struct reset_write w;
	struct series_counts sc;
	char path[PATH_MAX_LEN + 1], q[PATH_MAX_LEN + 256], n1[NUM_STRLEN];
	int rc, nargs;

	path[0] = '\0';
	if ((rc = ctl_parse(ctl, argc, argv, opts, NULL, &nargs, 0, 0)) != 0)
		return rc;
	if (site_opt == NULL)
		return ctl_usage(ctl, "--site is required");
	if ((rc = ctl_site(ctl, site_opt, &site)) != 0 ||
	    (path_opt && (rc = ctl_path(ctl, "--path", path_opt, path)) != 0))
		return rc;
	/* Deleting counts is for a human to confirm, or for a script to
	 * say it means it: without a terminal to ask on, --yes is a
	 * required flag, and leaving it out a usage error. */
	if (!yes && !(isatty(STDIN_FILENO) && isatty(STDERR_FILENO)))
		return ctl_usage(ctl, "deletes counts: give --yes (there is no "
		    "terminal to ask on)");
	if ((rc = need_store(ctl)) != 0 || (rc = ctl_open(ctl, 0)) != 0 ||
	    (rc = reset_something(ctl, site, path_opt ? path : NULL,
	    &sc)) != 0)
		return rc;

	if (!yes) {
		if (path_opt)
			snprintf(q, sizeof(q), "Delete the counts of %s %s "
			    "(%s views)?", site, path,
			    ctl_thousands(n1, sc.total.views));
		else
			snprintf(q, sizeof(q), "Delete every count of site %s "
			    "(%s views)?", site,
			    ctl_thousands(n1, sc.total.views));
		if (!confirm(q)) {
			fprintf(stderr, "tallyctl: reset: not confirmed; "
			    "nothing deleted\n");
			return 1;
		}
	}

	store_reader_check(ctl->store);
	/* A page's reset leaves the site's own counts alone: those views
	 * happened on the site. So do its referrers, which are the site's
	 * (store.h). */
	w.site = site;
	w.path = path_opt ? path : NULL;
	if (store_write(ctl->store, reset_series, &w) != STORE_OK)
		return ctl_fail(ctl, "deleting: %s", store_error(ctl->store));
	if (ctl->json)
		return 0;
	if (path_opt)
		printf("deleted the counts of %s %s (the site's own totals "
		    "and referrers keep its views)\n", site, path);
	else
		printf("deleted every count of site %s, its referrers too\n",
		    site);
	return 0;
}

/*
 * backup
 */

static bool
dir_empty(const char *dir)
{
	struct dirent *de;
	DIR *d;
	bool empty = true;

	if ((d = opendir(dir)) == NULL)
		return false;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0) {
			empty = false;
			break;
		}
	closedir(d);
	return empty;
}

/*
 * A database is copied by its own tools: say how, and write nothing.
 * The copy leaves out the visitor ids and salts, as LMDB's backup does;
 * the password stays where libpq finds it (~/.pgpass, PGPASSWORD).
 */
static int
backup_with_pg_dump(struct ctl *ctl, const char *dest)
{
	char shown[2 * PATH_MAX];

	text_escape(shown, sizeof(shown), dest, strlen(dest));
	fprintf(stderr, "tallyctl: backup: a PostgreSQL store is copied by "
	    "pg_dump; run:\n");
	printf("pg_dump --format=custom --exclude-table-data=tally_visitors "
	    "--exclude-table-data=tally_salts --file='%s' '%s'\n", shown,
	    ctl->where);
	return 0;
}

int
cmd_backup(struct ctl *ctl, int argc, char **argv)
{
	char *args[1], err[1024], file[PATH_MAX], n1[NUM_STRLEN];
	struct stat sb;
	int rc, nargs;

	if ((rc = ctl_parse(ctl, argc, argv, NULL, args, &nargs, 1, 1)) != 0)
		return rc;
	if ((rc = ctl_setup(ctl)) != 0)
		return rc;
	if (location_is_url(ctl->data))
		return backup_with_pg_dump(ctl, args[0]);
	if (stat(args[0], &sb) == 0 && (!S_ISDIR(sb.st_mode) ||
	    !dir_empty(args[0])))
		return ctl_fail(ctl, "%s exists and is not an empty directory",
		    args[0]);
	/* A compacting copy is one read transaction: tallyd goes on
	 * writing, and the copy is the store as of its start. */
	if ((rc = ctl_open(ctl, STORE_READONLY)) != 0)
		return rc;
	if (store_backup(ctl->store, args[0], err, sizeof(err)) != STORE_OK)
		return ctl_fail(ctl, "%s", err);
	snprintf(file, sizeof(file), "%s/data.mdb", args[0]);
	if (stat(file, &sb) == -1)
		return ctl_fail(ctl, "%s: %s", file, strerror(errno));
	if (ctl->json) {
		struct buf b;

		buf_init(&b);
		buf_puts(&b, "{\"backup\":");
		json_string(&b, args[0]);
		buf_printf(&b, ",\"bytes\":%lld}\n", (long long)sb.st_size);
		fputs(b.data, stdout);
		buf_free(&b);
	} else
		printf("backup of %s written to %s (%s bytes)\n", ctl->data,
		    args[0], ctl_thousands(n1, (uint64_t)sb.st_size));
	return 0;
}

/*
 * check
 *
 * What the store promises, verified in one snapshot: the schema version
 * is this tally's (store_open refuses others); the data file is as long
 * as the pages the store uses; the counts of every site are consistent
 * (ctl_verify); the ids handed out (next_id) cover the series; no day
 * row belongs to a series that does not exist.
 */

struct check {
	struct ctl	*ctl;
	uint64_t	 problems;
	struct buf	 out;
};

static void problem(struct check *, const char *, ...) TALLY_PRINTF(2, 3);

static void
problem(struct check *c, const char *fmt, ...)
{
	va_list ap;

	if (++c->problems > MAX_PROBLEMS)
		return;
	va_start(ap, fmt);
	if (c->ctl->json) {
		char msg[1024];

		vsnprintf(msg, sizeof(msg), fmt, ap);
		buf_puts(&c->out, c->problems > 1 ? ",\n" : "\n");
		json_string(&c->out, msg);
	} else {
		printf("%sproblem:%s ", ctl_sgr(c->ctl, "31"),
		    ctl_sgr(c->ctl, "0"));
		vprintf(fmt, ap);
		putchar('\n');
	}
	va_end(ap);
}

/* A verify_fn: every problem is reported, the walk goes on. */
static int
check_problem(void *arg, const struct verify_problem *p)
{
	problem(arg, "%s", p->msg);
	return 0;
}

int
cmd_check(struct ctl *ctl, int argc, char **argv)
{
	struct check c;
	struct verify_totals tot;
	struct store_view *v = NULL;
	struct store_stat ss;
	struct stat sb;
	char file[PATH_MAX], n1[NUM_STRLEN], n2[NUM_STRLEN], n3[NUM_STRLEN],
	    n4[NUM_STRLEN];
	uint32_t schema = 0, next_id = 0;
	size_t len;
	int rc, nargs;

	memset(&c, 0, sizeof(c));
	memset(&tot, 0, sizeof(tot));
	buf_init(&c.out);
	c.ctl = ctl;
	if ((rc = ctl_parse(ctl, argc, argv, NULL, NULL, &nargs, 0, 0)) != 0)
		return rc;
	/* store_open refuses a store of another schema version, or one
	 * that is not LMDB. */
	if ((rc = ctl_open(ctl, STORE_READONLY)) != 0)
		return rc;

	/* Before any page is read: a data file shorter than the pages in
	 * use would be read past its end. A database's files are its
	 * server's to check. */
	if (!location_is_url(ctl->data)) {
		snprintf(file, sizeof(file), "%s/data.mdb", ctl->data);
		if (store_stat(ctl->store, &ss) != STORE_OK ||
		    stat(file, &sb) == -1) {
			rc = ctl_fail(ctl, "reading the size of %s: %s", file,
			    strerror(errno));
			goto done;
		}
		if ((uint64_t)sb.st_size < ss.used_bytes) {
			rc = ctl_fail(ctl, "%s is truncated: %lld bytes, but "
			    "the store uses %" PRIu64, file,
			    (long long)sb.st_size, ss.used_bytes);
			goto done;
		}
	}

	if ((v = store_view_new(ctl->store)) == NULL ||
	    store_view_begin(v) != STORE_OK) {
		rc = ctl_fail(ctl, "starting a read: %s",
		    store_error(ctl->store));
		goto done;
	}
	len = sizeof(schema);
	if (store_meta_get(v, "schema", &schema, &len) != STORE_OK ||
	    len != sizeof(schema)) {
		problem(&c, "the schema version cannot be read");
	} else if (schema < STORE_SCHEMA_OLDEST ||
	    schema > STORE_SCHEMA_VERSION)
		problem(&c, "schema version %" PRIu32 ", want %d to %d", schema,
		    STORE_SCHEMA_OLDEST, STORE_SCHEMA_VERSION);
	len = sizeof(next_id);
	rc = store_meta_get(v, "next_id", &next_id, &len);
	if (rc == STORE_ERROR || (rc == STORE_OK && len != sizeof(next_id)))
		problem(&c, "the next series id cannot be read");
	rc = 0;

	if (ctl_verify(v, NULL, check_problem, &c, &tot) != STORE_OK)
		problem(&c, "reading the series: %s", store_error(ctl->store));
	if (ctl_verify_referrers(v, NULL, ctl->cfg.max_referrers,
	    check_problem, &c, &tot) != STORE_OK)
		problem(&c, "reading the referrers: %s",
		    store_error(ctl->store));
	{
		uint64_t orphans;

		if (store_orphan_rows(v, &orphans) != STORE_OK)
			problem(&c, "reading the day rows: %s",
			    store_error(ctl->store));
		else if (orphans > 0)
			problem(&c, "%" PRIu64 " day rows belong to no series "
			    "or disagree with the totals kept beside them",
			    orphans);
	}
	/* Ids start at 1; every series took one. */
	if (tot.series > 0 && (uint64_t)next_id < tot.series + 1)
		problem(&c, "%" PRIu64 " series, but only %" PRIu32 " ids "
		    "were handed out", tot.series,
		    next_id > 0 ? next_id - 1 : 0);

	if (ctl->json) {
		printf("{\"ok\":%s,\"schema\":%" PRIu32 ",\"sites\":%" PRIu64
		    ",\"series\":%" PRIu64 ",\"rows\":%" PRIu64
		    ",\"referrer_rows\":%" PRIu64 ",\"problems\":[%s%s]}\n",
		    c.problems ? "false" : "true", schema, tot.sites,
		    tot.series, tot.rows, tot.referrer_rows, c.out.data,
		    c.problems ? "\n" : "");
	} else if (c.problems > MAX_PROBLEMS)
		printf("... and %" PRIu64 " more problems\n",
		    c.problems - MAX_PROBLEMS);
	if (c.problems) {
		fprintf(stderr, "tallyctl: check: %s: %s problem%s found\n",
		    ctl->data, ctl_thousands(n1, c.problems),
		    c.problems == 1 ? "" : "s");
		rc = 1;
	} else if (!ctl->json)
		printf("ok: schema %" PRIu32 ", %s site%s, %s series, %s day "
		    "rows, %s referrer rows\n", schema,
		    ctl_thousands(n1, tot.sites), tot.sites == 1 ? "" : "s",
		    ctl_thousands(n2, tot.series), ctl_thousands(n3, tot.rows),
		    ctl_thousands(n4, tot.referrer_rows));
done:
	store_view_free(v);
	buf_free(&c.out);
	return rc;
}
