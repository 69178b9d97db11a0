/*
 * tallyctl import: an export (ctl_export.c) read back, all or nothing.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tally/arena.h"
#include "tally/buf.h"
#include "tally/exportrow.h"
#include "tally/escape.h"
#include "tally/path.h"

#include "ctl.h"

/*
 * import
 *
 * The whole input is read and checked before the store is touched;
 * then every row goes in one write transaction. So a bad line imports
 * nothing, and tallyd never sees half an import.
 */

struct import {
	struct ctl	*ctl;
	const char	*file;
	struct exportrow	*rows;		/* strings in the arena */
	size_t		 n, cap;
	struct arena	 strings;
	const char	*last_site, *last_path;
	bool		 add;		/* --add: rows the store has add up */
	bool		 create;	/* --create: new sites may come */
	/* What made the write fail, and the line it is blamed on. */
	unsigned long	 bad_line;
	char		 bad[1024];
};

/* Keeps a checked row. */
static void
add_row(struct import *im, const struct exportrow *row)
{
	struct exportrow r = *row;

	if (im->last_site == NULL || strcmp(im->last_site, r.site) != 0)
		im->last_site = arena_strdup(&im->strings, r.site,
		    strlen(r.site));
	r.site = im->last_site;
	if (r.referrer != NULL) {
		/* Each its own: a day's hosts rarely repeat in a row. */
		r.referrer = arena_strdup(&im->strings, r.referrer,
		    strlen(r.referrer));
	} else {
		if (im->last_path == NULL ||
		    strcmp(im->last_path, r.path) != 0)
			im->last_path = arena_strdup(&im->strings, r.path,
			    strlen(r.path));
		r.path = im->last_path;
	}
	if (im->n == im->cap) {
		im->cap = im->cap ? im->cap * 2 : 1024;
		if ((im->rows = reallocarray(im->rows, im->cap,
		    sizeof(*im->rows))) == NULL)
			fatal("import");
	}
	im->rows[im->n++] = r;
}

/* Reads every row of the text; on a bad one, says where it is (the
 * FILE:LINE: form that editors jump to). */
static int
read_rows(struct import *im, enum exportrow_format fmt, const char *text,
    size_t len)
{
	struct exportrow_reader r;
	struct exportrow row;
	char msg[2048];
	int rc;

	exportrow_reader_init(&r, fmt, text, len);
	while ((rc = exportrow_parse(&r, &row)) == 1)
		add_row(im, &row);
	if (rc == -1) {
		snprintf(msg, sizeof(msg), "%s:%lu: %s", im->file, r.errline,
		    r.err);
		ctl_eputs(msg);		/* it quotes the line */
		fputc('\n', stderr);
	}
	return rc;
}

static int
read_all(FILE *f, struct buf *b)
{
	char chunk[65536];
	size_t n;

	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(b, chunk, n);
	return ferror(f) ? -1 : 0;
}

/* The row a problem is blamed on: the last one of its series and day,
 * else of its series, else of its site's day, else of its site. */
static unsigned long
blame(const struct import *im, const struct verify_problem *p)
{
	const struct exportrow *r;
	int pass;
	size_t i;

	for (pass = 0; pass < 4; pass++)
		for (i = im->n; i-- > 0;) {
			r = &im->rows[i];
			if (strcmp(r->site, p->site) != 0)
				continue;
			if (pass < 2 && (p->path == NULL || r->path == NULL ||
			    strcmp(r->path, p->path) != 0))
				continue;
			if ((pass == 0 || pass == 2) &&
			    (p->day == VERIFY_ALL_TIME || r->day != p->day))
				continue;
			return r->line;
		}
	return 0;
}

/* A verify_fn: the first problem stops the import. */
static int
import_problem(void *arg, const struct verify_problem *p)
{
	struct import *im = arg;

	im->bad_line = blame(im, p);
	snprintf(im->bad, sizeof(im->bad), "%s", p->msg);
	return 1;
}

/* A referrer row of a day and host the store already counts needs
 * --add, as a series' row does. */
static int
referrer_welcome(struct store_txn *txn, struct import *im,
    const struct exportrow *r)
{
	uint64_t views;
	int rc;

	if ((rc = store_referrer_get(store_txn_view(txn), r->site, r->day,
	    r->referrer, &views)) != STORE_OK)
		return rc;
	if (views == 0)
		return STORE_OK;
	im->bad_line = r->line;
	snprintf(im->bad, sizeof(im->bad), "the store already counts this "
	    "row's referrer on that day; give --add to add to it");
	return STORE_ERROR;
}

/*
 * Before anything is written: importing an export twice would double
 * every count without a word, so rows of a series and day the store
 * already counts need --add; and a site that neither the store nor the
 * configuration knows (a typo, another install's export) needs
 * --create.
 */
static int
rows_welcome(struct store_txn *txn, struct import *im)
{
	const struct exportrow *r;
	struct series_counts sc;
	const char *site = NULL;
	size_t i;
	int rc;

	for (i = 0; i < im->n; i++) {
		r = &im->rows[i];
		if (!im->create && (site == NULL ||
		    strcmp(site, r->site) != 0)) {
			site = r->site;
			if ((rc = store_txn_get(txn, site, SITE_SERIES, 0,
			    &sc)) != STORE_OK)
				return rc;
			if (!sc.exists && config_site(&im->ctl->cfg, site) ==
			    NULL) {
				im->bad_line = r->line;
				snprintf(im->bad, sizeof(im->bad), "unknown "
				    "site \"%s\"; give --create to make it",
				    site);
				return STORE_ERROR;
			}
		}
		if (im->add)
			continue;
		if (r->referrer != NULL) {
			if ((rc = referrer_welcome(txn, im, r)) != STORE_OK)
				return rc;
			continue;
		}
		if ((rc = store_txn_get(txn, r->site, r->path,
		    r->day == DAY_ADJUST ? 0 : r->day, &sc)) != STORE_OK)
			return rc;
		if (r->day == DAY_ADJUST ? sc.exists && (sc.total.views ||
		    sc.total.visitors) : sc.day.views || sc.day.visitors) {
			im->bad_line = r->line;
			snprintf(im->bad, sizeof(im->bad), "the store already "
			    "counts this row's %s; give --add to add to it",
			    r->day == DAY_ADJUST ? "series" : "day");
			return STORE_ERROR;
		}
	}
	return STORE_OK;
}

/*
 * The order rows are written in: every series by site and path (a
 * site's own series first), then the referrers by site, day and host.
 * It is the order in which the nodes of a shared store take rows that
 * others write too (series, then a site's day of referring hosts), so
 * that an import never holds a row a flushing node waits for while it
 * waits for one that node holds: neither can deadlock the other. The
 * counts add up the same in any order.
 */
static int
write_order(const void *a, const void *b)
{
	const struct exportrow *x = *(const struct exportrow *const *)a;
	const struct exportrow *y = *(const struct exportrow *const *)b;
	int c;

	if ((x->referrer != NULL) != (y->referrer != NULL))
		return x->referrer != NULL ? 1 : -1;
	if ((c = strcmp(x->site, y->site)) != 0)
		return c;
	if (x->referrer == NULL)
		return (c = strcmp(x->path, y->path)) != 0 ? c :
		    (x->day > y->day) - (x->day < y->day);
	if (x->day != y->day)
		return x->day < y->day ? -1 : 1;
	return strcmp(x->referrer, y->referrer);
}

/* Every row, in one transaction (a store_write_fn); then the sites it
 * touched must pass check's rules, or nothing is imported. */
static int
add_rows(struct store_txn *txn, void *arg)
{
	struct import *im = arg;
	const struct exportrow *r, **order;
	const char *site = NULL;
	size_t i;
	int rc = STORE_OK;

	im->bad[0] = '\0';
	if ((rc = rows_welcome(txn, im)) != STORE_OK)
		return rc;
	if ((order = reallocarray(NULL, im->n ? im->n : 1,
	    sizeof(*order))) == NULL)
		fatal("import");
	for (i = 0; i < im->n; i++)
		order[i] = &im->rows[i];
	qsort(order, im->n, sizeof(*order), write_order);
	for (i = 0; i < im->n && rc == STORE_OK; i++) {
		r = order[i];
		if (r->referrer != NULL)
			rc = store_referrer_add_exact(txn, r->site, r->day,
			    r->referrer, r->views);
		else if (r->day == DAY_ADJUST)
			rc = store_add_adjust(txn, r->site, r->path,
			    (int64_t)r->views, (int64_t)r->visitors);
		else
			rc = store_add_exact(txn, r->site, r->path, r->day,
			    r->views, r->visitors);
		if (rc == STORE_ERROR) {
			im->bad_line = r->line;
			snprintf(im->bad, sizeof(im->bad), "%s",
			    store_error(im->ctl->store));
		}
	}
	free(order);
	/* Rows come grouped by site: a site is verified once per run. */
	for (i = 0; i < im->n && rc == STORE_OK; i++) {
		r = &im->rows[i];
		if (site && strcmp(site, r->site) == 0)
			continue;
		site = r->site;
		rc = ctl_verify(store_txn_view(txn), site, import_problem, im,
		    NULL);
		if (rc == STORE_OK && !im->bad[0])
			rc = ctl_verify_referrers(store_txn_view(txn), site,
			    im->ctl->cfg.max_referrers, import_problem, im,
			    NULL);
		if (im->bad[0])
			rc = STORE_ERROR;
	}
	return rc;
}

static int
import_write(struct import *im)
{
	struct store *st = im->ctl->store;

	store_reader_check(st);
	if (store_write(st, add_rows, im) == STORE_OK)
		return 0;
	if (im->bad[0] && im->bad_line > 0)
		fprintf(stderr, "%s:%lu: %s\n", im->file, im->bad_line,
		    im->bad);
	else if (im->bad[0])
		fprintf(stderr, "%s: %s\n", im->file, im->bad);
	else
		return ctl_fail(im->ctl, "writing: %s; nothing was imported",
		    store_error(st));
	fprintf(stderr, "tallyctl: import: nothing imported\n");
	return 1;
}

int
cmd_import(struct ctl *ctl, int argc, char **argv)
{
	const char *format_opt = NULL;
	bool add = false, create = false;
	struct ctl_opt opts[] = {
		{ "format", &format_opt, NULL },
		{ "add", NULL, &add },
		{ "create", NULL, &create },
		{ NULL, NULL, NULL },
	};
	struct import im;
	enum ctl_format fmt = FMT_GUESS;
	struct buf in;
	char *args[1], n1[NUM_STRLEN];
	const char *p, *start;
	size_t len;
	FILE *f;
	int rc, nargs;

	memset(&im, 0, sizeof(im));
	buf_init(&in);
	if ((rc = ctl_parse(ctl, argc, argv, opts, args, &nargs, 1, 1)) != 0 ||
	    (rc = ctl_format(ctl, format_opt, &fmt)) != 0)
		return rc;
	/* The configuration is checked before the file is read. */
	if ((rc = ctl_setup(ctl)) != 0)
		return rc;
	im.ctl = ctl;
	im.add = add;
	im.create = create;
	im.file = strcmp(args[0], "-") == 0 ? "(stdin)" : args[0];

	if (strcmp(args[0], "-") == 0)
		f = stdin;
	else if ((f = fopen(args[0], "r")) == NULL)
		return ctl_fail(ctl, "%s: %s", args[0], strerror(errno));
	if (read_all(f, &in) == -1) {
		rc = ctl_fail(ctl, "reading %s: %s", im.file, strerror(errno));
		if (f != stdin)
			fclose(f);
		goto done;
	}
	if (f != stdin)
		fclose(f);

	/* Spreadsheets save CSV with a byte order mark. */
	start = in.data;
	len = in.len;
	if (len >= 3 && memcmp(start, "\xef\xbb\xbf", 3) == 0) {
		start += 3;
		len -= 3;
	}
	if (fmt == FMT_GUESS) {
		for (p = start; *p == ' ' || *p == '\t' || *p == '\r' ||
		    *p == '\n'; p++)
			;
		fmt = *p == '[' ? FMT_JSON : FMT_CSV;
	}
	if (read_rows(&im, fmt == FMT_JSON ? EXPORTROW_JSON : EXPORTROW_CSV, start,
	    len) == -1) {
		fprintf(stderr, "tallyctl: import: nothing imported\n");
		rc = 1;
		goto done;
	}
	buf_free(&in);

	if ((rc = ctl_open(ctl, 0)) != 0)
		goto done;
	if ((rc = import_write(&im)) != 0)
		goto done;
	if (ctl->json)
		printf("{\"rows\":%zu}\n", im.n);
	else
		printf("imported %s row%s into %s\n", ctl_thousands(n1, im.n),
		    im.n == 1 ? "" : "s", ctl->data);
done:
	buf_free(&in);
	free(im.rows);
	arena_free(&im.strings);
	return rc;
}
