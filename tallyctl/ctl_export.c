/*
 * tallyctl export: every count of the store as daily rows
 * "site,day,path,views,visitors", in CSV or JSON.
 *
 * Path "*" is a site's own series, day "-" a series' all-time
 * adjustment (what "set" made), path "referrer:HOST" the site's views of
 * a day from a referring host. Rows come by site, then by path in the
 * store's order (the site's own series first), the adjustment before
 * the days, days ascending, then the site's referrers by day and host:
 * the order is the store's, so that exporting what an import wrote
 * gives the same bytes back.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tally/buf.h"
#include "tally/exportrow.h"
#include "tally/escape.h"

#include "ctl.h"

#define FLUSH_AT	(1 << 16)

/*
 * export
 */

struct export_state {
	struct ctl	*ctl;
	struct store_view *v;
	enum ctl_format	 fmt;
	struct buf	 out;
	uint64_t	 rows;
	bool		 tty;		/* stdout is a terminal */
	char		 site[SITE_NAME_MAX + 2];	/* its series so far */
};

static int
export_put(struct export_state *es, const struct exportrow *row)
{
	if (es->fmt == FMT_JSON)
		buf_puts(&es->out, es->rows ? ",\n" : "\n");
	exportrow_format(&es->out, es->fmt == FMT_JSON ? EXPORTROW_JSON :
	    EXPORTROW_CSV, row);
	es->rows++;
	if (es->out.len >= FLUSH_AT) {
		if (fwrite(es->out.data, 1, es->out.len, stdout) !=
		    es->out.len)
			return STORE_ERROR;
		buf_reset(&es->out);
	}
	return STORE_OK;
}

/*
 * A path or host as export writes it: escaped on a terminal, for a store
 * from before paths were checked may hold controls; a file gets the
 * bytes, which import names. shown holds 4 * len + 1 bytes.
 */
static const char *
for_output(const struct export_state *es, const char *s, char *shown,
    size_t shownsz)
{
	if (!es->tty || es->fmt != FMT_CSV)
		return s;
	text_escape(shown, shownsz, s, strlen(s));
	return shown;
}

static int
export_referrer(void *arg, int day, const char *host, uint64_t views)
{
	struct export_state *es = arg;
	struct exportrow row;
	char shown[4 * STORE_REFERRER_MAX + 1];

	memset(&row, 0, sizeof(row));
	row.site = es->site;
	row.day = day;
	row.referrer = for_output(es, host, shown, sizeof(shown));
	row.views = views;
	return export_put(es, &row);
}

/* The referrers of the site whose series were written last. */
static int
export_referrers(struct export_state *es)
{
	if (es->site[0] == '\0')
		return STORE_OK;
	return store_each_referrer(es->v, es->site, 0, INT_MAX,
	    export_referrer, es);
}

static int
export_row(void *arg, const char *site, const char *path, int day,
    const struct counts *c)
{
	struct export_state *es = arg;
	struct exportrow row;
	char shown[4 * PATH_MAX_LEN + 1];

	memset(&row, 0, sizeof(row));
	row.site = site;
	row.path = for_output(es, path, shown, sizeof(shown));
	row.day = day;
	row.views = c->views;
	row.visitors = c->visitors;
	return export_put(es, &row);
}

static int
export_series(void *arg, const char *site, const char *path,
    const struct series_counts *sc)
{
	struct export_state *es = arg;
	int rc;

	if (strcmp(es->site, site) != 0) {
		if ((rc = export_referrers(es)) != STORE_OK)
			return rc;
		snprintf(es->site, sizeof(es->site), "%s", site);
	}
	return store_each_day(es->v, site, path, 0, INT_MAX, true, export_row,
	    es);
}

int
cmd_export(struct ctl *ctl, int argc, char **argv)
{
	const char *site_opt = NULL, *format_opt = NULL, *site = NULL;
	struct ctl_opt opts[] = {
		{ "site", &site_opt, NULL },
		{ "format", &format_opt, NULL },
		{ NULL, NULL, NULL },
	};
	struct export_state es;
	int rc, nargs;

	memset(&es, 0, sizeof(es));
	buf_init(&es.out);
	if ((rc = ctl_parse(ctl, argc, argv, opts, NULL, &nargs, 0, 0)) != 0 ||
	    (rc = ctl_format(ctl, format_opt, &es.fmt)) != 0 ||
	    (site_opt && (rc = ctl_site(ctl, site_opt, &site)) != 0))
		return rc;
	/* --json asks for JSON too, unless a format was named. */
	if (es.fmt == FMT_GUESS)
		es.fmt = ctl->json ? FMT_JSON : FMT_CSV;
	if ((rc = ctl_open(ctl, STORE_READONLY)) != 0)
		return rc;
	es.ctl = ctl;
	es.tty = isatty(STDOUT_FILENO);
	if ((es.v = store_view_new(ctl->store)) == NULL)
		return ctl_fail(ctl, "store_view_new: out of memory");
	/* One snapshot: the export is consistent while tallyd writes. */
	if (store_view_begin(es.v) != STORE_OK) {
		rc = ctl_fail(ctl, "starting a read: %s",
		    store_error(ctl->store));
		goto done;
	}
	if (site && (rc = ctl_site_known(ctl, es.v, site)) != 0)
		goto done;
	buf_puts(&es.out, es.fmt == FMT_JSON ? "[" : EXPORTROW_HEADER "\n");
	if (store_each_series(es.v, site, export_series, &es) != STORE_OK ||
	    export_referrers(&es) != STORE_OK) {
		if (ferror(stdout))
			rc = ctl_fail(ctl, "writing the output: %s",
			    strerror(errno));
		else
			rc = ctl_fail(ctl, "reading the store: %s",
			    store_error(ctl->store));
		goto done;
	}
	if (es.fmt == FMT_JSON)
		buf_puts(&es.out, es.rows ? "\n]\n" : "]\n");
	if (fwrite(es.out.data, 1, es.out.len, stdout) != es.out.len)
		rc = ctl_fail(ctl, "writing the output: %s", strerror(errno));
done:
	store_view_free(es.v);
	buf_free(&es.out);
	return rc;
}

