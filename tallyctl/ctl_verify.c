/*
 * What makes the counts of a site consistent: one definition, used by
 * "check" on every site, and by "import" and "set" on the sites they
 * write, inside their own transaction, so that they refuse to leave the
 * store in a state that check would reject.
 *
 *  - every series: all-time total = its daily rows + its adjustment,
 *    exactly (no count wraps), no count above STORE_COUNT_MAX, and no
 *    more visitors than views;
 *  - every site: a series of its own, npages = its number of pages, and
 *    no page with more all-time views than the site (tallyd adds each
 *    view to both; only a page's reset or set makes the site larger);
 *  - every day: the site's views >= its pages' views, and no page has
 *    more visitors than the site;
 *  - site ids and paths are valid.
 *
 * Rows of a site come site series first, then pages, each series' days
 * in order: one pass with the site's days kept in a sorted array.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tally/day.h"
#include "tally/escape.h"
#include "tally/path.h"

#include "ctl.h"

struct day_sum {
	int		 day;
	struct counts	 site;
	uint64_t	 page_views;	/* summed, saturating */
};

struct verify {
	struct store_view *v;
	verify_fn	 fn;
	void		*arg;
	int		 stop;		/* fn's non-zero answer */
	struct verify_totals *tot;
	/* the site being walked */
	char		 site[SITE_NAME_MAX + 1];
	bool		 in_site, has_site_series;
	uint32_t	 npages, pages;
	struct counts	 site_total;
	struct day_sum	*days;
	size_t		 ndays, capdays;
	/* the series being walked */
	uint64_t	 sum_views, sum_visitors;	/* of its rows */
	bool		 over_views, over_visitors;	/* sums past 2^64 */
	int64_t		 adj_views, adj_visitors;
	bool		 is_site;
};

static void problem(struct verify *, const char *, const char *, int,
    const char *, ...) TALLY_PRINTF(5, 6);

static void
problem(struct verify *c, const char *site, const char *path, int day,
    const char *fmt, ...)
{
	struct verify_problem p;
	char msg[1024];
	va_list ap;

	if (c->stop)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	p.site = site;
	p.path = path;
	p.day = day;
	p.msg = msg;
	c->stop = c->fn(c->arg, &p);
}

static struct day_sum *
find_day(struct verify *c, int day)
{
	size_t lo = 0, hi = c->ndays, mid;

	while (lo < hi) {
		mid = (lo + hi) / 2;
		if (c->days[mid].day == day)
			return &c->days[mid];
		if (c->days[mid].day < day)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int
verify_row(void *arg, const char *site, const char *path, int day,
    const struct counts *cn)
{
	struct verify *c = arg;
	struct day_sum *ds;
	char d[DAY_STRLEN];
	const char *what = path[0] ? path : "(site)";

	if (day == DAY_ADJUST) {
		c->adj_views = (int64_t)cn->views;
		c->adj_visitors = (int64_t)cn->visitors;
		return c->stop;
	}
	c->over_views |= __builtin_add_overflow(c->sum_views, cn->views,
	    &c->sum_views);
	c->over_visitors |= __builtin_add_overflow(c->sum_visitors,
	    cn->visitors, &c->sum_visitors);
	if (c->tot)
		c->tot->rows++;
	day_format(day, d);
	if (cn->visitors > cn->views)
		problem(c, site, path, day, "%s %s %s: %" PRIu64 " visitors "
		    "but only %" PRIu64 " views", site, what, d, cn->visitors,
		    cn->views);
	if (cn->views > STORE_COUNT_MAX || cn->visitors > STORE_COUNT_MAX)
		problem(c, site, path, day, "%s %s %s: more than the largest "
		    "count (%" PRId64 ")", site, what, d,
		    (int64_t)STORE_COUNT_MAX);
	if (c->is_site) {
		/* Rows come in day order: the array stays sorted. */
		if (c->ndays == c->capdays) {
			c->capdays = c->capdays ? c->capdays * 2 : 1024;
			if ((c->days = reallocarray(c->days, c->capdays,
			    sizeof(*c->days))) == NULL)
				fatal("check");
		}
		memset(&c->days[c->ndays], 0, sizeof(c->days[0]));
		c->days[c->ndays].day = day;
		c->days[c->ndays++].site = *cn;
		return c->stop;
	}
	if (!c->has_site_series)
		return c->stop;
	if ((ds = find_day(c, day)) == NULL) {
		problem(c, site, path, day, "%s %s %s: %" PRIu64 " views on a "
		    "day the site has none", site, path, d, cn->views);
		return c->stop;
	}
	if (__builtin_add_overflow(ds->page_views, cn->views, &ds->page_views))
		ds->page_views = UINT64_MAX;
	if (cn->visitors > ds->site.visitors)
		problem(c, site, path, day, "%s %s %s: %" PRIu64 " visitors, "
		    "more than the site's %" PRIu64, site, path, d,
		    cn->visitors, ds->site.visitors);
	return c->stop;
}

static void
finish_site(struct verify *c)
{
	char d[DAY_STRLEN];
	size_t i;

	if (!c->in_site)
		return;
	if (c->has_site_series && c->pages != c->npages)
		problem(c, c->site, NULL, VERIFY_ALL_TIME, "%s: the site "
		    "records %" PRIu32 " pages, the store holds %" PRIu32,
		    c->site, c->npages, c->pages);
	for (i = 0; i < c->ndays; i++) {
		if (c->days[i].page_views <= c->days[i].site.views)
			continue;
		day_format(c->days[i].day, d);
		problem(c, c->site, NULL, c->days[i].day, "%s %s: its pages "
		    "have %" PRIu64 " views, more than the site's %" PRIu64,
		    c->site, d, c->days[i].page_views, c->days[i].site.views);
	}
	c->ndays = 0;
	c->in_site = false;
}

static bool
path_ok(const char *path)
{
	size_t len = strlen(path), i;

	if (len == 0 || path[0] != '/' || len > PATH_MAX_LEN ||
	    !utf8_valid(path, len))
		return false;
	for (i = 0; i < len; i++)
		if ((unsigned char)path[i] < 0x20 || path[i] == 0x7f)
			return false;
	return true;
}

/* What the rows and the adjustment add up to, exactly; false when that
 * is below 0 or past 2^64. */
static bool
expected_total(uint64_t rows, bool over, int64_t adj, uint64_t *out)
{
	if (over)
		return false;
	if (adj >= 0)
		return !__builtin_add_overflow(rows, (uint64_t)adj, out);
	if (rows < -(uint64_t)adj)
		return false;
	*out = rows - -(uint64_t)adj;
	return true;
}

static void
verify_total(struct verify *c, const char *site, const char *path,
    const char *kind, uint64_t total, uint64_t rows, bool over, int64_t adj)
{
	const char *what = path[0] ? path : "(site)";
	uint64_t want;

	if (!expected_total(rows, over, adj, &want))
		problem(c, site, path, VERIFY_ALL_TIME, "%s %s: its rows and "
		    "adjustment of %s add up to %s", site, what, kind,
		    over ? "more than 2^64" : "less than 0");
	else if (want != total)
		problem(c, site, path, VERIFY_ALL_TIME, "%s %s: total %" PRIu64
		    " %s, its rows and adjustment add up to %" PRIu64, site,
		    what, total, kind, want);
	if (total > STORE_COUNT_MAX)
		problem(c, site, path, VERIFY_ALL_TIME, "%s %s: %" PRIu64 " %s, "
		    "more than the largest count (%" PRId64 ")", site, what,
		    total, kind, (int64_t)STORE_COUNT_MAX);
}

static int
verify_series(void *arg, const char *site, const char *path,
    const struct series_counts *sc)
{
	struct verify *c = arg;
	const char *what = path[0] ? path : "(site)";
	int rc;

	if (c->tot)
		c->tot->series++;
	if (!c->in_site || strcmp(c->site, site) != 0) {
		finish_site(c);
		c->in_site = true;
		if (c->tot)
			c->tot->sites++;
		snprintf(c->site, sizeof(c->site), "%s", site);
		c->has_site_series = path[0] == '\0';
		c->npages = c->has_site_series ? sc->npages : 0;
		c->site_total = sc->total;
		c->pages = 0;
		if (!site_name_valid(site))
			problem(c, site, NULL, VERIFY_ALL_TIME, "invalid site "
			    "id \"%s\"", site);
		if (!c->has_site_series)
			problem(c, site, path, VERIFY_ALL_TIME, "%s: pages "
			    "without the site's own series", site);
	}
	c->is_site = path[0] == '\0';
	if (!c->is_site) {
		c->pages++;
		if (!path_ok(path))
			problem(c, site, path, VERIFY_ALL_TIME, "%s: invalid "
			    "path \"%s\"", site, path);
		if (c->has_site_series && sc->total.views > c->site_total.views)
			problem(c, site, path, VERIFY_ALL_TIME, "%s %s: %" PRIu64
			    " views in all, more than the site's %" PRIu64,
			    site, path, sc->total.views, c->site_total.views);
	}
	c->sum_views = c->sum_visitors = 0;
	c->over_views = c->over_visitors = false;
	c->adj_views = c->adj_visitors = 0;
	rc = store_each_day(c->v, site, path, 0, INT_MAX, true, verify_row, c);
	if (rc != STORE_OK)
		return rc;
	verify_total(c, site, path, "views", sc->total.views, c->sum_views,
	    c->over_views, c->adj_views);
	verify_total(c, site, path, "visitors", sc->total.visitors,
	    c->sum_visitors, c->over_visitors, c->adj_visitors);
	if (sc->total.visitors > sc->total.views)
		problem(c, site, path, VERIFY_ALL_TIME, "%s %s: %" PRIu64
		    " visitors in all but only %" PRIu64 " views", site, what,
		    sc->total.visitors, sc->total.views);
	return c->stop;
}

int
ctl_verify(struct store_view *v, const char *site, verify_fn fn, void *arg,
    struct verify_totals *tot)
{
	struct verify c;
	int rc;

	memset(&c, 0, sizeof(c));
	c.v = v;
	c.fn = fn;
	c.arg = arg;
	c.tot = tot;
	rc = store_each_series(v, site, verify_series, &c);
	if (rc == STORE_OK || c.stop)
		finish_site(&c);
	free(c.days);
	if (c.stop)
		return c.stop;
	return rc;
}
