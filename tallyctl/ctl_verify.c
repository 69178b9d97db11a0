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
 *  - site ids and paths are valid;
 *  - the window's sums (where the store keeps them): each page's sum is
 *    that of its daily rows the sums hold (see store.h), and a site's
 *    pages in the order of most views are exactly those with a sum;
 *  - referrers: only of sites with counts, valid names, at least one
 *    view a row, at most max_referrers hosts a day besides (other), and
 *    no more views from them on a day than the site had.
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
#include "tally/referrer.h"

#include "ctl.h"

struct day_sum {
	int		 day;
	struct counts	 site;
	uint64_t	 page_views;	/* summed, saturating */
};

/* Where problems go: fn, until it answers non-zero to stop the walk. */
struct reporter {
	verify_fn	 fn;
	void		*arg;
	int		 stop;		/* fn's non-zero answer */
};

struct verify {
	struct store_view *v;
	struct reporter	 rep;
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
	/* the window's sums: what its rows add up to (wrapping, as the
	 * sums do), and the site's pages that have one */
	bool		 has_window;
	struct store_window win;
	uint32_t	 id;
	struct counts	 win_sum;
	uint64_t	 win_pages;
};

static void problem(struct reporter *, const char *, const char *, int,
    const char *, ...) TALLY_PRINTF(5, 6);

static void
problem(struct reporter *rep, const char *site, const char *path, int day,
    const char *fmt, ...)
{
	struct verify_problem p;
	char msg[1024];
	va_list ap;

	if (rep->stop)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	p.site = site;
	p.path = path;
	p.day = day;
	p.msg = msg;
	rep->stop = rep->fn(rep->arg, &p);
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
		return c->rep.stop;
	}
	c->over_views |= __builtin_add_overflow(c->sum_views, cn->views,
	    &c->sum_views);
	c->over_visitors |= __builtin_add_overflow(c->sum_visitors,
	    cn->visitors, &c->sum_visitors);
	if (c->has_window && !c->is_site && day <= c->win.high &&
	    (day > c->win.out_day || (day == c->win.out_day &&
	    c->id >= c->win.out_id))) {
		c->win_sum.views += cn->views;
		c->win_sum.visitors += cn->visitors;
	}
	if (c->tot)
		c->tot->rows++;
	day_format(day, d);
	if (cn->visitors > cn->views)
		problem(&c->rep, site, path, day,
		    "%s %s %s: %" PRIu64 " visitors "
		    "but only %" PRIu64 " views", site, what, d, cn->visitors,
		    cn->views);
	if (cn->views > STORE_COUNT_MAX || cn->visitors > STORE_COUNT_MAX)
		problem(&c->rep, site, path, day,
		    "%s %s %s: more than the largest "
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
		return c->rep.stop;
	}
	if (!c->has_site_series)
		return c->rep.stop;
	if ((ds = find_day(c, day)) == NULL) {
		problem(&c->rep, site, path, day,
		    "%s %s %s: %" PRIu64 " views on a "
		    "day the site has none", site, path, d, cn->views);
		return c->rep.stop;
	}
	if (__builtin_add_overflow(ds->page_views, cn->views, &ds->page_views))
		ds->page_views = UINT64_MAX;
	if (cn->visitors > ds->site.visitors)
		problem(&c->rep, site, path, day,
		    "%s %s %s: %" PRIu64 " visitors, "
		    "more than the site's %" PRIu64, site, path, d,
		    cn->visitors, ds->site.visitors);
	return c->rep.stop;
}

/* A site's pages in the window's order: each with its own sum, most
 * views first, and as many as have one. */
struct rank_walk {
	struct verify	*c;
	uint64_t	 n, last;
	int		 rc;
};

static int
verify_rank(void *arg, uint32_t id, const struct counts *cn)
{
	struct rank_walk *r = arg;
	struct counts sum;

	if ((r->rc = store_window_get(r->c->v, id, &sum)) != STORE_OK)
		return 1;
	if (sum.views != cn->views || sum.visitors != cn->visitors)
		problem(&r->c->rep, r->c->site, NULL, VERIFY_ALL_TIME,
		    "%s: series %" PRIu32 " is ranked with %" PRIu64 " views "
		    "in the window, its sum has %" PRIu64, r->c->site, id,
		    cn->views, sum.views);
	if (r->n++ > 0 && cn->views > r->last)
		problem(&r->c->rep, r->c->site, NULL, VERIFY_ALL_TIME,
		    "%s: the window's ranking is out of order at series %"
		    PRIu32, r->c->site, id);
	r->last = cn->views;
	return r->c->rep.stop;
}

static void
finish_window(struct verify *c)
{
	struct rank_walk r = { .c = c };
	int rc;

	rc = store_each_window(c->v, c->site, verify_rank, &r);
	if (c->rep.stop)
		return;
	if (rc != STORE_OK || r.rc != STORE_OK)
		problem(&c->rep, c->site, NULL, VERIFY_ALL_TIME,
		    "%s: reading the window: %s", c->site, store_error(NULL));
	else if (r.n != c->win_pages)
		problem(&c->rep, c->site, NULL, VERIFY_ALL_TIME,
		    "%s: %" PRIu64 " pages ranked in the window, %" PRIu64
		    " have rows there", c->site, r.n, c->win_pages);
}

static void
finish_site(struct verify *c)
{
	char d[DAY_STRLEN];
	size_t i;

	if (!c->in_site)
		return;
	if (c->has_window && c->has_site_series)
		finish_window(c);
	c->win_pages = 0;
	if (c->has_site_series && c->pages != c->npages)
		problem(&c->rep, c->site, NULL, VERIFY_ALL_TIME, "%s: the site "
		    "records %" PRIu32 " pages, the store holds %" PRIu32,
		    c->site, c->npages, c->pages);
	for (i = 0; i < c->ndays; i++) {
		if (c->days[i].page_views <= c->days[i].site.views)
			continue;
		day_format(c->days[i].day, d);
		problem(&c->rep, c->site, NULL, c->days[i].day,
		    "%s %s: its pages "
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
		problem(&c->rep, site, path, VERIFY_ALL_TIME,
		    "%s %s: its rows and "
		    "adjustment of %s add up to %s", site, what, kind,
		    over ? "more than 2^64" : "less than 0");
	else if (want != total)
		problem(&c->rep, site, path, VERIFY_ALL_TIME,
		    "%s %s: total %" PRIu64
		    " %s, its rows and adjustment add up to %" PRIu64, site,
		    what, total, kind, want);
	if (total > STORE_COUNT_MAX)
		problem(&c->rep, site, path, VERIFY_ALL_TIME,
		    "%s %s: %" PRIu64 " %s, "
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
			problem(&c->rep, site, NULL, VERIFY_ALL_TIME,
			    "invalid site "
			    "id \"%s\"", site);
		if (!c->has_site_series)
			problem(&c->rep, site, path, VERIFY_ALL_TIME,
			    "%s: pages "
			    "without the site's own series", site);
	}
	c->is_site = path[0] == '\0';
	if (!c->is_site) {
		c->pages++;
		if (!path_ok(path))
			problem(&c->rep, site, path, VERIFY_ALL_TIME,
			    "%s: invalid "
			    "path \"%s\"", site, path);
		if (c->has_site_series && sc->total.views > c->site_total.views)
			problem(&c->rep, site, path, VERIFY_ALL_TIME,
			    "%s %s: %" PRIu64
			    " views in all, more than the site's %" PRIu64,
			    site, path, sc->total.views, c->site_total.views);
	}
	c->sum_views = c->sum_visitors = 0;
	c->over_views = c->over_visitors = false;
	c->adj_views = c->adj_visitors = 0;
	c->id = sc->id;
	memset(&c->win_sum, 0, sizeof(c->win_sum));
	rc = store_each_day(c->v, site, path, 0, INT_MAX, true, verify_row, c);
	if (rc != STORE_OK)
		return rc;
	if (c->has_window && !c->is_site) {
		struct counts got;

		if ((rc = store_window_get(c->v, sc->id, &got)) != STORE_OK)
			return rc;
		if (got.views != c->win_sum.views ||
		    got.visitors != c->win_sum.visitors)
			problem(&c->rep, site, path, VERIFY_ALL_TIME,
			    "%s %s: %" PRIu64 " views and %" PRIu64 " visitors "
			    "in the window's sum, its rows there add up to %"
			    PRIu64 " and %" PRIu64, site, path, got.views,
			    got.visitors, c->win_sum.views,
			    c->win_sum.visitors);
		if (c->win_sum.views || c->win_sum.visitors)
			c->win_pages++;
	}
	verify_total(c, site, path, "views", sc->total.views, c->sum_views,
	    c->over_views, c->adj_views);
	verify_total(c, site, path, "visitors", sc->total.visitors,
	    c->sum_visitors, c->over_visitors, c->adj_visitors);
	if (sc->total.visitors > sc->total.views)
		problem(&c->rep, site, path, VERIFY_ALL_TIME, "%s %s: %" PRIu64
		    " visitors in all but only %" PRIu64 " views", site, what,
		    sc->total.visitors, sc->total.views);
	return c->rep.stop;
}

int
ctl_verify(struct store_view *v, const char *site, verify_fn fn, void *arg,
    struct verify_totals *tot)
{
	struct verify c;
	int rc;

	memset(&c, 0, sizeof(c));
	c.v = v;
	c.rep.fn = fn;
	c.rep.arg = arg;
	c.tot = tot;
	if ((rc = store_window_state(v, &c.win)) == STORE_OK)
		c.has_window = true;
	else if (rc != STORE_NOTFOUND)
		return rc;
	rc = store_each_series(v, site, verify_series, &c);
	if (rc == STORE_OK || c.rep.stop)
		finish_site(&c);
	free(c.days);
	if (c.rep.stop)
		return c.rep.stop;
	return rc;
}

/*
 * Referrers. Rows come by site, then day: one pass, each day's hosts
 * counted and their views summed as they come.
 */

struct verify_ref {
	struct store_view *v;
	struct reporter	 rep;
	long		 max;
	struct verify_totals *tot;
	char		 site[SITE_NAME_MAX + 2];
	bool		 in_site, site_known;
	int		 day;
	bool		 in_day;
	uint64_t	 hosts;		/* of the day, (other) aside */
	uint64_t	 views;		/* of the day, summed, saturating */
};

/* The day just walked: its hosts within the cap, and no more views from
 * elsewhere than the site had that day. */
static void
ref_finish_day(struct verify_ref *r)
{
	struct series_counts sc;
	char d[DAY_STRLEN];

	if (!r->in_day || !r->site_known)
		goto out;
	day_format(r->day, d);
	if (r->hosts > (uint64_t)r->max)
		problem(&r->rep, r->site, NULL, r->day,
		    "%s %s: %" PRIu64 " referring "
		    "hosts, more than max_referrers (%ld) and %s", r->site, d,
		    r->hosts, r->max, STORE_REFERRER_OTHER);
	if (store_get(r->v, r->site, SITE_SERIES, r->day, &sc) != STORE_OK)
		problem(&r->rep, r->site, NULL, r->day,
		    "%s %s: the site's day cannot "
		    "be read", r->site, d);
	else if (r->views > sc.day.views)
		problem(&r->rep, r->site, NULL, r->day,
		    "%s %s: %" PRIu64 " views from "
		    "referrers, more than the site's %" PRIu64, r->site, d,
		    r->views, sc.day.views);
out:
	r->in_day = false;
	r->hosts = r->views = 0;
}

static int
verify_referrer(void *arg, const char *site, int day, const char *host,
    uint64_t views)
{
	struct verify_ref *r = arg;
	struct series_counts sc;
	char d[DAY_STRLEN], ehost[4 * STORE_REFERRER_MAX + 1];

	if (!r->in_site || strcmp(r->site, site) != 0) {
		ref_finish_day(r);
		r->in_site = true;
		snprintf(r->site, sizeof(r->site), "%s", site);
		if (store_get(r->v, site, SITE_SERIES, 0, &sc) != STORE_OK)
			return STORE_ERROR;
		r->site_known = sc.exists && site_name_valid(site);
		if (!r->site_known)
			problem(&r->rep, site, NULL, VERIFY_ALL_TIME,
			    "referrer rows of "
			    "\"%s\", a site without counts", site);
	}
	if (!r->in_day || r->day != day) {
		ref_finish_day(r);
		r->in_day = true;
		r->day = day;
	}
	if (r->tot)
		r->tot->referrer_rows++;
	day_format(day, d);
	if (!referrer_name_valid(host)) {
		text_escape(ehost, sizeof(ehost), host, strlen(host));
		problem(&r->rep, site, NULL, day,
		    "%s %s: invalid referrer \"%s\"",
		    site, d, ehost);
	}
	if (views == 0 || views > STORE_COUNT_MAX)
		problem(&r->rep, site, NULL, day,
		    "%s %s: %" PRIu64 " views from %s "
		    "(1 to %" PRId64 ")", site, d, views, host,
		    (int64_t)STORE_COUNT_MAX);
	if (strcmp(host, STORE_REFERRER_OTHER) != 0)
		r->hosts++;
	if (__builtin_add_overflow(r->views, views, &r->views))
		r->views = UINT64_MAX;
	return r->rep.stop;
}

int
ctl_verify_referrers(struct store_view *v, const char *site, long max,
    verify_fn fn, void *arg, struct verify_totals *tot)
{
	struct verify_ref r;
	int rc;

	memset(&r, 0, sizeof(r));
	r.v = v;
	r.rep.fn = fn;
	r.rep.arg = arg;
	r.max = max;
	r.tot = tot;
	rc = store_each_referrer_row(v, site, verify_referrer, &r);
	if (rc == STORE_OK || r.rep.stop)
		ref_finish_day(&r);
	if (r.rep.stop)
		return r.rep.stop;
	return rc;
}
